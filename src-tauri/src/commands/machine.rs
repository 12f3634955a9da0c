//! Settings → Engine: which engine the window runs, and Berth's virtual machine (state,
//! start, stop, its CPUs, memory and disk applied with a restart, its console log). The VM
//! is managed through berth-machine (see `crate::machine`); its engine is reached like any
//! other, through the Engine API.

use tauri::{AppHandle, State};

use crate::dto::{EngineStatus, MachineStatus};
use crate::error::UserError;
use crate::machine::Action;
use crate::settings::EngineChoice;
use crate::state::AppState;

/// Built-in or Virtual machine: saved, then the window connects to it.
#[tauri::command]
pub async fn set_engine_choice(
    state: State<'_, AppState>,
    choice: EngineChoice,
) -> Result<EngineStatus, UserError> {
    state.set_choice(choice).await?;
    Ok(state.status().await)
}

#[tauri::command]
pub fn machine_status(state: State<'_, AppState>) -> MachineStatus {
    state.machine.status()
}

/// Creates the machine if needed and boots it; `machine-status` events follow.
#[tauri::command]
pub fn machine_start(app: AppHandle) -> Result<(), UserError> {
    crate::machine::spawn(app, Action::Start)
}

#[tauri::command]
pub fn machine_stop(app: AppHandle) -> Result<(), UserError> {
    crate::machine::spawn(app, Action::Stop)
}

/// New CPUs, memory (MiB) and disk size (GiB): a running machine is stopped, changed and
/// started again.
#[tauri::command]
pub fn machine_apply(app: AppHandle, cpus: u32, memory_mib: u32, disk_gib: u32) -> Result<(), UserError> {
    crate::machine::spawn(
        app,
        Action::Apply(berth_machine::SetOptions {
            cpus: Some(cpus),
            memory: Some(u64::from(memory_mib)),
            disk_size: Some(u64::from(disk_gib)),
        }),
    )
}

/// The whole console log (`berth machine logs`).
#[tauri::command]
pub fn machine_logs(state: State<'_, AppState>) -> String {
    state.machine.console_log()
}
