//! The relay (`berth machine __relay NAME`): the host's end of a machine's link. It waits
//! for the guest's ready line within the boot's time limit, then serves the Engine API on
//! the machine's socket and relays each connection into the guest.
//!
//! Its first stdout line tells `machine start` how the boot went: `ready`, or
//! `failed <one sentence>`. Its stderr is `relay.log`.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
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
    tokio::spawn(serve_guest_streams(link.clone(), incoming));
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
    let code = loop {
        tokio::select! {
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
    pub ip: std::net::IpAddr,
    pub port: u16,
    pub container_port: u16,
}

impl Publish {
    pub fn parse(target: &str) -> Option<Publish> {
        let w: Vec<&str> = target.split_whitespace().collect();
        match w.as_slice() {
            ["publish", "tcp", ip, port, cport] => Some(Publish {
                ip: ip.parse().ok()?,
                port: port.parse().ok()?,
                container_port: cport.parse().ok()?,
            }),
            _ => None,
        }
    }

    /// What the guest is told when the host cannot bind the port.
    pub fn refusal(&self, e: &std::io::Error) -> String {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            format!(
                "port {} is already in use on {} of this computer — pick another host port, e.g. -p {}:{}",
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

/// The streams the guest opens: published ports.
async fn serve_guest_streams(link: Link, mut incoming: berth_link::Incoming) {
    while let Some((target, stream)) = incoming.next().await {
        match Publish::parse(&target) {
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

/// Binds a published port on the host for as long as the guest keeps its stream open, and
/// relays each connection into the guest.
async fn publish(link: Link, stream: berth_link::Stream, p: Publish) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut mine, theirs) = tokio::io::duplex(4096);
    tokio::spawn(stream.splice(theirs));
    let listener = match tokio::net::TcpListener::bind((p.ip, p.port)).await {
        Ok(l) => l,
        Err(e) => {
            let _ = mine
                .write_all(format!("error {}\n", p.refusal(&e)).as_bytes())
                .await;
            let _ = mine.shutdown().await;
            return;
        }
    };
    if mine.write_all(b"ok\n").await.is_err() {
        return;
    }
    eprintln!("relay: publishing {}:{}", p.ip, p.port);
    let mut byte = [0u8; 1];
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((client, _)) = accepted else { continue };
                let _ = client.set_nodelay(true);
                let link = link.clone();
                let target = format!("connect tcp {} {}", p.ip, p.port);
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
        assert_eq!(Publish::parse("publish udp 127.0.0.1 8080 5000"), None);
        assert_eq!(Publish::parse("publish tcp x 8080 5000"), None);
        let e = std::io::Error::from(std::io::ErrorKind::AddrInUse);
        assert_eq!(
            p.refusal(&e),
            "port 8080 is already in use on 127.0.0.1 of this computer — pick another host port, e.g. -p 8081:5000"
        );
    }
}
