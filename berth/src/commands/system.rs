//! `system df` (from the engine's `GET /system/df`) and `system check` (Berth's own
//! `POST /berth/system/check`, so it works on any Berth engine, also through `BERTH_HOST`).

use serde_json::Value;

use crate::client::{self, Client};
use crate::render;

fn reclaimable(bytes: u64, total: u64) -> String {
    match (bytes * 100).checked_div(total) {
        Some(pct) => format!("{} ({pct}%)", render::size(bytes)),
        None => "0B".into(),
    }
}

fn num(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_i64).unwrap_or(0).max(0) as u64
}

fn list<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

pub async fn df(c: &Client) -> anyhow::Result<u8> {
    let v = c.get_json("/system/df").await?;
    let image_bytes = num(&v, "LayersSize");
    let images = list(&v, "Images");
    let used_images = images.iter().filter(|i| num(i, "Containers") > 0).count();
    let unused_image_bytes = images
        .iter()
        .filter(|i| num(i, "Containers") == 0)
        .map(|i| num(i, "Size"))
        .sum::<u64>()
        .min(image_bytes);
    let containers = list(&v, "Containers");
    let running = |c: &Value| c.get("State").and_then(Value::as_str) == Some("running");
    let container_bytes: u64 = containers.iter().map(|c| num(c, "SizeRw")).sum();
    let stopped_bytes: u64 = containers
        .iter()
        .filter(|c| !running(c))
        .map(|c| num(c, "SizeRw"))
        .sum();
    let volumes = list(&v, "Volumes");
    let usage = |v: &Value, k: &str| v.get("UsageData").map(|u| num(u, k)).unwrap_or(0);
    let volume_bytes: u64 = volumes.iter().map(|v| usage(v, "Size")).sum();
    let unused_volume_bytes: u64 = volumes
        .iter()
        .filter(|v| usage(v, "RefCount") == 0)
        .map(|v| usage(v, "Size"))
        .sum();
    let cache = list(&v, "BuildCache");
    let cache_bytes: u64 = cache.iter().map(|e| num(e, "Size")).sum();
    let rows = vec![
        vec![
            "Images".to_string(),
            images.len().to_string(),
            used_images.to_string(),
            render::size(image_bytes),
            reclaimable(unused_image_bytes, image_bytes),
        ],
        vec![
            "Containers".into(),
            containers.len().to_string(),
            containers.iter().filter(|c| running(c)).count().to_string(),
            render::size(container_bytes),
            reclaimable(stopped_bytes, container_bytes),
        ],
        vec![
            "Local Volumes".into(),
            volumes.len().to_string(),
            volumes
                .iter()
                .filter(|v| usage(v, "RefCount") > 0)
                .count()
                .to_string(),
            render::size(volume_bytes),
            reclaimable(unused_volume_bytes, volume_bytes),
        ],
        vec![
            "Build Cache".into(),
            cache.len().to_string(),
            "0".into(),
            render::size(cache_bytes),
            render::size(cache_bytes),
        ],
    ];
    render::table(
        &mut std::io::stdout().lock(),
        &["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"],
        &rows,
    )?;
    Ok(0)
}

/// `system check [--repair]`: the engine's lines, one sentence each; exit 0 when there is
/// nothing (left) to fix, 1 otherwise.
pub async fn check(c: &Client, repair: bool) -> anyhow::Result<u8> {
    let path = if repair {
        "/berth/system/check?repair=1"
    } else {
        "/berth/system/check"
    };
    let v = c.post_json(path, client::empty()).await?;
    for line in list(&v, "Lines") {
        println!("{}", line.as_str().unwrap_or_default());
    }
    Ok(if num(&v, "Problems") == 0 { 0 } else { 1 })
}

/// `berth system docker-command`: the `docker` link to this binary, never over another
/// docker (see `berth_api::docker_command`).
pub fn docker_command(remove: bool, status: bool, dir: Option<std::path::PathBuf>) -> anyhow::Result<u8> {
    use berth_api::docker_command as dc;
    let dir = dir.unwrap_or_else(dc::default_dir);
    let berth = std::env::current_exe().unwrap_or_else(|_| "/usr/bin/berth".into());
    let path = std::env::var_os("PATH");
    if status {
        match dc::status(&dir, path.as_deref(), &berth) {
            dc::Status::Absent => println!(
                "no docker command: berth system docker-command makes {}",
                dir.join("docker").display()
            ),
            dc::Status::Berth(p) => println!("docker is Berth: {}", p.display()),
            dc::Status::Other(p) => println!("docker is another program: {}", p.display()),
        }
        return Ok(0);
    }
    if remove {
        match dc::remove(&dir, &berth)? {
            Some(p) => println!("removed {}", p.display()),
            None => println!("no docker command of Berth's in {}", dir.display()),
        }
        return Ok(0);
    }
    let link = dc::install(&dir, path.as_deref(), &berth)?;
    println!(
        "docker is Berth now: {} — try docker run --rm hello-world",
        link.display()
    );
    let on_path = path
        .as_deref()
        .is_some_and(|p| std::env::split_paths(p).any(|d| d == dir));
    if !on_path {
        eprintln!(
            "Warning: {} is not on your PATH yet — open a new terminal (Debian adds ~/.local/bin once it exists) or add it to PATH",
            dir.display()
        );
    }
    Ok(0)
}
