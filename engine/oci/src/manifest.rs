//! Manifests and indexes (manifest lists): oci-spec's `ImageManifest` and `ImageIndex`,
//! which read Docker schema 2 documents too (their media types are `MediaType::Other`).

use serde::{Deserialize, Serialize};

use crate::descriptor::check;
use crate::media_type::*;
use crate::spec;
use crate::{Descriptor, DigestError, Platform};

/// An image manifest: one config and an ordered list of layers, bottom first. Every
/// descriptor in it has a sha256 digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "spec::ImageManifest", into = "spec::ImageManifest")]
pub struct Manifest(spec::ImageManifest);

impl Manifest {
    /// A manifest of `media_type` (OCI or Docker schema 2), with `mediaType` written in it.
    pub fn new(media_type: &str, config: Descriptor, layers: Vec<Descriptor>) -> Manifest {
        let m = spec::ImageManifestBuilder::default()
            .schema_version(2u32)
            .media_type(media_type)
            .config(config)
            .layers(
                layers
                    .into_iter()
                    .map(Into::into)
                    .collect::<Vec<spec::Descriptor>>(),
            )
            .build()
            .expect("every required field is set");
        Manifest(m)
    }

    pub fn media_type(&self) -> Option<&str> {
        self.0.media_type().as_ref().map(|m| m.as_ref())
    }

    pub fn config(&self) -> Descriptor {
        Descriptor::checked(self.0.config())
    }

    pub fn layers(&self) -> Vec<Descriptor> {
        self.0.layers().iter().map(Descriptor::checked).collect()
    }

    pub fn spec(&self) -> &spec::ImageManifest {
        &self.0
    }
}

impl TryFrom<spec::ImageManifest> for Manifest {
    type Error = DigestError;
    fn try_from(m: spec::ImageManifest) -> Result<Self, DigestError> {
        check(m.config())?;
        m.layers().iter().try_for_each(check)?;
        m.subject().iter().try_for_each(check)?;
        Ok(Manifest(m))
    }
}

impl From<Manifest> for spec::ImageManifest {
    fn from(m: Manifest) -> spec::ImageManifest {
        m.0
    }
}

/// An index (OCI) or manifest list (Docker): one manifest per platform. Every descriptor
/// in it has a sha256 digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "spec::ImageIndex", into = "spec::ImageIndex")]
pub struct Index(spec::ImageIndex);

impl Index {
    pub fn manifests(&self) -> Vec<Descriptor> {
        self.0.manifests().iter().map(Descriptor::checked).collect()
    }

    pub fn spec(&self) -> &spec::ImageIndex {
        &self.0
    }

    /// The entry for `want`, following the OCI rules: os and architecture must match,
    /// a requested variant must match (arm64 defaults to v8), and attestation manifests
    /// (platform unknown/unknown) are never chosen.
    pub fn select(&self, want: &Platform) -> Option<Descriptor> {
        let candidates = self.0.manifests().iter().filter_map(|d| {
            let p = Platform::from(d.platform().clone()?);
            p.matches(want).then_some((d, p))
        });
        // Prefer an exact variant match over an entry with no variant.
        let mut best = None;
        for (d, p) in candidates {
            if p.variant() == want.variant() {
                return Some(Descriptor::checked(d));
            }
            best.get_or_insert(d);
        }
        best.map(Descriptor::checked)
    }
}

impl TryFrom<spec::ImageIndex> for Index {
    type Error = DigestError;
    fn try_from(i: spec::ImageIndex) -> Result<Self, DigestError> {
        i.manifests().iter().try_for_each(check)?;
        i.subject().iter().try_for_each(check)?;
        Ok(Index(i))
    }
}

impl From<Index> for spec::ImageIndex {
    fn from(i: Index) -> spec::ImageIndex {
        i.0
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
        assert!(amd.digest().hex().starts_with('2'));
        let arm = idx.select(&"linux/arm64".parse().unwrap()).unwrap();
        assert!(arm.digest().hex().starts_with('1'));
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

    const DOCKER_V2: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":1469,"digest":"sha256:5555555555555555555555555555555555555555555555555555555555555555"},"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":2479,"digest":"sha256:6666666666666666666666666666666666666666666666666666666666666666"},{"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","size":10,"digest":"sha256:7777777777777777777777777777777777777777777777777777777777777777","urls":["https://example.invalid/layer"]}]}"#;

    /// Docker schema 2 manifests and lists go through oci-spec's types unchanged: the
    /// Docker media types are `MediaType::Other` and come back as they were.
    #[test]
    fn docker_schema2_round_trips() {
        let ManifestKind::Image(m) = ManifestKind::parse(DOCKER_V2.as_bytes(), None).unwrap() else {
            panic!("expected a manifest")
        };
        assert_eq!(m.media_type(), Some(DOCKER_MANIFEST));
        assert_eq!(m.config().media_type(), DOCKER_CONFIG);
        assert_eq!(m.layers()[0].media_type(), DOCKER_LAYER_GZIP);
        assert_eq!(m.layers()[1].urls(), ["https://example.invalid/layer"]);
        let original: serde_json::Value = serde_json::from_str(DOCKER_V2).unwrap();
        assert_eq!(serde_json::to_value(&m).unwrap(), original);

        let ManifestKind::Index(list) = ManifestKind::parse(LIST.as_bytes(), None).unwrap() else {
            panic!("expected an index")
        };
        assert_eq!(
            list.spec().media_type().as_ref().map(|m| m.as_ref()),
            Some(DOCKER_MANIFEST_LIST)
        );
        let original: serde_json::Value = serde_json::from_str(LIST).unwrap();
        assert_eq!(serde_json::to_value(&list).unwrap(), original);
    }

    /// What buildah, skopeo and oras add to OCI manifests (artifactType, subject,
    /// annotations) parses and survives a round trip.
    #[test]
    fn oci_extensions_round_trip() {
        let doc = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.example+type","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2,"data":"e30="},"layers":[],"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:8888888888888888888888888888888888888888888888888888888888888888","size":7},"annotations":{"org.opencontainers.image.created":"2024-01-01T00:00:00Z"}}"#;
        let ManifestKind::Image(m) = ManifestKind::parse(doc.as_bytes(), None).unwrap() else {
            panic!("expected a manifest")
        };
        let original: serde_json::Value = serde_json::from_str(doc).unwrap();
        assert_eq!(serde_json::to_value(&m).unwrap(), original);
    }

    #[test]
    fn refuses_non_sha256_descriptors() {
        let doc = DOCKER_V2.replace(
            "sha256:6666666666666666666666666666666666666666666666666666666666666666",
            &format!("sha512:{}", "6".repeat(128)),
        );
        let err = ManifestKind::parse(doc.as_bytes(), None).unwrap_err();
        assert!(err.to_string().contains("only sha256"), "{err}");
    }

    /// The manifest the builder and `load` write.
    #[test]
    fn builds_a_manifest() {
        let config = Descriptor::new(OCI_CONFIG, crate::Digest::of(b"{}"), 2);
        let layer = Descriptor::new(OCI_LAYER_GZIP, crate::Digest::of(b"l"), 1);
        let m = Manifest::new(OCI_MANIFEST, config.clone(), vec![layer.clone()]);
        let bytes = serde_json::to_vec(&m).unwrap();
        let ManifestKind::Image(back) = ManifestKind::parse(&bytes, None).unwrap() else {
            panic!("expected a manifest")
        };
        assert_eq!((back.config(), back.layers()), (config, vec![layer]));
    }
}
