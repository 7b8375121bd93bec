//! Counters that tests and benchmarks read: token requests per client, SMTP connections,
//! commands, round trips, messages per mailbox and throttle events. Read them through
//! [`crate::Emulator::stats`] or `GET /_emulator/stats`.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::Serialize;

/// A snapshot of every counter.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Counters {
    /// Token requests by client id (empty string when the request named none).
    pub token_requests: BTreeMap<String, TokenCounts>,
    /// SMTP connections accepted.
    pub smtp_connections: u64,
    /// SMTP connections open now.
    pub smtp_connections_open: u64,
    /// SMTP commands received, by verb (`EHLO`, `MAIL`, …).
    pub commands: BTreeMap<String, u64>,
    /// Flights of client input: each time the server had answered everything it had received
    /// and then received more. Pipelined commands arriving together count once.
    pub round_trips: u64,
    /// AUTH outcomes and shapes.
    pub auth: AuthCounts,
    /// Messages accepted, by authenticated mailbox (the HVE account on HVE, the SMTP username
    /// on ACS).
    pub messages: BTreeMap<String, u64>,
    /// Messages accepted over SMTP, by endpoint (`exchange`, `hve`, `acs`).
    pub messages_by_endpoint: BTreeMap<String, u64>,
    /// Refusals of HVE's and ACS's own rules at MAIL FROM, RCPT TO and the end of the data, by
    /// cause (`external recipient on HVE`, `sender domain not linked`, …).
    pub submission_refusals: BTreeMap<String, u64>,
    /// Highest number of simultaneous authenticated Exchange connections seen, by mailbox.
    pub peak_connections: BTreeMap<String, u64>,
    /// Exchange's limits at work.
    pub throttle: ThrottleCounts,
    /// Faults that fired.
    pub faults_fired: u64,
    /// Tokens the managed identity endpoints issued.
    pub managed_identity_tokens: u64,
    /// Microsoft Graph requests (faults excluded).
    pub graph_requests: u64,
}

/// Token requests of one client.
#[derive(Debug, Default, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct TokenCounts {
    /// Tokens issued.
    pub issued: u64,
    /// Requests answered with an error.
    pub failed: u64,
}

/// AUTH outcomes.
#[derive(Debug, Default, Clone, Serialize)]
pub struct AuthCounts {
    /// `235` replies.
    pub succeeded: u64,
    /// `535`, `550` and other refusals.
    pub failed: u64,
    /// AUTH commands that carried an initial response on the AUTH line.
    pub initial_response: u64,
    /// AUTH commands that waited for `334` before sending credentials.
    pub two_step: u64,
    /// Longest AUTH command line, in octets including CRLF.
    pub longest_auth_line: u64,
    /// Refusals by cause. Many causes share `535 5.7.3`; this says which one it was.
    pub refusals: BTreeMap<String, u64>,
}

/// Throttling events.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct ThrottleCounts {
    /// Submissions delayed by the messages-per-minute limit.
    pub rate_delays: u64,
    /// Total delay imposed, in milliseconds.
    pub rate_delay_ms: u64,
    /// `432 4.3.2` replies (too many concurrent connections for a mailbox).
    pub thread_limit: u64,
    /// `554 5.2.0` replies (recipient quota for 24 hours exhausted, of an Exchange mailbox or
    /// of an HVE tenant).
    pub quota: u64,
    /// `451 4.7.500` replies (a Communication Services resource's quota per minute or hour).
    pub acs_quota: u64,
    /// `452 4.5.3` replies (too many recipients in one message).
    pub too_many_recipients: u64,
}

/// The live counters.
#[derive(Debug, Default)]
pub struct Stats {
    counters: Mutex<Counters>,
}

impl Stats {
    /// A copy of the counters now.
    pub fn snapshot(&self) -> Counters {
        self.lock().clone()
    }

    /// Resets every counter except open connections.
    pub fn reset(&self) {
        let mut c = self.lock();
        let open = c.smtp_connections_open;
        *c = Counters {
            smtp_connections_open: open,
            ..Counters::default()
        };
    }

    /// Updates the counters.
    pub fn update(&self, f: impl FnOnce(&mut Counters)) {
        f(&mut self.lock());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counters> {
        self.counters.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Counters {
    /// Token requests of a client.
    pub fn tokens_for(&self, client_id: &str) -> TokenCounts {
        self.token_requests
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(client_id))
            .map(|(_, v)| *v)
            .unwrap_or_default()
    }

    /// Tokens issued to every client.
    pub fn tokens_issued(&self) -> u64 {
        self.token_requests.values().map(|c| c.issued).sum()
    }

    /// Messages accepted for every mailbox.
    pub fn messages_total(&self) -> u64 {
        self.messages.values().sum()
    }

    /// Commands of one verb.
    pub fn command(&self, verb: &str) -> u64 {
        self.commands.get(verb).copied().unwrap_or(0)
    }
}
