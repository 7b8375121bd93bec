//! Messages over Graph's 4 MB request limit (fact sheet §6): the message without its
//! attachments becomes a draft (`POST /users/{mailbox}/messages`, MIME form), each attachment is
//! uploaded through an upload session in chunks under 4 MB (`createUploadSession`, then `PUT`s
//! with `Content-Range` to the pre-authenticated upload URL, without the token), and the draft
//! is sent (`POST /users/{mailbox}/messages/{id}/send`). Needs `Mail.ReadWrite` besides
//! `Mail.Send`.
//!
//! Taking attachments out of the MIME is done on the bytes, not by re-serialising: each
//! attachment part is cut from the delimiter line before it to the delimiter after it, so the
//! rest of the message stays exactly as written.
//!
//! A draft is never left behind: when a step fails, the draft is deleted. When the last step
//! (`send`) ends without an answer, the draft tells whether it went: sent, it is no longer a
//! draft (404); not sent, it is deleted and the failure reported.

use base64::Engine as _;
use mail_parser::MimeHeaders as _;

use super::{GraphError, GraphSendError};
use crate::secret::Secret;

/// Chunk size of uploads: a multiple of 320 KiB, as Graph asks, under 4 MB.
const CHUNK: usize = 10 * 320 * 1024;

/// An attachment taken out of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Attachment {
    /// File name.
    pub(crate) name: String,
    /// MIME type.
    pub(crate) content_type: String,
    /// Decoded content.
    pub(crate) bytes: Vec<u8>,
}

/// The message without its attachments, and the attachments; `None` when it has none or its
/// parts cannot be cut out cleanly.
pub(crate) fn split(message: &[u8]) -> Option<(Vec<u8>, Vec<Attachment>)> {
    let parsed = mail_parser::MessageParser::default().parse(message)?;
    let mut cuts: Vec<(usize, usize)> = Vec::new();
    let mut attachments = Vec::new();
    for part in parsed.attachments() {
        if part.is_message() {
            continue; // an attached message stays in the draft
        }
        cuts.push(part_span(
            message,
            part.offset_header as usize,
            part.offset_end as usize,
        )?);
        let content_type = part
            .content_type()
            .map(|c| match c.subtype() {
                Some(sub) => format!("{}/{sub}", c.ctype()),
                None => c.ctype().to_owned(),
            })
            .unwrap_or_else(|| "application/octet-stream".to_owned());
        attachments.push(Attachment {
            name: part.attachment_name().unwrap_or("attachment").to_owned(),
            content_type,
            bytes: part.contents().to_vec(),
        });
    }
    if attachments.is_empty() {
        return None;
    }
    cuts.sort_unstable();
    if cuts.windows(2).any(|w| w[0].1 > w[1].0) {
        return None;
    }
    let mut rest = Vec::with_capacity(message.len());
    let mut at = 0;
    for (start, end) in cuts {
        rest.extend_from_slice(&message[at..start]);
        at = end;
    }
    rest.extend_from_slice(&message[at..]);
    Some((rest, attachments))
}

/// From the line end before the delimiter line that opens the part at `header` to `end`, where
/// mail-parser says the part ends: the line end before the next delimiter (RFC 2046: that line
/// end belongs to the delimiter). mail-parser has matched the delimiter, transport padding
/// (`--b1 `) included, so nothing is searched for again here.
fn part_span(message: &[u8], header: usize, end: usize) -> Option<(usize, usize)> {
    if header > end || end > message.len() {
        return None;
    }
    let before = &message[..header];
    let line_end = before.len().checked_sub(1).filter(|&i| before[i] == b'\n')?;
    let line_start = before[..line_end]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    if !before[line_start..].starts_with(b"--") {
        return None;
    }
    let start = if line_start >= 2 && &message[line_start - 2..line_start] == b"\r\n" {
        line_start - 2
    } else {
        line_start.saturating_sub(1)
    };
    Some((start, end))
}

/// The whole exchange: draft, uploads, send.
pub(super) async fn send(
    http: &reqwest::Client,
    graph_url: &str,
    mailbox: &str,
    token: &Secret,
    message: &[u8],
) -> Result<(), GraphSendError> {
    let (rest, attachments) = split(message).ok_or_else(|| {
        GraphSendError::Message(format!(
            "the message is {} bytes without attachments to upload separately; Microsoft Graph takes at most about 3 MB in one request: use the SMTP transport",
            message.len()
        ))
    })?;
    let base = format!("{graph_url}/v1.0/users/{mailbox}/messages");
    let body = base64::engine::general_purpose::STANDARD.encode(&rest);
    let draft = call(
        http.post(&base)
            .timeout(super::request_timeout(body.len()))
            .bearer_auth(token.expose())
            .header("content-type", "text/plain")
            .body(body),
        &base,
    )
    .await?;
    let id = draft["id"]
        .as_str()
        .ok_or_else(|| refused(201, "the draft has no id"))?
        .to_owned();
    let draft_url = format!("{base}/{id}");
    if let Err(e) = upload_attachments(http, &draft_url, token, &attachments).await {
        delete_draft(http, &draft_url, token).await;
        return Err(e);
    }
    let url = format!("{draft_url}/send");
    let sent = call(
        http.post(&url)
            .bearer_auth(token.expose())
            .header("content-length", "0"),
        &url,
    )
    .await;
    match sent {
        Ok(_) => Ok(()),
        Err(e @ GraphSendError::Network { .. }) => {
            // No answer: Graph may have sent it. A sent draft is no longer a draft.
            match call(http.get(&draft_url).bearer_auth(token.expose()), &draft_url).await {
                Err(GraphSendError::Refused(g)) if g.status == 404 => Ok(()),
                _ => {
                    delete_draft(http, &draft_url, token).await;
                    Err(e)
                }
            }
        }
        Err(e) => {
            delete_draft(http, &draft_url, token).await;
            Err(e)
        }
    }
}

