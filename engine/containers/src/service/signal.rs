//! Signal names as docker takes them (`SIGTERM`, `term`, `15`): `kill --signal`, an
//! image's StopSignal.

use crate::ContainerError;

/// A signal name (`SIGTERM`, `term`) or number, if it is one.
pub(super) fn parse_signal(s: &str) -> Option<i32> {
    let s = s.trim().to_ascii_uppercase();
    let s = s.strip_prefix("SIG").unwrap_or(&s);
    if let Ok(n) = s.parse::<i32>() {
        return (1..=64).contains(&n).then_some(n);
    }
    Some(match s {
        "HUP" => 1,
        "INT" => 2,
        "QUIT" => 3,
        "KILL" => 9,
        "USR1" => 10,
        "USR2" => 12,
        "TERM" => 15,
        "CONT" => 18,
        "STOP" => 19,
        "WINCH" => 28,
        _ => return None,
    })
}

/// Parses a signal given as a name (`SIGTERM`, `term`) or number.
pub fn signal_number(s: &str) -> Result<i32, ContainerError> {
    parse_signal(s).ok_or_else(|| {
        ContainerError::InvalidArgument(format!(
            "invalid signal '{s}': use a name like SIGTERM or a number like 15"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals() {
        assert_eq!(parse_signal("SIGTERM"), Some(15));
        assert_eq!(parse_signal("kill"), Some(9));
        assert_eq!(parse_signal("9"), Some(9));
        assert_eq!(parse_signal("NOPE"), None);
        assert_eq!(parse_signal("65"), None);
        assert!(signal_number("NOPE").unwrap_err().to_string().contains("SIGTERM"));
    }
}
