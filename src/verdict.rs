//! The verdict on a failure: computed once, from whatever failed (an SMTP reply, a Graph status
//! and code, an Entra error, the network or TLS, a refusal here), and read by everyone who acts
//! on it: `send`'s exit code, the relay's outcome planner, and `doctor`.
//!
//! A verdict says whether trying again can help (and after how long), whom the failure blames,
//! and which catalog entry explains it. The catalog decides first: an entry's [`Retry`] and
//! [`Blame`] are the verdict, so a failure Microsoft adds is taught in one place. What no entry
//! knows is judged from the protocol alone: the reply's class and the step it answered, the HTTP
//! status, the OAuth `error` field.

use std::time::Duration;

use crate::catalog::{self, Blame, Diagnosis, Entry, Evidence, Retry, Symptom};
use crate::graph::{GraphError, GraphSendError};
use crate::oauth::TokenError;
use crate::smtp::{Reply, SmtpError, Step};
use crate::submit::SubmitError;
use crate::sysexits::Code;

/// What a failure means.
///
/// ```no_run
/// # async fn run(mailer: m365_mailer::Mailer, message: m365_mailer::Message) {
/// use m365_mailer::{Blame, Retry};
///
/// if let Err(error) = mailer.send(&message).await {
///     match error.verdict() {
///         Some(v) if v.retry() == Retry::AfterThrottling => { /* wait v.retry_after(), then resend */ }
///         Some(v) if v.blame() == Blame::Credential => { /* page whoever owns the app registration */ }
///         Some(v) if v.is_transient() => { /* queue it and try later */ }
///         _ => { /* tell the user: error.explanation() */ }
///     }
/// }
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// Whether trying again can succeed, and when.
    pub(crate) retry: Retry,
    /// What must change before it goes away.
    pub(crate) blame: Blame,
    /// How long the server asked to wait (`Retry-After`), when it said.
    pub(crate) retry_after: Option<Duration>,
    /// The catalog's explanation, when it has one.
    pub(crate) entry: Option<&'static Entry>,
    /// Refused here before anything was sent (the message cannot be sent as it is).
    local: bool,
}

impl Verdict {
    fn new(retry: Retry, blame: Blame) -> Self {
        Self {
            retry,
            blame,
            retry_after: None,
            entry: None,
            local: false,
        }
    }

    /// The verdict a catalog entry gives.
    pub(crate) fn of_entry(entry: &'static Entry) -> Self {
        Self {
            entry: Some(entry),
            ..Self::new(entry.retry, entry.blame)
        }
    }

    /// The verdict on a failed submission.
    pub(crate) fn of(error: &SubmitError) -> Self {
        match error {
            SubmitError::Token(e) => token(e),
            SubmitError::Smtp(e) => smtp(e),
            SubmitError::Graph(e) => graph(e),
            SubmitError::Tls(_) => Self::new(Retry::Permanent, Blame::Configuration),
            SubmitError::Http(_) => Self::new(Retry::Permanent, Blame::Software),
            SubmitError::GraphWithoutOAuth => Self::new(Retry::Permanent, Blame::Configuration),
            SubmitError::ExternalRecipients { .. } => Self {
                local: true,
                ..Self::of_symptom(Symptom::HveExternalRecipients)
            },
        }
    }

    /// The verdict on one SMTP reply to the step `step`.
    pub(crate) fn of_reply(reply: &Reply, step: Step) -> Self {
        if let Some(entry) = catalog::for_reply(reply) {
            return Self::of_entry(entry);
        }
        let blame = match step {
            Step::Mail | Step::Rcpt | Step::Data | Step::Content => Blame::Message,
            Step::Auth => Blame::Credential,
            _ => Blame::Path,
        };
        let retry = match reply.code() {
            432 => Retry::AfterThrottling,
            _ if reply.is_transient() => Retry::Transient,
            _ => Retry::Permanent,
        };
        Self::new(retry, blame)
    }

    /// The verdict on a symptom observed without a reply (`doctor`'s checks).
    pub(crate) fn of_symptom(symptom: Symptom) -> Self {
        catalog::symptom(symptom).map_or(Self::new(Retry::Permanent, Blame::Software), Self::of_entry)
    }

    /// Whether trying again can succeed, and when.
    pub fn retry(&self) -> Retry {
        self.retry
    }

    /// What must change before the failure goes away.
    pub fn blame(&self) -> Blame {
        self.blame
    }

    /// How long the server asked to wait (`Retry-After`), when it said.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// The catalog entry that explains the failure (for example `smtp/535-5.7.139` or
    /// `aadsts/7000215`), as `doctor --json` reports it, when the catalog knows it.
    pub fn catalog_id(&self) -> Option<String> {
        self.entry.map(Entry::id)
    }

