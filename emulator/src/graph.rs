//! Microsoft Graph `sendMail` with a MIME body (fact sheet §6): `POST
//! /v1.0/users/{user}/sendMail`, `Content-Type: text/plain`, the whole message base64-encoded.
//! Checks run in this order: the token (signature, expiry, audience), the user, the `Mail.Send`
//! role, the application access policies, the licence, the body (4 MB, base64), Send-As for
//! the From header, recipients. Accepted messages go to the same store as SMTP's, with
//! `via_graph` set, and the answer is `202 Accepted` with an empty body.
//!
//! Not emulated (yet): the JSON form of `sendMail`, drafts and attachment upload sessions,
//! Graph's own throttling counters (throttling is a fault at stage `graph`).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;

use crate::Shared;
use crate::entra::token::{self, TokenRejection};
use crate::faults::{Effect, Stage, Subject};
use crate::model::Mailbox;
use crate::store::{Delivered, Identity};

/// Graph's request size limit for `sendMail` (about 4 MB).
pub const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;

/// The audience of Graph tokens.
const GRAPH: &str = "https://graph.microsoft.com";

pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new().route("/v1.0/users/{user}/sendMail", post(send_mail))
}

/// A Graph error: status, `error.code`, `error.message`.
struct GraphError(StatusCode, &'static str, String);

impl GraphError {
    fn respond(self, shared: &Shared) -> Response {
        let GraphError(status, code, message) = self;
        let date = shared
            .clock
            .now()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let body = serde_json::json!({
            "error": {
                "code": code,
                "message": message,
                "innerError": { "date": date, "request-id": uuid::Uuid::new_v4().to_string() },
            }
        });
        (status, axum::Json(body)).into_response()
    }
}

async fn send_mail(
    State(shared): State<Arc<Shared>>,
    Path(user): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(effect) = shared.faults.check(
        Stage::Graph,
        Subject {
            mailbox: Some(&user),
            client_id: None,
        },
    ) {
        shared.stats.update(|c| c.faults_fired += 1);
        match effect {
            Effect::Delay(d) => tokio::time::sleep(d).await,
            Effect::Hang => std::future::pending::<()>().await,
            Effect::Drop { .. } => return crate::http::drop_connection(),
            Effect::Http {
                status,
                body,
                retry_after,
            } => {
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
                let mut response = (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
                if let Some(secs) = retry_after {
                    response
                        .headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
                }
                return response;
            }
            Effect::Aadsts(_) | Effect::Reply(_) | Effect::AcceptThenDrop => {}
        }
    }
    shared.stats.update(|c| c.graph_requests += 1);
    match accept(&shared, &user, &headers, &body) {
        Ok(delivered) => {
            tracing::info!(id = %delivered.id, mailbox = %delivered.mailbox, recipients = delivered.rcpt_to.len(), "message accepted through Graph");
            StatusCode::ACCEPTED.into_response()
        }
        Err(e) => e.respond(&shared),
    }
}

fn accept(shared: &Shared, user: &str, headers: &HeaderMap, body: &[u8]) -> Result<Arc<Delivered>, GraphError> {
    let unauthorized = |m: &str| GraphError(StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken", m.to_owned());
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| unauthorized("Access token is empty."))?;
    let now = shared.clock.now().unix_timestamp();
    let claims = token::verify(bearer, &shared.signing, now).map_err(|e| match e {
        TokenRejection::Expired => unauthorized("Lifetime validation failed, the token is expired."),
        _ => unauthorized("Access token validation failure."),
    })?;
    if claims.aud.trim_end_matches('/') != GRAPH && claims.aud != "00000003-0000-0000-c000-000000000000" {
        return Err(unauthorized("Access token validation failure. Invalid audience."));
    }
    let scenario = shared.scenario();
    let tenant = scenario
        .tenants
        .iter()
        .find(|t| t.id.eq_ignore_ascii_case(&claims.tid))
        .ok_or_else(|| unauthorized("Access token validation failure."))?;
    let mailbox = tenant.mailbox_by_address(user).ok_or_else(|| {
        GraphError(
            StatusCode::NOT_FOUND,
            "ErrorInvalidUser",
            format!("The requested user '{user}' is invalid."),
        )
    })?;
    let roles = claims.roles.clone().unwrap_or_default();
    if !roles.iter().any(|r| r == "Mail.Send") {
        return Err(GraphError(
            StatusCode::FORBIDDEN,
            "ErrorAccessDenied",
            "Access is denied. Check credentials and try again.".to_owned(),
        ));
    }
    if !tenant.graph_access_allowed(&claims.appid, &mailbox.address) {
        return Err(GraphError(
            StatusCode::FORBIDDEN,
            "ErrorAccessDenied",
            "Access to OData is disabled.".to_owned(),
        ));
    }
    if !mailbox.licensed {
        return Err(GraphError(
            StatusCode::NOT_FOUND,
            "MailboxNotEnabledForRESTAPI",
            "REST API is not yet supported for this mailbox.".to_owned(),
        ));
    }
    if body.len() > MAX_REQUEST_BYTES {
        return Err(GraphError(
            StatusCode::PAYLOAD_TOO_LARGE,
            "ErrorRequestEntityTooLarge",
            format!(
                "The request body is {} bytes; sendMail takes at most {MAX_REQUEST_BYTES}.",
                body.len()
            ),
        ));
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !content_type.starts_with("text/plain") {
        return Err(GraphError(
            StatusCode::BAD_REQUEST,
            "ErrorInvalidRequest",
            format!("The emulator takes the MIME form of sendMail (Content-Type: text/plain), not `{content_type}`."),
        ));
    }
    let compact: Vec<u8> = body.iter().copied().filter(|b| !b.is_ascii_whitespace()).collect();
    let mime = base64::engine::general_purpose::STANDARD
        .decode(&compact)
        .map_err(|_| {
            GraphError(
                StatusCode::BAD_REQUEST,
                "ErrorMimeContentInvalidBase64String",
                "Invalid base64 string for MIME content.".to_owned(),
            )
        })?;
    let parsed = mail_parser::MessageParser::default().parse(&mime).ok_or_else(|| {
        GraphError(
            StatusCode::BAD_REQUEST,
            "ErrorMimeContentInvalid",
            "The MIME content is invalid.".to_owned(),
        )
    })?;
    let addresses = |list: Option<&mail_parser::Address>| -> Vec<String> {
        list.map(|a| a.iter().filter_map(|x| x.address().map(str::to_owned)).collect())
            .unwrap_or_default()
    };
    let from = addresses(parsed.from())
        .into_iter()
        .next()
        .unwrap_or_else(|| mailbox.address.clone());
    let trustees = [claims.oid.as_str(), claims.appid.as_str()];
    let may_send = from.eq_ignore_ascii_case(&mailbox.address)
        || tenant
            .mailbox_by_address(&from)
            .is_some_and(|m| Mailbox::grants(&m.send_as, &trustees));
    if !may_send {
        return Err(GraphError(
            StatusCode::FORBIDDEN,
            "ErrorSendAsDenied",
            "The user account which was used to submit this request does not have the right to send mail on behalf of the specified sending account., Cannot submit message.".to_owned(),
        ));
    }
    let mut recipients = addresses(parsed.to());
    recipients.extend(addresses(parsed.cc()));
    recipients.extend(addresses(parsed.bcc()));
    if recipients.is_empty() {
        return Err(GraphError(
            StatusCode::BAD_REQUEST,
            "ErrorInvalidRecipients",
            "At least one recipient is not valid., A message can't be sent because it contains no recipients."
                .to_owned(),
        ));
    }
    let delivered = shared.store.deliver(Delivered {
        id: uuid::Uuid::new_v4().simple().to_string().to_ascii_uppercase(),
        received_at: shared.clock.now(),
        tenant_id: tenant.id.clone(),
        mailbox: mailbox.address.clone(),
        identity: Identity::Xoauth2 {
            client_id: claims.appid.clone(),
            service_principal_id: claims.oid.clone(),
        },
        mail_from: from,
        rcpt_to: recipients,
        chunked: false,
        via_graph: true,
        data: mime,
    });
    shared
        .stats
        .update(|c| *c.messages.entry(mailbox.address.to_ascii_lowercase()).or_default() += 1);
    Ok(delivered)
}
