//! berth-link: many logical byte streams over one byte stream — the link between a
//! machine's host side and the engine in its guest (a virtio-serial port on this machine;
//! AF_VSOCK or a pipe where those exist).
//!
//! # Wire format
//! - **Ready line.** The guest writes one line, `BERTH-GUEST READY <what>\n`, once its
//!   engine listens ([`write_ready`], [`read_ready`]). Everything after it is frames. A host
//!   that connects again (a new relay) is greeted with a new ready line and a new link.
//! - **Frame:** stream id (u32, big-endian), kind (u8), payload length (u32, ≤
//!   [`MAX_PAYLOAD`]), payload.
//! - **Kinds:** `OPEN` (payload: the target, UTF-8, e.g. `api`), `DATA`, `EOF` (the sender
//!   sends no more on this stream), `WINDOW` (u32: the sender of it accepts that many more
//!   bytes), `RESET` (payload: why, UTF-8; the stream is over both ways).
//! - **Ids:** the side that opens a stream picks its id: odd on the host, even in the guest.
//! - **Windows:** each direction of a stream starts with [`WINDOW`] bytes of credit; a
//!   receiver gives credit back once it has written the bytes on, so a client that reads
//!   slowly holds up its own stream only, never the link.
//!
//! Architecture invariant: this crate knows nothing of the Engine API, QEMU or containers;
//! what a target means is its users' business.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

pub mod datagram;
pub mod paths;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch, Semaphore};

/// The largest payload one frame carries.
pub const MAX_PAYLOAD: usize = 64 * 1024;
/// What one stream may have in flight, each way, before its reader gives credit back.
pub const WINDOW: usize = 256 * 1024;
/// The ready line's first words.
pub const READY: &str = "BERTH-GUEST READY";

const OPEN: u8 = 1;
const DATA: u8 = 2;
const EOF: u8 = 3;
const WINDOW_KIND: u8 = 4;
const RESET: u8 = 5;
const HEADER: usize = 9;

/// Which end of the link this is (it decides the parity of the ids it picks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Host,
    Guest,
}

/// Writes the ready line (`what`: a word or two, e.g. the engine's version).
pub async fn write_ready<W: AsyncWrite + Unpin>(w: &mut W, what: &str) -> io::Result<()> {
    // The leading newline ends whatever a previous link left half-written.
    w.write_all(format!("\n{READY} {what}\n").as_bytes()).await?;
    w.flush().await
}

/// Reads up to the ready line and returns what follows `READY` on it. Bytes before it
/// (a console's noise) are skipped; nothing after the newline is read.
pub async fn read_ready<R: AsyncRead + Unpin>(r: &mut R) -> io::Result<String> {
    let mut line = Vec::new();
    loop {
        let b = r.read_u8().await?;
        if b != b'\n' {
            if line.len() < 4096 {
                line.push(b);
            }
            continue;
        }
        let text = String::from_utf8_lossy(&line);
        if let Some(at) = text.find(READY) {
            return Ok(text[at + READY.len()..].trim().to_string());
        }
        line.clear();
    }
}

#[derive(Debug)]
enum Msg {
    Data(Bytes),
    Eof,
    Reset(String),
}

struct Slot {
    tx: mpsc::UnboundedSender<Msg>,
    credit: Arc<Semaphore>,
}

struct Inner {
    out: mpsc::Sender<Bytes>,
    streams: Mutex<HashMap<u32, Slot>>,
    next_id: AtomicU32,
    down: watch::Receiver<bool>,
    /// Set once the writer has let go of its half of the byte stream.
    written: watch::Receiver<bool>,
}

/// One end of a link. Cheap to clone; the link lives while its byte stream does.
#[derive(Clone)]
pub struct Link {
    inner: Arc<Inner>,
}

/// The streams the other side opens, with their targets.
pub struct Incoming {
    rx: mpsc::UnboundedReceiver<(String, Stream)>,
}

impl Incoming {
    /// The next stream the other side opened, or `None` once the link is down.
    pub async fn next(&mut self) -> Option<(String, Stream)> {
        self.rx.recv().await
    }
}

/// One logical stream. [`Stream::splice`] joins it to a local connection; dropping it
/// unfinished resets it.
pub struct Stream {
    id: u32,
    inner: Arc<Inner>,
    rx: mpsc::UnboundedReceiver<Msg>,
    credit: Arc<Semaphore>,
    finished: bool,
}

fn frame(id: u32, kind: u8, payload: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(HEADER + payload.len());
    b.extend_from_slice(&id.to_be_bytes());
    b.extend_from_slice(&[kind]);
    b.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    b.extend_from_slice(payload);
    b.freeze()
}

