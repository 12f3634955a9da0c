//! Go's `units.HumanDuration`, as docker prints ages and uptimes ("Up 3 minutes",
//! "Created About an hour ago").

/// `secs` as docker words it: "Less than a second", "1 second", "About a minute",
/// "5 minutes", "About an hour", "3 hours", "4 days", "2 weeks", "3 months", "2 years".
pub fn human_duration(secs: i64) -> String {
    let minutes = secs / 60;
    // Go rounds the hours (math.Round(d.Hours())) before comparing.
    let hours = (secs as f64 / 3600.0).round() as i64;
    match secs {
        s if s < 1 => "Less than a second".into(),
        1 => "1 second".into(),
        s if s < 60 => format!("{s} seconds"),
        _ if minutes == 1 => "About a minute".into(),
        _ if minutes < 60 => format!("{minutes} minutes"),
        _ if hours == 1 => "About an hour".into(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        _ if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        s => format!("{} years", s / 3600 / 24 / 365),
    }
}

use std::time::Duration;

/// Go's `time.ParseDuration` for non-negative values: `300ms`, `1.5h`, `2h45m`, `0`.
pub fn go_duration(text: &str) -> Option<Duration> {
    let text = text.strip_prefix('+').unwrap_or(text);
    if text == "0" {
        return Some(Duration::ZERO);
    }
    if text.is_empty() {
        return None;
    }
    let mut rest = text;
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..number_len];
        if number.is_empty() || number == "." {
            return None;
        }
        let value: f64 = number.parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let nanos_per_unit = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += value * nanos_per_unit;
    }
    if total > u64::MAX as f64 {
        return None;
    }
    Some(Duration::from_nanos(total.round() as u64))
}

#[cfg(test)]
mod tests {
    use super::human_duration;

    #[test]
    fn as_docker_words_them() {
        let cases = [
            (0, "Less than a second"),
            (1, "1 second"),
            (59, "59 seconds"),
            (60, "About a minute"),
            (119, "About a minute"),
            (120, "2 minutes"),
            (59 * 60 + 59, "59 minutes"),
            (3600, "About an hour"),
            (5399, "About an hour"),
            (5400, "2 hours"),
            (47 * 3600, "47 hours"),
            (48 * 3600, "2 days"),
            (14 * 24 * 3600, "2 weeks"),
            (60 * 24 * 3600, "2 months"),
            (5 * 3600, "5 hours"),
            (3 * 86400, "3 days"),
            (20 * 86400, "2 weeks"),
            (100 * 86400, "3 months"),
            (800 * 86400, "2 years"),
        ];
        for (secs, want) in cases {
            assert_eq!(human_duration(secs), want, "{secs} s");
        }
    }

    #[test]
    fn go_durations() {
        assert_eq!(
            super::go_duration("30s"),
            Some(std::time::Duration::from_secs(30))
        );
        assert_eq!(
            super::go_duration("1m30s"),
            Some(std::time::Duration::from_secs(90))
        );
        assert_eq!(
            super::go_duration("1.5h"),
            Some(std::time::Duration::from_secs(5400))
        );
        assert_eq!(
            super::go_duration("500ms"),
            Some(std::time::Duration::from_millis(500))
        );
        assert_eq!(
            super::go_duration("10us"),
            Some(std::time::Duration::from_micros(10))
        );
        assert_eq!(super::go_duration("0"), Some(std::time::Duration::ZERO));
        assert_eq!(super::go_duration("30"), None);
        assert_eq!(super::go_duration("abc"), None);
        assert_eq!(super::go_duration(""), None);
        assert_eq!(super::go_duration("-5s"), None);
    }
}
