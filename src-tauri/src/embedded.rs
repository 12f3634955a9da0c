//! Berth's engine inside this process: the Engine API server (`berth-api`) on the store
//! root's socket, used when no endpoint is configured and no `berth daemon` runs. The
//! window talks to it only through the Engine API, exactly as it would to a daemon. While a
//! `berth` command's own engine serves the root, the window uses that one, and this engine
//! takes the root over on the same socket when the command ends.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{ErrorAction, ErrorKind, UserError};

/// The socket a separately started `berth daemon` listens on.
pub fn daemon_socket() -> PathBuf {
    berth_api::default_socket()
}

/// Where the store lives: `BERTH_ROOT` like the CLI, else the CLI's default, so the CLI
/// and the window see the same images and containers.
pub fn store_root() -> PathBuf {
    std::env::var_os("BERTH_ROOT")
        .filter(|r| !r.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(berth_api::default_root)
}

pub struct EmbeddedEngine {
    socket: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    /// An ordinary user's engine: `berth daemon`, run as this app's child (see
    /// [`EmbeddedEngine::start`]).
    child: Option<std::process::Child>,
}

/// How long an ordinary user's engine may take to answer: its first start also starts the
/// user's keeper (namespaces, newuidmap) and pasta.
const ROOTLESS_START: Duration = Duration::from_secs(20);

impl EmbeddedEngine {
    pub async fn start() -> Result<EmbeddedEngine, UserError> {
        let shim_exe = crate::engine::berth_binary().ok_or_else(|| {
            UserError::new(
                ErrorKind::EngineUnreachable,
                "Berth's built-in engine needs the `berth` command, which was not found.",
                "Install the berth package (or set BERTH_BIN to the berth binary) and restart Berth.",
            )
        })?;
        let root = store_root();
        if berth_api::rootless() {
            return start_rootless(&shim_exe, &root).await;
        }
        let socket = berth_api::root_socket(&root);
        let opts = berth_api::ServerOptions {
            root,
            socket: None,
            tcp: None,
            shim_exe,
            insecure_registries: Vec::new(),
            registry_mirrors: Vec::new(),
            host_ports: None,
            host_paths: berth_api::HostPaths::Native,
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        // Waits for the root when another engine serves it; meanwhile its socket answers.
        let server = tokio::spawn(berth_api::serve(opts, shutdown));
        // The server opens the store and binds; wait for the socket or its error.
        for _ in 0..200 {
            if server.is_finished() {
                let detail = match server.await {
                    Ok(Ok(())) => "the engine stopped right after starting".to_string(),
                    Ok(Err(e)) => e.to_string(),
                    Err(e) => e.to_string(),
                };
                return Err(UserError::new(
                    ErrorKind::EngineUnreachable,
                    "Berth's built-in engine could not start.",
                    "Open the details; Berth usually needs to run as root (or under sudo) to run containers.",
                )
                .with_details(detail));
            }
            if tokio::net::UnixStream::connect(&socket).await.is_ok() {
                return Ok(EmbeddedEngine {
                    socket,
                    stop: Some(stop),
                    child: None,
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = stop.send(());
        Err(UserError::new(
            ErrorKind::EngineUnreachable,
            "Berth's built-in engine did not start within 10 seconds.",
            "Restart Berth; if it happens again, start `berth daemon` in a terminal to see why.",
        ))
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }
}

/// An ordinary user's engine runs as root inside the user's own user namespace, which only
/// a process with one thread can join (berth-rootless); this app has many. So the built-in
/// engine is then `berth daemon`, started as a child on the user's default socket, its
/// output in `desktop-engine.log` beside that socket.
async fn start_rootless(berth: &Path, root: &Path) -> Result<EmbeddedEngine, UserError> {
    let dir = berth_api::socket_dir();
    let log_path = dir.join("desktop-engine.log");
    let cannot = |detail: String| {
        UserError::new(
            ErrorKind::EngineUnreachable,
            "Berth's built-in engine could not start.",
            "Open the details; they end with what the engine said.",
        )
        .with_details(detail)
    };
    let log = std::fs::File::create(&log_path)
        .map_err(|e| cannot(format!("cannot write {}: {e}", log_path.display())))?;
    let err = log
        .try_clone()
        .map_err(|e| cannot(format!("cannot write {}: {e}", log_path.display())))?;
    let mut child = std::process::Command::new(berth)
        .arg("--root")
        .arg(root)
        .arg("daemon")
        .env_remove("BERTH_HOST")
        .env_remove("DOCKER_HOST")
        .stdin(std::process::Stdio::null())
        .stdout(log)
        .stderr(err)
        .spawn()
        .map_err(|e| cannot(format!("cannot run {} daemon: {e}", berth.display())))?;
    let socket = daemon_socket();
    let begun = std::time::Instant::now();
    while begun.elapsed() < ROOTLESS_START {
        if let Ok(Some(status)) = child.try_wait() {
            let said = std::fs::read_to_string(&log_path).unwrap_or_default();
            return Err(rootless_failed(&said).with_details(format!(
                "berth daemon ended ({status}); its log, {}:\n{said}",
                log_path.display()
            )));
        }
        if tokio::net::UnixStream::connect(&socket).await.is_ok() {
            return Ok(EmbeddedEngine {
                socket,
                stop: None,
                child: Some(child),
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop_child(&mut child);
    Err(UserError::new(
        ErrorKind::EngineUnreachable,
        format!(
            "Berth's built-in engine did not start within {} seconds.",
            ROOTLESS_START.as_secs()
        ),
        format!("Restart Berth; if it happens again, read {}.", log_path.display()),
    ))
}

/// What the window says when an ordinary user's engine ends at once: the engine's own
/// sentence (the last `Error: ` line of its output says what is missing and what root
/// runs to fix it), and the virtual machine offered instead.
pub fn rootless_failed(output: &str) -> UserError {
    let said = output
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("Error: "))
        .map(str::to_string);
    let mut e = match said {
        Some(sentence) => UserError::new(
            ErrorKind::EngineUnreachable,
            format!("Berth's built-in engine cannot run as you on this computer: {sentence}."),
            "Do that and restart Berth, or use the virtual machine instead.",
        ),
        None => UserError::new(
            ErrorKind::EngineUnreachable,
            "Berth's built-in engine could not start.",
            "Open the details for what it said, or use the virtual machine instead.",
        ),
    };
    e.action = Some(ErrorAction::UseMachine);
    e
}

/// Asks a child `berth daemon` to stop (SIGTERM: it stops listening; containers keep
/// running) and reaps it.
fn stop_child(child: &mut std::process::Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM);
    }
    let begun = std::time::Instant::now();
    while begun.elapsed() < Duration::from_secs(5) {
        if !matches!(child.try_wait(), Ok(None)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for EmbeddedEngine {
    fn drop(&mut self) {
        // Containers keep running: their shims supervise them, not this server.
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut child) = self.child.take() {
            stop_child(&mut child);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::rootless_failed;
    use crate::error::ErrorAction;

    #[test]
    fn a_rootless_engine_that_cannot_start_says_why_and_offers_the_machine() {
        let e = rootless_failed(
            "Error: could not make the user namespace: Operation not permitted (os error 1) — Berth needs user namespaces to run without root: as root, run `sysctl -w kernel.unprivileged_userns_clone=1`, or use Berth's virtual machine instead\n",
        );
        assert!(e
            .message
            .starts_with("Berth's built-in engine cannot run as you on this computer: could not make"));
        assert!(e.message.contains("sysctl -w kernel.unprivileged_userns_clone=1"));
        assert_eq!(e.action, Some(ErrorAction::UseMachine));
        let other = rootless_failed("thread 'main' panicked\n");
        assert_eq!(other.message, "Berth's built-in engine could not start.");
        assert_eq!(other.action, Some(ErrorAction::UseMachine));
    }
}
