//! `push`: upload a local image's blobs (skipping those the registry has, mounting those
//! another repository of the same registry has), then its manifest under the tag.

use std::sync::Arc;

use berth_oci::{Descriptor, Digest};
use berth_reference::ImageRef;
use berth_registry::{BlobSource, RegistryError};
use berth_store::Store;

use crate::pull::tag_key;
use crate::{ImageError, ImageService, Progress, ProgressEvent};

/// What a push did, for docker's closing line `TAG: digest: sha256:… size: N`.
#[derive(Debug, Clone)]
pub struct PushOutcome {
    pub tag: String,
    pub digest: Digest,
    pub size: u64,
}

impl ImageService {
    pub async fn push(
        &self,
        reference: &ImageRef,
        progress: Arc<dyn Progress>,
    ) -> Result<PushOutcome, ImageError> {
        let outcome = self.push_image(reference, progress).await.map_err(|e| match e {
            // Mirrors serve pulls only: the advice must not suggest one.
            ImageError::Registry(RegistryError::Unreachable(mut u)) => {
                u.pushing = true;
                ImageError::Registry(RegistryError::Unreachable(u))
            }
            other => other,
        })?;
        let name = reference.familiar();
        self.emit(berth_events::Action::Push, &name, &name);
        Ok(outcome)
    }

    async fn push_image(
        &self,
        reference: &ImageRef,
        progress: Arc<dyn Progress>,
    ) -> Result<PushOutcome, ImageError> {
        let key = tag_key(reference).ok_or_else(|| ImageError::NotFoundLocally(reference.familiar()))?;
        let id = self
            .store
            .resolve_tag(&key)?
            .ok_or_else(|| ImageError::NotFoundLocally(reference.familiar()))?;
        let record = self
            .store
            .image(&id)?
            .ok_or_else(|| ImageError::NotFoundLocally(reference.familiar()))?;
        let (domain, repo) = (reference.domain(), reference.path());
        progress.event(ProgressEvent::Status(format!(
            "The push refers to repository [{}]",
            reference.name()
        )));

        // Repositories of the same registry this image came from: mount candidates.
        let mount_from: Vec<String> = record
            .repo_digests
            .iter()
            .filter_map(|rd| rd.split_once('@').map(|(name, _)| name.to_string()))
            .filter_map(|name| name.strip_prefix(&format!("{domain}/")).map(str::to_string))
            .filter(|r| r != repo)
            .collect();

        let mut blobs: Vec<&Descriptor> = record.layers.iter().map(|l| &l.blob).collect();
        blobs.push(&record.config);
        for blob in blobs {
            self.push_one_blob(domain, repo, blob, &mount_from, &progress)
                .await?;
        }

        let manifest = self.store.read_blob(&record.manifest.digest())?;
        let tag = reference.tag().unwrap_or(berth_reference::DEFAULT_TAG);
        let digest = self
            .registry
            .put_manifest(domain, repo, tag, record.manifest.media_type(), &manifest)
            .await?;
        // Record that this image now also lives in the pushed repository.
        let repo_digest = format!("{}@{}", reference.name(), digest);
        if !record.repo_digests.contains(&repo_digest) {
            let mut updated = record.clone();
            updated.repo_digests.push(repo_digest);
            self.store.put_image(updated)?;
        }
        Ok(PushOutcome {
            tag: tag.to_string(),
            digest,
            size: manifest.len() as u64,
        })
    }

    async fn push_one_blob(
        &self,
        domain: &str,
        repo: &str,
        blob: &Descriptor,
        mount_from: &[String],
        progress: &Arc<dyn Progress>,
    ) -> Result<(), ImageError> {
        let id = blob.digest().short().to_string();
        if self
            .registry
            .blob_exists(domain, repo, &blob.digest())
            .await?
            .is_some()
        {
            progress.event(ProgressEvent::AlreadyExists { id });
            return Ok(());
        }
        for from in mount_from {
            if self
                .registry
                .mount_blob(domain, repo, &blob.digest(), from)
                .await?
            {
                progress.event(ProgressEvent::Mounted {
                    id,
                    from: from.clone(),
                });
                return Ok(());
            }
        }
        progress.event(ProgressEvent::Waiting {
            id: id.clone(),
            total: blob.size(),
        });
        let source = StoreBlob {
            store: self.store.clone(),
            digest: blob.digest(),
        };
        let total = blob.size();
        let report = {
            let (progress, id) = (progress.clone(), id.clone());
            move |current: u64| {
                progress.event(ProgressEvent::Pushing {
                    id: id.clone(),
                    current,
                    total,
                })
            }
        };
        self.registry
            .push_blob(domain, repo, blob, &source, &report)
            .await?;
        progress.event(ProgressEvent::Pushed { id });
        Ok(())
    }
}

/// A stored blob, re-openable for each upload attempt.
struct StoreBlob {
    store: Store,
    digest: Digest,
}

impl BlobSource for StoreBlob {
    fn open(&self) -> std::io::Result<Box<dyn std::io::Read + Send>> {
        let file = self
            .store
            .open_blob(&self.digest)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::NotFound, e.to_string()))?;
        Ok(Box::new(file))
    }
}
