//! Microsoft Graph `sendMail` in its MIME form (fact sheet §6): the whole message, base64, as
//! the body of `POST {graph}/v1.0/users/{mailbox}/sendMail` with `Content-Type: text/plain`, so
//! headers and attachments arrive as written. `202 Accepted` means Exchange took it.
//!
//! Graph takes the recipients from the message's To, Cc and Bcc headers, not from an
//! envelope. [`message_for_graph`] therefore adds envelope recipients that no header names as a
//! `Bcc:` header (Exchange removes it on delivery) and refuses a message whose headers name
//! someone the envelope does not, which SMTP would leave out and Graph would not.
//!
//! Larger messages go as a draft with uploaded attachments (`large.rs`); skipping the copy in
//! Sent Items needs the JSON form (`json.rs`).

pub(crate) mod json;
pub(crate) mod large;

use std::time::Duration;

use base64::Engine as _;

use crate::message::Outgoing;
use crate::secret::Secret;

/// Messages up to this size go in one `sendMail` request: base64 makes them about 4/3 larger,
/// and Graph takes about 4 MB per request.
pub(crate) const SINGLE_REQUEST_MAX: usize = 3 * 1024 * 1024;

/// A Graph error answer: HTTP status, `error.code`, `error.message`, and `Retry-After`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GraphError {
    /// HTTP status.
    pub(crate) status: u16,
    /// `error.code`, e.g. `ErrorAccessDenied` (empty when the body had none).
    pub(crate) code: String,
    /// `error.message`.
    pub(crate) message: String,
    /// `Retry-After`, for 429 and 503.
    pub(crate) retry_after: Option<Duration>,
}

