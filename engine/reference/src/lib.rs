//! Image references as docker reads them: `flask`, `user/app:v1`,
//! `host:5000/ns/app@sha256:…`, `localhost/x`, normalized to a fully qualified
//! `domain/path[:tag][@digest]` (`flask` → `docker.io/library/flask:latest`).
//!
//! Architecture invariant: this crate does no I/O and knows no registry protocol; it only
//! says what a string names.

use std::fmt;
use std::str::FromStr;

use berth_oci::Digest;

/// The registry that short names refer to.
pub const DEFAULT_DOMAIN: &str = "docker.io";
/// Docker Hub's namespace for official images (`flask` → `library/flask`).
pub const OFFICIAL_NAMESPACE: &str = "library";
pub const DEFAULT_TAG: &str = "latest";
const MAX_NAME_LEN: usize = 255;
const MAX_TAG_LEN: usize = 128;

/// A fully qualified image reference.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageRef {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("image reference is empty — give an image name such as `flask` or `user/app:v1`")]
    Empty,
    #[error("invalid image reference '{input}': {reason}")]
    Invalid { input: String, reason: String },
}

impl ReferenceError {
    fn invalid(input: &str, reason: impl Into<String>) -> Self {
        ReferenceError::Invalid {
            input: input.to_string(),
            reason: reason.into(),
        }
    }
}

impl ImageRef {
    /// Parses and normalizes a reference; with neither tag nor digest, the tag is `latest`
    /// (what `docker pull flask` does).
    pub fn parse(input: &str) -> Result<ImageRef, ReferenceError> {
        let mut r = Self::parse_name_only(input)?;
        if r.tag.is_none() && r.digest.is_none() {
            r.tag = Some(DEFAULT_TAG.to_string());
        }
        Ok(r)
    }

    /// Parses without adding the default tag (for `tag` targets and `images REPO` filters
    /// that need to know whether a tag was given).
    pub fn parse_name_only(input: &str) -> Result<ImageRef, ReferenceError> {
        if input.is_empty() {
            return Err(ReferenceError::Empty);
        }
        if input.trim() != input || input.contains(char::is_whitespace) {
            return Err(ReferenceError::invalid(input, "it contains white space"));
        }
        let (rest, digest) = match input.split_once('@') {
            Some((rest, d)) => {
                let digest = d
                    .parse::<Digest>()
                    .map_err(|e| ReferenceError::invalid(input, e.to_string()))?;
                (rest, Some(digest))
            }
            None => (input, None),
        };
        // A tag follows the last ':' only if no '/' comes after it (else it is a port).
        let (name, tag) = match rest.rfind(':') {
            Some(i) if !rest[i..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
            _ => (rest, None),
        };
        if let Some(tag) = tag {
            validate_tag(input, tag)?;
        }
        let (domain, path) = split_domain(name);
        validate_domain(input, &domain)?;
        validate_path(input, &path)?;
        if domain.len() + 1 + path.len() > MAX_NAME_LEN {
            return Err(ReferenceError::invalid(
                input,
                format!("the repository name is longer than {MAX_NAME_LEN} characters"),
            ));
        }
        Ok(ImageRef {
            domain,
            path,
            tag: tag.map(str::to_string),
            digest,
        })
    }

    /// Registry host, e.g. `docker.io` or `127.0.0.1:5000`.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// Repository path inside the registry, e.g. `library/flask`.
    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// What to ask the registry's manifest endpoint for: the digest if pinned, else the tag.
    pub fn manifest_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => DEFAULT_TAG.to_string(),
        }
    }

    /// `docker.io/library/flask`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The name as docker prints it: `flask`, `user/app`, `host:5000/app`.
    pub fn familiar_name(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            match self.path.strip_prefix("library/") {
                Some(short) if !short.contains('/') => short.to_string(),
                _ => self.path.clone(),
            }
        } else {
            self.name()
        }
    }

    /// The reference as docker prints it: `flask:latest`.
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_name();
        self.push_suffix(&mut s);
        s
    }

    /// The same repository with another tag and no digest.
    pub fn with_tag(&self, tag: &str) -> Result<ImageRef, ReferenceError> {
        validate_tag(tag, tag)?;
        Ok(ImageRef {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        })
    }

    /// The same repository pinned to `digest`, without a tag (`name@sha256:…`).
    pub fn with_digest(&self, digest: Digest) -> ImageRef {
        ImageRef {
            tag: None,
            digest: Some(digest),
            ..self.clone()
        }
    }

    fn push_suffix(&self, s: &mut String) {
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(&d.to_string());
        }
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = self.name();
        self.push_suffix(&mut s);
        f.write_str(&s)
    }
}

