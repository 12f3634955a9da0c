//! The thin, typed Tauri commands: each turns a UI request into Engine API calls through
//! bollard and returns DTOs or a [`UserError`](crate::error::UserError).

pub mod app;
pub mod build;
pub mod compose;
pub mod containers;
pub mod images;
pub mod logs;
pub mod machine;
pub mod registries;
pub mod stats;
pub mod system;
pub mod terminal;
pub mod volume_files;
pub mod volumes;

use futures_util::{Stream, StreamExt};
use tauri::{AppHandle, Emitter, Manager};

use crate::dto::OperationDone;
use crate::error::UserError;
use crate::state::AppState;

/// Run `stream` in the background as operation `op` (cancellable by id): each item goes to
/// `on_item`, which emits events, records a result, or returns the error that ends the
/// operation; `op-done` follows either way.
pub fn spawn_operation<T, E, S, F>(app: AppHandle, state: &AppState, op: &str, stream: S, mut on_item: F)
where
    T: Send + 'static,
    E: Into<UserError>,
    S: Stream<Item = Result<T, E>> + Send + 'static,
    F: FnMut(&AppHandle, T, &mut Option<String>) -> Result<(), UserError> + Send + 'static,
{
    let op_id = op.to_string();
    let task = tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        let mut result = None;
        let mut error = None;
        while let Some(item) = stream.next().await {
            if let Err(e) = item
                .map_err(Into::into)
                .and_then(|v| on_item(&app, v, &mut result))
            {
                error = Some(e);
                break;
            }
        }
        finish(&app, &op_id, error, result);
    });
    state.track(op, task.abort_handle());
}

/// Tell the UI a long operation ended (`op-done`), and the desktop too when the window is
/// hidden or minimized (the tray keeps Berth running without it).
pub fn finish(app: &AppHandle, op: &str, error: Option<UserError>, result: Option<String>) {
    let shown = app
        .get_webview_window("main")
        .map(|w| w.is_visible().unwrap_or(true) && !w.is_minimized().unwrap_or(false))
        .unwrap_or(false);
    if let Some((summary, body)) =
        crate::notify::for_operation(op, shown, error.as_ref().map(|e| e.message.as_str()))
    {
        std::thread::spawn(move || {
            if let Err(e) = crate::notify::send(&summary, &body) {
                tracing::info!("no desktop notification ({e}): {summary}");
            }
        });
    }
    let _ = app.emit(
        "op-done",
        OperationDone {
            op: op.to_string(),
            error,
            result,
        },
    );
}
