//! Address management: the `Subnet` and `Subnet6` types and their arithmetic, the subnets a
//! new network gets, and the lowest free address of a network for a new endpoint.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
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

/// `ADDR/PREFIX` as its address (of `family`) and prefix length.
fn split_cidr<A: FromStr>(s: &str, family: &str) -> Result<(A, u8), NetError> {
    let bad = |reason: String| NetError::InvalidSubnet {
        subnet: s.to_string(),
        reason,
    };
    let (ip, prefix) = s
        .split_once('/')
        .ok_or_else(|| bad("it has no '/prefix'".into()))?;
    let addr = ip
        .parse()
        .map_err(|_| bad(format!("the address is not {family}")))?;
    let prefix = prefix
        .parse()
        .map_err(|_| bad("the prefix is not a number".into()))?;
    Ok((addr, prefix))
}

impl FromStr for Subnet {
    type Err = NetError;
    fn from_str(s: &str) -> Result<Self, NetError> {
        let bad = |reason: &str| NetError::InvalidSubnet {
            subnet: s.to_string(),
            reason: reason.to_string(),
        };
        let (addr, prefix) = split_cidr::<Ipv4Addr>(s, "IPv4")?;
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

/// Serialised as their text (`"10.88.0.0/16"`, `"fd00:b0::/64"`), read back with `FromStr`.
macro_rules! serde_as_text {
    ($($t:ty),*) => {$(
        impl Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    )*};
}

serde_as_text!(Subnet, Subnet6);

/// An IPv6 network in CIDR form (a user network's second subnet, docker's `--ipv6`);
/// serialised as its text, e.g. `"fd00:b0::/64"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Subnet6 {
    pub addr: Ipv6Addr,
    pub prefix: u8,
}

impl Subnet6 {
    fn mask(self) -> u128 {
        if self.prefix == 0 {
            0
        } else {
            u128::MAX << (128 - u32::from(self.prefix))
        }
    }

    /// True when `ip` lies inside this subnet.
    pub fn contains(self, ip: Ipv6Addr) -> bool {
        u128::from(ip) & self.mask() == u128::from(self.addr)
    }

    /// True when the two subnets share any address.
    pub fn overlaps(self, other: Subnet6) -> bool {
        let mask = self.mask() & other.mask();
        u128::from(self.addr) & mask == u128::from(other.addr) & mask
    }

    /// The n-th address of the subnet (0 is the subnet-router anycast address).
    pub fn nth(self, n: u128) -> Ipv6Addr {
        Ipv6Addr::from(u128::from(self.addr) + n)
    }

