//! `WWW-Authenticate` challenges and the bearer-token flow of the distribution spec.

use std::collections::HashMap;
use std::time::{Duration, Instant};

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
