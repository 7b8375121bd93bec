//! Header fields on the bytes: the header section, its fields, their names and values, and the
//! mailboxes of address fields.
//!
//! A field is found by line structure alone: a line, and the lines after it that start with
//! white space (RFC 5322 §2.2.3). That is how Exchange reads the message we send, so every check
//! (how many From fields, which recipients) is made on the same fields that go out. Only the
//! value of one field at a time is handed to mail-parser, to read its addresses. Callers pass
//! content whose line ends are already CRLF ([`crate::smtp::transparency`]): a bare CR would be
//! a line end to one reader and not to another.

use super::{MessageError, check_address};

/// Whether `line` starts a header field: a name of printable ASCII without a colon (RFC 5322's
/// `ftext`), white space allowed before the colon (obsolete syntax) — what Postfix takes for a
/// header. `F\x0crom:` is not one, though some readers take it for `From:`.
fn starts_field(line: &[u8]) -> bool {
    let Some(colon) = line.iter().position(|b| *b == b':') else {
        return false;
    };
    let name = &line[..colon];
    let end = name
        .iter()
        .rposition(|b| *b != b' ' && *b != b'\t')
        .map_or(0, |i| i + 1);
    end > 0 && name[..end].iter().all(|b| (33..=126).contains(b))
}

fn continues(line: &[u8]) -> bool {
    line.starts_with(b" ") || line.starts_with(b"\t")
}

/// Where the header section ends: the empty line that ends it, or the first line that neither
/// starts nor continues a field (the body starts there, as Postfix has it). `None` when the
/// first line is not the start of a field: a continuation of nothing would attach itself to
/// whatever field is written before it.
fn head_end(raw: &[u8]) -> Option<(usize, bool)> {
    let mut pos = 0;
    for line in raw.split_inclusive(|b| *b == b'\n') {
        if line == b"\r\n" || line == b"\n" {
            return Some((pos, true));
        }
        let field = starts_field(line);
        if pos == 0 && !field {
            return None;
        }
        if !field && !continues(line) {
            return Some((pos, false));
        }
        pos += line.len();
    }
    // Headers only, no body.
    (pos > 0).then_some((pos, true))
}

/// Splits at the end of the header section ([`head_end`]); both parts keep their line endings.
/// `None` when the content has no header section.
pub(crate) fn split(raw: &[u8]) -> Option<(&[u8], &[u8])> {
    head_end(raw).map(|(end, _)| raw.split_at(end))
}

/// The content with an empty line where its header section ends without one, so that every
/// reader — this one, mail-parser, Exchange — sees the same fields. Content must have CRLF line
/// ends.
pub(crate) fn end_head(raw: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    match head_end(raw) {
        Some((end, false)) => {
            let mut content = Vec::with_capacity(raw.len() + 2);
            content.extend_from_slice(&raw[..end]);
            content.extend_from_slice(b"\r\n");
            content.extend_from_slice(&raw[end..]);
            std::borrow::Cow::Owned(content)
        }
        _ => std::borrow::Cow::Borrowed(raw),
    }
}

/// Header fields, each with its folded continuation lines and line ends.
pub(crate) fn fields(headers: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = headers;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut end = 0;
        for (i, line) in rest.split_inclusive(|b| *b == b'\n').enumerate() {
            if i > 0 && !line.starts_with(b" ") && !line.starts_with(b"\t") {
                break;
            }
            end += line.len();
        }
        let (field, tail) = rest.split_at(end);
        rest = tail;
        Some(field)
    })
}

/// The field's name, without the white space obsolete syntax allows before the colon.
pub(crate) fn name(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|b| *b == b':').unwrap_or(field.len());
    field[..end].trim_ascii()
}

/// Whether the field is called `name` (case-insensitive).
pub(crate) fn is(field: &[u8], name: &str) -> bool {
    self::name(field).eq_ignore_ascii_case(name.as_bytes())
}

/// What follows the colon, line ends included.
pub(crate) fn value(field: &[u8]) -> &[u8] {
    field
        .iter()
        .position(|b| *b == b':')
        .map_or(&field[field.len()..], |p| &field[p + 1..])
}

/// Whether the header section has a field called `name`.
pub(crate) fn has(headers: &[u8], name: &str) -> bool {
    fields(headers).any(|f| is(f, name))
}

