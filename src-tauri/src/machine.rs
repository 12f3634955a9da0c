//! Berth's virtual machine as the window sees it: its state, start and stop, and its CPUs,
//! memory and disk applied with a restart. The VM itself is managed through `berth-machine`
//! directly, as the CLI's `berth machine` does (it is not an engine request); the engine
//! inside it is reached like any other, through the Engine API on the machine's socket
//! (`engine.rs`). Long steps run on a blocking thread while a ticker tells the window how
//! far they are (`machine-status` events, each the whole [`MachineStatus`]).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth_machine::{
    Accel, InitOptions, MachineError, Machines, SetOptions, StartOptions, State, DEFAULT_NAME,
};
use tauri::{AppHandle, Emitter, Manager};

use crate::dto::{MachinePhase, MachineStatus};
use crate::error::{ErrorAction, ErrorKind, UserError};
use crate::state::AppState;

/// The Tauri event every status change is emitted as.
pub const MACHINE_STATUS: &str = "machine-status";

/// How much of the console's end the status carries.
const CONSOLE_TAIL: usize = 6000;

/// The window's one machine: `$BERTH_MACHINE`, else "default", in berth-machine's
/// directory (`$BERTH_MACHINE_DIR`, …) — the one `berth machine` commands mean too.
pub struct MachineControl {
    machines: Machines,
    name: String,
    job: std::sync::Mutex<Job>,
}

#[derive(Default)]
struct Job {
    busy: Option<Busy>,
    /// Why the last start, stop or apply failed (cleared by the next one).
    error: Option<UserError>,
    warnings: Vec<String>,
}

struct Busy {
    phase: MachinePhase,
    since: Instant,
    step: String,
}

impl Default for MachineControl {
    fn default() -> MachineControl {
        let name = std::env::var("BERTH_MACHINE")
            .ok()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_NAME.to_string());
        MachineControl {
            machines: Machines::default_dir(),
            name,
            job: std::sync::Mutex::new(Job::default()),
        }
    }
}

/// A machine error as the window says it: one sentence, and what to do next.
pub fn user_error(e: MachineError) -> UserError {
    let details = e.to_string();
    let (kind, message, next) = match &e {
        MachineError::NoGuest(looked) => (
            ErrorKind::MachineNoGuest,
            format!("Berth's virtual machine has no guest image (looked in {looked})."),
            "Build it with `bash scripts/build-guest.sh`, set BERTH_GUEST to the directory it prints (or reinstall Berth), then press Retry.".to_string(),
        ),
        MachineError::NoQemu(_) => (
            ErrorKind::MachineFailed,
            "QEMU is not installed, so Berth's virtual machine cannot run.".to_string(),
            "Install QEMU (Debian: apt-get install qemu-system-x86), then press Retry.".to_string(),
        ),
        MachineError::Boot { why, .. } => (
            ErrorKind::MachineFailed,
            format!("The virtual machine did not start: {why}."),
            "Read its console log below, then press Retry.".to_string(),
        ),
        MachineError::BadSetting { .. } => (
            ErrorKind::InvalidInput,
            format!("{}.", e.to_string().trim_end_matches('.')),
            "Change the value and press Apply again.".to_string(),
        ),
        _ => (
            ErrorKind::MachineFailed,
            format!("{}.", e.to_string().trim_end_matches('.')),
            "Press Retry; if it fails again, read the console log below.".to_string(),
        ),
    };
    UserError::new(kind, message, next).with_details(details)
}

fn busy_error(phase: MachinePhase) -> UserError {
    UserError::new(
        ErrorKind::Conflict,
        format!("The virtual machine is busy ({}).", phase_word(phase)),
        "Wait until it has finished, then try again.",
    )
}

fn phase_word(phase: MachinePhase) -> &'static str {
    match phase {
        MachinePhase::Missing => "not created",
        MachinePhase::Stopped => "stopped",
        MachinePhase::Starting => "starting",
        MachinePhase::Running => "running",
        MachinePhase::Stopping => "stopping",
        MachinePhase::Applying => "applying its settings",
        MachinePhase::Failed => "failed",
    }
}

