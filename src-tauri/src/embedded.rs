//! Berth's engine inside this process: the Engine API server (`berth-api`) on a private
//! socket, used when no endpoint is configured and no `berth daemon` runs.

use std::path::{Path, PathBuf};

use crate::error::{ErrorKind, UserError};

/// The socket a separately started `berth daemon` listens on.
pub fn daemon_socket() -> PathBuf {
    PathBuf::from("/run/berth/berth.sock")
}

pub struct EmbeddedEngine {
    socket: PathBuf,
}

impl EmbeddedEngine {
    pub async fn start() -> Result<EmbeddedEngine, UserError> {
        Err(UserError::new(
            ErrorKind::EngineUnreachable,
            "Berth's built-in engine is not part of this build.",
            "Start `berth daemon` or set DOCKER_HOST to a podman or docker socket.",
        ))
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }
}
