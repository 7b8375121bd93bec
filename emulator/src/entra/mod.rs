//! Entra ID: the v2.0 token endpoint for the client-credentials grant, and the discovery
//! documents Microsoft's MSAL reads before it asks for a token.

pub mod device;
mod errors;
pub mod federation;
mod grant;
pub mod identity;
mod request;
pub mod token;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

pub use errors::EntraError;
pub use grant::{Endpoint, Grant, authorize};
pub use request::{Credential, JWT_BEARER, TokenRequest};

use crate::Shared;
use crate::faults::{Effect, Stage, Subject};

/// Routes of the token endpoint and its discovery documents.
pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(token_endpoint))
        .route("/{tenant}/oauth2/v2.0/devicecode", post(devicecode_endpoint))
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(openid_configuration),
        )
        .route("/common/discovery/instance", get(instance_discovery))
        .route("/common/discovery/keys", get(keys))
        .route("/common/discovery/v2.0/keys", get(keys))
        .route("/{tenant}/discovery/keys", get(keys))
        .route("/{tenant}/discovery/v2.0/keys", get(keys))
        .route("/metadata/identity/oauth2/token", get(identity::imds))
        .route("/msi/token", get(identity::app_service))
}

async fn token_endpoint(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header_text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let correlation_id = header_text("client-request-id")
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let request = TokenRequest::parse(&body, header_text("authorization"));
    let client_id = request.client_id.clone().unwrap_or_default();
    let count = |issued: bool| {
        shared.stats.update(|c| {
            let entry = c.token_requests.entry(client_id.to_ascii_lowercase()).or_default();
            if issued {
                entry.issued += 1;
            } else {
                entry.failed += 1;
            }
        });
    };

    let subject = Subject {
        client_id: request.client_id.as_deref(),
        mailbox: None,
    };
    if let Some(effect) = shared.faults.check(Stage::Token, subject) {
        shared.stats.update(|c| c.faults_fired += 1);
        match effect {
            Effect::Delay(d) => tokio::time::sleep(d).await,
            Effect::Hang => std::future::pending::<()>().await,
            Effect::Drop { .. } => {
                count(false);
                return crate::http::drop_connection();
            }
            Effect::Http {
                status,
                body,
                retry_after,
            } => {
                count(false);
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
                let mut response = (status, body).into_response();
                if let Some(secs) = retry_after {
                    response
                        .headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
                }
                return response;
            }
            Effect::Aadsts(code) => {
                count(false);
                return EntraError::by_code(code).respond(shared.clock.now(), &correlation_id);
            }
            Effect::Reply(_) | Effect::AcceptThenDrop => {}
        }
    }

    let now = shared.clock.now();
    if request.grant_type.as_deref() == Some(device::DEVICE_CODE_GRANT) {
        let now_ms = i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX);
        let polled = shared
            .device
            .poll(request.device_code.as_deref().unwrap_or_default(), &client_id, now_ms);
        return match polled {
            Ok(approved) => {
                count(true);
                let lifetime = shared.scenario().entra.token_lifetime_secs;
                let access_token = device::mint(&approved, &shared.signing, now.unix_timestamp(), lifetime);
                tracing::info!(tenant = %approved.tenant_id, user = %approved.user.user_principal_name, scopes = ?approved.scopes, "delegated token issued (device code)");
                axum::Json(serde_json::json!({
                    "token_type": "Bearer",
                    "scope": approved.scopes.iter().map(|s| format!("https://graph.microsoft.com/{s}")).collect::<Vec<_>>().join(" "),
                    "expires_in": lifetime,
                    "ext_expires_in": lifetime,
                    "access_token": access_token,
                }))
                .into_response()
            }
            Err(error) => {
                count(false);
                error.respond(now, &correlation_id)
            }
        };
    }
    let host = header_text("host").unwrap_or_default();
    let scenario = shared.scenario();
    // Keys of federated token issuers: the stand-in clusters', and Entra's own for managed
    // identity tokens.
    let key_for = |iss: &str| {
        if scenario.issuers.iter().any(|i| i == iss) {
            Some(shared.issuer_key())
        } else if scenario.tenants.iter().any(|t| iss == identity::issuer(&t.id)) {
            Some(&shared.signing)
        } else {
            None
        }
    };
    let mut response = match authorize(&scenario, now, &tenant, &request, Endpoint { host }, key_for) {
        Ok(grant) => {
            count(true);
            let lifetime = scenario.entra.token_lifetime_secs;
            let access_token = token::mint(&grant, &shared.signing, now.unix_timestamp(), lifetime);
            tracing::info!(tenant = %grant.tenant_id, client_id = %grant.client_id, roles = ?grant.roles, "token issued");
            let mut body = serde_json::json!({
                "token_type": "Bearer",
                "expires_in": lifetime,
                "ext_expires_in": lifetime,
                "access_token": access_token,
            });
            if let Some(refresh_in) = scenario.entra.refresh_in_secs {
                body["refresh_in"] = refresh_in.into();
            }
            axum::Json(body).into_response()
        }
        Err(error) => {
            count(false);
            tracing::info!(%tenant, client_id = %client_id, code = error.code, "token request refused");
            error.respond(now, &correlation_id)
        }
    };
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store, no-cache"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(&correlation_id) {
        h.insert("client-request-id", v);
    }
    response
}

