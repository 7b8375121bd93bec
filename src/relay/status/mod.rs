//! The status page of the admin endpoint (`GET /`): what the relay is doing, at a glance, for
//! an office without a monitoring stack. Here the plain values the page shows, gathered once
//! per request from the accounts and the queue; `page.rs` renders them (pure, every value from
//! a message or a client escaped by construction).

mod access;
mod activity;
mod page;

use crate::account::Transport;
use crate::clock::Timestamp;
use crate::queue::{DeadEntry, Entry, Paused};
use crate::relay::limits::{SendLimits, Usage};
use crate::service::Service;

pub(crate) use access::Access;
pub(crate) use activity::{Activity, Counts, Delivery, Event, Inbound};
pub(crate) use page::{login_page, render};

/// Rows of the queue and of the dead-letter area on one page.
pub(crate) const PAGE_SIZE: usize = 50;

/// One account as the page shows it.
#[derive(Debug, Clone)]
pub(crate) struct AccountView {
    /// Its name in the config file.
    pub(crate) name: String,
    /// The Microsoft service it submits to.
    pub(crate) service: Service,
    /// The mailbox (ACS: the sender).
    pub(crate) mailbox: String,
    /// SMTP or Graph.
    pub(crate) transport: Transport,
    /// When the token held now expires (none yet, or no token needed).
    pub(crate) token_expires: Option<Timestamp>,
    /// Whether sending needs a token (not with a password, nor ACS with a secret).
    pub(crate) needs_token: bool,
    /// The credential that expires, and when.
    pub(crate) credential: Option<(String, Timestamp)>,
    /// What is used of the limits.
    pub(crate) usage: Usage,
    /// The limits.
    pub(crate) limits: SendLimits,
    /// Connections to Microsoft open now.
    pub(crate) connections: i64,
    /// Why the last attempt could not reach the service, if it could not.
    pub(crate) unavailable: Option<String>,
    /// No attempt before this (unreachable or refused).
    pub(crate) unavailable_until: Option<Timestamp>,
    /// Throttled: nothing sent before this.
    pub(crate) throttled_until: Option<Timestamp>,
    /// Microsoft's last answer to the account.
    pub(crate) last_reply: Option<LastReply>,
}

/// Microsoft's last answer to an account (or the error that stood for one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LastReply {
    /// When.
    pub(crate) at: Timestamp,
    /// The reply.
    pub(crate) reply: String,
    /// The catalog's cause and fix (empty when it has none, or for a success).
    pub(crate) diagnosis: String,
}

/// What the page is asked for: `?q=` filters the queue and the dead letters (an address, an
/// account, a queue id, a reply), `?page=` and `?dead=` page them (from 1).
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub(crate) struct Request {
    /// Search text.
    #[serde(default)]
    pub(crate) q: String,
    /// The queue's page.
    pub(crate) page: Option<usize>,
    /// The dead-letter area's page.
    pub(crate) dead: Option<usize>,
    /// What the last change did (`queue-retry-done`, …): one of [`notice`]'s codes.
    pub(crate) done: Option<String>,
}

/// The sentence for a change's outcome code; `None` for a code the page does not make, so
/// nothing a link carries is shown.
pub(crate) fn notice(code: &str) -> Option<&'static str> {
    Some(match code {
        "queue-retry-done" => "The message is due now.",
        "queue-delete-done" => "The message is deleted.",
        "dead-retry-done" => "The dead letter is back in the queue, due now.",
        "dead-delete-done" => "The dead letter is deleted.",
        "queue-retry-busy" | "queue-delete-busy" => "The message is being delivered now: try again in a moment.",
        "queue-retry-gone" | "queue-delete-gone" | "dead-retry-gone" | "dead-delete-gone" => {
            "It is no longer there (delivered, deleted or retried meanwhile)."
        }
        "failed" => "The queue could not be changed: see the relay's log.",
        _ => return None,
    })
}

/// One page of rows out of `total` matching ones.
#[derive(Debug, Clone)]
pub(crate) struct Paged<T> {
    /// The rows of this page.
    pub(crate) rows: Vec<T>,
    /// How many match.
    pub(crate) total: usize,
    /// This page, from 1.
    pub(crate) page: usize,
}

