//! Turning a directory in overlayfs form (a RUN's upper dir, or a COPY's) into a layer:
//! a tar stream with OCI whiteouts (`.wh.name` for a char 0/0 device, `.wh..wh..opq` for
//! an opaque directory), gzipped into a verified blob, and the directory itself moved into
//! the store as the unpacked layer.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Seek, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

#[cfg(test)]
use berth_oci::Digest;
use berth_oci::{media_type, Descriptor, Sha256Writer};
use berth_store::{IngestStart, LayerRecord, Store};

use crate::BuildError;

/// Where overlayfs marks opaque directories: `trusted.` as the host's root, `user.` when
/// mounted with `userxattr` in a rootless engine's user namespace, and fuse-overlayfs's own
/// (an ordinary user's engine on a kernel that refuses overlayfs there).
const OPAQUE_XATTRS: [&str; 3] = [
    "trusted.overlay.opaque",
    "user.overlay.opaque",
    "user.fuseoverlayfs.opaque",
];

/// The xattr prefixes of overlay bookkeeping (origin, impure, opaque), which is not image
/// content.
const OVERLAY_XATTR_PREFIXES: [&str; 3] = ["trusted.overlay.", "user.overlay.", "user.fuseoverlayfs."];

/// Hashes everything written through it.
struct Hashing<W> {
    inner: W,
    hash: Sha256Writer,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn xattrs(path: &Path) -> Vec<(String, Vec<u8>)> {
    let mut names = vec![0u8; 4096];
    let Ok(n) = rustix::fs::llistxattr(path, &mut names) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for name in names[..n].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = String::from_utf8_lossy(name).into_owned();
        // overlayfs bookkeeping (origin, impure, opaque) is not image content.
        if OVERLAY_XATTR_PREFIXES.iter().any(|p| name.starts_with(p)) {
            continue;
        }
        let mut val = vec![0u8; 64 * 1024];
        if let Ok(len) = rustix::fs::lgetxattr(path, name.as_str(), &mut val) {
            val.truncate(len);
            out.push((name, val));
        }
    }
    out
}

pub(crate) fn is_opaque(path: &Path) -> bool {
    let mut v = [0u8; 4];
    OPAQUE_XATTRS
        .iter()
        .any(|x| matches!(rustix::fs::lgetxattr(path, *x, &mut v), Ok(1) if v[0] == b'y'))
}

struct TarWriter<W: Write> {
    tar: tar::Builder<W>,
    links: HashMap<(u64, u64), String>,
    size: u64,
}

impl<W: Write> TarWriter<W> {
    fn header(meta: &fs::Metadata, kind: tar::EntryType) -> tar::Header {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_mode(meta.mode() & 0o7777);
        h.set_uid(meta.uid() as u64);
        h.set_gid(meta.gid() as u64);
        h.set_mtime(meta.mtime().max(0) as u64);
        h.set_size(0);
        h
    }

    fn walk(&mut self, root: &Path, rel: &str) -> io::Result<()> {
        let dir = root.join(rel);
        let mut names: Vec<_> = fs::read_dir(&dir)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()?;
        names.sort();
        for name in names {
            let name = String::from_utf8_lossy(name.as_bytes()).into_owned();
            let child = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            let path = root.join(&child);
            let meta = fs::symlink_metadata(&path)?;
            let ft = meta.file_type();
            let pax = xattrs(&path);
            let whiteout = ft.is_char_device() && meta.rdev() == 0;
            if !pax.is_empty() && !whiteout {
                let ext: Vec<(String, Vec<u8>)> = pax
                    .into_iter()
                    .map(|(k, v)| (format!("SCHILY.xattr.{k}"), v))
                    .collect();
                self.tar
                    .append_pax_extensions(ext.iter().map(|(k, v)| (k.as_str(), v.as_slice())))?;
            }
            if ft.is_dir() {
                let mut h = Self::header(&meta, tar::EntryType::Directory);
                self.tar.append_data(&mut h, format!("{child}/"), io::empty())?;
                if is_opaque(&path) {
                    let mut h = Self::header(&meta, tar::EntryType::Regular);
                    h.set_mode(0o644);
                    self.tar
                        .append_data(&mut h, format!("{child}/.wh..wh..opq"), io::empty())?;
                }
                self.walk(root, &child)?;
            } else if ft.is_char_device() && meta.rdev() == 0 {
                let mut h = Self::header(&meta, tar::EntryType::Regular);
                h.set_mode(0o644);
                let wh = match child.rsplit_once('/') {
                    Some((parent, base)) => format!("{parent}/.wh.{base}"),
                    None => format!(".wh.{child}"),
                };
                self.tar.append_data(&mut h, wh, io::empty())?;
            } else if ft.is_symlink() {
                let target = fs::read_link(&path)?;
                let mut h = Self::header(&meta, tar::EntryType::Symlink);
                self.tar.append_link(&mut h, &child, &target)?;
            } else if ft.is_file() {
                if meta.nlink() > 1 {
                    let key = (meta.dev(), meta.ino());
                    if let Some(first) = self.links.get(&key) {
                        let mut h = Self::header(&meta, tar::EntryType::Link);
                        self.tar.append_link(&mut h, &child, first)?;
                        continue;
                    }
                    self.links.insert(key, child.clone());
                }
                let mut h = Self::header(&meta, tar::EntryType::Regular);
                h.set_size(meta.len());
                self.size += meta.len();
                let f = fs::File::open(&path)?;
                self.tar.append_data(&mut h, &child, f)?;
            } else {
                let kind = if ft.is_char_device() {
                    tar::EntryType::Char
                } else if ft.is_block_device() {
                    tar::EntryType::Block
                } else if ft.is_fifo() {
                    tar::EntryType::Fifo
                } else {
                    continue; // sockets do not go into layers
                };
                let mut h = Self::header(&meta, kind);
                let rdev = meta.rdev();
                h.set_device_major(rustix::fs::major(rdev))?;
                h.set_device_minor(rustix::fs::minor(rdev))?;
                self.tar.append_data(&mut h, &child, io::empty())?;
            }
        }
        Ok(())
    }
}

