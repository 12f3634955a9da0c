//! `pull`: resolve a reference to a platform manifest, fetch and verify every blob, unpack
//! every layer, then (and only then) record the image and move its tag.

use std::sync::Arc;

use berth_layers::UnpackOptions;
use berth_oci::{media_type, Descriptor, Digest, ImageConfig, ManifestKind, Platform};
use berth_reference::ImageRef;
use berth_registry::BlobSink;
use berth_store::{ImageRecord, IngestStart, LayerRecord};
use futures_util::{stream, StreamExt, TryStreamExt};

use crate::{ImageError, ImageService, Progress, ProgressEvent};

/// Layers downloaded at once. Registries and loopback both serve a handful of streams
/// faster than one; more than this mostly adds seeks on a small machine.
const PARALLEL_LAYERS: usize = 4;
/// A blob whose bytes do not hash to its digest is fetched again this many times.
const VERIFY_ATTEMPTS: u32 = 3;

#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    /// The platform to select from an index; the host's when `None`.
    pub platform: Option<Platform>,
}

/// What a pull did.
#[derive(Debug, Clone)]
pub struct PullOutcome {
    pub image: ImageRecord,
    /// The digest the reference resolved to (the index's if there was one).
    pub digest: Digest,
    /// True when the tag already pointed at this image and nothing was fetched.
    pub up_to_date: bool,
}

impl ImageService {
    pub async fn pull(
        &self,
        reference: &ImageRef,
        opts: &PullOptions,
        progress: Arc<dyn Progress>,
    ) -> Result<PullOutcome, ImageError> {
        let outcome = self.pull_image(reference, opts, progress).await?;
        let name = reference.familiar();
        self.emit(berth_events::Action::Pull, &name, &name);
        Ok(outcome)
    }

