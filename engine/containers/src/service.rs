//! The container service: the [`ContainerService`] handle, where containers live on disk
//! and the record helpers every verb shares. Each verb is a file of its own below
//! `service/` (youki's `container_start.rs`, `container_kill.rs` … shape), each adding its
//! `impl ContainerService` block:
//!
//! * `create`: a typed [`crate::ContainerConfig`] over the image's config, into a record;
//! * `start`: overlay, volumes, network, /etc files, cgroup and bound ports, then the shim;
//! * `status` and `list`: what the shim's files and `/proc` say about a container;
//! * `kill`, `stop` (and `wait_exit`), `wait`, `pause`/`unpause`, `remove`, `cleanup`;
//! * `exec`, `attach` (and `resize`), `logs` (and `pids`), `stats`, `copy` (`docker cp`'s helper);
//! * `networks` (`network connect`/`disconnect`) and `hosts` (the /etc/hosts files);
//! * `after_exit`: what the shim runs once its container ended (`--rm`, restart policy);
//! * `signal`: signal names (`SIGTERM`, `term`, `15`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use berth_events::{Action, Events, Kind};

use berth_images::ImageService;
use berth_net::NetworkManager;

use crate::record::*;
use crate::volumes::VolumeService;
use crate::ContainerError;

mod after_exit;
mod attach;
mod cleanup;
mod copy;
mod create;
mod diff;
mod exec;
mod hosts;
mod kill;
mod list;
mod logs;
mod networks;
mod pause;
mod remove;
mod signal;
mod start;
mod stats;
mod status;
mod stop;
mod wait;

pub use copy::{copy_helper, resolve_stopped, CopyTarget, StoppedRoot, COPY_NOT_FOUND};
pub use diff::{Change, ChangeKind};
pub use exec::{wait_for, ExecOptions};
pub use list::ContainerSummary;
pub use signal::signal_number;
pub(crate) use start::ShimPorts;
pub use stats::StatsSample;
pub use wait::{WaitCondition, Waiter};

/// An exit (code, finish time) held back while its container's start is announced.
type HeldExit = (i32, String);

#[derive(Clone)]
pub struct ContainerService {
    images: ImageService,
    root: PathBuf,
    shim_exe: PathBuf,
    net: NetworkManager,
    volumes: VolumeService,
    events: Events,
    /// Exits already announced as `die` (container ID, finish time): a wait, a stop and
    /// the exit watcher may all see one exit.
    announced: Arc<Mutex<HashSet<(String, String)>>>,
    /// Containers being started here, with an exit seen meanwhile: a run that ends before
    /// `start` returns has its `die` held back until `start` is announced.
    starting: Arc<Mutex<HashMap<String, Option<HeldExit>>>>,
    /// Clients reading a container's output now (attach sessions), by container ID: a
    /// `--rm` removal waits for them, so output printed just before the exit is not lost.
    readers: Arc<Mutex<HashMap<String, usize>>>,
    /// Wakes this engine's waits (`wait`, the exit watcher) on every change it makes: each
    /// change is an event, so [`Self::emit`] wakes them.
    changes: berth_host::watch::Wakeups,
    /// Where published ports are forwarded from, besides this host (a machine's host side).
    host_ports: Option<Arc<dyn HostPorts>>,
}

/// Publishes ports on another host too: a machine's guest engine asks its host to bind
/// the same address and port and relay to it. `publish` is synchronous, so a port taken on
/// the host fails the start (and nothing is left bound).
pub trait HostPorts: Send + Sync {
    /// Binds `ports` of container `id` on the host, all or none; `Err` is one sentence.
    /// Ports it holds for `id` already are kept as they are.
    fn publish(&self, id: &str, ports: &[berth_net::PortSpec]) -> Result<(), String>;
    /// Releases what `publish` bound and `watch` watched for `id` (its run ended, or it
    /// was removed).
    fn release(&self, id: &str);
    /// Asks that host to tell of changes it makes to the files below `dirs` (container
    /// `id`'s bind sources, shared from it): a file system shared from another host
    /// raises no inotify events here by itself. Best effort, released with `release`.
    /// Folders it watches for `id` already are kept as they are.
    fn watch(&self, _id: &str, _dirs: &[std::path::PathBuf]) {}
    /// The address at which containers reach that host (`host.docker.internal`), when it is
    /// not the gateway of their network.
    fn host_address(&self) -> Option<std::net::IpAddr> {
        None
    }
}

