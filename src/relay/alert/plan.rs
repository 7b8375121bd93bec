//! Which stored alerts go out now (pure). Alerts are grouped by destination and kind; a group
//! goes when its destination got no alert of that kind within the window, as one post: the
//! event alone, or a summary of all of them. So a thousand dead letters in a minute give one
//! alert at once and one summary a window later, not a thousand.

use std::collections::HashMap;
use std::time::Duration;

use super::{Event, Kind};
use crate::clock::Timestamp;
use crate::queue::{LastSent, PendingAlert};

/// An alert that could not be delivered for this long is dropped (and logged).
pub(crate) const RETENTION: Duration = Duration::from_secs(3 * 24 * 3600);

/// Alerts to post together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Batch {
    /// The destination's name.
    pub(crate) destination: String,
    /// Their kind.
    pub(crate) kind: Kind,
    /// The outbox rows.
    pub(crate) seqs: Vec<i64>,
    /// Their events, oldest first.
    pub(crate) events: Vec<Event>,
    /// The most failed posts of any of them.
    pub(crate) attempts: u32,
}

/// What to do with the due alerts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Post these now.
    pub(crate) batches: Vec<Batch>,
    /// Remove these, and why: a destination no longer configured, a damaged row, or too old.
    pub(crate) dropped: Vec<(i64, String)>,
}

/// Plans the `pending` alerts at `now`, given when each destination last got each kind.
pub(crate) fn plan(
    pending: Vec<PendingAlert>,
    sent: &[LastSent],
    destinations: &[&str],
    now: Timestamp,
    window: Duration,
) -> Plan {
    let last: HashMap<(&str, &str), Timestamp> = sent
        .iter()
        .map(|s| ((s.destination.as_str(), s.kind.as_str()), s.at))
        .collect();
    let mut plan = Plan::default();
    let mut groups: Vec<Batch> = Vec::new();
    for row in pending {
        if !destinations.contains(&row.destination.as_str()) {
            plan.dropped.push((
                row.seq,
                format!("no destination named `{}` is configured any more", row.destination),
            ));
            continue;
        }
        if now.since(row.created) > RETENTION {
            plan.dropped
                .push((row.seq, format!("not delivered to `{}` within 3 days", row.destination)));
            continue;
        }
        let event = match (Kind::parse(&row.kind), serde_json::from_str::<Event>(&row.event)) {
            (Some(kind), Ok(event)) if event.kind == kind => event,
            (_, Err(e)) => {
                plan.dropped
                    .push((row.seq, format!("the stored event cannot be read: {e}")));
                continue;
            }
            _ => {
                plan.dropped
                    .push((row.seq, format!("unknown kind `{}`", row.kind.escape_debug())));
                continue;
            }
        };
        let waiting = last
            .get(&(row.destination.as_str(), row.kind.as_str()))
            .is_some_and(|at| now.since(*at) < window);
        if waiting {
            continue;
        }
        match groups
            .iter_mut()
            .find(|b| b.destination == row.destination && b.kind == event.kind)
        {
            Some(batch) => {
                batch.seqs.push(row.seq);
                batch.attempts = batch.attempts.max(row.attempts);
                batch.events.push(event);
            }
            None => groups.push(Batch {
                destination: row.destination,
                kind: event.kind,
                seqs: vec![row.seq],
                events: vec![event],
                attempts: row.attempts,
            }),
        }
    }
    plan.batches = groups;
    plan
}
