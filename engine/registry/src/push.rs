//! Pushing: whether a blob is there (`HEAD`), cross-repository mounts, blob uploads in one
//! `PUT` or in `PATCH` chunks, and the manifest `PUT`.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_oci::{Descriptor, Digest, Sha256Writer};
use bytes::Bytes;
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION};
use reqwest::{RequestBuilder, Response, StatusCode};
use url::Url;

use crate::auth::{pull_scope, push_scope};
use crate::client::{check_reference, check_repo, error_for, Endpoint, Result, Target};
use crate::resolver::unreachable_targets;
use crate::{BlobSource, RegistryClient, RegistryError};

const OCTET_STREAM: &str = "application/octet-stream";

impl RegistryClient {
    /// Uploads a manifest under a tag or its digest; returns its digest.
    pub async fn put_manifest(
        &self,
        registry: &str,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Digest> {
        check_repo(repo)?;
        check_reference(reference)?;
        let digest = Digest::of(bytes);
        if reference.contains(':') && reference != digest.to_string() {
            return Err(RegistryError::DigestMismatch {
                expected: reference
                    .parse()
                    .map_err(|e: berth_oci::DigestError| RegistryError::InvalidInput(e.to_string()))?,
                actual: digest,
            });
        }
        let target = self.target(registry)?;
        let body = Bytes::copy_from_slice(bytes);
        let what = format!("manifest {reference} of {repo}");
        self.retrying(self.inner.cfg.max_retries, |_| async {
            let ep = self.endpoint(&target).await?;
            let url = ep.url(&format!("v2/{repo}/manifests/{reference}"))?;
            let sent = self
                .send(&ep, &[push_scope(repo)], &what, &|c| {
                    Ok(c.put(url.clone())
                        .header(CONTENT_TYPE, media_type)
                        .body(body.clone()))
                })
                .await?;
            if !sent.resp.status().is_success() {
                return Err(error_for(sent.resp, &ep.name, &what, sent.bearer_with_credentials).await);
            }
            check_digest_header(&sent.resp, &digest)
        })
        .await?;
        Ok(digest)
    }

    /// Whether the repository has the blob; its size if so.
    pub async fn blob_exists(&self, registry: &str, repo: &str, digest: &Digest) -> Result<Option<u64>> {
        check_repo(repo)?;
        let targets = self.pull_targets(registry)?;
        let last = targets.len() - 1;
        for (i, target) in targets.iter().enumerate() {
            let res = self
                .retrying(self.retries_for(target), |_| {
                    self.blob_exists_at(target, repo, digest)
                })
                .await;
            match res {
                Err(e) if target.is_mirror && i < last => {
                    tracing::info!(mirror = %target.name, error = %e, "registry mirror failed; trying the next");
                }
                Ok(None) if target.is_mirror && i < last => {}
                other => return other,
            }
        }
        unreachable_targets()
    }

    async fn blob_exists_at(&self, target: &Target, repo: &str, digest: &Digest) -> Result<Option<u64>> {
        let ep = self.endpoint(target).await?;
        let url = ep.url(&format!("v2/{repo}/blobs/{digest}"))?;
        let what = format!("blob {digest} of {repo}");
        let sent = self
            .send(&ep, &[pull_scope(repo)], &what, &|c| Ok(c.head(url.clone())))
            .await?;
        match sent.resp.status() {
            s if s.is_success() => Ok(Some(
                sent.resp
                    .headers()
                    .get(CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
            )),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(error_for(sent.resp, &ep.name, &what, sent.bearer_with_credentials).await),
        }
    }

    /// Asks the registry to link a blob from another repository on it. Returns false if
    /// it did not (the blob must then be uploaded).
    pub async fn mount_blob(
        &self,
        registry: &str,
        repo: &str,
        digest: &Digest,
        from_repo: &str,
    ) -> Result<bool> {
        check_repo(repo)?;
        check_repo(from_repo)?;
        let target = self.target(registry)?;
        let what = format!("blob {digest} of {repo}");
        self.retrying(self.inner.cfg.max_retries, |_| async {
            let ep = self.endpoint(&target).await?;
            let mut url = ep.url(&format!("v2/{repo}/blobs/uploads/"))?;
            url.query_pairs_mut()
                .append_pair("mount", &digest.to_string())
                .append_pair("from", from_repo);
            let scopes = [push_scope(repo), pull_scope(from_repo)];
            let sent = self
                .send(&ep, &scopes, &what, &|c| Ok(c.post(url.clone())))
                .await?;
            match sent.resp.status() {
                StatusCode::CREATED => Ok(true),
                StatusCode::ACCEPTED => {
                    // The registry started an ordinary upload instead; cancel it.
                    if let Ok(loc) = location(&sent.resp, &ep.name) {
                        let _ = self
                            .send(&ep, &scopes, &what, &|c| Ok(c.delete(loc.clone())))
                            .await;
                    }
                    Ok(false)
                }
                _ => Err(error_for(sent.resp, &ep.name, &what, sent.bearer_with_credentials).await),
            }
        })
        .await
    }

    /// Uploads a blob: one PUT for blobs up to the chunk threshold, PATCHes of
    /// `chunk_size` then a PUT for larger ones. A failed upload is started again.
    pub async fn push_blob(
        &self,
        registry: &str,
        repo: &str,
        desc: &Descriptor,
        source: &(dyn BlobSource + Sync),
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<()> {
        check_repo(repo)?;
        let target = self.target(registry)?;
        let chunked = desc.size() > self.inner.cfg.chunk_threshold;
        self.retrying(self.inner.cfg.max_retries, |_| async {
            let ep = self.endpoint(&target).await?;
            let start = self.start_upload(&ep, repo).await?;
            if chunked {
                self.push_chunked(&ep, repo, desc, source, progress, start).await
            } else {
                self.push_monolithic(&ep, repo, desc, source, progress, start)
                    .await
            }
        })
        .await
    }

    async fn start_upload(&self, ep: &Endpoint, repo: &str) -> Result<Url> {
        let url = ep.url(&format!("v2/{repo}/blobs/uploads/"))?;
        let what = format!("an upload to {repo}");
        let sent = self
            .send(ep, &[push_scope(repo)], &what, &|c| {
                Ok(c.post(url.clone()).header(CONTENT_LENGTH, 0))
            })
            .await?;
        if sent.resp.status() != StatusCode::ACCEPTED {
            return Err(error_for(sent.resp, &ep.name, &what, sent.bearer_with_credentials).await);
        }
        location(&sent.resp, &ep.name)
    }

    async fn push_monolithic(
        &self,
        ep: &Endpoint,
        repo: &str,
        desc: &Descriptor,
        source: &(dyn BlobSource + Sync),
        progress: &(dyn Fn(u64) + Send + Sync),
        mut url: Url,
    ) -> Result<()> {
        let what = format!("blob {} of {repo}", desc.digest());
        url.query_pairs_mut()
            .append_pair("digest", &desc.digest().to_string());
        let counter = Arc::new(AtomicU64::new(0));
        let read_failure: Arc<Mutex<Option<std::io::Error>>> = Arc::default();
        let build = |c: &reqwest::Client| -> Result<RequestBuilder> {
            let reader = source
                .open()
                .map_err(|e| RegistryError::io(format!("cannot read {what}"), e))?;
            counter.store(0, Ordering::Relaxed);
            Ok(c.put(url.clone())
                .header(CONTENT_TYPE, OCTET_STREAM)
                .header(CONTENT_LENGTH, desc.size())
                .body(reader_body(
                    reader,
                    desc.size(),
                    counter.clone(),
                    read_failure.clone(),
                )))
        };
        let sent = with_progress(
            self.send(ep, &[push_scope(repo)], &what, &build),
            &counter,
            progress,
        )
        .await;
        // A failure of the local source surfaces as a failed request; report it as what it is.
        if let Some(e) = read_failure.lock().expect("read failure").take() {
            return Err(RegistryError::io(format!("cannot read {what}"), e));
        }
        let sent = sent?;
        if sent.resp.status() != StatusCode::CREATED {
            return Err(error_for(sent.resp, &ep.name, &what, sent.bearer_with_credentials).await);
        }
        check_digest_header(&sent.resp, &desc.digest())
    }

    async fn push_chunked(
        &self,
        ep: &Endpoint,
        repo: &str,
        desc: &Descriptor,
        source: &(dyn BlobSource + Sync),
        progress: &(dyn Fn(u64) + Send + Sync),
        mut url: Url,
    ) -> Result<()> {
        let what = format!("blob {} of {repo}", desc.digest());
        let read_err = |e| RegistryError::io(format!("cannot read {what}"), e);
        let scopes = [push_scope(repo)];
        let mut reader = source.open().map_err(read_err)?;
        let mut hasher = Sha256Writer::new();
        let mut sent_bytes = 0u64;
        while sent_bytes < desc.size() {
            let n = (desc.size() - sent_bytes).min(self.inner.cfg.chunk_size) as usize;
            let (r, buf) = tokio::task::spawn_blocking(move || {
                let mut buf = vec![0u8; n];
                let res = reader.read_exact(&mut buf);
                res.map(|()| (reader, buf))
            })
            .await
            .map_err(|e| read_err(std::io::Error::other(e)))?
            .map_err(|e| {
                read_err(if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    std::io::Error::new(
                        e.kind(),
                        format!("the content is shorter than its {} bytes", desc.size()),
                    )
                } else {
                    e
                })
            })?;
            reader = r;
            hasher.update(&buf);
            let body = Bytes::from(buf);
            let range = format!("{}-{}", sent_bytes, sent_bytes + n as u64 - 1);
            let sent = self
                .send(ep, &scopes, &what, &|c| {
                    Ok(c.patch(url.clone())
                        .header(CONTENT_TYPE, OCTET_STREAM)
                        .header(CONTENT_RANGE, &range)
                        .header(CONTENT_LENGTH, n)
                        .body(body.clone()))
                })
                .await?;
            if sent.resp.status() != StatusCode::ACCEPTED {
                return Err(error_for(sent.resp, &ep.name, &what, sent.bearer_with_credentials).await);
            }
            url = location(&sent.resp, &ep.name)?;
            sent_bytes += n as u64;
            progress(sent_bytes);
        }
        let actual = hasher.finish();
        if actual != desc.digest() {
            return Err(RegistryError::DigestMismatch {
                expected: desc.digest(),
                actual,
            });
        }
        url.query_pairs_mut()
            .append_pair("digest", &desc.digest().to_string());
        let sent = self
            .send(ep, &scopes, &what, &|c| {
                Ok(c.put(url.clone())
                    .header(CONTENT_TYPE, OCTET_STREAM)
                    .header(CONTENT_LENGTH, 0))
            })
            .await?;
        if sent.resp.status() != StatusCode::CREATED {
            return Err(error_for(sent.resp, &ep.name, &what, sent.bearer_with_credentials).await);
        }
        check_digest_header(&sent.resp, &desc.digest())
    }
}

fn location(resp: &Response, registry: &str) -> Result<Url> {
    let loc = resp
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| RegistryError::Protocol {
            registry: registry.to_string(),
            detail: "an upload response has no Location header".into(),
        })?;
    resp.url().join(loc).map_err(|e| RegistryError::Protocol {
        registry: registry.to_string(),
        detail: format!("the upload location '{loc}' is not a URL ({e})"),
    })
}

fn check_digest_header(resp: &Response, expected: &Digest) -> Result<()> {
    let got = resp
        .headers()
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<Digest>().ok());
    match got {
        Some(actual) if actual != *expected => Err(RegistryError::DigestMismatch {
            expected: expected.clone(),
            actual,
        }),
        _ => Ok(()),
    }
}