    /// The number of addresses in the subnet, capped at 2^64 (more is never handed out).
    fn size(self) -> u128 {
        1u128 << (128 - u32::from(self.prefix)).min(64)
    }
}

impl fmt::Display for Subnet6 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Subnet6 {
    type Err = NetError;
    fn from_str(s: &str) -> Result<Self, NetError> {
        let bad = |reason: &str| NetError::InvalidSubnet {
            subnet: s.to_string(),
            reason: reason.to_string(),
        };
        let (addr, prefix) = split_cidr::<Ipv6Addr>(s, "IPv6")?;
        if !(16..=124).contains(&prefix) {
            return Err(bad("an IPv6 prefix must be between /16 and /124"));
        }
        let net = Subnet6 { addr, prefix };
        if u128::from(addr) & !net.mask() != 0 {
            return Err(bad("host bits are set after the prefix"));
        }
        Ok(net)
    }
}

/// True when `text` is written as an IPv6 subnet (it has a ':'), so a list of subnets can be
/// told apart the way docker does (`--subnet` given twice).
pub fn is_ipv6_subnet(text: &str) -> bool {
    text.contains(':')
}

/// The IPv6 subnet of a new network: `requested` unless it overlaps one of `taken`, else a
/// unique local /64 derived from the network's name (`fdXX:XXXX:XXXX::/64`, the way podman
/// picks one; docker 20.10 asks for `--subnet` instead), the first one that is free.
pub(crate) fn choose_subnet6(
    requested: Option<&str>,
    name: &str,
    taken: &[(Subnet6, String)],
) -> Result<Subnet6, NetError> {
    if let Some(text) = requested {
        let s: Subnet6 = text.parse()?;
        if let Some((_, other)) = taken.iter().find(|(t, _)| t.overlaps(s)) {
            return Err(NetError::SubnetOverlap {
                subnet: s.to_string(),
                other: other.clone(),
            });
        }
        return Ok(s);
    }
    (0u32..64)
        .map(|salt| {
            let h = crate::network::fnv(&format!("berth-ipv6:{name}:{salt}"));
            // fd00::/8, then 40 bits of the hash as the global id, subnet id 0.
            let global = u128::from(h & 0xff_ffff_ffff);
            Subnet6 {
                addr: Ipv6Addr::from((0xfdu128 << 120) | (global << 80)),
                prefix: 64,
            }
        })
        .find(|s| !taken.iter().any(|(t, _)| t.overlaps(*s)))
        .ok_or(NetError::NoFreeSubnet)
}

/// The IPv6 gateway of a new network on `subnet`: as given (checked to lie in the subnet and
/// not to be its first address), else the subnet's `::1`.
pub(crate) fn gateway6(subnet: Subnet6, gateway: Option<&str>) -> Result<Ipv6Addr, NetError> {
    match gateway.filter(|g| !g.is_empty()) {
        None => Ok(subnet.nth(1)),
        Some(text) => {
            let bad = |reason: String| NetError::InvalidSubnet {
                subnet: text.to_string(),
                reason,
            };
            let ip: Ipv6Addr = text
                .parse()
                .map_err(|_| bad("the IPv6 gateway is not an IPv6 address".into()))?;
            if !subnet.contains(ip) || ip == subnet.addr {
                return Err(bad(format!(
                    "the IPv6 gateway must be a host address inside the subnet {subnet}"
                )));
            }
            Ok(ip)
        }
    }
}

/// The lowest free IPv6 address of `net`'s IPv6 subnet, or `wanted` if it is free and inside
/// it; `None` when the network has no IPv6 subnet and none is wanted.
pub(crate) fn allocate6(
    st: &State,
    net: &NetworkConfig,
    wanted: Option<Ipv6Addr>,
) -> Result<Option<Ipv6Addr>, NetError> {
    let Some(v6) = &net.ipv6 else {
        return match wanted {
            None => Ok(None),
            Some(_) => Err(NetError::NoIpv6(net.name.clone())),
        };
    };
    let used: std::collections::HashSet<Ipv6Addr> = st
        .endpoints
        .values()
        .filter(|e| e.network == net.name)
        .filter_map(|e| e.ipv6.map(|a| a.ip))
        .collect();
    if let Some(ip) = wanted {
        let reason = if !v6.subnet.contains(ip) || ip == v6.subnet.addr {
            Some(format!("it is not a host address of the subnet {}", v6.subnet))
        } else if ip == v6.gateway || used.contains(&ip) {
            Some("Address already in use".into())
        } else {
            None
        };
        return match reason {
            Some(reason) => Err(NetError::StaticAddress {
                ip: ip.into(),
                network: net.name.clone(),
                reason,
            }),
            None => Ok(Some(ip)),
        };
    }
    (1..v6.subnet.size())
        .map(|n| v6.subnet.nth(n))
        .find(|ip| *ip != v6.gateway && !used.contains(ip))
        .map(Some)
        .ok_or_else(|| NetError::AddressesExhausted(net.name.clone()))
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
                ip: ip.into(),
                network: net.name.clone(),
                reason: "user specified IP address is supported only when connecting to networks with user configured subnets".into(),
            });
        }
        if !is_host(ip) {
            return Err(NetError::StaticAddress {
                ip: ip.into(),
                network: net.name.clone(),
                reason: format!("it is not a host address of the subnet {}", net.subnet),
            });
        }
        if ip == net.gateway || used.contains(&ip) {
            return Err(NetError::StaticAddress {
                ip: ip.into(),
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
    fn ipv6_subnets_gateways_and_addresses() {
        let a: Subnet6 = "fd00:b0:1::/64".parse().unwrap();
        assert!(a.contains("fd00:b0:1::ffff".parse().unwrap()));
        assert!(!a.contains("fd00:b0:2::1".parse().unwrap()));
        assert!(a.overlaps("fd00:b0::/32".parse().unwrap()));
        assert!(!a.overlaps("fd00:b0::/48".parse().unwrap()));
        assert_eq!(serde_json::to_string(&a).unwrap(), "\"fd00:b0:1::/64\"");
        for bad in ["fd00::1/64", "fd00::/8", "fd00::/127", "10.0.0.0/8", "fd00::"] {
            assert!(bad.parse::<Subnet6>().is_err(), "{bad}");
        }
        assert!(is_ipv6_subnet("fd00::/64") && !is_ipv6_subnet("10.0.0.0/8"));
        // Chosen: a unique local /64, stable for the name, different from one taken.
        let first = choose_subnet6(None, "web", &[]).unwrap();
        assert_eq!(first.prefix, 64);
        assert_eq!(first.addr.segments()[0] >> 8, 0xfd);
        assert_eq!(first, choose_subnet6(None, "web", &[]).unwrap());
        let next = choose_subnet6(None, "web", &[(first, "other".into())]).unwrap();
        assert!(!next.overlaps(first));
        assert!(matches!(
            choose_subnet6(Some("fd00:b0::/32"), "x", &[(a, "a".into())]),
            Err(NetError::SubnetOverlap { .. })
        ));
        assert_eq!(
            gateway6(a, None).unwrap(),
            "fd00:b0:1::1".parse::<Ipv6Addr>().unwrap()
        );
        for bad in ["fd00:b0:2::1", "fd00:b0:1::", "nope"] {
            assert!(gateway6(a, Some(bad)).is_err(), "{bad}");
        }
        let subnet: Subnet = "10.9.9.0/24".parse().unwrap();
        let mut net = NetworkConfig::plain("n", "b", subnet, subnet.nth(1), Driver::Bridge);
        let st = State::default();
        assert_eq!(allocate6(&st, &net, None).unwrap(), None);
        assert!(matches!(
            allocate6(&st, &net, Some("fd00::5".parse().unwrap())),
            Err(NetError::NoIpv6(_))
        ));
        net.ipv6 = Some(crate::Ipv6Config {
            subnet: a,
            gateway: gateway6(a, None).unwrap(),
        });
        assert_eq!(
            allocate6(&st, &net, None).unwrap(),
            Some("fd00:b0:1::2".parse().unwrap())
        );
        let want: Ipv6Addr = "fd00:b0:1::99".parse().unwrap();
        assert_eq!(allocate6(&st, &net, Some(want)).unwrap(), Some(want));
        for bad in ["fd00:b0:1::1", "fd00:b0:1::", "fd00:9::1"] {
            assert!(allocate6(&st, &net, Some(bad.parse().unwrap())).is_err(), "{bad}");
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
                ipv6: None,
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
