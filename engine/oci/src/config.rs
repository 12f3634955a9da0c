//! The image configuration blob (docker's "image JSON"): what `image inspect` shows and
//! what the runtime uses to start a container.
//!
//! oci-spec's `ImageConfiguration` and `Config` hold the fields the image spec names. They
//! drop every other field, and images carry many that matter: docker's `docker_version`,
//! `container_config`, and in `config` `Healthcheck`, `OnBuild`, `Shell`, `ArgsEscaped`,
//! which the builder writes and `inspect` shows. So [`ImageConfig`] and [`ContainerConfig`]
//! are oci-spec's types plus the fields they do not know, kept as JSON and written back.

use std::collections::BTreeMap;
use std::ops::{Deref, DerefMut};

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::spec;
use crate::{Digest, DigestError, Platform};

/// The top-level fields `spec::ImageConfiguration` reads; every other one is kept aside.
/// `config` is read by [`ContainerConfig`]. (`known_fields_match_oci_spec` checks the lists.)
const IMAGE_FIELDS: &[&str] = &[
    "created",
    "author",
    "architecture",
    "os",
    "os.version",
    "os.features",
    "variant",
    "rootfs",
    "history",
];

/// The fields `spec::Config` reads.
const CONFIG_FIELDS: &[&str] = &[
    "User",
    "ExposedPorts",
    "Env",
    "Entrypoint",
    "Cmd",
    "Volumes",
    "WorkingDir",
    "Labels",
    "StopSignal",
];

/// Image configuration: oci-spec's `ImageConfiguration` (read through `Deref`), its
/// `config` as a [`ContainerConfig`], and the top-level fields oci-spec does not know.
/// A config read and written again (e.g. by a build step) loses nothing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImageConfig {
    /// Everything but `config`, which is always `None` here and lives in `config`.
    spec: spec::ImageConfiguration,
    config: Option<ContainerConfig>,
    /// Fields the image spec does not name, e.g. `docker_version`, `container_config`.
    pub extra: BTreeMap<String, Value>,
}

/// The run-time defaults of an image (`config` in the image JSON): oci-spec's `Config`
/// (through `Deref`), plus the fields it does not know (`Healthcheck`, `OnBuild`, `Shell`…).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainerConfig {
    spec: spec::Config,
    pub extra: BTreeMap<String, Value>,
}

impl ImageConfig {
    /// An empty config for `platform`.
    pub fn for_platform(platform: &Platform) -> ImageConfig {
        let mut c = ImageConfig::default();
        c.set_platform(platform);
        c
    }

    /// The container config, if the image has one. (Shadows oci-spec's `config()`, which
    /// is always `None` here.)
    pub fn config(&self) -> Option<&ContainerConfig> {
        self.config.as_ref()
    }

    /// The container config, created empty if the image has none.
    pub fn config_mut(&mut self) -> &mut ContainerConfig {
        self.config.get_or_insert_with(Default::default)
    }

    pub fn set_created(&mut self, created: Option<String>) {
        self.spec.set_created(created);
    }

    pub fn set_author(&mut self, author: Option<String>) {
        self.spec.set_author(author);
    }

    pub fn set_platform(&mut self, p: &Platform) {
        self.spec.set_os(p.spec().os().clone());
        self.spec.set_architecture(p.spec().architecture().clone());
        self.spec.set_variant(p.variant().map(str::to_string));
    }

    /// os, architecture and variant.
    pub fn platform(&self) -> Platform {
        Platform::new(
            &self.spec.os().to_string(),
            &self.spec.architecture().to_string(),
            self.spec.variant().as_deref(),
        )
    }

    pub fn push_history(&mut self, entry: spec::History) {
        self.spec.history_mut().get_or_insert_with(Vec::new).push(entry);
    }

    pub fn history_entries(&self) -> &[spec::History] {
        self.spec.history().as_deref().unwrap_or_default()
    }

    /// The layers' diff IDs, bottom first. oci-spec keeps them as strings; a config whose
    /// diff IDs are not sha256 digests is refused here.
    pub fn diff_ids(&self) -> Result<Vec<Digest>, DigestError> {
        self.spec.rootfs().diff_ids().iter().map(|d| d.parse()).collect()
    }

    pub fn set_diff_ids(&mut self, diff_ids: &[Digest]) {
        let rootfs = self.spec.rootfs_mut();
        rootfs.set_typ("layers".into());
        rootfs.set_diff_ids(diff_ids.iter().map(Digest::to_string).collect());
    }

