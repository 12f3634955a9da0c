//! Store tests on a real filesystem, with real concurrent threads and processes.
//!
//! Multi-process tests re-run this test binary with `BERTH_STORE_TEST_ROLE` set; the
//! `helper_process` test then plays that role instead of testing anything.

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use berth_oci::{media_type, Descriptor, Digest};
use berth_store::{ImageRecord, IngestStart, LayerRecord, Store, StoreError};

const ROLE: &str = "BERTH_STORE_TEST_ROLE";
const ROOT: &str = "BERTH_STORE_TEST_ROOT";
const ARG: &str = "BERTH_STORE_TEST_ARG";

fn new_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

fn data(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| ((i * 31 + seed as usize) % 251) as u8).collect()
}

fn partial_path(store: &Store, d: &Digest) -> PathBuf {
    store.root().join("ingest").join(format!("{}.partial", d.hex()))
}

fn ingest_dir_entries(store: &Store) -> Vec<String> {
    fs::read_dir(store.root().join("ingest"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

fn tmp_entries(store: &Store) -> Vec<String> {
    fs::read_dir(store.root().join("tmp"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// Ingests `bytes` slowly (so that concurrent writers overlap); returns "wrote" or "present".
fn slow_ingest(store: &Store, bytes: &[u8]) -> &'static str {
    let digest = Digest::of(bytes);
    match store.ingest(&digest, Some(bytes.len() as u64)).unwrap() {
        IngestStart::Present => "present",
        IngestStart::Writer(mut w) => {
            for chunk in bytes.chunks(16 * 1024) {
                w.write(chunk).unwrap();
                thread::sleep(Duration::from_millis(2));
            }
            w.commit().unwrap();
            "wrote"
        }
    }
}

fn spawn_helper(role: &str, root: &Path, arg: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "helper_process", "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .env(ROOT, root)
        .env(ARG, arg)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// Waits for a helper to exit successfully and returns its `RESULT:` markers.
fn helper_results(child: Child) -> Vec<String> {
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "helper failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout)
        .split("RESULT:")
        .skip(1)
        .map(|s| s.split_whitespace().next().unwrap_or("").to_string())
        .collect()
}

/// Not a test when run normally: the body of the helper processes the other tests spawn.
#[test]
fn helper_process() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let store = Store::open(Path::new(&std::env::var(ROOT).unwrap())).unwrap();
    let arg = std::env::var(ARG).unwrap_or_default();
    match role.as_str() {
        "ingest" => {
            let seed: u8 = arg.parse().unwrap();
            println!("RESULT:{}", slow_ingest(&store, &data(512 * 1024, seed)));
        }
        "tags" => {
            let (prefix, n) = arg.split_once(':').unwrap();
            let id = Digest::of(prefix.as_bytes());
            for i in 0..n.parse::<usize>().unwrap() {
                store.set_tag(&format!("{prefix}-{i}"), &id).unwrap();
            }
            println!("RESULT:done");
        }
        "tag-forever" => {
            let id = Digest::of(b"forever");
            for i in 0.. {
                store
                    .set_tag(&format!("docker.io/library/forever:{i}"), &id)
                    .unwrap();
            }
        }
        "lease" => {
            let _lease = store.lease().unwrap();
            println!("RESULT:leased");
            std::io::stdout().flush().unwrap();
            // Hold the lease until the parent closes our stdin.
            let mut line = String::new();
            let _ = std::io::stdin().read_line(&mut line);
            println!("RESULT:released");
        }
        "ingest-half-then-hang" => {
            let bytes = data(256 * 1024, arg.parse().unwrap());
            let d = Digest::of(&bytes);
            let IngestStart::Writer(mut w) = store.ingest(&d, Some(bytes.len() as u64)).unwrap() else {
                panic!("blob unexpectedly present")
            };
            w.write(&bytes[..bytes.len() / 2]).unwrap();
            println!("RESULT:half");
            std::io::stdout().flush().unwrap();
            // Wait, holding the ingest lock, until killed.
            let mut line = String::new();
            let _ = std::io::stdin().read_line(&mut line);
        }
        "awkward-gc" => {
            awkward_gc_body(&store);
            println!("RESULT:done");
        }
        other => panic!("unknown helper role {other}"),
    }
}

// ---------------------------------------------------------------- content

#[test]
fn ingest_happy_path() {
    let (_dir, store) = new_store();
    let bytes = data(200_000, 1);
    let d = Digest::of(&bytes);
    assert!(!store.has_blob(&d));
    let IngestStart::Writer(mut w) = store.ingest(&d, Some(bytes.len() as u64)).unwrap() else {
        panic!("blob should not be present yet")
    };
    assert_eq!(w.offset(), 0);
    for chunk in bytes.chunks(7000) {
        w.write(chunk).unwrap();
    }
    assert_eq!(w.offset(), bytes.len() as u64);
    w.commit().unwrap();

    assert!(store.has_blob(&d));
    assert_eq!(store.blob_size(&d), Some(bytes.len() as u64));
    assert_eq!(store.read_blob(&d).unwrap(), bytes);
    let mode = fs::metadata(store.blob_path(&d)).unwrap().permissions().mode();
    assert_eq!(mode & 0o222, 0, "blobs are read-only");
    assert!(ingest_dir_entries(&store).is_empty(), "no partial or lock left");
    assert!(matches!(store.ingest(&d, None).unwrap(), IngestStart::Present));
}

#[test]
fn small_blobs() {
    let (_dir, store) = new_store();
    let d = store.write_blob(b"{\"a\":1}").unwrap();
    assert_eq!(d, Digest::of(b"{\"a\":1}"));
    assert_eq!(store.read_blob(&d).unwrap(), b"{\"a\":1}");
    // Writing it again is fine.
    assert_eq!(store.write_blob(b"{\"a\":1}").unwrap(), d);
    store.write_blob_expecting(b"x", &Digest::of(b"x")).unwrap();

    let wanted = Digest::of(b"right");
    match store.write_blob_expecting(b"wrong", &wanted) {
        Err(StoreError::DigestMismatch { expected, actual }) => {
            assert_eq!(expected, wanted);
            assert_eq!(actual, Digest::of(b"wrong"));
        }
        other => panic!("expected a digest mismatch, got {other:?}"),
    }
    assert!(!store.has_blob(&wanted));
    assert!(!store.has_blob(&Digest::of(b"wrong")));
    assert!(tmp_entries(&store).is_empty());
    assert!(matches!(
        store.read_blob(&wanted),
        Err(StoreError::MissingBlob(_))
    ));
    assert!(matches!(
        store.open_blob(&wanted),
        Err(StoreError::MissingBlob(_))
    ));
}

#[test]
fn ingest_digest_mismatch_stores_nothing() {
    let (_dir, store) = new_store();
    let wanted = Digest::of(b"right content");
    let IngestStart::Writer(mut w) = store.ingest(&wanted, None).unwrap() else {
        panic!()
    };
    w.write(b"wrong content").unwrap();
    match w.commit() {
        Err(StoreError::DigestMismatch { expected, actual }) => {
            assert_eq!(expected, wanted);
            assert_eq!(actual, Digest::of(b"wrong content"));
        }
        other => panic!("expected a digest mismatch, got {other:?}"),
    }
    assert!(!store.has_blob(&wanted));
    assert!(fs::read_dir(store.root().join("blobs/sha256"))
        .unwrap()
        .next()
        .is_none());
    assert!(
        ingest_dir_entries(&store).is_empty(),
        "partial deleted, lock released"
    );
}

#[test]
fn oversized_write_refused() {
    let (_dir, store) = new_store();
    let bytes = b"0123456789";
    let d = Digest::of(bytes);
    let IngestStart::Writer(mut w) = store.ingest(&d, Some(10)).unwrap() else {
        panic!()
    };
    w.write(&bytes[..8]).unwrap();
    assert!(w.write(b"89X").is_err());
    assert_eq!(w.offset(), 8, "a refused write writes nothing");
    assert_eq!(fs::metadata(partial_path(&store, &d)).unwrap().len(), 8);
    w.write(&bytes[8..]).unwrap();
    w.commit().unwrap();
    assert_eq!(store.read_blob(&d).unwrap(), bytes);
}

#[test]
fn short_content_is_a_size_mismatch() {
    let (_dir, store) = new_store();
    let bytes = data(1000, 2);
    let d = Digest::of(&bytes);
    let IngestStart::Writer(mut w) = store.ingest(&d, Some(1000)).unwrap() else {
        panic!()
    };
    w.write(&bytes[..600]).unwrap();
    assert!(matches!(
        w.commit(),
        Err(StoreError::SizeMismatch {
            expected: 1000,
            actual: 600,
            ..
        })
    ));
    assert!(!store.has_blob(&d));
    // The partial stays: it is a valid prefix and the next attempt resumes from it.
    let IngestStart::Writer(w) = store.ingest(&d, Some(1000)).unwrap() else {
        panic!()
    };
    assert_eq!(w.offset(), 600);
}

#[test]
fn restart_truncates() {
    let (_dir, store) = new_store();
    let bytes = data(5000, 3);
    let d = Digest::of(&bytes);
    let IngestStart::Writer(mut w) = store.ingest(&d, Some(5000)).unwrap() else {
        panic!()
    };
    w.write(b"garbage that the server sent before we noticed")
        .unwrap();
    w.restart().unwrap();
    assert_eq!(w.offset(), 0);
    w.write(&bytes).unwrap();
    w.commit().unwrap();
    assert_eq!(store.read_blob(&d).unwrap(), bytes);
}

#[test]
fn ingest_resumes_after_drop() {
    let (_dir, store) = new_store();
    let bytes = data(300_001, 4);
    let half = bytes.len() / 2;
    let d = Digest::of(&bytes);
    {
        let IngestStart::Writer(mut w) = store.ingest(&d, Some(bytes.len() as u64)).unwrap() else {
            panic!()
        };
        w.write(&bytes[..half]).unwrap();
        // Dropped without commit, as when a pull is interrupted.
    }
    assert_eq!(fs::metadata(partial_path(&store, &d)).unwrap().len(), half as u64);
    assert!(!store.has_blob(&d));

    // A fresh handle (as a new process would have) resumes.
    let store = Store::open(store.root()).unwrap();
    let IngestStart::Writer(mut w) = store.ingest(&d, Some(bytes.len() as u64)).unwrap() else {
        panic!()
    };
    assert_eq!(w.offset(), half as u64);
    w.write(&bytes[half..]).unwrap();
    w.commit().unwrap();
    assert_eq!(store.read_blob(&d).unwrap(), bytes);
    assert!(ingest_dir_entries(&store).is_empty());
}

#[test]
fn resumed_garbage_partial_is_a_mismatch() {
    let (_dir, store) = new_store();
    let bytes = data(100_000, 5);
    let half = bytes.len() / 2;
    let d = Digest::of(&bytes);
    {
        let IngestStart::Writer(mut w) = store.ingest(&d, Some(bytes.len() as u64)).unwrap() else {
            panic!()
        };
        w.write(&bytes[..half]).unwrap();
    }
    // Something scribbles over the partial file between attempts.
    fs::write(partial_path(&store, &d), vec![0xAAu8; half]).unwrap();

    let IngestStart::Writer(mut w) = store.ingest(&d, Some(bytes.len() as u64)).unwrap() else {
        panic!()
    };
    assert_eq!(w.offset(), half as u64);
    w.write(&bytes[half..]).unwrap();
    assert!(matches!(w.commit(), Err(StoreError::DigestMismatch { .. })));
    assert!(!store.has_blob(&d));
    assert!(!partial_path(&store, &d).exists(), "bad partial deleted");

    // The next attempt starts from scratch and succeeds.
    let IngestStart::Writer(mut w) = store.ingest(&d, Some(bytes.len() as u64)).unwrap() else {
        panic!()
    };
    assert_eq!(w.offset(), 0);
    w.write(&bytes).unwrap();
    w.commit().unwrap();
    assert_eq!(store.read_blob(&d).unwrap(), bytes);
}

#[test]
fn two_threads_ingest_same_digest() {
    let (_dir, store) = new_store();
    let bytes = Arc::new(data(512 * 1024, 6));
    let barrier = Arc::new(Barrier::new(2));
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let (store, bytes, barrier) = (store.clone(), bytes.clone(), barrier.clone());
            thread::spawn(move || {
                barrier.wait();
                slow_ingest(&store, &bytes)
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(
        results.iter().filter(|r| **r == "wrote").count(),
        1,
        "{results:?}"
    );
    assert_eq!(store.read_blob(&Digest::of(&bytes)).unwrap(), *bytes);
    assert!(ingest_dir_entries(&store).is_empty());
}

#[test]
fn two_processes_ingest_same_digest() {
    let (_dir, store) = new_store();
    let children: Vec<_> = (0..2)
        .map(|_| spawn_helper("ingest", store.root(), "7"))
        .collect();
    let mut results: Vec<String> = children.into_iter().flat_map(helper_results).collect();
    results.sort();
    assert_eq!(results, ["present", "wrote"]);
    let bytes = data(512 * 1024, 7);
    let d = Digest::of(&bytes);
    assert_eq!(store.read_blob(&d).unwrap(), bytes);
    assert_eq!(
        fs::read_dir(store.root().join("blobs/sha256")).unwrap().count(),
        1
    );
    assert!(ingest_dir_entries(&store).is_empty());
}

#[test]
fn killed_writer_releases_its_digest_and_the_download_resumes() {
    let (_dir, store) = new_store();
    let bytes = data(256 * 1024, 8);
    let d = Digest::of(&bytes);
    let mut child = spawn_helper("ingest-half-then-hang", store.root(), "8");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("RESULT:half") {
        line.clear();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "helper exited early");
    }
    // While the writer lives, GC leaves its partial alone.
    assert_eq!(store.gc().unwrap().partials_removed, 0);
    child.kill().unwrap();
    child.wait().unwrap();

    // The kernel released the dead writer's lock: this does not block, and resumes.
    let IngestStart::Writer(mut w) = store.ingest(&d, Some(bytes.len() as u64)).unwrap() else {
        panic!("blob unexpectedly present")
    };
    assert_eq!(w.offset(), bytes.len() as u64 / 2);
    w.write(&bytes[bytes.len() / 2..]).unwrap();
    w.commit().unwrap();
    assert_eq!(store.read_blob(&d).unwrap(), bytes);
}

#[test]
fn store_is_shareable() {
    fn check<T: Clone + Send + Sync + 'static>() {}
    check::<Store>();
    fn send<T: Send>() {}
    send::<berth_store::Ingest>();
    send::<berth_store::Lease>();
}

// ---------------------------------------------------------------- metadata

#[test]
fn tags_round_trip() {
    let (_dir, store) = new_store();
    let a = Digest::of(b"a");
    let b = Digest::of(b"b");
    assert_eq!(store.set_tag("docker.io/library/flask:latest", &a).unwrap(), None);
    assert_eq!(
        store.set_tag("docker.io/library/flask:latest", &b).unwrap(),
        Some(a.clone())
    );
    assert_eq!(
        store.resolve_tag("docker.io/library/flask:latest").unwrap(),
        Some(b.clone())
    );
    // Another handle (as another process would) sees the change.
    let other = Store::open(store.root()).unwrap();
    assert_eq!(
        other.resolve_tag("docker.io/library/flask:latest").unwrap(),
        Some(b.clone())
    );
    assert_eq!(
        other.remove_tag("docker.io/library/flask:latest").unwrap(),
        Some(b)
    );
    assert_eq!(store.resolve_tag("docker.io/library/flask:latest").unwrap(), None);
    assert_eq!(store.remove_tag("nope").unwrap(), None);
    assert!(store.tags().unwrap().is_empty());
}

#[test]
fn concurrent_set_tag_loses_nothing() {
    let (_dir, store) = new_store();
    let children: Vec<_> = (0..3)
        .map(|p| spawn_helper("tags", store.root(), &format!("proc{p}:15")))
        .collect();
    let threads: Vec<_> = (0..6)
        .map(|t| {
            let store = store.clone();
            thread::spawn(move || {
                let id = Digest::of(format!("thread{t}").as_bytes());
                for i in 0..15 {
                    store.set_tag(&format!("thread{t}-{i}"), &id).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    for c in children {
        assert_eq!(helper_results(c), ["done"]);
    }
    let tags: BTreeSet<String> = store.tags().unwrap().into_iter().map(|(n, _)| n).collect();
    assert_eq!(tags.len(), 3 * 15 + 6 * 15);
    for p in 0..3 {
        for i in 0..15 {
            assert!(tags.contains(&format!("proc{p}-{i}")));
        }
    }
    assert_eq!(
        store.resolve_tag("thread4-14").unwrap(),
        Some(Digest::of(b"thread4"))
    );
}

/// Stores config, manifest and layer blobs for a small image and returns its record
/// (not yet put).
fn make_image(store: &Store, seed: u32) -> ImageRecord {
    let layer = data(4096, seed as u8);
    let layer_d = store.write_blob(&layer).unwrap();
    let config = format!(r#"{{"architecture":"amd64","os":"linux","seed":{seed}}}"#);
    let config_d = store.write_blob(config.as_bytes()).unwrap();
    let manifest = format!(r#"{{"schemaVersion":2,"config":"{config_d}","layers":["{layer_d}"]}}"#);
    let manifest_d = store.write_blob(manifest.as_bytes()).unwrap();
    ImageRecord {
        id: config_d.clone(),
        manifest: Descriptor::new(media_type::OCI_MANIFEST, manifest_d, manifest.len() as u64),
        index_digest: None,
        config: Descriptor::new(media_type::OCI_CONFIG, config_d, config.len() as u64),
        layers: vec![LayerRecord {
            blob: Descriptor::new(media_type::OCI_LAYER_TAR, layer_d, layer.len() as u64),
            diff_id: Digest::of(&layer),
            unpacked_size: layer.len() as u64,
        }],
        repo_digests: vec![],
        platform: Some("linux/amd64".parse().unwrap()),
        created: None,
        stored_at: "2024-01-01T00:00:00Z".into(),
    }
}

#[test]
fn put_image_refuses_missing_blobs() {
    let (_dir, store) = new_store();
    let rec = make_image(&store, 1);
    let mut missing_layer = rec.clone();
    let absent = Digest::of(b"never stored");
    missing_layer.layers[0].blob.set_digest(absent.clone());
    match store.put_image(missing_layer) {
        Err(StoreError::MissingBlob(d)) => assert_eq!(d, absent),
        other => panic!("expected MissingBlob, got {other:?}"),
    }
    let mut missing_manifest = rec.clone();
    missing_manifest.manifest.set_digest(absent.clone());
    assert!(matches!(
        store.put_image(missing_manifest),
        Err(StoreError::MissingBlob(_))
    ));
    let mut wrong_id = rec.clone();
    wrong_id.id = absent;
    assert!(matches!(
        store.put_image(wrong_id),
        Err(StoreError::InvalidRecord { .. })
    ));
    assert!(store.images().unwrap().is_empty());

    store.put_image(rec.clone()).unwrap();
    assert_eq!(store.image(&rec.id).unwrap(), Some(rec.clone()));
    assert_eq!(store.images().unwrap(), vec![rec]);
}

#[test]
fn find_image_by_prefix() {
    let (_dir, store) = new_store();
    // Make images until two share a first hex digit.
    let mut recs: Vec<ImageRecord> = Vec::new();
    let (a, b) = loop {
        let rec = make_image(&store, recs.len() as u32);
        store.put_image(rec.clone()).unwrap();
        if let Some(other) = recs.iter().find(|r| r.id.hex()[..1] == rec.id.hex()[..1]) {
            break (other.clone(), rec);
        }
        recs.push(rec);
    };
    let first = &a.id.hex()[..1];
    match store.find_image(first) {
        Err(StoreError::AmbiguousId { prefix }) => assert_eq!(prefix, first),
        other => panic!("expected AmbiguousId, got {other:?}"),
    }
    let common =
        a.id.hex()
            .chars()
            .zip(b.id.hex().chars())
            .take_while(|(x, y)| x == y)
            .count();
    let unique = &a.id.hex()[..common + 1];
    assert_eq!(store.find_image(unique).unwrap().unwrap().id, a.id);
    assert_eq!(
        store.find_image(&format!("sha256:{unique}")).unwrap().unwrap().id,
        a.id
    );
    assert_eq!(store.find_image(&b.id.to_string()).unwrap().unwrap().id, b.id);
    assert_eq!(
        store
            .find_image(&b.id.short().to_uppercase())
            .unwrap()
            .unwrap()
            .id,
        b.id
    );
    let absent = (0..16u8).map(|n| format!("{n:x}")).find(|h| {
        store
            .images()
            .unwrap()
            .iter()
            .all(|r| !r.id.hex().starts_with(h.as_str()))
    });
    if let Some(h) = absent {
        assert_eq!(store.find_image(&h).unwrap(), None);
    }
    assert!(matches!(
        store.find_image(""),
        Err(StoreError::InvalidIdPrefix { .. })
    ));
    assert!(matches!(
        store.find_image("sha256:"),
        Err(StoreError::InvalidIdPrefix { .. })
    ));
    assert!(matches!(
        store.find_image("xyz"),
        Err(StoreError::InvalidIdPrefix { .. })
    ));
}

#[test]
fn remove_image_removes_its_tags() {
    let (_dir, store) = new_store();
    let a = make_image(&store, 10);
    let b = make_image(&store, 11);
    store.put_image(a.clone()).unwrap();
    store.put_image(b.clone()).unwrap();
    store.set_tag("docker.io/library/a:1", &a.id).unwrap();
    store.set_tag("docker.io/library/a:2", &a.id).unwrap();
    store.set_tag("docker.io/library/b:1", &b.id).unwrap();
    store.remove_image(&a.id).unwrap();
    assert_eq!(store.image(&a.id).unwrap(), None);
    let tags: Vec<String> = store.tags().unwrap().into_iter().map(|(n, _)| n).collect();
    assert_eq!(tags, ["docker.io/library/b:1"]);
    assert!(matches!(
        store.remove_image(&a.id),
        Err(StoreError::NotFound { .. })
    ));

    // update() makes multi-step changes atomically.
    let moved = store
        .update(|md| {
            let id = md.tags.remove("docker.io/library/b:1")?;
            md.tags.insert("docker.io/library/b:renamed".into(), id.clone());
            Some(id)
        })
        .unwrap();
    assert_eq!(moved, Some(b.id.clone()));
    assert_eq!(
        store.resolve_tag("docker.io/library/b:renamed").unwrap(),
        Some(b.id)
    );
}

#[test]
fn corrupt_metadata_is_reported() {
    let (_dir, store) = new_store();
    fs::write(store.root().join("metadata.json"), b"{not json").unwrap();
    let err = store.tags().unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }));
    assert!(err.to_string().contains("metadata.json"), "{err}");
}

#[test]
fn metadata_survives_killed_writer() {
    let (_dir, store) = new_store();
    for round in 0..3 {
        let mut child = spawn_helper("tag-forever", store.root(), "");
        let pid = child.id();
        let deadline = Instant::now() + Duration::from_secs(30);
        // Let it get well into its loop, then kill it mid-write.
        while store.tags().unwrap().len() < 20 * (round + 1) {
            assert!(Instant::now() < deadline, "helper made no progress");
            thread::sleep(Duration::from_millis(5));
        }
        thread::sleep(Duration::from_millis(3 * round as u64));
        child.kill().unwrap();
        child.wait().unwrap();

        // The file is complete JSON, whatever the moment of the kill.
        let raw = fs::read(store.root().join("metadata.json")).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&raw).expect("metadata.json is valid JSON");
        assert!(v["tags"].as_object().unwrap().len() >= 20);
        let n = store.tags().unwrap().len();

        // The killed writer's temp file (if any) never became metadata, and the next open sweeps it.
        let store2 = Store::open(store.root()).unwrap();
        assert!(
            tmp_entries(&store2)
                .iter()
                .all(|e| !e.starts_with(&format!("{pid}-"))),
            "{:?}",
            tmp_entries(&store2)
        );
        assert_eq!(store2.tags().unwrap().len(), n);
        // And the store lock was released by the kernel: writes still work.
        store2.set_tag("after-kill", &Digest::of(b"x")).unwrap();
    }
}

// ---------------------------------------------------------------- tmp, layers, GC

fn dead_pid() -> u32 {
    let mut c = Command::new("true").spawn().unwrap();
    let pid = c.id();
    c.wait().unwrap();
    pid
}

/// A tree that a plain recursive remove chokes on when not root.
fn awkward_tree(dir: &Path) {
    fs::create_dir_all(dir.join("usr/bin")).unwrap();
    fs::write(dir.join("usr/bin/tool"), b"#!/bin/sh\n").unwrap();
    fs::write(dir.join("usr/locked"), b"x").unwrap();
    fs::set_permissions(dir.join("usr/locked"), fs::Permissions::from_mode(0o000)).unwrap();
    std::os::unix::fs::symlink("/", dir.join("usr/root-link")).unwrap();
    fs::set_permissions(dir.join("usr/bin"), fs::Permissions::from_mode(0o555)).unwrap();
    fs::set_permissions(dir.join("usr"), fs::Permissions::from_mode(0o500)).unwrap();
}

#[test]
fn open_sweeps_stale_tmp() {
    let (_dir, store) = new_store();
    let tmp = store.root().join("tmp");
    let stale = tmp.join(format!("{}-1-0-layer", dead_pid()));
    awkward_tree(&stale);
    fs::write(tmp.join("stray-file"), b"junk").unwrap();
    let live = store.temp_dir().unwrap();
    fs::create_dir(&live).unwrap();
    assert!(live.starts_with(&tmp));

    let store = Store::open(store.root()).unwrap();
    assert!(!stale.exists());
    assert!(!tmp.join("stray-file").exists());
    assert!(live.exists(), "this process's temp dir is kept");
    assert_eq!(tmp_entries(&store).len(), 1);
    assert!(fs::metadata("/").is_ok(), "the symlink was not followed");
}

#[test]
fn commit_layer_first_wins() {
    let (_dir, store) = new_store();
    let diff_id = Digest::of(b"layer tar");
    let t1 = store.temp_dir().unwrap();
    let t2 = store.temp_dir().unwrap();
    assert_ne!(t1, t2);
    fs::create_dir(&t1).unwrap();
    fs::write(t1.join("who"), b"first").unwrap();
    fs::create_dir(&t2).unwrap();
    fs::write(t2.join("who"), b"second").unwrap();
    assert!(!store.has_layer(&diff_id));
    store.commit_layer(&t1, &diff_id).unwrap();
    store.commit_layer(&t2, &diff_id).unwrap();
    assert!(store.has_layer(&diff_id));
    assert_eq!(fs::read(store.layer_dir(&diff_id).join("who")).unwrap(), b"first");
    assert!(!t1.exists() && !t2.exists());
}

#[test]
fn gc_removes_only_unreferenced() {
    let (_dir, store) = new_store();
    let kept = make_image(&store, 20);
    store.put_image(kept.clone()).unwrap();
    let kept_layer = store.temp_dir().unwrap();
    awkward_tree(&kept_layer);
    store.commit_layer(&kept_layer, &kept.layers[0].diff_id).unwrap();
    let index = store.write_blob(b"an index").unwrap();
    store
        .update(|md| md.images.get_mut(&kept.id).unwrap().index_digest = Some(index.clone()))
        .unwrap();

    let orphan_blob = store.write_blob(b"orphan blob").unwrap();
    let orphan_layer_id = Digest::of(b"orphan layer");
    let t = store.temp_dir().unwrap();
    awkward_tree(&t);
    store.commit_layer(&t, &orphan_layer_id).unwrap();
    let abandoned = Digest::of(b"abandoned download");
    if let IngestStart::Writer(mut w) = store.ingest(&abandoned, None).unwrap() {
        w.write(b"abandoned").unwrap();
    }
    let before = store.disk_usage().unwrap();
    assert_eq!(before.blob_count, 5);
    assert_eq!(before.layer_count, 2);
    assert!(before.ingest_bytes >= 9);

    let report = store.gc().unwrap();
    assert!(!report.deferred);
    assert_eq!(report.blobs_removed, 1);
    assert_eq!(report.layers_removed, 1);
    assert_eq!(report.partials_removed, 1);
    assert!(report.bytes_freed >= b"orphan blob".len() as u64 + 9);
    assert!(!store.has_blob(&orphan_blob));
    assert!(!store.has_layer(&orphan_layer_id));
    assert!(ingest_dir_entries(&store).is_empty());
    for d in [
        &kept.manifest.digest(),
        &kept.config.digest(),
        &kept.layers[0].blob.digest(),
        &index,
    ] {
        assert!(store.has_blob(d), "{d} must be kept");
    }
    assert!(store.has_layer(&kept.layers[0].diff_id));

    // Once the image is gone, everything goes.
    store.remove_image(&kept.id).unwrap();
    let report = store.gc().unwrap();
    assert_eq!((report.blobs_removed, report.layers_removed), (4, 1));
    let after = store.disk_usage().unwrap();
    assert_eq!(
        (
            after.blob_count,
            after.layer_count,
            after.blob_bytes,
            after.layer_bytes
        ),
        (0, 0, 0, 0)
    );
}

#[test]
fn gc_leaves_a_live_ingest_alone() {
    let (_dir, store) = new_store();
    let d = Digest::of(b"in flight");
    let IngestStart::Writer(mut w) = store.ingest(&d, None).unwrap() else {
        panic!()
    };
    w.write(b"in ").unwrap();
    let report = store.gc().unwrap();
    assert_eq!(report.partials_removed, 0);
    w.write(b"flight").unwrap();
    w.commit().unwrap();
    assert!(store.has_blob(&d));
}

#[test]
fn gc_deferred_while_lease_held() {
    let (_dir, store) = new_store();
    let orphan = store.write_blob(b"orphan").unwrap();

    // A lease in this process.
    let lease = store.lease().unwrap();
    assert!(store.gc().unwrap().deferred);
    drop(lease);

    // A lease in another process.
    let mut child = spawn_helper("lease", store.root(), "");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("RESULT:leased") {
        line.clear();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "helper exited early");
    }
    let report = store.gc().unwrap();
    assert!(report.deferred);
    assert_eq!(report.blobs_removed, 0);
    assert!(store.has_blob(&orphan));

    drop(child.stdin.take()); // lets the helper drop its lease and exit
    assert!(child.wait().unwrap().success());
    let report = store.gc().unwrap();
    assert!(!report.deferred);
    assert_eq!(report.blobs_removed, 1);
    assert!(!store.has_blob(&orphan));
}

#[test]
fn errors_say_what_to_do() {
    let e = StoreError::NotWritable {
        path: "/var/lib/berth".into(),
    };
    assert_eq!(
        e.to_string(),
        "the store at /var/lib/berth is not writable — run as root or set BERTH_ROOT to a directory you own"
    );
    let e = StoreError::AmbiguousId { prefix: "ab".into() };
    assert!(e.to_string().contains("more characters"));
}

#[test]
fn open_on_a_file_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    fs::write(&file, b"").unwrap();
    let err = Store::open(&file).unwrap_err();
    assert!(err.to_string().contains("not-a-dir"), "{err}");
}

/// GC and the tmp sweep must remove read-only trees even without root's override of file
/// permissions.
fn awkward_gc_body(store: &Store) {
    let diff_id = Digest::of(b"unreferenced awkward layer");
    let t = store.temp_dir().unwrap();
    awkward_tree(&t);
    store.commit_layer(&t, &diff_id).unwrap();
    let report = store.gc().unwrap();
    assert_eq!(report.layers_removed, 1);
    assert!(!store.has_layer(&diff_id));

    let stale = store.root().join("tmp").join(format!("{}-1-0-layer", dead_pid()));
    awkward_tree(&stale);
    Store::open(store.root()).unwrap();
    assert!(!stale.exists());
}

#[test]
fn gc_removes_read_only_trees_unprivileged() {
    let (dir, store) = new_store();
    if !rustix::process::geteuid().is_root() {
        awkward_gc_body(&store);
        return;
    }
    // As root permissions never get in the way, so run the check as `nobody`.
    fn chown_tree(p: &Path) {
        std::os::unix::fs::lchown(p, Some(65534), Some(65534)).unwrap();
        if fs::symlink_metadata(p).unwrap().is_dir() {
            for e in fs::read_dir(p).unwrap() {
                chown_tree(&e.unwrap().path());
            }
        }
    }
    chown_tree(dir.path());
    use std::os::unix::process::CommandExt;
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "helper_process", "--nocapture", "--test-threads=1"])
        .env(ROLE, "awkward-gc")
        .env(ROOT, store.root())
        .uid(65534)
        .gid(65534)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    assert_eq!(helper_results(child), ["done"]);
}
