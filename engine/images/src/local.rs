//! Local image operations: resolve, list, tag, remove, prune, history.

use berth_oci::{Digest, ImageConfig};
use berth_reference::ImageRef;
use berth_store::ImageRecord;

use crate::{ImageError, ImageService};

/// One row of `images`: an image under one of its tags (or `<none>`).
#[derive(Debug, Clone, PartialEq)]
pub struct ImageSummary {
    /// Familiar repository name (`flask`, `127.0.0.1:5000/app`) or `<none>`.
    pub repository: String,
    pub tag: String,
    pub id: Digest,
    /// RFC 3339 creation time from the image config.
    pub created: Option<String>,
    /// Uncompressed size of all layers, as docker's SIZE column.
    pub size: u64,
    pub repo_digests: Vec<String>,
}

/// What `rmi` and `image prune` did, line by line, as docker prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoveEvent {
    Untagged(String),
    Deleted(Digest),
}

#[derive(Debug, Clone, Default)]
pub struct PruneReport {
    pub events: Vec<RemoveEvent>,
    pub space_reclaimed: u64,
}

/// A row of `history`, newest first.
#[derive(Debug, Clone)]
pub struct HistoryRow {
    /// The image ID on the top row, `<missing>` below (docker's rendering).
    pub id: String,
    pub created: Option<String>,
    pub created_by: String,
    pub size: u64,
    pub comment: String,
}

impl ImageService {
    /// Finds a local image by reference (`flask`, `flask:3`) or by ID prefix.
    pub fn resolve(&self, name_or_id: &str) -> Result<ImageRecord, ImageError> {
        let as_id = name_or_id.strip_prefix("sha256:").unwrap_or(name_or_id);
        let looks_like_id =
            !as_id.is_empty() && as_id.len() <= 64 && as_id.bytes().all(|b| b.is_ascii_hexdigit());
        // A full ID wins outright; a short hex string is first tried as a name, as docker does.
        if looks_like_id && as_id.len() == 64 {
            if let Some(rec) = self.store.find_image(as_id)? {
                return Ok(rec);
            }
        }
        if let Ok(reference) = ImageRef::parse(name_or_id) {
            if let Some(key) = crate::pull::tag_key(&reference) {
                if let Some(id) = self.store.resolve_tag(&key)? {
                    if let Some(rec) = self.store.image(&id)? {
                        return Ok(rec);
                    }
                }
            }
            if let Some(d) = reference.digest() {
                let wanted = format!("{}@{}", reference.name(), d);
                if let Some(rec) = self
                    .store
                    .images()?
                    .into_iter()
                    .find(|r| r.repo_digests.contains(&wanted))
                {
                    return Ok(rec);
                }
            }
        }
        if looks_like_id && name_or_id != "sha256" {
            if let Some(rec) = self.store.find_image(as_id)? {
                return Ok(rec);
            }
        }
        Err(ImageError::NotFoundLocally(name_or_id.to_string()))
    }

    /// Reads an image's config blob.
    pub fn config(&self, rec: &ImageRecord) -> Result<ImageConfig, ImageError> {
        let bytes = self.store.read_blob(&rec.config.digest())?;
        serde_json::from_slice(&bytes).map_err(|e| ImageError::Malformed {
            reference: rec.id.short().to_string(),
            reason: format!("its config is not valid JSON ({e})"),
        })
    }

    /// The familiar `repo:tag` names of an image.
    pub fn tags_of(&self, id: &Digest) -> Result<Vec<String>, ImageError> {
        let mut tags: Vec<String> = self
            .store
            .tags()?
            .into_iter()
            .filter(|(_, d)| d == id)
            .filter_map(|(name, _)| ImageRef::parse(&name).ok().map(|r| r.familiar()))
            .collect();
        tags.sort();
        Ok(tags)
    }

    pub fn list(&self) -> Result<Vec<ImageSummary>, ImageError> {
        let tags = self.store.tags()?;
        let mut rows = Vec::new();
        for rec in self.store.images()? {
            let size = rec.layers.iter().map(|l| l.unpacked_size).sum();
            let mine: Vec<ImageRef> = tags
                .iter()
                .filter(|(_, d)| *d == rec.id)
                .filter_map(|(name, _)| ImageRef::parse(name).ok())
                .collect();
            let row = |repository: String, tag: String| ImageSummary {
                repository,
                tag,
                id: rec.id.clone(),
                created: rec.created.clone(),
                size,
                repo_digests: rec.repo_digests.clone(),
            };
            if mine.is_empty() {
                rows.push(row("<none>".into(), "<none>".into()));
            }
            for r in mine {
                rows.push(row(r.familiar_name(), r.tag().unwrap_or("<none>").to_string()));
            }
        }
        // Newest first, like docker; ties by name for a stable order.
        rows.sort_by(|a, b| {
            b.created
                .cmp(&a.created)
                .then_with(|| a.repository.cmp(&b.repository))
                .then_with(|| a.tag.cmp(&b.tag))
        });
        Ok(rows)
    }

