//! The typed shapes that cross the Tauri bridge. TypeScript twins are generated from these
//! by ts-rs into `ui/src/generated/` (`npm run gen` in ui/), so nothing is written twice.
//!
//! Byte counts and timestamps are `f64`: they travel as JSON numbers and JavaScript has no
//! 64-bit integers short of `bigint`, which the UI would only have to convert back.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::error::UserError;

/// Which kind of endpoint the window talks to.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, TS, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
#[ts(export)]
pub enum EndpointKind {
    /// Berth's engine started inside this app on a private socket.
    Embedded,
    /// A `berth daemon` already running on its default socket.
    Daemon,
    /// Whatever `BERTH_HOST` / `DOCKER_HOST` or the settings point at (podman, docker…).
    External,
    /// Berth's engine inside its virtual machine, on the machine's socket.
    Machine,
}

#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct EngineStatus {
    pub connected: bool,
    pub kind: Option<EndpointKind>,
    pub endpoint: String,
    pub engine: String,
    pub version: String,
    pub containers: u32,
    pub running: u32,
    pub images: u32,
    pub error: Option<UserError>,
    /// The engine Settings → Engine chose (used when no endpoint is set).
    pub choice: crate::settings::EngineChoice,
    /// The engine runs as an ordinary user, in the user's own namespaces (its `info`
    /// lists `name=rootless` under security options, as docker's rootless mode does).
    pub rootless: bool,
}

/// Where Berth's virtual machine is.
#[derive(Debug, Clone, Copy, Serialize, TS, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum MachinePhase {
    /// Not created yet: Start creates it.
    Missing,
    Stopped,
    Starting,
    Running,
    Stopping,
    /// Stopping, changing its settings and starting again.
    Applying,
    /// The last start, stop or apply failed (`error` says why).
    Failed,
}

/// Settings → Engine's view of the machine (`machine-status` events carry it too).
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct MachineStatus {
    pub name: String,
    pub phase: MachinePhase,
    /// What a busy phase is doing now ("Booting the virtual machine").
    pub step: String,
    /// Seconds the busy phase has run.
    pub elapsed_secs: u32,
    pub cpus: u32,
    pub memory_mib: u32,
    pub disk_gib: u32,
    /// The machine's Engine API socket on this computer.
    pub socket: String,
    /// The accelerator of the last start ("" if never started).
    pub accelerator: String,
    /// The end of its console log (`berth machine logs`).
    pub console_tail: String,
    /// Sentences from the last start (no hardware virtualization…).
    pub warnings: Vec<String>,
    pub error: Option<UserError>,
}

/// One repository the Pull wizard's search found.
#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[ts(export)]
pub struct SearchHit {
    /// What to pull (`python`, `127.0.0.1:5000/demo/app`).
    pub name: String,
    pub description: String,
    pub stars: u32,
    pub official: bool,
}

/// Settings → The docker command: what `docker` is on this computer.
#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[ts(export)]
pub struct DockerCommand {
    /// "absent" (Berth can be docker), "berth" (it is), "other" (another program is).
    pub state: String,
    /// The `docker` found, or where Berth's would go.
    pub path: String,
    /// Whether that folder is on the PATH the app was started with.
    pub on_path: bool,
}

/// Settings → Registries: what `ROOT/daemon.json` holds for Berth's engine.
#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[ts(export)]
pub struct RegistrySettings {
    /// docker.io mirrors (`registry-mirrors`), tried in order before Docker Hub.
    pub mirrors: Vec<String>,
    /// Registries allowed over plain HTTP or unverified HTTPS (`insecure-registries`).
    pub insecure_registries: Vec<String>,
    /// The daemon.json they are kept in.
    pub path: String,
    /// False when the window uses another engine (podman, docker), which has its own.
    pub applies: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[ts(export)]
pub struct PortRow {
    pub private_port: u16,
    pub public_port: Option<u16>,
    pub ip: String,
    pub protocol: String,
}

#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct ContainerRow {
    pub id: String,
    pub name: String,
    pub image: String,
    /// docker's state word: created, running, paused, exited…
    pub state: String,
    /// docker's human status: "Up 3 minutes", "Exited (0) 2 hours ago".
    pub status: String,
    /// Seconds since the epoch.
    pub created: f64,
    pub ports: Vec<PortRow>,
    pub command: String,
}

#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct ImageRow {
    pub id: String,
    pub repository: String,
    pub tag: String,
    pub size: f64,
    /// Seconds since the epoch.
    pub created: f64,
    pub containers: f64,
}

/// What the Run wizard pre-fills from an image.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct ImageDetail {
    pub id: String,
    pub tags: Vec<String>,
    /// "5000/tcp" style, from the image's EXPOSE.
    pub exposed_ports: Vec<String>,
    pub env: Vec<String>,
    pub cmd: Vec<String>,
    pub entrypoint: Vec<String>,
    pub volumes: Vec<String>,
}

#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct VolumeRow {
    pub name: String,
    pub driver: String,
    pub mountpoint: String,
    pub created_at: String,
    /// Names of the containers that mount it.
    pub used_by: Vec<String>,
    /// Bytes, when the engine reports usage (system df).
    pub size: Option<f64>,
}

#[derive(Debug, Clone, Serialize, TS, Default)]
#[ts(export)]
pub struct UsageRow {
    pub count: u32,
    pub active: u32,
    pub size: f64,
    pub reclaimable: f64,
}

#[derive(Debug, Clone, Serialize, TS, Default)]
#[ts(export)]
pub struct DiskUsage {
    pub images: UsageRow,
    pub containers: UsageRow,
    pub volumes: UsageRow,
    pub build_cache: UsageRow,
}

