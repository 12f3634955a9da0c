//! `berth daemon`: serves the Docker Engine API until SIGTERM or SIGINT. Containers keep
//! running after it exits (their shims supervise them).

use std::path::PathBuf;

use anyhow::{bail, Context};

use crate::cli::{DaemonArgs, Global};

pub async fn daemon(g: &Global, a: DaemonArgs) -> anyhow::Result<u8> {
    if !g.debug {
        // The daemon always logs (info by default; RUST_LOG overrides).
        crate::log_to_stderr(true);
    }
    let socket = match a.host.as_deref() {
        None => berth_api::default_socket(),
        Some(h) => match h.strip_prefix("unix://") {
            Some(path) if !path.is_empty() => PathBuf::from(path),
            _ => bail!("--host '{h}' is not supported: use unix:///path/to/berth.sock (and --tcp for TCP)"),
        },
    };
    let opts = berth_api::ServerOptions {
        root: crate::client::root(g),
        socket: Some(socket),
        tcp: a.tcp,
        shim_exe: std::env::current_exe().context("cannot find the berth binary for the container shims")?,
        insecure_registries: g.insecure_registries.clone(),
        registry_mirrors: g.registry_mirrors.clone(),
        host_ports: None,
        host_paths: berth_api::HostPaths::Native,
    };
    let shutdown = async {
        use tokio::signal::unix::{signal, SignalKind};
        match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => std::future::pending::<()>().await,
        }
        tracing::info!("signal received");
    };
    berth_api::serve(opts, shutdown).await?;
    Ok(0)
}
