use std::net::IpAddr;
use std::sync::Arc;

use super::*;
use crate::relay::policy::{Senders, User, hash_password, loopback};

const PASSWORD: &str = "s3cret-Scanner!";

fn rule(name: &str, rewrite: bool) -> Rule {
    Rule {
        name: name.into(),
        account: "main".into(),
        rewrite_sender: rewrite,
    }
}

fn policy() -> Policy {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    Policy {
        users: vec![
            User {
                name: "scanner".into(),
                password_hash: HASH.get_or_init(|| hash_password(PASSWORD.as_bytes())).clone(),
                rule: rule("user scanner", false),
            },
            User {
                name: "printer".into(),
                password_hash: HASH.get_or_init(|| hash_password(PASSWORD.as_bytes())).clone(),
                rule: rule("user printer", true),
            },
        ],
        networks: vec![("127.0.0.0/8".parse().unwrap(), rule("network 127.0.0.0/8", false))],
        plaintext_auth: loopback(),
        accounts: vec![(
            "main".into(),
            Senders::new("relay@contoso.com", vec!["alerts@contoso.com".into()]),
        )],
    }
}

fn settings() -> Settings {
    Settings {
        hostname: "relay.test".into(),
        max_message_size: 1000,
        max_recipients: 3,
        max_line_length: 512,
        bare_lf: BareLf::Normalize,
        starttls: true,
        max_errors: 10,
    }
}

/// Plays the driver: answers events the way the listener does.
struct Driver {
    session: Session,
    transcript: String,
    accepted: Vec<Accepted>,
    store_fails: bool,
    closed: bool,
}

impl Driver {
    fn new(client: &str) -> Self {
        Self::with(settings(), client)
    }

    fn with(settings: Settings, client: &str) -> Self {
        let ip: IpAddr = client.parse().unwrap();
        let mut session = Session::new(Arc::new(settings), Arc::new(policy()), ip, false);
        let transcript = String::from_utf8(session.take_output()).unwrap();
        Self {
            session,
            transcript,
            accepted: Vec::new(),
            store_fails: false,
            closed: false,
        }
    }

    /// Sends `input` in one piece and returns what the server answered.
    fn send(&mut self, input: &str) -> String {
        self.send_bytes(input.as_bytes())
    }

    fn send_bytes(&mut self, input: &[u8]) -> String {
        self.session.receive(input);
        let mut out = Vec::new();
        loop {
            let event = self.session.next_event();
            out.extend(self.session.take_output());
            match event {
                Event::NeedInput => break,
                Event::Close => {
                    self.closed = true;
                    break;
                }
                Event::StartTls => self.session.tls_started(),
                Event::CheckPassword { user, password } => {
                    let rule = policy().verify(&user, password.expose().as_bytes());
                    self.session.password_checked(&user, rule);
                }
                Event::Message(accepted) => {
                    self.accepted.push(*accepted);
                    if self.store_fails {
                        self.session.stored(Err("disk full"));
                    } else {
                        self.session.stored(Ok("0123ABC"));
                    }
                }
            }
        }
        let out = String::from_utf8(out).unwrap();
        self.transcript.push_str(&out);
        out
    }

    fn codes(&mut self, input: &str) -> Vec<String> {
        self.send(input)
            .lines()
            .map(|l| l.chars().take(3).collect::<String>())
            .collect()
    }
}

fn b64(s: &str) -> String {
    BASE64.encode(s)
}

