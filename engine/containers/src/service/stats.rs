//! `stats`: one sample of a running container's cgroup counters and network traffic.

use std::time::Instant;

use berth_cgroups::Cgroup;

use super::ContainerService;
use crate::record::*;
use crate::ContainerError;

/// A container's resource use at one moment.
#[derive(Debug, Clone)]
pub struct StatsSample {
    pub at: Instant,
    pub cpu_usage_ns: u64,
    pub memory_usage: u64,
    /// `None`: no limit (the host's memory is the limit).
    pub memory_limit: Option<u64>,
    pub pids: u64,
    /// Bytes the container received and sent.
    pub net_rx: u64,
    pub net_tx: u64,
}

impl ContainerService {
    /// One sample of a running container's resource use (for `stats`).
    pub fn stats(&self, rec: &ContainerRecord) -> Result<Option<StatsSample>, ContainerError> {
        if !self.status(rec).is_running() {
            return Ok(None);
        }
        let Some(cg) = Cgroup::open(&rec.id)? else {
            return Ok(None);
        };
        let st = cg.stats()?;
        // The host sides of the veths (one per network): what they receive the container
        // sent, and vice versa; docker's NET I/O sums the interfaces too.
        let mut veths: Vec<String> = self
            .net
            .endpoints_of(&rec.id)
            .unwrap_or_default()
            .iter()
            .map(berth_net::Endpoint::host_veth)
            .collect();
        if veths.is_empty() {
            veths.push(berth_net::veth_name(&rec.id));
        }
        let counter = |name: &str| -> u64 {
            veths
                .iter()
                .filter_map(|veth| {
                    std::fs::read_to_string(format!("/sys/class/net/{veth}/statistics/{name}")).ok()
                })
                .filter_map(|v| v.trim().parse::<u64>().ok())
                .sum()
        };
        Ok(Some(StatsSample {
            at: Instant::now(),
            cpu_usage_ns: st.cpu_usage_ns,
            memory_usage: st.memory_usage,
            memory_limit: st.memory_limit,
            pids: st.pids_current,
            net_rx: counter("tx_bytes"),
            net_tx: counter("rx_bytes"),
        }))
    }
}
