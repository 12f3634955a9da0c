//! Writes small regular files on worker threads. Creating a file costs a journal update
//! that dominates unpacking on real disks; several in flight at once hide most of it. The
//! tar stream is still read in order on one thread: only the create/write/metadata of a
//! file whose bytes are already in memory is handed off.
//!
//! Ordering: the unpacker calls [`WriterPool::barrier`] before anything that could observe
//! or replace a file still in flight (an entry for the same path, a hard link to it,
//! removing a directory, applying directory modes at the end).

use std::collections::HashSet;
use std::fs::File;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use rustix::fs::{self as rfs, Mode, OFlags, Timespec, Timestamps};

use crate::LayerError;

/// Writer threads: `BERTH_UNPACK_WORKERS` (for measuring), else 2. On a fresh filesystem
/// one writer already keeps up; on one busy with recently deleted inodes (ext4 scans past
/// them on every create) a second one hides much of that latency.
fn worker_count() -> usize {
    std::env::var("BERTH_UNPACK_WORKERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n >= 1)
        .unwrap_or(2)
}
/// Bytes of file content buffered for the workers at most.
const MAX_PENDING_BYTES: usize = 64 << 20;

pub(crate) struct FileJob {
    pub parent: Arc<OwnedFd>,
    pub name: Vec<u8>,
    pub entry: String,
    pub path: PathBuf,
    pub data: Vec<u8>,
    pub mode: u32,
    pub owner: Option<(u32, u32)>,
    pub mtime: Timespec,
}

#[derive(Default)]
struct Pending {
    jobs: usize,
    bytes: usize,
    error: Option<LayerError>,
}

#[derive(Default)]
struct Shared {
    pending: Mutex<Pending>,
    changed: Condvar,
}

pub(crate) struct WriterPool {
    senders: Vec<SyncSender<FileJob>>,
    workers: Vec<JoinHandle<()>>,
    shared: Arc<Shared>,
    next: usize,
    /// Paths handed to workers since the last barrier.
    in_flight: HashSet<Vec<Vec<u8>>>,
}

impl WriterPool {
    pub(crate) fn new() -> WriterPool {
        let shared = Arc::new(Shared::default());
        let mut senders = Vec::new();
        let mut workers = Vec::new();
        for _ in 0..worker_count() {
            let (tx, rx) = sync_channel::<FileJob>(256);
            let shared = shared.clone();
            senders.push(tx);
            workers.push(std::thread::spawn(move || {
                for job in rx {
                    let bytes = job.data.len();
                    let result = write_file(job);
                    let mut p = shared.pending.lock().unwrap_or_else(|e| e.into_inner());
                    p.jobs -= 1;
                    p.bytes -= bytes;
                    if let Err(e) = result {
                        p.error.get_or_insert(e);
                    }
                    shared.changed.notify_all();
                }
            }));
        }
        WriterPool {
            senders,
            workers,
            shared,
            next: 0,
            in_flight: HashSet::new(),
        }
    }

    /// Whether `rel` was handed to a worker since the last barrier.
    pub(crate) fn is_in_flight(&self, rel: &[Vec<u8>]) -> bool {
        self.in_flight.contains(rel)
    }

    pub(crate) fn submit(&mut self, rel: &[Vec<u8>], job: FileJob) -> Result<(), LayerError> {
        let bytes = job.data.len();
        {
            let mut p = self.shared.pending.lock().unwrap_or_else(|e| e.into_inner());
            while p.bytes > 0 && p.bytes + bytes > MAX_PENDING_BYTES && p.error.is_none() {
                p = self.shared.changed.wait(p).unwrap_or_else(|e| e.into_inner());
            }
            if let Some(e) = p.error.take() {
                return Err(e);
            }
            p.jobs += 1;
            p.bytes += bytes;
        }
        self.in_flight.insert(rel.to_vec());
        let i = self.next % self.senders.len();
        self.next += 1;
        if self.senders[i].send(job).is_err() {
            // A worker only stops when its channel closes; this is unreachable in practice.
            return Err(LayerError::Corrupt {
                context: "writing files".into(),
                reason: "a file-writing thread stopped".into(),
            });
        }
        Ok(())
    }

    /// Waits until every submitted file is written; returns the first failure.
    pub(crate) fn barrier(&mut self) -> Result<(), LayerError> {
        let mut p = self.shared.pending.lock().unwrap_or_else(|e| e.into_inner());
        while p.jobs > 0 {
            p = self.shared.changed.wait(p).unwrap_or_else(|e| e.into_inner());
        }
        self.in_flight.clear();
        match p.error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Drop for WriterPool {
    fn drop(&mut self) {
        // Closing the channels ends the workers; joining them guarantees nothing is still
        // writing when the caller removes a failed layer's directory.
        self.senders.clear();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

fn write_file(job: FileJob) -> Result<(), LayerError> {
    let io = |op: &'static str, e: std::io::Error| LayerError::Io {
        entry: job.entry.clone(),
        op,
        path: job.path.clone(),
        source: e,
    };
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let name = std::ffi::OsStr::from_bytes(&job.name);
    let fd = rfs::openat(&job.parent, name, flags, Mode::from_raw_mode(0o600))
        .map_err(|e| io("create file", e.into()))?;
    let mut file = File::from(fd);
    file.write_all(&job.data).map_err(|e| io("write file", e))?;
    if let Some((uid, gid)) = job.owner {
        rfs::fchown(
            &file,
            Some(rfs::Uid::from_raw_unchecked(uid)),
            Some(rfs::Gid::from_raw_unchecked(gid)),
        )
        .map_err(|e| io("change owner of", e.into()))?;
    }
    // After chown, which clears setuid/setgid.
    rfs::fchmod(&file, Mode::from_raw_mode(job.mode)).map_err(|e| io("set mode of", e.into()))?;
    let t = Timestamps {
        last_access: job.mtime,
        last_modification: job.mtime,
    };
    rfs::futimens(&file, &t).map_err(|e| io("set mtime of", e.into()))?;
    Ok(())
}
