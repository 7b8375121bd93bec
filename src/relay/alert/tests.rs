use std::time::Duration;

use serde_json::Value;

use super::plan::{RETENTION, plan};
use super::render::{LISTED, Notice, body};
use super::watch::{Observed, conditions};
use super::*;
use crate::account::{CredentialExpiry, CredentialKind};
use crate::clock::ms;
use crate::config::Origin;
use crate::queue::{DeadLetter, LastSent, NewMessage, OutboxOp, Paused, PendingAlert, Stats};

const NOW: Timestamp = ms(1_796_312_678_000);

fn destination(name: &str, format: Format, rules: &[Rule]) -> Destination {
    Destination {
        name: name.into(),
        format,
        url: Secret::new("https://hooks.example.com/secret-path"),
        topic: (format == Format::Ntfy).then(|| Secret::new("relay-topic")),
        rules: rules.to_vec(),
    }
}

fn alerts(destinations: Vec<Destination>) -> Alerts {
    Alerts::new(AlertSettings {
        destinations,
        ..AlertSettings::off("relay-1")
    })
}

const HOSTILE: &str =
    "550 5.7.1 <b>x</b> [click](https://evil.example) *bold* <https://evil.example|here> &amp; \"q\"\r\nInjected: yes";

fn dead(recipients: usize) -> DeadLetter {
    DeadLetter {
        message: NewMessage {
            id: "0190a1b2c3d4e5f60718293a4b5c6d7e".into(),
            account: "office".into(),
            sender: "scanner@contoso.com".into(),
            recipients: (0..recipients).map(|i| format!("user{i}@fabrikam.com")).collect(),
            content: Vec::new(),
            message_id: None,
            client: "192.0.2.7".into(),
            received: NOW - Duration::from_secs(60),
        },
        attempts: 1,
        failed: NOW,
        reply: HOSTILE.into(),
        diagnosis: "The recipient does not exist.\n  Fix: check the address.".into(),
    }
}

/// Every string inside a JSON value.
fn strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        Value::Object(map) => map.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

/// Every object's `type` inside a JSON value.
fn types(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Array(items) => items.iter().for_each(|v| types(v, out)),
        Value::Object(map) => {
            if let Some(Value::String(t)) = map.get("type") {
                out.push(t.clone());
            }
            map.values().for_each(|v| types(v, out));
        }
        _ => {}
    }
}

fn render(format: Format, events: &[Event]) -> Value {
    let notice = Notice {
        kind: events[0].kind,
        events,
        instance: "relay-1",
    };
    serde_json::from_slice(&body(format, &notice, Some("relay-topic"))).expect("the body is JSON")
}

