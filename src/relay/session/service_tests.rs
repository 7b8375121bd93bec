//! A session for an account whose service has rules of its own: HVE's internal recipients and
//! the smaller per-message limits of HVE and ACS.

use std::sync::Arc;

use super::*;
use crate::relay::policy::{Senders, loopback};

fn hve_session() -> Session {
    let rule = Rule {
        name: "network 127.0.0.0/8".into(),
        account: "bulk".into(),
        rewrite_sender: false,
    };
    let policy = Policy {
        users: Vec::new(),
        networks: loopback().into_iter().map(|n| (n, rule.clone())).collect(),
        plaintext_auth: loopback(),
        accounts: vec![(
            "bulk".into(),
            Senders {
                internal_domains: vec!["contoso.com".into()],
                max_recipients: 2,
                max_message_size: 100,
                ..Senders::new("hve@contoso.com", Vec::new())
            },
        )],
    };
    let mut session = Session::new(
        Arc::new(Settings::default()),
        Arc::new(policy),
        "127.0.0.1".parse().unwrap(),
        false,
    );
    session.take_output();
    session
}

/// Feeds `input` and returns the replies (no message is stored in these tests).
fn send(session: &mut Session, input: &str) -> String {
    session.receive(input.as_bytes());
    let mut out = Vec::new();
    while !matches!(session.next_event(), Event::NeedInput | Event::Close) {}
    out.extend(session.take_output());
    String::from_utf8(out).unwrap()
}

#[test]
fn hve_refuses_outside_recipients_and_keeps_its_limits() {
    let mut s = hve_session();
    send(&mut s, "EHLO printer\r\n");
    assert!(send(&mut s, "MAIL FROM:<hve@contoso.com> SIZE=101\r\n").starts_with("552 5.3.4"));
    assert!(send(&mut s, "MAIL FROM:<hve@contoso.com>\r\n").starts_with("250"));
    let outside = send(&mut s, "RCPT TO:<someone@gmail.com>\r\n");
    assert!(
        outside.starts_with(
            "550 5.7.1 someone@gmail.com is outside the tenant: High Volume Email delivers to contoso.com only"
        ),
        "{outside}"
    );
    assert!(send(&mut s, "RCPT TO:<a@contoso.com>\r\n").starts_with("250"));
    assert!(send(&mut s, "RCPT TO:<b@Contoso.COM>\r\n").starts_with("250"));
    assert!(send(&mut s, "RCPT TO:<c@contoso.com>\r\n").starts_with("452 4.5.3 Too many recipients: at most 2"));
}
