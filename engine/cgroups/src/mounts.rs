//! Finding the cgroup hierarchies from `/proc/self/mountinfo` and
//! `/proc/self/cgroup`.

use std::path::{Path, PathBuf};

use crate::{fsutil, CgroupError, Layout};

/// The v1 controllers the kernel knows about (named hierarchies such as
/// `name=systemd` carry no controller and are not listed).
const V1_CONTROLLERS: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "net_prio",
    "blkio",
    "perf_event",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
];

/// One v1 hierarchy: the controllers mounted together and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct V1Mount {
    pub controllers: Vec<String>,
    pub path: PathBuf,
}

/// The cgroup hierarchies visible to this process.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Hierarchies {
    /// v1 hierarchies carrying at least one controller, first mount wins.
    pub v1: Vec<V1Mount>,
    /// The cgroup2 mount (preferring /sys/fs/cgroup when several exist).
    pub v2: Option<PathBuf>,
}

impl Hierarchies {
    /// Reads the hierarchies of the running system.
    pub fn current() -> Result<Hierarchies, CgroupError> {
        let mountinfo = fsutil::read(Path::new("/proc/self/mountinfo"))?;
        // /proc/self/cgroup is optional corroboration; a kernel without
        // cgroups has no such file, which detection then reports.
        let proc_cgroup = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        Ok(Hierarchies::parse(&mountinfo, &proc_cgroup))
    }

    /// Builds the hierarchy list from the text of `/proc/self/mountinfo` and
    /// `/proc/self/cgroup`. A v1 controller counts only if the mount says so
    /// and, when `/proc/self/cgroup` is non-empty, the kernel also lists it
    /// there (so stale or foreign mounts are ignored).
    pub fn parse(mountinfo: &str, proc_cgroup: &str) -> Hierarchies {
        let attached = attached_v1_controllers(proc_cgroup);
        let mut out = Hierarchies::default();
        for line in mountinfo.lines() {
            let Some(mount) = parse_mount_line(line) else {
                continue;
            };
            match mount.fstype.as_str() {
                "cgroup2" => {
                    let preferred = mount.mount_point == Path::new("/sys/fs/cgroup");
                    if out.v2.is_none() || preferred {
                        out.v2 = Some(mount.mount_point);
                    }
                }
                "cgroup" => {
                    let controllers: Vec<String> = mount
                        .super_options
                        .iter()
                        .filter(|o| V1_CONTROLLERS.contains(&o.as_str()))
                        .filter(|o| attached.as_ref().is_none_or(|a| a.contains(o)))
                        .filter(|o| !out.v1.iter().any(|m| m.controllers.contains(o)))
                        .cloned()
                        .collect();
                    if !controllers.is_empty() {
                        out.v1.push(V1Mount {
                            controllers,
                            path: mount.mount_point,
                        });
                    }
                }
                _ => {}
            }
        }
        out
    }

    /// The layout these hierarchies form.
    pub fn layout(&self) -> Result<Layout, CgroupError> {
        match (self.v1.is_empty(), self.v2.is_some()) {
            (false, true) => Ok(Layout::Hybrid),
            (false, false) => Ok(Layout::V1),
            (true, true) => Ok(Layout::V2),
            (true, false) => Err(CgroupError::NotMounted),
        }
    }

    /// Where the v1 `controller` is mounted.
    pub fn v1_path(&self, controller: &str) -> Option<&Path> {
        self.v1
            .iter()
            .find(|m| m.controllers.iter().any(|c| c == controller))
            .map(|m| m.path.as_path())
    }
}

/// The v1 controllers `/proc/self/cgroup` lists, or `None` when it lists
/// none at all (an empty file, or only the `0::` v2 line, tells nothing about
/// v1 mounts in a mount namespace we do not share).
fn attached_v1_controllers(proc_cgroup: &str) -> Option<Vec<String>> {
    let mut found = Vec::new();
    for line in proc_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(list)) = (parts.next(), parts.next()) else {
            continue;
        };
        if id == "0" {
            continue;
        }
        found.extend(
            list.split(',')
                .filter(|c| !c.is_empty() && !c.starts_with("name="))
                .map(String::from),
        );
    }
    if found.is_empty() {
        None
    } else {
        Some(found)
    }
}

struct Mount {
    mount_point: PathBuf,
    fstype: String,
    super_options: Vec<String>,
}

