//! Settings → Engine → Virtual machine in the real window (tauri-driver + WebKitWebDriver
//! under Xvfb, as `e2e.rs`), on a real QEMU guest under TCG built by scripts/build-guest.sh:
//! choose the machine, start it (Starting… with progress, then Running), see an image the
//! machine's engine serves, change its CPUs and Apply (it restarts; `berth machine inspect`
//! shows the new value), stop it. And without a guest payload: the one-sentence error that
//! says how to get one, with Retry.
//!
//! `desktop_machine_starts_applies_and_stops` is in nextest's `guest-qemu` group
//! (.config/nextest.toml): never beside the other QEMU tests.

mod e2e_support;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use berth_tests::registry::{Mode, Registry};
use e2e_support::{Engine, Session, Ui};
use futures_util::StreamExt;

/// A boot under TCG here takes 1–3 minutes; the relay's own limit is 180 s.
const BOOT_SECS: u64 = 420;

fn machine_env(dir: &Path, guest: &Path) -> Vec<(String, OsString)> {
    vec![
        ("BERTH_MACHINE_DIR".into(), dir.join("machines").into()),
        ("BERTH_GUEST".into(), guest.into()),
        ("BERTH_MACHINE_ACCEL".into(), "tcg".into()),
    ]
}

/// `berth machine …` on the session's machines, as a user would run it beside the window.
fn berth_machine(session: &Session, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(e2e_support::target_dir().join("berth"))
        .arg("machine")
        .args(args)
        .env("BERTH_MACHINE_DIR", session.dir.path().join("machines"))
        .env("DOCKER_CONFIG", session.dir.path().join("docker-config"))
        .output()?;
    ensure!(
        out.status.success(),
        "berth machine {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn inspect(session: &Session) -> anyhow::Result<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_str(&berth_machine(session, &["inspect"])?)?;
    Ok(v[0].clone())
}

/// `(pid, name)` of every zombie whose parent is a berth-desktop process.
fn zombies_of_the_app() -> Vec<(String, String)> {
    // /proc/<pid>/stat: "pid (comm) state ppid …"
    let stat = |pid: &str| -> Option<(String, String, String)> {
        let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let (head, rest) = s.rsplit_once(") ")?;
        let comm = head.split_once(" (")?.1.to_string();
        let mut f = rest.split_whitespace();
        Some((comm, f.next()?.to_string(), f.next()?.to_string()))
    };
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|p| p.chars().all(|c| c.is_ascii_digit()))
        .filter_map(|p| {
            let (comm, state, ppid) = stat(&p)?;
            let parent = stat(&ppid)?.0;
            (state == "Z" && parent.starts_with("berth-desktop")).then_some((p, comm))
        })
        .collect()
}

/// Whatever happens, the VM does not outlive the test.
struct RemoveMachine<'a>(&'a Session);

impl Drop for RemoveMachine<'_> {
    fn drop(&mut self) {
        let _ = berth_machine(self.0, &["rm", "-f"]);
    }
}

async fn choose_machine(ui: &Ui) -> anyhow::Result<()> {
    ui.click("#nav-settings").await?;
    ui.click("[data-testid=engine-choice-machine]").await?;
    ui.wait_css("[data-testid=machine]", 20)
        .await
        .context("choosing Virtual machine shows the machine")?;
    Ok(())
}

async fn phase(ui: &Ui) -> anyhow::Result<String> {
    ui.attr("[data-testid=machine]", "data-phase").await
}