/// Each attachment through its own upload session, in chunks.
async fn upload_attachments(
    http: &reqwest::Client,
    draft_url: &str,
    token: &Secret,
    attachments: &[Attachment],
) -> Result<(), GraphSendError> {
    for attachment in attachments {
        let url = format!("{draft_url}/attachments/createUploadSession");
        let item = serde_json::json!({ "AttachmentItem": {
            "attachmentType": "file",
            "name": attachment.name,
            "size": attachment.bytes.len(),
            "contentType": attachment.content_type,
        }});
        let session = call(http.post(&url).bearer_auth(token.expose()).json(&item), &url).await?;
        let upload = session["uploadUrl"]
            .as_str()
            .ok_or_else(|| refused(201, "the upload session has no uploadUrl"))?
            .to_owned();
        let total = attachment.bytes.len();
        for (i, chunk) in attachment.bytes.chunks(CHUNK).enumerate() {
            let first = i * CHUNK;
            let range = format!("bytes {first}-{}/{total}", first + chunk.len() - 1);
            // The upload URL is pre-authenticated: no token goes with it, and, being a
            // credential itself, it is not named in errors.
            let request = http
                .put(&upload)
                .timeout(super::request_timeout(chunk.len()))
                .header("content-range", range)
                .header("content-type", "application/octet-stream")
                .body(chunk.to_vec());
            call(request, "the attachment upload URL").await?;
        }
    }
    Ok(())
}

/// Deletes a draft that will not be sent; a failure is only logged (the draft is the mailbox's
/// clutter, not a lost message).
async fn delete_draft(http: &reqwest::Client, draft_url: &str, token: &Secret) {
    if let Err(e) = call(http.delete(draft_url).bearer_auth(token.expose()), draft_url).await {
        tracing::warn!(error = %e, "could not delete the draft of a message that was not sent; it stays in the mailbox's Drafts");
    }
}

fn refused(status: u16, message: &str) -> GraphSendError {
    GraphSendError::Refused(GraphError {
        status,
        code: String::new(),
        message: message.to_owned(),
        retry_after: None,
    })
}

/// Sends a request; a success's JSON body (empty: `null`), or the error.
async fn call(request: reqwest::RequestBuilder, url: &str) -> Result<serde_json::Value, GraphSendError> {
    let response = request.send().await.map_err(|e| GraphSendError::Network {
        url: url.to_owned(),
        // Without reqwest's "for url (…)": the upload URL is a credential.
        source: e.without_url(),
    })?;
    let status = response.status().as_u16();
    let retry_after = super::retry_after(response.headers());
    let body = response.bytes().await.unwrap_or_default();
    if (200..300).contains(&status) {
        return Ok(serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null));
    }
    Err(GraphSendError::Refused(GraphError::parse(status, &body, retry_after)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MESSAGE: &str = "From: mailer@contoso.com\r\nTo: bob@fabrikam.com\r\nSubject: report\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\npreamble\r\n--b1\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n--b1\r\nContent-Type: application/pdf; name=\"r.pdf\"\r\nContent-Disposition: attachment; filename=\"r.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b1\r\nContent-Type: text/csv\r\nContent-Disposition: attachment; filename=\"d.csv\"\r\n\r\na,b\r\n1,2\r\n--b1--\r\n";

    #[test]
    fn attachments_are_cut_out_and_the_rest_stays_as_written() {
        let (rest, attachments) = split(MESSAGE.as_bytes()).unwrap();
        assert_eq!(
            String::from_utf8(rest).unwrap(),
            "From: mailer@contoso.com\r\nTo: bob@fabrikam.com\r\nSubject: report\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\npreamble\r\n--b1\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n--b1--\r\n"
        );
        assert_eq!(
            attachments,
            [
                Attachment {
                    name: "r.pdf".into(),
                    content_type: "application/pdf".into(),
                    bytes: b"%PDF-1.4\n".to_vec()
                },
                Attachment {
                    name: "d.csv".into(),
                    content_type: "text/csv".into(),
                    bytes: b"a,b\r\n1,2".to_vec()
                },
            ]
        );
    }

    #[test]
    fn delimiter_lines_with_transport_padding() {
        // mail-parser accepts white space after a delimiter (RFC 2046 §5.1.1); the cut must
        // follow it, not search for the bare delimiter and cut across parts.
        let padded = MESSAGE.replace("\r\n--b1\r\n", "\r\n--b1 \t\r\n");
        let (rest, attachments) = split(padded.as_bytes()).unwrap();
        assert_eq!(attachments.len(), 2);
        assert_eq!(
            String::from_utf8(rest).unwrap(),
            "From: mailer@contoso.com\r\nTo: bob@fabrikam.com\r\nSubject: report\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\npreamble\r\n--b1 \t\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n--b1--\r\n"
        );
        let mixed = MESSAGE.replacen("\r\n--b1\r\n", "\r\n--b1 \r\n", 2);
        assert_eq!(split(mixed.as_bytes()).unwrap().1.len(), 2);
    }

    #[test]
    fn a_message_without_attachments_is_not_split() {
        assert!(split(b"From: a@b.c\r\nSubject: x\r\n\r\nbody\r\n").is_none());
    }
}
