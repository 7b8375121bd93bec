//! What can go wrong talking to an SMTP server, and whether trying again later can help.

use std::fmt;
use std::time::Duration;

use super::reply::{Reply, ReplyError};

/// The step of the dialogue an error happened in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Resolving and connecting.
    Connect,
    /// TLS handshake.
    Tls,
    /// Waiting for the banner.
    Greeting,
    /// `EHLO`.
    Ehlo,
    /// `STARTTLS`.
    StartTls,
    /// `AUTH`.
    Auth,
    /// `MAIL FROM`.
    Mail,
    /// `RCPT TO`.
    Rcpt,
    /// `DATA` or `BDAT`.
    Data,
    /// The reply to the message content.
    Content,
    /// `RSET`.
    Rset,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Connect => "connecting",
            Step::Tls => "the TLS handshake",
            Step::Greeting => "the greeting",
            Step::Ehlo => "EHLO",
            Step::StartTls => "STARTTLS",
            Step::Auth => "AUTH",
            Step::Mail => "MAIL FROM",
            Step::Rcpt => "RCPT TO",
            Step::Data => "DATA",
            Step::Content => "the message content",
            Step::Rset => "RSET",
        })
    }
}

/// An SMTP failure.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SmtpError {
    /// The server could not be reached: DNS, refused, unreachable (a firewall blocking the port
    /// often shows as a timeout instead).
    #[error("cannot connect to {host}:{port}: {source}")]
    Connect {
        /// Host.
        host: String,
        /// Port.
        port: u16,
        /// The cause.
        source: std::io::Error,
    },
    /// The TLS handshake failed: usually a certificate that is not trusted (an intercepting
    /// proxy, a private CA) or does not name the host.
    #[error("TLS with {host} failed: {source}")]
    Tls {
        /// Host.
        host: String,
        /// The cause.
        source: std::io::Error,
    },
    /// No answer in time.
    #[error("no answer from the server during {step} within {}s", after.as_secs())]
    Timeout {
        /// Where.
        step: Step,
        /// How long we waited.
        after: Duration,
    },
    /// The connection broke.
    #[error("the connection broke during {step}: {source}")]
    Io {
        /// Where.
        step: Step,
        /// The cause.
        source: std::io::Error,
    },
    /// The server's bytes are not SMTP.
    #[error("during {step}: {source}")]
    Protocol {
        /// Where.
        step: Step,
        /// The cause.
        source: ReplyError,
    },
    /// The server refused.
    #[error("the server refused {step}: {reply}{}", challenge.as_ref().map(|c| format!(" (challenge: {c})")).unwrap_or_default())]
    Rejected {
        /// Where.
        step: Step,
        /// The full reply.
        reply: Reply,
        /// The decoded SASL error challenge, when the server sent one before refusing.
        challenge: Option<String>,
    },
    /// Every recipient was refused.
    #[error("every recipient was refused: {}", list(rejected))]
    RecipientsRejected {
        /// Each recipient with its reply.
        rejected: Vec<(String, Reply)>,
    },
    /// The server lacks an extension the message or the configuration needs.
    #[error("the server does not offer {what}{}", if offered.is_empty() { String::new() } else { format!(" (it offers: {offered})") })]
    NotOffered {
        /// `STARTTLS`, `AUTH XOAUTH2`, `8BITMIME`, `SMTPUTF8`.
        what: &'static str,
        /// What it offers instead.
        offered: String,
    },
    /// The message is larger than the server's SIZE.
    #[error("the message is {size} octets; the server accepts at most {limit}")]
    TooBig {
        /// Message size.
        size: usize,
        /// The server's limit.
        limit: usize,
    },
    /// An envelope address SMTP cannot carry without quoting (white space, brackets, control
    /// characters): written as it is, it would add parameters to MAIL or RCPT. Nothing was sent.
    #[error("`{address}` cannot be sent as an envelope address")]
    BadAddress {
        /// The address, control characters escaped.
        address: String,
    },
}

fn list(rejected: &[(String, Reply)]) -> String {
    rejected
        .iter()
        .map(|(r, reply)| format!("{r}: {reply}"))
        .collect::<Vec<_>>()
        .join("; ")
}

impl SmtpError {
    /// The server's reply, when the failure is a refusal.
    pub(crate) fn reply(&self) -> Option<&Reply> {
        match self {
            SmtpError::Rejected { reply, .. } => Some(reply),
            SmtpError::RecipientsRejected { rejected } => rejected.first().map(|(_, r)| r),
            _ => None,
        }
    }
}
