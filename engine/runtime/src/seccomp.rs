//! The default seccomp profile.
//!
//! Docker's profile is an allow-list; this one is a deny-list that returns
//! EPERM for the syscalls docker's profile refuses to a container without
//! extra capabilities (namespace, mount, module, kexec, keyring, bpf,
//! perf, clock, swap, reboot, accounting and handle syscalls, `clone` with
//! namespace flags, `personality` with non-default personas). `clone3`
//! returns ENOSYS so libc falls back to `clone`, whose flags can be
//! inspected. `ptrace` is allowed, as docker does on kernels >= 4.8 (the
//! container has no CAP_SYS_PTRACE, so it can only trace its own
//! processes). Syscalls of other ABIs are refused: the filter kills a
//! process using a foreign architecture, and on x86_64 x32 syscall numbers
//! get ENOSYS.

use std::collections::BTreeMap;

use seccompiler::{
    sock_filter, BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use crate::RuntimeError;

const DENIED: &[i64] = &[
    libc::SYS_unshare,
    libc::SYS_setns,
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_open_tree,
    libc::SYS_move_mount,
    libc::SYS_fsopen,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_mount_setattr,
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_bpf,
    libc::SYS_perf_event_open,
    libc::SYS_reboot,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_acct,
    libc::SYS_settimeofday,
    libc::SYS_clock_settime,
    libc::SYS_clock_adjtime,
    libc::SYS_open_by_handle_at,
    libc::SYS_name_to_handle_at,
    libc::SYS_userfaultfd,
    libc::SYS_lookup_dcookie,
    libc::SYS_quotactl,
    libc::SYS_syslog,
    libc::SYS_vhangup,
    libc::SYS_fanotify_init,
    libc::SYS_kcmp,
    libc::SYS_move_pages,
    libc::SYS_mbind,
    libc::SYS_set_mempolicy,
    libc::SYS_get_mempolicy,
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_iopl,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_ioperm,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_uselib,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_ustat,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_sysfs,
    #[cfg(target_arch = "x86_64")]
    libc::SYS__sysctl,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_nfsservctl,
];

/// Personas docker allows: PER_LINUX, PER_LINUX32, UNAME26 variants, query.
const PERSONAS: &[u64] = &[0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

const NAMESPACE_FLAGS: &[u64] = &[
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
    libc::CLONE_NEWCGROUP as u64,
];

fn err(e: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::InvalidSpec(format!("the seccomp profile does not compile: {e}"))
}

/// Compiles the filters, in install order.
pub(crate) fn default_filters() -> Result<Vec<BpfProgram>, RuntimeError> {
    let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(err)?;
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for nr in DENIED {
        rules.insert(*nr, vec![]);
    }
    let persona = PERSONAS
        .iter()
        .map(|p| SeccompCondition::new(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Ne, *p))
        .collect::<Result<Vec<_>, _>>()
        .map_err(err)?;
    rules.insert(
        libc::SYS_personality,
        vec![SeccompRule::new(persona).map_err(err)?],
    );
    let mut clone_rules = Vec::new();
    for flag in NAMESPACE_FLAGS {
        let cond = SeccompCondition::new(0, SeccompCmpArgLen::Qword, SeccompCmpOp::MaskedEq(*flag), *flag)
            .map_err(err)?;
        clone_rules.push(SeccompRule::new(vec![cond]).map_err(err)?);
    }
    rules.insert(libc::SYS_clone, clone_rules);
    let deny = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )
    .map_err(err)?;

    let mut enosys = BTreeMap::new();
    enosys.insert(libc::SYS_clone3, vec![]);
    let clone3 = SeccompFilter::new(
        enosys,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        arch,
    )
    .map_err(err)?;

    let mut out: Vec<BpfProgram> = vec![deny.try_into().map_err(err)?, clone3.try_into().map_err(err)?];
    if arch == TargetArch::x86_64 {
        out.push(x32_filter());
    }
    Ok(out)
}

/// Refuses syscall numbers with the x32 bit set (same audit arch as x86_64).
fn x32_filter() -> BpfProgram {
    /// BPF_LD | BPF_W | BPF_ABS
    const LD_W_ABS: u16 = 0x20;
    const JGE_K: u16 = 0x05 | 0x30;
    const RET_K: u16 = 0x06;
    vec![
        sock_filter {
            code: LD_W_ABS,
            jt: 0,
            jf: 0,
            k: 0, // seccomp_data.nr
        },
        sock_filter {
            code: JGE_K,
            jt: 0,
            jf: 1,
            k: 0x4000_0000,
        },
        sock_filter {
            code: RET_K,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32,
        },
        sock_filter {
            code: RET_K,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ALLOW,
        },
    ]
}

/// Installs one filter; called in the child after no_new_privs.
pub(crate) fn install(prog: &[sock_filter]) -> Result<(), i32> {
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: fprog points at a valid filter for the duration of the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0,
            &fprog as *const libc::sock_fprog,
        )
    };
    if rc != 0 {
        return Err(crate::caps::errno());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn profile_compiles() {
        let f = super::default_filters().unwrap();
        assert!(f.len() >= 2);
        assert!(f.iter().all(|p| !p.is_empty() && p.len() < 4096));
    }
}