/// Strips overlayfs bookkeeping xattrs (except opacity) so the directory reads as a
/// plain layer when it is used as a lower layer later.
fn strip_overlay_xattrs(root: &Path) -> io::Result<()> {
    for name in [
        "trusted.overlay.origin",
        "trusted.overlay.impure",
        "trusted.overlay.nlink",
    ] {
        let _ = rustix::fs::lremovexattr(root, name);
    }
    let meta = fs::symlink_metadata(root)?;
    if meta.is_dir() {
        for e in fs::read_dir(root)? {
            strip_overlay_xattrs(&e?.path())?;
        }
    }
    Ok(())
}

/// Rewrites an upper dir that fuse-overlayfs wrote (an ordinary user's engine where the
/// kernel refused overlayfs) into the kernel overlay's form, so the layer reads the same on
/// either: a directory fuse-overlayfs made opaque (`user.fuseoverlayfs.opaque`, its
/// `.wh..wh..opq` file, its `.wh..opq` whiteout) gets the kernel's opaque xattr instead,
/// and a `.wh.NAME` file it left where it could not make a whiteout device becomes one.
/// An upper dir the kernel wrote has none of these and is left as it is.
fn kernel_markers(dir: &Path, opaque_xattr: &str) -> io::Result<()> {
    let mut v = [0u8; 4];
    let fuse_opaque =
        matches!(rustix::fs::lgetxattr(dir, "user.fuseoverlayfs.opaque", &mut v), Ok(1) if v[0] == b'y');
    let file_marker = dir.join(".wh..wh..opq");
    let dev_marker = dir.join(".wh..opq");
    let is_whiteout =
        |p: &Path| fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_char_device() && m.rdev() == 0);
    let opaque = fuse_opaque
        || fs::symlink_metadata(&file_marker).is_ok_and(|m| m.is_file())
        || is_whiteout(&dev_marker);
    if opaque {
        let _ = fs::remove_file(&file_marker);
        if is_whiteout(&dev_marker) {
            fs::remove_file(&dev_marker)?;
        }
        let _ = rustix::fs::lremovexattr(dir, "user.fuseoverlayfs.opaque");
        rustix::fs::lsetxattr(dir, opaque_xattr, b"y", rustix::fs::XattrFlags::empty())?;
    }
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let meta = fs::symlink_metadata(&path)?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if meta.is_dir() {
            kernel_markers(&path, opaque_xattr)?;
        } else if let Some(hidden) = name
            .strip_prefix(".wh.")
            .filter(|h| !h.is_empty() && meta.is_file() && meta.len() == 0)
        {
            let target = dir.join(hidden);
            if fs::symlink_metadata(&target).is_err()
                && rustix::fs::mknodat(
                    rustix::fs::CWD,
                    &target,
                    rustix::fs::FileType::CharacterDevice,
                    rustix::fs::Mode::empty(),
                    0,
                )
                .is_ok()
            {
                fs::remove_file(&path)?;
            }
        }
    }
    Ok(())
}

