//! Engine errors turned into what a beginner can act on: one plain sentence, a next step,
//! and the engine's own words kept behind a "show details" toggle in the UI.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, TS, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum ErrorKind {
    EngineUnreachable,
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
}

impl UserError {
    pub fn new(kind: ErrorKind, message: impl Into<String>, next_step: impl Into<String>) -> UserError {
        UserError {
            kind,
            message: message.into(),
            next_step: next_step.into(),
            details: String::new(),
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

    /// Classify an engine error message (from the Engine API's JSON error body or a
    /// progress stream's `error` field).
    pub fn from_engine_message(status: u16, message: &str) -> UserError {
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

    #[test]
    fn unknown_errors_become_one_capitalized_sentence() {
        let e = UserError::from_engine_message(500, "something odd happened\nstack line 1\nstack line 2");
        assert_eq!(e.kind, ErrorKind::Other);
        assert_eq!(e.message, "Something odd happened.");
        assert!(e.details.contains("stack line 2"));
    }
}
