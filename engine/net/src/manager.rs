//! Networks, IPAM and endpoints: the state file, its lock, and the kernel objects behind them.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::net::Ipv4Addr;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::netlink::{index_of, Netlink};
use crate::{nat, netns, NetError};

/// Name of the default network, as in docker.
pub const DEFAULT_NETWORK: &str = "bridge";
/// Bridge device of the default network.
pub const DEFAULT_BRIDGE: &str = "berth0";
/// Subnet of the default network unless `BERTH_BRIDGE_SUBNET` or [`NetworkManager::with_default_subnet`] says otherwise.
/// Not 10.88.0.0/16 (podman's default) nor 172.17.0.0/16 (docker's), so Berth can run
/// beside either on one machine.
pub const DEFAULT_SUBNET: &str = "10.66.0.0/16";
/// Environment variable that overrides [`DEFAULT_SUBNET`].
pub const SUBNET_ENV: &str = "BERTH_BRIDGE_SUBNET";

/// An IPv4 network in CIDR form; serialised as its text, e.g. `"10.88.0.0/16"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Subnet {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    fn mask(self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix))
        }
    }

    /// True when `ip` lies inside this subnet.
    pub fn contains(self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.addr)
    }

    /// True when the two subnets share any address.
    pub fn overlaps(self, other: Subnet) -> bool {
        let mask = self.mask() & other.mask();
        u32::from(self.addr) & mask == u32::from(other.addr) & mask
    }

    /// The n-th address of the subnet (0 is the network address).
    pub fn nth(self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) + n)
    }

    /// Number of addresses in the subnet.
    pub fn size(self) -> u64 {
        1u64 << (32 - u32::from(self.prefix))
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Subnet {
    type Err = NetError;
    fn from_str(s: &str) -> Result<Self, NetError> {
        let bad = |reason: &str| NetError::InvalidSubnet {
            subnet: s.to_string(),
            reason: reason.to_string(),
        };
        let (ip, prefix) = s.split_once('/').ok_or_else(|| bad("it has no '/prefix'"))?;
        let addr: Ipv4Addr = ip.parse().map_err(|_| bad("the address is not IPv4"))?;
        let prefix: u8 = prefix.parse().map_err(|_| bad("the prefix is not a number"))?;
        if !(8..=30).contains(&prefix) {
            return Err(bad("the prefix must be between /8 and /30"));
        }
        let net = Subnet { addr, prefix };
        if u32::from(addr) & !net.mask() != 0 {
            return Err(bad("host bits are set after the prefix"));
        }
        Ok(net)
    }
}

impl Serialize for Subnet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Subnet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// What kind of network this is, as `docker network ls` shows in its DRIVER column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Driver {
    /// A Linux bridge with NAT to the outside.
    Bridge,
    /// The host's own network namespace (nothing to set up).
    Host,
    /// A private namespace with only loopback.
    Null,
}

/// A network that containers can be attached to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkConfig {
    /// "bridge" for the default network, "host", "none", or a user network's name.
    pub name: String,
    /// The bridge device, e.g. "berth0"; empty for "host" and "none".
    pub bridge: String,
    pub subnet: Subnet,
    pub gateway: Ipv4Addr,
    pub driver: Driver,
}

/// One container's place on a network.
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
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    #[serde(default)]
    networks: BTreeMap<String, NetworkConfig>,
    #[serde(default)]
    endpoints: BTreeMap<String, Endpoint>,
}

/// Creates and tears down networks and container endpoints. Cheap to construct; all state
/// lives in `state_dir/state.json`, guarded by an flock on `state_dir/lock`, so any number of
/// managers in any number of processes can work at once.
#[derive(Debug, Clone)]
pub struct NetworkManager {
    state_dir: PathBuf,
    run_dir: PathBuf,
    default_subnet: Option<String>,
}

struct Locked {
    _lock: Flock<File>,
    path: PathBuf,
    state: State,
}

impl Locked {
    fn save(&self) -> Result<(), NetError> {
        let tmp = self.path.with_extension("json.tmp");
        let data = serde_json::to_vec_pretty(&self.state).expect("state serialises");
        std::fs::write(&tmp, data).map_err(|e| NetError::io("write", &tmp, e))?;
        File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| NetError::io("sync", &tmp, e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| NetError::io("replace", &self.path, e))
    }
}

fn fnv(s: &str) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// Host-side veth name for container `id` (derived from the id, so a crashed engine's leftovers
/// can be found again without any state).
pub fn veth_name(id: &str) -> String {
    format!("vb{:012x}", fnv(id) & 0xffff_ffff_ffff)
}

