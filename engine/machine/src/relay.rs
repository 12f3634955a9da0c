//! The relay (`berth machine __relay NAME`): the host's end of a machine's link. It waits
//! for the guest's ready line within the boot's time limit, then serves the Engine API on
//! the machine's socket and relays each connection into the guest.
//!
//! Its first stdout line tells `machine start` how the boot went: `ready`, or
//! `failed <one sentence>`. Its stderr is `relay.log`.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth_link::{Link, Side};
use tokio::net::{UnixListener, UnixStream};

use crate::{Machines, Paths};

/// How long a stopping relay waits for the guest to power off before QEMU is ended.
const POWEROFF_LIMIT: Duration = Duration::from_secs(20);

fn tell_start(line: &str) {
    let mut out = std::io::stdout();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
    // From now on stdout goes nowhere: `machine start` has what it waited for and exits.
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        let _ = nix::unistd::dup2_stdout(&null);
    }
}

/// Completes when QEMU (`pid`) has ended.
async fn qemu_ended(pid: i32) {
    let Some(watch) = berth_host::watch::ProcWatch::open(pid) else {
        return;
    };
    let _ = tokio::task::spawn_blocking(move || loop {
        match berth_host::watch::wait_any(&[&watch], None, Duration::from_secs(3600)) {
            Ok(ended) if !ended.is_empty() => break,
            Err(_) => break,
            _ => {}
        }
    })
    .await;
}

fn last_line(path: &Path) -> String {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| t.lines().rev().find(|l| !l.trim().is_empty()).map(str::to_string))
        .unwrap_or_default()
}

/// Connects to the link and reads the ready line, within `limit`.
async fn connect(paths: &Paths, qemu: i32, limit: Duration) -> Result<(UnixStream, Duration), String> {
    let begun = Instant::now();
    let attempt = async {
        // QEMU creates the socket within milliseconds of starting.
        let mut conn = loop {
            match UnixStream::connect(paths.link()).await {
                Ok(c) => break c,
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        };
        berth_link::read_ready(&mut conn).await.map(|_| conn)
    };
    tokio::select! {
        r = tokio::time::timeout(limit, attempt) => match r {
            Ok(Ok(conn)) => Ok((conn, begun.elapsed())),
            Ok(Err(e)) => Err(format!("the link closed before the guest was ready ({e})")),
            Err(_) => Err(format!(
                "the guest was not ready within {} s (a hung accelerator, or a machine too slow for this limit)",
                limit.as_secs()
            )),
        },
        _ = qemu_ended(qemu) => {
            let said = last_line(&paths.qemu_log());
            Err(if said.is_empty() { "QEMU exited".to_string() } else { format!("QEMU exited: {said}") })
        }
    }
}

fn bind_api(paths: &Paths) -> std::io::Result<UnixListener> {
    let _ = std::fs::remove_file(paths.api());
    let l = UnixListener::bind(paths.api())?;
    std::fs::set_permissions(paths.api(), std::fs::Permissions::from_mode(0o600))?;
    Ok(l)
}

/// Runs the relay; returns its exit code.
pub async fn run(machines: &Machines, name: &str, qemu: i32, limit: Duration) -> i32 {
    let paths = machines.paths(name);
    let (conn, boot) = match connect(&paths, qemu, limit).await {
        Ok(c) => c,
        Err(why) => {
            eprintln!("relay: {why}");
            tell_start(&format!("failed {why}"));
            return 1;
        }
    };
    let listener = match bind_api(&paths) {
        Ok(l) => l,
        Err(e) => {
            let why = format!("cannot listen on {} ({e})", paths.api().display());
            tell_start(&format!("failed {why}"));
            return 1;
        }
    };
    let _ = std::fs::write(paths.relay_pid(), format!("{}\n", std::process::id()));
    let (r, w) = conn.into_split();
    let (link, incoming) = Link::new(r, w, Side::Host);
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let shares = crate::qemu::shares(home.as_deref(), &std::env::temp_dir());
    tokio::spawn(serve_guest_streams(link.clone(), incoming, shares));
    set_guest_clock(&link).await;
    eprintln!(
        "relay: guest ready after {} ms; serving {}",
        boot.as_millis(),
        paths.api().display()
    );
    tell_start("ready");

    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("relay: cannot watch SIGTERM: {e}");
            return 1;
        }
    };
    // The guest's clock is set again whenever the host's jumps (after the host sleeps).
    let mut jumps = match crate::clock::ClockJumps::new() {
        Ok(j) => Some(j),
        Err(e) => {
            eprintln!("relay: the guest's clock is set at start only ({e})");
            None
        }
    };
    let code = loop {
        tokio::select! {
            jumped = async { jumps.as_mut()?.next().await.ok() }, if jumps.is_some() => {
                if jumped.is_some() {
                    eprintln!("relay: the host's clock jumped (a wake from sleep or a set); setting the guest's");
                    set_guest_clock(&link).await;
                } else {
                    eprintln!("relay: cannot watch the host's clock any longer; the guest's is set at start only");
                    jumps = None;
                }
            }
            accepted = listener.accept() => {
                let Ok((client, _)) = accepted else { continue };
                let link = link.clone();
                tokio::spawn(async move {
                    match link.open("api").await {
                        Ok(stream) => { let _ = stream.splice(client).await; }
                        Err(e) => eprintln!("relay: {e}"),
                    }
                });
            }
            _ = link.closed() => {
                eprintln!("relay: the link closed (the guest powered off or QEMU ended)");
                break 0;
            }
            _ = term.recv() => {
                eprintln!("relay: stopping the machine");
                power_off(&link, qemu).await;
                break 0;
            }
        }
    };
    let _ = std::fs::remove_file(paths.api());
    let _ = std::fs::remove_file(paths.relay_pid());
    code
}

