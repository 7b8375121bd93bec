//! The session state machine fed bytes directly: splits, STARTTLS, DATA's dot rules, Send-As
//! under RBAC, long lines.

use super::*;
use crate::entra::{Grant, token};
use crate::model::{Api, App, Scenario, Tenant};

const SP: &str = "6d5c4b3a-2f1e-4d0c-9b8a-7f6e5d4c3b2a";
const CLIENT: &str = "0b7e2f4c-5d6a-4e8b-9c1d-3f2a4b6c8d0e";
const TENANT: &str = "6f1d3c2a-9b4e-4d7a-8c1f-2e5b7a9d0c13";

fn shared() -> Arc<Shared> {
    let tenant = Tenant::new(TENANT, "contoso.com")
        .app(App::new(CLIENT, "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", SP).permission(
            Api::Exchange,
            "SMTP.SendAsApp",
            true,
        ))
        .exchange_service_principal(CLIENT, SP)
        .mailbox(Mailbox::new("mailer@contoso.com").full_access(SP));
    Shared::for_tests(Scenario::new(vec![tenant]))
}

fn auth_line(shared: &Shared) -> String {
    let grant = Grant {
        tenant_id: TENANT.into(),
        client_id: CLIENT.into(),
        app_name: "Mailer".into(),
        service_principal_id: SP.into(),
        api: Api::Exchange,
        audience: "https://outlook.office365.com".into(),
        roles: vec!["SMTP.SendAsApp".into()],
        appidacr: "1",
    };
    let access = token::mint(&grant, &shared.signing, shared.clock.unix(), 3599);
    let sasl = STANDARD.encode(format!("user=mailer@contoso.com\x01auth=Bearer {access}\x01\x01"));
    format!("AUTH XOAUTH2 {sasl}\r\n")
}

fn replies(outputs: &[Output]) -> Vec<String> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Reply(r) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

/// A whole dialogue, as one flight or split anywhere, gives the same replies.
#[test]
fn input_split_anywhere_gives_the_same_replies() {
    let shared = shared();
    let body = b"From: mailer@contoso.com\r\nMessage-ID: <1@x>\r\n\r\n..dot\r\n.\r\n";
    let chunk = b"From: mailer@contoso.com\r\nMessage-ID: <2@x>\r\n\r\nbinary\n.\r\n";
    let mut dialogue = format!("EHLO client.example\r\n{}", auth_line(&shared)).into_bytes();
    dialogue.extend_from_slice(b"MAIL FROM:<mailer@contoso.com>\r\nRCPT TO:<bob@fabrikam.com>\r\nDATA\r\n");
    dialogue.extend_from_slice(body);
    dialogue.extend_from_slice(
        format!(
            "MAIL FROM:<mailer@contoso.com>\r\nRCPT TO:<bob@fabrikam.com>\r\nBDAT {} LAST\r\n",
            chunk.len()
        )
        .as_bytes(),
    );
    dialogue.extend_from_slice(chunk);
    dialogue.extend_from_slice(b"QUIT\r\n");

    let mut whole = Session::new(Arc::clone(&shared), Endpoint::Exchange, 1, "192.0.2.1".into(), true);
    let mut input = dialogue.clone();
    let expected = replies(&whole.feed(&mut input));
    assert!(input.is_empty());
    let codes: Vec<&str> = expected.iter().map(|r| &r[..3]).collect();
    assert_eq!(
        codes,
        ["250", "235", "250", "250", "354", "250", "250", "250", "250", "221"]
    );

    for split in [1, 2, 3, 7, 64] {
        drop(whole);
        whole = Session::new(
            Arc::clone(&shared),
            Endpoint::Exchange,
            1 + split as u64,
            "192.0.2.1".into(),
            true,
        );
        let mut got = Vec::new();
        let mut buffer = Vec::new();
        for piece in dialogue.chunks(split) {
            buffer.extend_from_slice(piece);
            got.extend(replies(&whole.feed(&mut buffer)));
        }
        assert_eq!(got, expected, "split into pieces of {split}");
    }
    let stored = shared.store.messages();
    assert_eq!(
        stored[0].data,
        b"From: mailer@contoso.com\r\nMessage-ID: <1@x>\r\n\r\n.dot\r\n"
    );
    assert_eq!(stored[1].data, chunk, "BDAT content is taken as is, bare LF included");
}

