//! `save` and `load`: docker-archive tarballs (`manifest.json`, `<config>.json`,
//! `<layer>/layer.tar`), the format `docker save`/`docker load` and skopeo's
//! `docker-archive:` transport read and write.

use std::fs::File;
use std::io::{BufReader, Read, Seek, Write};
use std::path::Path;

use berth_layers::{Compression, UnpackOptions};
use berth_oci::{media_type, Descriptor, Digest, ImageConfig, Manifest, Sha256Writer};
use berth_reference::ImageRef;
use berth_store::{ImageRecord, IngestStart, LayerRecord};
use serde::{Deserialize, Serialize};

use crate::pull::{now_rfc3339, platform_of, tag_key};
use crate::{ImageError, ImageService};

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ArchiveEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

impl ImageService {
    /// Writes the named images to `out` as a docker-archive tarball. The file appears
    /// complete or not at all (written aside, then renamed).
    pub fn save(&self, names: &[String], out: &Path) -> Result<(), ImageError> {
        let mut images = Vec::new();
        for name in names {
            let rec = self.resolve(name)?;
            let tag = ImageRef::parse(name)
                .ok()
                .filter(|r| {
                    r.digest().is_none() && self.tags_of(&rec.id).is_ok_and(|t| t.contains(&r.familiar()))
                })
                .map(|r| r.familiar());
            match images
                .iter_mut()
                .find(|(r, _): &&mut (ImageRecord, Vec<String>)| r.id == rec.id)
            {
                Some((_, tags)) => tags.extend(tag),
                None => images.push((rec, tag.into_iter().collect())),
            }
        }
        let dir = out
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let tmp = tempfile::NamedTempFile::new_in(dir)
            .map_err(ImageError::io(format!("cannot write in {}", dir.display())))?;
        let mut tar = tar::Builder::new(std::io::BufWriter::new(tmp));
        let mut entries = Vec::new();
        let mut written_layers = std::collections::HashSet::new();
        for (rec, tags) in &images {
            let config = self.store.read_blob(&rec.config.digest())?;
            let config_name = format!("{}.json", rec.config.digest().hex());
            append_bytes(&mut tar, &config_name, &config)?;
            let mut layers = Vec::new();
            for layer in &rec.layers {
                let name = format!("{}/layer.tar", layer.diff_id.hex());
                if written_layers.insert(layer.diff_id.clone()) {
                    self.append_uncompressed_layer(&mut tar, &name, layer)?;
                }
                layers.push(name);
            }
            entries.push(ArchiveEntry {
                config: config_name,
                repo_tags: Some(tags.clone()),
                layers,
            });
        }
        let manifest = serde_json::to_vec(&entries).expect("serializable");
        append_bytes(&mut tar, "manifest.json", &manifest)?;
        let file = tar
            .into_inner()
            .and_then(|w| w.into_inner().map_err(|e| e.into_error()))
            .map_err(ImageError::io("cannot write the archive"))?;
        file.as_file()
            .sync_all()
            .map_err(ImageError::io("cannot write the archive"))?;
        file.persist(out)
            .map_err(|e| ImageError::io(format!("cannot write {}", out.display()))(e.error))?;
        Ok(())
    }

    /// docker-archive layers are uncompressed tars whose digest is the diff ID.
    fn append_uncompressed_layer<W: Write>(
        &self,
        tar: &mut tar::Builder<W>,
        name: &str,
        layer: &LayerRecord,
    ) -> Result<(), ImageError> {
        let blob = self.store.open_blob(&layer.blob.digest())?;
        let compression = media_type::layer_compression(layer.blob.media_type())
            .unwrap_or(media_type::LayerCompression::Gzip);
        // The tar header needs the size first, so decompress to a scratch file.
        let mut scratch = tempfile::tempfile_in(self.store.root())
            .map_err(ImageError::io("cannot create a scratch file"))?;
        let mut reader: Box<dyn Read> = match compression {
            media_type::LayerCompression::None => Box::new(BufReader::new(blob)),
            media_type::LayerCompression::Gzip => {
                Box::new(flate2::read::GzDecoder::new(BufReader::new(blob)))
            }
            media_type::LayerCompression::Zstd => Box::new(
                zstd::stream::read::Decoder::new(blob).map_err(ImageError::io("cannot read a zstd layer"))?,
            ),
        };
        let size = std::io::copy(&mut reader, &mut scratch).map_err(ImageError::io(format!(
            "cannot decompress layer {}",
            layer.blob.digest()
        )))?;
        scratch
            .rewind()
            .map_err(ImageError::io("cannot read a scratch file"))?;
        let mut header = tar::Header::new_gnu();
        header.set_size(size);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        tar.append_data(&mut header, name, scratch)
            .map_err(ImageError::io("cannot write the archive"))
    }

