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
}

fn first_interface() -> String {
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

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    #[serde(default)]
    networks: BTreeMap<String, NetworkConfig>,
    /// Keyed by [`endpoint_key`].
    #[serde(default)]
    endpoints: BTreeMap<String, Endpoint>,
}

/// A container's first interface (`eth0`, or the bare namespace of "none") is keyed by the
/// container id, as before containers could be on several networks, so older engines
/// sharing the state file still find it; the others by `<id>/<interface>` (an id contains
/// no '/'), so the interface survives an older engine rewriting the file without the
/// fields it does not know.
fn endpoint_key(e: &Endpoint) -> String {
    if e.interface == "eth0" || e.interface.is_empty() {
        e.container_id.clone()
    } else {
        format!("{}/{}", e.container_id, e.interface)
    }
}

impl State {
    /// Makes the endpoints consistent whoever wrote the file: interfaces named by their key
    /// win over a field an older engine dropped (read back as `eth0`), each container keeps
    /// one default route (on its first interface that claims one), and keys are rebuilt.
    fn normalize(&mut self) {
        let consistent = self.endpoints.iter().all(|(k, e)| *k == endpoint_key(e))
            && self.endpoints.values().all(|e| {
                !e.default_route
                    || !self.endpoints.values().any(|o| {
                        o.container_id == e.container_id
                            && o.default_route
                            && interface_number(&o.interface) < interface_number(&e.interface)
                    })
            });
        if consistent {
            return;
        }
        let all = std::mem::take(&mut self.endpoints);
        let mut eps: Vec<Endpoint> = all
            .into_iter()
            .map(|(k, mut e)| {
                if let Some(interface) = k.strip_prefix(&format!("{}/", e.container_id)) {
                    if interface.starts_with("eth") {
                        e.interface = interface.to_string();
                    }
                }
                e
            })
            .collect();
        eps.sort_by_key(|e| interface_number(&e.interface));
        let mut routed = std::collections::HashSet::new();
        for e in &mut eps {
            if e.default_route && !routed.insert(e.container_id.clone()) {
                e.default_route = false;
            }
        }
        self.endpoints = eps.into_iter().map(|e| (endpoint_key(&e), e)).collect();
    }

    fn insert(&mut self, e: Endpoint) {
        self.endpoints.insert(endpoint_key(&e), e);
    }

    /// Removes and returns container `id`'s endpoint on `network`.
    fn remove(&mut self, id: &str, network: &str) -> Option<Endpoint> {
        let key = self
            .endpoints
            .iter()
            .find(|(_, e)| e.container_id == id && e.network == network)
            .map(|(k, _)| k.clone())?;
        self.endpoints.remove(&key)
    }

    /// The endpoints of container `id`, in interface order (eth0, eth1, …).
    fn of(&self, id: &str) -> Vec<Endpoint> {
        let mut eps: Vec<Endpoint> = self
            .endpoints
            .values()
            .filter(|e| e.container_id == id)
            .cloned()
            .collect();
        eps.sort_by_key(|e| interface_number(&e.interface));
        eps
    }

    fn remove_all_of(&mut self, id: &str) -> Vec<Endpoint> {
        let eps = self.of(id);
        for e in &eps {
            self.remove(id, &e.network);
        }
        eps
    }
}

