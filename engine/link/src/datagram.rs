//! Datagrams over a stream (a published UDP port's flow): each one is a big-endian u16
//! length and that many bytes, so the boundaries a UDP socket keeps survive the byte stream.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The largest datagram a frame carries (a UDP payload over IPv4 is at most 65,507 bytes).
pub const MAX: usize = u16::MAX as usize;

/// Writes one datagram; one longer than [`MAX`] is refused, not cut.
pub async fn write<W: AsyncWrite + Unpin>(w: &mut W, datagram: &[u8]) -> io::Result<()> {
    let len = u16::try_from(datagram.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a datagram longer than 65,535 bytes"))?;
    let mut frame = Vec::with_capacity(2 + datagram.len());
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(datagram);
    w.write_all(&frame).await?;
    w.flush().await
}

/// Reads one datagram into `buf` (replacing what it held); `false` at a clean end of the
/// stream between datagrams. An end inside one is an error.
pub async fn read<R: AsyncRead + Unpin>(r: &mut R, buf: &mut Vec<u8>) -> io::Result<bool> {
    let mut len = [0u8; 2];
    match r.read_exact(&mut len[..1]).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(false),
        Err(e) => return Err(e),
    }
    r.read_exact(&mut len[1..]).await?;
    buf.resize(u16::from_be_bytes(len) as usize, 0);
    r.read_exact(buf).await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn boundaries_survive_and_the_end_is_clean_or_an_error() {
        let (mut a, mut b) = tokio::io::duplex(64);
        let sent: Vec<Vec<u8>> = vec![b"one".to_vec(), Vec::new(), vec![7u8; 300], b"last".to_vec()];
        let writer = {
            let sent = sent.clone();
            tokio::spawn(async move {
                for d in &sent {
                    write(&mut a, d).await.unwrap();
                }
                assert!(write(&mut a, &vec![0u8; MAX + 1]).await.is_err());
            })
        };
        let mut got = Vec::new();
        let mut buf = Vec::new();
        while read(&mut b, &mut buf).await.unwrap() {
            got.push(buf.clone());
        }
        writer.await.unwrap();
        assert_eq!(got, sent);

        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&[0, 10, 1, 2]).await.unwrap();
        drop(a);
        assert!(read(&mut b, &mut buf).await.is_err(), "cut inside a datagram");
    }
}
