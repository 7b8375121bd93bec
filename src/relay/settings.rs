//! The relay's settings as plain validated values: listeners, the server certificate, inbound
//! limits, delivery and the policy. `config` reads them from the file and flags; the relay never
//! reads configuration itself.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::limits::SendLimits;
use super::policy::Policy;
use super::session::Settings;
use crate::account::Account;
use crate::queue::{Backoff, Location};

/// How a listener secures its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListenerTls {
    /// Plain SMTP (STARTTLS not offered).
    None,
    /// Plain, with STARTTLS offered.
    StartTls,
    /// TLS from the first byte (SMTPS).
    Implicit,
}

/// One listening socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Listener {
    /// Address and port (IPv4 or IPv6).
    pub(crate) address: SocketAddr,
    /// TLS mode.
    pub(crate) tls: ListenerTls,
}

/// The relay's server certificate: the operator's, or one generated at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ServerCertificate {
    /// PEM files: the certificate chain and its private key.
    Files {
        /// Certificate chain (PEM).
        certificate: PathBuf,
        /// Private key (PEM).
        private_key: PathBuf,
    },
    /// A self-signed certificate generated at start; its fingerprint is logged.
    SelfSigned,
}

/// Inbound limits beyond what the session enforces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Inbound {
    /// Simultaneous connections.
    pub(crate) max_connections: usize,
    /// Simultaneous connections per client address.
    pub(crate) max_connections_per_client: usize,
    /// Wait for a new command.
    pub(crate) command_timeout: Duration,
    /// Wait for the rest of a started command line.
    pub(crate) line_timeout: Duration,
    /// Silence allowed within message content.
    pub(crate) data_timeout: Duration,
    /// Wait before checking the password of a client that has failed; doubles with each
    /// failure from the same address (or IPv6 /64).
    pub(crate) auth_failure_delay: Duration,
    /// Longest session: then it is closed with `421` at the next command.
    pub(crate) max_session_time: Duration,
}

/// Delivery to Exchange Online.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeliverySettings {
    /// Upstream connections per account.
    pub(crate) connections_per_account: usize,
    /// The mailbox's limits: its service's (`Service::rates`) under the configured ones. Those
    /// of the account this copy is for (`for_account`); the default account's until then.
    pub(crate) limits: SendLimits,
    /// Every account's limits, by name.
    pub(crate) per_account: Vec<(String, SendLimits)>,
    /// Retries.
    pub(crate) backoff: Backoff,
    /// An unused upstream connection is closed after this.
    pub(crate) connection_idle: Duration,
    /// A message being delivered is held this long, renewed while its delivery runs; when the
    /// holder dies or cannot record the outcome, the message is due again after it.
    pub(crate) lease: Duration,
    /// Where a delivery status notification goes when a message is given up on.
    pub(crate) dsn_to: Option<String>,
}

impl DeliverySettings {
    /// The settings with `account`'s limits.
    pub(crate) fn for_account(&self, account: &str) -> Self {
        let limits = self
            .per_account
            .iter()
            .find(|(name, _)| name == account)
            .map_or(self.limits, |(_, limits)| *limits);
        Self { limits, ..self.clone() }
    }
}

/// The validated relay configuration.
#[derive(Debug, Clone)]
pub(crate) struct RelayConfig {
    /// Listening sockets.
    pub(crate) listeners: Vec<Listener>,
    /// Server certificate for STARTTLS and implicit TLS.
    pub(crate) certificate: ServerCertificate,
    /// Where the queue is.
    pub(crate) queue: Location,
    /// Session settings (shared by every listener; `starttls` is set per listener).
    pub(crate) session: Settings,
    /// Connection limits and timeouts.
    pub(crate) inbound: Inbound,
    /// Who may relay and as whom.
    pub(crate) policy: Policy,
    /// The accounts the rules name, resolved.
    pub(crate) accounts: Vec<Account>,
    /// Delivery settings.
    pub(crate) delivery: DeliverySettings,
    /// The admin endpoint (`/`, `/healthz`, `/readyz`, `/metrics`), or none.
    pub(crate) admin: Option<SocketAddr>,
    /// The token that lets the status page retry and delete (bearer or login); without it the
    /// page is read only, and the endpoint only on loopback.
    pub(crate) admin_token: Option<crate::secret::Secret>,
    /// Serve the admin endpoint over TLS with the relay's certificate.
    pub(crate) admin_tls: bool,
    /// Alert destinations and thresholds.
    pub(crate) alerts: super::alert::AlertSettings,
}