/// A port the guest asks to publish: `publish <proto> <ip> <port> <container-port>`.
#[derive(Debug, PartialEq, Eq)]
pub struct Publish {
    pub udp: bool,
    pub ip: std::net::IpAddr,
    pub port: u16,
    pub container_port: u16,
}

impl Publish {
    pub fn parse(target: &str) -> Option<Publish> {
        let w: Vec<&str> = target.split_whitespace().collect();
        match w.as_slice() {
            ["publish", proto @ ("tcp" | "udp"), ip, port, cport] => Some(Publish {
                udp: *proto == "udp",
                ip: ip.parse().ok()?,
                port: port.parse().ok()?,
                container_port: cport.parse().ok()?,
            }),
            _ => None,
        }
    }

    fn proto(&self) -> &'static str {
        if self.udp {
            "udp"
        } else {
            "tcp"
        }
    }

    /// What the guest is told when the host cannot bind the port.
    pub fn refusal(&self, e: &std::io::Error) -> String {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            let (what, suffix) = if self.udp {
                ("UDP port", "/udp")
            } else {
                ("port", "")
            };
            format!(
                "{what} {} is already in use on {} of this computer — pick another host port, e.g. -p {}:{}{suffix}",
                self.port,
                self.ip,
                self.port.wrapping_add(1).max(1024),
                self.container_port
            )
        } else {
            format!(
                "this computer cannot listen on {}:{} ({e}) — pick another host port",
                self.ip, self.port
            )
        }
    }
}

/// The streams the guest opens: published ports, and watches of shared folders.
async fn serve_guest_streams(link: Link, mut incoming: berth_link::Incoming, shares: Vec<PathBuf>) {
    while let Some((target, stream)) = incoming.next().await {
        if let Some(hex_path) = target.strip_prefix("watch ") {
            match berth_link::paths::decode(hex_path) {
                Some(p) if crate::watch::allowed(&p, &shares) => {
                    tokio::spawn(crate::watch::serve(stream, p));
                }
                _ => {
                    stream
                        .refuse("only folders shared with the machine can be watched")
                        .await
                }
            }
            continue;
        }
        match Publish::parse(&target) {
            Some(p) if p.udp => {
                tokio::spawn(publish_udp(link.clone(), stream, p));
            }
            Some(p) => {
                tokio::spawn(publish(link.clone(), stream, p));
            }
            None => {
                stream
                    .refuse(&format!("the host knows no target '{target}'"))
                    .await
            }
        }
    }
}

