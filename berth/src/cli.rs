//! The command line, in docker's syntax.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "berth",
    version,
    about = "Berth: build, pull, push and run containers without Docker",
    disable_help_subcommand = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct Global {
    /// Where images and containers are stored (default: /var/lib/berth as root, else $XDG_DATA_HOME/berth)
    #[arg(long, global = true, env = "BERTH_ROOT", value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// A registry that may be reached over plain HTTP or with an unverified certificate (repeatable)
    #[arg(long = "insecure-registry", global = true, value_name = "HOST[:PORT]")]
    pub insecure_registries: Vec<String>,
    /// A mirror to try first for docker.io images (repeatable), e.g. http://127.0.0.1:5000
    #[arg(long = "registry-mirror", global = true, value_name = "URL")]
    pub registry_mirrors: Vec<String>,
    /// Show debug logs
    #[arg(short = 'D', long, global = true)]
    pub debug: bool,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Download an image from a registry
    Pull(PullArgs),
    /// Upload an image to a registry
    Push(PushArgs),
    /// List images
    Images(ImagesArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag { source: String, target: String },
    /// Remove one or more images
    Rmi(RmiArgs),
    /// Log in to a registry
    Login(LoginArgs),
    /// Log out from a registry
    Logout { server: Option<String> },
    /// Show low-level information on images
    Inspect(InspectArgs),
    /// Show the history of an image
    History(HistoryArgs),
    /// Search Docker Hub for images, or a private registry's catalog (HOST:PORT/WORD)
    Search(SearchArgs),
    /// Save one or more images to a tar archive
    Save(SaveArgs),
    /// Load images from a tar archive
    Load(LoadArgs),
    /// Create and run a new container from an image
    Run(RunArgs),
    /// Create a new container
    Create(RunArgs),
    /// Start one or more stopped containers
    Start(StartArgs),
    /// Stop one or more running containers
    Stop(StopArgs),
    /// Restart one or more containers
    Restart(StopArgs),
    /// Kill one or more running containers
    Kill(KillArgs),
    /// Remove one or more containers
    Rm(RmArgs),
    /// List containers
    Ps(PsArgs),
    /// Fetch the logs of a container
    Logs(LogsArgs),
    /// Execute a command in a running container
    Exec(ExecArgs),
    /// Attach local standard input, output, and error streams to a running container
    Attach(AttachArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Pause all processes within one or more containers
    Pause {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Unpause all processes within one or more containers
    Unpause {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// List port mappings of a container
    Port { container: String },
    /// Display a live stream of container(s) resource usage statistics
    Stats(StatsArgs),
    /// Manage containers
    #[command(subcommand)]
    Container(ContainerCommand),
    /// Manage volumes
    #[command(subcommand)]
    Volume(VolumeCommand),
    /// Manage networks
    #[command(subcommand)]
    Network(NetworkCommand),
    /// Serve the Docker Engine API on a unix socket (for the docker CLI, bollard, the desktop app)
    Daemon(DaemonArgs),
    /// Build an image from a Dockerfile
    Build(BuildArgs),
    /// Manage the build cache
    #[command(subcommand)]
    Builder(BuilderCommand),
    /// (internal) `docker cp` helper, chrooted into a container: stat|get|put PID PATH
    #[command(name = "__cp", hide = true)]
    CopyHelper { op: String, pid: i32, path: String },
    /// (internal) the per-container supervisor process: __shim --root ROOT DIR
    #[command(name = "__shim", hide = true)]
    Shim { state_dir: PathBuf },
    /// (internal) PID 1 of a machine's guest (the initramfs's /init execs it)
    #[command(name = "guest-init", hide = true)]
    GuestInit,
    /// (internal) the engine of a machine's guest, started by guest-init
    #[command(name = "guest-engine", hide = true)]
    GuestEngine,
    /// Manage images
    #[command(subcommand)]
    Image(ImageCommand),
    /// Manage Berth
    #[command(subcommand)]
    System(SystemCommand),
    /// Manage machines: a Linux VM whose guest runs Berth's engine (for macOS and Windows,
    /// or Linux where the native engine cannot run)
    #[command(subcommand)]
    Machine(MachineCommand),
    /// Define and run multi-container projects (compose.yaml), like docker compose
    Compose(crate::compose::ComposeArgs),
}

#[derive(Subcommand, Debug)]
pub enum ImageCommand {
    /// List images
    #[command(alias = "list")]
    Ls(ImagesArgs),
    Pull(PullArgs),
    Push(PushArgs),
    Tag {
        source: String,
        target: String,
    },
    /// Remove one or more images
    #[command(alias = "remove")]
    Rm(RmiArgs),
    Inspect(InspectArgs),
    History(HistoryArgs),
    Save(SaveArgs),
    Load(LoadArgs),
    /// Remove unused images
    Prune(PruneArgs),
    /// Build an image from a Dockerfile
    Build(BuildArgs),
}

#[derive(Subcommand, Debug)]
pub enum MachineCommand {
    /// Create a machine (its settings and a sparse data disk); it is started with 'start'
    Init(MachineInitArgs),
    /// Boot a machine and wait until its engine answers (or start its relay again)
    Start {
        /// The machine (default: "default")
        name: Option<String>,
        /// Give up on a boot after this many seconds (default: 30 with a hypervisor, 180 under TCG)
        #[arg(long, value_name = "SECONDS")]
        boot_timeout: Option<u64>,
    },
    /// Power a machine off (its engine stops; images and volumes stay on its disk)
    Stop { name: Option<String> },
    /// Change a stopped machine's CPUs, memory or disk size (the disk only grows); they
    /// apply at its next start
    Set(MachineInitArgs),
    /// Remove a machine and its disk
    Rm {
        name: Option<String>,
        /// Stop it first if it runs
        #[arg(short, long)]
        force: bool,
    },
    /// List machines
    #[command(alias = "list")]
    Ls,
    /// Show machines as JSON
    Inspect { names: Vec<String> },
    /// Show a machine's console (the guest kernel's and engine's messages)
    Logs { name: Option<String> },
    /// (internal) the host end of a machine's link, started by 'machine start'
    #[command(name = "__relay", hide = true)]
    Relay {
        name: String,
        #[arg(long)]
        qemu_pid: i32,
        #[arg(long)]
        boot_limit_ms: u64,
    },
}

#[derive(Args, Debug)]
pub struct MachineInitArgs {
    /// The machine's name (default: "default")
    pub name: Option<String>,
    /// Virtual CPUs
    #[arg(long)]
    pub cpus: Option<u32>,
    /// Memory in MiB
    #[arg(long, value_name = "MiB")]
    pub memory: Option<u64>,
    /// The data disk's size in GiB (a sparse file: it takes only what is used)
    #[arg(long, value_name = "GiB")]
    pub disk_size: Option<u64>,
}

#[derive(Subcommand, Debug)]
pub enum SystemCommand {
    /// Show disk usage
    Df,
    /// Remove stopped containers, unused networks, dangling images and build cache
    Prune(SystemPruneArgs),
    /// Verify the store: every blob's digest, every image's blobs and layers, and no
    /// leftovers (partial downloads, unreleased runs, stray mounts); exits 1 on a problem
    Check {
        /// Remove what is damaged or unreferenced (never what is referenced and sound)
        #[arg(long)]
        repair: bool,
    },
    /// Offer a `docker` command that is Berth (a link to berth), so commands written for
    /// docker run as they are; never over an existing docker
    DockerCommand {
        /// Remove Berth's docker link instead
        #[arg(long)]
        remove: bool,
        /// Only say what `docker` is now
        #[arg(long)]
        status: bool,
        /// The folder for the link (default: /usr/local/bin as root, else ~/.local/bin)
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[derive(Args, Debug)]
pub struct SystemPruneArgs {
    /// Remove all unused images, not just dangling ones, and all build cache
    #[arg(short, long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
    /// Also remove anonymous volumes no container uses
    #[arg(long)]
    pub volumes: bool,
}

#[derive(Subcommand, Debug)]
pub enum BuilderCommand {
    /// Remove build cache
    Prune {
        /// Remove all build cache, not just entries no image builds on
        #[arg(short, long)]
        all: bool,
        /// Do not prompt for confirmation
        #[arg(short, long)]
        force: bool,
    },
}

#[derive(Args, Debug)]
pub struct BuildArgs {
    /// Name and optionally a tag in the name:tag format (repeatable)
    #[arg(short = 't', long = "tag", value_name = "NAME[:TAG]")]
    pub tags: Vec<String>,
    /// Name of the Dockerfile (default: PATH/Dockerfile; `-` reads it from stdin)
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Set the target build stage to build
    #[arg(long)]
    pub target: Option<String>,
    /// Do not use cache when building the image
    #[arg(long)]
    pub no_cache: bool,
    /// Always attempt to pull a newer version of the base images
    #[arg(long)]
    pub pull: bool,
    /// Set build-time variables (NAME=value, or NAME to take it from the environment)
    #[arg(long = "build-arg", value_name = "NAME[=VALUE]")]
    pub build_args: Vec<String>,
    /// Set metadata for an image (KEY=value)
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Suppress the build output and print the image ID on success
    #[arg(short, long)]
    pub quiet: bool,
    /// Networking mode for the RUN instructions: default, none or host
    #[arg(long, default_value = "default")]
    pub network: String,
    /// The build context directory
    pub path: PathBuf,
}

#[derive(Args, Debug)]
pub struct PullArgs {
    /// Set platform if the image is multi-platform, e.g. linux/arm64
    #[arg(long)]
    pub platform: Option<String>,
    /// Suppress verbose output
    #[arg(short, long)]
    pub quiet: bool,
    pub image: String,
}

#[derive(Args, Debug)]
pub struct SearchArgs {
    /// Max number of search results
    #[arg(long, default_value_t = 25)]
    pub limit: u32,
    /// Filter output: is-official=true, stars=3
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// What to look for; HOST:PORT/WORD searches that registry
    pub term: String,
}

#[derive(Args, Debug)]
pub struct PushArgs {
    #[arg(short, long)]
    pub quiet: bool,
    pub image: String,
}

#[derive(Args, Debug)]
pub struct ImagesArgs {
    /// Show all images (intermediate images too)
    #[arg(short, long)]
    pub all: bool,
    /// Only show image IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Show digests
    #[arg(long)]
    pub digests: bool,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Format output using a Go template: 'table {{.Repository}}\t{{.Tag}}', '{{.ID}}' or json
    #[arg(long)]
    pub format: Option<String>,
    /// Only images of this repository (and tag)
    pub reference: Option<String>,
}

#[derive(Args, Debug)]
pub struct RmiArgs {
    /// Force removal of the image
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(Args, Debug)]
pub struct LoginArgs {
    #[arg(short, long)]
    pub username: Option<String>,
    #[arg(short, long)]
    pub password: Option<String>,
    /// Take the password from stdin
    #[arg(long)]
    pub password_stdin: bool,
    pub server: Option<String>,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Format the output using a Go template, e.g. '{{.Id}}', '{{json .Config}}' or json
    #[arg(short, long)]
    pub format: Option<String>,
    /// Only `image` is supported until containers exist
    #[arg(long = "type")]
    pub kind: Option<String>,
    #[arg(required = true)]
    pub names: Vec<String>,
}

impl InspectArgs {
    /// `image inspect` / `container inspect`: that kind only, unless `--type` says otherwise.
    pub fn of_kind(mut self, kind: &str) -> InspectArgs {
        self.kind.get_or_insert_with(|| kind.to_string());
        self
    }
}

#[derive(Args, Debug)]
pub struct HistoryArgs {
    /// Print sizes and dates in human readable format
    #[arg(short = 'H', long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub human: bool,
    #[arg(long)]
    pub no_trunc: bool,
    #[arg(short, long)]
    pub quiet: bool,
    pub image: String,
}

#[derive(Args, Debug)]
pub struct SaveArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(Args, Debug)]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN
    #[arg(short, long)]
    pub input: Option<PathBuf>,
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Remove all unused images, not just dangling ones
    #[arg(short, long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Args, Debug, Clone)]
#[command(disable_help_flag = true)]
pub struct RunArgs {
    /// Print help (-h is --hostname, as in docker)
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// Run container in background and print container ID
    #[arg(short, long)]
    pub detach: bool,
    /// Keep STDIN open even if not attached
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub tty: bool,
    /// Override the key sequence for detaching a container
    #[arg(long, default_value = "ctrl-p,ctrl-q")]
    pub detach_keys: String,
    /// Log driver options, e.g. max-size=10m, max-file=3
    #[arg(long)]
    pub log_opt: Vec<String>,
    /// Proxy received signals to the process
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub sig_proxy: bool,
    /// Automatically remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    /// Assign a name to the container
    #[arg(long)]
    pub name: Option<String>,
    /// Publish a container's port(s) to the host, e.g. 8080:5000
    #[arg(short, long = "publish")]
    pub publish: Vec<String>,
    /// Publish all exposed ports to random ports
    #[arg(short = 'P', long)]
    pub publish_all: bool,
    /// Set environment variables
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long)]
    pub env_file: Vec<PathBuf>,
    /// Bind mount a volume, e.g. data:/data or /host/path:/path:ro
    #[arg(short, long = "volume")]
    pub volume: Vec<String>,
    /// Attach a filesystem mount, e.g. type=bind,source=/x,target=/y
    #[arg(long)]
    pub mount: Vec<String>,
    /// Working directory inside the container
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short, long)]
    pub user: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Container host name
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Connect a container to a network (bridge, host, none or a network name)
    #[arg(long)]
    pub network: Option<String>,
    /// Add network-scoped alias for the container (user networks)
    #[arg(long = "network-alias")]
    pub network_alias: Vec<String>,
    /// IPv4 address on that network (a user network with a --subnet of your choice)
    #[arg(long)]
    pub ip: Option<String>,
    /// IPv6 address on that network (a user network created with --ipv6)
    #[arg(long)]
    pub ip6: Option<String>,
    /// Command to run to check health (through /bin/sh -c)
    #[arg(long)]
    pub health_cmd: Option<String>,
    /// Time between running the check, e.g. 30s
    #[arg(long)]
    pub health_interval: Option<String>,
    /// Maximum time to allow one check to run, e.g. 30s
    #[arg(long)]
    pub health_timeout: Option<String>,
    /// Consecutive failures needed to report unhealthy
    #[arg(long)]
    pub health_retries: Option<i64>,
    /// Start period for the container to initialize before failures count, e.g. 10s
    #[arg(long)]
    pub health_start_period: Option<String>,
    /// Disable any container-specified HEALTHCHECK
    #[arg(long)]
    pub no_healthcheck: bool,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long)]
    pub init: bool,
    /// PID namespace to use: host, or container:NAME
    #[arg(long)]
    pub pid: Option<String>,
    /// UTS namespace to use: host
    #[arg(long)]
    pub uts: Option<String>,
    /// IPC mode to use: private, shareable, none, host or container:NAME
    #[arg(long)]
    pub ipc: Option<String>,
    /// Add a custom host-to-IP mapping (host:ip, or host:host-gateway)
    #[arg(long = "add-host")]
    pub add_host: Vec<String>,
    /// Set custom DNS servers
    #[arg(long)]
    pub dns: Vec<String>,
    /// Set custom DNS search domains
    #[arg(long = "dns-search")]
    pub dns_search: Vec<String>,
    /// Set DNS options
    #[arg(long = "dns-option")]
    pub dns_option: Vec<String>,
    /// Size of /dev/shm, e.g. 256m
    #[arg(long = "shm-size")]
    pub shm_size: Option<String>,
    /// Add Linux capabilities
    #[arg(long = "cap-add")]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long = "cap-drop")]
    pub cap_drop: Vec<String>,
    /// Mount the container's root filesystem as read only
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// Sysctl options (KEY=VALUE), e.g. net.core.somaxconn=1024
    #[arg(long)]
    pub sysctl: Vec<String>,
    /// Security options, e.g. seccomp=unconfined
    #[arg(long = "security-opt")]
    pub security_opt: Vec<String>,
    /// Add a link to another container (NAME[:ALIAS]): its address in /etc/hosts
    #[arg(long = "link")]
    pub link: Vec<String>,
    /// Container MAC address, e.g. 02:42:ac:11:00:02
    #[arg(long)]
    pub mac_address: Option<String>,
    /// Memory plus swap limit, e.g. 1g (-1: unlimited swap)
    #[arg(long, allow_negative_numbers = true)]
    pub memory_swap: Option<String>,
    /// Tune container memory swappiness (0 to 100)
    #[arg(long)]
    pub memory_swappiness: Option<i64>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long)]
    pub cpu_shares: Option<i64>,
    /// CPUs in which to allow execution, e.g. 0-1 or 0,2
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    /// Mount a tmpfs directory, e.g. /run or /run:size=64m
    #[arg(long)]
    pub tmpfs: Vec<String>,
    /// Add additional groups to join
    #[arg(long)]
    pub group_add: Vec<String>,
    /// Signal to stop the container
    #[arg(long)]
    pub stop_signal: Option<String>,
    /// Seconds to wait to stop the container before killing it
    #[arg(long, allow_negative_numbers = true)]
    pub stop_timeout: Option<i64>,
    /// Memory limit, e.g. 512m
    #[arg(short, long)]
    pub memory: Option<String>,
    /// Number of CPUs, e.g. 1.5
    #[arg(long)]
    pub cpus: Option<String>,
    /// Tune container pids limit (-1 for unlimited)
    #[arg(long, allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,
    /// Restart policy: no, always, unless-stopped, on-failure[:N]
    #[arg(long)]
    pub restart: Option<String>,
    /// Set meta data on a container
    #[arg(short, long = "label")]
    pub label: Vec<String>,
    pub image: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Args, Debug)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short, long)]
    pub attach: bool,
    /// Attach container's STDIN
    #[arg(short, long)]
    pub interactive: bool,
    /// Override the key sequence for detaching a container
    #[arg(long, default_value = "ctrl-p,ctrl-q")]
    pub detach_keys: String,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct AttachArgs {
    /// Do not attach STDIN
    #[arg(long)]
    pub no_stdin: bool,
    /// Proxy all received signals to the process
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub sig_proxy: bool,
    /// Override the key sequence for detaching a container
    #[arg(long, default_value = "ctrl-p,ctrl-q")]
    pub detach_keys: String,
    pub container: String,
}

