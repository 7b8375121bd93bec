//! The properties the parsers and rewriters of hostile input must keep, written once for the
//! fuzz targets (`fuzz/`, feature `properties`) and the proptest mirrors in `cargo test`. Each
//! function takes arbitrary bytes, runs the code under test, and panics with what went wrong.

use std::sync::Arc;

use crate::message::{self, RawOptions};
use crate::oauth::response;
use crate::relay::policy::{Policy, Rule, Senders, loopback};
use crate::relay::session::{Event, Session, Settings};
use crate::smtp::reply::ReplyParser;
use crate::smtp::transparency;

mod alert;
mod setup;
pub use alert::alert_bodies;
pub use setup::{config_rewrite, directory_answers};

/// The mailbox the properties' account sends as.
pub const MAILBOX: &str = "relay@contoso.com";
/// The one other address it may use.
pub const ALLOWED: &str = "alerts@contoso.com";

/// Loopback relays without a password through account `main` ([`MAILBOX`], which may also
/// send as [`ALLOWED`]), its sender rewritten when `rewrite`.
pub(crate) fn loopback_policy(rewrite: bool) -> Policy {
    let rule = Rule {
        name: "network 127.0.0.0/8".into(),
        account: "main".into(),
        rewrite_sender: rewrite,
    };
    Policy {
        users: Vec::new(),
        networks: loopback().into_iter().map(|n| (n, rule.clone())).collect(),
        plaintext_auth: loopback(),
        accounts: vec![("main".into(), Senders::new(MAILBOX, vec![ALLOWED.into()]))],
    }
}

/// Header fields as `header.rs` finds them: each with its continuation lines.
fn fields(content: &[u8]) -> Vec<Vec<u8>> {
    let end = content
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(content.len(), |p| p + 2);
    let mut out: Vec<Vec<u8>> = Vec::new();
    for line in content[..end].split_inclusive(|b| *b == b'\n') {
        match out.last_mut() {
            Some(field) if line.starts_with(b" ") || line.starts_with(b"\t") => field.extend_from_slice(line),
            _ => out.push(line.to_vec()),
        }
    }
    out
}

fn named(field: &[u8], name: &str) -> bool {
    let end = field.iter().position(|b| *b == b':').unwrap_or(field.len());
    field[..end].trim_ascii().eq_ignore_ascii_case(name.as_bytes())
}

/// `sendmail` on `raw` (with `-t` when `dash_t`): never a panic; a message it accepts has
/// valid, distinct recipients, among them every address of every To/Cc/Bcc field, no Bcc
/// field, exactly one From, and no header line that was neither in the input nor added (From,
/// Date, Message-ID). Returns the envelope's recipients.
pub fn from_raw(raw: &[u8], dash_t: bool, full_name: Option<&str>) -> Option<Vec<String>> {
    let options = RawOptions {
        recipients: if dash_t {
            Vec::new()
        } else {
            vec!["ops@contoso.com".to_owned()]
        },
        recipients_from_headers: dash_t,
        envelope_from: None,
        full_name: full_name.map(str::to_owned),
        default_from: MAILBOX.to_owned(),
    };
    let out = message::from_raw(raw, &options).ok()?;
    let mut seen = std::collections::HashSet::new();
    for r in &out.envelope.to {
        assert!(message::check_address(r).is_ok(), "invalid recipient {r:?}");
        assert!(seen.insert(r.to_ascii_lowercase()), "recipient twice: {r:?}");
    }
    // As `from_raw` reads it: CRLF line ends, the header section ended with an empty line.
    let normalised = message::end_head(&transparency::normalize_line_endings(raw)).into_owned();
    if dash_t {
        let resent = ["resent-to", "resent-cc", "resent-bcc"]
            .iter()
            .any(|f| message::count_fields(&normalised, f) > 0);
        let names: &[&str] = if resent {
            &["resent-to", "resent-cc", "resent-bcc"]
        } else {
            &["to", "cc", "bcc"]
        };
        for name in names {
            for m in message::address_fields(&normalised, name).expect("accepted, so readable") {
                assert!(
                    seen.contains(&m.address.to_ascii_lowercase()),
                    "{} of a {name} field is not a recipient",
                    m.address
                );
            }
        }
    }
    let input = fields(&normalised);
    let output = fields(&out.content);
    assert_eq!(
        output.iter().filter(|f| named(f, "from")).count(),
        1,
        "exactly one From"
    );
    for field in &output {
        assert!(!named(field, "bcc") && !named(field, "resent-bcc"), "a Bcc field left");
        let added = ["from", "date", "message-id"].iter().any(|n| named(field, n));
        assert!(
            input.contains(field) || added,
            "a header line neither in the input nor added: {:?}",
            String::from_utf8_lossy(field)
        );
        // A field is one line, or folded: every line end but the last precedes white space.
        let breaks = field.windows(2).filter(|w| w == b"\r\n").count();
        let folds = field
            .windows(3)
            .filter(|w| w[..2] == *b"\r\n" && (w[2] == b' ' || w[2] == b'\t'))
            .count();
        assert!(
            breaks == folds + 1 || field == b"\r\n",
            "a field that is two: {field:?}"
        );
    }
    Some(out.envelope.to)
}

