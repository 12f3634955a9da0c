//! The user namespace an ordinary user's engine runs in, as rootless podman does it.
//!
//! [`enter`] is called first thing by every `berth` process that may serve or use an
//! engine, while it is still single-threaded. For the host's root, and for a process that
//! is already inside a user namespace (a shim the engine started), it does nothing. For an
//! ordinary user it joins the user's **keeper**: a process that holds a user namespace
//! (container root = the user; ids from 1 on = the user's subordinate ids, mapped by
//! Debian's `newuidmap`/`newgidmap`, or the user's own id alone when there are none), a
//! mount namespace of its own (overlays, pinned network namespaces and binds made by one
//! engine are seen by the next) and the user's own network namespace, where container
//! bridges, veths and nft tables live, given outbound access by pasta (Debian `passt`) or
//! slirp4netns. The first caller starts the keeper (under an `flock`, so two commands
//! never start two); later ones join its user and mount namespaces with `setns`. The
//! process stays in the host's network namespace, so published ports are bound on the
//! host's addresses; berth-net enters [`network_namespace`] for everything else.
//!
//! Files: `runtime_dir()/rootless/` (`$XDG_RUNTIME_DIR/berth/rootless`): `keeper.pid`,
//! `lock`, `network` (which helper gives the namespace outbound access, or none).
//!
//! **Architecture invariant:** the only place that creates or joins user namespaces; no
//! setuid helper but Debian's newuidmap/newgidmap is used. Everything else asks
//! `berth_host::privilege` whether it runs rootless.

mod keeper;
mod outbound;
mod subids;

use std::path::PathBuf;

pub use outbound::Outbound;
pub use subids::{lookup as lookup_subids, map_args};

#[derive(Debug, thiserror::Error)]
pub enum RootlessError {
    #[error("could not {what}: {source} — Berth needs user namespaces to run without root: {fix}, or use Berth's virtual machine instead")]
    Namespace {
        what: String,
        source: std::io::Error,
        /// What to run as root ([`userns_fix`]).
        fix: String,
    },
    #[error("{tool} could not map the subordinate ids of {user}: {detail} — check /etc/subuid and /etc/subgid, or install the uidmap package (apt-get install uidmap)")]
    IdMap {
        tool: &'static str,
        user: String,
        detail: String,
    },
    /// The user's runtime directory is not the user's own, private one (berth_host::places).
    #[error("{0}")]
    Place(#[from] berth_host::places::PlaceError),
    #[error("could not use {path}: {source} — check that the directory is yours and writable")]
    Files { path: PathBuf, source: std::io::Error },
}

/// What root runs so that ordinary users may make user namespaces, from this kernel's
/// settings: Debian's `kernel.unprivileged_userns_clone`, Ubuntu 24.04's AppArmor
/// restriction, or the count limit.
pub fn userns_fix() -> String {
    let read = |p: &str| std::fs::read_to_string(p).ok();
    fix_for(
        read("/proc/sys/kernel/unprivileged_userns_clone").as_deref(),
        read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").as_deref(),
        read("/proc/sys/user/max_user_namespaces").as_deref(),
    )
}

/// [`userns_fix`] for the three settings' values (`None`: this kernel has no such setting).
pub fn fix_for(
    unprivileged_clone: Option<&str>,
    apparmor_restrict: Option<&str>,
    max: Option<&str>,
) -> String {
    let is = |v: Option<&str>, want: &str| v.is_some_and(|v| v.trim() == want);
    if is(unprivileged_clone, "0") {
        "as root, run `sysctl -w kernel.unprivileged_userns_clone=1`".into()
    } else if is(apparmor_restrict, "1") {
        "as root, run `sysctl -w kernel.apparmor_restrict_unprivileged_userns=0` (or give berth an AppArmor profile that allows user namespaces)".into()
    } else if is(max, "0") {
        "as root, run `sysctl -w user.max_user_namespaces=15000`".into()
    } else {
        "check with root that user namespaces are allowed (`sysctl user.max_user_namespaces`)".into()
    }
}

/// How the user's namespace maps ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mapping {
    /// Container root is the user; container ids from 1 on are the subordinate ranges
    /// (uids, gids) `(start, count)`.
    Subordinate { uids: (u32, u32), gids: (u32, u32) },
    /// Container root is the user and no other id exists.
    OneId,
}

