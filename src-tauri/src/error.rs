//! Engine errors turned into what a beginner can act on: one plain sentence, a next step,
//! and the engine's own words kept behind a "show details" toggle in the UI.

use berth_api::unreachable::{Advice, Cause, Mirrors, Unreachable};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, TS, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum ErrorKind {
    EngineUnreachable,
    /// A registry could not be reached (DNS, refused, timeout, TLS, proxy).
    RegistryUnreachable,
    PortInUse,
    ImageNotFound,
    AuthRequired,
    NameInUse,
    NotFound,
    NotRunning,
    InUse,
    InvalidInput,
    BuildFailed,
    Other,
}

/// A button the error box offers next to the next step.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, TS, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum ErrorAction {
    /// Open Settings (registry mirror, insecure registries).
    OpenSettings,
}

/// The error every Tauri command returns.
#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq, thiserror::Error)]
#[error("{message}")]
#[ts(export)]
pub struct UserError {
    pub kind: ErrorKind,
    /// One sentence: what went wrong.
    pub message: String,
    /// One sentence: what to do next.
    pub next_step: String,
    /// The engine's own message, for the details toggle.
    pub details: String,
    /// A button that helps with the next step, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub action: Option<ErrorAction>,
}

impl UserError {
    pub fn new(kind: ErrorKind, message: impl Into<String>, next_step: impl Into<String>) -> UserError {
        UserError {
            kind,
            message: message.into(),
            next_step: next_step.into(),
            details: String::new(),
            action: None,
        }
    }

    pub fn with_details(mut self, details: impl Into<String>) -> UserError {
        self.details = details.into();
        self
    }

    pub fn invalid(message: impl Into<String>, next_step: impl Into<String>) -> UserError {
        UserError::new(ErrorKind::InvalidInput, message, next_step)
    }

    pub fn unreachable(endpoint: &str, details: impl Into<String>) -> UserError {
        UserError::new(
            ErrorKind::EngineUnreachable,
            format!("The container engine at {endpoint} is not answering."),
            "Restart Berth to start its built-in engine, or start `berth daemon` (or podman/docker) \
             and pick it in Settings.",
        )
        .with_details(details)
    }

    /// A registry that could not be reached: the engine's sentence, the window's next step
    /// (Settings for a mirror or an insecure registry), the low-level words as details.
    pub fn registry_unreachable(u: &Unreachable) -> UserError {
        let next = u.next_step(&Advice {
            mirror: "set a registry mirror in Settings",
            insecure: &format!("add {} to Insecure registries in Settings", u.registry),
        });
        UserError {
            action: u.needs_setting().then_some(ErrorAction::OpenSettings),
            ..UserError::new(ErrorKind::RegistryUnreachable, u.sentence(), next)
                .with_details(u.detail.clone())
        }
    }

    /// Classify an engine error message (from the Engine API's JSON error body or a
    /// progress stream's `error` field). Berth's engine marks a registry it cannot reach
    /// with a code (`[code=registry-unreachable.dns …]`), matched first; other engines'
    /// messages (docker, podman) are recognized by their wording.
    pub fn from_engine_message(status: u16, message: &str) -> UserError {
        if let Some(u) = Unreachable::parse(message) {
            return UserError::registry_unreachable(&u);
        }
        if let Some(u) = foreign_unreachable(message) {
            return UserError::registry_unreachable(&u);
        }
        let lower = message.to_ascii_lowercase();
        let (kind, sentence, next) = if lower.contains("port is already allocated")
            || lower.contains("address already in use")
        {
            (
                ErrorKind::PortInUse,
                "That host port is already used by another program or container.".to_string(),
                "Pick another host port (the wizard suggests a free one) and try again.",
            )
        } else if lower.contains("unauthorized")
            || lower.contains("authentication required")
            || lower.contains("denied")
        {
            (
                ErrorKind::AuthRequired,
                "The registry refused access.".to_string(),
                "Log in to the registry (Push wizard → Log in) or check the repository name.",
            )
        } else if lower.contains("manifest unknown")
            || lower.contains("no such image")
            || lower.contains("repository does not exist")
            || lower.contains("pull access denied")
            || (lower.contains("image") && lower.contains("not found"))
        {
            (
                ErrorKind::ImageNotFound,
                "That image was not found.".to_string(),
                "Check the image name and tag for typos, pull it first, or log in if it is private.",
            )
        } else if status == 409 && (lower.contains("already in use") || lower.contains("conflict")) {
            if lower.contains("name") {
                (
                    ErrorKind::NameInUse,
                    "A container with that name already exists.".to_string(),
                    "Choose another name, or remove the old container first.",
                )
            } else {
                (
                    ErrorKind::InUse,
                    "It is still in use by a container.".to_string(),
                    "Stop and remove the containers that use it, then try again.",
                )
            }
        } else if lower.contains("is not running") || lower.contains("not running") {
            (
                ErrorKind::NotRunning,
                "The container is not running.".to_string(),
                "Start the container first.",
            )
        } else if lower.contains("dockerfile") && (lower.contains("line") || lower.contains("parse")) {
            (
                ErrorKind::BuildFailed,
                first_sentence(message),
                "Fix the Dockerfile line named above and build again.",
            )
        } else if status == 501 {
            (
                ErrorKind::Other,
                first_sentence(message),
                "This engine cannot do that yet: follow the hint above, or point Berth at podman or docker in Settings.",
            )
        } else if status == 404 {
            (
                ErrorKind::NotFound,
                "It no longer exists.".to_string(),
                "Refresh the list; it may have been removed elsewhere.",
            )
        } else if status == 400 {
            (
                ErrorKind::InvalidInput,
                first_sentence(message),
                "Check the values you entered.",
            )
        } else {
            (
                ErrorKind::Other,
                first_sentence(message),
                "Try again; if it keeps failing, open the details and check the engine's log.",
            )
        };
        UserError::new(kind, sentence, next).with_details(message.to_string())
    }
}

