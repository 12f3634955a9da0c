//! Live CPU / memory samples for the Stats view, computed the way `docker stats` does.

use bollard::models::ContainerStatsResponse;
use bollard::query_parameters::StatsOptions;
use tauri::{AppHandle, Emitter, State};

use crate::commands::spawn_operation;
use crate::dto::StatsSample;
use crate::error::UserError;
use crate::state::AppState;

/// CPU % as docker computes it: the container's share of the host's CPU time since the
/// previous sample, scaled by the number of online CPUs.
pub fn cpu_percent(s: &ContainerStatsResponse) -> f64 {
    let (Some(cpu), Some(pre)) = (&s.cpu_stats, &s.precpu_stats) else {
        return 0.0;
    };
    let total = |c: &bollard::models::ContainerCpuStats| {
        c.cpu_usage.as_ref().and_then(|u| u.total_usage).unwrap_or(0)
    };
    let cpu_delta = total(cpu).saturating_sub(total(pre)) as f64;
    let sys_delta = cpu
        .system_cpu_usage
        .unwrap_or(0)
        .saturating_sub(pre.system_cpu_usage.unwrap_or(0)) as f64;
    let cpus = cpu.online_cpus.map(f64::from).unwrap_or(1.0);
    if sys_delta > 0.0 && cpu_delta > 0.0 {
        cpu_delta / sys_delta * cpus * 100.0
    } else {
        0.0
    }
}

/// Memory in use without the reclaimable page cache (docker's "MEM USAGE").
pub fn memory_usage(s: &ContainerStatsResponse) -> f64 {
    let Some(m) = &s.memory_stats else { return 0.0 };
    let usage = m.usage.unwrap_or(0);
    let cache = m
        .stats
        .as_ref()
        .and_then(|st| {
            st.get("inactive_file")
                .or_else(|| st.get("total_inactive_file"))
                .copied()
        })
        .unwrap_or(0);
    usage.saturating_sub(cache) as f64
}

#[tauri::command]
pub async fn stream_stats(
    app: AppHandle,
    state: State<'_, AppState>,
    op: String,
    id: String,
) -> Result<(), UserError> {
    let docker = state.docker().await?;
    let stream = docker.stats(
        &id,
        Some(StatsOptions {
            stream: true,
            one_shot: false,
        }),
    );
    let op2 = op.clone();
    spawn_operation(app, &state, &op, stream, move |app, s, _| {
        let time = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        let sample = StatsSample {
            op: op2.clone(),
            time,
            cpu_percent: cpu_percent(&s),
            memory_usage: memory_usage(&s),
            memory_limit: s.memory_stats.as_ref().and_then(|m| m.limit).unwrap_or(0) as f64,
            pids: s.pids_stats.as_ref().and_then(|p| p.current).unwrap_or(0) as f64,
        };
        let _ = app.emit("stats-sample", sample);
        Ok(())
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{ContainerCpuStats, ContainerCpuUsage, ContainerMemoryStats};

    fn cpu(total: u64, system: u64) -> ContainerCpuStats {
        ContainerCpuStats {
            cpu_usage: Some(ContainerCpuUsage {
                total_usage: Some(total),
                ..Default::default()
            }),
            system_cpu_usage: Some(system),
            online_cpus: Some(2),
            ..Default::default()
        }
    }

    #[test]
    fn cpu_and_memory_follow_docker_stats() {
        let s = ContainerStatsResponse {
            cpu_stats: Some(cpu(1_500, 10_000)),
            precpu_stats: Some(cpu(1_000, 8_000)),
            memory_stats: Some(ContainerMemoryStats {
                usage: Some(100 << 20),
                stats: Some([("inactive_file".to_string(), 30u64 << 20)].into_iter().collect()),
                limit: Some(1 << 30),
                ..Default::default()
            }),
            ..Default::default()
        };
        // 500 of 2000 ns of host time on 2 CPUs = 50 %.
        assert!((cpu_percent(&s) - 50.0).abs() < 1e-9);
        assert_eq!(memory_usage(&s), (70u64 << 20) as f64);
    }
}
