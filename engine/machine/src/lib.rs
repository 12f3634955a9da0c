//! berth-machine: Berth's machines — a Linux VM under QEMU whose guest runs Berth's engine
//! ([`berth_guest`'s PID 1 and engine], built by `scripts/build-guest.sh`), for macOS,
//! Windows, and Linux hosts where the native engine cannot run.
//!
//! # Processes
//! - **QEMU**, started by `berth machine start` in a session of its own; it outlives the
//!   command. Its serial console is `console.log`, its link end `link.sock`.
//! - **The relay** (`berth machine __relay NAME`, [`relay`]), also in a session of its own:
//!   it connects to `link.sock`, waits for the guest's ready line (the boot's time limit is
//!   enforced here, so a hung boot is reported, never waited on), then serves the Engine
//!   API on `api.sock` (mode 0600 in a 0700 directory) and relays each connection into the
//!   guest as one link stream. Killed, it can be started again (`machine start`) and finds
//!   the running guest and its containers. SIGTERM makes it power the guest off.
//!
//! Architecture invariant: the host side never speaks the Engine API itself — it moves
//! bytes. It knows the guest's link targets (`api`, `time`, `poweroff`) and nothing of
//! containers. OS-specific parts (accelerator, socket kind, VMM binary) are behind
//! [`accel`] and [`qemu`]; only Linux is built and run here.

pub mod accel;
#[cfg(target_os = "linux")]
mod asyncfd;
pub mod clock;
pub mod config;
mod context;
pub mod qemu;
pub mod relay;
pub mod settings;
pub mod virtiofs;
pub mod watch;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

pub use accel::{Accel, HostOs, TCG_WARNING};
pub use config::{check_name, machines_dir, MachineConfig, Paths, StartState, DEFAULT_NAME};
pub use settings::SetOptions;

/// What went wrong, each worded as one sentence with what to do next.
#[derive(Debug, thiserror::Error)]
pub enum MachineError {
    #[error("'{0}' is not a valid machine name: use letters, digits, '_', '.' or '-' (at most 30), starting with a letter or digit")]
    BadName(String),
    #[error("machine '{0}' does not exist: create it with 'berth machine init {0}'")]
    NoSuchMachine(String),
    #[error("machine '{0}' already exists: start it with 'berth machine start {0}', or remove it first with 'berth machine rm {0}'")]
    Exists(String),
    #[error("machine '{0}' is already running")]
    AlreadyRunning(String),
    #[error("machine '{0}' is running: stop it first with 'berth machine stop {0}', or use 'berth machine rm -f {0}'")]
    Running(String),
    #[error("machine '{0}' is running: stop it first: berth machine stop {0}")]
    RunningSet(String),
    #[error("no guest image found (looked in {0}): build it with 'bash scripts/build-guest.sh' and set BERTH_GUEST to the directory it prints, or reinstall Berth")]
    NoGuest(String),
    #[error("{what} is not a valid setting: {why}")]
    BadSetting { what: String, why: String },
    #[error("cannot start {0}: install QEMU (Debian: apt-get install qemu-system-x86), then try again")]
    NoQemu(String),
    #[error("machine '{name}' did not start: {why} (console log: {console})")]
    Boot {
        name: String,
        why: String,
        console: String,
    },
    #[error("{what} ({path}): {source}")]
    Io {
        what: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> MachineError {
    let path = path.display().to_string();
    move |source| MachineError::Io { what, path, source }
}

/// The machines under one directory ([`machines_dir`] unless a test says otherwise).
#[derive(Debug, Clone)]
pub struct Machines {
    pub dir: PathBuf,
}

/// `berth machine init`'s choices (`None`: the default).
#[derive(Debug, Clone, Default)]
pub struct InitOptions {
    pub cpus: Option<u32>,
    pub memory: Option<u64>,
    pub disk_size: Option<u64>,
    /// The guest payload's directory; else `$BERTH_GUEST`, else beside the binary.
    pub guest: Option<PathBuf>,
}

/// `berth machine start`'s choices.
#[derive(Debug, Clone)]
pub struct StartOptions {
    /// The binary whose `machine __relay` runs the relay (this one).
    pub relay_exe: PathBuf,
    /// Only this accelerator (`BERTH_MACHINE_ACCEL`); else the hypervisor, then TCG.
    pub accel: Option<Accel>,
    /// The boot's time limit instead of the accelerator's.
    pub boot_limit: Option<Duration>,
}

/// What a start did.
#[derive(Debug, Clone)]
pub struct Started {
    pub accel: Accel,
    pub boot: Duration,
    /// Sentences to show the user (a hypervisor that failed, TCG's slowness).
    pub warnings: Vec<String>,
    /// Whether the guest was already running and only the relay started again.
    pub reconnected: bool,
}

/// A machine's state as `ls` and `inspect` show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Stopped,
    /// QEMU runs but no relay serves the API: `machine start` connects a new one.
    Unreachable,
    Running,
}

/// One entry of `berth machine inspect`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Inspect {
    pub name: String,
    pub state: State,
    /// The host path of the machine's Engine API socket.
    pub socket: PathBuf,
    #[serde(rename = "CPUs")]
    pub cpus: u32,
    /// MiB.
    pub memory: u64,
    /// GiB.
    pub disk_size: u64,
    /// The accelerator of the last start ("" if never started).
    pub accelerator: String,
    pub console_log: PathBuf,
    pub guest: PathBuf,
    pub created: String,
    /// Bytes the sparse data disk really takes on the host.
    pub disk_used: u64,
}