impl std::fmt::Display for GraphError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HTTP {}", self.status)?;
        if !self.code.is_empty() {
            write!(f, " {}", self.code)?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

impl GraphError {
    pub(crate) fn parse(status: u16, body: &[u8], retry_after: Option<Duration>) -> Self {
        let json: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        let text = |key: &str| json["error"][key].as_str().unwrap_or_default().to_owned();
        let message = match text("message") {
            m if m.is_empty() => String::from_utf8_lossy(body).trim().chars().take(300).collect(),
            m => m,
        };
        Self {
            status,
            code: text("code"),
            message,
            retry_after,
        }
    }
}

/// Why Graph did not take a message.
#[derive(Debug, thiserror::Error)]
pub(crate) enum GraphSendError {
    /// Graph answered with an error.
    #[error("Microsoft Graph refused: {0}")]
    Refused(GraphError),
    /// Graph could not be reached.
    #[error("cannot reach Microsoft Graph at {url}: {}", crate::tls::error_chain(source))]
    Network {
        /// The request URL.
        url: String,
        /// What failed, without the URL.
        source: reqwest::Error,
    },
    /// The message cannot be expressed as Graph needs it.
    #[error("{0}")]
    Message(String),
}

impl GraphSendError {
    /// The Graph error, when Graph answered.
    pub(crate) fn graph(&self) -> Option<&GraphError> {
        match self {
            GraphSendError::Refused(e) => Some(e),
            _ => None,
        }
    }
}

/// Time for a request carrying `bytes`: 30 s, and the body at 64 KiB/s, at most 10 minutes. A
/// timeout once Graph has the whole body leaves unknown whether it took the message: a larger
/// allowance keeps that window small (`docs/queue-format.md`).
fn request_timeout(bytes: usize) -> Duration {
    let transfer = Duration::from_secs((bytes / (64 * 1024)) as u64);
    (Duration::from_secs(30) + transfer).min(Duration::from_secs(600))
}

/// `Retry-After` in seconds.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// Sends `message` (MIME) as `mailbox`: one `sendMail` request up to [`SINGLE_REQUEST_MAX`],
/// else a draft with its attachments uploaded separately. Without a copy in Sent Items, the
/// JSON form (`graph/json.rs`), which has no draft path.
pub(crate) async fn send(
    http: &reqwest::Client,
    graph_url: &str,
    mailbox: &str,
    token: &Secret,
    message: &[u8],
    save_to_sent_items: bool,
) -> Result<(), GraphSendError> {
    if !save_to_sent_items {
        if message.len() > SINGLE_REQUEST_MAX {
            return Err(GraphSendError::Message(format!(
                "the message is {} bytes: without a copy in Sent Items (save_to_sent_items = false) Microsoft Graph takes at most about 3 MB",
                message.len()
            )));
        }
        let body = serde_json::to_vec(&json::body(message, mailbox)?).expect("JSON of JSON values");
        return post_send_mail(http, graph_url, mailbox, token, "application/json", body).await;
    }
    if message.len() <= SINGLE_REQUEST_MAX {
        send_mail(http, graph_url, mailbox, token, message).await
    } else {
        large::send(http, graph_url, mailbox, token, message).await
    }
}

/// Whether Graph would let the app send as `mailbox`, without sending anything: a `sendMail`
/// whose body is not base64. Graph checks the token, the user, the permission, the
/// application access policies and the licence before the body, so an answer of
/// `ErrorMimeContentInvalidBase64String` means all of them passed.
pub(crate) async fn probe(
    http: &reqwest::Client,
    graph_url: &str,
    mailbox: &str,
    token: &Secret,
) -> Result<(), GraphSendError> {
    match post_send_mail(http, graph_url, mailbox, token, "text/plain", b"probe".to_vec()).await {
        Err(GraphSendError::Refused(e)) if e.code == "ErrorMimeContentInvalidBase64String" => Ok(()),
        other => other,
    }
}

/// `POST {graph_url}/v1.0/users/{mailbox}/sendMail` with `message` (MIME).
pub(crate) async fn send_mail(
    http: &reqwest::Client,
    graph_url: &str,
    mailbox: &str,
    token: &Secret,
    message: &[u8],
) -> Result<(), GraphSendError> {
    let body = base64::engine::general_purpose::STANDARD.encode(message);
    post_send_mail(http, graph_url, mailbox, token, "text/plain", body.into_bytes()).await
}

async fn post_send_mail(
    http: &reqwest::Client,
    graph_url: &str,
    mailbox: &str,
    token: &Secret,
    content_type: &str,
    body: Vec<u8>,
) -> Result<(), GraphSendError> {
    let url = format!("{graph_url}/v1.0/users/{mailbox}/sendMail");
    let sent = http
        .post(&url)
        .timeout(request_timeout(body.len()))
        .bearer_auth(token.expose())
        .header("content-type", content_type)
        .header("client-request-id", uuid::Uuid::new_v4().to_string())
        .body(body)
        .send()
        .await
        .map_err(|e| GraphSendError::Network {
            url: url.clone(),
            source: e.without_url(),
        })?;
    let status = sent.status().as_u16();
    let retry_after = retry_after(sent.headers());
    if (200..300).contains(&status) {
        return Ok(());
    }
    let body = sent.bytes().await.unwrap_or_default();
    Err(GraphSendError::Refused(GraphError::parse(status, &body, retry_after)))
}

/// The message as Graph must get it: its To, Cc and Bcc naming exactly the envelope. Envelope
/// recipients that no header names are added as Bcc; a message whose headers name someone the
/// envelope does not is refused (SMTP would leave them out, Graph would not). When a field is
/// repeated, or Bcc is added, the recipient fields are rewritten as one To, one Cc and one Bcc:
/// which of several fields a reader takes is its own choice.
pub(crate) fn message_for_graph(outgoing: &Outgoing) -> Result<std::borrow::Cow<'_, [u8]>, GraphSendError> {
    use crate::message::{address_fields, count_fields, with_single_recipient_fields};
    let content = &outgoing.content;
    let unreadable = |e: crate::message::MessageError| {
        GraphSendError::Message(format!("the message's recipients cannot be read: {e}"))
    };
    let mut named: Vec<String> = Vec::new();
    for field in ["to", "cc", "bcc"] {
        named.extend(
            address_fields(content, field)
                .map_err(unreadable)?
                .into_iter()
                .map(|m| m.address.to_ascii_lowercase()),
        );
    }
    let envelope: Vec<String> = outgoing.envelope.to.iter().map(|r| r.to_ascii_lowercase()).collect();
    if let Some(extra) = named.iter().find(|n| !envelope.contains(n)) {
        return Err(GraphSendError::Message(format!(
            "{extra} is in the message's headers but not among its recipients: Microsoft Graph sends to every address in To, Cc and Bcc; give the recipients with -t, or use the SMTP transport"
        )));
    }
    let hidden: Vec<String> = outgoing
        .envelope
        .to
        .iter()
        .filter(|r| !named.contains(&r.to_ascii_lowercase()))
        .cloned()
        .collect();
    let counts = ["to", "cc", "bcc"].map(|f| count_fields(content, f));
    if counts.iter().all(|n| *n <= 1) {
        if hidden.is_empty() {
            return Ok(std::borrow::Cow::Borrowed(content));
        }
        if counts[2] == 0 {
            // The common case (sendmail -t removed the Bcc): one line before the message as written.
            let mut message = crate::message::recipient_line("bcc", &hidden);
            message.extend_from_slice(content);
            return Ok(std::borrow::Cow::Owned(message));
        }
    }
    with_single_recipient_fields(content, &hidden)
        .map(std::borrow::Cow::Owned)
        .map_err(unreadable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smtp::Envelope;

    fn outgoing(to: &[&str], content: &str) -> Outgoing {
        Outgoing {
            envelope: Envelope {
                from: "mailer@contoso.com".into(),
                to: to.iter().map(|s| (*s).to_owned()).collect(),
            },
            content: content.as_bytes().to_vec(),
            from_header: vec!["mailer@contoso.com".into()],
        }
    }

    #[test]
    fn envelope_recipients_the_headers_do_not_name_become_bcc() {
        let plain = "From: mailer@contoso.com\r\nTo: Bob <bob@fabrikam.com>\r\nSubject: x\r\n\r\nbody\r\n";
        let same = outgoing(&["bob@fabrikam.com"], plain);
        assert_eq!(&*message_for_graph(&same).unwrap(), plain.as_bytes());
        // sendmail -t removed the Bcc header from the content; Graph needs it back.
        let hidden = outgoing(&["bob@fabrikam.com", "audit@contoso.com"], plain);
        let message = String::from_utf8(message_for_graph(&hidden).unwrap().into_owned()).unwrap();
        assert_eq!(message, format!("Bcc: <audit@contoso.com>\r\n{plain}"));
        // With a Bcc of its own, one Bcc holds both.
        let with_bcc = plain.replace("Subject", "Bcc: old@contoso.com\r\nSubject");
        let both = outgoing(&["bob@fabrikam.com", "old@contoso.com", "audit@contoso.com"], &with_bcc);
        let message = String::from_utf8(message_for_graph(&both).unwrap().into_owned()).unwrap();
        assert_eq!(
            message,
            "To: \"Bob\" <bob@fabrikam.com>\r\nBcc: <old@contoso.com>, <audit@contoso.com>\r\nFrom: mailer@contoso.com\r\nSubject: x\r\n\r\nbody\r\n"
        );
        // The JSON form (save_to_sent_items = false) reads the same Bcc: both, not the last.
        let body = json::body(message.as_bytes(), "mailer@contoso.com").unwrap();
        let bcc: Vec<&str> = body["message"]["bccRecipients"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["emailAddress"]["address"].as_str().unwrap())
            .collect();
        assert_eq!(bcc, ["old@contoso.com", "audit@contoso.com"]);
    }

    #[test]
    fn repeated_recipient_fields_become_one_each_with_every_address() {
        let content = "From: mailer@contoso.com\r\nTo: a@x.example\r\nTo: b@x.example\r\nBcc: c@x.example\r\nBcc: d@x.example\r\n\r\nbody\r\n";
        let all = [
            "a@x.example",
            "b@x.example",
            "c@x.example",
            "d@x.example",
            "e@x.example",
        ];
        let message = message_for_graph(&outgoing(&all, content)).unwrap().into_owned();
        for field in ["to", "bcc"] {
            assert_eq!(crate::message::count_fields(&message, field), 1, "{field}");
        }
        let bcc: Vec<String> = crate::message::address_fields(&message, "bcc")
            .unwrap()
            .into_iter()
            .map(|m| m.address)
            .collect();
        assert_eq!(bcc, ["c@x.example", "d@x.example", "e@x.example"]);
        // The JSON form reads the same recipients: none is dropped.
        let body = json::body(&message, "mailer@contoso.com").unwrap();
        let count = |key: &str| body["message"][key].as_array().unwrap().len();
        assert_eq!((count("toRecipients"), count("bccRecipients")), (2, 3));
    }

    #[test]
    fn a_header_recipient_outside_the_envelope_is_refused() {
        let plain = "From: mailer@contoso.com\r\nTo: alice@fabrikam.com\r\n\r\nbody\r\n";
        let error = message_for_graph(&outgoing(&["bob@fabrikam.com"], plain)).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("alice@fabrikam.com is in the message's headers")
        );
    }

    #[test]
    fn graph_errors_are_read_with_their_code() {
        let body =
            br#"{"error":{"code":"ErrorAccessDenied","message":"Access to OData is disabled.","innerError":{}}}"#;
        let e = GraphError::parse(403, body, None);
        assert_eq!(
            e.to_string(),
            "HTTP 403 ErrorAccessDenied: Access to OData is disabled."
        );
        let throttled = GraphError::parse(429, b"", Some(Duration::from_secs(3)));
        assert_eq!(throttled.retry_after, Some(Duration::from_secs(3)));
        assert_eq!(throttled.to_string(), "HTTP 429");
    }
}
