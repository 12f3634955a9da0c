//! Browsing a volume's files through the Engine API, the way Docker Desktop does: a
//! never-started helper container mounts the volume read-only at `/volume`, and
//! `GET /containers/{id}/archive` streams what the browser lists, previews or downloads.
//! The helper image has no layers (`FROM scratch` + a label) and is built once per engine;
//! each request makes its own helper container and removes it, so nothing is left behind
//! even if the window closes half-way.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    BuildImageOptions, CreateContainerOptions, DownloadFromContainerOptions, ListContainersOptions,
    RemoveContainerOptions,
};
use bollard::Docker;
use futures_util::StreamExt;
use tauri::{AppHandle, Manager, State};

use crate::dto::{FilePreview, VolumeEntry, VolumeListing};
use crate::error::{ErrorKind, UserError};
use crate::state::AppState;

/// The helper image's tag and the label on it and on its containers.
const HELPER_IMAGE: &str = "berth-volume-browser:1";
const HELPER_LABEL: &str = "io.berth.helper";
const HELPER_LABEL_VALUE: &str = "volume-browser";
/// Where the helper container sees the volume.
const MOUNT_POINT: &str = "/volume";

/// Bytes of tar read for one listing: `GET archive` sends the whole tree below the folder,
/// and only its first level is shown.
pub const LISTING_BYTE_CAP: usize = 16 * 1024 * 1024;
/// Entries shown for one folder.
pub const LISTING_ENTRY_CAP: usize = 5000;
/// Files up to this size are previewed as text.
pub const PREVIEW_CAP: usize = 64 * 1024;

/// Serializes building the helper image (two windows browsing at once build it once).
static HELPER_BUILD: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// True for the label of a helper container, so lists can leave them out.
pub fn is_helper(labels: Option<&HashMap<String, String>>) -> bool {
    labels
        .and_then(|l| l.get(HELPER_LABEL))
        .is_some_and(|v| v == HELPER_LABEL_VALUE)
}

/// The first level of a directory from the tar `GET archive` sent for it. `complete` is
/// false when the byte cap cut the tar short: an error after that point only means the
/// listing is truncated. Entries are named relative to the folder whether or not the tar
/// puts the folder's own name first (dockerd and Berth do, as `docker cp` expects).
pub fn list_tar(bytes: &[u8], complete: bool, dir_name: &str) -> Result<(Vec<VolumeEntry>, bool), String> {
    let mut archive = tar::Archive::new(bytes);
    let entries = match archive.entries() {
        Ok(e) => e,
        Err(e) => return Err(e.to_string()),
    };
    let mut out: Vec<VolumeEntry> = Vec::new();
    let mut seen_dirs: Vec<String> = Vec::new();
    let mut prefixed: Option<bool> = None;
    let mut truncated = false;
    for entry in entries {
        let entry = match entry {
            Ok(e) => e,
            Err(_) if !complete => {
                truncated = true;
                break;
            }
            Err(e) => return Err(e.to_string()),
        };
        let header = entry.header();
        let path = match entry.path() {
            Ok(p) => p.into_owned(),
            Err(_) => continue,
        };
        let parts: Vec<String> = path
            .components()
            .filter_map(|c| match c {
                Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
                _ => None,
            })
            .collect();
        let kind = match header.entry_type() {
            tar::EntryType::Directory => "dir",
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::Link => "file",
            tar::EntryType::Symlink => "symlink",
            _ => "other",
        };
        // The first entry says whether the folder's own name leads every path.
        let strip = *prefixed.get_or_insert(kind == "dir" && parts.len() == 1 && parts[0] == dir_name);
        let rel = if strip {
            parts.get(1..).unwrap_or(&[])
        } else {
            &parts[..]
        };
        let name = match rel {
            [] => continue,
            [one] => one.clone(),
            // Something deeper: its folder is listed by its own entry, or here if the
            // tar left that out.
            [first, ..] => {
                if !seen_dirs.contains(first) && !out.iter().any(|e| &e.name == first) {
                    seen_dirs.push(first.clone());
                    out.push(VolumeEntry {
                        name: first.clone(),
                        kind: "dir".into(),
                        size: 0.0,
                        modified: 0.0,
                        link_target: String::new(),
                    });
                }
                continue;
            }
        };
        if out.iter().any(|e| e.name == name) {
            continue;
        }
        if out.len() >= LISTING_ENTRY_CAP {
            truncated = true;
            break;
        }
        out.push(VolumeEntry {
            size: if kind == "dir" {
                0.0
            } else {
                header.size().unwrap_or(0) as f64
            },
            modified: header.mtime().unwrap_or(0) as f64,
            link_target: entry
                .link_name()
                .ok()
                .flatten()
                .filter(|_| kind == "symlink")
                .map(|l| l.to_string_lossy().into_owned())
                .unwrap_or_default(),
            kind: kind.into(),
            name,
        });
    }
    if !complete {
        truncated = true;
    }
    out.sort_by(|a, b| (a.kind != "dir", &a.name).cmp(&(b.kind != "dir", &b.name)));
    Ok((out, truncated))
}