    /// Loads every image of a docker-archive tarball (plain or gzip/zstd-compressed).
    /// Returns the names loaded (`Loaded image: x:y` / `Loaded image ID: sha256:…`).
    pub fn load(&self, input: &Path) -> Result<Vec<String>, ImageError> {
        let _lease = self.store.lease()?;
        let bad = |reason: String| ImageError::BadArchive {
            path: input.display().to_string(),
            reason,
        };
        let file = File::open(input).map_err(ImageError::io(format!("cannot open {}", input.display())))?;
        // The archive's own entries may come in any order: unpack it aside (with the same
        // escape checks as any layer), then read it as a directory.
        let scratch = self.store.temp_dir()?;
        let opts = UnpackOptions {
            compression: Compression::Auto,
            preserve_ownership: false,
            rootless: false,
        };
        berth_layers::unpack(BufReader::new(file), &scratch, &opts).map_err(|e| bad(e.to_string()))?;
        let result = self.load_dir(&scratch, &bad);
        let _ = std::fs::remove_dir_all(&scratch);
        result
    }

    fn load_dir(&self, dir: &Path, bad: &dyn Fn(String) -> ImageError) -> Result<Vec<String>, ImageError> {
        let manifest =
            std::fs::read(dir.join("manifest.json")).map_err(|_| bad("it has no manifest.json".into()))?;
        let entries: Vec<ArchiveEntry> = serde_json::from_slice(&manifest)
            .map_err(|e| bad(format!("its manifest.json is invalid ({e})")))?;
        let mut loaded = Vec::new();
        for entry in entries {
            let config_bytes = std::fs::read(safe_join(dir, &entry.config, bad)?)
                .map_err(|_| bad(format!("it lists {} but does not contain it", entry.config)))?;
            let config: ImageConfig = serde_json::from_slice(&config_bytes)
                .map_err(|e| bad(format!("{} is not an image config ({e})", entry.config)))?;
            let diff_ids = config
                .diff_ids()
                .map_err(|e| bad(format!("{} is not an image config ({e})", entry.config)))?;
            if diff_ids.len() != entry.layers.len() {
                return Err(bad(format!(
                    "{} lists {} layers but its config {} diff IDs",
                    entry.config,
                    entry.layers.len(),
                    diff_ids.len()
                )));
            }
            let mut layers = Vec::new();
            for (path, diff_id) in entry.layers.iter().zip(&diff_ids) {
                layers.push(self.load_layer(&safe_join(dir, path, bad)?, diff_id, bad)?);
            }
            let config_digest = self.store.write_blob(&config_bytes)?;
            let manifest = Manifest::new(
                media_type::OCI_MANIFEST,
                Descriptor::new(
                    media_type::OCI_CONFIG,
                    config_digest.clone(),
                    config_bytes.len() as u64,
                ),
                layers.iter().map(|l: &LayerRecord| l.blob.clone()).collect(),
            );
            let manifest_bytes = serde_json::to_vec(&manifest).expect("serializable");
            let manifest_digest = self.store.write_blob(&manifest_bytes)?;
            let old = self.store.image(&config_digest)?;
            let record = ImageRecord {
                id: config_digest.clone(),
                manifest: Descriptor::new(
                    media_type::OCI_MANIFEST,
                    manifest_digest,
                    manifest_bytes.len() as u64,
                ),
                index_digest: None,
                config: manifest.config(),
                layers,
                repo_digests: old.map(|o| o.repo_digests).unwrap_or_default(),
                platform: Some(platform_of(&config)),
                created: config.created().clone(),
                stored_at: now_rfc3339(),
            };
            self.store.put_image(record)?;
            let tags = entry.repo_tags.unwrap_or_default();
            if tags.is_empty() {
                loaded.push(format!("Loaded image ID: {config_digest}"));
            }
            for t in tags {
                let r = ImageRef::parse(&t)?;
                self.store
                    .set_tag(&tag_key(&r).expect("parse adds a tag"), &config_digest)?;
                loaded.push(format!("Loaded image: {}", r.familiar()));
            }
        }
        Ok(loaded)
    }