#[test]
fn a_pipelined_transaction_from_an_allowed_network() {
    let mut d = Driver::new("127.0.0.1");
    assert_eq!(d.transcript, "220 relay.test ESMTP m365-mailer relay\r\n");
    let ehlo = d.send("EHLO scanner.local\r\n");
    assert_eq!(
        ehlo,
        "250-relay.test Hello [127.0.0.1]\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n\
         250-ENHANCEDSTATUSCODES\r\n250-CHUNKING\r\n250-STARTTLS\r\n250-AUTH PLAIN LOGIN\r\n250 HELP\r\n"
    );
    let out = d.send(
        "MAIL FROM:<alerts@contoso.com> SIZE=120\r\nRCPT TO:<a@fabrikam.com>\r\nRCPT TO:<b@fabrikam.com>\r\nDATA\r\n",
    );
    assert_eq!(
        out,
        "250 2.1.0 Sender OK\r\n250 2.1.5 Recipient OK\r\n250 2.1.5 Recipient OK\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
    );
    let out = d.send("From: alerts@contoso.com\r\nSubject: t\r\n\r\n..leading dot\r\n.\r\nQUIT\r\n");
    assert_eq!(out, "250 2.0.0 Ok: queued as 0123ABC\r\n221 2.0.0 Bye\r\n");
    assert!(d.closed);
    let m = &d.accepted[0];
    assert_eq!(m.sender, "alerts@contoso.com");
    assert_eq!(m.recipients, ["a@fabrikam.com", "b@fabrikam.com"]);
    assert_eq!(
        m.content,
        b"From: alerts@contoso.com\r\nSubject: t\r\n\r\n.leading dot\r\n"
    );
    assert_eq!(
        (m.helo.as_str(), m.user.as_deref(), m.tls),
        ("scanner.local", None, false)
    );
    assert_eq!(m.rule.name, "network 127.0.0.0/8");
    assert_eq!(
        m.received_header("relay.test", "0123ABC", "Mon, 23 Nov 2026 18:00:00 +0000"),
        "Received: from scanner.local ([127.0.0.1])\r\n\tby relay.test (m365-mailer) with ESMTP id 0123ABC;\r\n\tMon, 23 Nov 2026 18:00:00 +0000\r\n"
    );
}

#[test]
fn any_split_of_the_input_gives_the_same_dialogue() {
    let dialogue = "EHLO dev\r\nMAIL FROM:<relay@contoso.com>\r\nRCPT TO:<a@fabrikam.com>\r\nDATA\r\n\
                    Subject: s\r\n\r\nline\r\n.\r\nMAIL FROM:<relay@contoso.com>\r\nRCPT TO:<b@fabrikam.com>\r\n\
                    BDAT 10\r\n0123456789BDAT 4 LAST\r\nabcdQUIT\r\n";
    let mut whole = Driver::new("127.0.0.1");
    whole.send(dialogue);
    for step in [1, 2, 3, 5, 7, 64] {
        let mut split = Driver::new("127.0.0.1");
        for chunk in dialogue.as_bytes().chunks(step) {
            split.send_bytes(chunk);
        }
        assert_eq!(split.transcript, whole.transcript, "split every {step} bytes");
        assert_eq!(split.accepted, whole.accepted);
    }
    assert_eq!(whole.accepted.len(), 2);
    assert_eq!(whole.accepted[1].content, b"0123456789abcd");
    assert!(whole.transcript.contains("250 2.0.0 10 octets received\r\n"));
}

#[test]
fn never_an_open_relay() {
    let mut d = Driver::new("192.0.2.9");
    let ehlo = d.send("EHLO outside\r\n");
    assert!(
        !ehlo.contains("AUTH"),
        "no AUTH offered in the clear to a remote client: {ehlo}"
    );
    let out = d.send("MAIL FROM:<relay@contoso.com>\r\n");
    assert!(
        out.starts_with("530 5.7.0 Authentication required: 192.0.2.9 may not relay without it; authenticate over TLS"),
        "{out}"
    );
    assert_eq!(d.codes("RCPT TO:<a@fabrikam.com>\r\n"), ["503"]);
    assert_eq!(d.codes("DATA\r\n"), ["503"]);
    // AUTH in the clear from a remote address is refused even though users exist.
    let out = d.send(&format!("AUTH PLAIN {}\r\n", b64(&format!("\0scanner\0{PASSWORD}"))));
    assert!(out.starts_with("538 5.7.11 "), "{out}");
    assert!(d.accepted.is_empty());
}

