//! Authentication: `WWW-Authenticate` challenges, the bearer-token flow of the distribution
//! spec (realm, service, scopes, the token cache), Basic and anonymous access, the logins
//! from docker's `config.json` (looked up in `credentials`), and `docker login`'s check.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::header::AUTHORIZATION;
use reqwest::{Method, Response, StatusCode};
use url::Url;

use crate::client::{error_for, Endpoint, Result};
use crate::credentials::{self, Credential};
use crate::{RegistryClient, RegistryError};

/// How long looked-up credentials are reused before `config.json` is read again.
const CREDENTIAL_TTL: Duration = Duration::from_secs(30);

/// What a registry asked for in its `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        /// The scope the registry said the request needs, if it said.
        scope: Option<String>,
    },
}

/// Parses every challenge in a `WWW-Authenticate` header value and returns the one to use:
/// Bearer if offered, else Basic.
pub(crate) fn parse_challenges(header: &str) -> Option<Challenge> {
    let mut found: Vec<Challenge> = Vec::new();
    let mut scheme: Option<String> = None;
    let mut params: HashMap<String, String> = HashMap::new();
    let mut rest = header.trim();
    let finish =
        |scheme: &Option<String>, params: &mut HashMap<String, String>, found: &mut Vec<Challenge>| {
            match scheme.as_deref().map(str::to_ascii_lowercase).as_deref() {
                Some("basic") => found.push(Challenge::Basic),
                Some("bearer") => {
                    if let Some(realm) = params.remove("realm") {
                        found.push(Challenge::Bearer {
                            realm,
                            service: params.remove("service"),
                            scope: params.remove("scope"),
                        });
                    }
                }
                _ => {}
            }
            params.clear();
        };
    while !rest.is_empty() {
        rest = rest.trim_start_matches([' ', ',', '\t']);
        if rest.is_empty() {
            break;
        }
        // A token: either a new scheme or a parameter name.
        let end = rest
            .find(|c: char| c == '=' || c == ',' || c.is_whitespace())
            .unwrap_or(rest.len());
        let token = &rest[..end];
        let after = rest[end..].trim_start();
        if let Some(value_part) = after.strip_prefix('=') {
            let value_part = value_part.trim_start();
            let (value, remaining) = if let Some(q) = value_part.strip_prefix('"') {
                let mut value = String::new();
                let mut chars = q.char_indices();
                let mut consumed = q.len();
                while let Some((i, c)) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some((_, n)) = chars.next() {
                                value.push(n);
                            }
                        }
                        '"' => {
                            consumed = i + 1;
                            break;
                        }
                        _ => value.push(c),
                    }
                }
                (value, &q[consumed..])
            } else {
                let e = value_part.find(',').unwrap_or(value_part.len());
                (value_part[..e].trim().to_string(), &value_part[e..])
            };
            params.insert(token.to_ascii_lowercase(), value);
            rest = remaining;
        } else {
            finish(&scheme, &mut params, &mut found);
            scheme = Some(token.to_string());
            rest = after;
        }
    }
    finish(&scheme, &mut params, &mut found);
    found
        .iter()
        .find(|c| matches!(c, Challenge::Bearer { .. }))
        .or_else(|| found.first())
        .cloned()
}

/// Bearer tokens by (realm+service, scopes), until shortly before they expire.
#[derive(Default)]
pub(crate) struct TokenCache {
    tokens: HashMap<(String, String), (String, Instant)>,
}

impl TokenCache {
    pub(crate) fn get(&self, key: &(String, String)) -> Option<String> {
        self.tokens
            .get(key)
            .filter(|(_, until)| *until > Instant::now())
            .map(|(t, _)| t.clone())
    }

    pub(crate) fn put(&mut self, key: (String, String), token: String, expires_in: Option<u64>) {
        // Docker assumes 60 s when the server says nothing (or less); keep a margin.
        let secs = expires_in.unwrap_or(60).max(60);
        let until = Instant::now() + Duration::from_secs(secs.saturating_sub(10));
        self.tokens.retain(|_, (_, u)| *u > Instant::now());
        self.tokens.insert(key, (token, until));
    }
}

