//! `docker search` (`GET /images/search`): `HOST[:PORT]/WORDS` looks in that registry's
//! catalog, anything else in Docker Hub's search.

use berth_registry::{RegistryError, SearchResult};

use crate::{ImageError, ImageService};

/// Whether the part before the first `/` names a registry (docker's rule: it holds a `.`
/// or a `:`, or is `localhost`), not a Docker Hub namespace.
fn registry_of(term: &str) -> Option<(&str, &str)> {
    let (first, rest) = term.split_once('/')?;
    (first.contains(['.', ':']) || first == "localhost").then_some((first, rest))
}

impl ImageService {
    /// Up to `limit` repositories for `term`.
    pub async fn search(&self, term: &str, limit: usize) -> Result<Vec<SearchResult>, ImageError> {
        let term = term.trim();
        if term.is_empty() {
            return Err(RegistryError::InvalidInput(
                "give a word to search for, e.g. berth search python (or HOST:PORT/word for a private registry)".into(),
            )
            .into());
        }
        let limit = limit.clamp(1, 100);
        Ok(match registry_of(term) {
            Some((registry, words)) if registry != "docker.io" && registry != "index.docker.io" => {
                self.registry.search_catalog(registry, words, limit).await?
            }
            Some((_, words)) => self.registry.search_hub(words, limit).await?,
            None => self.registry.search_hub(term, limit).await?,
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn which_terms_name_a_registry() {
        assert_eq!(
            super::registry_of("127.0.0.1:5000/demo"),
            Some(("127.0.0.1:5000", "demo"))
        );
        assert_eq!(super::registry_of("localhost/x"), Some(("localhost", "x")));
        assert_eq!(
            super::registry_of("registry.lan/team/app"),
            Some(("registry.lan", "team/app"))
        );
        assert_eq!(super::registry_of("library/python"), None);
        assert_eq!(super::registry_of("python"), None);
    }
}
