//! Content digests (`sha256:<64 hex>`) and an incremental hasher.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

use crate::spec;

/// A content digest. Only sha256 is accepted: it is the only algorithm registries and
/// engines use in practice, and accepting others would mean storing what we cannot verify.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    hex: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DigestError {
    #[error("digest '{0}' is not of the form sha256:<64 hex digits>")]
    Malformed(String),
    #[error("digest algorithm '{0}' is not supported; only sha256 is")]
    UnsupportedAlgorithm(String),
}

impl Digest {
    /// The digest of `data`.
    pub fn of(data: &[u8]) -> Digest {
        Digest {
            hex: hex::encode(Sha256::digest(data)),
        }
    }

    /// Builds a digest from 64 lowercase hex digits.
    pub fn from_hex(hex: &str) -> Result<Digest, DigestError> {
        if hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            Ok(Digest { hex: hex.to_string() })
        } else {
            Err(DigestError::Malformed(format!("sha256:{hex}")))
        }
    }

    pub fn algorithm(&self) -> &'static str {
        "sha256"
    }

    /// The 64 hex digits.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The first 12 hex digits, as docker prints image and layer IDs.
    pub fn short(&self) -> &str {
        &self.hex[..12]
    }

    /// A digest oci-spec parsed. oci-spec accepts any algorithm; Berth only sha256, whose
    /// value oci-spec has already checked to be 64 lowercase hex digits.
    pub fn from_spec(d: &spec::Digest) -> Result<Digest, DigestError> {
        match d.algorithm() {
            spec::DigestAlgorithm::Sha256 => Ok(Digest {
                hex: d.digest().to_string(),
            }),
            other => Err(DigestError::UnsupportedAlgorithm(other.to_string())),
        }
    }

    /// The same digest as oci-spec's type, for building its descriptors.
    pub fn to_spec(&self) -> spec::Digest {
        spec::Digest::try_from(self.to_string())
            .expect("sha256:<64 lowercase hex> is a digest oci-spec accepts")
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once(':') {
            Some(("sha256", hex)) => Digest::from_hex(hex).map_err(|_| DigestError::Malformed(s.to_string())),
            Some((alg, _))
                if !alg.is_empty()
                    && alg
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"+._-".contains(&b)) =>
            {
                Err(DigestError::UnsupportedAlgorithm(alg.to_string()))
            }
            _ => Err(DigestError::Malformed(s.to_string())),
        }
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Hashes bytes as they pass, so content is verified in the same pass that writes it.
#[derive(Clone, Default)]
pub struct Sha256Writer {
    hasher: Sha256,
    len: u64,
}

impl Sha256Writer {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn update(&mut self, data: &[u8]) {
        self.hasher.update(data);
        self.len += data.len() as u64;
    }

    /// Bytes hashed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn finish(self) -> Digest {
        Digest {
            hex: hex::encode(self.hasher.finalize()),
        }
    }
}

impl std::io::Write for Sha256Writer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let d = Digest::of(b"");
        assert_eq!(
            d.to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(d.to_string().parse::<Digest>().unwrap(), d);
        assert_eq!(d.short(), "e3b0c44298fc");
    }

    #[test]
    fn rejects_bad_digests() {
        assert!(matches!(
            "sha256:abc".parse::<Digest>(),
            Err(DigestError::Malformed(_))
        ));
        assert!(matches!(
            "sha512:abcd".parse::<Digest>(),
            Err(DigestError::UnsupportedAlgorithm(a)) if a == "sha512"
        ));
        let upper = format!("sha256:{}", "A".repeat(64));
        assert!(upper.parse::<Digest>().is_err());
        assert!("nocolon".parse::<Digest>().is_err());
    }

    #[test]
    fn converts_to_and_from_oci_spec() {
        let d = Digest::of(b"x");
        assert_eq!(d.to_spec().to_string(), d.to_string());
        assert_eq!(Digest::from_spec(&d.to_spec()).unwrap(), d);
        let sha512: spec::Digest = format!("sha512:{}", "a".repeat(128)).parse().unwrap();
        assert_eq!(
            Digest::from_spec(&sha512),
            Err(DigestError::UnsupportedAlgorithm("sha512".into()))
        );
    }

    #[test]
    fn incremental_matches_oneshot() {
        let mut w = Sha256Writer::new();
        w.update(b"hello ");
        w.update(b"world");
        assert_eq!(w.len(), 11);
        assert_eq!(w.finish(), Digest::of(b"hello world"));
    }
}
