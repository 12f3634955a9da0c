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
        let status = self.status(rec);
        if !status.is_running() {
            return Ok(None);
        }
        let Some(cg) = Cgroup::open(&rec.id)? else {
            // No cgroup of its own (an ordinary user's engine without delegated cgroups):
            // its processes, counted one by one, and its interfaces as it sees them.
            let Some(pid) = status.pid() else { return Ok(None) };
            let Some(tree) = berth_host::process::tree_usage(pid) else {
                return Ok(None);
            };
            let (net_rx, net_tx) = interface_totals(pid);
            return Ok(Some(StatsSample {
                at: Instant::now(),
                cpu_usage_ns: tree.cpu_ns,
                memory_usage: tree.rss_bytes,
                memory_limit: None,
                pids: tree.pids,
                net_rx,
                net_tx,
            }));
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

/// Bytes received and sent by the interfaces of `pid`'s network namespace, loopback aside
/// (`/proc/PID/net/dev`: the container's own view of its veths).
fn interface_totals(pid: i32) -> (u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/net/dev")).unwrap_or_default();
    parse_net_dev(&text)
}

fn parse_net_dev(text: &str) -> (u64, u64) {
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(name, _)| name.trim() != "lo")
        .filter_map(|(_, counters)| {
            let f: Vec<u64> = counters
                .split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect();
            // Receive: bytes packets errs drop fifo frame compressed multicast; transmit: bytes …
            Some((*f.first()?, *f.get(8)?))
        })
        .fold((0, 0), |(rx, tx), (r, t)| (rx + r, tx + t))
}

#[cfg(test)]
mod tests {
    #[test]
    fn net_dev_sums_every_interface_but_loopback() {
        let text = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:    1000      10    0    0    0     0          0         0     1000      10    0    0    0     0       0          0
  eth0:    5120      40    0    0    0     0          0         0     2048      20    0    0    0     0       0          0
  eth1:      80       1    0    0    0     0          0         0       40       1    0    0    0     0       0          0
";
        assert_eq!(super::parse_net_dev(text), (5200, 2088));
        assert_eq!(super::parse_net_dev(""), (0, 0));
    }
}