fn link_down() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the link to the machine is down")
}

impl Link {
    /// Runs a link over `reader`/`writer` (tasks on the current tokio runtime) and returns
    /// it with the streams the other side will open.
    pub fn new<R, W>(reader: R, writer: W, side: Side) -> (Link, Incoming)
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let (out_tx, out_rx) = mpsc::channel::<Bytes>(64);
        let (down_tx, down_rx) = watch::channel(false);
        let (written_tx, written_rx) = watch::channel(false);
        let inner = Arc::new(Inner {
            out: out_tx,
            streams: Mutex::new(HashMap::new()),
            next_id: AtomicU32::new(match side {
                Side::Host => 1,
                Side::Guest => 2,
            }),
            down: down_rx,
            written: written_rx,
        });
        let (in_tx, in_rx) = mpsc::unbounded_channel();
        let down_tx = Arc::new(down_tx);
        let writer_down = down_tx.clone();
        tokio::spawn(async move {
            write_frames(writer, out_rx, writer_down).await;
            let _ = written_tx.send(true);
        });
        tokio::spawn(read_frames(reader, inner.clone(), in_tx, down_tx));
        (Link { inner }, Incoming { rx: in_rx })
    }

    /// Opens a stream to `target` on the other side. It fails only when the link is down;
    /// a target the other side cannot reach resets the stream (seen by `splice`).
    pub async fn open(&self, target: &str) -> io::Result<Stream> {
        let id = self.inner.next_id.fetch_add(2, Ordering::Relaxed);
        let stream = self.inner.register(id);
        self.inner
            .out
            .send(frame(id, OPEN, target.as_bytes()))
            .await
            .map_err(|_| link_down())?;
        Ok(stream)
    }

    /// Whether the byte stream under the link has ended.
    pub fn is_down(&self) -> bool {
        *self.inner.down.borrow()
    }

    /// Completes once the byte stream under the link has ended.
    pub async fn closed(&self) {
        let mut down = self.inner.down.clone();
        let _ = down.wait_for(|d| *d).await;
    }

    /// Completes once the link is down and its writer has let go of the byte stream (a
    /// write that was under way has finished), so a new link on the same byte stream
    /// cannot be interleaved with this one's last frames.
    pub async fn finished(&self) {
        self.closed().await;
        let mut written = self.inner.written.clone();
        let _ = written.wait_for(|w| *w).await;
    }

    /// How many streams are open now.
    pub fn streams(&self) -> usize {
        self.inner.streams.lock().map(|s| s.len()).unwrap_or(0)
    }
}

impl Inner {
    fn register(self: &Arc<Self>, id: u32) -> Stream {
        let (tx, rx) = mpsc::unbounded_channel();
        let credit = Arc::new(Semaphore::new(WINDOW));
        if let Ok(mut s) = self.streams.lock() {
            s.insert(
                id,
                Slot {
                    tx,
                    credit: credit.clone(),
                },
            );
        }
        if *self.down.borrow() {
            credit.close();
        }
        Stream {
            id,
            inner: self.clone(),
            rx,
            credit,
            finished: false,
        }
    }

    fn forget(&self, id: u32) {
        if let Ok(mut s) = self.streams.lock() {
            s.remove(&id);
        }
    }
}

async fn write_frames<W: AsyncWrite + Unpin>(
    mut w: W,
    mut rx: mpsc::Receiver<Bytes>,
    down: Arc<watch::Sender<bool>>,
) {
    let mut down_rx = down.subscribe();
    loop {
        let next = tokio::select! {
            f = rx.recv() => f,
            _ = down_rx.wait_for(|d| *d) => None,
        };
        let Some(f) = next else { break };
        if w.write_all(&f).await.is_err() {
            break;
        }
        // Frames queued behind this one go out in the same flush.
        let mut failed = false;
        while let Ok(f) = rx.try_recv() {
            if w.write_all(&f).await.is_err() {
                failed = true;
                break;
            }
        }
        if failed || w.flush().await.is_err() {
            break;
        }
    }
    let _ = w.shutdown().await;
    down.send_replace(true);
}