/// What [`enter`] did.
#[derive(Debug)]
pub enum Entered {
    /// The host's root, or already inside a user namespace: nothing to do.
    NotNeeded,
    /// Joined the keeper's namespaces; `started` when this call started the keeper.
    Joined {
        keeper: i32,
        started: bool,
        mapping: Mapping,
        outbound: Outbound,
        /// The user's name, as the host knows it (inside, the user is root).
        user: String,
    },
}

impl Entered {
    /// The sentences to show once, when the keeper was just started: what will not work.
    pub fn warnings(&self) -> Vec<String> {
        let Entered::Joined {
            started: true,
            mapping,
            outbound,
            user,
            ..
        } = self
        else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if *mapping == Mapping::OneId {
            out.push(format!(
                "no subordinate ids for {} in /etc/subuid and /etc/subgid, so containers get one id (yours, as root): images with files of other users and chown inside containers fail — add a range with `usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {}` (as root) and install uidmap.",
                user, user
            ));
        }
        if *outbound == Outbound::None {
            out.push(
                "neither pasta nor slirp4netns is installed, so containers cannot reach other hosts (published ports and container-to-container traffic still work) — install one with `apt-get install passt`.".to_string(),
            );
        }
        out
    }
}

/// Where the rootless files of this user live.
pub fn state_dir() -> PathBuf {
    berth_host::places::runtime_dir().join("rootless")
}

/// Joins (starting it when needed) the user's keeper; see the crate docs. Must be called
/// while the process has one thread.
pub fn enter() -> Result<Entered, RootlessError> {
    if berth_host::privilege::host_root() || berth_host::privilege::in_user_namespace() {
        return Ok(Entered::NotNeeded);
    }
    // Checked (and made) as the plain user first: a directory someone else planted is
    // refused in its own sentence before anything is kept in it.
    berth_host::places::ensure_runtime_dir()?;
    keeper::join_or_start(&state_dir())
}

/// The user's own network namespace, for a process inside the rootless user namespace
/// (`None` for the host's root, whose containers' networks live in the host's namespace).
pub fn network_namespace() -> Option<PathBuf> {
    if !berth_host::privilege::in_user_namespace() {
        return None;
    }
    let pid = keeper::read_pid(&state_dir())?;
    Some(PathBuf::from(format!("/proc/{pid}/ns/net")))
}

/// The address containers reach the host's loopback at, when the outbound helper maps one
/// (pasta: the namespace's gateway; slirp4netns: 10.0.2.2).
pub fn host_loopback_address() -> Option<std::net::Ipv4Addr> {
    if !berth_host::privilege::in_user_namespace() {
        return None;
    }
    outbound::host_address(&state_dir())
}

#[cfg(test)]
mod tests {
    use super::fix_for;

    #[test]
    fn the_fix_names_the_setting_that_forbids_user_namespaces() {
        assert!(fix_for(Some("0\n"), None, Some("15000\n"))
            .contains("sysctl -w kernel.unprivileged_userns_clone=1"));
        assert!(fix_for(Some("1\n"), Some("1\n"), Some("15000\n"))
            .contains("sysctl -w kernel.apparmor_restrict_unprivileged_userns=0"));
        assert!(fix_for(None, Some("0"), Some("0\n")).contains("sysctl -w user.max_user_namespaces=15000"));
        let unknown = fix_for(None, None, Some("96368\n"));
        assert!(unknown.contains("sysctl user.max_user_namespaces") && !unknown.contains("-w"));
    }
}