fn check_id(id: &str) -> Result<(), NetError> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id != "."
        && id != ".."
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(NetError::InvalidId(id.to_string()))
    }
}

fn check_network_name(name: &str) -> Result<(), NetError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(NetError::InvalidName {
            kind: "network",
            name: name.to_string(),
            reason: "use 1 to 64 letters, digits, '_', '-' or '.'".into(),
        })
    }
}

fn builtin(name: &str) -> Option<NetworkConfig> {
    let unspecified = Subnet {
        addr: Ipv4Addr::UNSPECIFIED,
        prefix: 0,
    };
    match name {
        "host" => Some(NetworkConfig {
            name: "host".into(),
            bridge: String::new(),
            subnet: unspecified,
            gateway: Ipv4Addr::UNSPECIFIED,
            driver: Driver::Host,
        }),
        "none" => Some(NetworkConfig {
            name: "none".into(),
            bridge: String::new(),
            subnet: unspecified,
            gateway: Ipv4Addr::UNSPECIFIED,
            driver: Driver::Null,
        }),
        _ => None,
    }
}

fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

fn mac_string(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

impl NetworkManager {
    /// Opens (creating if needed) the state directory and the directory for pinned namespaces.
    pub fn new(state_dir: &Path, run_dir: &Path) -> Result<Self, NetError> {
        for dir in [state_dir, run_dir] {
            std::fs::create_dir_all(dir).map_err(|e| NetError::io("create the directory", dir, e))?;
        }
        Ok(NetworkManager {
            state_dir: state_dir.to_path_buf(),
            run_dir: run_dir.to_path_buf(),
            default_subnet: None,
        })
    }

    /// Sets the subnet the default network gets when it is first created (a setting; it
    /// wins over `BERTH_BRIDGE_SUBNET`). An existing default network keeps its subnet.
    pub fn with_default_subnet(mut self, subnet: &str) -> Self {
        self.default_subnet = Some(subnet.to_string());
        self
    }

    /// Where the pinned network namespace of container `id` lives.
    pub fn netns_path(&self, id: &str) -> PathBuf {
        self.run_dir.join(id)
    }

    fn lock(&self) -> Result<Locked, NetError> {
        let lock_path = self.state_dir.join("lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| NetError::io("open", &lock_path, e))?;
        let lock = Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|(_, e)| NetError::io("lock", &lock_path, e.into()))?;
        let path = self.state_dir.join("state.json");
        let state = match std::fs::read(&path) {
            Ok(data) => serde_json::from_slice(&data).map_err(|e| NetError::CorruptState {
                path: path.clone(),
                reason: e.to_string(),
            })?,
            Err(e) if e.kind() == ErrorKind::NotFound => State::default(),
            Err(e) => return Err(NetError::io("read", &path, e)),
        };
        Ok(Locked {
            _lock: lock,
            path,
            state,
        })
    }

    fn default_config(&self, st: &State) -> Result<NetworkConfig, NetError> {
        if let Some(net) = st.networks.get(DEFAULT_NETWORK) {
            return Ok(net.clone());
        }
        let text = self
            .default_subnet
            .clone()
            .or_else(|| std::env::var(SUBNET_ENV).ok().filter(|s| !s.is_empty()))
            .unwrap_or_else(|| DEFAULT_SUBNET.to_string());
        let subnet: Subnet = text.parse()?;
        Ok(NetworkConfig {
            name: DEFAULT_NETWORK.into(),
            bridge: DEFAULT_BRIDGE.into(),
            subnet,
            gateway: subnet.nth(1),
            driver: Driver::Bridge,
        })
    }

    /// The default "bridge" network (berth0, 10.66.0.0/16 unless configured); recorded on
    /// first use, its bridge device is created by the first attach.
    pub fn default_network(&self) -> Result<NetworkConfig, NetError> {
        let mut st = self.lock()?;
        let net = self.default_config(&st.state)?;
        if !st.state.networks.contains_key(DEFAULT_NETWORK) {
            st.state.networks.insert(DEFAULT_NETWORK.into(), net.clone());
            st.save()?;
        }
        Ok(net)
    }

    /// Creates a user network with its own bridge (`berth-<hash>`) and the given subnet or
    /// the first free 10.89.N.0/24.
    pub fn create_network(&self, name: &str, subnet: Option<&str>) -> Result<NetworkConfig, NetError> {
        self.create_network_on_bridge(name, subnet, None)
    }

    /// Like [`create_network`](Self::create_network) but with an explicit bridge device name
    /// (at most 15 characters).
    pub fn create_network_on_bridge(
        &self,
        name: &str,
        subnet: Option<&str>,
        bridge: Option<&str>,
    ) -> Result<NetworkConfig, NetError> {
        check_network_name(name)?;
        if name == DEFAULT_NETWORK || builtin(name).is_some() {
            return Err(NetError::BuiltinNetwork(name.to_string()));
        }
        let mut st = self.lock()?;
        if st.state.networks.contains_key(name) {
            return Err(NetError::NetworkExists(name.to_string()));
        }
        let default = self.default_config(&st.state)?;
        let taken: Vec<(Subnet, String)> = st
            .state
            .networks
            .values()
            .map(|n| (n.subnet, n.name.clone()))
            .chain(std::iter::once((default.subnet, default.name.clone())))
            .collect();
        let subnet = match subnet {
            Some(text) => {
                let s: Subnet = text.parse()?;
                if let Some((_, other)) = taken.iter().find(|(t, _)| t.overlaps(s)) {
                    return Err(NetError::SubnetOverlap {
                        subnet: s.to_string(),
                        other: other.clone(),
                    });
                }
                s
            }
            None => (0..=255u8)
                .map(|n| Subnet {
                    addr: Ipv4Addr::new(10, 89, n, 0),
                    prefix: 24,
                })
                .find(|s| !taken.iter().any(|(t, _)| t.overlaps(*s)))
                .ok_or(NetError::NoFreeSubnet)?,
        };
        let bridge = match bridge {
            Some(b) => {
                if b.is_empty() || b.len() > 15 || b.contains(['/', ' ']) {
                    return Err(NetError::InvalidName {
                        kind: "bridge",
                        name: b.to_string(),
                        reason: "use 1 to 15 characters without '/' or spaces".into(),
                    });
                }
                b.to_string()
            }
            None => {
                let mut salt = 0u32;
                loop {
                    let cand = format!("berth-{:08x}", fnv(&format!("{name}{salt}")) as u32);
                    if !st.state.networks.values().any(|n| n.bridge == cand) {
                        break cand;
                    }
                    salt += 1;
                }
            }
        };
        let net = NetworkConfig {
            name: name.to_string(),
            bridge,
            subnet,
            gateway: subnet.nth(1),
            driver: Driver::Bridge,
        };
        ensure_bridge(&net, &self.run_dir)?;
        st.state.networks.insert(name.to_string(), net.clone());
        if let Err(e) = st.save() {
            let _ = teardown_bridge(&net);
            return Err(e);
        }
        Ok(net)
    }

    /// All networks: "bridge", "host", "none" and the user networks, sorted by name.
    pub fn list_networks(&self) -> Result<Vec<NetworkConfig>, NetError> {
        let st = self.lock()?;
        let mut out: Vec<NetworkConfig> = st.state.networks.values().cloned().collect();
        if !st.state.networks.contains_key(DEFAULT_NETWORK) {
            out.push(self.default_config(&st.state)?);
        }
        out.extend(["host", "none"].iter().filter_map(|n| builtin(n)));
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Removes a user network: its bridge device and NAT rules. Refused while containers are
    /// attached and for the built-in networks.
    pub fn remove_network(&self, name: &str) -> Result<(), NetError> {
        if name == DEFAULT_NETWORK || builtin(name).is_some() {
            return Err(NetError::BuiltinNetwork(name.to_string()));
        }
        let mut st = self.lock()?;
        let net = st
            .state
            .networks
            .get(name)
            .cloned()
            .ok_or_else(|| NetError::NetworkNotFound(name.to_string()))?;
        let attached: Vec<&String> = st
            .state
            .endpoints
            .values()
            .filter(|e| e.network == name)
            .map(|e| &e.container_id)
            .collect();
        if let Some(first) = attached.first() {
            return Err(NetError::NetworkInUse {
                name: name.to_string(),
                count: attached.len(),
                first: first.to_string(),
            });
        }
        teardown_bridge(&net)?;
        st.state.networks.remove(name);
        st.save()
    }

    /// Attaches container `id` to `network`: a pinned netns at `run_dir/<id>`, a veth pair
    /// whose inner end is `eth0` with an address from IPAM and a default route via the
    /// gateway, `lo` up, and the bridge plus NAT rules ensured. Attaching again to the same
    /// network returns the existing endpoint; leftovers of a crashed attach are cleaned first.
    pub fn attach(&self, id: &str, network: &str, aliases: &[String]) -> Result<Endpoint, NetError> {
        check_id(id)?;
        let mut st = self.lock()?;
        let net = match network {
            DEFAULT_NETWORK => {
                let net = self.default_config(&st.state)?;
                st.state
                    .networks
                    .entry(DEFAULT_NETWORK.into())
                    .or_insert(net)
                    .clone()
            }
            other => match builtin(other) {
                Some(n) if n.driver == Driver::Host => return Err(NetError::NotAttachable(other.into())),
                Some(n) => n,
                None => st
                    .state
                    .networks
                    .get(other)
                    .cloned()
                    .ok_or_else(|| NetError::NetworkNotFound(other.to_string()))?,
            },
        };
        let path = self.netns_path(id);
        let veth = veth_name(id);
        if let Some(ep) = st.state.endpoints.get(id).cloned() {
            let healthy = netns::is_mounted(&path) && (net.driver == Driver::Null || link_exists(&veth));
            if healthy && ep.network == net.name {
                return Ok(ep);
            }
            if healthy {
                return Err(NetError::AlreadyAttached {
                    id: id.to_string(),
                    network: ep.network,
                });
            }
            st.state.endpoints.remove(id);
        }
        // Whatever a killed engine may have left behind for this id goes first.
        cleanup_kernel(&path, &veth)?;

        let ep = match net.driver {
            Driver::Null => {
                netns::create(&path)?;
                let res = netns::run_in(&path, || {
                    let nl = Netlink::open()?;
                    nl.link_up(index_of("lo")?, None)
                });
                if let Err(e) = res {
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
                }
            }
            _ => {
                let ip = allocate(&st.state, &net)?;
                ensure_bridge(&net, &self.run_dir)?;
                if let Err(e) = setup_endpoint(&net, &path, &veth, ip) {
                    let _ = cleanup_kernel(&path, &veth);
                    return Err(e);
                }
                Endpoint {
                    container_id: id.to_string(),
                    network: net.name.clone(),
                    ip,
                    prefix: net.subnet.prefix,
                    gateway: net.gateway,
                    mac: mac_string(mac_for(ip)),
                    netns: path.clone(),
                    aliases: aliases.to_vec(),
                }
            }
        };
        st.state.endpoints.insert(id.to_string(), ep.clone());
        if let Err(e) = st.save() {
            let _ = cleanup_kernel(&path, &veth);
            return Err(e);
        }
        Ok(ep)
    }

    /// Detaches container `id`: deletes its veth, releases its address, unmounts and removes
    /// its netns. Idempotent, and also cleans leftovers of a killed engine that never recorded
    /// the endpoint.
    pub fn detach(&self, id: &str) -> Result<(), NetError> {
        check_id(id)?;
        let mut st = self.lock()?;
        cleanup_kernel(&self.netns_path(id), &veth_name(id))?;
        if st.state.endpoints.remove(id).is_some() {
            st.save()?;
        }
        Ok(())
    }

    /// Releases every endpoint whose pinned namespace is gone (e.g. after a reboot, which
    /// clears the netns mounts but not the state file) and cleans its leftovers. Meant for
    /// engine start-up; returns the container ids that were released.
    pub fn prune_stale(&self) -> Result<Vec<String>, NetError> {
        let mut st = self.lock()?;
        let stale: Vec<String> = st
            .state
            .endpoints
            .keys()
            .filter(|id| !netns::is_mounted(&self.netns_path(id)))
            .cloned()
            .collect();
        for id in &stale {
            cleanup_kernel(&self.netns_path(id), &veth_name(id))?;
            st.state.endpoints.remove(id);
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

    /// The endpoint of container `id`, if it is attached.
    pub fn endpoint(&self, id: &str) -> Result<Option<Endpoint>, NetError> {
        let st = self.lock()?;
        Ok(st.state.endpoints.get(id).cloned())
    }
}

fn allocate(st: &State, net: &NetworkConfig) -> Result<Ipv4Addr, NetError> {
    let used: std::collections::HashSet<Ipv4Addr> = st
        .endpoints
        .values()
        .filter(|e| e.network == net.name)
        .map(|e| e.ip)
        .collect();
    let last = (net.subnet.size() - 1) as u32; // broadcast
    (1..last)
        .map(|n| net.subnet.nth(n))
        .find(|ip| *ip != net.gateway && !used.contains(ip))
        .ok_or_else(|| NetError::AddressesExhausted(net.name.clone()))
}

fn ensure_bridge(net: &NetworkConfig, run_dir: &Path) -> Result<(), NetError> {
    let nl = Netlink::open()?;
    let created = nl.create_bridge(&net.bridge)?;
    if !created
        && !Path::new("/sys/class/net")
            .join(&net.bridge)
            .join("bridge")
            .is_dir()
    {
        return Err(NetError::NotABridge(net.bridge.clone()));
    }
    let idx = index_of(&net.bridge)?;
    nl.add_address(idx, net.gateway, net.subnet.prefix)?;
    nl.link_up(idx, None)?;
    // Running `nft` costs tens of milliseconds, most of a container's start: install the
    // rules once per boot and bridge (the marker lives in /run, which a reboot clears, as it
    // clears the rules). A firewall reload that flushes them is repaired by recreating the
    // network or rebooting; `berth network rm`/`create` also reinstall.
    // Beside the netns directory, which holds namespaces only.
    let marker = run_dir.parent().unwrap_or(run_dir).join(format!(
        ".nat-{}-{}",
        net.bridge,
        net.subnet.to_string().replace('/', "_")
    ));
    if !created && marker.exists() {
        return Ok(());
    }
    nat::ensure(net)?;
    let _ = std::fs::write(&marker, b"");
    Ok(())
}

fn teardown_bridge(net: &NetworkConfig) -> Result<(), NetError> {
    // (The NAT marker, if any, is stale now: `ensure_bridge` sees the bridge created anew.)
    nat::remove(&net.bridge)?;
    Netlink::open()?.delete_link(&net.bridge)?;
    Ok(())
}

fn setup_endpoint(net: &NetworkConfig, path: &Path, veth: &str, ip: Ipv4Addr) -> Result<(), NetError> {
    netns::create(path)?;
    let ns = File::open(path).map_err(|e| NetError::io("open the network namespace", path, e))?;
    let nl = Netlink::open()?;
    nl.create_veth(veth, "eth0", ns.as_fd(), mac_for(ip))?;
    let bridge_idx = index_of(&net.bridge)?;
    nl.link_up(index_of(veth)?, Some(bridge_idx))?;
    let (gateway, prefix) = (net.gateway, net.subnet.prefix);
    netns::run_in(path, move || {
        let nl = Netlink::open()?;
        nl.link_up(index_of("lo")?, None)?;
        let eth0 = index_of("eth0")?;
        nl.add_address(eth0, ip, prefix)?;
        nl.link_up(eth0, None)?;
        nl.add_default_route(gateway, eth0)
    })
}

fn cleanup_kernel(path: &Path, veth: &str) -> Result<(), NetError> {
    if link_exists(veth) {
        Netlink::open()?.delete_link(veth)?;
    }
    netns::remove(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnet_math() {
        let a: Subnet = "10.88.0.0/16".parse().unwrap();
        let b: Subnet = "10.88.7.0/24".parse().unwrap();
        let c: Subnet = "10.89.0.0/24".parse().unwrap();
        assert!(a.overlaps(b) && b.overlaps(a));
        assert!(!a.overlaps(c));
        assert!(a.contains(Ipv4Addr::new(10, 88, 255, 254)) && !a.contains(Ipv4Addr::new(10, 89, 0, 1)));
        assert_eq!(b.nth(1), Ipv4Addr::new(10, 88, 7, 1));
        assert_eq!(b.size(), 256);
        assert_eq!(serde_json::to_string(&b).unwrap(), "\"10.88.7.0/24\"");
        for bad in [
            "10.88.0.0",
            "10.88.0.1/16",
            "10.88.0.0/33",
            "10.88.0.0/31",
            "::1/64",
            "x/8",
        ] {
            assert!(bad.parse::<Subnet>().is_err(), "{bad}");
        }
    }

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

    #[test]
    fn allocation_skips_gateway_used_and_broadcast() {
        let subnet: Subnet = "10.9.9.0/30".parse().unwrap();
        let net = NetworkConfig {
            name: "n".into(),
            bridge: "b".into(),
            subnet,
            gateway: subnet.nth(1),
            driver: Driver::Bridge,
        };
        let mut st = State::default();
        let ip = allocate(&st, &net).unwrap();
        assert_eq!(ip, Ipv4Addr::new(10, 9, 9, 2));
        st.endpoints.insert(
            "x".into(),
            Endpoint {
                container_id: "x".into(),
                network: "n".into(),
                ip,
                prefix: 30,
                gateway: net.gateway,
                mac: String::new(),
                netns: PathBuf::new(),
                aliases: vec![],
            },
        );
        assert!(matches!(
            allocate(&st, &net),
            Err(NetError::AddressesExhausted(_))
        ));
    }
}