/// `rewrite_from` on `raw`: never a panic; the result has exactly one From, the mailbox's, and
/// besides it only input fields and a Reply-To holding the original From's value.
pub fn rewrite_from(raw: &[u8]) -> Option<Vec<u8>> {
    // As the relay hands it over: CRLF line ends, the header section ended with an empty line.
    let normalised = message::end_head(&transparency::normalize_line_endings(raw)).into_owned();
    let out = message::rewrite_from(&normalised, MAILBOX).ok()?;
    let input = fields(&normalised);
    let froms: Vec<&Vec<u8>> = input.iter().filter(|f| named(f, "from")).collect();
    let output = fields(&out);
    let from: Vec<&Vec<u8>> = output.iter().filter(|f| named(f, "from")).collect();
    assert_eq!(from.len(), 1, "exactly one From");
    let mailboxes = message::from_mailboxes(&out)
        .expect("a From of ours is readable")
        .expect("present");
    assert_eq!(mailboxes.len(), 1);
    assert_eq!(mailboxes[0].address, MAILBOX);
    for field in &output {
        if named(field, "from") || input.contains(field) {
            continue;
        }
        let value = &field[field.iter().position(|b| *b == b':').map_or(0, |p| p + 1)..];
        assert!(
            named(field, "reply-to") && froms.iter().any(|f| f.ends_with(value)),
            "a header line neither in the input nor added: {:?}",
            String::from_utf8_lossy(field)
        );
    }
    Some(out)
}

/// The relay receiving `content` from a device on loopback (sender rewriting when `rewrite`):
/// never a panic; what it stores (the accepted message with the headers the relay adds) has
/// CRLF line ends only and at most one From, which names only addresses the account may send
/// as — by the relay's reading and by mail-parser's.
pub fn relay_from_check(content: &[u8], rewrite: bool) -> Option<Vec<u8>> {
    let settings = Settings {
        max_message_size: 1 << 20,
        ..Settings::default()
    };
    let mut session = Session::new(
        Arc::new(settings),
        Arc::new(loopback_policy(rewrite)),
        "127.0.0.1".parse().expect("an address"),
        false,
    );
    let mut wire =
        format!("EHLO device\r\nMAIL FROM:<{ALLOWED}>\r\nRCPT TO:<bob@fabrikam.com>\r\nDATA\r\n").into_bytes();
    // Dot-stuffed as a client would, so the content arrives whole whatever it holds.
    wire.extend_from_slice(&transparency::data_content(content));
    session.receive(&wire);
    let mut accepted = None;
    loop {
        match session.next_event() {
            Event::Message(message) => {
                accepted = Some(crate::relay::listener::stamp(&message, "0123", "relay.test").content);
                session.stored(Ok("0123"));
            }
            Event::NeedInput | Event::Close => break,
            Event::StartTls => session.tls_started(),
            Event::CheckPassword { user, .. } => session.password_checked(&user, None),
        }
    }
    let content = accepted?;
    assert!(
        transparency::normalize_line_endings(&content) == content,
        "bare CR or LF accepted"
    );
    let ours = fields(&content);
    assert!(ours.iter().filter(|f| named(f, "from")).count() <= 1, "two From fields");
    let allowed = |a: &str| a.eq_ignore_ascii_case(MAILBOX) || a.eq_ignore_ascii_case(ALLOWED);
    if let Some(mailboxes) = message::from_mailboxes(&content).expect("the relay read it") {
        assert!(mailboxes.iter().all(|m| allowed(&m.address)), "{mailboxes:?}");
    }
    if let Some(parsed) = mail_parser::MessageParser::default().parse_headers(&content[..]) {
        let from_fields = parsed
            .headers()
            .iter()
            .filter(|h| h.name().eq_ignore_ascii_case("from"))
            .count();
        assert!(from_fields <= 1, "mail-parser reads {from_fields} From fields");
        for addr in parsed.from().iter().flat_map(|f| f.iter()) {
            if let Some(a) = addr.address() {
                assert!(allowed(a), "mail-parser reads From {a:?}");
            }
        }
    }
    Some(content)
}