/// The first `cap` bytes of the first file in a tar, and the file's size.
pub fn first_file(bytes: &[u8], cap: usize) -> Result<(Vec<u8>, u64), String> {
    let mut archive = tar::Archive::new(bytes);
    for entry in archive.entries().map_err(|e| e.to_string())? {
        let entry = entry.map_err(|e| e.to_string())?;
        if entry.header().entry_type().is_file() {
            let size = entry.header().size().unwrap_or(0);
            let mut data = Vec::new();
            entry
                .take(cap as u64)
                .read_to_end(&mut data)
                .map_err(|e| e.to_string())?;
            return Ok((data, size));
        }
    }
    Err("the archive holds no file".into())
}

/// Copies the first file of a tar to `dest` (which must not exist yet).
pub fn extract_first_file(tar: impl Read, dest: &Path) -> std::io::Result<u64> {
    let mut archive = tar::Archive::new(tar);
    for entry in archive.entries()? {
        let mut entry = entry?;
        if entry.header().entry_type().is_file() {
            let mut out = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(dest)?;
            return std::io::copy(&mut entry, &mut out);
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        "the archive holds no file",
    ))
}

/// Text worth showing: UTF-8 without NUL bytes.
pub fn as_text(data: &[u8]) -> Option<String> {
    if data.contains(&0) {
        return None;
    }
    std::str::from_utf8(data).ok().map(str::to_string)
}

/// `/volume` + a folder path from the UI, refusing anything that could step outside.
fn container_path(path: &str) -> Result<String, UserError> {
    let mut parts = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                return Err(UserError::invalid(
                    format!("The path \"{path}\" goes up with \"..\"."),
                    "Open folders from the list instead of typing a path.",
                ))
            }
            c => parts.push(c),
        }
    }
    Ok(if parts.is_empty() {
        MOUNT_POINT.to_string()
    } else {
        format!("{MOUNT_POINT}/{}", parts.join("/"))
    })
}

fn helper_failed(what: &str, details: impl Into<String>) -> UserError {
    UserError::new(
        ErrorKind::Other,
        format!("Berth could not {what}."),
        "Try again; open the details to see the engine's answer.",
    )
    .with_details(details)
}

