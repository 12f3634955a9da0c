//! Docker's default capability set and the raw syscalls that apply it.
//! Everything called in the child is a plain syscall: no allocation, no locks.

/// CHOWN DAC_OVERRIDE FSETID FOWNER MKNOD NET_RAW SETGID SETUID SETFCAP
/// SETPCAP NET_BIND_SERVICE SYS_CHROOT KILL AUDIT_WRITE.
pub(crate) const DEFAULT_CAPS: &[u32] = &[0, 1, 4, 3, 27, 13, 6, 7, 31, 8, 10, 18, 5, 29];

/// The capabilities by number, as docker names them (without `CAP_`).
const NAMES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// A capability's name as docker writes it: upper case, without `CAP_` (`net_admin` and
/// `CAP_NET_ADMIN` are `NET_ADMIN`); `ALL` stays.
pub fn normalize_capability(name: &str) -> String {
    let upper = name.trim().to_ascii_uppercase();
    upper.strip_prefix("CAP_").unwrap_or(&upper).to_string()
}

/// The capability set of `--cap-add` / `--cap-drop` (normalised names, `ALL` allowed) over
/// docker's default set, as docker computes it: `--cap-add ALL` starts from every
/// capability, `--cap-drop ALL` from none; then the named drops, then the named adds. An
/// unknown name is the error (docker's words).
pub fn capability_mask(add: &[String], drop: &[String]) -> Result<u64, String> {
    let bit = |name: &str| {
        NAMES
            .iter()
            .position(|n| *n == name)
            .map(|i| 1u64 << i)
            .ok_or_else(|| format!("unknown capability: \"CAP_{name}\""))
    };
    let all = (1u64 << NAMES.len()) - 1;
    let mut mask = if add.iter().any(|a| a == "ALL") {
        all
    } else if drop.iter().any(|d| d == "ALL") {
        0
    } else {
        default_mask()
    };
    for d in drop.iter().filter(|d| *d != "ALL") {
        mask &= !bit(d)?;
    }
    for a in add.iter().filter(|a| *a != "ALL") {
        mask |= bit(a)?;
    }
    Ok(mask)
}

pub(crate) fn default_mask() -> u64 {
    DEFAULT_CAPS.iter().fold(0u64, |m, c| m | (1u64 << c))
}

/// The highest capability number the kernel knows (read before clone).
pub(crate) fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// Drops every capability outside `keep` from the bounding set and clears
/// the ambient set. Returns the failing errno.
pub(crate) fn drop_bounding(keep: u64, last: u32) -> Result<(), i32> {
    for cap in 0..=last.min(63) {
        if keep & (1u64 << cap) != 0 {
            continue;
        }
        // SAFETY: plain prctl with integer arguments.
        let rc = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
        if rc != 0 {
            let e = errno();
            if e != libc::EINVAL {
                return Err(e);
            }
        }
    }
    // SAFETY: plain prctl with integer arguments.
    let rc = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    if rc != 0 && errno() != libc::EINVAL {
        return Err(errno());
    }
    Ok(())
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Sets effective = permitted = `set`, inheritable empty (like docker since
/// the CVE-2022-24769 fix).
pub(crate) fn set_caps(set: u64) -> Result<(), i32> {
    let header = CapHeader {
        version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
        pid: 0,
    };
    let lo = set as u32;
    let hi = (set >> 32) as u32;
    let data = [
        CapData {
            effective: lo,
            permitted: lo,
            inheritable: 0,
        },
        CapData {
            effective: hi,
            permitted: hi,
            inheritable: 0,
        },
    ];
    // SAFETY: header and data are valid for the kernel to read.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &header as *const CapHeader, data.as_ptr()) };
    if rc != 0 {
        return Err(errno());
    }
    Ok(())
}

pub(crate) fn errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_mask_matches_docker() {
        assert_eq!(default_mask(), 0xa80425fb);
    }

    fn v(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| normalize_capability(n)).collect()
    }

    #[test]
    fn docker_rules_for_adding_and_dropping() {
        assert_eq!(normalize_capability(" cap_net_admin "), "NET_ADMIN");
        assert_eq!(capability_mask(&[], &[]).unwrap(), 0xa80425fb);
        assert_eq!(capability_mask(&v(&["NET_ADMIN"]), &[]).unwrap(), 0xa80435fb);
        assert_eq!(capability_mask(&v(&["chown"]), &v(&["ALL"])).unwrap(), 1);
        assert_eq!(
            capability_mask(&v(&["ALL"]), &v(&["CHOWN"])).unwrap(),
            (1u64 << 41) - 2
        );
        assert_eq!(capability_mask(&[], &v(&["ALL"])).unwrap(), 0);
        assert_eq!(
            capability_mask(&v(&["NOPE"]), &[]).unwrap_err(),
            "unknown capability: \"CAP_NOPE\""
        );
    }
}
