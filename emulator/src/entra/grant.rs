//! The client-credentials decision, without I/O: given the scenario, the time, the tenant segment
//! of the URL and the request, either a [`Grant`] to mint a token from or the [`EntraError`]
//! Entra would answer. Checks run in Entra's order: tenant, request fields, client, credential,
//! scope.

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use time::OffsetDateTime;

use super::errors::EntraError;
use super::request::{Credential, JWT_BEARER, TokenRequest};
use crate::model::{Api, App, Scenario, Tenant};
use crate::pki::TokenSigningKey;

/// What a successful request is granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Tenant id.
    pub tenant_id: String,
    /// Client id.
    pub client_id: String,
    /// App display name.
    pub app_name: String,
    /// Service principal object id (`oid`).
    pub service_principal_id: String,
    /// The resource.
    pub api: Api,
    /// `aud` of the token.
    pub audience: String,
    /// Consented roles of the app on the resource; empty without admin consent.
    pub roles: Vec<String>,
    /// `appidacr`: `1` for a secret, `2` for a certificate.
    pub appidacr: &'static str,
}

/// Where the request arrived, to check an assertion's `aud` against.
#[derive(Debug, Clone, Copy)]
pub struct Endpoint<'a> {
    /// `Host` header of the request.
    pub host: &'a str,
}

/// Clock skew Entra tolerates on assertion times.
pub(crate) const SKEW_SECS: i64 = 300;

/// Decides a token request. `key_for` gives the signing key of a federated token's issuer
/// when the emulator knows it.
pub fn authorize<'k>(
    scenario: &Scenario,
    now: OffsetDateTime,
    tenant_segment: &str,
    request: &TokenRequest,
    endpoint: Endpoint<'_>,
    key_for: impl FnOnce(&str) -> Option<&'k TokenSigningKey>,
) -> Result<Grant, EntraError> {
    let tenant = find_tenant(scenario, tenant_segment)?;
    let grant_type = request
        .grant_type
        .as_deref()
        .ok_or_else(|| EntraError::missing_parameter("grant_type"))?;
    if grant_type != "client_credentials" {
        return Err(EntraError::unsupported_grant(grant_type));
    }
    let client_id = match (&request.client_id, &request.credential) {
        (Some(id), _) => id.clone(),
        // RFC 7523: without `client_id` the assertion's issuer names the client.
        (None, Credential::Assertion { jwt, .. }) => unverified_claims(jwt)?.iss.unwrap_or_default(),
        (None, _) => return Err(EntraError::missing_parameter("client_id")),
    };
    let scope = request
        .scope
        .as_deref()
        .ok_or_else(|| EntraError::missing_parameter("scope"))?;
    let app = tenant
        .app_by_client_id(&client_id)
        .ok_or_else(|| unknown_client(scenario, tenant, &client_id))?;
    if !app.enabled {
        return Err(EntraError::app_disabled(&app.client_id, &app.display_name));
    }
    let appidacr = match &request.credential {
        Credential::None => return Err(EntraError::no_credential()),
        Credential::Secret(secret) => {
            check_secret(app, secret, now)?;
            "1"
        }
        Credential::Assertion { kind, jwt } => {
            match kind.as_deref() {
                Some(JWT_BEARER) => {}
                Some(other) => {
                    return Err(EntraError::malformed_assertion(&format!(
                        "Unsupported client_assertion_type '{other}'."
                    )));
                }
                None => return Err(EntraError::missing_parameter("client_assertion_type")),
            }
            // A client's own assertion is issued by the client; any other issuer is a
            // federated token.
            let iss = unverified_claims(jwt)?.iss.unwrap_or_default();
            if iss.eq_ignore_ascii_case(&client_id) {
                check_assertion(tenant, app, &client_id, jwt, now, endpoint)?;
            } else {
                super::federation::check(app, jwt, &iss, now, key_for)?;
            }
            "2"
        }
    };
    if app.service_principal_id.is_empty() {
        // Registered, but its enterprise application was never made.
        return Err(EntraError::missing_service_principal(
            &client_id,
            &tenant.id.to_ascii_lowercase(),
        ));
    }
    let (api, audience) = resource(tenant, scope)?;
    Ok(Grant {
        tenant_id: tenant.id.to_ascii_lowercase(),
        client_id: app.client_id.to_ascii_lowercase(),
        app_name: app.display_name.clone(),
        service_principal_id: app.service_principal_id.to_ascii_lowercase(),
        api,
        audience: audience.to_owned(),
        roles: app.roles_for(api),
        appidacr,
    })
}

