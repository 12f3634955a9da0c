//! Container logs: streamed to the UI in batches (`log-batch` events) so a million lines
//! arrive as a few hundred messages, and written straight to a file for "download".

use std::io::Write;
use std::time::Duration;

use bollard::container::LogOutput;
use bollard::query_parameters::LogsOptions;
use futures_util::StreamExt;
use tauri::{AppHandle, Emitter, State};

use crate::commands::finish;
use crate::dto::{LogBatch, LogLine};
use crate::error::UserError;
use crate::state::AppState;

/// Lines per event: big enough that IPC overhead vanishes, small enough to paint early.
const BATCH_LINES: usize = 50_000;
const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// Split one engine frame (asked with `timestamps=true`) into lines.
pub fn frame_lines(stderr: bool, bytes: &[u8], out: &mut Vec<LogLine>) {
    let text = String::from_utf8_lossy(bytes);
    for raw in text.split_terminator('\n') {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let (ts, body) = match raw.split_once(' ') {
            Some((ts, body)) if looks_like_timestamp(ts) => (ts, body),
            _ => ("", raw),
        };
        out.push(LogLine {
            stderr,
            ts: ts.to_string(),
            text: body.to_string(),
        });
    }
}

fn looks_like_timestamp(s: &str) -> bool {
    s.len() >= 20 && s.as_bytes()[4] == b'-' && s.as_bytes()[10] == b'T'
}

fn split_output(item: LogOutput, out: &mut Vec<LogLine>) {
    match item {
        LogOutput::StdErr { message } => frame_lines(true, &message, out),
        LogOutput::StdOut { message } | LogOutput::Console { message } => frame_lines(false, &message, out),
        LogOutput::StdIn { .. } => {}
    }
}

/// The whole log, both streams, with the engine's timestamps (then followed, if `follow`).
pub fn all_lines(follow: bool) -> LogsOptions {
    LogsOptions {
        follow,
        stdout: true,
        stderr: true,
        timestamps: true,
        tail: "all".into(),
        ..Default::default()
    }
}

/// Start streaming a container's log; batches come as `log-batch`, the end as `op-done`.
#[tauri::command]
pub async fn stream_logs(
    app: AppHandle,
    state: State<'_, AppState>,
    op: String,
    id: String,
    follow: bool,
) -> Result<(), UserError> {
    let docker = state.docker().await?;
    let op2 = op.clone();
    let task = tokio::spawn(async move {
        let mut stream = docker.logs(&id, Some(all_lines(follow)));
        let mut lines = Vec::new();
        let mut batch = LogBatch {
            op: op2.clone(),
            ..Default::default()
        };
        let mut error = None;
        let mut tick = tokio::time::interval(FLUSH_EVERY);
        let flush = |batch: &mut LogBatch| {
            let full = std::mem::replace(
                batch,
                LogBatch {
                    op: batch.op.clone(),
                    ..Default::default()
                },
            );
            let _ = app.emit("log-batch", full);
        };
        loop {
            tokio::select! {
                item = stream.next() => match item {
                    Some(Ok(out)) => {
                        split_output(out, &mut lines);
                        for l in lines.drain(..) {
                            batch.push(&l);
                        }
                        if batch.count as usize >= BATCH_LINES {
                            flush(&mut batch);
                        }
                    }
                    Some(Err(e)) => { error = Some(e.into()); break; }
                    None => break,
                },
                _ = tick.tick() => {
                    if batch.count > 0 {
                        flush(&mut batch);
                    }
                }
            }
        }
        if batch.count > 0 {
            flush(&mut batch);
        }
        finish(&app, &op2, error, None);
    });
    state.track(&op, task.abort_handle());
    Ok(())
}

/// Write the whole log to `path` (the UI asks where with a save dialog).
#[tauri::command]
pub async fn save_logs(
    state: State<'_, AppState>,
    id: String,
    path: String,
    timestamps: bool,
) -> Result<u64, UserError> {
    let docker = state.docker().await?;
    let mut stream = docker.logs(
        &id,
        Some(LogsOptions {
            timestamps,
            ..all_lines(false)
        }),
    );
    let io_err = |e: std::io::Error| {
        UserError::invalid(
            format!("Berth could not write {path}."),
            "Pick a folder you can write to.",
        )
        .with_details(e.to_string())
    };
    let file = std::fs::File::create(&path).map_err(io_err)?;
    let mut file = std::io::BufWriter::new(file);
    let mut written = 0u64;
    while let Some(item) = stream.next().await {
        let bytes = item?.into_bytes();
        file.write_all(&bytes).map_err(io_err)?;
        written += bytes.len() as u64;
    }
    file.flush().map_err(io_err)?;
    Ok(written)
}

#[tauri::command]
pub fn cancel(state: State<'_, AppState>, op: String) {
    state.cancel(&op);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_column_wise() {
        let mut b = LogBatch::default();
        let mut out = Vec::new();
        frame_lines(false, b"2026-11-26T13:00:00Z a\n", &mut out);
        frame_lines(true, b"2026-11-26T13:00:01Z b c\n", &mut out);
        for l in &out {
            b.push(l);
        }
        assert_eq!(b.count, 2);
        assert_eq!(b.text, "a\nb c");
        assert_eq!(b.ts, "2026-11-26T13:00:00Z\n2026-11-26T13:00:01Z");
        assert_eq!(b.stderr, "01");
    }

    #[test]
    fn frames_split_into_timestamped_lines() {
        let mut out = Vec::new();
        frame_lines(
            false,
            b"2026-11-26T13:00:00.123456789Z hello world\n2026-11-26T13:00:01.000000000Z second\r\n",
            &mut out,
        );
        frame_lines(true, b"no timestamp here\n", &mut out);
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].ts, "2026-11-26T13:00:00.123456789Z");
        assert_eq!(out[0].text, "hello world");
        assert_eq!(out[1].text, "second");
        assert!(out[2].stderr);
        assert_eq!(out[2].ts, "");
        assert_eq!(out[2].text, "no timestamp here");
    }
}
