//! Published ports on the machine's host: the guest's engine asks, through the link, that
//! the host bind the same address and port and relay each connection back
//! ([`berth_containers::HostPorts`]).
//!
//! Each published port is one link stream `publish <proto> <ip> <port> <container-port>`:
//! the host answers `ok` or `error <sentence>` on it and keeps the port while the stream is
//! open. A connection the host accepts comes back as a stream `connect <proto> <ip> <port>`,
//! which the guest connects to its own listener (marked, so the host-loopback rule in
//! `init` leaves it alone). For UDP, each client address the host hears from is one such
//! stream carrying datagrams ([`berth_link::datagram`]); it ends after [`UDP_IDLE`] of
//! silence, as a NAT's UDP mapping does. When the host connects again (a relay started again), every
//! published port is asked for again.

use std::collections::HashMap;
use std::time::Duration;

use berth_containers::{HostPorts, PortSpec};
use berth_link::Link;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::mpsc;

/// The firewall mark of the guest's own connections to its published ports.
pub const MARK: u32 = 0xbe27;

/// How long a UDP flow lives without a datagram either way.
pub const UDP_IDLE: Duration = Duration::from_secs(60);

enum Req {
    Publish {
        id: String,
        ports: Vec<PortSpec>,
        reply: std::sync::mpsc::Sender<Result<(), String>>,
    },
    Watch {
        id: String,
        dirs: Vec<std::path::PathBuf>,
    },
    Release(String),
    Link(Link),
}

/// The guest's [`HostPorts`]: a handle on a task that holds the link and the streams
/// (published ports, and watches of shared folders: [`crate::watch`]).
#[derive(Clone)]
pub struct LinkPorts {
    tx: mpsc::UnboundedSender<Req>,
    shares: std::sync::Arc<Vec<std::path::PathBuf>>,
}

impl LinkPorts {
    /// Starts the task on the current runtime; `shares` are the host's folders mounted
    /// here (bind sources inside them are watched).
    pub fn start(shares: Vec<std::path::PathBuf>) -> LinkPorts {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(rx));
        LinkPorts {
            tx,
            shares: std::sync::Arc::new(shares),
        }
    }

    /// The link to use from now on (a host connected).
    pub fn set_link(&self, link: Link) {
        let _ = self.tx.send(Req::Link(link));
    }
}

impl HostPorts for LinkPorts {
    fn publish(&self, id: &str, ports: &[PortSpec]) -> Result<(), String> {
        let (reply, answer) = std::sync::mpsc::channel();
        self.tx
            .send(Req::Publish {
                id: id.to_string(),
                ports: ports.to_vec(),
                reply,
            })
            .map_err(|_| "the machine's port forwarding has stopped: restart the machine".to_string())?;
        answer
            .recv_timeout(Duration::from_secs(15))
            .unwrap_or_else(|_| Err("the machine's host did not answer in time: try again".to_string()))
    }

    fn release(&self, id: &str) {
        let _ = self.tx.send(Req::Release(id.to_string()));
    }

    fn watch(&self, id: &str, dirs: &[std::path::PathBuf]) {
        let dirs = crate::watch::in_shares(dirs, &self.shares);
        if !dirs.is_empty() {
            let id = id.to_string();
            let _ = self.tx.send(Req::Watch { id, dirs });
        }
    }

    fn host_address(&self) -> Option<std::net::IpAddr> {
        Some(crate::HOST_GATEWAY.into())
    }
}

/// The target asking the host to publish `p`.
pub fn publish_target(p: &PortSpec) -> String {
    format!(
        "publish {} {} {} {}",
        p.proto, p.host_ip, p.host_port, p.container_port
    )
}

