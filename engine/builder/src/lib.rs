//! `berth build`: runs Dockerfiles like docker's classic builder (`DOCKER_BUILDKIT=0`),
//! with a build cache kept in the store.
//!
//! * [`context`] lists the build context once, with `.dockerignore` applied, and hashes only
//!   what COPY/ADD select.
//! * `build` walks the stages the target needs; each instruction is one step whose result
//!   is an image (config + layers). A step is looked up in the cache by the parent image
//!   ID and the instruction after substitution (for COPY/ADD: plus the digest of the copied
//!   paths, modes and contents; for RUN: plus the build args in scope).
//! * RUN runs in a container made directly with `berth_runtime::spawn` over an overlay of
//!   the parent's layers (network: the default bridge via `berth_net`, or none/host);
//!   COPY/ADD/WORKDIR write into the same kind of overlay without a process. The upper dir
//!   becomes the layer: tarred with OCI whiteouts, gzipped into a blob, and moved into the
//!   store as the layer directory.
//!
//! Architecture invariants: a build never makes an image visible before its content is
//! stored (cache entries and images both go through the store's "never a half image"
//! checks); the store lease is held for the whole build so GC cannot take content a step
//! just wrote; every mount and network endpoint a step makes is released when the step
//! ends (or, if the process died, by the next [`Builder::new`]).

mod build;
mod cache_key;
mod commit;
pub mod context;
mod error;
mod fsroot;
mod image;
mod layer;
mod run;
mod scratch;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Arc;

use berth_images::ImageService;
use berth_net::NetworkManager;
use berth_oci::Digest;

pub use commit::CommitConfig;
pub use error::BuildError;

/// What to build.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// The context directory.
    pub context: PathBuf,
    /// `-f`: the Dockerfile (absolute, relative to the working directory, or to the
    /// context); `context/Dockerfile` when `None`.
    pub dockerfile: Option<PathBuf>,
    pub tags: Vec<String>,
    pub target: Option<String>,
    pub no_cache: bool,
    pub pull: bool,
    /// `--build-arg NAME=value` (callers resolve `NAME` alone from their environment).
    pub build_args: Vec<(String, String)>,
    pub labels: Vec<(String, String)>,
    /// RUN's network: `default`/`bridge`, `none` or `host`.
    pub network: String,
    /// `--add-host NAME:IP`: more lines in RUN's /etc/hosts.
    pub extra_hosts: Vec<(String, String)>,
    /// `--shm-size`: bytes of RUN's /dev/shm (`None`: the runtime's 64 MiB).
    pub shm_size: Option<u64>,
}

/// Progress of a build, in the order docker's classic builder prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildEvent {
    /// `Step 3/7 : RUN …`
    Step {
        number: usize,
        total: usize,
        instruction: String,
    },
    /// ` ---> Using cache`
    UsingCache,
    /// ` ---> Running in <container>`
    Running {
        container: String,
    },
    /// Output of a RUN command, as it arrives.
    Output(Vec<u8>),
    /// `Removing intermediate container <container>`
    RemovingIntermediate {
        container: String,
    },
    /// ` ---> <image id>` after each step.
    StepDone {
        image: Digest,
    },
    /// `# Executing N build triggers` (ONBUILD of the base image).
    Triggers {
        count: usize,
    },
    Status(String),
    Warning(String),
}

#[derive(Debug, Clone)]
pub struct BuildOutcome {
    pub image_id: Digest,
    /// The tags set, in familiar form (`app:latest`).
    pub tags: Vec<String>,
}

/// What `builder prune` removed.
#[derive(Debug, Clone, Default)]
pub struct PruneReport {
    pub entries_removed: usize,
    pub bytes_freed: u64,
}

/// The build half of the engine.
#[derive(Clone)]
pub struct Builder {
    images: ImageService,
    net: Option<NetworkManager>,
    tmp_root: PathBuf,
    /// The pid of the RUN command in flight (0: none), for [`Builder::cancel`].
    running: Arc<AtomicI32>,
    cancelled: Arc<AtomicBool>,
}

