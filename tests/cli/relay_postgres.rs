//! Relays sharing a PostgreSQL queue, as the real binary runs them, on the private server
//! `.ci/postgres` starts. Without one the tests say so and are skipped; in CI they fail.

use std::time::Duration;

use m365_emulator::fixture::MAILBOX;

use crate::support::{World, admin_get, relay_queue_id, submit};

/// A fresh database on the test server: its URL (verified TLS), or `None` without a server.
pub(crate) fn database(test: &str) -> Option<String> {
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

/// Exchange's 3 connections per mailbox, held by the relays together, and no rate limit in the
/// way.
const RELAY: &str = r#"
[relay]
hostname = "relay.test"

[[relay.listen]]
address = "127.0.0.1:0"

[relay.delivery]
messages_per_minute = 1000000
recipients_per_day = 100000000
"#;

/// Exchange without its rate limits, as [`RELAY`] has none.
fn unlimited(s: &mut m365_emulator::Scenario) {
    s.exchange.messages_per_minute = 1_000_000;
    s.exchange.recipients_per_day = 100_000_000;
}

/// Two relays on one database: messages handed to either are delivered once each, the queue's
/// metrics count the shared queue, and the password in the URL never reaches the log.
#[tokio::test(flavor = "multi_thread")]
async fn two_relays_share_one_postgres_queue_and_deliver_each_message_once() {
    let Some(url) = database("two_relays_share_one_postgres_queue_and_deliver_each_message_once") else {
        return;
    };
    let mut world = World::start_with(unlimited).await;
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

/// A TCP proxy in front of the database that the test can cut and restore, so the database
/// "goes down" for this relay alone while the server keeps serving the other tests.
struct Cable {
    port: u16,
    upstream: std::net::SocketAddr,
    tasks: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Cable {
    async fn to(upstream: std::net::SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cable = Self {
            port,
            upstream,
            tasks: Default::default(),
        };
        cable.serve(listener);
        cable
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let (upstream, tasks) = (self.upstream, std::sync::Arc::clone(&self.tasks));
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let relay = tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                tasks.lock().unwrap().push(relay);
            }
        });
        self.tasks.lock().unwrap().push(accept);
    }

    /// Every connection through it is dropped, and new ones are refused.
    fn cut(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    /// Connections go through again, on the same port.
    async fn restore(&self) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port)).await.unwrap();
        self.serve(listener);
    }
}

/// Hands one message to the relay with smtplib: `250`, or the code and text of the refusal.
async fn try_submit(relay: &crate::support::RelayProcess) -> String {
    let port = relay.addr().port();
    const SCRIPT: &str = r#"
import smtplib, sys
try:
    with smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=30) as s:
        s.sendmail("mailer@contoso.com", ["bob@fabrikam.com"], b"From: mailer@contoso.com\r\nSubject: db\r\n\r\nbody\r\n")
    print("250")
except smtplib.SMTPResponseException as e:
    print(e.smtp_code, e.smtp_error.decode())
