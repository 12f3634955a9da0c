use super::*;
use std::time::Duration;
use tokio::io::duplex;

/// Two ends over an in-memory pipe; the guest end echoes `echo` streams, refuses others.
fn pair() -> (Link, Link, Incoming) {
    let (h, g) = duplex(16 * 1024);
    let (hr, hw) = tokio::io::split(h);
    let (gr, gw) = tokio::io::split(g);
    let (host, host_in) = Link::new(hr, hw, Side::Host);
    let (guest, mut guest_in) = Link::new(gr, gw, Side::Guest);
    tokio::spawn(async move {
        while let Some((target, stream)) = guest_in.next().await {
            if target == "echo" {
                tokio::spawn(async move {
                    let (a, b) = duplex(1024);
                    let echo = tokio::spawn(async move {
                        let (mut r, mut w) = tokio::io::split(b);
                        let _ = tokio::io::copy(&mut r, &mut w).await;
                        let _ = w.shutdown().await;
                    });
                    let _ = stream.splice(a).await;
                    let _ = echo.await;
                });
            } else {
                stream.refuse(&format!("no such target {target}")).await;
            }
        }
    });
    (host, guest, host_in)
}

async fn round_trip(link: &Link, data: Vec<u8>) -> io::Result<Vec<u8>> {
    let stream = link.open("echo").await?;
    let (mine, theirs) = duplex(4096);
    let splice = tokio::spawn(stream.splice(theirs));
    let (mut r, mut w) = tokio::io::split(mine);
    let writer = tokio::spawn(async move {
        w.write_all(&data).await?;
        w.shutdown().await
    });
    let mut back = Vec::new();
    r.read_to_end(&mut back).await?;
    writer.await.expect("writer")?;
    splice.await.expect("splice")?;
    Ok(back)
}

#[tokio::test]
async fn ready_line_skips_noise_and_reads_nothing_after_it() {
    let (mut a, mut b) = duplex(1024);
    b.write_all(b"[    0.1] console noise\n\x00\x00\x01half a frame")
        .await
        .unwrap();
    write_ready(&mut b, "berth 0.1.0").await.unwrap();
    b.write_all(b"\x00\x00\x00\x01").await.unwrap();
    assert_eq!(read_ready(&mut a).await.unwrap(), "berth 0.1.0");
    let mut rest = [0u8; 4];
    a.read_exact(&mut rest).await.unwrap();
    assert_eq!(rest, [0, 0, 0, 1]);
}

#[tokio::test]
async fn many_streams_at_once_each_get_their_own_bytes_back() {
    let (host, _guest, _in) = pair();
    let mut tasks = Vec::new();
    for i in 0..32u32 {
        let host = host.clone();
        tasks.push(tokio::spawn(async move {
            let data: Vec<u8> = (0..(i as usize * 7919 + 1))
                .map(|n| (n as u32 ^ i) as u8)
                .collect();
            let back = round_trip(&host, data.clone()).await.expect("round trip");
            assert_eq!(back, data, "stream {i}");
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    // Finished streams are forgotten on both ends.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(host.streams(), 0);
}

#[tokio::test]
async fn more_than_a_window_goes_through() {
    let (host, _guest, _in) = pair();
    let data: Vec<u8> = (0..(3 * WINDOW + 12345)).map(|n| (n % 251) as u8).collect();
    let back = round_trip(&host, data.clone()).await.expect("round trip");
    assert_eq!(back.len(), data.len());
    assert!(back == data);
}

#[tokio::test]
async fn a_stalled_reader_holds_up_only_its_own_stream() {
    let (host, _guest, _in) = pair();
    // A stream whose local end never reads: its sender runs out of credit.
    let stalled = host.open("echo").await.unwrap();
    let (mine, theirs) = duplex(64);
    let _splice = tokio::spawn(stalled.splice(theirs));
    let (_r, mut w) = tokio::io::split(mine);
    let flood = tokio::spawn(async move {
        let chunk = vec![7u8; 4096];
        loop {
            if w.write_all(&chunk).await.is_err() {
                break;
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Another stream still gets its answer.
    let back = tokio::time::timeout(Duration::from_secs(5), round_trip(&host, b"hello".to_vec()))
        .await
        .expect("a second stream is not held up by the stalled one")
        .expect("round trip");
    assert_eq!(back, b"hello");
    flood.abort();
}

#[tokio::test]
async fn an_unknown_target_resets_the_stream_with_the_reason() {
    let (host, _guest, _in) = pair();
    let stream = host.open("nothing-here").await.unwrap();
    let (_mine, theirs) = duplex(64);
    let err = stream.splice(theirs).await.expect_err("a refused stream");
    assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
    assert!(err.to_string().contains("no such target nothing-here"), "{err}");
}

#[tokio::test]
async fn a_link_that_goes_down_ends_its_streams_and_refuses_new_ones() {
    let (h, g) = duplex(1024);
    let (hr, hw) = tokio::io::split(h);
    let (host, _in) = Link::new(hr, hw, Side::Host);
    let stream = host.open("anything").await.unwrap();
    let (_mine, theirs) = duplex(64);
    let splice = tokio::spawn(stream.splice(theirs));
    drop(g);
    tokio::time::timeout(Duration::from_secs(5), host.closed())
        .await
        .expect("the link notices its byte stream is gone");
    assert!(host.is_down());
    tokio::time::timeout(Duration::from_secs(5), host.finished())
        .await
        .expect("its writer lets go of the byte stream");
    let err = tokio::time::timeout(Duration::from_secs(5), splice)
        .await
        .expect("the stream ends")
        .expect("task")
        .expect_err("an error");
    assert_eq!(err.kind(), io::ErrorKind::BrokenPipe, "{err}");
    assert!(host.open("x").await.is_err());
}

#[tokio::test]
async fn ids_are_odd_on_the_host_and_even_in_the_guest() {
    let (host, guest, _in) = pair();
    let a = host.open("echo").await.unwrap();
    let b = host.open("echo").await.unwrap();
    let c = guest.open("x").await.unwrap();
    assert_eq!((a.id() % 2, b.id() % 2, c.id() % 2), (1, 1, 0));
    assert_ne!(a.id(), b.id());
}
