//! Microsoft Graph `sendMail` with a MIME body (fact sheet §6): `POST
//! /v1.0/users/{user}/sendMail`, `Content-Type: text/plain`, the whole message base64-encoded.
//! Checks run in this order: the token (signature, expiry, audience), the user, the `Mail.Send`
//! role, the application access policies, the licence, the body (4 MB, base64), Send-As for
//! the From header, recipients. Accepted messages go to the same store as SMTP's, with
//! `via_graph` set, and the answer is `202 Accepted` with an empty body.
//!
//! Larger messages: a draft from MIME (`POST /v1.0/users/{user}/messages`), attachments through
//! upload sessions (`createUploadSession`, then `PUT`s with `Content-Range` to the upload URL,
//! which refuses a token), and `POST /v1.0/users/{user}/messages/{id}/send`; drafts and uploads
//! need `Mail.ReadWrite`. On send the uploaded attachments join the draft's top-level
//! `multipart/mixed` as base64 parts.
//!
//! A draft can be read (`GET …/messages/{id}`) and deleted (`DELETE`); once sent it is gone
//! from the drafts (Graph moves it to Sent Items under another id), so reading it answers 404.
//!
//! Faults at stage `graph` apply to every request in order (`skip` counts them), and
//! `accept_then_drop` does what the request asks, then closes without answering.
//!
//! Not emulated (yet): Graph's own throttling counters (throttling is a fault at stage `graph`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;

use crate::Shared;
use crate::entra::token::{self, AccessClaims, TokenRejection};
use crate::faults::{Effect, Stage, Subject};
use crate::model::{Mailbox, Tenant};
use crate::store::{Delivered, Identity};

/// Graph's request size limit for `sendMail` (about 4 MB).
pub const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;

/// The audience of Graph tokens.
const GRAPH: &str = "https://graph.microsoft.com";

/// The largest attachment an upload session takes (150 MB).
const MAX_ATTACHMENT_BYTES: u64 = 150 * 1024 * 1024;

pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/v1.0/users/{user}/sendMail", post(send_mail))
        .route("/v1.0/users/{user}/messages", post(create_draft))
        .route(
            "/v1.0/users/{user}/messages/{id}/attachments/createUploadSession",
            post(create_upload_session),
        )
        .route(
            "/v1.0/users/{user}/messages/{id}",
            axum::routing::get(get_draft).delete(delete_draft),
        )
        .route("/v1.0/users/{user}/messages/{id}/send", post(send_draft))
        .route("/_graph/upload/{session}", axum::routing::put(upload))
        // Above Graph's limit, so that the emulator's own check answers as Graph does.
        .layer(axum::extract::DefaultBodyLimit::max(2 * MAX_REQUEST_BYTES))
}

/// Drafts and upload sessions in progress.
#[derive(Debug, Default)]
pub(crate) struct Drafts {
    drafts: Mutex<HashMap<String, Draft>>,
    uploads: Mutex<HashMap<String, Upload>>,
}

#[derive(Debug)]
struct Draft {
    mailbox: String,
    mime: Vec<u8>,
    attachments: Vec<(String, String, Vec<u8>)>,
}

#[derive(Debug)]
struct Upload {
    draft: String,
    name: String,
    content_type: String,
    size: u64,
    received: Vec<u8>,
}