/// Waits for the machine's phase, failing at once with the window's error sentence.
async fn wait_phase(ui: &Ui, want: &str, secs: u64) -> anyhow::Result<Duration> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(secs) {
        // Not there yet while Settings (loaded on demand) renders.
        let p = phase(ui).await.unwrap_or_default();
        if p == want {
            return Ok(start.elapsed());
        }
        if p == "failed" {
            let msg = ui.text("[data-testid=machine] [data-testid=error-box]").await?;
            anyhow::bail!("the machine failed while waiting for {want}: {msg}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    anyhow::bail!(
        "the machine was not {want} within {secs} s (phase {})",
        phase(ui).await?
    )
}

/// Waits until the window shows Starting… with a step and seconds, then Running.
async fn wait_started(ui: &Ui, what: &str) -> anyhow::Result<Duration> {
    let start = Instant::now();
    ui.wait_css("[data-testid=machine-progress]", 30)
        .await
        .with_context(|| format!("{what}: no progress shown"))?;
    let progress = ui.text("[data-testid=machine-progress]").await?;
    ensure!(progress.ends_with(" s"), "{what}: progress {progress:?}");
    println!("{what}: progress shown: {progress}");
    wait_phase(ui, "running", BOOT_SECS)
        .await
        .context(what.to_string())?;
    Ok(start.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desktop_machine_starts_applies_and_stops() -> anyhow::Result<()> {
    let guest: PathBuf = berth_tests::guest::build_guest().dir;
    let busybox = berth_tests::fixtures::image("busybox");
    let registry = Registry::start(Mode::Plain);
    registry.push_fixture(&busybox, "demo/busybox:latest");
    let reg = registry.host();

    let session = Session::start_with(Engine::Embedded, &reg, |dir| machine_env(dir, &guest))?;
    let _rm = RemoveMachine(&session);
    let ui = session.connect().await?;
    let result = machine_flow(&ui, &session, &reg).await;
    if result.is_err() {
        let _ = ui.shot("machine-failure").await;
        session.keep_logs();
        let console = session.dir.path().join("machines/default/console.log");
        let _ = std::fs::copy(&console, session.shots.join("console.log"));
    }
    println!("screenshots: {}", session.shots.display());
    ui.close().await;
    result
}

async fn machine_flow(ui: &Ui, session: &Session, reg: &str) -> anyhow::Result<()> {
    ui.wait_js(
        "document.querySelector('[data-testid=engine-status]')?.dataset.connected === 'yes'",
        60,
    )
    .await
    .context("the built-in engine never came up")?;
    ensure!(ui.text("[data-testid=engine-label]").await? == "Built-in");

    choose_machine(ui).await?;
    let p = phase(ui).await?;
    ensure!(p == "missing", "a fresh machine directory: phase {p}");
    let saved = std::fs::read_to_string(session.dir.path().join("xdg-config/berth/desktop.json"))?;
    ensure!(saved.contains("\"machine\""), "the choice is saved: {saved}");
    ensure!(
        ui.text("[data-testid=engine-label]").await? == "Virtual machine",
        "the sidebar names the chosen engine while it is not running"
    );

    ui.click("[data-testid=machine-start]").await?;
    let took = wait_started(ui, "first start").await?;
    println!(
        "first start (init + TCG boot) to Running: {:.1} s",
        took.as_secs_f64()
    );
    ui.shot("machine-01-running").await?;
    ui.wait_js(
        "document.querySelector('[data-testid=engine-status]')?.dataset.connected === 'yes' \
         && document.querySelector('[data-testid=engine-label]')?.textContent === 'Virtual machine'",
        60,
    )
    .await
    .context("the sidebar says Virtual machine, connected")?;
    let console = ui.text("[data-testid=machine-console]").await?;
    ensure!(
        console.contains("berth-guest"),
        "the console log is shown: {console}"
    );
    let i = inspect(session)?;
    ensure!(i["State"] == "running" && i["CPUs"] == 2, "inspect: {i}");

    // An image pulled into the machine's engine (beside the window, over its socket)
    // shows in the window's Images view: the window's engine is the machine's.
    let socket = session.dir.path().join("machines/default/api.sock");
    let docker =
        bollard::Docker::connect_with_unix(&socket.display().to_string(), 300, bollard::API_DEFAULT_VERSION)?;
    let image = format!("{reg}/demo/busybox:latest");
    let mut pull = docker.create_image(
        Some(bollard::query_parameters::CreateImageOptions {
            from_image: Some(image.clone()),
            ..Default::default()
        }),
        None,
        None,
    );
    while let Some(p) = pull.next().await {
        p.context("pull into the machine")?;
    }
    ui.click("#nav-images").await?;
    ui.wait_css(&format!("tr[data-ref='{image}']"), 60)
        .await
        .context("the machine's image in the Images view")?;
    ui.shot("machine-02-images").await?;
    ui.click("#nav-dashboard").await?;
    let label = ui.text("[data-testid=dashboard-engine-label]").await?;
    ensure!(label.starts_with("Virtual machine"), "dashboard: {label}");

    // Apply 1 CPU and a 21 GiB disk: stopped, changed, started again; the guest grows its
    // file system to the longer disk.
    choose_machine(ui).await?;
    ui.clear("[data-testid=machine-cpus]").await?;
    ui.type_into("[data-testid=machine-cpus]", "1").await?;
    ui.clear("[data-testid=machine-disk]").await?;
    ui.type_into("[data-testid=machine-disk]", "21").await?;
    ui.click("[data-testid=machine-apply]").await?;
    ui.wait_js(
        "document.querySelector('[data-testid=machine]')?.dataset.phase === 'applying'",
        10,
    )
    .await?;
    let took = wait_started(ui, "apply").await?;
    println!(
        "apply (stop, set, TCG boot) to Running: {:.1} s",
        took.as_secs_f64()
    );
    let i = inspect(session)?;
    ensure!(
        i["CPUs"] == 1 && i["DiskSize"] == 21 && i["State"] == "running",
        "inspect after Apply: {i}"
    );
    let console = berth_machine(session, &["logs"])?;
    ensure!(
        console.contains("growing the data disk's file system from 20480 MiB to 21504 MiB")
            && !console.contains("keeps its old size"),
        "the guest grew its ext4 to the disk:\n{console}"
    );
    ui.shot("machine-03-applied").await?;
    // The disk kept the image across the restart.
    ui.click("#nav-images").await?;
    ui.wait_css(&format!("tr[data-ref='{image}']"), 60)
        .await
        .context("the image after the restart")?;

    choose_machine(ui).await?;
    let stop = Instant::now();
    ui.click("[data-testid=machine-stop]").await?;
    wait_phase(ui, "stopped", 90).await?;
    println!("stop: {:.1} s", stop.elapsed().as_secs_f64());
    let i = inspect(session)?;
    ensure!(i["State"] == "stopped", "inspect after Stop: {i}");
    let console = berth_machine(session, &["logs"])?;
    ensure!(
        console.contains("berth-guest: powering off"),
        "the guest powered off by itself (its disk unmounted), not ended by the relay:\n{console}"
    );
    let zombies = zombies_of_the_app();
    ensure!(
        zombies.is_empty(),
        "the app reaped the QEMUs, relays and virtiofsds it started: {zombies:?}"
    );
    ui.wait_js(
        "document.querySelector('[data-testid=engine-machine-phase]')?.textContent === 'Stopped'",
        30,
    )
    .await
    .context("the sidebar says the machine stopped")?;
    ui.shot("machine-04-stopped").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desktop_machine_without_a_guest_says_how_to_get_one() -> anyhow::Result<()> {
    let registry = Registry::start(Mode::Plain);
    // Virtual machine was chosen at an earlier launch: this one starts the machine itself.
    let session = Session::start_with(Engine::Embedded, &registry.host(), |dir| {
        let settings = dir.join("xdg-config/berth/desktop.json");
        std::fs::create_dir_all(settings.parent().unwrap()).unwrap();
        std::fs::write(&settings, r#"{"engine": "machine"}"#).unwrap();
        machine_env(dir, &dir.join("no-guest-here"))
    })?;
    let _rm = RemoveMachine(&session);
    let ui = session.connect().await?;
    let result = async {
        ui.wait_js(
            "document.querySelector('[data-testid=engine-machine-phase]')?.textContent === 'Failed: see Settings'",
            30,
        )
        .await
        .context("the start at launch fails, and the sidebar says so")?;
        ui.click("#nav-settings").await?;
        ui.wait_css("[data-testid=machine]", 20).await?;
        wait_phase(&ui, "failed", 10).await?;
        let box_ = "[data-testid=machine] [data-testid=error-box]";
        ensure!(
            ui.attr(box_, "data-code").await? == "machine_no_guest",
            "code"
        );
        let msg = ui.text(&format!("{box_} .msg")).await?;
        let next = ui.text(&format!("{box_} [data-testid=error-next]")).await?;
        println!("the window says: {msg} {next}");
        ensure!(
            msg.starts_with("Berth's virtual machine has no guest image (looked in ")
                && msg.ends_with("no-guest-here).")
                && msg.matches(". ").count() == 0,
            "one sentence: {msg}"
        );
        ensure!(
            next.contains("bash scripts/build-guest.sh"),
            "how to get one: {next}"
        );
        ensure!(!msg.contains("panicked") && !msg.contains("at src/"), "{msg}");
        ui.shot("machine-no-guest").await?;
        // Retry tries again (busy, then failed with the same sentence).
        ui.click("[data-testid=machine-retry]").await?;
        wait_phase(&ui, "failed", 30).await?;
        ensure!(ui.text(&format!("{box_} .msg")).await? == msg);
        Ok(())
    }
    .await;
    if result.is_err() {
        let _ = ui.shot("machine-no-guest-failure").await;
        session.keep_logs();
    }
    ui.close().await;
    result
}
