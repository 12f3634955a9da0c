//! `--user` resolution against the image's /etc/passwd and /etc/group.

use std::io::Read;
use std::path::Path;

use rustix::fs::{Mode, OFlags, ResolveFlags};

use crate::{RuntimeError, User};

/// Reads a file inside `rootfs` with every path lookup (symlinks and `..`
/// included) confined to `rootfs`. A missing file reads as `None`.
fn read_in_root(rootfs: &Path, rel: &str) -> Result<Option<String>, RuntimeError> {
    let io = |e: std::io::Error| RuntimeError::io(format!("cannot read {rel} of the container"), e);
    let root = rustix::fs::open(
        rootfs,
        OFlags::DIRECTORY | OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io(e.into()))?;
    let fd = match rustix::fs::openat2(
        &root,
        rel,
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    ) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Ok(None),
        Err(e) => return Err(io(e.into())),
    };
    let mut s = String::new();
    std::fs::File::from(fd).read_to_string(&mut s).map_err(io)?;
    Ok(Some(s))
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
}

struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

fn passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(PasswdEntry {
                name: f.first()?.to_string(),
                uid: f.get(2)?.parse().ok()?,
                gid: f.get(3)?.parse().ok()?,
            })
        })
        .collect()
}

fn groups(text: &str) -> Vec<GroupEntry> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(GroupEntry {
                name: f.first()?.to_string(),
                gid: f.get(2)?.parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .filter(|s| !s.is_empty())
                            .map(|s| s.trim().to_string())
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// Resolves `--group-add` entries (group names from the container's /etc/group, or gids)
/// into gids.
pub fn resolve_groups(rootfs: &Path, wanted: &[String]) -> Result<Vec<u32>, RuntimeError> {
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let gr = groups(&read_in_root(rootfs, "etc/group")?.unwrap_or_default());
    wanted
        .iter()
        .map(|g| match g.parse::<u32>() {
            Ok(n) => Ok(n),
            Err(_) => gr
                .iter()
                .find(|e| &e.name == g)
                .map(|e| e.gid)
                .ok_or_else(|| RuntimeError::GroupNotFound(g.to_string())),
        })
        .collect()
}

/// Resolves docker's `--user` forms (`""`, `name`, `uid`, `name:group`,
/// `uid:gid`) against the container's passwd and group files. Without an
/// explicit group, supplementary groups are those listing the user as a
/// member; with one, there are none (as runc does).
pub fn resolve_user(rootfs: &Path, user: &str) -> Result<User, RuntimeError> {
    let (user_part, group_part) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let user_part = if user_part.is_empty() { "0" } else { user_part };
    let pw = passwd(&read_in_root(rootfs, "etc/passwd")?.unwrap_or_default());
    let entry = match user_part.parse::<u32>() {
        Ok(uid) => pw.iter().find(|e| e.uid == uid),
        Err(_) => Some(
            pw.iter()
                .find(|e| e.name == user_part)
                .ok_or_else(|| RuntimeError::UserNotFound(user_part.to_string()))?,
        ),
    };
    let uid = match entry {
        Some(e) => e.uid,
        None => user_part.parse::<u32>().unwrap_or(0),
    };
    let mut gid = entry.map_or(0, |e| e.gid);
    let name = entry.map(|e| e.name.clone());

    let need_groups = group_part.is_some_and(|g| !g.is_empty() && g.parse::<u32>().is_err())
        || (group_part.is_none() && name.is_some());
    let gr = if need_groups {
        groups(&read_in_root(rootfs, "etc/group")?.unwrap_or_default())
    } else {
        Vec::new()
    };
    let mut additional = Vec::new();
    match group_part {
        Some(g) if !g.is_empty() => {
            gid = match g.parse::<u32>() {
                Ok(n) => n,
                Err(_) => gr
                    .iter()
                    .find(|e| e.name == g)
                    .map(|e| e.gid)
                    .ok_or_else(|| RuntimeError::GroupNotFound(g.to_string()))?,
            };
        }
        _ => {
            if let Some(name) = &name {
                for g in gr.iter().filter(|g| g.members.iter().any(|m| m == name)) {
                    if !additional.contains(&g.gid) {
                        additional.push(g.gid);
                    }
                }
            }
        }
    }
    Ok(User {
        uid,
        gid,
        additional_gids: additional,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("etc")).unwrap();
        std::fs::write(
            d.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\n# c\nalice:x:1000:1001::/home/alice:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            d.path().join("etc/group"),
            "root:x:0:root\nwheel:x:10:root,alice\nalice:x:1001:\nstaff:x:50:bob,alice\n",
        )
        .unwrap();
        d
    }

    #[test]
    fn forms() {
        let d = root();
        let u = |s| resolve_user(d.path(), s);
        assert_eq!(
            u("").unwrap(),
            User {
                uid: 0,
                gid: 0,
                additional_gids: vec![0, 10]
            }
        );
        assert_eq!(
            u("alice").unwrap(),
            User {
                uid: 1000,
                gid: 1001,
                additional_gids: vec![10, 50]
            }
        );
        assert_eq!(u("1000").unwrap().additional_gids, vec![10, 50]);
        assert_eq!(
            u("4242").unwrap(),
            User {
                uid: 4242,
                gid: 0,
                additional_gids: vec![]
            }
        );
        assert_eq!(
            u("alice:staff").unwrap(),
            User {
                uid: 1000,
                gid: 50,
                additional_gids: vec![]
            }
        );
        assert_eq!(u("7:8").unwrap().gid, 8);
        assert!(matches!(u("bob"), Err(RuntimeError::UserNotFound(_))));
        assert!(matches!(u("alice:nogroup"), Err(RuntimeError::GroupNotFound(_))));
    }

    #[test]
    fn symlinks_stay_in_root() {
        let d = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::create_dir(outside.path().join("etc")).unwrap();
        std::fs::write(outside.path().join("etc/passwd"), "evil:x:0:0::/:/bin/sh\n").unwrap();
        std::os::unix::fs::symlink(outside.path().join("etc"), d.path().join("etc")).unwrap();
        // The absolute symlink resolves inside the rootfs, where nothing exists.
        assert!(matches!(
            resolve_user(d.path(), "evil"),
            Err(RuntimeError::UserNotFound(_))
        ));
    }
}