#[derive(Args, Debug)]
pub struct StopArgs {
    /// Seconds to wait before killing the container
    #[arg(short = 't', long = "time", alias = "timeout", default_value_t = 10)]
    pub time: u64,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct KillArgs {
    /// Signal to send to the container
    #[arg(short, long, default_value = "KILL")]
    pub signal: String,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short, long)]
    pub force: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short, long)]
    pub volumes: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    pub all: bool,
    /// Only display container IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Filter output based on conditions provided (name=, status=, id=, ancestor=, label=)
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Format output using a Go template: 'table {{.Names}}\t{{.Status}}', '{{.ID}}' or json
    #[arg(long)]
    pub format: Option<String>,
    /// Show the latest created container
    #[arg(short, long)]
    pub latest: bool,
}

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// Follow log output
    #[arg(short, long)]
    pub follow: bool,
    /// Number of lines to show from the end of the logs ("all" for all)
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show logs since timestamp (e.g. 2026-11-26T10:00:00Z) or relative (e.g. 42m)
    #[arg(long)]
    pub since: Option<String>,
    /// Show logs before a timestamp or relative time
    #[arg(long)]
    pub until: Option<String>,
    /// Show timestamps
    #[arg(short, long)]
    pub timestamps: bool,
    pub container: String,
}