#[test]
fn auth_after_starttls_and_no_plaintext_injection() {
    let mut d = Driver::new("192.0.2.9");
    d.send("EHLO outside\r\n");
    // A command pipelined behind STARTTLS arrived in the clear: it must not be executed.
    let out = d.send("STARTTLS\r\nMAIL FROM:<relay@contoso.com>\r\n");
    assert_eq!(out, "220 2.0.0 Ready to start TLS\r\n");
    assert_eq!(
        d.codes("MAIL FROM:<relay@contoso.com>\r\n"),
        ["503"],
        "EHLO again after TLS"
    );
    let ehlo = d.send("EHLO outside\r\n");
    assert!(
        ehlo.contains("250-AUTH PLAIN LOGIN\r\n") && !ehlo.contains("STARTTLS"),
        "{ehlo}"
    );
    let out = d.send(&format!("AUTH PLAIN {}\r\n", b64(&format!("\0scanner\0{PASSWORD}"))));
    assert_eq!(out, "235 2.7.0 Authentication successful\r\n");
    assert_eq!(d.codes("AUTH PLAIN\r\n"), ["503"]);
    d.send("MAIL FROM:<relay@contoso.com>\r\nRCPT TO:<a@fabrikam.com>\r\nDATA\r\nSubject: x\r\n\r\ny\r\n.\r\n");
    let m = &d.accepted[0];
    assert_eq!(
        (m.user.as_deref(), m.tls, m.rule.name.as_str()),
        (Some("scanner"), true, "user scanner")
    );
}

#[test]
fn auth_login_and_failures() {
    let mut d = Driver::new("127.0.0.1");
    d.send("EHLO dev\r\n");
    assert_eq!(d.send("AUTH LOGIN\r\n"), "334 VXNlcm5hbWU6\r\n");
    assert_eq!(d.send(&format!("{}\r\n", b64("scanner"))), "334 UGFzc3dvcmQ6\r\n");
    assert_eq!(
        d.send(&format!("{}\r\n", b64("wrong"))),
        "535 5.7.8 Authentication credentials invalid\r\n"
    );
    // Initial response with the user name, then the password.
    assert_eq!(
        d.send(&format!("AUTH LOGIN {}\r\n", b64("scanner"))),
        "334 UGFzc3dvcmQ6\r\n"
    );
    assert_eq!(d.send("*\r\n"), "501 5.7.0 Authentication cancelled\r\n");
    assert_eq!(d.send("AUTH PLAIN\r\n"), "334 \r\n");
    assert_eq!(d.send("not base64!\r\n"), "501 5.5.2 Cannot decode the response\r\n");
    assert_eq!(d.codes("AUTH CRAM-MD5\r\n"), ["504"]);
    assert_eq!(
        d.codes(&format!(
            "AUTH PLAIN {}\r\n",
            b64(&format!("other\0scanner\0{PASSWORD}"))
        )),
        ["535"]
    );
    // Ten errors close the session.
    let mut codes = Vec::new();
    for _ in 0..5 {
        codes.extend(d.codes("BOGUS\r\n"));
    }
    assert_eq!(codes.last().map(String::as_str), Some("421"));
    assert!(d.closed);
}

