//! The alert bodies' property (`relay/alert/render.rs`).

/// An alert about a dead letter whose reply, recipients, sender and account are arbitrary
/// text (split at 0xFF), and a stored event of arbitrary bytes: never a panic; every body is
/// JSON; Teams carries the text only in `TextRun`s, Slack only in `plain_text` with its
/// fallback escaped, ntfy under 4,096 bytes; a stored event reads back as it was written.
pub fn alert_bodies(data: &[u8]) {
    use crate::relay::alert::{Event, Format, Notice, body, plan};
    let mut parts = data
        .split(|b| *b == 0xFF)
        .map(|p| String::from_utf8_lossy(p).into_owned());
    let mut part = || parts.next().unwrap_or_default();
    let (reply, recipients, sender, account) = (part(), part(), part(), part());
    let message = crate::queue::NewMessage {
        id: crate::queue::new_id(),
        account,
        sender,
        recipients: recipients.split(',').map(str::to_owned).collect(),
        content: Vec::new(),
        message_id: None,
        client: "192.0.2.7".into(),
        received: crate::clock::Timestamp::EPOCH,
    };
    let dead = crate::queue::DeadLetter {
        message,
        attempts: 1,
        failed: crate::clock::Timestamp::EPOCH,
        diagnosis: part(),
        reply,
    };
    let event = Event::dead_lettered(&dead);
    let stored = serde_json::to_string(&event).expect("an event serialises");
    assert_eq!(serde_json::from_str::<Event>(&stored).expect("it reads back"), event);
    let events = vec![event; data.len() % 25 + 1];
    let notice = Notice {
        kind: events[0].kind,
        events: &events,
        instance: "fuzz",
    };
    for format in Format::ALL {
        let bytes = body(format, &notice, Some("topic"));
        let value: serde_json::Value = serde_json::from_slice(&bytes).expect("the body is JSON");
        let text = value.to_string();
        match format {
            Format::Teams => assert!(!text.contains("\"TextBlock\""), "{text}"),
            Format::Slack => {
                let fallback = value["text"].as_str().expect("a fallback");
                assert!(!fallback.contains(['<', '>']), "{fallback}");
                assert!(!text.contains("\"mrkdwn\""), "{text}");
            }
            Format::Ntfy => assert!(value["message"].as_str().expect("a message").len() < 4096),
            Format::Json => assert_eq!(value["count"], events.len()),
        }
    }
    let row = crate::queue::PendingAlert {
        seq: 1,
        destination: "d".into(),
        kind: "dead-lettered".into(),
        event: String::from_utf8_lossy(data).into_owned(),
        created: crate::clock::Timestamp::EPOCH,
        attempts: 0,
    };
    let _ = plan(
        vec![row],
        &[],
        &["d"],
        crate::clock::Timestamp::EPOCH,
        std::time::Duration::ZERO,
    );
}
