//! The message to send and its envelope: read as a whole from stdin (sendmail), or composed from
//! flags. Recipients can come from the headers (`-t`); Bcc is always removed from what is sent;
//! Message-ID, Date and From are added when missing.

use std::path::PathBuf;

use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use mail_builder::headers::raw::Raw;

use crate::smtp::Envelope;

/// Why a message cannot be sent as given.
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    /// A flag value would inject a header line.
    #[error("{flag} contains a line break; header values must be a single line")]
    LineBreak {
        /// The flag.
        flag: String,
    },
    /// No recipient anywhere.
    #[error("no recipients: give them as arguments, with --to/--cc/--bcc, or use -t to take them from the headers")]
    NoRecipients,
    /// An address that is not one.
    #[error("`{0}` is not an email address")]
    BadAddress(String),
    /// `--header` without `Name: value`.
    #[error("--header `{0}` is not `Name: value`")]
    BadHeader(String),
    /// A file to attach or read could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The input has no header section.
    #[error("the message on standard input has no headers (it should start with lines like `Subject: …`)")]
    NoHeaders,
}

/// A message ready for the transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// Sender and recipients.
    pub envelope: Envelope,
    /// The bytes to send (Bcc removed).
    pub content: Vec<u8>,
    /// Addresses of the From header.
    pub from_header: Vec<String>,
}

/// Options for a message read from standard input.
#[derive(Debug, Clone, Default)]
pub struct RawOptions {
    /// Recipients given as arguments or flags.
    pub recipients: Vec<String>,
    /// `-t`: also take recipients from To, Cc and Bcc.
    pub recipients_from_headers: bool,
    /// `-f`: envelope sender.
    pub envelope_from: Option<String>,
    /// `-F`: full name for an added From header.
    pub full_name: Option<String>,
    /// The From address to add when the message has none.
    pub default_from: String,
}

/// Prepares a message read as a whole.
pub fn from_raw(raw: &[u8], options: &RawOptions) -> Result<Outgoing, MessageError> {
    let (headers, body) = split_headers(raw).ok_or(MessageError::NoHeaders)?;
    let parsed = mail_parser::MessageParser::default().parse_headers(raw);
    let addresses = |field: &str| -> Vec<String> {
        parsed
            .as_ref()
            .and_then(|m| match field {
                "to" => m.to(),
                "cc" => m.cc(),
                "bcc" => m.bcc(),
                _ => m.from(),
            })
            .map(|a| a.iter().filter_map(|x| x.address().map(str::to_owned)).collect())
            .unwrap_or_default()
    };
    let mut recipients = options.recipients.clone();
    if options.recipients_from_headers {
        for field in ["to", "cc", "bcc"] {
            recipients.extend(addresses(field));
        }
    }
    let recipients = dedup(recipients);
    if recipients.is_empty() {
        return Err(MessageError::NoRecipients);
    }
    for r in &recipients {
        check_address(r)?;
    }

    let kept: Vec<&[u8]> = fields(headers)
        .filter(|f| !field_name(f).eq_ignore_ascii_case("bcc"))
        .collect();
    let has = |name: &str| fields(headers).any(|f| field_name(f).eq_ignore_ascii_case(name));
    let mut added = Vec::new();
    let mut from_header = addresses("from");
    if !has("from") {
        check_address(&options.default_from)?;
        added.push(match &options.full_name {
            Some(name) => format!("From: {}\r\n", display_address(name, &options.default_from)),
            None => format!("From: {}\r\n", options.default_from),
        });
        from_header = vec![options.default_from.clone()];
    }
    if !has("date") {
        added.push(format!("Date: {}\r\n", rfc5322_date(crate::clock::now())));
    }
    if !has("message-id") {
        added.push(format!("Message-ID: {}\r\n", new_message_id(&options.default_from)));
    }
    let envelope_from = options
        .envelope_from
        .clone()
        .or_else(|| from_header.first().cloned())
        .unwrap_or_else(|| options.default_from.clone());
    if !envelope_from.is_empty() {
        check_address(&envelope_from)?;
    }

    let mut content = Vec::with_capacity(raw.len() + 128);
    for line in &added {
        content.extend_from_slice(line.as_bytes());
    }
    kept.iter().for_each(|f| content.extend_from_slice(f));
    content.extend_from_slice(body);
    Ok(Outgoing {
        envelope: Envelope {
            from: envelope_from,
            to: recipients,
        },
        content,
        from_header,
    })
}

