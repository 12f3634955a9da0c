//! Docker's ways of printing: aligned tables, SI sizes, "2 weeks ago".

use std::io::Write;

/// Writes rows as docker's tabwriter aligns them (min cell width 10, padding 3).
pub fn table(out: &mut impl Write, header: &[&str], rows: &[Vec<String>]) -> std::io::Result<()> {
    let mut text = header.join("\t");
    text.push('\n');
    for row in rows {
        text.push_str(&row.join("\t"));
        text.push('\n');
    }
    out.write_all(crate::format::tabwriter::align(&text).as_bytes())
}

/// Docker's `units.HumanSizeWithPrecision(n, 3)`: decimal units, 3 significant digits.
pub fn size(bytes: u64) -> String {
    size_with_precision(bytes, 3)
}

/// Docker's `units.HumanSizeWithPrecision(n, precision)` (`HumanSize` is precision 4).
pub fn size_with_precision(bytes: u64, precision: usize) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    format!("{}{}", trim_float(v, precision), UNITS[i])
}

fn trim_float(v: f64, precision: usize) -> String {
    // %.<precision>g, then drop a trailing ".0"/zeros as Go's %g does.
    let int_digits = if v >= 100.0 {
        3
    } else if v >= 10.0 {
        2
    } else {
        1
    };
    let digits = precision.saturating_sub(int_digits);
    let s = format!("{v:.digits$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Docker's `units.HumanDuration` + " ago".
pub fn ago(rfc3339: Option<&str>) -> String {
    let Some(t) = rfc3339.and_then(parse_time) else {
        return "N/A".into();
    };
    let secs = (time::OffsetDateTime::now_utc() - t).whole_seconds().max(0);
    format!("{} ago", human_duration(secs))
}

pub use berth_units::human_duration;

pub fn parse_time(s: &str) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
}

/// docker stats' binary units: `12.3MiB`, `23.4GiB`.
pub fn binary_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    // Go's %.4g: four significant digits, trailing zeros dropped.
    let decimals = if v >= 1000.0 {
        0
    } else if v >= 100.0 {
        1
    } else if v >= 10.0 {
        2
    } else {
        3
    };
    let text = format!("{v:.decimals$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    };
    format!("{text}{}", UNITS[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_docker() {
        assert_eq!(size(0), "0B");
        assert_eq!(size(999), "999B");
        assert_eq!(size(1000), "1kB");
        assert_eq!(size(4_260_000), "4.26MB");
        assert_eq!(size(174_000_000), "174MB");
        assert_eq!(size(12_340_000), "12.3MB");
        assert_eq!(size(1_200_000_000), "1.2GB");
        assert_eq!(size_with_precision(12_346_000, 4), "12.35MB");
    }

    #[test]
    fn table_pads_like_tabwriter() {
        let mut out = Vec::new();
        table(
            &mut out,
            &["REPOSITORY", "TAG"],
            &[vec!["flask".into(), "latest".into()]],
        )
        .unwrap();
        let s = String::from_utf8(out).unwrap();
        assert_eq!(s, "REPOSITORY   TAG\nflask        latest\n");
    }
}
