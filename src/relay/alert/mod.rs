//! Alerts: webhooks that tell an operator when mail stops flowing, by a path other than the mail
//! path that is failing (never SMTP, never Graph).
//!
//! - `event`: what an alert is about; `render`: the body for each format (pure);
//! - `plan`: which stored alerts go out now, alone or as one summary (pure);
//! - `watch`: the conditions looked at periodically (an account paused too long, a credential
//!   near expiry, the queue's age and depth);
//! - `post`: the sender, which posts from the outbox (`queue/outbox.rs`) with retries.
//!
//! An event becomes one outbox row per destination that subscribes to it, in the same
//! transaction as what it is about where there is one (a dead letter), so an alert is never
//! lost to a crash; a row leaves the outbox only once its destination answered 2xx.

mod event;
mod plan;
mod post;
mod render;
mod watch;

#[cfg(test)]
mod tests;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::Notify;

use crate::clock::Timestamp;
use crate::queue::NewAlert;
use crate::secret::Secret;

pub(crate) use event::{Event, Kind, Rule, Severity, credential_stage};
/// For the alert bodies' property (`properties/alert.rs`).
#[cfg(any(test, feature = "properties"))]
pub(crate) use plan::plan;
pub(crate) use post::run as post;
#[cfg(any(test, feature = "properties"))]
pub(crate) use render::{Notice, body};
pub(crate) use watch::run as watch;

/// The body a destination takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// m365-mailer's own JSON (`docs/relay.md` describes it).
    Json,
    /// A Microsoft Teams Workflows webhook: a message with an Adaptive Card.
    Teams,
    /// A Slack incoming webhook, or one that speaks its format (Mattermost, Rocket.Chat).
    Slack,
    /// An ntfy topic.
    Ntfy,
}

impl Format {
    /// Every format.
    pub(crate) const ALL: [Format; 4] = [Format::Json, Format::Teams, Format::Slack, Format::Ntfy];

    /// Its name in the config file.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Teams => "teams",
            Format::Slack => "slack",
            Format::Ntfy => "ntfy",
        }
    }
}

/// Where alerts go.
#[derive(Clone)]
pub(crate) struct Destination {
    /// Its name: the outbox's rows name it, so it must stay the same across restarts.
    pub(crate) name: String,
    /// The body it takes.
    pub(crate) format: Format,
    /// The URL posted to: a credential (whoever has it can post), never logged.
    pub(crate) url: Secret,
    /// ntfy: the topic, from the URL's last segment (`url` is then the server's).
    pub(crate) topic: Option<Secret>,
    /// What it subscribes to.
    pub(crate) rules: Vec<Rule>,
}

/// Without the URL.
impl std::fmt::Debug for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Destination")
            .field("name", &self.name)
            .field("format", &self.format)
            .field("rules", &self.rules)
            .finish_non_exhaustive()
    }
}

/// The alert settings (`[relay.alerting]` and `[[relay.alerts]]`).
#[derive(Debug, Clone)]
pub(crate) struct AlertSettings {
    /// Where alerts go; none turns alerting off.
    pub(crate) destinations: Vec<Destination>,
    /// The name alerts give this relay.
    pub(crate) instance: String,
    /// An account paused this long is announced.
    pub(crate) unavailable_after: Duration,
    /// The oldest queued message older than this is announced.
    pub(crate) queue_age_over: Duration,
    /// More queued messages than this are announced.
    pub(crate) queue_depth_over: u64,
    /// A destination gets at most one alert of each kind in this time; what comes meanwhile
    /// goes in one summary at its end.
    pub(crate) window: Duration,
    /// How often the conditions are looked at.
    pub(crate) check_every: Duration,
}

impl AlertSettings {
    /// No destination: nothing is stored or sent.
    pub(crate) fn off(instance: &str) -> Self {
        Self {
            destinations: Vec::new(),
            instance: instance.to_owned(),
            unavailable_after: Duration::from_secs(15 * 60),
            queue_age_over: Duration::from_secs(3600),
            queue_depth_over: 1000,
            window: Duration::from_secs(5 * 60),
            check_every: Duration::from_secs(30),
        }
    }
}

/// The relay's alerting: its settings (replaced on reload) and the sender's wake-up; cheap to
/// clone.
#[derive(Debug, Clone)]
pub(crate) struct Alerts {
    settings: Arc<RwLock<Arc<AlertSettings>>>,
    stored: Arc<Notify>,
}

impl Alerts {
    /// Alerting with `settings`.
    pub(crate) fn new(settings: AlertSettings) -> Self {
        Self {
            settings: Arc::new(RwLock::new(Arc::new(settings))),
            stored: Arc::new(Notify::new()),
        }
    }

    /// The settings now.
    pub(crate) fn settings(&self) -> Arc<AlertSettings> {
        Arc::clone(&self.settings.read().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Takes new settings (a reload); alerts stored for a destination no longer configured
    /// are dropped when their turn comes.
    pub(crate) fn replace(&self, settings: AlertSettings) {
        *self.settings.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(settings);
        self.stored.notify_one();
    }

    /// Whether any destination is configured.
    pub(crate) fn on(&self) -> bool {
        !self.settings().destinations.is_empty()
    }

    /// The outbox rows for `event`: one per destination that subscribes to it.
    pub(crate) fn rows(&self, event: &Event) -> Vec<NewAlert> {
        let settings = self.settings();
        let subscribed: Vec<&Destination> = settings
            .destinations
            .iter()
            .filter(|d| d.rules.contains(&event.kind.rule()))
            .collect();
        if subscribed.is_empty() {
            return Vec::new();
        }
        let json = serde_json::to_string(event).expect("an event serialises");
        subscribed
            .into_iter()
            .map(|d| NewAlert {
                destination: d.name.clone(),
                kind: event.kind.name().to_owned(),
                event: json.clone(),
                at: event.at,
            })
            .collect()
    }

    /// Alerts were stored: the sender looks at the outbox now.
    pub(crate) fn stored(&self) {
        self.stored.notify_one();
    }

    /// Waits until alerts are stored (or the settings change).
    async fn wait_stored(&self) {
        self.stored.notified().await;
    }
}

/// The condition key of an account's unavailability.
pub(crate) fn account_key(account: &str) -> String {
    format!("account:{account}")
}

/// The condition key of a credential's expiry stage (a new credential is a new key).
fn credential_key(account: &str, expires: Timestamp, stage: u8) -> String {
    format!("credential:{account}:{}:{stage}", expires.unix_millis())
}