impl<T> Paged<T> {
    /// The rows of `all` that `keep` keeps, page `page` of them.
    pub(crate) fn of(all: Vec<T>, keep: impl Fn(&T) -> bool, page: Option<usize>) -> Self {
        let matching: Vec<T> = all.into_iter().filter(|row| keep(row)).collect();
        let total = matching.len();
        let pages = total.div_ceil(PAGE_SIZE).max(1);
        let page = page.unwrap_or(1).clamp(1, pages);
        let rows = matching
            .into_iter()
            .skip((page - 1) * PAGE_SIZE)
            .take(PAGE_SIZE)
            .collect();
        Self { rows, total, page }
    }

    /// How many pages there are.
    pub(crate) fn pages(&self) -> usize {
        self.total.div_ceil(PAGE_SIZE).max(1)
    }
}

/// Everything the page shows.
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    /// When it was taken.
    pub(crate) now: Timestamp,
    /// The relay's host name.
    pub(crate) hostname: String,
    /// Every account.
    pub(crate) accounts: Vec<AccountView>,
    /// Accounts the queue holds paused, and why.
    pub(crate) paused: Vec<Paused>,
    /// Messages waiting, in all.
    pub(crate) queued: usize,
    /// When the oldest waiting message arrived.
    pub(crate) oldest: Option<Timestamp>,
    /// Waiting messages per account.
    pub(crate) per_account: Vec<(String, usize)>,
    /// The page of waiting messages asked for.
    pub(crate) queue: Paged<Entry>,
    /// The page of dead letters asked for.
    pub(crate) dead: Paged<DeadEntry>,
    /// The search text.
    pub(crate) search: String,
    /// Why the queue could not be read, if it could not.
    pub(crate) queue_error: Option<String>,
    /// The session's CSRF token when logged in: then the page has retry and delete buttons.
    pub(crate) csrf: Option<String>,
    /// Whether an admin token is configured, so that one can log in.
    pub(crate) can_log_in: bool,
    /// What the last change did.
    pub(crate) notice: Option<&'static str>,
    /// Events in each of the last 60 minutes, oldest first.
    pub(crate) minutes: Vec<Counts>,
    /// Events in each of the last 24 hours, oldest first.
    pub(crate) hours: Vec<Counts>,
    /// The last deliveries, latest first.
    pub(crate) deliveries: Vec<Delivery>,
    /// The clients' side.
    pub(crate) inbound: Inbound,
}

/// Whether a waiting message matches the search `q` (case-insensitive, in its id, account,
/// sender, recipients, subject, client or last reply).
pub(crate) fn entry_matches(entry: &Entry, q: &str) -> bool {
    q.is_empty() || summary_matches(&entry.message, q) || entry.last_reply.as_deref().is_some_and(|r| contains(r, q))
}

/// Whether a dead letter matches the search `q`.
pub(crate) fn dead_matches(entry: &DeadEntry, q: &str) -> bool {
    q.is_empty() || summary_matches(&entry.message, q) || contains(&entry.reply, q)
}

fn summary_matches(m: &crate::queue::Summary, q: &str) -> bool {
    [&m.id, &m.account, &m.sender, &m.client]
        .into_iter()
        .any(|s| contains(s, q))
        || m.recipients.iter().any(|r| contains(r, q))
        || m.subject.as_deref().is_some_and(|s| contains(s, q))
}

fn contains(text: &str, q: &str) -> bool {
    text.to_lowercase().contains(&q.to_lowercase())
}

/// Waiting messages per account, busiest first.
pub(crate) fn count_per_account(entries: &[Entry]) -> Vec<(String, usize)> {
    let mut counts: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for entry in entries {
        *counts.entry(entry.message.account.as_str()).or_default() += 1;
    }
    let mut counts: Vec<(String, usize)> = counts.into_iter().map(|(a, n)| (a.to_owned(), n)).collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    counts
}

#[cfg(test)]
mod tests;
