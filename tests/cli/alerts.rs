//! Alerts from the real relay to a webhook receiver on this machine, in each format: every
//! kind of event once, a receiver that is down for a while, a restart in between, and a flood
//! of dead letters that gives a handful of alerts.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use m365_emulator::{Fault, Stage};
use serde_json::Value;

use crate::support::*;

/// What the receiver got: the path posted to and the body.
type Received = Arc<Mutex<Vec<(String, Value)>>>;

/// A webhook receiver: answers 200 to every POST and keeps what it got.
struct Receiver {
    port: u16,
    received: Received,
    server: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// Listens on `port` (0: any).
    async fn start(port: u16, received: Received) -> Self {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let sink = Arc::clone(&received);
        let app = axum::Router::new().fallback(move |uri: axum::http::Uri, body: axum::body::Bytes| {
            let sink = Arc::clone(&sink);
            async move {
                let value: Value = serde_json::from_slice(&body).expect("every alert is JSON");
                sink.lock().unwrap().push((uri.path().to_owned(), value));
                "ok"
            }
        });
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { port, received, server }
    }

    /// Stops listening: posts to it are refused until it starts again.
    fn stop(self) -> (u16, Received) {
        self.server.abort();
        (self.port, self.received)
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The kinds of the alerts posted to `path`, with how many events each carried.
    fn kinds(&self, path: &str) -> Vec<(String, u64)> {
        kinds(&self.received, path)
    }
}

fn kinds(received: &Received, path: &str) -> Vec<(String, u64)> {
    received
        .lock()
        .unwrap()
        .iter()
        .filter(|(p, _)| p == path)
        .map(|(_, body)| kind_of(body))
        .collect()
}

/// The kind an alert body names, and its count of events, in each format.
fn kind_of(body: &Value) -> (String, u64) {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    if let Some(kind) = body.get("kind") {
        return (text(kind), body["count"].as_u64().unwrap());
    }
    if let Some(attachments) = body.get("attachments") {
        let card = &attachments[0]["content"];
        assert_eq!(card["type"], "AdaptiveCard");
        return (text(&card["body"][0]["id"]), 0);
    }
    if let Some(blocks) = body.get("blocks") {
        return (text(&blocks[0]["block_id"]), 0);
    }
    assert!(body["topic"].is_string(), "{body}");
    (text(&body["tags"][2]), 0)
}

/// Each format and the path of its URL.
const FORMATS: [(&str, &str); 4] = [
    ("json", "/json"),
    ("teams", "/teams"),
    ("slack", "/slack"),
    ("ntfy", "/ntfy/relay-alerts"),
];

/// The path an alert to `url_path` is posted to: ntfy's go to the server, the topic inside.
fn posted(url_path: &str) -> &str {
    url_path.strip_suffix("relay-alerts").unwrap_or(url_path)
}

/// A relay config with the four destinations, their URLs in the environment.
fn config(world: &mut World, receiver: &Receiver, alerting: &str, destinations: &[(&str, &str)]) -> String {
    let mut text = format!(
        "[[relay.listen]]\naddress = \"127.0.0.1:0\"\n\n\
         [relay.delivery]\nconnections_per_account = 1\nretry_initial = \"1s\"\nretry_max = \"1s\"\n\
         messages_per_minute = 1000000\nrecipients_per_day = 100000000\n\n\
         [relay.alerting]\ninstance = \"test-relay\"\ncheck_interval = \"300ms\"\n{alerting}\n"
    );
    for (format, path) in destinations {
        let var = format!("HOOK_{}", format.to_uppercase());
        world.set(&var, &receiver.url(path));
        text.push_str(&format!(
            "\n[[relay.alerts]]\nformat = \"{format}\"\nurl_env = \"{var}\"\n"
        ));
    }
    text
}

/// Waits until `done` holds of what was received.
async fn wait_until(what: &str, received: &Received, done: impl Fn(&[(String, Value)]) -> bool) {
    let ok = tokio::time::timeout(Duration::from_secs(60), async {
        while !done(&received.lock().unwrap()) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(ok.is_ok(), "{what}: {:#?}", received.lock().unwrap());
}

fn has(kind: &str) -> impl Fn(&[(String, Value)]) -> bool + '_ {
    move |all| {
        FORMATS
            .iter()
            .all(|(_, path)| all.iter().any(|(p, b)| p == posted(path) && kind_of(b).0 == kind))
    }
}

fn unlimited(s: &mut m365_emulator::Scenario) {
    s.exchange.messages_per_minute = 1_000_000;
    s.exchange.recipients_per_day = 100_000_000;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_kind_of_event_arrives_once_in_every_format() {
    let mut world = World::start_with(unlimited).await;
    let receiver = Receiver::start(0, Received::default()).await;
    let received = Arc::clone(&receiver.received);
    let date = |days: i64| (now() + time::Duration::days(days)).date().to_string();
    world.set("M365_MAILER_CLIENT_SECRET_EXPIRES", &date(5));
    let alerting =
        "account_unavailable_after = \"1s\"\nqueue_age_over = \"2s\"\nqueue_depth_over = 2\nsummary_window = \"1s\"\n";
    let text = config(&mut world, &receiver, alerting, &FORMATS);
    let relay = world.relay(&text).await;
    let port = relay.addr().port();
    wait_until("credential", &received, has("credential-expiring")).await;

    // A message refused for good.
    let faults = world.emulator.faults();
    faults
        .add(Fault::reply(Stage::DataEnd, "550 5.7.1 <b>refused</b> [x](https://evil.example)").times(1))
        .unwrap();
    submit(port, &["bob@fabrikam.com"], &complete_message("refused"));
    wait_until("dead letter", &received, has("dead-lettered")).await;

    // Exchange unreachable: the account pauses, messages pile up and age; then it is back.
    // (The connection open since the refusal breaks at the next message.)
    faults.add(Fault::drop_connection(Stage::Mail)).unwrap();
    faults.add(Fault::drop_connection(Stage::Connect)).unwrap();
    for i in 0..3 {
        submit(port, &["carol@fabrikam.com"], &complete_message(&format!("waits {i}")));
    }
    wait_until("unavailable", &received, has("account-unavailable")).await;
    wait_until("old", &received, has("queue-old")).await;
    wait_until("deep", &received, has("queue-deep")).await;
    faults.clear();
    wait_until("recovered", &received, has("account-recovered")).await;
    wait_until("old resolved", &received, has("queue-old-resolved")).await;
    wait_until("deep resolved", &received, has("queue-deep-resolved")).await;

    // Killed while a delivery is under way; started again, with the secret now expired.
    let before = world.emulator.store().len();
    faults.add(Fault::delay(Stage::DataEnd, 30_000).times(1)).unwrap();
    submit(port, &["dave@fabrikam.com"], &complete_message("interrupted"));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    relay.kill().await;
    world.set("M365_MAILER_CLIENT_SECRET_EXPIRES", &date(-1));
    let text = config(
        &mut world,
        &receiver,
        "account_unavailable_after = \"1h\"\nqueue_age_over = \"1h\"\nsummary_window = \"1s\"\n",
        &FORMATS,
    );
    let relay = world.relay(&text).await;
    wait_until("restart", &received, has("reclaimed")).await;
    wait_until("expired", &received, has("credential-expired")).await;
    assert!(world.wait_for_messages(before + 1, Duration::from_secs(30)).await > before);
    // Anything announced twice would have arrived by now.
    tokio::time::sleep(Duration::from_secs(2)).await;

    for (format, path) in FORMATS {
        let mut got: Vec<String> = receiver.kinds(posted(path)).into_iter().map(|(k, _)| k).collect();
        got.sort();
        let mut expected = [
            "account-recovered",
            "account-unavailable",
            "credential-expired",
            "credential-expiring",
            "dead-lettered",
            "queue-deep",
            "queue-deep-resolved",
            "queue-old",
            "queue-old-resolved",
            "reclaimed",
        ];
        expected.sort();
        assert_eq!(got, expected, "{format}");
    }
    // The hostile reply reached Teams only as data.
    let all = received.lock().unwrap().clone();
    let teams = all
        .iter()
        .find(|(p, b)| p == "/teams" && kind_of(b).0 == "dead-lettered")
        .unwrap();
    assert!(teams.1.to_string().contains("[x](https://evil.example)"));
    assert!(!teams.1.to_string().contains("\"TextBlock\""));
    let log = Arc::clone(&relay.log);
    relay.terminate().await;
    // The webhook URLs are credentials: never in the log.
    let log = log.lock().unwrap();
    assert!(!log.contains(&format!("127.0.0.1:{}", receiver.port)), "{log}");
    assert!(log.contains("alert sent"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn alerts_wait_for_a_receiver_that_is_down_and_survive_a_restart() {
    let mut world = World::start_with(unlimited).await;
    let receiver = Receiver::start(0, Received::default()).await;
    let only_json = [FORMATS[0]];
    let text = config(&mut world, &receiver, "summary_window = \"1s\"\n", &only_json);
    let (port, received) = receiver.stop();
    let relay = world.relay(&text).await;
    let faults = world.emulator.faults();
    faults
        .add(Fault::reply(
            Stage::DataEnd,
            "550 5.1.10 RESOLVER.ADR.RecipientNotFound",
        ))
        .unwrap();

    // Down while the relay runs: the alert waits, then arrives.
    submit(relay.addr().port(), &["first@fabrikam.com"], &complete_message("first"));
    relay
        .wait_for_log("alert not delivered; trying again", Duration::from_secs(30))
        .await;
    let receiver = Receiver::start(port, received).await;
    wait_until("after the receiver is back", &receiver.received, |all| all.len() == 1).await;

    // Down again, and the relay is killed before it could deliver the alert.
    let (port, received) = receiver.stop();
    let failed_before = relay.log_text().matches("alert not delivered; trying again").count();
    submit(
        relay.addr().port(),
        &["second@fabrikam.com"],
        &complete_message("second"),
    );
    // The second dead letter is recorded (nothing is being delivered) and its alert failed.
    let settled = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let log = relay.log_text();
            let dead = log
                .lines()
                .filter(|l| l.contains("dead-lettered") && !l.contains("kind="))
                .count();
            if dead >= 2 && log.matches("alert not delivered; trying again").count() > failed_before {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(settled.is_ok(), "{}", relay.log_text());
    relay.kill().await;
    let receiver = Receiver::start(port, received).await;
    let relay = world.relay(&text).await;
    wait_until("after the restart", &receiver.received, |all| all.len() == 2).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let all = receiver.received.lock().unwrap().clone();
    let recipients: Vec<String> = all
        .iter()
        .map(|(_, body)| {
            assert_eq!(body["kind"], "dead-lettered", "{body}");
            body["events"][0]["facts"]["Recipients"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(
        recipients,
        ["first@fabrikam.com", "second@fabrikam.com"],
        "each once, none lost"
    );
    assert!(
        !relay.log_text().contains(&format!("127.0.0.1:{port}")),
        "the URL is never logged"
    );
    let (_, metrics) = admin_get(&relay, "/metrics").await;
    assert!(
        metrics.contains("m365_relay_alerts_sent_total{destination=\"json\"} 1"),
        "{metrics}"
    );
    relay.terminate().await;
}

/// Hands `count` messages to the relay on `port` in one SMTP session.
fn submit_many(port: u16, count: usize) {
    const SCRIPT: &str = r#"
import smtplib, sys
port, count = int(sys.argv[1]), int(sys.argv[2])
with smtplib.SMTP("127.0.0.1", port, timeout=60) as s:
    for i in range(count):
        msg = f"From: mailer@contoso.com\r\nTo: r{i}@fabrikam.com\r\nSubject: flood {i}\r\nMessage-ID: <flood{i}@test>\r\nDate: Fri, 04 Dec 2026 10:00:00 +0000\r\n\r\nflood\r\n"
        s.sendmail("mailer@contoso.com", [f"r{i}@fabrikam.com"], msg)
"#;
    let out = std::process::Command::new(python())
        .args(["-c", SCRIPT, &port.to_string(), &count.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_thousand_dead_letters_in_a_minute_give_a_handful_of_alerts() {
    let mut world = World::start_with(unlimited).await;
    let receiver = Receiver::start(0, Received::default()).await;
    let text = config(&mut world, &receiver, "summary_window = \"10s\"\n", &[FORMATS[0]]);
    let relay = world.relay(&text).await;
    world
        .emulator
        .faults()
        .add(Fault::reply(Stage::Rcpt, "550 5.1.10 RESOLVER.ADR.RecipientNotFound"))
        .unwrap();
    let port = relay.addr().port();
    tokio::task::spawn_blocking(move || submit_many(port, 1000))
        .await
        .unwrap();
    let counted = |all: &[(String, Value)]| -> u64 { all.iter().map(|(_, b)| kind_of(b).1).sum() };
    wait_until("every dead letter counted", &receiver.received, |all| {
        counted(all) >= 1000
    })
    .await;
    let all = receiver.received.lock().unwrap().clone();
    let counts: Vec<u64> = all.iter().map(|(_, b)| kind_of(b).1).collect();
    eprintln!("{} alerts for 1000 dead letters: {counts:?}", all.len());
    assert_eq!(counted(&all), 1000, "each dead letter in exactly one alert");
    assert!(all.len() <= 8, "{} alerts for 1000 dead letters", all.len());
    assert!(all.iter().all(|(_, b)| b["kind"] == "dead-lettered"));
    let summary = all.iter().map(|(_, b)| b).max_by_key(|b| b["count"].as_u64()).unwrap();
    assert!(
        summary["title"].as_str().unwrap().contains("messages given up on"),
        "{summary}"
    );
    relay.terminate().await;
}

/// Two relays on one PostgreSQL queue: a condition both see is announced once, and so is its
/// end.
#[tokio::test(flavor = "multi_thread")]
async fn relays_sharing_postgres_announce_a_condition_once() {
    let Some(url) = crate::relay_postgres::database("relays_sharing_postgres_announce_a_condition_once") else {
        return;
    };
    let mut world = World::start_with(unlimited).await;
    world.set("M365_MAILER_QUEUE_URL", &url);
    let receiver = Receiver::start(0, Received::default()).await;
    let alerting = "account_unavailable_after = \"1s\"\nqueue_depth_over = 2\nsummary_window = \"1s\"\n";
    let text = config(&mut world, &receiver, alerting, &[FORMATS[0]]);
    let (a, b) = (world.relay(&text).await, world.relay(&text).await);
    let faults = world.emulator.faults();
    faults.add(Fault::drop_connection(Stage::Connect)).unwrap();
    for (i, relay) in [&a, &b, &a, &b].into_iter().enumerate() {
        submit(
            relay.addr().port(),
            &["erin@fabrikam.com"],
            &complete_message(&format!("shared {i}")),
        );
    }
    let received = Arc::clone(&receiver.received);
    let got = |kind: &'static str| move |all: &[(String, Value)]| all.iter().any(|(_, b)| b["kind"] == kind);
    wait_until("unavailable", &received, got("account-unavailable")).await;
    wait_until("deep", &received, got("queue-deep")).await;
    faults.clear();
    wait_until("recovered", &received, got("account-recovered")).await;
    wait_until("resolved", &received, got("queue-deep-resolved")).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut kinds: Vec<String> = receiver.kinds("/json").into_iter().map(|(k, _)| k).collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "account-recovered",
            "account-unavailable",
            "queue-deep",
            "queue-deep-resolved"
        ],
        "each once, from either relay"
    );
    a.terminate().await;
    b.terminate().await;
}