/// The helper image, built once (a `FROM scratch` image with only a label).
async fn ensure_helper_image(docker: &Docker) -> Result<(), UserError> {
    let _one_at_a_time = HELPER_BUILD.lock().await;
    if docker.inspect_image(HELPER_IMAGE).await.is_ok() {
        return Ok(());
    }
    let dockerfile = format!("FROM scratch\nLABEL {HELPER_LABEL}={HELPER_LABEL_VALUE}\n");
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(dockerfile.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, "Dockerfile", dockerfile.as_bytes())
        .map_err(|e| helper_failed("prepare its file-browser image", e.to_string()))?;
    let context = tar
        .into_inner()
        .map_err(|e| helper_failed("prepare its file-browser image", e.to_string()))?;
    let options = BuildImageOptions {
        dockerfile: "Dockerfile".into(),
        t: Some(HELPER_IMAGE.into()),
        rm: true,
        ..Default::default()
    };
    let mut stream = docker.build_image(options, None, Some(bollard::body_full(context.into())));
    while let Some(item) = stream.next().await {
        let info = item.map_err(|e| helper_failed("build its file-browser image", e.to_string()))?;
        if let Some(msg) = info.error_detail.and_then(|d| d.message) {
            return Err(helper_failed("build its file-browser image", msg));
        }
    }
    Ok(())
}

/// Helper containers a crash left behind are removed before a new one is made.
async fn remove_stale_helpers(docker: &Docker) {
    let filters = HashMap::from([(
        "label".to_string(),
        vec![format!("{HELPER_LABEL}={HELPER_LABEL_VALUE}")],
    )]);
    let Ok(list) = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        }))
        .await
    else {
        return;
    };
    for c in list {
        // Another window may be using a fresh one: only those older than a minute go.
        let age = now_secs() - c.created.unwrap_or(0) as f64;
        if let (Some(id), true) = (c.id, age > 60.0) {
            let _ = remove_helper(docker, &id).await;
        }
    }
}

fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

async fn remove_helper(docker: &Docker, id: &str) -> Result<(), bollard::errors::Error> {
    docker
        .remove_container(
            id,
            Some(RemoveContainerOptions {
                force: true,
                ..Default::default()
            }),
        )
        .await
}

/// Where the bytes of `GET archive` go.
enum Sink {
    /// Kept in memory, at most `cap` bytes; the read stops there.
    Memory { bytes: Vec<u8>, cap: usize },
    /// Written to a file as they come (downloads, which have no cap).
    File(tokio::fs::File),
}

fn save_failed(e: std::io::Error) -> UserError {
    UserError::new(
        ErrorKind::Other,
        "Berth could not save the file in your Downloads folder.",
        "Check that the folder exists, is writable and has free space.",
    )
    .with_details(e.to_string())
}