impl fmt::Debug for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ImageRef({self})")
    }
}

impl FromStr for ImageRef {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ImageRef::parse(s)
    }
}

/// Docker's rule: the first component is a registry domain only if it contains '.' or
/// ':', is `localhost`, or has an upper-case letter (repository paths cannot).
fn split_domain(name: &str) -> (String, String) {
    let (domain, path) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            (first.to_string(), rest.to_string())
        }
        _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
    };
    let domain = if domain == "index.docker.io" {
        DEFAULT_DOMAIN.to_string()
    } else {
        domain
    };
    let path = if domain == DEFAULT_DOMAIN && !path.contains('/') {
        format!("{OFFICIAL_NAMESPACE}/{path}")
    } else {
        path
    };
    (domain, path)
}

fn validate_tag(input: &str, tag: &str) -> Result<(), ReferenceError> {
    let mut chars = tag.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    if !first_ok || tag.len() > MAX_TAG_LEN || !chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
    {
        return Err(ReferenceError::invalid(
            input,
            format!(
                "tag '{tag}' must be 1 to {MAX_TAG_LEN} letters, digits, '_', '.' or '-', not starting with '.' or '-'"
            ),
        ));
    }
    Ok(())
}

fn validate_domain(input: &str, domain: &str) -> Result<(), ReferenceError> {
    let (host, port) = match domain.strip_prefix('[') {
        // IPv6 literal: [::1]:5000
        Some(rest) => match rest.split_once(']') {
            Some((v6, after)) if v6.parse::<std::net::Ipv6Addr>().is_ok() => (v6, after.strip_prefix(':')),
            _ => {
                return Err(ReferenceError::invalid(
                    input,
                    format!("'{domain}' is not a valid registry address"),
                ))
            }
        },
        None => match domain.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (domain, None),
        },
    };
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if !domain.starts_with('[') && !host.split('.').all(label_ok) {
        return Err(ReferenceError::invalid(
            input,
            format!("'{domain}' is not a valid registry host name"),
        ));
    }
    if let Some(port) = port {
        if port.is_empty()
            || port.len() > 5
            || !port.bytes().all(|b| b.is_ascii_digit())
            || port.parse::<u32>().map_or(true, |p| p > 65535)
        {
            return Err(ReferenceError::invalid(
                input,
                format!("'{port}' is not a valid port number"),
            ));
        }
    }
    Ok(())
}

/// Path components: lower-case alphanumerics separated by '.', '_', '__' or runs of '-'.
fn validate_path(input: &str, path: &str) -> Result<(), ReferenceError> {
    if path.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(ReferenceError::invalid(
            input,
            "repository names must be lower-case",
        ));
    }
    for component in path.split('/') {
        if !component_ok(component) {
            let shown = if component.is_empty() {
                "an empty name part"
            } else {
                component
            };
            return Err(ReferenceError::invalid(
                input,
                format!(
                    "'{shown}' is not a valid repository name part (use lower-case letters and digits, separated by '.', '_', '__' or '-')"
                ),
            ));
        }
    }
    Ok(())
}