/// The JSON form of Graph's `sendMail` from `message`: never a panic; its recipients are every
/// address of the message's To, Cc and Bcc fields, and its custom headers have ASCII names.
pub fn graph_json(message: &[u8]) {
    let Ok(body) = crate::graph::json::body(message, MAILBOX) else {
        return;
    };
    for (key, field) in [("toRecipients", "to"), ("ccRecipients", "cc"), ("bccRecipients", "bcc")] {
        let expected = message::address_fields(message, field).map_or(0, |m| m.len());
        let got = body["message"][key].as_array().map_or(0, Vec::len);
        assert_eq!(got, expected, "{key}");
    }
    for header in body["message"]["internetMessageHeaders"]
        .as_array()
        .into_iter()
        .flatten()
    {
        assert!(header["name"].as_str().is_some_and(str::is_ascii), "{header}");
    }
}

/// Cutting the attachments out of `message` (Graph's large messages): never a panic; what is
/// cut leaves the rest in order, shorter than the message.
pub fn graph_split(message: &[u8]) {
    let Some((rest, attachments)) = crate::graph::large::split(message) else {
        return;
    };
    assert!(!attachments.is_empty());
    assert!(rest.len() < message.len(), "nothing was cut");
    // The rest is the message with pieces taken out: a subsequence, in order.
    let mut at = 0;
    for b in &rest {
        match message[at..].iter().position(|m| m == b) {
            Some(p) => at += p + 1,
            None => panic!("the rest is not the message with pieces cut out"),
        }
    }
}

/// The relay's inbound session on arbitrary client bytes, fed in chunks of a size the first
/// byte chooses: never a panic, every reply line is `NNN` followed by a space or a dash, and it
/// always either wants more input or closes.
pub fn relay_session(data: &[u8]) {
    let Some((&split, input)) = data.split_first() else {
        return;
    };
    let settings = Settings {
        max_message_size: 4096,
        max_line_length: 512,
        starttls: true,
        ..Settings::default()
    };
    let policy = loopback_policy(split & 1 == 1);
    let mut session = Session::new(Arc::new(settings), Arc::new(policy), LOOPBACK, false);
    let mut output = session.take_output();
    let step = usize::from(split >> 1).max(1);
    'feed: for chunk in input.chunks(step) {
        session.receive(chunk);
        loop {
            let event = session.next_event();
            output.extend(session.take_output());
            match event {
                Event::NeedInput => break,
                Event::Close => break 'feed,
                Event::StartTls => session.tls_started(),
                Event::CheckPassword { user, .. } => session.password_checked(&user, None),
                Event::Message(_) => session.stored(Ok("0123")),
            }
        }
    }
    let text = String::from_utf8(output).expect("replies are UTF-8");
    for line in text.split_terminator("\r\n") {
        let bytes = line.as_bytes();
        assert!(
            bytes.len() >= 4 && bytes[..3].iter().all(u8::is_ascii_digit) && (bytes[3] == b' ' || bytes[3] == b'-'),
            "malformed reply line {line:?}"
        );
    }
}