/// Streams the tar of `path` inside `volume` into `sink` through a helper container made
/// for this one request; returns whether the whole tar arrived (a memory cap stops it).
async fn read_archive(docker: &Docker, volume: &str, path: &str, sink: &mut Sink) -> Result<bool, UserError> {
    ensure_helper_image(docker).await?;
    remove_stale_helpers(docker).await;
    let body = ContainerCreateBody {
        image: Some(HELPER_IMAGE.into()),
        // Never started; engines still want a command to create a container.
        cmd: Some(vec!["/volume-browser".into()]),
        labels: Some(HashMap::from([(HELPER_LABEL.into(), HELPER_LABEL_VALUE.into())])),
        host_config: Some(HostConfig {
            binds: Some(vec![format!("{volume}:{MOUNT_POINT}:ro")]),
            network_mode: Some("none".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let created = docker
        .create_container(None::<CreateContainerOptions>, body)
        .await
        .map_err(|e| match &e {
            bollard::errors::Error::DockerResponseServerError { status_code: 404, .. } => UserError::new(
                ErrorKind::NotFound,
                format!("The volume {volume} no longer exists."),
                "Refresh the list of volumes.",
            )
            .with_details(e.to_string()),
            _ => UserError::from(e),
        })?;
    let result = stream_archive(docker, &created.id, path, sink).await;
    if let Err(e) = remove_helper(docker, &created.id).await {
        tracing::warn!(
            "could not remove the volume-browser container {}: {e}",
            created.id
        );
    }
    result
}

async fn stream_archive(docker: &Docker, id: &str, path: &str, sink: &mut Sink) -> Result<bool, UserError> {
    use tokio::io::AsyncWriteExt;
    let mut stream = std::pin::pin!(
        docker.download_from_container(id, Some(DownloadFromContainerOptions { path: path.into() }),)
    );
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| match &e {
            bollard::errors::Error::DockerResponseServerError { status_code: 404, .. } => UserError::new(
                ErrorKind::NotFound,
                "That file or folder is not in the volume any more.",
                "Go back and open the folder again.",
            )
            .with_details(e.to_string()),
            _ => UserError::from(e),
        })?;
        match sink {
            Sink::Memory { bytes, cap } => {
                bytes.extend_from_slice(&chunk);
                if bytes.len() >= *cap {
                    bytes.truncate(*cap);
                    // Dropping the stream hangs up; the engine stops sending.
                    return Ok(false);
                }
            }
            Sink::File(f) => f.write_all(&chunk).await.map_err(save_failed)?,
        }
    }
    if let Sink::File(f) = sink {
        f.flush().await.map_err(save_failed)?;
    }
    Ok(true)
}

/// The tar of folder or file `path` of `volume` (see [`read_archive`]), with the path in
/// the helper container.
async fn archive_of(
    state: &AppState,
    volume: &str,
    path: &str,
    cap: usize,
) -> Result<(String, Vec<u8>, bool), UserError> {
    let target = container_path(path)?;
    let docker = state.docker().await?;
    let mut sink = Sink::Memory {
        bytes: Vec::new(),
        cap,
    };
    let complete = read_archive(&docker, volume, &target, &mut sink).await?;
    let bytes = match sink {
        Sink::Memory { bytes, .. } => bytes,
        Sink::File(_) => Vec::new(),
    };
    Ok((target, bytes, complete))
}

fn inner_path(path: &str) -> String {
    let p = container_path(path).unwrap_or_default();
    match p.strip_prefix(MOUNT_POINT) {
        Some("") | None => "/".into(),
        Some(rest) => rest.into(),
    }
}

/// One folder of a volume.
#[tauri::command]
pub async fn browse_volume(
    state: State<'_, AppState>,
    volume: String,
    path: String,
) -> Result<VolumeListing, UserError> {
    let (target, bytes, complete) = archive_of(&state, &volume, &path, LISTING_BYTE_CAP).await?;
    let dir_name = Path::new(&target)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (entries, truncated) = list_tar(&bytes, complete, &dir_name)
        .map_err(|e| helper_failed("read the folder listing the engine sent", e))?;
    Ok(VolumeListing {
        volume,
        path: inner_path(&path),
        entries,
        truncated,
    })
}

/// The start of a file, as text when it is small text.
#[tauri::command]
pub async fn preview_volume_file(
    state: State<'_, AppState>,
    volume: String,
    path: String,
) -> Result<FilePreview, UserError> {
    // The tar adds a header (and maybe a long-name record) before the data.
    let (_, bytes, _) = archive_of(&state, &volume, &path, PREVIEW_CAP + 64 * 1024).await?;
    let (data, size) = first_file(&bytes, PREVIEW_CAP).map_err(|e| helper_failed("read that file", e))?;
    let text = (size as usize <= PREVIEW_CAP).then(|| as_text(&data)).flatten();
    Ok(FilePreview {
        path: inner_path(&path),
        size: size as f64,
        text,
    })
}

/// A name in `dir` that is not taken yet: `name`, then `name (1)`, `name (2)`, ….
pub fn free_name(dir: &Path, name: &str) -> PathBuf {
    let first = dir.join(name);
    if !first.exists() {
        return first;
    }
    let (stem, ext) = match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], &name[i..]),
        _ => (name, ""),
    };
    (1..)
        .map(|n| dir.join(format!("{stem} ({n}){ext}")))
        .find(|p| !p.exists())
        .unwrap_or(first)
}

