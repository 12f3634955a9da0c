//! Container commands: list, lifecycle actions, inspect, run (create + start).

use std::collections::HashMap;

use bollard::models::{ContainerCreateBody, HostConfig, PortBinding};
use bollard::query_parameters::{
    CreateContainerOptions, ListContainersOptions, RemoveContainerOptions, RestartContainerOptions,
    StartContainerOptions, StopContainerOptions,
};
use serde::Deserialize;
use tauri::State;
use ts_rs::TS;

use crate::dto::{ContainerRow, PortRow, RunRequest};
use crate::error::{During, Request, UserError};
use crate::state::AppState;

#[derive(Debug, Clone, Copy, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
#[ts(export)]
pub enum ContainerAction {
    Start,
    Stop,
    Restart,
    Pause,
    Unpause,
    Remove,
}

fn enum_word<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

pub fn container_row(c: bollard::models::ContainerSummary) -> ContainerRow {
    let mut ports: Vec<PortRow> = c
        .ports
        .unwrap_or_default()
        .into_iter()
        .map(|p| PortRow {
            private_port: p.private_port,
            public_port: p.public_port,
            ip: p.ip.unwrap_or_default(),
            protocol: p.typ.as_ref().map(enum_word).unwrap_or_else(|| "tcp".into()),
        })
        .collect();
    // docker lists a port once per address family; one button per host port is enough.
    ports.sort_by_key(|p| (p.public_port, p.private_port));
    ports.dedup_by(|a, b| a.public_port == b.public_port && a.private_port == b.private_port);
    ContainerRow {
        id: c.id.unwrap_or_default(),
        name: c
            .names
            .and_then(|n| n.into_iter().next())
            .map(|n| n.trim_start_matches('/').to_string())
            .unwrap_or_default(),
        image: c.image.unwrap_or_default(),
        state: c.state.as_ref().map(enum_word).unwrap_or_default(),
        status: c.status.unwrap_or_default(),
        created: c.created.unwrap_or(0) as f64,
        ports,
        command: c.command.unwrap_or_default(),
    }
}

#[tauri::command]
pub async fn list_containers(state: State<'_, AppState>, all: bool) -> Result<Vec<ContainerRow>, UserError> {
    let docker = state.docker().await?;
    let list = docker
        .list_containers(Some(ListContainersOptions {
            all,
            ..Default::default()
        }))
        .await?;
    // The volume browser's helpers live for one request; they are not the user's.
    Ok(list
        .into_iter()
        .filter(|c| !crate::commands::volume_files::is_helper(c.labels.as_ref()))
        .map(container_row)
        .collect())
}

#[tauri::command]
pub async fn container_action(
    state: State<'_, AppState>,
    id: String,
    action: ContainerAction,
) -> Result<(), UserError> {
    let docker = state.docker().await?;
    match action {
        ContainerAction::Start => docker
            .start_container(&id, None::<StartContainerOptions>)
            .await
            .during(Request::StartContainer)?,
        ContainerAction::Stop => {
            docker
                .stop_container(
                    &id,
                    Some(StopContainerOptions {
                        t: Some(10),
                        signal: None,
                    }),
                )
                .await?
        }
        ContainerAction::Restart => {
            docker
                .restart_container(
                    &id,
                    Some(RestartContainerOptions {
                        t: Some(10),
                        signal: None,
                    }),
                )
                .await?
        }
        ContainerAction::Pause => docker.pause_container(&id).await.during(Request::NeedsRunning)?,
        ContainerAction::Unpause => docker.unpause_container(&id).await?,
        ContainerAction::Remove => {
            docker
                .remove_container(
                    &id,
                    Some(RemoveContainerOptions {
                        force: true,
                        v: false,
                        link: false,
                    }),
                )
                .await?
        }
    }
    Ok(())
}

/// Pretty JSON of `docker inspect` for the Inspect view.
#[tauri::command]
pub async fn inspect_container(state: State<'_, AppState>, id: String) -> Result<String, UserError> {
    let docker = state.docker().await?;
    let info = docker
        .inspect_container(&id, None::<bollard::query_parameters::InspectContainerOptions>)
        .await?;
    serde_json::to_string_pretty(&info)
        .map_err(|e| UserError::from_engine_message(500, &format!("cannot render inspect output: {e}")))
}

