//! The thin, typed Tauri commands: each turns a UI request into Engine API calls through
//! bollard and returns DTOs or a [`UserError`](crate::error::UserError).

pub mod app;
pub mod build;
pub mod containers;
pub mod images;
pub mod logs;
pub mod stats;
pub mod system;
pub mod terminal;
pub mod volumes;

use tauri::{AppHandle, Emitter};

use crate::dto::OperationDone;
use crate::error::UserError;

/// Tell the UI a long operation ended (`op-done`).
pub fn finish(app: &AppHandle, op: &str, error: Option<UserError>, result: Option<String>) {
    let _ = app.emit(
        "op-done",
        OperationDone {
            op: op.to_string(),
            error,
            result,
        },
    );
}
