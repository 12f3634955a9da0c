//! Unpacking image layer tarballs into per-layer directories ready to be stacked with
//! overlayfs.
//!
//! [`unpack`] reads a layer blob once: the reader feeds the decompressor (gzip, zstd or none,
//! declared by the media type or sniffed from magic bytes), whose output is hashed on its way
//! into the tar parser. The hash over the whole decompressed stream, including the
//! end-of-archive blocks and any padding after them, is the layer's `diff_id`.
//!
//! # Safety model
//!
//! Nothing is ever written outside `dest`:
//!
//! * Entry names are resolved lexically. Absolute names and names whose `..` components climb
//!   above the root are refused with [`LayerError::Escape`]. A leading `./` is normal.
//! * Every write walks from the layer root one component at a time with `openat(O_NOFOLLOW)`
//!   and creates the final component with `*at` calls relative to its parent directory. A
//!   symlink on the way is refused: the unpacker never follows a symlink, so an entry `a`
//!   pointing at `/etc` followed by an entry `a/passwd` fails instead of writing `/etc/passwd`.
//! * An entry that replaces an existing one first removes it (unlink, or an fd-relative
//!   recursive removal for directories) and then creates a new file with `O_CREAT|O_EXCL`, so
//!   a symlink planted by an earlier entry is replaced, never written through.
//! * Relative symlink targets are resolved lexically from the link's directory and refused when
//!   they climb above the layer root (`x/evil -> ../../..`).
//! * **Absolute symlink targets are kept as they are.** Images are full of them
//!   (`lib64/ld-linux-x86-64.so.2 -> /lib/x86_64-linux-gnu/ld-2.36.so`); the kernel resolves
//!   them inside the container's root at run time. Because the unpacker never follows a
//!   symlink, such a target cannot redirect any write made while unpacking.
//! * Hard link targets must be relative, must not climb, must not pass through a symlink,
//!   and must already exist in this layer (so a link can never share an inode with a host
//!   file).
//!
//! On any error `dest` is removed entirely, and the error names the offending entry.
//!
//! # Metadata
//!
//! Modes (including setuid/setgid/sticky) are always applied; ownership (`lchown`) and device
//! nodes (`mknod`) only with [`UnpackOptions::preserve_ownership`]. Without it, character and
//! block devices are skipped silently; fifos are always created. Directory modes and mtimes are
//! applied at the end, deepest first, after their children have been written. Directories that
//! the tar does not list but whose children it does are created with mode 0755.
//!
//! Extended attributes come from PAX `SCHILY.xattr.*` records and are set without following
//! links. Policy: a filesystem that does not support xattrs (`EOPNOTSUPP`) is skipped silently
//! for every namespace; `EPERM` on `security.*` and `trusted.*` is ignored when unpacking
//! without privileges, and `EPERM` on `user.*` for symlinks and device nodes (where the kernel
//! never allows them) is ignored; every other failure is an error. `trusted.overlay.*`
//! attributes in the tar are dropped: overlay metadata is written only by the whiteout
//! conversion below, so a layer cannot forge redirects or opaque markers through xattrs.
//!
//! # Whiteouts
//!
//! OCI whiteouts become overlayfs whiteouts: `D/.wh..wh..opq` sets `trusted.overlay.opaque=y`
//! on `D` (`user.overlay.opaque` when [`UnpackOptions::rootless`]; no file is created), and
//! `D/.wh.NAME` becomes a character device 0/0 named `NAME`.
//! Both need root or a user namespace; without either, unpacking a layer with whiteouts fails with
//! [`LayerError::NeedsPrivilege`]. Other `.wh..wh.*` names (aufs bookkeeping) are ignored.
//! As in tar, a later entry replaces an earlier one with the same name.

mod error;
mod paths;
mod pool;
mod unpack;

use std::io::{self, Read};
use std::path::Path;

use berth_oci::{Digest, Sha256Writer};

pub use berth_oci::media_type::LayerCompression;
pub use error::LayerError;

use unpack::{Fail, Unpacker};

/// How the layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// As declared (for example by the layer's media type).
    Known(LayerCompression),
    /// Sniffed from the first bytes: gzip `1f 8b`, zstd `28 b5 2f fd`, else a plain tar.
    Auto,
}

