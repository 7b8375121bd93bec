//! Where accepted messages land (from every endpoint): in memory for the library, and also in a folder when the
//! emulator runs as a program (`<state>/mailboxes/<mailbox>/<id>.eml` with `<id>.json` beside it).
//! Each message keeps its envelope, the identity that authenticated, and the exact bytes received.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;

use crate::Endpoint;

/// How the client authenticated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum Identity {
    /// OAuth 2.0 app-only token (`AUTH XOAUTH2`).
    Xoauth2 {
        /// `appid` of the token.
        client_id: String,
        /// `oid` of the token (the service principal).
        service_principal_id: String,
    },
    /// A mailbox (or HVE account) password (`AUTH LOGIN`).
    Basic,
    /// `AUTH LOGIN` on Azure Communication Services: an SMTP username and a client secret of
    /// the app it links.
    AcsLogin {
        /// The SMTP username the client logged in with.
        smtp_username: String,
        /// Client id of the linked app.
        client_id: String,
    },
}

/// A message Exchange accepted.
#[derive(Debug, Clone, Serialize)]
pub struct Delivered {
    /// Queue id, also in the `250 2.0.0 OK` reply.
    pub id: String,
    /// When the final reply was sent.
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
    /// Tenant of the mailbox.
    pub tenant_id: String,
    /// The mailbox named in `user=` (or the basic-auth login); the HVE account on HVE, the SMTP
    /// username on ACS.
    pub mailbox: String,
    /// Who authenticated.
    pub identity: Identity,
    /// The service that took the message (`exchange` for Graph too).
    pub endpoint: Endpoint,
    /// `MAIL FROM` address (empty for the null sender).
    pub mail_from: String,
    /// `RCPT TO` addresses, in order.
    pub rcpt_to: Vec<String>,
    /// Whether the content came by BDAT rather than DATA.
    pub chunked: bool,
    /// Whether it came through Microsoft Graph `sendMail` rather than SMTP.
    pub via_graph: bool,
    /// Graph's `saveToSentItems` (`None` for SMTP, where the emulator does not model it).
    pub saved_to_sent_items: Option<bool>,
    /// The message exactly as received (after DATA's dot-unstuffing).
    #[serde(skip)]
    pub data: Vec<u8>,
}

/// The message store.
#[derive(Debug)]
pub struct Store {
    messages: Mutex<Vec<Arc<Delivered>>>,
    dir: Option<PathBuf>,
    count: tokio::sync::watch::Sender<usize>,
}

impl Store {
    /// A store in memory, and in `dir` too when given.
    pub fn new(dir: Option<PathBuf>) -> Self {
        Self {
            messages: Mutex::default(),
            dir,
            count: tokio::sync::watch::Sender::new(0),
        }
    }

    /// Stores a message; a failure to write the folder copy is logged, not fatal.
    pub fn deliver(&self, message: Delivered) -> Arc<Delivered> {
        let message = Arc::new(message);
        if let Some(dir) = &self.dir
            && let Err(e) = write_copy(dir, &message)
        {
            tracing::warn!(error = %e, "could not write the delivered message to {}", dir.display());
        }
        let len = {
            let mut messages = self.lock();
            messages.push(Arc::clone(&message));
            messages.len()
        };
        self.count.send_replace(len);
        message
    }

    /// Every message, oldest first.
    pub fn messages(&self) -> Vec<Arc<Delivered>> {
        self.lock().clone()
    }

    /// Messages authenticated as `mailbox`.
    pub fn for_mailbox(&self, mailbox: &str) -> Vec<Arc<Delivered>> {
        self.lock()
            .iter()
            .filter(|m| m.mailbox.eq_ignore_ascii_case(mailbox))
            .cloned()
            .collect()
    }

    /// The message with this id.
    pub fn get(&self, id: &str) -> Option<Arc<Delivered>> {
        self.lock().iter().find(|m| m.id == id).cloned()
    }

    /// Number of messages.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing was delivered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits until at least `n` messages are stored; false on timeout.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> bool {
        let mut rx = self.count.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|len| *len >= n))
            .await
            .is_ok()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Delivered>>> {
        self.messages.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn write_copy(dir: &std::path::Path, message: &Delivered) -> std::io::Result<()> {
    let folder = dir.join(message.mailbox.to_ascii_lowercase().replace(['/', '\\'], "_"));
    std::fs::create_dir_all(&folder)?;
    std::fs::write(folder.join(format!("{}.eml", message.id)), &message.data)?;
    let envelope = serde_json::to_vec_pretty(message).map_err(std::io::Error::other)?;
    std::fs::write(folder.join(format!("{}.json", message.id)), envelope)
}
