//! What the app keeps between commands: the engine connection, running background
//! streams (logs, stats, pulls…) by operation id, and open exec sessions.

use std::collections::HashMap;
use std::pin::Pin;

use bollard::Docker;
use tokio::io::AsyncWrite;
use tokio::sync::Mutex;

use crate::dto::{EndpointKind, EngineStatus};
use crate::engine::Engine;
use crate::error::UserError;
use crate::machine::MachineControl;
use crate::settings::{DesktopSettings, EngineChoice};

pub struct ExecSession {
    pub exec_id: String,
    pub input: Pin<Box<dyn AsyncWrite + Send>>,
}

pub struct AppState {
    engine: Mutex<Option<Engine>>,
    /// Set from Settings; `None` means "environment, then the engine `choice` names".
    preferred: Mutex<Option<String>>,
    /// Settings → Engine, kept in the desktop's settings file.
    choice: std::sync::Mutex<EngineChoice>,
    pub machine: MachineControl,
    tasks: std::sync::Mutex<HashMap<String, tokio::task::AbortHandle>>,
    pub execs: Mutex<HashMap<String, ExecSession>>,
    /// Bumped by `set_endpoint`, so the event feed subscribes to the new engine.
    endpoint_generation: tokio::sync::watch::Sender<u64>,
}

impl Default for AppState {
    fn default() -> AppState {
        AppState {
            engine: Mutex::default(),
            preferred: Mutex::default(),
            choice: std::sync::Mutex::new(DesktopSettings::load_from(&crate::settings::path()).engine),
            machine: MachineControl::default(),
            tasks: Default::default(),
            execs: Mutex::default(),
            endpoint_generation: Default::default(),
        }
    }
}

impl AppState {
    pub fn choice(&self) -> EngineChoice {
        *self.choice.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Settings → Engine: saved in the settings file, then the window connects to it.
    pub async fn set_choice(&self, choice: EngineChoice) -> Result<(), UserError> {
        let file = crate::settings::path();
        let mut settings = DesktopSettings::load_from(&file);
        settings.engine = choice;
        settings.save_to(&file).map_err(|e| {
            UserError::new(
                crate::error::ErrorKind::Other,
                format!("Berth could not save its settings in {}.", file.display()),
                "Check that the folder can be written to, then try again.",
            )
            .with_details(e.to_string())
        })?;
        *self.choice.lock().unwrap_or_else(|p| p.into_inner()) = choice;
        self.reconnect().await;
        Ok(())
    }

    /// Drop the connection (the machine's socket came or went, or the choice changed): the
    /// next request connects again and the event feed subscribes again.
    pub async fn reconnect(&self) {
        *self.engine.lock().await = None;
        self.endpoint_generation.send_modify(|g| *g += 1);
    }

    /// The client, connecting first if needed.
    pub async fn docker(&self) -> Result<Docker, UserError> {
        let mut engine = self.engine.lock().await;
        if let Some(e) = engine.as_ref() {
            return Ok(e.docker.clone());
        }
        let preferred = self.preferred.lock().await.clone();
        let connected = Engine::connect(preferred, self.choice(), &self.machine).await?;
        let docker = connected.docker.clone();
        *engine = Some(connected);
        Ok(docker)
    }

    pub async fn endpoint(&self) -> Option<(EndpointKind, String)> {
        self.engine
            .lock()
            .await
            .as_ref()
            .map(|e| (e.kind, e.endpoint.clone()))
    }

    /// Drop the current connection (stopping an embedded engine) and use `endpoint` next.
    pub async fn set_endpoint(&self, endpoint: Option<String>) {
        *self.preferred.lock().await = endpoint.filter(|e| !e.trim().is_empty());
        self.reconnect().await;
    }

    /// Changes once each time Settings picks another endpoint.
    pub fn endpoint_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.endpoint_generation.subscribe()
    }