/// A Graph error: status, `error.code`, `error.message`.
pub(crate) struct GraphError(pub(crate) StatusCode, pub(crate) &'static str, pub(crate) String);

impl GraphError {
    pub(crate) fn respond(self, shared: &Shared) -> Response {
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

/// What a fault at stage `graph` (or `directory`) makes of a request.
pub(crate) enum Fired {
    /// Nothing: handle the request.
    No,
    /// Answer this instead.
    Answer(Response),
    /// Handle the request, then close without answering.
    AcceptThenDrop,
}

async fn fault(shared: &Shared, user: Option<&str>) -> Fired {
    stage_fault(shared, Stage::Graph, user).await
}

/// A fault of a Graph `stage` (`graph`, `directory`), for `user` when there is one.
pub(crate) async fn stage_fault(shared: &Shared, stage: Stage, user: Option<&str>) -> Fired {
    let Some(effect) = shared.faults.check(
        stage,
        Subject {
            mailbox: user,
            client_id: None,
        },
    ) else {
        return Fired::No;
    };
    shared.stats.update(|c| c.faults_fired += 1);
    match effect {
        Effect::Delay(d) => {
            tokio::time::sleep(d).await;
            Fired::No
        }
        Effect::Hang => std::future::pending().await,
        Effect::Drop { .. } => Fired::Answer(crate::http::drop_connection()),
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
            Fired::Answer(response)
        }
        Effect::AcceptThenDrop => Fired::AcceptThenDrop,
        Effect::Aadsts(_) | Effect::Reply(_) => Fired::No,
    }
}

/// `response`, unless the fault says to drop the connection instead.
fn answer(fired: &Fired, response: Response) -> Response {
    match fired {
        Fired::AcceptThenDrop => crate::http::drop_connection(),
        _ => response,
    }
}

async fn send_mail(
    State(shared): State<Arc<Shared>>,
    Path(user): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fired = fault(&shared, Some(&user)).await;
    if let Fired::Answer(response) = fired {
        return response;
    }
    shared.stats.update(|c| c.graph_requests += 1);
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let accepted = authorize(&shared, &user, &headers, "Mail.Send").and_then(|caller| {
        let (mime, saved) = if json {
            mime_from_json(&body, &caller.mailbox.address)?
        } else {
            (decode_mime(&headers, &body)?, true)
        };
        deliver(&shared, &caller, mime, saved)
    });
    let response = match accepted {
        Ok(delivered) => {
            tracing::info!(id = %delivered.id, mailbox = %delivered.mailbox, recipients = delivered.rcpt_to.len(), "message accepted through Graph");
            StatusCode::ACCEPTED.into_response()
        }
        Err(e) => e.respond(&shared),
    };
    answer(&fired, response)
}

/// Who is calling, for which mailbox.
struct Caller {
    tenant: Tenant,
    mailbox: Mailbox,
    claims: AccessClaims,
}

/// The token (signature, expiry, audience), the user, `role`, the application access policies
/// and the licence, in Graph's order.
fn authorize(shared: &Shared, user: &str, headers: &HeaderMap, role: &str) -> Result<Caller, GraphError> {
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
    if !claims
        .roles
        .as_ref()
        .is_some_and(|roles| roles.iter().any(|r| r == role))
    {
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
    Ok(Caller {
        tenant: tenant.clone(),
        mailbox: mailbox.clone(),
        claims,
    })
}

/// Graph's request size limit.
fn check_size(body: &[u8]) -> Result<(), GraphError> {
    if body.len() > MAX_REQUEST_BYTES {
        return Err(GraphError(
            StatusCode::PAYLOAD_TOO_LARGE,
            "ErrorRequestEntityTooLarge",
            format!(
                "The request body is {} bytes; Graph takes at most {MAX_REQUEST_BYTES}.",
                body.len()
            ),
        ));
    }
    Ok(())
}

/// A MIME body: at most 4 MB, `text/plain`, base64.
fn decode_mime(headers: &HeaderMap, body: &[u8]) -> Result<Vec<u8>, GraphError> {
    check_size(body)?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !content_type.starts_with("text/plain") {
        return Err(GraphError(
            StatusCode::BAD_REQUEST,
            "ErrorInvalidRequest",
            format!("The emulator takes the MIME form (Content-Type: text/plain), not `{content_type}`."),
        ));
    }
    let compact: Vec<u8> = body.iter().copied().filter(|b| !b.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(&compact).map_err(|_| {
        GraphError(
            StatusCode::BAD_REQUEST,
            "ErrorMimeContentInvalidBase64String",
            "Invalid base64 string for MIME content.".to_owned(),
        )
    })
}

/// Send-As for the From header, recipients from To, Cc and Bcc, then the store.
fn deliver(shared: &Shared, caller: &Caller, mime: Vec<u8>, saved: bool) -> Result<Arc<Delivered>, GraphError> {
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
    let (tenant, mailbox, claims) = (&caller.tenant, &caller.mailbox, &caller.claims);
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
    drop(parsed);
    let delivered = shared.store.deliver(Delivered {
        id: uuid::Uuid::new_v4().simple().to_string().to_ascii_uppercase(),
        received_at: shared.clock.now(),
        tenant_id: tenant.id.clone(),
        mailbox: mailbox.address.clone(),
        identity: Identity::Xoauth2 {
            client_id: claims.appid.clone(),
            service_principal_id: claims.oid.clone(),
        },
        endpoint: crate::Endpoint::Exchange,
        mail_from: from,
        rcpt_to: recipients,
        chunked: false,
        via_graph: true,
        saved_to_sent_items: Some(saved),
        data: mime,
    });
    shared
        .stats
        .update(|c| *c.messages.entry(mailbox.address.to_ascii_lowercase()).or_default() += 1);
    Ok(delivered)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn not_found(what: &str) -> GraphError {
    GraphError(
        StatusCode::NOT_FOUND,
        "ErrorItemNotFound",
        format!("The specified object was not found in the store. ({what})"),
    )
}

/// `POST /v1.0/users/{user}/messages` (MIME): a draft.
async fn create_draft(
    State(shared): State<Arc<Shared>>,
    Path(user): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fired = fault(&shared, Some(&user)).await;
    if let Fired::Answer(response) = fired {
        return response;
    }
    shared.stats.update(|c| c.graph_requests += 1);
    let created = authorize(&shared, &user, &headers, "Mail.ReadWrite").and_then(|caller| {
        let mime = decode_mime(&headers, &body)?;
        let id = format!("AAMk{}", uuid::Uuid::new_v4().simple());
        lock(&shared.drafts.drafts).insert(
            id.clone(),
            Draft {
                mailbox: caller.mailbox.address,
                mime,
                attachments: Vec::new(),
            },
        );
        Ok(id)
    });
    let response = match created {
        Ok(id) => (
            StatusCode::CREATED,
            axum::Json(serde_json::json!({ "id": id, "isDraft": true })),
        )
            .into_response(),
        Err(e) => e.respond(&shared),
    };
    answer(&fired, response)
}

/// `GET …/messages/{id}`: a draft not yet sent.
async fn get_draft(
    State(shared): State<Arc<Shared>>,
    Path((user, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    shared.stats.update(|c| c.graph_requests += 1);
    let found = authorize(&shared, &user, &headers, "Mail.ReadWrite").and_then(|caller| {
        lock(&shared.drafts.drafts)
            .get(&id)
            .filter(|d| d.mailbox == caller.mailbox.address)
            .map(|d| d.attachments.len())
            .ok_or_else(|| not_found("message"))
    });
    match found {
        Ok(attachments) => {
            axum::Json(serde_json::json!({ "id": id, "isDraft": true, "hasAttachments": attachments > 0 }))
                .into_response()
        }
        Err(e) => e.respond(&shared),
    }
}

/// `DELETE …/messages/{id}`.
async fn delete_draft(
    State(shared): State<Arc<Shared>>,
    Path((user, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    shared.stats.update(|c| c.graph_requests += 1);
    let deleted = authorize(&shared, &user, &headers, "Mail.ReadWrite").and_then(|caller| {
        let mut drafts = lock(&shared.drafts.drafts);
        match drafts.get(&id) {
            Some(d) if d.mailbox == caller.mailbox.address => {
                drafts.remove(&id);
                Ok(())
            }
            _ => Err(not_found("message")),
        }
    });
    match deleted {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.respond(&shared),
    }
}

/// `POST …/messages/{id}/attachments/createUploadSession` with `AttachmentItem`.
async fn create_upload_session(
    State(shared): State<Arc<Shared>>,
    Path((user, id)): Path<(String, String)>,
    headers: HeaderMap,
    axum::Json(request): axum::Json<serde_json::Value>,
) -> Response {
    if let Fired::Answer(response) = fault(&shared, Some(&user)).await {
        return response;
    }
    shared.stats.update(|c| c.graph_requests += 1);
    let created = authorize(&shared, &user, &headers, "Mail.ReadWrite").and_then(|caller| {
        let drafts = lock(&shared.drafts.drafts);
        drafts
            .get(&id)
            .filter(|d| d.mailbox == caller.mailbox.address)
            .ok_or_else(|| not_found("draft"))?;
        let item = &request["AttachmentItem"];
        let size = item["size"].as_u64().unwrap_or(0);
        if item["attachmentType"] != "file" || size == 0 || size > MAX_ATTACHMENT_BYTES {
            return Err(GraphError(
                StatusCode::BAD_REQUEST,
                "ErrorInvalidRequest",
                format!("AttachmentItem needs attachmentType \"file\", a name and a size of 1 byte to {MAX_ATTACHMENT_BYTES}."),
            ));
        }
        let session = uuid::Uuid::new_v4().simple().to_string();
        lock(&shared.drafts.uploads).insert(
            session.clone(),
            Upload {
                draft: id.clone(),
                name: item["name"].as_str().unwrap_or("attachment").to_owned(),
                content_type: item["contentType"].as_str().unwrap_or("application/octet-stream").to_owned(),
                size,
                received: Vec::new(),
            },
        );
        Ok(session)
    });
    match created {
        Ok(session) => {
            let host = headers
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("localhost");
            let scheme = if shared.plain_http { "http" } else { "https" };
            let body = serde_json::json!({
                "uploadUrl": format!("{scheme}://{host}/_graph/upload/{session}"),
                "nextExpectedRanges": ["0-"],
            });
            (StatusCode::CREATED, axum::Json(body)).into_response()
        }
        Err(e) => e.respond(&shared),
    }
}

/// `PUT` of one chunk to an upload URL: `Content-Range: bytes START-END/TOTAL`, in order, no
/// token.
async fn upload(
    State(shared): State<Arc<Shared>>,
    Path(session): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Fired::Answer(response) = fault(&shared, None).await {
        return response;
    }
    if headers.contains_key(header::AUTHORIZATION) {
        return GraphError(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "The upload URL is pre-authenticated: send no Authorization header.".to_owned(),
        )
        .respond(&shared);
    }
    let range = headers
        .get(header::CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_range);
    let mut uploads = lock(&shared.drafts.uploads);
    let Some(upload) = uploads.get_mut(&session) else {
        return not_found("upload session").respond(&shared);
    };
    let fits = range.is_some_and(|(start, end, total)| {
        start == upload.received.len() as u64 && end + 1 - start == body.len() as u64 && total == upload.size
    });
    if !fits || body.len() > MAX_REQUEST_BYTES {
        let expected = format!("{}-", upload.received.len());
        let body = serde_json::json!({ "error": { "code": "InvalidRange", "message": "The Content-Range does not continue the upload." }, "nextExpectedRanges": [expected] });
        return (StatusCode::RANGE_NOT_SATISFIABLE, axum::Json(body)).into_response();
    }
    upload.received.extend_from_slice(&body);
    if (upload.received.len() as u64) < upload.size {
        let next = upload.received.len();
        return (
            StatusCode::OK,
            axum::Json(serde_json::json!({ "nextExpectedRanges": [format!("{next}-")] })),
        )
            .into_response();
    }
    let done = uploads.remove(&session).expect("present");
    let mut drafts = lock(&shared.drafts.drafts);
    let Some(draft) = drafts.get_mut(&done.draft) else {
        return not_found("draft").respond(&shared);
    };
    draft.attachments.push((done.name, done.content_type, done.received));
    StatusCode::CREATED.into_response()
}

fn parse_range(text: &str) -> Option<(u64, u64, u64)> {
    let (span, total) = text.strip_prefix("bytes ")?.split_once('/')?;
    let (start, end) = span.split_once('-')?;
    Some((start.parse().ok()?, end.parse().ok()?, total.parse().ok()?))
}

/// `POST …/messages/{id}/send`: the draft with its uploaded attachments.
async fn send_draft(
    State(shared): State<Arc<Shared>>,
    Path((user, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let fired = fault(&shared, Some(&user)).await;
    if let Fired::Answer(response) = fired {
        return response;
    }
    shared.stats.update(|c| c.graph_requests += 1);
    let sent = authorize(&shared, &user, &headers, "Mail.Send").and_then(|caller| {
        let draft = {
            let mut drafts = lock(&shared.drafts.drafts);
            match drafts.get(&id) {
                Some(d) if d.mailbox == caller.mailbox.address => drafts.remove(&id).expect("present"),
                _ => return Err(not_found("draft")),
            }
        };
        let mime = with_attachments(draft.mime, &draft.attachments)?;
        deliver(&shared, &caller, mime, true)
    });
    let response = match sent {
        Ok(delivered) => {
            tracing::info!(id = %delivered.id, mailbox = %delivered.mailbox, "draft sent through Graph");
            StatusCode::ACCEPTED.into_response()
        }
        Err(e) => e.respond(&shared),
    };
    answer(&fired, response)
}

impl Drafts {
    /// Drafts not sent (nor deleted).
    pub(crate) fn count(&self) -> usize {
        lock(&self.drafts).len()
    }
}

/// The JSON form of `sendMail` as the MIME Exchange would make of it, and `saveToSentItems`
/// (default true).
fn mime_from_json(body: &[u8], mailbox: &str) -> Result<(Vec<u8>, bool), GraphError> {
    let invalid = |m: &str| GraphError(StatusCode::BAD_REQUEST, "ErrorInvalidRequest", m.to_owned());
    check_size(body)?;
    let request: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| invalid(&format!("The request body is not JSON: {e}")))?;
    let message = request
        .get("message")
        .filter(|m| m.is_object())
        .ok_or_else(|| invalid("Empty Payload. JSON content expected."))?;
    let saved = request["saveToSentItems"].as_bool().unwrap_or(true);
    let list = |key: &str| -> String {
        message[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|r| {
                        let address = r["emailAddress"]["address"].as_str()?;
                        Some(match r["emailAddress"]["name"].as_str() {
                            Some(name) => format!("\"{name}\" <{address}>"),
                            None => address.to_owned(),
                        })
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    };
    let mut head = String::new();
    let from = message["from"]["emailAddress"]["address"].as_str().unwrap_or(mailbox);
    head.push_str(&format!("From: {from}\r\n"));
    for (header, key) in [
        ("To", "toRecipients"),
        ("Cc", "ccRecipients"),
        ("Bcc", "bccRecipients"),
        ("Reply-To", "replyTo"),
    ] {
        let value = list(key);
        if !value.is_empty() {
            head.push_str(&format!("{header}: {value}\r\n"));
        }
    }
    head.push_str(&format!(
        "Subject: {}\r\n",
        message["subject"].as_str().unwrap_or_default()
    ));
    for h in message["internetMessageHeaders"].as_array().into_iter().flatten() {
        let (Some(name), Some(value)) = (h["name"].as_str(), h["value"].as_str()) else {
            continue;
        };
        if !name.to_ascii_lowercase().starts_with("x-") {
            return Err(invalid(
                "The internet message header name should start with 'x-' or 'X-'.",
            ));
        }
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("MIME-Version: 1.0\r\n");
    let subtype = if message["body"]["contentType"]
        .as_str()
        .is_some_and(|t| t.eq_ignore_ascii_case("html"))
    {
        "html"
    } else {
        "plain"
    };
    let encode = |bytes: &[u8]| -> String {
        let text = base64::engine::general_purpose::STANDARD.encode(bytes);
        text.as_bytes()
            .chunks(76)
            .map(|l| std::str::from_utf8(l).expect("base64 is ASCII"))
            .collect::<Vec<_>>()
            .join("\r\n")
    };
    let content = message["body"]["content"].as_str().unwrap_or_default();
    let text_part = format!(
        "Content-Type: text/{subtype}; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n",
        encode(content.as_bytes())
    );
    let attachments = message["attachments"].as_array().cloned().unwrap_or_default();
    let mut mime = head;
    if attachments.is_empty() {
        mime.push_str(&text_part);
    } else {
        let boundary = format!("emulator-{}", uuid::Uuid::new_v4().simple());
        mime.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n--{boundary}\r\n{text_part}"
        ));
        for a in &attachments {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(a["contentBytes"].as_str().unwrap_or_default())
                .map_err(|_| invalid("contentBytes is not base64."))?;
            let name = a["name"].as_str().unwrap_or("attachment");
            let content_type = a["contentType"].as_str().unwrap_or("application/octet-stream");
            mime.push_str(&format!(
                "--{boundary}\r\nContent-Type: {content_type}; name=\"{name}\"\r\nContent-Disposition: attachment; filename=\"{name}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n",
                encode(&bytes)
            ));
        }
        mime.push_str(&format!("--{boundary}--\r\n"));
    }
    Ok((mime.into_bytes(), saved))
}

/// The draft's MIME with the attachments as base64 parts of its top-level multipart.
fn with_attachments(mime: Vec<u8>, attachments: &[(String, String, Vec<u8>)]) -> Result<Vec<u8>, GraphError> {
    if attachments.is_empty() {
        return Ok(mime);
    }
    let boundary = mail_parser::MessageParser::default()
        .parse_headers(&mime)
        .and_then(|m| {
            use mail_parser::MimeHeaders as _;
            m.content_type()?.attribute("boundary").map(str::to_owned)
        })
        .ok_or_else(|| {
            GraphError(
                StatusCode::BAD_REQUEST,
                "ErrorInvalidRequest",
                "The emulator adds uploaded attachments to a multipart draft only.".to_owned(),
            )
        })?;
    let close = format!("\r\n--{boundary}--");
    let at = mime
        .windows(close.len())
        .rposition(|w| w == close.as_bytes())
        .ok_or_else(|| {
            GraphError(
                StatusCode::BAD_REQUEST,
                "ErrorMimeContentInvalid",
                "The draft's multipart has no closing delimiter.".to_owned(),
            )
        })?;
    let mut parts = String::new();
    for (name, content_type, bytes) in attachments {
        let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
        parts.push_str(&format!(
            "\r\n--{boundary}\r\nContent-Type: {content_type}; name=\"{name}\"\r\nContent-Disposition: attachment; filename=\"{name}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        ));
        for (i, line) in encoded.as_bytes().chunks(76).enumerate() {
            if i > 0 {
                parts.push_str("\r\n");
            }
            parts.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        }
    }
    let mut out = mime[..at].to_vec();
    out.extend_from_slice(parts.as_bytes());
    out.extend_from_slice(&mime[at..]);
    Ok(out)
}
