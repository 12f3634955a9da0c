//! HTTP plumbing: response bodies (whole and streamed), docker's error JSON, query strings
//! and filters, request bodies.

use std::collections::HashMap;
use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::ApiError;

pub type Body = BoxBody<Bytes, Infallible>;
pub type Resp = Response<Body>;
pub type Req = Request<Incoming>;
pub type Result<T> = std::result::Result<T, ApiError>;

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

pub fn json<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Resp {
    let bytes = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    with_type(status, full(bytes), "application/json")
}

pub fn ok_json<T: Serialize + ?Sized>(value: &T) -> Result<Resp> {
    Ok(json(StatusCode::OK, value))
}

pub fn empty(status: StatusCode) -> Resp {
    let mut r = Response::new(full(Bytes::new()));
    *r.status_mut() = status;
    r
}

pub fn text(status: StatusCode, body: &'static str) -> Resp {
    with_type(status, full(body), "text/plain; charset=utf-8")
}

pub fn with_type(status: StatusCode, body: Body, content_type: &'static str) -> Resp {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// docker's error shape.
pub fn error(e: &ApiError) -> Resp {
    json(e.status(), &serde_json::json!({ "message": e.to_string() }))
}

/// A streamed response: whatever is sent on the returned channel is written as it comes.
/// The producer sees the send fail once the client has gone.
pub fn stream(status: StatusCode, content_type: &'static str) -> (mpsc::Sender<Bytes>, Resp) {
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let frames = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(Frame::data(b)), rx))
    });
    (
        tx,
        with_type(status, StreamBody::new(frames).boxed(), content_type),
    )
}

/// One JSON object per line, as docker's progress streams.
pub fn json_line(value: &serde_json::Value) -> Bytes {
    let mut v = serde_json::to_vec(value).unwrap_or_default();
    v.push(b'\n');
    Bytes::from(v)
}

/// The query string, decoded.
#[derive(Debug, Default)]
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(q: Option<&str>) -> Query {
        Query(
            url::form_urlencoded::parse(q.unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The last non-empty value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// Every (key, value) pair, in order.
    pub fn pairs(&self) -> impl Iterator<Item = &(String, String)> {
        self.0.iter()
    }

    /// Every value of a repeated key (`names=a&names=b`).
    pub fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// docker's booleans: `1`, `true`, `True`.
    pub fn bool(&self, key: &str) -> bool {
        matches!(self.get(key), Some("1" | "true" | "True" | "TRUE"))
    }

    pub fn bool_or(&self, key: &str, default: bool) -> bool {
        match self.get(key) {
            None => default,
            Some(_) => self.bool(key),
        }
    }

    pub fn int(&self, key: &str) -> Result<Option<i64>> {
        self.get(key)
            .map(|v| {
                v.parse::<i64>().map_err(|_| {
                    ApiError::bad_request(format!("invalid value for {key}: '{v}' is not a number"))
                })
            })
            .transpose()
    }

    /// `filters={"label":{"a=b":true}}` or the older `{"label":["a=b"]}`.
    pub fn filters(&self) -> Result<Filters> {
        let Some(raw) = self.get("filters") else {
            return Ok(Filters::default());
        };
        let v: serde_json::Value = serde_json::from_str(raw)
            .map_err(|e| ApiError::bad_request(format!("invalid filters '{raw}': {e}")))?;
        let mut out = HashMap::new();
        if let serde_json::Value::Object(map) = v {
            for (k, vals) in map {
                let list: Vec<String> = match vals {
                    serde_json::Value::Object(m) => m
                        .into_iter()
                        .filter(|(_, b)| *b != false)
                        .map(|(k, _)| k)
                        .collect(),
                    serde_json::Value::Array(a) => a
                        .into_iter()
                        .filter_map(|x| x.as_str().map(String::from))
                        .collect(),
                    serde_json::Value::String(s) => vec![s],
                    _ => Vec::new(),
                };
                out.insert(k, list);
            }
        }
        Ok(Filters(out))
    }
}

#[derive(Debug, Default)]
pub struct Filters(pub HashMap<String, Vec<String>>);

impl Filters {
    pub fn get(&self, key: &str) -> &[String] {
        self.0.get(key).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Refuses filter keys the endpoint does not implement (never a silent match-all).
    pub fn only(&self, supported: &[&str]) -> Result<()> {
        let mut unknown: Vec<&str> = self
            .0
            .keys()
            .map(String::as_str)
            .filter(|k| !supported.contains(k))
            .collect();
        if unknown.is_empty() {
            return Ok(());
        }
        unknown.sort();
        Err(ApiError::bad_request(format!(
            "unsupported filter(s): {} — supported here: {}",
            unknown.join(", "),
            supported.join(", ")
        )))
    }

    /// docker's label filter: `key` or `key=value`, all must match.
    pub fn labels_match(&self, labels: &std::collections::BTreeMap<String, String>) -> bool {
        self.get("label").iter().all(|l| match l.split_once('=') {
            Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
            None => labels.contains_key(l.as_str()),
        })
    }
}

/// The whole request body (small JSON bodies).
pub async fn body_bytes(req: Req) -> Result<Bytes> {
    req.into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| ApiError::bad_request(format!("cannot read the request body: {e}")))
}

/// The request body as JSON; an empty body is `T::default()`.
pub async fn body_json<T: DeserializeOwned + Default>(req: Req) -> Result<T> {
    let bytes = body_bytes(req).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("malformed JSON in the request body: {e}")))
}

/// Streams the request body into a temp file (image tarballs, build contexts).
pub async fn body_to_file(req: Req, file: std::fs::File) -> Result<()> {
    use tokio::io::AsyncWriteExt;
    let mut out = tokio::fs::File::from_std(file);
    let mut body = req.into_body();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ApiError::bad_request(format!("cannot read the request body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            out.write_all(&data)
                .await
                .map_err(|e| ApiError::internal(format!("cannot write the upload to disk: {e}")))?;
        }
    }
    out.flush()
        .await
        .map_err(|e| ApiError::internal(format!("cannot write the upload to disk: {e}")))
}

/// Runs blocking engine work off the async threads.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("an engine task failed: {e}")))?
}
