//! Three relays on one PostgreSQL queue, as operators run them behind a load balancer: the
//! mailbox's limits hold for the three together, and an instance killed mid-load loses no
//! acknowledged message.

use std::time::Duration;

use m365_emulator::fixture::MAILBOX;

use crate::relay_postgres::database;
use crate::support::{RelayProcess, World};

/// The subject of every message the emulator received, in the order it received them, with
/// when.
fn received(world: &World) -> Vec<(String, time::OffsetDateTime)> {
    let mut messages: Vec<_> = world
        .emulator
        .store()
        .messages()
        .iter()
        .map(|m| {
            let text = String::from_utf8_lossy(&m.data);
            let subject = text
                .lines()
                .find_map(|l| l.strip_prefix("Subject: "))
                .unwrap_or_default()
                .to_owned();
            (subject, m.received_at)
        })
        .collect();
    messages.sort_by_key(|(_, at)| *at);
    messages
}

/// One client session: `count` messages on one connection to `port`, `pause_ms` apart; prints
/// the subjects that got `250`, one per line, and stops at the first lost connection.
const SESSION: &str = r#"
import smtplib, sys, time
port, name, count, pause, sender = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4]) / 1000, sys.argv[5]
try:
    s = smtplib.SMTP("127.0.0.1", port, timeout=30)
    for i in range(count):
        subject = f"load {name}-{i}"
        body = f"From: {sender}\r\nSubject: {subject}\r\n\r\nbody\r\n".encode()
        try:
            s.sendmail(sender, ["bob@fabrikam.com"], body)
        except smtplib.SMTPResponseException as e:
            print(f"refused {subject} {e.smtp_code}", file=sys.stderr)
            continue
        print(subject, flush=True)
        time.sleep(pause)
    s.quit()
except (OSError, smtplib.SMTPException) as e:
    print(f"session ended: {e!r}", file=sys.stderr)
"#;