/// The last `max` bytes of `path`, from a line start, printable.
fn tail(path: &Path, max: usize) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = f.seek(SeekFrom::End(0)).unwrap_or(0);
    let from = len.saturating_sub(max as u64);
    let _ = f.seek(SeekFrom::Start(from));
    let mut buf = Vec::new();
    let _ = f.take(max as u64).read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let text = if from > 0 {
        text.split_once('\n').map_or(&*text, |(_, rest)| rest)
    } else {
        &text
    };
    printable(text)
}

/// `text` without terminal escapes (the firmware clears the screen, the guest colours its
/// log) and other control characters, keeping lines and tabs.
fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // CSI: ESC [ parameters… final byte (@ to ~); else ESC and one character.
            if chars.next_if_eq(&'[').is_some() {
                for p in chars.by_ref() {
                    if ('@'..='~').contains(&p) {
                        break;
                    }
                }
            } else {
                chars.next();
            }
        } else if c == '\n' || c == '\t' || !c.is_control() {
            out.push(c);
        }
    }
    out
}

/// The `berth` binary: its `machine __relay` serves the machine's socket.
fn relay_exe() -> Result<PathBuf, UserError> {
    crate::engine::berth_binary().ok_or_else(|| {
        UserError::new(
            ErrorKind::MachineFailed,
            "Berth's virtual machine needs the `berth` command, which was not found.",
            "Install the berth package (or set BERTH_BIN to the berth binary), then press Retry.",
        )
    })
}

fn start_options() -> Result<StartOptions, UserError> {
    let accel = match std::env::var("BERTH_MACHINE_ACCEL") {
        Ok(v) if !v.is_empty() => Some(Accel::parse(&v).ok_or_else(|| {
            UserError::invalid(
                format!("BERTH_MACHINE_ACCEL={v} is not an accelerator."),
                "Set it to kvm, hvf, whpx or tcg (or unset it), then restart Berth.",
            )
        })?),
        _ => None,
    };
    Ok(StartOptions {
        relay_exe: relay_exe()?,
        accel,
        boot_limit: None,
    })
}

impl MachineControl {
    pub fn socket(&self) -> PathBuf {
        self.machines.paths(&self.name).api()
    }

    /// Whether the machine's engine is up (QEMU and its relay), whatever the window does.
    pub fn running(&self) -> bool {
        self.machines.state(&self.name) == State::Running
    }

    /// Whether the window may connect to the machine's engine: it runs, and is not being
    /// stopped (a connection held open — the event feed — keeps the guest's engine from
    /// ending, and its power-off waits for it).
    pub fn serving(&self) -> bool {
        let stopping = self
            .job()
            .busy
            .as_ref()
            .is_some_and(|b| matches!(b.phase, MachinePhase::Stopping | MachinePhase::Applying));
        !stopping && self.running()
    }

    fn job(&self) -> std::sync::MutexGuard<'_, Job> {
        self.job.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn status(&self) -> MachineStatus {
        let paths = self.machines.paths(&self.name);
        let job = self.job();
        let inspect = self.machines.inspect(&self.name);
        let (mut phase, cpus, memory, disk, accelerator) = match &inspect {
            Ok(i) => (
                match i.state {
                    State::Running => MachinePhase::Running,
                    State::Stopped | State::Unreachable => MachinePhase::Stopped,
                },
                i.cpus,
                i.memory,
                i.disk_size,
                i.accelerator.clone(),
            ),
            Err(_) => (
                MachinePhase::Missing,
                berth_machine::MachineConfig::DEFAULT_CPUS,
                berth_machine::MachineConfig::DEFAULT_MEMORY,
                berth_machine::MachineConfig::DEFAULT_DISK,
                String::new(),
            ),
        };
        let mut step = match &inspect {
            Ok(i) if i.state == State::Unreachable => {
                "Its VM runs without a relay: Start connects to it again.".to_string()
            }
            _ => String::new(),
        };
        let mut elapsed = 0;
        if let Some(b) = &job.busy {
            phase = b.phase;
            step = b.step.clone();
            elapsed = b.since.elapsed().as_secs() as u32;
        } else if job.error.is_some() && phase != MachinePhase::Running {
            phase = MachinePhase::Failed;
        }
        MachineStatus {
            name: self.name.clone(),
            phase,
            step,
            elapsed_secs: elapsed,
            cpus,
            memory_mib: u32::try_from(memory).unwrap_or(u32::MAX),
            disk_gib: u32::try_from(disk).unwrap_or(u32::MAX),
            socket: paths.api().display().to_string(),
            accelerator,
            console_tail: tail(&paths.console(), CONSOLE_TAIL),
            warnings: job.warnings.clone(),
            error: job.error.clone(),
        }
    }

