//! About the app itself rather than the engine: the view to open first, and when a view
//! first showed data (timed from process start, for the launch benchmark).

use std::sync::OnceLock;
use std::time::Instant;

static STARTED: OnceLock<Instant> = OnceLock::new();

/// Call first thing in `run()`.
pub fn mark_start() {
    let _ = STARTED.set(Instant::now());
}

/// `BERTH_DESKTOP_VIEW` (e.g. `containers`), else the dashboard.
#[tauri::command]
pub fn startup_view() -> String {
    std::env::var("BERTH_DESKTOP_VIEW").unwrap_or_else(|_| "dashboard".into())
}

/// Logged once per view: "view containers ready 412 ms after start".
#[tauri::command]
pub fn view_ready(view: String) -> u64 {
    let ms = STARTED.get().map_or(0, |t| t.elapsed().as_millis() as u64);
    tracing::info!(view = %view, ms, "view ready");
    eprintln!("berth-desktop: view {view} ready {ms} ms after start");
    ms
}
