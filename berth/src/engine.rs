//! Opens the engine the CLI works on: the store at the chosen root and a registry client
//! configured from flags and the root's `daemon.json` (docker's file and keys) — the same
//! logic the daemon uses (`berth_api::open_images`).

use std::path::PathBuf;

use berth_images::ImageService;
use berth_store::Store;

use crate::cli::Global;

pub fn root(global: &Global) -> PathBuf {
    global.root.clone().unwrap_or_else(Store::default_root)
}

pub fn config(global: &Global) -> berth_api::EngineConfig {
    berth_api::EngineConfig {
        root: root(global),
        insecure_registries: global.insecure_registries.clone(),
        registry_mirrors: global.registry_mirrors.clone(),
    }
}

pub fn open(global: &Global) -> anyhow::Result<ImageService> {
    Ok(berth_api::open_images(&config(global))?)
}