/// A request body read from a blocking reader, `size` bytes exactly, counting what was
/// read into `counter`. A read error is also left in `failure`.
fn reader_body(
    reader: Box<dyn std::io::Read + Send>,
    size: u64,
    counter: Arc<AtomicU64>,
    failure: Arc<Mutex<Option<std::io::Error>>>,
) -> reqwest::Body {
    let stream = futures_util::stream::try_unfold((reader, 0u64), move |(reader, done)| {
        let counter = counter.clone();
        let failure = failure.clone();
        async move {
            let res = read_step(reader, done, size, &counter).await;
            if let Err(e) = &res {
                *failure.lock().expect("read failure") = Some(std::io::Error::new(e.kind(), e.to_string()));
            }
            res
        }
    });
    reqwest::Body::wrap_stream(stream)
}

type ReadStep = Option<(Bytes, (Box<dyn std::io::Read + Send>, u64))>;

/// Reads the next piece (up to 1 MiB) of an upload on the blocking pool.
async fn read_step(
    mut reader: Box<dyn std::io::Read + Send>,
    done: u64,
    size: u64,
    counter: &AtomicU64,
) -> std::io::Result<ReadStep> {
    const STEP: u64 = 1 << 20;
    if done >= size {
        return Ok(None);
    }
    let want = (size - done).min(STEP) as usize;
    let (reader, buf) = tokio::task::spawn_blocking(move || {
        let mut buf = vec![0u8; want];
        let n = loop {
            match reader.read(&mut buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        buf.truncate(n);
        Ok((reader, buf))
    })
    .await
    .map_err(std::io::Error::other)??;
    if buf.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("the content ended after {done} of its {size} bytes"),
        ));
    }
    let n = buf.len() as u64;
    counter.fetch_add(n, Ordering::Relaxed);
    Ok(Some((Bytes::from(buf), (reader, done + n))))
}

/// Runs `fut`, reporting `counter` to `progress` every 100 ms and at the end.
async fn with_progress<F: Future>(
    fut: F,
    counter: &AtomicU64,
    progress: &(dyn Fn(u64) + Send + Sync),
) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            out = &mut fut => {
                progress(counter.load(Ordering::Relaxed));
                return out;
            }
            _ = tick.tick() => progress(counter.load(Ordering::Relaxed)),
        }
    }
}
