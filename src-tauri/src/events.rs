//! The engine's `/events` feed, subscribed once for the whole app and passed on to the
//! window as `engine-event` Tauri events, so the UI's stores refresh what changed instead
//! of polling. When the feed breaks (the engine went away, or Settings picked another
//! endpoint) the UI is told, and the feed subscribes again with backoff.

use std::time::Duration;

use bollard::models::{EventMessage, EventMessageTypeEnum};
use bollard::query_parameters::EventsOptions;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tauri::{AppHandle, Emitter, Manager};
use ts_rs::TS;

use crate::state::AppState;

/// The Tauri event every [`EngineEvent`] is emitted as.
pub const ENGINE_EVENT: &str = "engine-event";

/// What the feed tells the window.
#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case")]
#[ts(export)]
pub enum EngineEvent {
    /// One engine event: `action` (docker's word: `start`, `die`, `pull`, `destroy` …)
    /// happened to the `resource` with `id`.
    Changed {
        resource: Resource,
        action: String,
        id: String,
    },
    /// The feed is subscribed (again): anything may have changed while it was not.
    Connected,
    /// The feed broke; it subscribes again with backoff.
    Lost,
}

/// The kind of thing an engine event is about.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, TS, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum Resource {
    Container,
    Image,
    Volume,
    Network,
    /// Builder, daemon, plugin …: nothing a list shows.
    Other,
}

impl EngineEvent {
    pub fn from_message(m: &EventMessage) -> EngineEvent {
        let resource = match m.typ {
            Some(EventMessageTypeEnum::CONTAINER) => Resource::Container,
            Some(EventMessageTypeEnum::IMAGE) => Resource::Image,
            Some(EventMessageTypeEnum::VOLUME) => Resource::Volume,
            Some(EventMessageTypeEnum::NETWORK) => Resource::Network,
            _ => Resource::Other,
        };
        EngineEvent::Changed {
            resource,
            action: m.action.clone().unwrap_or_default(),
            id: m.actor.as_ref().and_then(|a| a.id.clone()).unwrap_or_default(),
        }
    }
}

/// Delays between attempts while the engine is away: doubling, capped.
#[derive(Debug)]
struct Backoff {
    next: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(250);
    const MAX: Duration = Duration::from_secs(10);

    fn new() -> Backoff {
        Backoff { next: Self::FIRST }
    }

    fn delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        d
    }

    fn reset(&mut self) {
        self.next = Self::FIRST;
    }
}

/// A subscription that lasted this long was a working one: the next break starts the
/// backoff from the beginning.
const HEALTHY: Duration = Duration::from_secs(5);

/// Start the feed; it runs as long as the app does.
pub fn spawn(app: AppHandle) {
    tauri::async_runtime::spawn(async move {
        let mut backoff = Backoff::new();
        let mut connected = false;
        loop {
            let state = app.state::<AppState>();
            let mut endpoint_changed = state.endpoint_changes();
            let outcome = match state.docker().await {
                Ok(docker) => match docker.ping().await {
                    Ok(_) => {
                        emit(&app, EngineEvent::Connected);
                        connected = true;
                        let since = tokio::time::Instant::now();
                        let mut stream = docker.events(None::<EventsOptions>);
                        let ended = loop {
                            tokio::select! {
                                _ = endpoint_changed.changed() => break "the endpoint changed".to_string(),
                                item = stream.next() => match item {
                                    Some(Ok(m)) => {
                                        backoff.reset();
                                        emit(&app, EngineEvent::from_message(&m));
                                    }
                                    Some(Err(e)) => break e.to_string(),
                                    None => break "the engine closed the event stream".to_string(),
                                },
                            }
                        };
                        if since.elapsed() >= HEALTHY {
                            backoff.reset();
                        }
                        ended
                    }
                    Err(e) => e.to_string(),
                },
                Err(e) => e.message,
            };
            if connected {
                tracing::info!("engine event feed ended ({outcome}); subscribing again");
                emit(&app, EngineEvent::Lost);
                connected = false;
            }
            let delay = backoff.delay();
            tokio::select! {
                _ = endpoint_changed.changed() => backoff.reset(),
                _ = tokio::time::sleep(delay) => {}
            }
        }
    });
}

fn emit(app: &AppHandle, event: EngineEvent) {
    let _ = app.emit(ENGINE_EVENT, event);
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::EventActor;

    #[test]
    fn engine_messages_name_the_resource_action_and_id() {
        let m = EventMessage {
            typ: Some(EventMessageTypeEnum::CONTAINER),
            action: Some("die".into()),
            actor: Some(EventActor {
                id: Some("abc".into()),
                attributes: None,
            }),
            ..Default::default()
        };
        assert_eq!(
            EngineEvent::from_message(&m),
            EngineEvent::Changed {
                resource: Resource::Container,
                action: "die".into(),
                id: "abc".into()
            }
        );
        let builder = EventMessage {
            typ: Some(EventMessageTypeEnum::BUILDER),
            ..Default::default()
        };
        assert!(matches!(
            EngineEvent::from_message(&builder),
            EngineEvent::Changed {
                resource: Resource::Other,
                ..
            }
        ));
    }

    #[test]
    fn the_wire_shape_is_tagged_by_type() {
        let v = serde_json::to_value(EngineEvent::Changed {
            resource: Resource::Image,
            action: "pull".into(),
            id: "flask".into(),
        })
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type": "changed", "resource": "image", "action": "pull", "id": "flask"})
        );
        assert_eq!(
            serde_json::to_value(EngineEvent::Lost).unwrap(),
            serde_json::json!({"type": "lost"})
        );
    }

    #[test]
    fn backoff_doubles_to_a_cap_and_starts_over() {
        let mut b = Backoff::new();
        let seen: Vec<u128> = (0..8).map(|_| b.delay().as_millis()).collect();
        assert_eq!(seen, [250, 500, 1000, 2000, 4000, 8000, 10000, 10000]);
        b.reset();
        assert_eq!(b.delay(), Backoff::FIRST);
    }
}
