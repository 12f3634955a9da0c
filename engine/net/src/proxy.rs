//! The userspace port proxy (the docker-proxy idea): every published host socket gets a
//! thread that forwards to container_ip:container_port. TCP uses two threads per connection
//! and passes half-closes through with shutdown(2); UDP keeps one upstream socket per client
//! address and drops it after a minute of silence.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::ports::{BoundPort, Listener, PortSpec};
use crate::NetError;

const TICK: Duration = Duration::from_millis(200);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const UDP_IDLE: Duration = Duration::from_secs(60);
const UDP_MAX_FLOWS: usize = 4096;
const STACK: usize = 128 * 1024;

#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    next: AtomicU64,
    /// Live TCP connections (both sockets), so stopping can shut them down.
    conns: Mutex<HashMap<u64, (TcpStream, TcpStream)>>,
    /// The namespace the upstream sockets are made in when it is not this process's (a
    /// rootless engine's: the user's own, where the bridges are; see `netns::home`).
    home: Option<std::fs::File>,
}

impl Shared {
    /// Moves the calling thread into `home`, so the sockets it makes from now on live there
    /// (the listeners stay on the host's addresses: they were bound before).
    fn enter_home(&self) -> bool {
        match &self.home {
            None => true,
            Some(ns) => nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).is_ok(),
        }
    }
}

/// The running proxies of one container. Dropping it (or calling [`stop`](Self::stop)) closes
/// the host sockets and every forwarded connection.
pub struct ProxySet {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    ports: Vec<PortSpec>,
}

impl std::fmt::Debug for ProxySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxySet").field("ports", &self.ports).finish()
    }
}

impl ProxySet {
    /// The published ports, with their real host ports.
    pub fn ports(&self) -> &[PortSpec] {
        &self.ports
    }

    /// Number of TCP connections being forwarded right now.
    pub fn active_connections(&self) -> usize {
        self.shared.conns.lock().map(|c| c.len()).unwrap_or(0)
    }

    /// Stops accepting, closes all connections and waits for the listener threads.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Ok(conns) = self.shared.conns.lock() {
            for (a, b) in conns.values() {
                let _ = a.shutdown(Shutdown::Both);
                let _ = b.shutdown(Shutdown::Both);
            }
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for ProxySet {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn spawn(name: String, f: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>, NetError> {
    std::thread::Builder::new()
        .name(name)
        .stack_size(STACK)
        .spawn(f)
        .map_err(|e| NetError::sys("start a port proxy thread", e))
}

/// Starts forwarding every bound port to `container_ip`.
pub fn spawn_proxies(bound: Vec<BoundPort>, container_ip: Ipv4Addr) -> Result<ProxySet, NetError> {
    let home = match crate::netns::home() {
        None => None,
        Some(path) => Some(
            std::fs::File::open(&path).map_err(|e| NetError::io("open the network namespace", path, e))?,
        ),
    };
    let shared = Arc::new(Shared {
        home,
        ..Shared::default()
    });
    let mut set = ProxySet {
        shared: shared.clone(),
        threads: Vec::new(),
        ports: Vec::new(),
    };
    for port in bound {
        let target = SocketAddr::new(IpAddr::V4(container_ip), port.spec.container_port);
        set.ports.push(port.spec);
        let shared = shared.clone();
        let name = format!("proxy-{}", port.spec.host_port);
        let handle = match port.listener {
            Listener::Tcp(l) => spawn(name, move || tcp_accept_loop(l, target, shared))?,
            Listener::Udp(u) => spawn(name, move || udp_loop(u, target, shared))?,
        };
        set.threads.push(handle);
    }
    Ok(set)
}

fn readable(fd: &impl AsFd) -> bool {
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    matches!(poll(&mut fds, PollTimeout::from(TICK.as_millis() as u16)), Ok(n) if n > 0)
}

fn tcp_accept_loop(listener: TcpListener, target: SocketAddr, shared: Arc<Shared>) {
    let _ = listener.set_nonblocking(true);
    while !shared.stop.load(Ordering::SeqCst) {
        if !readable(&listener) {
            continue;
        }
        let client = match listener.accept() {
            Ok((c, _)) => c,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => continue,
            Err(_) => {
                // EMFILE and friends: back off instead of spinning.
                std::thread::sleep(TICK);
                continue;
            }
        };
        let _ = client.set_nonblocking(false);
        let shared = shared.clone();
        // If no thread can be started the connection is simply closed.
        let _ = spawn("proxy-conn".into(), move || {
            tcp_connection(client, target, shared)
        });
    }
}

fn tcp_connection(client: TcpStream, target: SocketAddr, shared: Arc<Shared>) {
    if !shared.enter_home() {
        return;
    }
    let Ok(upstream) = TcpStream::connect_timeout(&target, CONNECT_TIMEOUT) else {
        return; // dropping `client` closes it, as docker-proxy does
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let id = shared.next.fetch_add(1, Ordering::Relaxed);
    let (Ok(c2), Ok(u2), Ok(c3), Ok(u3)) = (
        client.try_clone(),
        upstream.try_clone(),
        client.try_clone(),
        upstream.try_clone(),
    ) else {
        return;
    };
    if let Ok(mut conns) = shared.conns.lock() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        conns.insert(id, (c3, u3));
    }
    let back = spawn("proxy-back".into(), move || pipe(u2, c2));
    pipe(client, upstream);
    if let Ok(back) = back {
        let _ = back.join();
    }
    if let Ok(mut conns) = shared.conns.lock() {
        conns.remove(&id);
    }
}

/// Copies `from` to `to` until EOF, then half-closes `to`; on an error both are torn down.
fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) => {
                let _ = to.shutdown(Shutdown::Write);
                return;
            }
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    let _ = from.shutdown(Shutdown::Both);
                    let _ = to.shutdown(Shutdown::Both);
                    return;
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => {
                let _ = from.shutdown(Shutdown::Both);
                let _ = to.shutdown(Shutdown::Both);
                return;
            }
        }
    }
}

