//! Image commands: list, inspect for the Run wizard, remove, tag, prune, and the
//! streamed pull and push (per-layer progress events, then one `op-done`).

use bollard::models::ProgressDetail;
use bollard::query_parameters::{
    CreateImageOptions, ListImagesOptions, PruneImagesOptions, PushImageOptions, RemoveImageOptions,
    TagImageOptions,
};
use futures_util::{Stream, StreamExt};
use tauri::{AppHandle, Emitter, State};

use crate::commands::spawn_operation;
use crate::dto::{ImageDetail, ImageRow, ProgressEvent, PruneReport};
use crate::error::{During, Request, UserError};
use crate::registry_auth;
use crate::state::AppState;

/// Split `host/repo:tag` into repository and tag (a port colon is not a tag).
pub fn split_repo_tag(reference: &str) -> (String, String) {
    let reference = reference.split('@').next().unwrap_or(reference);
    match reference.rfind(':') {
        Some(i) if !reference[i..].contains('/') => {
            (reference[..i].to_string(), reference[i + 1..].to_string())
        }
        _ => (reference.to_string(), "latest".to_string()),
    }
}

#[tauri::command]
pub async fn list_images(state: State<'_, AppState>) -> Result<Vec<ImageRow>, UserError> {
    let docker = state.docker().await?;
    let images = docker.list_images(Some(ListImagesOptions::default())).await?;
    let mut rows = Vec::new();
    for img in images {
        let tags: Vec<String> = img
            .repo_tags
            .iter()
            .filter(|t| t.as_str() != "<none>:<none>")
            .cloned()
            .collect();
        let base = ImageRow {
            id: img.id.clone(),
            repository: "<none>".into(),
            tag: "<none>".into(),
            size: img.size as f64,
            created: img.created as f64,
            containers: img.containers.max(0) as f64,
        };
        if tags.is_empty() {
            rows.push(base.clone());
        }
        for t in tags {
            let (repository, tag) = split_repo_tag(&t);
            rows.push(ImageRow {
                repository,
                tag,
                ..base.clone()
            });
        }
    }
    rows.sort_by(|a, b| {
        b.created
            .total_cmp(&a.created)
            .then(a.repository.cmp(&b.repository))
    });
    Ok(rows)
}

#[tauri::command]
pub async fn inspect_image(state: State<'_, AppState>, reference: String) -> Result<ImageDetail, UserError> {
    let docker = state.docker().await?;
    let img = docker.inspect_image(&reference).await.during(Request::Image)?;
    let cfg = img.config.unwrap_or_default();
    let mut exposed: Vec<String> = cfg.exposed_ports.unwrap_or_default();
    exposed.sort();
    let mut volumes: Vec<String> = cfg.volumes.unwrap_or_default();
    volumes.sort();
    Ok(ImageDetail {
        id: img.id.unwrap_or_default(),
        tags: img.repo_tags.unwrap_or_default(),
        exposed_ports: exposed,
        env: cfg.env.unwrap_or_default(),
        cmd: cfg.cmd.unwrap_or_default(),
        entrypoint: cfg.entrypoint.unwrap_or_default(),
        volumes,
    })
}

#[tauri::command]
pub async fn inspect_image_json(state: State<'_, AppState>, reference: String) -> Result<String, UserError> {
    let docker = state.docker().await?;
    let img = docker.inspect_image(&reference).await.during(Request::Image)?;
    serde_json::to_string_pretty(&img)
        .map_err(|e| UserError::from_engine_message(500, &format!("cannot render inspect output: {e}")))
}

#[tauri::command]
pub async fn remove_image(
    state: State<'_, AppState>,
    reference: String,
    force: bool,
) -> Result<(), UserError> {
    let docker = state.docker().await?;
    docker
        .remove_image(
            &reference,
            Some(RemoveImageOptions {
                force,
                noprune: false,
                ..Default::default()
            }),
            None,
        )
        .await
        .during(Request::Image)?;
    Ok(())
}

#[tauri::command]
pub async fn tag_image(state: State<'_, AppState>, source: String, target: String) -> Result<(), UserError> {
    let (repo, tag) = split_repo_tag(target.trim());
    if repo.is_empty() {
        return Err(UserError::invalid(
            "The new tag is empty.",
            "Type a tag like user/app:1.0.",
        ));
    }
    let docker = state.docker().await?;
    docker
        .tag_image(
            &source,
            Some(TagImageOptions {
                repo: Some(repo),
                tag: Some(tag),
            }),
        )
        .await
        .during(Request::Image)?;
    Ok(())
}

#[tauri::command]
pub async fn prune_images(state: State<'_, AppState>) -> Result<PruneReport, UserError> {
    let docker = state.docker().await?;
    let r = docker.prune_images(None::<PruneImagesOptions>).await?;
    Ok(PruneReport {
        images_deleted: r.images_deleted.map_or(0, |d| d.len() as u32),
        space_reclaimed: r.space_reclaimed.unwrap_or(0) as f64,
        ..Default::default()
    })
}

