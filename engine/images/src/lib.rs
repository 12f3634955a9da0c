//! Image services: pull, push, tag, remove, list, save and load. This crate is where the
//! store, the registry client and the layer unpacker meet; none of them knows the others.
//!
//! Architecture invariant: an image becomes visible (record + tag) only after every blob
//! it references is verified and stored and every layer is unpacked. A pull that dies
//! half-way leaves verified blobs and resumable partial downloads, never a half image.

mod archive;
mod distribution;
mod error;
mod local;
mod progress;
mod pull;
mod push;
mod search;

pub use berth_registry::SearchResult;
pub use distribution::Distribution;
pub use error::ImageError;
pub use local::{HistoryRow, ImageSummary, PruneReport, RemoveEvent};
pub use progress::{NoProgress, Progress, ProgressEvent};
pub use pull::{PullOptions, PullOutcome};
pub use push::PushOutcome;

use std::collections::BTreeMap;

use berth_events::{Action, Events, Kind};
use berth_registry::RegistryClient;
use berth_store::Store;

/// The image half of the engine. Cheap to clone; safe to share between tasks.
#[derive(Clone)]
pub struct ImageService {
    store: Store,
    registry: RegistryClient,
    events: Events,
}

impl ImageService {
    pub fn new(store: Store, registry: RegistryClient) -> Self {
        ImageService {
            store,
            registry,
            events: Events::none(),
        }
    }

    /// Emits this service's events (pull, push, tag, untag, delete, load) on `events`.
    pub fn with_events(mut self, events: Events) -> Self {
        self.events = events;
        self
    }

    pub fn events(&self) -> &Events {
        &self.events
    }

    /// An image event: `id` is the reference or the image ID, `name` docker's attribute.
    pub(crate) fn emit(&self, action: Action, id: &str, name: &str) {
        let attrs = BTreeMap::from([("name".to_string(), name.to_string())]);
        self.events.emit(Kind::Image, action, id, attrs);
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn registry(&self) -> &RegistryClient {
        &self.registry
    }
}
