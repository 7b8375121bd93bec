//! The catalog of failures: every Entra ID error and Exchange Online reply the guides and the
//! fact sheet list, with its likely causes in order, the fix, whether retrying or waiting for
//! propagation helps, whom it blames, and where Microsoft documents it. The data is split by
//! family (`exchange_*.rs`, `entra.rs`, `graph.rs`, `symptoms.rs`); here, the types and finding
//! the entry for a reply, an Entra error, a Graph error or a symptom. `diagnosis.rs` narrows an
//! entry's causes with evidence and fills in the user's ids.
//!
//! Placeholders in fixes: `{tenant}`, `{client_id}`, `{mailbox}`, `{sp_id}` (the enterprise
//! application's object id), `{from}`, `{scope}`, `{smtp_host}`, `{smtp_port}`. In `commands`
//! they are filled in quoted for PowerShell.
//!
//! A failure Microsoft adds is taught here, in one entry: the exit code, the relay's outcome and
//! `doctor` follow from it through [`crate::verdict`].

mod causes;
mod diagnosis;
mod entra;
mod exchange_auth;
mod exchange_limits;
mod exchange_policy;
mod graph;
mod services;
mod symptoms;

pub(crate) use diagnosis::{Diagnosis, Evidence, Ids, Rendered, explain};

use crate::smtp::Reply;

/// What a catalog entry recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    /// An SMTP reply: its code, its enhanced code, and a fragment its text must contain when
    /// entries share the codes.
    Smtp {
        /// Three-digit code; 0 matches any.
        code: u16,
        /// Enhanced status code.
        enhanced: &'static str,
        /// Case-insensitive fragment of the text.
        text: Option<&'static str>,
    },
    /// An Entra ID error.
    Aadsts(u32),
    /// A Microsoft Graph error: HTTP status, `error.code` (empty matches any) and a fragment
    /// its message must contain when entries share both.
    Graph {
        /// HTTP status.
        status: u16,
        /// `error.code`.
        code: &'static str,
        /// Case-insensitive fragment of `error.message`.
        text: Option<&'static str>,
    },
    /// Something observed without a server reply (a port that does not answer, an untrusted
    /// certificate) or reported by another tool in its own words.
    Symptom(Symptom),
}

/// Whether trying again can succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Try again later without changing anything.
    Transient,
    /// Change something first.
    Permanent,
    /// Exchange throttles the sender for a period it decides.
    AfterThrottling,
    /// Exchange refuses everything from the account — the tenant, the mailbox or this IP is
    /// blocked, or the mailbox is full — until an administrator acts. The messages are not at
    /// fault: a queue keeps them and pauses the account.
    AfterAccountFix,
}

/// Whom a failure blames: what must change before it goes away. With [`Retry`] it decides the
/// exit code of `send` and what the relay's queue does (`verdict.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blame {
    /// The message: its content, its size, a recipient. Other messages go.
    Message,
    /// The message's sender: the account may not send as its From. Other senders go.
    Sender,
    /// The account's credential or its permissions, granted in Entra ID or Exchange.
    Credential,
    /// A setting on this machine: tenant, scope, host, trust anchors, a file.
    Configuration,
    /// The account as Exchange sees it: its limits, its reputation, a block on the mailbox or
    /// the tenant.
    Account,
    /// The way to Microsoft: DNS, the network, a firewall, a service that is down.
    Path,
    /// m365-mailer itself (a bug, or an answer that is not what the protocol says).
    Software,
}

/// Failures observed without a server's reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Symptom {
    /// The SMTP or HTTPS port does not answer.
    PortBlocked,
    /// The token lacks what Exchange needs (audience, role, tenant).
    TokenClaims,
    /// A host name does not resolve.
    Dns,
    /// The server's certificate is not trusted.
    TlsUntrusted,
    /// The server does not offer `AUTH XOAUTH2`.
    Xoauth2NotOffered,
    /// The ExchangeOnlineManagement module is missing or broken (the setup script's step).
    ExchangeModule,
    /// OAuth is configured but nothing is sent.
    NotSending,
    /// HVE would refuse recipients outside the tenant's accepted domains.
    HveExternalRecipients,
}

/// One possible cause and how to fix it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cause {
    /// Stable identifier, used by `doctor --json` and tests.
    pub(crate) id: &'static str,
    /// What is wrong.
    pub(crate) why: &'static str,
    /// What to do, in words (portal steps).
    pub(crate) fix: &'static str,
    /// Commands that do it (Exchange Online PowerShell, az).
    pub(crate) commands: &'static [&'static str],
}