    async fn pull_image(
        &self,
        reference: &ImageRef,
        opts: &PullOptions,
        progress: Arc<dyn Progress>,
    ) -> Result<PullOutcome, ImageError> {
        let store = self.store.clone();
        let _lease = blocking(move || store.lease()).await?;
        let (domain, repo) = (reference.domain(), reference.path());
        progress.event(ProgressEvent::Status(format!(
            "{}: Pulling from {}",
            reference.manifest_reference(),
            repo_for_status(reference)
        )));

        let top = self
            .registry
            .get_manifest(domain, repo, &reference.manifest_reference())
            .await
            .map_err(|e| not_found_as_image_error(e, reference))?;
        let top_kind =
            ManifestKind::parse(&top.bytes, Some(&top.media_type)).map_err(|e| malformed(reference, e))?;

        let want = opts.platform.clone().unwrap_or_else(Platform::host);
        let (index_digest, manifest_desc, manifest_bytes, manifest) = match top_kind {
            ManifestKind::Image(m) => {
                let desc = Descriptor::new(&top.media_type, top.digest.clone(), top.bytes.len() as u64);
                (None, desc, top.bytes.clone(), m)
            }
            ManifestKind::Index(index) => {
                let chosen = index
                    .select(&want)
                    .ok_or_else(|| ImageError::NoMatchingPlatform {
                        reference: reference.familiar(),
                        platform: want.to_string(),
                        available: index
                            .manifests()
                            .iter()
                            .filter_map(|d| d.platform())
                            .filter(|p| p.os() != "unknown")
                            .map(|p| p.to_string())
                            .collect::<Vec<_>>()
                            .join(", "),
                    })?;
                let fetched = self
                    .registry
                    .get_manifest(domain, repo, &chosen.digest().to_string())
                    .await
                    .map_err(|e| not_found_as_image_error(e, reference))?;
                let ManifestKind::Image(m) = ManifestKind::parse(&fetched.bytes, Some(&fetched.media_type))
                    .map_err(|e| malformed(reference, e))?
                else {
                    return Err(ImageError::Malformed {
                        reference: reference.familiar(),
                        reason: "an index entry points at another index".into(),
                    });
                };
                let mut desc = chosen;
                desc.set_media_type(&fetched.media_type);
                (Some(top.digest.clone()), desc, fetched.bytes, m)
            }
        };
        let resolved_digest = index_digest.clone().unwrap_or_else(|| manifest_desc.digest());

        // Up to date: the tag already names an image made from this very manifest.
        if let Some(tag_name) = tag_key(reference) {
            if let Some(id) = self.store.resolve_tag(&tag_name)? {
                if let Some(rec) = self.store.image(&id)? {
                    if rec.manifest.digest() == manifest_desc.digest() && self.image_complete(&rec) {
                        return Ok(PullOutcome {
                            image: rec,
                            digest: resolved_digest,
                            up_to_date: true,
                        });
                    }
                }
            }
        }

        // The config first: it names the diff IDs the layers must unpack to.
        let config_bytes = self.fetch_small_blob(reference, &manifest.config()).await?;
        let config: ImageConfig =
            serde_json::from_slice(&config_bytes).map_err(|e| malformed(reference, e))?;
        let diff_ids = config.diff_ids().map_err(|e| malformed(reference, e))?;
        let blobs = manifest.layers();
        if diff_ids.len() != blobs.len() {
            return Err(ImageError::Malformed {
                reference: reference.familiar(),
                reason: format!(
                    "its manifest lists {} layers but its config {} diff IDs",
                    blobs.len(),
                    diff_ids.len()
                ),
            });
        }

        let layers: Vec<LayerRecord> = stream::iter(blobs.iter().zip(&diff_ids))
            .map(|(blob, diff_id)| self.pull_layer(reference, blob, diff_id, progress.clone()))
            .buffered(PARALLEL_LAYERS)
            .try_collect()
            .await?;

        // Everything is verified; now make it visible.
        self.store
            .write_blob_expecting(&config_bytes, &manifest.config().digest())?;
        self.store
            .write_blob_expecting(&manifest_bytes, &manifest_desc.digest())?;
        if let Some(index) = &index_digest {
            self.store.write_blob_expecting(&top.bytes, index)?;
        }
        let repo_digest = format!("{}@{}", reference.name(), resolved_digest);
        let mut repo_digests = vec![repo_digest];
        if let Some(old) = self.store.image(&manifest.config().digest())? {
            for d in old.repo_digests {
                if !repo_digests.contains(&d) {
                    repo_digests.push(d);
                }
            }
        }
        let record = ImageRecord {
            id: manifest.config().digest(),
            manifest: manifest_desc,
            index_digest,
            config: manifest.config(),
            layers,
            repo_digests,
            platform: Some(platform_of(&config)),
            created: config.created().clone(),
            stored_at: now_rfc3339(),
        };
        self.store.put_image(record.clone())?;
        if let Some(tag_name) = tag_key(reference) {
            self.store.set_tag(&tag_name, &record.id)?;
        }
        Ok(PullOutcome {
            image: record,
            digest: resolved_digest,
            up_to_date: false,
        })
    }

    /// Whether every blob and layer directory a record names is present.
    pub(crate) fn image_complete(&self, rec: &ImageRecord) -> bool {
        self.store.has_blob(&rec.config.digest())
            && self.store.has_blob(&rec.manifest.digest())
            && rec
                .layers
                .iter()
                .all(|l| self.store.has_blob(&l.blob.digest()) && self.store.has_layer(&l.diff_id))
    }

    async fn fetch_small_blob(&self, reference: &ImageRef, desc: &Descriptor) -> Result<Vec<u8>, ImageError> {
        if self.store.has_blob(&desc.digest()) {
            return Ok(self.store.read_blob(&desc.digest())?);
        }
        let mut last = None;
        for _ in 0..VERIFY_ATTEMPTS {
            let mut sink = MemorySink::default();
            let fetched = self
                .registry
                .fetch_blob(reference.domain(), reference.path(), desc, &mut sink, &|_| {})
                .await;
            match fetched {
                Err(berth_registry::RegistryError::DigestMismatch { actual, .. }) => {
                    last = Some(actual);
                    continue;
                }
                other => other?,
            }
            let actual = Digest::of(&sink.0);
            if actual == desc.digest() {
                return Ok(sink.0);
            }
            last = Some(actual);
        }
        Err(berth_store::StoreError::DigestMismatch {
            expected: desc.digest(),
            actual: last.expect("at least one attempt"),
        }
        .into())
    }

