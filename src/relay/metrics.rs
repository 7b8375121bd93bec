//! The relay's metrics, in Prometheus' text format at `/metrics`. An explicit registry (not a
//! process-wide recorder), so several relays in one process — tests, `demo` — stay apart.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Per-account series.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct AccountLabel {
    /// The account (config file name).
    pub(crate) account: String,
}

/// Upstream replies by code.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ReplyLabel {
    /// The account.
    pub(crate) account: String,
    /// Three-digit reply code, or `none` when the connection failed before a reply.
    pub(crate) code: String,
}

/// Per-account credential series.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct CredentialLabel {
    /// The account.
    pub(crate) account: String,
    /// `client secret` or `certificate`.
    pub(crate) credential: String,
}

/// Per-destination alert series.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct DestinationLabel {
    /// The destination's name (`[[relay.alerts]] name`).
    pub(crate) destination: String,
}

/// Every metric the relay keeps.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    /// The same events by minute and hour, and the last deliveries, for the status page.
    pub(crate) activity: crate::relay::status::Activity,
    /// Messages accepted from clients.
    pub(crate) accepted: Family<AccountLabel, Counter>,
    /// Messages delivered (to at least one recipient).
    pub(crate) delivered: Family<AccountLabel, Counter>,
    /// Messages deferred for a later attempt.
    pub(crate) deferred: Family<AccountLabel, Counter>,
    /// Messages (or recipients of them) given up on.
    pub(crate) dead_lettered: Family<AccountLabel, Counter>,
    /// From acceptance to Exchange's `250`, in seconds.
    pub(crate) delivery_latency: Histogram,
    /// Replies from Exchange (and failures without one).
    pub(crate) upstream_replies: Family<ReplyLabel, Counter>,
    /// Upstream connections open.
    pub(crate) upstream_connections: Family<AccountLabel, Gauge>,
    /// Token requests and failed token requests (updated at each scrape).
    pub(crate) token_requests: Family<AccountLabel, Counter>,
    /// Failed token requests.
    pub(crate) token_failures: Family<AccountLabel, Counter>,
    /// Inbound connections accepted.
    pub(crate) inbound_connections: Counter,
    /// Inbound connections refused by the connection limits.
    pub(crate) inbound_refused: Counter,
    /// Failed AUTH attempts.
    pub(crate) auth_failures: Counter,
    /// Messages in the queue (updated at each scrape).
    pub(crate) queue_depth: Gauge,
    /// Age of the oldest queued message in seconds (updated at each scrape).
    pub(crate) queue_oldest_seconds: Gauge,
    /// Messages in the dead-letter area (updated at each scrape).
    pub(crate) dead_letters: Gauge,
    /// Seconds until a credential expires, negative once it has (updated at each scrape).
    pub(crate) credential_expiry_seconds: Family<CredentialLabel, Gauge>,
    /// Alerts posted (a summary counts once).
    pub(crate) alerts_sent: Family<DestinationLabel, Counter>,
    /// Alert posts that failed (each is tried again).
    pub(crate) alerts_failed: Family<DestinationLabel, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every metric, prefixed `m365_relay_`.
    pub(crate) fn new() -> Self {
        let mut registry = Registry::with_prefix("m365_relay");
        let metrics = Self {
            activity: crate::relay::status::Activity::default(),
            accepted: Family::default(),
            delivered: Family::default(),
            deferred: Family::default(),
            dead_lettered: Family::default(),
            // 10 ms to about 2 hours.
            delivery_latency: Histogram::new([
                0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 7200.0,
            ]),
            upstream_replies: Family::default(),
            upstream_connections: Family::default(),
            token_requests: Family::default(),
            token_failures: Family::default(),
            inbound_connections: Counter::default(),
            inbound_refused: Counter::default(),
            auth_failures: Counter::default(),
            queue_depth: Gauge::default(),
            queue_oldest_seconds: Gauge::default(),
            dead_letters: Gauge::default(),
            credential_expiry_seconds: Family::default(),
            alerts_sent: Family::default(),
            alerts_failed: Family::default(),
            registry: Registry::default(),
        };
        let m = &metrics;
        registry.register(
            "messages_accepted",
            "Messages accepted from clients",
            m.accepted.clone(),
        );
        registry.register("messages_delivered", "Messages Exchange accepted", m.delivered.clone());
        registry.register(
            "messages_deferred",
            "Delivery attempts deferred for later",
            m.deferred.clone(),
        );
        registry.register(
            "messages_dead_lettered",
            "Messages given up on",
            m.dead_lettered.clone(),
        );
        registry.register(
            "delivery_latency_seconds",
            "From acceptance to Exchange's 250",
            m.delivery_latency.clone(),
        );
        registry.register(
            "upstream_replies",
            "Exchange's replies by code",
            m.upstream_replies.clone(),
        );
        registry.register(
            "upstream_connections",
            "Open connections to Exchange",
            m.upstream_connections.clone(),
        );
        registry.register(
            "token_requests",
            "Requests to the token endpoint",
            m.token_requests.clone(),
        );
        registry.register(
            "token_failures",
            "Failed requests to the token endpoint",
            m.token_failures.clone(),
        );
        registry.register(
            "inbound_connections",
            "Client connections accepted",
            m.inbound_connections.clone(),
        );
        registry.register(
            "inbound_refused",
            "Client connections refused by the connection limits",
            m.inbound_refused.clone(),
        );
        registry.register("auth_failures", "Failed AUTH attempts", m.auth_failures.clone());
        registry.register("queue_depth", "Messages waiting in the queue", m.queue_depth.clone());
        registry.register(
            "queue_oldest_seconds",
            "Age of the oldest queued message",
            m.queue_oldest_seconds.clone(),
        );
        registry.register(
            "dead_letters",
            "Messages in the dead-letter area",
            m.dead_letters.clone(),
        );
        registry.register(
            "credential_expiry_seconds",
            "Seconds until the account's client secret (as configured) or certificate expires",
            m.credential_expiry_seconds.clone(),
        );
        registry.register("alerts_sent", "Alerts posted to a webhook", m.alerts_sent.clone());
        registry.register(
            "alerts_failed",
            "Alert posts that failed and wait to be tried again",
            m.alerts_failed.clone(),
        );
        Self { registry, ..metrics }
    }

    /// The label for `account`.
    pub(crate) fn account(account: &str) -> AccountLabel {
        AccountLabel {
            account: account.to_owned(),
        }
    }

    /// The text exposition.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String");
        out
    }
}