/// The value of the first field called `name`, unfolded and trimmed.
pub(crate) fn header_value(raw: &[u8], name: &str) -> Option<String> {
    let headers = split(raw)?.0;
    let field = fields(headers).find(|f| is(f, name))?;
    Some(
        String::from_utf8_lossy(value(field))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// The Message-ID header's value, for logs: control characters escaped, so the client's text
/// cannot forge a log line or drive a terminal.
pub(crate) fn message_id(raw: &[u8]) -> Option<String> {
    header_value(raw, "message-id").map(|id| id.escape_debug().to_string())
}

/// The longest subject the queue keeps, in characters.
const SUBJECT_MAX: usize = 200;

/// The Subject, decoded (RFC 2047), for the queue's listings: control characters and
/// direction overrides become spaces, whitespace is collapsed, at most 200 characters. `None`
/// without one, or when it is empty.
pub(crate) fn subject(raw: &[u8]) -> Option<String> {
    let headers = split(raw)?.0;
    let field = fields(headers).find(|f| is(f, "subject"))?;
    let mut alone = b"Subject:".to_vec();
    alone.extend_from_slice(value(field));
    alone.extend_from_slice(b"\r\n");
    let parsed = mail_parser::MessageParser::default().parse_headers(&alone[..]);
    let text = match parsed.as_ref().and_then(|m| m.subject()) {
        Some(decoded) => decoded.to_owned(),
        None => String::from_utf8_lossy(value(field)).into_owned(),
    };
    let shown = |c: char| {
        !c.is_control() && !matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    let clean: String = text.chars().map(|c| if shown(c) { c } else { ' ' }).collect();
    let words: Vec<&str> = clean.split_whitespace().collect();
    let joined = words.join(" ");
    (!joined.is_empty()).then(|| joined.chars().take(SUBJECT_MAX).collect())
}

/// A mailbox named in an address field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mailbox {
    /// The display name, decoded (RFC 2047).
    pub(crate) name: Option<String>,
    /// `local@domain`.
    pub(crate) address: String,
}

/// Every mailbox of one address field (To, Cc, Bcc, From, Reply-To…), groups included. Anything
/// that is not an address — a bare name, a malformed address — is an error naming the field:
/// a recipient is never dropped without a word.
pub(crate) fn mailboxes(field: &[u8]) -> Result<Vec<Mailbox>, MessageError> {
    let field_name = String::from_utf8_lossy(name(field)).into_owned();
    let refused = |text: &str| MessageError::HeaderAddress {
        field: field_name.clone(),
        text: text.escape_debug().to_string(),
    };
    // mail-parser reads the value as a `To:` field: the parser of address lists.
    let mut alone = b"To:".to_vec();
    alone.extend_from_slice(value(field));
    alone.extend_from_slice(b"\r\n");
    let parsed = mail_parser::MessageParser::default().parse_headers(&alone[..]);
    let Some(header) = parsed.as_ref().and_then(|m| m.headers().first()) else {
        return Ok(Vec::new());
    };
    let list = match header.value() {
        mail_parser::HeaderValue::Address(list) => list,
        mail_parser::HeaderValue::Empty => return Ok(Vec::new()),
        _ => return Err(refused(String::from_utf8_lossy(value(field)).trim())),
    };
    let mut out = Vec::new();
    for addr in list.iter() {
        let name = addr.name().map(str::to_owned);
        match addr.address() {
            Some(address) if !address.is_empty() => {
                check_address(address).map_err(|_| refused(address))?;
                out.push(Mailbox {
                    name,
                    address: address.to_owned(),
                });
            }
            _ => match &name {
                Some(text) if !text.trim().is_empty() => return Err(refused(text)),
                _ => {}
            },
        }
    }
    Ok(out)
}

/// The From field, which a message has exactly once (RFC 5322 §3.6): its mailboxes. `Ok(None)`
/// when there is none; an error when there are several, or it names no address.
pub(crate) fn from(headers: &[u8]) -> Result<Option<Vec<Mailbox>>, MessageError> {
    let mut found = fields(headers).filter(|f| is(f, "from"));
    let Some(field) = found.next() else {
        return Ok(None);
    };
    let more = found.count();
    if more > 0 {
        return Err(MessageError::FromCount(more + 1));
    }
    let mailboxes = mailboxes(field)?;
    if mailboxes.is_empty() {
        return Err(MessageError::FromWithoutAddress);
    }
    Ok(Some(mailboxes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addresses(value: &str) -> Result<Vec<String>, MessageError> {
        mailboxes(format!("To: {value}\r\n").as_bytes()).map(|m| m.into_iter().map(|m| m.address).collect())
    }

    #[test]
    fn address_fields_in_every_shape() {
        let rows: &[(&str, &[&str])] = &[
            ("a@x.example", &["a@x.example"]),
            ("a@x.example, B <b@x.example>", &["a@x.example", "b@x.example"]),
            (
                "team: a@x.example, B <b@x.example>;, c@x.example",
                &["a@x.example", "b@x.example", "c@x.example"],
            ),
            (
                "=?utf-8?q?J=C3=B6rg?= <j@x.example>, \"x, y\" <xy@x.example>",
                &["j@x.example", "xy@x.example"],
            ),
            ("undisclosed-recipients:;", &[]),
            ("", &[]),
            ("a@x.example,,b@x.example", &["a@x.example", "b@x.example"]),
            (
                "a@x.example (comment), <b@x.example> (c2)",
                &["a@x.example", "b@x.example"],
            ),
            ("a@x.example,\r\n b@x.example", &["a@x.example", "b@x.example"]),
        ];
        for (value, expected) in rows {
            assert_eq!(addresses(value).unwrap(), *expected, "{value:?}");
        }
    }

    #[test]
    fn what_is_not_an_address_is_refused_not_dropped() {
        for value in [
            "Bob",
            "a@x.example b@x.example",
            "a@x.example\r\n b@x.example",
            "\"v@evil> NOTIFY=NEVER\"@x.com",
            "a@x.example, Carol",
        ] {
            let error = addresses(value).unwrap_err();
            assert!(
                matches!(&error, MessageError::HeaderAddress { field, .. } if field == "To"),
                "{value:?}: {error}"
            );
        }
        assert_eq!(
            addresses("Bob").unwrap_err().to_string(),
            "the To: line names `Bob`, which is not an email address"
        );
    }

    #[test]
    fn a_subject_is_decoded_and_kept_to_one_clean_line() {
        assert_eq!(
            subject(b"Subject: =?utf-8?q?Scan_von_J=C3=B6rg?=\r\n\r\n").as_deref(),
            Some("Scan von Jörg")
        );
        assert_eq!(
            subject(b"Subject: two\r\n  lines\x1b[2J and \xe2\x80\xae evil\r\n\r\nbody").as_deref(),
            Some("two lines [2J and evil")
        );
        assert_eq!(subject(b"Subject:   \r\n\r\n"), None);
        assert_eq!(subject(b"From: a@b\r\n\r\nSubject: in the body\r\n"), None);
        let long = format!("Subject: {}\r\n\r\n", "x".repeat(500));
        assert_eq!(subject(long.as_bytes()).unwrap().chars().count(), 200);
    }

    #[test]
    fn a_message_id_for_logs_carries_no_control_character() {
        let id = message_id(b"Message-ID: <a@b>\x1b[2J\r\n\r\n").unwrap();
        assert_eq!(id, "<a@b>\\u{1b}[2J");
    }

    #[test]
    fn a_line_that_is_no_field_ends_the_head() {
        // Found by fuzzing the relay: mail-parser reads `f\x0crom:` as a From.
        let raw = b"Subject: x\r\nf\x0crom: ceo@contoso.com\r\nTo: a@x.example\r\n\r\nbody\r\n";
        let (head, _) = split(raw).unwrap();
        assert_eq!(head, b"Subject: x\r\n");
        let ended = end_head(raw);
        assert_eq!(
            &ended[..],
            b"Subject: x\r\n\r\nf\x0crom: ceo@contoso.com\r\nTo: a@x.example\r\n\r\nbody\r\n"
        );
        for line in ["X-\u{e9}t\u{e9}: 1", "no colon here", "Bad Name: x", ": empty name"] {
            let raw = format!("Subject: x\r\n{line}\r\n\r\nbody\r\n");
            assert_eq!(split(raw.as_bytes()).unwrap().0, b"Subject: x\r\n", "{line:?}");
        }
        for line in ["From : obsolete spacing", "X-Ok:1", "Received: from a\r\n\tby b"] {
            let raw = format!("Subject: x\r\n{line}\r\n\r\nbody\r\n");
            assert!(
                matches!(end_head(raw.as_bytes()), std::borrow::Cow::Borrowed(_)),
                "{line:?}"
            );
        }
    }

    #[test]
    fn a_head_that_starts_with_a_continuation_is_no_head() {
        // Written after a field of ours, it would become part of it (found by the properties).
        assert!(split(b"\t:\r\n\r\nbody\r\n").is_none());
        assert!(split(b" folded\r\nFrom: ceo@contoso.com\r\n\r\nx\r\n").is_none());
        assert!(split(b"Subject: x\r\n folded\r\n\r\nx\r\n").is_some());
    }

    #[test]
    fn exactly_one_from() {
        let one = from(b"From: A <a@x.example>\r\nTo: b@x.example\r\n").unwrap().unwrap();
        assert_eq!(one[0].name.as_deref(), Some("A"));
        assert!(from(b"To: b@x.example\r\n").unwrap().is_none());
        assert!(matches!(
            from(b"From: a@x.example\r\nFROM : ceo@x.example\r\n"),
            Err(MessageError::FromCount(2))
        ));
        for none in ["From:\r\n", "From: Bob\r\n", "From: undisclosed:;\r\n"] {
            assert!(from(none.as_bytes()).is_err(), "{none:?}");
        }
    }
}