/// The device authorization request (`/devicecode`).
async fn devicecode_endpoint(State(shared): State<Arc<Shared>>, Path(tenant): Path<String>, body: Bytes) -> Response {
    let request = TokenRequest::parse(&body, None);
    let now = shared.clock.now();
    let now_ms = i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX);
    match shared.device.start(
        &shared.scenario(),
        &tenant,
        request.client_id.as_deref().unwrap_or_default(),
        request.scope.as_deref().unwrap_or_default(),
        now_ms,
    ) {
        Ok(started) => axum::Json(started).into_response(),
        Err(e) => e.respond(now, &uuid::Uuid::new_v4().to_string()),
    }
}

/// `https://host` of the request, as discovery documents name the endpoints.
fn origin(shared: &Shared, headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    let scheme = if shared.plain_http { "http" } else { "https" };
    format!("{scheme}://{host}")
}

async fn openid_configuration(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Response {
    let scenario = shared.scenario();
    let tid = match grant::find_tenant(&scenario, &tenant) {
        Ok(t) => t.id.to_ascii_lowercase(),
        // Entra answers discovery for an unknown tenant with 400 and the usual error body.
        Err(e) => return e.respond(shared.clock.now(), &uuid::Uuid::new_v4().to_string()),
    };
    let base = origin(&shared, &headers);
    axum::Json(serde_json::json!({
        "token_endpoint": format!("{base}/{tid}/oauth2/v2.0/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{base}/{tid}/discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": format!("{base}/{tid}/v2.0"),
        "request_uri_parameter_supported": false,
        "authorization_endpoint": format!("{base}/{tid}/oauth2/v2.0/authorize"),
        "device_authorization_endpoint": format!("{base}/{tid}/oauth2/v2.0/devicecode"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "end_session_endpoint": format!("{base}/{tid}/oauth2/v2.0/logout"),
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "tid", "oid", "ver"],
        "tenant_region_scope": "NA",
        "cloud_instance_name": "microsoftonline.com",
    }))
    .into_response()
}

#[derive(Deserialize)]
struct InstanceQuery {
    authorization_endpoint: Option<String>,
}

/// MSAL's instance discovery: maps an authorize endpoint to its tenant discovery document.
async fn instance_discovery(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<InstanceQuery>,
    headers: HeaderMap,
) -> Response {
    let base = origin(&shared, &headers);
    let host = base.split_once("://").map_or("", |(_, h)| h);
    // MSAL names the instance by host name alone, without the port.
    let hostname = |h: &str| {
        h.rsplit_once(':')
            .filter(|(_, port)| port.parse::<u16>().is_ok())
            .map_or(h, |(name, _)| name)
            .to_ascii_lowercase()
    };
    let tenant = query
        .authorization_endpoint
        .as_deref()
        .and_then(|url| url.split_once("://"))
        .and_then(|(_, rest)| rest.split_once('/'))
        .filter(|(h, _)| hostname(h) == hostname(host))
        .and_then(|(_, path)| path.split('/').next())
        .filter(|t| !t.is_empty());
    let Some(tenant) = tenant else {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(serde_json::json!({
                "error": "invalid_instance",
                "error_description": "AADSTS50049: Unknown or invalid instance.",
                "error_codes": [50049],
            })),
        )
            .into_response();
    };
    axum::Json(serde_json::json!({
        "tenant_discovery_endpoint": format!("{base}/{tenant}/v2.0/.well-known/openid-configuration"),
        "api-version": "1.1",
        "metadata": [{
            "preferred_network": host,
            "preferred_cache": host,
            "aliases": [host],
        }],
    }))
    .into_response()
}

async fn keys(State(shared): State<Arc<Shared>>) -> Response {
    axum::Json(serde_json::json!({ "keys": [shared.signing.jwk()] })).into_response()
}
