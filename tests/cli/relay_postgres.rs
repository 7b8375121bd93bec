//! Relays sharing a PostgreSQL queue, as the real binary runs them, on the private server
//! `.ci/postgres` starts. Without one the tests say so and are skipped; in CI they fail.

use std::time::Duration;

use m365_emulator::fixture::MAILBOX;

use crate::support::{World, admin_get, relay_queue_id, submit};

/// A fresh database on the test server: its URL (verified TLS), or `None` without a server.
fn database(test: &str) -> Option<String> {
    let Some(admin) = std::env::var("M365_TEST_POSTGRES_URL").ok().filter(|u| !u.is_empty()) else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{test}: CI=true but M365_TEST_POSTGRES_URL is not set: .ci/postgres starts the server"
        );
        eprintln!("{test}: skipped, no PostgreSQL (set M365_TEST_POSTGRES_URL; .ci/postgres starts one)");
        return None;
    };
    let ca = std::env::var("M365_TEST_POSTGRES_CA").expect("M365_TEST_POSTGRES_CA");
    let name = format!("m365_relay_{}", uuid::Uuid::new_v4().simple());
    let out = std::process::Command::new("psql")
        .arg(format!("{admin}?sslmode=verify-full&sslrootcert={ca}"))
        .args(["-Atc", &format!("CREATE DATABASE {name}")])
        .output()
        .expect("psql runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (base, _) = admin.rsplit_once('/').expect("postgres://…/database");
    Some(format!("{base}/{name}?sslrootcert={ca}"))
}

/// One connection each, so two relays stay within Exchange's 3 per mailbox (the limits are
/// not yet shared across relays), and no rate limit in the way.
const RELAY: &str = r#"
[relay]
hostname = "relay.test"

[[relay.listen]]
address = "127.0.0.1:0"

[relay.delivery]
connections_per_account = 1
messages_per_minute = 1000000
recipients_per_day = 100000000
"#;

/// Two relays on one database: messages handed to either are delivered once each, the queue's
/// metrics count the shared queue, and the password in the URL never reaches the log.
#[tokio::test(flavor = "multi_thread")]
async fn two_relays_share_one_postgres_queue_and_deliver_each_message_once() {
    let Some(url) = database("two_relays_share_one_postgres_queue_and_deliver_each_message_once") else {
        return;
    };
    let mut world = World::start_with(|s| {
        s.exchange.messages_per_minute = 1_000_000;
        s.exchange.recipients_per_day = 100_000_000;
    })
    .await;
    world.set("M365_MAILER_QUEUE_URL", &url);
    let first = world.relay(RELAY).await;
    let second = world.relay(RELAY).await;
    assert!(first.log_text().contains("queue opened"), "{}", first.log_text());
    for i in 0..20 {
        let relay = if i % 2 == 0 { &first } else { &second };
        let content = format!("From: {MAILBOX}\r\nSubject: shared {i}\r\n\r\nbody {i}\r\n");
        submit(relay.addr().port(), &["bob@fabrikam.com"], content.as_bytes());
    }
    let arrived = world.wait_for_messages(20, Duration::from_secs(30)).await;
    assert_eq!(
        arrived,
        20,
        "first:\n{}\nsecond:\n{}",
        first.log_text(),
        second.log_text()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let delivered = world.emulator.store().messages();
    let mut ids: Vec<String> = delivered.iter().filter_map(|m| relay_queue_id(&m.data)).collect();
    ids.sort();
    ids.dedup();
    assert_eq!((delivered.len(), ids.len()), (20, 20), "each message once");
    let (status, metrics) = admin_get(&first, "/metrics").await;
    assert_eq!(status, 200);
    assert!(metrics.contains("m365_relay_queue_depth 0"), "{metrics}");
    let password = url
        .split(':')
        .nth(2)
        .and_then(|p| p.split('@').next())
        .unwrap_or_default();
    for relay in [&first, &second] {
        let log = relay.log_text();
        assert!(log.contains(":***@127.0.0.1"), "the URL is shown masked:\n{log}");
        assert!(
            password.is_empty() || !log.contains(password),
            "the password is never logged:\n{log}"
        );
    }
}