fn progress(
    op: &str,
    id: Option<String>,
    status: Option<String>,
    detail: Option<bollard::models::ProgressDetail>,
) -> ProgressEvent {
    ProgressEvent {
        op: op.to_string(),
        layer: id.unwrap_or_default(),
        status: status.unwrap_or_default(),
        current: detail.as_ref().and_then(|d| d.current).map(|c| c as f64),
        total: detail.as_ref().and_then(|d| d.total).map(|t| t as f64),
    }
}

/// One progress line of a pull or push: layer, status, error, byte counts.
type ProgressLine = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<ProgressDetail>,
);

/// Forward a pull's or push's progress stream as `event`s; an `error` line ends it.
fn forward_progress<S>(app: AppHandle, state: &AppState, op: &str, event: &'static str, stream: S)
where
    S: Stream<Item = Result<ProgressLine, bollard::errors::Error>> + Send + 'static,
{
    let op2 = op.to_string();
    spawn_operation(
        app,
        state,
        op,
        stream.map(|r| r.during(Request::Image)),
        move |app, (layer, status, error, detail), _| {
            if let Some(e) = error {
                return Err(UserError::from_stream_error(Request::Image, &e));
            }
            let _ = app.emit(event, progress(&op2, layer, status, detail));
            Ok(())
        },
    );
}

/// Start a pull; progress arrives as `pull-progress`, the end as `op-done`.
#[tauri::command]
pub async fn pull_image(
    app: AppHandle,
    state: State<'_, AppState>,
    op: String,
    reference: String,
    platform: String,
) -> Result<(), UserError> {
    let docker = state.docker().await?;
    let (repo, tag) = split_repo_tag(reference.trim());
    let credentials = registry_auth::credentials_for(&repo);
    let options = CreateImageOptions {
        from_image: Some(repo),
        tag: Some(tag),
        platform,
        ..Default::default()
    };
    let stream = docker.create_image(Some(options), None, credentials).map(|r| {
        r.map(|i| {
            (
                i.id,
                i.status,
                i.error_detail.and_then(|d| d.message),
                i.progress_detail,
            )
        })
    });
    forward_progress(app, &state, &op, "pull-progress", stream);
    Ok(())
}

/// The Pull wizard's search: a private registry's catalog for `HOST:PORT/word`, Docker
/// Hub's search otherwise (the engine's `GET /images/search`).
#[tauri::command]
pub async fn search_images(
    state: State<'_, AppState>,
    term: String,
) -> Result<Vec<crate::dto::SearchHit>, UserError> {
    let term = term.trim().to_string();
    if term.is_empty() {
        return Ok(Vec::new());
    }
    let docker = state.docker().await?;
    let found = docker
        .search_images(bollard::query_parameters::SearchImagesOptions {
            term,
            limit: Some(25),
            ..Default::default()
        })
        .await?;
    Ok(found
        .into_iter()
        .map(|r| crate::dto::SearchHit {
            name: r.name.unwrap_or_default(),
            description: r.description.unwrap_or_default(),
            stars: r.star_count.unwrap_or(0).clamp(0, u32::MAX as i64) as u32,
            official: r.is_official.unwrap_or(false),
        })
        .filter(|h| !h.name.is_empty())
        .collect())
}

/// Start a push; progress arrives as `push-progress`, the end as `op-done`.
#[tauri::command]
pub async fn push_image(
    app: AppHandle,
    state: State<'_, AppState>,
    op: String,
    reference: String,
) -> Result<(), UserError> {
    let docker = state.docker().await?;
    let (repo, tag) = split_repo_tag(reference.trim());
    let credentials = registry_auth::credentials_for(&repo);
    let options = PushImageOptions {
        tag: Some(tag),
        platform: None,
    };
    let stream = docker.push_image(&repo, Some(options), credentials).map(|r| {
        r.map(|i| {
            (
                None,
                i.status,
                i.error_detail.and_then(|d| d.message),
                i.progress_detail,
            )
        })
    });
    forward_progress(app, &state, &op, "push-progress", stream);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::split_repo_tag;

    #[test]
    fn a_registry_port_is_not_a_tag() {
        assert_eq!(
            split_repo_tag("127.0.0.1:5000/app"),
            ("127.0.0.1:5000/app".into(), "latest".into())
        );
        assert_eq!(
            split_repo_tag("127.0.0.1:5000/app:v1"),
            ("127.0.0.1:5000/app".into(), "v1".into())
        );
        assert_eq!(split_repo_tag("flask"), ("flask".into(), "latest".into()));
        assert_eq!(split_repo_tag("a/b:c@sha256:00"), ("a/b".into(), "c".into()));
    }
}
