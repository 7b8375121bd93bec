//! Which of Microsoft's SMTP submission services a listener plays, and the one place where the
//! session asks the service for its rules: the knobs in force, AUTH, the checks at MAIL FROM,
//! RCPT TO and the end of the data, and admission under the service's limits.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::auth::{self, Authenticated, Verdict};
use super::limits::Limits;
use super::reply::{self, Wire};
use super::{acs, hve};
use crate::model::{ExchangeSettings, Scenario};
use crate::pki::TokenSigningKey;

/// An SMTP submission service of Microsoft's that the emulator serves, each on its own port.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Endpoint {
    /// Exchange Online client submission, `smtp.office365.com:587` (and Microsoft Graph).
    #[default]
    Exchange,
    /// Exchange Online High Volume Email, `smtp-hve.office365.com:587`.
    Hve,
    /// Azure Communication Services Email, `smtp.azurecomm.net:587`.
    Acs,
}

impl Endpoint {
    /// `exchange`, `hve` or `acs`, as serialised.
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::Exchange => "exchange",
            Endpoint::Hve => "hve",
            Endpoint::Acs => "acs",
        }
    }

    /// The SMTP knobs in force here: Exchange's, with the server name, size and recipient limits
    /// of HVE or ACS in their place.
    pub(crate) fn settings(self, scenario: &Scenario) -> Cow<'_, ExchangeSettings> {
        let exchange = &scenario.exchange;
        match self {
            Endpoint::Exchange => Cow::Borrowed(exchange),
            Endpoint::Hve => Cow::Owned(ExchangeSettings {
                max_message_size: scenario.hve.max_message_size,
                max_recipients_per_message: scenario.hve.max_recipients_per_message,
                ..exchange.clone()
            }),
            Endpoint::Acs => Cow::Owned(ExchangeSettings {
                frontend_host: scenario.acs.frontend_host.clone(),
                mailbox_host: scenario.acs.frontend_host.clone(),
                max_message_size: scenario.acs.max_message_size,
                max_recipients_per_message: scenario.acs.max_recipients_per_message,
                ..exchange.clone()
            }),
        }
    }

    /// The largest message accepted here.
    pub(crate) fn max_message_size(self, scenario: &Scenario) -> u64 {
        match self {
            Endpoint::Exchange => scenario.exchange.max_message_size,
            Endpoint::Hve => scenario.hve.max_message_size,
            Endpoint::Acs => scenario.acs.max_message_size,
        }
    }

    /// The generic `535 5.7.3` of this service (a cancelled exchange gets it too).
    pub(crate) fn auth_failed(self, scenario: &Scenario, now: OffsetDateTime) -> Wire {
        match self {
            Endpoint::Acs => acs::auth_failed(),
            _ => reply::auth_failed(&scenario.exchange, now),
        }
    }

    /// Decides an AUTH exchange.
    pub(crate) fn authenticate(
        self,
        scenario: &Scenario,
        key: &TokenSigningKey,
        now: OffsetDateTime,
        credentials: Credentials<'_>,
    ) -> Verdict {
        match (self, credentials) {
            (Endpoint::Exchange, Credentials::Xoauth2(r)) => auth::xoauth2(scenario, key, now, r),
            (Endpoint::Exchange, Credentials::Login { user, password }) => auth::basic(scenario, now, user, password),
            (Endpoint::Hve, Credentials::Xoauth2(r)) => hve::xoauth2(scenario, key, now, r),
            (Endpoint::Hve, Credentials::Login { user, password }) => hve::login(scenario, now, user, password),
            (Endpoint::Acs, Credentials::Xoauth2(r)) => acs::xoauth2(scenario, key, now, r),
            (Endpoint::Acs, Credentials::Login { user, password }) => acs::login(scenario, now, user, password),
        }
    }

    /// A refusal of `MAIL FROM:<from>` by the service's own rules (ACS: linked domains and
    /// MailFrom addresses).
    pub(crate) fn sender_refusal(self, scenario: &Scenario, auth: &Authenticated, from: &str) -> Option<Refusal> {
        match self {
            Endpoint::Acs => acs::sender_refusal(scenario, auth, &[from.to_owned()]),
            _ => None,
        }
    }

    /// A refusal of `RCPT TO:<recipient>` by the service's own rules (HVE: internal only).
    pub(crate) fn recipient_refusal(
        self,
        scenario: &Scenario,
        auth: &Authenticated,
        recipient: &str,
    ) -> Option<Refusal> {
        match self {
            Endpoint::Hve => hve::recipient_refusal(scenario, auth, recipient),
            _ => None,
        }
    }

    /// At the end of the data, HVE's and ACS's sender checks against the From header addresses
    /// and the envelope sender (`senders`). Exchange's own checks stay in the session.
    pub(crate) fn content_refusal(
        self,
        scenario: &Scenario,
        auth: &Authenticated,
        senders: &[String],
    ) -> Option<Refusal> {
        match self {
            Endpoint::Exchange => None,
            Endpoint::Hve => hve::sender_refusal(scenario, auth, senders),
            Endpoint::Acs => acs::sender_refusal(scenario, auth, senders),
        }
    }

    /// Admits a message under HVE's or ACS's limits, or refuses it; they refuse rather than
    /// delay. (Exchange's own admission, which delays, stays in the session.)
    pub(crate) fn admit(
        self,
        scenario: &Scenario,
        limits: &Limits,
        auth: &Authenticated,
        recipients: u32,
        now: OffsetDateTime,
    ) -> Result<(), Refusal> {
        match self {
            Endpoint::Exchange => Ok(()),
            Endpoint::Hve => hve::admit(scenario, &limits.hve, auth, recipients, now),
            Endpoint::Acs => acs::admit(scenario, &limits.acs, auth, now),
        }
    }
}

/// What the client sent in AUTH.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Credentials<'a> {
    /// The base64 XOAUTH2 response.
    Xoauth2(&'a str),
    /// `AUTH LOGIN`'s decoded user name and password.
    Login { user: &'a str, password: &'a str },
}

/// A refusal of a command or a message, with the cause for the counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub reply: Wire,
    pub reason: &'static str,
}

/// The reply codes of a whole dialogue fed at once to a session on `endpoint` (the services'
/// unit tests).
#[cfg(test)]
pub(super) fn dialogue(shared: &std::sync::Arc<crate::Shared>, endpoint: Endpoint, input: &str) -> Vec<String> {
    use super::session::{Output, Session};
    let mut session = Session::new(std::sync::Arc::clone(shared), endpoint, 1, "192.0.2.1".into(), true);
    let mut buffer = input.as_bytes().to_vec();
    let out = session.feed(&mut buffer);
    assert!(buffer.is_empty());
    out.into_iter()
        .filter_map(|o| match o {
            Output::Reply(r) => Some(r[..3].to_owned()),
            _ => None,
        })
        .collect()
}
