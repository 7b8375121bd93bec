use super::*;

fn options() -> RawOptions {
    RawOptions {
        default_from: "mailer@contoso.com".into(),
        ..RawOptions::default()
    }
}

fn dash_t() -> RawOptions {
    RawOptions {
        recipients_from_headers: true,
        ..options()
    }
}

fn dash_t_to(recipient: &str) -> RawOptions {
    RawOptions {
        recipients: vec![recipient.to_owned()],
        ..options()
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
fn dash_t_takes_every_address_of_every_line() {
    // The report: only the last To and the last Bcc reached the envelope.
    let raw = b"From: mailer@contoso.com\nTo: a@x.example\nTo: b@x.example\nBcc: c@x.example\nBcc: d@x.example\nSubject: t\n\nb\n";
    let out = from_raw(raw, &dash_t()).unwrap();
    assert_eq!(
        out.envelope.to,
        ["a@x.example", "b@x.example", "c@x.example", "d@x.example"]
    );
    let text = String::from_utf8(out.content).unwrap();
    assert!(!text.contains("c@x.example") && !text.contains("d@x.example"), "{text}");

    let raw = b"From: mailer@contoso.com\r\nTo: team: A <a@x.example>, =?utf-8?q?B=C3=B6?= <b@x.example>;, c@x.example\r\nCc: \"d, e\" <d@x.example>,\r\n e@x.example\r\nCc: A@X.example\r\nBcc: undisclosed-recipients:;\r\n\r\nb\r\n";
    let out = from_raw(raw, &dash_t()).unwrap();
    assert_eq!(
        out.envelope.to,
        [
            "a@x.example",
            "b@x.example",
            "c@x.example",
            "d@x.example",
            "e@x.example"
        ],
        "groups, several per line, encoded names, folded lines, each address once"
    );
}

#[test]
fn dash_t_with_resent_fields_takes_those() {
    let raw = b"From: a@contoso.com\r\nTo: original@x.example\r\nResent-From: mailer@contoso.com\r\nResent-To: now@x.example\r\nResent-Bcc: hidden@x.example\r\n\r\nb\r\n";
    let out = from_raw(raw, &dash_t()).unwrap();
    assert_eq!(out.envelope.to, ["now@x.example", "hidden@x.example"]);
    assert!(!String::from_utf8(out.content).unwrap().contains("hidden"));
}

#[test]
fn a_recipient_that_cannot_be_read_fails_the_message() {
    for raw in [
        &b"From: m@contoso.com\r\nTo: Bob\r\n\r\nb\r\n"[..],
        b"From: m@contoso.com\r\nTo: a@x.example\r\n b@x.example\r\n\r\nb\r\n",
        b"From: m@contoso.com\r\nCc: a@x.example b@x.example\r\n\r\nb\r\n",
        b"From: m@contoso.com\r\nBcc: <\"v@evil> NOTIFY=NEVER\"@x.com>\r\n\r\nb\r\n",
    ] {
        let error = from_raw(raw, &dash_t()).unwrap_err();
        assert!(
            matches!(error, MessageError::HeaderAddress { .. }),
            "{}: {error}",
            String::from_utf8_lossy(raw)
        );
    }
}

#[test]
fn the_from_checked_is_the_from_sent() {
    // A bare CR is a line end once normalised: the Subject would hide a second From.
    let error = from_raw(
        b"From: mailer@contoso.com\r\nSubject: x\rFrom: ceo@contoso.com\r\n\r\nb\r\n",
        &dash_t_to("a@x.example"),
    )
    .unwrap_err();
    assert!(matches!(error, MessageError::FromCount(2)), "{error}");
    for raw in [&b"From: Bob\r\n\r\nb\r\n"[..], b"From:\r\n\r\nb\r\n"] {
        assert!(from_raw(raw, &dash_t_to("a@x.example")).is_err());
    }
    let out = from_raw(b"From: alerts@contoso.com\r\n\r\nb\r\n", &dash_t_to("a@x.example")).unwrap();
    assert_eq!(out.from_header, ["alerts@contoso.com"]);
}

#[test]
fn the_full_name_cannot_add_a_header() {
    let options = RawOptions {
        full_name: Some("Job\r\nBcc: victim@x.example".into()),
        ..dash_t_to("a@x.example")
    };
    assert!(matches!(
        from_raw(b"Subject: s\r\n\r\nb\r\n", &options),
        Err(MessageError::LineBreak { .. })
    ));
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
        text.starts_with("From: \"Backup Job\" <mailer@contoso.com>\r\nDate: "),
        "{text}"
    );
    assert!(
        text.contains("\r\nMessage-ID: <") && text.ends_with("Subject: cron\r\n\r\nbackup done\r\n"),
        "{text}"
    );
    assert_eq!(out.envelope.from, "mailer@contoso.com");
    assert_eq!(out.from_header, ["mailer@contoso.com"]);
}

#[test]
fn relay_header_handling() {
    let raw = b"From: \"Scanner 3F\" <scan@printers.local>\r\nSubject: scan\r\n\r\nbody\r\n";
    let from = from_mailboxes(raw).unwrap().unwrap();
    assert_eq!(
        (from[0].address.as_str(), from[0].name.as_deref()),
        ("scan@printers.local", Some("Scanner 3F"))
    );
    let rewritten = String::from_utf8(rewrite_from(raw, "relay@contoso.com").unwrap()).unwrap();
    assert_eq!(
        rewritten,
        "From: \"Scanner 3F\" <relay@contoso.com>\r\nReply-To: \"Scanner 3F\" <scan@printers.local>\r\nSubject: scan\r\n\r\nbody\r\n"
    );
    let with_reply_to = b"From: a@b.example\r\nReply-To: ops@b.example\r\n\r\nx\r\n";
    assert_eq!(
        String::from_utf8(rewrite_from(with_reply_to, "relay@contoso.com").unwrap()).unwrap(),
        "From: relay@contoso.com\r\nReply-To: ops@b.example\r\n\r\nx\r\n"
    );
    assert!(matches!(
        rewrite_from(
            b"From: a@b.example\r\nFrom: c@b.example\r\n\r\nx\r\n",
            "relay@contoso.com"
        ),
        Err(MessageError::FromCount(2))
    ));

    let now = Timestamp::from_datetime(time::macros::datetime!(2026-11-23 18:00 UTC));
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
    spec.headers = Vec::new();
    // -f cannot carry MAIL FROM parameters, even with --no-from-check.
    spec.envelope_from = Some("a@b.example> NOTIFY=NEVER".into());
    assert!(matches!(compose(&spec), Err(MessageError::BadAddress(_))));
}

#[test]
fn addresses_smtp_can_carry_unquoted() {
    for good in [
        "a@b.example",
        "first.last+tag@sub.b.example",
        "o'brien@b.example",
        "jörg@bücher.example",
        "a@[192.0.2.1]",
        "a-b@b.example",
    ] {
        assert!(check_address(good).is_ok(), "{good}");
    }
    for bad in [
        "nobody",
        "a b@c.d",
        "-odd@b.example",
        "--token-endpoint=https://evil.example/@x.example",
        "a@localhost",
        "\"quoted\"@b.example",
        "a@b.example> NOTIFY=NEVER",
        "a..b@b.example",
        ".a@b.example",
        "a@b..example",
        "a@b@c.example",
        "a\r\n@b.example",
        "<a@b.example>",
        "a@b.example\u{0}",
    ] {
        assert!(check_address(bad).is_err(), "{bad:?}");
    }
    assert_eq!(
        check_address("a\nb@c.d").unwrap_err().to_string(),
        "`a\\nb@c.d` is not an email address"
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