impl std::fmt::Debug for dyn HostPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HostPorts")
    }
}

/// Held while a client reads a container's output (see [`ContainerService::hold_output`]).
pub struct OutputHold {
    readers: Arc<Mutex<HashMap<String, usize>>>,
    id: String,
}

impl Drop for OutputHold {
    fn drop(&mut self) {
        if let Ok(mut r) = self.readers.lock() {
            if let Some(n) = r.get_mut(&self.id) {
                *n -= 1;
                if *n == 0 {
                    r.remove(&self.id);
                }
            }
        }
    }
}

/// For a directory name under `containers/`: `None` for a container's own directory,
/// `Some(true)` for the leftover of a create or removal that was cut short, `Some(false)`
/// for a create still in progress (its process lives).
pub(crate) fn unfinished_dir(name: &str) -> Option<bool> {
    if name.starts_with(".removing-") {
        return Some(true);
    }
    let rest = name.strip_prefix(".new-")?;
    let pid = rest.split('-').next().and_then(|p| p.parse::<i32>().ok());
    Some(!pid.is_some_and(berth_host::process::alive))
}

pub(crate) fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

impl ContainerService {
    /// `shim_exe` is the binary whose hidden `__shim --root ROOT DIR` subcommand runs a
    /// container's supervisor, [`crate::supervise`] (the `berth` binary itself).
    pub fn new(images: ImageService, shim_exe: PathBuf) -> Result<ContainerService, ContainerError> {
        let root = images.store().root().to_path_buf();
        std::fs::create_dir_all(root.join("containers")).map_err(ContainerError::io(format!(
            "cannot create {}",
            root.join("containers").display()
        )))?;
        let run_dir = run_dir()?;
        // Bridges, addresses and NAT rules are the machine's, not one store's: every store
        // on this machine shares one network state, so two stores never hand out one IP.
        let net = NetworkManager::new(&network_state_dir(), &run_dir.join("netns"))?;
        let svc = ContainerService {
            volumes: VolumeService::new(&root),
            images,
            root,
            shim_exe,
            net,
            events: Events::none(),
            announced: Arc::default(),
            starting: Arc::default(),
            readers: Arc::default(),
            changes: Default::default(),
            host_ports: None,
        };
        svc.sweep_unfinished();
        Ok(svc)
    }

