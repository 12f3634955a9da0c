//! Endpoints: attaching a container to networks and detaching it — the pinned namespace,
//! veth pairs, addresses, MACs and routes — and looking its endpoints up. (Published ports
//! are bound in `ports.rs` and forwarded by `proxy.rs`.)

use std::fs::File;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::bridge::ensure_bridge;
use crate::ipam::{allocate, allocate6};
use crate::netlink::{index_of, Netlink};
use crate::network::fnv;
use crate::{netns, Driver, NetError, NetworkConfig, NetworkManager};

/// One container's place on a network. A container may have several (one per network),
/// all in the same namespace: the first is `eth0`, the next `eth1`, and so on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub container_id: String,
    pub network: String,
    pub ip: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
    pub mac: String,
    /// The pinned network namespace; a runtime joins it with setns(2).
    pub netns: PathBuf,
    pub aliases: Vec<String>,
    /// The interface inside the namespace (state files written before multi-network
    /// support only had `eth0`).
    #[serde(default = "first_interface")]
    pub interface: String,
    /// Whether the namespace's default route goes out through this endpoint (exactly one
    /// endpoint of a container has it while it has any).
    #[serde(default = "yes")]
    pub default_route: bool,
    /// The endpoint's IPv6 address, on a network with IPv6.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<Ipv6Endpoint>,
}

/// An endpoint's IPv6 address, its prefix and the network's IPv6 gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ipv6Endpoint {
    pub ip: Ipv6Addr,
    pub prefix: u8,
    pub gateway: Ipv6Addr,
}

pub(crate) fn first_interface() -> String {
    "eth0".into()
}

fn yes() -> bool {
    true
}

impl Endpoint {
    /// The host end of this endpoint's veth pair.
    pub fn host_veth(&self) -> String {
        host_veth(&self.container_id, &self.interface)
    }
}

/// Host-side veth name of container `id`'s first interface (derived from the id, so a crashed
/// engine's leftovers can be found again without any state).
pub fn veth_name(id: &str) -> String {
    format!("vb{:012x}", fnv(id) & 0xffff_ffff_ffff)
}

/// Host-side veth name of container `id`'s interface `interface` (`eth0` keeps
/// [`veth_name`], which stats and older state rely on).
fn host_veth(id: &str, interface: &str) -> String {
    if interface == "eth0" {
        veth_name(id)
    } else {
        format!("vb{:012x}", fnv(&format!("{id}/{interface}")) & 0xffff_ffff_ffff)
    }
}

fn check_id(id: &str) -> Result<(), NetError> {
    if berth_host::names::is_path_component(id, 128) {
        Ok(())
    } else {
        Err(NetError::InvalidId(id.to_string()))
    }
}

fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

/// What a caller fixes about a new endpoint (docker's `--ip`, `--ip6` and `--mac-address`);
/// the rest is chosen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fixed {
    pub ip: Option<Ipv4Addr>,
    pub ip6: Option<Ipv6Addr>,
    pub mac: Option<[u8; 6]>,
}

/// A MAC address as docker takes it, `02:42:ac:11:00:02`: six hex pairs, unicast.
pub fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let parts: Vec<u8> = text
        .split(':')
        .map(|p| (p.len() == 2).then(|| u8::from_str_radix(p, 16).ok()).flatten())
        .collect::<Option<_>>()?;
    let mac: [u8; 6] = parts.try_into().ok()?;
    (mac[0] & 1 == 0).then_some(mac)
}

