//! What a connection is given and what it gives back: the server and how it is protected,
//! the timeouts, the envelope, and Exchange's acceptance.

use std::sync::Arc;
use std::time::Duration;

use super::reply::Reply;

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Security {
    /// Plain connection upgraded with STARTTLS before anything else (port 587).
    StartTls,
    /// TLS from the first byte (port 465).
    ImplicitTls,
    /// No TLS at all. Only for test servers on a trusted network; never for Microsoft 365.
    InsecurePlaintext,
}

/// Where and how to connect.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// Host name or address.
    pub(crate) host: String,
    /// Port.
    pub(crate) port: u16,
    /// Protection.
    pub(crate) security: Security,
}

/// Time allowed for each step.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    /// TCP connect and TLS handshake.
    pub(crate) connect: Duration,
    /// Each command's reply.
    pub(crate) command: Duration,
    /// The reply after the message content (servers scan it first).
    pub(crate) content: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(30),
            command: Duration::from_secs(120),
            content: Duration::from_secs(600),
        }
    }
}

/// Client settings shared by connections.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// Name sent with EHLO.
    pub(crate) helo_name: String,
    /// TLS configuration (trust anchors).
    pub(crate) tls: Arc<rustls::ClientConfig>,
    /// Step timeouts.
    pub(crate) timeouts: Timeouts,
    /// Keep the transcript for `--verbose` (it is always logged at debug level).
    pub(crate) keep_transcript: bool,
}

/// Sender and recipients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Envelope {
    /// `MAIL FROM` (empty for the null sender).
    pub(crate) from: String,
    /// `RCPT TO`, in order.
    pub(crate) to: Vec<String>,
}

/// A message the server accepted.
#[derive(Debug, Clone)]
pub(crate) struct Delivery {
    /// The final reply (`250 2.0.0 OK <id> …`).
    pub(crate) reply: Reply,
    /// Recipients the server refused while accepting the message for the others.
    pub(crate) rejected: Vec<(String, Reply)>,
}
