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
    let (link, _incoming) = Link::new(r, w, Side::Host);
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
