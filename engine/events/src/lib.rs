//! The engine's event feed. Each service emits a typed [`Event`] when it changes state —
//! the container service on create, start, exit, removal…, the image service on pull,
//! tag, delete…, the network and volume services on theirs — so every change is seen
//! whoever asked for it (a CLI, the window, the docker CLI, a restart policy). The Engine
//! API's `/events` turns them into docker's JSON; nothing else formats them.
//!
//! **Invariant:** emitting never blocks and never fails: with nobody listening (a shim,
//! a test) an event is dropped. The last [`RECENT`] events are kept for `?since=`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use tokio::sync::broadcast;

/// How many past events [`Events::history`] keeps.
pub const RECENT: usize = 1000;

/// What changed: docker's event `Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Container,
    Image,
    Network,
    Volume,
}

/// docker's event `Action`s that Berth emits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Create,
    Start,
    /// The container's process ended (its exit code).
    Die {
        exit_code: i32,
    },
    Kill {
        signal: i32,
    },
    Stop,
    Restart,
    Pause,
    Unpause,
    Destroy,
    ExecCreate {
        exec_id: String,
    },
    Pull,
    Push,
    Tag,
    Untag,
    Delete,
    Build,
    /// A container joined the network.
    Connect {
        container: String,
    },
    /// A container left the network.
    Disconnect {
        container: String,
    },
    /// A container got a new name (its old one travels in the event's attributes).
    Rename,
    /// A container's healthcheck changed its verdict.
    HealthStatus {
        healthy: bool,
    },
}

impl Action {
    /// docker's spelling.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Start => "start",
            Action::Die { .. } => "die",
            Action::Kill { .. } => "kill",
            Action::Stop => "stop",
            Action::Restart => "restart",
            Action::Pause => "pause",
            Action::Unpause => "unpause",
            Action::Destroy => "destroy",
            Action::ExecCreate { .. } => "exec_create",
            Action::Pull => "pull",
            Action::Push => "push",
            Action::Tag => "tag",
            Action::Untag => "untag",
            Action::Delete => "delete",
            Action::Build => "build",
            Action::Connect { .. } => "connect",
            Action::Disconnect { .. } => "disconnect",
            Action::Rename => "rename",
            Action::HealthStatus { healthy: true } => "health_status: healthy",
            Action::HealthStatus { healthy: false } => "health_status: unhealthy",
        }
    }
}

/// One change.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub kind: Kind,
    pub action: Action,
    /// The container or network ID, the image reference or ID, the volume name.
    pub id: String,
    /// docker's `Actor.Attributes`: `name`, `image`, the container's labels, …
    pub attributes: BTreeMap<String, String>,
    pub time: SystemTime,
}

/// A handle on one engine's feed; cheap to clone. [`Events::none`] drops everything.
#[derive(Clone, Default)]
pub struct Events {
    feed: Option<Arc<Feed>>,
}

struct Feed {
    tx: broadcast::Sender<Event>,
    recent: Mutex<VecDeque<Event>>,
}

impl Events {
    /// A live feed that subscribers can follow.
    pub fn feed() -> Events {
        let (tx, _) = broadcast::channel(1024);
        Events {
            feed: Some(Arc::new(Feed {
                tx,
                recent: Mutex::new(VecDeque::new()),
            })),
        }
    }

    /// No feed: events are dropped (a shim, a one-off service).
    pub fn none() -> Events {
        Events::default()
    }

    pub fn emit(&self, kind: Kind, action: Action, id: &str, attributes: BTreeMap<String, String>) {
        let Some(feed) = &self.feed else { return };
        let ev = Event {
            kind,
            action,
            id: id.to_string(),
            attributes,
            time: SystemTime::now(),
        };
        if let Ok(mut recent) = feed.recent.lock() {
            if recent.len() >= RECENT {
                recent.pop_front();
            }
            recent.push_back(ev.clone());
        }
        let _ = feed.tx.send(ev);
    }

    /// Events from now on (`None` for [`Events::none`]).
    pub fn subscribe(&self) -> Option<broadcast::Receiver<Event>> {
        self.feed.as_ref().map(|f| f.tx.subscribe())
    }

    /// How many follow the feed now.
    pub fn subscribers(&self) -> usize {
        self.feed.as_ref().map_or(0, |f| f.tx.receiver_count())
    }

    /// The last [`RECENT`] events, oldest first.
    pub fn history(&self) -> Vec<Event> {
        self.feed
            .as_ref()
            .and_then(|f| f.recent.lock().ok().map(|r| r.iter().cloned().collect()))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscribers_and_history_see_each_event_once_and_none_drops_them() {
        let events = Events::feed();
        let mut rx = events.subscribe().unwrap();
        events.emit(
            Kind::Container,
            Action::Die { exit_code: 3 },
            "abc",
            BTreeMap::new(),
        );
        let got = rx.try_recv().unwrap();
        assert_eq!(
            (got.kind, got.action.name(), got.id.as_str()),
            (Kind::Container, "die", "abc")
        );
        assert!(rx.try_recv().is_err());
        assert_eq!(events.history().len(), 1);
        for i in 0..RECENT + 5 {
            events.emit(Kind::Image, Action::Tag, &i.to_string(), BTreeMap::new());
        }
        let h = events.history();
        assert_eq!(h.len(), RECENT);
        assert_eq!(h.last().unwrap().id, (RECENT + 4).to_string());
        let none = Events::none();
        none.emit(Kind::Volume, Action::Create, "v", BTreeMap::new());
        assert!(none.subscribe().is_none() && none.history().is_empty());
    }
}
