//! The builder's errors: each one sentence saying what went wrong and what to do next.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cannot read the Dockerfile {path}: {reason} — create it or point -f at it")]
    NoDockerfile { path: PathBuf, reason: String },
    #[error("the build context {path} is not a readable directory ({reason}) — pass the directory to build")]
    Context { path: PathBuf, reason: String },
    #[error("{0}")]
    Parse(String),
    /// An instruction that cannot be carried out; `message` says why and what to change.
    #[error("Dockerfile line {line}: {message}")]
    Instruction { line: usize, message: String },
    #[error("failed to reach build target {0} in Dockerfile — use the name of a stage (FROM … AS name)")]
    NoTarget(String),
    #[error("The command '{command}' returned a non-zero code: {code}")]
    RunFailed {
        command: String,
        code: i32,
        /// The last lines the command printed (for renderers that did not stream them).
        last_lines: Vec<String>,
    },
    #[error("invalid tag \"{tag}\": {reason}")]
    InvalidTag { tag: String, reason: String },
    #[error("the build was cancelled")]
    Cancelled,
    #[error(transparent)]
    Store(#[from] berth_store::StoreError),
    #[error(transparent)]
    Image(#[from] berth_images::ImageError),
    #[error(transparent)]
    Runtime(#[from] berth_runtime::RuntimeError),
    #[error(transparent)]
    Net(#[from] berth_net::NetError),
    #[error(transparent)]
    Layer(#[from] berth_layers::LayerError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl BuildError {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> BuildError {
        let context = context.into();
        move |source| BuildError::Io { context, source }
    }

    pub(crate) fn at(line: usize, message: impl Into<String>) -> BuildError {
        BuildError::Instruction {
            line,
            message: message.into(),
        }
    }
}
