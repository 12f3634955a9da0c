//! Platforms (`linux/amd64`, `linux/arm64/v8`) and how an index entry is matched to one.
//!
//! `Platform` is oci-spec's `Platform` with what Berth adds: parsing `os/arch[/variant]`,
//! printing it, docker's normalisation (aarch64 → arm64, arm64 → arm64/v8) and matching.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::spec;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Platform(spec::Platform);

#[derive(Debug, thiserror::Error)]
#[error("platform '{0}' is not of the form os/arch[/variant], e.g. linux/amd64 or linux/arm64/v8")]
pub struct PlatformError(String);

impl Platform {
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Platform {
        let mut p = spec::Platform::default();
        p.set_os(os.into());
        p.set_architecture(architecture.into());
        p.set_variant(variant.map(str::to_string));
        Platform(p)
    }

    /// The platform of the machine Berth runs on, for Linux containers.
    pub fn host() -> Platform {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            other => other,
        };
        Platform::new("linux", arch, None).normalized()
    }

    pub fn os(&self) -> String {
        self.0.os().to_string()
    }

    pub fn architecture(&self) -> String {
        self.0.architecture().to_string()
    }

    pub fn variant(&self) -> Option<&str> {
        self.0.variant().as_deref()
    }

    pub fn spec(&self) -> &spec::Platform {
        &self.0
    }

    /// Fills in the variant defaults docker uses (arm64 → v8), and aliases (aarch64 → arm64).
    pub fn normalized(self) -> Platform {
        let os = self.os().to_ascii_lowercase();
        let mut variant = self.variant().map(str::to_string);
        let arch = match self.architecture().to_ascii_lowercase().as_str() {
            "x86_64" | "x86-64" => "amd64".to_string(),
            "aarch64" => "arm64".to_string(),
            "armhf" => {
                variant.get_or_insert_with(|| "v7".into());
                "arm".to_string()
            }
            other => other.to_string(),
        };
        if arch == "arm64" && variant.is_none() {
            variant = Some("v8".into());
        }
        let mut p = self.0;
        p.set_os(os.as_str().into());
        p.set_architecture(arch.as_str().into());
        p.set_variant(variant);
        Platform(p)
    }

    /// Whether an index entry with this platform serves a request for `want`.
    pub fn matches(&self, want: &Platform) -> bool {
        let have = self.clone().normalized();
        let want = want.clone().normalized();
        have.os() == want.os()
            && have.architecture() == want.architecture()
            && match (have.variant(), want.variant()) {
                (Some(h), Some(w)) => h == w,
                _ => true,
            }
    }
}

impl From<spec::Platform> for Platform {
    fn from(p: spec::Platform) -> Platform {
        Platform(p)
    }
}

impl From<Platform> for spec::Platform {
    fn from(p: Platform) -> spec::Platform {
        p.0
    }
}

impl FromStr for Platform {
    type Err = PlatformError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split('/').collect();
        if parts
            .iter()
            .any(|p| p.is_empty() || p.contains(char::is_whitespace))
        {
            return Err(PlatformError(s.into()));
        }
        let (os, arch, variant) = match parts.as_slice() {
            [os, arch] => (*os, *arch, None),
            [os, arch, variant] => (*os, *arch, Some(*variant)),
            _ => return Err(PlatformError(s.into())),
        };
        Ok(Platform::new(os, arch, variant).normalized())
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os(), self.architecture())?;
        if let Some(v) = self.variant() {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalizes() {
        let p: Platform = "linux/arm64".parse().unwrap();
        assert_eq!(p.to_string(), "linux/arm64/v8");
        let p: Platform = "linux/x86_64".parse().unwrap();
        assert_eq!(p.to_string(), "linux/amd64");
        assert!("linux".parse::<Platform>().is_err());
        assert!("linux//".parse::<Platform>().is_err());
        assert!("a/b/c/d".parse::<Platform>().is_err());
    }

    #[test]
    fn variant_matching() {
        let v7: Platform = "linux/arm/v7".parse().unwrap();
        let v6: Platform = "linux/arm/v6".parse().unwrap();
        assert!(!v6.matches(&v7));
        let plain: Platform = "linux/arm".parse().unwrap();
        assert!(plain.matches(&v7));
    }

    /// Image records in `metadata.json` hold a platform; the stored shape must not change.
    #[test]
    fn serializes_as_before() {
        let p: Platform = "linux/arm/v7".parse().unwrap();
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"{"architecture":"arm","os":"linux","variant":"v7"}"#
        );
        let back: Platform = serde_json::from_str(r#"{"architecture":"amd64","os":"linux"}"#).unwrap();
        assert_eq!(back, Platform::new("linux", "amd64", None));
    }

    /// Gap in oci-spec 0.10: its `Platform` names the field `os_version`, not the spec's
    /// `os.version` (nor `os.features`), so Windows index entries lose them when parsed.
    /// Berth only selects Linux platforms and never re-serialises an index it pulled
    /// (it stores the bytes it received), so nothing it does depends on them.
    #[test]
    fn oci_spec_drops_os_version() {
        let doc = r#"{"architecture":"amd64","os":"windows","os.version":"10.0.17763.1"}"#;
        let p: Platform = serde_json::from_str(doc).unwrap();
        assert_eq!(p.spec().os_version(), &None);
        assert!(!serde_json::to_string(&p).unwrap().contains("10.0.17763.1"));
    }
}
