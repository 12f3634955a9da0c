//! Docker's json-file log format: one `{"log":..,"stream":..,"time":..}`
//! object per line, size-based rotation to `log.1`, `log.2`, ...

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::RuntimeError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Entry {
    log: String,
    stream: Stream,
    time: String,
}

/// One log record as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub stream: Stream,
    pub time: OffsetDateTime,
    /// The text, newline included when the container wrote one; prefixed
    /// with the RFC 3339 time and a space when `timestamps` was asked for.
    pub log: String,
}

#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    /// Only the last N lines (before following).
    pub tail: Option<usize>,
    pub since: Option<OffsetDateTime>,
    pub until: Option<OffsetDateTime>,
    pub timestamps: bool,
    /// Keep reading new lines until the container exits.
    pub follow: bool,
    /// The file whose appearance means the container has exited; defaults
    /// to `exit.json` next to the log file (the shim's layout).
    pub exit_file: Option<PathBuf>,
}

/// RFC 3339 UTC with nanoseconds, as docker writes it.
pub fn format_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.nanosecond()
    )
}

pub fn parse_time(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

/// Appends records to a json-file log, rotating by size.
pub struct LogWriter {
    path: PathBuf,
    max_size: u64,
    max_files: u32,
    file: File,
    size: u64,
}

fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

impl LogWriter {
    /// `max_size` 0 means unlimited; `max_files` counts the live file too.
    pub fn open(path: &Path, max_size: u64, max_files: u32) -> Result<Self, RuntimeError> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| RuntimeError::io(format!("cannot open log {}", path.display()), e))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(LogWriter {
            path: path.to_path_buf(),
            max_size,
            max_files: max_files.max(1),
            file,
            size,
        })
    }

    pub fn write(&mut self, stream: Stream, text: &[u8], at: OffsetDateTime) -> Result<(), RuntimeError> {
        let entry = Entry {
            log: String::from_utf8_lossy(text).into_owned(),
            stream,
            time: format_time(at),
        };
        let mut line = serde_json::to_vec(&entry).unwrap_or_default();
        line.push(b'\n');
        if self.max_size > 0 && self.size > 0 && self.size + line.len() as u64 > self.max_size {
            self.rotate()?;
        }
        self.file
            .write_all(&line)
            .map_err(|e| RuntimeError::io(format!("cannot write log {}", self.path.display()), e))?;
        self.size += line.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> Result<(), RuntimeError> {
        let io = |e| RuntimeError::io("cannot rotate the container log", e);
        if self.max_files > 1 {
            let _ = std::fs::remove_file(rotated(&self.path, self.max_files - 1));
            for n in (1..self.max_files - 1).rev() {
                let from = rotated(&self.path, n);
                if from.exists() {
                    std::fs::rename(&from, rotated(&self.path, n + 1)).map_err(io)?;
                }
            }
            std::fs::rename(&self.path, rotated(&self.path, 1)).map_err(io)?;
            self.file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .map_err(io)?;
        } else {
            self.file.set_len(0).map_err(io)?;
        }
        self.size = 0;
        Ok(())
    }
}

/// Splits a byte stream into log records: at newlines, and at 16 KiB for
/// very long lines (as docker does).
#[derive(Default)]
pub struct LineSplitter {
    buf: Vec<u8>,
}

const MAX_LINE: usize = 16 * 1024;

impl LineSplitter {
    pub fn push(&mut self, data: &[u8], mut emit: impl FnMut(&[u8])) {
        self.buf.extend_from_slice(data);
        let mut start = 0;
        while let Some(pos) = self.buf[start..].iter().position(|b| *b == b'\n') {
            emit(&self.buf[start..start + pos + 1]);
            start += pos + 1;
        }
        while self.buf.len() - start >= MAX_LINE {
            emit(&self.buf[start..start + MAX_LINE]);
            start += MAX_LINE;
        }
        self.buf.drain(..start);
    }

    /// The unterminated rest, at end of stream.
    pub fn finish(&mut self, mut emit: impl FnMut(&[u8])) {
        if !self.buf.is_empty() {
            emit(&self.buf);
            self.buf.clear();
        }
    }
}

fn files_in_order(path: &Path) -> Vec<PathBuf> {
    let mut n = 1;
    while rotated(path, n).exists() {
        n += 1;
    }
    (1..n).rev().map(|i| rotated(path, i)).collect()
}

fn parse_line(line: &str) -> Option<LogLine> {
    let e: Entry = serde_json::from_str(line.trim_end_matches('\n')).ok()?;
    Some(LogLine {
        stream: e.stream,
        time: parse_time(&e.time)?,
        log: e.log,
    })
}

