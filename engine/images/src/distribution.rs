//! `distribution inspect`: what a registry holds under a reference, without pulling it
//! (docker's `GET /distribution/{name}/json`): the top manifest's descriptor and the
//! platforms it serves.

use berth_oci::{Descriptor, ImageConfig, ManifestKind, Platform};
use berth_reference::ImageRef;

use crate::pull::{malformed, not_found_as_image_error, MemorySink};
use crate::{ImageError, ImageService};

/// The answer: the descriptor of what the reference names, and its platforms.
#[derive(Debug, Clone)]
pub struct Distribution {
    pub descriptor: Descriptor,
    pub platforms: Vec<Platform>,
}

impl ImageService {
    /// Asks the registry about `reference`: an index's platforms come from its entries, a
    /// single image's from its config (fetched and verified, not stored).
    pub async fn distribution(&self, reference: &ImageRef) -> Result<Distribution, ImageError> {
        let (domain, repo) = (reference.domain(), reference.path());
        let top = self
            .registry
            .get_manifest(domain, repo, &reference.manifest_reference())
            .await
            .map_err(|e| not_found_as_image_error(e, reference))?;
        let descriptor = Descriptor::new(&top.media_type, top.digest.clone(), top.bytes.len() as u64);
        let platforms = match ManifestKind::parse(&top.bytes, Some(&top.media_type))
            .map_err(|e| malformed(reference, e))?
        {
            ManifestKind::Index(index) => index
                .manifests()
                .iter()
                .filter_map(|d| d.platform())
                .filter(|p| p.os() != "unknown")
                .collect(),
            ManifestKind::Image(m) => {
                let mut sink = MemorySink::default();
                self.registry
                    .fetch_blob(domain, repo, &m.config(), &mut sink, &|_| {})
                    .await
                    .map_err(|e| not_found_as_image_error(e, reference))?;
                let config: ImageConfig =
                    serde_json::from_slice(&sink.0).map_err(|e| malformed(reference, e))?;
                vec![config.platform()]
            }
        };
        Ok(Distribution {
            descriptor,
            platforms,
        })
    }
}
