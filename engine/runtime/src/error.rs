//! Errors of the runtime. Each displays as one plain sentence with a next step.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(
        "executable file '{0}' not found in $PATH of the container — check the command or the image's PATH"
    )]
    ExecutableNotFound(String),
    #[error("executable file '{0}' cannot be run in the container (permission denied) — check that it exists and is executable")]
    ExecutablePermission(String),
    #[error("executable file '{command}' cannot be run in the container: {source} — check that it is a program for this machine")]
    Exec { command: String, source: std::io::Error },
    #[error("working directory '{cwd}' cannot be entered in the container: {source} — check the working directory and the user's permissions")]
    Cwd { cwd: String, source: std::io::Error },
    #[error("container set-up failed while {step}: {source} — check the container's mounts and settings")]
    Setup { step: String, source: std::io::Error },
    #[error("unable to find user {0}: no matching entries in the container's passwd file — check --user or the image's /etc/passwd")]
    UserNotFound(String),
    #[error("unable to find group {0}: no matching entries in the container's group file — check --user or the image's /etc/group")]
    GroupNotFound(String),
    #[error("invalid container configuration: {0} — fix the setting and try again")]
    InvalidSpec(String),
    #[error("container process {0} is not running — start the container first")]
    NotRunning(i32),
    #[error("could not mount the container's root filesystem at {target}: {reason} — check that the image layers exist and overlayfs is available")]
    Overlay { target: PathBuf, reason: String },
    #[error("the container shim failed to start the container: {0}")]
    ShimStart(String),
    #[error(
        "the container shim did not report within {0} seconds — check the shim's log in the state directory"
    )]
    ShimTimeout(u64),
    #[error("state file {path} is unreadable: {reason} — remove the container and create it again")]
    BadState { path: PathBuf, reason: String },
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
}

impl RuntimeError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        RuntimeError::Io {
            context: context.into(),
            source,
        }
    }
}
