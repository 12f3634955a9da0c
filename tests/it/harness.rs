//! Self-tests of the test harness: real registries in every auth mode,
//! fixtures pushed and read back with skopeo, and every injected fault
//! observed on the wire.

use std::path::Path;
use std::process::Command;

use berth_tests::fault::{Fault, FaultProxy};
use berth_tests::fixtures;
use berth_tests::http;
use berth_tests::registry::{Mode, Registry};

fn push_and_inspect(reg: &Registry, fixture: &str, repo_tag: &str) {
    let layout = fixtures::image(fixture);
    let pushed = reg.push_fixture(&layout, repo_tag);
    assert_eq!(pushed, fixtures::top_digest(&layout));
    let raw = reg.skopeo_raw_manifest(repo_tag);
    assert_eq!(
        berth_tests::sha256_digest(&raw),
        pushed,
        "registry serves different manifest bytes"
    );
}

#[test]
fn plain_registry_round_trips_single_and_multiarch_images() {
    let reg = Registry::start(Mode::Plain);
    let r = http::get(reg.addr(), "/v2/", &[]).unwrap();
    assert_eq!(r.status(), 200);
    push_and_inspect(&reg, "busybox", "library/busybox:latest");
    push_and_inspect(&reg, "multiarch", "test/multiarch:v1");
    push_and_inspect(&reg, "zstd", "test/zstd:latest");
    push_and_inspect(&reg, "whiteout", "test/whiteout:latest");

    // Non-raw inspect resolves the index to the amd64 image.
    let o = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--override-arch", "arm64"])
        .arg(format!("docker://{}", reg.reference("test/multiarch:v1")))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["Architecture"], "arm64");
}

#[test]
fn htpasswd_registry_requires_basic_auth() {
    let reg = Registry::start(Mode::htpasswd("alice", "s3cret"));
    let r = http::get(reg.addr(), "/v2/", &[]).unwrap();
    assert_eq!(r.status(), 401);
    let challenge = r.header("WWW-Authenticate").expect("challenge").to_string();
    assert!(challenge.starts_with("Basic "), "{challenge}");
    let bad = http::basic_auth("alice", "wrong");
    assert_eq!(
        http::get(reg.addr(), "/v2/", &[("Authorization", &bad)])
            .unwrap()
            .status(),
        401
    );
    let good = http::basic_auth("alice", "s3cret");
    assert_eq!(
        http::get(reg.addr(), "/v2/", &[("Authorization", &good)])
            .unwrap()
            .status(),
        200
    );
    push_and_inspect(&reg, "busybox", "private/busybox:1");
}