/// The addresses of a message's From header, and its first display name.
pub fn header_from(raw: &[u8]) -> (Vec<String>, Option<String>) {
    let Some(parsed) = mail_parser::MessageParser::default().parse_headers(raw) else {
        return (Vec::new(), None);
    };
    let Some(from) = parsed.from() else {
        return (Vec::new(), None);
    };
    let addresses = from.iter().filter_map(|a| a.address().map(str::to_owned)).collect();
    let name = from.first().and_then(|a| a.name()).map(str::to_owned);
    (addresses, name)
}

/// Replaces the From header with `mailbox` (keeping the display name) and, unless the message
/// has a Reply-To, points Reply-To at the original From so replies still reach the sender.
pub fn rewrite_from(raw: &[u8], mailbox: &str) -> Vec<u8> {
    let Some((headers, body)) = split_headers(raw) else {
        return raw.to_vec();
    };
    let (_, name) = header_from(raw);
    let mut content = Vec::with_capacity(raw.len() + 64);
    let from = match &name {
        Some(name) if !name.trim().is_empty() => display_address(name, mailbox),
        _ => mailbox.to_owned(),
    };
    content.extend_from_slice(format!("From: {from}\r\n").as_bytes());
    let has_reply_to = fields(headers).any(|f| field_name(f).eq_ignore_ascii_case("reply-to"));
    for field in fields(headers) {
        if field_name(field).eq_ignore_ascii_case("from") {
            if !has_reply_to {
                content.extend_from_slice(b"Reply-To:");
                content.extend_from_slice(&field[field.iter().position(|b| *b == b':').map_or(0, |p| p + 1)..]);
            }
            continue;
        }
        content.extend_from_slice(field);
    }
    content.extend_from_slice(body);
    content
}

/// Adds the From, Date and Message-ID headers a message lacks (devices often send none).
pub fn add_missing_headers(raw: &[u8], from: &str, now: time::OffsetDateTime) -> Vec<u8> {
    let headers = split_headers(raw).map_or(&raw[..0], |(h, _)| h);
    let has = |name: &str| fields(headers).any(|f| field_name(f).eq_ignore_ascii_case(name));
    let mut added = String::new();
    if !has("from") {
        added.push_str(&format!("From: {from}\r\n"));
    }
    if !has("date") {
        added.push_str(&format!("Date: {}\r\n", rfc5322_date(now)));
    }
    if !has("message-id") {
        added.push_str(&format!("Message-ID: {}\r\n", new_message_id(from)));
    }
    let mut content = Vec::with_capacity(raw.len() + added.len());
    content.extend_from_slice(added.as_bytes());
    if split_headers(raw).is_none() {
        // No header section at all: what came is the body.
        content.extend_from_slice(b"\r\n");
    }
    content.extend_from_slice(raw);
    content
}

/// The Message-ID header's value, for logs.
pub fn message_id(raw: &[u8]) -> Option<String> {
    header_value(raw, "message-id")
}

