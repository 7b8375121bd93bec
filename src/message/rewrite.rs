//! Header lines the relay writes into messages it accepted: the From rewritten to the account's
//! mailbox, and the From, Date and Message-ID devices leave out. Every line written is made by
//! mail-builder or from checked values, so nothing a client sent can become a header of its own.

use mail_builder::headers::Header as _;
use mail_builder::headers::address::Address;

use super::header::{self, Mailbox};
use super::{MessageError, new_message_id, rfc5322_date};
use crate::clock::Timestamp;

/// `From: name <address>` with CRLF: the name encoded (RFC 2047) and quoted as needed, its
/// control characters (an encoded CR LF) never written raw.
pub(crate) fn from_line(name: Option<&str>, address: &str) -> Vec<u8> {
    let Some(name) = name.map(str::trim).filter(|n| !n.is_empty()) else {
        // A checked address (`check_address`) needs no quoting.
        return format!("From: {address}\r\n").into_bytes();
    };
    let mut line = b"From: ".to_vec();
    Address::new_address(Some(name), address).write_header(&mut line, "From: ".len());
    line
}

/// `To: a, B <b>` (or Cc, Bcc) with CRLF, folded and encoded by mail-builder.
pub(crate) fn address_line(field: &str, mailboxes: &[Mailbox]) -> Vec<u8> {
    let name = match field {
        "to" => "To",
        "cc" => "Cc",
        _ => "Bcc",
    };
    let list = Address::new_list(
        mailboxes
            .iter()
            .map(|m| Address::new_address(m.name.as_deref(), m.address.as_str()))
            .collect(),
    );
    let mut line = format!("{name}: ").into_bytes();
    list.write_header(&mut line, name.len() + 2);
    line
}

/// Replaces the From header with `mailbox` (keeping the display name) and, unless the message
/// has a Reply-To, points Reply-To at the original From so replies still reach the sender. A
/// From without a usable address is replaced without a Reply-To; several From fields are an
/// error (which one the sender meant is anybody's guess).
pub(crate) fn rewrite_from(raw: &[u8], mailbox: &str) -> Result<Vec<u8>, MessageError> {
    let Some((headers, body)) = header::split(raw) else {
        let mut content = from_line(None, mailbox);
        content.extend_from_slice(b"\r\n");
        content.extend_from_slice(raw);
        return Ok(content);
    };
    let (original, reply_to) = match header::from(headers) {
        Ok(found) => {
            let name = found
                .as_ref()
                .and_then(|m| m.first())
                .and_then(|m: &Mailbox| m.name.clone());
            (name, !header::has(headers, "reply-to"))
        }
        Err(e @ MessageError::FromCount(_)) => return Err(e),
        Err(_) => (None, false),
    };
    let mut content = Vec::with_capacity(raw.len() + 64);
    content.extend_from_slice(&from_line(original.as_deref(), mailbox));
    for field in header::fields(headers) {
        if header::is(field, "from") {
            if reply_to {
                content.extend_from_slice(b"Reply-To:");
                content.extend_from_slice(header::value(field));
            }
            continue;
        }
        content.extend_from_slice(field);
    }
    content.extend_from_slice(body);
    Ok(content)
}

/// Adds the From, Date and Message-ID headers a message lacks (devices often send none).
pub(crate) fn add_missing_headers(raw: &[u8], from: &str, now: Timestamp) -> Vec<u8> {
    let split = header::split(raw);
    let headers = split.map_or(&raw[..0], |(h, _)| h);
    let mut added = Vec::new();
    if !header::has(headers, "from") {
        added.extend_from_slice(&from_line(None, from));
    }
    if !header::has(headers, "date") {
        added.extend_from_slice(format!("Date: {}\r\n", rfc5322_date(now)).as_bytes());
    }
    if !header::has(headers, "message-id") {
        added.extend_from_slice(format!("Message-ID: {}\r\n", new_message_id(from)).as_bytes());
    }
    let mut content = Vec::with_capacity(raw.len() + added.len() + 2);
    content.extend_from_slice(&added);
    if split.is_none() {
        // No header section at all: what came is the body.
        content.extend_from_slice(b"\r\n");
    }
    content.extend_from_slice(raw);
    content
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_from_line_never_carries_a_line_break() {
        assert_eq!(from_line(None, "a@b.example"), b"From: a@b.example\r\n");
        assert_eq!(
            from_line(Some("Scanner 3F"), "a@b.example"),
            b"From: \"Scanner 3F\" <a@b.example>\r\n"
        );
        let hostile = from_line(Some("Evil\r\nBcc: victim@x.example"), "a@b.example");
        let text = String::from_utf8(hostile).unwrap();
        assert_eq!(text.matches("\r\n").count(), 1, "{text:?}");
        assert!(!text.contains("\r\nBcc:"), "{text:?}");
        let accented = String::from_utf8(from_line(Some("Jörg"), "j@b.example")).unwrap();
        assert!(accented.is_ascii() && accented.contains("=?utf-8?"), "{accented}");
    }

    #[test]
    fn an_encoded_line_break_in_the_name_stays_in_the_name() {
        let raw = b"From: =?utf-8?q?Evil=0D=0ABcc:_x@y.example?= <scan@printers.example>\r\nSubject: s\r\n\r\nb\r\n";
        let rewritten = rewrite_from(raw, "relay@contoso.com").unwrap();
        let (headers, _) = header::split(&rewritten).unwrap();
        let names: Vec<String> = header::fields(headers)
            .map(|f| String::from_utf8_lossy(header::name(f)).into_owned())
            .collect();
        assert_eq!(names, ["From", "Reply-To", "Subject"]);
        let from = header::from(headers).unwrap().unwrap();
        assert_eq!(from[0].address, "relay@contoso.com");
    }

    #[test]
    fn an_addressless_from_is_replaced_without_a_reply_to() {
        let rewritten = rewrite_from(b"From: Scanner\r\nSubject: s\r\n\r\nb\r\n", "relay@contoso.com").unwrap();
        assert_eq!(
            String::from_utf8(rewritten).unwrap(),
            "From: relay@contoso.com\r\nSubject: s\r\n\r\nb\r\n"
        );
    }
}
