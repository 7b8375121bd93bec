//! Submission: an account and a message in, Exchange's answer out. Ties together the trust
//! anchors, the token provider and the SMTP connection or Microsoft Graph.

use std::sync::Arc;

use crate::account::{Account, Transport};
use crate::graph::GraphSendError;
use crate::message::Outgoing;
use crate::oauth::{DiskCache, RetryPolicy, TokenError, TokenProvider};
use crate::smtp::{self, Connection, Credentials, Delivery, SmtpError};
use crate::tls::TlsError;
use crate::verdict::Verdict;

/// Why a message was not submitted.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SubmitError {
    /// No token.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// SMTP failed.
    #[error(transparent)]
    Smtp(#[from] SmtpError),
    /// Trust anchors could not be loaded.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The HTTP client could not be built.
    #[error("cannot set up HTTPS: {0}")]
    Http(#[source] reqwest::Error),
    /// The account sends through Graph with a password, which Graph does not take.
    #[error(
        "the Graph transport needs an OAuth credential (a secret, a certificate or a federated token), not a password"
    )]
    GraphWithoutOAuth,
    /// HVE delivers inside the tenant only: these recipients are outside its accepted domains
    /// (`internal_domains`). Nothing was sent.
    #[error(
        "High Volume Email delivers to the tenant's own domains only ({domains}); refused before sending: {}",
        recipients.join(", ")
    )]
    ExternalRecipients {
        /// The recipients outside the domains.
        recipients: Vec<String>,
        /// The account's `internal_domains`, joined.
        domains: String,
    },
    /// Microsoft Graph did not take the message.
    #[error(transparent)]
    Graph(#[from] GraphSendError),
}

/// How a submitter behaves.
#[derive(Debug, Clone, Default)]
pub(crate) struct Options {
    /// Share tokens between runs through the on-disk cache.
    pub(crate) disk_cache: Option<DiskCache>,
    /// Keep the SMTP transcript for display.
    pub(crate) keep_transcript: bool,
    /// Step timeouts.
    pub(crate) timeouts: smtp::Timeouts,
    /// Token-endpoint retries.
    pub(crate) retry: RetryPolicy,
}

/// Sends messages for one account.
#[derive(Debug)]
pub(crate) struct Submitter {
    account: Account,
    settings: smtp::Settings,
    provider: Option<Arc<TokenProvider>>,
    /// HTTPS for the token endpoint and Microsoft Graph.
    http: reqwest::Client,
}

/// Attempts of one Graph submission while Graph throttles (429) or is unavailable (503).
const GRAPH_ATTEMPTS: u32 = 3;
/// The longest `Retry-After` waited for within one submission.
const GRAPH_MAX_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// One submission: its outcome and, when kept, the masked SMTP transcript.
#[derive(Debug)]
pub(crate) struct Attempt {
    /// Exchange's acceptance, or why not.
    pub(crate) outcome: Result<Delivery, SubmitError>,
    /// The transcript, masked (empty unless kept).
    pub(crate) transcript: Vec<String>,
}

impl Submitter {
    /// Prepares TLS, HTTPS and the token provider for `account`.
    pub(crate) fn new(account: Account, options: &Options) -> Result<Self, SubmitError> {
        let tls = crate::tls::client_config(account.ca_file.as_deref())?;
        let http = http_client(&tls)?;
        let source = account.token_source().filter(|_| account.needs_token());
        let provider = source.map(|source| {
            Arc::new(TokenProvider::new(
                http.clone(),
                source,
                options.retry,
                options.disk_cache.clone(),
            ))
        });
        let settings = smtp::Settings {
            helo_name: helo_name(),
            tls,
            timeouts: options.timeouts,
            keep_transcript: options.keep_transcript,
        };
        Ok(Self {
            account,
            settings,
            provider,
            http,
        })
    }

    /// The account.
    pub(crate) fn account(&self) -> &Account {
        &self.account
    }

    /// The token provider, for OAuth accounts.
    pub(crate) fn provider(&self) -> Option<&Arc<TokenProvider>> {
        self.provider.as_ref()
    }

    /// What to authenticate with: a current token, or the password (ACS: the client secret).
    pub(crate) async fn credentials(&self) -> Result<Credentials, SubmitError> {
        let token = match &self.provider {
            Some(provider) => Some(provider.token().await?.token),
            None => None,
        };
        Ok(self
            .account
            .smtp_credentials(token.as_ref())
            .expect("an account that needs a token has a provider"))
    }

    /// Authenticates `connection` with `credentials`. HVE refuses a token it finds too close to
    /// its expiry (`501 5.5.127 … Token will expire soon`) even when ours thought it fresh (the
    /// clocks differ): then a new token at once, and AUTH once more.
    async fn authenticate(&self, connection: &mut Connection, credentials: Credentials) -> Result<(), SubmitError> {
        let Err(e) = connection.authenticate(&credentials).await else {
            return Ok(());
        };
        let Some(provider) = self.provider.as_ref().filter(|_| token_expires_soon(&e)) else {
            return Err(e.into());
        };
        tracing::info!(account = %self.account.name, "the server finds the token too close to its expiry; fetching a new one");
        let token = provider.refresh().await?.token;
        let credentials = self.account.smtp_credentials(Some(&token)).expect("a token was given");
        Ok(connection.authenticate(&credentials).await?)
    }

