//! `system df`.

use crate::cli::Global;
use crate::{engine, render};

pub fn df(g: &Global) -> anyhow::Result<u8> {
    let images = engine::open(g)?;
    let list = images.store().images()?;
    let usage = images.store().disk_usage()?;
    let total = usage.blob_bytes + usage.layer_bytes;
    let rows = vec![
        vec![
            "Images".to_string(),
            list.len().to_string(),
            "0".into(),
            render::size(total),
            if total == 0 {
                "0B".into()
            } else {
                format!("{} (100%)", render::size(total))
            },
        ],
        vec![
            "Containers".into(),
            "0".into(),
            "0".into(),
            "0B".into(),
            "0B".into(),
        ],
        vec![
            "Local Volumes".into(),
            "0".into(),
            "0".into(),
            "0B".into(),
            "0B".into(),
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
