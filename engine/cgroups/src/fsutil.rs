//! Small helpers around cgroup files that attach the path to every error.

use std::io::{self, Write};
use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::CgroupError;

pub(crate) fn read(path: &Path) -> Result<String, CgroupError> {
    std::fs::read_to_string(path).map_err(|source| CgroupError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a file and trims it.
pub(crate) fn read_trimmed(path: &Path) -> Result<String, CgroupError> {
    Ok(read(path)?.trim().to_string())
}

/// Writes `value` with a single write(2) call, as cgroup files expect.
pub(crate) fn write(path: &Path, value: &str) -> Result<(), CgroupError> {
    let err = |source| CgroupError::Write {
        path: path.to_path_buf(),
        value: value.to_string(),
        source,
    };
    let mut file = std::fs::OpenOptions::new().write(true).open(path).map_err(err)?;
    file.write_all(value.as_bytes()).map_err(err)
}

/// Parses a file holding one unsigned number, or "max" (returned as None).
pub(crate) fn read_u64_or_max(path: &Path) -> Result<Option<u64>, CgroupError> {
    let text = read_trimmed(path)?;
    if text == "max" {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|_| CgroupError::Parse {
        path: path.to_path_buf(),
        content: text,
    })
}

pub(crate) fn read_u64(path: &Path) -> Result<u64, CgroupError> {
    let text = read_trimmed(path)?;
    text.parse().map_err(|_| CgroupError::Parse {
        path: path.to_path_buf(),
        content: text,
    })
}

/// Finds `key value` in a flat-keyed file such as memory.events or cpu.stat.
pub(crate) fn read_keyed(path: &Path, key: &str) -> Result<Option<u64>, CgroupError> {
    let text = read(path)?;
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        if parts.next() == Some(key) {
            let value = parts.next().unwrap_or("");
            return value.parse().map(Some).map_err(|_| CgroupError::Parse {
                path: path.to_path_buf(),
                content: line.to_string(),
            });
        }
    }
    Ok(None)
}

/// ENODEV, which a cgroup file answers once its group is being removed.
fn libc_enodev() -> i32 {
    rustix::io::Errno::NODEV.raw_os_error()
}

/// Reads the pids in a cgroup.procs file; a missing directory has none, and so has one
/// being removed at this moment (another process releasing the same run: the kernel then
/// answers ENODEV).
pub(crate) fn read_pids(path: &Path) -> Result<Vec<i32>, CgroupError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) if e.raw_os_error() == Some(libc_enodev()) => return Ok(Vec::new()),
        Err(source) => {
            return Err(CgroupError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.trim().parse().map_err(|_| CgroupError::Parse {
                path: path.to_path_buf(),
                content: l.to_string(),
            })
        })
        .collect()
}

/// Creates a directory if it does not exist yet.
pub(crate) fn mkdir(path: &Path) -> Result<bool, CgroupError> {
    match std::fs::create_dir(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(source) => Err(CgroupError::Create {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Removes a cgroup directory, retrying for about a second while the kernel
/// still reports it busy (exiting processes leave it asynchronously).
pub(crate) fn rmdir_retry(path: &Path) -> Result<(), CgroupError> {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        match std::fs::remove_dir(path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e)
                if e.raw_os_error() == Some(rustix::io::Errno::BUSY.raw_os_error())
                    && Instant::now() < deadline =>
            {
                sleep(Duration::from_millis(20));
            }
            Err(source) => {
                return Err(CgroupError::Remove {
                    path: path.to_path_buf(),
                    source,
                })
            }
        }
    }
}

/// Lists the subdirectory names of `dir` (none if it does not exist).
pub(crate) fn subdirs(dir: &Path) -> Result<Vec<String>, CgroupError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(CgroupError::Read {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| CgroupError::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    Ok(names)
}

/// Sends `sig` to `pid`; a process that already exited is not an error.
pub(crate) fn signal(pid: i32, sig: i32) -> Result<(), CgroupError> {
    let signal = to_signal(sig)?;
    let Some(target) = rustix::process::Pid::from_raw(pid) else {
        return Ok(());
    };
    match rustix::process::kill_process(target, signal) {
        Ok(()) | Err(rustix::io::Errno::SRCH) => Ok(()),
        Err(e) => Err(CgroupError::Signal {
            pid,
            signal: sig,
            source: e.into(),
        }),
    }
}

/// Checks a signal number up front so that bad input fails before any
/// process is touched.
pub(crate) fn to_signal(sig: i32) -> Result<rustix::process::Signal, CgroupError> {
    if let Some(s) = rustix::process::Signal::from_named_raw(sig) {
        return Ok(s);
    }
    if (34..=64).contains(&sig) {
        // SAFETY: 34..=64 are valid real-time signal numbers outside the two
        // libc reserves (32, 33); we only send them to other processes and
        // never install handlers or block them.
        return Ok(unsafe { rustix::process::Signal::from_raw_unchecked(sig) });
    }
    Err(CgroupError::InvalidSignal(sig))
}
