/// A value that is not in docker's syntax; each message says what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    #[error("invalid port spec '{spec}': {reason}; use docker's -p syntax, e.g. -p 8080:80 or -p 127.0.0.1:8080:80/udp")]
    InvalidPortSpec { spec: String, reason: String },

    /// A docker-style size (memory, log size) could not be parsed.
    #[error("invalid memory value '{0}' — use a number with b, k, m or g, e.g. 512m")]
    InvalidSize(String),

    /// A docker-style cpus string could not be parsed.
    #[error("invalid cpus value '{0}' — use a positive decimal number such as 1.5")]
    InvalidCpus(String),

    /// A Windows path given to an engine that runs on Linux or macOS.
    #[error(
        "'{0}' is a Windows path, but this engine runs on Linux — use a Linux path such as /home/you/app"
    )]
    ForeignPath(String),

    /// A Windows path that a machine cannot share.
    #[error("'{path}' cannot be mounted: {why} — use a folder under C:\\Users")]
    WindowsPath { path: String, why: &'static str },
}
