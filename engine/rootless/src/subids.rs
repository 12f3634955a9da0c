//! Subordinate ids: the ranges `/etc/subuid` and `/etc/subgid` give a user
//! (`name:start:count` or `uid:start:count`, one a line), as `newuidmap` reads them.

/// A user's first range in one of the files, if any.
pub fn lookup(text: &str, name: &str, uid: u32) -> Option<(u32, u32)> {
    let uid = uid.to_string();
    text.lines().find_map(|line| {
        let mut f = line.trim().split(':');
        let (who, start, count) = (f.next()?, f.next()?, f.next()?);
        if who != name && who != uid {
            return None;
        }
        let (start, count) = (start.parse().ok()?, count.parse::<u32>().ok()?);
        (count > 0).then_some((start, count))
    })
}

/// The map lines for `newuidmap`/`newgidmap`: container root is the user, ids from 1 on
/// are the subordinate range.
pub fn map_args(own: u32, range: (u32, u32)) -> Vec<String> {
    [0, own, 1, 1, range.0, range.1]
        .iter()
        .map(u32::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_users_range_by_name_or_uid() {
        let text = "alice:100000:65536\n# x\n1001:165536:65536\nbob:231072:0\n";
        assert_eq!(lookup(text, "alice", 1000), Some((100000, 65536)));
        assert_eq!(lookup(text, "carol", 1001), Some((165536, 65536)));
        assert_eq!(lookup(text, "bob", 1002), None, "an empty range is none");
        assert_eq!(lookup(text, "dave", 1003), None);
        assert_eq!(
            map_args(1000, (100000, 65536)),
            ["0", "1000", "1", "1", "100000", "65536"]
        );
    }
}
