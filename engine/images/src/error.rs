//! Errors of the image services. Each displays as one plain sentence with a next step.

use berth_oci::Digest;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(transparent)]
    Reference(#[from] berth_reference::ReferenceError),
    #[error("image '{name}' not found in {registry} — check the name or run `berth login {registry}`")]
    NotFoundInRegistry { name: String, registry: String },
    #[error("No such image: {0} — run `berth images` to see the images you have, or `berth pull {0}`")]
    NotFoundLocally(String),
    #[error("image {reference} has no entry for platform {platform} (it has: {available}) — pick one with --platform")]
    NoMatchingPlatform {
        reference: String,
        platform: String,
        available: String,
    },
    #[error("layer {layer} of {reference} unpacked to diff ID {actual}, but the image config says {expected} — the image is corrupt in the registry; push it again")]
    DiffIdMismatch {
        reference: String,
        layer: Digest,
        expected: Digest,
        actual: Digest,
    },
    #[error("image {reference} is malformed: {reason}")]
    Malformed { reference: String, reason: String },
    #[error("conflict: unable to remove {name}: image is referenced in multiple repositories ({tags}) — remove the tags one by one or use -f")]
    MultipleTags { name: String, tags: String },
    #[error(transparent)]
    Registry(#[from] berth_registry::RegistryError),
    #[error(transparent)]
    Store(#[from] berth_store::StoreError),
    #[error(transparent)]
    Layer(#[from] berth_layers::LayerError),
    #[error("archive {path} is not a docker image archive: {reason}")]
    BadArchive { path: String, reason: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl ImageError {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ImageError {
        let context = context.into();
        move |source| ImageError::Io { context, source }
    }

    /// Docker CLI exit codes: 1 for everything an image command can hit.
    pub fn exit_code(&self) -> i32 {
        1
    }
}
