//! The token provider: acquires app-only tokens from the token endpoint and keeps them.
//!
//! - One request for many callers: concurrent callers wait for the single fetch in flight.
//! - Refreshed early: when fewer than 10 minutes remain (Exchange's high-volume endpoint refuses
//!   tokens that "expire soon") or when Entra's `refresh_in` has passed.
//! - A still-valid token keeps being used when a refresh fails.
//! - Transient failures (5xx, 429 with `Retry-After`, network errors, Microsoft's retryable
//!   AADSTS codes) are retried with backoff; permanent ones are not.
//! - Optionally cached on disk (file 0600 in a 0700 directory) so consecutive CLI runs share one
//!   token; long-running modes refresh in the background ([`TokenProvider::spawn_refresher`]).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use super::assertion::{self, Assertion, AssertionStyle};
use super::credential::ClientCredential;
use super::response::{self, EntraError, MalformedResponse};
use crate::clock::{self, Timestamp};
use crate::secret::Secret;

/// Refresh when less than this remains.
pub(crate) const REFRESH_MARGIN: Duration = Duration::from_secs(600);
/// A token with less than this left is not handed out: it could expire during the SMTP session.
pub(crate) const MINIMUM_VALIDITY: Duration = Duration::from_secs(60);
/// No token is kept longer than this, whatever its answer says (Entra's live at most a day): a
/// huge or corrupted `expires_in` must neither overflow nor keep a token for ever.
pub(crate) const LONGEST_LIFETIME: Duration = Duration::from_secs(86_400);

/// What to ask the token endpoint for, and with which credential.
#[derive(Debug, Clone)]
pub(crate) struct TokenSource {
    /// The full token endpoint URL.
    pub(crate) token_endpoint: String,
    /// Application (client) id.
    pub(crate) client_id: String,
    /// Scope, e.g. `https://outlook.office365.com/.default`.
    pub(crate) scope: String,
    /// Secret or certificate.
    pub(crate) credential: ClientCredential,
    /// Assertion algorithm for certificates.
    pub(crate) assertion_style: AssertionStyle,
    /// Send the certificate chain (`x5c`) in assertions (subject name + issuer authentication).
    pub(crate) send_x5c: bool,
    /// The least a token must have left to be handed out ([`MINIMUM_VALIDITY`], more for a
    /// server that refuses tokens close to their expiry).
    pub(crate) minimum_validity: Duration,
}

/// An access token and when to replace it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AccessToken {
    /// The bearer token.
    #[serde(with = "secret_string")]
    pub(crate) token: Secret,
    /// When it expires.
    #[serde(with = "clock::unix_secs")]
    pub(crate) expires_at: Timestamp,
    /// When a refresh should be attempted.
    #[serde(with = "clock::unix_secs")]
    pub(crate) refresh_at: Timestamp,
}

mod secret_string {
    use crate::secret::Secret;

    pub(super) fn serialize<S: serde::Serializer>(secret: &Secret, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(secret.expose())
    }

    pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
        <String as serde::Deserialize>::deserialize(d).map(Secret::new)
    }
}

/// What to do with a cached token at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Freshness {
    /// Use it.
    Fresh,
    /// Use it, but try to replace it.
    Refresh,
    /// Do not use it.
    Expired,
}

impl AccessToken {
    /// From a token response received at `now`, for a server that takes tokens with at least
    /// `minimum` left.
    pub(crate) fn from_response(response: response::TokenResponse, now: Timestamp, minimum: Duration) -> Self {
        let lifetime = |secs: u64| Duration::from_secs(secs).min(LONGEST_LIFETIME);
        let expires_in = lifetime(response.expires_in);
        let expires_at = now + expires_in;
        // Ten minutes before expiry (twice the minimum when that is more), but never before
        // half the token's life: a token shorter than twice the margin would otherwise be "due
        // for refresh" the moment it arrives.
        let margin = REFRESH_MARGIN.max(minimum * 2);
        let by_margin = (expires_at - margin).max(now + expires_in / 2);
        let refresh_at = match response.refresh_in {
            Some(r) => by_margin.min(now + lifetime(r)),
            None => by_margin,
        };
        Self {
            token: response.access_token,
            expires_at,
            refresh_at,
        }
    }