/// Answers the guest's request to publish `p`: `ok` once `bound` holds the host's port, or
/// `error SENTENCE`. Returns the host's end of the request's stream (it ends when the guest
/// lets go of the port) and the bound socket.
async fn answer<T>(
    stream: berth_link::Stream,
    p: &Publish,
    bound: std::io::Result<T>,
) -> Option<(tokio::io::DuplexStream, T)> {
    use tokio::io::AsyncWriteExt;
    let (mut mine, theirs) = tokio::io::duplex(4096);
    tokio::spawn(stream.splice(theirs));
    match bound {
        Ok(socket) => mine.write_all(b"ok\n").await.ok().map(|()| (mine, socket)),
        Err(e) => {
            let _ = mine
                .write_all(format!("error {}\n", p.refusal(&e)).as_bytes())
                .await;
            let _ = mine.shutdown().await;
            None
        }
    }
}

/// Binds a published port on the host for as long as the guest keeps its stream open, and
/// relays each connection into the guest.
async fn publish(link: Link, stream: berth_link::Stream, p: Publish) {
    use tokio::io::AsyncReadExt;
    let bound = tokio::net::TcpListener::bind((p.ip, p.port)).await;
    let Some((mut mine, listener)) = answer(stream, &p, bound).await else {
        return;
    };
    eprintln!("relay: publishing {}:{}", p.ip, p.port);
    let mut byte = [0u8; 1];
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((client, _)) = accepted else { continue };
                let _ = client.set_nodelay(true);
                let link = link.clone();
                let target = format!("connect {} {} {}", p.proto(), p.ip, p.port);
                tokio::spawn(async move {
                    if let Ok(s) = link.open(&target).await {
                        let _ = s.splice(client).await;
                    }
                });
            }
            // The guest closed the stream (the container's run ended) or the link went down.
            _ = mine.read(&mut byte) => break,
        }
    }
    eprintln!("relay: no longer publishing {}:{}", p.ip, p.port);
}

/// How long a UDP flow lives without a datagram either way (as the guest's end).
const UDP_IDLE: Duration = Duration::from_secs(60);
/// The most client addresses one published UDP port relays at once.
const UDP_MAX_FLOWS: usize = 1024;

/// Binds a published UDP port on the host for as long as the guest keeps its stream open.
/// Each client address is one flow: a link stream `connect udp IP PORT` of datagrams, whose
/// answers go back to that client.
async fn publish_udp(link: Link, stream: berth_link::Stream, p: Publish) {
    use std::collections::HashMap;
    use std::sync::Arc;
    use tokio::io::AsyncReadExt;
    let bound = tokio::net::UdpSocket::bind((p.ip, p.port)).await.map(Arc::new);
    let Some((mut mine, socket)) = answer(stream, &p, bound).await else {
        return;
    };
    eprintln!("relay: publishing {}:{}/udp", p.ip, p.port);
    let mut flows: HashMap<std::net::SocketAddr, tokio::sync::mpsc::Sender<Vec<u8>>> = HashMap::new();
    let mut buf = vec![0u8; berth_link::datagram::MAX];
    let mut byte = [0u8; 1];
    loop {
        tokio::select! {
            got = socket.recv_from(&mut buf) => {
                // An ICMP error for an earlier answer: the flows go on.
                let Ok((n, client)) = got else { continue };
                let datagram = buf[..n].to_vec();
                if let Some(tx) = flows.get(&client) {
                    match tx.try_send(datagram) {
                        Ok(()) => continue,
                        // A full queue drops the datagram, as a busy UDP path does.
                        Err(tokio::sync::mpsc::error::TrySendError::Full(_)) => continue,
                        Err(tokio::sync::mpsc::error::TrySendError::Closed(d)) => {
                            flows.remove(&client);
                            start_flow(&link, &p, &socket, client, d, &mut flows);
                        }
                    }
                } else {
                    flows.retain(|_, tx| !tx.is_closed());
                    if flows.len() < UDP_MAX_FLOWS {
                        start_flow(&link, &p, &socket, client, datagram, &mut flows);
                    }
                }
            }
            // The guest closed the stream (the container's run ended) or the link went down.
            _ = mine.read(&mut byte) => break,
        }
    }
    eprintln!("relay: no longer publishing {}:{}/udp", p.ip, p.port);
}