/// The raw value of the first header field called `name`, unfolded and trimmed.
pub fn header_value(raw: &[u8], name: &str) -> Option<String> {
    let headers = split_headers(raw)?.0;
    let field = fields(headers).find(|f| field_name(f).eq_ignore_ascii_case(name))?;
    let value = &field[field.iter().position(|b| *b == b':').map_or(0, |p| p + 1)..];
    Some(
        String::from_utf8_lossy(value)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// What `send` composes from flags.
#[derive(Debug, Clone, Default)]
pub struct Compose {
    /// From address and optional display name.
    pub from: String,
    /// Display name of From.
    pub from_name: Option<String>,
    /// To.
    pub to: Vec<String>,
    /// Cc.
    pub cc: Vec<String>,
    /// Bcc: envelope only.
    pub bcc: Vec<String>,
    /// Subject.
    pub subject: Option<String>,
    /// Plain-text body.
    pub text: Option<String>,
    /// HTML body.
    pub html: Option<String>,
    /// Files to attach.
    pub attachments: Vec<PathBuf>,
    /// Extra `Name: value` headers.
    pub headers: Vec<String>,
    /// Envelope sender, when not the From address.
    pub envelope_from: Option<String>,
}

/// Builds a message from flags.
pub fn compose(spec: &Compose) -> Result<Outgoing, MessageError> {
    let single_line = |flag: &str, value: &str| {
        if value.contains(['\r', '\n']) {
            Err(MessageError::LineBreak { flag: flag.to_owned() })
        } else {
            Ok(())
        }
    };
    single_line("--from", &spec.from)?;
    for (flag, values) in [
        ("--to", &spec.to),
        ("--cc", &spec.cc),
        ("--bcc", &spec.bcc),
        ("--header", &spec.headers),
    ] {
        for v in values {
            single_line(flag, v)?;
        }
    }
    for (flag, value) in [
        ("--subject", &spec.subject),
        ("-F/--from-name", &spec.from_name),
        ("-f", &spec.envelope_from),
    ] {
        if let Some(v) = value {
            single_line(flag, v)?;
        }
    }
    check_address(&spec.from)?;
    let recipients = dedup(spec.to.iter().chain(&spec.cc).chain(&spec.bcc).cloned().collect());
    if recipients.is_empty() {
        return Err(MessageError::NoRecipients);
    }
    for r in &recipients {
        check_address(r)?;
    }

    let from: Address<'_> = match &spec.from_name {
        Some(name) => (name.as_str(), spec.from.as_str()).into(),
        None => spec.from.as_str().into(),
    };
    let mut builder = MessageBuilder::new()
        .from(from)
        .message_id(new_message_id(&spec.from).trim_matches(['<', '>']).to_owned());
    if !spec.to.is_empty() {
        builder = builder.to(address_list(&spec.to));
    }
    if !spec.cc.is_empty() {
        builder = builder.cc(address_list(&spec.cc));
    }
    if let Some(subject) = &spec.subject {
        builder = builder.subject(subject.as_str());
    }
    for header in &spec.headers {
        let (name, value) = header
            .split_once(':')
            .filter(|(n, _)| !n.trim().is_empty() && n.bytes().all(|b| b.is_ascii_graphic() && b != b':'))
            .ok_or_else(|| MessageError::BadHeader(header.clone()))?;
        builder = builder.header(name.trim().to_owned(), Raw::new(value.trim().to_owned()));
    }
    builder = match (&spec.text, &spec.html) {
        (Some(text), Some(html)) => builder.text_body(text.as_str()).html_body(html.as_str()),
        (None, Some(html)) => builder.html_body(html.as_str()),
        (Some(text), None) => builder.text_body(text.as_str()),
        (None, None) => builder.text_body(""),
    };
    for path in &spec.attachments {
        let bytes = std::fs::read(path).map_err(|source| MessageError::Read {
            path: path.clone(),
            source,
        })?;
        let name = path
            .file_name()
            .map_or_else(|| "attachment".to_owned(), |n| n.to_string_lossy().into_owned());
        let mime = mime_guess::from_path(path).first_or_octet_stream().to_string();
        builder = builder.attachment(mime, name, bytes);
    }
    let content = builder.write_to_vec().expect("writing to a Vec cannot fail");
    Ok(Outgoing {
        envelope: Envelope {
            from: spec.envelope_from.clone().unwrap_or_else(|| spec.from.clone()),
            to: recipients,
        },
        content,
        from_header: vec![spec.from.clone()],
    })
}

fn address_list(addresses: &[String]) -> Address<'_> {
    Address::new_list(addresses.iter().map(|a| Address::from(a.as_str())).collect())
}

/// Splits at the first empty line; both parts keep their line endings.
fn split_headers(raw: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut pos = 0;
    for line in raw.split_inclusive(|b| *b == b'\n') {
        if line == b"\r\n" || line == b"\n" {
            return Some((&raw[..pos], &raw[pos..]));
        }
        if pos == 0 && !line.contains(&b':') {
            return None;
        }
        pos += line.len();
    }
    // Headers only, no body.
    (pos > 0).then_some((raw, &raw[raw.len()..]))
}

