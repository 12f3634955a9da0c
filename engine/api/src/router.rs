//! Routes a request to its handler: strips the `/v1.NN` prefix (refusing versions Berth
//! does not speak) and matches method and path like dockerd's router.

use hyper::{Method, StatusCode};

use crate::engine::Shared;
use crate::http::{self, Query, Req, Resp, Result};
use crate::{containers, exec, images, networks, system, volumes, ApiError, API_VERSION, MIN_API_VERSION};

pub async fn handle(engine: Shared, req: Req) -> Resp {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let started = std::time::Instant::now();
    if method != Method::GET && method != Method::HEAD {
        engine.until_set_up().await;
    }
    let resp = match route(engine, req, &method, &path).await {
        Ok(r) => r,
        Err(e) => {
            if e.status().is_server_error() {
                tracing::warn!(%method, %path, error = %e, "request failed");
            }
            http::error(&e)
        }
    };
    tracing::debug!(%method, %path, status = resp.status().as_u16(), elapsed_ms = started.elapsed().as_millis() as u64, "request");
    with_server_headers(resp)
}

fn with_server_headers(mut r: Resp) -> Resp {
    use hyper::header::HeaderValue;
    let h = r.headers_mut();
    h.insert("Api-Version", HeaderValue::from_static(API_VERSION));
    h.insert("Docker-Experimental", HeaderValue::from_static("false"));
    h.insert("Ostype", HeaderValue::from_static("linux"));
    h.insert(
        "Server",
        HeaderValue::from_static(concat!("Berth/", env!("CARGO_PKG_VERSION"), " (linux)")),
    );
    r
}