fn mac_string(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Whether `name` exists in the calling thread's network namespace (not through
/// /sys/class/net, which shows the namespace of whoever mounted /sys).
fn link_exists(name: &str) -> bool {
    index_of(name).is_ok()
}

impl NetworkManager {
    /// Attaches container `id` to its first network: a pinned netns at `run_dir/<id>`, a veth
    /// pair whose inner end is `eth0` with an address from IPAM and a default route via the
    /// gateway, `lo` up, and the bridge plus NAT rules ensured. Attaching again to the same
    /// network returns the existing endpoint; leftovers of a crashed attach are cleaned first.
    /// Further networks join with [`connect`](Self::connect).
    pub fn attach(&self, id: &str, network: &str, aliases: &[String]) -> Result<Endpoint, NetError> {
        self.attach_at(id, network, aliases, Fixed::default())
    }

    /// Like [`attach`](Self::attach), with the address and MAC that are `fixed`.
    pub fn attach_at(
        &self,
        id: &str,
        network: &str,
        aliases: &[String],
        fixed: Fixed,
    ) -> Result<Endpoint, NetError> {
        self.at_home(|| self.attach_here(id, network, aliases, fixed))
    }

    fn attach_here(
        &self,
        id: &str,
        network: &str,
        aliases: &[String],
        fixed: Fixed,
    ) -> Result<Endpoint, NetError> {
        check_id(id)?;
        let mut st = self.lock()?;
        let net = self.network_for_endpoint(&mut st.state, network)?;
        let path = self.netns_path(id);
        let veth = veth_name(id);
        let mine = st.state.of(id);
        if let Some(first) = mine.first() {
            let healthy = netns::is_mounted(&path)
                && mine
                    .iter()
                    .all(|e| e.network == "none" || link_exists(&e.host_veth()));
            if healthy {
                return match mine.iter().find(|e| e.network == net.name) {
                    Some(ep) => Ok(ep.clone()),
                    None => Err(NetError::AlreadyAttached {
                        id: id.to_string(),
                        network: first.network.clone(),
                    }),
                };
            }
            for e in st.state.remove_all_of(id) {
                delete_link_if_present(&e.host_veth())?;
            }
        }
        // Whatever a killed engine may have left behind for this id goes first.
        cleanup_kernel(&path, &veth)?;

        let ep = match net.driver {
            Driver::Null => {
                if let Err(e) = create_sandbox(&path) {
                    let _ = cleanup_kernel(&path, &veth);
                    return Err(e);
                }
                Endpoint {
                    container_id: id.to_string(),
                    network: net.name.clone(),
                    ip: Ipv4Addr::UNSPECIFIED,
                    prefix: 0,
                    gateway: Ipv4Addr::UNSPECIFIED,
                    mac: String::new(),
                    netns: path.clone(),
                    aliases: aliases.to_vec(),
                    interface: String::new(),
                    ipv6: None,
                    default_route: false,
                }
            }
            _ => {
                let ip = allocate(&st.state, &net, fixed.ip)?;
                let ip6 = allocate6(&st.state, &net, fixed.ip6)?;
                ensure_bridge(&net, &self.run_dir)?;
                let mut ep = bridge_endpoint(id, &net, (ip, ip6), &path, aliases, fixed.mac);
                // An internal network offers no way out, so no default route (as in docker):
                // a network connected later can carry it.
                (ep.interface, ep.default_route) = (first_interface(), !net.internal);
                let setup = netns::create(&path).and_then(|()| add_interface(&net, &ep, true));
                if let Err(e) = setup {
                    let _ = cleanup_kernel(&path, &veth);
                    return Err(e);
                }
                ep
            }
        };
        st.state.insert(ep.clone());
        if let Err(e) = st.save() {
            let _ = cleanup_kernel(&path, &veth);
            return Err(e);
        }
        Ok(ep)
    }

    /// Pins an empty network namespace (only `lo`, up) for container `id`, for a container
    /// that starts on no network at all but may be connected to some later. Idempotent.
    pub fn sandbox(&self, id: &str) -> Result<PathBuf, NetError> {
        check_id(id)?;
        let _st = self.lock()?;
        let path = self.netns_path(id);
        if !netns::is_mounted(&path) {
            cleanup_kernel(&path, &veth_name(id))?;
            if let Err(e) = create_sandbox(&path) {
                let _ = cleanup_kernel(&path, &veth_name(id));
                return Err(e);
            }
        }
        Ok(path)
    }

    /// Connects container `id`, whose namespace exists already (see [`attach`](Self::attach)
    /// and [`sandbox`](Self::sandbox)), to one more network, live: a new veth pair whose
    /// inner end is the lowest free `ethN`, with its own address from that network. It gets
    /// the default route only when no other endpoint of the container has it.
    pub fn connect(&self, id: &str, network: &str, aliases: &[String]) -> Result<Endpoint, NetError> {
        self.connect_at(id, network, aliases, Fixed::default())
    }

    /// Like [`connect`](Self::connect), with the address and MAC that are `fixed`.
    pub fn connect_at(
        &self,
        id: &str,
        network: &str,
        aliases: &[String],
        fixed: Fixed,
    ) -> Result<Endpoint, NetError> {
        self.at_home(|| self.connect_here(id, network, aliases, fixed))
    }

    fn connect_here(
        &self,
        id: &str,
        network: &str,
        aliases: &[String],
        fixed: Fixed,
    ) -> Result<Endpoint, NetError> {
        check_id(id)?;
        let mut st = self.lock()?;
        let net = self.network_for_endpoint(&mut st.state, network)?;
        if net.driver != Driver::Bridge {
            return Err(NetError::NotAttachable(net.name));
        }
        let path = self.netns_path(id);
        if !netns::is_mounted(&path) {
            return Err(NetError::NoNamespace(id.to_string()));
        }
        let mine = st.state.of(id);
        if mine.iter().any(|e| e.network == net.name) {
            return Err(NetError::AlreadyConnected {
                id: id.to_string(),
                network: net.name,
            });
        }
        if let Some(none) = mine.iter().find(|e| e.network == "none") {
            return Err(NetError::AlreadyAttached {
                id: id.to_string(),
                network: none.network.clone(),
            });
        }
        let interface = (0..)
            .map(|n| format!("eth{n}"))
            .find(|name| !mine.iter().any(|e| &e.interface == name))
            .unwrap_or_else(first_interface);
        let ip = allocate(&st.state, &net, fixed.ip)?;
        let ip6 = allocate6(&st.state, &net, fixed.ip6)?;
        ensure_bridge(&net, &self.run_dir)?;
        let mut ep = bridge_endpoint(id, &net, (ip, ip6), &path, aliases, fixed.mac);
        (ep.interface, ep.default_route) =
            (interface, !net.internal && !mine.iter().any(|e| e.default_route));
        // A leftover of a killed connect with the same name would make the create fail.
        delete_link_if_present(&ep.host_veth())?;
        if let Err(e) = add_interface(&net, &ep, false) {
            let _ = delete_link_if_present(&ep.host_veth());
            return Err(e);
        }
        st.state.insert(ep.clone());
        if let Err(e) = st.save() {
            let _ = delete_link_if_present(&ep.host_veth());
            return Err(e);
        }
        Ok(ep)
    }

    /// Disconnects container `id` from `network`, live: deletes that veth pair (its inner end
    /// leaves the namespace with it) and releases the address. When it carried the default
    /// route, the next endpoint takes it over. The namespace stays, even with no endpoint left.
    pub fn disconnect(&self, id: &str, network: &str) -> Result<Endpoint, NetError> {
        self.at_home(|| self.disconnect_here(id, network))
    }

    fn disconnect_here(&self, id: &str, network: &str) -> Result<Endpoint, NetError> {
        check_id(id)?;
        let mut st = self.lock()?;
        let ep = st
            .state
            .remove(id, network)
            .ok_or_else(|| NetError::NotConnected {
                id: id.to_string(),
                network: network.to_string(),
            })?;
        if ep.network == "none" {
            // "none" is the namespace itself: without it there is nothing left to keep.
            cleanup_kernel(&ep.netns, &veth_name(id))?;
        } else {
            delete_link_if_present(&ep.host_veth())?;
        }
        if ep.default_route {
            let internal = |e: &Endpoint| st.state.networks.get(&e.network).is_some_and(|n| n.internal);
            let next = st
                .state
                .of(id)
                .into_iter()
                .find(|e| !e.interface.is_empty() && !internal(e));
            if let Some(next) = next {
                let (gateway, interface, v6) = (next.gateway, next.interface.clone(), next.ipv6);
                netns::run_in(&ep.netns, move || {
                    let (nl, idx) = (Netlink::open()?, index_of(&interface)?);
                    nl.add_default_route(gateway.into(), idx)?;
                    match v6 {
                        Some(v6) => nl.add_default_route(v6.gateway.into(), idx),
                        None => Ok(()),
                    }
                })?;
                if let Some(mut e) = st.state.remove(id, &next.network) {
                    e.default_route = true;
                    st.state.insert(e);
                }
            }
        }
        st.save()?;
        Ok(ep)
    }

    /// Detaches container `id` from every network: deletes its veths, releases its
    /// addresses, unmounts and removes its netns. Idempotent, and also cleans leftovers of a
    /// killed engine that never recorded the endpoint.
    pub fn detach(&self, id: &str) -> Result<(), NetError> {
        self.at_home(|| self.detach_here(id))
    }

    fn detach_here(&self, id: &str) -> Result<(), NetError> {
        check_id(id)?;
        let mut st = self.lock()?;
        let gone = st.state.remove_all_of(id);
        for e in &gone {
            delete_link_if_present(&e.host_veth())?;
        }
        cleanup_kernel(&self.netns_path(id), &veth_name(id))?;
        if !gone.is_empty() {
            st.save()?;
        }
        Ok(())
    }

    /// Releases every endpoint whose pinned namespace is gone (e.g. after a reboot, which
    /// clears the netns mounts but not the state file) and cleans its leftovers. Meant for
    /// engine start-up; returns the container ids that were released.
    pub fn prune_stale(&self) -> Result<Vec<String>, NetError> {
        self.at_home(|| self.prune_stale_here())
    }

    fn prune_stale_here(&self) -> Result<Vec<String>, NetError> {
        let mut st = self.lock()?;
        let mut stale: Vec<String> = st
            .state
            .endpoints
            .values()
            .map(|e| e.container_id.clone())
            .filter(|id| !netns::is_mounted(&self.netns_path(id)))
            .collect();
        stale.sort();
        stale.dedup();
        for id in &stale {
            for e in st.state.remove_all_of(id) {
                delete_link_if_present(&e.host_veth())?;
            }
            cleanup_kernel(&self.netns_path(id), &veth_name(id))?;
        }
        if !stale.is_empty() {
            st.save()?;
        }
        Ok(stale)
    }

    /// The endpoints on `network` (for the /etc/hosts of containers on user networks).
    pub fn endpoints(&self, network: &str) -> Result<Vec<Endpoint>, NetError> {
        let st = self.lock()?;
        Ok(st
            .state
            .endpoints
            .values()
            .filter(|e| e.network == network)
            .cloned()
            .collect())
    }

    /// The endpoint of container `id` that carries its default route (its first network),
    /// if it has one.
    pub fn endpoint(&self, id: &str) -> Result<Option<Endpoint>, NetError> {
        let mine = self.lock()?.state.of(id);
        Ok(mine.iter().find(|e| e.default_route).or(mine.first()).cloned())
    }

    /// Replaces the names container `id` answers to on `network` (a rename).
    pub fn set_names(&self, id: &str, network: &str, names: &[String]) -> Result<(), NetError> {
        let mut st = self.lock()?;
        let Some(mut ep) = st.state.remove(id, network) else {
            return Ok(());
        };
        ep.aliases = names.to_vec();
        st.state.insert(ep);
        st.save()
    }

    /// Every endpoint of container `id`, in interface order (eth0, eth1, …).
    pub fn endpoints_of(&self, id: &str) -> Result<Vec<Endpoint>, NetError> {
        Ok(self.lock()?.state.of(id))
    }
}

/// Container `id`'s endpoint on bridge network `net` with address `ip` and, on a network
/// with IPv6, `ip6` (interface and default route still to be chosen by the caller).
fn bridge_endpoint(
    id: &str,
    net: &NetworkConfig,
    (ip, ip6): (Ipv4Addr, Option<Ipv6Addr>),
    path: &Path,
    aliases: &[String],
    mac: Option<[u8; 6]>,
) -> Endpoint {
    Endpoint {
        container_id: id.to_string(),
        network: net.name.clone(),
        ip,
        prefix: net.subnet.prefix,
        gateway: net.gateway,
        mac: mac_string(mac.unwrap_or_else(|| mac_for(ip))),
        netns: path.to_path_buf(),
        aliases: aliases.to_vec(),
        interface: String::new(),
        ipv6: ip6.zip(net.ipv6).map(|(ip, v6)| Ipv6Endpoint {
            ip,
            prefix: v6.subnet.prefix,
            gateway: v6.gateway,
        }),
        default_route: false,
    }
}

/// Creates the pinned namespace at `path` with only `lo`, up.
fn create_sandbox(path: &Path) -> Result<(), NetError> {
    netns::create(path)?;
    netns::run_in(path, || {
        let nl = Netlink::open()?;
        nl.link_up(index_of("lo")?, None)
    })
}

/// Adds endpoint `ep`'s veth pair: the host end on the network's bridge, the inner end
/// (`ep.interface`, born inside the namespace) with its address, up, and the default route
/// when the endpoint carries it; `lo` is brought up too for a fresh namespace.
fn add_interface(net: &NetworkConfig, ep: &Endpoint, fresh: bool) -> Result<(), NetError> {
    let path = &ep.netns;
    let ns = File::open(path).map_err(|e| NetError::io("open the network namespace", path, e))?;
    let nl = Netlink::open()?;
    let veth = ep.host_veth();
    let mac = parse_mac(&ep.mac).unwrap_or_else(|| mac_for(ep.ip));
    nl.create_veth(&veth, &ep.interface, ns.as_fd(), mac)?;
    let bridge_idx = index_of(&net.bridge)?;
    nl.link_up(index_of(&veth)?, Some(bridge_idx))?;
    let (ip, prefix, gateway, interface) = (ep.ip, net.subnet.prefix, net.gateway, ep.interface.clone());
    let (default_route, ipv6) = (ep.default_route, ep.ipv6);
    netns::run_in(path, move || {
        let nl = Netlink::open()?;
        if fresh {
            nl.link_up(index_of("lo")?, None)?;
        }
        let idx = index_of(&interface)?;
        nl.add_address(idx, ip.into(), prefix)?;
        if let Some(v6) = ipv6 {
            nl.add_address(idx, v6.ip.into(), v6.prefix)?;
        }
        nl.link_up(idx, None)?;
        if default_route {
            nl.add_default_route(gateway.into(), idx)?;
            if let Some(v6) = ipv6 {
                nl.add_default_route(v6.gateway.into(), idx)?;
            }
        }
        Ok(())
    })
}

fn delete_link_if_present(name: &str) -> Result<(), NetError> {
    if link_exists(name) {
        Netlink::open()?.delete_link(name)?;
    }
    Ok(())
}

fn cleanup_kernel(path: &Path, veth: &str) -> Result<(), NetError> {
    delete_link_if_present(veth)?;
    netns::remove(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_names() {
        assert!(check_id("abc-123_x.y").is_ok());
        for bad in ["", ".", "..", "a/b", "a b"] {
            assert!(check_id(bad).is_err(), "{bad:?}");
        }
        assert_eq!(veth_name("abc").len(), 14);
        assert_eq!(veth_name("abc"), veth_name("abc"));
        assert_ne!(veth_name("abc"), veth_name("abd"));
        assert_eq!(
            mac_string(mac_for(Ipv4Addr::new(10, 88, 0, 2))),
            "02:42:0a:58:00:02"
        );
    }
}
