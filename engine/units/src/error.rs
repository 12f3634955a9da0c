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
}
