//! Which accelerator a machine boots with, and how long a boot may take before it counts
//! as hung. Pure: the host's facts come in as arguments.

use std::time::Duration;

/// A QEMU accelerator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    /// Linux's KVM.
    Kvm,
    /// macOS's Hypervisor.framework (code for a host not run here).
    Hvf,
    /// Windows's hypervisor platform (code for a host not run here).
    Whpx,
    /// QEMU's software emulation: works everywhere, slowly.
    Tcg,
}

/// The host's operating system, as far as the accelerator is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostOs {
    Linux,
    MacOs,
    Windows,
}

impl HostOs {
    pub fn current() -> HostOs {
        if cfg!(target_os = "macos") {
            HostOs::MacOs
        } else if cfg!(windows) {
            HostOs::Windows
        } else {
            HostOs::Linux
        }
    }
}

impl Accel {
    /// QEMU's name (`-accel NAME`), also what `inspect` shows.
    pub fn name(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Hvf => "hvf",
            Accel::Whpx => "whpx",
            Accel::Tcg => "tcg",
        }
    }

    pub fn parse(s: &str) -> Option<Accel> {
        match s.trim().to_ascii_lowercase().as_str() {
            "kvm" => Some(Accel::Kvm),
            "hvf" => Some(Accel::Hvf),
            "whpx" => Some(Accel::Whpx),
            "tcg" => Some(Accel::Tcg),
            _ => None,
        }
    }

    /// The CPU model to ask for: the host's own under a hypervisor, QEMU's fullest model
    /// under emulation.
    pub fn cpu(self) -> &'static str {
        match self {
            Accel::Tcg => "max",
            _ => "host",
        }
    }

    /// How long a boot may take before it counts as hung. Under a hypervisor a boot takes
    /// a second or two; under TCG on two cores, about ten.
    pub fn boot_limit(self) -> Duration {
        match self {
            Accel::Tcg => Duration::from_secs(180),
            _ => Duration::from_secs(30),
        }
    }
}

/// The accelerators to try, in order: `forced` alone if given; else the host's hypervisor
/// when it is usable, then TCG.
pub fn choices(os: HostOs, hypervisor_usable: bool, forced: Option<Accel>) -> Vec<Accel> {
    if let Some(a) = forced {
        return vec![a];
    }
    let hw = match os {
        HostOs::Linux => Accel::Kvm,
        HostOs::MacOs => Accel::Hvf,
        HostOs::Windows => Accel::Whpx,
    };
    if hypervisor_usable {
        vec![hw, Accel::Tcg]
    } else {
        vec![Accel::Tcg]
    }
}

/// Whether Linux's KVM can be opened by this user.
pub fn kvm_usable() -> bool {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok()
}

/// The one sentence said when a machine runs under TCG.
pub const TCG_WARNING: &str = "no hardware virtualization: containers will be slow";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hypervisor_first_then_tcg() {
        assert_eq!(choices(HostOs::Linux, true, None), [Accel::Kvm, Accel::Tcg]);
        assert_eq!(choices(HostOs::MacOs, true, None), [Accel::Hvf, Accel::Tcg]);
        assert_eq!(choices(HostOs::Windows, true, None), [Accel::Whpx, Accel::Tcg]);
        assert_eq!(choices(HostOs::Linux, false, None), [Accel::Tcg]);
        assert_eq!(choices(HostOs::Linux, true, Some(Accel::Tcg)), [Accel::Tcg]);
        assert_eq!(choices(HostOs::Linux, false, Some(Accel::Kvm)), [Accel::Kvm]);
    }

    #[test]
    fn names_round_trip_and_limits_differ() {
        for a in [Accel::Kvm, Accel::Hvf, Accel::Whpx, Accel::Tcg] {
            assert_eq!(Accel::parse(a.name()), Some(a));
        }
        assert_eq!(Accel::parse(" KVM "), Some(Accel::Kvm));
        assert_eq!(Accel::parse("xen"), None);
        assert!(Accel::Tcg.boot_limit() > Accel::Kvm.boot_limit());
        assert_eq!(Accel::Tcg.cpu(), "max");
        assert_eq!(Accel::Kvm.cpu(), "host");
    }
}
