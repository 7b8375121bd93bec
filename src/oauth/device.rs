//! Signing an administrator in with the device authorization grant (RFC 8628), for the steps
//! that change the tenant (`setup --apply`, `credential rotate`): the code and the page to
//! enter it on are shown, the token endpoint is polled at the interval Entra asks for (longer
//! after `slow_down`), and the delegated Microsoft Graph token comes back as a [`Secret`] that
//! lives in memory only: never cached, never written, never logged.
//!
//! The public client is Microsoft Graph Command Line Tools, Microsoft's first-party app that
//! Microsoft Graph PowerShell signs in with (`docs/setup-apply.md` says why, and what it
//! means); `--sign-in-client-id` names another.
//!
//! What the answers mean is decided without I/O ([`DeviceCode::parse`], [`Poll::of`]).

use std::time::Duration;

use serde::Deserialize;

use super::response::{self, EntraError};
use crate::clock::Timestamp;
use crate::secret::Secret;

/// Microsoft Graph Command Line Tools' application id.
pub(crate) const GRAPH_COMMAND_LINE_TOOLS: &str = "14d82eec-204b-4c2f-b7e8-296a70dab67e";
/// The grant type of a device code redemption.
const GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// RFC 8628 §3.5: each `slow_down` adds this to the interval.
const SLOW_DOWN: Duration = Duration::from_secs(5);

/// What the administrator is shown, and what the client polls with.
#[derive(Debug, Clone)]
pub(crate) struct DeviceCode {
    /// The code to type.
    pub(crate) user_code: String,
    /// Where to type it.
    pub(crate) verification_uri: String,
    /// Entra's sentence saying both.
    pub(crate) message: String,
    /// When the code stops working.
    pub(crate) expires_at: Timestamp,
    /// Between polls.
    pub(crate) interval: Duration,
    device_code: Secret,
}

#[derive(Deserialize)]
struct RawDeviceCode {
    device_code: String,
    user_code: String,
    verification_uri: String,
    expires_in: u64,
    #[serde(default)]
    interval: Option<u64>,
    #[serde(default)]
    message: Option<String>,
}

/// Why no administrator token came.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DeviceError {
    /// Entra refused the request (a client it does not know, a scope, the tenant).
    #[error("Entra refused the sign-in: {0}")]
    Refused(Box<EntraError>),
    /// The administrator declined.
    #[error("the sign-in was declined at {0}: run the command again to start over")]
    Declined(String),
    /// Nobody entered the code in time.
    #[error("the code expired before anyone signed in with it: run the command again for a new one")]
    Expired,
    /// The answer could not be read.
    #[error("the answer of the device code endpoint cannot be read: {0}")]
    Malformed(String),
    /// Entra could not be reached.
    #[error("cannot reach Entra ID: {0}")]
    Unreachable(String),
}

impl DeviceCode {
    /// `/devicecode`'s answer (status and body), read at `now`.
    pub(crate) fn parse(status: u16, body: &[u8], now: Timestamp) -> Result<Self, DeviceError> {
        if !(200..300).contains(&status) {
            return Err(DeviceError::Refused(Box::new(response::parse_error(status, body))));
        }
        let raw: RawDeviceCode = serde_json::from_slice(body).map_err(|e| DeviceError::Malformed(e.to_string()))?;
        // A hostile or broken answer must not make the poll spin or sleep for ever.
        let interval = Duration::from_secs(raw.interval.unwrap_or(5).clamp(1, 60));
        let message = raw.message.unwrap_or_else(|| {
            format!(
                "To sign in, use a web browser to open the page {} and enter the code {} to authenticate.",
                raw.verification_uri, raw.user_code
            )
        });
        Ok(Self {
            user_code: raw.user_code,
            verification_uri: raw.verification_uri,
            message,
            expires_at: now + Duration::from_secs(raw.expires_in.min(3600)),
            interval,
            device_code: Secret::new(raw.device_code),
        })
    }
}

/// A delegated token of the signed-in administrator: memory only.
#[derive(Debug, Clone)]
pub(crate) struct AdminToken {
    /// The bearer token (about an hour: the steps that use it take seconds).
    pub(crate) access_token: Secret,
}