    pub async fn status(&self) -> EngineStatus {
        let docker = match self.docker().await {
            Ok(d) => d,
            Err(e) => {
                return EngineStatus {
                    connected: false,
                    kind: None,
                    endpoint: self.preferred.lock().await.clone().unwrap_or_default(),
                    engine: String::new(),
                    version: String::new(),
                    containers: 0,
                    running: 0,
                    images: 0,
                    error: Some(e),
                    choice: self.choice(),
                    rootless: false,
                }
            }
        };
        let (kind, endpoint) = self
            .endpoint()
            .await
            .map_or((None, String::new()), |(k, e)| (Some(k), e));
        match docker.info().await {
            Ok(info) => {
                let version = docker.version().await.ok();
                EngineStatus {
                    connected: true,
                    kind,
                    endpoint,
                    // "Berth", "Podman Engine", "Docker Engine - Community"…
                    engine: version
                        .as_ref()
                        .and_then(|v| v.platform.as_ref().map(|p| p.name.clone()))
                        .filter(|n| !n.is_empty())
                        .unwrap_or_else(|| "Engine".into()),
                    version: version
                        .and_then(|v| v.version)
                        .or(info.server_version)
                        .unwrap_or_default(),
                    containers: count(info.containers),
                    running: count(info.containers_running),
                    images: count(info.images),
                    error: None,
                    choice: self.choice(),
                    rootless: is_rootless(info.security_options.as_deref()),
                }
            }
            Err(e) => EngineStatus {
                connected: false,
                kind,
                endpoint,
                engine: String::new(),
                version: String::new(),
                containers: 0,
                running: 0,
                images: 0,
                error: Some(e.into()),
                choice: self.choice(),
                rootless: false,
            },
        }
    }

    /// Which engine runs, as the tray says it: "Engine: Built-in", "Engine: Virtual
    /// machine (stopped)" …
    pub async fn engine_label(&self) -> String {
        if let Some((kind, _)) = self.endpoint().await {
            // An ordinary user's desktop reaches the user's own engine, which is rootless.
            let rootless =
                berth_api::rootless() && matches!(kind, EndpointKind::Embedded | EndpointKind::Daemon);
            return format!(
                "Engine: {}{}",
                kind_label(kind),
                if rootless { ", rootless" } else { "" }
            );
        }
        match self.choice() {
            EngineChoice::BuiltIn => "Engine: Built-in (not connected)".into(),
            EngineChoice::Machine if self.machine.running() => "Engine: Virtual machine".into(),
            EngineChoice::Machine => "Engine: Virtual machine (not running)".into(),
        }
    }

    /// Remember a background task so `cancel` can stop it; replaces one with the same id.
    pub fn track(&self, op: &str, handle: tokio::task::AbortHandle) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(old) = tasks.insert(op.to_string(), handle) {
            old.abort();
        }
    }

    pub fn cancel(&self, op: &str) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(h) = tasks.remove(op) {
            h.abort();
        }
    }
}

/// How the sidebar, the Dashboard and the tray name an engine.
pub fn kind_label(kind: EndpointKind) -> &'static str {
    match kind {
        EndpointKind::Embedded | EndpointKind::Daemon => "Built-in",
        EndpointKind::Machine => "Virtual machine",
        EndpointKind::External => "External",
    }
}

/// Whether an engine's `info` says it runs rootless (docker's `name=rootless`).
pub fn is_rootless(security_options: Option<&[String]>) -> bool {
    security_options.is_some_and(|o| o.iter().any(|o| o == "name=rootless"))
}

fn count(n: Option<i64>) -> u32 {
    n.and_then(|n| u32::try_from(n).ok()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::is_rootless;

    #[test]
    fn an_engine_is_rootless_when_its_info_says_so() {
        let opts = |o: &[&str]| o.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(is_rootless(Some(&opts(&[
            "name=seccomp,profile=builtin",
            "name=rootless"
        ]))));
        assert!(!is_rootless(Some(&opts(&["name=seccomp,profile=builtin"]))));
        assert!(!is_rootless(Some(&opts(&["name=rootlessx"]))));
        assert!(!is_rootless(None));
    }
}