/// Validate a Run request before anything reaches the engine.
pub fn validate_run(req: &RunRequest) -> Result<(), UserError> {
    if req.image.trim().is_empty() {
        return Err(UserError::invalid(
            "No image was chosen.",
            "Pick or type an image to run.",
        ));
    }
    if !req.name.is_empty()
        && !req
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    {
        return Err(UserError::invalid(
            format!("\"{}\" is not a valid container name.", req.name),
            "Use letters, digits, '.', '_' and '-' only.",
        ));
    }
    for p in &req.ports {
        if p.host_port == 0 || p.container_port == 0 {
            return Err(UserError::invalid(
                "A port mapping has an empty port.",
                "Fill in both the host and the container port, or remove the row.",
            ));
        }
    }
    for e in &req.env {
        if !e.contains('=') || e.starts_with('=') {
            return Err(UserError::invalid(
                format!("The environment variable \"{e}\" is not KEY=value."),
                "Write it as KEY=value.",
            ));
        }
    }
    for v in &req.volumes {
        if v.split(':').count() < 2 {
            return Err(UserError::invalid(
                format!("The volume \"{v}\" does not say where to mount it."),
                "Write it as name:/path/in/container or /host/folder:/path/in/container.",
            ));
        }
    }
    Ok(())
}

/// `docker run -d`: create, then start; returns the container id.
#[tauri::command]
pub async fn run_container(state: State<'_, AppState>, req: RunRequest) -> Result<String, UserError> {
    validate_run(&req)?;
    let docker = state.docker().await?;
    let mut exposed = Vec::new();
    let mut bindings = HashMap::new();
    for p in &req.ports {
        let key = format!("{}/{}", p.container_port, p.protocol);
        exposed.push(key.clone());
        bindings.insert(
            key,
            Some(vec![PortBinding {
                host_ip: None,
                host_port: Some(p.host_port.to_string()),
            }]),
        );
    }
    let body = ContainerCreateBody {
        image: Some(req.image.clone()),
        env: (!req.env.is_empty()).then(|| req.env.clone()),
        cmd: (!req.command.is_empty()).then(|| req.command.clone()),
        exposed_ports: (!exposed.is_empty()).then_some(exposed),
        host_config: Some(HostConfig {
            port_bindings: (!bindings.is_empty()).then_some(bindings),
            binds: (!req.volumes.is_empty()).then(|| req.volumes.clone()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let options = (!req.name.is_empty()).then(|| CreateContainerOptions {
        name: Some(req.name.clone()),
        platform: String::new(),
    });
    let created = docker
        .create_container(options, body)
        .await
        .during(Request::CreateContainer)?;
    if let Err(e) = docker
        .start_container(&created.id, None::<StartContainerOptions>)
        .await
    {
        // A container that never started would only confuse the list; docker keeps it,
        // but the wizard's retry would then hit "name in use".
        let _ = docker
            .remove_container(
                &created.id,
                Some(RemoveContainerOptions {
                    force: true,
                    ..Default::default()
                }),
            )
            .await;
        return Err(UserError::during(Request::StartContainer, e));
    }
    Ok(created.id)
}

/// A free host port at or above `preferred` (it binds to check, like the engine will).
#[tauri::command]
pub fn suggest_host_port(preferred: u16) -> u16 {
    let start = preferred.max(1024);
    (start..=u16::MAX)
        .chain(1024..start)
        .find(|p| std::net::TcpListener::bind(("0.0.0.0", *p)).is_ok())
        .unwrap_or(preferred)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dto::PortMapping;

    fn req() -> RunRequest {
        RunRequest {
            image: "flask".into(),
            name: "web".into(),
            ports: vec![PortMapping {
                host_port: 5000,
                container_port: 5000,
                protocol: "tcp".into(),
            }],
            env: vec!["A=1".into()],
            volumes: vec!["data:/data".into()],
            command: vec![],
        }
    }

    #[test]
    fn a_dead_container_is_a_row_with_its_reason() {
        // As Berth's engine (and dockerd) list a container they cannot use.
        let summary: bollard::models::ContainerSummary = serde_json::from_value(serde_json::json!({
            "Id": "ab".repeat(32),
            "Names": ["/web"],
            "Image": "busybox",
            "State": "dead",
            "Status": "Dead: its record is damaged (EOF while parsing an object at line 9 column 0)",
            "Created": 0,
        }))
        .unwrap();
        let row = container_row(summary);
        assert_eq!((row.name.as_str(), row.state.as_str()), ("web", "dead"));
        assert!(
            row.status.starts_with("Dead: its record is damaged"),
            "{}",
            row.status
        );
    }

    #[test]
    fn run_requests_are_checked_before_the_engine_sees_them() {
        assert!(validate_run(&req()).is_ok());
        let mut r = req();
        r.name = "bad name".into();
        assert!(validate_run(&r).is_err());
        let mut r = req();
        r.env = vec!["NOVALUE".into()];
        assert!(validate_run(&r).is_err());
        let mut r = req();
        r.volumes = vec!["data".into()];
        assert!(validate_run(&r).is_err());
    }

    #[test]
    fn suggested_port_is_bindable_and_skips_a_taken_one() {
        let taken = std::net::TcpListener::bind(("0.0.0.0", 0)).expect("bind");
        let port = taken.local_addr().expect("addr").port();
        let suggested = suggest_host_port(port);
        assert_ne!(suggested, port);
        assert!(std::net::TcpListener::bind(("0.0.0.0", suggested)).is_ok());
    }
}