/// The JSON a token server answers with. Docker Hub sends both names; others one.
#[derive(serde::Deserialize)]
pub(crate) struct TokenReply {
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub access_token: Option<String>,
    #[serde(default)]
    pub expires_in: Option<u64>,
}

pub(crate) fn pull_scope(repo: &str) -> String {
    format!("repository:{repo}:pull")
}

pub(crate) fn push_scope(repo: &str) -> String {
    format!("repository:{repo}:pull,push")
}

impl RegistryClient {
    async fn credentials(&self, key: &str) -> Result<Option<Credential>> {
        if let Some((c, at)) = self.inner.creds.lock().expect("credential cache").get(key) {
            if at.elapsed() < CREDENTIAL_TTL {
                return Ok(c.clone());
            }
        }
        let Some(path) = self.inner.cfg.docker_config.clone() else {
            return Ok(None);
        };
        let k = key.to_string();
        let found = tokio::task::spawn_blocking(move || credentials::lookup(Some(&path), &k))
            .await
            .map_err(|e| RegistryError::io("credential lookup failed", std::io::Error::other(e)))??;
        self.inner
            .creds
            .lock()
            .expect("credential cache")
            .insert(key.to_string(), (found.clone(), Instant::now()));
        Ok(found)
    }

    /// Asks a token server for a bearer token for `scopes`.
    async fn fetch_token(
        &self,
        ep: &Endpoint,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
        cred: Option<&Credential>,
    ) -> Result<TokenReply> {
        let mut url = Url::parse(realm).map_err(|_| RegistryError::Protocol {
            registry: ep.name.clone(),
            detail: format!("its token realm '{realm}' is not a URL"),
        })?;
        {
            let mut q = url.query_pairs_mut();
            if let Some(s) = service {
                q.append_pair("service", s);
            }
            for s in scopes {
                q.append_pair("scope", s);
            }
        }
        let realm_host = match url.port() {
            Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_string(),
        };
        let mut req = self.client_for(self.is_insecure(&realm_host))?.get(url);
        if let Some(c) = cred {
            req = req.basic_auth(&c.username, Some(&c.password));
        }
        let resp = req
            .send()
            .await
            .map_err(|e| RegistryError::from_send(&ep.name, "the token request", e))?;
        if matches!(resp.status(), StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
            return Err(RegistryError::Unauthorized {
                registry: ep.name.clone(),
            });
        }
        if !resp.status().is_success() {
            return Err(error_for(resp, &ep.name, "the token request", false).await);
        }
        let body = resp
            .bytes()
            .await
            .map_err(|e| RegistryError::from_send(&ep.name, "the token request", e))?;
        let reply: TokenReply = serde_json::from_slice(&body).map_err(|e| RegistryError::Protocol {
            registry: ep.name.clone(),
            detail: format!("its token server answered something that is not a token ({e})"),
        })?;
        if reply
            .token
            .as_deref()
            .or(reply.access_token.as_deref())
            .unwrap_or("")
            .is_empty()
        {
            return Err(RegistryError::Protocol {
                registry: ep.name.clone(),
                detail: "its token server answered without a token".into(),
            });
        }
        Ok(reply)
    }

    /// The `Authorization` header for a request needing `scopes`, if the registry wants
    /// one; `fresh` skips the token cache. The flag is true for a bearer token obtained
    /// with credentials.
    pub(crate) async fn authorization(
        &self,
        ep: &Endpoint,
        scopes: &[String],
        fresh: bool,
    ) -> Result<(Option<String>, bool)> {
        let challenge = ep.challenge.lock().expect("challenge").clone();
        match challenge {
            None => Ok((None, false)),
            Some(Challenge::Basic) => Ok((self.credentials(&ep.cred_key).await?.map(|c| basic(&c)), false)),
            Some(Challenge::Bearer { realm, service, .. }) => {
                let mut scopes = scopes.to_vec();
                scopes.sort();
                scopes.dedup();
                let key = (
                    format!("{realm} {}", service.as_deref().unwrap_or("")),
                    scopes.join(" "),
                );
                let cred = self.credentials(&ep.cred_key).await?;
                if !fresh {
                    if let Some(t) = self.inner.tokens.lock().expect("token cache").get(&key) {
                        return Ok((Some(format!("Bearer {t}")), cred.is_some()));
                    }
                }
                let reply = self
                    .fetch_token(ep, &realm, service.as_deref(), &scopes, cred.as_ref())
                    .await?;
                let token = reply.token.or(reply.access_token).unwrap_or_default();
                self.inner
                    .tokens
                    .lock()
                    .expect("token cache")
                    .put(key, token.clone(), reply.expires_in);
                Ok((Some(format!("Bearer {token}")), cred.is_some()))
            }
        }
    }

