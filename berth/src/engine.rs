//! Opens the engine the CLI works on: the store at the chosen root and a registry client
//! configured from flags and the root's `daemon.json` (docker's file and keys).

use std::path::PathBuf;

use anyhow::Context;
use berth_images::ImageService;
use berth_registry::{ClientConfig, RegistryClient};
use berth_store::Store;
use serde::Deserialize;

use crate::cli::Global;

/// The subset of docker's daemon.json that the image services honour.
#[derive(Deserialize, Default)]
struct DaemonJson {
    #[serde(default, rename = "insecure-registries")]
    insecure_registries: Vec<String>,
    #[serde(default, rename = "registry-mirrors")]
    registry_mirrors: Vec<String>,
}

pub fn root(global: &Global) -> PathBuf {
    global.root.clone().unwrap_or_else(Store::default_root)
}

pub fn open(global: &Global) -> anyhow::Result<ImageService> {
    let root = root(global);
    let store = Store::open(&root)?;
    let daemon_json = root.join("daemon.json");
    let settings: DaemonJson = match std::fs::read(&daemon_json) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not valid JSON — fix or remove it", daemon_json.display()))?,
        Err(_) => DaemonJson::default(),
    };
    let mut insecure_registries = settings.insecure_registries;
    insecure_registries.extend(global.insecure_registries.iter().cloned());
    let mut mirrors = settings.registry_mirrors;
    mirrors.extend(global.registry_mirrors.iter().cloned());
    let cfg = ClientConfig {
        insecure_registries,
        mirrors,
        user_agent: format!("berth/{}", env!("CARGO_PKG_VERSION")),
        ..ClientConfig::default()
    };
    let registry = RegistryClient::new(cfg)?;
    Ok(ImageService::new(store, registry))
}
