//! A proxy from the environment that does not let the connection through. Alone in its
//! test binary because it sets HTTPS_PROXY for the whole process.

mod common;

use std::time::Duration;

use berth_registry::{Cause, ClientConfig, RegistryClient, RegistryError, Unreachable};
use common::*;

#[tokio::test]
async fn a_proxy_on_a_closed_port_is_a_proxy_failure() {
    let proxy = format!("127.0.0.1:{}", free_port());
    std::env::remove_var("NO_PROXY");
    std::env::remove_var("no_proxy");
    // With credentials, which must not show up in the message.
    std::env::set_var("HTTPS_PROXY", format!("http://student:secret@{proxy}"));
    let client = RegistryClient::new(ClientConfig {
        max_retries: 0,
        connect_timeout: Duration::from_secs(2),
        ..client_config(None)
    })
    .unwrap();
    let registry = "registry.berth-test.invalid";
    let err = client.get_manifest(registry, "app", "v1").await.unwrap_err();
    let RegistryError::Unreachable(u) = &err else {
        panic!("expected an unreachable registry, got {err:?}");
    };
    assert_eq!(u.cause, Cause::Proxy, "{u:?}");
    assert_eq!(u.proxy.as_deref(), Some(proxy.as_str()));
    assert_eq!(
        u.sentence(),
        format!(
            "The registry {registry} can't be reached: the proxy {proxy} did not pass the connection on."
        )
    );
    let message = err.to_string();
    assert!(!message.contains("secret"), "{message}");
    assert!(message.contains("HTTPS_PROXY"), "{message}");
    assert_eq!(Unreachable::parse(&message).as_ref(), Some(u));
}
