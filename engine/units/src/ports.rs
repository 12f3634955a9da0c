//! Published ports: docker's `-p` syntax and the typed spec it becomes.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use serde::{Deserialize, Serialize};

use crate::UnitError;

/// Transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        })
    }
}

/// One published port: host_ip:host_port → container_port/proto.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PortSpec {
    /// 0.0.0.0 unless given.
    pub host_ip: IpAddr,
    /// 0 means "pick a free one" when binding.
    pub host_port: u16,
    pub container_port: u16,
    pub proto: Proto,
}

impl fmt::Display for PortSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.host_ip {
            IpAddr::V6(ip) => write!(f, "[{ip}]")?,
            IpAddr::V4(ip) => write!(f, "{ip}")?,
        }
        write!(f, ":{}->{}/{}", self.host_port, self.container_port, self.proto)
    }
}

fn parse_port(spec: &str, s: &str, what: &str) -> Result<u16, UnitError> {
    let bad = |reason: String| UnitError::InvalidPortSpec {
        spec: spec.to_string(),
        reason,
    };
    if s.is_empty() {
        return Err(bad(format!("the {what} port is missing")));
    }
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(format!("'{s}' is not a port number")));
    }
    let n: u64 = s.parse().map_err(|_| bad(format!("port {s} is above 65535")))?;
    if n > 65535 {
        return Err(bad(format!("port {n} is above 65535")));
    }
    if n == 0 {
        return Err(bad(format!("the {what} port must not be 0")));
    }
    Ok(n as u16)
}

/// A port or an inclusive range "a-b".
fn parse_range(spec: &str, s: &str, what: &str) -> Result<(u16, u16), UnitError> {
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (parse_port(spec, a, what)?, parse_port(spec, b, what)?);
            if b < a {
                return Err(UnitError::InvalidPortSpec {
                    spec: spec.to_string(),
                    reason: format!("the {what} range {a}-{b} ends before it starts"),
                });
            }
            Ok((a, b))
        }
        None => {
            let p = parse_port(spec, s, what)?;
            Ok((p, p))
        }
    }
}

/// Parses one `-p` value: "80", "8080:80", "127.0.0.1:8080:80", "127.0.0.1::80",
/// "[::1]:8080:80", "8080:80/udp", "8000-8001:80-81".
pub fn parse_publish(s: &str) -> Result<Vec<PortSpec>, UnitError> {
    let bad = |reason: &str| UnitError::InvalidPortSpec {
        spec: s.to_string(),
        reason: reason.to_string(),
    };
    let (rest, proto) = match s.rsplit_once('/') {
        Some((rest, "tcp")) => (rest, Proto::Tcp),
        Some((rest, "udp")) => (rest, Proto::Udp),
        Some((_, p)) => return Err(bad(&format!("protocol '{p}' is not supported (use tcp or udp)"))),
        None => (s, Proto::Tcp),
    };
    if rest.is_empty() {
        return Err(bad("it is empty"));
    }
    // Split off an optional host IP; IPv6 must be in brackets.
    let (ip, ports) = if let Some(after) = rest.strip_prefix('[') {
        let (ip6, tail) = after
            .split_once(']')
            .ok_or_else(|| bad("the '[' of the IPv6 address is not closed"))?;
        let ip: IpAddr = ip6
            .parse()
            .map_err(|_| bad(&format!("'{ip6}' is not an IP address")))?;
        let tail = tail
            .strip_prefix(':')
            .ok_or_else(|| bad("a ':' must follow the host address"))?;
        (Some(ip), tail)
    } else {
        let parts: Vec<&str> = rest.split(':').collect();
        match parts.len() {
            1 | 2 => (None, rest),
            3 => {
                let ip: IpAddr = parts[0]
                    .parse()
                    .map_err(|_| bad(&format!("'{}' is not an IP address", parts[0])))?;
                (Some(ip), &rest[parts[0].len() + 1..])
            }
            _ => {
                return Err(bad(
                    "too many ':' (IPv6 host addresses go in brackets, e.g. [::1]:8080:80)",
                ))
            }
        }
    };
    let (host, container) = match ports.split_once(':') {
        Some((h, c)) => (Some(h), c),
        None if ip.is_some() => return Err(bad("the container port is missing")),
        None => (None, ports),
    };
    if container.contains(':') {
        return Err(bad("too many ':'"));
    }
    let (c0, c1) = parse_range(s, container, "container")?;
    let count = u32::from(c1 - c0) + 1;
    let host_ports: Vec<u16> = match host {
        None | Some("") => vec![0; count as usize],
        Some(h) => {
            let (h0, h1) = parse_range(s, h, "host")?;
            if u32::from(h1 - h0) + 1 != count {
                return Err(bad(&format!(
                    "the host range {h0}-{h1} and the container range {c0}-{c1} differ in length"
                )));
            }
            (h0..=h1).collect()
        }
    };
    let host_ip = ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    Ok((c0..=c1)
        .zip(host_ports)
        .map(|(container_port, host_port)| PortSpec {
            host_ip,
            host_port,
            container_port,
            proto,
        })
        .collect())
}
