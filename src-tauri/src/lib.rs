//! Berth Desktop: a Tauri 2 window over the Docker Engine API. The window's code (`ui/`)
//! calls the typed commands in [`commands`]; they reach the engine only through bollard.
//! Closing the window hides it (containers keep running); the tray shows the running
//! count and can reopen the window or quit.

pub mod commands;
pub mod dto;
pub mod embedded;
pub mod engine;
pub mod error;
pub mod events;
pub mod machine;
pub mod notify;
pub mod registry_auth;
pub mod settings;
pub mod state;

use std::time::Duration;

use tauri::menu::{Menu, MenuItem};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Listener, Manager, WindowEvent};

use crate::state::AppState;

fn show_main(app: &AppHandle) {
    if let Some(w) = app.get_webview_window("main") {
        let _ = w.show();
        let _ = w.unminimize();
        let _ = w.set_focus();
    }
}

/// The tray icon, if this desktop has a status-notifier host; `None` when it cannot be made.
fn make_tray(app: &AppHandle) -> tauri::Result<()> {
    let engine = MenuItem::with_id(app, "engine", "Engine: …", false, None::<&str>)?;
    let count = MenuItem::with_id(app, "count", "Containers: …", false, None::<&str>)?;
    let open = MenuItem::with_id(app, "open", "Open Berth", true, None::<&str>)?;
    let quit = MenuItem::with_id(app, "quit", "Quit Berth", true, None::<&str>)?;
    let menu = Menu::with_items(app, &[&engine, &count, &open, &quit])?;
    let icon = tauri::image::Image::from_bytes(include_bytes!("../icons/tray.png"))?;
    let tray = TrayIconBuilder::with_id("berth")
        .icon(icon)
        .tooltip("Berth")
        .menu(&menu)
        .on_menu_event(|app, event| match event.id().as_ref() {
            "open" => show_main(app),
            "quit" => app.exit(0),
            _ => {}
        })
        .build(app)?;
    // Keep the running count fresh without the window open: at once on the engine's
    // container events (see `events`), and every few seconds for what it does not announce
    // (a container the CLI started on the same root).
    let changed = std::sync::Arc::new(tokio::sync::Notify::new());
    let on_event = changed.clone();
    app.listen(events::ENGINE_EVENT, move |e| {
        let about_containers = match serde_json::from_str::<events::EngineEvent>(e.payload()) {
            // Not on `create`: listing while the start that follows runs makes Berth's
            // engine fail that start (see ui/src/lib/stores/feed.ts).
            Ok(events::EngineEvent::Changed { resource, action, .. }) => {
                resource == events::Resource::Container && action != "create"
            }
            Ok(_) => true,
            Err(_) => false,
        };
        if about_containers {
            on_event.notify_one();
        }
    });
    let handle = app.clone();
    tauri::async_runtime::spawn(async move {
        loop {
            let state = handle.state::<AppState>();
            let connected = state.docker().await;
            let _ = engine.set_text(state.engine_label().await);
            if let Ok(docker) = connected {
                let running = docker
                    .list_containers(None::<bollard::query_parameters::ListContainersOptions>)
                    .await
                    .map(|l| l.len())
                    .ok();
                if let Some(n) = running {
                    let label = format!("Running containers: {n}");
                    let _ = count.set_text(&label);
                    let _ = tray.set_tooltip(Some(&label));
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                _ = changed.notified() => {}
            }
        }
    });
    Ok(())
}

/// WebKitGTK's DMA-BUF renderer (the default since 2.42) costs the web process ~80 MB more
/// here (185 → 107 MB PSS, measured with Xvfb/llvmpipe) for no visible gain in a page of
/// tables; the older renderer draws the same. Set before GTK or any thread starts; a value
/// the user set wins.
fn lighter_webkit() {
    if std::env::var_os("WEBKIT_DISABLE_DMABUF_RENDERER").is_none() {
        std::env::set_var("WEBKIT_DISABLE_DMABUF_RENDERER", "1");
    }
}

pub fn run() {
    commands::app::mark_start();
    lighter_webkit();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .try_init();
    let result = tauri::Builder::default()
        .plugin(tauri_plugin_opener::init())
        .plugin(tauri_plugin_dialog::init())
        .manage(AppState::default())
        .setup(|app| {
            // The tray lives on the session bus (StatusNotifier); without one (bare Xvfb)
            // nothing would show it, so hiding the window would strand the app.
            let bus = std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some();
            let has_tray = match make_tray(app.handle()) {
                Ok(()) => bus,
                Err(e) => {
                    tracing::warn!("no tray icon ({e}); closing the window will quit Berth");
                    false
                }
            };
            if let Some(w) = app.get_webview_window("main") {
                let w2 = w.clone();
                w.on_window_event(move |event| {
                    if let WindowEvent::CloseRequested { api, .. } = event {
                        if has_tray && std::env::var_os("BERTH_DESKTOP_QUIT_ON_CLOSE").is_none() {
                            api.prevent_close();
                            let _ = w2.hide();
                        }
                    }
                });
            }
            // Connect (or start the embedded engine) while the window loads; when the
            // chosen engine is the virtual machine and it is not running, start it (as
            // Docker Desktop starts its VM with the app).
            let handle = app.handle().clone();
            tauri::async_runtime::spawn(async move {
                let state = handle.state::<AppState>();
                let endpoint_set = crate::engine::endpoint_from_env().is_some();
                if !endpoint_set
                    && state.choice() == settings::EngineChoice::Machine
                    && !state.machine.running()
                {
                    if let Err(e) = machine::spawn(handle.clone(), machine::Action::Start) {
                        tracing::warn!("the virtual machine was not started: {}", e.message);
                    }
                    return;
                }
                let _ = state.docker().await;
            });
            events::spawn(app.handle().clone());
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![
            commands::app::startup_view,
            commands::app::view_ready,
            commands::system::engine_status,
            commands::system::set_endpoint,
            commands::system::docker_command_status,
            commands::system::install_docker_command,
            commands::machine::set_engine_choice,
            commands::machine::machine_status,
            commands::machine::machine_start,
            commands::machine::machine_stop,
            commands::machine::machine_apply,
            commands::machine::machine_logs,
            commands::registries::registry_settings,
            commands::registries::set_registry_settings,
            commands::system::disk_usage,
            commands::system::cleanup,
            commands::containers::list_containers,
            commands::containers::container_action,
            commands::containers::inspect_container,
            commands::containers::run_container,
            commands::containers::suggest_host_port,
            commands::images::list_images,
            commands::images::inspect_image,
            commands::images::inspect_image_json,
            commands::images::remove_image,
            commands::images::tag_image,
            commands::images::prune_images,
            commands::images::pull_image,
            commands::images::search_images,
            commands::images::push_image,
            commands::volumes::list_volumes,
            commands::volumes::create_volume,
            commands::volumes::remove_volume,
            commands::volume_files::browse_volume,
            commands::volume_files::preview_volume_file,
            commands::volume_files::download_volume_file,
            commands::logs::stream_logs,
            commands::logs::save_logs,
            commands::logs::cancel,
            commands::terminal::exec_start,
            commands::terminal::exec_input,
            commands::terminal::exec_resize,
            commands::terminal::exec_close,
            commands::stats::stream_stats,
            commands::build::build_image,
            commands::compose::list_compose_projects,
            commands::compose::compose_folder,
            commands::compose::compose_action,
            commands::compose::stream_compose_logs,
            registry_auth::registry_login,
        ])
        .run(tauri::generate_context!());
    if let Err(e) = result {
        eprintln!("Error: Berth could not open its window ({e}); on a machine without a display run it under Xvfb (see README).");
        std::process::exit(1);
    }
}