#[test]
fn sender_policy() {
    let mut d = Driver::new("127.0.0.1");
    d.send("EHLO dev\r\n");
    let out = d.send("MAIL FROM:<ceo@contoso.com>\r\n");
    assert!(
        out.starts_with("550 5.7.60 ceo@contoso.com is not allowed as sender for network 127.0.0.0/8: the relay sends as relay@contoso.com"),
        "{out}"
    );
    assert!(out.contains("Add-RecipientPermission") && out.contains("rewrite_sender"));
    assert_eq!(d.codes("MAIL FROM:<>\r\n"), ["550"]);
    // The envelope is allowed but the From header is not: refused at the end of data, never
    // accepted and bounced later.
    let out = d.send(
        "MAIL FROM:<alerts@contoso.com>\r\nRCPT TO:<a@fabrikam.com>\r\nDATA\r\nFrom: ceo@contoso.com\r\n\r\nx\r\n.\r\n",
    );
    assert!(out.ends_with("550 5.7.60 ceo@contoso.com is not allowed as sender for network 127.0.0.0/8: the relay sends as relay@contoso.com, which needs SendAs on ceo@contoso.com (Add-RecipientPermission) listed in the account's allowed_senders, or set rewrite_sender for this client\r\n"), "{out}");
    assert!(d.accepted.is_empty());
    // The transaction is over: a new one can start.
    assert_eq!(d.codes("MAIL FROM:<alerts@contoso.com>\r\n"), ["250"]);
}

#[test]
fn rewriting_sender_and_from() {
    let mut d = Driver::new("127.0.0.1");
    d.send("EHLO dev\r\n");
    d.send(&format!("AUTH PLAIN {}\r\n", b64(&format!("\0printer\0{PASSWORD}"))));
    let out = d.send(
        "MAIL FROM:<scan@printer.local>\r\nRCPT TO:<a@fabrikam.com>\r\nDATA\r\nFrom: \"Printer\" <scan@printer.local>\r\n\r\nx\r\n.\r\n",
    );
    assert!(out.ends_with("250 2.0.0 Ok: queued as 0123ABC\r\n"), "{out}");
    let m = &d.accepted[0];
    assert_eq!(m.sender, "relay@contoso.com");
    assert_eq!(
        String::from_utf8_lossy(&m.content),
        "From: \"Printer\" <relay@contoso.com>\r\nReply-To: \"Printer\" <scan@printer.local>\r\n\r\nx\r\n"
    );
    // Rewriting cannot choose between two From lines; an addressless one is simply replaced.
    let out = d.send(
        "MAIL FROM:<scan@printer.local>\r\nRCPT TO:<a@fabrikam.com>\r\nDATA\r\nFrom: a@printer.local\r\nFrom: b@printer.local\r\n\r\nx\r\n.\r\n",
    );
    assert!(
        out.ends_with("550 5.6.0 the message has 2 From: lines; a message has exactly one (RFC 5322 §3.6)\r\n"),
        "{out}"
    );
    let out =
        d.send("MAIL FROM:<scan@printer.local>\r\nRCPT TO:<a@fabrikam.com>\r\nDATA\r\nFrom: Scanner\r\n\r\nx\r\n.\r\n");
    assert!(out.ends_with("250 2.0.0 Ok: queued as 0123ABC\r\n"), "{out}");
    assert_eq!(
        String::from_utf8_lossy(&d.accepted[1].content),
        "From: relay@contoso.com\r\n\r\nx\r\n"
    );
}

#[test]
fn the_from_that_is_checked_is_the_from_that_is_delivered() {
    let mut d = Driver::new("127.0.0.1");
    d.send("EHLO dev\r\n");
    let envelope = "MAIL FROM:<alerts@contoso.com>\r\nRCPT TO:<a@fabrikam.com>\r\nDATA\r\n";
    let refused = [
        // Two From lines: the check would read one and both would go out.
        (
            "From: alerts@contoso.com\r\nFrom: ceo@contoso.com\r\n\r\nx\r\n.\r\n",
            "550 5.6.0 the message has 2 From: lines",
        ),
        // A bare CR becomes a line end on the way out: the Subject hides a second From.
        (
            "From: alerts@contoso.com\r\nSubject: x\rFrom: ceo@contoso.com\r\n\r\nx\r\n.\r\n",
            "550 5.6.0 the message has 2 From: lines",
        ),
        (
            "Subject: x\rFrom: ceo@contoso.com\r\n\r\nx\r\n.\r\n",
            "550 5.7.60 ceo@contoso.com is not allowed",
        ),
        // A From without an address names no sender to check.
        (
            "From: The CEO\r\n\r\nx\r\n.\r\n",
            "550 5.6.0 the From: line names `The CEO`",
        ),
        (
            "From: undisclosed:;\r\n\r\nx\r\n.\r\n",
            "550 5.6.0 the From: line has no address",
        ),
    ];
    for (content, reply) in refused {
        d.send(envelope);
        let out = d.send(content);
        assert!(out.starts_with(reply), "{content:?}: {out}");
    }
    assert!(d.accepted.is_empty());
    // With a bare CR normalised, what is stored is what was checked.
    d.send(envelope);
    let out = d.send("From: alerts@contoso.com\rSubject: x\r\n\r\nbo\rdy\r\n.\r\n");
    assert!(out.ends_with("250 2.0.0 Ok: queued as 0123ABC\r\n"), "{out}");
    assert_eq!(
        d.accepted[0].content,
        b"From: alerts@contoso.com\r\nSubject: x\r\n\r\nbo\r\ndy\r\n"
    );
}

