//! Engine errors turned into what a beginner can act on: one plain sentence, a next step,
//! and the engine's own words kept behind a "show details" toggle in the UI.

use berth_api::unreachable::{Advice, Cause, Mirrors, Unreachable};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// What went wrong, as a stable `code` the UI switches on (never its words), with the
/// data some codes carry. Decided from the HTTP status and the request that failed (a 404
/// on create means the image is missing; a 409 on start, a taken port), and the marker
/// Berth's engine puts in a message about an unreachable registry. Only where an engine
/// gives nothing else — docker's and podman's 500s, and a progress stream's `error`
/// line, which has no status — its wording decides (see `from_wording`).
#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq, Eq)]
#[serde(tag = "code", rename_all = "snake_case")]
#[ts(export)]
pub enum ErrorKind {
    EngineUnreachable,
    /// A registry could not be reached (DNS, refused, timeout, TLS, proxy).
    RegistryUnreachable {
        registry: String,
    },
    PortInUse,
    ImageNotFound,
    /// The registry wants a login (or refused the one it got).
    AuthRequired,
    NameInUse,
    NotFound,
    NotRunning,
    /// Still in use, or in a state that does not allow the request (409).
    Conflict,
    /// An image reference the engine cannot parse.
    BadReference,
    InvalidInput,
    /// The engine does not implement that (501).
    NotImplemented,
    BuildFailed,
    /// Berth's virtual machine has no guest payload.
    MachineNoGuest,
    /// Berth's virtual machine could not be created, started, stopped or changed.
    MachineFailed,
    Other,
}

/// What the request that failed was about: the same status means different things for
/// different requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// Nothing more specific: statuses keep their general meaning.
    General,
    /// Creating a container from an image (404: the image; 409: the name).
    CreateContainer,
    /// Starting a container (409: a published port is taken).
    StartContainer,
    /// Anything about one image by reference: inspect, tag, remove, pull, push.
    Image,
    /// Something only a running container can do: exec, pause (409: it is not running).
    NeedsRunning,
}

/// A button the error box offers next to the next step.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, TS, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum ErrorAction {
    /// Open Settings (registry mirror, insecure registries).
    OpenSettings,
    /// Switch Settings → Engine to the virtual machine (the built-in engine cannot run
    /// without root on this computer).
    UseMachine,
}

/// The error every Tauri command returns.
#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq, thiserror::Error)]
#[error("{message}")]
#[ts(export)]
pub struct UserError {
    #[serde(flatten)]
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
            ..UserError::new(
                ErrorKind::RegistryUnreachable {
                    registry: u.registry.clone(),
                },
                u.sentence(),
                next,
            )
            .with_details(u.detail.clone())
        }
    }

    /// An engine error answered with HTTP `status` to a request of no particular kind.
    pub fn from_engine_message(status: u16, message: &str) -> UserError {
        UserError::classify(Request::General, Some(status), message)
    }

    /// The `error` line of a progress stream (pull, push, build): it has no status.
    pub fn from_stream_error(request: Request, message: &str) -> UserError {
        UserError::classify(request, None, message)
    }

    /// A bollard error of a `request`.
    pub fn during(request: Request, e: bollard::errors::Error) -> UserError {
        use bollard::errors::Error as B;
        match &e {
            B::DockerResponseServerError { status_code, message } => {
                UserError::classify(request, Some(*status_code), message)
            }
            B::DockerStreamError { error } => UserError::from_stream_error(request, error),
            _ => UserError::from(e),
        }
    }

    /// The code first (the engine's marker, then the status for this request, then,
    /// with neither telling, the wording), then the sentences for it.
    fn classify(request: Request, status: Option<u16>, message: &str) -> UserError {
        if let Some(u) = Unreachable::parse(message) {
            return UserError::registry_unreachable(&u);
        }
        let kind = status
            .and_then(|s| from_status(request, s))
            .or_else(|| from_wording(request, message));
        let kind = match kind {
            Some(kind) => kind,
            None => match foreign_unreachable(message) {
                Some(u) => return UserError::registry_unreachable(&u),
                None => ErrorKind::Other,
            },
        };
        let (sentence, next) = sentences(&kind, message);
        UserError::new(kind, sentence, next).with_details(message.to_string())
    }
}