/// A registry out of reach as another engine (dockerd, podman, an older berth) words it,
/// told with the same sentences; the whole message becomes the details.
fn foreign_unreachable(message: &str) -> Option<Unreachable> {
    let lower = message.to_ascii_lowercase();
    let cause = if lower.contains("no such host") || lower.contains("failed to lookup address") {
        Cause::Dns
    } else if lower.contains("server gave http response to https client") {
        Cause::PlainHttp
    } else if lower.contains("proxyconnect") {
        Cause::Proxy
    } else if lower.contains("connection refused") {
        Cause::Refused
    } else if lower.contains("i/o timeout") || lower.contains("timed out") {
        Cause::TimedOut
    } else if lower.contains("x509") || lower.contains("certificate") {
        Cause::Tls
    } else if lower.contains("cannot reach registry") {
        Cause::Network
    } else {
        return None;
    };
    Some(Unreachable {
        registry: registry_named_in(message)?,
        cause,
        proxy: None,
        detail: message.to_string(),
        pushing: false,
        mirrors: Mirrors::None,
    })
}

/// The registry a foreign message is about: "cannot reach registry HOST …" (older berth)
/// or the host of a `…://HOST/v2/` URL (dockerd, podman).
fn registry_named_in(message: &str) -> Option<String> {
    if let Some((_, rest)) = message.split_once("cannot reach registry ") {
        return rest.split_whitespace().next().map(String::from);
    }
    let before = &message[..message.find("/v2/")?];
    let host = &before[before.rfind("://")? + 3..];
    (!host.is_empty() && !host.contains(char::is_whitespace)).then(|| host.to_string())
}

/// The first sentence of an engine message, capitalized and ending in a full stop.
fn first_sentence(message: &str) -> String {
    let line = message.lines().next().unwrap_or("").trim();
    let line = line.strip_prefix("Error: ").unwrap_or(line);
    let mut s: String = line.chars().take(200).collect();
    if s.is_empty() {
        return "The engine reported an error.".into();
    }
    if let Some(first) = s.get(0..1) {
        let upper = first.to_uppercase();
        s.replace_range(0..1, &upper);
    }
    if !s.ends_with('.') {
        s.push('.');
    }
    s
}

