//! `system df` and `system check`.

use crate::cli::Global;
use crate::{engine, render};

use berth_host::disk::tree_size as dir_bytes;

fn reclaimable(bytes: u64, total: u64) -> String {
    match (bytes * 100).checked_div(total) {
        Some(pct) => format!("{} ({pct}%)", render::size(bytes)),
        None => "0B".into(),
    }
}

pub fn df(g: &Global) -> anyhow::Result<u8> {
    let images = engine::open(g)?;
    let containers = berth_containers::ContainerService::new(images.clone(), std::env::current_exe()?)?;
    let list = images.store().images()?;
    let usage = images.store().disk_usage()?;
    let image_bytes = usage.blob_bytes + usage.layer_bytes;
    let all = containers.list(true)?;
    let running = all.iter().filter(|c| c.status.is_running()).count();
    let used_images: std::collections::HashSet<_> = all.iter().map(|c| c.record.image_id.clone()).collect();
    let unused_image_bytes: u64 = list
        .iter()
        .filter(|i| !used_images.contains(&i.id))
        .map(|i| i.layers.iter().map(|l| l.unpacked_size).sum::<u64>())
        .sum::<u64>()
        .min(image_bytes);
    // A container's own size is what it wrote (its overlay upper dir).
    let sizes: Vec<(bool, u64)> = all
        .iter()
        .map(|c| {
            (
                c.status.is_running(),
                dir_bytes(&containers.paths(&c.record.id).upper()),
            )
        })
        .collect();
    let container_bytes: u64 = sizes.iter().map(|(_, b)| b).sum();
    let stopped_bytes: u64 = sizes.iter().filter(|(r, _)| !r).map(|(_, b)| b).sum();
    let volumes = containers.volumes().list()?;
    let in_use = volumes
        .iter()
        .filter(|v| {
            containers
                .users_of_volume(&v.name)
                .map(|u| !u.is_empty())
                .unwrap_or(false)
        })
        .count();
    let volume_sizes: Vec<(bool, u64)> = volumes
        .iter()
        .map(|v| {
            let used = containers
                .users_of_volume(&v.name)
                .map(|u| !u.is_empty())
                .unwrap_or(false);
            (used, dir_bytes(&v.mountpoint))
        })
        .collect();
    let volume_bytes: u64 = volume_sizes.iter().map(|(_, b)| b).sum();
    let unused_volume_bytes: u64 = volume_sizes.iter().filter(|(u, _)| !u).map(|(_, b)| b).sum();
    let (cache_entries, cache_bytes) = berth_builder::cache_usage(images.store())?;
    let rows = vec![
        vec![
            "Images".to_string(),
            list.len().to_string(),
            used_images.len().to_string(),
            render::size(image_bytes),
            reclaimable(unused_image_bytes, image_bytes),
        ],
        vec![
            "Containers".into(),
            all.len().to_string(),
            running.to_string(),
            render::size(container_bytes),
            reclaimable(stopped_bytes, container_bytes),
        ],
        vec![
            "Local Volumes".into(),
            volumes.len().to_string(),
            in_use.to_string(),
            render::size(volume_bytes),
            reclaimable(unused_volume_bytes, volume_bytes),
        ],
        vec![
            "Build Cache".into(),
            cache_entries.to_string(),
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

/// `system check [--repair]`: the store's and the containers' problems, one sentence each.
/// Exit 0 when there is nothing (left) to fix, 1 otherwise.
pub fn check(g: &Global, repair: bool) -> anyhow::Result<u8> {
    let images = engine::open(g)?;
    let containers = berth_containers::ContainerService::new(images.clone(), std::env::current_exe()?)?;
    let store = images.store();
    let mut report = store.check()?;
    let mut ctr = containers.check()?;
    if repair && (!report.problems.is_empty() || !ctr.is_empty()) {
        for p in &report.problems {
            println!("repairing: {p}");
        }
        for p in ctr.iter().filter(|p| p.repairable()) {
            println!("repairing: {p}");
        }
        // Containers first: a released run no longer holds layers GC may then free.
        containers.repair(&ctr)?;
        let done = store.repair(&report)?;
        for o in &done.records_removed {
            println!("removed {o}: content it needs was damaged or missing; pull it again");
        }
        for t in &done.tags_removed {
            println!("removed tag {t}");
        }
        if done.deferred {
            println!("a pull, load or build is running, so unused content was left for later: run this again when it ends");
        }
        report = store.check()?;
        ctr = containers.check()?;
    }
    for p in &report.problems {
        println!("problem: {p}");
    }
    for p in &ctr {
        println!("problem: {p}");
    }
    let n = report.problems.len() + ctr.len();
    println!(
        "checked {} blobs, {} layer directories, {} image and cache records, {} containers: {}",
        report.blobs_checked,
        report.layers_checked,
        report.records_checked,
        containers.records()?.len(),
        match n {
            0 => "no problems".to_string(),
            1 => "1 problem".to_string(),
            n => format!("{n} problems"),
        }
    );
    if report.in_flight {
        println!("a pull, load or build is running, so its unfinished content was not counted");
    }
    if n > 0 && !repair {
        println!("run `berth system check --repair` to remove what is damaged or unused");
    }
    Ok(if n == 0 { 0 } else { 1 })
}
