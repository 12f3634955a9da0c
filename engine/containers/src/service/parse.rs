//! The command-line syntaxes of container options, in docker's terms: `-v`, `--mount`,
//! `--restart`, `--log-opt` and signal names. Pure: no I/O beyond making a bind source
//! absolute.

use crate::record::{MountKind, MountRecord, RestartPolicy};
use crate::{names, ContainerError};

/// Berth rotates logs by default (docker keeps them unbounded unless told).
const LOG_MAX_SIZE: u64 = 10 << 20;
const LOG_MAX_FILES: u32 = 3;

pub(crate) fn default_log_max_size() -> u64 {
    LOG_MAX_SIZE
}

pub(crate) fn default_log_max_files() -> u32 {
    LOG_MAX_FILES
}

/// docker's json-file `--log-opt`s: `max-size` (bytes with k/m/g; -1 = unlimited) and
/// `max-file`.
pub(super) fn parse_log_opts(opts: &[String]) -> Result<(u64, u32), ContainerError> {
    let (mut size, mut files) = (LOG_MAX_SIZE, LOG_MAX_FILES);
    for o in opts {
        let bad = |what: &str| {
            ContainerError::InvalidArgument(format!(
                "invalid --log-opt {o:?}: {what} — use max-size=10m or max-file=3"
            ))
        };
        match o.split_once('=') {
            Some(("max-size", "-1")) => size = 0,
            Some(("max-size", v)) => {
                size = berth_cgroups::parse_memory(v)
                    .map_err(|_| bad("the size is not a number with k, m or g"))?
            }
            Some(("max-file", v)) => {
                files = v
                    .parse()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| bad("max-file must be 1 or more"))?
            }
            _ => return Err(bad("Berth's json-file log knows max-size and max-file")),
        }
    }
    Ok((size, files))
}

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

pub(super) fn parse_restart(s: &str) -> Result<RestartPolicy, ContainerError> {
    let (name, max) = match s.split_once(':') {
        Some((n, m)) => (n, Some(m)),
        None => (s, None),
    };
    let bad = || {
        ContainerError::InvalidArgument(format!(
            "invalid restart policy '{s}': use no, always, unless-stopped or on-failure[:N]"
        ))
    };
    match (name, max) {
        ("no" | "always" | "unless-stopped", None) => Ok(RestartPolicy {
            name: name.to_string(),
            maximum_retry_count: 0,
        }),
        ("on-failure", m) => Ok(RestartPolicy {
            name: name.into(),
            maximum_retry_count: m.map(|m| m.parse().map_err(|_| bad())).transpose()?.unwrap_or(0),
        }),
        _ => Err(bad()),
    }
}

pub(super) fn parse_volume(spec: &str) -> Result<MountRecord, ContainerError> {
    let bad = |why: &str| ContainerError::InvalidArgument(format!("invalid volume spec '{spec}': {why}"));
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, dest, mode) = match parts.as_slice() {
        [d] => ("", *d, ""),
        [s, d] => (*s, *d, ""),
        [s, d, m] => (*s, *d, *m),
        _ => return Err(bad("use SOURCE:/container/path[:ro]")),
    };
    if !dest.starts_with('/') {
        return Err(bad("the container path must be absolute, e.g. /data"));
    }
    let readonly = match mode {
        "" | "rw" => false,
        "ro" => true,
        other => return Err(bad(&format!("unknown mode '{other}' (use ro or rw)"))),
    };
    let kind = if source.is_empty()
        || !(source.starts_with('/') || source.starts_with('.') || source.starts_with('~'))
    {
        if !source.is_empty() && !names::is_valid(source) {
            return Err(bad("a volume name uses letters, digits, '_', '.' and '-'"));
        }
        MountKind::Volume
    } else {
        MountKind::Bind
    };
    let source = if kind == MountKind::Bind {
        std::path::absolute(source)
            .map_err(|e| bad(&e.to_string()))?
            .to_string_lossy()
            .to_string()
    } else {
        source.to_string()
    };
    Ok(MountRecord {
        source,
        destination: dest.to_string(),
        readonly,
        kind,
        anonymous: false,
    })
}

pub(super) fn parse_mount(spec: &str) -> Result<MountRecord, ContainerError> {
    let bad = |why: &str| ContainerError::InvalidArgument(format!("invalid --mount '{spec}': {why}"));
    let mut kind = MountKind::Volume;
    let (mut source, mut target, mut readonly) = (String::new(), String::new(), false);
    for field in spec.split(',') {
        let (k, v) = field.split_once('=').unwrap_or((field, ""));
        match k {
            "type" => {
                kind = match v {
                    "bind" => MountKind::Bind,
                    "volume" => MountKind::Volume,
                    "tmpfs" => MountKind::Tmpfs,
                    _ => return Err(bad("type must be bind, volume or tmpfs")),
                }
            }
            "source" | "src" => source = v.to_string(),
            "target" | "destination" | "dst" => target = v.to_string(),
            "readonly" | "ro" => readonly = v.is_empty() || v == "true" || v == "1",
            _ => return Err(bad(&format!("unknown option '{k}'"))),
        }
    }
    if !target.starts_with('/') {
        return Err(bad("target= must be an absolute path"));
    }
    if kind == MountKind::Bind {
        if source.is_empty() {
            return Err(bad("a bind mount needs source="));
        }
        source = std::path::absolute(&source)
            .map_err(|e| bad(&e.to_string()))?
            .to_string_lossy()
            .to_string();
    }
    Ok(MountRecord {
        source,
        destination: target,
        readonly,
        kind,
        anonymous: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_specs() {
        let v = parse_volume("data:/var/lib/data:ro").unwrap();
        assert_eq!(
            (v.kind, v.source.as_str(), v.readonly),
            (MountKind::Volume, "data", true)
        );
        let b = parse_volume("/tmp:/host-tmp").unwrap();
        assert_eq!(b.kind, MountKind::Bind);
        let anon = parse_volume("/data").unwrap();
        assert_eq!((anon.kind, anon.source.as_str()), (MountKind::Volume, ""));
        assert!(parse_volume("data:relative").is_err());
        assert!(parse_volume("a:/b:zz").is_err());
        let m = parse_mount("type=bind,source=/tmp,target=/x,readonly").unwrap();
        assert!(m.readonly && m.kind == MountKind::Bind);
        assert!(parse_mount("type=nfs,target=/x").is_err());
    }

    #[test]
    fn restart_and_signals() {
        assert_eq!(parse_restart("on-failure:3").unwrap().maximum_retry_count, 3);
        assert!(parse_restart("sometimes").is_err());
        assert_eq!(parse_signal("SIGTERM"), Some(15));
        assert_eq!(parse_signal("kill"), Some(9));
        assert_eq!(parse_signal("9"), Some(9));
        assert_eq!(parse_signal("NOPE"), None);
    }
}