/// The tenant a URL segment names, or the error for an unusable segment.
pub(crate) fn find_tenant<'a>(scenario: &'a Scenario, segment: &str) -> Result<&'a Tenant, EntraError> {
    if ["common", "consumers", "organizations"]
        .iter()
        .any(|s| segment.eq_ignore_ascii_case(s))
    {
        return Err(EntraError::multi_tenant_endpoint(segment));
    }
    if uuid::Uuid::try_parse(segment).is_err() && !crate::model::is_dns_name(segment) {
        return Err(EntraError::malformed_tenant(segment));
    }
    scenario
        .tenant(segment)
        .ok_or_else(|| EntraError::tenant_not_found(segment))
}

/// An app that is not in the tenant: AADSTS7000229 when it is a multitenant app of another
/// tenant (its service principal was never created here), else AADSTS700016.
fn unknown_client(scenario: &Scenario, tenant: &Tenant, client_id: &str) -> EntraError {
    let foreign_multitenant = scenario
        .tenants
        .iter()
        .filter(|t| !t.id.eq_ignore_ascii_case(&tenant.id))
        .filter_map(|t| t.app_by_client_id(client_id))
        .any(|app| app.multitenant);
    if foreign_multitenant {
        EntraError::missing_service_principal(client_id, &tenant.id.to_ascii_lowercase())
    } else {
        EntraError::unknown_client(client_id, &tenant.name)
    }
}

fn check_secret(app: &App, secret: &str, now: OffsetDateTime) -> Result<(), EntraError> {
    let registered = app
        .secrets
        .iter()
        .find(|s| s.value == secret)
        .ok_or_else(|| EntraError::wrong_secret(&app.client_id))?;
    match registered.expires {
        Some(expires) if expires.0 <= now => Err(EntraError::expired_secret(&app.client_id)),
        _ => Ok(()),
    }
}

#[derive(Debug, Deserialize)]
struct AssertionClaims {
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<serde_json::Value>,
    /// NumericDate may have a fraction (MSAL for Python sends one).
    exp: Option<f64>,
    nbf: Option<f64>,
}

fn unverified_claims(jwt: &str) -> Result<AssertionClaims, EntraError> {
    jsonwebtoken::dangerous::insecure_decode::<AssertionClaims>(jwt)
        .map(|data| data.claims)
        .map_err(|e| EntraError::malformed_assertion(&e.to_string()))
}