struct Filter<'a> {
    opts: &'a LogOptions,
}

impl Filter<'_> {
    fn keep(&self, l: &LogLine) -> bool {
        self.opts.since.is_none_or(|s| l.time >= s) && self.opts.until.is_none_or(|u| l.time <= u)
    }

    fn render(&self, mut l: LogLine) -> LogLine {
        if self.opts.timestamps {
            l.log = format!("{} {}", format_time(l.time), l.log);
        }
        l
    }
}

/// Reads complete lines from `r`, keeping a partial last line in `partial`.
fn read_lines(r: &mut BufReader<File>, partial: &mut String, mut f: impl FnMut(LogLine)) {
    loop {
        let mut s = String::new();
        match r.read_line(&mut s) {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                partial.push_str(&s);
                if partial.ends_with('\n') {
                    if let Some(l) = parse_line(partial) {
                        f(l);
                    }
                    partial.clear();
                }
            }
        }
    }
}

/// Reads the log (rotated files first, oldest first) and hands each line to
/// `out` until it returns false. With `follow`, keeps polling for new lines
/// (across rotations) until the container's exit file appears, then drains.
pub fn read(
    log_path: &Path,
    opts: LogOptions,
    mut out: impl FnMut(LogLine) -> bool,
) -> Result<(), RuntimeError> {
    let filter = Filter { opts: &opts };
    let mut pending: VecDeque<LogLine> = VecDeque::new();
    let push = |l: LogLine, pending: &mut VecDeque<LogLine>| {
        if filter.keep(&l) {
            pending.push_back(l);
            if let Some(t) = opts.tail {
                while pending.len() > t {
                    pending.pop_front();
                }
            }
        }
    };
    for f in files_in_order(log_path) {
        if let Ok(file) = File::open(&f) {
            let mut partial = String::new();
            read_lines(&mut BufReader::new(file), &mut partial, |l| push(l, &mut pending));
        }
    }
    let mut current = match File::open(log_path) {
        Ok(f) => Some(BufReader::new(f)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(RuntimeError::io(
                format!("cannot read log {}", log_path.display()),
                e,
            ))
        }
    };
    let mut partial = String::new();
    if let Some(r) = current.as_mut() {
        read_lines(r, &mut partial, |l| push(l, &mut pending));
    }
    for l in pending.drain(..) {
        if !out(filter.render(l)) {
            return Ok(());
        }
    }
    if !opts.follow {
        return Ok(());
    }
    let exit_file = opts
        .exit_file
        .clone()
        .unwrap_or_else(|| log_path.parent().unwrap_or(Path::new(".")).join("exit.json"));
    let mut stop = false;
    loop {
        // The container was removed (its directory went with the exit file): nothing more
        // can be written, so following ends too.
        let exited = exit_file.exists() || exit_file.parent().is_some_and(|d| !d.exists());
        let mut lines = Vec::new();
        if let Some(r) = current.as_mut() {
            read_lines(r, &mut partial, |l| lines.push(l));
        }
        // Rotated away (or created since)? Switch to the new file.
        let now = std::fs::metadata(log_path).ok().map(|m| m.ino());
        let ours = current
            .as_ref()
            .and_then(|r| r.get_ref().metadata().ok())
            .map(|m| m.ino());
        if now.is_some() && now != ours {
            if let Ok(f) = File::open(log_path) {
                let mut r = BufReader::new(f);
                partial.clear();
                read_lines(&mut r, &mut partial, |l| lines.push(l));
                current = Some(r);
            }
        }
        for l in lines {
            if filter.keep(&l) && !out(filter.render(l)) {
                stop = true;
                break;
            }
        }
        if stop || exited {
            return Ok(());
        }
        // Short: `run` (attached) returns as soon as the container exits, and a short
        // container's whole life can be a few milliseconds. A poll costs one stat.
        std::thread::sleep(Duration::from_millis(FOLLOW_POLL_MS));
    }
}