fn version_number(v: &str) -> Option<(u32, u32)> {
    let (major, minor) = v.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// Splits `/v1.43/containers/json` into the version and `/containers/json`.
fn strip_version(path: &str) -> Result<&str> {
    let Some(rest) = path.strip_prefix("/v") else {
        return Ok(path);
    };
    let (ver, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let Some(v) = version_number(ver) else {
        // Not a version (e.g. `/volumes`): a plain path.
        return Ok(path);
    };
    let max = version_number(API_VERSION).unwrap_or((1, 43));
    let min = version_number(MIN_API_VERSION).unwrap_or((1, 24));
    if v > max {
        return Err(ApiError::bad_request(format!(
            "client version {ver} is too new. Maximum supported API version is {API_VERSION}"
        )));
    }
    if v < min {
        return Err(ApiError::bad_request(format!(
            "client version {ver} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version"
        )));
    }
    Ok(tail)
}

async fn route(engine: Shared, req: Req, method: &Method, full_path: &str) -> Result<Resp> {
    // Decoded before it is split, as docker's router does: clients escape `@` and `:` in
    // image names (`busybox%40sha256:…`).
    let path = percent_encoding::percent_decode_str(strip_version(full_path)?.trim_end_matches('/'))
        .decode_utf8()
        .map_err(|_| ApiError::bad_request("the request path is not UTF-8 once decoded"))?
        .into_owned();
    let q = Query::parse(req.uri().query());
    let seg: Vec<&str> = path.split('/').skip(1).collect();
    let m = method.as_str();
    match (m, seg.as_slice()) {
        ("GET" | "HEAD", ["_ping"]) => Ok(system::ping(method)),
        ("GET", ["version"]) => system::version(),
        ("GET", ["info"]) => system::info(engine).await,
        ("GET", ["system", "df"]) => system::df(engine).await,
        ("GET", ["events"]) => system::events(engine, q).await,
        ("POST", ["auth"]) => system::auth(engine, req).await,
        ("POST", ["berth", "system", "check"]) => system::check(engine, q).await,

        ("POST", ["commit"]) => crate::build::commit(engine, q).await,
        ("GET", ["distribution", name @ .., "json"]) if !name.is_empty() => {
            let name = name.join("/");
            images::distribution(engine, req, name).await
        }
        ("GET", ["containers", "json"]) => containers::list(engine, q).await,
        ("POST", ["containers", "create"]) => containers::create(engine, req, q).await,
        ("POST", ["containers", "prune"]) => containers::prune(engine, q).await,
        ("GET", ["containers", id, "json"]) => containers::inspect(engine, id).await,
        ("POST", ["containers", id, "start"]) => containers::start(engine, id, q).await,
        ("POST", ["containers", id, "stop"]) => containers::stop(engine, id, q).await,
        ("POST", ["containers", id, "restart"]) => containers::restart(engine, id, q).await,
        ("POST", ["containers", id, "kill"]) => containers::kill(engine, id, q).await,
        ("POST", ["containers", id, "pause"]) => containers::pause(engine, id, true).await,
        ("POST", ["containers", id, "unpause"]) => containers::pause(engine, id, false).await,
        ("POST", ["containers", id, "wait"]) => containers::wait(engine, id, q).await,
        ("POST", ["containers", id, "rename"]) => containers::rename(engine, id, q).await,
        ("POST", ["containers", id, "update"]) => containers::update(engine, id, req).await,
        ("GET", ["containers", id, "logs"]) => containers::logs(engine, id, q).await,
        ("GET", ["containers", id, "stats"]) => containers::stats(engine, id, q).await,
        ("GET", ["containers", id, "top"]) => containers::top(engine, id, q).await,
        ("POST", ["containers", id, "resize"]) => containers::resize(engine, id, q).await,
        ("POST", ["containers", id, "attach"]) => crate::attach::attach(engine, req, id, q).await,
        ("GET", ["containers", _, "attach", "ws"]) => Err(unsupported("websocket attach")),
        ("HEAD", ["containers", id, "archive"]) => crate::archive::head(engine, id, q).await,
        ("GET", ["containers", id, "archive"]) => crate::archive::get(engine, id, q).await,
        ("PUT", ["containers", id, "archive"]) => crate::archive::put(engine, req, id, q).await,
        ("GET", ["containers", id, "export"]) => crate::archive::export(engine, id).await,
        ("GET", ["containers", id, "changes"]) => containers::changes(engine, id).await,
        ("DELETE", ["containers", id]) => containers::remove(engine, id, q).await,
        ("POST", ["containers", id, "exec"]) => exec::create(engine, req, id).await,
        ("POST", ["exec", id, "start"]) => exec::start(engine, req, id).await,
        ("POST", ["exec", id, "resize"]) => exec::resize(engine, id, q).await,
        ("GET", ["exec", id, "json"]) => exec::inspect(engine, id).await,

        ("GET", ["images", "json"]) => images::list(engine, q).await,
        ("POST", ["images", "create"]) => images::create(engine, req, q).await,
        ("POST", ["images", "load"]) => images::load(engine, req, q).await,
        ("GET", ["images", "get"]) => images::get(engine, q).await,
        ("POST", ["images", "prune"]) => images::prune(engine, q).await,
        ("GET", ["images", "search"]) => images::search(engine, req, q).await,
        ("POST", ["build"]) => crate::build::build(engine, req, q).await,
        ("POST", ["build", "prune"]) => crate::build::prune(engine, q).await,
        (_, ["images", ..]) => images::route_named(engine, req, m, &path, q).await,

        ("GET", ["volumes"]) => volumes::list(engine, q).await,
        ("POST", ["volumes", "create"]) => volumes::create(engine, req).await,
        ("POST", ["volumes", "prune"]) => volumes::prune(engine, q).await,
        ("GET", ["volumes", name]) => volumes::inspect(engine, name).await,
        ("DELETE", ["volumes", name]) => volumes::remove(engine, name, q).await,

        ("GET", ["networks"]) => networks::list(engine, q).await,
        ("POST", ["networks", "create"]) => networks::create(engine, req).await,
        ("POST", ["networks", "prune"]) => networks::prune(engine).await,
        ("GET", ["networks", id]) => networks::inspect(engine, id).await,
        ("DELETE", ["networks", id]) => networks::remove(engine, id).await,
        ("POST", ["networks", id, "connect"]) => networks::connect(engine, id, req).await,
        ("POST", ["networks", id, "disconnect"]) => networks::disconnect(engine, id, req).await,

        ("GET", ["plugins"]) => http::ok_json(&serde_json::json!([])),
        (
            _,
            ["swarm", ..]
            | ["nodes", ..]
            | ["services", ..]
            | ["tasks", ..]
            | ["secrets", ..]
            | ["configs", ..],
        ) => Err(ApiError::Http {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: "This node is not a swarm manager. Berth does not support swarm mode.".into(),
        }),
        (_, ["session"]) => Err(unsupported("BuildKit sessions (use DOCKER_BUILDKIT=0)")),
        (_, ["grpc"]) => Err(unsupported("BuildKit (use DOCKER_BUILDKIT=0)")),
        _ => Err(ApiError::not_found(format!("page not found: {m} {full_path}"))),
    }
}

pub fn unsupported(what: &str) -> ApiError {
    ApiError::not_implemented(format!("{what} is not supported by Berth yet"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(
            strip_version("/v1.43/containers/json").unwrap(),
            "/containers/json"
        );
        assert_eq!(strip_version("/v1.24/_ping").unwrap(), "/_ping");
        assert_eq!(strip_version("/containers/json").unwrap(), "/containers/json");
        assert_eq!(strip_version("/volumes").unwrap(), "/volumes");
        let e = strip_version("/v1.99/info").unwrap_err();
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        assert!(e.to_string().contains("too new"));
        assert!(strip_version("/v1.12/info")
            .unwrap_err()
            .to_string()
            .contains("too old"));
    }
}
