//! What the API serves: the engine of the root (`berth_engine::Engine`) plus the one piece of
//! state that exists only in the API, the exec sessions between `exec create` and `start`.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::{Arc, Mutex};

use berth_engine::Engine;

use crate::exec::ExecSession;

pub struct Served {
    engine: Engine,
    pub execs: Mutex<HashMap<String, Arc<ExecSession>>>,
    /// How this engine's clients spell host paths (Windows drive paths on a Windows
    /// host's machine).
    pub host_paths: berth_units::HostPaths,
    /// While it says `false`, the host is still being prepared (a machine's guest loading
    /// the modules containers need, its network, its shares): see [`Served::until_set_up`].
    setup: Option<tokio::sync::watch::Receiver<bool>>,
}

impl Served {
    pub fn new(engine: Engine, host_paths: berth_units::HostPaths) -> Served {
        Served {
            engine,
            host_paths,
            execs: Mutex::new(HashMap::new()),
            setup: None,
        }
    }

    pub(crate) fn hold_until(&mut self, setup: tokio::sync::watch::Receiver<bool>) {
        self.setup = Some(setup);
    }

    /// Returns once the host is set up (at once when nothing was pending, or when whoever
    /// was setting it up is gone).
    pub async fn until_set_up(&self) {
        if let Some(setup) = &self.setup {
            let _ = setup.clone().wait_for(|done| *done).await;
        }
    }
}

impl Deref for Served {
    type Target = Engine;

    fn deref(&self) -> &Engine {
        &self.engine
    }
}

pub type Shared = Arc<Served>;
