//! Networks: the `NetworkManager`, the records of the default, built-in and user networks,
//! and creating, listing and removing them.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::bridge::{ensure_bridge, teardown_bridge};
use crate::ipam::{choose_subnet, choose_subnet6, Subnet, Subnet6};
use crate::state::State;
use crate::NetError;

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
    /// No way out: no masquerade, and nothing routed from the bridge to another interface
    /// (docker's `--internal`).
    #[serde(default)]
    pub internal: bool,
    /// Recorded and reported (docker's `--attachable`, which on a local bridge changes nothing).
    #[serde(default)]
    pub attachable: bool,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The driver options it was created with, as given (reported back as they were).
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// Where addresses are handed out from (docker's `--ip-range`); the whole subnet if `None`.
    #[serde(default)]
    pub ip_range: Option<Subnet>,
    /// Whether the subnet was asked for (static addresses need one, as in docker).
    #[serde(default)]
    pub subnet_given: bool,
    /// RFC 3339, when it was created (`None` for the built-in networks and older records).
    #[serde(default)]
    pub created: Option<String>,
    /// The network's IPv6 subnet and gateway when it was created with IPv6 (docker's
    /// `--ipv6`): every endpoint then gets an IPv6 address as well.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<Ipv6Config>,
}

/// A network's IPv6 half: the subnet its endpoints' second addresses come from, and the
/// gateway the bridge carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ipv6Config {
    pub subnet: Subnet6,
    pub gateway: Ipv6Addr,
}

/// What a new user network is asked to be (docker's `network create` options).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkSpec {
    pub subnet: Option<String>,
    pub gateway: Option<String>,
    pub ip_range: Option<String>,
    /// The bridge device (at most 15 characters); `berth-<hash>` if `None`.
    pub bridge: Option<String>,
    pub internal: bool,
    pub attachable: bool,
    pub labels: BTreeMap<String, String>,
    /// Driver options as given, reported back unchanged (the ones Berth acts on are above).
    pub options: BTreeMap<String, String>,
    /// IPv6 as well (docker's `--ipv6`): from `subnet6`, or a unique local /64 chosen for it.
    pub ipv6: bool,
    pub subnet6: Option<String>,
    pub gateway6: Option<String>,
}

impl NetworkConfig {
    pub(crate) fn plain(name: &str, bridge: &str, subnet: Subnet, gateway: Ipv4Addr, driver: Driver) -> Self {
        NetworkConfig {
            name: name.into(),
            bridge: bridge.into(),
            subnet,
            gateway,
            driver,
            internal: false,
            attachable: false,
            labels: BTreeMap::new(),
            options: BTreeMap::new(),
            ip_range: None,
            subnet_given: false,
            created: None,
            ipv6: None,
        }
    }
}

/// Creates and tears down networks and container endpoints. Cheap to construct; all state
/// lives in `state_dir/state.json`, guarded by an flock on `state_dir/lock`, so any number of
/// managers in any number of processes can work at once.
#[derive(Debug, Clone)]
pub struct NetworkManager {
    pub(crate) state_dir: PathBuf,
    pub(crate) run_dir: PathBuf,
    default_subnet: Option<String>,
    /// Where bridges and host-side veths live: `None` for this process's own network
    /// namespace (the host's root), else the user's own one (a rootless engine).
    home: Option<PathBuf>,
}

pub(crate) fn fnv(s: &str) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