    /// Whether to use it at `now`, for a server that takes tokens with at least `minimum` left.
    pub(crate) fn freshness(&self, now: Timestamp, minimum: Duration) -> Freshness {
        if now >= self.expires_at - minimum {
            Freshness::Expired
        } else if now >= self.refresh_at {
            Freshness::Refresh
        } else {
            Freshness::Fresh
        }
    }
}

/// How transient failures are retried.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetryPolicy {
    /// Attempts in all, the first included.
    pub(crate) attempts: u32,
    /// Delay before the second attempt; doubled each time.
    pub(crate) base_delay: Duration,
    /// Longest delay between attempts (also caps `Retry-After`).
    pub(crate) max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 4,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }
}

/// Why no token could be had.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TokenError {
    /// Entra answered with an error.
    #[error("the token endpoint refused: {0}")]
    Entra(Box<EntraError>),
    /// The token endpoint could not be reached.
    #[error("cannot reach the token endpoint {url}: {}", crate::tls::error_chain(source))]
    Network {
        /// The endpoint.
        url: String,
        /// What failed (connection, TLS, timeout), without the URL.
        source: reqwest::Error,
    },
    /// The answer was not a token.
    #[error(transparent)]
    Malformed(#[from] MalformedResponse),
    /// The client assertion could not be signed.
    #[error("signing the client assertion failed: {0}")]
    Sign(String),
    /// The managed identity's token could not be had.
    #[error(transparent)]
    ManagedIdentity(#[from] super::managed_identity::ManagedIdentityError),
    /// The federated token file could not be read.
    #[error("cannot read the federated token file {path}: {source}")]
    FederatedToken {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl TokenError {
    /// Whether trying again later can succeed.
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            TokenError::Entra(e) => e.is_transient(),
            TokenError::Network { .. } => true,
            TokenError::ManagedIdentity(e) => e.transient,
            TokenError::Malformed(_) | TokenError::Sign(_) | TokenError::FederatedToken { .. } => false,
        }
    }
}

/// Where tokens are kept between runs of the CLI.
#[derive(Debug, Clone)]
pub(crate) struct DiskCache {
    dir: PathBuf,
}

impl DiskCache {
    /// `$XDG_CACHE_HOME/m365-mailer/tokens`, else `~/.cache/m365-mailer/tokens`.
    pub(crate) fn default_location() -> Option<Self> {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
        Some(Self::at(base.join("m365-mailer").join("tokens")))
    }

    /// A cache in `dir`.
    pub(crate) fn at(dir: PathBuf) -> Self {
        Self { dir }
    }

    fn path(&self, source: &TokenSource) -> PathBuf {
        let key = format!(
            "{}\n{}\n{}",
            source.token_endpoint,
            source.client_id.to_ascii_lowercase(),
            source.scope
        );
        let digest = sha2::Sha256::digest(key.as_bytes());
        let name: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
        self.dir.join(format!("{name}.json"))
    }

    /// The cached token, if the cache is this user's alone: a file another user could have
    /// planted (a link, another owner) or can read is not used, and the reason logged.
    fn load(&self, source: &TokenSource) -> Option<AccessToken> {
        let path = self.path(source);
        if let Err(e) = crate::private::check(&self.dir, true).and_then(|()| crate::private::check(&path, false)) {
            tracing::warn!("the token cache is not used: {e}");
            return None;
        }
        let bytes = std::fs::read(path).ok()?;
        let token: AccessToken = serde_json::from_slice(&bytes).ok()?;
        // A token that claims to live longer than any does was not written by this program.
        (token.expires_at <= Timestamp::now() + LONGEST_LIFETIME).then_some(token)
    }

    /// Writes the token to a new private file beside the old one, then renames it over: never
    /// through a file or link that is already there.
    fn store(&self, source: &TokenSource, token: &AccessToken) -> std::io::Result<()> {
        crate::private::create_dir(&self.dir)?;
        let path = self.path(source);
        let temp = path.with_extension(format!("tmp{}-{}", std::process::id(), uuid::Uuid::new_v4().simple()));
        let bytes = serde_json::to_vec(token).map_err(std::io::Error::other)?;
        crate::private::write_new(&temp, &bytes)?;
        std::fs::rename(&temp, &path).inspect_err(|_| {
            let _ = std::fs::remove_file(&temp);
        })
    }
}

/// Acquires and keeps tokens for one source.
#[derive(Debug)]
pub(crate) struct TokenProvider {
    http: reqwest::Client,
    source: TokenSource,
    retry: RetryPolicy,
    disk: Option<DiskCache>,
    cached: Mutex<Option<AccessToken>>,
    assertion: Mutex<Option<Assertion>>,
    /// The managed identity's token and its expiry, reused until 5 minutes before it.
    identity_token: tokio::sync::Mutex<Option<(Secret, Timestamp)>>,
    fetching: tokio::sync::Mutex<()>,
    requests: AtomicU64,
    failures: AtomicU64,
}

impl TokenProvider {
    /// A provider using `http` (built with the configured trust anchors).
    pub(crate) fn new(http: reqwest::Client, source: TokenSource, retry: RetryPolicy, disk: Option<DiskCache>) -> Self {
        let cached = disk.as_ref().and_then(|d| d.load(&source));
        Self {
            http,
            source,
            retry,
            disk,
            cached: Mutex::new(cached),
            assertion: Mutex::new(None),
            identity_token: tokio::sync::Mutex::new(None),
            fetching: tokio::sync::Mutex::new(()),
            requests: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        }
    }

    /// Requests sent to the token endpoint so far.
    pub(crate) fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Requests to the token endpoint that failed.
    pub(crate) fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// A usable token: the cached one, or a new one.
    pub(crate) async fn token(&self) -> Result<AccessToken, TokenError> {
        let now = Timestamp::now();
        let cached = self.cached();
        match cached.as_ref().map(|t| t.freshness(now, self.source.minimum_validity)) {
            Some(Freshness::Fresh) => return Ok(cached.expect("checked")),
            Some(Freshness::Refresh) => {
                let current = cached.expect("checked");
                // Someone else is refreshing: the current token is still good.
                let Ok(_guard) = self.fetching.try_lock() else {
                    return Ok(current);
                };
                return match self.fetch().await {
                    Ok(token) => Ok(token),
                    Err(e) => {
                        tracing::warn!(error = %e, "token refresh failed; using the current token until it expires");
                        Ok(current)
                    }
                };
            }
            Some(Freshness::Expired) | None => {}
        }
        let _guard = self.fetching.lock().await;
        // A concurrent caller may have fetched while we waited.
        if let Some(token) = self.cached()
            && token.freshness(Timestamp::now(), self.source.minimum_validity) != Freshness::Expired
        {
            return Ok(token);
        }
        self.fetch().await
    }

    /// Replaces the cached token now, whatever its freshness (the background refresher).
    pub(crate) async fn refresh(&self) -> Result<AccessToken, TokenError> {
        let _guard = self.fetching.lock().await;
        self.fetch().await
    }

    /// Keeps the token fresh in the background so no message waits on the token endpoint.
    pub(crate) fn spawn_refresher(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let provider = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                let now = Timestamp::now();
                // At least a second between refreshes, whatever the token says.
                let wait = provider.cached().map_or(Duration::ZERO, |t| {
                    now.until(t.refresh_at).clamp(Duration::from_secs(1), LONGEST_LIFETIME)
                });
                tokio::time::sleep(wait).await;
                if let Err(e) = provider.refresh().await {
                    tracing::warn!(error = %e, "background token refresh failed; retrying in 30 s");
                    tokio::time::sleep(Duration::from_secs(30)).await;
                }
            }
        })
    }

    /// The least a token must have left to be presented.
    pub(crate) fn minimum_validity(&self) -> Duration {
        self.source.minimum_validity
    }

    /// The token held now, if any, without asking the endpoint.
    pub(crate) fn current(&self) -> Option<AccessToken> {
        self.cached()
    }

    fn cached(&self) -> Option<AccessToken> {
        self.cached
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Asks the token endpoint, retrying transient failures; caller holds `fetching`.
    async fn fetch(&self) -> Result<AccessToken, TokenError> {
        let mut attempt = 1;
        loop {
            let (result, retry_after) = self.request_once().await;
            if result.is_err() {
                self.failures.fetch_add(1, Ordering::Relaxed);
            }
            match result {
                Ok(token) => {
                    *self.cached.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(token.clone());
                    if let Some(disk) = &self.disk
                        && let Err(e) = disk.store(&self.source, &token)
                    {
                        tracing::warn!(error = %e, "could not write the token cache");
                    }
                    return Ok(token);
                }
                Err(e) if e.is_transient() && attempt < self.retry.attempts => {
                    let backoff = crate::backoff::doubling(self.retry.base_delay, attempt, self.retry.max_delay);
                    let delay = retry_after.unwrap_or(backoff).min(self.retry.max_delay);
                    tracing::info!(error = %e, attempt, delay_ms = delay.as_millis() as u64, "token request failed; retrying");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn request_once(&self) -> (Result<AccessToken, TokenError>, Option<Duration>) {
        let external = match &self.source.credential {
            ClientCredential::ManagedIdentity(identity) => match self.identity_token(identity).await {
                Ok(token) => Some(token),
                Err(e) => return (Err(e.into()), None),
            },
            _ => None,
        };
        let form = match self.form(external.as_ref()) {
            Ok(form) => form,
            Err(e) => return (Err(e), None),
        };
        self.requests.fetch_add(1, Ordering::Relaxed);
        let url = &self.source.token_endpoint;
        let sent = self
            .http
            .post(url)
            .header("client-request-id", uuid::Uuid::new_v4().to_string())
            .header("accept", "application/json")
            .form(&form)
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => {
                return (
                    Err(TokenError::Network {
                        url: url.clone(),
                        source: e.without_url(),
                    }),
                    None,
                );
            }
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = match response.bytes().await {
            Ok(b) => b,
            Err(e) => {
                return (
                    Err(TokenError::Network {
                        url: url.clone(),
                        source: e.without_url(),
                    }),
                    retry_after,
                );
            }
        };
        let result = if status == 200 {
            response::parse_token(&body)
                .map(|r| AccessToken::from_response(r, Timestamp::now(), self.source.minimum_validity))
                .map_err(TokenError::from)
        } else {
            Err(TokenError::Entra(Box::new(response::parse_error(status, &body))))
        };
        (result, retry_after)
    }

    /// The managed identity's token, from the cache while it has 5 minutes left.
    async fn identity_token(
        &self,
        identity: &super::managed_identity::ManagedIdentity,
    ) -> Result<Secret, super::managed_identity::ManagedIdentityError> {
        let mut slot = self.identity_token.lock().await;
        if let Some((token, expires)) = slot.as_ref()
            && Timestamp::now().until(*expires) > Duration::from_secs(300)
        {
            return Ok(token.clone());
        }
        let (token, expires) = identity.token(&self.http).await?;
        *slot = Some((token.clone(), expires));
        Ok(token)
    }

    /// The form of a token request; `external` is the managed identity's token.
    fn form(&self, external: Option<&Secret>) -> Result<Vec<(&'static str, String)>, TokenError> {
        let source = &self.source;
        let mut form = vec![
            ("grant_type", "client_credentials".to_owned()),
            ("client_id", source.client_id.clone()),
            ("scope", source.scope.clone()),
        ];
        match &source.credential {
            ClientCredential::Secret(secret) => form.push(("client_secret", secret.expose().to_owned())),
            ClientCredential::Certificate(cert) => {
                let now = Timestamp::now();
                let mut slot = self.assertion.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                let assertion = match slot.as_ref().filter(|a| a.reusable(now)) {
                    Some(a) => a.clone(),
                    None => {
                        let signed = assertion::sign(
                            cert,
                            source.assertion_style,
                            source.send_x5c,
                            &source.client_id,
                            &source.token_endpoint,
                            now,
                        )
                        .map_err(|e| TokenError::Sign(e.to_string()))?;
                        *slot = Some(signed.clone());
                        signed
                    }
                };
                push_assertion(&mut form, &assertion.jwt);
            }
            ClientCredential::FederatedTokenFile(path) => {
                let token =
                    super::credential::read_federated_token(path).map_err(|source| TokenError::FederatedToken {
                        path: path.clone(),
                        source,
                    })?;
                push_assertion(&mut form, &token);
            }
            ClientCredential::ManagedIdentity(_) => {
                let token = external.ok_or_else(|| TokenError::Sign("no managed identity token".into()))?;
                push_assertion(&mut form, token);
            }
        }
        Ok(form)
    }
}

fn push_assertion(form: &mut Vec<(&'static str, String)>, jwt: &Secret) {
    form.push((
        "client_assertion_type",
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned(),
    ));
    form.push(("client_assertion", jwt.expose().to_owned()));
}

#[cfg(test)]
#[path = "provider_tests.rs"]
mod tests;