#[test]
fn token_registry_accepts_only_tokens_from_our_token_server() {
    let reg = Registry::start(Mode::token("bob", "hunter2"));
    let r = http::get(reg.addr(), "/v2/", &[]).unwrap();
    assert_eq!(r.status(), 401);
    let (scheme, params) = http::parse_challenge(r.header("WWW-Authenticate").expect("challenge"));
    assert_eq!(scheme, "Bearer");
    let param = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let realm = param("realm").expect("realm");
    assert_eq!(Some(realm.clone()), reg.token_realm());
    let service = param("service").expect("service");
    let token_addr = reg.token_addr().unwrap();

    // Wrong password: refused by the token server.
    let scope = "repository:tok/busybox:pull,push";
    let target = format!(
        "/token?service={}&scope={}",
        http::url_encode(&service),
        http::url_encode(scope)
    );
    let bad = http::get(
        token_addr,
        &target,
        &[("Authorization", &http::basic_auth("bob", "nope"))],
    )
    .unwrap();
    assert_eq!(bad.status(), 401);

    // Right password: a token the real registry accepts.
    let ok = http::get(
        token_addr,
        &target,
        &[("Authorization", &http::basic_auth("bob", "hunter2"))],
    )
    .unwrap();
    assert_eq!(ok.status(), 200, "{}", String::from_utf8_lossy(&ok.body));
    let token = ok.json().unwrap()["token"]
        .as_str()
        .expect("token field")
        .to_string();
    let bearer = format!("Bearer {token}");
    let r = http::get(reg.addr(), "/v2/", &[("Authorization", &bearer)]).unwrap();
    assert_eq!(r.status(), 200, "registry rejected our JWT; log:\n{}", reg.log());
    // A forged signature is rejected.
    // Flip a character well inside the signature (the last base64 character
    // carries padding bits, so changing it may not change the signature).
    let sig_start = token.rfind('.').unwrap() + 1;
    let mut forged = token.clone().into_bytes();
    let i = sig_start + 20;
    forged[i] = if forged[i] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    let r = http::get(
        reg.addr(),
        "/v2/",
        &[("Authorization", &format!("Bearer {forged}"))],
    )
    .unwrap();
    assert_eq!(r.status(), 401);

    // OAuth2 password grant (POST) works too.
    let form = format!(
        "grant_type=password&username=bob&password=hunter2&service={}&scope={}&client_id=berth-tests",
        http::url_encode(&service),
        http::url_encode(scope)
    );
    let post = http::request(
        token_addr,
        "POST",
        "/token",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        form.as_bytes(),
    )
    .unwrap();
    assert_eq!(post.status(), 200);
    assert!(post.json().unwrap()["access_token"].is_string());

    // skopeo goes through the full challenge/token dance.
    push_and_inspect(&reg, "busybox", "tok/busybox:latest");
    let (issued, denied) = reg.token_stats().unwrap();
    assert!(issued >= 3, "issued {issued}");
    assert_eq!(denied, 1);

    // An anonymous token grants nothing: pulling the manifest is refused.
    let anon = http::get(token_addr, &target, &[]).unwrap();
    assert_eq!(anon.status(), 200);
    let anon_token = anon.json().unwrap()["token"].as_str().unwrap().to_string();
    let r = http::get(
        reg.addr(),
        "/v2/tok/busybox/manifests/latest",
        &[
            ("Authorization", &format!("Bearer {anon_token}")),
            ("Accept", "application/vnd.oci.image.manifest.v1+json"),
        ],
    )
    .unwrap();
    assert_eq!(r.status(), 401);
    let granted = http::get(
        reg.addr(),
        "/v2/tok/busybox/manifests/latest",
        &[
            ("Authorization", &bearer),
            ("Accept", "application/vnd.oci.image.manifest.v1+json"),
        ],
    )
    .unwrap();
    assert_eq!(granted.status(), 200);
}

/// A registry holding busybox, plus the digest and bytes of its first layer.
fn registry_with_blob() -> (Registry, String, Vec<u8>) {
    let reg = Registry::start(Mode::Plain);
    let layout = fixtures::image("busybox");
    reg.push_fixture(&layout, "fault/busybox:latest");
    let manifest = fixtures::json_blob(&layout, &fixtures::top_digest(&layout));
    let digest = manifest["layers"][0]["digest"].as_str().unwrap().to_string();
    let bytes = fixtures::blob(Path::new(&layout), &digest);
    assert!(bytes.len() > 100_000, "busybox layer unexpectedly small");
    (reg, digest, bytes)
}

fn blob_path(digest: &str) -> String {
    format!("/v2/fault/busybox/blobs/{digest}")
}

#[test]
fn fault_proxy_passes_through_and_counts() {
    let (reg, digest, bytes) = registry_with_blob();
    let proxy = FaultProxy::start(reg.addr(), Fault::None);
    let r = http::get(proxy.addr(), &blob_path(&digest), &[]).unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.body, bytes);
    let m = http::get(
        proxy.addr(),
        "/v2/fault/busybox/manifests/latest",
        &[("Accept", "application/vnd.oci.image.manifest.v1+json")],
    )
    .unwrap();
    assert_eq!(m.status(), 200);
    assert_eq!(proxy.requests(), 2);
    assert_eq!(proxy.blob_requests(), 1);
    assert_eq!(proxy.faults_injected(), 0);
    // skopeo pulls through the proxy unharmed.
    let out = tempfile::tempdir().unwrap();
    let o = Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false"])
        .arg(format!("docker://{}/fault/busybox:latest", proxy.host()))
        .arg(format!("oci:{}:x", out.path().display()))
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{}\n{:?}",
        String::from_utf8_lossy(&o.stderr),
        proxy.log()
    );
    assert!(proxy.blob_requests() >= 3, "config + 2 layers: {:?}", proxy.log());
}