#[test]
fn hostile_replies_and_addresses_are_data_in_every_format() {
    let events = [Event::dead_lettered(&dead(2))];
    let generic = render(Format::Json, &events);
    assert_eq!(generic["kind"], "dead-lettered");
    assert_eq!(generic["severity"], "error");
    assert_eq!(generic["count"], 1);
    assert_eq!(generic["events"][0]["facts"]["Reply"], HOSTILE);

    // Teams: values only in TextRuns, which Adaptive Cards never read as Markdown.
    let teams = render(Format::Teams, &events);
    assert_eq!(teams["type"], "message");
    assert_eq!(
        teams["attachments"][0]["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    let mut kinds = Vec::new();
    types(&teams["attachments"][0]["content"]["body"], &mut kinds);
    assert!(
        kinds
            .iter()
            .all(|t| ["RichTextBlock", "TextRun", "Container"].contains(&t.as_str())),
        "{kinds:?}"
    );
    let mut texts = Vec::new();
    strings(&teams, &mut texts);
    assert!(texts.iter().any(|t| t == HOSTILE));

    // Slack: plain_text blocks; the mrkdwn fallback escaped.
    let slack = render(Format::Slack, &events);
    let fallback = slack["text"].as_str().unwrap();
    assert!(!fallback.contains('<') && !fallback.contains('>'), "{fallback}");
    assert!(fallback.contains("&lt;https://evil.example|here&gt;"));
    let mut kinds = Vec::new();
    types(&slack["blocks"], &mut kinds);
    assert!(!kinds.contains(&"mrkdwn".to_owned()), "{kinds:?}");

    // ntfy: JSON publishing with the topic inside, never Markdown.
    let ntfy = render(Format::Ntfy, &events);
    assert_eq!(ntfy["topic"], "relay-topic");
    assert_eq!(ntfy["priority"], 5);
    assert!(ntfy.get("markdown").is_none());
    assert!(ntfy["message"].as_str().unwrap().contains(HOSTILE));
}

#[test]
fn a_summary_counts_every_event_and_lists_the_first_ones() {
    let events: Vec<Event> = (0..1000).map(|_| Event::dead_lettered(&dead(1))).collect();
    let generic = render(Format::Json, &events);
    assert_eq!(generic["count"], 1000);
    assert_eq!(generic["title"], "1000 messages given up on (dead-lettered)");
    assert_eq!(generic["events"].as_array().unwrap().len(), 100);
    assert_eq!(generic["omitted"], 900);
    for (format, listed) in [(Format::Teams, LISTED), (Format::Slack, LISTED), (Format::Ntfy, 3)] {
        let value = render(format, &events);
        let text = value.to_string();
        assert!(text.contains(&format!("and {} more", 1000 - listed)), "{format:?}");
        assert!(text.len() < 40_000, "{format:?}: {} bytes", text.len());
    }
    let ntfy = render(Format::Ntfy, &events);
    assert!(ntfy["message"].as_str().unwrap().len() <= 4096);
}

fn pending(seq: i64, destination: &str, event: &Event) -> PendingAlert {
    PendingAlert {
        seq,
        destination: destination.into(),
        kind: event.kind.name().into(),
        event: serde_json::to_string(event).unwrap(),
        created: event.at,
        attempts: 0,
    }
}

#[test]
fn alerts_of_a_kind_wait_for_the_window_then_go_as_one() {
    let window = Duration::from_secs(300);
    let dead = Event::dead_lettered(&dead(1));
    let recovered = Event::account_recovered("office", NOW, "250 2.0.0 OK");
    let rows = vec![
        pending(1, "teams", &dead),
        pending(2, "teams", &dead),
        pending(3, "ops", &dead),
        pending(4, "teams", &recovered),
        pending(5, "teams", &dead),
    ];
    let p = plan(rows.clone(), &[], &["teams", "ops"], NOW, window);
    let shape: Vec<(&str, Kind, Vec<i64>)> = p
        .batches
        .iter()
        .map(|b| (b.destination.as_str(), b.kind, b.seqs.clone()))
        .collect();
    assert_eq!(
        shape,
        [
            ("teams", Kind::DeadLettered, vec![1, 2, 5]),
            ("ops", Kind::DeadLettered, vec![3]),
            ("teams", Kind::AccountRecovered, vec![4]),
        ]
    );
    // Teams got a dead-letter alert a minute ago: those wait; the others do not.
    let sent = [LastSent {
        destination: "teams".into(),
        kind: "dead-lettered".into(),
        at: NOW - Duration::from_secs(60),
    }];
    let p = plan(rows.clone(), &sent, &["teams", "ops"], NOW, window);
    assert_eq!(p.batches.len(), 2);
    assert!(
        p.batches
            .iter()
            .all(|b| b.kind != Kind::DeadLettered || b.destination == "ops")
    );
    // The window over, they go.
    let p = plan(rows, &sent, &["teams", "ops"], NOW + window, window);
    assert_eq!(p.batches[0].seqs, [1, 2, 5]);
}

#[test]
fn what_cannot_be_sent_is_dropped_with_the_reason() {
    let event = Event::dead_lettered(&dead(1));
    let mut damaged = pending(2, "teams", &event);
    damaged.event = "{not json".into();
    let mut unknown = pending(3, "teams", &event);
    unknown.kind = "made-up".into();
    let mut old = pending(4, "teams", &event);
    old.created = NOW - RETENTION - Duration::from_secs(1);
    let rows = vec![pending(1, "gone", &event), damaged, unknown, old];
    let p = plan(rows, &[], &["teams"], NOW, Duration::from_secs(60));
    assert!(p.batches.is_empty());
    let why: Vec<(i64, &str)> = p.dropped.iter().map(|(s, w)| (*s, w.as_str())).collect();
    assert!(why[0].1.contains("no destination named `gone`"), "{why:?}");
    assert!(why[1].1.contains("cannot be read"), "{why:?}");
    assert!(why[2].1.contains("unknown kind"), "{why:?}");
    assert!(why[3].1.contains("within 3 days"), "{why:?}");
}

#[test]
fn a_destination_gets_only_what_it_subscribes_to() {
    let a = alerts(vec![
        destination("all", Format::Json, &Rule::ALL),
        destination("dead", Format::Slack, &[Rule::DeadLetter]),
    ]);
    let rows = a.rows(&Event::dead_lettered(&dead(1)));
    assert_eq!(
        rows.iter().map(|r| r.destination.as_str()).collect::<Vec<_>>(),
        ["all", "dead"]
    );
    let rows = a.rows(&Event::account_recovered("office", NOW, "250 OK"));
    assert_eq!(rows.iter().map(|r| r.destination.as_str()).collect::<Vec<_>>(), ["all"]);
    assert!(!format!("{a:?}").contains("secret-path"), "the URL is never shown");
}

fn expiry(days: i64, seconds: i64) -> CredentialExpiry {
    CredentialExpiry {
        credential: CredentialKind::Certificate,
        at: Timestamp::from_unix_secs(NOW.unix_secs() + days * 86_400 + seconds),
        origin: Origin::Default,
    }
}

#[test]
fn a_credential_is_announced_at_30_7_and_1_days_and_once_expired() {
    let stage = |days, seconds| credential_stage(&expiry(days, seconds), NOW);
    assert_eq!(stage(31, 0), None);
    assert_eq!(stage(30, 0), Some(30));
    assert_eq!(stage(8, 0), Some(30));
    assert_eq!(stage(7, 0), Some(7));
    assert_eq!(stage(2, 0), Some(7));
    assert_eq!(stage(1, 0), Some(1));
    assert_eq!(stage(0, 1), Some(1));
    assert_eq!(stage(0, 0), Some(0));
    assert_eq!(stage(-40, 0), Some(0));
    assert_eq!(
        Event::credential("office", &expiry(-1, 0), NOW).kind,
        Kind::CredentialExpired
    );
    assert_eq!(
        Event::credential("office", &expiry(5, 0), NOW).kind,
        Kind::CredentialExpiring
    );
}

#[test]
fn conditions_raise_and_clear_by_their_thresholds() {
    let a = alerts(vec![destination("all", Format::Json, &Rule::ALL)]);
    let settings = AlertSettings {
        unavailable_after: Duration::from_secs(600),
        queue_age_over: Duration::from_secs(3600),
        queue_depth_over: 100,
        ..AlertSettings::off("relay-1")
    };
    let paused = |account: &str, minutes: u64| Paused {
        account: account.into(),
        since: NOW - Duration::from_secs(minutes * 60),
        until: NOW + Duration::from_secs(60),
        reason: "421 4.3.2 Service not available".into(),
    };
    let seen = Observed {
        paused: vec![paused("office", 11), paused("scanner", 5), paused("removed", 60)],
        stats: Some(Stats {
            queued: 101,
            oldest: Some(NOW - Duration::from_secs(7200)),
            dead: 0,
        }),
        credentials: vec![("office".into(), expiry(5, 0)), ("scanner".into(), expiry(90, 0))],
        accounts: vec!["office".into(), "scanner".into()],
    };
    let ops = conditions(&a, &settings, &seen, NOW);
    let keys: Vec<String> = ops
        .iter()
        .map(|op| match op {
            OutboxOp::Raise { key, alerts, .. } => format!("raise {key} {}", alerts.len()),
            OutboxOp::Clear { key, .. } => format!("clear {key}"),
            other => format!("{other:?}"),
        })
        .collect();
    let expires = expiry(5, 0).at.unix_millis();
    assert_eq!(
        keys,
        [
            "raise account:office 1".to_owned(),
            format!("raise credential:office:{expires}:7 1"),
            "raise queue-age 1".to_owned(),
            "raise queue-depth 1".to_owned(),
        ]
    );
    let calm = Observed {
        stats: Some(Stats {
            queued: 3,
            oldest: Some(NOW - Duration::from_secs(60)),
            dead: 0,
        }),
        ..Observed::default()
    };
    let ops = conditions(&a, &settings, &calm, NOW);
    assert!(
        matches!(&ops[..], [OutboxOp::Clear { key: age, .. }, OutboxOp::Clear { key: depth, .. }]
        if age == "queue-age" && depth == "queue-depth")
    );
}

#[test]
fn a_stored_event_reads_back_as_it_was() {
    for event in [
        Event::dead_lettered(&dead(30)),
        Event::restarted(3, NOW),
        Event::taken_over("office", 1, NOW),
        Event::queue_deep(5000, 1000, NOW),
    ] {
        let back: Event = serde_json::from_str(&serde_json::to_string(&event).unwrap()).unwrap();
        assert_eq!(back, event);
    }
    let listed = Event::dead_lettered(&dead(30));
    let recipients = &listed.facts.iter().find(|(k, _)| k == "Recipients").unwrap().1;
    assert!(recipients.ends_with("and 20 more"), "{recipients}");
}
