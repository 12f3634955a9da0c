//! `docker build` from a folder: tar the context, stream the engine's build output as
//! `build-output` lines, and point a failure at the Dockerfile line that caused it.

use std::path::{Path, PathBuf};

use bollard::query_parameters::BuildImageOptions;
use futures_util::StreamExt;
use tauri::{AppHandle, Emitter, State};

use crate::commands::finish;
use crate::dto::{BuildLine, BuildRequest};
use crate::error::{ErrorKind, Request, UserError};
use crate::state::AppState;

/// The build context as a tar archive, paths relative to the folder.
pub fn context_tar(dir: &Path) -> std::io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    builder.append_dir_all(".", dir)?;
    builder.into_inner()
}

/// The 1-based Dockerfile line an engine error is about: from "line N" in a parse error,
/// or by finding the failing command's text in the Dockerfile.
pub fn dockerfile_line(dockerfile: &str, error: &str) -> Option<usize> {
    let lower = error.to_ascii_lowercase();
    for marker in ["line ", "dockerfile:"] {
        if let Some(i) = lower.find(marker) {
            let digits: String = lower[i + marker.len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            if let Ok(n) = digits.parse::<usize>() {
                if n > 0 {
                    return Some(n);
                }
            }
        }
    }
    let quoted = error
        .split_once("-c ")
        .map(|(_, rest)| rest.split(['\'', '"', ']']).next().unwrap_or("").trim())
        .filter(|c| !c.is_empty())?;
    dockerfile
        .lines()
        .position(|l| l.trim_start().to_ascii_uppercase().starts_with("RUN") && l.contains(quoted))
        .map(|i| i + 1)
}

fn build_error(dockerfile_path: &Path, message: &str) -> UserError {
    let text = std::fs::read_to_string(dockerfile_path).unwrap_or_default();
    match dockerfile_line(&text, message) {
        Some(n) => {
            let line = text.lines().nth(n - 1).unwrap_or("").trim();
            UserError::new(
                ErrorKind::BuildFailed,
                format!("The build failed at Dockerfile line {n}: {line}"),
                "Fix that line (the build output above shows why) and build again.",
            )
            .with_details(message.to_string())
        }
        None => {
            let mut e = UserError::from_stream_error(Request::General, message);
            if e.kind == ErrorKind::Other {
                e.kind = ErrorKind::BuildFailed;
                e.next_step = "Read the build output above, fix the Dockerfile and build again.".into();
            }
            e
        }
    }
}

fn validate(req: &BuildRequest) -> Result<(PathBuf, String), UserError> {
    let dir = PathBuf::from(req.context_dir.trim());
    if !dir.is_dir() {
        return Err(UserError::invalid(
            "The build folder does not exist.",
            "Pick the folder that holds your Dockerfile.",
        ));
    }
    let dockerfile = if req.dockerfile.trim().is_empty() {
        "Dockerfile".to_string()
    } else {
        req.dockerfile.trim().to_string()
    };
    if !dir.join(&dockerfile).is_file() {
        return Err(UserError::invalid(
            format!("There is no {dockerfile} in {}.", dir.display()),
            "Add a Dockerfile to the folder (Learn mode has a template) or name yours in the Dockerfile field.",
        ));
    }
    if req.tag.trim().is_empty() {
        return Err(UserError::invalid(
            "The image needs a tag.",
            "Type a tag like myapp:1.0.",
        ));
    }
    Ok((dir, dockerfile))
}

#[tauri::command]
pub async fn build_image(
    app: AppHandle,
    state: State<'_, AppState>,
    op: String,
    req: BuildRequest,
) -> Result<(), UserError> {
    let (dir, dockerfile) = validate(&req)?;
    let docker = state.docker().await?;
    let dir2 = dir.clone();
    let tar = tokio::task::spawn_blocking(move || context_tar(&dir2))
        .await
        .map_err(|e| UserError::from_engine_message(500, &e.to_string()))?
        .map_err(|e| {
            UserError::invalid(
                "Berth could not read the build folder.",
                "Check the folder's permissions.",
            )
            .with_details(e.to_string())
        })?;
    let build_args = req
        .build_args
        .iter()
        .filter(|kv| !kv.key.is_empty())
        .map(|kv| (kv.key.clone(), kv.value.clone()))
        .collect();
    let options = BuildImageOptions {
        dockerfile: dockerfile.clone(),
        t: Some(req.tag.trim().to_string()),
        rm: true,
        buildargs: Some(build_args),
        ..Default::default()
    };
    let op2 = op.clone();
    let dockerfile_path = dir.join(&dockerfile);
    let task = tokio::spawn(async move {
        let mut stream = docker.build_image(options, None, Some(bollard::body_full(tar.into())));
        let mut error = None;
        let mut image_id = None;
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(msg) = info.error_detail.and_then(|d| d.message) {
                        error = Some(build_error(&dockerfile_path, &msg));
                        break;
                    }
                    if let Some(id) = info.aux.and_then(|a| a.id) {
                        image_id = Some(id);
                    }
                    for text in [info.stream, info.status].into_iter().flatten() {
                        for line in text.lines().filter(|l| !l.trim().is_empty()) {
                            let _ = app.emit(
                                "build-output",
                                BuildLine {
                                    op: op2.clone(),
                                    text: line.to_string(),
                                },
                            );
                        }
                    }
                }
                Err(e) => {
                    error = Some(match &e {
                        bollard::errors::Error::DockerStreamError { error } => {
                            build_error(&dockerfile_path, error)
                        }
                        _ => e.into(),
                    });
                    break;
                }
            }
        }
        finish(&app, &op2, error, image_id);
    });
    state.track(&op, task.abort_handle());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DF: &str = "FROM busybox\nWORKDIR /app\nRUN echo hi > /x\nRUN false && echo never\nCMD [\"sh\"]\n";

    #[test]
    fn parse_errors_name_their_line() {
        assert_eq!(
            dockerfile_line(DF, "Dockerfile parse error line 3: unknown instruction: RUNN"),
            Some(3)
        );
        assert_eq!(dockerfile_line(DF, "dockerfile:4 failed to solve"), Some(4));
    }

    #[test]
    fn failing_run_steps_are_found_by_their_command() {
        let msg = "The command '/bin/sh -c false && echo never' returned a non-zero code: 1";
        assert_eq!(dockerfile_line(DF, msg), Some(4));
        assert_eq!(dockerfile_line(DF, "no space left on device"), None);
    }

    #[test]
    fn the_context_is_a_tar_of_the_folder() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("Dockerfile"), DF).expect("write");
        std::fs::create_dir(dir.path().join("src")).expect("mkdir");
        std::fs::write(dir.path().join("src/app.py"), "print(1)").expect("write");
        let bytes = context_tar(dir.path()).expect("tar");
        let mut archive = tar::Archive::new(&bytes[..]);
        let mut names: Vec<String> = archive
            .entries()
            .expect("entries")
            .filter_map(|e| {
                e.ok()
                    .and_then(|e| e.path().ok().map(|p| p.display().to_string()))
            })
            .collect();
        names.sort();
        assert!(
            names.contains(&"./Dockerfile".to_string()) || names.contains(&"Dockerfile".to_string()),
            "{names:?}"
        );
        assert!(names.iter().any(|n| n.ends_with("src/app.py")), "{names:?}");
    }
}
