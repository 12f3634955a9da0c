//! Finding repositories, as `docker search` and the Pull wizard ask: a private registry's
//! catalog (`GET /v2/_catalog`, the distribution API's listing, every page), and for
//! docker.io Docker Hub's search (`GET /v1/search?q=…&n=…` on its index).

use reqwest::StatusCode;
use serde::{Deserialize, Serialize};

use crate::client::{base_url, body_error, error_for, Result};
use crate::RegistryClient;

/// Docker Hub's index, where its search API is.
pub const DOCKER_HUB_INDEX: &str = "https://index.docker.io/";

/// One repository found, in the Engine API's `/images/search` shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchResult {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub star_count: u64,
    #[serde(default)]
    pub is_official: bool,
    #[serde(default)]
    pub is_automated: bool,
}

/// Pages of the catalog asked for at most; a registry with more is cut there.
const CATALOG_PAGES: usize = 50;

/// The `next` page of a `Link: </v2/_catalog?last=x&n=100>; rel="next"` header.
fn next_link(header: Option<&str>) -> Option<String> {
    let h = header?;
    h.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        params.contains("rel=\"next\"").then(|| {
            url.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_string()
        })
    })
}

impl RegistryClient {
    /// The repositories of `registry` whose names contain `term` (any case), as
    /// `registry/repo`, up to `limit`, from every page of its catalog.
    pub async fn search_catalog(
        &self,
        registry: &str,
        term: &str,
        limit: usize,
    ) -> Result<Vec<SearchResult>> {
        let target = self.target(registry)?;
        let ep = self.endpoint(&target).await?;
        let term = term.to_lowercase();
        let mut found = Vec::new();
        let mut path = "v2/_catalog?n=1000".to_string();
        for _ in 0..CATALOG_PAGES {
            let url = ep.url(&path)?;
            let what = "the catalog (GET /v2/_catalog)";
            let sent = self
                .send(&ep, &["registry:catalog:*".to_string()], what, &|c| {
                    Ok(c.get(url.clone()))
                })
                .await?;
            if sent.resp.status() != StatusCode::OK {
                return Err(error_for(sent.resp, &ep.name, what, sent.bearer_with_credentials).await);
            }
            let next = next_link(sent.resp.headers().get("link").and_then(|v| v.to_str().ok()));
            #[derive(Deserialize)]
            struct Catalog {
                #[serde(default)]
                repositories: Vec<String>,
            }
            let page: Catalog = sent
                .resp
                .json()
                .await
                .map_err(|e| body_error(&ep.name, what, e))?;
            for repo in page.repositories {
                if repo.to_lowercase().contains(&term) {
                    found.push(SearchResult {
                        name: format!("{registry}/{repo}"),
                        description: String::new(),
                        star_count: 0,
                        is_official: false,
                        is_automated: false,
                    });
                    if found.len() >= limit {
                        return Ok(found);
                    }
                }
            }
            match next {
                Some(n) => path = n.trim_start_matches('/').to_string(),
                None => break,
            }
        }
        Ok(found)
    }

    /// Docker Hub's search for `term`, up to `limit` results (its `n`, 1–100).
    pub async fn search_hub(&self, term: &str, limit: usize) -> Result<Vec<SearchResult>> {
        let base = base_url(&self.inner.cfg.docker_hub_index, "the Docker Hub index URL")?;
        let mut url = base
            .join("v1/search")
            .map_err(|e| crate::RegistryError::InvalidInput(format!("the Docker Hub index URL: {e}")))?;
        url.query_pairs_mut()
            .append_pair("q", term)
            .append_pair("n", &limit.clamp(1, 100).to_string());
        let client = self.client_for(false)?;
        let what = "Docker Hub's search";
        let resp = client
            .get(url)
            .send()
            .await
            .map_err(|e| crate::RegistryError::from_send("docker.io", what, e))?;
        if !resp.status().is_success() {
            return Err(error_for(resp, "docker.io", what, false).await);
        }
        #[derive(Deserialize)]
        struct Answer {
            #[serde(default)]
            results: Vec<SearchResult>,
        }
        let answer: Answer = resp.json().await.map_err(|e| body_error("docker.io", what, e))?;
        Ok(answer.results.into_iter().take(limit).collect())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_next_page_of_a_catalog() {
        assert_eq!(
            super::next_link(Some("</v2/_catalog?last=b&n=2>; rel=\"next\"")).as_deref(),
            Some("/v2/_catalog?last=b&n=2")
        );
        assert_eq!(super::next_link(Some("<x>; rel=\"prev\"")), None);
        assert_eq!(super::next_link(None), None);
    }
}