    fn load_layer(
        &self,
        path: &Path,
        diff_id: &Digest,
        bad: &dyn Fn(String) -> ImageError,
    ) -> Result<LayerRecord, ImageError> {
        let shown = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let mut f = File::open(path).map_err(|_| bad(format!("a layer file is missing ({shown})")))?;
        let mut prefix = [0u8; 8];
        let n = f
            .read(&mut prefix)
            .map_err(ImageError::io("cannot read a layer"))?;
        let compression = berth_layers::detect_compression(&prefix[..n]);
        let media = match compression {
            media_type::LayerCompression::None => media_type::OCI_LAYER_TAR,
            media_type::LayerCompression::Gzip => media_type::OCI_LAYER_GZIP,
            media_type::LayerCompression::Zstd => media_type::OCI_LAYER_ZSTD,
        };
        // The blob digest is the file's hash; for an uncompressed layer it is the diff ID.
        let mut hasher = Sha256Writer::new();
        f.rewind().map_err(ImageError::io("cannot read a layer"))?;
        std::io::copy(&mut f, &mut hasher).map_err(ImageError::io("cannot read a layer"))?;
        let size = hasher.len();
        let blob_digest = hasher.finish();
        if compression == media_type::LayerCompression::None && &blob_digest != diff_id {
            return Err(bad(format!(
                "layer {shown} hashes to {blob_digest}, but the config says {diff_id}"
            )));
        }
        if let IngestStart::Writer(mut ingest) = self.store.ingest(&blob_digest, Some(size))? {
            ingest.restart().map_err(ImageError::io("cannot write a blob"))?;
            f.rewind().map_err(ImageError::io("cannot read a layer"))?;
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = f.read(&mut buf).map_err(ImageError::io("cannot read a layer"))?;
                if n == 0 {
                    break;
                }
                ingest
                    .write(&buf[..n])
                    .map_err(ImageError::io("cannot write a blob"))?;
            }
            ingest.commit()?;
        }
        let mut unpacked_size = berth_host::disk::tree_size(&self.store.layer_dir(diff_id));
        if !self.store.has_layer(diff_id) {
            let tmp = self.store.temp_dir()?;
            let blob = self.store.open_blob(&blob_digest)?;
            let unpacked =
                berth_layers::unpack(BufReader::new(blob), &tmp, &UnpackOptions::for_media_type(media))?;
            if &unpacked.diff_id != diff_id {
                let _ = std::fs::remove_dir_all(&tmp);
                return Err(bad(format!(
                    "layer {shown} unpacks to {}, but the config says {diff_id}",
                    unpacked.diff_id
                )));
            }
            self.store.commit_layer(&tmp, diff_id)?;
            unpacked_size = unpacked.size;
        }
        Ok(LayerRecord {
            blob: Descriptor::new(media, blob_digest, size),
            diff_id: diff_id.clone(),
            unpacked_size,
        })
    }
}

fn append_bytes<W: Write>(tar: &mut tar::Builder<W>, name: &str, data: &[u8]) -> Result<(), ImageError> {
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    tar.append_data(&mut header, name, data)
        .map_err(ImageError::io("cannot write the archive"))
}

/// A path named inside an archive's manifest, refused if it leaves the archive.
fn safe_join(
    dir: &Path,
    name: &str,
    bad: &dyn Fn(String) -> ImageError,
) -> Result<std::path::PathBuf, ImageError> {
    let p = Path::new(name);
    if p.is_absolute()
        || p.components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(bad(format!(
            "its manifest names '{name}', which lies outside the archive"
        )));
    }
    // Symlinks in the archive must not lead the reader to files of the host.
    let joined = dir.join(p);
    let (Ok(real), Ok(base)) = (joined.canonicalize(), dir.canonicalize()) else {
        return Err(bad(format!("it lists {name} but does not contain it")));
    };
    if !real.starts_with(&base) {
        return Err(bad(format!(
            "its entry '{name}' is a link that leads outside the archive"
        )));
    }
    Ok(real)
}