    /// Removes what creates and removals that were cut short left: `.new-<pid>-<id>`
    /// directories whose process is gone, and every `.removing-<id>` directory.
    fn sweep_unfinished(&self) {
        let Ok(rd) = std::fs::read_dir(self.root.join("containers")) else {
            return;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if unfinished_dir(&name) == Some(true) {
                let _ = berth_runtime::rootfs::unmount(&e.path().join("rootfs"));
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }

    /// Emits this service's events (create, start, die, …) on `events`; without, they
    /// are dropped (a shim's service).
    /// Forwards published ports from another host too (see [`HostPorts`]).
    pub fn with_host_ports(mut self, host_ports: Option<Arc<dyn HostPorts>>) -> Self {
        self.host_ports = host_ports;
        self
    }

    /// Releases a container's ports on the other host, if any were published there.
    pub(crate) fn release_host_ports(&self, id: &str) {
        if let Some(h) = &self.host_ports {
            h.release(id);
        }
    }

    pub fn with_events(mut self, events: Events) -> Self {
        self.volumes = self.volumes.with_events(events.clone());
        self.events = events;
        self
    }

    pub fn events(&self) -> &Events {
        &self.events
    }

    /// A container event with docker's attributes: the image, the name and the labels.
    pub fn emit(&self, action: Action, rec: &ContainerRecord) {
        let mut attrs: BTreeMap<String, String> = rec.config.labels.clone();
        attrs.insert("image".into(), rec.image.clone());
        attrs.insert("name".into(), rec.name.clone());
        self.events.emit(Kind::Container, action, &rec.id, attrs);
        self.changes.wake_all();
    }

    /// Emits `die` for one exit of a container, once, whoever saw it first (and after its
    /// `start`).
    pub fn announce_exit(&self, rec: &ContainerRecord, code: i32, finished_at: &str) {
        self.release_host_ports(&rec.id);
        if let Ok(mut starting) = self.starting.lock() {
            if let Some(held) = starting.get_mut(&rec.id) {
                *held = Some((code, finished_at.to_string()));
                return;
            }
        }
        let fresh = self
            .announced
            .lock()
            .map(|mut a| {
                if a.len() > 10_000 {
                    a.clear();
                }
                a.insert((rec.id.clone(), finished_at.to_string()))
            })
            .unwrap_or(true);
        if fresh {
            self.emit(Action::Die { exit_code: code }, rec);
        }
    }

    /// Wakes this engine's waits and its exit watcher to look again.
    pub fn wake_waiters(&self) {
        self.changes.wake_all();
    }

    /// Marks that a client reads the container's output until the hold is dropped.
    pub fn hold_output(&self, id: &str) -> OutputHold {
        if let Ok(mut r) = self.readers.lock() {
            *r.entry(id.to_string()).or_default() += 1;
        }
        OutputHold {
            readers: self.readers.clone(),
            id: id.to_string(),
        }
    }

    /// Whether a client still reads the container's output.
    pub(crate) fn output_read(&self, id: &str) -> bool {
        self.readers.lock().map(|r| r.contains_key(id)).unwrap_or(false)
    }

    /// Marks a start in progress: in memory (for the held-back `die`) and on disk, so a
    /// `cleanup` in any process (a `ps`, `/info`, the desktop's refresh) leaves the
    /// half-made run alone.
    pub(crate) fn begin_start(&self, id: &str) {
        if let Ok(mut s) = self.starting.lock() {
            s.insert(id.to_string(), None);
        }
        let _ = std::fs::write(self.paths(id).starting(), std::process::id().to_string());
    }

    /// Whether a live process is starting this container now and the run it starts has
    /// not ended yet (once the shim recorded the exit, the run is over and may be released
    /// even before `start` returns: `run -d busybox true`).
    pub(crate) fn being_started(&self, id: &str) -> bool {
        if self.paths(id).shim().join("exit.json").exists() {
            return false;
        }
        std::fs::read_to_string(self.paths(id).starting())
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
            .is_some_and(berth_host::process::alive)
    }

    /// Ends a start: `start` if it started, then the `die` held back meanwhile.
    pub(crate) fn end_start(&self, rec: &ContainerRecord, started: bool) {
        let _ = std::fs::remove_file(self.paths(&rec.id).starting());
        let held = self
            .starting
            .lock()
            .ok()
            .and_then(|mut s| s.remove(&rec.id))
            .flatten();
        if started {
            self.emit(Action::Start, rec);
        }
        if let Some((code, finished_at)) = held {
            self.announce_exit(rec, code, &finished_at);
        }
    }

    /// Announces the container's exit if it has exited.
    pub(crate) fn announce_if_exited(&self, rec: &ContainerRecord) {
        if let Status::Exited {
            code, finished_at, ..
        } = self.status(rec)
        {
            self.announce_exit(rec, code, &finished_at);
        }
    }

    /// The store root this service's containers live under.
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn images(&self) -> &ImageService {
        &self.images
    }

    pub fn volumes(&self) -> &VolumeService {
        &self.volumes
    }

    pub fn network(&self) -> &NetworkManager {
        &self.net
    }

    pub fn paths(&self, id: &str) -> ContainerPaths {
        ContainerPaths::new(&self.root, id)
    }

    // ------------------------------------------------------------------ records

    fn lock(&self) -> Result<std::fs::File, ContainerError> {
        let path = self.root.join("containers").join(".lock");
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(ContainerError::io(format!("cannot open {}", path.display())))?;
        rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| ContainerError::io("cannot lock the container list")(e.into()))?;
        Ok(f)
    }

    fn save(&self, rec: &ContainerRecord) -> Result<(), ContainerError> {
        self.save_in(&self.paths(&rec.id), rec)
    }

    fn save_in(&self, p: &ContainerPaths, rec: &ContainerRecord) -> Result<(), ContainerError> {
        // Durable, not only atomic: a machine's guest can lose power (its VMM killed), and
        // ext4 may then keep a renamed file that was never synced as empty.
        let tmp = p.dir.join("config.json.tmp");
        let write = || -> std::io::Result<()> {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&serde_json::to_vec_pretty(rec).expect("serializable"))?;
            f.sync_all()?;
            std::fs::rename(&tmp, p.config())?;
            std::fs::File::open(&p.dir)?.sync_all()
        };
        write().map_err(ContainerError::io(format!("cannot save container {}", rec.name)))
    }

