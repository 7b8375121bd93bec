//! Entra ID's token-endpoint errors, in its exact shape (fact sheet §2.6 and §3).
//!
//! The texts follow what Entra prints; where Microsoft does not document a code's `error` value or
//! HTTP status, the choice is recorded in `docs/emulator.md`.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use time::OffsetDateTime;

/// An error the token endpoint answers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntraError {
    /// The AADSTS number.
    pub code: u32,
    /// The OAuth `error` value.
    pub error: &'static str,
    /// HTTP status.
    pub status: u16,
    /// The text after `AADSTSnnnnn: `.
    pub message: String,
    /// `Retry-After`, for throttling errors.
    pub retry_after: Option<u64>,
}

const CERT_DOCS: &str = "Review the documentation at https://docs.microsoft.com/azure/active-directory/develop/active-directory-certificate-credentials .";

impl EntraError {
    pub(crate) fn new(code: u32, error: &'static str, status: u16, message: impl Into<String>) -> Self {
        Self {
            code,
            error,
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 90002: no tenant with that id or verified domain.
    pub fn tenant_not_found(name: &str) -> Self {
        Self::new(
            90002,
            "invalid_request",
            400,
            format!(
                "Tenant '{name}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."
            ),
        )
    }

    /// 900023: the tenant segment is neither a GUID nor a domain name.
    pub fn malformed_tenant(name: &str) -> Self {
        Self::new(
            900023,
            "invalid_request",
            400,
            format!("Specified tenant identifier '{name}' is neither a valid DNS name, nor a valid external domain."),
        )
    }

    /// 9001023: client credentials over `/common`, `/consumers` or `/organizations`.
    pub fn multi_tenant_endpoint(segment: &str) -> Self {
        let message = if segment.eq_ignore_ascii_case("organizations") {
            "The grant type is not supported over the /common, /consumers or /organizations endpoints. Please use the tenant-specific endpoint."
        } else {
            "The grant type is not supported over the /common or /consumers endpoints. Please use the /organizations or tenant-specific endpoint."
        };
        Self::new(9001023, "invalid_request", 400, message)
    }

    /// 900144: a required form field is missing.
    pub fn missing_parameter(name: &str) -> Self {
        Self::new(
            900144,
            "invalid_request",
            400,
            format!("The request body must contain the following parameter: '{name}'."),
        )
    }

    /// 70003: `grant_type` is not `client_credentials`.
    pub fn unsupported_grant(grant: &str) -> Self {
        Self::new(
            70003,
            "unsupported_grant_type",
            400,
            format!("The app requested an unsupported grant type '{grant}'."),
        )
    }

    /// 700016: no app with that client id in the tenant.
    pub fn unknown_client(client_id: &str, tenant_name: &str) -> Self {
        Self::new(
            700016,
            "unauthorized_client",
            400,
            format!(
                "Application with identifier '{client_id}' was not found in the directory '{tenant_name}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."
            ),
        )
    }

    /// 7000229: a multitenant app registered in another tenant has no service principal in this
    /// one. Entra enforces it since 2026-03-31
    /// (learn.microsoft.com/entra/identity-platform/retire-service-principal-less-authentication).
    /// Text and status 401 as in the token-endpoint answer Microsoft's Teams SDK troubleshooting
    /// page shows (learn.microsoft.com/microsoftteams/platform/teams-sdk/teams/app-authentication/troubleshooting).
    pub fn missing_service_principal(client_id: &str, tenant_id: &str) -> Self {
        Self::new(
            7000229,
            "invalid_client",
            401,
            format!(
                "The client application {client_id} is missing service principal in the tenant {tenant_id}. See instructions here: https://go.microsoft.com/fwlink/?linkid=2225119"
            ),
        )
    }

    /// 7000112: the enterprise application is disabled.
    pub fn app_disabled(client_id: &str, name: &str) -> Self {
        Self::new(
            7000112,
            "unauthorized_client",
            400,
            format!("Application '{client_id}'({name}) is disabled."),
        )
    }

    /// 7000215: wrong client secret (often the secret's id pasted in place of its value).
    pub fn wrong_secret(client_id: &str) -> Self {
        Self::new(
            7000215,
            "invalid_client",
            401,
            format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
            ),
        )
    }

    /// 7000222: the client secret has expired.
    pub fn expired_secret(client_id: &str) -> Self {
        Self::new(
            7000222,
            "invalid_client",
            401,
            format!(
                "The provided client secret keys for app '{client_id}' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds."
            ),
        )
    }

    /// 7000216: neither a secret nor an assertion.
    pub fn no_credential() -> Self {
        Self::new(
            7000216,
            "invalid_client",
            401,
            "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.",
        )
    }

    /// 700027: the assertion's key is not registered, or its signature does not verify.
    pub fn bad_assertion_key(reason: &str, thumbprint: &str, client_id: &str) -> Self {
        Self::new(
            700027,
            "invalid_client",
            401,
            format!(
                "Client assertion contains an invalid signature. [Reason - {reason}, Thumbprint of key used by client: '{thumbprint}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '{client_id}'. Review the documentation at https://docs.microsoft.com/en-us/graph/deployments to determine the corresponding service endpoint and https://docs.microsoft.com/en-us/graph/api/application-get?view=graph-rest-1.0&tabs=http to build a query request URL, such as 'https://graph.microsoft.com/beta/applications/{client_id}']"
            ),
        )
    }

    /// 700211, 700212, 700213, 7002138: no federated identity credential of the app matches
    /// the presented token. The texts are those seen in public reports.
    pub fn no_federated_match(part: FederatedPart, value: &str) -> Self {
        const CHECK: &str = "Check your federated identity credential Subject, Audience and Issuer against the presented assertion. https://learn.microsoft.com/entra/workload-id/workload-identity-federation";
        let (code, name, extra) = match part {
            FederatedPart::Issuer => (700211, "issuer", ""),
            FederatedPart::Audience => (700212, "audience", ""),
            FederatedPart::Subject => (700213, "subject", ""),
            FederatedPart::SubjectCase => (
                7002138,
                "subject",
                " The subject matches with case-insensitive comparison, but not with case-sensitive comparison.",
            ),
        };
        Self::new(
            code,
            "invalid_client",
            400,
            format!(
                "No matching federated identity record found for presented assertion {name} '{value}'.{extra} {CHECK}"
            ),
        )
    }

    /// 50166: Entra could not get the signing keys of the federated token's issuer (the
    /// emulator knows only the issuers it signs for).
    pub fn issuer_keys_unavailable(issuer: &str) -> Self {
        Self::new(
            50166,
            "invalid_client",
            400,
            format!("Request to External OIDC endpoint failed. Issuer: '{issuer}'."),
        )
    }

    /// 700024: the assertion is expired or not yet valid.
    pub fn assertion_time_range(now: OffsetDateTime, nbf: Option<i64>, exp: i64) -> Self {
        let at = |t: OffsetDateTime| t.format(&AADSTS_TIME).unwrap_or_default();
        let unix = |s: i64| OffsetDateTime::from_unix_timestamp(s).map(at).unwrap_or_default();
        let from = nbf.map(unix).unwrap_or_else(|| "(none)".to_owned());
        Self::new(
            700024,
            "invalid_client",
            401,
            format!(
                "Client assertion is not within its valid time range. Current time: {}, assertion valid from {from}, expiry time of assertion {}. {CERT_DOCS}",
                at(now),
                unix(exp)
            ),
        )
    }

    /// 700023: the assertion's `aud` is not this tenant's token endpoint.
    pub fn assertion_audience() -> Self {
        Self::new(
            700023,
            "invalid_client",
            401,
            format!("Client assertion audience claim does not match Realm issuer. {CERT_DOCS}"),
        )
    }

    /// 50048: `sub` differs from `iss` in the assertion.
    pub fn subject_mismatch(client_id: &str) -> Self {
        Self::new(
            50048,
            "invalid_client",
            401,
            format!(
                "Subject mismatches Issuer claim in the client assertion for application '{client_id}'. {CERT_DOCS}"
            ),
        )
    }

    /// 700021: the assertion's `iss` differs from the `client_id` field.
    pub fn assertion_client_mismatch() -> Self {
        Self::new(
            700021,
            "invalid_client",
            401,
            format!("Client assertion application identifier doesn't match 'client_id' parameter. {CERT_DOCS}"),
        )
    }

    /// 50027: the assertion is not a well-formed signed JWT.
    pub fn malformed_assertion(detail: &str) -> Self {
        Self::new(
            50027,
            "invalid_request",
            400,
            format!("JWT token is invalid or malformed. {detail}"),
        )
    }

    /// 1002012: a scope without `/.default`.
    pub fn scope_without_default(scope: &str) -> Self {
        Self::new(
            1002012,
            "invalid_scope",
            400,
            format!(
                "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
            ),
        )
    }

    /// 70011: the scope names no usable resource.
    pub fn invalid_scope(scope: &str) -> Self {
        Self::new(
            70011,
            "invalid_scope",
            400,
            format!(
                "The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid."
            ),
        )
    }

    /// 700022: the scope names more than one resource.
    pub fn several_resources(scope: &str) -> Self {
        Self::new(
            700022,
            "invalid_scope",
            400,
            format!(
                "The provided value for the input parameter scope is not valid because it contains more than one resource. Scope {scope} is not valid."
            ),
        )
    }

    /// 500011: the resource has no service principal in the tenant.
    pub fn resource_not_in_tenant(resource: &str, tenant_name: &str) -> Self {
        Self::new(
            500011,
            "invalid_resource",
            400,
            format!(
                "The resource principal named {resource} was not found in the tenant named {tenant_name}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant."
            ),
        )
    }

    /// Any other AADSTS code, for injected faults: the transient ones with their 5xx or 429
    /// status, the rest as a 400.
    pub fn by_code(code: u32) -> Self {
        let (error, status, text) = match code {
            90024 => (
                "temporarily_unavailable",
                503,
                "RequestBudgetExceededError - A transient error has occurred. Try again.",
            ),
            50033 => (
                "temporarily_unavailable",
                503,
                "RetryableError - Indicates a transient error not related to the database operations.",
            ),
            90033 => (
                "temporarily_unavailable",
                503,
                "MsodsServiceUnavailable - The Microsoft Online Directory Service (MSODS) isn't available.",
            ),
            90006 => (
                "temporarily_unavailable",
                503,
                "ExternalServerRetryableError - The service is temporarily unavailable.",
            ),
            90055 => (
                "temporarily_unavailable",
                429,
                "TenantThrottlingError - There are too many incoming requests. This exception is thrown for blocked tenants.",
            ),
            50196 => (
                "invalid_request",
                400,
                "The server terminated an operation because it encountered a client request loop. Please contact your app vendor.",
            ),
            53003 => (
                "access_denied",
                400,
                "Access has been blocked by Conditional Access policies. The access policy does not allow token issuance.",
            ),
            90038 => (
                "invalid_request",
                400,
                "NationalCloudTenantRedirection - The specified tenant belongs to another National Cloud. Current cloud instance does not federate with it.",
            ),
            650052 => (
                "invalid_client",
                400,
                "The app is trying to access a service that your organization has not subscribed to or enabled. Contact your IT Admin to review the configuration of your service subscriptions.",
            ),
            65001 => (
                "invalid_grant",
                400,
                "The user or administrator has not consented to use the application. Send an interactive authorization request for this user and resource.",
            ),
            50012 => ("invalid_client", 401, "AuthenticationFailed - Authentication failed."),
            700030 => (
                "invalid_client",
                401,
                "Invalid certificate - subject name in certificate isn't authorized.",
            ),
            7000218 => (
                "invalid_client",
                401,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            ),
            _ => ("invalid_request", 400, "Emulated error."),
        };
        let mut error = Self::new(code, error, status, text);
        if code == 90055 {
            error.retry_after = Some(5);
        }
        error
    }

    /// The JSON body and headers Entra sends.
    pub fn respond(&self, now: OffsetDateTime, correlation_id: &str) -> Response {
        let trace_id = uuid::Uuid::new_v4().to_string();
        let timestamp = now.format(&ERROR_TIME).unwrap_or_default();
        let description = format!(
            "AADSTS{}: {}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {timestamp}",
            self.code, self.message
        );
        let body = serde_json::json!({
            "error": self.error,
            "error_description": description,
            "error_codes": [self.code],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": format!("https://login.microsoftonline.com/error?code={}", self.code),
        });
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        let mut response = (status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response.headers_mut().insert("retry-after", HeaderValue::from(secs));
        }
        response
    }
}

const ERROR_TIME: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]Z");

const AADSTS_TIME: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:7]Z");

/// Which part of a federated token matched no federated identity credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FederatedPart {
    /// `iss`.
    Issuer,
    /// `aud`.
    Audience,
    /// `sub`.
    Subject,
    /// `sub`, equal only when case is ignored.
    SubjectCase,
}