    /// `tag SOURCE TARGET`.
    pub fn tag(&self, source: &str, target: &str) -> Result<ImageRef, ImageError> {
        let rec = self.resolve(source)?;
        let target = ImageRef::parse(target)?;
        if target.digest().is_some() {
            return Err(ImageError::Reference(berth_reference::ReferenceError::Invalid {
                input: target.familiar(),
                reason: "a tag target cannot contain a digest".into(),
            }));
        }
        let key = crate::pull::tag_key(&target).expect("parse adds a default tag");
        self.store.set_tag(&key, &rec.id)?;
        self.emit(berth_events::Action::Tag, &rec.id.to_string(), &target.familiar());
        Ok(target)
    }

    /// `rmi [-f] NAME`: untags a name; deletes the image when no tag is left (or when
    /// removed by ID). Unreferenced blobs and layers are collected afterwards.
    pub fn remove(&self, name_or_id: &str, force: bool) -> Result<Vec<RemoveEvent>, ImageError> {
        let rec = self.resolve(name_or_id)?;
        let tags = self.tags_of(&rec.id)?;
        let by_name = ImageRef::parse(name_or_id)
            .ok()
            .filter(|r| tags.contains(&r.familiar()) && !is_id_of(name_or_id, &rec.id));
        let mut events = Vec::new();
        match by_name {
            Some(r) if tags.len() > 1 => {
                // Only this name goes; the image stays under its other names.
                self.store
                    .remove_tag(&crate::pull::tag_key(&r).expect("tagged"))?;
                events.push(RemoveEvent::Untagged(r.familiar()));
                self.emit(berth_events::Action::Untag, &rec.id.to_string(), &r.familiar());
                return Ok(events);
            }
            None if tags.len() > 1 && !force => {
                return Err(ImageError::MultipleTags {
                    name: name_or_id.to_string(),
                    tags: tags.join(", "),
                });
            }
            _ => {}
        }
        for t in &tags {
            events.push(RemoveEvent::Untagged(t.clone()));
        }
        for d in &rec.repo_digests {
            if let Ok(r) = ImageRef::parse(d) {
                events.push(RemoveEvent::Untagged(r.familiar()));
            }
        }
        self.store.remove_image(&rec.id)?;
        events.push(RemoveEvent::Deleted(rec.id.clone()));
        self.store.gc()?;
        self.emit(berth_events::Action::Delete, &rec.id.to_string(), name_or_id);
        Ok(events)
    }

    /// `image prune [-a]`: removes dangling images (no tag), or with `all` every image that
    /// no container uses (`in_use`: the image IDs containers were created from).
    pub fn prune(&self, all: bool, in_use: &[Digest]) -> Result<PruneReport, ImageError> {
        let before = self.store.disk_usage()?;
        let tags = self.store.tags()?;
        let mut report = PruneReport::default();
        for rec in self.store.images()? {
            let tagged = tags.iter().any(|(_, d)| *d == rec.id);
            if (tagged && !all) || in_use.contains(&rec.id) {
                continue;
            }
            for (name, d) in &tags {
                if *d == rec.id {
                    if let Ok(r) = ImageRef::parse(name) {
                        report.events.push(RemoveEvent::Untagged(r.familiar()));
                    }
                }
            }
            self.store.remove_image(&rec.id)?;
            report.events.push(RemoveEvent::Deleted(rec.id.clone()));
        }
        self.store.gc()?;
        let after = self.store.disk_usage()?;
        report.space_reclaimed =
            (before.blob_bytes + before.layer_bytes).saturating_sub(after.blob_bytes + after.layer_bytes);
        Ok(report)
    }

    pub fn history(&self, name_or_id: &str) -> Result<Vec<HistoryRow>, ImageError> {
        let rec = self.resolve(name_or_id)?;
        let config = self.config(&rec)?;
        let mut layer_sizes = rec.layers.iter().map(|l| l.unpacked_size);
        let mut rows: Vec<HistoryRow> = config
            .history_entries()
            .iter()
            .map(|h| HistoryRow {
                id: "<missing>".into(),
                created: h.created().clone(),
                created_by: h.created_by().clone().unwrap_or_default(),
                size: if h.empty_layer().unwrap_or(false) {
                    0
                } else {
                    layer_sizes.next().unwrap_or(0)
                },
                comment: h.comment().clone().unwrap_or_default(),
            })
            .collect();
        if rows.is_empty() {
            // Images built without history still show one row per layer.
            rows = rec
                .layers
                .iter()
                .map(|l| HistoryRow {
                    id: "<missing>".into(),
                    created: rec.created.clone(),
                    created_by: String::new(),
                    size: l.unpacked_size,
                    comment: String::new(),
                })
                .collect();
        }
        rows.reverse();
        if let Some(top) = rows.first_mut() {
            top.id = rec.id.to_string();
        }
        Ok(rows)
    }
}

fn is_id_of(s: &str, id: &Digest) -> bool {
    let hex = s.strip_prefix("sha256:").unwrap_or(s);
    !hex.is_empty() && id.hex().starts_with(hex)
}
