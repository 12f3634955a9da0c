//! Engine status, endpoint choice, disk usage and cleanup.

use bollard::query_parameters::{
    ListContainersOptions, ListImagesOptions, ListVolumesOptions, PruneContainersOptions, PruneImagesOptions,
    PruneVolumesOptions,
};
use tauri::State;

use crate::dto::{DiskUsage, DockerCommand, EngineStatus, PruneReport, UsageRow};
use crate::error::UserError;
use crate::state::AppState;

#[tauri::command]
pub async fn engine_status(state: State<'_, AppState>) -> Result<EngineStatus, UserError> {
    Ok(state.status().await)
}

/// Point the window at another Docker-compatible endpoint (empty: back to the default).
#[tauri::command]
pub async fn set_endpoint(
    state: State<'_, AppState>,
    endpoint: Option<String>,
) -> Result<EngineStatus, UserError> {
    state.set_endpoint(endpoint).await;
    Ok(state.status().await)
}

fn summary(total: Option<i64>, active: Option<i64>, size: Option<i64>, reclaimable: Option<i64>) -> UsageRow {
    let n = |v: Option<i64>| v.and_then(|v| u32::try_from(v).ok()).unwrap_or(0);
    UsageRow {
        count: n(total),
        active: n(active),
        size: size.unwrap_or(0).max(0) as f64,
        reclaimable: reclaimable.unwrap_or(0).max(0) as f64,
    }
}

/// Disk usage from the lists, for engines whose `/system/df` has the pre-1.52 shape
/// (arrays of images, containers, volumes) that bollard 0.21 no longer models.
async fn usage_from_lists(docker: &bollard::Docker) -> Result<DiskUsage, UserError> {
    let mut usage = DiskUsage::default();
    for img in docker.list_images(None::<ListImagesOptions>).await? {
        let size = img.size.max(0) as f64;
        usage.images.count += 1;
        usage.images.size += size;
        if img.containers > 0 {
            usage.images.active += 1;
        } else {
            usage.images.reclaimable += size;
        }
    }
    let containers = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            size: true,
            ..Default::default()
        }))
        .await?;
    let mut mounted = std::collections::HashSet::new();
    for c in &containers {
        let size = c.size_rw.unwrap_or(0).max(0) as f64;
        let running = c
            .state
            .as_ref()
            .is_some_and(|s| format!("{s:?}").eq_ignore_ascii_case("running"));
        usage.containers.count += 1;
        usage.containers.size += size;
        if running {
            usage.containers.active += 1;
        } else {
            usage.containers.reclaimable += size;
        }
        for m in c.mounts.iter().flatten() {
            if let Some(name) = &m.name {
                mounted.insert(name.clone());
            }
        }
    }
    let volumes = docker.list_volumes(None::<ListVolumesOptions>).await?;
    for v in volumes.volumes.unwrap_or_default() {
        let size = v.usage_data.as_ref().map_or(0.0, |u| u.size.max(0) as f64);
        usage.volumes.count += 1;
        usage.volumes.size += size;
        if mounted.contains(&v.name) {
            usage.volumes.active += 1;
        } else {
            usage.volumes.reclaimable += size;
        }
    }
    Ok(usage)
}

#[tauri::command]
pub async fn disk_usage(state: State<'_, AppState>) -> Result<DiskUsage, UserError> {
    let docker = state.docker().await?;
    // API 1.52+ engines answer with summaries; older ones (podman, Berth today) with
    // arrays, which parse here as all-empty summaries.
    if let Ok(df) = docker.df(None).await {
        if let (Some(i), Some(c)) = (&df.image_usage, &df.container_usage) {
            let v = df.volume_usage.clone().unwrap_or_default();
            let b = df.build_cache_usage.clone().unwrap_or_default();
            return Ok(DiskUsage {
                images: summary(i.total_count, i.active_count, i.total_size, i.reclaimable),
                containers: summary(c.total_count, c.active_count, c.total_size, c.reclaimable),
                volumes: summary(v.total_count, v.active_count, v.total_size, v.reclaimable),
                build_cache: summary(b.total_count, b.active_count, b.total_size, b.reclaimable),
            });
        }
    }
    usage_from_lists(&docker).await
}

