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
}
