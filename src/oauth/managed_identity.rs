//! A user-assigned managed identity as the credential of an app registration: its token, for
//! the audience `api://AzureADTokenExchange`, is the client assertion of the app's own token
//! request (the app trusts the identity through a federated credential). This is Microsoft's
//! documented way to use a managed identity with an app registration; the identity's own token
//! is never sent to Exchange.
//!
//! The token comes from the Azure VM's instance metadata service (IMDS), or from App Service's
//! `IDENTITY_ENDPOINT` when that is set, as MSAL does.

use std::time::Duration;

use crate::clock::Timestamp;
use crate::secret::Secret;

/// The default IMDS token URL.
pub(crate) const IMDS: &str = "http://169.254.169.254/metadata/identity/oauth2/token";

/// Where the identity's token comes from.
#[derive(Debug, Clone)]
pub(crate) enum IdentityEndpoint {
    /// Azure VM (and VM scale sets, Arc): `Metadata: true`.
    Imds(String),
    /// App Service and Functions: `X-IDENTITY-HEADER`.
    AppService {
        /// `IDENTITY_ENDPOINT`.
        url: String,
        /// `IDENTITY_HEADER`.
        header: Secret,
    },
}

/// A user-assigned managed identity and the audience its token is requested for.
#[derive(Debug, Clone)]
pub(crate) struct ManagedIdentity {
    /// The identity's client id.
    pub(crate) client_id: String,
    /// The token exchange audience of the cloud (`api://AzureADTokenExchange`, …`USGov`, …`China`).
    pub(crate) audience: String,
    /// The endpoint.
    pub(crate) endpoint: IdentityEndpoint,
}

/// Why the identity's token could not be had.
#[derive(Debug, thiserror::Error)]
#[error("the managed identity endpoint {url}: {detail}")]
pub(crate) struct ManagedIdentityError {
    /// The endpoint.
    pub(crate) url: String,
    /// What happened.
    pub(crate) detail: String,
    /// A network failure or a 5xx/429, which can pass.
    pub(crate) transient: bool,
}

impl ManagedIdentity {
    /// The identity's token and its expiry.
    pub(crate) async fn token(&self, http: &reqwest::Client) -> Result<(Secret, Timestamp), ManagedIdentityError> {
        let (url, version) = match &self.endpoint {
            IdentityEndpoint::Imds(url) => (url, "2018-02-01"),
            IdentityEndpoint::AppService { url, .. } => (url, "2019-08-01"),
        };
        let fail = |detail: String, transient: bool| ManagedIdentityError {
            url: url.clone(),
            detail,
            transient,
        };
        let mut full = reqwest::Url::parse(url).map_err(|e| fail(format!("not a URL: {e}"), false))?;
        full.query_pairs_mut()
            .append_pair("api-version", version)
            .append_pair("resource", &self.audience)
            .append_pair("client_id", &self.client_id);
        let request = match &self.endpoint {
            IdentityEndpoint::Imds(_) => http.get(full).header("Metadata", "true"),
            IdentityEndpoint::AppService { header, .. } => http.get(full).header("X-IDENTITY-HEADER", header.expose()),
        };
        let response = request
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .map_err(|e| fail(format!("cannot reach it: {e}"), true))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| fail(e.to_string(), true))?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body);
            let transient = status.is_server_error() || status.as_u16() == 429;
            return Err(fail(format!("HTTP {}: {}", status.as_u16(), text.trim()), transient));
        }
        parse(&body).map_err(|detail| fail(detail, false))
    }
}

/// The token and its expiry from the endpoint's answer (`expires_on` as a number or a string of
/// one, as IMDS and App Service send it).
fn parse(body: &[u8]) -> Result<(Secret, Timestamp), String> {
    let json: serde_json::Value = serde_json::from_slice(body).map_err(|e| format!("the answer is not JSON: {e}"))?;
    let token = json["access_token"]
        .as_str()
        .filter(|t| !t.is_empty())
        .ok_or("the answer has no access_token")?;
    let number = |v: &serde_json::Value| v.as_i64().or_else(|| v.as_str()?.trim().parse().ok());
    let now = Timestamp::now();
    let expires_on = number(&json["expires_on"])
        .map(Timestamp::from_unix_secs)
        .or_else(|| Some(now + Duration::from_secs(number(&json["expires_in"])?.max(0).unsigned_abs())))
        .ok_or("the answer has neither expires_on nor expires_in")?;
    // Kept at most a day, whatever the answer says.
    let longest = now + crate::oauth::provider::LONGEST_LIFETIME;
    Ok((Secret::new(token.to_owned()), expires_on.min(longest)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn both_endpoints_answers_are_read() {
        let soon = crate::clock::Timestamp::now().unix_secs() + 3600;
        let imds = format!(
            r#"{{"access_token":"eyJ0","client_id":"c","expires_in":"3599","expires_on":"{soon}","resource":"api://AzureADTokenExchange","token_type":"Bearer"}}"#
        );
        let (token, expires) = super::parse(imds.as_bytes()).unwrap();
        assert_eq!((token.expose(), expires.unix_secs()), ("eyJ0", soon));
        let app_service = format!(
            r#"{{"access_token":"eyJ1","expires_on":{},"resource":"r","token_type":"Bearer"}}"#,
            soon + 1
        );
        assert_eq!(super::parse(app_service.as_bytes()).unwrap().1.unix_secs(), soon + 1);
        assert!(super::parse(br#"{"error":"invalid_request"}"#).is_err());
        for absurd in [
            r#"{"access_token":"a","expires_on":9223372036854775807}"#,
            r#"{"access_token":"a","expires_in":"9223372036854775807"}"#,
            r#"{"access_token":"a","expires_on":-9223372036854775808}"#,
        ] {
            let (_, expires) = super::parse(absurd.as_bytes()).unwrap();
            let longest = crate::clock::Timestamp::now() + std::time::Duration::from_secs(86_400);
            assert!(expires <= longest, "{absurd}");
        }
    }
}