/// Opens one publish stream and reads the host's answer.
async fn publish_one(link: &Link, p: &PortSpec) -> Result<DuplexStream, String> {
    let stream = link.open(&publish_target(p)).await.map_err(|e| e.to_string())?;
    let (mut mine, theirs) = tokio::io::duplex(4096);
    tokio::spawn(stream.splice(theirs));
    let mut line = Vec::new();
    let read = async {
        loop {
            match mine.read_u8().await {
                Ok(b'\n') => return Ok(()),
                Ok(b) if line.len() < 1024 => line.push(b),
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
    };
    match tokio::time::timeout(Duration::from_secs(10), read).await {
        Ok(Ok(())) => {}
        _ => {
            return Err(format!(
                "the machine's host did not answer for port {}",
                p.host_port
            ))
        }
    }
    let line = String::from_utf8_lossy(&line).into_owned();
    match line.strip_prefix("error ") {
        Some(why) => Err(why.to_string()),
        None if line == "ok" => Ok(mine),
        None => Err(format!(
            "the machine's host answered '{line}' for port {}",
            p.host_port
        )),
    }
}

async fn run(mut rx: mpsc::UnboundedReceiver<Req>) {
    let mut link: Option<Link> = None;
    let mut held: HashMap<String, Vec<(PortSpec, DuplexStream)>> = HashMap::new();
    let mut watched: HashMap<String, Vec<Watched>> = HashMap::new();
    while let Some(req) = rx.recv().await {
        match req {
            Req::Publish { id, ports, reply } => {
                let Some(l) = link.as_ref().filter(|l| !l.is_down()) else {
                    let _ = reply.send(Err(
                        "the machine's host is not connected, so the port cannot be published: run 'berth machine start' and try again".into(),
                    ));
                    continue;
                };
                let mut got = Vec::new();
                let mut failed = None;
                let had = held.get(&id);
                let new = ports
                    .iter()
                    .filter(|p| !had.is_some_and(|h| h.iter().any(|(q, _)| q == *p)));
                for p in new {
                    match publish_one(l, p).await {
                        Ok(s) => got.push((*p, s)),
                        Err(e) => {
                            failed = Some(e);
                            break;
                        }
                    }
                }
                match failed {
                    // All or none: the streams opened so far close with `got`.
                    Some(e) => {
                        let _ = reply.send(Err(e));
                    }
                    None => {
                        held.entry(id).or_default().extend(got);
                        let _ = reply.send(Ok(()));
                    }
                }
            }
            Req::Watch { id, dirs } => {
                let Some(l) = link.as_ref().filter(|l| !l.is_down()) else {
                    continue;
                };
                for dir in dirs {
                    if watched.get(&id).is_some_and(|w| w.iter().any(|w| w.dir == dir)) {
                        continue;
                    }
                    let task = watch_one(l, &dir).await;
                    watched.entry(id.clone()).or_default().push(Watched { dir, task });
                }
            }
            Req::Release(id) => {
                held.remove(&id);
                watched.remove(&id);
            }
            Req::Link(l) => {
                for w in watched.values_mut().flatten() {
                    w.task = watch_one(&l, &w.dir).await;
                }
                for streams in held.values_mut() {
                    for (p, s) in streams.iter_mut() {
                        match publish_one(&l, p).await {
                            Ok(new) => *s = new,
                            Err(e) => eprintln!("berth-guest: port {} not published again: {e}", p.host_port),
                        }
                    }
                }
                link = Some(l);
            }
        }
    }
}

/// A shared folder watched for a container; dropping it stops the watch.
struct Watched {
    dir: std::path::PathBuf,
    task: Option<tokio::task::AbortHandle>,
}

impl Drop for Watched {
    fn drop(&mut self) {
        if let Some(t) = &self.task {
            t.abort();
        }
    }
}

async fn watch_one(link: &Link, dir: &std::path::Path) -> Option<tokio::task::AbortHandle> {
    match crate::watch::watch(link, dir).await {
        Ok(t) => Some(t),
        Err(e) => {
            eprintln!(
                "berth-guest: changes made on the host to {} are not announced here: {e}",
                dir.display()
            );
            None
        }
    }
}

/// Connects to the guest's own listener for a published port, marked so that the
/// host-loopback rule does not send it back to the host.
pub async fn connect_local(ip: std::net::IpAddr, port: u16) -> std::io::Result<tokio::net::TcpStream> {
    let ip = if ip.is_unspecified() {
        std::net::IpAddr::from([127, 0, 0, 1])
    } else {
        ip
    };
    let socket = match ip {
        std::net::IpAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        std::net::IpAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    nix::sys::socket::setsockopt(&socket, nix::sys::socket::sockopt::Mark, &MARK)
        .map_err(std::io::Error::from)?;
    socket.connect(std::net::SocketAddr::new(ip, port)).await
}

/// Relays one connection (or UDP flow) the host accepted to the guest's listener.
pub async fn relay_connect(
    stream: berth_link::Stream,
    proto: berth_containers::Proto,
    ip: std::net::IpAddr,
    port: u16,
) {
    if proto == berth_containers::Proto::Udp {
        return relay_udp(stream, ip, port).await;
    }
    match connect_local(ip, port).await {
        Ok(mut conn) => {
            let _ = conn.set_nodelay(true);
            let _ = stream.splice(&mut conn).await;
            let _ = conn.shutdown().await;
        }
        Err(e) => {
            stream
                .refuse(&format!("nothing listens on {ip}:{port} in the guest: {e}"))
                .await
        }
    }
}

/// A UDP socket connected to the guest's listener for a published UDP port, marked like
/// [`connect_local`]'s.
fn udp_local(ip: std::net::IpAddr, port: u16) -> std::io::Result<tokio::net::UdpSocket> {
    let ip = if ip.is_unspecified() {
        std::net::IpAddr::from([127, 0, 0, 1])
    } else {
        ip
    };
    let any: std::net::SocketAddr = match ip {
        std::net::IpAddr::V4(_) => ([0, 0, 0, 0], 0).into(),
        std::net::IpAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = std::net::UdpSocket::bind(any)?;
    nix::sys::socket::setsockopt(&socket, nix::sys::socket::sockopt::Mark, &MARK)
        .map_err(std::io::Error::from)?;
    socket.connect((ip, port))?;
    socket.set_nonblocking(true)?;
    tokio::net::UdpSocket::from_std(socket)
}

/// Relays one UDP flow: datagrams from the stream go to the guest's listener, its answers
/// come back on the stream, until either end stops or the flow is idle for [`UDP_IDLE`].
async fn relay_udp(stream: berth_link::Stream, ip: std::net::IpAddr, port: u16) {
    let socket = match udp_local(ip, port) {
        Ok(s) => s,
        Err(e) => {
            return stream
                .refuse(&format!("cannot reach {ip}:{port}/udp in the guest: {e}"))
                .await
        }
    };
    let (mine, theirs) = tokio::io::duplex(2 * berth_link::datagram::MAX);
    let splice = tokio::spawn(stream.splice(theirs));
    let (mut r, mut w) = tokio::io::split(mine);
    let mut from_host = Vec::new();
    let mut from_guest = vec![0u8; berth_link::datagram::MAX];
    loop {
        tokio::select! {
            got = berth_link::datagram::read(&mut r, &mut from_host) => match got {
                Ok(true) => { let _ = socket.send(&from_host).await; }
                _ => break,
            },
            got = socket.recv(&mut from_guest) => match got {
                Ok(n) => {
                    if berth_link::datagram::write(&mut w, &from_guest[..n]).await.is_err() {
                        break;
                    }
                }
                // An ICMP error for an earlier datagram (nothing listens yet): keep the flow.
                Err(_) => continue,
            },
            _ = tokio::time::sleep(UDP_IDLE) => break,
        }
    }
    let _ = w.shutdown().await;
    drop((r, w));
    let _ = splice.await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_publish_target_names_everything() {
        let p = berth_containers::PortSpec {
            host_ip: "127.0.0.1".parse().unwrap(),
            host_port: 8080,
            container_port: 5000,
            proto: berth_containers::Proto::Tcp,
        };
        assert_eq!(publish_target(&p), "publish tcp 127.0.0.1 8080 5000");
    }
}