/// Where the guest payload is: `$BERTH_GUEST`, else `<exe dir>/../lib/berth/guest` (the
/// .deb's place), else `<exe dir>/guest`. A payload is a directory with `vmlinuz` and
/// `initrd.img`.
pub fn find_guest(exe: &Path, env: Option<&Path>) -> Result<PathBuf, MachineError> {
    let mut tried = Vec::new();
    let mut candidates = Vec::new();
    if let Some(e) = env {
        candidates.push(e.to_path_buf());
    } else if let Some(dir) = exe.parent() {
        candidates.push(dir.join("../lib/berth/guest"));
        candidates.push(dir.join("guest"));
    }
    for c in candidates {
        if c.join("vmlinuz").is_file() && c.join("initrd.img").is_file() {
            return Ok(std::fs::canonicalize(&c).unwrap_or(c));
        }
        tried.push(c.display().to_string());
    }
    Err(MachineError::NoGuest(tried.join(", ")))
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The pid in `path` if that process is alive and is what `needle` names (a pid file
/// outlives its process, and pids are reused).
fn live_pid(path: &Path, needle: &[u8]) -> Option<i32> {
    let pid = read_pid(path)?;
    (berth_host::process::alive(pid) && berth_host::process::cmdline_contains(pid, needle)).then_some(pid)
}

/// Sends `sig` to `pid` and waits up to `limit` for it to end; true if it did.
fn signal_and_wait(pid: i32, sig: nix::sys::signal::Signal, limit: Duration) -> bool {
    let watch = berth_host::watch::ProcWatch::open(pid);
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
    match watch {
        Some(w) => {
            let deadline = Instant::now() + limit;
            loop {
                if !berth_host::process::alive(pid) {
                    return true;
                }
                let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                    return false;
                };
                let _ = berth_host::watch::wait_any(&[&w], None, left);
            }
        }
        None => !berth_host::process::alive(pid),
    }
}

impl Machines {
    pub fn new(dir: PathBuf) -> Machines {
        Machines { dir }
    }

    /// The machines in [`machines_dir`].
    pub fn default_dir() -> Machines {
        Machines::new(machines_dir())
    }

    pub fn paths(&self, name: &str) -> Paths {
        Paths::new(&self.dir, name)
    }

    pub fn load(&self, name: &str) -> Result<MachineConfig, MachineError> {
        check_name(name)?;
        let path = self.paths(name).config();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(MachineError::NoSuchMachine(name.to_string()))
            }
            Err(e) => return Err(io_err("cannot read the machine's settings", &path)(e)),
        };
        serde_json::from_str(&text).map_err(|e| MachineError::BadSetting {
            what: path.display().to_string(),
            why: e.to_string(),
        })
    }

    /// The names of every machine, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().join("machine.json").is_file())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort();
        names
    }

    /// `berth machine init`: the machine's directory (0700), its settings and its sparse
    /// data disk (formatted by the guest at first boot).
    pub fn init(
        &self,
        name: &str,
        opts: &InitOptions,
        guest: PathBuf,
    ) -> Result<MachineConfig, MachineError> {
        check_name(name)?;
        let cfg = MachineConfig {
            name: name.to_string(),
            cpus: opts.cpus.unwrap_or(MachineConfig::DEFAULT_CPUS),
            memory: opts.memory.unwrap_or(MachineConfig::DEFAULT_MEMORY),
            disk_size: opts.disk_size.unwrap_or(MachineConfig::DEFAULT_DISK),
            guest,
            created: now_rfc3339(),
        };
        settings::check(cfg.cpus, cfg.memory, cfg.disk_size)?;
        let paths = self.paths(name);
        if paths.config().exists() {
            return Err(MachineError::Exists(name.to_string()));
        }
        std::fs::create_dir_all(&self.dir)
            .map_err(io_err("cannot create the machines' directory", &self.dir))?;
        std::fs::create_dir_all(&paths.dir)
            .map_err(io_err("cannot create the machine's directory", &paths.dir))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&paths.dir, std::fs::Permissions::from_mode(0o700))
            .map_err(io_err("cannot protect the machine's directory", &paths.dir))?;
        settings::size_disk(&paths.disk(), cfg.disk_size, true)?;
        // The settings last, written whole: a machine exists once they do.
        settings::write_config(&paths, &cfg)?;
        context::register(name, &paths.api());
        Ok(cfg)
    }

    fn qemu_pid(&self, name: &str) -> Option<i32> {
        live_pid(&self.paths(name).qemu_pid(), b"qemu-system")
    }

    fn relay_pid(&self, name: &str) -> Option<i32> {
        live_pid(&self.paths(name).relay_pid(), b"__relay")
    }

    pub fn state(&self, name: &str) -> State {
        match (self.qemu_pid(name), self.relay_pid(name)) {
            (Some(_), Some(_)) => State::Running,
            (Some(_), None) => State::Unreachable,
            _ => State::Stopped,
        }
    }

    pub fn inspect(&self, name: &str) -> Result<Inspect, MachineError> {
        let cfg = self.load(name)?;
        let paths = self.paths(name);
        let last: StartState = std::fs::read(paths.state())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        use std::os::unix::fs::MetadataExt;
        Ok(Inspect {
            name: cfg.name,
            state: self.state(name),
            socket: paths.api(),
            cpus: cfg.cpus,
            memory: cfg.memory,
            disk_size: cfg.disk_size,
            accelerator: last.accelerator,
            console_log: paths.console(),
            guest: cfg.guest,
            created: cfg.created,
            disk_used: std::fs::metadata(paths.disk())
                .map(|m| m.blocks() * 512)
                .unwrap_or(0),
        })
    }

    /// `berth machine start`: boots the guest (the hypervisor first, then TCG, each within
    /// its time limit) and waits until its Engine API answers on the host; or, when the
    /// guest runs without a relay, starts the relay again.
    pub fn start(&self, name: &str, opts: &StartOptions) -> Result<Started, MachineError> {
        let cfg = self.load(name)?;
        let paths = self.paths(name);
        if self.relay_pid(name).is_some() && self.qemu_pid(name).is_some() {
            return Err(MachineError::AlreadyRunning(name.to_string()));
        }
        if let Some(qemu) = self.qemu_pid(name) {
            let limit = opts.boot_limit.unwrap_or(Duration::from_secs(30));
            let begun = Instant::now();
            self.spawn_relay(name, opts, qemu, limit)?;
            let last: StartState = std::fs::read(paths.state())
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_default();
            return Ok(Started {
                accel: Accel::parse(&last.accelerator).unwrap_or(Accel::Tcg),
                boot: begun.elapsed(),
                warnings: Vec::new(),
                reconnected: true,
            });
        }
        for f in ["vmlinuz", "initrd.img"] {
            if !cfg.guest.join(f).is_file() {
                return Err(MachineError::NoGuest(cfg.guest.display().to_string()));
            }
        }
        let os = HostOs::current();
        let choices = accel::choices(os, os == HostOs::Linux && accel::kvm_usable(), opts.accel);
        let mut warnings = Vec::new();
        let mut last_err = None;
        for (i, accel) in choices.iter().copied().enumerate() {
            let limit = opts.boot_limit.unwrap_or(accel.boot_limit());
            for stale in [paths.link(), paths.api(), paths.qemu_pid(), paths.relay_pid()] {
                let _ = std::fs::remove_file(stale);
            }
            let begun = Instant::now();
            let qemu = self.spawn_qemu(&cfg, &paths, accel, &mut warnings)?;
            match self.spawn_relay(name, opts, qemu, limit) {
                Ok(()) => {
                    let boot = begun.elapsed();
                    if accel == Accel::Tcg && opts.accel.is_none() {
                        warnings.push(TCG_WARNING.to_string());
                    }
                    let state = StartState {
                        accelerator: accel.name().to_string(),
                        started_at: now_rfc3339(),
                        boot_ms: boot.as_millis() as u64,
                    };
                    let _ = std::fs::write(paths.state(), serde_json::to_vec(&state).unwrap_or_default());
                    return Ok(Started {
                        accel,
                        boot,
                        warnings,
                        reconnected: false,
                    });
                }
                Err(e) => {
                    // Nothing is left running from a failed try.
                    signal_and_wait(qemu, nix::sys::signal::Signal::SIGKILL, Duration::from_secs(5));
                    virtiofs::stop_all(&paths);
                    if let Some(relay) = read_pid(&paths.relay_pid()) {
                        if berth_host::process::cmdline_contains(relay, b"__relay") {
                            signal_and_wait(relay, nix::sys::signal::Signal::SIGKILL, Duration::from_secs(5));
                        }
                    }
                    if i + 1 < choices.len() {
                        let why = match &e {
                            MachineError::Boot { why, .. } => why.clone(),
                            other => other.to_string(),
                        };
                        warnings.push(format!(
                            "{} could not run the machine ({why}): trying software emulation",
                            accel.name()
                        ));
                    }
                    last_err = Some(e);
                }
            }
        }
        Err(last_err.unwrap_or_else(|| MachineError::Boot {
            name: name.to_string(),
            why: "no accelerator to try".into(),
            console: paths.console().display().to_string(),
        }))
    }

    fn spawn_qemu(
        &self,
        cfg: &MachineConfig,
        paths: &Paths,
        accel: Accel,
        warnings: &mut Vec<String>,
    ) -> Result<i32, MachineError> {
        let log = std::fs::File::create(paths.qemu_log())
            .map_err(io_err("cannot create QEMU's log", &paths.qemu_log()))?;
        let log2 = log
            .try_clone()
            .map_err(io_err("cannot create QEMU's log", &paths.qemu_log()))?;
        let mut cmd = Command::new(qemu::binary());
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let shares = qemu::shares(home.as_deref(), &std::env::temp_dir());
        let fs = match virtiofs::find() {
            Some(bin) if !shares.is_empty() => {
                virtiofs::start_all(&bin, paths, &shares).unwrap_or_else(|why| {
                    let w = format!("folders are shared with 9p, which is slower: {why}");
                    if !warnings.contains(&w) {
                        warnings.push(w);
                    }
                    virtiofs::SharesFs::NineP
                })
            }
            _ => virtiofs::SharesFs::NineP,
        };
        let mut args = qemu::args(cfg, paths, accel, &shares, qemu::host_paths(), &fs);
        // For the benchmark's floor (scripts/bench-vm.sh): the same machine with another
        // initramfs, e.g. the payload's floor.img, whose init only says it is ready.
        if let Some(initrd) = std::env::var_os("BERTH_MACHINE_INITRD").filter(|v| !v.is_empty()) {
            if let Some(i) = args.iter().position(|a| a == "-initrd") {
                args[i + 1] = cfg.guest.join(initrd).display().to_string();
            }
        }
        // More kernel arguments, for looking into a guest (e.g. `loglevel=7` puts the
        // kernel's stack dumps on the console log, which `quiet` keeps off it).
        if let Some(extra) = std::env::var("BERTH_MACHINE_KERNEL_ARGS")
            .ok()
            .filter(|v| !v.trim().is_empty())
        {
            if let Some(i) = args.iter().position(|a| a == "-append") {
                args[i + 1] = format!("{} {}", args[i + 1], extra.trim());
            }
        }
        cmd.args(args).stdin(Stdio::null()).stdout(log).stderr(log2);
        detach(&mut cmd);
        let child = cmd.spawn().map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => MachineError::NoQemu(qemu::binary().to_string()),
            _ => io_err("cannot start QEMU", Path::new(qemu::binary()))(e),
        })?;
        let pid = child.id() as i32;
        // QEMU writes its pid file itself once it runs; this one is there at once.
        let _ = std::fs::write(paths.qemu_pid(), format!("{pid}\n"));
        // The child is not waited on here: it outlives this command (init reaps it).
        std::mem::forget(child);
        Ok(pid)
    }

    /// Starts the relay and waits for its first line: `ready` or `failed <why>`.
    fn spawn_relay(
        &self,
        name: &str,
        opts: &StartOptions,
        qemu: i32,
        limit: Duration,
    ) -> Result<(), MachineError> {
        let paths = self.paths(name);
        let log = std::fs::File::create(paths.relay_log())
            .map_err(io_err("cannot create the relay's log", &paths.relay_log()))?;
        let mut cmd = Command::new(&opts.relay_exe);
        cmd.args(["machine", "__relay", name])
            .arg("--qemu-pid")
            .arg(qemu.to_string())
            .arg("--boot-limit-ms")
            .arg(limit.as_millis().to_string())
            .env("BERTH_MACHINE_DIR", &self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log);
        detach(&mut cmd);
        let mut child = cmd
            .spawn()
            .map_err(io_err("cannot start the machine's relay", &opts.relay_exe))?;
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            let _ = BufReader::new(out).read_line(&mut line);
        }
        let relay_pid = child.id() as i32;
        std::mem::forget(child);
        let line = line.trim();
        if line == "ready" {
            return Ok(());
        }
        let why = match line.strip_prefix("failed ") {
            Some(why) => why.to_string(),
            None => {
                let _ = signal_and_wait(
                    relay_pid,
                    nix::sys::signal::Signal::SIGKILL,
                    Duration::from_secs(2),
                );
                let log = std::fs::read_to_string(paths.relay_log()).unwrap_or_default();
                format!(
                    "its relay ended without a word ({})",
                    log.lines().last().unwrap_or("its log is empty")
                )
            }
        };
        Err(MachineError::Boot {
            name: name.to_string(),
            why,
            console: paths.console().display().to_string(),
        })
    }

    /// `berth machine stop`: the relay powers the guest off (the engine stops, the data
    /// disk is unmounted); QEMU is killed if it has not ended within `limit`. Returns
    /// false when the machine was not running.
    pub fn stop(&self, name: &str, limit: Duration) -> Result<bool, MachineError> {
        self.load(name)?;
        let paths = self.paths(name);
        let started = started_pids(&paths);
        let qemu = self.qemu_pid(name);
        let relay = self.relay_pid(name);
        if qemu.is_none() && relay.is_none() {
            started.into_iter().for_each(reap);
            return Ok(false);
        }
        if let Some(r) = relay {
            signal_and_wait(r, nix::sys::signal::Signal::SIGTERM, limit);
        }
        if let Some(q) = qemu {
            if berth_host::process::alive(q)
                && !signal_and_wait(q, nix::sys::signal::Signal::SIGTERM, Duration::from_secs(5))
            {
                signal_and_wait(q, nix::sys::signal::Signal::SIGKILL, Duration::from_secs(5));
            }
        }
        virtiofs::stop_all(&paths);
        started.into_iter().for_each(reap);
        for f in [paths.api(), paths.link(), paths.qemu_pid(), paths.relay_pid()] {
            let _ = std::fs::remove_file(f);
        }
        Ok(true)
    }

    /// `berth machine rm`: refuses a running machine unless `force`.
    pub fn remove(&self, name: &str, force: bool) -> Result<(), MachineError> {
        self.load(name)?;
        if self.state(name) != State::Stopped {
            if !force {
                return Err(MachineError::Running(name.to_string()));
            }
            if let Some(q) = self.qemu_pid(name) {
                signal_and_wait(q, nix::sys::signal::Signal::SIGKILL, Duration::from_secs(5));
            }
            if let Some(r) = self.relay_pid(name) {
                signal_and_wait(r, nix::sys::signal::Signal::SIGKILL, Duration::from_secs(5));
            }
            virtiofs::stop_all(&self.paths(name));
        }
        started_pids(&self.paths(name)).into_iter().for_each(reap);
        let dir = self.paths(name).dir;
        std::fs::remove_dir_all(&dir).map_err(io_err("cannot remove the machine's directory", &dir))?;
        context::unregister(name);
        Ok(())
    }
}