    pub fn records(&self) -> Result<Vec<ContainerRecord>, ContainerError> {
        let mut out = Vec::new();
        let dir = self.root.join("containers");
        let rd =
            std::fs::read_dir(&dir).map_err(ContainerError::io(format!("cannot read {}", dir.display())))?;
        for e in rd.flatten() {
            // `.new-…` and `.removing-…` are creates and removals under way, not containers.
            if e.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            if let Some(rec) = read_record(&e.path()) {
                out.push(rec);
            }
        }
        out.sort_by(|a, b| b.created.cmp(&a.created));
        Ok(out)
    }

    /// Finds a container by full or partial ID, or by name (docker's order).
    pub fn find(&self, name_or_id: &str) -> Result<ContainerRecord, ContainerError> {
        let key = name_or_id.trim_start_matches('/');
        let all = self.records()?;
        if let Some(r) = all.iter().find(|r| r.id == key || r.name == key) {
            return Ok(r.clone());
        }
        let by_prefix: Vec<&ContainerRecord> = all
            .iter()
            .filter(|r| !key.is_empty() && r.id.starts_with(key))
            .collect();
        match by_prefix.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(ContainerError::NotFound(name_or_id.to_string())),
            _ => Err(ContainerError::InvalidArgument(format!(
                "'{name_or_id}' matches several containers — give more of the ID or the name"
            ))),
        }
    }

    pub fn log_path(&self, rec: &ContainerRecord) -> PathBuf {
        self.paths(&rec.id).log()
    }

    pub fn labels(rec: &ContainerRecord) -> &BTreeMap<String, String> {
        &rec.config.labels
    }
}

/// The user's runtime directory (`/run/berth` for root; see `berth_host::places`), made
/// and checked like the sockets' (it is the same directory). Machine-wide like the network
/// state: container IDs are random, so stores never collide here.
fn run_dir() -> Result<PathBuf, ContainerError> {
    Ok(berth_host::places::ensure_runtime_dir()?)
}

/// Machine-wide network state: `/var/lib/berth/network` as root, else under the user's
/// data directory.
fn network_state_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("BERTH_NETWORK_STATE") {
        return PathBuf::from(dir);
    }
    if berth_host::privilege::host_root() {
        PathBuf::from("/var/lib/berth/network")
    } else {
        std::env::var_os("XDG_DATA_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
            .unwrap_or_else(std::env::temp_dir)
            .join("berth/network")
    }
}

/// The record in a container's directory; for one that cannot be read (cut short, not
/// JSON, missing), a stand-in that lists the container as dead ([`ContainerRecord::broken`]),
/// so one damaged record never hides the others or blocks the engine. Directories whose
/// name is not a container ID are not containers.
fn read_record(dir: &Path) -> Option<ContainerRecord> {
    let id = dir.file_name()?.to_str()?;
    if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) || !dir.is_dir() {
        return None;
    }
    let bytes = match std::fs::read(dir.join("config.json")) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Some(ContainerRecord::broken(id, b"", "its record is missing"));
        }
        Err(e) => {
            let why = format!("its record cannot be read ({e})");
            return Some(ContainerRecord::broken(id, b"", &why));
        }
    };
    match serde_json::from_slice::<ContainerRecord>(&bytes) {
        Ok(rec) => Some(rec),
        Err(e) => {
            let why = format!("its record is damaged ({e})");
            Some(ContainerRecord::broken(id, &bytes, &why))
        }
    }
}

/// Names the points at which a test can make an operation fail, as a refused step would:
/// the steps of a start, in order `cgroup`, `rootfs`, `volumes`, `network`, `ports`, `shim`
/// (just before it runs), and `release` (a run's clean-up, after its steps were tried).
/// `BERTH_FAIL_AT=network` fails every start just after its network is set up.
const FAIL_AT_ENV: &str = "BERTH_FAIL_AT";

/// Fails here when [`FAIL_AT_ENV`] names `point` (tests of what a failure leaves).
fn fail_point(point: &str) -> Result<(), ContainerError> {
    match std::env::var_os(FAIL_AT_ENV) {
        Some(v) if v == point => Err(ContainerError::InvalidArgument(format!(
            "failed at step {point} because {FAIL_AT_ENV} asked for it — unset {FAIL_AT_ENV}"
        ))),
        _ => Ok(()),
    }
}

fn random_id() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

fn now_nanos() -> String {
    let t = time::OffsetDateTime::now_utc();
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:9]Z"
    );
    t.format(&fmt).unwrap_or_default()
}
