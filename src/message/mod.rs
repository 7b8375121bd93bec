//! The message to send and its envelope: read as a whole from stdin (sendmail), or composed from
//! flags. Recipients can come from the headers (`-t`); Bcc is always removed from what is sent;
//! Message-ID, Date and From are added when missing.
//!
//! `header.rs` reads header fields on the bytes; `rewrite.rs` writes the lines the relay adds.

mod header;
mod rewrite;

use std::path::PathBuf;

use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use mail_builder::headers::raw::Raw;

pub(crate) use header::{Mailbox, end_head, header_value, message_id, subject};
pub(crate) use rewrite::{add_missing_headers, rewrite_from};

use crate::clock::Timestamp;
use crate::smtp::Envelope;

/// Why a message cannot be sent as given.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MessageError {
    /// A flag value would inject a header line.
    #[error("{flag} contains a line break; header values must be a single line")]
    LineBreak {
        /// The flag.
        flag: String,
    },
    /// No recipient anywhere.
    #[error("no recipients: give them as arguments, with --to/--cc/--bcc, or use -t to take them from the headers")]
    NoRecipients,
    /// An address that is not one (control characters escaped).
    #[error("`{0}` is not an email address")]
    BadAddress(String),
    /// An address field names something that is not an address: refusing is the only way not to
    /// lose the recipient it was meant to be.
    #[error("the {field}: line names `{text}`, which is not an email address")]
    HeaderAddress {
        /// The field (`To`, `Cc`, `From`…).
        field: String,
        /// What it names, control characters escaped.
        text: String,
    },
    /// More than one From field: which one counts would depend on the reader.
    #[error("the message has {0} From: lines; a message has exactly one (RFC 5322 §3.6)")]
    FromCount(usize),
    /// A From field without an address.
    #[error("the From: line has no address")]
    FromWithoutAddress,
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
pub(crate) struct Outgoing {
    /// Sender and recipients.
    pub(crate) envelope: Envelope,
    /// The bytes to send (Bcc removed).
    pub(crate) content: Vec<u8>,
    /// Addresses of the From header.
    pub(crate) from_header: Vec<String>,
}

/// Options for a message read from standard input.
#[derive(Debug, Clone, Default)]
pub(crate) struct RawOptions {
    /// Recipients given as arguments or flags.
    pub(crate) recipients: Vec<String>,
    /// `-t`: also take recipients from To, Cc and Bcc.
    pub(crate) recipients_from_headers: bool,
    /// `-f`: envelope sender.
    pub(crate) envelope_from: Option<String>,
    /// `-F`: full name for an added From header.
    pub(crate) full_name: Option<String>,
    /// The From address to add when the message has none.
    pub(crate) default_from: String,
}

/// The address fields `-t` takes recipients from: the `Resent-` ones when the message has any
/// (it is being resent), else To, Cc and Bcc; as Postfix's cleanup does.
const RECIPIENT_FIELDS: [&str; 3] = ["to", "cc", "bcc"];
const RESENT_RECIPIENT_FIELDS: [&str; 3] = ["resent-to", "resent-cc", "resent-bcc"];