/// The code a status means for a request; `None` where it says nothing (500, mostly).
fn from_status(request: Request, status: u16) -> Option<ErrorKind> {
    use Request as R;
    Some(match (status, request) {
        (400, R::Image) => ErrorKind::BadReference,
        (400, _) => ErrorKind::InvalidInput,
        (401, _) | (403, R::Image) => ErrorKind::AuthRequired,
        (404, R::CreateContainer | R::Image) => ErrorKind::ImageNotFound,
        (404, _) => ErrorKind::NotFound,
        (409, R::CreateContainer) => ErrorKind::NameInUse,
        (409, R::StartContainer) => ErrorKind::PortInUse,
        (409, R::NeedsRunning) => ErrorKind::NotRunning,
        (403 | 409, _) => ErrorKind::Conflict,
        (501, _) => ErrorKind::NotImplemented,
        _ => return None,
    })
}

/// Engines other than Berth answer some failures with a 500 and words only (docker:
/// "port is already allocated"; podman: "address already in use"), and a progress
/// stream's `error` line has no status at all: there the wording is all there is.
fn from_wording(request: Request, message: &str) -> Option<ErrorKind> {
    let lower = message.to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| lower.contains(w));
    if has(&["port is already allocated", "address already in use"]) {
        Some(ErrorKind::PortInUse)
    } else if foreign_unreachable(message).is_some() {
        // Its words ("connection refused", "certificate") would match the rules below.
        None
    } else if has(&["unauthorized", "authentication required", "denied"])
        && !has(&["repository does not exist"])
    {
        Some(ErrorKind::AuthRequired)
    } else if has(&["manifest unknown", "no such image", "repository does not exist"])
        || (lower.contains("image") && lower.contains("not found"))
    {
        Some(ErrorKind::ImageNotFound)
    } else if lower.contains("not running") {
        Some(ErrorKind::NotRunning)
    } else if request == Request::Image && has(&["invalid reference format"]) {
        Some(ErrorKind::BadReference)
    } else if lower.contains("dockerfile") && has(&["line", "parse"]) {
        Some(ErrorKind::BuildFailed)
    } else {
        None
    }
}

/// `result.during(Request::Image)?`: a bollard result's error, told for that request.
pub trait During<T> {
    fn during(self, request: Request) -> Result<T, UserError>;
}

impl<T> During<T> for Result<T, bollard::errors::Error> {
    fn during(self, request: Request) -> Result<T, UserError> {
        self.map_err(|e| UserError::during(request, e))
    }
}

