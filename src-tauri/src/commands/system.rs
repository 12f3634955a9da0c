//! Engine status, endpoint choice, disk usage and cleanup.

use bollard::query_parameters::{PruneContainersOptions, PruneImagesOptions, PruneVolumesOptions};
use tauri::State;

use crate::dto::{DiskUsage, EngineStatus, PruneReport};
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

#[tauri::command]
pub async fn disk_usage(state: State<'_, AppState>) -> Result<DiskUsage, UserError> {
    let docker = state.docker().await?;
    let df = docker.df(None).await?;
    let mut usage = DiskUsage::default();
    for img in df.images.unwrap_or_default() {
        let size = img.size.max(0) as f64;
        usage.images.count += 1;
        usage.images.size += size;
        if img.containers > 0 {
            usage.images.active += 1;
        } else {
            usage.images.reclaimable += size;
        }
    }
    for c in df.containers.unwrap_or_default() {
        let size = c.size_rw.unwrap_or(0).max(0) as f64;
        let running = c
            .state
            .as_ref()
            .map(|s| format!("{s:?}").eq_ignore_ascii_case("running"))
            .unwrap_or(false);
        usage.containers.count += 1;
        usage.containers.size += size;
        if running {
            usage.containers.active += 1;
        } else {
            usage.containers.reclaimable += size;
        }
    }
    for v in df.volumes.unwrap_or_default() {
        let (size, refs) = v
            .usage_data
            .as_ref()
            .map_or((0.0, 0), |u| (u.size.max(0) as f64, u.ref_count));
        usage.volumes.count += 1;
        usage.volumes.size += size;
        if refs > 0 {
            usage.volumes.active += 1;
        } else {
            usage.volumes.reclaimable += size;
        }
    }
    for b in df.build_cache.unwrap_or_default() {
        let size = b.size.unwrap_or(0).max(0) as f64;
        usage.build_cache.count += 1;
        usage.build_cache.size += size;
        if b.in_use.unwrap_or(false) {
            usage.build_cache.active += 1;
        } else {
            usage.build_cache.reclaimable += size;
        }
    }
    Ok(usage)
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
