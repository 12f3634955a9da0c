//! Errors of the registry client. Each message is one sentence that says what went wrong
//! and what to do about it, because they are shown to users as they are.

use std::path::PathBuf;

use berth_oci::Digest;

use crate::unreachable::{root_cause, Cause, Unreachable};

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The registry has no such manifest, blob or repository.
    #[error("{what} was not found — check the name and tag")]
    NotFound { what: String },

    /// The registry wants credentials we do not have, or refused the ones we sent.
    #[error("registry {registry} needs a login — run `berth login {registry}`")]
    Unauthorized { registry: String },

    /// The registry knows who we are but does not allow the operation.
    #[error(
        "registry {registry} denied access to {what} — check that the repository exists and that your login may use it"
    )]
    Denied { registry: String, what: String },

    /// Content did not hash to the digest it was requested by.
    #[error(
        "content {expected} arrived with digest {actual} — the registry or a proxy altered it; try again"
    )]
    DigestMismatch { expected: Digest, actual: Digest },

    /// A registry sent more bytes than the descriptor (or our limit) allows.
    #[error("{what} is larger than the {limit} bytes expected — the registry sent unexpected content")]
    TooLarge { what: String, limit: u64 },

    /// A transfer ended early and retries did not complete it.
    #[error("transfer of {what} from registry {registry} was interrupted ({detail}) — try again")]
    Interrupted {
        registry: String,
        what: String,
        detail: String,
    },

    /// Any other error status, with the registry's own explanation.
    #[error("registry {registry} answered {status} to {what}: {message}")]
    Http {
        registry: String,
        what: String,
        status: u16,
        message: String,
    },

    /// Nothing answered, or not the way it must (plain HTTP, bad TLS, a failing proxy):
    /// the message names the cause in plain words and carries a stable code marker.
    #[error("{0}")]
    Unreachable(Unreachable),

    /// The registry answered something that does not follow the distribution API.
    #[error("registry {registry} sent an invalid response: {detail}")]
    Protocol { registry: String, detail: String },

    /// Reading local content or a credentials file failed.
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },

    /// The docker config file could not be understood.
    #[error("cannot read {}: {detail} — fix or remove the file", path.display())]
    Config { path: PathBuf, detail: String },

    /// A credential helper failed.
    #[error("credential helper docker-credential-{helper} failed: {detail}")]
    CredentialHelper { helper: String, detail: String },

    /// A registry name, repository, reference or setting that cannot be used.
    #[error("{0}")]
    InvalidInput(String),
}

impl RegistryError {
    /// Whether trying again may help: connection trouble, 5xx, 429 and cut transfers.
    pub fn is_retryable(&self) -> bool {
        match self {
            // A name that does not resolve (offline, a typo) or a TLS mismatch stays so.
            RegistryError::Unreachable(u) => !matches!(u.cause, Cause::Dns | Cause::PlainHttp | Cause::Tls),
            RegistryError::Interrupted { .. } => true,
            RegistryError::Http { status, .. } => *status >= 500 || *status == 429 || *status == 408,
            _ => false,
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        RegistryError::Io {
            context: context.into(),
            source,
        }
    }

    /// Classifies a reqwest error that happened while sending a request.
    pub(crate) fn from_send(registry: &str, what: &str, e: reqwest::Error) -> Self {
        match Unreachable::classify(registry, &e) {
            Some(u) => RegistryError::Unreachable(u),
            None => RegistryError::Interrupted {
                registry: registry.to_string(),
                what: what.to_string(),
                detail: root_cause(&e),
            },
        }
    }
}
