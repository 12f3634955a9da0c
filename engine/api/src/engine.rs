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
}

impl Served {
    pub fn new(engine: Engine, host_paths: berth_units::HostPaths) -> Served {
        Served {
            engine,
            host_paths,
            execs: Mutex::new(HashMap::new()),
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