/// What one poll of the token endpoint says.
#[derive(Debug)]
pub(crate) enum Poll {
    /// Not yet: poll again after the interval.
    Pending,
    /// Too soon: poll again after a longer interval.
    SlowDown,
    /// Signed in.
    Done(AdminToken),
    /// Over.
    Failed(DeviceError),
}

impl Poll {
    /// The token endpoint's answer (status and body).
    pub(crate) fn of(status: u16, body: &[u8], verification_uri: &str) -> Self {
        if (200..300).contains(&status) {
            return match response::parse_token(body) {
                Ok(token) => Poll::Done(AdminToken {
                    access_token: token.access_token,
                }),
                Err(e) => Poll::Failed(DeviceError::Malformed(e.0)),
            };
        }
        let error = response::parse_error(status, body);
        match error.error.as_str() {
            "authorization_pending" => Poll::Pending,
            "slow_down" => Poll::SlowDown,
            "authorization_declined" => Poll::Failed(DeviceError::Declined(verification_uri.to_owned())),
            "expired_token" => Poll::Failed(DeviceError::Expired),
            _ => Poll::Failed(DeviceError::Refused(Box::new(error))),
        }
    }
}

/// Where to sign in: the authority host, the tenant, the public client, the scopes.
#[derive(Debug, Clone)]
pub(crate) struct SignIn {
    /// `https://login.microsoftonline.com` (or the cloud's, or `AZURE_AUTHORITY_HOST`).
    pub(crate) authority: String,
    /// Tenant id or domain.
    pub(crate) tenant: String,
    /// The public client.
    pub(crate) client_id: String,
    /// Delegated scopes, e.g. `https://graph.microsoft.com/Application.ReadWrite.All`.
    pub(crate) scopes: Vec<String>,
}

impl SignIn {
    fn url(&self, endpoint: &str) -> String {
        format!(
            "{}/{}/oauth2/v2.0/{endpoint}",
            self.authority.trim_end_matches('/'),
            self.tenant
        )
    }

    /// Asks for a device code.
    pub(crate) async fn start(&self, client: &reqwest::Client) -> Result<DeviceCode, DeviceError> {
        let scope = self.scopes.join(" ");
        let form = [("client_id", self.client_id.as_str()), ("scope", scope.as_str())];
        let (status, body) = post(client, &self.url("devicecode"), &form).await?;
        DeviceCode::parse(status, &body, Timestamp::now())
    }

    /// Polls until the administrator has signed in with `code`, declined, or the code expired.
    pub(crate) async fn wait(&self, client: &reqwest::Client, code: &DeviceCode) -> Result<AdminToken, DeviceError> {
        let mut interval = code.interval;
        loop {
            tokio::time::sleep(interval).await;
            if Timestamp::now() >= code.expires_at {
                return Err(DeviceError::Expired);
            }
            let form = [
                ("grant_type", GRANT),
                ("client_id", self.client_id.as_str()),
                ("device_code", code.device_code.expose()),
            ];
            let (status, body) = post(client, &self.url("token"), &form).await?;
            match Poll::of(status, &body, &code.verification_uri) {
                Poll::Pending => {}
                Poll::SlowDown => interval += SLOW_DOWN,
                Poll::Done(token) => return Ok(token),
                Poll::Failed(e) => return Err(e),
            }
        }
    }
}

async fn post(client: &reqwest::Client, url: &str, form: &[(&str, &str)]) -> Result<(u16, Vec<u8>), DeviceError> {
    let response = client
        .post(url)
        .form(form)
        .send()
        .await
        .map_err(|e| DeviceError::Unreachable(crate::tls::error_chain(&e)))?;
    let status = response.status().as_u16();
    let body = response
        .bytes()
        .await
        .map_err(|e| DeviceError::Unreachable(crate::tls::error_chain(&e)))?;
    Ok((status, body.to_vec()))
}

#[cfg(test)]
#[path = "device_tests.rs"]
mod tests;