#[test]
fn recipients_that_would_carry_parameters_upstream_are_refused() {
    let mut d = Driver::new("127.0.0.1");
    d.send("EHLO dev\r\nMAIL FROM:<alerts@contoso.com>\r\n");
    for rcpt in [
        "RCPT TO:<\"v@evil> NOTIFY=NEVER\"@x.com>\r\n",
        "RCPT TO:<\"a b\"@x.com>\r\n",
    ] {
        let out = d.send(rcpt);
        assert!(out.starts_with("553 5.1.3 "), "{rcpt:?}: {out}");
    }
    assert_eq!(d.codes("RCPT TO:<ok@x.com>\r\n"), ["250"]);
}

#[test]
fn limits() {
    let mut d = Driver::new("127.0.0.1");
    d.send("EHLO dev\r\n");
    let out = d.send("MAIL FROM:<relay@contoso.com> SIZE=1001\r\n");
    assert_eq!(out, "552 5.3.4 Message size 1001 exceeds the limit of 1000 bytes\r\n");
    d.send("MAIL FROM:<relay@contoso.com>\r\n");
    let codes =
        d.codes("RCPT TO:<a@x.example>\r\nRCPT TO:<b@x.example>\r\nRCPT TO:<c@x.example>\r\nRCPT TO:<d@x.example>\r\n");
    assert_eq!(codes, ["250", "250", "250", "452"]);
    d.send("DATA\r\n");
    let big = format!("Subject: big\r\n\r\n{}\r\n.\r\n", "x".repeat(2000));
    assert_eq!(d.send(&big), "552 5.3.4 Message exceeds the limit of 1000 bytes\r\n");
    assert!(d.accepted.is_empty());
    // BDAT too big: the chunk is read and dropped, the transaction refused.
    d.send("MAIL FROM:<relay@contoso.com>\r\nRCPT TO:<a@x.example>\r\n");
    let out = d.send(&format!("BDAT 1500 LAST\r\n{}NOOP\r\n", "y".repeat(1500)));
    assert_eq!(
        out,
        "552 5.3.4 Message exceeds the limit of 1000 bytes\r\n250 2.0.0 Ok\r\n"
    );
    // A line over the limit is refused and skipped to its end.
    let out = d.send(&format!("NOOP {}\r\nNOOP\r\n", "z".repeat(600)));
    assert_eq!(out, "500 5.5.2 Line too long\r\n250 2.0.0 Ok\r\n");
    let out = d.send(&"z".repeat(700));
    assert_eq!(out, "500 5.5.2 Line too long\r\n");
    assert_eq!(d.send(&format!("{}\r\nNOOP\r\n", "z".repeat(700))), "250 2.0.0 Ok\r\n");
    assert!(d.accepted.is_empty());
}