/// QEMU and the relay are never waited on by the command that starts them (they outlive
/// it). A process that lives on and starts them — the desktop app — would keep each one
/// that ended as a zombie: `stop` reaps them when they are this process's children
/// (`waitpid` on anything else fails with ECHILD, and on a live child returns at once).
fn reap(pid: Option<i32>) {
    if let Some(pid) = pid.filter(|p| *p > 0) {
        use nix::sys::wait::{waitpid, WaitPidFlag};
        let _ = waitpid(nix::unistd::Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG));
    }
}

/// The pids QEMU's and the relay's pid files name, alive or not.
fn started_pids(paths: &Paths) -> [Option<i32>; 2] {
    [read_pid(&paths.qemu_pid()), read_pid(&paths.relay_pid())]
}

/// Runs the child in a session of its own, so it outlives this command and its terminal.
fn detach(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_inspect_and_rm_without_a_vm() {
        let t = tempfile::tempdir().unwrap();
        let home = t.path().join("home");
        std::env::set_var("DOCKER_CONFIG", home.join(".docker"));
        let m = Machines::new(t.path().join("machines"));
        let opts = InitOptions {
            cpus: Some(1),
            memory: Some(512),
            disk_size: Some(3),
            guest: None,
        };
        let cfg = m.init("default", &opts, t.path().join("guest")).unwrap();
        assert_eq!((cfg.cpus, cfg.memory, cfg.disk_size), (1, 512, 3));
        assert!(matches!(
            m.init("default", &opts, t.path().into()),
            Err(MachineError::Exists(_))
        ));
        let i = m.inspect("default").unwrap();
        assert_eq!(i.state, State::Stopped);
        assert_eq!(i.socket, t.path().join("machines/default/api.sock"));
        // The disk is 3 GiB long but takes (almost) nothing.
        let len = std::fs::metadata(m.paths("default").disk()).unwrap().len();
        assert_eq!(len, 3 << 30);
        assert!(i.disk_used < 1 << 20, "{}", i.disk_used);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&m.paths("default").dir)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        assert_eq!(m.names(), ["default"]);
        assert!(!m.stop("default", Duration::from_secs(1)).unwrap());
        m.remove("default", false).unwrap();
        assert!(m.names().is_empty());
        assert!(matches!(
            m.inspect("default"),
            Err(MachineError::NoSuchMachine(_))
        ));
        assert!(matches!(
            m.init("../x", &opts, t.path().into()),
            Err(MachineError::BadName(_))
        ));
        let bad = InitOptions {
            memory: Some(100),
            ..InitOptions::default()
        };
        let e = m.init("small", &bad, t.path().into()).unwrap_err().to_string();
        assert!(e.contains("at least 256 MiB"), "{e}");
    }

    #[test]
    fn stop_reaps_an_ended_qemu_this_process_started() {
        let t = tempfile::tempdir().unwrap();
        std::env::set_var("DOCKER_CONFIG", t.path().join("home/.docker"));
        let m = Machines::new(t.path().join("machines"));
        m.init("default", &InitOptions::default(), t.path().join("guest"))
            .unwrap();
        // A child that ends at once, left unwaited as `start` leaves QEMU.
        use std::os::unix::process::CommandExt;
        let child = Command::new("true").arg0("qemu-system-fake").spawn().unwrap();
        let pid = child.id() as i32;
        std::mem::forget(child);
        std::fs::write(m.paths("default").qemu_pid(), format!("{pid}\n")).unwrap();
        let zombie = || {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| s.rsplit_once(") ").is_some_and(|(_, r)| r.starts_with('Z')))
        };
        for _ in 0..200 {
            if zombie() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(zombie(), "the child ended and waits to be reaped");
        assert!(!m.stop("default", Duration::from_secs(1)).unwrap());
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "stop reaped it"
        );
    }

    #[test]
    fn the_guest_is_found_by_env_or_beside_the_binary() {
        let t = tempfile::tempdir().unwrap();
        let bin = t.path().join("usr/bin");
        let lib = t.path().join("usr/lib/berth/guest");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::create_dir_all(&lib).unwrap();
        let exe = bin.join("berth");
        let e = find_guest(&exe, None).unwrap_err().to_string();
        assert!(e.contains("build-guest.sh"), "{e}");
        std::fs::write(lib.join("vmlinuz"), "").unwrap();
        std::fs::write(lib.join("initrd.img"), "").unwrap();
        assert_eq!(
            find_guest(&exe, None).unwrap(),
            std::fs::canonicalize(&lib).unwrap()
        );
        let other = t.path().join("other");
        assert!(
            find_guest(&exe, Some(&other)).is_err(),
            "the env var wins, even when wrong"
        );
    }
}