struct Flow {
    upstream: Arc<UdpSocket>,
    last: Arc<Mutex<Instant>>,
}

fn udp_loop(socket: UdpSocket, target: SocketAddr, shared: Arc<Shared>) {
    if !shared.enter_home() {
        return;
    }
    let socket = Arc::new(socket);
    let _ = socket.set_read_timeout(Some(TICK));
    let flows: Arc<Mutex<HashMap<SocketAddr, Flow>>> = Arc::default();
    let mut buf = vec![0u8; 65536];
    let mut replies = Vec::new();
    while !shared.stop.load(Ordering::SeqCst) {
        let (n, client) = match socket.recv_from(&mut buf) {
            Ok(x) => x,
            Err(_) => continue, // timeout tick, or an ICMP error for an earlier datagram
        };
        let mut map = match flows.lock() {
            Ok(m) => m,
            Err(_) => return,
        };
        if !map.contains_key(&client) {
            if map.len() >= UDP_MAX_FLOWS {
                continue;
            }
            let Ok(up) = UdpSocket::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0)) else {
                continue;
            };
            if up.connect(target).is_err() {
                continue;
            }
            let _ = up.set_read_timeout(Some(TICK));
            let flow = Flow {
                upstream: Arc::new(up),
                last: Arc::new(Mutex::new(Instant::now())),
            };
            let (up, last, sock, fl, sh) = (
                flow.upstream.clone(),
                flow.last.clone(),
                socket.clone(),
                flows.clone(),
                shared.clone(),
            );
            match spawn("proxy-udp".into(), move || {
                udp_replies(up, last, sock, client, fl, sh)
            }) {
                Ok(h) => replies.push(h),
                Err(_) => continue,
            }
            map.insert(client, flow);
        }
        if let Some(flow) = map.get(&client) {
            if let Ok(mut t) = flow.last.lock() {
                *t = Instant::now();
            }
            let _ = flow.upstream.send(&buf[..n]);
        }
        drop(map);
        replies.retain(|h| !h.is_finished());
    }
    for h in replies {
        let _ = h.join();
    }
}

fn udp_replies(
    upstream: Arc<UdpSocket>,
    last: Arc<Mutex<Instant>>,
    socket: Arc<UdpSocket>,
    client: SocketAddr,
    flows: Arc<Mutex<HashMap<SocketAddr, Flow>>>,
    shared: Arc<Shared>,
) {
    let mut buf = vec![0u8; 65536];
    while !shared.stop.load(Ordering::SeqCst) {
        match upstream.recv(&mut buf) {
            Ok(n) => {
                if let Ok(mut t) = last.lock() {
                    *t = Instant::now();
                }
                let _ = socket.send_to(&buf[..n], client);
            }
            Err(_) => {
                let idle = last.lock().map(|t| t.elapsed() > UDP_IDLE).unwrap_or(true);
                if idle {
                    break;
                }
            }
        }
    }
    if let Ok(mut map) = flows.lock() {
        map.remove(&client);
    }
}
