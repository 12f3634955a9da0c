//! The supervisor of one container: the process `start` leaves behind (`berth __shim
//! --root ROOT DIR`, conmon's job). It runs the container through the runtime's shim
//! (stdio, json-file log, attach socket, `exit.json`), serves its published ports, and
//! once the container has exited releases the run and applies `--rm` and the restart
//! policy — all without the engine, which may be gone by then.
//!
//! The store root is on its command line, never guessed from where the state directory
//! is; the container is the one the shim's own config names.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use berth_images::ImageService;
use berth_registry::{ClientConfig, RegistryClient};
use berth_store::Store;

use crate::service::ShimPorts;
use crate::{ContainerError, ContainerService};

/// The hidden subcommand of the shim binary that calls [`supervise`] (the runtime's
/// `shim_running` knows a shim by it).
const SHIM_COMMAND: &str = "__shim";

/// The arguments that start the supervisor of the container whose shim state is in
/// `state_dir`, in the store at `root`: `__shim --root ROOT DIR`.
pub(crate) fn supervisor_args(root: &Path, state_dir: &Path) -> Vec<OsString> {
    vec![
        SHIM_COMMAND.into(),
        "--root".into(),
        root.into(),
        state_dir.into(),
    ]
}

/// Supervises the container whose shim state directory is `state_dir`, in the store at
/// `root`; `shim_exe` is the binary a restart starts the next supervisor with. Returns
/// the process's exit code.
///
/// Call it first thing in `main`, before any thread exists: it forks. The copy that was
/// started returns at once (that is what `start` waits for); the detached copy returns
/// once its container has exited and has been released.
pub fn supervise(root: &Path, state_dir: &Path, shim_exe: PathBuf) -> i32 {
    let mut started = None;
    let mut proxies = None;
    let health_exe = shim_exe.clone();
    let code = berth_runtime::shim::shim_main(state_dir, |cfg, pid, fds| {
        // Only the detached copy whose container runs gets here.
        started = Some(cfg.spec.id.clone());
        proxies = serve_ports(state_dir, fds);
        // The healthcheck runs beside the container, as long as it does.
        let (root, id) = (root.to_path_buf(), cfg.spec.id.clone());
        let _ =
            std::thread::Builder::new()
                .name("health".into())
                .spawn(move || match open(&root, health_exe) {
                    Ok(svc) => svc.monitor_health(&id, pid),
                    Err(e) => eprintln!("container {id}: cannot run its healthcheck: {e}"),
                });
    });
    // The run is over: its ports are let go before a restart policy's next run binds them.
    drop(proxies);
    let Some(id) = started else {
        return code;
    };
    if let Err(e) = open(root, shim_exe).and_then(|svc| svc.after_exit(&id)) {
        // The shim's stderr is its `shim.log`.
        eprintln!("after container {id} exited: {e}");
    }
    code
}

/// The container's published ports: the listeners `start` bound (passed as fds) forward
/// to the container's address, until the returned set is dropped (the run ended).
fn serve_ports(state_dir: &Path, fds: Vec<std::os::fd::OwnedFd>) -> Option<berth_net::ProxySet> {
    let ports = std::fs::read(state_dir.join("ports.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<ShimPorts>(&b).ok())?;
    let ip = ports.container_ip.as_deref().and_then(|ip| ip.parse().ok())?;
    let bound = ports
        .ports
        .into_iter()
        .zip(fds)
        .map(|(spec, fd)| berth_net::BoundPort {
            listener: berth_net::Listener::from_fd(fd, spec.proto),
            spec,
        })
        .collect();
    match berth_net::spawn_proxies(bound, ip) {
        Ok(set) => Some(set),
        Err(e) => {
            eprintln!("cannot serve the published ports: {e}");
            None
        }
    }
}

/// The container services of the store at `root`, as the supervisor needs them: no pull
/// happens after an exit, so the registry client has no settings.
fn open(root: &Path, shim_exe: PathBuf) -> Result<ContainerService, ContainerError> {
    let registry = RegistryClient::new(ClientConfig::default()).map_err(berth_images::ImageError::from)?;
    ContainerService::new(ImageService::new(Store::open(root)?, registry), shim_exe)
}
