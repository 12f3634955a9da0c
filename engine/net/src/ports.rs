//! Published ports: binding the host sockets up front (the `-p` syntax and the spec type
//! are berth-units').

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::os::fd::OwnedFd;

pub use berth_units::{PortSpec, Proto};

use crate::NetError;

/// A bound host socket for one published port.
#[derive(Debug)]
pub enum Listener {
    Tcp(TcpListener),
    Udp(UdpSocket),
}

impl Listener {
    /// The socket as a plain fd (e.g. to pass it to a shim process).
    pub fn into_fd(self) -> OwnedFd {
        match self {
            Listener::Tcp(l) => l.into(),
            Listener::Udp(u) => u.into(),
        }
    }

    /// Rebuilds a listener from an fd that was bound for `proto`.
    pub fn from_fd(fd: OwnedFd, proto: Proto) -> Self {
        match proto {
            Proto::Tcp => Listener::Tcp(fd.into()),
            Proto::Udp => Listener::Udp(fd.into()),
        }
    }
}

/// A published port whose host socket is already bound; `spec.host_port` is the real port.
#[derive(Debug)]
pub struct BoundPort {
    pub spec: PortSpec,
    pub listener: Listener,
}

fn bind_one(spec: PortSpec) -> std::io::Result<(Listener, u16)> {
    let addr = SocketAddr::new(spec.host_ip, spec.host_port);
    match spec.proto {
        Proto::Tcp => {
            let l = TcpListener::bind(addr)?;
            let port = l.local_addr()?.port();
            Ok((Listener::Tcp(l), port))
        }
        Proto::Udp => {
            let u = UdpSocket::bind(addr)?;
            let port = u.local_addr()?.port();
            Ok((Listener::Udp(u), port))
        }
    }
}

fn suggest(spec: PortSpec) -> u16 {
    let mut p = spec.host_port;
    for _ in 0..100 {
        p = if p == 65535 { 1024 } else { p + 1 };
        if bind_one(PortSpec { host_port: p, ..spec }).is_ok() {
            return p;
        }
    }
    p
}

/// Binds every host socket now, so a port that is taken is reported before the container
/// starts. All or nothing: on error the sockets bound so far are closed again.
pub fn bind_published(ports: &[PortSpec]) -> Result<Vec<BoundPort>, NetError> {
    let mut out = Vec::with_capacity(ports.len());
    for &spec in ports {
        match bind_one(spec) {
            Ok((listener, port)) => out.push(BoundPort {
                spec: PortSpec {
                    host_port: port,
                    ..spec
                },
                listener,
            }),
            Err(e) if e.kind() == ErrorKind::AddrInUse => {
                drop(out);
                return Err(NetError::PortInUse {
                    ip: spec.host_ip,
                    port: spec.host_port,
                    container_port: spec.container_port,
                    suggestion: suggest(spec),
                });
            }
            Err(source)
                if source.kind() == ErrorKind::PermissionDenied && !berth_host::privilege::host_root() =>
            {
                let start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
                    .ok()
                    .and_then(|t| t.trim().parse().ok())
                    .unwrap_or(1024);
                return Err(NetError::PrivilegedPort {
                    port: spec.host_port,
                    start,
                });
            }
            Err(source) => {
                return Err(NetError::Bind {
                    ip: spec.host_ip,
                    port: spec.host_port,
                    source,
                })
            }
        }
    }
    Ok(out)
}
