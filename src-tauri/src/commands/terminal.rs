//! `docker exec -it` for the Terminal view: a tty exec whose output streams as
//! `exec-output` events (base64 bytes for xterm.js) and whose input and size the UI sets.

use base64::Engine as _;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::query_parameters::ResizeExecOptions;
use tauri::{AppHandle, Emitter, State};
use tokio::io::AsyncWriteExt;

use crate::commands::spawn_operation;
use crate::dto::ExecOutput;
use crate::error::{During, Request, UserError};
use crate::state::{AppState, ExecSession};

#[tauri::command]
pub async fn exec_start(
    app: AppHandle,
    state: State<'_, AppState>,
    session: String,
    id: String,
    command: Vec<String>,
    cols: u16,
    rows: u16,
) -> Result<(), UserError> {
    let docker = state.docker().await?;
    let cmd = if command.is_empty() {
        vec!["/bin/sh".to_string()]
    } else {
        command
    };
    let exec = docker
        .create_exec(
            &id,
            CreateExecOptions {
                attach_stdin: Some(true),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                tty: Some(true),
                env: Some(vec!["TERM=xterm-256color".to_string()]),
                cmd: Some(cmd),
                ..Default::default()
            },
        )
        .await
        .during(Request::NeedsRunning)?;
    let started = docker
        .start_exec(
            &exec.id,
            Some(StartExecOptions {
                detach: false,
                tty: true,
                output_capacity: None,
            }),
        )
        .await?;
    let StartExecResults::Attached { output, input } = started else {
        return Err(UserError::from_engine_message(
            500,
            "the engine detached the exec session",
        ));
    };
    // Resizing before the first output avoids a shell that wraps at 80 columns.
    let _ = docker
        .resize_exec(
            &exec.id,
            ResizeExecOptions {
                h: i32::from(rows),
                w: i32::from(cols),
            },
        )
        .await;
    state.execs.lock().await.insert(
        session.clone(),
        ExecSession {
            exec_id: exec.id.clone(),
            input,
        },
    );
    let session2 = session.clone();
    spawn_operation(app, &state, &session, output, move |app, out, _| {
        let data = base64::engine::general_purpose::STANDARD.encode(out.into_bytes());
        let _ = app.emit(
            "exec-output",
            ExecOutput {
                session: session2.clone(),
                data,
            },
        );
        Ok(())
    });
    Ok(())
}

#[tauri::command]
pub async fn exec_input(state: State<'_, AppState>, session: String, data: String) -> Result<(), UserError> {
    let mut execs = state.execs.lock().await;
    let Some(s) = execs.get_mut(&session) else {
        return Err(UserError::new(
            crate::error::ErrorKind::NotRunning,
            "This terminal session has ended.",
            "Open a new terminal.",
        ));
    };
    let sent = async {
        s.input.write_all(data.as_bytes()).await?;
        s.input.flush().await
    };
    sent.await.map_err(|e| {
        UserError::new(
            crate::error::ErrorKind::NotRunning,
            "The terminal session stopped accepting input.",
            "Open a new terminal.",
        )
        .with_details(e.to_string())
    })
}

#[tauri::command]
pub async fn exec_resize(
    state: State<'_, AppState>,
    session: String,
    cols: u16,
    rows: u16,
) -> Result<(), UserError> {
    let exec_id = match state.execs.lock().await.get(&session) {
        Some(s) => s.exec_id.clone(),
        None => return Ok(()),
    };
    let docker = state.docker().await?;
    docker
        .resize_exec(
            &exec_id,
            ResizeExecOptions {
                h: i32::from(rows),
                w: i32::from(cols),
            },
        )
        .await?;
    Ok(())
}

#[tauri::command]
pub async fn exec_close(state: State<'_, AppState>, session: String) -> Result<(), UserError> {
    if let Some(mut s) = state.execs.lock().await.remove(&session) {
        // Ctrl-D then EOF, so the shell exits instead of lingering in the container.
        let _ = s.input.write_all(b"\x04").await;
        let _ = s.input.shutdown().await;
    }
    state.cancel(&session);
    Ok(())
}
