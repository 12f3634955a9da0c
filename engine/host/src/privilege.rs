//! Which privileges this process has: the host's root, or an ordinary user's — either
//! plainly or as "root" inside the user namespace a rootless engine runs in (`berth-rootless`).
//! Every crate asks here rather than testing `geteuid() == 0`, which is also true inside
//! that namespace, where root owns nothing the host's root owns.

/// One line of `/proc/self/uid_map` (or `gid_map`): `count` ids from `inside` on are the
/// host's ids from `outside` on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    pub inside: u32,
    pub outside: u32,
    pub count: u32,
}

/// Parses an id map as the kernel prints it.
pub fn parse_id_map(text: &str) -> Vec<IdRange> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace().map(|w| w.parse::<u32>());
            match (f.next(), f.next(), f.next()) {
                (Some(Ok(inside)), Some(Ok(outside)), Some(Ok(count))) => Some(IdRange {
                    inside,
                    outside,
                    count,
                }),
                _ => None,
            }
        })
        .collect()
}

/// The identity map of the initial user namespace.
fn is_initial(map: &[IdRange]) -> bool {
    map == [IdRange {
        inside: 0,
        outside: 0,
        count: u32::MAX,
    }]
}

/// This process's uid map; the initial namespace's when it cannot be read.
pub fn uid_map() -> Vec<IdRange> {
    std::fs::read_to_string("/proc/self/uid_map")
        .map(|t| parse_id_map(&t))
        .unwrap_or_else(|_| {
            vec![IdRange {
                inside: 0,
                outside: 0,
                count: u32::MAX,
            }]
        })
}

/// True when this process is in a user namespace other than the host's (the rootless
/// engine's, or any other).
pub fn in_user_namespace() -> bool {
    !is_initial(&uid_map())
}

/// True only for the host's root: uid 0 in the initial user namespace.
pub fn host_root() -> bool {
    rustix::process::geteuid().is_root() && !in_user_namespace()
}

/// True when files may be given any owner an image names: as the host's root, or inside a
/// user namespace that maps more than one id (the subordinate ids).
pub fn can_chown() -> bool {
    if !rustix::process::geteuid().is_root() {
        return false;
    }
    let map = uid_map();
    is_initial(&map) || map.iter().map(|r| u64::from(r.count)).sum::<u64>() > 1
}

/// Whether this process's user namespace forbids setgroups (one that maps one id without
/// newgidmap has "deny" in `/proc/self/setgroups`).
pub fn setgroups_denied() -> bool {
    std::fs::read_to_string("/proc/self/setgroups").is_ok_and(|t| t.trim() == "deny")
}

/// Whether `gid` exists in this process's user namespace (always, in the host's).
pub fn gid_mapped(gid: u32) -> bool {
    let map = std::fs::read_to_string("/proc/self/gid_map")
        .map(|t| parse_id_map(&t))
        .unwrap_or_default();
    map.is_empty() || outside(&map, gid).is_some()
}

/// The host's uid of this process: its uid mapped out of a user namespace.
pub fn host_uid() -> u32 {
    let uid = rustix::process::geteuid().as_raw();
    outside(&uid_map(), uid).unwrap_or(uid)
}

/// `id` as the host sees it, through `map`.
pub fn outside(map: &[IdRange], id: u32) -> Option<u32> {
    map.iter()
        .find(|r| id >= r.inside && id - r.inside < r.count)
        .map(|r| r.outside + (id - r.inside))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_maps_and_maps_ids_out() {
        let map = parse_id_map("         0       1000          1\n         1     100000      65536\n");
        assert_eq!(map.len(), 2);
        assert!(!is_initial(&map));
        assert_eq!(outside(&map, 0), Some(1000));
        assert_eq!(outside(&map, 1), Some(100000));
        assert_eq!(outside(&map, 65536), Some(165535));
        assert_eq!(outside(&map, 65537), None);
        assert!(is_initial(&parse_id_map("0 0 4294967295\n")));
    }
}