#[test]
fn fault_proxy_injects_503() {
    let (reg, digest, bytes) = registry_with_blob();
    let proxy = FaultProxy::start(reg.addr(), Fault::Status503 { times: 2 });
    for _ in 0..2 {
        let r = http::get(proxy.addr(), &blob_path(&digest), &[]).unwrap();
        assert_eq!(r.status(), 503);
    }
    let r = http::get(proxy.addr(), &blob_path(&digest), &[]).unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.body, bytes);
    assert_eq!(proxy.blob_requests(), 3);
    assert_eq!(proxy.faults_injected(), 2);
    // Non-blob requests are never faulted.
    proxy.set_fault(Fault::Status503 { times: 1 });
    assert_eq!(http::get(proxy.addr(), "/v2/", &[]).unwrap().status(), 200);
    assert_eq!(proxy.faults_injected(), 0);
}

#[test]
fn fault_proxy_truncates_body() {
    let (reg, digest, bytes) = registry_with_blob();
    let proxy = FaultProxy::start(
        reg.addr(),
        Fault::Truncate {
            after_bytes: 4096,
            times: 1,
        },
    );
    let r = http::get(proxy.addr(), &blob_path(&digest), &[]).unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.header("Content-Length"), Some(bytes.len().to_string().as_str()));
    assert_eq!(r.body.len(), 4096);
    assert!(r.truncated);
    assert_eq!(&r.body[..], &bytes[..4096]);
    let r = http::get(proxy.addr(), &blob_path(&digest), &[]).unwrap();
    assert!(!r.truncated);
    assert_eq!(r.body, bytes);
    assert_eq!(proxy.faults_injected(), 1);
}

#[test]
fn fault_proxy_corrupts_exactly_one_byte_of_the_nth_request() {
    let (reg, digest, bytes) = registry_with_blob();
    let proxy = FaultProxy::start(reg.addr(), Fault::CorruptByte { nth_request: 2 });
    let first = http::get(proxy.addr(), &blob_path(&digest), &[]).unwrap();
    assert_eq!(first.body, bytes);
    let second = http::get(proxy.addr(), &blob_path(&digest), &[]).unwrap();
    assert_eq!(second.status(), 200);
    assert_eq!(second.body.len(), bytes.len());
    let diffs = second.body.iter().zip(&bytes).filter(|(a, b)| a != b).count();
    assert_eq!(diffs, 1);
    assert_ne!(berth_tests::sha256_digest(&second.body), digest);
    let third = http::get(proxy.addr(), &blob_path(&digest), &[]).unwrap();
    assert_eq!(third.body, bytes);
    assert_eq!(proxy.faults_injected(), 1);
}

#[test]
fn fault_proxy_cuts_connections() {
    let (reg, digest, bytes) = registry_with_blob();
    let proxy = FaultProxy::start(reg.addr(), Fault::CutConnection { times: 1 });
    let err = http::get(proxy.addr(), &blob_path(&digest), &[]).unwrap_err();
    assert!(
        format!("{err:#}").contains("closed before response head"),
        "{err:#}"
    );
    let r = http::get(proxy.addr(), &blob_path(&digest), &[]).unwrap();
    assert_eq!(r.body, bytes);
    assert_eq!(proxy.blob_requests(), 2);
    assert_eq!(proxy.faults_injected(), 1);
}