    /// The whole console log (`berth machine logs`).
    pub fn console_log(&self) -> String {
        tail(&self.machines.paths(&self.name).console(), 4 << 20)
    }

    fn begin(&self, phase: MachinePhase, step: &str) -> Result<(), UserError> {
        let mut job = self.job();
        if let Some(b) = &job.busy {
            return Err(busy_error(b.phase));
        }
        job.busy = Some(Busy {
            phase,
            since: Instant::now(),
            step: step.to_string(),
        });
        job.error = None;
        job.warnings.clear();
        Ok(())
    }

    fn step(&self, step: &str) {
        if let Some(b) = self.job().busy.as_mut() {
            b.step = step.to_string();
        }
    }

    fn end(&self, result: Result<Vec<String>, UserError>) {
        let mut job = self.job();
        job.busy = None;
        match result {
            Ok(warnings) => job.warnings = warnings,
            Err(e) => job.error = Some(e),
        }
    }

    /// Creates the machine if it does not exist (the payload found as the CLI finds it:
    /// `$BERTH_GUEST`, else beside the berth binary), with `init`'s values or the defaults.
    fn ensure(&self, init: InitOptions) -> Result<(), UserError> {
        match self.machines.load(&self.name) {
            Ok(_) => Ok(()),
            Err(MachineError::NoSuchMachine(_)) => {
                self.step("Creating the virtual machine");
                let env = std::env::var_os("BERTH_GUEST")
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from);
                let guest = berth_machine::find_guest(&relay_exe()?, env.as_deref()).map_err(user_error)?;
                self.machines
                    .init(&self.name, &init, guest)
                    .map(|_| ())
                    .map_err(user_error)
            }
            Err(e) => Err(user_error(e)),
        }
    }

    fn boot(&self) -> Result<Vec<String>, UserError> {
        if self.running() {
            return Ok(Vec::new());
        }
        let opts = start_options()?;
        self.step("Booting the virtual machine");
        let started = self.machines.start(&self.name, &opts).map_err(user_error)?;
        Ok(started.warnings)
    }

    fn start_blocking(&self) -> Result<Vec<String>, UserError> {
        self.ensure(InitOptions::default())?;
        self.boot()
    }

    fn stop_blocking(&self) -> Result<Vec<String>, UserError> {
        if self.machines.load(&self.name).is_err() {
            return Ok(Vec::new());
        }
        self.step("Stopping the virtual machine");
        self.machines
            .stop(&self.name, Duration::from_secs(30))
            .map_err(user_error)?;
        Ok(Vec::new())
    }

    /// Stop, set, start again — only what was running is started again; a missing
    /// machine is created with the values (for its first start).
    fn apply_blocking(&self, opts: SetOptions) -> Result<Vec<String>, UserError> {
        let created = self.machines.load(&self.name).is_err();
        self.ensure(InitOptions {
            cpus: opts.cpus,
            memory: opts.memory,
            disk_size: opts.disk_size,
            guest: None,
        })?;
        if created {
            return Ok(Vec::new());
        }
        // Refused values are refused before the machine is stopped, and unchanged ones
        // restart nothing.
        let new = self
            .machines
            .settings_after(&self.name, &opts)
            .map_err(user_error)?;
        if self.machines.load(&self.name).ok().as_ref() == Some(&new) {
            return Ok(Vec::new());
        }
        let was_running = self.machines.state(&self.name) != State::Stopped;
        if was_running {
            self.stop_blocking()?;
        }
        self.step("Changing its settings");
        self.machines.set(&self.name, &opts).map_err(user_error)?;
        if was_running {
            self.step("Starting it again");
            return self.boot();
        }
        Ok(Vec::new())
    }
}

