//! Progress reporting: events shaped like the lines of docker's pull/push stream, so a
//! terminal renderer and the Engine API's JSON stream can both be driven from them.

/// One step of a pull or push. `id` is the short (12 hex) digest of a layer or blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProgressEvent {
    /// A free-form status line, e.g. "Pulling from library/flask".
    Status(String),
    /// A layer is known and will be transferred (total bytes).
    Waiting {
        id: String,
        total: u64,
    },
    /// The layer is already in the store (pull) or in the registry (push).
    AlreadyExists {
        id: String,
    },
    Downloading {
        id: String,
        current: u64,
        total: u64,
    },
    Verifying {
        id: String,
    },
    Extracting {
        id: String,
    },
    PullComplete {
        id: String,
    },
    Pushing {
        id: String,
        current: u64,
        total: u64,
    },
    Mounted {
        id: String,
        from: String,
    },
    Pushed {
        id: String,
    },
    /// A transfer failed and is retried (the registry client retries on its own).
    Retrying {
        id: String,
        reason: String,
    },
}

/// Receives progress; implementations must be cheap, they are called per chunk.
pub trait Progress: Send + Sync {
    fn event(&self, event: ProgressEvent);
}

/// Discards progress.
pub struct NoProgress;

impl Progress for NoProgress {
    fn event(&self, _: ProgressEvent) {}
}