/// Makes a layer of `dir` (consumed: moved into the store): writes the gzipped tar blob,
/// then commits the directory as `layers/<diff_id>`. `scratch` is a directory on the
/// store's filesystem for the temporary tar.
pub fn commit_dir(store: &Store, dir: &Path, scratch: &Path) -> Result<LayerRecord, BuildError> {
    let opaque_xattr = if berth_host::privilege::in_user_namespace() {
        "user.overlay.opaque"
    } else {
        "trusted.overlay.opaque"
    };
    kernel_markers(dir, opaque_xattr).map_err(BuildError::io(format!(
        "cannot read the overlay markers of {}",
        dir.display()
    )))?;
    let tmp_path: PathBuf = scratch.join("layer.tar.gz");
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp_path)
        .map_err(BuildError::io(format!("cannot create {}", tmp_path.display())))?;
    let compressed = Hashing {
        inner: io::BufWriter::with_capacity(256 * 1024, file),
        hash: Sha256Writer::new(),
    };
    let gz = flate2::write::GzEncoder::new(compressed, flate2::Compression::fast());
    let plain = Hashing {
        inner: gz,
        hash: Sha256Writer::new(),
    };
    let mut tw = TarWriter {
        tar: tar::Builder::new(plain),
        links: HashMap::new(),
        size: 0,
    };
    let io_err = BuildError::io(format!("cannot write the layer of {}", dir.display()));
    let result = tw.walk(dir, "").and_then(|()| tw.tar.into_inner());
    let plain = result.map_err(io_err)?;
    let diff_id = plain.hash.finish();
    let compressed = plain
        .inner
        .finish()
        .map_err(BuildError::io("cannot compress the layer"))?;
    let blob_digest = compressed.hash.finish();
    let mut file = compressed
        .inner
        .into_inner()
        .map_err(|e| BuildError::io("cannot write the layer")(e.into_error()))?;
    let blob_size = file
        .stream_position()
        .map_err(BuildError::io("cannot write the layer"))?;
    match store.ingest(&blob_digest, Some(blob_size))? {
        IngestStart::Present => {}
        IngestStart::Writer(mut w) => {
            w.restart().map_err(BuildError::io("cannot store the layer"))?;
            file.rewind().map_err(BuildError::io("cannot store the layer"))?;
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                let n =
                    io::Read::read(&mut file, &mut buf).map_err(BuildError::io("cannot store the layer"))?;
                if n == 0 {
                    break;
                }
                w.write(&buf[..n])
                    .map_err(BuildError::io("cannot store the layer"))?;
            }
            w.commit()?;
        }
    }
    drop(file);
    let _ = fs::remove_file(&tmp_path);
    strip_overlay_xattrs(dir).map_err(BuildError::io(format!("cannot prepare {}", dir.display())))?;
    store.commit_layer(dir, &diff_id)?;
    Ok(LayerRecord {
        blob: Descriptor::new(media_type::OCI_LAYER_GZIP, blob_digest, blob_size),
        diff_id,
        unpacked_size: tw.size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_whiteouts_become_oci_whiteouts() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::open(&root.path().join("store")).unwrap();
        let scratch = root.path().join("scratch");
        fs::create_dir(&scratch).unwrap();
        let dir = store.temp_dir().unwrap();
        fs::create_dir_all(dir.join("etc")).unwrap();
        fs::create_dir_all(dir.join("var/cache")).unwrap();
        fs::write(dir.join("etc/new.conf"), "x").unwrap();
        fs::hard_link(dir.join("etc/new.conf"), dir.join("etc/link.conf")).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            dir.join("etc/motd"),
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::empty(),
            0,
        )
        .unwrap();
        rustix::fs::setxattr(
            dir.join("var/cache"),
            OPAQUE_XATTRS[0],
            b"y",
            rustix::fs::XattrFlags::empty(),
        )
        .unwrap();
        let rec = commit_dir(&store, &dir, &scratch).unwrap();
        assert!(store.has_layer(&rec.diff_id));
        let blob = store.open_blob(&rec.blob.digest()).unwrap();
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(blob));
        let entries: Vec<(String, tar::EntryType)> = tar
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    e.header().entry_type(),
                )
            })
            .collect();
        let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "etc/",
                "etc/link.conf",
                "etc/.wh.motd",
                "etc/new.conf",
                "var/",
                "var/cache/",
                "var/cache/.wh..wh..opq"
            ]
        );
        // The second name of a hard-linked file is a link entry.
        assert_eq!(entries[3].1, tar::EntryType::Link);
        // The same directory again gives the same diff ID and blob.
        let mut raw = Vec::new();
        io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(store.open_blob(&rec.blob.digest()).unwrap()),
            &mut raw,
        )
        .unwrap();
        assert_eq!(Digest::of(&raw), rec.diff_id);
    }
}
