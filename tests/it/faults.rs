//! The fault campaign: `kill -9` at a random moment of a pull, a build, `run -d`, `rm -f`,
//! a daemon's start and a shim's start. After each round, and after the next command has
//! done what it does by itself, `berth system check` passes and a container that was
//! running all along still runs.
//!
//! Short form (CI): one round of each operation. Long form: `BERTH_FAULT_ROUNDS=100`
//! (scripts/fault-campaign.sh). `BERTH_FAULT_SEED` replays a campaign; the seed is printed.

use std::collections::HashSet;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use berth_tests::berth::Berth;
use berth_tests::fixtures;
use berth_tests::registry::{Mode, Registry};

const OPS: [&str; 6] = ["pull", "build", "run", "rm", "daemon", "shim"];

/// xorshift64*: a reproducible stream of delays from one printed seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1)
    }
}

fn kill9(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

fn spawn(b: &Berth, args: &[&str]) -> Child {
    b.command(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn berth")
}

/// Pids of running shims (their argv carries `__shim`).
fn shims() -> HashSet<i32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()))
        .filter(|pid| berth_host::process::cmdline_contains(*pid, b"__shim"))
        .collect()
}

#[test]
fn kill_nine_anywhere_loses_nothing() {
    let rounds: usize = std::env::var("BERTH_FAULT_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(OPS.len());
    let seed: u64 = std::env::var("BERTH_FAULT_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        })
        | 1;
    eprintln!("fault campaign: {rounds} rounds, BERTH_FAULT_SEED={seed}");
    let mut rng = Rng(seed);

    let reg = Registry::start(Mode::Plain);
    let b = Berth::new();
    reg.push_fixture(&fixtures::image("busybox"), "library/busybox:latest");
    reg.push_fixture(&fixtures::ensure_big().join("python"), "library/python:latest");
    let busybox = reg.reference("library/busybox");
    let python = reg.reference("library/python");
    b.ok(&["pull", "-q", &busybox]);
    b.ok(&["tag", &busybox, "busybox"]);
    b.ok(&["run", "-d", "--name", "keeper", "busybox", "sleep", "100000"]);
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(ctx.path().join("data"), vec![7u8; 256 * 1024]).unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM busybox\nARG ROUND\nRUN echo $ROUND > /round && sleep 0.2\nCOPY data /data\nRUN cat /data /data > /twice\n",
    )
    .unwrap();
    let ctx_dir = ctx.path().to_str().unwrap();
    let sock_dir = tempfile::tempdir().unwrap();
    let socket = sock_dir.path().join("berth.sock");
    let host = format!("unix://{}", socket.display());

    let mut report = Vec::new();
    for round in 0..rounds {
        let op = OPS[round % OPS.len()];
        let name = format!("{op}{round}");
        let round_arg = format!("ROUND={round}");
        let delay_ms = match op {
            "pull" => rng.below(2500),
            "build" => rng.below(3000),
            "daemon" => rng.below(400),
            _ => rng.below(600),
        };
        let delay = Duration::from_millis(delay_ms);
        match op {
            "pull" => {
                let _ = b.run(&["rmi", &python]);
                let c = spawn(&b, &["pull", "-q", &python]);
                std::thread::sleep(delay);
                kill9(c);
                b.ok(&["pull", "-q", &python]);
            }
            "build" => {
                let c = spawn(
                    &b,
                    &["build", "-q", "--build-arg", &round_arg, "-t", "faulty", ctx_dir],
                );
                std::thread::sleep(delay);
                kill9(c);
                b.ok(&["build", "-q", "--build-arg", &round_arg, "-t", "faulty", ctx_dir]);
            }
            "run" => {
                let c = spawn(&b, &["run", "-d", "--name", &name, "busybox", "sleep", "300"]);
                std::thread::sleep(delay);
                kill9(c);
                b.ok(&["ps", "-a"]);
                let _ = b.run(&["rm", "-f", &name]);
            }
            "rm" => {
                b.ok(&["run", "-d", "--name", &name, "busybox", "sleep", "300"]);
                let c = spawn(&b, &["rm", "-f", &name]);
                std::thread::sleep(delay);
                kill9(c);
                b.ok(&["ps", "-a"]);
                let _ = b.run(&["rm", "-f", &name]);
            }
            "daemon" => {
                let c = spawn(&b, &["daemon", "--host", &host]);
                std::thread::sleep(delay);
                kill9(c);
                // The next daemon takes over the socket the killed one may have left.
                let mut d = spawn(&b, &["daemon", "--host", &host]);
                let deadline = Instant::now() + Duration::from_secs(20);
                while std::os::unix::net::UnixStream::connect(&socket).is_err() {
                    assert!(
                        Instant::now() < deadline,
                        "round {round}: the next daemon did not listen"
                    );
                    assert!(
                        d.try_wait().unwrap().is_none(),
                        "round {round}: the next daemon exited"
                    );
                    std::thread::sleep(Duration::from_millis(20));
                }
                let pid = rustix::process::Pid::from_raw(d.id() as i32).unwrap();
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
                let _ = d.wait();
            }
            "shim" => {
                let before = shims();
                let c = spawn(&b, &["run", "-d", "--name", &name, "busybox", "sleep", "300"]);
                let start = Instant::now();
                let mut killed = false;
                while start.elapsed() < delay + Duration::from_secs(3) {
                    let new: Vec<i32> = shims().difference(&before).copied().collect();
                    if let Some(pid) = new.first().filter(|_| start.elapsed() >= delay) {
                        let _ = rustix::process::kill_process(
                            rustix::process::Pid::from_raw(*pid).unwrap(),
                            rustix::process::Signal::KILL,
                        );
                        killed = true;
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                let mut c = c;
                let _ = c.wait();
                assert!(killed, "round {round}: no new shim appeared to kill");
                b.ok(&["ps", "-a"]);
                let _ = b.run(&["rm", "-f", &name]);
            }
            _ => unreachable!(),
        }
        let check = b.run(&["system", "check"]);
        assert_eq!(
            check.code, 0,
            "round {round} ({op}, killed after {delay_ms} ms, BERTH_FAULT_SEED={seed}): the store does not check clean:\n{}{}",
            check.stdout, check.stderr
        );
        assert_eq!(
            b.ok(&["exec", "keeper", "echo", "alive"]).trim(),
            "alive",
            "round {round} ({op}): the running container stopped"
        );
        report.push(format!("{op}@{delay_ms}ms"));
    }
    eprintln!(
        "fault campaign passed {} rounds: {}",
        report.len(),
        report.join(" ")
    );
    b.ok(&["rm", "-f", "keeper"]);
    b.assert_store_consistent();
}