fn check_assertion(
    tenant: &Tenant,
    app: &App,
    client_id: &str,
    jwt: &str,
    now: OffsetDateTime,
    endpoint: Endpoint<'_>,
) -> Result<(), EntraError> {
    let header = jsonwebtoken::decode_header(jwt).map_err(|e| EntraError::malformed_assertion(&e.to_string()))?;
    if !matches!(header.alg, Algorithm::RS256 | Algorithm::PS256) {
        return Err(EntraError::malformed_assertion(&format!(
            "Unsupported algorithm {:?}.",
            header.alg
        )));
    }
    let (thumbprint, sha256) = match (&header.x5t_s256, &header.x5t) {
        (Some(t), _) => (t.as_str(), true),
        (None, Some(t)) => (t.as_str(), false),
        (None, None) => ("", false),
    };
    let shown = thumbprint_hex(thumbprint);
    let cert = app
        .registered_certificates()
        .find(|c| c.matches_thumbprint(thumbprint, sha256))
        .ok_or_else(|| EntraError::bad_assertion_key("The key was not found.", &shown, &app.client_id))?;

    let mut validation = Validation::new(header.alg);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let claims =
        jsonwebtoken::decode::<AssertionClaims>(jwt, &DecodingKey::from_rsa_der(&cert.rsa_public_key), &validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => EntraError::bad_assertion_key(
                    "The provided signature value did not match the expected signature value.",
                    &shown,
                    &app.client_id,
                ),
                _ => EntraError::malformed_assertion(&e.to_string()),
            })?
            .claims;
    if cert.not_after <= now {
        return Err(EntraError::bad_assertion_key(
            "The key used is expired.",
            &shown,
            &app.client_id,
        ));
    }

    let iss = claims.iss.as_deref().unwrap_or_default();
    if !iss.eq_ignore_ascii_case(client_id) {
        return Err(EntraError::assertion_client_mismatch());
    }
    if !claims.sub.as_deref().unwrap_or_default().eq_ignore_ascii_case(iss) {
        return Err(EntraError::subject_mismatch(&app.client_id));
    }
    let audiences: Vec<&str> = match &claims.aud {
        Some(serde_json::Value::String(a)) => vec![a.as_str()],
        Some(serde_json::Value::Array(a)) => a.iter().filter_map(serde_json::Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !audiences.iter().any(|aud| audience_names_tenant(aud, tenant, endpoint)) {
        return Err(EntraError::assertion_audience());
    }
    let exp = claims
        .exp
        .ok_or_else(|| EntraError::malformed_assertion("The 'exp' claim is missing."))? as i64;
    let nbf = claims.nbf.map(|n| n as i64);
    let t = now.unix_timestamp();
    if t > exp + SKEW_SECS || nbf.is_some_and(|nbf| t + SKEW_SECS < nbf) {
        return Err(EntraError::assertion_time_range(now, nbf, exp));
    }
    Ok(())
}

/// Entra accepts the tenant's token endpoint (v2 or v1) on its own host or on the host the
/// request reached, naming the tenant by id or by any verified domain.
fn audience_names_tenant(aud: &str, tenant: &Tenant, endpoint: Endpoint<'_>) -> bool {
    let Some(rest) = aud.strip_prefix("https://").or_else(|| aud.strip_prefix("http://")) else {
        return false;
    };
    let Some((host, path)) = rest.split_once('/') else {
        return false;
    };
    let host_ok = host.eq_ignore_ascii_case(endpoint.host) || host.eq_ignore_ascii_case("login.microsoftonline.com");
    let mut segments = path.trim_end_matches('/').split('/');
    let tenant_ok = segments.next().is_some_and(|t| tenant.answers_to(t));
    let tail: Vec<&str> = segments.collect();
    host_ok && tenant_ok && (tail == ["oauth2", "v2.0", "token"] || tail == ["oauth2", "token"])
}

/// The thumbprint as the portal shows it (upper-case hex), for error texts.
fn thumbprint_hex(thumbprint: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(thumbprint.trim_end_matches('='))
        .map(|bytes| bytes.iter().map(|b| format!("{b:02X}")).collect())
        .unwrap_or_else(|_| thumbprint.to_owned())
}

/// Resource identifiers (application ID URIs and app ids) the emulator knows, with the `aud`
/// their v1 tokens carry.
const RESOURCES: &[(&str, Api, &str)] = &[
    (
        "https://outlook.office365.com",
        Api::Exchange,
        "https://outlook.office365.com",
    ),
    (
        "00000002-0000-0ff1-ce00-000000000000",
        Api::Exchange,
        "https://outlook.office365.com",
    ),
    (
        "https://outlook.office.com",
        Api::Exchange,
        "https://outlook.office.com",
    ),
    ("https://graph.microsoft.com", Api::Graph, "https://graph.microsoft.com"),
    (
        "https://communication.azure.com",
        Api::Communication,
        "https://communication.azure.com",
    ),
    (
        "00000003-0000-0000-c000-000000000000",
        Api::Graph,
        "https://graph.microsoft.com",
    ),
];

/// OpenID Connect scopes Entra tolerates beside a `/.default` scope.
const RESERVED: &[&str] = &["openid", "profile", "offline_access", "email"];

fn resource(tenant: &Tenant, scope: &str) -> Result<(Api, &'static str), EntraError> {
    let mut resources: Vec<&str> = Vec::new();
    for item in scope.split_whitespace() {
        if RESERVED.iter().any(|r| item.eq_ignore_ascii_case(r)) {
            continue;
        }
        let Some(resource) = item.strip_suffix("/.default") else {
            return Err(EntraError::scope_without_default(scope));
        };
        let resource = resource.trim_end_matches('/');
        if !resources.iter().any(|r| r.eq_ignore_ascii_case(resource)) {
            resources.push(resource);
        }
    }
    match resources.as_slice() {
        [] | [""] => Err(EntraError::invalid_scope(scope)),
        [one] => {
            let known = RESOURCES.iter().find(|(id, _, _)| id.eq_ignore_ascii_case(one));
            match known {
                Some((_, Api::Exchange, _)) if !tenant.exchange_online => {
                    Err(EntraError::resource_not_in_tenant(one, &tenant.name))
                }
                Some((_, api, aud)) => Ok((*api, aud)),
                None => Err(EntraError::resource_not_in_tenant(one, &tenant.name)),
            }
        }
        _ => Err(EntraError::several_resources(scope)),
    }
}