    // ----- login -----------------------------------------------------------------------

    /// Checks that `username`/`password` are accepted by the registry, the way `docker
    /// login` does: `GET /v2/` with Basic credentials or a token obtained with them.
    pub async fn check_login(&self, registry: &str, username: &str, password: &str) -> Result<()> {
        let target = self.target(registry)?;
        let ep = self
            .retrying(self.inner.cfg.max_retries, |_| self.endpoint(&target))
            .await?;
        let cred = Credential {
            username: username.to_string(),
            password: password.to_string(),
        };
        let challenge = ep.challenge.lock().expect("challenge").clone();
        let auth = match challenge {
            None => return Ok(()),
            Some(Challenge::Basic) => basic(&cred),
            Some(Challenge::Bearer { realm, service, .. }) => {
                let reply = self
                    .retrying(self.inner.cfg.max_retries, |_| {
                        self.fetch_token(&ep, &realm, service.as_deref(), &[], Some(&cred))
                    })
                    .await?;
                format!(
                    "Bearer {}",
                    reply.token.or(reply.access_token).unwrap_or_default()
                )
            }
        };
        let url = ep.url("v2/")?;
        let resp = self
            .retrying(self.inner.cfg.max_retries, |_| async {
                self.client_for(ep.insecure_tls)?
                    .request(Method::GET, url.clone())
                    .header(AUTHORIZATION, &auth)
                    .send()
                    .await
                    .map_err(|e| RegistryError::from_send(&ep.name, "the login check", e))
            })
            .await?;
        match resp.status() {
            s if s.is_success() => Ok(()),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(RegistryError::Unauthorized {
                registry: ep.name.clone(),
            }),
            _ => Err(error_for(resp, &ep.name, "the login check", false).await),
        }
    }
}

fn basic(c: &Credential) -> String {
    let raw = format!("{}:{}", c.username, c.password);
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw))
}

pub(crate) fn challenge_of(resp: &Response) -> Option<Challenge> {
    resp.headers()
        .get_all(reqwest::header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(parse_challenges)
        .reduce(|a, b| {
            if matches!(a, Challenge::Bearer { .. }) {
                a
            } else {
                b
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer() {
        let c = parse_challenges(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull",error="insufficient_scope""#,
        )
        .unwrap();
        assert_eq!(
            c,
            Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/ubuntu:pull".into()),
            }
        );
    }

    #[test]
    fn parses_basic_and_prefers_bearer() {
        assert_eq!(
            parse_challenges(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        let c = parse_challenges(r#"Basic realm="x", Bearer realm="https://a/t", service=reg"#).unwrap();
        assert_eq!(
            c,
            Challenge::Bearer {
                realm: "https://a/t".into(),
                service: Some("reg".into()),
                scope: None
            }
        );
        assert_eq!(parse_challenges("Negotiate"), None);
        assert_eq!(parse_challenges(""), None);
    }

    #[test]
    fn quoted_values_with_escapes_and_commas() {
        let c = parse_challenges(r#"bearer realm="https://a/t?x=1,2", scope="a \"b\"""#).unwrap();
        assert_eq!(
            c,
            Challenge::Bearer {
                realm: "https://a/t?x=1,2".into(),
                service: None,
                scope: Some("a \"b\"".into())
            }
        );
    }
}
