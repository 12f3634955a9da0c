//! Volume commands: list (with the containers that mount each), create, remove.

use std::collections::HashMap;

use bollard::models::VolumeCreateRequest;
use bollard::query_parameters::{ListContainersOptions, ListVolumesOptions, RemoveVolumeOptions};
use tauri::State;

use crate::commands::volume_files::is_helper;
use crate::dto::VolumeRow;
use crate::error::UserError;
use crate::state::AppState;

#[tauri::command]
pub async fn list_volumes(state: State<'_, AppState>) -> Result<Vec<VolumeRow>, UserError> {
    let docker = state.docker().await?;
    let volumes = docker.list_volumes(None::<ListVolumesOptions>).await?;
    let containers = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            ..Default::default()
        }))
        .await?;
    let mut used_by: HashMap<String, Vec<String>> = HashMap::new();
    // The file browser's own helpers are not users anyone should see.
    for c in containers.into_iter().filter(|c| !is_helper(c.labels.as_ref())) {
        let name = c
            .names
            .as_ref()
            .and_then(|n| n.first())
            .map(|n| n.trim_start_matches('/').to_string())
            .unwrap_or_default();
        for m in c.mounts.unwrap_or_default() {
            if let Some(v) = m.name {
                used_by.entry(v).or_default().push(name.clone());
            }
        }
    }
    let mut rows: Vec<VolumeRow> = volumes
        .volumes
        .unwrap_or_default()
        .into_iter()
        .map(|v| VolumeRow {
            used_by: used_by.remove(&v.name).unwrap_or_default(),
            size: v.usage_data.as_ref().map(|u| u.size as f64).filter(|s| *s >= 0.0),
            name: v.name,
            driver: v.driver,
            mountpoint: v.mountpoint,
            created_at: v.created_at.map(|d| d.to_string()).unwrap_or_default(),
        })
        .collect();
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(rows)
}

#[tauri::command]
pub async fn create_volume(state: State<'_, AppState>, name: String) -> Result<String, UserError> {
    let name = name.trim().to_string();
    if !name.is_empty()
        && !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    {
        return Err(UserError::invalid(
            format!("\"{name}\" is not a valid volume name."),
            "Use letters, digits, '.', '_' and '-' only, or leave it empty for a generated name.",
        ));
    }
    let docker = state.docker().await?;
    let v = docker
        .create_volume(VolumeCreateRequest {
            name: (!name.is_empty()).then_some(name),
            ..Default::default()
        })
        .await?;
    Ok(v.name)
}

#[tauri::command]
pub async fn remove_volume(state: State<'_, AppState>, name: String) -> Result<(), UserError> {
    let docker = state.docker().await?;
    docker
        .remove_volume(&name, Some(RemoveVolumeOptions { force: false }))
        .await?;
    Ok(())
}