    /// Whether trying again later, unchanged, can succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self.retry, Retry::Transient | Retry::AfterThrottling)
    }

    /// Whether the failure is the message's own (its content, a recipient, its sender), so that
    /// sending other messages is not affected.
    pub fn blames_message(&self) -> bool {
        matches!(self.blame, Blame::Message | Blame::Sender)
    }

    /// The sysexits code `send` exits with (`docs/exit-codes.md`).
    pub fn code(&self) -> Code {
        if self.is_transient() {
            return Code::TempFail;
        }
        match self.blame {
            Blame::Message if self.local => Code::Data,
            Blame::Message | Blame::Account | Blame::Path => Code::Unavailable,
            Blame::Sender | Blame::Credential => Code::NoPerm,
            Blame::Configuration => Code::Config,
            Blame::Software => Code::Software,
        }
    }

    /// The catalog's explanation, narrowed with the evidence.
    pub(crate) fn diagnosis(&self, evidence: &Evidence) -> Option<Diagnosis> {
        self.entry.map(|entry| catalog::explain(entry, evidence))
    }
}

fn token(error: &TokenError) -> Verdict {
    match error {
        TokenError::Entra(e) => {
            if let Some(entry) = e.code().and_then(catalog::for_aadsts) {
                return Verdict::of_entry(entry);
            }
            if e.is_transient() {
                return Verdict::new(Retry::Transient, Blame::Path);
            }
            // RFC 6749 §5.2: these refuse the client itself (its secret, certificate or grant).
            match e.error.as_str() {
                "invalid_client" | "unauthorized_client" | "access_denied" => {
                    Verdict::new(Retry::Permanent, Blame::Credential)
                }
                _ => Verdict::new(Retry::Permanent, Blame::Configuration),
            }
        }
        TokenError::Network { source, .. } if crate::tls::is_untrusted_certificate(source) => {
            Verdict::of_symptom(Symptom::TlsUntrusted)
        }
        TokenError::Network { .. } => Verdict::new(Retry::Transient, Blame::Path),
        TokenError::ManagedIdentity(e) if e.transient => Verdict::new(Retry::Transient, Blame::Path),
        TokenError::ManagedIdentity(_) | TokenError::FederatedToken { .. } => {
            Verdict::new(Retry::Permanent, Blame::Configuration)
        }
        TokenError::Malformed(_) | TokenError::Sign(_) => Verdict::new(Retry::Permanent, Blame::Software),
    }
}

fn smtp(error: &SmtpError) -> Verdict {
    match error {
        SmtpError::Rejected { reply, step, .. } => Verdict::of_reply(reply, *step),
        SmtpError::RecipientsRejected { rejected } => {
            // Every recipient refused: the message goes nowhere; the first refusal that is not
            // transient decides, else the first.
            let verdicts: Vec<Verdict> = rejected.iter().map(|(_, r)| Verdict::of_reply(r, Step::Rcpt)).collect();
            verdicts
                .iter()
                .find(|v| !v.is_transient())
                .or(verdicts.first())
                .copied()
                .unwrap_or(Verdict::new(Retry::Permanent, Blame::Message))
        }
        SmtpError::Tls { source, .. } if crate::tls::is_untrusted_certificate(source) => {
            Verdict::of_symptom(Symptom::TlsUntrusted)
        }
        SmtpError::Tls { .. } => Verdict::new(Retry::Permanent, Blame::Configuration),
        SmtpError::Timeout {
            step: Step::Connect, ..
        } => Verdict::of_symptom(Symptom::PortBlocked),
        SmtpError::Connect { .. } | SmtpError::Timeout { .. } | SmtpError::Io { .. } | SmtpError::Protocol { .. } => {
            Verdict::new(Retry::Transient, Blame::Path)
        }
        SmtpError::NotOffered { what, .. } if what.contains("XOAUTH2") => {
            Verdict::of_symptom(Symptom::Xoauth2NotOffered)
        }
        // The message needs an extension the server lacks: other messages may go.
        SmtpError::NotOffered { what, .. } if what.starts_with("8BITMIME") || what.starts_with("SMTPUTF8") => {
            Verdict::new(Retry::Permanent, Blame::Message)
        }
        SmtpError::NotOffered { .. } => Verdict::new(Retry::Permanent, Blame::Path),
        SmtpError::TooBig { .. } | SmtpError::BadAddress { .. } => Verdict::new(Retry::Permanent, Blame::Message),
    }
}

fn graph(error: &GraphSendError) -> Verdict {
    match error {
        GraphSendError::Refused(e) => {
            let verdict = catalog::for_graph(e).map_or_else(|| graph_status(e), Verdict::of_entry);
            Verdict {
                retry_after: e.retry_after,
                ..verdict
            }
        }
        GraphSendError::Network { source, .. } if crate::tls::is_untrusted_certificate(source) => {
            Verdict::of_symptom(Symptom::TlsUntrusted)
        }
        GraphSendError::Network { .. } => Verdict::new(Retry::Transient, Blame::Path),
        GraphSendError::Message(_) => Verdict {
            local: true,
            ..Verdict::new(Retry::Permanent, Blame::Message)
        },
    }
}

/// A Graph answer no entry knows, by its HTTP status.
fn graph_status(error: &GraphError) -> Verdict {
    let (retry, blame) = match error.status {
        429 | 503 => (Retry::AfterThrottling, Blame::Account),
        408 | 500.. => (Retry::Transient, Blame::Path),
        401 | 403 => (Retry::Permanent, Blame::Credential),
        400 | 413 => (Retry::Permanent, Blame::Message),
        404 => (Retry::Permanent, Blame::Configuration),
        _ => (Retry::Permanent, Blame::Account),
    };
    Verdict::new(retry, blame)
}

#[cfg(test)]
mod tests;
