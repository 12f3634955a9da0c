//! The persisted state: networks and endpoints in `state_dir/state.json`, read and
//! rewritten (write, fsync, rename) only while the flock on `state_dir/lock` is held, and
//! kept readable by older engines sharing the file.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::path::PathBuf;

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::{Endpoint, NetError, NetworkConfig, NetworkManager};

#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct State {
    #[serde(default)]
    pub(crate) networks: BTreeMap<String, NetworkConfig>,
    /// Keyed by [`endpoint_key`].
    #[serde(default)]
    pub(crate) endpoints: BTreeMap<String, Endpoint>,
}

/// A container's first interface (`eth0`, or the bare namespace of "none") is keyed by the
/// container id, as before containers could be on several networks, so older engines
/// sharing the state file still find it; the others by `<id>/<interface>` (an id contains
/// no '/'), so the interface survives an older engine rewriting the file without the
/// fields it does not know.
fn endpoint_key(e: &Endpoint) -> String {
    if e.interface == "eth0" || e.interface.is_empty() {
        e.container_id.clone()
    } else {
        format!("{}/{}", e.container_id, e.interface)
    }
}

impl State {
    /// Makes the endpoints consistent whoever wrote the file: interfaces named by their key
    /// win over a field an older engine dropped (read back as `eth0`), each container keeps
    /// one default route (on its first interface that claims one), and keys are rebuilt.
    fn normalize(&mut self) {
        let consistent = self.endpoints.iter().all(|(k, e)| *k == endpoint_key(e))
            && self.endpoints.values().all(|e| {
                !e.default_route
                    || !self.endpoints.values().any(|o| {
                        o.container_id == e.container_id
                            && o.default_route
                            && interface_number(&o.interface) < interface_number(&e.interface)
                    })
            });
        if consistent {
            return;
        }
        let all = std::mem::take(&mut self.endpoints);
        let mut eps: Vec<Endpoint> = all
            .into_iter()
            .map(|(k, mut e)| {
                if let Some(interface) = k.strip_prefix(&format!("{}/", e.container_id)) {
                    if interface.starts_with("eth") {
                        e.interface = interface.to_string();
                    }
                }
                e
            })
            .collect();
        eps.sort_by_key(|e| interface_number(&e.interface));
        let mut routed = std::collections::HashSet::new();
        for e in &mut eps {
            if e.default_route && !routed.insert(e.container_id.clone()) {
                e.default_route = false;
            }
        }
        self.endpoints = eps.into_iter().map(|e| (endpoint_key(&e), e)).collect();
    }

    pub(crate) fn insert(&mut self, e: Endpoint) {
        self.endpoints.insert(endpoint_key(&e), e);
    }

    /// Removes and returns container `id`'s endpoint on `network`.
    pub(crate) fn remove(&mut self, id: &str, network: &str) -> Option<Endpoint> {
        let key = self
            .endpoints
            .iter()
            .find(|(_, e)| e.container_id == id && e.network == network)
            .map(|(k, _)| k.clone())?;
        self.endpoints.remove(&key)
    }

    /// The endpoints of container `id`, in interface order (eth0, eth1, …).
    pub(crate) fn of(&self, id: &str) -> Vec<Endpoint> {
        let mut eps: Vec<Endpoint> = self
            .endpoints
            .values()
            .filter(|e| e.container_id == id)
            .cloned()
            .collect();
        eps.sort_by_key(|e| interface_number(&e.interface));
        eps
    }

    pub(crate) fn remove_all_of(&mut self, id: &str) -> Vec<Endpoint> {
        let eps = self.of(id);
        for e in &eps {
            self.remove(id, &e.network);
        }
        eps
    }
}

fn interface_number(name: &str) -> u32 {
    name.strip_prefix("eth")
        .and_then(|n| n.parse().ok())
        .unwrap_or(u32::MAX)
}

pub(crate) struct Locked {
    _lock: Flock<File>,
    path: PathBuf,
    pub(crate) state: State,
}

impl Locked {
    pub(crate) fn save(&self) -> Result<(), NetError> {
        let tmp = self.path.with_extension("json.tmp");
        let data = serde_json::to_vec_pretty(&self.state).expect("state serialises");
        std::fs::write(&tmp, data).map_err(|e| NetError::io("write", &tmp, e))?;
        File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| NetError::io("sync", &tmp, e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| NetError::io("replace", &self.path, e))
    }
}

impl NetworkManager {
    pub(crate) fn lock(&self) -> Result<Locked, NetError> {
        let lock_path = self.state_dir.join("lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| NetError::io("open", &lock_path, e))?;
        let lock = Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|(_, e)| NetError::io("lock", &lock_path, e.into()))?;
        let path = self.state_dir.join("state.json");
        let mut state: State = match std::fs::read(&path) {
            Ok(data) => serde_json::from_slice(&data).map_err(|e| NetError::CorruptState {
                path: path.clone(),
                reason: e.to_string(),
            })?,
            Err(e) if e.kind() == ErrorKind::NotFound => State::default(),
            Err(e) => return Err(NetError::io("read", &path, e)),
        };
        state.normalize();
        Ok(Locked {
            _lock: lock,
            path,
            state,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_of_older_engines_is_read_and_keys_stay_compatible() {
        // Before multi-network support: keyed by container id, no interface fields.
        let old = r#"{"networks": {}, "endpoints": {"c1": {"container_id": "c1", "network": "n",
            "ip": "10.9.9.2", "prefix": 24, "gateway": "10.9.9.1", "mac": "", "netns": "/x",
            "aliases": ["web"]}}}"#;
        let mut st: State = serde_json::from_str(old).unwrap();
        st.normalize();
        let ep = st.of("c1").pop().unwrap();
        assert_eq!((ep.interface.as_str(), ep.default_route), ("eth0", true));
        let mut second = ep.clone();
        second.network = "m".into();
        second.interface = "eth1".into();
        second.default_route = false;
        st.insert(second);
        // eth0 keeps the bare id (older engines still find it), eth1 is keyed with its network.
        let keys: Vec<&String> = st.endpoints.keys().collect();
        assert_eq!(keys, ["c1", "c1/eth1"]);
        // An older engine rewriting the file drops the fields it does not know: the key
        // still names the interface, and only the first interface keeps the default route.
        let mut rewritten: State = serde_json::from_str(
            &serde_json::to_string(&st)
                .unwrap()
                .replace(r#","interface":"eth1","default_route":false"#, ""),
        )
        .unwrap();
        assert_eq!(rewritten.endpoints["c1/eth1"].interface, "eth0", "as read back");
        rewritten.normalize();
        let eps = rewritten.of("c1");
        assert_eq!(
            eps.iter()
                .map(|e| (e.interface.as_str(), e.default_route))
                .collect::<Vec<_>>(),
            [("eth0", true), ("eth1", false)]
        );
        assert_eq!(st.of("c1").len(), 2);
        assert_eq!(st.remove("c1", "m").unwrap().interface, "eth1");
        assert!(st.remove("c1", "m").is_none());
        assert_eq!(st.remove_all_of("c1").len(), 1);
        assert!(st.endpoints.is_empty());
    }
}
