//! What an alert is about: the kinds of event, the rule each belongs to (what a destination
//! subscribes to), and the events themselves with their facts, built from what the relay knows.
//! An event is stored in the outbox as JSON and rendered when it is posted.

use std::time::Duration;

use crate::account::{CredentialExpiry, Expiry};
use crate::clock::Timestamp;
use crate::queue::{DeadLetter, Paused};

/// What a destination subscribes to (`[[relay.alerts]] events`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Rule {
    /// A message given up on.
    DeadLetter,
    /// An account unavailable or paused too long, and its recovery.
    Account,
    /// A credential about to expire, or expired.
    Credential,
    /// The oldest queued message waiting too long.
    QueueAge,
    /// Too many messages waiting.
    QueueDepth,
    /// Deliveries a relay left unfinished, taken over (a crash).
    Restart,
}

impl Rule {
    /// Every rule, in the order the documentation lists them.
    pub(crate) const ALL: [Rule; 6] = [
        Rule::DeadLetter,
        Rule::Account,
        Rule::Credential,
        Rule::QueueAge,
        Rule::QueueDepth,
        Rule::Restart,
    ];

    /// Its name in the config file.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Rule::DeadLetter => "dead-letter",
            Rule::Account => "account",
            Rule::Credential => "credential",
            Rule::QueueAge => "queue-age",
            Rule::QueueDepth => "queue-depth",
            Rule::Restart => "restart",
        }
    }

    /// The rule named `name`.
    pub(crate) fn parse(name: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.name() == name)
    }
}

/// How bad it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Severity {
    /// Mail is not flowing, or was lost to the dead-letter area.
    Error,
    /// Something needs attention soon.
    Warning,
    /// A condition announced before has ended.
    Resolved,
}

impl Severity {
    /// Its name in the generic JSON body.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Resolved => "resolved",
        }
    }
}

/// The kind of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Kind {
    /// A message, or some of its recipients, given up on.
    DeadLettered,
    /// An account has not been able to deliver for longer than the threshold.
    AccountUnavailable,
    /// That account delivers again.
    AccountRecovered,
    /// A credential expires within 30, 7 or 1 days.
    CredentialExpiring,
    /// A credential has expired.
    CredentialExpired,
    /// The oldest queued message has waited longer than the threshold.
    QueueOld,
    /// No message waits that long any more.
    QueueOldResolved,
    /// More messages wait than the threshold.
    QueueDeep,
    /// Fewer wait again.
    QueueDeepResolved,
    /// Deliveries a relay left unfinished were taken over.
    Reclaimed,
}

impl Kind {
    /// Every kind.
    pub(crate) const ALL: [Kind; 10] = [
        Kind::DeadLettered,
        Kind::AccountUnavailable,
        Kind::AccountRecovered,
        Kind::CredentialExpiring,
        Kind::CredentialExpired,
        Kind::QueueOld,
        Kind::QueueOldResolved,
        Kind::QueueDeep,
        Kind::QueueDeepResolved,
        Kind::Reclaimed,
    ];

