//! NAT and forwarding rules, kept in the nftables table `ip berth`. Each network owns two
//! base chains named after its bridge (`nat_<bridge>`, `fwd_<bridge>`), so a network's rules
//! are created, replaced and removed as a unit without parsing rule handles.
//!
//! Networks are isolated from each other as in docker: a connection routed into a bridge
//! from anywhere but that bridge is dropped (an accept in one base chain does not stop
//! another base chain on the hook from dropping). A container reaches another network only
//! by being connected to it; replies and outbound traffic pass.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::{NetError, NetworkConfig};

const TABLE: &str = "berth";

fn chain_names(bridge: &str) -> (String, String) {
    let safe = bridge.replace(|c: char| !c.is_ascii_alphanumeric(), "_");
    (format!("nat_{safe}"), format!("fwd_{safe}"))
}

/// `nft` from PATH, else from /usr/sbin or /sbin: an ordinary user's PATH (a rootless
/// engine's) has no sbin directories on Debian.
fn nft_program() -> std::path::PathBuf {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join("nft"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| "nft".into())
}

fn nft(args: &[&str], script: Option<&str>) -> Result<String, NetError> {
    let what = format!("nft {}", args.join(" "));
    let mut child = Command::new(nft_program())
        .args(args)
        .stdin(if script.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| NetError::Firewall {
            what: what.clone(),
            detail: e.to_string(),
        })?;
    if let Some(script) = script {
        let mut stdin = child.stdin.take().expect("stdin is piped");
        stdin
            .write_all(script.as_bytes())
            .map_err(|e| NetError::Firewall {
                what: what.clone(),
                detail: e.to_string(),
            })?;
    }
    let out = child.wait_with_output().map_err(|e| NetError::Firewall {
        what: what.clone(),
        detail: e.to_string(),
    })?;
    if !out.status.success() {
        let detail = String::from_utf8_lossy(&out.stderr).trim().replace('\n', " ");
        return Err(NetError::Firewall { what, detail });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Installs (or replaces) the masquerade and forward rules for `net` and enables IPv4
/// forwarding. An internal network gets no masquerade, and nothing from its bridge is
/// routed anywhere else.
pub(crate) fn ensure(net: &NetworkConfig) -> Result<(), NetError> {
    let (nat, fwd) = chain_names(&net.bridge);
    let (br, subnet, name) = (&net.bridge, &net.subnet, &net.name);
    let (masquerade, outbound) = if net.internal {
        (
            String::new(),
            format!("add rule ip {TABLE} {fwd} iifname \"{br}\" oifname != \"{br}\" drop comment \"berth network {name} internal\"\n"),
        )
    } else {
        (
            format!("add rule ip {TABLE} {nat} ip saddr {subnet} oifname != \"{br}\" masquerade comment \"berth network {name}\"\n"),
            format!("add rule ip {TABLE} {fwd} iifname \"{br}\" accept\n"),
        )
    };
    let script = format!(
        "add table ip {TABLE}\n\
         add chain ip {TABLE} {nat} {{ type nat hook postrouting priority 100; policy accept; }}\n\
         flush chain ip {TABLE} {nat}\n\
         {masquerade}\
         add chain ip {TABLE} {fwd} {{ type filter hook forward priority 0; policy accept; }}\n\
         flush chain ip {TABLE} {fwd}\n\
         {outbound}\
         add rule ip {TABLE} {fwd} oifname \"{br}\" ct state established,related accept\n\
         add rule ip {TABLE} {fwd} oifname \"{br}\" iifname != \"{br}\" ct state new drop comment \"berth network {name} isolation\"\n"
    );
    nft(&["-f", "-"], Some(&script))?;
    std::fs::write("/proc/sys/net/ipv4/ip_forward", "1")
        .map_err(|e| NetError::io("enable forwarding in", "/proc/sys/net/ipv4/ip_forward", e))
}

/// Removes the rules of the network whose bridge is `bridge`; missing rules are fine.
pub(crate) fn remove(bridge: &str) -> Result<(), NetError> {
    let (nat, fwd) = chain_names(bridge);
    let Ok(listing) = nft(&["list", "table", "ip", TABLE], None) else {
        return Ok(()); // no table, nothing of ours to remove
    };
    let mut script = String::new();
    for chain in [nat, fwd] {
        if listing.contains(&format!("chain {chain} {{")) {
            script.push_str(&format!(
                "flush chain ip {TABLE} {chain}\ndelete chain ip {TABLE} {chain}\n"
            ));
        }
    }
    if script.is_empty() {
        return Ok(());
    }
    nft(&["-f", "-"], Some(&script)).map(|_| ())
}