/// Starts one UDP flow for `client`, whose first datagram is `first`.
fn start_flow(
    link: &Link,
    p: &Publish,
    socket: &std::sync::Arc<tokio::net::UdpSocket>,
    client: std::net::SocketAddr,
    first: Vec<u8>,
    flows: &mut std::collections::HashMap<std::net::SocketAddr, tokio::sync::mpsc::Sender<Vec<u8>>>,
) {
    use tokio::io::AsyncWriteExt;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(256);
    let _ = tx.try_send(first);
    flows.insert(client, tx);
    let (link, socket) = (link.clone(), socket.clone());
    let target = format!("connect {} {} {}", p.proto(), p.ip, p.port);
    tokio::spawn(async move {
        let Ok(stream) = link.open(&target).await else {
            return;
        };
        let (mine, theirs) = tokio::io::duplex(2 * berth_link::datagram::MAX);
        let splice = tokio::spawn(stream.splice(theirs));
        let (mut r, mut w) = tokio::io::split(mine);
        let mut answer = Vec::new();
        loop {
            tokio::select! {
                d = rx.recv() => match d {
                    Some(d) => if berth_link::datagram::write(&mut w, &d).await.is_err() { break },
                    None => break,
                },
                got = berth_link::datagram::read(&mut r, &mut answer) => match got {
                    Ok(true) => { let _ = socket.send_to(&answer, client).await; }
                    _ => break,
                },
                _ = tokio::time::sleep(UDP_IDLE) => break,
            }
        }
        rx.close();
        let _ = w.shutdown().await;
        drop((r, w));
        let _ = splice.await;
    });
}

async fn set_guest_clock(link: &Link) {
    let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    if let Ok(s) = link.open(&format!("time {now}")).await {
        let _ = tokio::time::timeout(Duration::from_secs(5), s.splice(tokio::io::empty())).await;
    }
}

async fn power_off(link: &Link, qemu: i32) {
    if let Ok(s) = link.open("poweroff").await {
        let _ = tokio::time::timeout(Duration::from_secs(5), s.splice(tokio::io::empty())).await;
    }
    if tokio::time::timeout(POWEROFF_LIMIT, qemu_ended(qemu))
        .await
        .is_err()
    {
        eprintln!(
            "relay: the guest did not power off within {} s; ending QEMU",
            POWEROFF_LIMIT.as_secs()
        );
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(qemu),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_targets_parse_and_refusals_are_sentences() {
        let p = Publish::parse("publish tcp 127.0.0.1 8080 5000").unwrap();
        assert_eq!(p.port, 8080);
        assert_eq!(p.container_port, 5000);
        assert!(!p.udp);
        let u = Publish::parse("publish udp 127.0.0.1 5353 53").unwrap();
        assert!(u.udp);
        assert_eq!(u.proto(), "udp");
        assert_eq!(Publish::parse("publish sctp 127.0.0.1 8080 5000"), None);
        assert_eq!(Publish::parse("publish tcp x 8080 5000"), None);
        let e = std::io::Error::from(std::io::ErrorKind::AddrInUse);
        assert_eq!(
            p.refusal(&e),
            "port 8080 is already in use on 127.0.0.1 of this computer — pick another host port, e.g. -p 8081:5000"
        );
        assert_eq!(
            u.refusal(&e),
            "UDP port 5353 is already in use on 127.0.0.1 of this computer — pick another host port, e.g. -p 5354:53/udp"
        );
    }
}
