//! Unpacking well-formed layers built with the `tar` crate, in every compression, plus
//! corrupt and truncated streams.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use berth_layers::{unpack, Compression, LayerCompression, LayerError, UnpackOptions, UnpackedLayer};
use sha2::{Digest as _, Sha256};

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// Builds tar archives entry by entry.
struct Tar {
    b: tar::Builder<Vec<u8>>,
}

impl Tar {
    fn new() -> Tar {
        let mut b = tar::Builder::new(Vec::new());
        b.mode(tar::HeaderMode::Complete);
        Tar { b }
    }

    fn header(kind: tar::EntryType, mode: u32, mtime: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_mtime(mtime);
        h.set_uid(0);
        h.set_gid(0);
        h.set_size(0);
        h
    }

    fn dir(&mut self, path: &str, mode: u32, mtime: u64) -> &mut Self {
        let mut h = Self::header(tar::EntryType::Directory, mode, mtime);
        self.b.append_data(&mut h, path, std::io::empty()).unwrap();
        self
    }

    fn file_owned(
        &mut self,
        path: &str,
        data: &[u8],
        mode: u32,
        mtime: u64,
        uid: u64,
        gid: u64,
    ) -> &mut Self {
        let mut h = Self::header(tar::EntryType::Regular, mode, mtime);
        h.set_uid(uid);
        h.set_gid(gid);
        h.set_size(data.len() as u64);
        self.b.append_data(&mut h, path, data).unwrap();
        self
    }

    fn file(&mut self, path: &str, data: &[u8], mode: u32) -> &mut Self {
        self.file_owned(path, data, mode, 1_600_000_000, 0, 0)
    }

    fn link(&mut self, kind: tar::EntryType, path: &str, target: &str) -> &mut Self {
        let mut h = Self::header(kind, 0o777, 1_600_000_000);
        self.b.append_link(&mut h, path, target).unwrap();
        self
    }

    fn node(&mut self, kind: tar::EntryType, path: &str, mode: u32, major: u32, minor: u32) -> &mut Self {
        let mut h = Self::header(kind, mode, 1_600_000_000);
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        self.b.append_data(&mut h, path, std::io::empty()).unwrap();
        self
    }

    /// A PAX extended header applying to the next entry.
    fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Self {
        let mut data = Vec::new();
        for (key, value) in records {
            let body_len = key.len() + value.len() + 3; // ' ', '=', '\n'
            let mut len = body_len + 1;
            while len != body_len + len.to_string().len() {
                len = body_len + len.to_string().len();
            }
            data.extend_from_slice(format!("{len} {key}=").as_bytes());
            data.extend_from_slice(value);
            data.push(b'\n');
        }
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::XHeader);
        h.set_path("PaxHeaders/next").unwrap();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_cksum();
        self.b.append(&h, data.as_slice()).unwrap();
        self
    }

    fn finish(self) -> Vec<u8> {
        self.b.into_inner().unwrap()
    }
}

fn compress(tar: &[u8], c: LayerCompression) -> Vec<u8> {
    match c {
        LayerCompression::None => tar.to_vec(),
        LayerCompression::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(tar).unwrap();
            e.finish().unwrap()
        }
        LayerCompression::Zstd => zstd::encode_all(tar, 3).unwrap(),
    }
}

fn opts(compression: Compression) -> UnpackOptions {
    UnpackOptions {
        compression,
        preserve_ownership: is_root(),
        rootless: false,
    }
}

fn unpack_bytes(blob: &[u8], dest: &Path, compression: Compression) -> Result<UnpackedLayer, LayerError> {
    unpack(blob, dest, &opts(compression))
}

