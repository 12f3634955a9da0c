//! Credential helpers (`docker-credential-*`), with a real registry using htpasswd.
//! The only test in this binary, because it changes PATH for the whole process.

mod common;

use std::os::unix::fs::PermissionsExt;

use berth_registry::credentials::{Credential, DockerConfigFile};
use berth_registry::RegistryClient;
use common::*;

const HELPER: &str = r#"#!/bin/sh
# A file-backed credential helper speaking docker's helper protocol.
dir="$(dirname "$0")/store"
mkdir -p "$dir"
key() { printf '%s' "$1" | tr '/:' '__'; }
case "$1" in
  get)
    read -r server
    f="$dir/$(key "$server")"
    if [ -f "$f" ]; then cat "$f"; else echo "credentials not found in native keychain"; exit 1; fi ;;
  store)
    payload=$(cat)
    server=$(printf '%s' "$payload" | sed -n 's/.*"ServerURL":"\([^"]*\)".*/\1/p')
    printf '%s' "$payload" > "$dir/$(key "$server")" ;;
  erase)
    read -r server
    rm -f "$dir/$(key "$server")" ;;
  *) echo "unknown action" >&2; exit 2 ;;
esac
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credential_helpers_store_lookup_and_erase() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let helper = bin.join("docker-credential-berthtest");
    std::fs::write(&helper, HELPER).unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = std::env::var("PATH").unwrap_or_default();
    std::env::set_var("PATH", format!("{}:{path}", bin.display()));

    let reg = TestRegistry::start_with(Auth::Htpasswd {
        user: "carol".into(),
        password: "s3cret".into(),
    });
    let config = dir.path().join("docker").join("config.json");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(
        &config,
        r#"{"credsStore":"berthtest","credHelpers":{"broken.example":"berth-missing"},"detachKeys":"ctrl-x"}"#,
    )
    .unwrap();

    // berth login: check, then store through the helper.
    let client = RegistryClient::new(client_config(Some(config.clone()))).unwrap();
    client.check_login(&reg.addr, "carol", "s3cret").await.unwrap();
    let mut cfg = DockerConfigFile::load(&config).unwrap();
    cfg.store(
        &reg.addr,
        &Credential {
            username: "carol".into(),
            password: "s3cret".into(),
        },
    )
    .unwrap();
    cfg.save(&config).unwrap();
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(!text.contains("s3cret"), "the secret stays in the helper: {text}");
    assert!(text.contains("detachKeys"), "unknown keys are kept: {text}");
    assert_eq!(
        DockerConfigFile::load(&config)
            .unwrap()
            .lookup(&reg.addr)
            .unwrap()
            .unwrap()
            .password,
        "s3cret"
    );

    // The client finds the login through the helper.
    let blob = test_bytes(1234, 9);
    let desc = berth_registry::Descriptor::new(
        berth_oci::media_type::OCI_LAYER_GZIP,
        berth_registry::Digest::of(&blob),
        blob.len() as u64,
    );
    client
        .push_blob(
            &reg.addr,
            "berth/helper",
            &desc,
            &VecSource(blob.clone()),
            &|_| {},
        )
        .await
        .unwrap();
    let mut sink = VecSink::default();
    client
        .fetch_blob(&reg.addr, "berth/helper", &desc, &mut sink, &|_| {})
        .await
        .unwrap();
    assert_eq!(sink.data, blob);

    // credHelpers wins over credsStore; a missing helper is a clear error.
    let err = cfg.lookup("broken.example").unwrap_err();
    assert!(
        err.to_string().contains("docker-credential-berth-missing"),
        "{err}"
    );

    // berth logout.
    assert!(cfg.erase(&reg.addr).unwrap());
    cfg.save(&config).unwrap();
    let cfg = DockerConfigFile::load(&config).unwrap();
    assert_eq!(cfg.lookup(&reg.addr).unwrap(), None);
    assert_eq!(cfg.lookup("docker.io").unwrap(), None);
}
