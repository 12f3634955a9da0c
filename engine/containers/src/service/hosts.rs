//! The containers' /etc/hosts files: docker's embedded DNS done with files. Each lists the
//! container itself and its peers on its user networks, and is rewritten in place (it is
//! bind-mounted, so the inode must stay) whenever a peer comes or goes.

use super::ContainerService;
use crate::record::*;

impl ContainerService {
    /// Rewrites the /etc/hosts of every running container of this store on `network`
    /// except `except`, in place (the file is bind-mounted, so the inode must stay).
    pub(super) fn refresh_peer_hosts(&self, network: &str, except: &str) {
        let Ok(peers) = self.net.endpoints(network) else {
            return;
        };
        for ep in peers.iter().filter(|e| e.container_id != except) {
            let Ok(peer) = self.find(&ep.container_id) else {
                continue; // a container of another store on this machine
            };
            let _ = std::fs::write(self.paths(&peer.id).etc("hosts"), self.hosts_for(&peer));
        }
    }

    /// A container's /etc/hosts from the network state: its own addresses, and the other
    /// containers on each of its user networks (the default bridge has no name resolution,
    /// as in docker).
    pub(super) fn hosts_for(&self, rec: &ContainerRecord) -> String {
        let own = self.net.endpoints_of(&rec.id).unwrap_or_default();
        let mut peers = Vec::new();
        for ep in own.iter().filter(|e| e.network != berth_net::DEFAULT_NETWORK) {
            peers.extend(self.net.endpoints(&ep.network).unwrap_or_default());
        }
        // A rootless engine's bridges are in the user's own namespace: the host's loopback
        // is where pasta or slirp4netns maps it, not at the bridge's gateway.
        let host = self
            .host_ports
            .as_ref()
            .and_then(|h| h.host_address())
            .or_else(|| berth_rootless::host_loopback_address().map(std::net::IpAddr::V4));
        let mut hosts = hosts_file(rec, &own, &peers, host);
        // `--add-host NAME:IP` last, as docker writes them; `host-gateway` is the address
        // host.docker.internal has.
        for entry in &rec.host.extra_hosts {
            let Some((name, ip)) = entry.split_once(':') else {
                continue;
            };
            let ip = if ip == "host-gateway" {
                host_gateway(&hosts)
            } else {
                Some(ip.to_string())
            };
            if let Some(ip) = ip {
                hosts.push_str(&format!("{ip}\t{name}\n"));
            }
        }
        // Legacy links: the other container's address (on a network both are on, else its
        // first) under the alias and its name, as docker writes them.
        for (id, alias) in &rec.host.links {
            let Ok(other) = self.find(id) else { continue };
            let theirs = self.net.endpoints_of(&other.id).unwrap_or_default();
            let shared = theirs
                .iter()
                .find(|t| own.iter().any(|o| o.network == t.network))
                .or(theirs.first());
            if let Some(ep) = shared.filter(|e| !e.ip.is_unspecified()) {
                let short: String = other.id.chars().take(12).collect();
                hosts.push_str(&format!("{}\t{alias} {short} {}\n", ep.ip, other.name));
            }
        }
        hosts
    }
}

/// The address `host.docker.internal` has in a hosts file.
fn host_gateway(hosts: &str) -> Option<String> {
    hosts.lines().find_map(|l| {
        let (ip, names) = l.split_once('\t')?;
        names
            .split_whitespace()
            .any(|n| n == HOST_NAME)
            .then(|| ip.to_string())
    })
}

/// The name under which containers reach the computer that runs the engine, as on Docker
/// Desktop.
pub const HOST_NAME: &str = "host.docker.internal";

/// A container's /etc/hosts: localhost, itself on each of its networks, the other
/// containers on its user networks, and [`HOST_NAME`]: `host` (a machine's host, or the
/// host's loopback as a rootless engine's outbound helper maps it), else the gateway of the
/// container's default route (this computer's side of its bridge).
fn hosts_file(
    rec: &ContainerRecord,
    own: &[berth_net::Endpoint],
    peers: &[berth_net::Endpoint],
    host: Option<std::net::IpAddr>,
) -> String {
    let mut hosts = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    let gateway = own
        .iter()
        .find(|e| e.default_route)
        .or(own.first())
        .filter(|e| !e.gateway.is_unspecified())
        .map(|e| std::net::IpAddr::V4(e.gateway));
    if let Some(ip) = gateway.and(host).or(gateway) {
        hosts.push_str(&format!("{ip}\t{HOST_NAME}\n"));
    }
    for ep in own.iter().filter(|e| !e.ip.is_unspecified()) {
        // Itself under its aliases on that network too (a compose service reaches itself
        // by its service's name, as docker's DNS answers).
        let mut names = vec![rec.config.hostname.as_str(), rec.name.as_str()];
        for a in &ep.aliases {
            if !names.contains(&a.as_str()) {
                names.push(a);
            }
        }
        hosts.push_str(&format!("{}\t{}\n", ep.ip, names.join(" ")));
        if let Some(v6) = ep.ipv6 {
            hosts.push_str(&format!("{}\t{}\n", v6.ip, names.join(" ")));
        }
    }
    for other in peers.iter().filter(|e| e.container_id != rec.id) {
        hosts.push_str(&format!("{}\t{}\n", other.ip, other.aliases.join(" ")));
        if let Some(v6) = other.ipv6 {
            hosts.push_str(&format!("{}\t{}\n", v6.ip, other.aliases.join(" ")));
        }
    }
    hosts
}
