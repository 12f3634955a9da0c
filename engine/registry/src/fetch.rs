//! Blob downloads: ranged and resumed from what the caller's [`BlobSink`] already holds,
//! retried while they make progress, hashed on the way when they start from zero.

use berth_oci::{Descriptor, Sha256Writer};
use reqwest::header::{CONTENT_RANGE, RANGE};
use reqwest::StatusCode;
use url::Url;

use crate::auth::pull_scope;
use crate::client::{body_error, check_repo, error_for, Endpoint, Result, Target};
use crate::resolver::unreachable_targets;
use crate::{BlobSink, RegistryClient, RegistryError};

impl RegistryClient {
    /// Downloads a blob into `sink`, resuming from `sink.offset()` and retrying cut
    /// transfers. `progress` gets the number of bytes the sink holds.
    pub async fn fetch_blob(
        &self,
        registry: &str,
        repo: &str,
        desc: &Descriptor,
        sink: &mut (dyn BlobSink + Send),
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<()> {
        check_repo(repo)?;
        let targets = self.pull_targets(registry)?;
        let last = targets.len() - 1;
        for (i, target) in targets.iter().enumerate() {
            match self.fetch_blob_at(target, repo, desc, &mut *sink, progress).await {
                Err(e) if target.is_mirror && i < last && !matches!(e, RegistryError::Io { .. }) => {
                    tracing::info!(mirror = %target.name, error = %e, "registry mirror failed; trying the next");
                }
                other => return other,
            }
        }
        unreachable_targets()
    }

    async fn fetch_blob_at(
        &self,
        target: &Target,
        repo: &str,
        desc: &Descriptor,
        sink: &mut (dyn BlobSink + Send),
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<()> {
        let ep = self
            .retrying(self.retries_for(target), |_| self.endpoint(target))
            .await?;
        let url = ep.url(&format!("v2/{repo}/blobs/{}", desc.digest()))?;
        let what = format!("blob {} of {repo}", desc.digest());
        let mut hasher = (sink.offset() == 0).then(Sha256Writer::new);
        let mut best = sink.offset();
        let mut failures = 0;
        loop {
            match self
                .fetch_attempt(&ep, &url, &what, repo, desc, sink, progress, &mut hasher)
                .await
            {
                Err(e) if e.is_retryable() => {
                    let now = sink.offset();
                    if now > best {
                        best = now;
                        failures = 0;
                    } else {
                        failures += 1;
                    }
                    if failures > self.inner.cfg.max_retries {
                        return Err(e);
                    }
                    let delay = self.backoff(failures.saturating_sub(1));
                    tracing::debug!(error = %e, offset = now, ?delay, "blob download failed; resuming");
                    tokio::time::sleep(delay).await;
                }
                other => return other,
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn fetch_attempt(
        &self,
        ep: &Endpoint,
        url: &Url,
        what: &str,
        repo: &str,
        desc: &Descriptor,
        sink: &mut (dyn BlobSink + Send),
        progress: &(dyn Fn(u64) + Send + Sync),
        hasher: &mut Option<Sha256Writer>,
    ) -> Result<()> {
        let io_err = |e| RegistryError::io(format!("cannot store {what}"), e);
        let mut offset = sink.offset();
        if offset > desc.size() {
            sink.restart().map_err(io_err)?;
            offset = 0;
        }
        if offset == 0 {
            *hasher = Some(Sha256Writer::new());
        } else if hasher.as_ref().is_some_and(|h| h.len() != offset) {
            *hasher = None;
        }
        if offset == desc.size() {
            progress(offset);
            return finish_hash(hasher, desc);
        }
        let sent = self
            .send(ep, &[pull_scope(repo)], what, &|c| {
                let req = c.get(url.clone());
                Ok(if offset > 0 {
                    req.header(RANGE, format!("bytes={offset}-"))
                } else {
                    req
                })
            })
            .await?;
        let mut resp = sent.resp;
        match resp.status() {
            StatusCode::PARTIAL_CONTENT if offset > 0 => {
                let start = resp
                    .headers()
                    .get(CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("bytes "))
                    .and_then(|v| v.split('-').next())
                    .and_then(|v| v.trim().parse::<u64>().ok());
                if start.is_some_and(|s| s != offset) {
                    return Err(RegistryError::Protocol {
                        registry: ep.name.clone(),
                        detail: format!(
                            "it answered a request for {what} from byte {offset} with another range"
                        ),
                    });
                }
            }
            s if s.is_success() => {
                if offset > 0 {
                    tracing::debug!(%what, "registry does not resume downloads; starting over");
                    sink.restart().map_err(io_err)?;
                    offset = 0;
                    *hasher = Some(Sha256Writer::new());
                }
            }
            StatusCode::RANGE_NOT_SATISFIABLE if offset > 0 => {
                sink.restart().map_err(io_err)?;
                *hasher = Some(Sha256Writer::new());
                return Err(RegistryError::Interrupted {
                    registry: ep.name.clone(),
                    what: what.to_string(),
                    detail: "the registry refused to resume it".into(),
                });
            }
            _ => return Err(error_for(resp, &ep.name, what, sent.bearer_with_credentials).await),
        }
        if resp.content_length().is_some_and(|l| offset + l > desc.size()) {
            return Err(RegistryError::TooLarge {
                what: what.to_string(),
                limit: desc.size(),
            });
        }
        while let Some(chunk) = resp.chunk().await.map_err(|e| body_error(&ep.name, what, e))? {
            if offset + chunk.len() as u64 > desc.size() {
                return Err(RegistryError::TooLarge {
                    what: what.to_string(),
                    limit: desc.size(),
                });
            }
            sink.write(&chunk).map_err(io_err)?;
            if let Some(h) = hasher.as_mut() {
                h.update(&chunk);
            }
            offset += chunk.len() as u64;
            progress(offset);
        }
        if offset < desc.size() {
            return Err(RegistryError::Interrupted {
                registry: ep.name.clone(),
                what: what.to_string(),
                detail: format!("the connection closed after {offset} of {} bytes", desc.size()),
            });
        }
        let res = finish_hash(hasher, desc);
        if res.is_err() {
            sink.restart().map_err(io_err)?;
        }
        res
    }
}

fn finish_hash(hasher: &mut Option<Sha256Writer>, desc: &Descriptor) -> Result<()> {
    if let Some(h) = hasher.take() {
        let actual = h.finish();
        if actual != desc.digest() {
            return Err(RegistryError::DigestMismatch {
                expected: desc.digest(),
                actual,
            });
        }
    }
    Ok(())
}