    /// Its name in the outbox and in the generic JSON body.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::DeadLettered => "dead-lettered",
            Kind::AccountUnavailable => "account-unavailable",
            Kind::AccountRecovered => "account-recovered",
            Kind::CredentialExpiring => "credential-expiring",
            Kind::CredentialExpired => "credential-expired",
            Kind::QueueOld => "queue-old",
            Kind::QueueOldResolved => "queue-old-resolved",
            Kind::QueueDeep => "queue-deep",
            Kind::QueueDeepResolved => "queue-deep-resolved",
            Kind::Reclaimed => "reclaimed",
        }
    }

    /// The kind named `name`.
    pub(crate) fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The rule a destination subscribes to for it.
    pub(crate) fn rule(self) -> Rule {
        match self {
            Kind::DeadLettered => Rule::DeadLetter,
            Kind::AccountUnavailable | Kind::AccountRecovered => Rule::Account,
            Kind::CredentialExpiring | Kind::CredentialExpired => Rule::Credential,
            Kind::QueueOld | Kind::QueueOldResolved => Rule::QueueAge,
            Kind::QueueDeep | Kind::QueueDeepResolved => Rule::QueueDepth,
            Kind::Reclaimed => Rule::Restart,
        }
    }

    /// How bad it is.
    pub(crate) fn severity(self) -> Severity {
        match self {
            Kind::DeadLettered | Kind::AccountUnavailable | Kind::CredentialExpired => Severity::Error,
            Kind::CredentialExpiring | Kind::QueueOld | Kind::QueueDeep | Kind::Reclaimed => Severity::Warning,
            Kind::AccountRecovered | Kind::QueueOldResolved | Kind::QueueDeepResolved => Severity::Resolved,
        }
    }

    /// The title of a summary of `n` events of this kind.
    pub(crate) fn summary(self, n: usize) -> String {
        match self {
            Kind::DeadLettered => format!("{n} messages given up on (dead-lettered)"),
            Kind::AccountUnavailable => format!("{n} accounts cannot deliver"),
            Kind::AccountRecovered => format!("{n} accounts deliver again"),
            Kind::CredentialExpiring => format!("{n} credentials expire soon"),
            Kind::CredentialExpired => format!("{n} credentials have expired"),
            Kind::QueueOld => format!("{n} alerts: messages wait too long"),
            Kind::QueueOldResolved => format!("{n} alerts: messages no longer wait too long"),
            Kind::QueueDeep => format!("{n} alerts: too many messages wait"),
            Kind::QueueDeepResolved => format!("{n} alerts: the queue is back under its threshold"),
            Kind::Reclaimed => format!("{n} times, deliveries left unfinished were taken over"),
        }
    }
}

/// One event.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Event {
    /// Its kind.
    pub(crate) kind: Kind,
    /// When it happened.
    pub(crate) at: Timestamp,
    /// One line: what happened.
    pub(crate) title: String,
    /// The account it is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) account: Option<String>,
    /// Details, in order: label and value.
    #[serde(default)]
    pub(crate) facts: Vec<(String, String)>,
}

/// A span of time as the alerts write it: `2h 5m`, `45s`.
fn span(d: Duration) -> String {
    let secs = d.as_secs();
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m {}s", secs / 60, secs % 60),
        3600..86_400 => format!("{}h {}m", secs / 3600, secs % 3600 / 60),
        _ => format!("{}d {}h", secs / 86_400, secs % 86_400 / 3600),
    }
}

/// At most `n` recipients, then how many more.
fn recipients(list: &[String], n: usize) -> String {
    let shown = list.iter().take(n).cloned().collect::<Vec<_>>().join(", ");
    match list.len().saturating_sub(n) {
        0 => shown,
        more => format!("{shown} and {more} more"),
    }
}

impl Event {
    fn new(kind: Kind, at: Timestamp, title: String, account: Option<&str>) -> Self {
        Self {
            kind,
            at,
            title,
            account: account.map(str::to_owned),
            facts: Vec::new(),
        }
    }

    fn fact(mut self, label: &str, value: impl Into<String>) -> Self {
        let value = value.into();
        if !value.is_empty() {
            self.facts.push((label.to_owned(), value));
        }
        self
    }

    /// Recipients of a message given up on.
    pub(crate) fn dead_lettered(dead: &DeadLetter) -> Self {
        let m = &dead.message;
        let count = m.recipients.len();
        let title = format!(
            "Gave up on a message to {count} recipient{} (account {})",
            if count == 1 { "" } else { "s" },
            m.account
        );
        Self::new(Kind::DeadLettered, dead.failed, title, Some(&m.account))
            .fact("Reply", dead.reply.as_str())
            .fact("Diagnosis", dead.diagnosis.as_str())
            .fact("Recipients", recipients(&m.recipients, 10))
            .fact("Sender", m.sender.as_str())
            .fact("Queue id", m.id.as_str())
            .fact("Attempts", dead.attempts.to_string())
            .fact("Received", m.received.to_string())
    }