"#;
    // Not a blocking wait: the cable's tasks run on this runtime.
    let out = tokio::process::Command::new(crate::support::python())
        .args(["-c", SCRIPT, &port.to_string()])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}\nrelay:\n{}",
        String::from_utf8_lossy(&out.stderr),
        relay.log_text()
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The database goes away mid-load and comes back: while it is away new mail gets `451 4.3.0`
/// (never a `250` that is not stored) and `/readyz` says why; afterwards everything resumes by
/// itself and nothing acknowledged is lost.
#[tokio::test(flavor = "multi_thread")]
async fn the_database_going_away_refuses_mail_with_451_and_everything_resumes() {
    let Some(url) = database("the_database_going_away_refuses_mail_with_451_and_everything_resumes") else {
        return;
    };
    let server: std::net::SocketAddr = url
        .split('@')
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|hostport| hostport.parse().ok())
        .expect("the test URL names 127.0.0.1:port");
    let cable = Cable::to(server).await;
    let through = url.replace(&server.to_string(), &format!("127.0.0.1:{}", cable.port));
    let mut world = World::start_with(unlimited).await;
    world.set("M365_MAILER_QUEUE_URL", &through);
    let relay = world.relay(RELAY).await;
    for _ in 0..3 {
        assert_eq!(try_submit(&relay).await, "250");
    }
    assert_eq!(world.wait_for_messages(3, Duration::from_secs(20)).await, 3);

    cable.cut();
    let refused = try_submit(&relay).await;
    assert!(refused.starts_with("451 4.3.0 Message not stored"), "{refused}");
    assert!(
        !refused.contains("127.0.0.1"),
        "the client is not told where the database is: {refused}"
    );
    let (status, body) = admin_get(&relay, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("\"queue\""), "{body}");
    // A lost connection costs nothing while it is down (a listener once spun on its error,
    // taking a core and gigabytes).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let status = std::fs::read_to_string(format!("/proc/{}/status", relay.pid())).unwrap_or_default();
    let rss_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    assert!(
        rss_kib < 200 * 1024,
        "{rss_kib} KiB resident while the database is away"
    );

    cable.restore().await;
    let mut accepted = 3;
    let resumed = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if try_submit(&relay).await == "250" {
                accepted += 1;
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    assert!(resumed.is_ok(), "the relay takes mail again:\n{}", relay.log_text());
    assert_eq!(
        world.wait_for_messages(accepted, Duration::from_secs(20)).await,
        accepted
    );
    let (status, body) = admin_get(&relay, "/readyz").await;
    assert_eq!(status, 200, "{body}");
}

/// An operator moves a running installation to PostgreSQL: the SQLite relay stops with a
/// message it could not deliver yet, `queue migrate` moves it, and a relay on PostgreSQL
/// delivers it once; migrating again finds nothing left to move.
#[tokio::test(flavor = "multi_thread")]
async fn queue_migrate_moves_what_a_sqlite_relay_left_and_a_postgres_relay_delivers_it() {
    let Some(url) = database("queue_migrate_moves_what_a_sqlite_relay_left") else {
        return;
    };
    let mut world = World::start().await;
    let exchange_port = world.emulator.smtp_addr().port().to_string();
    // Exchange unreachable for the first relay: the message waits in its SQLite queue.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port().to_string();
    drop(closed);
    world.set("M365_MAILER_SMTP_PORT", &closed_port);
    let quick = format!("{RELAY}retry_initial = \"200ms\"\n");
    let sqlite = world.relay(&quick).await;
    let content = format!("From: {MAILBOX}\r\nSubject: moved\r\n\r\nx\r\n");
    submit(sqlite.addr().port(), &["bob@fabrikam.com"], content.as_bytes());
    sqlite.wait_for_log("deferred", Duration::from_secs(20)).await;
    assert!(sqlite.terminate().await.success());

    let queue_dir = world.dir.path().join("queue");
    let dir = queue_dir.to_str().unwrap();
    let out = world
        .run(&["queue", "migrate", "--queue-dir", dir, "--to", &url], b"")
        .await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        text.starts_with("1 waiting messages and 0 dead letters moved from"),
        "{text}"
    );
    assert!(
        !text.contains(url.split('@').next().unwrap_or_default()),
        "no password: {text}"
    );
    let again = world
        .run(&["queue", "migrate", "--queue-dir", dir, "--to", &url], b"")
        .await;
    assert_eq!(
        again.status.code(),
        Some(74),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert!(String::from_utf8_lossy(&again.stderr).contains("no queue here (already migrated"));

    // The queue commands read the PostgreSQL queue the environment names.
    world.set("M365_MAILER_QUEUE_URL", &url);
    let listed = world.run(&["queue"], b"").await;
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));
    assert!(text.contains("-- 1 message,"), "{text}");
    world.set("M365_MAILER_SMTP_PORT", &exchange_port);
    let postgres = world.relay(&quick).await;
    assert_eq!(
        world.wait_for_messages(1, Duration::from_secs(20)).await,
        1,
        "{}",
        postgres.log_text()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(world.emulator.store().len(), 1, "delivered once");
}
