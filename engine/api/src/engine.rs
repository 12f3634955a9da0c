//! The engine the API serves: image and container services on one root, plus the little
//! state that exists only inside the daemon (exec sessions, the event feed).

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use berth_containers::ContainerService;
use berth_images::ImageService;
use berth_registry::{ClientConfig, RegistryClient};
use berth_store::Store;
use serde::Deserialize;
use tokio::sync::broadcast;

use crate::error::OpenError;
use crate::exec::ExecSession;

/// Registry settings: docker's daemon.json keys plus any given on the command line.
#[derive(Debug, Clone, Default)]
pub struct EngineConfig {
    pub root: PathBuf,
    pub insecure_registries: Vec<String>,
    pub registry_mirrors: Vec<String>,
}

/// Overrides where Docker Hub's API is (`https://registry-1.docker.io/`).
pub const DOCKER_HUB_ENV: &str = "BERTH_DOCKER_HUB_URL";

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
        if docker_config.is_some() {
            cfg.docker_config = docker_config;
        }
        Ok(cfg)
    }
}

/// Opens the store at `cfg.root` with a registry client configured from daemon.json and
/// `cfg` (what the CLI and the daemon both use).
pub fn open_images(cfg: &EngineConfig) -> Result<ImageService, OpenError> {
    let store = Store::open(&cfg.root)?;
    let registry = RegistryClient::new(cfg.client_config(None)?)?;
    Ok(ImageService::new(store, registry))
}

pub struct Engine {
    pub config: EngineConfig,
    /// The binary with the hidden helpers (`__shim`, `__cp`): the `berth` binary.
    pub helper_exe: PathBuf,
    pub images: ImageService,
    /// The image services for pulls and pushes, rebuilt when daemon.json's registry
    /// settings change (keyed by mirrors and insecure registries).
    registry_now: Mutex<(Vec<String>, Vec<String>, ImageService)>,
    pub containers: ContainerService,
    pub events: broadcast::Sender<serde_json::Value>,
    pub execs: Mutex<HashMap<String, Arc<ExecSession>>>,
    /// The last events, for `/events?since=`.
    recent: Mutex<VecDeque<serde_json::Value>>,
    /// Exits already announced as `die` (container ID, finish time), so the exit watcher
    /// and the request that saw an exit first do not both announce it.
    announced: Mutex<HashSet<(String, String)>>,
}

pub type Shared = Arc<Engine>;

/// How many past events `/events?since=` can replay.
const RECENT_EVENTS: usize = 1000;

impl Engine {
    pub fn open(config: EngineConfig, shim_exe: &Path) -> Result<Engine, OpenError> {
        let images = open_images(&config)?;
        let containers = ContainerService::new(images.clone(), shim_exe.to_path_buf())?;
        let (events, _) = broadcast::channel(1024);
        let cfg = config.client_config(None)?;
        let registry_now = Mutex::new((cfg.mirrors, cfg.insecure_registries, images.clone()));
        Ok(Engine {
            config,
            helper_exe: shim_exe.to_path_buf(),
            images,
            registry_now,
            containers,
            events,
            execs: Mutex::new(HashMap::new()),
            recent: Mutex::new(VecDeque::new()),
            announced: Mutex::new(HashSet::new()),
        })
    }

    /// Image services whose registry client uses the given docker config.json (a request's
    /// X-Registry-Auth credentials) instead of the daemon's own logins.
    pub fn images_with_logins(&self, docker_config: &Path) -> Result<ImageService, OpenError> {
        let registry = RegistryClient::new(self.config.client_config(Some(docker_config.to_path_buf()))?)?;
        Ok(ImageService::new(self.images.store().clone(), registry))
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
            let images = ImageService::new(self.images.store().clone(), RegistryClient::new(cfg)?);
            *now = (mirrors, insecure, images);
        }
        Ok(now.2.clone())
    }

    /// Publishes an event to `/events` subscribers (none listening is fine).
    pub fn event(&self, kind: &str, action: &str, id: &str, attributes: serde_json::Value) {
        let now = time::OffsetDateTime::now_utc();
        let nanos = now.unix_timestamp_nanos();
        let ev = serde_json::json!({
            "status": action,
            "id": id,
            "from": attributes.get("image").cloned().unwrap_or(serde_json::Value::Null),
            "Type": kind,
            "Action": action,
            "Actor": { "ID": id, "Attributes": attributes },
            "scope": "local",
            "time": now.unix_timestamp(),
            "timeNano": nanos as i64,
        });
        if let Ok(mut recent) = self.recent.lock() {
            if recent.len() >= RECENT_EVENTS {
                recent.pop_front();
            }
            recent.push_back(ev.clone());
        }
        let _ = self.events.send(ev);
    }

    pub fn history(&self) -> Vec<serde_json::Value> {
        self.recent
            .lock()
            .map(|r| r.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Publishes `die` for one exit of a container, once.
    pub fn announce_exit(&self, rec: &berth_containers::ContainerRecord, code: i32, finished_at: &str) {
        let fresh = self
            .announced
            .lock()
            .map(|mut a| {
                if a.len() > 10_000 {
                    a.clear();
                }
                a.insert((rec.id.clone(), finished_at.to_string()))
            })
            .unwrap_or(true);
        if fresh {
            let mut extra = serde_json::Map::new();
            extra.insert("exitCode".into(), serde_json::json!(code.to_string()));
            self.container_event_with("die", rec, extra);
        }
    }

    /// Announces the container's exit if it has exited (after stop, kill, wait).
    pub fn announce_if_exited(&self, rec: &berth_containers::ContainerRecord) {
        if let berth_containers::Status::Exited {
            code, finished_at, ..
        } = self.containers.status(rec)
        {
            self.announce_exit(rec, code, &finished_at);
        }
    }

    pub fn container_event(&self, action: &str, rec: &berth_containers::ContainerRecord) {
        self.container_event_with(action, rec, serde_json::Map::new());
    }

    pub fn container_event_with(
        &self,
        action: &str,
        rec: &berth_containers::ContainerRecord,
        mut extra: serde_json::Map<String, serde_json::Value>,
    ) {
        extra.insert("image".into(), rec.image.clone().into());
        extra.insert("name".into(), rec.name.clone().into());
        for (k, v) in &rec.config.labels {
            extra.insert(k.clone(), v.clone().into());
        }
        self.event("container", action, &rec.id, serde_json::Value::Object(extra));
    }
}