    /// The JSON object `config` is written as (what `docker inspect` shows under `Config`).
    pub fn config_json(&self) -> Option<Map<String, Value>> {
        self.config.as_ref().map(ContainerConfig::to_json)
    }
}

impl Deref for ImageConfig {
    type Target = spec::ImageConfiguration;
    fn deref(&self) -> &Self::Target {
        &self.spec
    }
}

impl ContainerConfig {
    fn to_json(&self) -> Map<String, Value> {
        let mut m = object(serde_json::to_value(&self.spec).unwrap_or_default());
        for (k, v) in &self.extra {
            m.entry(k.clone()).or_insert_with(|| v.clone());
        }
        m
    }

    fn from_json(m: Map<String, Value>) -> Result<ContainerConfig, serde_json::Error> {
        let extra = m
            .iter()
            .filter(|(k, _)| !CONFIG_FIELDS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut spec: spec::Config = serde_json::from_value(Value::Object(m))?;
        // oci-spec reads these Go sets through a HashMap: put them back in a stable order.
        if let Some(mut ports) = spec.exposed_ports().clone() {
            ports.sort();
            spec.set_exposed_ports(Some(ports));
        }
        if let Some(mut volumes) = spec.volumes().clone() {
            volumes.sort();
            spec.set_volumes(Some(volumes));
        }
        Ok(ContainerConfig { spec, extra })
    }
}

impl Deref for ContainerConfig {
    type Target = spec::Config;
    fn deref(&self) -> &Self::Target {
        &self.spec
    }
}

impl DerefMut for ContainerConfig {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.spec
    }
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

// Both are written through `serde_json::Value`, whose maps are sorted (serde_json without
// `preserve_order`), so the bytes do not depend on oci-spec's HashMaps: the same config
// always gets the same digest (`serializes_deterministically`).
impl Serialize for ImageConfig {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = object(serde_json::to_value(&self.spec).map_err(serde::ser::Error::custom)?);
        if let Some(c) = &self.config {
            m.insert("config".into(), Value::Object(c.to_json()));
        }
        for (k, v) in &self.extra {
            m.entry(k.clone()).or_insert_with(|| v.clone());
        }
        m.serialize(s)
    }
}

impl<'de> Deserialize<'de> for ImageConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut m = Map::deserialize(d)?;
        let config = match m.remove("config") {
            Some(Value::Object(c)) => Some(ContainerConfig::from_json(c).map_err(D::Error::custom)?),
            Some(Value::Null) | None => None,
            Some(_) => return Err(D::Error::custom("`config` is not an object")),
        };
        let extra = m
            .iter()
            .filter(|(k, _)| !IMAGE_FIELDS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        // oci-spec requires these; docker does not, and neither did Berth.
        for k in ["architecture", "os"] {
            m.entry(k).or_insert_with(|| Value::String(String::new()));
        }
        m.entry("rootfs")
            .or_insert_with(|| serde_json::json!({"type": "layers", "diff_ids": []}));
        let spec = serde_json::from_value(Value::Object(m)).map_err(D::Error::custom)?;
        Ok(ImageConfig { spec, config, extra })
    }
}

impl Serialize for ContainerConfig {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl<'de> Deserialize<'de> for ContainerConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        ContainerConfig::from_json(Map::deserialize(d)?).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_unknown_fields() {
        let doc = r#"{"architecture":"amd64","os":"linux","docker_version":"20.10","config":{"Cmd":["sh"],"Healthcheck":{"Test":["NONE"]}},"rootfs":{"type":"layers","diff_ids":[]}}"#;
        let cfg: ImageConfig = serde_json::from_str(doc).unwrap();
        assert_eq!(
            cfg.config().unwrap().cmd().as_deref(),
            Some(&["sh".to_string()][..])
        );
        let back = serde_json::to_value(&cfg).unwrap();
        assert_eq!(back["docker_version"], "20.10");
        assert_eq!(back["config"]["Healthcheck"]["Test"][0], "NONE");
        assert_eq!(back["config"]["Cmd"][0], "sh");
    }

