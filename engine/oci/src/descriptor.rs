//! Descriptors: a pointer to content by media type, digest and size.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::spec;
use crate::{Digest, DigestError, Platform};

/// oci-spec's `Descriptor`, whose digest is known to be sha256 (checked when it is parsed
/// or built), so `digest()` is always a Berth [`Digest`] the store can look up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "spec::Descriptor", into = "spec::Descriptor")]
pub struct Descriptor(spec::Descriptor);

impl Descriptor {
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Self {
        Descriptor(spec::Descriptor::new(media_type.into(), size, digest.to_spec()))
    }

    /// Wraps a descriptor from inside a manifest or index this crate has already checked.
    pub(crate) fn checked(d: &spec::Descriptor) -> Self {
        Descriptor(d.clone())
    }

    pub fn media_type(&self) -> &str {
        self.0.media_type().as_ref()
    }

    pub fn digest(&self) -> Digest {
        Digest::from_spec(self.0.digest()).unwrap_or_else(|_| unreachable!("checked when built"))
    }

    pub fn size(&self) -> u64 {
        self.0.size()
    }

    pub fn platform(&self) -> Option<Platform> {
        self.0.platform().clone().map(Platform::from)
    }

    pub fn urls(&self) -> &[String] {
        self.0.urls().as_deref().unwrap_or_default()
    }

    pub fn annotations(&self) -> Option<&HashMap<String, String>> {
        self.0.annotations().as_ref()
    }

    pub fn set_media_type(&mut self, media_type: &str) {
        self.0.set_media_type(media_type.into());
    }

    pub fn set_digest(&mut self, digest: Digest) {
        self.0.set_digest(digest.to_spec());
    }

    pub fn set_platform(&mut self, platform: Option<Platform>) {
        self.0.set_platform(platform.map(Into::into));
    }

    pub fn set_annotations(&mut self, annotations: Option<HashMap<String, String>>) {
        self.0.set_annotations(annotations);
    }

    pub fn spec(&self) -> &spec::Descriptor {
        &self.0
    }
}

/// Refuses any algorithm but sha256, for this descriptor and any it points into.
pub(crate) fn check(d: &spec::Descriptor) -> Result<(), DigestError> {
    Digest::from_spec(d.digest()).map(|_| ())
}

impl TryFrom<spec::Descriptor> for Descriptor {
    type Error = DigestError;
    fn try_from(d: spec::Descriptor) -> Result<Self, DigestError> {
        check(&d)?;
        Ok(Descriptor(d))
    }
}

impl From<Descriptor> for spec::Descriptor {
    fn from(d: Descriptor) -> spec::Descriptor {
        d.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Image records in `metadata.json` hold descriptors; the stored shape must not change.
    #[test]
    fn serializes_as_before() {
        let d = Descriptor::new(crate::media_type::DOCKER_LAYER_GZIP, Digest::of(b""), 3);
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(
            json,
            format!(
                r#"{{"mediaType":"{}","digest":"{}","size":3}}"#,
                crate::media_type::DOCKER_LAYER_GZIP,
                Digest::of(b"")
            )
        );
        let back: Descriptor = serde_json::from_str(&json).unwrap();
        assert_eq!(back, d);
        assert_eq!(back.media_type(), crate::media_type::DOCKER_LAYER_GZIP);
    }

    #[test]
    fn refuses_other_algorithms() {
        let doc = format!(
            r#"{{"mediaType":"a/b","digest":"sha512:{}","size":1}}"#,
            "a".repeat(128)
        );
        let err = serde_json::from_str::<Descriptor>(&doc).unwrap_err();
        assert!(err.to_string().contains("only sha256"), "{err}");
        let bad = r#"{"mediaType":"a/b","digest":"../etc:passwd","size":1}"#;
        assert!(serde_json::from_str::<Descriptor>(bad).is_err());
    }
}
