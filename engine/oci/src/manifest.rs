//! Manifests and indexes (manifest lists), in the shape both OCI and Docker schema 2 share.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::media_type::*;
use crate::{Digest, Platform};

/// A pointer to content: its media type, digest and size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Descriptor {
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Self {
        Descriptor {
            media_type: media_type.to_string(),
            digest,
            size,
            platform: None,
            urls: Vec::new(),
            annotations: BTreeMap::new(),
        }
    }
}

/// An image manifest: one config and an ordered list of layers, bottom first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An index (OCI) or manifest list (Docker): one manifest per platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Index {
    /// The entry for `want`, following the OCI rules: os and architecture must match,
    /// a requested variant must match (arm64 defaults to v8), and attestation manifests
    /// (platform unknown/unknown) are never chosen.
    pub fn select(&self, want: &Platform) -> Option<&Descriptor> {
        let candidates = self
            .manifests
            .iter()
            .filter(|d| d.platform.as_ref().is_some_and(|p| p.matches(want)));
        // Prefer an exact variant match over an entry with no variant.
        let mut best: Option<&Descriptor> = None;
        for d in candidates {
            let exact = d.platform.as_ref().and_then(|p| p.variant.as_deref()) == want.variant.as_deref();
            if exact {
                return Some(d);
            }
            best.get_or_insert(d);
        }
        best
    }
}

/// What a manifest endpoint returned, once parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // short-lived, one per pull
pub enum ManifestKind {
    Image(Manifest),
    Index(Index),
}

#[derive(Debug, thiserror::Error)]
pub enum ParseManifestError {
    #[error("manifest media type '{0}' is Docker schema 1, which is deprecated and not supported; push the image again with a current client")]
    Schema1(String),
    #[error("media type '{0}' is not an image manifest or index")]
    UnknownMediaType(String),
    #[error("manifest is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("manifest has schemaVersion {0}; only 2 is supported")]
    SchemaVersion(u32),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    #[serde(default)]
    schema_version: u32,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<serde_json::Value>,
}

impl ManifestKind {
    /// Parses manifest bytes. `content_type` is the HTTP header, if known; the `mediaType`
    /// field inside the document wins when present, as it is covered by the digest.
    pub fn parse(bytes: &[u8], content_type: Option<&str>) -> Result<ManifestKind, ParseManifestError> {
        let probe: Probe = serde_json::from_slice(bytes)?;
        let content_type = content_type.map(|c| c.split(';').next().unwrap_or("").trim());
        let media_type = probe
            .media_type
            .as_deref()
            .or(content_type)
            .filter(|m| !m.is_empty() && *m != "application/json" && *m != "text/plain");
        let is_index = match media_type {
            Some(OCI_INDEX | DOCKER_MANIFEST_LIST) => true,
            Some(OCI_MANIFEST | DOCKER_MANIFEST) => false,
            Some(m @ (DOCKER_SCHEMA1 | DOCKER_SCHEMA1_SIGNED)) => {
                return Err(ParseManifestError::Schema1(m.into()))
            }
            Some(m) => return Err(ParseManifestError::UnknownMediaType(m.into())),
            None => probe.manifests.is_some(),
        };
        if probe.schema_version != 2 {
            if probe.schema_version == 1 {
                return Err(ParseManifestError::Schema1(DOCKER_SCHEMA1.into()));
            }
            return Err(ParseManifestError::SchemaVersion(probe.schema_version));
        }
        Ok(if is_index {
            ManifestKind::Index(serde_json::from_slice(bytes)?)
        } else {
            ManifestKind::Image(serde_json::from_slice(bytes)?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &str = r#"{
      "schemaVersion": 2,
      "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
      "manifests": [
        {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "size": 1, "digest": "sha256:1111111111111111111111111111111111111111111111111111111111111111", "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}},
        {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "size": 1, "digest": "sha256:2222222222222222222222222222222222222222222222222222222222222222", "platform": {"architecture": "amd64", "os": "linux"}},
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 1, "digest": "sha256:3333333333333333333333333333333333333333333333333333333333333333", "platform": {"architecture": "unknown", "os": "unknown"}}
      ]
    }"#;

    #[test]
    fn selects_platform_from_list() {
        let ManifestKind::Index(idx) = ManifestKind::parse(LIST.as_bytes(), None).unwrap() else {
            panic!("expected an index")
        };
        let amd = idx.select(&"linux/amd64".parse().unwrap()).unwrap();
        assert!(amd.digest.hex().starts_with('2'));
        let arm = idx.select(&"linux/arm64".parse().unwrap()).unwrap();
        assert!(arm.digest.hex().starts_with('1'));
        assert!(idx.select(&"linux/s390x".parse().unwrap()).is_none());
    }

    #[test]
    fn refuses_schema1() {
        let doc = r#"{"schemaVersion": 1, "name": "x", "tag": "y", "fsLayers": []}"#;
        assert!(matches!(
            ManifestKind::parse(doc.as_bytes(), Some(DOCKER_SCHEMA1_SIGNED)),
            Err(ParseManifestError::Schema1(_))
        ));
    }

    #[test]
    fn parses_manifest_without_media_type_field() {
        let doc = r#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:4444444444444444444444444444444444444444444444444444444444444444","size":2},"layers":[]}"#;
        assert!(matches!(
            ManifestKind::parse(doc.as_bytes(), Some(OCI_MANIFEST)).unwrap(),
            ManifestKind::Image(_)
        ));
        assert!(matches!(
            ManifestKind::parse(doc.as_bytes(), None).unwrap(),
            ManifestKind::Image(_)
        ));
    }
}
