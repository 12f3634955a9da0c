//! The errors `unpack` reports. Every variant that concerns one tar entry names it.

use std::io;
use std::path::PathBuf;

use crate::LayerCompression;

#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// `dest` already holds something; layers are only unpacked into fresh directories.
    #[error("cannot unpack a layer into {path}: it already exists and is not an empty directory")]
    DestinationNotEmpty { path: PathBuf },

    /// The entry would create or modify something outside the layer directory.
    #[error("tar entry '{entry}' tries to write outside the layer: {reason}")]
    Escape { entry: String, reason: String },

    /// The tar stream itself is malformed or truncated.
    #[error("the layer is not a valid tar stream ({context}): {reason}")]
    Corrupt { context: String, reason: String },

    /// The compressed stream could not be decoded (bad magic, corrupt data, truncation).
    #[error("could not decompress the {} layer stream ({context}): {source}", compression_name(*.compression))]
    Decompress {
        compression: LayerCompression,
        context: String,
        #[source]
        source: io::Error,
    },

    /// Reading the (uncompressed) layer stream failed.
    #[error("could not read the layer stream ({context}): {source}")]
    Read {
        context: String,
        #[source]
        source: io::Error,
    },

    /// A filesystem operation failed while writing an entry.
    #[error("tar entry '{entry}': could not {op} {}: {source}", path.display())]
    Io {
        entry: String,
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// The entry has a type Berth does not unpack (for example a multi-volume continuation).
    #[error("tar entry '{entry}' has an unsupported type: {kind}")]
    Unsupported { entry: String, kind: String },

    /// The entry cannot be placed where it says, for example because a parent is a regular file.
    #[error("tar entry '{entry}' conflicts with what the layer already holds: {reason}")]
    Conflict { entry: String, reason: String },

    /// The entry needs a privilege the unpacking process lacks (whiteouts need mknod and
    /// `trusted.*` xattrs, so they can only be unpacked as root).
    #[error("tar entry '{entry}' needs root privileges to {what}: {source}")]
    NeedsPrivilege {
        entry: String,
        what: &'static str,
        #[source]
        source: io::Error,
    },

    /// An extended attribute from the entry's PAX header could not be applied.
    #[error("tar entry '{entry}': could not set extended attribute '{name}': {source}")]
    Xattr {
        entry: String,
        name: String,
        #[source]
        source: io::Error,
    },
}

fn compression_name(c: LayerCompression) -> &'static str {
    match c {
        LayerCompression::None => "uncompressed",
        LayerCompression::Gzip => "gzip",
        LayerCompression::Zstd => "zstd",
    }
}
