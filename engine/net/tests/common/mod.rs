//! Shared fixtures for the kernel tests: a private network (unique bridge `bt<random>`,
//! unique 10.200.x.0/24) in a temporary state/run dir, torn down by a guard even on failure,
//! and small echo servers that live inside a container's network namespace.
#![allow(dead_code)]

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use berth_net::{run_in_netns, NetError, NetworkConfig, NetworkManager};

static NEXT: AtomicU32 = AtomicU32::new(0);

pub struct TestNet {
    pub dir: tempfile::TempDir,
    pub mgr: NetworkManager,
    pub net: NetworkConfig,
    pub ids: Vec<String>,
    pub tag: String,
    /// More networks made by [`TestNet::another_network`], removed by the guard.
    pub extra: Vec<NetworkConfig>,
}

impl TestNet {
    pub fn new() -> TestNet {
        assert!(nix::unistd::geteuid().is_root(), "the kernel tests need root");
        let base = std::process::id() ^ rand::random::<u32>();
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let third = (base.wrapping_add(n * 37)) % 250 + 1;
        let tag = format!("{:08x}", rand::random::<u32>());
        let bridge = format!("bt{tag}");
        let dir = tempfile::tempdir().unwrap();
        let mgr = NetworkManager::new(&dir.path().join("state"), &dir.path().join("run")).unwrap();
        let net = mgr
            .create_network_on_bridge(
                &format!("test-{tag}"),
                Some(&format!("10.200.{third}.0/24")),
                Some(&bridge),
            )
            .unwrap();
        TestNet {
            dir,
            mgr,
            net,
            ids: Vec::new(),
            tag,
            extra: Vec::new(),
        }
    }

    /// A second private network (bridge `bu<tag><n>`, a random 10.202.x.0/24).
    pub fn another_network(&mut self) -> NetworkConfig {
        let n = self.extra.len();
        let third = rand::random::<u8>() % 250 + 1;
        let net = self
            .mgr
            .create_network_on_bridge(
                &format!("test-{}-{n}", self.tag),
                Some(&format!("10.202.{third}.0/24")),
                Some(&format!("bu{}{n}", self.tag)),
            )
            .unwrap();
        self.extra.push(net.clone());
        net
    }

    /// A container id that the guard will detach.
    pub fn id(&mut self, suffix: &str) -> String {
        let id = format!("{}-{suffix}", self.tag);
        self.ids.push(id.clone());
        id
    }

    pub fn run_dir(&self) -> PathBuf {
        self.dir.path().join("run")
    }
}

impl Drop for TestNet {
    fn drop(&mut self) {
        for id in &self.ids {
            let _ = self.mgr.detach(id);
        }
        for net in self.extra.iter().chain(std::iter::once(&self.net)) {
            if self.mgr.remove_network(&net.name).is_err() && link_exists(&net.bridge) {
                let _ = Command::new("ip").args(["link", "del", &net.bridge]).output();
            }
        }
    }
}

pub fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// Runs a command inside a pinned network namespace (nsenter from util-linux).
pub fn in_netns(netns: &Path, args: &[&str]) -> String {
    let out = Command::new("nsenter")
        .arg(format!("--net={}", netns.display()))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn io(e: std::io::Error) -> NetError {
    NetError::Sys {
        what: "test I/O".into(),
        source: e,
    }
}

/// A TCP or UDP echo server whose socket lives in a container's network namespace.
pub struct Echo {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub fn tcp_echo(netns: &Path, port: u16) -> Echo {
    let listener = run_in_netns(netns, move || {
        TcpListener::bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port))).map_err(io)
    })
    .unwrap();
    listener.set_nonblocking(true).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let thread = std::thread::spawn(move || {
        let mut conns = Vec::new();
        while !flag.load(Ordering::SeqCst) {
            match listener.accept() {
                Ok((mut s, _)) => {
                    s.set_nonblocking(false).unwrap();
                    conns.push(std::thread::spawn(move || {
                        // Read everything until the peer half-closes, then answer: this checks
                        // that half-close is passed through the proxy.
                        let mut data = Vec::new();
                        if s.read_to_end(&mut data).is_ok() {
                            let _ = s.write_all(&data);
                        }
                    }));
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(5)),
                Err(_) => break,
            }
        }
        for c in conns {
            let _ = c.join();
        }
    });
    Echo {
        stop,
        thread: Some(thread),
    }
}

pub fn udp_echo(netns: &Path, port: u16) -> Echo {
    let sock = run_in_netns(netns, move || {
        UdpSocket::bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port))).map_err(io)
    })
    .unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let thread = std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while !flag.load(Ordering::SeqCst) {
            if let Ok((n, from)) = sock.recv_from(&mut buf) {
                let mut reply = b"echo:".to_vec();
                reply.extend_from_slice(&buf[..n]);
                let _ = sock.send_to(&reply, from);
            }
        }
    });
    Echo {
        stop,
        thread: Some(thread),
    }
}

/// Connects, sends `msg`, half-closes and returns everything the server sent back.
pub fn roundtrip(addr: SocketAddr, msg: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(msg)?;
    s.shutdown(std::net::Shutdown::Write)?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    Ok(out)
}

/// Same as [`roundtrip`] but from inside a network namespace.
pub fn roundtrip_from(netns: &Path, addr: SocketAddr, msg: &'static [u8]) -> Vec<u8> {
    run_in_netns(netns, move || roundtrip(addr, msg).map_err(io)).unwrap()
}

/// A TCP connection from inside a network namespace that is expected to fail (2 s limit).
pub fn try_roundtrip_from(netns: &Path, addr: SocketAddr) -> Result<(), NetError> {
    run_in_netns(netns, move || {
        std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))
            .map(drop)
            .map_err(io)
    })
}

pub fn nft_ruleset() -> String {
    let out = Command::new("nft").args(["list", "ruleset"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}
