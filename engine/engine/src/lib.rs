//! The engine: the services of one store root assembled — images (with the registry
//! client daemon.json configures), containers (runtime, cgroups, network, volumes) and the
//! event feed they all emit on. The Engine API serves one of these; so does a VM's guest.
//!
//! **Invariant:** one engine per root at a time (the Engine API's root lock enforces it);
//! everything that changes state goes through these services, so every change is an event.

mod cleanup;

pub use cleanup::{RemoveError, VolumesPruned};

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use berth_containers::ContainerService;
use berth_events::Events;
use berth_images::ImageService;
use berth_registry::{ClientConfig, RegistryClient};
use berth_store::Store;
use serde::Deserialize;

/// Registry settings: docker's daemon.json keys plus any given on the command line.
#[derive(Debug, Clone, Default)]
pub struct EngineConfig {
    pub root: PathBuf,
    pub insecure_registries: Vec<String>,
    pub registry_mirrors: Vec<String>,
    /// Another host that publishes this engine's ports too (a machine's guest engine).
    pub host_ports: Option<std::sync::Arc<dyn berth_containers::HostPorts>>,
}

/// Overrides where Docker Hub's API is (`https://registry-1.docker.io/`).
pub const DOCKER_HUB_ENV: &str = "BERTH_DOCKER_HUB_URL";
/// Docker Hub's index (its search API) elsewhere, as [`DOCKER_HUB_ENV`] moves its registry.
pub const DOCKER_HUB_INDEX_ENV: &str = "BERTH_DOCKER_HUB_INDEX_URL";

/// The subset of docker's daemon.json that the image services honour.
#[derive(Deserialize, Default)]
struct DaemonJson {
    #[serde(default, rename = "insecure-registries")]
    insecure_registries: Vec<String>,
    #[serde(default, rename = "registry-mirrors")]
    registry_mirrors: Vec<String>,
}

impl EngineConfig {
    /// The registry client settings: ROOT/daemon.json first, then the explicit ones.
    fn client_config(&self, docker_config: Option<PathBuf>) -> Result<ClientConfig, OpenError> {
        let daemon_json = self.root.join("daemon.json");
        let settings: DaemonJson = match std::fs::read(&daemon_json) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| OpenError::Settings {
                path: daemon_json.display().to_string(),
                reason: e.to_string(),
            })?,
            Err(_) => DaemonJson::default(),
        };
        let mut insecure_registries = settings.insecure_registries;
        insecure_registries.extend(self.insecure_registries.iter().cloned());
        let mut mirrors = settings.registry_mirrors;
        mirrors.extend(self.registry_mirrors.iter().cloned());
        let mut cfg = ClientConfig {
            insecure_registries,
            mirrors,
            user_agent: format!("berth/{}", env!("CARGO_PKG_VERSION")),
            ..ClientConfig::default()
        };
        // For tests and air-gapped set-ups: Docker Hub's API elsewhere (errors still say
        // "Docker Hub").
        if let Some(hub) = std::env::var(DOCKER_HUB_ENV)
            .ok()
            .filter(|h| !h.trim().is_empty())
        {
            cfg.docker_hub = hub;
        }
        if let Some(index) = std::env::var(DOCKER_HUB_INDEX_ENV)
            .ok()
            .filter(|h| !h.trim().is_empty())
        {
            cfg.docker_hub_index = index;
        }
        if docker_config.is_some() {
            cfg.docker_config = docker_config;
        }
        Ok(cfg)
    }
}

/// Opens the store at `cfg.root` with a registry client configured from daemon.json and
/// `cfg` (what the CLI and the daemon both use). Its events go nowhere: an engine's go
/// to its feed.
pub fn open_images(cfg: &EngineConfig) -> Result<ImageService, OpenError> {
    let store = Store::open(&cfg.root)?;
    let registry = RegistryClient::new(cfg.client_config(None)?)?;
    Ok(ImageService::new(store, registry))
}

pub struct Engine {
    pub config: EngineConfig,
    pub images: ImageService,
    /// The image services for pulls and pushes, rebuilt when daemon.json's registry
    /// settings change (keyed by mirrors and insecure registries).
    registry_now: Mutex<(Vec<String>, Vec<String>, ImageService)>,
    pub containers: ContainerService,
    /// What the services emit; `/events` serves it.
    pub events: Events,
}

impl Engine {
    pub fn open(config: EngineConfig, shim_exe: &Path) -> Result<Engine, OpenError> {
        let events = Events::feed();
        let images = open_images(&config)?.with_events(events.clone());
        let containers = ContainerService::new(images.clone(), shim_exe.to_path_buf())?
            .with_events(events.clone())
            .with_host_ports(config.host_ports.clone());
        let cfg = config.client_config(None)?;
        let registry_now = Mutex::new((cfg.mirrors, cfg.insecure_registries, images.clone()));
        Ok(Engine {
            config,
            images,
            registry_now,
            containers,
            events,
        })
    }

    /// Image services whose registry client uses the given docker config.json (a request's
    /// X-Registry-Auth credentials) instead of the daemon's own logins.
    pub fn images_with_logins(&self, docker_config: &Path) -> Result<ImageService, OpenError> {
        let registry = RegistryClient::new(self.config.client_config(Some(docker_config.to_path_buf()))?)?;
        Ok(ImageService::new(self.images.store().clone(), registry).with_events(self.events.clone()))
    }

    /// Image services with the registry settings daemon.json holds now, so a mirror or an
    /// insecure registry saved while the engine runs (the desktop's Settings) applies to the
    /// next pull or push without a restart.
    pub fn images_now(&self) -> Result<ImageService, OpenError> {
        let cfg = self.config.client_config(None)?;
        let mut now = self
            .registry_now
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if now.0 != cfg.mirrors || now.1 != cfg.insecure_registries {
            let (mirrors, insecure) = (cfg.mirrors.clone(), cfg.insecure_registries.clone());
            let images = ImageService::new(self.images.store().clone(), RegistryClient::new(cfg)?)
                .with_events(self.events.clone());
            *now = (mirrors, insecure, images);
        }
        Ok(now.2.clone())
    }
}

/// Errors opening the engine (store, registry client, settings).
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Store(#[from] berth_store::StoreError),
    #[error(transparent)]
    Registry(#[from] berth_registry::RegistryError),
    #[error(transparent)]
    Containers(#[from] berth_containers::ContainerError),
    #[error("{path} is not valid JSON ({reason}) — fix or remove it")]
    Settings { path: String, reason: String },
}
