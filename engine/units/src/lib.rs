//! Docker's units, parsed and printed in one place: the CLI (flags), the Engine API (its
//! JSON's strings) and the engine crates all use these, so `-p`, `--memory` and "Up 3
//! minutes" mean the same everywhere.
//!
//! **Invariant:** pure. No I/O, no knowledge of containers or hosts; every error message
//! is one sentence that says what to type instead.

mod duration;
mod error;
mod hostpath;
mod ports;
mod size;

pub use duration::{go_duration, human_duration};
pub use error::UnitError;
pub use hostpath::{HostPaths, DRIVES};
pub use ports::{parse_publish, PortSpec, Proto};
pub use size::{parse_cpus, parse_size};
