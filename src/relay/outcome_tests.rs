//! Tests of `outcome.rs`.

use std::time::Duration;

use super::*;
use crate::clock::ms;
use crate::queue::NewMessage;

fn account() -> Account {
    let overrides = crate::config::Overrides::default();
    let env = |name: &str| -> Option<String> {
        match name {
            "AZURE_TENANT_ID" => Some("contoso.onmicrosoft.com".into()),
            "AZURE_CLIENT_ID" => Some("0b7e2f4c-5d6a-4e8b-9c1d-3f2a4b6c8d0e".into()),
            "AZURE_CLIENT_SECRET" => Some("~s".into()),
            "M365_MAILER_MAILBOX" => Some("relay@contoso.com".into()),
            _ => None,
        }
    };
    crate::config::Config::resolve_with(&overrides, &env).unwrap().account
}

fn leased(attempts: u32) -> Leased {
    Leased {
        message: NewMessage {
            id: "q1".into(),
            account: "default".into(),
            sender: "relay@contoso.com".into(),
            recipients: vec!["a@x.example".into(), "b@x.example".into(), "c@x.example".into()],
            content: b"Subject: s\r\n\r\nb\r\n".to_vec(),
            message_id: None,
            client: "127.0.0.1".into(),
            received: ms(0),
        },
        attempts,
        crashes: 0,
        reclaimed: false,
    }
}

/// Accepted six days ago: past the queue lifetime.
fn aged(attempts: u32) -> Leased {
    Leased {
        message: NewMessage {
            received: NOW - Duration::from_secs(6 * 24 * 3600),
            ..leased(attempts).message
        },
        ..leased(attempts)
    }
}

fn reply(code: u16, line: &str) -> Reply {
    Reply::new(code, vec![line.into()])
}

fn rejected(step: Step, r: Reply) -> Result<Delivery, SubmitError> {
    Err(SubmitError::Smtp(SmtpError::Rejected {
        step,
        reply: r,
        challenge: None,
    }))
}

const NOW: Timestamp = ms(1_000_000);

fn run(stage: Stage, result: &Result<Delivery, SubmitError>, attempts: u32) -> Plan {
    plan(
        &leased(attempts),
        stage,
        result,
        &account(),
        &Backoff::default(),
        NOW,
        RESUME,
    )
}

const RESUME: Resume = Resume {
    throttled: ms(1_000_000 + 60_000),
    blocked: ms(1_000_000 + 300_000),
};

#[test]
fn per_recipient_results() {
    let ok = Ok(Delivery {
        reply: reply(250, "2.0.0 OK <x@y> [Hostname=MW4]"),
        rejected: vec![
            (
                "b@x.example".into(),
                reply(550, "5.1.10 RESOLVER.ADR.RecipientNotFound; not found"),
            ),
            (
                "c@x.example".into(),
                reply(451, "4.7.500 Server busy. Please try again later"),
            ),
        ],
    });
    let p = run(Stage::Transaction, &ok, 0);
    assert_eq!((p.delivered, p.dead, p.deferred, p.throttled), (1, 1, 1, None));
    assert!(matches!(
        &p.ops[0],
        Op::Sent {
            recipients: 1,
            at: NOW,
            ..
        }
    ));
    let Op::Dead(dead) = &p.ops[1] else {
        panic!("{:?}", p.ops)
    };
    assert_eq!(dead.message.recipients, ["b@x.example"]);
    assert!(dead.reply.starts_with("550 5.1.10"), "{}", dead.reply);
    assert!(!dead.diagnosis.is_empty());
    let Op::Defer {
        recipients,
        next_attempt,
        attempted,
        ..
    } = &p.ops[2]
    else {
        panic!("{:?}", p.ops)
    };
    assert_eq!(recipients, &["c@x.example"]);
    assert_eq!((*next_attempt, *attempted), (NOW + Duration::from_secs(300), true));
    assert_eq!(p.ops.len(), 3, "the message stays queued for c");

    let all = Ok(Delivery {
        reply: reply(250, "2.0.0 OK"),
        rejected: vec![],
    });
    let p = run(Stage::Transaction, &all, 3);
    assert_eq!(
        p.ops,
        [
            Op::Sent {
                account: "default".into(),
                recipients: 3,
                at: NOW
            },
            Op::Remove("q1".into())
        ]
    );
}

#[test]
fn message_refusals_go_to_the_dead_letter_area_at_once() {
    let p = run(
        Stage::Transaction,
        &rejected(
            Step::Content,
            reply(
                554,
                "5.2.252 SendAsDenied; relay@contoso.com not allowed to send as ceo@contoso.com",
            ),
        ),
        0,
    );
    assert_eq!((p.dead, p.deferred), (3, 0));
    assert!(matches!(&p.ops[..], [Op::Dead(_), Op::Remove(_)]));
    assert!(
        p.diagnosis.contains("Add-RecipientPermission") || p.diagnosis.contains("SendAs"),
        "{}",
        p.diagnosis
    );
}

