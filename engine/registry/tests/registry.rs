//! Tests against a real distribution registry on loopback.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use berth_oci::media_type::{OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST};
use berth_registry::{ClientConfig, Descriptor, Digest, RegistryClient, RegistryError};
use common::*;

/// Pushes a config and a layer, then a manifest referencing them; returns the manifest
/// bytes, the layer bytes and its descriptor.
async fn push_image(
    client: &RegistryClient,
    reg: &str,
    repo: &str,
    tag: &str,
) -> (Vec<u8>, Vec<u8>, Descriptor) {
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#.to_vec();
    let config_desc = Descriptor::new(OCI_CONFIG, Digest::of(&config), config.len() as u64);
    let layer = test_bytes(70_000, 1);
    let layer_desc = Descriptor::new(OCI_LAYER_GZIP, Digest::of(&layer), layer.len() as u64);
    client
        .push_blob(reg, repo, &config_desc, &VecSource(config.clone()), &|_| {})
        .await
        .unwrap();
    client
        .push_blob(reg, repo, &layer_desc, &VecSource(layer.clone()), &|_| {})
        .await
        .unwrap();
    let manifest = serde_json::to_vec(&berth_oci::Manifest::new(
        OCI_MANIFEST,
        config_desc,
        vec![layer_desc.clone()],
    ))
    .unwrap();
    let digest = client
        .put_manifest(reg, repo, tag, OCI_MANIFEST, &manifest)
        .await
        .unwrap();
    assert_eq!(digest, Digest::of(&manifest));
    (manifest, layer, layer_desc)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_and_pull_roundtrip() {
    let reg = TestRegistry::start();
    let client = client();
    let (manifest, layer, layer_desc) = push_image(&client, &reg.addr, "berth/roundtrip", "v1").await;

    let by_tag = client
        .get_manifest(&reg.addr, "berth/roundtrip", "v1")
        .await
        .unwrap();
    assert_eq!(by_tag.bytes, manifest);
    assert_eq!(by_tag.media_type, OCI_MANIFEST);
    assert_eq!(by_tag.digest, Digest::of(&manifest));
    let by_digest = client
        .get_manifest(&reg.addr, "berth/roundtrip", &by_tag.digest.to_string())
        .await
        .unwrap();
    assert_eq!(by_digest.bytes, manifest);

    assert_eq!(
        client
            .blob_exists(&reg.addr, "berth/roundtrip", &layer_desc.digest())
            .await
            .unwrap(),
        Some(layer.len() as u64)
    );
    let mut sink = VecSink::default();
    let last = AtomicU64::new(0);
    client
        .fetch_blob(&reg.addr, "berth/roundtrip", &layer_desc, &mut sink, &|n| {
            last.store(n, Ordering::SeqCst)
        })
        .await
        .unwrap();
    assert_eq!(sink.data, layer);
    assert_eq!(sink.restarts, 0);
    assert_eq!(last.load(Ordering::SeqCst), layer.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_push() {
    let reg = TestRegistry::start();
    let client = RegistryClient::new(ClientConfig {
        chunk_threshold: 0,
        chunk_size: 1000,
        ..client_config(None)
    })
    .unwrap();
    let blob = test_bytes(5_500, 2);
    let desc = Descriptor::new(OCI_LAYER_GZIP, Digest::of(&blob), blob.len() as u64);
    let reports = std::sync::Mutex::new(Vec::new());
    client
        .push_blob(
            &reg.addr,
            "berth/chunked",
            &desc,
            &VecSource(blob.clone()),
            &|n| reports.lock().unwrap().push(n),
        )
        .await
        .unwrap();
    assert_eq!(*reports.lock().unwrap(), vec![1000, 2000, 3000, 4000, 5000, 5500]);
    let mut sink = VecSink::default();
    client
        .fetch_blob(&reg.addr, "berth/chunked", &desc, &mut sink, &|_| {})
        .await
        .unwrap();
    assert_eq!(sink.data, blob);

    // A source whose content does not match the descriptor is refused before committing.
    let wrong = Descriptor::new(OCI_LAYER_GZIP, Digest::of(b"other"), blob.len() as u64);
    let err = client
        .push_blob(
            &reg.addr,
            "berth/chunked",
            &wrong,
            &VecSource(blob.clone()),
            &|_| {},
        )
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::DigestMismatch { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monolithic_push_of_wrong_content_is_rejected_by_registry() {
    let reg = TestRegistry::start();
    let client = client();
    let blob = test_bytes(3_000, 3);
    let wrong = Descriptor::new(OCI_LAYER_GZIP, Digest::of(b"other"), blob.len() as u64);
    let err = client
        .push_blob(&reg.addr, "berth/wrong", &wrong, &VecSource(blob), &|_| {})
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Http { status: 400, .. }), "{err}");
    assert!(err.to_string().contains("digest"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mount_across_repositories() {
    let reg = TestRegistry::start();
    let client = client();
    let (_, layer, layer_desc) = push_image(&client, &reg.addr, "berth/source", "v1").await;
    assert_eq!(
        client
            .blob_exists(&reg.addr, "berth/target", &layer_desc.digest())
            .await
            .unwrap(),
        None
    );
    assert!(client
        .mount_blob(&reg.addr, "berth/target", &layer_desc.digest(), "berth/source")
        .await
        .unwrap());
    assert_eq!(
        client
            .blob_exists(&reg.addr, "berth/target", &layer_desc.digest())
            .await
            .unwrap(),
        Some(layer.len() as u64)
    );
    // A blob the source repository does not have cannot be mounted.
    let absent = Digest::of(b"absent");
    assert!(!client
        .mount_blob(&reg.addr, "berth/target", &absent, "berth/source")
        .await
        .unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_content_is_detected() {
    let reg = TestRegistry::start();
    let client = client();
    let (manifest, layer, layer_desc) = push_image(&client, &reg.addr, "berth/tamper", "v1").await;
    let manifest_digest = Digest::of(&manifest);

    // Alter the stored manifest (same length, so the registry serves it whole).
    let altered = String::from_utf8(manifest.clone())
        .unwrap()
        .replace("tar+gzip", "tar+zstd")
        .into_bytes();
    assert_eq!(altered.len(), manifest.len());
    std::fs::write(reg.blob_data_path(&manifest_digest), &altered).unwrap();
    let err = client
        .get_manifest(&reg.addr, "berth/tamper", &manifest_digest.to_string())
        .await
        .unwrap_err();
    match &err {
        RegistryError::DigestMismatch { expected, actual } => {
            assert_eq!(*expected, manifest_digest);
            assert_eq!(*actual, Digest::of(&altered));
        }
        other => panic!("expected DigestMismatch, got {other:?}"),
    }

    let mut bad_layer = layer.clone();
    bad_layer[10] ^= 0xff;
    std::fs::write(reg.blob_data_path(&layer_desc.digest()), &bad_layer).unwrap();
    let mut sink = VecSink::default();
    let err = client
        .fetch_blob(&reg.addr, "berth/tamper", &layer_desc, &mut sink, &|_| {})
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::DigestMismatch { .. }), "{err}");
    assert!(sink.data.is_empty(), "bad content is discarded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_found_errors() {
    let reg = TestRegistry::start();
    let client = client();
    let (_, _, layer_desc) = push_image(&client, &reg.addr, "berth/present", "v1").await;

    let err = client
        .get_manifest(&reg.addr, "berth/present", "nope")
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::NotFound { .. }), "{err:?}");
    assert!(
        err.to_string().contains("manifest nope of berth/present"),
        "{err}"
    );
    let err = client
        .get_manifest(&reg.addr, "berth/absent", "v1")
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::NotFound { .. }), "{err:?}");

    let absent = Descriptor::new(OCI_LAYER_GZIP, Digest::of(b"absent"), 6);
    let mut sink = VecSink::default();
    let err = client
        .fetch_blob(&reg.addr, "berth/present", &absent, &mut sink, &|_| {})
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::NotFound { .. }), "{err:?}");
    assert_eq!(
        client
            .blob_exists(&reg.addr, "berth/present", &absent.digest())
            .await
            .unwrap(),
        None
    );
    assert!(client
        .blob_exists(&reg.addr, "berth/present", &layer_desc.digest())
        .await
        .unwrap()
        .is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumes_from_sink_offset() {
    let reg = TestRegistry::start();
    let client = client();
    let (_, layer, layer_desc) = push_image(&client, &reg.addr, "berth/resume", "v1").await;
    // The sink claims to hold the first 30000 bytes. They are deliberately not the real
    // ones: if the client resumed with Range, they are kept as they are.
    let prefix = vec![0u8; 30_000];
    let mut sink = VecSink {
        data: prefix.clone(),
        restarts: 0,
    };
    let first = AtomicU64::new(0);
    client
        .fetch_blob(&reg.addr, "berth/resume", &layer_desc, &mut sink, &|n| {
            let _ = first.compare_exchange(0, n, Ordering::SeqCst, Ordering::SeqCst);
        })
        .await
        .unwrap();
    assert_eq!(sink.restarts, 0);
    assert_eq!(&sink.data[..30_000], &prefix[..]);
    assert_eq!(&sink.data[30_000..], &layer[30_000..]);
    assert!(first.load(Ordering::SeqCst) > 30_000);

    // A sink already complete needs no request; one holding too much starts over.
    let mut full = VecSink {
        data: layer.clone(),
        restarts: 0,
    };
    client
        .fetch_blob(&reg.addr, "berth/resume", &layer_desc, &mut full, &|_| {})
        .await
        .unwrap();
    assert_eq!(full.data, layer);
    let mut over = VecSink {
        data: vec![1u8; layer.len() + 5],
        restarts: 0,
    };
    client
        .fetch_blob(&reg.addr, "berth/resume", &layer_desc, &mut over, &|_| {})
        .await
        .unwrap();
    assert_eq!(over.data, layer);
    assert_eq!(over.restarts, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_more_bytes_than_descriptor_size() {
    let reg = TestRegistry::start();
    let client = client();
    let (_, _, layer_desc) = push_image(&client, &reg.addr, "berth/large", "v1").await;
    let small = Descriptor::new(OCI_LAYER_GZIP, layer_desc.digest().clone(), 1000);
    let mut sink = VecSink::default();
    let err = client
        .fetch_blob(&reg.addr, "berth/large", &small, &mut sink, &|_| {})
        .await
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::TooLarge { limit: 1000, .. }),
        "{err:?}"
    );
    assert!(sink.data.len() <= 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_refused_is_reported() {
    let port = free_port();
    let client = client();
    let registry = format!("127.0.0.1:{port}");
    let err = client.get_manifest(&registry, "berth/x", "v1").await.unwrap_err();
    assert!(
        matches!(&err, RegistryError::Unreachable(u) if u.cause == berth_registry::Cause::Refused),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "The registry {registry} can't be reached: nothing is listening at that address. \
             Check the host and port, and that the registry is running. \
             [code=registry-unreachable.refused registry={registry}] connection refused"
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_only_for_loopback_and_insecure_registries() {
    let reg = TestRegistry::start();
    client()
        .get_manifest(&reg.addr, "berth/none", "v1")
        .await
        .unwrap_err();
    // 0.0.0.0 reaches the loopback listener but is not a loopback name: HTTPS is required.
    let name = format!("0.0.0.0:{}", reg.port);
    let err = client()
        .get_manifest(&name, "berth/none", "v1")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RegistryError::Unreachable(u) if u.cause == berth_registry::Cause::PlainHttp),
        "{err:?}"
    );
    assert!(err.to_string().contains("insecure-registries"), "{err}");

    let insecure = RegistryClient::new(ClientConfig {
        insecure_registries: vec![name.clone()],
        ..client_config(None)
    })
    .unwrap();
    push_image(&insecure, &name, "berth/insecure", "v1").await;
    let got = insecure
        .get_manifest(&name, "berth/insecure", "v1")
        .await
        .unwrap();
    assert_eq!(got.media_type, OCI_MANIFEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_io_pulls_go_to_mirror() {
    let reg = TestRegistry::start();
    let (manifest, layer, layer_desc) = push_image(&client(), &reg.addr, "library/mirrored", "latest").await;
    let client = RegistryClient::new(ClientConfig {
        mirrors: vec![format!("http://{}", reg.addr)],
        ..client_config(None)
    })
    .unwrap();
    let got = client
        .get_manifest("docker.io", "library/mirrored", "latest")
        .await
        .unwrap();
    assert_eq!(got.bytes, manifest);
    assert_eq!(
        client
            .blob_exists("docker.io", "library/mirrored", &layer_desc.digest())
            .await
            .unwrap(),
        Some(layer.len() as u64)
    );
    let mut sink = VecSink::default();
    client
        .fetch_blob("docker.io", "library/mirrored", &layer_desc, &mut sink, &|_| {})
        .await
        .unwrap();
    assert_eq!(sink.data, layer);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn htpasswd_basic_auth() {
    let reg = TestRegistry::start_with(Auth::Htpasswd {
        user: "alice".into(),
        password: "wonderland".into(),
    });
    let anonymous = client();
    anonymous
        .check_login(&reg.addr, "alice", "wonderland")
        .await
        .unwrap();
    let err = anonymous
        .check_login(&reg.addr, "alice", "wrong")
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("registry {0} needs a login — run `berth login {0}`", reg.addr)
    );
    let err = anonymous
        .get_manifest(&reg.addr, "berth/basic", "v1")
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err:?}");

    let dir = tempfile::tempdir().unwrap();
    let cfg = docker_config_with_login(dir.path(), &reg.addr, "alice", "wonderland");
    let client = RegistryClient::new(client_config(Some(cfg))).unwrap();
    let (manifest, _, _) = push_image(&client, &reg.addr, "berth/basic", "v1").await;
    assert_eq!(
        client
            .get_manifest(&reg.addr, "berth/basic", "v1")
            .await
            .unwrap()
            .bytes,
        manifest
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_auth() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate(dir.path());
    let cert = key.cert.clone();
    let tokens = TokenServer::start(key, "bob", "builder").await;
    let reg = TestRegistry::start_with(Auth::Token {
        realm: tokens.realm.clone(),
        cert,
    });

    let anonymous = client();
    anonymous.check_login(&reg.addr, "bob", "builder").await.unwrap();
    let err = anonymous
        .check_login(&reg.addr, "bob", "wrong")
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err:?}");
    let err = anonymous
        .get_manifest(&reg.addr, "berth/token", "v1")
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err:?}");

    let cfg = docker_config_with_login(dir.path(), &reg.addr, "bob", "builder");
    let client = RegistryClient::new(client_config(Some(cfg))).unwrap();
    let (manifest, layer, layer_desc) = push_image(&client, &reg.addr, "berth/token", "v1").await;
    let before = tokens.requests.load(Ordering::SeqCst);
    let got = client.get_manifest(&reg.addr, "berth/token", "v1").await.unwrap();
    assert_eq!(got.bytes, manifest);
    let mut sink = VecSink::default();
    client
        .fetch_blob(&reg.addr, "berth/token", &layer_desc, &mut sink, &|_| {})
        .await
        .unwrap();
    assert_eq!(sink.data, layer);
    // Both pulls needed the same scope: one token served them.
    assert_eq!(tokens.requests.load(Ordering::SeqCst), before + 1);

    // The account has no access to forbidden/*: that is a denial, not a missing login.
    let err = client
        .get_manifest(&reg.addr, "forbidden/secret", "v1")
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Denied { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with(&format!("registry {} denied access", reg.addr)),
        "{err}"
    );

    // A mount needs push on the target and pull on the source in one token.
    assert!(client
        .mount_blob(&reg.addr, "berth/token-copy", &layer_desc.digest(), "berth/token")
        .await
        .unwrap());
    assert!(client
        .blob_exists(&reg.addr, "berth/token-copy", &layer_desc.digest())
        .await
        .unwrap()
        .is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_downloads_resume_with_range() {
    let reg = TestRegistry::start();
    let (_, layer, layer_desc) = push_image(&client(), &reg.addr, "berth/flaky", "v1").await;
    // Each connection is cut after 20000 response bytes, three times: the 70000-byte
    // layer needs several resumed requests.
    let proxy = CuttingProxy::start(&reg.addr, "/blobs/", 20_000, 3).await;
    let client = client();
    let mut sink = VecSink::default();
    let reports = std::sync::Mutex::new(Vec::new());
    client
        .fetch_blob(&proxy.addr, "berth/flaky", &layer_desc, &mut sink, &|n| {
            reports.lock().unwrap().push(n)
        })
        .await
        .unwrap();
    assert_eq!(sink.data, layer);
    assert_eq!(sink.restarts, 0);
    assert_eq!(proxy.cuts_left.load(Ordering::SeqCst), 0);
    assert!(proxy.range_requests.load(Ordering::SeqCst) >= 3);
    let reports = reports.into_inner().unwrap();
    assert!(
        reports.windows(2).all(|w| w[0] <= w[1]),
        "progress never goes back"
    );
    assert_eq!(*reports.last().unwrap(), layer.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gives_up_when_downloads_make_no_progress() {
    let reg = TestRegistry::start();
    let (_, _, layer_desc) = push_image(&client(), &reg.addr, "berth/dead", "v1").await;
    // Every blob response is cut right after its headers.
    let proxy = CuttingProxy::start(&reg.addr, "/blobs/", 0, 100).await;
    let client = client();
    let mut sink = VecSink::default();
    let err = client
        .fetch_blob(&proxy.addr, "berth/dead", &layer_desc, &mut sink, &|_| {})
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Interrupted { .. }), "{err:?}");
    assert!(err.to_string().ends_with("— try again"), "{err}");
    // One attempt and two retries (client_config sets max_retries = 2).
    assert_eq!(proxy.cuts_left.load(Ordering::SeqCst), 97);
    assert!(sink.data.is_empty());
    // The registry itself is fine: manifests still come through the proxy.
    client
        .get_manifest(&proxy.addr, "berth/dead", "v1")
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blob_redirects_are_followed_without_credentials() {
    let storage = StorageServer::start().await;
    let reg = TestRegistry::start_with_config(
        Auth::Htpasswd {
            user: "dave".into(),
            password: "redirected".into(),
        },
        &storage.middleware_config(),
    );
    storage.root.set(reg.storage_dir()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = docker_config_with_login(dir.path(), &reg.addr, "dave", "redirected");
    let client = RegistryClient::new(client_config(Some(cfg))).unwrap();
    let (_, layer, layer_desc) = push_image(&client, &reg.addr, "berth/redirect", "v1").await;
    let before = storage.requests.load(Ordering::SeqCst);
    let mut sink = VecSink::default();
    client
        .fetch_blob(&reg.addr, "berth/redirect", &layer_desc, &mut sink, &|_| {})
        .await
        .unwrap();
    assert_eq!(sink.data, layer);
    assert!(
        storage.requests.load(Ordering::SeqCst) > before,
        "the download was redirected"
    );
    assert!(
        !storage.saw_authorization.load(Ordering::SeqCst),
        "credentials must not follow a redirect to another host"
    );
}

struct FailingSource;

impl berth_registry::BlobSource for FailingSource {
    fn open(&self) -> std::io::Result<Box<dyn std::io::Read + Send>> {
        struct R(usize);
        impl std::io::Read for R {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if self.0 > 0 {
                    let n = buf.len().min(self.0);
                    self.0 -= n;
                    buf[..n].fill(7);
                    return Ok(n);
                }
                Err(std::io::Error::other("disk on fire"))
            }
        }
        Ok(Box::new(R(1000)))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_reports_source_errors() {
    let reg = TestRegistry::start();
    let desc = Descriptor::new(OCI_LAYER_GZIP, Digest::of(b"whatever"), 5000);
    let err = client()
        .push_blob(&reg.addr, "berth/fail", &desc, &FailingSource, &|_| {})
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("disk on fire"), "{err}");
    let chunked = RegistryClient::new(ClientConfig {
        chunk_threshold: 0,
        chunk_size: 4096,
        ..client_config(None)
    })
    .unwrap();
    let err = chunked
        .push_blob(&reg.addr, "berth/fail", &desc, &FailingSource, &|_| {})
        .await
        .unwrap_err();
    assert!(err.to_string().contains("disk on fire"), "{err}");
}

#[test]
fn futures_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    let client = client();
    let desc = Descriptor::new(OCI_LAYER_GZIP, Digest::of(b""), 0);
    let mut sink = VecSink::default();
    let source = VecSource(Vec::new());
    let progress = |_: u64| {};
    assert_send(&client.get_manifest("r", "a", "b"));
    assert_send(&client.fetch_blob("r", "a", &desc, &mut sink, &progress));
    assert_send(&client.push_blob("r", "a", &desc, &source, &progress));
    assert_send(&client.mount_blob("r", "a", &desc.digest(), "b"));
    assert_send(&client.put_manifest("r", "a", "b", OCI_MANIFEST, b"{}"));
    assert_send(&client.check_login("r", "u", "p"));
    let _ = Arc::new(client);
}