async fn read_frames<R: AsyncRead + Unpin>(
    r: R,
    inner: Arc<Inner>,
    incoming: mpsc::UnboundedSender<(String, Stream)>,
    down: Arc<watch::Sender<bool>>,
) {
    let mut r = tokio::io::BufReader::with_capacity(2 * MAX_PAYLOAD, r);
    let mut down_rx = down.subscribe();
    let mut header = [0u8; HEADER];
    loop {
        let got = tokio::select! {
            g = r.read_exact(&mut header) => g,
            _ = down_rx.wait_for(|d| *d) => break,
        };
        if got.is_err() {
            break;
        }
        let mut h = &header[..];
        let (id, kind, len) = (h.get_u32(), h.get_u8(), h.get_u32() as usize);
        if len > MAX_PAYLOAD {
            tracing::warn!(len, "link: a frame larger than allowed; dropping the link");
            break;
        }
        let mut payload = vec![0u8; len];
        if r.read_exact(&mut payload).await.is_err() {
            break;
        }
        match kind {
            OPEN => {
                let target = String::from_utf8_lossy(&payload).into_owned();
                let stream = inner.register(id);
                if incoming.send((target, stream)).is_err() {
                    // Nobody accepts streams on this end: the drop resets it.
                }
            }
            DATA | EOF | RESET => {
                let msg = match kind {
                    DATA => Msg::Data(Bytes::from(payload)),
                    EOF => Msg::Eof,
                    _ => Msg::Reset(String::from_utf8_lossy(&payload).into_owned()),
                };
                if let Ok(s) = inner.streams.lock() {
                    if let Some(slot) = s.get(&id) {
                        let _ = slot.tx.send(msg);
                    }
                }
            }
            WINDOW_KIND if len == 4 => {
                let more = u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]);
                if let Ok(s) = inner.streams.lock() {
                    if let Some(slot) = s.get(&id) {
                        slot.credit.add_permits(more as usize);
                    }
                }
            }
            other => tracing::warn!(kind = other, "link: unknown frame kind ignored"),
        }
    }
    down.send_replace(true);
    // Every stream learns the link is gone: their receivers end, their credit closes.
    if let Ok(mut s) = inner.streams.lock() {
        for (_, slot) in s.drain() {
            slot.credit.close();
        }
    }
}

impl Stream {
    /// The stream's id (for logs).
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Refuses a stream the other side opened, telling it why.
    pub async fn refuse(mut self, why: &str) {
        self.finished = true;
        self.inner.forget(self.id);
        let _ = self.inner.out.send(frame(self.id, RESET, why.as_bytes())).await;
    }

    /// Copies both ways between this stream and `io` until both directions have ended
    /// (each end's EOF is passed on as a half-close). Returns the bytes sent and received.
    /// A reset from the other side, or a failure of `io`, ends both directions.
    pub async fn splice<T>(mut self, io: T) -> io::Result<(u64, u64)>
    where
        T: AsyncRead + AsyncWrite + Unpin,
    {
        let (mut r, mut w) = tokio::io::split(io);
        let (id, out, credit) = (self.id, self.inner.out.clone(), self.credit.clone());
        let rx = &mut self.rx;
        let to_remote = async {
            let mut buf = vec![0u8; MAX_PAYLOAD / 2];
            let mut sent = 0u64;
            loop {
                let n = match r.read(&mut buf).await {
                    Ok(n) => n,
                    Err(e) => {
                        let _ = out.send(frame(id, RESET, e.to_string().as_bytes())).await;
                        return Err(e);
                    }
                };
                if n == 0 {
                    out.send(frame(id, EOF, &[])).await.map_err(|_| link_down())?;
                    return Ok(sent);
                }
                credit
                    .acquire_many(n as u32)
                    .await
                    .map_err(|_| link_down())?
                    .forget();
                out.send(frame(id, DATA, &buf[..n]))
                    .await
                    .map_err(|_| link_down())?;
                sent += n as u64;
            }
        };
        let from_remote = async {
            let mut received = 0u64;
            loop {
                match rx.recv().await {
                    Some(Msg::Data(b)) => {
                        w.write_all(&b).await?;
                        w.flush().await?;
                        received += b.len() as u64;
                        let _ = out
                            .send(frame(id, WINDOW_KIND, &(b.len() as u32).to_be_bytes()))
                            .await;
                    }
                    Some(Msg::Eof) => {
                        let _ = w.shutdown().await;
                        return Ok(received);
                    }
                    Some(Msg::Reset(why)) => {
                        return Err(io::Error::new(io::ErrorKind::ConnectionReset, why));
                    }
                    None => return Err(link_down()),
                }
            }
        };
        let result = tokio::try_join!(to_remote, from_remote);
        self.finished = result.is_ok();
        self.inner.forget(self.id);
        if !self.finished {
            let _ = self
                .inner
                .out
                .try_send(frame(self.id, RESET, b"the other end went away"));
            self.finished = true;
        }
        result
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        if !self.finished {
            self.inner.forget(self.id);
            let _ = self.inner.out.try_send(frame(self.id, RESET, b"closed"));
        }
    }
}

#[cfg(test)]
mod tests;