#[derive(Debug, Clone, Serialize, TS, Default)]
#[ts(export)]
pub struct PruneReport {
    pub containers_deleted: u32,
    pub images_deleted: u32,
    pub volumes_deleted: u32,
    pub space_reclaimed: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[ts(export)]
pub struct PortMapping {
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct RunRequest {
    pub image: String,
    pub name: String,
    pub ports: Vec<PortMapping>,
    /// KEY=value
    pub env: Vec<String>,
    /// "volume:/path" or "/host/dir:/path" like `docker run -v`.
    pub volumes: Vec<String>,
    /// Empty: the image's default command.
    pub command: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct BuildRequest {
    pub context_dir: String,
    /// Relative to the context; empty means `Dockerfile`.
    pub dockerfile: String,
    pub tag: String,
    pub build_args: Vec<KeyValue>,
}

/// One line of docker's JSON progress stream (pull, push), per layer.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct ProgressEvent {
    /// The operation id the UI chose when it started the operation.
    pub op: String,
    /// Layer id (short digest) or empty for whole-image lines.
    pub layer: String,
    pub status: String,
    pub current: Option<f64>,
    pub total: Option<f64>,
}

/// A line of build output.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct BuildLine {
    pub op: String,
    pub text: String,
}

/// The end of a long operation: success or one plain error.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct OperationDone {
    pub op: String,
    pub error: Option<UserError>,
    /// Image id for builds, container id for runs, when known.
    pub result: Option<String>,
}

#[derive(Debug, Clone, Serialize, TS, PartialEq)]
#[ts(export)]
pub struct LogLine {
    pub stderr: bool,
    /// RFC 3339 timestamp as the engine sent it.
    pub ts: String,
    pub text: String,
}

/// Log lines in bulk, column-wise: a million lines as a few hundred compact events instead
/// of a million JSON objects (which cost WebKit seconds to parse).
#[derive(Debug, Clone, Serialize, TS, Default, PartialEq)]
#[ts(export)]
pub struct LogBatch {
    pub op: String,
    /// The lines' text joined with '\n'.
    pub text: String,
    /// RFC 3339 timestamps as the engine sent them, joined with '\n' (same count).
    pub ts: String,
    /// One character per line: '1' stderr, '0' stdout.
    pub stderr: String,
    pub count: u32,
}

impl LogBatch {
    pub fn push(&mut self, line: &LogLine) {
        if self.count > 0 {
            self.text.push('\n');
            self.ts.push('\n');
        }
        // A line never contains '\n' (frames are split on it).
        self.text.push_str(&line.text);
        self.ts.push_str(&line.ts);
        self.stderr.push(if line.stderr { '1' } else { '0' });
        self.count += 1;
    }
}

#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct ExecOutput {
    pub session: String,
    /// Raw terminal bytes, base64 (they may split UTF-8 sequences).
    pub data: String,
}

#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct StatsSample {
    pub op: String,
    /// Seconds since the epoch.
    pub time: f64,
    pub cpu_percent: f64,
    pub memory_usage: f64,
    pub memory_limit: f64,
    pub pids: f64,
}

#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct LoginResult {
    pub registry: String,
    pub config_path: String,
}

/// One entry of a folder in a volume, as the file browser shows it.
#[derive(Debug, Clone, Serialize, TS, PartialEq)]
#[ts(export)]
pub struct VolumeEntry {
    pub name: String,
    /// "dir", "file", "symlink" or "other".
    pub kind: String,
    /// Bytes (0 for folders).
    pub size: f64,
    /// Seconds since the Unix epoch.
    pub modified: f64,
    /// Where a symlink points (empty otherwise).
    pub link_target: String,
}

/// A folder of a volume, one level deep.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct VolumeListing {
    pub volume: String,
    /// The folder inside the volume, "/" for its root.
    pub path: String,
    /// Folders first, then by name.
    pub entries: Vec<VolumeEntry>,
    /// The engine sent more than Berth reads for one listing; some entries are missing.
    pub truncated: bool,
}

/// The start of a file in a volume, for a preview.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct FilePreview {
    pub path: String,
    pub size: f64,
    /// The text, when the file is small and looks like text; None otherwise.
    pub text: Option<String>,
}

/// A compose project, as its containers' `com.docker.compose.*` labels describe it.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct ComposeProject {
    pub name: String,
    /// The folder its compose file is in (empty if its containers do not say).
    pub working_dir: String,
    /// Its compose files, as the labels name them.
    pub config_files: Vec<String>,
    pub running: u32,
    /// One per container, in service and replica order.
    pub services: Vec<ComposeService>,
}

/// One container of a compose project.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct ComposeService {
    pub service: String,
    /// The replica (`--scale`), from 1.
    pub number: u32,
    pub container: ContainerRow,
}

/// A folder with a compose file, before "Run this project".
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct ComposeFolder {
    pub folder: String,
    pub file: String,
    /// The project name Compose gives it (from the folder's name, or the file's `name:`).
    pub project: String,
    pub services: Vec<String>,
    /// The command line that does the same: `cd FOLDER && docker compose up -d`.
    pub command: String,
}

/// A log line of a compose project's container.
#[derive(Debug, Clone, Serialize, TS, PartialEq)]
#[ts(export)]
pub struct ComposeLogLine {
    pub service: String,
    pub container: String,
    /// RFC 3339, as the engine sent it.
    pub ts: String,
    pub text: String,
    pub stderr: bool,
}

/// Log lines of a project, interleaved by time.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct ComposeLogBatch {
    pub op: String,
    pub lines: Vec<ComposeLogLine>,
}
