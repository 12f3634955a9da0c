//! The guest's engine (`berth guest-engine`, PID 1's child): the ordinary engine on the
//! data disk, and the guest's end of the host link.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use berth_link::{Link, Side, Stream};
use tokio::sync::Notify;

use crate::{DATA_ROOT, EXIT_POWEROFF, PORT_NAME};

/// How often the data disk gives unused blocks back to the host's sparse file.
const TRIM_EVERY: Duration = Duration::from_secs(3600);

/// What a stream the host opened asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Target {
    Api,
    Connect {
        proto: berth_containers::Proto,
        ip: std::net::IpAddr,
        port: u16,
    },
    Time {
        unix_nanos: i128,
    },
    PowerOff,
}

impl Target {
    pub fn parse(s: &str) -> Option<Target> {
        let mut words = s.split_whitespace();
        match (words.next()?, words.next(), words.next()) {
            ("api", None, _) => Some(Target::Api),
            ("connect", Some(proto), Some(ip)) => {
                let proto = match proto {
                    "tcp" => berth_containers::Proto::Tcp,
                    "udp" => berth_containers::Proto::Udp,
                    _ => return None,
                };
                let port = words.next()?.parse().ok()?;
                if words.next().is_some() {
                    return None;
                }
                Some(Target::Connect {
                    proto,
                    ip: ip.parse().ok()?,
                    port,
                })
            }
            ("poweroff", None, _) => Some(Target::PowerOff),
            ("time", Some(n), None) => n.parse().ok().map(|unix_nanos| Target::Time { unix_nanos }),
            _ => None,
        }
    }
}

/// Runs the engine and the link until the host asks for a power off; returns the exit
/// code for PID 1.
pub async fn run(berth: PathBuf) -> i32 {
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    let shares = crate::init::parse_shares(&cmdline)
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    let ports = crate::ports::LinkPorts::start(shares);
    let opts = berth_api::ServerOptions {
        root: PathBuf::from(DATA_ROOT),
        socket: None,
        tcp: None,
        shim_exe: berth,
        insecure_registries: Vec::new(),
        registry_mirrors: Vec::new(),
        host_ports: Some(std::sync::Arc::new(ports.clone())),
        host_paths: crate::init::host_paths(&cmdline),
    };
    let mut told_ready = None;
    let server = match berth_api::Server::start(opts, berth_api::Wait::Yes).await {
        Ok(s) if std::env::var_os(crate::init::SETUP_PENDING).is_some() => {
            let (setup, ready) = setup_pair();
            told_ready = ready;
            s.hold_changes_until(setup)
        }
        Ok(s) => s,
        Err(e) => {
            eprintln!("berth-guest: the engine cannot start: {e}");
            return 1;
        }
    };
    let api = server.root_socket().to_path_buf();
    let poweroff = Arc::new(Notify::new());
    let serving = {
        let poweroff = poweroff.clone();
        tokio::spawn(server.run(async move { poweroff.notified().await }))
    };
    tokio::spawn(async {
        let mut every = tokio::time::interval(TRIM_EVERY);
        every.tick().await;
        loop {
            every.tick().await;
            let _ = tokio::process::Command::new("/bin/busybox")
                .args(["fstrim", DATA_ROOT])
                .status()
                .await;
        }
    });
    // Before the host hears "ready".
    let _ = tokio::time::timeout(Duration::from_secs(30), tidy_after_power_loss(&api)).await;
    serve_link(&api, &poweroff, &ports, told_ready).await;
    // The server's shutdown future takes the permit `notify_one` left.
    let _ = tokio::time::timeout(Duration::from_secs(10), serving).await;
    EXIT_POWEROFF
}

/// PID 1's setup socket on standard input: the receiver says `true` once PID 1 closes its
/// end (it has loaded the modules containers need, brought the network up and mounted the
/// shares, or died); the stream is where the engine says it is ready. Standard input is
/// `/dev/null` from then on, so nothing the engine starts inherits the socket.
fn setup_pair() -> (
    tokio::sync::watch::Receiver<bool>,
    Option<std::os::unix::net::UnixStream>,
) {
    let (done, setup) = tokio::sync::watch::channel(false);
    let Ok(pair) = nix::unistd::dup(std::io::stdin()).map(std::os::unix::net::UnixStream::from) else {
        let _ = done.send(true);
        return (setup, None);
    };
    let ready = pair.try_clone().ok();
    if let Ok(null) = std::fs::File::open("/dev/null") {
        let _ = nix::unistd::dup2_stdin(null);
    }
    tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let mut buf = [0u8; 64];
        while matches!((&pair).read(&mut buf), Ok(n) if n > 0) {}
        let _ = done.send(true);
    });
    (setup, ready)
}

