//! Which names may become one path component on the host (container IDs, cgroup names,
//! network names): the one rule every crate checks them with.

/// 1 to `max_len` ASCII letters, digits, `_`, `-` or `.`.
pub fn is_plain(name: &str, max_len: usize) -> bool {
    !name.is_empty()
        && name.len() <= max_len
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// `is_plain`, and not `.` or `..`: safe as a file or directory name under a parent.
pub fn is_path_component(name: &str, max_len: usize) -> bool {
    is_plain(name, max_len) && name != "." && name != ".."
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_and_path_components() {
        assert!(is_plain("web-1_a.b", 64));
        assert!(!is_plain("", 64));
        assert!(!is_plain("a/b", 64));
        assert!(!is_plain(&"x".repeat(65), 64));
        assert!(is_plain("..", 64));
        assert!(!is_path_component("..", 64));
        assert!(!is_path_component(".", 64));
        assert!(is_path_component("abc123", 128));
    }
}