    /// Opens an authenticated connection.
    pub(crate) async fn connect(&self) -> Result<Connection, SubmitError> {
        // The token first: a configuration error there should not cost an SMTP connection.
        let credentials = self.credentials().await?;
        let mut connection = Connection::open(&self.account.smtp, &self.settings).await?;
        self.authenticate(&mut connection, credentials).await?;
        Ok(connection)
    }

    /// HVE's refusal of recipients outside the tenant, before anything is sent.
    pub(crate) fn check_recipients(&self, outgoing: &Outgoing) -> Result<(), SubmitError> {
        let external = self.account.external_recipients(&outgoing.envelope.to);
        if external.is_empty() {
            return Ok(());
        }
        Err(SubmitError::ExternalRecipients {
            recipients: external.into_iter().map(str::to_owned).collect(),
            domains: self.account.internal_domains.join(", "),
        })
    }

    /// Sends one message on a new connection (SMTP) or request (Graph).
    pub(crate) async fn submit(&self, outgoing: &Outgoing) -> Attempt {
        if let Err(e) = self.check_recipients(outgoing) {
            return Attempt {
                outcome: Err(e),
                transcript: Vec::new(),
            };
        }
        if self.account.transport == Transport::Graph {
            return Attempt {
                outcome: self.submit_graph(outgoing).await,
                transcript: Vec::new(),
            };
        }
        let credentials = match self.credentials().await {
            Ok(c) => c,
            Err(e) => {
                return Attempt {
                    outcome: Err(e),
                    transcript: Vec::new(),
                };
            }
        };
        let mut connection = match Connection::open(&self.account.smtp, &self.settings).await {
            Ok(c) => c,
            Err(e) => {
                return Attempt {
                    outcome: Err(e.into()),
                    transcript: Vec::new(),
                };
            }
        };
        let result = match self.authenticate(&mut connection, credentials).await {
            Ok(()) => connection
                .send_mail(&outgoing.envelope, &outgoing.content)
                .await
                .map_err(SubmitError::from),
            Err(e) => Err(e),
        };
        let transcript = connection.take_transcript();
        connection.quit().await;
        Attempt {
            outcome: result,
            transcript,
        }
    }
}

impl Submitter {
    /// Graph `sendMail`, waiting out throttling (`Retry-After`, at most a minute) up to
    /// [`GRAPH_ATTEMPTS`] times.
    async fn submit_graph(&self, outgoing: &Outgoing) -> Result<Delivery, SubmitError> {
        let mut attempt = 1;
        loop {
            let e = match self.submit_graph_once(outgoing).await {
                Err(e @ SubmitError::Graph(_)) => e,
                other => return other,
            };
            let verdict = Verdict::of(&e);
            if !verdict.is_transient() || attempt >= GRAPH_ATTEMPTS {
                return Err(e);
            }
            let backoff = crate::backoff::doubling(std::time::Duration::from_secs(2), attempt, GRAPH_MAX_WAIT);
            let wait = verdict.retry_after.unwrap_or(backoff).min(GRAPH_MAX_WAIT);
            tracing::info!(error = %e, attempt, wait_ms = wait.as_millis() as u64, "Graph did not take the message; trying again");
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    /// One Graph `sendMail` request (the relay's queue does its own retrying).
    pub(crate) async fn submit_graph_once(&self, outgoing: &Outgoing) -> Result<Delivery, SubmitError> {
        let message = crate::graph::message_for_graph(outgoing)?;
        let provider = self.provider.as_ref().ok_or(SubmitError::GraphWithoutOAuth)?;
        let token = provider.token().await?.token;
        crate::graph::send(
            &self.http,
            &self.account.graph_url,
            &self.account.mailbox.value,
            &token,
            &message,
            self.account.save_to_sent_items,
        )
        .await?;
        // Graph has no reply text of its own: its 202 is shown in SMTP's terms so that callers
        // treat both transports alike.
        let text = "2.0.0 Accepted by Microsoft Graph sendMail (HTTP 202)".to_owned();
        Ok(Delivery {
            reply: smtp::Reply::new(250, vec![text]),
            rejected: Vec::new(),
        })
    }
}

/// HVE's `501 5.5.127 Invalid XOAUTH2 auth data - Token will expire soon` (tarickb/sasl-xoauth2#98).
pub(crate) fn token_expires_soon(error: &SmtpError) -> bool {
    matches!(error, SmtpError::Rejected { reply, .. }
        if reply.enhanced().is_some_and(|e| e.to_string() == "5.5.127"))
}

/// An HTTPS client with the same trust anchors as SMTP.
pub(crate) fn http_client(tls: &Arc<rustls::ClientConfig>) -> Result<reqwest::Client, SubmitError> {
    reqwest::Client::builder()
        .use_preconfigured_tls((**tls).clone())
        .timeout(std::time::Duration::from_secs(30))
        .connect_timeout(std::time::Duration::from_secs(10))
        .user_agent(concat!("m365-mailer/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(SubmitError::Http)
}

/// The name to say EHLO with: the host name when it looks like one, else `localhost`.
fn helo_name() -> String {
    crate::system::host_name()
        .filter(|name| {
            name.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        })
        .unwrap_or_else(|| "localhost".to_owned())
}

#[cfg(test)]
#[path = "submit_tests.rs"]
mod tests;