fn interface_number(name: &str) -> u32 {
    name.strip_prefix("eth")
        .and_then(|n| n.parse().ok())
        .unwrap_or(u32::MAX)
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
        let mut state: State = match std::fs::read(&path) {
            Ok(data) => serde_json::from_slice(&data).map_err(|e| NetError::CorruptState {
                path: path.clone(),
                reason: e.to_string(),
            })?,
            Err(e) if e.kind() == ErrorKind::NotFound => State::default(),
            Err(e) => return Err(NetError::io("read", &path, e)),
        };
        state.normalize();
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

    /// Looks a network up by name for an endpoint: the default network is recorded on first
    /// use; "host" cannot have endpoints.
    fn network_for_endpoint(&self, st: &mut State, network: &str) -> Result<NetworkConfig, NetError> {
        match network {
            DEFAULT_NETWORK => {
                let net = self.default_config(st)?;
                Ok(st.networks.entry(DEFAULT_NETWORK.into()).or_insert(net).clone())
            }
            other => match builtin(other) {
                Some(n) if n.driver == Driver::Host => Err(NetError::NotAttachable(other.into())),
                Some(n) => Ok(n),
                None => st
                    .networks
                    .get(other)
                    .cloned()
                    .ok_or_else(|| NetError::NetworkNotFound(other.to_string())),
            },
        }
    }

    /// Attaches container `id` to its first network: a pinned netns at `run_dir/<id>`, a veth
    /// pair whose inner end is `eth0` with an address from IPAM and a default route via the
    /// gateway, `lo` up, and the bridge plus NAT rules ensured. Attaching again to the same
    /// network returns the existing endpoint; leftovers of a crashed attach are cleaned first.
    /// Further networks join with [`connect`](Self::connect).
    pub fn attach(&self, id: &str, network: &str, aliases: &[String]) -> Result<Endpoint, NetError> {
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
                    default_route: false,
                }
            }
            _ => {
                let ip = allocate(&st.state, &net)?;
                ensure_bridge(&net, &self.run_dir)?;
                let mut ep = bridge_endpoint(id, &net, ip, &path, aliases);
                (ep.interface, ep.default_route) = (first_interface(), true);
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
        let ip = allocate(&st.state, &net)?;
        ensure_bridge(&net, &self.run_dir)?;
        let mut ep = bridge_endpoint(id, &net, ip, &path, aliases);
        (ep.interface, ep.default_route) = (interface, !mine.iter().any(|e| e.default_route));
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
            if let Some(next) = st.state.of(id).into_iter().find(|e| !e.interface.is_empty()) {
                let (gateway, interface) = (next.gateway, next.interface.clone());
                netns::run_in(&ep.netns, move || {
                    Netlink::open()?.add_default_route(gateway, index_of(&interface)?)
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

    /// Every endpoint of container `id`, in interface order (eth0, eth1, …).
    pub fn endpoints_of(&self, id: &str) -> Result<Vec<Endpoint>, NetError> {
        Ok(self.lock()?.state.of(id))
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
    // (`nat2`: the rule set with network isolation; bridges marked for the older set get it.)
    let marker = run_dir.parent().unwrap_or(run_dir).join(format!(
        ".nat2-{}-{}",
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

/// Container `id`'s endpoint on bridge network `net` with address `ip` (interface and
/// default route still to be chosen by the caller).
fn bridge_endpoint(id: &str, net: &NetworkConfig, ip: Ipv4Addr, path: &Path, aliases: &[String]) -> Endpoint {
    Endpoint {
        container_id: id.to_string(),
        network: net.name.clone(),
        ip,
        prefix: net.subnet.prefix,
        gateway: net.gateway,
        mac: mac_string(mac_for(ip)),
        netns: path.to_path_buf(),
        aliases: aliases.to_vec(),
        interface: String::new(),
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
    nl.create_veth(&veth, &ep.interface, ns.as_fd(), mac_for(ep.ip))?;
    let bridge_idx = index_of(&net.bridge)?;
    nl.link_up(index_of(&veth)?, Some(bridge_idx))?;
    let (ip, prefix, gateway, interface) = (ep.ip, net.subnet.prefix, net.gateway, ep.interface.clone());
    let default_route = ep.default_route;
    netns::run_in(path, move || {
        let nl = Netlink::open()?;
        if fresh {
            nl.link_up(index_of("lo")?, None)?;
        }
        let idx = index_of(&interface)?;
        nl.add_address(idx, ip, prefix)?;
        nl.link_up(idx, None)?;
        if default_route {
            nl.add_default_route(gateway, idx)?;
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
    fn state_of_older_engines_is_read_and_keys_stay_compatible() {
        // Before multi-network support: keyed by container id, no interface fields.
        let old = r#"{"networks": {}, "endpoints": {"c1": {"container_id": "c1", "network": "n",
            "ip": "10.9.9.2", "prefix": 24, "gateway": "10.9.9.1", "mac": "", "netns": "/x",
            "aliases": ["web"]}}}"#;
        let mut st: State = serde_json::from_str(old).unwrap();
        st.normalize();
        let ep = st.of("c1").pop().unwrap();
        assert_eq!((ep.interface.as_str(), ep.default_route), ("eth0", true));
        let mut second = ep.clone();
        second.network = "m".into();
        second.interface = "eth1".into();
        second.default_route = false;
        st.insert(second);
        // eth0 keeps the bare id (older engines still find it), eth1 is keyed with its network.
        let keys: Vec<&String> = st.endpoints.keys().collect();
        assert_eq!(keys, ["c1", "c1/eth1"]);
        // An older engine rewriting the file drops the fields it does not know: the key
        // still names the interface, and only the first interface keeps the default route.
        let mut rewritten: State = serde_json::from_str(
            &serde_json::to_string(&st)
                .unwrap()
                .replace(r#","interface":"eth1","default_route":false"#, ""),
        )
        .unwrap();
        assert_eq!(rewritten.endpoints["c1/eth1"].interface, "eth0", "as read back");
        rewritten.normalize();
        let eps = rewritten.of("c1");
        assert_eq!(
            eps.iter()
                .map(|e| (e.interface.as_str(), e.default_route))
                .collect::<Vec<_>>(),
            [("eth0", true), ("eth1", false)]
        );
        assert_eq!(st.of("c1").len(), 2);
        assert_eq!(st.remove("c1", "m").unwrap().interface, "eth1");
        assert!(st.remove("c1", "m").is_none());
        assert_eq!(st.remove_all_of("c1").len(), 1);
        assert!(st.endpoints.is_empty());
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
                interface: first_interface(),
                default_route: true,
            },
        );
        assert!(matches!(
            allocate(&st, &net),
            Err(NetError::AddressesExhausted(_))
        ));
    }
}