/// A failure the catalog knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    /// Stable identifier (`aadsts` for Entra entries: see [`Entry::id`]).
    pub(crate) key: &'static str,
    /// What it recognises.
    pub(crate) signal: Signal,
    /// One line on what happened.
    pub(crate) summary: &'static str,
    /// Likely causes, most likely first.
    pub(crate) causes: &'static [Cause],
    /// Retry classification.
    pub(crate) retry: Retry,
    /// Whom it blames: what must change for it to go away.
    pub(crate) blame: Blame,
    /// Whether a recent change may simply not have propagated yet (5–15 minutes, sometimes
    /// longer).
    pub(crate) propagation: bool,
    /// Where Microsoft documents it.
    pub(crate) link: &'static str,
}

impl Entry {
    /// Stable identifier: `smtp/535-5.7.3`, `aadsts/7000215`, `symptom/port-blocked`.
    pub(crate) fn id(&self) -> String {
        match self.signal {
            Signal::Aadsts(code) => format!("aadsts/{code}"),
            Signal::Graph { status, code, text } => {
                format!(
                    "graph/{status}/{code}{}",
                    text.map_or(String::new(), |t| format!("/{t}"))
                )
            }
            _ => self.key.to_owned(),
        }
    }

    /// Where to read more: Entra's code lookup for AADSTS entries.
    pub(crate) fn link(&self) -> String {
        match self.signal {
            Signal::Aadsts(code) => format!("https://login.microsoftonline.com/error?code={code}"),
            _ => self.link.to_owned(),
        }
    }
}

/// Every entry, family by family.
pub(crate) fn entries() -> impl Iterator<Item = &'static Entry> {
    [
        exchange_auth::ENTRIES,
        exchange_limits::ENTRIES,
        exchange_policy::ENTRIES,
        entra::ENTRIES,
        symptoms::ENTRIES,
        graph::ENTRIES,
        services::ENTRIES,
    ]
    .into_iter()
    .flatten()
}

/// The entry for an SMTP reply: the one whose code, enhanced code and text match most closely.
pub(crate) fn for_reply(reply: &Reply) -> Option<&'static Entry> {
    let enhanced = reply.enhanced()?.to_string();
    let text = reply.message().to_ascii_lowercase();
    let candidates = entries().filter(|e| match e.signal {
        Signal::Smtp {
            code,
            enhanced: e_enhanced,
            text: fragment,
        } => {
            (code == 0 || code == reply.code())
                && enhanced_matches(e_enhanced, &enhanced)
                && fragment.is_none_or(|f| text.contains(&f.to_ascii_lowercase()))
        }
        _ => false,
    });
    // A text-specific entry beats a generic one for the same codes.
    candidates.max_by_key(|e| matches!(e.signal, Signal::Smtp { text: Some(_), .. }))
}

/// `4.7.500` in the catalog stands for the whole 4.7.500–4.7.699 range Microsoft documents.
fn enhanced_matches(pattern: &str, actual: &str) -> bool {
    if pattern == "4.7.500" {
        return actual
            .strip_prefix("4.7.")
            .and_then(|d| d.parse::<u16>().ok())
            .is_some_and(|d| (500..=699).contains(&d));
    }
    pattern == actual
}

/// The entry for an AADSTS code.
pub(crate) fn for_aadsts(code: u32) -> Option<&'static Entry> {
    entries().find(|e| e.signal == Signal::Aadsts(code))
}

/// The entry for a Graph error: status and code, the entry with a text fragment first.
pub(crate) fn for_graph(error: &crate::graph::GraphError) -> Option<&'static Entry> {
    let message = error.message.to_ascii_lowercase();
    let mut candidates: Vec<&'static Entry> = entries()
        .filter(|e| match e.signal {
            Signal::Graph { status, code, text } => {
                status == error.status
                    && (code.is_empty() || code == error.code)
                    && text.is_none_or(|t| message.contains(&t.to_ascii_lowercase()))
            }
            _ => false,
        })
        .collect();
    candidates.sort_by_key(|e| !matches!(e.signal, Signal::Graph { text: Some(_), .. }));
    candidates.first().copied()
}

/// The entry for a symptom (the catalog's tests check that each has one).
pub(crate) fn symptom(symptom: Symptom) -> Option<&'static Entry> {
    entries().find(|e| e.signal == Signal::Symptom(symptom))
}

#[cfg(test)]
mod tests;