/// Whatever the client's dot-stuffing makes of `content`, the relay's DATA reading gives back
/// exactly the client's CRLF-normalised content, its header section ended by an empty line (or
/// refuses a From it may not use, or two).
pub fn dot_unstuffing(content: &[u8]) {
    let policy = loopback_policy(false);
    let mut session = Session::new(Arc::new(Settings::default()), Arc::new(policy), LOOPBACK, false);
    session.receive(b"EHLO fuzz\r\nMAIL FROM:<relay@contoso.com>\r\nRCPT TO:<a@fabrikam.com>\r\nDATA\r\n");
    session.receive(&transparency::data_content(content));
    let event = session.next_event();
    let replies = session.take_output();
    match event {
        Event::Message(accepted) => {
            let normalised = transparency::normalize_line_endings(content);
            assert_eq!(accepted.content, message::end_head(&normalised).as_ref());
            return;
        }
        Event::NeedInput | Event::Close => {}
        other => panic!("unexpected {other:?}"),
    }
    let replies = String::from_utf8_lossy(&replies);
    assert!(
        replies.contains("550 5.7.60 ") || replies.contains("550 5.6.0 "),
        "neither accepted nor refused for its From: {replies}"
    );
}

/// The SMTP reply parser on arbitrary server bytes, fed in two pieces (the first byte says
/// where): never a panic, and a reply it returns has a valid code.
pub fn reply_parser(data: &[u8]) {
    let split = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    let mut parser = ReplyParser::default();
    let mut buffer = data[..split].to_vec();
    let mut rest = Some(&data[split..]);
    loop {
        match parser.parse(&mut buffer) {
            Ok(Some(reply)) => assert!((200..600).contains(&reply.code())),
            Ok(None) => match rest.take() {
                Some(more) => buffer.extend_from_slice(more),
                None => break,
            },
            Err(_) => break,
        }
    }
}

/// The token endpoint's answers on arbitrary bytes and statuses: parsing never panics and an
/// error always has a description.
pub fn token_response(data: &[u8]) {
    let _ = response::parse_token(data);
    let status = data.first().map_or(400, |b| 400 + u16::from(*b));
    let error = response::parse_error(status, data);
    assert!(!error.description.is_empty());
    let _ = error.is_transient();
}

/// A config file of arbitrary bytes: reading it and each account's table never panics, and an
/// error about a value names a line of the file.
pub fn config_file(data: &[u8]) {
    let text = String::from_utf8_lossy(data).into_owned();
    let lines = text.lines().count() + 1;
    if let Err(crate::config::ConfigError::Invalid {
        origin: crate::config::Origin::File { line, .. },
        ..
    }) = crate::config::read_text(std::path::Path::new("/fuzz/config.toml"), text)
    {
        assert!((1..=lines).contains(&line), "line {line} of {lines}");
    }
}