fn component_ok(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !b[0].is_ascii_alphanumeric() || !b[b.len() - 1].is_ascii_alphanumeric() {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_lowercase() || b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        // A separator run: '.', '_', '__', or one or more '-'.
        let start = i;
        while i < b.len() && !b[i].is_ascii_alphanumeric() {
            i += 1;
        }
        let sep = &c[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-')) {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        ImageRef::parse(s).unwrap().to_string()
    }

    #[test]
    fn docker_normalization() {
        assert_eq!(norm("flask"), "docker.io/library/flask:latest");
        assert_eq!(norm("python:3.11-slim"), "docker.io/library/python:3.11-slim");
        assert_eq!(norm("user/app:v1"), "docker.io/user/app:v1");
        assert_eq!(norm("docker.io/flask"), "docker.io/library/flask:latest");
        assert_eq!(
            norm("index.docker.io/library/flask"),
            "docker.io/library/flask:latest"
        );
        assert_eq!(norm("localhost/x"), "localhost/x:latest");
        assert_eq!(norm("localhost:5000/x:1"), "localhost:5000/x:1");
        assert_eq!(norm("127.0.0.1:5000/ns/app:v2"), "127.0.0.1:5000/ns/app:v2");
        assert_eq!(norm("ghcr.io/a/b/c"), "ghcr.io/a/b/c:latest");
        assert_eq!(norm("[::1]:5000/app"), "[::1]:5000/app:latest");
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            norm(&format!("host:5000/ns/app@{d}")),
            format!("host:5000/ns/app@{d}")
        );
        assert_eq!(
            norm(&format!("app:v1@{d}")),
            format!("docker.io/library/app:v1@{d}")
        );
        assert_eq!(
            norm("my_app__x.y-z---w"),
            "docker.io/library/my_app__x.y-z---w:latest"
        );
    }

    #[test]
    fn familiar_forms() {
        let r = ImageRef::parse("flask").unwrap();
        assert_eq!(r.familiar(), "flask:latest");
        assert_eq!(r.familiar_name(), "flask");
        assert_eq!(ImageRef::parse("user/app:v1").unwrap().familiar(), "user/app:v1");
        assert_eq!(
            ImageRef::parse("docker.io/library/a/b").unwrap().familiar_name(),
            "library/a/b"
        );
        assert_eq!(
            ImageRef::parse("127.0.0.1:5000/x").unwrap().familiar(),
            "127.0.0.1:5000/x:latest"
        );
        assert_eq!(ImageRef::parse("flask").unwrap().manifest_reference(), "latest");
    }

    #[test]
    fn name_only_keeps_missing_tag() {
        let r = ImageRef::parse_name_only("flask").unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(r.to_string(), "docker.io/library/flask");
    }

    #[test]
    fn clear_errors() {
        let err = |s: &str| ImageRef::parse(s).unwrap_err().to_string();
        assert!(err("").contains("empty"));
        assert!(err("Flask").contains("lower-case"), "{}", err("Flask"));
        assert!(err("flask:").contains("tag ''"));
        assert!(err("flask:-x").contains("tag '-x'"));
        assert!(err(&format!("flask:{}", "a".repeat(129))).contains("tag"));
        assert!(err("flask@sha256:abc").contains("sha256:<64 hex digits>"));
        assert!(err("flask@md5:abc").contains("not supported"));
        assert!(err("a//b").contains("empty name part"));
        assert!(err("a/-b").contains("'-b'"));
        assert!(err("a/b.").contains("'b.'"));
        assert!(err("a/b...c").contains("'b...c'"));
        assert!(err("host:99999/x").contains("port"));
        assert!(err("host:/x").contains("port") || err("host:/x").contains("host"));
        assert!(err("fla sk").contains("white space"));
        assert!(err(&format!("a/{}", "b".repeat(260))).contains("longer than"));
        assert!(err("exa_mple.com/x").contains("host name"));
    }
}
