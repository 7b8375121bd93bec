//! The managed identity endpoints: Azure VM's IMDS and App Service's `IDENTITY_ENDPOINT`, for
//! the tenants' user-assigned managed identities. They issue the token an app registration
//! accepts as a federated credential (audience `api://AzureADTokenExchange`, issuer Entra's v2.0
//! issuer of the tenant, subject the identity's principal id), which is the documented way to
//! use a managed identity for an app registration.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use jsonwebtoken::{Algorithm, Header};
use serde::Serialize;

use crate::Shared;
use crate::model::{ManagedIdentity, Scenario};

/// The header App Service's endpoint requires (`X-IDENTITY-HEADER: $IDENTITY_HEADER`); the
/// emulator's value.
pub const IDENTITY_HEADER: &str = "emulator-identity-header";

/// Lifetime of managed identity tokens (Azure's are about a day).
const LIFETIME_SECS: i64 = 86_400;

/// The issuer of a tenant's managed identity tokens.
pub fn issuer(tenant_id: &str) -> String {
    format!(
        "https://login.microsoftonline.com/{}/v2.0",
        tenant_id.to_ascii_lowercase()
    )
}

#[derive(Serialize)]
struct IdentityClaims {
    aud: String,
    iss: String,
    sub: String,
    oid: String,
    azp: String,
    tid: String,
    iat: i64,
    nbf: i64,
    exp: i64,
}

/// `GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource=…[&client_id=…]` with
/// `Metadata: true`.
pub(crate) async fn imds(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if headers.get("metadata").and_then(|v| v.to_str().ok()) != Some("true") {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Required metadata header not specified",
        );
    }
    issue(&shared, &query, true)
}

/// `GET /msi/token?api-version=2019-08-01&resource=…[&client_id=…]` with `X-IDENTITY-HEADER`.
pub(crate) async fn app_service(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if headers.get("x-identity-header").and_then(|v| v.to_str().ok()) != Some(IDENTITY_HEADER) {
        return error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "X-IDENTITY-HEADER is missing or wrong",
        );
    }
    issue(&shared, &query, false)
}

fn issue(shared: &Shared, query: &HashMap<String, String>, imds: bool) -> Response {
    let Some(resource) = query.get("resource") else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Required query variable 'resource' is missing",
        );
    };
    let audience = resource.trim_end_matches("/.default");
    if !audience.starts_with("api://AzureADTokenExchange") {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_resource",
            "The emulator issues managed identity tokens for api://AzureADTokenExchange only (a federated credential of an app registration)",
        );
    }
    let scenario = shared.scenario();
    let (tenant_id, identity) = match find(&scenario, query.get("client_id").map(String::as_str)) {
        Ok(found) => found,
        Err(message) => return error(StatusCode::BAD_REQUEST, "invalid_request", &message),
    };
    let now = shared.clock.now().unix_timestamp();
    let claims = IdentityClaims {
        aud: audience.to_owned(),
        iss: issuer(&tenant_id),
        sub: identity.principal_id.to_ascii_lowercase(),
        oid: identity.principal_id.to_ascii_lowercase(),
        azp: identity.client_id.to_ascii_lowercase(),
        tid: tenant_id.to_ascii_lowercase(),
        iat: now,
        nbf: now,
        exp: now + LIFETIME_SECS,
    };
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(shared.signing.kid.clone());
    let token = jsonwebtoken::encode(&header, &claims, shared.signing.encoding_key()).expect("RS256 signing");
    shared.stats.update(|c| c.managed_identity_tokens += 1);
    let mut body = serde_json::json!({
        "access_token": token,
        "client_id": identity.client_id,
        "expires_on": (now + LIFETIME_SECS).to_string(),
        "resource": resource,
        "token_type": "Bearer",
    });
    if imds {
        // IMDS sends numbers as strings.
        body["expires_in"] = LIFETIME_SECS.to_string().into();
        body["ext_expires_in"] = LIFETIME_SECS.to_string().into();
        body["not_before"] = now.to_string().into();
    }
    axum::Json(body).into_response()
}

/// The identity `client_id` selects, or the only one there is.
fn find(scenario: &Scenario, client_id: Option<&str>) -> Result<(String, ManagedIdentity), String> {
    let all: Vec<(String, &ManagedIdentity)> = scenario
        .tenants
        .iter()
        .flat_map(|t| t.managed_identities.iter().map(|m| (t.id.clone(), m)))
        .collect();
    let found = match client_id {
        Some(id) => all.iter().find(|(_, m)| m.client_id.eq_ignore_ascii_case(id)),
        None if all.len() == 1 => all.first(),
        None => {
            return Err(
                "Multiple user assigned identities exist, please specify the clientId / resourceId of the identity in the token request"
                    .to_owned(),
            );
        }
    };
    found
        .map(|(t, m)| (t.clone(), (*m).clone()))
        .ok_or_else(|| "Identity not found".to_owned())
}

fn error(status: StatusCode, error: &str, description: &str) -> Response {
    let body = serde_json::json!({ "error": error, "error_description": description });
    (status, axum::Json(body)).into_response()
}