fn check_network_name(name: &str) -> Result<(), NetError> {
    if berth_host::names::is_plain(name, 64) {
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
        "host" => Some(NetworkConfig::plain(
            "host",
            "",
            unspecified,
            Ipv4Addr::UNSPECIFIED,
            Driver::Host,
        )),
        "none" => Some(NetworkConfig::plain(
            "none",
            "",
            unspecified,
            Ipv4Addr::UNSPECIFIED,
            Driver::Null,
        )),
        _ => None,
    }
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
            home: crate::netns::home(),
        })
    }

    /// Runs `f` where this manager's bridges live (see `home`).
    pub(crate) fn at_home<T: Send>(
        &self,
        f: impl FnOnce() -> Result<T, NetError> + Send,
    ) -> Result<T, NetError> {
        match &self.home {
            None => f(),
            Some(home) => crate::netns::run_in(home, f),
        }
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
        Ok(NetworkConfig::plain(
            DEFAULT_NETWORK,
            DEFAULT_BRIDGE,
            subnet,
            subnet.nth(1),
            Driver::Bridge,
        ))
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
        let spec = NetworkSpec {
            subnet: subnet.map(String::from),
            ..NetworkSpec::default()
        };
        self.create_network_with(name, &spec)
    }

    /// Like [`create_network`](Self::create_network) but with an explicit bridge device name
    /// (at most 15 characters).
    pub fn create_network_on_bridge(
        &self,
        name: &str,
        subnet: Option<&str>,
        bridge: Option<&str>,
    ) -> Result<NetworkConfig, NetError> {
        let spec = NetworkSpec {
            subnet: subnet.map(String::from),
            bridge: bridge.map(String::from),
            ..NetworkSpec::default()
        };
        self.create_network_with(name, &spec)
    }

    /// Creates a user network as `spec` asks: its subnet (or the first free 10.89.N.0/24),
    /// gateway (or the subnet's first address), address range, bridge name, labels, and
    /// whether it is internal.
    pub fn create_network_with(&self, name: &str, spec: &NetworkSpec) -> Result<NetworkConfig, NetError> {
        self.at_home(|| self.create_network_here(name, spec))
    }

    fn create_network_here(&self, name: &str, spec: &NetworkSpec) -> Result<NetworkConfig, NetError> {
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
        let subnet = choose_subnet(spec.subnet.as_deref(), &taken)?;
        let (gateway, ip_range) =
            crate::ipam::gateway_and_range(subnet, spec.gateway.as_deref(), spec.ip_range.as_deref())?;
        let ipv6 = if spec.ipv6 || spec.subnet6.is_some() {
            if !crate::bridge::ipv6_enabled() {
                return Err(NetError::Ipv6Off);
            }
            let taken6: Vec<(Subnet6, String)> = st
                .state
                .networks
                .values()
                .filter_map(|n| n.ipv6.map(|v| (v.subnet, n.name.clone())))
                .collect();
            let subnet = choose_subnet6(spec.subnet6.as_deref(), name, &taken6)?;
            let gateway = crate::ipam::gateway6(subnet, spec.gateway6.as_deref())?;
            Some(Ipv6Config { subnet, gateway })
        } else if spec.gateway6.is_some() {
            return Err(NetError::InvalidSubnet {
                subnet: spec.gateway6.clone().unwrap_or_default(),
                reason: "an IPv6 gateway needs an IPv6 network".into(),
            });
        } else {
            None
        };
        let bridge = match spec.bridge.as_deref() {
            Some(b) => {
                if b.is_empty() || b.len() > 15 || b.contains(['/', ' ']) {
                    return Err(NetError::InvalidName {
                        kind: "bridge",
                        name: b.to_string(),
                        reason: "use 1 to 15 characters without '/' or spaces".into(),
                    });
                }
                if st.state.networks.values().any(|n| n.bridge == b) {
                    return Err(NetError::InvalidName {
                        kind: "bridge",
                        name: b.to_string(),
                        reason: "another network uses that bridge".into(),
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
            internal: spec.internal,
            attachable: spec.attachable,
            labels: spec.labels.clone(),
            options: spec.options.clone(),
            ip_range,
            subnet_given: spec.subnet.is_some(),
            created: Some(now_rfc3339()),
            ipv6,
            ..NetworkConfig::plain(name, &bridge, subnet, gateway, Driver::Bridge)
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
        self.at_home(|| self.remove_network_here(name))
    }

    fn remove_network_here(&self, name: &str) -> Result<(), NetError> {
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
    pub(crate) fn network_for_endpoint(
        &self,
        st: &mut State,
        network: &str,
    ) -> Result<NetworkConfig, NetError> {
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
}

/// Now, in RFC 3339, as docker writes a network's `Created`.
fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
