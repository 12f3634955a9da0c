//! Rootful container networking, shaped like docker's default bridge.
//!
//! # Design
//!
//! * **Networks.** A bridge network is a Linux bridge (`berth0` for the default network
//!   "bridge", `berth-<hash of name>` for user networks) carrying the gateway address (the
//!   subnet's first host), plus NAT. "host" and "none" are built in: "host" needs nothing,
//!   "none" gives a namespace with only `lo`. User networks get a free `10.89.N.0/24` unless a
//!   subnet is given; the default network uses `10.66.0.0/16`, changeable with
//!   [`NetworkManager::with_default_subnet`] or `BERTH_BRIDGE_SUBNET`.
//! * **IPv6.** A network created with IPv6 (`--ipv6`, `EnableIPv6`) has a second subnet, a
//!   given one or a unique local `fdXX:XXXX:XXXX::/64` derived from its name: the bridge
//!   carries its gateway (`::1`) and every endpoint gets the lowest free address as well,
//!   with duplicate address detection off so it works at once, and the IPv6 default route
//!   when it carries the IPv4 one. Containers of one network reach each other over it; like
//!   docker 20.10 without `ip6tables`, nothing is masqueraded, so it reaches only as far as
//!   the host routes IPv6.
//! * **State and IPAM.** Networks and endpoints live in `state_dir/state.json`, rewritten
//!   atomically (write + fsync + rename) while an `flock` on `state_dir/lock` is held, so
//!   several engines or CLI processes can attach and detach at once. Addresses are handed out
//!   lowest-free-first; an endpoint's record is its lease.
//! * **Endpoints.** [`NetworkManager::attach`] creates a new network namespace in a throwaway
//!   thread (`unshare(CLONE_NEWNET)`) and pins it by bind-mounting its nsfs file on
//!   `run_dir/<id>` (what `ip netns add` does). A veth pair is created with one netlink request
//!   whose peer is born inside that namespace as `eth0` with MAC `02:42:<ip>`; the host end
//!   (`vb<hash of id>`) joins the bridge. A thread that `setns`es into the namespace then sets
//!   `lo` and `eth0` up, adds the address and the default route via the gateway.
//! * **Several networks.** Endpoints are keyed by (container, network).
//!   [`NetworkManager::connect`] adds one more veth pair into the pinned namespace while the
//!   container runs (`eth1`, `eth2`, … with an address from that network, no default route),
//!   [`NetworkManager::disconnect`] deletes it (the next endpoint takes the default route over
//!   if it was the one carrying it), [`NetworkManager::sandbox`] pins a namespace with only
//!   `lo` for a container on no network yet. The first interface keeps its id-only key in the
//!   state file and its id-derived host veth name, so older engines sharing the file still
//!   find it. Networks are isolated: a new connection routed into a bridge from anywhere else
//!   is dropped, so a container reaches another network only by being connected to it.
//! * **Kernel interface.** Links, addresses and routes are configured over rtnetlink with a
//!   small hand-written synchronous client (`netlink.rs`); nothing shells out to `ip`. NAT uses
//!   nftables: table `ip berth`, one masquerade chain and one forward chain per bridge
//!   (`nat_<bridge>`, `fwd_<bridge>`), so a network's rules are replaced or deleted as a unit;
//!   `net.ipv4.ip_forward` is switched on.
//! * **Crash safety.** Everything is idempotent. Host veth names and netns paths derive from
//!   the container id alone, so [`NetworkManager::detach`] removes what a killed engine left
//!   behind even if it never recorded the endpoint, and `attach` cleans such leftovers first.
//!   (An unrecorded `eth1`… of a killed `connect` lives inside the namespace, so it goes when
//!   the namespace does; `connect` also deletes a same-named leftover host end first.)
//! * **Published ports.** [`PortSpec`] (from berth-units, with docker's `-p` syntax). [`bind_published`]
//!   binds every host socket before the container starts so conflicts are reported early.
//!   [`spawn_proxies`] runs a userspace proxy (threads) in whichever process holds the
//!   sockets — meant to be the per-container shim, so the proxy lives exactly as long as the
//!   container and survives engine restarts. Because it is a userspace proxy, published ports
//!   work on 127.0.0.1 and on the host's own addresses, from the host itself too.

mod bridge;
mod endpoint;
mod error;
mod ipam;
mod nat;
mod netlink;
mod netns;
mod network;
mod ports;
mod proxy;
mod state;

pub use endpoint::{parse_mac, veth_name, Endpoint, Fixed, Ipv6Endpoint};
pub use error::NetError;
pub use ipam::{is_ipv6_subnet, Subnet, Subnet6};
pub use netns::run_in as run_in_netns;
pub use network::{
    Driver, Ipv6Config, NetworkConfig, NetworkManager, NetworkSpec, DEFAULT_BRIDGE, DEFAULT_NETWORK,
    DEFAULT_SUBNET, SUBNET_ENV,
};
pub use ports::{bind_published, BoundPort, Listener, PortSpec, Proto};
pub use proxy::{spawn_proxies, ProxySet};

/// A network's ID as the Engine API shows it: stable for its name (a network is known by
/// its name; the ID is derived, so every engine on the machine gives the same one).
pub fn network_id(name: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(format!("berth-network:{name}")))
}