#[test]
fn what_devices_send() {
    let mut d = Driver::new("127.0.0.1");
    // Bare LF commands, MAIL FROM without brackets and with a space, HELO instead of EHLO.
    let out = d.send("HELO printer\nMAIL FROM: relay@contoso.com\nRCPT TO:a@fabrikam.com\nDATA\n");
    assert_eq!(
        out,
        "250 relay.test\r\n250 2.1.0 Sender OK\r\n250 2.1.5 Recipient OK\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
    );
    // Bare LF content is normalised; only CRLF.CRLF ends the data.
    let out = d.send("Subject: scan\n\nbody\n.\nend\r\n.\r\n");
    assert_eq!(out, "250 2.0.0 Ok: queued as 0123ABC\r\n");
    assert_eq!(d.accepted[0].content, b"Subject: scan\r\n\r\nbody\r\n.\r\nend\r\n");

    let mut strict = Driver::with(
        Settings {
            bare_lf: BareLf::Refuse,
            ..settings()
        },
        "127.0.0.1",
    );
    strict.send("EHLO d\r\nMAIL FROM:<relay@contoso.com>\r\nRCPT TO:<a@fabrikam.com>\r\nDATA\r\n");
    let out = strict.send("Subject: scan\n\nbody\r\n.\r\n");
    assert!(
        out.starts_with("550 5.6.11 Message has bare CR or LF line ends"),
        "{out}"
    );
}

#[test]
fn small_commands_and_errors() {
    let mut d = Driver::new("127.0.0.1");
    assert_eq!(d.codes("MAIL FROM:<relay@contoso.com>\r\n"), ["503"], "HELO first");
    d.send("EHLO dev\r\n");
    assert_eq!(
        d.send("VRFY someone\r\n"),
        "252 2.5.2 Cannot VRFY user, but will accept message and attempt delivery\r\n"
    );
    assert!(d.send("HELP\r\n").starts_with("214 2.0.0 Commands:"));
    assert_eq!(
        d.codes("NOOP\r\nRSET\r\nEXPN list\r\nFOO\r\n"),
        ["250", "250", "502", "500"]
    );
    assert_eq!(d.codes("DATA\r\n"), ["503"]);
    d.send("MAIL FROM:<relay@contoso.com>\r\n");
    assert_eq!(d.codes("MAIL FROM:<relay@contoso.com>\r\n"), ["503"]);
    assert_eq!(d.codes("DATA\r\n"), ["554"]);
    assert_eq!(d.codes("RCPT TO:<not an address>\r\n"), ["501"]);
    // BDAT without a transaction: the chunk is read and dropped, not taken as commands.
    d.send("RSET\r\n");
    assert_eq!(
        d.send("BDAT 6\r\nQUIT\r\nNOOP\r\n"),
        "503 5.5.1 Need MAIL before BDAT\r\n250 2.0.0 Ok\r\n"
    );
    // STARTTLS where none is offered.
    let mut plain = Driver::with(
        Settings {
            starttls: false,
            ..settings()
        },
        "127.0.0.1",
    );
    assert!(!plain.send("EHLO d\r\n").contains("STARTTLS"));
    assert_eq!(plain.codes("STARTTLS\r\n"), ["502"]);
}

#[test]
fn a_message_that_cannot_be_stored_is_not_acknowledged() {
    let mut d = Driver::new("127.0.0.1");
    d.store_fails = true;
    let out = d.send("EHLO d\r\nMAIL FROM:<relay@contoso.com>\r\nRCPT TO:<a@fabrikam.com>\r\nDATA\r\nx\r\n.\r\n");
    assert!(
        out.ends_with("451 4.3.0 Message not stored, try again later: disk full\r\n"),
        "{out}"
    );
    assert_eq!(
        d.codes("RCPT TO:<a@fabrikam.com>\r\n"),
        ["503"],
        "the transaction is over"
    );
}

