//! `system df`.

use crate::cli::Global;
use crate::{engine, render};

use berth_api::dir_bytes;

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
            "0".into(),
            "0".into(),
            "0B".into(),
            "0B".into(),
        ],
    ];
    render::table(
        &mut std::io::stdout().lock(),
        &["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"],
        &rows,
    )?;
    Ok(0)
}
