//! The JSON form of `sendMail`, used only when the copy in Sent Items must be skipped:
//! `saveToSentItems` exists only in this form (fact sheet §6). The message is rebuilt from its
//! MIME: subject, body (HTML when there is one, else text), From when it is not the mailbox,
//! To, Cc, Bcc, Reply-To, attachments (inline ones with their Content-ID) and the `X-` headers
//! (the only custom headers Graph takes). Other headers — Message-ID, Date, References — are
//! Exchange's then; the MIME form keeps everything and is the default.

use base64::Engine as _;
use mail_parser::MimeHeaders as _;

use super::GraphSendError;

/// The `sendMail` JSON body for `message`, with `saveToSentItems: false`.
pub(crate) fn body(message: &[u8], mailbox: &str) -> Result<serde_json::Value, GraphSendError> {
    let parsed = mail_parser::MessageParser::default()
        .parse(message)
        .ok_or_else(|| GraphSendError::Message("the message cannot be read as MIME".to_owned()))?;
    // Every field, not mail-parser's last one of each: a repeated To or Bcc would lose recipients.
    let recipients = |field: &str| -> Result<Vec<serde_json::Value>, GraphSendError> {
        let mailboxes = crate::message::address_fields(message, field)
            .map_err(|e| GraphSendError::Message(format!("the message's recipients cannot be read: {e}")))?;
        Ok(mailboxes
            .into_iter()
            .map(|m| {
                let mut email = serde_json::json!({ "address": m.address });
                if let Some(name) = m.name {
                    email["name"] = name.into();
                }
                serde_json::json!({ "emailAddress": email })
            })
            .collect())
    };
    let (content_type, content) = match parsed.body_html(0) {
        Some(html) if !parsed.html_body.is_empty() && parsed.text_body != parsed.html_body => {
            ("HTML", html.into_owned())
        }
        _ => ("Text", parsed.body_text(0).map(|t| t.into_owned()).unwrap_or_default()),
    };
    let mut json = serde_json::json!({
        "subject": parsed.subject().unwrap_or_default(),
        "body": { "contentType": content_type, "content": content },
        "toRecipients": recipients("to")?,
        "ccRecipients": recipients("cc")?,
        "bccRecipients": recipients("bcc")?,
        "replyTo": recipients("reply-to")?,
    });
    if let Some(from) = recipients("from")?.into_iter().next()
        && !from["emailAddress"]["address"]
            .as_str()
            .is_some_and(|a| a.eq_ignore_ascii_case(mailbox))
    {
        json["from"] = from;
    }
    let custom: Vec<serde_json::Value> = parsed
        .headers()
        .iter()
        // Graph takes custom headers by ASCII name only; a name in another script is no header
        // field at all (RFC 5322 §2.2) and is left out rather than sliced.
        .filter(|h| h.name().is_ascii() && h.name().len() > 2 && h.name()[..2].eq_ignore_ascii_case("x-"))
        .filter_map(|h| {
            let value = h.value().as_text()?;
            Some(serde_json::json!({ "name": h.name(), "value": value }))
        })
        .collect();
    if !custom.is_empty() {
        json["internetMessageHeaders"] = custom.into();
    }
    let attachments: Vec<serde_json::Value> = parsed
        .attachments()
        .map(|part| {
            let content_type = part.content_type().map_or("application/octet-stream".to_owned(), |c| {
                c.subtype()
                    .map_or_else(|| c.ctype().to_owned(), |sub| format!("{}/{sub}", c.ctype()))
            });
            let mut attachment = serde_json::json!({
                "@odata.type": "#microsoft.graph.fileAttachment",
                "name": part.attachment_name().unwrap_or("attachment"),
                "contentType": content_type,
                "contentBytes": base64::engine::general_purpose::STANDARD.encode(part.contents()),
            });
            if let Some(id) = part.content_id() {
                attachment["isInline"] = true.into();
                attachment["contentId"] = id.into();
            }
            attachment
        })
        .collect();
    if !attachments.is_empty() {
        json["attachments"] = attachments.into();
    }
    Ok(serde_json::json!({ "message": json, "saveToSentItems": false }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_message_is_rebuilt_with_its_recipients_body_attachments_and_x_headers() {
        let mime = "From: Alerts <alerts@contoso.com>\r\nTo: Bob <bob@fabrikam.com>\r\nBcc: audit@contoso.com\r\nSubject: disk full\r\nX-Monitor: zabbix\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n/var is at 97%.\r\n--b\r\nContent-Type: text/csv\r\nContent-Disposition: attachment; filename=\"df.csv\"\r\n\r\nfs,use\r\n--b--\r\n";
        let body = super::body(mime.as_bytes(), "mailer@contoso.com").unwrap();
        let m = &body["message"];
        assert_eq!(body["saveToSentItems"], false);
        assert_eq!(m["subject"], "disk full");
        assert_eq!(m["body"]["contentType"], "Text");
        assert_eq!(m["body"]["content"], "/var is at 97%.");
        assert_eq!(m["from"]["emailAddress"]["address"], "alerts@contoso.com");
        assert_eq!(m["toRecipients"][0]["emailAddress"]["name"], "Bob");
        assert_eq!(m["bccRecipients"][0]["emailAddress"]["address"], "audit@contoso.com");
        assert_eq!(m["internetMessageHeaders"][0]["name"], "X-Monitor");
        assert_eq!(m["attachments"][0]["name"], "df.csv");
        assert_eq!(m["attachments"][0]["contentBytes"], "ZnMsdXNl");
    }

    #[test]
    fn a_header_name_in_another_script_is_left_out_not_sliced() {
        let mime = "From: a@contoso.com\r\nTo: b@fabrikam.com\r\n\u{e9}\u{e9}: 1\r\nX-\u{e9}t\u{e9}: 2\r\nX-Ok: 3\r\n\r\nbody\r\n";
        let body = super::body(mime.as_bytes(), "a@contoso.com").unwrap();
        let headers = body["message"]["internetMessageHeaders"].as_array().unwrap();
        assert_eq!(headers.len(), 1);
        assert_eq!(headers[0]["name"], "X-Ok");
    }
}
