//! What only ADD does: download URLs, and unpack local tar archives (plain, gzip, bzip2
//! or xz) with the layer unpacker, so no entry escapes the root.

use std::path::{Path, PathBuf};

/// A local archive ADD unpacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Archive {
    Tar,
    Gzip,
    Bzip2,
    Xz,
}

impl Archive {
    /// The host tool that decompresses it to stdout, for the formats Rust code here does not.
    fn tool(self) -> Option<(&'static str, &'static str)> {
        match self {
            Archive::Bzip2 => Some(("bzip2", "bzip2")),
            Archive::Xz => Some(("xz", "xz-utils")),
            _ => None,
        }
    }
}

fn is_tar_header(head: &[u8]) -> bool {
    head.len() >= 262 && &head[257..262] == b"ustar"
}

/// What kind of archive `path` is, if ADD should unpack it: a tar, plain or compressed
/// with gzip, bzip2 or xz. A compressed file that is not a tar is copied as it is.
pub(super) fn archive_kind(path: &Path) -> Option<Archive> {
    use std::io::Read;
    let mut head = [0u8; 512];
    let mut f = std::fs::File::open(path).ok()?;
    let n = f.read(&mut head).unwrap_or(0);
    let head = &head[..n];
    let kind = if head.starts_with(&[0x1f, 0x8b]) {
        Archive::Gzip
    } else if head.starts_with(b"BZh") {
        Archive::Bzip2
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Archive::Xz
    } else {
        return is_tar_header(head).then_some(Archive::Tar);
    };
    let mut inner = Vec::new();
    match kind.tool() {
        None => {
            let f = std::fs::File::open(path).ok()?;
            flate2::read::GzDecoder::new(f)
                .take(512)
                .read_to_end(&mut inner)
                .ok()?;
        }
        Some((tool, _)) => {
            let mut child = std::process::Command::new(tool)
                .arg("-dc")
                .arg(path)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .ok()?;
            child.stdout.take()?.take(512).read_to_end(&mut inner).ok()?;
            let _ = child.kill();
            let _ = child.wait();
        }
    }
    is_tar_header(&inner).then_some(kind)
}

/// Unpacks the archive at `path` into `out` (which must not exist) with the layer
/// unpacker, so entries escaping the root are refused.
pub(super) fn extract(kind: Archive, path: &Path, out: &Path) -> Result<(), String> {
    let opts = |c| berth_layers::UnpackOptions {
        compression: c,
        preserve_ownership: berth_host::privilege::can_chown(),
        rootless: berth_host::privilege::in_user_namespace(),
    };
    match kind.tool() {
        None => {
            let f = std::fs::File::open(path).map_err(|e| e.to_string())?;
            berth_layers::unpack(f, out, &opts(berth_layers::Compression::Auto))
                .map_err(|e| e.to_string())?;
        }
        Some((tool, package)) => {
            let mut child = std::process::Command::new(tool)
                .arg("-dc")
                .arg(path)
                .stdout(std::process::Stdio::piped())
                .spawn()
                .map_err(|e| format!("cannot run {tool} ({e}) — install the {package} package"))?;
            let stdout = child.stdout.take().ok_or("no output from the decompressor")?;
            let none = berth_layers::Compression::Known(berth_layers::LayerCompression::None);
            let result = berth_layers::unpack(stdout, out, &opts(none)).map_err(|e| e.to_string());
            let status = child.wait().map_err(|e| e.to_string())?;
            result?;
            if !status.success() {
                return Err(format!("{tool} failed to decompress it ({status})"));
            }
        }
    }
    Ok(())
}

/// Downloads `url` into `dir`; returns the file name docker would give it and its path.
pub(super) fn download(url: &str, dir: &Path) -> Result<(String, PathBuf), String> {
    let name = url
        .split(['?', '#'])
        .next()
        .unwrap_or(url)
        .rsplit('/')
        .find(|s| !s.is_empty() && !s.contains(':'))
        .unwrap_or("download")
        .to_string();
    let fut = async {
        let resp = reqwest::get(url)
            .await
            .map_err(|e| format!("cannot download {url}: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!(
                "cannot download {url}: the server answered {}",
                resp.status()
            ));
        }
        resp.bytes()
            .await
            .map_err(|e| format!("cannot download {url}: {e}"))
    };
    let bytes = match tokio::runtime::Handle::try_current() {
        Ok(h) => h.block_on(fut)?,
        Err(_) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?
            .block_on(fut)?,
    };
    let path = dir.join(&name);
    std::fs::write(&path, &bytes).map_err(|e| format!("cannot save {url}: {e}"))?;
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .map_err(|e| format!("cannot save {url}: {e}"))?;
    Ok((name, path))
}