/// Header fields, each with its folded continuation lines.
fn fields(headers: &[u8]) -> impl Iterator<Item = &[u8]> {
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

fn field_name(field: &[u8]) -> String {
    let end = field.iter().position(|b| *b == b':').unwrap_or(field.len());
    String::from_utf8_lossy(&field[..end]).trim().to_owned()
}

fn dedup(addresses: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    addresses
        .into_iter()
        .map(|a| a.trim().to_owned())
        .filter(|a| !a.is_empty() && seen.insert(a.to_ascii_lowercase()))
        .collect()
}

/// `local@domain` with no spaces, brackets or line breaks.
pub fn check_address(address: &str) -> Result<(), MessageError> {
    let bad = || MessageError::BadAddress(address.to_owned());
    let (local, domain) = address.rsplit_once('@').ok_or_else(bad)?;
    let clean =
        |s: &str| !s.is_empty() && !s.contains(|c: char| c.is_whitespace() || c.is_control() || "<>(),;".contains(c));
    if clean(local) && clean(domain) && domain.contains('.') {
        Ok(())
    } else {
        Err(bad())
    }
}

fn display_address(name: &str, address: &str) -> String {
    let needs_quotes = name.contains(|c: char| !(c.is_alphanumeric() || c == ' ' || c == '-' || c == '.'));
    if needs_quotes {
        format!("\"{}\" <{address}>", name.replace(['\\', '"'], ""))
    } else {
        format!("{name} <{address}>")
    }
}

fn new_message_id(from: &str) -> String {
    let domain = from.rsplit_once('@').map_or("localhost", |(_, d)| d);
    format!("<{}@{domain}>", uuid::Uuid::new_v4().simple())
}

/// `Mon, 23 Nov 2026 18:00:00 +0000`.
pub fn rfc5322_date(t: time::OffsetDateTime) -> String {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] [offset_hour sign:mandatory][offset_minute]"
    );
    t.format(&format).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> RawOptions {
        RawOptions {
            default_from: "mailer@contoso.com".into(),
            ..RawOptions::default()
        }
    }

    #[test]
    fn dash_t_takes_recipients_and_bcc_never_leaves() {
        let raw = b"From: alerts@contoso.com\r\nTo: a@fabrikam.com, B <b@fabrikam.com>\r\nCc: c@fabrikam.com\r\nBcc: hidden@fabrikam.com,\r\n  other@fabrikam.com\r\nSubject: Hi\r\nDate: Mon, 23 Nov 2026 18:00:00 +0000\r\nMessage-ID: <x@y>\r\n\r\nBody\r\nBcc: in the body stays\r\n";
        let out = from_raw(
            raw,
            &RawOptions {
                recipients_from_headers: true,
                ..options()
            },
        )
        .unwrap();
        assert_eq!(
            out.envelope.to,
            [
                "a@fabrikam.com",
                "b@fabrikam.com",
                "c@fabrikam.com",
                "hidden@fabrikam.com",
                "other@fabrikam.com"
            ]
        );
        assert_eq!(out.envelope.from, "alerts@contoso.com");
        let text = String::from_utf8(out.content).unwrap();
        assert!(!text.contains("hidden") && !text.contains("other@"), "{text}");
        assert!(text.contains("Bcc: in the body stays"));
        assert_eq!(
            text,
            String::from_utf8(raw.to_vec())
                .unwrap()
                .replace("Bcc: hidden@fabrikam.com,\r\n  other@fabrikam.com\r\n", "")
        );
    }

    #[test]
    fn missing_headers_are_added_and_arguments_are_recipients() {
        let out = from_raw(
            b"Subject: cron\n\nbackup done\n",
            &RawOptions {
                recipients: vec!["ops@fabrikam.com".into()],
                full_name: Some("Backup Job".into()),
                ..options()
            },
        )
        .unwrap();
        let text = String::from_utf8(out.content).unwrap();
        assert!(
            text.starts_with("From: Backup Job <mailer@contoso.com>\r\nDate: "),
            "{text}"
        );
        assert!(text.contains("\r\nMessage-ID: <") && text.ends_with("Subject: cron\n\nbackup done\n"));
        assert_eq!(out.envelope.from, "mailer@contoso.com");
        assert_eq!(out.from_header, ["mailer@contoso.com"]);
    }

    #[test]
    fn relay_header_handling() {
        let raw = b"From: \"Scanner 3F\" <scan@printers.local>\r\nSubject: scan\r\n\r\nbody\r\n";
        assert_eq!(
            header_from(raw),
            (vec!["scan@printers.local".to_owned()], Some("Scanner 3F".to_owned()))
        );
        let rewritten = String::from_utf8(rewrite_from(raw, "relay@contoso.com")).unwrap();
        assert_eq!(
            rewritten,
            "From: Scanner 3F <relay@contoso.com>\r\nReply-To: \"Scanner 3F\" <scan@printers.local>\r\nSubject: scan\r\n\r\nbody\r\n"
        );
        let with_reply_to = b"From: a@b.example\r\nReply-To: ops@b.example\r\n\r\nx\r\n";
        assert_eq!(
            String::from_utf8(rewrite_from(with_reply_to, "relay@contoso.com")).unwrap(),
            "From: relay@contoso.com\r\nReply-To: ops@b.example\r\n\r\nx\r\n"
        );

        let now = time::macros::datetime!(2026-11-23 18:00 UTC);
        let completed = String::from_utf8(add_missing_headers(
            b"Subject: x\r\n\r\nbody\r\n",
            "relay@contoso.com",
            now,
        ))
        .unwrap();
        assert!(
            completed.starts_with("From: relay@contoso.com\r\nDate: Mon, 23 Nov 2026 18:00:00 +0000\r\nMessage-ID: <"),
            "{completed}"
        );
        assert!(
            completed.ends_with("@contoso.com>\r\nSubject: x\r\n\r\nbody\r\n"),
            "{completed}"
        );
        assert_eq!(
            message_id(completed.as_bytes()).unwrap().len(),
            "<@contoso.com>".len() + 32
        );
        let bare = String::from_utf8(add_missing_headers(b"just text\r\n", "relay@contoso.com", now)).unwrap();
        assert!(bare.contains(">\r\n\r\njust text\r\n"), "{bare}");
        let complete = b"From: a@b.example\r\nDate: x\r\nMessage-ID: <1@b>\r\n\r\nx\r\n";
        assert_eq!(add_missing_headers(complete, "relay@contoso.com", now), complete);
        assert_eq!(message_id(complete).as_deref(), Some("<1@b>"));
    }

    #[test]
    fn refusals() {
        assert!(matches!(
            from_raw(b"Subject: x\r\n\r\nb", &options()),
            Err(MessageError::NoRecipients)
        ));
        assert!(matches!(
            from_raw(b"no headers here\r\n\r\nb", &options()),
            Err(MessageError::NoHeaders)
        ));
        let mut spec = Compose {
            from: "mailer@contoso.com".into(),
            to: vec!["a@fabrikam.com".into()],
            subject: Some("Hi\r\nBcc: victim@fabrikam.com".into()),
            ..Compose::default()
        };
        assert!(matches!(compose(&spec), Err(MessageError::LineBreak { .. })));
        spec.subject = None;
        spec.headers = vec!["X-Ok: 1".into(), "Broken".into()];
        assert!(matches!(compose(&spec), Err(MessageError::BadHeader(_))));
        assert!(
            check_address("a b@c.d").is_err() && check_address("nobody").is_err() && check_address("a@b.c").is_ok()
        );
    }

    #[test]
    fn composed_messages_carry_bcc_in_the_envelope_only() {
        let out = compose(&Compose {
            from: "mailer@contoso.com".into(),
            from_name: Some("Contoso Alerts".into()),
            to: vec!["a@fabrikam.com".into()],
            bcc: vec!["audit@contoso.com".into()],
            subject: Some("Ünïcode subject".into()),
            text: Some("Hello".into()),
            headers: vec!["X-Priority: 1".into()],
            ..Compose::default()
        })
        .unwrap();
        assert_eq!(out.envelope.to, ["a@fabrikam.com", "audit@contoso.com"]);
        let parsed = mail_parser::MessageParser::default().parse(&out.content).unwrap();
        assert_eq!(parsed.subject(), Some("Ünïcode subject"));
        assert!(parsed.bcc().is_none());
        assert!(parsed.message_id().is_some() && parsed.date().is_some());
        assert_eq!(parsed.header_raw("X-Priority").map(str::trim), Some("1"));
    }
}