    async fn pull_layer(
        &self,
        reference: &ImageRef,
        blob: &Descriptor,
        diff_id: &Digest,
        progress: Arc<dyn Progress>,
    ) -> Result<LayerRecord, ImageError> {
        let id = blob.digest().short().to_string();
        if media_type::layer_compression(blob.media_type()).is_none() {
            return Err(ImageError::Malformed {
                reference: reference.familiar(),
                reason: format!(
                    "layer {} has media type '{}', which is not a layer",
                    blob.digest(),
                    blob.media_type()
                ),
            });
        }
        if self.store.has_blob(&blob.digest()) && self.store.has_layer(diff_id) {
            progress.event(ProgressEvent::AlreadyExists { id });
            return Ok(LayerRecord {
                blob: blob.clone(),
                diff_id: diff_id.clone(),
                unpacked_size: berth_host::disk::tree_size(&self.store.layer_dir(diff_id)),
            });
        }
        progress.event(ProgressEvent::Waiting {
            id: id.clone(),
            total: blob.size(),
        });
        self.download_verified(reference, blob, &id, &progress).await?;

        if self.store.has_layer(diff_id) {
            progress.event(ProgressEvent::PullComplete { id });
            return Ok(LayerRecord {
                blob: blob.clone(),
                diff_id: diff_id.clone(),
                unpacked_size: berth_host::disk::tree_size(&self.store.layer_dir(diff_id)),
            });
        }
        progress.event(ProgressEvent::Extracting { id: id.clone() });
        let store = self.store.clone();
        let (blob_c, media) = (blob.digest(), blob.media_type().to_string());
        let unpacked = blocking(move || -> Result<_, ImageError> {
            let tmp = store.temp_dir()?;
            let file = store.open_blob(&blob_c)?;
            let reader = std::io::BufReader::with_capacity(1 << 20, file);
            let unpacked = berth_layers::unpack(reader, &tmp, &UnpackOptions::for_media_type(&media))?;
            Ok((tmp, unpacked))
        })
        .await?;
        let (tmp, unpacked) = unpacked;
        if &unpacked.diff_id != diff_id {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(ImageError::DiffIdMismatch {
                reference: reference.familiar(),
                layer: blob.digest(),
                expected: diff_id.clone(),
                actual: unpacked.diff_id,
            });
        }
        self.store.commit_layer(&tmp, diff_id)?;
        progress.event(ProgressEvent::PullComplete { id });
        Ok(LayerRecord {
            blob: blob.clone(),
            diff_id: diff_id.clone(),
            unpacked_size: unpacked.size,
        })
    }

