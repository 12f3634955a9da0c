//! The Compose view's commands: projects as the engine's containers name them (the
//! `com.docker.compose.*` labels that `berth compose` and docker-compose both write), the
//! compose file of a folder, and up / down / restart / logs of a project.
//!
//! Up and down run `berth compose` (the CLI installed beside this app, so compose files
//! have one implementation) against this window's engine, through `BERTH_HOST`; the list,
//! stop, start, restart and the logs go to the engine through bollard like every other view.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use bollard::container::LogOutput;
use bollard::query_parameters::{
    ListContainersOptions, RestartContainerOptions, StartContainerOptions, StopContainerOptions,
};
use futures_util::StreamExt;
use serde::Deserialize;
use tauri::{AppHandle, Emitter, State};
use tokio::io::{AsyncBufReadExt, BufReader};
use ts_rs::TS;

use crate::commands::finish;
use crate::dto::{BuildLine, ComposeFolder, ComposeLogBatch, ComposeLogLine, ComposeProject, ComposeService};
use crate::error::{ErrorKind, UserError};
use crate::state::AppState;

const PROJECT: &str = "com.docker.compose.project";
const SERVICE: &str = "com.docker.compose.service";
const NUMBER: &str = "com.docker.compose.container-number";
const WORKING_DIR: &str = "com.docker.compose.project.working_dir";
const CONFIG_FILES: &str = "com.docker.compose.project.config_files";

/// The file names Compose looks for in a folder, in its order.
const FILES: [&str; 4] = [
    "compose.yaml",
    "compose.yml",
    "docker-compose.yml",
    "docker-compose.yaml",
];

const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// What a project's buttons do.
#[derive(Debug, Clone, Copy, Deserialize, TS, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
#[ts(export)]
pub enum ComposeAction {
    Up,
    Down,
    Restart,
    Stop,
    Start,
}

/// Every compose project the engine has containers of, by name, each with its services
/// (one row per container, in service and replica order).
#[tauri::command]
pub async fn list_compose_projects(state: State<'_, AppState>) -> Result<Vec<ComposeProject>, UserError> {
    let docker = state.docker().await?;
    let list = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(std::collections::HashMap::from([(
                "label".to_string(),
                vec![PROJECT.to_string()],
            )])),
            ..Default::default()
        }))
        .await?;
    let mut projects: BTreeMap<String, ComposeProject> = BTreeMap::new();
    for mut c in list {
        let labels = c.labels.take().unwrap_or_default();
        let Some(name) = labels.get(PROJECT).cloned() else {
            continue;
        };
        let label = |k: &str| labels.get(k).cloned().unwrap_or_default();
        let p = projects.entry(name.clone()).or_insert_with(|| ComposeProject {
            name,
            working_dir: label(WORKING_DIR),
            config_files: label(CONFIG_FILES)
                .split(',')
                .filter(|f| !f.is_empty())
                .map(String::from)
                .collect(),
            running: 0,
            services: Vec::new(),
        });
        let number: u32 = label(NUMBER).parse().unwrap_or(1);
        let container = super::containers::container_row(c);
        if container.state == "running" {
            p.running += 1;
        }
        p.services.push(ComposeService {
            service: label(SERVICE),
            number,
            container,
        });
    }
    let mut out: Vec<ComposeProject> = projects.into_values().collect();
    for p in &mut out {
        p.services
            .sort_by(|a, b| (&a.service, a.number).cmp(&(&b.service, b.number)));
    }
    Ok(out)
}

/// The compose file in `folder`, the project it makes and its services, and the command
/// that does what "Run this project" does.
#[tauri::command]
pub async fn compose_folder(folder: String) -> Result<ComposeFolder, UserError> {
    let dir = PathBuf::from(folder.trim());
    let file = find_file(&dir)?;
    let config = berth(&dir, None, &["config"]).await?;
    let project = config
        .lines()
        .find_map(|l| l.strip_prefix("name: "))
        .map(|n| n.trim().trim_matches(['"', '\'']).to_string())
        .unwrap_or_default();
    let services = berth(&dir, None, &["config", "--services"])
        .await?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    Ok(ComposeFolder {
        command: format!(
            "cd {} && docker compose up -d",
            shell_word(&dir.display().to_string())
        ),
        folder: dir.display().to_string(),
        file: file.display().to_string(),
        project,
        services,
    })
}

