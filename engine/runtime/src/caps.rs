//! Docker's default capability set and the raw syscalls that apply it.
//! Everything called in the child is a plain syscall: no allocation, no locks.

/// CHOWN DAC_OVERRIDE FSETID FOWNER MKNOD NET_RAW SETGID SETUID SETFCAP
/// SETPCAP NET_BIND_SERVICE SYS_CHROOT KILL AUDIT_WRITE.
pub(crate) const DEFAULT_CAPS: &[u32] = &[0, 1, 4, 3, 27, 13, 6, 7, 31, 8, 10, 18, 5, 29];

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
    #[test]
    fn default_mask_matches_docker() {
        assert_eq!(super::default_mask(), 0xa80425fb);
    }
}