#[test]
fn starttls_stops_at_the_command_and_leaves_the_rest_unread() {
    let mut session = Session::new(shared(), Endpoint::Exchange, 1, "192.0.2.1".into(), false);
    let mut input = b"EHLO x\r\nSTARTTLS\r\nMAIL FROM:<a@contoso.com>\r\n".to_vec();
    let out = session.feed(&mut input);
    assert_eq!(out.last(), Some(&Output::StartTls));
    assert_eq!(replies(&out).len(), 2);
    assert_eq!(
        input, b"MAIL FROM:<a@contoso.com>\r\n",
        "the server discards this clear-text remainder"
    );
}

#[test]
fn a_dot_after_a_bare_line_feed_does_not_end_the_data() {
    let shared = shared();
    let mut session = Session::new(Arc::clone(&shared), Endpoint::Exchange, 1, "192.0.2.1".into(), true);
    let mut input = format!(
        "EHLO x\r\n{}MAIL FROM:<mailer@contoso.com>\r\nRCPT TO:<b@fabrikam.com>\r\nDATA\r\n",
        auth_line(&shared)
    )
    .into_bytes();
    input.extend_from_slice(b"Subject: x\r\n\r\nsmuggle\n.\r\nMAIL FROM:<ceo@contoso.com>\r\n");
    let codes: Vec<String> = replies(&session.feed(&mut input))
        .iter()
        .map(|r| r[..3].to_owned())
        .collect();
    assert_eq!(codes, ["250", "235", "250", "250", "354"], "still inside DATA");
    input.extend_from_slice(b"\r\n.\r\n");
    let end = replies(&session.feed(&mut input));
    assert!(end[0].starts_with("554 5.6.11"), "{end:?}");
}

/// Under RBAC for Applications the scope's mailboxes may be sent as (assumed), others not.
#[test]
fn send_as_under_rbac_follows_the_scope() {
    let shared = Shared::for_tests(crate::fixture::contoso_rbac("secret", None));
    let grant = Grant {
        tenant_id: TENANT.into(),
        client_id: CLIENT.into(),
        app_name: "Contoso Mailer".into(),
        service_principal_id: SP.into(),
        api: Api::Exchange,
        audience: "https://outlook.office365.com".into(),
        roles: Vec::new(),
        appidacr: "1",
    };
    let access = token::mint(&grant, &shared.signing, shared.clock.unix(), 3599);
    let sasl = STANDARD.encode(format!("user=mailer@contoso.com\x01auth=Bearer {access}\x01\x01"));
    let mut session = Session::new(Arc::clone(&shared), Endpoint::Exchange, 1, "192.0.2.1".into(), true);
    let mut input = format!("EHLO x\r\nAUTH XOAUTH2 {sasl}\r\n").into_bytes();
    for from in ["alerts@contoso.com", "ceo@contoso.com"] {
        input.extend_from_slice(
            format!(
                "MAIL FROM:<mailer@contoso.com>\r\nRCPT TO:<b@fabrikam.com>\r\nDATA\r\nFrom: {from}\r\n\r\nx\r\n.\r\n"
            )
            .as_bytes(),
        );
    }
    let codes: Vec<String> = replies(&session.feed(&mut input))
        .iter()
        .map(|r| r[..9].to_owned())
        .collect();
    assert_eq!(
        codes[1..],
        [
            "235 2.7.0",
            "250 2.1.0",
            "250 2.1.5",
            "354 Start",
            "250 2.0.0",
            "250 2.1.0",
            "250 2.1.5",
            "354 Start",
            "554 5.2.2"
        ]
    );
}

#[test]
fn an_over_long_line_is_refused_once_and_skipped() {
    let mut session = Session::new(shared(), Endpoint::Exchange, 1, "192.0.2.1".into(), true);
    let mut input = vec![b'A'; 40_000];
    let first = replies(&session.feed(&mut input));
    assert_eq!(first, ["500 5.5.2 Line too long\r\n"]);
    input.extend_from_slice(b"AAAA\r\nNOOP\r\n");
    assert_eq!(replies(&session.feed(&mut input)), ["250 2.0.0 OK\r\n"]);
}