fn session(relay: &RelayProcess, name: &str, count: usize, pause_ms: u64) -> tokio::process::Child {
    tokio::process::Command::new(crate::support::python())
        .args(["-c", SESSION, &relay.addr().port().to_string(), name])
        .args([count.to_string(), pause_ms.to_string(), MAILBOX.to_owned()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python runs")
}

/// What a session was told: the subjects acknowledged with `250`.
async fn acknowledged(child: tokio::process::Child) -> Vec<String> {
    let out = child.wait_with_output().await.expect("the session ends");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Messages per window for both sides, and its length.
const LIMIT: usize = 5;
const WINDOW: Duration = Duration::from_secs(3);

/// Three relays, three workers each, one mailbox whose limits are shortened to 5 messages in 3
/// seconds: the emulator never sees more than 5 in any 3 seconds nor more than 3 connections,
/// never has to delay or refuse, and the three together still send at ≥ 95 % of the rate.
#[tokio::test(flavor = "multi_thread")]
async fn three_relays_keep_the_mailboxs_limits_together_at_full_rate() {
    let Some(url) = database("three_relays_keep_the_mailboxs_limits_together_at_full_rate") else {
        return;
    };
    let mut world = World::start_with(|s| {
        s.exchange.messages_per_minute = LIMIT as u32;
        s.exchange.time_scale = 60.0 / WINDOW.as_secs_f64();
    })
    .await;
    world.set("M365_MAILER_QUEUE_URL", &url);
    let config = format!(
        r#"
[relay]
hostname = "relay.test"

[[relay.listen]]
address = "127.0.0.1:0"

[relay.delivery]
connections_per_account = 3
messages_per_minute = {LIMIT}
rate_window = "{}s"
"#,
        WINDOW.as_secs()
    );
    let relays = [
        world.relay(&config).await,
        world.relay(&config).await,
        world.relay(&config).await,
    ];
    const MESSAGES: usize = 40;
    let sessions: Vec<_> = (0..4)
        .map(|i| session(&relays[i % 3], &format!("s{i}"), MESSAGES / 4, 0))
        .collect();
    let mut sent = Vec::new();
    for s in sessions {
        sent.extend(acknowledged(s).await);
    }
    assert_eq!(sent.len(), MESSAGES);
    let logs = || {
        relays
            .iter()
            .map(RelayProcess::log_text)
            .collect::<Vec<_>>()
            .join("\n---\n")
    };
    assert_eq!(
        world.wait_for_messages(MESSAGES, Duration::from_secs(60)).await,
        MESSAGES,
        "{}",
        logs()
    );

    let messages = received(&world);
    let times: Vec<_> = messages.iter().map(|(_, at)| *at).collect();
    let crowded = (LIMIT..times.len())
        .filter(|&i| times[i] - times[i - LIMIT] < WINDOW)
        .count();
    // The rate the limit allows: message i no sooner than a window after message i − 5. From
    // the first window's last message on, so that opening the connections does not count.
    let span: Duration = (times[MESSAGES - 1] - times[LIMIT - 1]).try_into().unwrap();
    let ideal = WINDOW * u32::try_from((MESSAGES - LIMIT) / LIMIT).unwrap();
    let rate = ideal.as_secs_f64() / span.as_secs_f64();
    let stats = world.emulator.stats();
    let peak = stats.peak_connections.get(MAILBOX).copied().unwrap_or(0);
    eprintln!(
        "joint limits: the last {} messages in {span:?} (fastest allowed {ideal:?}): {:.1} % of the rate; \
         windows over the limit: {crowded}; peak connections: {peak}; delays: {}; refusals: {}",
        MESSAGES - LIMIT,
        rate * 100.0,
        stats.throttle.rate_delays,
        stats.throttle.thread_limit + stats.throttle.quota
    );
    assert_eq!(crowded, 0, "no more than {LIMIT} in any {WINDOW:?}: {times:?}");
    assert_eq!(stats.throttle.rate_delays, 0, "Exchange never had to delay a message");
    assert_eq!(stats.throttle.thread_limit, 0, "nor refuse a connection");
    assert!(peak <= 3, "{peak} connections at once");
    assert!(rate >= 0.95, "{:.1} % of the allowed rate\n{}", rate * 100.0, logs());
}

/// Eight client sessions load three relays; one relay is killed with SIGKILL mid-load. Every
/// message that got a `250` is delivered, exactly once, or twice for the few the killed relay
/// had in flight; none is lost.
#[tokio::test(flavor = "multi_thread")]
async fn a_relay_killed_mid_load_loses_no_acknowledged_message() {
    let Some(url) = database("a_relay_killed_mid_load_loses_no_acknowledged_message") else {
        return;
    };
    let mut world = World::start_with(|s| {
        s.exchange.messages_per_minute = 1_000_000;
        s.exchange.recipients_per_day = 100_000_000;
        // Deliveries take a moment, so the killed relay has some in flight.
        s.latency.smtp_command_ms = 20;
    })
    .await;
    world.set("M365_MAILER_QUEUE_URL", &url);
    let config = r#"
[relay]
hostname = "relay.test"

[[relay.listen]]
address = "127.0.0.1:0"

[relay.delivery]
connections_per_account = 3
messages_per_minute = 1000000
recipients_per_day = 100000000
lease_time = "3s"
"#;
    let mut relays = vec![
        world.relay(config).await,
        world.relay(config).await,
        world.relay(config).await,
    ];
    const PER_SESSION: usize = 40;
    let sessions: Vec<_> = (0..8)
        .map(|i| session(&relays[i % 3], &format!("s{i}"), PER_SESSION, 15))
        .collect();
    // Mid-load: the first deliveries are through, the sessions still sending.
    world.wait_for_messages(20, Duration::from_secs(20)).await;
    let killed = relays.remove(0);
    killed.kill().await;
    let mut acked = Vec::new();
    for s in sessions {
        acked.extend(acknowledged(s).await);
    }
    let logs = || {
        relays
            .iter()
            .map(RelayProcess::log_text)
            .collect::<Vec<_>>()
            .join("\n---\n")
    };
    assert!(acked.len() > 100, "the sessions got through: {}", acked.len());

    // Everything acknowledged arrives: what the dead relay leased, once its leases run out.
    let all_there = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let got: std::collections::HashSet<String> = received(&world).into_iter().map(|(s, _)| s).collect();
            if acked.iter().all(|s| got.contains(s)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut copies = std::collections::HashMap::<String, usize>::new();
    for (subject, _) in received(&world) {
        *copies.entry(subject).or_default() += 1;
    }
    let lost: Vec<_> = acked.iter().filter(|s| !copies.contains_key(*s)).collect();
    let once = acked.iter().filter(|s| copies.get(*s) == Some(&1)).count();
    let twice = acked.iter().filter(|s| copies.get(*s) == Some(&2)).count();
    let more = acked.iter().filter(|s| copies.get(*s).is_some_and(|n| *n > 2)).count();
    let unacknowledged = copies.keys().filter(|s| !acked.contains(s)).count();
    eprintln!(
        "SIGKILL under load: {} acknowledged; delivered once {once}, twice {twice}, more {more}, lost {}; \
         delivered without a 250 (in flight at the kill): {unacknowledged}",
        acked.len(),
        lost.len()
    );
    assert!(all_there.is_ok() && lost.is_empty(), "lost: {lost:?}\n{}", logs());
    assert_eq!(more, 0);
    // At most what the killed relay had in flight: one message per connection it held.
    assert!(twice <= 3, "{twice} delivered twice");
    assert_eq!(once + twice, acked.len());
}
