//! The desktop benchmark (run by scripts/bench-desktop.sh with `--ignored`, release build):
//! launch → containers list rendered, idle PSS of app + WebKit + embedded engine with 20
//! containers, and rendering / searching a 1,000,000-line log in the real window.
//! It prints figures; it asserts only that each measurement happened, never a speed.

mod e2e_support;

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use berth_tests::registry::{Mode, Registry};
use e2e_support::{target_dir, Engine, Session};

const IDLE_CONTAINERS: usize = 20;
const LOG_LINES: usize = 1_000_000;

fn berth(session: &Session, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(target_dir().join("berth"))
        .arg("--root")
        .arg(&session.root)
        .args(args)
        .output()?;
    ensure!(
        out.status.success(),
        "berth {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// PID → (parent, command name) for every process.
fn processes() -> HashMap<u32, (u32, String)> {
    let mut map = HashMap::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = stat[open + 1..close].to_string();
        let ppid = stat[close + 2..]
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        map.insert(pid, (ppid, name));
    }
    map
}

fn pss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("Pss:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

/// The app process and everything under it (WebKit's web and network processes), by name.
fn app_tree_pss() -> Vec<(u32, String, u64)> {
    let procs = processes();
    let roots: Vec<u32> = procs
        .iter()
        .filter(|(_, (_, n))| n == "berth-desktop")
        .map(|(p, _)| *p)
        .collect();
    let mut out = Vec::new();
    let mut stack = roots;
    while let Some(pid) = stack.pop() {
        if let Some((_, name)) = procs.get(&pid) {
            out.push((pid, name.clone(), pss_kb(pid)));
        }
        stack.extend(procs.iter().filter(|(_, (pp, _))| *pp == pid).map(|(p, _)| *p));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: scripts/bench-desktop.sh runs it in release mode"]
async fn desktop_bench() -> anyhow::Result<()> {
    let fixtures = berth_tests::fixtures::dir();
    let registry = Registry::start(Mode::Plain);
    registry.push_fixture(&fixtures.join("busybox"), "demo/busybox:latest");
    let image = registry.reference("demo/busybox:latest");

    std::env::set_var("BERTH_DESKTOP_VIEW", "containers");
    let session = Session::start(Engine::Embedded, &registry.host())?;
    berth(&session, &["pull", "-q", &image])?;
    for i in 0..IDLE_CONTAINERS {
        berth(
            &session,
            &[
                "run",
                "-d",
                "--name",
                &format!("idle{i}"),
                &image,
                "sleep",
                "100000",
            ],
        )?;
    }
    let script = format!("seq 1 {LOG_LINES}; sleep 100000");
    berth(
        &session,
        // The default rotation (10 MB × 3) would keep only the last third of the lines.
        &[
            "run",
            "-d",
            "--name",
            "log1m",
            "--log-opt",
            "max-size=1g",
            &image,
            "sh",
            "-c",
            &script,
        ],
    )?;

    // Launch: the app reports "view containers ready N ms after start" on stderr.
    let t0 = Instant::now();
    let ui = session.connect().await?;
    ui.wait_css("[data-testid=containers-table][data-loaded=yes]", 60)
        .await?;
    let wall = t0.elapsed();
    let mut launch_ms = None;
    for _ in 0..50 {
        let log = std::fs::read_to_string(session.dir.path().join("app.log")).unwrap_or_default();
        launch_ms = log
            .lines()
            .find_map(|l| l.strip_prefix("berth-desktop: view containers ready "))
            .and_then(|r| r.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()));
        if launch_ms.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let launch_ms = launch_ms.context("the app never reported the containers view ready")?;
    println!("launch → containers list rendered: {launch_ms} ms from process start ({} ms including WebDriver session setup)", wall.as_millis());

    // Idle memory with 21 containers (20 idle + the log one) after things settle.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let tree = app_tree_pss();
    ensure!(!tree.is_empty(), "no berth-desktop process found");
    let total: u64 = tree.iter().map(|(_, _, kb)| kb).sum();
    for (pid, name, kb) in &tree {
        println!("  pss {name} ({pid}): {:.1} MB", *kb as f64 / 1024.0);
    }
    println!(
        "idle PSS app + WebKit + embedded engine, {} containers: {:.1} MB",
        IDLE_CONTAINERS + 1,
        total as f64 / 1024.0
    );

    // 1,000,000-line log: load into the virtualized view, then search it.
    ui.click("tr[data-name='log1m'] [data-action=logs]").await?;
    ui.wait_js(
        &format!(
            "Number(document.querySelector('[data-testid=log-status]')?.dataset.lines) >= {LOG_LINES} && \
             document.querySelector('[data-testid=log-status]')?.dataset.loading === 'no'"
        ),
        300,
    )
    .await?;
    let load_ms = ui.attr("[data-testid=log-status]", "data-load-ms").await?;
    println!("render 1,000,000-line log: {load_ms} ms (stream + batch append + first paint)");
    let mut searches = Vec::new();
    for q in ["999999", "12345", "7"] {
        ui.clear("[data-testid=log-search]").await?;
        ui.type_into("[data-testid=log-search]", q).await?;
        ui.wait_js(
            &format!("document.querySelector('[data-testid=log-search]').value === '{q}' && Number(document.querySelector('[data-testid=log-hits]')?.dataset.hits) > 0"),
            30,
        )
        .await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let ms = ui.attr("[data-testid=log-hits]", "data-search-ms").await?;
        let hits = ui.attr("[data-testid=log-hits]", "data-hits").await?;
        println!("search 1,000,000 lines for {q:?}: {ms} ms, {hits} matching lines");
        searches.push(ms);
    }
    ui.shot("bench-logs-1m").await?;
    ui.close().await;
    Ok(())
}
