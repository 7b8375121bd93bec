//! The entry point for a Rust program that sends through Microsoft 365: a [`Mailer`] built from
//! the environment or a config file (the same resolution `m365-mailer send` uses), a
//! [`Message`] composed or given as MIME, and an [`Error`] that carries the verdict on what
//! failed: whether to retry, whom it blames, the exit code and the fix.
//!
//! ```no_run
//! # async fn run() -> Result<(), m365_mailer::mailer::Error> {
//! use m365_mailer::mailer::{Mailer, Message};
//!
//! // AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET (or AZURE_CLIENT_CERTIFICATE_PATH)
//! // and M365_MAILER_MAILBOX, or the default config file.
//! let mailer = Mailer::from_env()?;
//! let message = Message::text("scanner@contoso.com", &["ops@contoso.com"], "Nightly scan", "Done.\n")?;
//! match mailer.send(&message).await {
//!     Ok(accepted) => println!("{}", accepted.reply),
//!     Err(e) if e.is_transient() => eprintln!("try again later: {e}"),
//!     Err(e) => eprintln!("{e}\n{}", e.explanation().unwrap_or_default()),
//! }
//! # Ok(())
//! # }
//! ```

use std::path::Path;

use crate::account::Account;
use crate::catalog::{Evidence, Ids};
use crate::config::{Config, ConfigError, Overrides};
use crate::message::{self, Compose, MessageError, Outgoing, RawOptions};
use crate::submit::{self, SubmitError, Submitter};
use crate::sysexits::Code;
use crate::verdict::Verdict;

/// Sends messages for one account, over SMTP (`AUTH XOAUTH2`) or Microsoft Graph as the
/// account says. Tokens are cached in memory and reused.
#[derive(Debug)]
pub struct Mailer {
    submitter: Submitter,
}

/// A message ready to send: its envelope and its bytes.
#[derive(Debug, Clone)]
pub struct Message(Outgoing);

/// Exchange took the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// Exchange's reply, e.g. `250 2.0.0 OK <…>`.
    pub reply: String,
    /// Recipients refused while the others were accepted, each with its reply.
    pub refused: Vec<(String, String)>,
}

/// Why nothing was sent (or not to everyone).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is missing or wrong; the message names the field and where it is set.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The message cannot be sent as it is.
    #[error(transparent)]
    Message(#[from] MessageError),
    /// Microsoft 365, or the way to it, refused.
    #[error(transparent)]
    Send(#[from] SubmitError),
}

impl Error {
    /// The verdict on a refusal: retry, blame, catalog entry.
    pub fn verdict(&self) -> Option<Verdict> {
        match self {
            Error::Send(e) => Some(Verdict::of(e)),
            _ => None,
        }
    }

    /// Whether sending the same message later, unchanged, can succeed.
    pub fn is_transient(&self) -> bool {
        self.verdict().is_some_and(|v| v.is_transient())
    }

    /// The sysexits code `m365-mailer send` would exit with.
    pub fn exit_code(&self) -> Code {
        match self {
            Error::Config(_) => Code::Config,
            Error::Message(_) => Code::Data,
            Error::Send(e) => Verdict::of(e).code(),
        }
    }

    /// The likely causes and their fixes, when the catalog knows the failure.
    pub fn explanation(&self) -> Option<String> {
        let verdict = self.verdict()?;
        let diagnosis = verdict.diagnosis(&Evidence::default())?;
        Some(diagnosis.render(&Ids::default()).to_text(""))
    }
}

impl Mailer {
    /// The account the environment and the default config file describe, as `send` resolves it.
    pub fn from_env() -> Result<Self, Error> {
        Self::from_config(None, None)
    }

    /// The account `name` (else the file's default) of the config file `file` (else the
    /// default one), with the environment over it.
    pub fn from_config(file: Option<&Path>, account: Option<&str>) -> Result<Self, Error> {
        let overrides = Overrides {
            config: file.map(Path::to_path_buf),
            account: account.map(str::to_owned),
            ..Overrides::default()
        };
        Self::new(Config::resolve(&overrides)?.account)
    }

    /// A mailer for an account resolved elsewhere.
    pub fn new(account: Account) -> Result<Self, Error> {
        Ok(Self {
            submitter: Submitter::new(account, &submit::Options::default())?,
        })
    }

    /// The account it sends for.
    pub fn account(&self) -> &Account {
        self.submitter.account()
    }

    /// Sends `message` on a new connection (SMTP) or request (Graph).
    pub async fn send(&self, message: &Message) -> Result<Accepted, Error> {
        let delivery = self.submitter.submit(&message.0).await.outcome?;
        Ok(Accepted {
            reply: delivery.reply.to_string(),
            refused: delivery
                .rejected
                .into_iter()
                .map(|(recipient, reply)| (recipient, reply.to_string()))
                .collect(),
        })
    }
}

impl Message {
    /// A plain-text message from `from` to `to`.
    pub fn text(from: &str, to: &[&str], subject: &str, body: &str) -> Result<Self, Error> {
        Ok(Self(message::compose(&Compose {
            from: from.to_owned(),
            to: to.iter().map(|t| (*t).to_owned()).collect(),
            subject: Some(subject.to_owned()),
            text: Some(body.to_owned()),
            ..Compose::default()
        })?))
    }

    /// A whole MIME message for `recipients` (its Bcc line is removed, as sendmail does); its
    /// From is the envelope sender.
    pub fn mime(bytes: &[u8], recipients: &[&str]) -> Result<Self, Error> {
        Ok(Self(message::from_raw(
            bytes,
            &RawOptions {
                recipients: recipients.iter().map(|r| (*r).to_owned()).collect(),
                ..RawOptions::default()
            },
        )?))
    }

    /// The envelope recipients.
    pub fn recipients(&self) -> &[String] {
        &self.0.envelope.to
    }
}