/// Prepares a message read as a whole. Line ends become CRLF and the header section ends with
/// an empty line first, so the fields checked here are the fields sent.
pub(crate) fn from_raw(raw: &[u8], options: &RawOptions) -> Result<Outgoing, MessageError> {
    let raw = crate::smtp::transparency::normalize_line_endings(raw);
    let raw = end_head(&raw);
    let (headers, body) = header::split(&raw).ok_or(MessageError::NoHeaders)?;
    if let Some(name) = &options.full_name
        && name.contains(['\r', '\n'])
    {
        return Err(MessageError::LineBreak { flag: "-F".to_owned() });
    }
    let mut recipients = options.recipients.clone();
    if options.recipients_from_headers {
        recipients.extend(header_recipients(headers)?);
    }
    let recipients = dedup(recipients);
    if recipients.is_empty() {
        return Err(MessageError::NoRecipients);
    }
    for r in &recipients {
        check_address(r)?;
    }

    let mut added = Vec::new();
    let from_header: Vec<String> = match header::from(headers)? {
        Some(mailboxes) => mailboxes.into_iter().map(|m| m.address).collect(),
        None => {
            check_address(&options.default_from)?;
            added.extend_from_slice(&rewrite::from_line(options.full_name.as_deref(), &options.default_from));
            vec![options.default_from.clone()]
        }
    };
    if !header::has(headers, "date") {
        added.extend_from_slice(format!("Date: {}\r\n", rfc5322_date(Timestamp::now())).as_bytes());
    }
    if !header::has(headers, "message-id") {
        added.extend_from_slice(format!("Message-ID: {}\r\n", new_message_id(&options.default_from)).as_bytes());
    }
    let envelope_from = options
        .envelope_from
        .clone()
        .or_else(|| from_header.first().cloned())
        .unwrap_or_else(|| options.default_from.clone());
    if !envelope_from.is_empty() {
        check_address(&envelope_from)?;
    }

    let mut content = Vec::with_capacity(raw.len() + added.len());
    content.extend_from_slice(&added);
    for field in header::fields(headers).filter(|f| !header::is(f, "bcc") && !header::is(f, "resent-bcc")) {
        content.extend_from_slice(field);
    }
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

/// Every address of every recipient field (`-t`), in order.
fn header_recipients(headers: &[u8]) -> Result<Vec<String>, MessageError> {
    let resent = header::fields(headers).any(|f| RESENT_RECIPIENT_FIELDS.iter().any(|n| header::is(f, n)));
    let names = if resent {
        RESENT_RECIPIENT_FIELDS
    } else {
        RECIPIENT_FIELDS
    };
    let mut out = Vec::new();
    for field in header::fields(headers).filter(|f| names.iter().any(|n| header::is(f, n))) {
        out.extend(header::mailboxes(field)?.into_iter().map(|m| m.address));
    }
    Ok(out)
}

/// Every mailbox of every field called `name` (`to`, `cc`, `bcc`, `reply-to`), in order. A
/// message may repeat a field; readers that take only the first or the last lose recipients.
pub(crate) fn address_fields(raw: &[u8], name: &str) -> Result<Vec<Mailbox>, MessageError> {
    let Some((headers, _)) = header::split(raw) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for field in header::fields(headers).filter(|f| header::is(f, name)) {
        out.extend(header::mailboxes(field)?);
    }
    Ok(out)
}

/// `To:`, `Cc:` or `Bcc:` (by `field`, lower case) naming `addresses`, folded, with CRLF.
pub(crate) fn recipient_line(field: &str, addresses: &[String]) -> Vec<u8> {
    let mailboxes: Vec<Mailbox> = addresses
        .iter()
        .map(|a| Mailbox {
            name: None,
            address: a.clone(),
        })
        .collect();
    rewrite::address_line(field, &mailboxes)
}

/// How many fields are called `name`.
pub(crate) fn count_fields(raw: &[u8], name: &str) -> usize {
    header::split(raw).map_or(0, |(headers, _)| {
        header::fields(headers).filter(|f| header::is(f, name)).count()
    })
}

/// The message with every To, Cc and Bcc field replaced by one field each, at the top, holding
/// all their mailboxes and, in Bcc, `extra_bcc`; fields a message has no mailbox for are left
/// out. For readers (Microsoft Graph) that take the recipients from the headers.
pub(crate) fn with_single_recipient_fields(raw: &[u8], extra_bcc: &[String]) -> Result<Vec<u8>, MessageError> {
    let (headers, body) = header::split(raw).ok_or(MessageError::NoHeaders)?;
    let mut content = Vec::with_capacity(raw.len() + 64);
    for name in RECIPIENT_FIELDS {
        let mut mailboxes = address_fields(raw, name)?;
        if name == "bcc" {
            mailboxes.extend(extra_bcc.iter().map(|a| Mailbox {
                name: None,
                address: a.clone(),
            }));
        }
        if !mailboxes.is_empty() {
            content.extend_from_slice(&rewrite::address_line(name, &mailboxes));
        }
    }
    for field in header::fields(headers).filter(|f| !RECIPIENT_FIELDS.iter().any(|n| header::is(f, n))) {
        content.extend_from_slice(field);
    }
    content.extend_from_slice(body);
    Ok(content)
}

/// The mailboxes of the message's From field: `None` without one; an error when it has several
/// or names no address (the relay refuses such a message: what Exchange would check is unclear).
pub(crate) fn from_mailboxes(raw: &[u8]) -> Result<Option<Vec<Mailbox>>, MessageError> {
    match header::split(raw) {
        Some((headers, _)) => header::from(headers),
        None => Ok(None),
    }
}

/// What `send` composes from flags.
#[derive(Debug, Clone, Default)]
pub(crate) struct Compose {
    /// From address and optional display name.
    pub(crate) from: String,
    /// Display name of From.
    pub(crate) from_name: Option<String>,
    /// To.
    pub(crate) to: Vec<String>,
    /// Cc.
    pub(crate) cc: Vec<String>,
    /// Bcc: envelope only.
    pub(crate) bcc: Vec<String>,
    /// Subject.
    pub(crate) subject: Option<String>,
    /// Plain-text body.
    pub(crate) text: Option<String>,
    /// HTML body.
    pub(crate) html: Option<String>,
    /// Files to attach.
    pub(crate) attachments: Vec<PathBuf>,
    /// Extra `Name: value` headers.
    pub(crate) headers: Vec<String>,
    /// Envelope sender, when not the From address.
    pub(crate) envelope_from: Option<String>,
}

/// Builds a message from flags.
pub(crate) fn compose(spec: &Compose) -> Result<Outgoing, MessageError> {
    check_single_lines(spec)?;
    check_address(&spec.from)?;
    if let Some(sender) = &spec.envelope_from {
        check_address(sender)?;
    }
    let recipients = dedup(spec.to.iter().chain(&spec.cc).chain(&spec.bcc).cloned().collect());
    if recipients.is_empty() {
        return Err(MessageError::NoRecipients);
    }
    for r in &recipients {
        check_address(r)?;
    }
    let content = build(spec)?.write_to_vec().expect("writing to a Vec cannot fail");
    Ok(Outgoing {
        envelope: Envelope {
            from: spec.envelope_from.clone().unwrap_or_else(|| spec.from.clone()),
            to: recipients,
        },
        content,
        from_header: vec![spec.from.clone()],
    })
}

/// No flag's value may break a header line: a line break would start a header of its own.
fn check_single_lines(spec: &Compose) -> Result<(), MessageError> {
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
    Ok(())
}

/// The MIME message: headers, bodies and attachments (Bcc stays off the headers).
fn build(spec: &Compose) -> Result<MessageBuilder<'_>, MessageError> {
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
    Ok(builder)
}

