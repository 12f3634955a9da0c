//! Test images built by `tests/fixtures/make-fixtures.sh`.
//!
//! Layout of the fixture directory (each image an OCI image layout, tag `latest`):
//! `busybox/`, `multiarch/`, `zstd/`, `whiteout/`, `malicious/{dotdot,absolute,
//! symlink_escape,hardlink_escape}/` (+ the raw `malicious/<name>.tar` layers) and,
//! with [`ensure_big`], `python/`.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use anyhow::{bail, Context};

/// Where fixtures live: `$BERTH_FIXTURES` if set, else `<repo>/tests/fixtures/out`.
pub fn dir() -> PathBuf {
    match std::env::var_os("BERTH_FIXTURES") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join("out"),
    }
}

/// The fixture builder script.
pub fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join("make-fixtures.sh")
}

static DONE: Mutex<(bool, bool)> = Mutex::new((false, false));

/// Build (or reuse cached) standard fixtures and return their directory.
/// Runs the builder at most once per process; a file lock serialises
/// concurrent test processes (nextest runs each test in its own process).
pub fn ensure() -> PathBuf {
    run(false).unwrap_or_else(|e| panic!("building fixtures failed: {e:#}"))
}

/// Like [`ensure`], additionally building the large `python` image
/// (`FIXTURES_BIG=1`, ~150 MB, needs the Debian mirror).
pub fn ensure_big() -> PathBuf {
    run(true).unwrap_or_else(|e| panic!("building big fixtures failed: {e:#}"))
}

/// `ensure()/<name>`, checking that the image layout exists.
pub fn image(name: &str) -> PathBuf {
    let p = ensure().join(name);
    assert!(
        p.join("index.json").is_file(),
        "fixture {name} has no index.json at {}",
        p.display()
    );
    p
}

fn run(big: bool) -> anyhow::Result<PathBuf> {
    let out = dir();
    let mut done = DONE.lock().unwrap_or_else(|p| p.into_inner());
    if (big && done.1) || (!big && done.0) {
        return Ok(out);
    }
    for (bin, pkg) in [
        ("buildah", "buildah"),
        ("skopeo", "skopeo"),
        ("python3", "python3"),
        ("busybox", "busybox-static"),
    ] {
        crate::tools::require(bin, pkg);
    }
    if big {
        crate::tools::require("debootstrap", "debootstrap");
    }
    std::fs::create_dir_all(&out).with_context(|| format!("create {}", out.display()))?;
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(out.join(".lock"))
        .context("open fixture lock")?;
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive).context("flock fixtures")?;
    let mut cmd = Command::new("bash");
    cmd.arg(script()).arg(&out);
    if big {
        cmd.env("FIXTURES_BIG", "1");
    } else {
        cmd.env_remove("FIXTURES_BIG");
    }
    let o = cmd.output().context("run make-fixtures.sh")?;
    drop(lock);
    if !o.status.success() {
        bail!(
            "make-fixtures.sh {} failed ({}):\n{}{}",
            out.display(),
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    done.0 = true;
    if big {
        done.1 = true;
    }
    Ok(out)
}

/// `oci:<dir>:latest`, the skopeo/buildah reference of a fixture.
pub fn oci_ref(layout: &Path) -> String {
    format!("oci:{}:latest", layout.display())
}

/// Parsed `index.json` of an OCI layout.
pub fn index(layout: &Path) -> serde_json::Value {
    let p = layout.join("index.json");
    let text = std::fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
    serde_json::from_slice(&text).unwrap_or_else(|e| panic!("parse {}: {e}", p.display()))
}

/// Digest of the manifest (or image index) tagged `latest` in an OCI layout.
pub fn top_digest(layout: &Path) -> String {
    let idx = index(layout);
    let manifests = idx["manifests"].as_array().expect("index.json: manifests array");
    let m = manifests
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == "latest")
        .or_else(|| manifests.first())
        .expect("index.json: no manifests");
    m["digest"].as_str().expect("descriptor digest").to_string()
}

/// Raw bytes of the blob `digest` (`sha256:<hex>`) in an OCI layout.
pub fn blob(layout: &Path, digest: &str) -> Vec<u8> {
    let (alg, hex) = digest.split_once(':').expect("digest has algorithm");
    let p = layout.join("blobs").join(alg).join(hex);
    std::fs::read(&p).unwrap_or_else(|e| panic!("read blob {}: {e}", p.display()))
}

/// Parsed JSON blob (manifest, index, config) from an OCI layout.
pub fn json_blob(layout: &Path, digest: &str) -> serde_json::Value {
    serde_json::from_slice(&blob(layout, digest)).expect("blob is JSON")
}