/// Runs `action` on a project in the background as operation `op`: `berth compose`'s
/// output lines come as `build-line` events, the end as `op-done`. `folder` is where its
/// compose file is (a listed project's working folder, or the folder being run).
#[tauri::command]
pub async fn compose_action(
    app: AppHandle,
    state: State<'_, AppState>,
    op: String,
    project: String,
    folder: String,
    action: ComposeAction,
) -> Result<(), UserError> {
    let docker = state.docker().await?;
    let endpoint = state.endpoint().await.map(|(_, e)| e);
    let op2 = op.clone();
    let task = tokio::spawn(async move {
        let result = match action {
            ComposeAction::Up | ComposeAction::Down => {
                let args: &[&str] = if action == ComposeAction::Up {
                    &["up", "-d"]
                } else {
                    &["down"]
                };
                let dir = PathBuf::from(&folder);
                let mut full = vec!["-p", project.as_str()];
                full.extend_from_slice(args);
                run_streaming(&app, &op2, &dir, endpoint.as_deref(), &full).await
            }
            _ => containers_action(&docker, &project, action).await,
        };
        finish(&app, &op2, result.err(), Some(project));
    });
    state.track(&op, task.abort_handle());
    Ok(())
}

/// Start, stop or restart every container of `project`, as `docker compose` does.
async fn containers_action(
    docker: &bollard::Docker,
    project: &str,
    action: ComposeAction,
) -> Result<(), UserError> {
    let list = project_containers(docker, project).await?;
    for c in list {
        let id = c.id.unwrap_or_default();
        match action {
            ComposeAction::Restart => {
                docker
                    .restart_container(&id, None::<RestartContainerOptions>)
                    .await?
            }
            ComposeAction::Stop => docker.stop_container(&id, None::<StopContainerOptions>).await?,
            ComposeAction::Start => docker.start_container(&id, None::<StartContainerOptions>).await?,
            ComposeAction::Up | ComposeAction::Down => unreachable!("berth compose does these"),
        }
    }
    Ok(())
}

/// Streams the logs of every container of `project`, interleaved by time, each line named
/// by its service (`compose-log` events in batches, the end as `op-done`).
#[tauri::command]
pub async fn stream_compose_logs(
    app: AppHandle,
    state: State<'_, AppState>,
    op: String,
    project: String,
    follow: bool,
) -> Result<(), UserError> {
    let docker = state.docker().await?;
    let list = project_containers(&docker, &project).await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<ComposeLogLine>();
    let mut feeds = Vec::new();
    for c in list {
        let labels = c.labels.clone().unwrap_or_default();
        let service = labels.get(SERVICE).cloned().unwrap_or_default();
        let name = c
            .names
            .and_then(|n| n.into_iter().next())
            .map(|n| n.trim_start_matches('/').to_string())
            .unwrap_or_default();
        let (docker, tx, id) = (docker.clone(), tx.clone(), c.id.unwrap_or_default());
        feeds.push(tokio::spawn(async move {
            let mut stream = docker.logs(&id, Some(super::logs::all_lines(follow)));
            let mut lines = Vec::new();
            while let Some(Ok(item)) = stream.next().await {
                let (stderr, bytes) = match item {
                    LogOutput::StdErr { message } => (true, message),
                    LogOutput::StdOut { message } | LogOutput::Console { message } => (false, message),
                    LogOutput::StdIn { .. } => continue,
                };
                super::logs::frame_lines(stderr, &bytes, &mut lines);
                for l in lines.drain(..) {
                    let line = ComposeLogLine {
                        service: service.clone(),
                        container: name.clone(),
                        ts: l.ts,
                        text: l.text,
                        stderr: l.stderr,
                    };
                    if tx.send(line).is_err() {
                        return;
                    }
                }
            }
        }));
    }
    drop(tx);
    let op2 = op.clone();
    let task = tokio::spawn(async move {
        let _feeds = AbortOnDrop(feeds);
        let mut pending: Vec<ComposeLogLine> = Vec::new();
        let mut tick = tokio::time::interval(FLUSH_EVERY);
        let emit = |pending: &mut Vec<ComposeLogLine>| {
            // Within a batch, in time order (RFC 3339 with nanoseconds sorts as text).
            pending.sort_by(|a, b| a.ts.cmp(&b.ts));
            let lines = std::mem::take(pending);
            let _ = app.emit(
                "compose-log",
                ComposeLogBatch {
                    op: op2.clone(),
                    lines,
                },
            );
        };
        loop {
            tokio::select! {
                line = rx.recv() => match line {
                    Some(l) => pending.push(l),
                    None => break,
                },
                _ = tick.tick() => if !pending.is_empty() { emit(&mut pending) },
            }
        }
        if !pending.is_empty() {
            emit(&mut pending);
        }
        finish(&app, &op2, None, None);
    });
    state.track(&op, task.abort_handle());
    Ok(())
}

/// Every container of compose project `project`, stopped ones too.
async fn project_containers(
    docker: &bollard::Docker,
    project: &str,
) -> Result<Vec<bollard::models::ContainerSummary>, UserError> {
    Ok(docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(std::collections::HashMap::from([(
                "label".to_string(),
                vec![format!("{PROJECT}={project}")],
            )])),
            ..Default::default()
        }))
        .await?)
}

/// Aborts the log feeds of a project when their merger ends (or is cancelled).
struct AbortOnDrop(Vec<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for f in &self.0 {
            f.abort();
        }
    }
}