#[test]
fn connection_failures_are_retried_until_the_lifetime_ends() {
    let auth = rejected(
        Step::Auth,
        reply(
            535,
            "5.7.3 Authentication unsuccessful [MW4PR04CA0001.namprd04.prod.outlook.com]",
        ),
    );
    let p = run(Stage::Connect, &auth, 0);
    assert!(p.unavailable && !p.keep_connection);
    assert!(matches!(&p.ops[..], [Op::Defer { attempted: true, .. }]));
    assert!(
        p.diagnosis.contains("5.7.3") || p.diagnosis.contains("SMTP.SendAsApp"),
        "{}",
        p.diagnosis
    );

    let old = aged(40);
    let p = plan(
        &old,
        Stage::Connect,
        &auth,
        &account(),
        &Backoff::default(),
        NOW,
        RESUME,
    );
    assert_eq!(p.dead, 3);
    assert!(
        p.reply.starts_with("gave up after 41 attempts over 144 hours; last: "),
        "{}",
        p.reply
    );
}

#[test]
fn throttling_pauses_without_counting_an_attempt() {
    let p = run(
        Stage::Transaction,
        &rejected(
            Step::Content,
            reply(432, "4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded"),
        ),
        2,
    );
    assert!(p.throttled.is_some());
    assert!(matches!(
        &p.ops[..],
        [Op::Defer {
            attempted: false,
            next_attempt,
            ..
        }] if *next_attempt == NOW + Duration::from_secs(60)
    ));
    // 421 closes the connection; it is a retry, not a refusal.
    let p = run(
        Stage::Transaction,
        &rejected(Step::Mail, reply(421, "4.3.2 Service not available")),
        0,
    );
    assert!(!p.keep_connection && p.dead == 0 && p.deferred == 3);
}

#[test]
fn a_refusal_of_the_account_pauses_it_and_keeps_the_messages() {
    // One misconfiguration must not drain the queue into the dead-letter area.
    for (step, line) in [
        (Step::Mail, "5.1.8 Access denied, bad outbound sender"),
        (
            Step::Mail,
            "5.7.708 Service unavailable. Access denied, traffic not accepted from this IP.",
        ),
        (
            Step::Content,
            "5.7.501 Service unavailable. Spam abuse detected from IP range.",
        ),
    ] {
        let p = run(Stage::Transaction, &rejected(step, reply(550, line)), 2);
        assert!(p.blocked && p.unavailable, "{line}");
        assert_eq!((p.dead, p.deferred), (0, 3), "{line}");
        assert!(
            matches!(&p.ops[..], [Op::Defer { attempted: false, next_attempt, .. }] if *next_attempt == RESUME.blocked),
            "{line}: {:?}",
            p.ops
        );
    }
    // Every recipient refused for the account's sake: the same.
    let all = Err(SubmitError::Smtp(SmtpError::RecipientsRejected {
        rejected: ["a@x.example", "b@x.example", "c@x.example"]
            .iter()
            .map(|r| {
                (
                    (*r).to_owned(),
                    reply(550, "5.7.708 Access denied, traffic not accepted from this IP"),
                )
            })
            .collect(),
    }));
    let p = run(Stage::Transaction, &all, 0);
    assert!(p.blocked && p.dead == 0 && p.deferred == 3);
    // Kept, but not for ever: the queue lifetime still ends it.
    let old = aged(0);
    let p = plan(
        &old,
        Stage::Transaction,
        &rejected(Step::Mail, reply(550, "5.1.8 Access denied, bad outbound sender")),
        &account(),
        &Backoff::default(),
        NOW,
        RESUME,
    );
    assert_eq!(p.dead, 3);
}

#[test]
fn crashes_are_retried_then_given_up_on() {
    let p = crashed(&leased(0), "index out of range", &Backoff::default(), NOW);
    assert!(
        matches!(
            &p.ops[..],
            [Op::Defer {
                crashed: true,
                attempted: true,
                ..
            }]
        ),
        "{:?}",
        p.ops
    );
    let third = Leased {
        crashes: MAX_CRASHES - 1,
        ..leased(2)
    };
    let p = crashed(&third, "index out of range", &Backoff::default(), NOW);
    assert!(matches!(&p.ops[..], [Op::Dead(_), Op::Remove(_)]), "{:?}", p.ops);
    assert_eq!(p.reply, "gave up after 3 crashed deliveries; last: index out of range");
}