    /// Downloads `blob` into the store, resuming a partial download another (perhaps
    /// killed) pull left, and fetching again when the bytes do not match the digest.
    async fn download_verified(
        &self,
        reference: &ImageRef,
        blob: &Descriptor,
        id: &str,
        progress: &Arc<dyn Progress>,
    ) -> Result<(), ImageError> {
        for attempt in 1..=VERIFY_ATTEMPTS {
            let store = self.store.clone();
            let (digest, size) = (blob.digest(), blob.size());
            let start = blocking(move || store.ingest(&digest, Some(size))).await?;
            let IngestStart::Writer(ingest) = start else {
                return Ok(());
            };
            let mut sink = IngestSink(ingest);
            let total = blob.size();
            let report = {
                let progress = progress.clone();
                let id = id.to_string();
                move |current: u64| {
                    progress.event(ProgressEvent::Downloading {
                        id: id.clone(),
                        current,
                        total,
                    })
                }
            };
            let fetched = self
                .registry
                .fetch_blob(reference.domain(), reference.path(), blob, &mut sink, &report)
                .await;
            let ingest = sink.0;
            match fetched {
                // The client checks what it saw whole; a bad copy is fetched again.
                Err(berth_registry::RegistryError::DigestMismatch { expected, actual })
                    if attempt < VERIFY_ATTEMPTS =>
                {
                    let mut ingest = ingest;
                    blocking(move || {
                        ingest
                            .restart()
                            .map_err(ImageError::io("cannot reset a download"))
                    })
                    .await?;
                    progress.event(ProgressEvent::Retrying {
                        id: id.to_string(),
                        reason: format!("content did not match its digest {expected} (got {actual})"),
                    });
                    continue;
                }
                other => other?,
            }
            progress.event(ProgressEvent::Verifying { id: id.to_string() });
            match blocking(move || Ok::<_, ImageError>(ingest.commit())).await? {
                Ok(()) => return Ok(()),
                Err(berth_store::StoreError::DigestMismatch { expected, actual }) => {
                    if attempt == VERIFY_ATTEMPTS {
                        return Err(berth_store::StoreError::DigestMismatch { expected, actual }.into());
                    }
                    progress.event(ProgressEvent::Retrying {
                        id: id.to_string(),
                        reason: format!("content did not match its digest (got {actual})"),
                    });
                }
                Err(e) => return Err(e.into()),
            }
        }
        unreachable!("the loop returns on its last attempt")
    }
}

struct IngestSink(berth_store::Ingest);

impl BlobSink for IngestSink {
    fn offset(&self) -> u64 {
        self.0.offset()
    }
    fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.0.write(data)
    }
    fn restart(&mut self) -> std::io::Result<()> {
        self.0.restart()
    }
}

/// Collects a small blob (a config) in memory.
#[derive(Default)]
pub(crate) struct MemorySink(pub(crate) Vec<u8>);

impl BlobSink for MemorySink {
    fn offset(&self) -> u64 {
        self.0.len() as u64
    }
    fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.0.extend_from_slice(data);
        Ok(())
    }
    fn restart(&mut self) -> std::io::Result<()> {
        self.0.clear();
        Ok(())
    }
}

/// The tag name a reference moves, if it has a tag (`docker.io/library/flask:latest`).
pub(crate) fn tag_key(reference: &ImageRef) -> Option<String> {
    reference.tag().map(|t| format!("{}:{}", reference.name(), t))
}

fn repo_for_status(r: &ImageRef) -> String {
    if r.domain() == berth_reference::DEFAULT_DOMAIN {
        r.path().to_string()
    } else {
        r.name()
    }
}

pub(crate) fn not_found_as_image_error(e: berth_registry::RegistryError, reference: &ImageRef) -> ImageError {
    match e {
        berth_registry::RegistryError::NotFound { .. } => {
            let registry = if reference.domain() == berth_reference::DEFAULT_DOMAIN {
                match reference.path().rsplit_once('/') {
                    Some((ns, _)) => format!("docker.io/{ns}"),
                    None => "docker.io".into(),
                }
            } else {
                reference.domain().to_string()
            };
            ImageError::NotFoundInRegistry {
                name: reference.familiar(),
                registry,
            }
        }
        other => other.into(),
    }
}

pub(crate) fn malformed(reference: &ImageRef, e: impl std::fmt::Display) -> ImageError {
    ImageError::Malformed {
        reference: reference.familiar(),
        reason: e.to_string(),
    }
}

pub(crate) fn platform_of(config: &ImageConfig) -> Platform {
    config.platform()
}

pub(crate) fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Runs blocking store or unpack work off the async threads.
pub(crate) async fn blocking<T: Send + 'static, E>(
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, ImageError>
where
    E: Into<ImageError> + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(Into::into),
        Err(e) => Err(ImageError::Io {
            context: "a background task failed".into(),
            source: std::io::Error::other(e.to_string()),
        }),
    }
}