impl From<bollard::errors::Error> for UserError {
    fn from(e: bollard::errors::Error) -> UserError {
        use bollard::errors::Error as B;
        match &e {
            B::DockerResponseServerError { status_code, message } => {
                UserError::from_engine_message(*status_code, message)
            }
            B::DockerStreamError { error } => UserError::from_engine_message(500, error),
            B::IOError { .. } | B::HyperLegacyError { .. } | B::SocketNotFoundError(_) => {
                UserError::unreachable("the configured endpoint", e.to_string())
            }
            B::RequestTimeoutError => UserError::new(
                ErrorKind::EngineUnreachable,
                "The engine took too long to answer.",
                "Try again; if the engine is busy pulling or building, wait for it to finish.",
            )
            .with_details(e.to_string()),
            _ => UserError::new(
                ErrorKind::Other,
                "The engine answered something Berth did not understand.",
                "Try again; open the details to see the engine's answer.",
            )
            .with_details(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_in_use_is_recognized_from_docker_and_podman_wording() {
        let d = UserError::from_engine_message(
            500,
            "driver failed programming external connectivity: Bind for 0.0.0.0:8080 failed: port is already allocated",
        );
        assert_eq!(d.kind, ErrorKind::PortInUse);
        let p = UserError::from_engine_message(
            500,
            "rootlessport listen tcp 0.0.0.0:8080: bind: address already in use",
        );
        assert_eq!(p.kind, ErrorKind::PortInUse);
        assert!(p.details.contains("8080"));
    }

    #[test]
    fn missing_image_and_auth_are_told_apart() {
        let nf = UserError::from_engine_message(404, "No such image: flsk:latest");
        assert_eq!(nf.kind, ErrorKind::ImageNotFound);
        let auth = UserError::from_engine_message(500, "unauthorized: authentication required");
        assert_eq!(auth.kind, ErrorKind::AuthRequired);
    }

    fn engine_message(registry: &str, cause: Cause, detail: &str) -> String {
        Unreachable {
            registry: registry.into(),
            cause,
            proxy: None,
            detail: detail.into(),
            pushing: false,
            mirrors: Mirrors::None,
        }
        .to_string()
    }

    #[test]
    fn docker_hub_out_of_reach_links_to_settings_and_keeps_the_resolver_in_details() {
        let detail = "failed to lookup address information: Name or service not known";
        let e = UserError::from_engine_message(500, &engine_message("docker.io", Cause::Dns, detail));
        assert_eq!(e.kind, ErrorKind::RegistryUnreachable);
        assert_eq!(
            e.message,
            "Docker Hub can't be reached: its address could not be looked up."
        );
        assert_eq!(
            e.next_step,
            "Check the internet connection, or set a registry mirror in Settings."
        );
        assert_eq!(e.action, Some(ErrorAction::OpenSettings));
        assert_eq!(e.details, detail);
    }

    #[test]
    fn the_code_wins_over_words_in_the_detail() {
        // "denied" in the low-level words must not make it an auth error.
        let e = UserError::from_engine_message(
            500,
            &engine_message("127.0.0.1:5999", Cause::Refused, "permission denied"),
        );
        assert_eq!(e.kind, ErrorKind::RegistryUnreachable);
        assert_eq!(
            e.message,
            "The registry 127.0.0.1:5999 can't be reached: nothing is listening at that address."
        );
        assert_eq!(
            e.next_step,
            "Check the host and port, and that the registry is running."
        );
        assert_eq!(e.action, None);
        let tls = UserError::from_engine_message(
            500,
            &engine_message("reg.lan:5000", Cause::PlainHttp, "received corrupt message"),
        );
        assert_eq!(
            tls.next_step,
            "If you trust it, add reg.lan:5000 to Insecure registries in Settings."
        );
        assert_eq!(tls.action, Some(ErrorAction::OpenSettings));
    }

    #[test]
    fn other_engines_unreachable_registries_are_recognized_by_their_words() {
        let podman = UserError::from_engine_message(
            500,
            "initializing source docker://flask:latest: pinging container registry registry-1.docker.io: \
             Get \"https://registry-1.docker.io/v2/\": dial tcp: lookup registry-1.docker.io: no such host",
        );
        assert_eq!(podman.kind, ErrorKind::RegistryUnreachable);
        assert_eq!(
            podman.message,
            "Docker Hub can't be reached: its address could not be looked up."
        );
        assert_eq!(podman.action, Some(ErrorAction::OpenSettings));
        assert!(podman.details.contains("no such host"));
        let old_berth = UserError::from_engine_message(
            500,
            "cannot reach registry docker.io — is it running? (failed to lookup address information: Name or service not known)",
        );
        assert_eq!(old_berth.kind, ErrorKind::RegistryUnreachable);
        assert!(
            old_berth.message.starts_with("Docker Hub can't be reached"),
            "{old_berth:?}"
        );
        // Not about a registry at all: left to the other rules.
        let e = UserError::from_engine_message(500, "dial unix /run/x.sock: connection refused");
        assert_ne!(e.kind, ErrorKind::RegistryUnreachable);
    }

    #[test]
    fn unknown_errors_become_one_capitalized_sentence() {
        let e = UserError::from_engine_message(500, "something odd happened\nstack line 1\nstack line 2");
        assert_eq!(e.kind, ErrorKind::Other);
        assert_eq!(e.message, "Something odd happened.");
        assert!(e.details.contains("stack line 2"));
    }
}