/// Serves the link for as long as the machine runs: each host that connects (a relay that
/// started again) is greeted with a ready line and a fresh link. Returns when the host asks
/// for a power off.
async fn serve_link(
    api: &Path,
    poweroff: &Notify,
    ports: &crate::ports::LinkPorts,
    mut told_ready: Option<std::os::unix::net::UnixStream>,
) {
    let port = loop {
        match crate::find_port(Path::new("/sys/class/virtio-ports"), Path::new("/dev"), PORT_NAME) {
            Some(p) => break p,
            None => {
                eprintln!("berth-guest: no virtio-serial port named {PORT_NAME} yet");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let version = format!("berth {}", env!("CARGO_PKG_VERSION"));
    loop {
        let file = match std::fs::OpenOptions::new().read(true).write(true).open(&port) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("berth-guest: cannot open {}: {e}", port.display());
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let (reader, writer) = match file.try_clone() {
            Ok(w) => (tokio::fs::File::from_std(file), tokio::fs::File::from_std(w)),
            Err(e) => {
                eprintln!("berth-guest: cannot use {}: {e}", port.display());
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let mut writer = writer;
        // Blocks until a host is connected (virtio-serial holds writes until then).
        if let Err(e) = berth_link::write_ready(&mut writer, &version).await {
            eprintln!("berth-guest: cannot greet the host: {e}");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        let uptime = std::fs::read_to_string("/proc/uptime").unwrap_or_default();
        let uptime = uptime.split_whitespace().next().unwrap_or("?").to_string();
        eprintln!("berth-guest: ready, link up ({uptime} s after the kernel started)");
        // PID 1 sets up the rest now.
        if let Some(pid1) = told_ready.take() {
            use std::io::Write;
            let _ = (&pid1).write_all(b"r");
        }
        let (link, mut incoming) = Link::new(reader, writer, Side::Guest);
        ports.set_link(link.clone());
        while let Some((target, stream)) = incoming.next().await {
            match Target::parse(&target) {
                Some(Target::Api) => {
                    let api = api.to_path_buf();
                    tokio::spawn(relay_api(api, stream));
                }
                Some(Target::Connect { proto, ip, port }) => {
                    tokio::spawn(crate::ports::relay_connect(stream, proto, ip, port));
                }
                Some(Target::Time { unix_nanos }) => {
                    set_clock(unix_nanos);
                    drop(stream.splice(tokio::io::empty()).await);
                }
                Some(Target::PowerOff) => {
                    eprintln!("berth-guest: the host asks for a power off");
                    drop(stream.splice(tokio::io::empty()).await);
                    poweroff.notify_one();
                    return;
                }
                None => {
                    stream
                        .refuse(&format!("the guest knows no target '{target}'"))
                        .await
                }
            }
        }
        // The host went away (a relay killed): the port reads EOF until one connects again.
        // The last frames of this link are written (to the next host) before its ready line.
        link.finished().await;
        drop(link);
        eprintln!("berth-guest: the host left the link; waiting for it again");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Runs that were cut by a power loss (the VMM killed) have no shim left to release them:
/// the engine's list releases every dead run it finds, so one is asked for at start.
async fn tidy_after_power_loss(api: &Path) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    if let Ok(mut c) = tokio::net::UnixStream::connect(api).await {
        let req = "GET /containers/json?all=1 HTTP/1.1\r\nHost: berth\r\nConnection: close\r\n\r\n";
        if c.write_all(req.as_bytes()).await.is_ok() {
            let mut sink = Vec::new();
            let _ = c.read_to_end(&mut sink).await;
        }
    }
}

async fn relay_api(api: PathBuf, stream: Stream) {
    match tokio::net::UnixStream::connect(&api).await {
        Ok(conn) => {
            let _ = stream.splice(conn).await;
        }
        Err(e) => {
            stream
                .refuse(&format!(
                    "the guest's engine does not answer on {}: {e}",
                    api.display()
                ))
                .await
        }
    }
}

fn set_clock(unix_nanos: i128) {
    let ts = nix::sys::time::TimeSpec::new(
        (unix_nanos / 1_000_000_000) as i64,
        (unix_nanos % 1_000_000_000) as i64,
    );
    if let Err(e) = nix::time::clock_settime(nix::time::ClockId::CLOCK_REALTIME, ts) {
        eprintln!("berth-guest: cannot set the clock: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse() {
        assert_eq!(Target::parse("api"), Some(Target::Api));
        assert_eq!(Target::parse("poweroff"), Some(Target::PowerOff));
        assert_eq!(
            Target::parse("time 1764720000123456789"),
            Some(Target::Time {
                unix_nanos: 1_764_720_000_123_456_789
            })
        );
        assert_eq!(
            Target::parse("connect tcp 0.0.0.0 8080"),
            Some(Target::Connect {
                proto: berth_containers::Proto::Tcp,
                ip: "0.0.0.0".parse().unwrap(),
                port: 8080
            })
        );
        assert_eq!(
            Target::parse("connect udp 127.0.0.1 5353"),
            Some(Target::Connect {
                proto: berth_containers::Proto::Udp,
                ip: "127.0.0.1".parse().unwrap(),
                port: 5353
            })
        );
        assert_eq!(Target::parse("connect tcp 0.0.0.0 x"), None);
        assert_eq!(Target::parse("connect sctp 0.0.0.0 80"), None);
        assert_eq!(Target::parse("connect tcp 0.0.0.0 80 extra"), None);
        assert_eq!(Target::parse("time"), None);
        assert_eq!(Target::parse("time x"), None);
        assert_eq!(Target::parse("api extra"), None);
        assert_eq!(Target::parse(""), None);
    }
}