#[derive(Debug, Clone)]
pub struct UnpackOptions {
    pub compression: Compression,
    /// Apply owners (`lchown`) and create device nodes (`mknod`). Needs root.
    pub preserve_ownership: bool,
    /// Unpacking inside a rootless engine's user namespace: opaque directories are marked
    /// with `user.overlay.opaque` (overlayfs mounted with `userxattr` reads that) and device
    /// nodes are left out (the kernel refuses them there); owners are applied as mapped.
    pub rootless: bool,
}

impl UnpackOptions {
    /// Options for a layer of media type `mt`: its declared compression (or [`Compression::Auto`]
    /// for a type that does not declare one), preserving ownership when running as root.
    pub fn for_media_type(mt: &str) -> Self {
        UnpackOptions {
            compression: berth_oci::media_type::layer_compression(mt)
                .map(Compression::Known)
                .unwrap_or(Compression::Auto),
            preserve_ownership: berth_host::privilege::can_chown(),
            rootless: berth_host::privilege::in_user_namespace(),
        }
    }
}

/// What [`unpack`] produced.
#[derive(Debug, Clone)]
pub struct UnpackedLayer {
    /// sha256 of the uncompressed tar stream, all of it (including the end-of-archive blocks
    /// and any padding after them).
    pub diff_id: Digest,
    /// Bytes of regular-file content written.
    pub size: u64,
    /// Tar entries processed (PAX and GNU long-name headers are not counted separately).
    pub entries: u64,
}

/// The compression a blob's first bytes indicate.
pub fn detect_compression(prefix: &[u8]) -> LayerCompression {
    if prefix.starts_with(&[0x1f, 0x8b]) {
        LayerCompression::Gzip
    } else if prefix.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        LayerCompression::Zstd
    } else {
        LayerCompression::None
    }
}

/// Unpacks the layer blob `reader` into `dest`, which must not exist or be an empty directory.
///
/// On error `dest` is removed (unless it was refused up front because it held something).
pub fn unpack(reader: impl Read, dest: &Path, opts: &UnpackOptions) -> Result<UnpackedLayer, LayerError> {
    prepare_dest(dest)?;
    let result = unpack_into(reader, dest, opts);
    if result.is_err() {
        // Best effort: the original error is what the caller needs to see.
        let _ = std::fs::remove_dir_all(dest);
    }
    result
}

fn prepare_dest(dest: &Path) -> Result<(), LayerError> {
    let io = |op, source| LayerError::Io {
        entry: "(layer root)".to_string(),
        op,
        path: dest.to_path_buf(),
        source,
    };
    match std::fs::symlink_metadata(dest) {
        Ok(md) => {
            let empty = md.is_dir()
                && std::fs::read_dir(dest)
                    .map_err(|e| io("read", e))?
                    .next()
                    .is_none();
            if !empty {
                return Err(LayerError::DestinationNotEmpty {
                    path: dest.to_path_buf(),
                });
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|e| io("create the parent of", e))?;
            }
            std::fs::create_dir(dest).map_err(|e| io("create", e))?;
        }
        Err(e) => return Err(io("inspect", e)),
    }
    Ok(())
}

/// Hashes the decompressed stream on its way to the tar parser and remembers whether the
/// stream below it failed or reached its end.
struct Tee<R> {
    inner: R,
    hasher: Sha256Writer,
    failed: bool,
    eof: bool,
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(0) => {
                if !buf.is_empty() {
                    self.eof = true;
                }
                Ok(0)
            }
            Ok(n) => {
                self.hasher.update(&buf[..n]);
                Ok(n)
            }
            Err(e) => {
                if e.kind() != io::ErrorKind::Interrupted {
                    self.failed = true;
                }
                Err(e)
            }
        }
    }
}

fn open_stream<'a>(
    mut reader: impl Read + 'a,
    compression: Compression,
) -> Result<(Box<dyn Read + 'a>, LayerCompression), LayerError> {
    let mut prefix = Vec::new();
    let kind = match compression {
        Compression::Known(k) => k,
        Compression::Auto => {
            let mut buf = [0u8; 4];
            let mut got = 0;
            while got < buf.len() {
                match reader.read(&mut buf[got..]) {
                    Ok(0) => break,
                    Ok(n) => got += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(source) => {
                        return Err(LayerError::Read {
                            context: "at the start of the stream".to_string(),
                            source,
                        })
                    }
                }
            }
            prefix.extend_from_slice(&buf[..got]);
            detect_compression(&prefix)
        }
    };
    let chained = io::Cursor::new(prefix).chain(reader);
    let stream: Box<dyn Read + 'a> = match kind {
        LayerCompression::None => Box::new(io::BufReader::with_capacity(64 * 1024, chained)),
        LayerCompression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(chained)),
        LayerCompression::Zstd => {
            Box::new(
                zstd::stream::read::Decoder::new(chained).map_err(|source| LayerError::Decompress {
                    compression: kind,
                    context: "at the start of the stream".to_string(),
                    source,
                })?,
            )
        }
    };
    Ok((stream, kind))
}

