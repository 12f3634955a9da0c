//! Bridge devices: creating a network's bridge with its gateway address and NAT rules, and
//! tearing both down.

use std::path::Path;

use crate::netlink::{index_of, Netlink};
use crate::{nat, NetError, NetworkConfig};

/// Creates `net`'s bridge unless it exists, gives it the gateway address, sets it up, and
/// installs the network's NAT rules (once per boot and bridge).
pub(crate) fn ensure_bridge(net: &NetworkConfig, run_dir: &Path) -> Result<(), NetError> {
    let nl = Netlink::open()?;
    let created = nl.create_bridge(&net.bridge)?;
    // (/sys/class/net shows the host's namespace, so a rootless engine, whose bridges live
    // in the user's own namespace, trusts the name there.)
    if !created
        && crate::netns::home().is_none()
        && !Path::new("/sys/class/net")
            .join(&net.bridge)
            .join("bridge")
            .is_dir()
    {
        return Err(NetError::NotABridge(net.bridge.clone()));
    }
    let idx = index_of(&net.bridge)?;
    nl.add_address(idx, net.gateway.into(), net.subnet.prefix)?;
    if let Some(v6) = net.ipv6 {
        nl.add_address(idx, v6.gateway.into(), v6.subnet.prefix)?;
    }
    nl.link_up(idx, None)?;
    // Running `nft` costs tens of milliseconds, most of a container's start: install the
    // rules once per boot and bridge (the marker lives in /run, which a reboot clears, as it
    // clears the rules). A firewall reload that flushes them is repaired by recreating the
    // network or rebooting; `berth network rm`/`create` also reinstall.
    // Beside the netns directory, which holds namespaces only.
    // (`nat2`: the rule set with network isolation; bridges marked for the older set get it.)
    let marker = run_dir.parent().unwrap_or(run_dir).join(format!(
        ".nat2-{}-{}{}",
        net.bridge,
        net.subnet.to_string().replace('/', "_"),
        if net.internal { "-internal" } else { "" }
    ));
    if !created && marker.exists() {
        return Ok(());
    }
    nat::ensure(net)?;
    let _ = std::fs::write(&marker, b"");
    Ok(())
}

/// Whether this host (the calling thread's network namespace) has IPv6 switched on.
pub(crate) fn ipv6_enabled() -> bool {
    std::fs::read_to_string("/proc/sys/net/ipv6/conf/all/disable_ipv6").is_ok_and(|v| v.trim() == "0")
}

/// Removes `net`'s NAT rules and its bridge device.
pub(crate) fn teardown_bridge(net: &NetworkConfig) -> Result<(), NetError> {
    // (The NAT marker, if any, is stale now: `ensure_bridge` sees the bridge created anew.)
    nat::remove(&net.bridge)?;
    Netlink::open()?.delete_link(&net.bridge)?;
    Ok(())
}