fn tar_listing(layer: &[u8], gz: bool) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("layer");
    std::fs::write(&f, layer).unwrap();
    let flag = if gz { "-tzf" } else { "-tf" };
    let o = Command::new("tar").arg(flag).arg(&f).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn fixtures_have_the_promised_shape() {
    let busybox = fixtures::image("busybox");
    let m = fixtures::json_blob(&busybox, &fixtures::top_digest(&busybox));
    assert!(m["layers"].as_array().unwrap().len() >= 2);
    let cfg = fixtures::json_blob(&busybox, m["config"]["digest"].as_str().unwrap());
    assert_eq!(cfg["config"]["Cmd"], serde_json::json!(["sh"]));
    assert_eq!(cfg["architecture"], "amd64");
    let l0 = tar_listing(
        &fixtures::blob(&busybox, m["layers"][0]["digest"].as_str().unwrap()),
        true,
    );
    assert!(l0.iter().any(|e| e == "bin/busybox"), "{l0:?}");

    let multi = fixtures::image("multiarch");
    let idx = fixtures::json_blob(&multi, &fixtures::top_digest(&multi));
    assert_eq!(idx["mediaType"], "application/vnd.oci.image.index.v1+json");
    let mut archs: Vec<String> = idx["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["platform"]["architecture"].as_str().unwrap().to_string())
        .collect();
    archs.sort();
    assert_eq!(archs, ["amd64", "arm64"]);

    let zstd = fixtures::image("zstd");
    let zm = fixtures::json_blob(&zstd, &fixtures::top_digest(&zstd));
    for l in zm["layers"].as_array().unwrap() {
        assert!(l["mediaType"].as_str().unwrap().ends_with("+zstd"), "{l}");
        let b = fixtures::blob(&zstd, l["digest"].as_str().unwrap());
        assert_eq!(&b[..4], &[0x28, 0xb5, 0x2f, 0xfd], "zstd magic");
    }

    let wo = fixtures::image("whiteout");
    let wm = fixtures::json_blob(&wo, &fixtures::top_digest(&wo));
    let layers = wm["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 3);
    let l2 = tar_listing(&fixtures::blob(&wo, layers[1]["digest"].as_str().unwrap()), true);
    for want in ["data/.wh.gone", "olddir/.wh..wh..opq", "olddir/y"] {
        assert!(l2.iter().any(|e| e == want), "layer 2 lacks {want}: {l2:?}");
    }

    let mal = fixtures::ensure().join("malicious");
    for (name, needle) in [
        ("dotdot", "../../../../../../tmp/berth-escape-dotdot"),
        ("absolute", "/tmp/berth-escape-absolute"),
        ("symlink_escape", "evil/berth-escape-symlink"),
        ("hardlink_escape", "passwd-link"),
    ] {
        let raw = std::fs::read(mal.join(format!("{name}.tar"))).unwrap();
        let list = tar_listing(&raw, false);
        assert!(
            list.iter().any(|e| e == needle),
            "{name}.tar lacks {needle}: {list:?}"
        );
        let layout = mal.join(name);
        let m = fixtures::json_blob(&layout, &fixtures::top_digest(&layout));
        let gz = fixtures::blob(&layout, m["layers"][0]["digest"].as_str().unwrap());
        assert_eq!(
            tar_listing(&gz, true),
            list,
            "{name}: OCI layer differs from raw tar"
        );
    }
}

#[test]
fn malicious_images_push_to_a_registry() {
    let reg = Registry::start(Mode::Plain);
    let mal = fixtures::ensure().join("malicious");
    for name in ["dotdot", "absolute", "symlink_escape", "hardlink_escape"] {
        let pushed = reg.push_fixture(&mal.join(name), &format!("malicious/{name}:latest"));
        let raw = reg.skopeo_raw_manifest(&format!("malicious/{name}:latest"));
        assert_eq!(berth_tests::sha256_digest(&raw), pushed);
    }
}

#[test]
#[should_panic(
    expected = "missing berth-no-such-tool: run bash scripts/install.sh tests (apt package no-such-pkg)"
)]
fn missing_tools_fail_loudly() {
    berth_tests::tools::require("berth-no-such-tool", "no-such-pkg");
}