fn address_list(addresses: &[String]) -> Address<'_> {
    Address::new_list(addresses.iter().map(|a| Address::from(a.as_str())).collect())
}

fn dedup(addresses: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    addresses
        .into_iter()
        .map(|a| a.trim().to_owned())
        .filter(|a| !a.is_empty() && seen.insert(a.to_ascii_lowercase()))
        .collect()
}

/// `local@domain` as SMTP carries it without quoting: a dot-atom local part (RFC 5322 §3.2.3,
/// UTF-8 allowed as RFC 6531 does) and a domain of labels or an address literal. No white space,
/// control characters, brackets or quotes, so it can never carry an SMTP parameter or a header
/// line, and no leading `-`, so it can never be mistaken for an option (as Postfix refuses).
pub(crate) fn check_address(address: &str) -> Result<(), MessageError> {
    let bad = || MessageError::BadAddress(address.escape_debug().to_string());
    if address.starts_with('-') {
        return Err(bad());
    }
    let (local, domain) = address.rsplit_once('@').ok_or_else(bad)?;
    let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) || !c.is_ascii();
    let dot_atom = |s: &str, allowed: &dyn Fn(char) -> bool| {
        !s.is_empty() && s.split('.').all(|atom| !atom.is_empty() && atom.chars().all(allowed))
    };
    let label = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_' || !c.is_ascii();
    let literal = domain
        .strip_prefix('[')
        .and_then(|d| d.strip_suffix(']'))
        .is_some_and(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_alphanumeric() || ".:-".contains(c)));
    let no_controls = !address.chars().any(|c| c.is_control() || c.is_whitespace());
    if no_controls && dot_atom(local, &atext) && (literal || (dot_atom(domain, &label) && domain.contains('.'))) {
        Ok(())
    } else {
        Err(bad())
    }
}

fn new_message_id(from: &str) -> String {
    let domain = from.rsplit_once('@').map_or("localhost", |(_, d)| d);
    format!("<{}@{domain}>", uuid::Uuid::new_v4().simple())
}

/// `Mon, 23 Nov 2026 18:00:00 +0000`.
pub(crate) fn rfc5322_date(t: Timestamp) -> String {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] [offset_hour sign:mandatory][offset_minute]"
    );
    t.to_datetime().format(&format).unwrap_or_default()
}

/// A DNS name with at least two labels.
pub(crate) fn is_domain(name: &str) -> bool {
    let labels: Vec<&str> = name.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

#[cfg(test)]
mod tests;