/// What to tell the user for a code: one sentence and the next step.
fn sentences(kind: &ErrorKind, message: &str) -> (String, String) {
    let (sentence, next): (String, &str) = match kind {
        ErrorKind::PortInUse => (
            "That host port is already used by another program or container.".into(),
            "Pick another host port (the wizard suggests a free one) and try again.",
        ),
        ErrorKind::AuthRequired => (
            "The registry refused access.".into(),
            "Log in to the registry (Push wizard → Log in) or check the repository name.",
        ),
        ErrorKind::ImageNotFound => (
            "That image was not found.".into(),
            "Check the image name and tag for typos, pull it first, or log in if it is private.",
        ),
        ErrorKind::NameInUse => (
            "A container with that name already exists.".into(),
            "Choose another name, or remove the old container first.",
        ),
        ErrorKind::Conflict => (
            "It is still in use by a container.".into(),
            "Stop and remove the containers that use it, then try again.",
        ),
        ErrorKind::NotRunning => (
            "The container is not running.".into(),
            "Start the container first.",
        ),
        ErrorKind::BuildFailed => (
            first_sentence(message),
            "Fix the Dockerfile line named above and build again.",
        ),
        ErrorKind::NotImplemented => (
            first_sentence(message),
            "This engine cannot do that yet: follow the hint above, or point Berth at podman or docker in Settings.",
        ),
        ErrorKind::NotFound => (
            "It no longer exists.".into(),
            "Refresh the list; it may have been removed elsewhere.",
        ),
        ErrorKind::BadReference => (
            first_sentence(message),
            "Check the image name: lowercase letters, digits, '.', '_', '-' and '/', then an optional :tag.",
        ),
        ErrorKind::InvalidInput => (first_sentence(message), "Check the values you entered."),
        ErrorKind::EngineUnreachable
        | ErrorKind::RegistryUnreachable { .. }
        | ErrorKind::MachineNoGuest
        | ErrorKind::MachineFailed
        | ErrorKind::Other => (
            first_sentence(message),
            "Try again; if it keeps failing, open the details and check the engine's log.",
        ),
    };
    (sentence, next.to_string())
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
            B::DockerStreamError { error } => UserError::from_stream_error(Request::General, error),
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

    fn server_error(status: u16, message: &str) -> bollard::errors::Error {
        bollard::errors::Error::DockerResponseServerError {
            status_code: status,
            message: message.into(),
        }
    }

    #[test]
    fn the_status_and_the_request_decide_the_code_not_the_words() {
        let code =
            |r: Request, status: u16, message: &str| UserError::during(r, server_error(status, message)).kind;
        // The same 404 is a missing image when creating, a gone container otherwise.
        assert_eq!(
            code(Request::CreateContainer, 404, "whatever"),
            ErrorKind::ImageNotFound
        );
        assert_eq!(code(Request::Image, 404, "x"), ErrorKind::ImageNotFound);
        assert_eq!(
            code(Request::General, 404, "No such image: flsk"),
            ErrorKind::NotFound
        );
        // 409: the name on create, a port on start, not running for exec, else in use.
        assert_eq!(
            code(Request::CreateContainer, 409, "conflict"),
            ErrorKind::NameInUse
        );
        assert_eq!(code(Request::StartContainer, 409, "x"), ErrorKind::PortInUse);
        assert_eq!(code(Request::NeedsRunning, 409, "x"), ErrorKind::NotRunning);
        assert_eq!(
            code(Request::General, 409, "name already in use"),
            ErrorKind::Conflict
        );
        assert_eq!(
            code(Request::Image, 400, "invalid reference format"),
            ErrorKind::BadReference
        );
        assert_eq!(code(Request::General, 400, "bad"), ErrorKind::InvalidInput);
        assert_eq!(code(Request::Image, 401, "x"), ErrorKind::AuthRequired);
        assert_eq!(code(Request::General, 501, "x"), ErrorKind::NotImplemented);
        // Words that would have said otherwise do not override a telling status.
        assert_eq!(
            code(Request::Image, 404, "unauthorized: denied"),
            ErrorKind::ImageNotFound
        );
    }

    #[test]
    fn stream_errors_without_a_status_fall_back_to_the_wording() {
        let nf = UserError::from_stream_error(Request::Image, "manifest unknown: flsk:latest");
        assert_eq!(nf.kind, ErrorKind::ImageNotFound);
        let auth = UserError::from_stream_error(Request::Image, "unauthorized: authentication required");
        assert_eq!(auth.kind, ErrorKind::AuthRequired);
        assert_eq!(auth.message, "The registry refused access.");
    }

    #[test]
    fn the_wire_shape_carries_a_code_beside_the_sentences() {
        let e = UserError::during(Request::CreateContainer, server_error(409, "Conflict."));
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["code"], "name_in_use");
        assert_eq!(v["message"], "A container with that name already exists.");
        let back: UserError = serde_json::from_value(v).unwrap();
        assert_eq!(back, e);
        let u = UserError::from_engine_message(
            500,
            &engine_message("docker.io", Cause::Dns, "failed to lookup address information"),
        );
        let v = serde_json::to_value(&u).unwrap();
        assert_eq!(v["code"], "registry_unreachable");
        assert_eq!(v["registry"], "docker.io");
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
        assert!(matches!(e.kind, ErrorKind::RegistryUnreachable { .. }), "{e:?}");
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
        assert!(matches!(e.kind, ErrorKind::RegistryUnreachable { .. }), "{e:?}");
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
        assert!(
            matches!(podman.kind, ErrorKind::RegistryUnreachable { .. }),
            "{podman:?}"
        );
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
        assert!(
            matches!(old_berth.kind, ErrorKind::RegistryUnreachable { .. }),
            "{old_berth:?}"
        );
        assert!(
            old_berth.message.starts_with("Docker Hub can't be reached"),
            "{old_berth:?}"
        );
        // Not about a registry at all: left to the other rules.
        let e = UserError::from_engine_message(500, "dial unix /run/x.sock: connection refused");
        assert!(!matches!(e.kind, ErrorKind::RegistryUnreachable { .. }), "{e:?}");
    }

    #[test]
    fn unknown_errors_become_one_capitalized_sentence() {
        let e = UserError::from_engine_message(500, "something odd happened\nstack line 1\nstack line 2");
        assert_eq!(e.kind, ErrorKind::Other);
        assert_eq!(e.message, "Something odd happened.");
        assert!(e.details.contains("stack line 2"));
    }
}