/// Saves a file of a volume into the Downloads folder; returns where it went.
#[tauri::command]
pub async fn download_volume_file(
    app: AppHandle,
    state: State<'_, AppState>,
    volume: String,
    path: String,
) -> Result<String, UserError> {
    let target = container_path(&path)?;
    let name = Path::new(&target)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| UserError::invalid("Pick a file to download.", "Click a file in the list first."))?;
    let downloads = app
        .path()
        .download_dir()
        .ok()
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join("Downloads")))
        .ok_or_else(|| {
            UserError::new(
                ErrorKind::Other,
                "Berth could not find your Downloads folder.",
                "Set HOME (or XDG_DOWNLOAD_DIR in ~/.config/user-dirs.dirs) and try again.",
            )
        })?;
    let docker = state.docker().await?;
    tokio::fs::create_dir_all(&downloads).await.map_err(save_failed)?;
    // The tar lands next to the file first, so a big file never sits in memory.
    let part = downloads.join(format!(".{name}.berth-download"));
    let file = tokio::fs::File::create(&part).await.map_err(save_failed)?;
    let mut sink = Sink::File(file);
    let read = read_archive(&docker, &volume, &target, &mut sink).await;
    drop(sink);
    let part2 = part.clone();
    let saved = match read {
        Ok(_) => tokio::task::spawn_blocking(move || -> std::io::Result<PathBuf> {
            let dest = free_name(&downloads, &name);
            extract_first_file(std::fs::File::open(&part2)?, &dest)?;
            Ok(dest)
        })
        .await
        .map_err(|e| helper_failed("save the file", e.to_string()))
        .and_then(|r| r.map_err(save_failed)),
        Err(e) => Err(e),
    };
    let _ = tokio::fs::remove_file(&part).await;
    let dest = saved?;
    Ok(dest.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tar like `GET archive?path=/volume` sends: the folder's name first, then its tree.
    fn volume_tar(prefix: &str) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let dir = |b: &mut tar::Builder<Vec<u8>>, path: &str| {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
            h.set_mtime(1_700_000_000);
            h.set_cksum();
            b.append_data(&mut h, path, std::io::empty()).expect("dir");
        };
        let file = |b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]| {
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
            h.set_mtime(1_700_000_100);
            h.set_cksum();
            b.append_data(&mut h, path, data).expect("file");
        };
        if !prefix.is_empty() {
            dir(&mut b, prefix);
        }
        let p = |s: &str| {
            if prefix.is_empty() {
                s.to_string()
            } else {
                format!("{prefix}/{s}")
            }
        };
        file(&mut b, &p("hello.txt"), b"hello\n");
        dir(&mut b, &p("sub"));
        file(&mut b, &p("sub/deep.bin"), &[0u8; 3000]);
        let long = "n".repeat(150);
        file(&mut b, &p(&format!("{long}.txt")), b"long name");
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        h.set_cksum();
        b.append_link(&mut h, p("link"), "/etc/passwd").expect("link");
        b.into_inner().expect("tar")
    }

    fn names(entries: &[VolumeEntry]) -> Vec<(&str, &str)> {
        entries
            .iter()
            .map(|e| (e.name.as_str(), e.kind.as_str()))
            .collect()
    }

    #[test]
    fn one_level_is_listed_folders_first_with_sizes_times_and_links() {
        let (entries, truncated) = list_tar(&volume_tar("volume"), true, "volume").expect("list");
        assert!(!truncated);
        let long = format!("{}.txt", "n".repeat(150));
        assert_eq!(
            names(&entries),
            vec![
                ("sub", "dir"),
                ("hello.txt", "file"),
                ("link", "symlink"),
                (long.as_str(), "file")
            ]
        );
        let hello = &entries[1];
        assert_eq!((hello.size, hello.modified), (6.0, 1_700_000_100.0));
        assert_eq!(entries[2].link_target, "/etc/passwd");
        assert_eq!(entries[0].modified, 1_700_000_000.0);
    }

    #[test]
    fn a_tar_without_the_folder_name_lists_the_same() {
        let (with, _) = list_tar(&volume_tar("volume"), true, "volume").expect("list");
        let (without, _) = list_tar(&volume_tar(""), true, "volume").expect("list");
        assert_eq!(names(&with), names(&without));
    }

    #[test]
    fn a_folder_named_like_its_parent_is_kept() {
        let mut b = tar::Builder::new(Vec::new());
        for path in ["data", "data/data", "data/data/x"] {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(if path.ends_with('x') {
                tar::EntryType::Regular
            } else {
                tar::EntryType::Directory
            });
            h.set_size(0);
            h.set_cksum();
            b.append_data(&mut h, path, std::io::empty()).expect("entry");
        }
        let (entries, _) = list_tar(&b.into_inner().expect("tar"), true, "data").expect("list");
        assert_eq!(names(&entries), vec![("data", "dir")]);
    }

    #[test]
    fn a_cut_tar_is_a_truncated_listing_not_an_error() {
        let full = volume_tar("volume");
        // Cut inside the 3000-byte file's data: the entries before it are listed.
        let cut = &full[..2048 + 512];
        let (entries, truncated) = list_tar(cut, false, "volume").expect("list");
        assert!(truncated);
        assert!(names(&entries).contains(&("hello.txt", "file")), "{entries:?}");
        assert!(!names(&entries).contains(&("link", "symlink")), "{entries:?}");
        // The same bytes from an engine that said it was done are a broken archive.
        let garbage = vec![7u8; 1024];
        assert!(list_tar(&garbage, true, "volume").is_err());
    }

    #[test]
    fn previews_take_the_first_file_and_only_text() {
        let tar = volume_tar("");
        let (data, size) = first_file(&tar, 3).expect("file");
        assert_eq!((data.as_slice(), size), (&b"hel"[..], 6));
        assert_eq!(as_text(b"ok\n").as_deref(), Some("ok\n"));
        assert_eq!(as_text(&[0, 1, 2]), None);
        assert_eq!(as_text(&[0xff, 0xfe]), None);
    }

    #[test]
    fn folder_paths_stay_inside_the_volume() {
        assert_eq!(container_path("").expect("root"), "/volume");
        assert_eq!(container_path("/").expect("root"), "/volume");
        assert_eq!(container_path("/a/./b/").expect("path"), "/volume/a/b");
        assert!(container_path("/a/../../etc").is_err());
        assert_eq!(inner_path("a/b"), "/a/b");
        assert_eq!(inner_path("/"), "/");
    }

    #[test]
    fn downloads_take_the_first_file_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dest = dir.path().join("hello.txt");
        let tar = volume_tar("");
        assert_eq!(extract_first_file(&tar[..], &dest).expect("extract"), 6);
        assert_eq!(std::fs::read_to_string(&dest).expect("read"), "hello\n");
        // Never over an existing file.
        assert!(extract_first_file(&tar[..], &dest).is_err());
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_size(0);
        h.set_cksum();
        b.append_data(&mut h, "only-a-dir", std::io::empty())
            .expect("dir");
        let empty = b.into_inner().expect("tar");
        assert!(extract_first_file(&empty[..], &dir.path().join("x")).is_err());
    }

    #[test]
    fn downloads_never_overwrite() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(free_name(dir.path(), "a.txt"), dir.path().join("a.txt"));
        std::fs::write(dir.path().join("a.txt"), "x").expect("write");
        assert_eq!(free_name(dir.path(), "a.txt"), dir.path().join("a (1).txt"));
        std::fs::write(dir.path().join("a (1).txt"), "x").expect("write");
        assert_eq!(free_name(dir.path(), "a.txt"), dir.path().join("a (2).txt"));
        assert_eq!(free_name(dir.path(), ".bashrc"), dir.path().join(".bashrc"));
    }

    #[test]
    fn helper_containers_are_recognized_by_their_label() {
        let labels = HashMap::from([(HELPER_LABEL.to_string(), HELPER_LABEL_VALUE.to_string())]);
        assert!(is_helper(Some(&labels)));
        assert!(!is_helper(Some(&HashMap::new())));
        assert!(!is_helper(None));
    }
}
