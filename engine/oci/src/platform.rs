//! Platforms (`linux/amd64`, `linux/arm64/v8`) and how an index entry is matched to one.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, rename = "os.version", skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
    #[serde(default, rename = "os.features", skip_serializing_if = "Vec::is_empty")]
    pub os_features: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("platform '{0}' is not of the form os/arch[/variant], e.g. linux/amd64 or linux/arm64/v8")]
pub struct PlatformError(String);

impl Platform {
    /// The platform of the machine Berth runs on, for Linux containers.
    pub fn host() -> Platform {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            other => other,
        };
        Platform {
            architecture: arch.to_string(),
            os: "linux".to_string(),
            os_version: None,
            os_features: Vec::new(),
            variant: None,
        }
        .normalized()
    }

    /// Fills in the variant defaults docker uses (arm64 → v8), and aliases (aarch64 → arm64).
    pub fn normalized(mut self) -> Platform {
        self.os = self.os.to_ascii_lowercase();
        self.architecture = match self.architecture.to_ascii_lowercase().as_str() {
            "x86_64" | "x86-64" => "amd64".into(),
            "aarch64" => "arm64".into(),
            "armhf" => {
                self.variant.get_or_insert_with(|| "v7".into());
                "arm".into()
            }
            other => other.into(),
        };
        if self.architecture == "arm64" && self.variant.is_none() {
            self.variant = Some("v8".into());
        }
        self
    }

    /// Whether an index entry with this platform serves a request for `want`.
    pub fn matches(&self, want: &Platform) -> bool {
        let have = self.clone().normalized();
        let want = want.clone().normalized();
        have.os == want.os
            && have.architecture == want.architecture
            && match (&have.variant, &want.variant) {
                (Some(h), Some(w)) => h == w,
                _ => true,
            }
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
            [os, arch, variant] => (*os, *arch, Some(variant.to_string())),
            _ => return Err(PlatformError(s.into())),
        };
        Ok(Platform {
            architecture: arch.into(),
            os: os.into(),
            os_version: None,
            os_features: Vec::new(),
            variant,
        }
        .normalized())
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
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
}
