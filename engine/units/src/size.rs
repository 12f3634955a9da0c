//! Docker's sizes (`--memory 512m`, `--log-opt max-size=10m`) and `--cpus`.

use crate::UnitError;

/// Parses a docker-style memory size such as `512m`, `1.5g`, `64k`, `4096`
/// or `2GiB` into bytes (binary units: k = 1024).
///
/// Accepted, case-insensitively: a number (optionally with a decimal
/// fraction), an optional space, an optional unit `b`, `k`, `m`, `g`, `t` or
/// `p`, an optional `i` after the unit, and an optional trailing `b`. A bare
/// number means bytes. Like docker, a fractional result is rounded down.
pub fn parse_size(s: &str) -> Result<u64, UnitError> {
    let bad = || UnitError::InvalidSize(s.to_string());
    let text = s.trim();
    let digits_end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, rest) = text.split_at(digits_end);
    if number.is_empty()
        || number.starts_with('.')
        || number.ends_with('.')
        || number.matches('.').count() > 1
    {
        return Err(bad());
    }
    let unit = rest.strip_prefix(' ').unwrap_or(rest).to_ascii_lowercase();
    let mut unit = unit.as_str();
    let shift = match unit.chars().next() {
        Some('k') => 10,
        Some('m') => 20,
        Some('g') => 30,
        Some('t') => 40,
        Some('p') => 50,
        _ => 0,
    };
    if shift > 0 {
        unit = &unit[1..];
        unit = unit.strip_prefix('i').unwrap_or(unit);
    }
    if !(unit.is_empty() || unit == "b") {
        return Err(bad());
    }
    let multiplier: u64 = 1 << shift;
    match number.split_once('.') {
        None => {
            let whole: u64 = number.parse().map_err(|_| bad())?;
            whole.checked_mul(multiplier).ok_or_else(bad)
        }
        Some((whole, frac)) => {
            let whole: u64 = whole.parse().map_err(|_| bad())?;
            let whole_bytes = whole.checked_mul(multiplier).ok_or_else(bad)?;
            // Fraction computed exactly in integers: frac / 10^len * multiplier.
            let frac = frac.get(..frac.len().min(18)).unwrap_or(frac);
            let numerator: u128 = frac.parse().map_err(|_| bad())?;
            let denominator = 10u128.pow(frac.len() as u32);
            let frac_bytes = (numerator * u128::from(multiplier)) / denominator;
            whole_bytes.checked_add(frac_bytes as u64).ok_or_else(bad)
        }
    }
}

/// Parses a docker-style `--cpus` value such as `1.5` or `0.25`.
///
/// Returns the number of CPUs as a float; `0` is accepted and means "no
/// limit", as in docker. Range checks against this machine's CPU count happen
/// when the limit is applied.
pub fn parse_cpus(s: &str) -> Result<f64, UnitError> {
    let text = s.trim();
    let ok_chars = !text.is_empty() && text.chars().all(|c| c.is_ascii_digit() || c == '.');
    let value: f64 = if ok_chars {
        text.parse().map_err(|_| UnitError::InvalidCpus(s.to_string()))?
    } else {
        return Err(UnitError::InvalidCpus(s.to_string()));
    };
    if !value.is_finite() || value < 0.0 {
        return Err(UnitError::InvalidCpus(s.to_string()));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_units() {
        assert_eq!(parse_size("32m").unwrap(), 32 * 1024 * 1024);
        assert_eq!(parse_size("32M").unwrap(), 32 * 1024 * 1024);
        assert_eq!(parse_size("32mb").unwrap(), 32 * 1024 * 1024);
        assert_eq!(parse_size("32MiB").unwrap(), 32 * 1024 * 1024);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("4096b").unwrap(), 4096);
        assert_eq!(parse_size("64k").unwrap(), 65536);
        assert_eq!(parse_size("1g").unwrap(), 1 << 30);
        assert_eq!(parse_size("1.5g").unwrap(), 3 << 29);
        assert_eq!(parse_size("0.5k").unwrap(), 512);
        assert_eq!(parse_size("2 GB").unwrap(), 2 << 30);
        assert_eq!(parse_size("1t").unwrap(), 1 << 40);
    }

    #[test]
    fn memory_errors() {
        for bad in [
            "",
            "abc",
            "m",
            "-1m",
            "12x",
            "1.2.3m",
            ".5m",
            "5.m",
            "5mm",
            "5bb",
            "99999999999999999999g",
            "16777216t",
        ] {
            let err = parse_size(bad).unwrap_err();
            assert!(matches!(err, UnitError::InvalidSize(_)), "{bad}: {err}");
        }
        assert_eq!(
            parse_size("abc").unwrap_err().to_string(),
            "invalid memory value 'abc' — use a number with b, k, m or g, e.g. 512m"
        );
    }

    #[test]
    fn cpus() {
        assert_eq!(parse_cpus("1.5").unwrap(), 1.5);
        assert_eq!(parse_cpus("2").unwrap(), 2.0);
        assert_eq!(parse_cpus("0.01").unwrap(), 0.01);
        assert_eq!(parse_cpus("0").unwrap(), 0.0);
        for bad in ["", "abc", "-1", "1e3", "inf", "NaN", "1.2.3", "1,5"] {
            assert!(matches!(parse_cpus(bad), Err(UnitError::InvalidCpus(_))), "{bad}");
        }
        assert_eq!(
            parse_cpus("abc").unwrap_err().to_string(),
            "invalid cpus value 'abc' — use a positive decimal number such as 1.5"
        );
    }
}