#[test]
fn timeouts_and_shutdown() {
    let mut d = Driver::new("127.0.0.1");
    assert_eq!(d.session.waiting(), Waiting::Command);
    d.send("EHLO d\r\nMAIL FROM:<relay@contoso.com>\r\nRCPT TO:<a@fabrikam.com>\r\nDATA\r\npartial");
    assert_eq!(d.session.waiting(), Waiting::Content);
    assert!(d.session.in_transaction());
    d.session.timed_out();
    assert_eq!(d.send(""), "421 4.4.2 relay.test Error: timeout exceeded\r\n");
    assert!(d.closed && d.accepted.is_empty());
}

#[test]
fn the_first_line_is_unstuffed_and_an_empty_message_ends() {
    let mut d = Driver::new("127.0.0.1");
    d.send("EHLO d\r\nMAIL FROM:<relay@contoso.com>\r\nRCPT TO:<a@fabrikam.com>\r\nDATA\r\n");
    assert_eq!(
        d.send("..starts with a dot\r\n.\r\n"),
        "250 2.0.0 Ok: queued as 0123ABC\r\n"
    );
    assert_eq!(d.accepted[0].content, b".starts with a dot\r\n");
    d.send("MAIL FROM:<relay@contoso.com>\r\nRCPT TO:<a@fabrikam.com>\r\nDATA\r\n");
    assert_eq!(d.send(".\r\n"), "250 2.0.0 Ok: queued as 0123ABC\r\n");
    assert_eq!(d.accepted[1].content, b"");
}

mod properties {
    use proptest::prelude::*;

    use super::*;
    use crate::smtp::transparency;

    /// Bytes that make dot-stuffing and line ends interesting.
    fn tricky() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(
            prop::sample::select(vec![b'.', b'\r', b'\n', b'a', b'F', b':', b' ', 0xe9]),
            0..300,
        )
    }

    proptest! {
        /// The fuzz target `dot_unstuffing`: the client's dot-stuffing, read back by the relay,
        /// is the client's CRLF-normalised content (its header section ended by an empty line).
        #[test]
        fn dot_stuffing_round_trips(content in tricky()) {
            let mut d = Driver::with(Settings { max_message_size: 1 << 20, ..settings() }, "127.0.0.1");
            d.send("EHLO d\r\nMAIL FROM:<relay@contoso.com>\r\nRCPT TO:<a@fabrikam.com>\r\nDATA\r\n");
            let out = d.send_bytes(&transparency::data_content(&content));
            if out.starts_with("250 ") {
                let expected = crate::message::end_head(&transparency::normalize_line_endings(&content)).into_owned();
                prop_assert_eq!(&d.accepted[0].content, &expected);
            } else {
                prop_assert!(out.starts_with("550 5.7.60 ") || out.starts_with("550 5.6.0 "), "{}", out);
            }
        }

        /// The fuzz target `relay_session`: any input, split anywhere, gets well-formed replies.
        #[test]
        fn any_input_gets_well_formed_replies(input in prop::collection::vec(any::<u8>(), 0..600), step in 1usize..40) {
            let mut d = Driver::new("127.0.0.1");
            for chunk in input.chunks(step) {
                if d.closed {
                    break;
                }
                d.send_bytes(chunk);
            }
            for line in d.transcript.split_terminator("\r\n") {
                let b = line.as_bytes();
                prop_assert!(b.len() >= 4 && b[..3].iter().all(u8::is_ascii_digit) && (b[3] == b' ' || b[3] == b'-'), "{:?}", line);
            }
        }
    }
}

#[test]
fn debug_never_shows_what_the_client_sent() {
    let mut d = Driver::new("127.0.0.1");
    d.send("EHLO dev\r\n");
    // Half an AUTH line: the password is in the input buffer.
    let response = b64(&format!("\0scanner\0{PASSWORD}"));
    d.send(&format!("AUTH PLAIN {response}"));
    let shown = format!("{:?}", d.session);
    assert!(!shown.contains(&response) && !shown.contains(PASSWORD), "{shown}");
    let user = &policy().users[0];
    assert!(!format!("{user:?}").contains("argon2"), "{user:?}");
}