impl Builder {
    /// A builder on the images' store. `net` connects RUN steps to the default bridge;
    /// without it RUN gets an isolated network namespace (like `--network none`). Cleans
    /// the leftovers of builds whose process died.
    pub fn new(images: ImageService, net: Option<NetworkManager>) -> Result<Builder, BuildError> {
        let tmp_root = images.store().root().join("builder").join("tmp");
        std::fs::create_dir_all(&tmp_root)
            .map_err(BuildError::io(format!("cannot create {}", tmp_root.display())))?;
        // Without a network manager an area's endpoint could not be detached, so its
        // directory (which names the endpoint) is left for a builder that can.
        if let Some(n) = &net {
            scratch::sweep(&tmp_root, n);
        }
        Ok(Builder {
            images,
            net,
            tmp_root,
            running: Arc::new(AtomicI32::new(0)),
            cancelled: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Stops a build running on another thread (Ctrl-C): kills the RUN command in flight;
    /// the build then fails with [`BuildError::Cancelled`] after releasing what it holds.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        let pid = self.running.load(Ordering::SeqCst);
        if let Some(p) = rustix::process::Pid::from_raw(pid) {
            let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
        }
    }

    pub(crate) fn check_cancelled(&self) -> Result<(), BuildError> {
        if self.cancelled.load(Ordering::SeqCst) {
            Err(BuildError::Cancelled)
        } else {
            Ok(())
        }
    }

    /// Runs a build. Blocking: call it from a blocking thread. Pulls of base images run on
    /// the current tokio runtime if there is one.
    pub fn build(
        &self,
        opts: &BuildOptions,
        events: &mut dyn FnMut(BuildEvent),
    ) -> Result<BuildOutcome, BuildError> {
        let outcome = build::build(self, opts, events)?;
        // What an earlier build left when it was killed between writing a layer and
        // recording it is referenced by nothing: collect it now that this build's lease is
        // gone (GC defers by itself while any other pull or build runs).
        let _ = self.images.store().gc();
        Ok(outcome)
    }

    /// Removes build cache entries — all of them with `all`, else only those no stored
    /// image builds on (whose layers are not a prefix of any image's) — then collects
    /// the content nothing references any more.
    pub fn prune(&self, all: bool) -> Result<PruneReport, BuildError> {
        let store = self.images.store();
        let images = store.images()?;
        let removed = store.remove_build_cache(|_, rec| {
            if all {
                return true;
            }
            !images.iter().any(|img| {
                img.layers.len() >= rec.layers.len()
                    && img
                        .layers
                        .iter()
                        .zip(&rec.layers)
                        .all(|(a, b)| a.diff_id == b.diff_id)
            })
        })?;
        if all {
            // Content hashes of build contexts are cache too.
            let _ = std::fs::remove_file(self.tmp_root.with_file_name("hashes.json"));
        }
        let gc = store.gc()?;
        Ok(PruneReport {
            entries_removed: removed,
            bytes_freed: gc.bytes_freed,
        })
    }
}

/// For `system df`: the number of build cache entries and the compressed bytes of the
/// layers only the cache keeps alive (what `builder prune -a` would free).
pub fn cache_usage(store: &berth_store::Store) -> Result<(usize, u64), BuildError> {
    let md = store.metadata()?;
    let in_images: std::collections::BTreeSet<&Digest> = md
        .images
        .values()
        .flat_map(|r| r.layers.iter().map(|l| &l.diff_id))
        .collect();
    let mut only_cache = std::collections::BTreeMap::new();
    for rec in md.build_cache.values() {
        for l in &rec.layers {
            if !in_images.contains(&l.diff_id) {
                only_cache.insert(l.diff_id.clone(), l.blob.size());
            }
        }
    }
    Ok((md.build_cache.len(), only_cache.values().sum()))
}
