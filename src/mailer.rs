//! The entry point for a Rust program that sends through Microsoft 365: a [`Mailer`] built from
//! the environment or a config file (the same resolution `m365-mailer send` uses), a
//! [`Message`] composed or given as MIME, and an [`Error`] that carries the verdict on what
//! failed: whether to retry, whom it blames, the exit code and the fix.
//!
//! ```no_run
//! # async fn run() -> Result<(), m365_mailer::Error> {
//! use m365_mailer::{Mailer, Message};
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
use std::sync::Arc;

use crate::account::Transport;
use crate::catalog::{Evidence, Ids};
use crate::config::{Config, ConfigError, Overrides};
use crate::message::{self, Compose, MessageError, Outgoing, RawOptions};
use crate::smtp::{self, Delivery};
use crate::submit::{self, SubmitError, Submitter};
use crate::sysexits::Code;
use crate::verdict::Verdict;

/// Sends messages for one account, over SMTP (`AUTH XOAUTH2`) or Microsoft Graph as the
/// account says. Tokens are cached in memory and reused.
#[derive(Debug, Clone)]
pub struct Mailer {
    submitter: Arc<Submitter>,
}

/// Several messages in a row for one [`Mailer`]: over SMTP on one authenticated connection
/// (`RSET` between them), over Graph a request each.
#[derive(Debug)]
pub struct Connection {
    mailer: Mailer,
    smtp: Option<smtp::Connection>,
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

/// Why nothing was sent (or not to everyone). Its text says what failed; [`Error::verdict`]
/// says what it means.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct Error(Inner);

/// What an [`Error`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The configuration is missing or wrong; the message names the field and where it is set.
    Config,
    /// The message cannot be sent as it is.
    Message,
    /// Microsoft 365, or the way to it, refused.
    Send,
}

#[derive(Debug, thiserror::Error)]
enum Inner {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Message(#[from] MessageError),
    #[error(transparent)]
    Send(#[from] SubmitError),
}

impl<E: Into<Inner>> From<E> for Error {
    fn from(error: E) -> Self {
        Self(error.into())
    }
}

impl Error {
    /// What the error is about.
    pub fn kind(&self) -> ErrorKind {
        match self.0 {
            Inner::Config(_) => ErrorKind::Config,
            Inner::Message(_) => ErrorKind::Message,
            Inner::Send(_) => ErrorKind::Send,
        }
    }

    /// The verdict on a refusal: retry, blame, catalog entry. `None` when nothing was tried
    /// (the configuration or the message is wrong).
    pub fn verdict(&self) -> Option<Verdict> {
        match &self.0 {
            Inner::Send(e) => Some(Verdict::of(e)),
            _ => None,
        }
    }

    /// Whether sending the same message later, unchanged, can succeed.
    pub fn is_transient(&self) -> bool {
        self.verdict().is_some_and(|v| v.is_transient())
    }

    /// The sysexits code `m365-mailer send` would exit with.
    pub fn exit_code(&self) -> Code {
        match &self.0 {
            Inner::Config(_) => Code::Config,
            Inner::Message(_) => Code::Data,
            Inner::Send(e) => Verdict::of(e).code(),
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
        Self::resolve(file, account, &crate::config::process_env)
    }

    /// As [`Mailer::from_config`], with the settings the environment would give read from
    /// `lookup` instead, by the same names (`AZURE_TENANT_ID`, `AZURE_CLIENT_SECRET`,
    /// `M365_MAILER_MAILBOX`, …): for a program that keeps them in its own store. The process
    /// environment is not read.
    ///
    /// ```no_run
    /// # fn vault(_: &str) -> Option<String> { None }
    /// let mailer = m365_mailer::Mailer::from_settings(None, None, |name| vault(name))?;
    /// # Ok::<(), m365_mailer::Error>(())
    /// ```
    pub fn from_settings(
        file: Option<&Path>,
        account: Option<&str>,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, Error> {
        Self::resolve(file, account, &lookup)
    }

    fn resolve(file: Option<&Path>, account: Option<&str>, env: crate::config::Env<'_>) -> Result<Self, Error> {
        let overrides = Overrides {
            config: file.map(Path::to_path_buf),
            account: account.map(str::to_owned),
            ..Overrides::default()
        };
        let account = Config::resolve_with(&overrides, env)?.account;
        Ok(Self {
            submitter: Arc::new(Submitter::new(account, &submit::Options::default())?),
        })
    }

    /// The address messages are from when they do not say: the account's mailbox, or its
    /// `default_from`.
    pub fn from_address(&self) -> &str {
        &self.submitter.account().default_from
    }

    /// Sends `message` on a new connection (SMTP) or request (Graph).
    pub async fn send(&self, message: &Message) -> Result<Accepted, Error> {
        Ok(accepted(self.submitter.submit(&message.0).await.outcome?))
    }

    /// Opens an authenticated SMTP connection (nothing for Graph) for several messages.
    pub async fn connect(&self) -> Result<Connection, Error> {
        let smtp = match self.submitter.account().transport {
            Transport::Smtp => Some(self.submitter.connect().await?),
            Transport::Graph => None,
        };
        Ok(Connection {
            mailer: self.clone(),
            smtp,
        })
    }
}

impl Connection {
    /// Sends `message`, after an `RSET` when it is not the first. A refusal of one message
    /// leaves the connection usable for the next; a broken connection fails every later send,
    /// transiently: connect again.
    pub async fn send(&mut self, message: &Message) -> Result<Accepted, Error> {
        self.mailer.submitter.check_recipients(&message.0)?;
        match &mut self.smtp {
            Some(smtp) => {
                let delivery = smtp
                    .send_mail(&message.0.envelope, &message.0.content)
                    .await
                    .map_err(SubmitError::from)?;
                Ok(accepted(delivery))
            }
            None => self.mailer.send(message).await,
        }
    }

    /// Says `QUIT` and closes.
    pub async fn close(self) {
        if let Some(smtp) = self.smtp {
            smtp.quit().await;
        }
    }
}

fn accepted(delivery: Delivery) -> Accepted {
    Accepted {
        reply: delivery.reply.to_string(),
        refused: delivery
            .rejected
            .into_iter()
            .map(|(recipient, reply)| (recipient, reply.to_string()))
            .collect(),
    }
}

impl Message {
    /// A plain-text message from `from` to `to`. An address that is not one is refused before
    /// anything is sent:
    ///
    /// ```
    /// use m365_mailer::{Code, ErrorKind, Message};
    ///
    /// let message = Message::text("scanner@contoso.com", &["ops@contoso.com"], "Scan", "Done.\n")?;
    /// assert_eq!(message.recipients(), ["ops@contoso.com"]);
    ///
    /// let refused = Message::text("scanner@contoso.com", &["ops@contoso.com>\r\nRCPT TO:<x@y.z"], "Scan", "")
    ///     .unwrap_err();
    /// assert_eq!(refused.kind(), ErrorKind::Message);
    /// assert_eq!(refused.exit_code(), Code::Data);
    /// assert!(refused.verdict().is_none(), "nothing was tried");
    /// # Ok::<(), m365_mailer::Error>(())
    /// ```
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
    ///
    /// ```
    /// let mime = b"From: scanner@contoso.com\r\nTo: ops@contoso.com\r\nBcc: audit@contoso.com\r\n\
    ///              Subject: Scan\r\n\r\nDone.\r\n";
    /// let message = m365_mailer::Message::mime(mime, &["ops@contoso.com", "audit@contoso.com"])?;
    /// assert_eq!(message.recipients().len(), 2);
    /// # Ok::<(), m365_mailer::Error>(())
    /// ```
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