#[derive(Args, Debug)]
pub struct ExecArgs {
    #[arg(short, long)]
    pub interactive: bool,
    #[arg(short, long)]
    pub tty: bool,
    #[arg(short, long)]
    pub detach: bool,
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    #[arg(short, long)]
    pub user: Option<String>,
    #[arg(short, long)]
    pub workdir: Option<String>,
    pub container: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub command: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub enum ContainerCommand {
    #[command(alias = "list")]
    Ls(PsArgs),
    Run(RunArgs),
    Create(RunArgs),
    Start(StartArgs),
    Stop(StopArgs),
    Restart(StopArgs),
    Kill(KillArgs),
    #[command(alias = "remove")]
    Rm(RmArgs),
    Logs(LogsArgs),
    Exec(ExecArgs),
    Attach(AttachArgs),
    Inspect(InspectArgs),
    /// Remove all stopped containers
    Prune {
        #[arg(short, long)]
        force: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum VolumeCommand {
    /// Create a volume
    Create {
        /// Set metadata for a volume (KEY=VALUE)
        #[arg(long = "label")]
        label: Vec<String>,
        name: Option<String>,
    },
    #[command(alias = "list")]
    Ls {
        #[arg(short, long)]
        quiet: bool,
        /// Format output using a Go template: 'table {{.Name}}\t{{.Driver}}', '{{.Name}}' or json
        #[arg(long)]
        format: Option<String>,
    },
    Inspect {
        #[arg(required = true)]
        names: Vec<String>,
    },
    #[command(alias = "remove")]
    Rm {
        #[arg(short, long)]
        force: bool,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove unused volumes
    Prune {
        #[arg(short, long)]
        force: bool,
        #[arg(short, long)]
        all: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum NetworkCommand {
    Create {
        /// Subnet in CIDR format, e.g. 172.28.0.0/16; once more for the IPv6 one with --ipv6
        #[arg(long)]
        subnet: Vec<String>,
        /// Gateway for the subnet of its family (default: the subnet's first address)
        #[arg(long)]
        gateway: Vec<String>,
        /// Enable IPv6 networking (from the IPv6 --subnet, or a unique local /64)
        #[arg(long)]
        ipv6: bool,
        /// Allocate container addresses from a sub-range, e.g. 172.28.5.0/24
        #[arg(long)]
        ip_range: Option<String>,
        /// Restrict external access to the network
        #[arg(long)]
        internal: bool,
        /// Enable manual container attachment (recorded; a local bridge always allows it)
        #[arg(long)]
        attachable: bool,
        /// Set metadata on a network (KEY=VALUE)
        #[arg(long = "label")]
        label: Vec<String>,
        /// Set driver specific options (KEY=VALUE)
        #[arg(short = 'o', long = "opt")]
        opt: Vec<String>,
        name: String,
    },
    #[command(alias = "list")]
    Ls {
        /// Only display network IDs
        #[arg(short, long)]
        quiet: bool,
        /// Don't truncate the network IDs
        #[arg(long)]
        no_trunc: bool,
        /// Format output using a Go template: 'table {{.ID}}\t{{.Name}}', '{{.Name}}' or json
        #[arg(long)]
        format: Option<String>,
    },
    Inspect {
        #[arg(required = true)]
        names: Vec<String>,
    },
    #[command(alias = "remove")]
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Connect a container to a network
    Connect {
        /// Add a network-scoped alias for the container
        #[arg(long = "alias")]
        aliases: Vec<String>,
        network: String,
        container: String,
    },
    /// Disconnect a container from a network
    Disconnect {
        /// Force the container to disconnect from a network
        #[arg(short, long)]
        force: bool,
        network: String,
        container: String,
    },
}

#[derive(Args, Debug)]
pub struct StatsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    pub all: bool,
    /// Disable streaming stats and only pull the first result
    #[arg(long)]
    pub no_stream: bool,
    /// Format output using a Go template: 'table {{.Name}}\t{{.CPUPerc}}', '{{.MemUsage}}' or json
    #[arg(long)]
    pub format: Option<String>,
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct DaemonArgs {
    /// The socket to serve, e.g. unix:///run/berth/berth.sock (default: /run/berth/berth.sock as root, else $XDG_RUNTIME_DIR/berth/berth.sock, or /tmp/berth-UID/berth.sock without XDG_RUNTIME_DIR)
    #[arg(short = 'H', long, value_name = "unix:///PATH")]
    pub host: Option<String>,
    /// Also listen on TCP (loopback only; the API has no authentication), e.g. 127.0.0.1:2375
    #[arg(long, value_name = "ADDR:PORT")]
    pub tcp: Option<std::net::SocketAddr>,
}
