//! Address management: the `Subnet` type and its arithmetic, the subnet a new network
//! gets, and the lowest free address of a network for a new endpoint.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::state::State;
use crate::{NetError, NetworkConfig};

/// An IPv4 network in CIDR form; serialised as its text, e.g. `"10.88.0.0/16"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Subnet {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    fn mask(self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix))
        }
    }

    /// True when `ip` lies inside this subnet.
    pub fn contains(self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.addr)
    }

    /// True when the two subnets share any address.
    pub fn overlaps(self, other: Subnet) -> bool {
        let mask = self.mask() & other.mask();
        u32::from(self.addr) & mask == u32::from(other.addr) & mask
    }

    /// The n-th address of the subnet (0 is the network address).
    pub fn nth(self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) + n)
    }

    /// Number of addresses in the subnet.
    pub fn size(self) -> u64 {
        1u64 << (32 - u32::from(self.prefix))
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Subnet {
    type Err = NetError;
    fn from_str(s: &str) -> Result<Self, NetError> {
        let bad = |reason: &str| NetError::InvalidSubnet {
            subnet: s.to_string(),
            reason: reason.to_string(),
        };
        let (ip, prefix) = s.split_once('/').ok_or_else(|| bad("it has no '/prefix'"))?;
        let addr: Ipv4Addr = ip.parse().map_err(|_| bad("the address is not IPv4"))?;
        let prefix: u8 = prefix.parse().map_err(|_| bad("the prefix is not a number"))?;
        if !(8..=30).contains(&prefix) {
            return Err(bad("the prefix must be between /8 and /30"));
        }
        let net = Subnet { addr, prefix };
        if u32::from(addr) & !net.mask() != 0 {
            return Err(bad("host bits are set after the prefix"));
        }
        Ok(net)
    }
}

impl Serialize for Subnet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Subnet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The subnet of a new network: `requested` unless it overlaps one of `taken` (each with the
/// name of the network that holds it), else the first free 10.89.N.0/24.
pub(crate) fn choose_subnet(requested: Option<&str>, taken: &[(Subnet, String)]) -> Result<Subnet, NetError> {
    Ok(match requested {
        Some(text) => {
            let s: Subnet = text.parse()?;
            if let Some((_, other)) = taken.iter().find(|(t, _)| t.overlaps(s)) {
                return Err(NetError::SubnetOverlap {
                    subnet: s.to_string(),
                    other: other.clone(),
                });
            }
            s
        }
        None => (0..=255u8)
            .map(|n| Subnet {
                addr: Ipv4Addr::new(10, 89, n, 0),
                prefix: 24,
            })
            .find(|s| !taken.iter().any(|(t, _)| t.overlaps(*s)))
            .ok_or(NetError::NoFreeSubnet)?,
    })
}

/// The gateway and address range of a new network on `subnet`: as given (each checked to lie
/// in the subnet), else the subnet's first address and the whole subnet.
pub(crate) fn gateway_and_range(
    subnet: Subnet,
    gateway: Option<&str>,
    range: Option<&str>,
) -> Result<(Ipv4Addr, Option<Subnet>), NetError> {
    let bad = |what: &str, reason: String| NetError::InvalidSubnet {
        subnet: what.to_string(),
        reason,
    };
    let host = |ip: Ipv4Addr| {
        let n = u32::from(ip) - u32::from(subnet.addr);
        n != 0 && u64::from(n) != subnet.size() - 1
    };
    let gw = match gateway.filter(|g| !g.is_empty()) {
        None => subnet.nth(1),
        Some(text) => {
            let ip: Ipv4Addr = text
                .parse()
                .map_err(|_| bad(text, "the gateway is not an IPv4 address".into()))?;
            if !subnet.contains(ip) || !host(ip) {
                return Err(bad(
                    text,
                    format!("the gateway must be a host address inside the subnet {subnet}"),
                ));
            }
            ip
        }
    };
    let range = match range.filter(|r| !r.is_empty()) {
        None => None,
        Some(text) => {
            let r: Subnet = text.parse()?;
            if r.prefix < subnet.prefix || !subnet.contains(r.addr) {
                return Err(bad(
                    text,
                    format!("the IP range must lie inside the subnet {subnet}"),
                ));
            }
            Some(r)
        }
    };
    Ok((gw, range))
}

/// The lowest free address of `net` (inside its range, if it has one), or `wanted` if it
/// is free and inside the subnet.
pub(crate) fn allocate(
    st: &State,
    net: &NetworkConfig,
    wanted: Option<Ipv4Addr>,
) -> Result<Ipv4Addr, NetError> {
    let used: std::collections::HashSet<Ipv4Addr> = st
        .endpoints
        .values()
        .filter(|e| e.network == net.name)
        .map(|e| e.ip)
        .collect();
    let last = (net.subnet.size() - 1) as u32; // broadcast
    let is_host = |ip: Ipv4Addr| {
        net.subnet.contains(ip) && {
            let n = u32::from(ip) - u32::from(net.subnet.addr);
            n != 0 && n != last
        }
    };
    if let Some(ip) = wanted {
        if !net.subnet_given {
            return Err(NetError::StaticAddress {
                ip,
                network: net.name.clone(),
                reason: "user specified IP address is supported only when connecting to networks with user configured subnets".into(),
            });
        }
        if !is_host(ip) {
            return Err(NetError::StaticAddress {
                ip,
                network: net.name.clone(),
                reason: format!("it is not a host address of the subnet {}", net.subnet),
            });
        }
        if ip == net.gateway || used.contains(&ip) {
            return Err(NetError::StaticAddress {
                ip,
                network: net.name.clone(),
                reason: "Address already in use".into(),
            });
        }
        return Ok(ip);
    }
    (1..last)
        .map(|n| net.subnet.nth(n))
        .filter(|ip| net.ip_range.is_none_or(|r| r.contains(*ip)))
        .find(|ip| *ip != net.gateway && !used.contains(ip))
        .ok_or_else(|| NetError::AddressesExhausted(net.name.clone()))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::endpoint::first_interface;
    use crate::{Driver, Endpoint};

    #[test]
    fn subnet_math() {
        let a: Subnet = "10.88.0.0/16".parse().unwrap();
        let b: Subnet = "10.88.7.0/24".parse().unwrap();
        let c: Subnet = "10.89.0.0/24".parse().unwrap();
        assert!(a.overlaps(b) && b.overlaps(a));
        assert!(!a.overlaps(c));
        assert!(a.contains(Ipv4Addr::new(10, 88, 255, 254)) && !a.contains(Ipv4Addr::new(10, 89, 0, 1)));
        assert_eq!(b.nth(1), Ipv4Addr::new(10, 88, 7, 1));
        assert_eq!(b.size(), 256);
        assert_eq!(serde_json::to_string(&b).unwrap(), "\"10.88.7.0/24\"");
        for bad in [
            "10.88.0.0",
            "10.88.0.1/16",
            "10.88.0.0/33",
            "10.88.0.0/31",
            "::1/64",
            "x/8",
        ] {
            assert!(bad.parse::<Subnet>().is_err(), "{bad}");
        }
    }

    #[test]
    fn allocation_skips_gateway_used_and_broadcast() {
        let subnet: Subnet = "10.9.9.0/30".parse().unwrap();
        let net = NetworkConfig::plain("n", "b", subnet, subnet.nth(1), Driver::Bridge);
        let mut st = State::default();
        let ip = allocate(&st, &net, None).unwrap();
        assert_eq!(ip, Ipv4Addr::new(10, 9, 9, 2));
        st.endpoints.insert(
            "x".into(),
            Endpoint {
                container_id: "x".into(),
                network: "n".into(),
                ip,
                prefix: 30,
                gateway: net.gateway,
                mac: String::new(),
                netns: PathBuf::new(),
                aliases: vec![],
                interface: first_interface(),
                default_route: true,
            },
        );
        assert!(matches!(
            allocate(&st, &net, None),
            Err(NetError::AddressesExhausted(_))
        ));
    }

    #[test]
    fn gateway_range_and_static_addresses() {
        let subnet: Subnet = "172.28.0.0/16".parse().unwrap();
        let (gw, range) = gateway_and_range(subnet, Some("172.28.5.254"), Some("172.28.5.0/24")).unwrap();
        assert_eq!(gw, Ipv4Addr::new(172, 28, 5, 254));
        for (g, r) in [
            (Some("10.0.0.1"), None),
            (Some("172.28.0.0"), None),
            (Some("172.28.255.255"), None),
            (Some("nope"), None),
            (None, Some("172.29.0.0/24")),
            (None, Some("172.0.0.0/8")),
        ] {
            assert!(gateway_and_range(subnet, g, r).is_err(), "{g:?} {r:?}");
        }
        let mut net = NetworkConfig::plain("n", "b", subnet, gw, Driver::Bridge);
        net.ip_range = range;
        let st = State::default();
        // From the range: its first address is a host of the /16 (as in docker's IPAM).
        assert_eq!(allocate(&st, &net, None).unwrap(), Ipv4Addr::new(172, 28, 5, 0));
        // A static address needs a subnet the user gave, as in docker.
        let want = Some(Ipv4Addr::new(172, 28, 9, 9));
        assert!(matches!(
            allocate(&st, &net, want),
            Err(NetError::StaticAddress { .. })
        ));
        net.subnet_given = true;
        assert_eq!(allocate(&st, &net, want).unwrap(), Ipv4Addr::new(172, 28, 9, 9));
        for bad in [gw, Ipv4Addr::new(172, 28, 0, 0), Ipv4Addr::new(10, 1, 1, 1)] {
            assert!(allocate(&st, &net, Some(bad)).is_err(), "{bad}");
        }
    }
}
