//! `berth system check` for the store: every blob re-hashed, every record's blobs and
//! layer directories present, tags resolving, and nothing left behind by interrupted work.
//!
//! [`Store::check`] only reads. [`Store::repair`] removes what a check found damaged (the
//! bad blob, and the records that need content which is gone, with their tags) and then
//! collects what nothing references; it never touches a record whose content is sound.

use std::fmt;
use std::fs;
use std::io::Read;
use std::path::PathBuf;

use berth_oci::{Digest, Sha256Writer};

use crate::error::io_at;
use crate::fsutil;
use crate::gc::hex_entries;
use crate::lock::{FileLock, Mode};
use crate::{Store, StoreError};

/// What holds content in the store's metadata.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Owner {
    /// An image record, by ID, with one of its names if it has any.
    Image { id: Digest, name: Option<String> },
    /// A build cache entry, by key.
    BuildCache(String),
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Owner::Image { id, name: Some(n) } => write!(f, "image {n} ({})", short(id)),
            Owner::Image { id, name: None } => write!(f, "image {}", short(id)),
            Owner::BuildCache(key) => write!(f, "build cache entry {}", &key[..12.min(key.len())]),
        }
    }
}

fn short(d: &Digest) -> &str {
    &d.hex()[..12]
}

/// One thing wrong in a store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreProblem {
    /// A blob whose bytes do not hash to its name.
    CorruptBlob { digest: Digest, actual: String },
    /// A record needs a blob that is not in the store.
    MissingBlob { owner: Owner, digest: Digest },
    /// A record needs a layer directory that is not in the store.
    MissingLayer { owner: Owner, diff_id: Digest },
    /// A tag names an image record that does not exist.
    DanglingTag { name: String, id: Digest },
    /// A blob no record references (left by an interrupted pull, load or build).
    UnreferencedBlob { digest: Digest, bytes: u64 },
    /// A layer directory no record references.
    UnreferencedLayer { diff_id: Digest, bytes: u64 },
    /// A partial download that no process is writing.
    OrphanIngest { path: PathBuf, bytes: u64 },
}

impl StoreProblem {
    /// Whether this is damage (something a record needs is wrong or gone), as opposed to a
    /// leftover that only takes space.
    pub fn is_damage(&self) -> bool {
        matches!(
            self,
            StoreProblem::CorruptBlob { .. }
                | StoreProblem::MissingBlob { .. }
                | StoreProblem::MissingLayer { .. }
                | StoreProblem::DanglingTag { .. }
        )
    }
}

impl fmt::Display for StoreProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreProblem::CorruptBlob { digest, actual } => {
                write!(f, "blob {digest} is damaged: its content hashes to {actual}")
            }
            StoreProblem::MissingBlob { owner, digest } => {
                write!(f, "{owner} needs blob {digest}, which is not in the store")
            }
            StoreProblem::MissingLayer { owner, diff_id } => write!(
                f,
                "{owner} needs the unpacked layer {diff_id}, which is not in the store"
            ),
            StoreProblem::DanglingTag { name, id } => {
                write!(
                    f,
                    "tag {name} points at image {}, which is not in the store",
                    short(id)
                )
            }
            StoreProblem::UnreferencedBlob { digest, bytes } => {
                write!(
                    f,
                    "blob {digest} ({bytes} bytes) is not used by any image or build cache entry"
                )
            }
            StoreProblem::UnreferencedLayer { diff_id, bytes } => write!(
                f,
                "layer directory {diff_id} ({bytes} bytes) is not used by any image or build cache entry"
            ),
            StoreProblem::OrphanIngest { path, bytes } => write!(
                f,
                "partial download {} ({bytes} bytes) has no process writing it",
                path.display()
            ),
        }
    }
}

/// What [`Store::check`] looked at and found.
#[derive(Clone, Debug, Default)]
pub struct CheckReport {
    pub blobs_checked: usize,
    pub layers_checked: usize,
    pub records_checked: usize,
    pub problems: Vec<StoreProblem>,
    /// A pull, load or build held a lease, so leftovers could not be told from work in
    /// progress and were not counted.
    pub in_flight: bool,
}

/// What [`Store::repair`] removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RepairReport {
    pub blobs_removed: usize,
    /// Image records and build cache entries removed because content they need was gone.
    pub records_removed: Vec<Owner>,
    pub tags_removed: Vec<String>,
    pub layers_removed: usize,
    pub partials_removed: usize,
    /// A lease was held: only the damaged content was handled; run it again later.
    pub deferred: bool,
}