/// Parses one mountinfo line: `id parent maj:min root mountpoint options
/// [optional fields...] - fstype source superoptions`.
fn parse_mount_line(line: &str) -> Option<Mount> {
    let (before, after) = line.split_once(" - ")?;
    let mount_point = before.split(' ').nth(4)?;
    let mut after = after.split(' ');
    let fstype = after.next()?.to_string();
    let _source = after.next()?;
    let super_options = after.next().unwrap_or("").split(',').map(String::from).collect();
    Some(Mount {
        mount_point: PathBuf::from(berth_host::mounts::unescape(mount_point)),
        fstype,
        super_options,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This machine's layout: v1 controllers, plus cgroup2 at .../unified.
    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const HYBRID_PROC: &str = "9:name=systemd:/\n8:pids:/\n7:blkio:/\n6:freezer:/\n5:devices:/\n\
        4:memory:/x\n3:cpuset:/\n2:cpuacct:/\n1:cpu:/\n0::/\n";

    /// A classic v1 host (Debian 9 style): cpu,cpuacct and net_cls,net_prio
    /// co-mounted, systemd's named hierarchy, optional fields present.
    const V1: &str = "\
25 18 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,xattr,name=systemd
28 25 0:25 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,cpu,cpuacct
29 25 0:26 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,net_cls,net_prio
30 25 0:27 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,memory
31 25 0:28 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,pids
32 25 0:29 / /sys/fs/cgroup/freezer rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,freezer
33 25 0:30 / /sys/fs/cgroup/cpuset rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,cpuset,clone_children
";

    /// A pure v2 host (Debian 12 default).
    const V2: &str = "\
22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
26 23 0:24 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
27 23 0:25 / /sys/fs/pstore rw,nosuid,nodev,noexec,relatime shared:5 - pstore pstore rw
";

    #[test]
    fn hybrid_layout() {
        let h = Hierarchies::parse(HYBRID, HYBRID_PROC);
        assert_eq!(h.layout().unwrap(), Layout::Hybrid);
        assert_eq!(h.v2.as_deref(), Some(Path::new("/sys/fs/cgroup/unified")));
        assert_eq!(h.v1.len(), 8, "name=systemd carries no controller: {:?}", h.v1);
        assert_eq!(h.v1_path("memory"), Some(Path::new("/sys/fs/cgroup/memory")));
        assert_eq!(h.v1_path("cpuacct"), Some(Path::new("/sys/fs/cgroup/cpuacct")));
        assert_eq!(h.v1_path("hugetlb"), None);
    }

    #[test]
    fn v1_layout_with_comounts() {
        let h = Hierarchies::parse(V1, "");
        assert_eq!(h.layout().unwrap(), Layout::V1);
        assert_eq!(h.v2, None);
        assert_eq!(h.v1_path("cpu"), Some(Path::new("/sys/fs/cgroup/cpu,cpuacct")));
        assert_eq!(
            h.v1_path("cpuacct"),
            Some(Path::new("/sys/fs/cgroup/cpu,cpuacct"))
        );
        assert_eq!(
            h.v1_path("net_prio"),
            Some(Path::new("/sys/fs/cgroup/net_cls,net_prio"))
        );
        assert_eq!(h.v1_path("cpuset"), Some(Path::new("/sys/fs/cgroup/cpuset")));
        let cpu = h.v1.iter().find(|m| m.path.ends_with("cpu,cpuacct")).unwrap();
        assert_eq!(cpu.controllers, ["cpu", "cpuacct"]);
    }

    #[test]
    fn v2_layout() {
        let h = Hierarchies::parse(V2, "0::/user.slice/session-1.scope\n");
        assert_eq!(h.layout().unwrap(), Layout::V2);
        assert_eq!(h.v2.as_deref(), Some(Path::new("/sys/fs/cgroup")));
        assert!(h.v1.is_empty());
    }

    #[test]
    fn nothing_mounted() {
        let h = Hierarchies::parse("22 1 0:21 / /proc rw - proc proc rw\n", "");
        assert!(matches!(h.layout(), Err(CgroupError::NotMounted)));
        // A named-only v1 hierarchy is not a usable layout either.
        let named = "40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd\n";
        assert!(matches!(
            Hierarchies::parse(named, "").layout(),
            Err(CgroupError::NotMounted)
        ));
    }

    #[test]
    fn proc_cgroup_filters_unattached_controllers() {
        // memory is mounted but the kernel does not list it for us.
        let h = Hierarchies::parse(HYBRID, "8:pids:/\n1:cpu:/\n0::/\n");
        assert_eq!(h.v1_path("pids"), Some(Path::new("/sys/fs/cgroup/pids")));
        assert_eq!(h.v1_path("memory"), None);
    }

    #[test]
    fn duplicate_mounts_first_wins_and_escapes() {
        let text = "\
1 0 0:1 / /sys/fs/cgroup/mem\\040ory rw - cgroup cgroup rw,memory
2 0 0:1 / /mnt/again rw - cgroup cgroup rw,memory
3 0 0:2 / /mnt/v2 rw - cgroup2 cgroup2 rw
4 0 0:2 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw
";
        let h = Hierarchies::parse(text, "");
        assert_eq!(h.v1.len(), 1);
        assert_eq!(h.v1_path("memory"), Some(Path::new("/sys/fs/cgroup/mem ory")));
        assert_eq!(h.v2.as_deref(), Some(Path::new("/sys/fs/cgroup")));
    }
}