    /// An account paused since `paused.since`, seen at `now`.
    pub(crate) fn account_unavailable(paused: &Paused, now: Timestamp) -> Self {
        let title = format!(
            "Account {} has not delivered for {}: its messages wait",
            paused.account,
            span(now.since(paused.since))
        );
        Self::new(Kind::AccountUnavailable, now, title, Some(&paused.account))
            .fact("Why", paused.reason.as_str())
            .fact("Since", paused.since.to_string())
            .fact("Next attempt", paused.until.to_string())
    }

    /// The account delivered again.
    pub(crate) fn account_recovered(account: &str, now: Timestamp, reply: &str) -> Self {
        let title = format!("Account {account} delivers again");
        Self::new(Kind::AccountRecovered, now, title, Some(account)).fact("Reply", reply)
    }

    /// A credential within 30, 7 or 1 days of expiry, or expired.
    pub(crate) fn credential(account: &str, expiry: &CredentialExpiry, now: Timestamp) -> Self {
        let kind = match expiry.at(now) {
            Expiry::Expired => Kind::CredentialExpired,
            _ => Kind::CredentialExpiring,
        };
        let warning = expiry.warning(now).unwrap_or_default();
        let title = format!("Account {account}: {warning}");
        Self::new(kind, now, title, Some(account))
            .fact("Credential", expiry.credential.to_string())
            .fact("Expires", expiry.at.to_string())
            .fact("Configured", expiry.origin.to_string())
    }

    /// The oldest message, received at `oldest`, has waited more than `threshold`.
    pub(crate) fn queue_old(oldest: Timestamp, queued: i64, threshold: Duration, now: Timestamp) -> Self {
        let title = format!(
            "The oldest queued message has waited {} (more than {})",
            span(now.since(oldest)),
            span(threshold)
        );
        Self::new(Kind::QueueOld, now, title, None)
            .fact("Waiting", queued.to_string())
            .fact("Oldest received", oldest.to_string())
    }

    /// No message has waited longer than `threshold` any more.
    pub(crate) fn queue_old_resolved(queued: i64, threshold: Duration, now: Timestamp) -> Self {
        let title = format!("No queued message has waited more than {} any more", span(threshold));
        Self::new(Kind::QueueOldResolved, now, title, None).fact("Waiting", queued.to_string())
    }

    /// More than `threshold` messages wait.
    pub(crate) fn queue_deep(queued: i64, threshold: u64, now: Timestamp) -> Self {
        let title = format!("{queued} messages wait in the queue (more than {threshold})");
        Self::new(Kind::QueueDeep, now, title, None)
    }

    /// At most `threshold` wait again.
    pub(crate) fn queue_deep_resolved(queued: i64, threshold: u64, now: Timestamp) -> Self {
        let title = format!("The queue is back to {queued} messages (at most {threshold})");
        Self::new(Kind::QueueDeepResolved, now, title, None)
    }

    /// This relay started after a run that ended without finishing `count` deliveries.
    pub(crate) fn restarted(count: u64, now: Timestamp) -> Self {
        let title = format!(
            "The relay started after a crash or a kill: {count} deliveries it had begun were put back in the queue"
        );
        Self::new(Kind::Reclaimed, now, title, None).fact(
            "What happens",
            "they are delivered again; a recipient may get a message twice if the crash came after Microsoft accepted it",
        )
    }

    /// `count` deliveries of `account` that another relay had begun and not finished were
    /// taken over.
    pub(crate) fn taken_over(account: &str, count: usize, now: Timestamp) -> Self {
        let title = format!(
            "{count} deliveries of account {account} that a relay began and never finished (it crashed, or lost the database) were taken over"
        );
        Self::new(Kind::Reclaimed, now, title, Some(account)).fact(
            "What happens",
            "they are delivered again; a recipient may get a message twice if the relay stopped after Microsoft accepted it",
        )
    }
}

/// The threshold an expiry has reached: 30, 7 or 1 days left, or 0 once expired; `None`
/// further out. Each is announced once per credential.
pub(crate) fn credential_stage(expiry: &CredentialExpiry, now: Timestamp) -> Option<u8> {
    if expiry.seconds_left(now) <= 0 {
        return Some(0);
    }
    match expiry.days_left(now) {
        ..=1 => Some(1),
        2..=7 => Some(7),
        8..=30 => Some(30),
        _ => None,
    }
}
