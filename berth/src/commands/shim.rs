//! `berth __shim DIR`: the hidden command each container's supervisor runs as.

use std::path::Path;

use berth_containers::ContainerService;

use crate::cli::Global;

fn service(g: &Global) -> anyhow::Result<ContainerService> {
    let config = berth_api::EngineConfig {
        root: crate::client::root(g),
        insecure_registries: g.insecure_registries.clone(),
        registry_mirrors: g.registry_mirrors.clone(),
    };
    let images = berth_api::open_images(&config)?;
    Ok(ContainerService::new(images, std::env::current_exe()?)?)
}

/// `berth __shim DIR`: the container's supervisor. Runs the container, its port proxies
/// and log pump, records its exit, then releases its resources (and applies --rm and the
/// restart policy) — all without the engine.
pub fn shim(g: &Global, state_dir: &Path) -> anyhow::Result<u8> {
    let code = berth_runtime::shim::shim_main(state_dir, |_cfg, _pid, fds| {
        let ports: Option<berth_containers::ShimPorts> = std::fs::read(state_dir.join("ports.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        if let Some(ports) = ports {
            if let Some(ip) = ports.container_ip.as_deref().and_then(|ip| ip.parse().ok()) {
                let bound: Vec<berth_net::BoundPort> = ports
                    .ports
                    .into_iter()
                    .zip(fds)
                    .map(|(spec, fd)| berth_net::BoundPort {
                        listener: berth_net::Listener::from_fd(fd, spec.proto),
                        spec,
                    })
                    .collect();
                if let Ok(set) = berth_net::spawn_proxies(bound, ip) {
                    // The proxies live exactly as long as this shim process.
                    std::mem::forget(set);
                }
            }
        }
    });
    // shim_main forks: the copy that started it returns at once; only the detached shim
    // (whose pid is in state.json) goes on to clean up after the container.
    let me = std::process::id() as i32;
    let is_shim = berth_runtime::shim::read_state(state_dir)
        .ok()
        .flatten()
        .is_some_and(|s| s.shim_pid == me);
    if !is_shim {
        return Ok(code.clamp(0, 255) as u8);
    }
    // The container exited: release its rootfs, network and cgroup. The state dir is
    // ROOT/containers/<id>/shim, which also tells which store this shim belongs to.
    let container_dir = state_dir.parent();
    let id = container_dir
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let mut g = g.clone();
    if let Some(root) = container_dir.and_then(Path::parent).and_then(Path::parent) {
        g.root = Some(root.to_path_buf());
    }
    if let Ok(svc) = service(&g) {
        let _ = svc.after_exit(&id);
    }
    Ok(code.clamp(0, 255) as u8)
}