fn mode_of(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

fn xattr(p: &Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    match rustix::fs::lgetxattr(p, name, &mut buf) {
        Ok(n) => {
            buf.truncate(n);
            Some(buf)
        }
        Err(_) => None,
    }
}

const LONG_DIR: &str = "deep/dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd";

/// A layer exercising every ordinary entry kind. Returns the tar and the bytes of file content.
fn rich_layer() -> (Vec<u8>, u64) {
    let long_file = format!("{LONG_DIR}/{}", "f".repeat(150));
    let mut t = Tar::new();
    t.dir("./", 0o755, 1_000)
        .dir("./etc/", 0o750, 2_000)
        .file_owned("./etc/hosts", b"127.0.0.1 localhost\n", 0o644, 3_000, 1000, 1001)
        // ./usr and ./usr/bin are not listed: they must be created 0755.
        .file("./usr/bin/su", b"#!/bin/su\n", 0o4755)
        .file("./usr/bin/wall", b"wall\n", 0o2755)
        .link(
            tar::EntryType::Symlink,
            "./lib64/ld-linux-x86-64.so.2",
            "/lib/x86_64-linux-gnu/ld-2.36.so",
        )
        .link(tar::EntryType::Symlink, "./usr/bin/hosts", "../../etc/hosts")
        .link(tar::EntryType::Link, "./etc/hosts.hard", "./etc/hosts")
        .file(&long_file, b"long name\n", 0o600)
        .pax(&[
            ("SCHILY.xattr.user.berth", b"hello"),
            ("SCHILY.xattr.trusted.overlay.redirect", b"/etc"),
            ("mtime", b"1650000000.25"),
        ])
        .file("./xattr.txt", b"x\n", 0o644)
        .dir("./tmp/", 0o1777, 4_000)
        .node(tar::EntryType::Fifo, "./run/fifo", 0o600, 0, 0)
        .node(tar::EntryType::Char, "./dev/null", 0o666, 1, 3)
        .node(tar::EntryType::Block, "./dev/loop0", 0o660, 7, 0)
        .link(tar::EntryType::Link, "./dev/null.link", "./dev/null")
        .dir("./ro/", 0o555, 5_000)
        .file("./ro/inside", b"inside\n", 0o444);
    let size = 20 + 10 + 5 + 10 + 2 + 7;
    (t.finish(), size)
}

fn check_rich_layer(root: &Path, devices: bool) {
    assert_eq!(
        fs::read(root.join("etc/hosts")).unwrap(),
        b"127.0.0.1 localhost\n"
    );
    assert_eq!(mode_of(&root.join("etc/hosts")), 0o644);
    assert_eq!(mode_of(&root.join("etc")), 0o750);
    assert_eq!(mode_of(&root.join("usr")), 0o755);
    assert_eq!(mode_of(&root.join("usr/bin")), 0o755);
    assert_eq!(mode_of(&root.join("usr/bin/su")), 0o4755);
    assert_eq!(mode_of(&root.join("usr/bin/wall")), 0o2755);
    assert_eq!(mode_of(&root.join("tmp")), 0o1777);
    assert_eq!(mode_of(&root.join("ro")), 0o555);
    assert_eq!(fs::read(root.join("ro/inside")).unwrap(), b"inside\n");

    // Directory mtimes survive their children being written.
    assert_eq!(fs::metadata(root).unwrap().mtime(), 1_000);
    assert_eq!(fs::metadata(root.join("etc")).unwrap().mtime(), 2_000);
    assert_eq!(fs::metadata(root.join("ro")).unwrap().mtime(), 5_000);
    assert_eq!(fs::metadata(root.join("etc/hosts")).unwrap().mtime(), 3_000);
    let x = fs::metadata(root.join("xattr.txt")).unwrap();
    assert_eq!((x.mtime(), x.mtime_nsec()), (1_650_000_000, 250_000_000));

    let ld = root.join("lib64/ld-linux-x86-64.so.2");
    assert!(fs::symlink_metadata(&ld).unwrap().file_type().is_symlink());
    assert_eq!(
        fs::read_link(&ld).unwrap(),
        Path::new("/lib/x86_64-linux-gnu/ld-2.36.so")
    );
    assert_eq!(
        fs::read_link(root.join("usr/bin/hosts")).unwrap(),
        Path::new("../../etc/hosts")
    );

    let hosts = fs::metadata(root.join("etc/hosts")).unwrap();
    let hard = fs::metadata(root.join("etc/hosts.hard")).unwrap();
    assert_eq!(hosts.ino(), hard.ino());
    assert_eq!(hosts.nlink(), 2);

    let long_file = root.join(format!("{LONG_DIR}/{}", "f".repeat(150)));
    assert_eq!(fs::read(&long_file).unwrap(), b"long name\n");
    assert_eq!(mode_of(&long_file), 0o600);

    assert_eq!(
        xattr(&root.join("xattr.txt"), "user.berth").as_deref(),
        Some(&b"hello"[..])
    );
    assert_eq!(xattr(&root.join("xattr.txt"), "trusted.overlay.redirect"), None);

    let fifo = fs::symlink_metadata(root.join("run/fifo")).unwrap();
    assert!(fifo.file_type().is_fifo());
    assert_eq!(fifo.permissions().mode() & 0o7777, 0o600);

    if devices {
        let null = fs::symlink_metadata(root.join("dev/null")).unwrap();
        assert!(null.file_type().is_char_device());
        assert_eq!(null.rdev(), rustix::fs::makedev(1, 3));
        assert_eq!(null.permissions().mode() & 0o7777, 0o666);
        let lp = fs::symlink_metadata(root.join("dev/loop0")).unwrap();
        assert!(lp.file_type().is_block_device());
        assert_eq!(lp.rdev(), rustix::fs::makedev(7, 0));
        assert_eq!((hosts.uid(), hosts.gid()), (1000, 1001));
        assert_eq!(
            fs::symlink_metadata(root.join("dev/null.link")).unwrap().ino(),
            null.ino()
        );
    } else {
        assert!(!root.join("dev/null").exists());
        assert!(!root.join("dev/loop0").exists());
        assert!(!root.join("dev/null.link").exists());
    }
}

#[test]
fn unpacks_every_entry_kind_in_every_compression() {
    let (tar, size) = rich_layer();
    for c in [
        LayerCompression::None,
        LayerCompression::Gzip,
        LayerCompression::Zstd,
    ] {
        let blob = compress(&tar, c);
        for compression in [Compression::Known(c), Compression::Auto] {
            let tmp = tempfile::tempdir().unwrap();
            let dest = tmp.path().join("layer");
            let layer =
                unpack_bytes(&blob, &dest, compression).unwrap_or_else(|e| panic!("{compression:?}: {e}"));
            assert_eq!(layer.diff_id.to_string(), sha256(&tar), "{compression:?}");
            assert_eq!(layer.size, size, "{compression:?}");
            assert_eq!(layer.entries, 17, "{compression:?}");
            check_rich_layer(&dest, is_root());
        }
    }
}

#[test]
fn unprivileged_unpack_skips_devices() {
    let (tar, _) = rich_layer();
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("layer");
    let o = UnpackOptions {
        compression: Compression::Auto,
        preserve_ownership: false,
        rootless: false,
    };
    unpack(tar.as_slice(), &dest, &o).unwrap();
    check_rich_layer(&dest, false);
    let hosts = fs::metadata(dest.join("etc/hosts")).unwrap();
    assert_eq!(hosts.uid(), rustix::process::geteuid().as_raw());
}

#[test]
fn diff_id_covers_padding_after_the_end_of_archive() {
    let mut t = Tar::new();
    t.file("a", b"a\n", 0o644);
    let mut tar = t.finish();
    // Some tools pad to a 10240-byte record; the diff_id is over the whole stream.
    tar.resize(tar.len() + 10240, 0);
    for c in [
        LayerCompression::None,
        LayerCompression::Gzip,
        LayerCompression::Zstd,
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("layer");
        let layer = unpack_bytes(&compress(&tar, c), &dest, Compression::Auto).unwrap();
        assert_eq!(layer.diff_id.to_string(), sha256(&tar), "{c:?}");
        assert_eq!(layer.entries, 1);
        assert_eq!(layer.size, 2);
    }
}

#[test]
fn concatenated_gzip_members_are_one_stream() {
    let mut t = Tar::new();
    t.file("a", &[7u8; 3000], 0o644).file("b", b"b", 0o644);
    let tar = t.finish();
    let (first, second) = tar.split_at(1000);
    let mut blob = compress(first, LayerCompression::Gzip);
    blob.extend(compress(second, LayerCompression::Gzip));
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("layer");
    let layer = unpack_bytes(&blob, &dest, Compression::Known(LayerCompression::Gzip)).unwrap();
    assert_eq!(layer.diff_id.to_string(), sha256(&tar));
    assert_eq!(fs::read(dest.join("a")).unwrap(), vec![7u8; 3000]);
}

#[test]
fn later_entries_replace_earlier_ones() {
    let outside = tempfile::tempdir().unwrap();
    let canary = outside.path().join("canary");
    fs::write(&canary, b"canary").unwrap();
    let mut t = Tar::new();
    t.dir("x/", 0o755, 1)
        .file("x/child", b"child", 0o644)
        .file("x", b"x is a file now", 0o644)
        .file("f", b"f", 0o644)
        .dir("f/", 0o700, 1)
        .link(tar::EntryType::Symlink, "s", canary.to_str().unwrap())
        .file("s", b"replaced", 0o644)
        .file("d", b"first", 0o644)
        .file("d", b"second", 0o600)
        .link(tar::EntryType::Symlink, "dir", "/")
        .dir("dir/", 0o755, 1);
    let tar = t.finish();
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("layer");
    unpack_bytes(&tar, &dest, Compression::Auto).unwrap();
    assert_eq!(fs::read(dest.join("x")).unwrap(), b"x is a file now");
    assert!(fs::symlink_metadata(dest.join("f")).unwrap().is_dir());
    assert_eq!(mode_of(&dest.join("f")), 0o700);
    assert!(fs::symlink_metadata(dest.join("s")).unwrap().is_file());
    assert_eq!(fs::read(dest.join("s")).unwrap(), b"replaced");
    assert_eq!(fs::read(&canary).unwrap(), b"canary");
    assert_eq!(fs::read(dest.join("d")).unwrap(), b"second");
    assert_eq!(mode_of(&dest.join("d")), 0o600);
    assert!(fs::symlink_metadata(dest.join("dir")).unwrap().is_dir());
}

#[test]
fn whiteouts_become_overlayfs_whiteouts() {
    if !is_root() {
        eprintln!("whiteouts need root (mknod, trusted.* xattrs); not running as root");
        return;
    }
    let mut t = Tar::new();
    t.dir("a/", 0o755, 1)
        .file("a/.wh.gone", b"", 0o644)
        .file("a/kept", b"kept", 0o644)
        .file("b/.wh..wh..opq", b"", 0o644)
        .file("b/new", b"new", 0o644)
        .file("top/.wh..wh.plnk", b"", 0o644)
        .pax(&[("SCHILY.xattr.trusted.overlay.opaque", b"y")])
        .dir("c/", 0o755, 1);
    let tar = t.finish();
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("layer");
    unpack_bytes(&tar, &dest, Compression::Auto).unwrap();

    let gone = fs::symlink_metadata(dest.join("a/gone")).unwrap();
    assert!(gone.file_type().is_char_device());
    assert_eq!(gone.rdev(), 0);
    assert!(!dest.join("a/.wh.gone").exists());
    assert_eq!(fs::read(dest.join("a/kept")).unwrap(), b"kept");

    assert_eq!(
        xattr(&dest.join("b"), "trusted.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
    assert!(!dest.join("b/.wh..wh..opq").exists());
    assert_eq!(fs::read(dest.join("b/new")).unwrap(), b"new");
    assert!(!dest.join("top/.wh..wh.plnk").exists());
    // A layer cannot forge overlay metadata through PAX xattrs.
    assert_eq!(xattr(&dest.join("c"), "trusted.overlay.opaque"), None);
    assert_eq!(xattr(&dest.join("a"), "trusted.overlay.opaque"), None);
}

#[test]
fn corrupt_gzip_is_a_decompress_error_and_removes_dest() {
    let mut t = Tar::new();
    t.file("a", b"some data", 0o644);
    let tar = t.finish();
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("layer");

    // A valid gzip header followed by an invalid deflate block type.
    let mut blob = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];
    blob.extend([0xffu8; 64]);
    let err = unpack_bytes(&blob, &dest, Compression::Auto).unwrap_err();
    assert!(
        matches!(
            err,
            LayerError::Decompress {
                compression: LayerCompression::Gzip,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with("could not decompress the gzip layer stream"),
        "{err}"
    );
    assert!(!dest.exists());

    // A gzip stream cut short.
    let gz = compress(&tar, LayerCompression::Gzip);
    let err = unpack_bytes(&gz[..gz.len() / 2], &dest, Compression::Auto).unwrap_err();
    assert!(matches!(err, LayerError::Decompress { .. }), "{err:?}");
    assert!(!dest.exists());

    // Declared gzip, but a plain tar.
    let err = unpack_bytes(&tar, &dest, Compression::Known(LayerCompression::Gzip)).unwrap_err();
    assert!(matches!(err, LayerError::Decompress { .. }), "{err:?}");
    assert!(!dest.exists());

    // A zstd stream cut short.
    let zst = compress(&tar, LayerCompression::Zstd);
    let err = unpack_bytes(&zst[..zst.len() - 8], &dest, Compression::Auto).unwrap_err();
    assert!(
        matches!(
            err,
            LayerError::Decompress {
                compression: LayerCompression::Zstd,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!dest.exists());
}

#[test]
fn truncated_tar_is_corrupt_and_removes_dest() {
    let mut t = Tar::new();
    t.file("first", b"ok", 0o644).file("big", &[1u8; 4096], 0o644);
    let tar = t.finish();
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("layer");

    // Cut inside the data of 'big'.
    let err = unpack_bytes(&tar[..512 * 4], &dest, Compression::Auto).unwrap_err();
    match &err {
        LayerError::Corrupt { context, reason } => {
            assert!(context.contains("'big'"), "{err}");
            assert!(reason.contains("truncated"), "{err}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert!(!dest.exists());

    // Cut exactly after the last entry: no end-of-archive marker.
    let end = 512 * 2 + 512 + 4096;
    let err = unpack_bytes(&tar[..end], &dest, Compression::Auto).unwrap_err();
    assert!(
        matches!(&err, LayerError::Corrupt { context, reason } if context.contains("'big'") && reason.contains("truncated")),
        "{err:?}"
    );
    assert!(!dest.exists());

    // Cut inside a header.
    let err = unpack_bytes(&tar[..512 * 2 + 100], &dest, Compression::Auto).unwrap_err();
    assert!(
        matches!(&err, LayerError::Corrupt { context, .. } if context.contains("'first'")),
        "{err:?}"
    );
    assert!(!dest.exists());

    // A header with a bad checksum.
    let mut bad = tar.clone();
    bad[512 * 2 + 10] ^= 0x55;
    let err = unpack_bytes(&bad, &dest, Compression::Auto).unwrap_err();
    assert!(matches!(&err, LayerError::Corrupt { .. }), "{err:?}");
    assert!(err.to_string().contains("checksum"), "{err}");
    assert!(!dest.exists());

    // Nothing at all.
    let err = unpack_bytes(&[], &dest, Compression::Auto).unwrap_err();
    assert!(matches!(&err, LayerError::Corrupt { .. }), "{err:?}");
    assert!(!dest.exists());
}

#[test]
fn empty_layer_and_existing_empty_dest() {
    let tar = Tar::new().finish();
    assert_eq!(tar.len(), 1024);
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("layer");
    fs::create_dir(&dest).unwrap();
    let layer = unpack_bytes(&tar, &dest, Compression::Auto).unwrap();
    assert_eq!(layer.entries, 0);
    assert_eq!(layer.size, 0);
    assert_eq!(layer.diff_id.to_string(), sha256(&tar));
    assert_eq!(fs::read_dir(&dest).unwrap().count(), 0);
    assert_eq!(mode_of(&dest), 0o755);
}

#[test]
fn refuses_a_non_empty_dest_and_leaves_it_alone() {
    let mut t = Tar::new();
    t.file("a", b"a", 0o644);
    let tar = t.finish();
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("layer");
    fs::create_dir(&dest).unwrap();
    fs::write(dest.join("mine"), b"mine").unwrap();
    let err = unpack_bytes(&tar, &dest, Compression::Auto).unwrap_err();
    assert!(matches!(err, LayerError::DestinationNotEmpty { .. }), "{err:?}");
    assert_eq!(fs::read(dest.join("mine")).unwrap(), b"mine");
    assert!(!dest.join("a").exists());
}

#[test]
fn write_through_an_earlier_file_is_a_conflict() {
    let mut t = Tar::new();
    t.file("a", b"a", 0o644).file("a/b", b"b", 0o644);
    let tar = t.finish();
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("layer");
    let err = unpack_bytes(&tar, &dest, Compression::Auto).unwrap_err();
    assert!(
        matches!(&err, LayerError::Conflict { entry, .. } if entry == "a/b"),
        "{err:?}"
    );
    assert!(!dest.exists());
}

#[test]
fn hard_link_to_a_missing_file_is_refused() {
    let mut t = Tar::new();
    t.link(tar::EntryType::Link, "h", "nope");
    let tar = t.finish();
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("layer");
    let err = unpack_bytes(&tar, &dest, Compression::Auto).unwrap_err();
    assert!(
        matches!(&err, LayerError::Escape { entry, reason } if entry == "h" && reason.contains("does not exist")),
        "{err:?}"
    );
    assert!(!dest.exists());
}

/// A layer written by GNU tar (PAX format, with xattrs), as `docker save` tools and
/// hand-built layers often are. The diff_id must match `gzip -dc | sha256sum`.
#[test]
fn unpacks_a_gnu_tar_pax_layer() {
    use std::os::unix::fs::symlink;
    use std::process::Command;

    let tmp = tempfile::tempdir().unwrap();
    let tree = tmp.path().join("tree");
    fs::create_dir_all(tree.join("usr/lib")).unwrap();
    fs::write(tree.join("usr/lib/libx.so.1"), b"\x7fELF fake").unwrap();
    symlink("libx.so.1", tree.join("usr/lib/libx.so")).unwrap();
    symlink("/usr/lib/libx.so.1", tree.join("abs")).unwrap();
    fs::hard_link(tree.join("usr/lib/libx.so.1"), tree.join("usr/lib/hard")).unwrap();
    let long = tree.join("n".repeat(120)).join("m".repeat(120));
    fs::create_dir_all(long.parent().unwrap()).unwrap();
    fs::write(&long, b"long").unwrap();
    fs::set_permissions(tree.join("usr/lib/libx.so.1"), fs::Permissions::from_mode(0o751)).unwrap();
    rustix::fs::setxattr(
        tree.join("usr/lib/libx.so.1"),
        "user.note",
        b"v",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();

    let tgz = tmp.path().join("layer.tar.gz");
    let status = Command::new("tar")
        .args(["--format=pax", "--xattrs", "--xattrs-include=user.*", "-czf"])
        .arg(&tgz)
        .arg("-C")
        .arg(&tree)
        .arg(".")
        .status()
        .expect("GNU tar must be installed");
    assert!(status.success());
    let out = Command::new("gzip").arg("-dc").arg(&tgz).output().unwrap();
    assert!(out.status.success());

    let dest = tmp.path().join("layer");
    let blob = fs::read(&tgz).unwrap();
    let layer = unpack_bytes(&blob, &dest, Compression::Auto).unwrap();
    assert_eq!(layer.diff_id.to_string(), sha256(&out.stdout));
    assert_eq!(fs::read(dest.join("usr/lib/libx.so.1")).unwrap(), b"\x7fELF fake");
    assert_eq!(mode_of(&dest.join("usr/lib/libx.so.1")), 0o751);
    assert_eq!(
        fs::read_link(dest.join("usr/lib/libx.so")).unwrap(),
        Path::new("libx.so.1")
    );
    assert_eq!(
        fs::read_link(dest.join("abs")).unwrap(),
        Path::new("/usr/lib/libx.so.1")
    );
    assert_eq!(
        fs::metadata(dest.join("usr/lib/hard")).unwrap().ino(),
        fs::metadata(dest.join("usr/lib/libx.so.1")).unwrap().ino()
    );
    let long_rel = long.strip_prefix(&tree).unwrap();
    assert_eq!(fs::read(dest.join(long_rel)).unwrap(), b"long");
    assert_eq!(
        xattr(&dest.join("usr/lib/libx.so.1"), "user.note").as_deref(),
        Some(&b"v"[..])
    );
}
