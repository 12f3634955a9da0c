//! `berth __shim --root ROOT DIR`: the hidden command each container's supervisor runs as;
//! the supervisor itself is `berth_containers::supervise`.

use std::path::Path;

use anyhow::Context;

use crate::cli::Global;

/// Runs the supervisor of the container whose shim state is in `state_dir`. The store
/// root must be given (`--root`, which `start` always writes): it is never guessed.
pub fn shim(g: &Global, state_dir: &Path) -> anyhow::Result<u8> {
    let root = g
        .root
        .as_deref()
        .context("`berth __shim` needs the store root: --root ROOT")?;
    let exe = std::env::current_exe().context("cannot find the berth binary for the container shims")?;
    Ok(berth_containers::supervise(root, state_dir, exe).clamp(0, 255) as u8)
}