impl Store {
    /// Checks the whole store and reports every problem; changes nothing.
    pub fn check(&self) -> Result<CheckReport, StoreError> {
        let mut report = CheckReport::default();
        // Hash every blob first, without any lock: it reads only, and can take long.
        for (digest, path) in hex_entries(&self.inner.blobs)? {
            report.blobs_checked += 1;
            let actual = hash_file(&path).map_err(io_at(&path))?;
            if actual != digest {
                report.problems.push(StoreProblem::CorruptBlob {
                    digest,
                    actual: actual.to_string(),
                });
            }
        }
        // With gc.lock held nobody adds content, so the reference checks below see a
        // settled store. If a lease is held, leftovers are not judged.
        let gc_lock = &self.inner.gc_lock;
        let gc = FileLock::acquire(gc_lock, Mode::Exclusive, false).map_err(io_at(gc_lock))?;
        report.in_flight = gc.is_none();
        let meta = self.metadata()?;
        for (owner, rec) in owners(&meta) {
            report.records_checked += 1;
            for d in rec.required_blobs() {
                if !self.has_blob(&d) {
                    report.problems.push(StoreProblem::MissingBlob {
                        owner: owner.clone(),
                        digest: d.clone(),
                    });
                }
            }
            for l in &rec.layers {
                if !self.has_layer(&l.diff_id) {
                    report.problems.push(StoreProblem::MissingLayer {
                        owner: owner.clone(),
                        diff_id: l.diff_id.clone(),
                    });
                }
            }
        }
        for (name, id) in &meta.tags {
            if !meta.images.contains_key(id) {
                report.problems.push(StoreProblem::DanglingTag {
                    name: name.clone(),
                    id: id.clone(),
                });
            }
        }
        if report.in_flight {
            return Ok(report);
        }
        let (blob_refs, layer_refs) = meta.references();
        for (digest, path) in hex_entries(&self.inner.blobs)? {
            if !blob_refs.contains(&digest) {
                let bytes = berth_host::disk::tree_size(&path);
                report
                    .problems
                    .push(StoreProblem::UnreferencedBlob { digest, bytes });
            }
        }
        for (diff_id, path) in hex_entries(&self.inner.layers)? {
            report.layers_checked += 1;
            if !layer_refs.contains(&diff_id) {
                let bytes = berth_host::disk::tree_size(&path);
                report
                    .problems
                    .push(StoreProblem::UnreferencedLayer { diff_id, bytes });
            }
        }
        let ingest = &self.inner.ingest;
        for entry in fs::read_dir(ingest).map_err(io_at(ingest))? {
            let entry = entry.map_err(io_at(ingest))?;
            let name = entry.file_name();
            let Some(hex) = name.to_str().and_then(|n| n.strip_suffix(".partial")) else {
                continue;
            };
            let lock_path = ingest.join(format!("{hex}.lock"));
            // A writer holds the digest's lock while it works (a missing lock file means
            // no writer; the check creates none).
            let free = !lock_path.exists()
                || FileLock::acquire(&lock_path, Mode::Exclusive, false)
                    .map_err(io_at(&lock_path))?
                    .is_some();
            if free {
                report.problems.push(StoreProblem::OrphanIngest {
                    path: entry.path(),
                    bytes: entry.metadata().map(|m| m.len()).unwrap_or(0),
                });
            }
        }
        drop(gc);
        Ok(report)
    }

    /// Repairs what `report` found: removes damaged blobs, the records (and their tags)
    /// that need content which is damaged or gone, and dangling tags; then collects every
    /// blob, layer and partial download that nothing references ([`Store::gc`]).
    pub fn repair(&self, report: &CheckReport) -> Result<RepairReport, StoreError> {
        let mut out = RepairReport::default();
        let corrupt: Vec<&Digest> = report
            .problems
            .iter()
            .filter_map(|p| match p {
                StoreProblem::CorruptBlob { digest, .. } => Some(digest),
                _ => None,
            })
            .collect();
        for d in &corrupt {
            let path = self.blob_path(d);
            // Re-hash: the check may be old, and a sound blob is never removed.
            match hash_file(&path) {
                Ok(actual) if actual == **d => continue,
                Ok(_) => {
                    fsutil::remove_all(&path).map_err(io_at(&path))?;
                    out.blobs_removed += 1;
                }
                Err(_) => {}
            }
        }
        // Records that need anything absent now (the blobs just removed included) go, with
        // their tags; so do tags without an image.
        let removed = self.update(|meta| {
            let damaged: Vec<Owner> = owners(meta)
                .filter(|(_, rec)| {
                    rec.required_blobs().any(|d| !self.has_blob(&d))
                        || rec.layers.iter().any(|l| !self.has_layer(&l.diff_id))
                })
                .map(|(o, _)| o)
                .collect();
            let mut tags = Vec::new();
            for o in &damaged {
                match o {
                    Owner::Image { id, .. } => {
                        tags.extend(meta.tags.iter().filter(|(_, v)| *v == id).map(|(k, _)| k.clone()));
                        meta.remove_image(id);
                    }
                    Owner::BuildCache(key) => {
                        meta.build_cache.remove(key);
                    }
                }
            }
            let dangling: Vec<String> = meta
                .tags
                .iter()
                .filter(|(_, id)| !meta.images.contains_key(*id))
                .map(|(k, _)| k.clone())
                .collect();
            for t in &dangling {
                meta.tags.remove(t);
            }
            tags.extend(dangling);
            (damaged, tags)
        })?;
        (out.records_removed, out.tags_removed) = removed;
        let gc = self.gc()?;
        out.deferred = gc.deferred;
        out.blobs_removed += gc.blobs_removed;
        out.layers_removed = gc.layers_removed;
        out.partials_removed = gc.partials_removed;
        Ok(out)
    }
}

/// Every record in the metadata with who owns it.
fn owners(meta: &crate::Metadata) -> impl Iterator<Item = (Owner, &crate::ImageRecord)> {
    let images = meta.images.values().map(|rec| {
        let name = meta
            .tags
            .iter()
            .find(|(_, id)| **id == rec.id)
            .map(|(n, _)| n.clone());
        (
            Owner::Image {
                id: rec.id.clone(),
                name,
            },
            rec,
        )
    });
    let cache = meta
        .build_cache
        .iter()
        .map(|(key, rec)| (Owner::BuildCache(key.clone()), rec));
    images.chain(cache)
}

fn hash_file(path: &std::path::Path) -> std::io::Result<Digest> {
    let mut f = fs::File::open(path)?;
    let mut h = Sha256Writer::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finish())
}
