//! The one error type of the crate; every message is a plain sentence that says what to do next.

use std::net::IpAddr;
use std::path::PathBuf;

/// Everything that can go wrong while setting up or tearing down container networking.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("port {port} is already in use on {ip} — pick another host port, e.g. -p {suggestion}:{container_port}")]
    PortInUse {
        ip: IpAddr,
        port: u16,
        container_port: u16,
        suggestion: u16,
    },

    #[error("port {port} is below {start}, the first port an ordinary user may publish (net.ipv4.ip_unprivileged_port_start), and Berth runs without root — publish a port of {start} or above, or lower the limit as root with `sysctl net.ipv4.ip_unprivileged_port_start={port}`")]
    PrivilegedPort { port: u16, start: u16 },

    #[error("could not bind {ip}:{port}: {source}; check that the address belongs to this host")]
    Bind {
        ip: IpAddr,
        port: u16,
        source: std::io::Error,
    },

    #[error("network '{0}' does not exist; list networks with `berth network ls` or create it with `berth network create {0}`")]
    NetworkNotFound(String),

    #[error("network '{0}' already exists; choose another name or remove it with `berth network rm {0}`")]
    NetworkExists(String),

    #[error(
        "network '{name}' still has {count} attached container(s) ({first}); stop or disconnect them first"
    )]
    NetworkInUse {
        name: String,
        count: usize,
        first: String,
    },

    #[error("network '{0}' is built in and cannot be removed or changed; use a network you created instead")]
    BuiltinNetwork(String),

    #[error("network '{0}' gives containers no network namespace of their own to attach; run the container without attaching it")]
    NotAttachable(String),

    #[error(
        "invalid subnet '{subnet}': {reason}; give a CIDR such as 10.89.3.0/24 (or fd00:1::/64 for IPv6)"
    )]
    InvalidSubnet { subnet: String, reason: String },

    #[error("subnet {subnet} overlaps network '{other}'; pick a different --subnet")]
    SubnetOverlap { subnet: String, other: String },

    #[error(
        "no free /24 is left in 10.89.0.0/16 for a new network; remove unused networks or pass --subnet"
    )]
    NoFreeSubnet,

    #[error("network '{0}' has no free addresses left; remove stopped containers or create a network with a larger subnet")]
    AddressesExhausted(String),

    #[error(
        "container {id} is already attached to network '{network}'; detach it before attaching it elsewhere"
    )]
    AlreadyAttached { id: String, network: String },

    #[error(
        "container {id} is already connected to network '{network}'; disconnect it first to connect it again"
    )]
    AlreadyConnected { id: String, network: String },

    #[error(
        "container {id} is not connected to network '{network}'; see its networks with `berth inspect {id}`"
    )]
    NotConnected { id: String, network: String },

    #[error("container {0} has no network namespace yet (it is not running); start it, or connect it before it starts")]
    NoNamespace(String),

    #[error("invalid {kind} name '{name}': {reason}; choose another name")]
    InvalidName {
        kind: &'static str,
        name: String,
        reason: String,
    },

    #[error(
        "cannot give address {ip} on network '{network}': {reason}; choose another address or leave it out"
    )]
    StaticAddress {
        ip: IpAddr,
        network: String,
        reason: String,
    },

    #[error("network '{0}' has no IPv6 subnet; create it with --ipv6, or leave the IPv6 address out")]
    NoIpv6(String),

    #[error("IPv6 is switched off on this host (net.ipv6.conf.all.disable_ipv6 is 1); switch it on as root with `sysctl -w net.ipv6.conf.all.disable_ipv6=0`, or create the network without --ipv6")]
    Ipv6Off,

    #[error("interface {0} already exists and is not a bridge; choose another bridge name or remove that interface")]
    NotABridge(String),

    #[error("invalid container id '{0}': use letters, digits, '_', '-' or '.' only")]
    InvalidId(String),

    #[error("the kernel refused to {op}: {errno}; check that you run as root and the kernel has veth/bridge support")]
    Netlink { op: String, errno: nix::errno::Errno },

    #[error("{what} failed: {detail}; make sure nftables (`nft`) is installed and you run as root")]
    Firewall { what: String, detail: String },

    #[error("could not {what} {path}: {source}; check permissions and free space there")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("the network state file {path} is damaged ({reason}); move it aside and recreate the networks")]
    CorruptState { path: PathBuf, reason: String },

    #[error("could not {what}: {source}; check that you run as root")]
    Sys { what: String, source: std::io::Error },
}

impl NetError {
    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        NetError::Io {
            what,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn sys(what: impl Into<String>, source: impl Into<std::io::Error>) -> Self {
        NetError::Sys {
            what: what.into(),
            source: source.into(),
        }
    }
}