/// The Dashboard's cleanup button: stopped containers, unused images (dangling only
/// unless `all_images`), build cache, and unused volumes if asked.
#[tauri::command]
pub async fn cleanup(
    state: State<'_, AppState>,
    all_images: bool,
    volumes: bool,
) -> Result<PruneReport, UserError> {
    let docker = state.docker().await?;
    let mut report = PruneReport::default();
    let c = docker.prune_containers(None::<PruneContainersOptions>).await?;
    report.containers_deleted = c.containers_deleted.map_or(0, |d| d.len() as u32);
    report.space_reclaimed += c.space_reclaimed.unwrap_or(0) as f64;
    let filters = all_images
        .then(|| std::collections::HashMap::from([("dangling".to_string(), vec!["false".to_string()])]));
    let i = docker.prune_images(Some(PruneImagesOptions { filters })).await?;
    report.images_deleted = i.images_deleted.map_or(0, |d| d.len() as u32);
    report.space_reclaimed += i.space_reclaimed.unwrap_or(0) as f64;
    if let Ok(b) = docker
        .prune_build(None::<bollard::query_parameters::PruneBuildOptions>)
        .await
    {
        report.space_reclaimed += b.space_reclaimed.unwrap_or(0) as f64;
    }
    if volumes {
        let v = docker.prune_volumes(None::<PruneVolumesOptions>).await?;
        report.volumes_deleted = v.volumes_deleted.map_or(0, |d| d.len() as u32);
        report.space_reclaimed += v.space_reclaimed.unwrap_or(0) as f64;
    }
    Ok(report)
}

/// What `docker` is here, for Settings; `dir` is where Berth's link goes.
fn docker_command_in(
    dir: &std::path::Path,
    path: Option<&std::ffi::OsStr>,
    berth: &std::path::Path,
) -> DockerCommand {
    use berth_api::docker_command::{status, Status};
    let on_path = |d: &std::path::Path| path.is_some_and(|p| std::env::split_paths(p).any(|e| e == d));
    match status(dir, path, berth) {
        Status::Absent => DockerCommand {
            state: "absent".into(),
            path: dir.join("docker").display().to_string(),
            on_path: on_path(dir),
        },
        Status::Berth(p) => DockerCommand {
            state: "berth".into(),
            on_path: p.parent().is_some_and(on_path),
            path: p.display().to_string(),
        },
        Status::Other(p) => DockerCommand {
            state: "other".into(),
            on_path: true,
            path: p.display().to_string(),
        },
    }
}

fn berth_for_docker() -> Result<std::path::PathBuf, UserError> {
    crate::engine::berth_binary().ok_or_else(|| {
        UserError::invalid(
            "The berth command is not installed, so docker cannot be Berth.",
            "Install the berth package (or set BERTH_BIN to the berth binary) and restart Berth.",
        )
    })
}

/// Settings → The docker command: is `docker` Berth, another program, or missing?
#[tauri::command]
pub async fn docker_command_status() -> Result<DockerCommand, UserError> {
    let berth = berth_for_docker()?;
    let dir = berth_api::docker_command::default_dir();
    Ok(docker_command_in(
        &dir,
        std::env::var_os("PATH").as_deref(),
        &berth,
    ))
}

/// Settings → "Make docker run Berth": the link, never over another docker.
#[tauri::command]
pub async fn install_docker_command() -> Result<DockerCommand, UserError> {
    let berth = berth_for_docker()?;
    let dir = berth_api::docker_command::default_dir();
    let path = std::env::var_os("PATH");
    berth_api::docker_command::install(&dir, path.as_deref(), &berth).map_err(|e| {
        UserError::invalid(
            format!("{e}."),
            "Nothing was changed; the lectures' commands also run as berth …",
        )
    })?;
    Ok(docker_command_in(&dir, path.as_deref(), &berth))
}

#[cfg(test)]
mod docker_command_tests {
    #[test]
    fn settings_say_what_docker_is() {
        let t = tempfile::tempdir().unwrap();
        let berth = t.path().join("berth");
        std::fs::write(&berth, "").unwrap();
        let dir = t.path().join("bin");
        let path = std::ffi::OsString::from(dir.as_os_str());
        let s = super::docker_command_in(&dir, Some(&path), &berth);
        assert_eq!((s.state.as_str(), s.on_path), ("absent", true));
        berth_api::docker_command::install(&dir, Some(&path), &berth).unwrap();
        let s = super::docker_command_in(&dir, Some(&path), &berth);
        assert_eq!(s.state, "berth");
        assert_eq!(s.path, dir.join("docker").display().to_string());
        let other = t.path().join("other");
        std::fs::create_dir_all(&other).unwrap();
        std::fs::write(other.join("docker"), "").unwrap();
        let s = super::docker_command_in(&t.path().join("elsewhere"), Some(other.as_os_str()), &berth);
        assert_eq!(s.state, "other");
    }
}