    /// What oci-spec alone does with the same document: the gap the wrapper fills.
    #[test]
    fn oci_spec_alone_drops_unknown_fields() {
        let doc = r#"{"architecture":"amd64","os":"linux","docker_version":"20.10","config":{"Cmd":["sh"],"Healthcheck":{"Test":["NONE"]},"OnBuild":["RUN x"],"Shell":["/bin/bash","-c"]},"rootfs":{"type":"layers","diff_ids":[]}}"#;
        let cfg: spec::ImageConfiguration = serde_json::from_str(doc).unwrap();
        let back = serde_json::to_value(&cfg).unwrap();
        assert!(back.get("docker_version").is_none());
        for k in ["Healthcheck", "OnBuild", "Shell"] {
            assert!(back["config"].get(k).is_none(), "{k}");
        }
    }

    /// Labels, ExposedPorts and Volumes are HashMaps (or read through one) in oci-spec;
    /// written as they are, two writes of one config could differ, and so its digest.
    #[test]
    fn serializes_deterministically() {
        let labels: String = (0..32).map(|i| format!(r#""l{i}":"v","#)).collect();
        let ports: String = (0..32).map(|i| format!(r#""{}/tcp":{{}},"#, 1000 + i)).collect();
        let doc = format!(
            r#"{{"architecture":"amd64","os":"linux","config":{{"Labels":{{{}}},"ExposedPorts":{{{}}}}},"rootfs":{{"type":"layers","diff_ids":[]}}}}"#,
            labels.trim_end_matches(','),
            ports.trim_end_matches(',')
        );
        let first = serde_json::to_vec(&serde_json::from_str::<ImageConfig>(&doc).unwrap()).unwrap();
        for _ in 0..8 {
            let again: ImageConfig = serde_json::from_str(&doc).unwrap();
            assert_eq!(serde_json::to_vec(&again).unwrap(), first);
        }
        let cfg: ImageConfig = serde_json::from_slice(&first).unwrap();
        let ports = cfg.config().unwrap().exposed_ports().clone().unwrap();
        assert_eq!(ports.first().map(String::as_str), Some("1000/tcp"));
        assert!(ports.windows(2).all(|w| w[0] <= w[1]));
    }

    /// The field lists above must name exactly what oci-spec reads.
    #[test]
    fn known_fields_match_oci_spec() {
        let mut cfg = spec::Config::default();
        cfg.set_user(Some("u".into()))
            .set_exposed_ports(Some(vec!["1/tcp".into()]))
            .set_env(Some(vec![]))
            .set_entrypoint(Some(vec![]))
            .set_cmd(Some(vec![]))
            .set_volumes(Some(vec!["/v".into()]))
            .set_working_dir(Some("/".into()))
            .set_labels(Some(Default::default()))
            .set_stop_signal(Some("SIGTERM".into()));
        let keys: Vec<String> = object(serde_json::to_value(&cfg).unwrap())
            .keys()
            .cloned()
            .collect();
        let mut want: Vec<&str> = CONFIG_FIELDS.to_vec();
        want.sort();
        assert_eq!(keys, want);

        let mut img = spec::ImageConfiguration::default();
        img.set_created(Some("c".into()))
            .set_author(Some("a".into()))
            .set_os_version(Some("1".into()))
            .set_os_features(Some(vec![]))
            .set_variant(Some("v".into()))
            .set_history(Some(vec![]));
        img.set_config(Some(cfg));
        let mut keys: Vec<String> = object(serde_json::to_value(&img).unwrap())
            .keys()
            .cloned()
            .collect();
        keys.retain(|k| k != "config");
        let mut want: Vec<&str> = IMAGE_FIELDS.to_vec();
        want.sort();
        assert_eq!(keys, want);
    }

    #[test]
    fn tolerates_missing_platform_and_rootfs() {
        let cfg: ImageConfig = serde_json::from_str(r#"{"config":{"Env":["A=1"]}}"#).unwrap();
        assert!(cfg.diff_ids().unwrap().is_empty());
        assert_eq!(
            cfg.config().unwrap().env().as_deref().map(<[String]>::len),
            Some(1)
        );
    }

    #[test]
    fn diff_ids_are_digests() {
        let mut cfg = ImageConfig::for_platform(&"linux/amd64".parse().unwrap());
        let d = Digest::of(b"layer");
        cfg.set_diff_ids(std::slice::from_ref(&d));
        assert_eq!(cfg.diff_ids().unwrap(), vec![d]);
        let bad: ImageConfig =
            serde_json::from_str(r#"{"rootfs":{"type":"layers","diff_ids":["md5:abc"]}}"#).unwrap();
        assert!(bad.diff_ids().is_err());
    }
}