const LOOPBACK: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    /// A display name: plain, quoted with specials, RFC 2047-encoded, or none.
    fn name() -> impl Strategy<Value = Option<String>> {
        prop_oneof![
            Just(None),
            "[A-Za-z][A-Za-z ]{0,10}".prop_map(Some),
            "[A-Za-z,;:<>@ ]{1,10}".prop_map(|n| Some(format!("\"{}\"", n.replace('"', "")))),
            Just(Some("=?utf-8?q?J=C3=B6rg_=0D=0A_Bcc=3A_x?=".to_owned())),
        ]
    }

    fn address() -> impl Strategy<Value = String> {
        ("[a-z][a-z0-9.+]{0,6}[a-z0-9]", "[a-z]{1,8}").prop_map(|(local, domain)| {
            // No two dots in a row: a dot-atom.
            let local = local.split('.').filter(|p| !p.is_empty()).collect::<Vec<_>>().join(".");
            format!("{local}@{domain}.example")
        })
    }

    /// One recipient field: its name as written, its entries (display name, address), whether
    /// they are a group, whether the list is folded.
    type Field = (String, Vec<(Option<String>, String)>, bool, bool);

    fn field() -> impl Strategy<Value = Field> {
        (
            prop::sample::select(vec!["To", "Cc", "Bcc", "tO", "BCC", "cc"]),
            prop::collection::vec((name(), address()), 0..4),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(n, entries, group, fold)| (n.to_owned(), entries, group, fold))
    }

    fn render((name, entries, group, fold): &Field) -> String {
        let items: Vec<String> = entries
            .iter()
            .map(|(display, address)| match display {
                Some(d) => format!("{d} <{address}>"),
                None => address.clone(),
            })
            .collect();
        let separator = if *fold { ",\r\n " } else { ", " };
        let list = items.join(separator);
        if *group {
            format!("{name}: team: {list};\r\n")
        } else {
            format!("{name}: {list}\r\n")
        }
    }

    /// An account table's entry: a known field or not, written as text, number, boolean or list.
    fn entry() -> impl Strategy<Value = (String, u8)> {
        let names: Vec<String> = crate::config::Field::ALL
            .iter()
            .map(|f| f.name().to_owned())
            .chain([
                "tenant_id".to_owned(),
                "smtp-port".to_owned(),
                "identity_header".to_owned(),
            ])
            .collect();
        (prop::sample::select(names), 0u8..4)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn a_config_file_of_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            super::config_file(&bytes);
        }

        #[test]
        fn an_alert_about_arbitrary_text(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            super::alert_bodies(&bytes);
        }

        #[test]
        fn a_directory_answer_of_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            super::directory_answers(&bytes);
        }

        #[test]
        fn an_account_set_in_arbitrary_config_text(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            super::config_rewrite(&bytes);
        }

        #[test]
        fn an_account_set_in_config_text_of_accounts(
            accounts in prop::collection::vec("[a-z\\-]{1,8}", 0..4),
            name in "[ -~]{1,12}",
            value in any::<String>(),
        ) {
            let text: String = accounts.iter().map(|a| format!("[accounts.{a}]\nmailbox = \"x@contoso.com\" # kept\n")).collect();
            let data = [text.as_bytes(), &[0xFF], name.as_bytes(), &[0xFF], value.as_bytes()].concat();
            super::config_rewrite(&data);
        }

        #[test]
        fn a_directory_answer_of_an_application(
            id in "[0-9A-Fa-f-]{0,40}",
            key in "[0-9a-f-]{36}|../[a-z]{3}",
            secret in "[ -~]{0,30}",
        ) {
            let app = serde_json::json!({ "id": id, "appId": "0b7e2f4c-5d6a-4e8b-9c1d-3f2a4b6c8d0e",
                "passwordCredentials": [{ "keyId": key }] });
            super::directory_answers(app.to_string().as_bytes());
            let new = serde_json::json!({ "keyId": key, "secretText": secret, "endDateTime": "2027-06-01T00:00:00Z" });
            super::directory_answers(new.to_string().as_bytes());
        }

        #[test]
        fn an_account_table_is_refused_at_its_first_wrong_line(entries in prop::collection::vec(entry(), 0..12)) {
            use crate::config::{ConfigError, Field, Origin};
            let mut seen = std::collections::BTreeSet::new();
            let entries: Vec<_> = entries.into_iter().filter(|(k, _)| seen.insert(k.clone())).collect();
            let mut text = "[accounts.main]\n".to_owned();
            let mut first_wrong = None;
            for (i, (key, kind)) in entries.iter().enumerate() {
                let value = ["\"a value\"", "587", "true", "[\"a@contoso.com\"]"][usize::from(*kind)];
                text.push_str(&format!("{key} = {value}\n"));
                let right = Field::in_file(key).is_some_and(|f| f.spec().list == (*kind == 3));
                if !right && first_wrong.is_none() {
                    first_wrong = Some(i + 2);
                }
            }
            let result = crate::config::read_text(std::path::Path::new("/p/config.toml"), text.clone());
            match (first_wrong, result) {
                (None, Ok(())) => {}
                (Some(line), Err(ConfigError::Invalid { origin: Origin::File { line: at, .. }, .. })) => {
                    prop_assert_eq!(at, line, "{}", text);
                }
                (expected, got) => prop_assert!(false, "expected an error at {:?}, got {:?}\n{}", expected, got, text),
            }
        }

        /// Every address of every To/Cc/Bcc line reaches the envelope, exactly once.
        #[test]
        fn every_recipient_of_every_line_is_in_the_envelope_once(
            fields in prop::collection::vec(field(), 1..6),
        ) {
            let mut raw = String::from("From: mailer@contoso.com\r\nSubject: s\r\n");
            for f in &fields {
                raw.push_str(&render(f));
            }
            raw.push_str("\r\nbody\r\n");
            let mut expected: Vec<String> = Vec::new();
            for (_, entries, _, _) in &fields {
                for (_, address) in entries {
                    if !expected.iter().any(|e| e.eq_ignore_ascii_case(address)) {
                        expected.push(address.clone());
                    }
                }
            }
            match super::from_raw(raw.as_bytes(), true, None) {
                Some(to) => prop_assert_eq!(to, expected),
                None => prop_assert!(expected.is_empty(), "refused: {}", raw),
            }
        }

        /// Hostile heads (bare CR, repeated From, names with encoded line breaks, odd spacing):
        /// the invariants of sendmail's reading, of From rewriting and of the relay's From
        /// check hold, whatever they accept.
        #[test]
        fn hostile_heads_keep_the_invariants(
            lines in prop::collection::vec(prop::sample::select(vec![
                "From: alerts@contoso.com", "From: ceo@contoso.com", "FROM : ceo@contoso.com",
                "From: =?utf-8?q?A=0D=0AFrom=3A_ceo=40contoso.com?= <alerts@contoso.com>",
                "From: The CEO", "From:", "f\x0crom: ceo@contoso.com", "From\u{a0}: ceo@contoso.com",
                "To: a@x.example, Bob", "To: a@x.example", "Cc: c@x.example",
                "Bcc: d@x.example", "Resent-To: r@x.example", "Subject: x", " folded", "\tfolded",
                "Reply-To: r@x.example", "X-\u{e9}: 1", "Date: x", "Message-ID: <1@x>", "garbage",
            ]), 0..8),
            ends in prop::collection::vec(prop::sample::select(vec!["\r\n", "\n", "\r"]), 8),
            full_name in prop::option::of("[ -~]{0,12}"),
        ) {
            let mut raw = String::new();
            for (i, line) in lines.iter().enumerate() {
                raw.push_str(line);
                raw.push_str(ends[i % ends.len()]);
            }
            raw.push_str("\r\nbody\r\n");
            super::from_raw(raw.as_bytes(), true, full_name.as_deref());
            super::from_raw(raw.as_bytes(), false, full_name.as_deref());
            super::rewrite_from(raw.as_bytes());
            super::relay_from_check(raw.as_bytes(), false);
            super::relay_from_check(raw.as_bytes(), true);
            super::graph_json(raw.as_bytes());
        }

        /// Arbitrary bytes: nothing panics.
        #[test]
        fn arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512), dash_t in any::<bool>()) {
            super::from_raw(&bytes, dash_t, None);
            super::rewrite_from(&bytes);
            super::relay_from_check(&bytes, dash_t);
            super::graph_json(&bytes);
            super::graph_split(&bytes);
        }

        /// Attachments with delimiter lines padded or not, in any order.
        #[test]
        fn multipart_messages_split_cleanly(
            parts in prop::collection::vec((any::<bool>(), "[ \t]{0,2}", "[a-z,]{0,20}"), 1..5),
        ) {
            let mut m = String::from("From: a@b.example\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\npre\r\n");
            for (i, (attachment, padding, body)) in parts.iter().enumerate() {
                m.push_str(&format!("--b1{padding}\r\n"));
                if *attachment {
                    m.push_str(&format!("Content-Disposition: attachment; filename=\"f{i}.txt\"\r\n"));
                }
                m.push_str(&format!("Content-Type: text/plain\r\n\r\n{body}\r\n"));
            }
            m.push_str("--b1--\r\n");
            super::graph_split(m.as_bytes());
        }
    }
}