/// The compose file Compose would take in `dir`.
fn find_file(dir: &Path) -> Result<PathBuf, UserError> {
    if !dir.is_dir() {
        return Err(UserError::new(
            ErrorKind::InvalidInput,
            format!("{} is not a folder on this computer.", dir.display()),
            "Type the path of the folder that holds your compose.yaml.",
        ));
    }
    FILES
        .iter()
        .map(|f| dir.join(f))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            UserError::new(
                ErrorKind::InvalidInput,
                format!("{} holds no compose file.", dir.display()),
                "Pick the folder with compose.yaml (or docker-compose.yml) in it.",
            )
        })
}

/// `berth compose ARGS` in `dir` against `endpoint` (none: wherever the CLI finds an
/// engine), its output; its one-sentence error as the error.
async fn berth(dir: &Path, endpoint: Option<&str>, args: &[&str]) -> Result<String, UserError> {
    let out = command(dir, endpoint, args)?
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .await
        .map_err(|e| no_cli(e.to_string()))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(compose_failed(&String::from_utf8_lossy(&out.stderr)))
    }
}

/// Runs `berth compose ARGS`, each output line a `build-line` event of `op`.
async fn run_streaming(
    app: &AppHandle,
    op: &str,
    dir: &Path,
    endpoint: Option<&str>,
    args: &[&str],
) -> Result<(), UserError> {
    find_file(dir)?;
    let mut child = command(dir, endpoint, args)?
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| no_cli(e.to_string()))?;
    let (out, err) = (child.stdout.take(), child.stderr.take());
    let app2 = app.clone();
    let send = move |text: String| {
        let _ = app2.emit(
            "build-line",
            BuildLine {
                op: op.to_string(),
                text,
            },
        );
    };
    let mut last_error = String::new();
    let mut out = out.map(|o| BufReader::new(o).lines());
    let mut err = err.map(|e| BufReader::new(e).lines());
    loop {
        tokio::select! {
            line = async { match out.as_mut() { Some(o) => o.next_line().await, None => Ok(None) } }, if out.is_some() => match line {
                Ok(Some(l)) => send(l),
                _ => out = None,
            },
            line = async { match err.as_mut() { Some(e) => e.next_line().await, None => Ok(None) } }, if err.is_some() => match line {
                Ok(Some(l)) => {
                    if l.starts_with("Error") || l.contains(" — ") {
                        last_error = l.clone();
                    }
                    send(l);
                }
                _ => err = None,
            },
            else => break,
        }
    }
    let status = child.wait().await.map_err(|e| no_cli(e.to_string()))?;
    if status.success() {
        Ok(())
    } else {
        Err(compose_failed(&last_error))
    }
}

fn command(dir: &Path, endpoint: Option<&str>, args: &[&str]) -> Result<tokio::process::Command, UserError> {
    let bin = crate::engine::berth_binary().ok_or_else(|| no_cli("no berth binary".into()))?;
    let mut cmd = tokio::process::Command::new(bin);
    cmd.arg("compose")
        .arg("--project-directory")
        .arg(dir)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null());
    if let Some(e) = endpoint {
        cmd.env("BERTH_HOST", e);
    }
    Ok(cmd)
}

fn no_cli(details: String) -> UserError {
    UserError::new(
        ErrorKind::Other,
        "Berth could not run its compose command (the berth program beside the app).",
        "Reinstall Berth, or put the berth command on your PATH.",
    )
    .with_details(details)
}

/// `berth compose`'s last error line as the one sentence to show.
fn compose_failed(stderr: &str) -> UserError {
    let line = stderr
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("berth compose failed")
        .trim_start_matches("Error: ")
        .to_string();
    UserError::new(
        ErrorKind::InvalidInput,
        format!("Compose stopped: {line}"),
        "Fix the compose file or what it names, then try again.",
    )
    .with_details(stderr.to_string())
}

/// `s` as one shell word, quoted when it needs to be.
fn shell_word(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:@".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_and_files() {
        let t = tempfile::tempdir().unwrap();
        assert!(find_file(&t.path().join("nope")).is_err());
        assert!(find_file(t.path())
            .unwrap_err()
            .message
            .contains("no compose file"));
        std::fs::write(t.path().join("docker-compose.yml"), "services: {}\n").unwrap();
        std::fs::write(t.path().join("compose.yaml"), "services: {}\n").unwrap();
        assert_eq!(find_file(t.path()).unwrap(), t.path().join("compose.yaml"));
        assert_eq!(shell_word("/home/ann/web-app"), "/home/ann/web-app");
        assert_eq!(shell_word("/home/ann/my app"), "'/home/ann/my app'");
        assert_eq!(shell_word("it's"), "'it'\\''s'");
    }

    #[test]
    fn the_last_error_line_is_the_sentence() {
        let e = compose_failed("Pulling web\nError: service web: image nope not found — check the name\n");
        assert_eq!(
            e.message,
            "Compose stopped: service web: image nope not found — check the name"
        );
    }
}