/// How often `follow` looks for new lines and for the exit file.
const FOLLOW_POLL_MS: u64 = 5;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitter() {
        let mut s = LineSplitter::default();
        let mut got: Vec<Vec<u8>> = Vec::new();
        s.push(b"a\nb", |l| got.push(l.to_vec()));
        s.push(b"c\n\nd", |l| got.push(l.to_vec()));
        s.finish(|l| got.push(l.to_vec()));
        assert_eq!(
            got,
            vec![b"a\n".to_vec(), b"bc\n".to_vec(), b"\n".to_vec(), b"d".to_vec()]
        );
    }

    #[test]
    fn write_rotate_read() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c.log");
        let mut w = LogWriter::open(&p, 300, 3).unwrap();
        let t0 = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        for i in 0..50 {
            let s = if i % 2 == 0 {
                Stream::Stdout
            } else {
                Stream::Stderr
            };
            w.write(s, format!("line {i}\n").as_bytes(), t0 + Duration::from_secs(i))
                .unwrap();
        }
        assert!(p.exists() && rotated(&p, 1).exists() && rotated(&p, 2).exists());
        assert!(!rotated(&p, 3).exists());
        let first = std::fs::read_to_string(rotated(&p, 2)).unwrap();
        assert!(first.starts_with("{\"log\":\"line "), "{first}");
        assert!(first.contains("\"time\":\"2027-01-15T08:"), "{first}");
        let mut all = Vec::new();
        read(&p, LogOptions::default(), |l| {
            all.push(l);
            true
        })
        .unwrap();
        assert_eq!(all.last().unwrap().log, "line 49\n");
        let nums: Vec<u64> = all
            .iter()
            .map(|l| l.log.trim().strip_prefix("line ").unwrap().parse().unwrap())
            .collect();
        assert!(nums.windows(2).all(|w| w[1] == w[0] + 1), "{nums:?}");
        let mut tail = Vec::new();
        let opts = LogOptions {
            tail: Some(2),
            timestamps: true,
            ..Default::default()
        };
        read(&p, opts, |l| {
            tail.push(l.log);
            true
        })
        .unwrap();
        assert_eq!(
            tail,
            vec![
                "2027-01-15T08:00:48.000000000Z line 48\n",
                "2027-01-15T08:00:49.000000000Z line 49\n"
            ]
        );
        let mut since = Vec::new();
        let opts = LogOptions {
            since: Some(t0 + Duration::from_secs(47)),
            until: Some(t0 + Duration::from_secs(48)),
            ..Default::default()
        };
        read(&p, opts, |l| {
            since.push((l.stream, l.log));
            true
        })
        .unwrap();
        assert_eq!(
            since,
            vec![
                (Stream::Stderr, "line 47\n".to_string()),
                (Stream::Stdout, "line 48\n".to_string())
            ]
        );
    }

    #[test]
    fn follow_until_exit() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("log");
        let mut w = LogWriter::open(&p, 500, 2).unwrap();
        w.write(Stream::Stdout, b"first\n", OffsetDateTime::now_utc())
            .unwrap();
        let dir = d.path().to_path_buf();
        let writer = std::thread::spawn(move || {
            for i in 0..20 {
                std::thread::sleep(Duration::from_millis(30));
                w.write(
                    Stream::Stdout,
                    format!("more {i}\n").as_bytes(),
                    OffsetDateTime::now_utc(),
                )
                .unwrap();
            }
            std::fs::write(dir.join("exit.json"), "{}").unwrap();
        });
        let mut got = Vec::new();
        let opts = LogOptions {
            follow: true,
            ..Default::default()
        };
        read(&p, opts, |l| {
            got.push(l.log);
            true
        })
        .unwrap();
        writer.join().unwrap();
        assert_eq!(got.first().unwrap(), "first\n");
        assert_eq!(got.last().unwrap(), "more 19\n");
        assert_eq!(got.len(), 21, "{got:?}");
    }

    #[test]
    fn follow_ends_when_the_container_is_removed() {
        // `run --rm`: the log can be followed after the container's directory (with its
        // exit record) was removed; that must end the follow, not wait for ever.
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("container");
        std::fs::create_dir_all(dir.join("shim")).unwrap();
        let p = dir.join("log");
        let mut w = LogWriter::open(&p, 500, 2).unwrap();
        w.write(Stream::Stdout, b"only\n", OffsetDateTime::now_utc())
            .unwrap();
        drop(w);
        let gone = dir.clone();
        let remover = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            std::fs::remove_dir_all(gone).unwrap();
        });
        let opts = LogOptions {
            follow: true,
            exit_file: Some(dir.join("shim").join("exit.json")),
            ..Default::default()
        };
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut got = Vec::new();
            let _ = read(&p, opts, |l| {
                got.push(l.log);
                true
            });
            let _ = tx.send(got);
        });
        remover.join().unwrap();
        let got = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the follow ended after the removal");
        assert_eq!(got, ["only\n"]);
    }
}