/// What the window asked the machine to do.
#[derive(Debug, Clone, Copy)]
pub enum Action {
    Start,
    Stop,
    Apply(SetOptions),
}

/// Tell the window the machine's status now.
pub fn emit_status(app: &AppHandle) {
    let status = app.state::<AppState>().machine.status();
    let _ = app.emit(MACHINE_STATUS, status);
}

/// Runs `action` in the background: the status is emitted at once, every second while it
/// runs, and when it ends; the window's engine connection is made again afterwards (the
/// machine's socket came or went).
pub fn spawn(app: AppHandle, action: Action) -> Result<(), UserError> {
    let state = app.state::<AppState>();
    let (phase, step) = match action {
        Action::Start => (MachinePhase::Starting, "Starting the virtual machine"),
        Action::Stop => (MachinePhase::Stopping, "Stopping the virtual machine"),
        Action::Apply(_) => (MachinePhase::Applying, "Applying the settings"),
    };
    state.machine.begin(phase, step)?;
    emit_status(&app);
    tauri::async_runtime::spawn(async move {
        if !matches!(action, Action::Start) {
            // Close the window's connections (the event feed's stream) before the guest is
            // asked to power off; `serving` keeps new ones away until the end.
            app.state::<AppState>().reconnect().await;
        }
        let worker = app.clone();
        let mut work = tokio::task::spawn_blocking(move || {
            let control = &worker.state::<AppState>().machine;
            match action {
                Action::Start => control.start_blocking(),
                Action::Stop => control.stop_blocking(),
                Action::Apply(opts) => control.apply_blocking(opts),
            }
        });
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let result = loop {
            tokio::select! {
                r = &mut work => break r.unwrap_or_else(|e| Err(UserError::new(
                    ErrorKind::MachineFailed,
                    "The virtual machine's task ended unexpectedly.",
                    "Press Retry.",
                ).with_details(e.to_string()))),
                _ = tick.tick() => emit_status(&app),
            }
        };
        let state = app.state::<AppState>();
        state.machine.end(result);
        state.reconnect().await;
        emit_status(&app);
    });
    Ok(())
}

/// The sentence for a window whose chosen engine is the machine, while it is not running.
pub fn not_running() -> UserError {
    let mut e = UserError::new(
        ErrorKind::EngineUnreachable,
        "Berth's virtual machine is not running.",
        "Start it in Settings → Engine.",
    );
    e.action = Some(ErrorAction::OpenSettings);
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_guest_says_how_to_get_one_in_one_sentence() {
        let e = user_error(MachineError::NoGuest("/nowhere".into()));
        assert_eq!(e.kind, ErrorKind::MachineNoGuest);
        assert_eq!(
            e.message,
            "Berth's virtual machine has no guest image (looked in /nowhere)."
        );
        assert!(e.next_step.contains("scripts/build-guest.sh"), "{}", e.next_step);
        let e = user_error(MachineError::RunningSet("default".into()));
        assert_eq!(
            e.message,
            "machine 'default' is running: stop it first: berth machine stop default."
        );
    }

    #[test]
    fn the_console_tail_starts_at_a_line_and_drops_control_bytes() {
        let t = tempfile::tempdir().unwrap();
        let log = t.path().join("console.log");
        std::fs::write(&log, "first line\nsecond\x1b[0m line\r\nthird\n").unwrap();
        assert_eq!(tail(&log, 1000), "first line\nsecond line\nthird\n");
        assert_eq!(printable("\x1bc\x1b[?7l\x1b[2J\x1b[0mSeaBIOS"), "SeaBIOS");
        assert_eq!(tail(&log, 8), "third\n");
        assert_eq!(tail(&t.path().join("none"), 100), "");
    }
}