fn unpack_into(reader: impl Read, dest: &Path, opts: &UnpackOptions) -> Result<UnpackedLayer, LayerError> {
    let (stream, kind) = open_stream(reader, opts.compression)?;
    let mut tee = Tee {
        inner: stream,
        hasher: Sha256Writer::new(),
        failed: false,
        eof: false,
    };
    let mut unpacker = Unpacker::new(dest, opts)?;
    let mut last: Option<String> = None;
    let outcome = {
        let mut archive = tar::Archive::new(&mut tee);
        run_entries(&mut archive, &mut unpacker, &mut last)
    };
    let stream_error = |tee: &Tee<_>, context: String, source: io::Error| {
        if !tee.failed {
            LayerError::Corrupt {
                context,
                reason: source.to_string(),
            }
        } else if kind == LayerCompression::None {
            LayerError::Read { context, source }
        } else {
            LayerError::Decompress {
                compression: kind,
                context,
                source,
            }
        }
    };
    let after_last = |last: &Option<String>| match last {
        Some(name) => format!("after tar entry '{name}'"),
        None => "before the first tar entry".to_string(),
    };
    match outcome {
        Ok(()) => {}
        Err(Fail::Layer(e)) => return Err(e),
        Err(Fail::Stream { context, source }) => return Err(stream_error(&tee, context, source)),
    }
    if tee.eof {
        return Err(LayerError::Corrupt {
            context: after_last(&last),
            reason: "the stream ends without a tar end-of-archive marker; the layer is truncated".to_string(),
        });
    }
    // The tar parser stops at the first zero block; the diff_id covers the rest too.
    if let Err(source) = io::copy(&mut tee, &mut io::sink()) {
        return Err(stream_error(
            &tee,
            "after the tar end-of-archive marker".to_string(),
            source,
        ));
    }
    unpacker.finish_dirs()?;
    Ok(UnpackedLayer {
        diff_id: tee.hasher.finish(),
        size: unpacker.size,
        entries: unpacker.entries,
    })
}

fn run_entries<R: Read>(
    archive: &mut tar::Archive<R>,
    unpacker: &mut Unpacker<'_>,
    last: &mut Option<String>,
) -> Result<(), Fail> {
    let context = |last: &Option<String>| match last {
        Some(name) => format!("reading the tar header after entry '{name}'"),
        None => "reading the first tar header".to_string(),
    };
    let entries = archive.entries().map_err(|source| Fail::Stream {
        context: context(last),
        source,
    })?;
    for entry in entries {
        let mut entry = entry.map_err(|source| Fail::Stream {
            context: context(last),
            source,
        })?;
        *last = Some(String::from_utf8_lossy(&entry.path_bytes()).into_owned());
        unpacker.process(&mut entry)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_compression_from_magic() {
        assert_eq!(detect_compression(&[0x1f, 0x8b, 8, 0]), LayerCompression::Gzip);
        assert_eq!(
            detect_compression(&[0x28, 0xb5, 0x2f, 0xfd]),
            LayerCompression::Zstd
        );
        assert_eq!(detect_compression(b"usr/"), LayerCompression::None);
        assert_eq!(detect_compression(&[0x1f]), LayerCompression::None);
        assert_eq!(detect_compression(&[]), LayerCompression::None);
    }

    #[test]
    fn options_follow_the_media_type() {
        use berth_oci::media_type as mt;
        let o = UnpackOptions::for_media_type(mt::DOCKER_LAYER_GZIP);
        assert_eq!(o.compression, Compression::Known(LayerCompression::Gzip));
        assert_eq!(o.preserve_ownership, berth_host::privilege::can_chown());
        assert_eq!(
            UnpackOptions::for_media_type(mt::OCI_LAYER_ZSTD).compression,
            Compression::Known(LayerCompression::Zstd)
        );
        assert_eq!(
            UnpackOptions::for_media_type(mt::OCI_LAYER_TAR).compression,
            Compression::Known(LayerCompression::None)
        );
        assert_eq!(
            UnpackOptions::for_media_type("text/plain").compression,
            Compression::Auto
        );
    }
}
