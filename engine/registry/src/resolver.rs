//! Resolving a reference to a manifest: `GET` of a manifest or index by tag or digest,
//! verified against a digest reference, with its media type; and the mirrors tried before
//! Docker Hub for everything a pull reads.

use berth_oci::media_type::MANIFEST_ACCEPT;
use berth_oci::Digest;
use reqwest::header::{ACCEPT, CONTENT_TYPE};

use crate::auth::pull_scope;
use crate::client::{base_url, body_error, check_reference, check_repo, error_for, Result, Target};
use crate::{FetchedManifest, Mirrors, RegistryClient, RegistryError};

/// Manifests larger than this are refused (containerd uses the same limit).
const MANIFEST_LIMIT: u64 = 4 << 20;

impl RegistryClient {
    /// Targets for pulling from `registry`: the mirrors first for docker.io.
    pub(crate) fn pull_targets(&self, registry: &str) -> Result<Vec<Target>> {
        let main = self.target(registry)?;
        if main.name != "docker.io" {
            return Ok(vec![main]);
        }
        let mut out = Vec::new();
        for m in &self.inner.cfg.mirrors {
            let base = base_url(m, "registry mirror")?;
            let host = match base.port() {
                Some(p) => format!("{}:{p}", base.host_str().unwrap_or_default()),
                None => base.host_str().unwrap_or_default().to_string(),
            };
            out.push(Target {
                insecure_tls: self.is_insecure(&host),
                name: host.clone(),
                cred_key: host,
                bases: vec![base],
                is_mirror: true,
            });
        }
        out.push(main);
        Ok(out)
    }

    /// Mirrors get no retries: the next mirror, or the registry itself, is tried instead.
    pub(crate) fn retries_for(&self, target: &Target) -> u32 {
        if target.is_mirror {
            0
        } else {
            self.inner.cfg.max_retries
        }
    }

    /// Fetches a manifest or index by tag or digest. For a digest reference the content is
    /// verified against it.
    pub async fn get_manifest(&self, registry: &str, repo: &str, reference: &str) -> Result<FetchedManifest> {
        check_repo(repo)?;
        check_reference(reference)?;
        let expected = if reference.contains(':') {
            Some(
                reference
                    .parse::<Digest>()
                    .map_err(|e| RegistryError::InvalidInput(e.to_string()))?,
            )
        } else {
            None
        };
        let targets = self.pull_targets(registry)?;
        let last = targets.len() - 1;
        let mut mirror_errors = Vec::new();
        for (i, target) in targets.iter().enumerate() {
            let res = self
                .retrying(self.retries_for(target), |_| {
                    self.get_manifest_at(target, repo, reference, expected.as_ref())
                })
                .await;
            match res {
                Err(e) if target.is_mirror && i < last => {
                    tracing::info!(mirror = %target.name, error = %e, "registry mirror failed; trying the next");
                    mirror_errors.push((target.name.clone(), e));
                }
                Err(RegistryError::Unreachable(mut u)) if !mirror_errors.is_empty() => {
                    // Docker Hub is out of reach, and the mirrors did not help: say how,
                    // with their own words in the details.
                    u.mirrors = if mirror_errors
                        .iter()
                        .all(|(_, e)| matches!(e, RegistryError::Unreachable(_)))
                    {
                        Mirrors::Unreachable
                    } else {
                        Mirrors::Lacked
                    };
                    for (name, e) in &mirror_errors {
                        let said = match e {
                            RegistryError::Unreachable(m) => m.detail.clone(),
                            other => other.to_string(),
                        };
                        u.detail.push_str(&format!("; mirror {name}: {said}"));
                    }
                    return Err(RegistryError::Unreachable(u));
                }
                other => return other,
            }
        }
        unreachable_targets()
    }

    async fn get_manifest_at(
        &self,
        target: &Target,
        repo: &str,
        reference: &str,
        expected: Option<&Digest>,
    ) -> Result<FetchedManifest> {
        let ep = self.endpoint(target).await?;
        let url = ep.url(&format!("v2/{repo}/manifests/{reference}"))?;
        let what = format!("manifest {reference} of {repo}");
        let accept = MANIFEST_ACCEPT.join(", ");
        let sent = self
            .send(&ep, &[pull_scope(repo)], &what, &|c| {
                Ok(c.get(url.clone()).header(ACCEPT, &accept))
            })
            .await?;
        let mut resp = sent.resp;
        if !resp.status().is_success() {
            return Err(error_for(resp, &ep.name, &what, sent.bearer_with_credentials).await);
        }
        if resp.content_length().is_some_and(|l| l > MANIFEST_LIMIT) {
            return Err(RegistryError::TooLarge {
                what,
                limit: MANIFEST_LIMIT,
            });
        }
        let header_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or("").trim().to_string())
            .unwrap_or_default();
        let mut bytes = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| body_error(&ep.name, &what, e))? {
            if bytes.len() as u64 + chunk.len() as u64 > MANIFEST_LIMIT {
                return Err(RegistryError::TooLarge {
                    what,
                    limit: MANIFEST_LIMIT,
                });
            }
            bytes.extend_from_slice(&chunk);
        }
        let digest = Digest::of(&bytes);
        if let Some(exp) = expected {
            if *exp != digest {
                return Err(RegistryError::DigestMismatch {
                    expected: exp.clone(),
                    actual: digest,
                });
            }
        }
        let media_type =
            if header_type.is_empty() || header_type == "application/json" || header_type == "text/plain" {
                #[derive(serde::Deserialize)]
                struct Probe {
                    #[serde(rename = "mediaType", default)]
                    media_type: String,
                }
                serde_json::from_slice::<Probe>(&bytes)
                    .map(|p| p.media_type)
                    .unwrap_or_default()
            } else {
                header_type
            };
        Ok(FetchedManifest {
            bytes,
            media_type,
            digest,
        })
    }
}

pub(crate) fn unreachable_targets<T>() -> Result<T> {
    Err(RegistryError::InvalidInput("no registry endpoint to try".into()))
}

#[cfg(test)]
mod tests {
    use crate::{ClientConfig, RegistryClient};

    #[test]
    fn mirrors_come_first_for_docker_hub() {
        let c = RegistryClient::new(ClientConfig {
            mirrors: vec!["http://127.0.0.1:5000".into()],
            docker_config: None,
            ..Default::default()
        })
        .unwrap();
        let t = c.pull_targets("docker.io").unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].bases[0].as_str(), "http://127.0.0.1:5000/");
        assert!(t[0].is_mirror);
        assert_eq!(c.pull_targets("ghcr.io").unwrap().len(), 1);
        assert!(RegistryClient::new(ClientConfig {
            mirrors: vec!["ftp://x".into()],
            ..Default::default()
        })
        .is_err());
    }
}
