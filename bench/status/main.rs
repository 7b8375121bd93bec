//! Status page benchmark: how long the relay takes to answer `GET /` with 10,000 messages
//! waiting and 1,000 dead letters (the goal: under 200 ms), and with a search and a page deep
//! into the queue.
//!
//! The real release binary, its SQLite queue filled the way it fills in production: messages
//! handed in over SMTP, the first 1,000 refused by the emulator for good (dead letters), the
//! rest deferred (`451`, retried in an hour, so they wait). Then 50 requests of each kind, one
//! at a time, timed from the request to the last byte of the page.
//!
//! `cargo build --release && cargo bench --bench status` (nothing to install).

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use m365_emulator::fixture::{CLIENT, MAILBOX, TENANT};
use m365_emulator::{Emulator, Fault, Options, Stage};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;

const SECRET: &str = "Xq58Q~bench.secret";
const DEAD: usize = 1_000;
const WAITING: usize = 10_000;
const SESSIONS: usize = 8;
const REQUESTS: usize = 50;
const GOAL_MS: f64 = 200.0;

fn clock() -> std::time::Instant {
    #[allow(clippy::disallowed_methods)] // a benchmark measures wall time
    std::time::Instant::now()
}

fn main() {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(run());
}

async fn run() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let binary = root.join("target/release/m365-mailer");
    assert!(
        binary.is_file(),
        "{} is missing: run `cargo build --release` first",
        binary.display()
    );
    let mut scenario = m365_emulator::fixture::contoso(SECRET, None);
    scenario.exchange.messages_per_minute = 100_000_000;
    scenario.exchange.recipients_per_day = 100_000_000;
    let emulator = Emulator::start(Options::new(scenario))
        .await
        .expect("the emulator starts");
    emulator
        .faults()
        .add(Fault::reply(Stage::DataEnd, "550 5.7.1 Refused for the benchmark").times(DEAD as u32))
        .unwrap();
    emulator
        .faults()
        .add(Fault::reply(Stage::DataEnd, "451 4.3.2 Deferred for the benchmark"))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, emulator.ca_pem()).unwrap();
    let (smtp, admin) = (free_port(), free_port());
    let config = dir.path().join("relay.toml");
    std::fs::write(
        &config,
        format!(
            "[relay]\nmax_connections_per_client = 100\n[[relay.listen]]\naddress = \"127.0.0.1:{smtp}\"\n\n\
             [relay.delivery]\nmessages_per_minute = 100000000\nrecipients_per_day = 100000000\nretry_initial = \"1h\"\n"
        ),
    )
    .unwrap();
    let mut relay = tokio::process::Command::new(&binary)
        .args(["relay", "--config"])
        .arg(&config)
        .arg("--queue-dir")
        .arg(dir.path().join("queue"))
        .args(["--admin", &format!("127.0.0.1:{admin}")])
        .env("AZURE_TENANT_ID", TENANT)
        .env("AZURE_CLIENT_ID", CLIENT)
        .env("AZURE_CLIENT_SECRET", SECRET)
        .env("M365_MAILER_MAILBOX", MAILBOX)
        .env("M365_MAILER_TOKEN_ENDPOINT", emulator.token_endpoint(TENANT))
        .env("M365_MAILER_SMTP_HOST", emulator.smtp_addr().ip().to_string())
        .env("M365_MAILER_SMTP_PORT", emulator.smtp_addr().port().to_string())
        .env("M365_MAILER_CA_FILE", &ca)
        .env("M365_MAILER_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the relay starts");
    wait_for_port(smtp).await;
    let base = format!("http://127.0.0.1:{admin}");

    let filling = clock();
    let total = DEAD + WAITING;
    let sessions: Vec<_> = (0..SESSIONS)
        .map(|s| tokio::spawn(submit(smtp, total / SESSIONS + usize::from(s < total % SESSIONS))))
        .collect();
    for session in sessions {
        session.await.unwrap();
    }
    // Every message has had its one attempt: the dead letters are in, the rest wait.
    let http = reqwest::Client::new();
    loop {
        let metrics = http
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let value = |name: &str| {
            metrics
                .lines()
                .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        let deferred = metrics
            .lines()
            .filter_map(|l| l.strip_prefix("m365_relay_messages_deferred_total{")?.rsplit_once(' '))
            .filter_map(|(_, v)| v.trim().parse::<f64>().ok())
            .sum::<f64>();
        if value("m365_relay_dead_letters ") >= DEAD as f64 && deferred >= WAITING as f64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "queue filled in {:.1} s: {WAITING} waiting, {DEAD} dead letters",
        filling.elapsed().as_secs_f64()
    );

    println!("\n| request | p50 ms | p99 ms | max ms | page KiB |\n|---|---|---|---|---|");
    let mut worst = 0.0f64;
    for (what, path) in [
        ("the page", "/".to_owned()),
        ("page 150 of the queue", "/?page=150".to_owned()),
        ("a search that matches nothing", "/?q=nobody%40nowhere".to_owned()),
    ] {
        let mut times = Vec::with_capacity(REQUESTS);
        let mut size = 0;
        for _ in 0..REQUESTS {
            let started = clock();
            let page = http
                .get(format!("{base}{path}"))
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            times.push(started.elapsed().as_secs_f64() * 1000.0);
            size = page.len();
        }
        times.sort_by(f64::total_cmp);
        let at = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)];
        worst = worst.max(at(0.99));
        println!(
            "| {what} | {:.1} | {:.1} | {:.1} | {} |",
            at(0.5),
            at(0.99),
            times[times.len() - 1],
            size / 1024
        );
    }
    println!(
        "\ngoal: under {GOAL_MS} ms with {WAITING} waiting and {DEAD} dead letters: {}",
        if worst < GOAL_MS { "met (p99)" } else { "NOT met (p99)" }
    );
    let _ = relay.kill().await;
}

/// One SMTP session handing in `count` messages, one at a time.
async fn submit(port: u16, count: usize) {
    let stream = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .unwrap();
    let mut conn = BufReader::new(stream);
    reply(&mut conn).await;
    command(&mut conn, "EHLO bench.local\r\n").await;
    for i in 0..count {
        command(&mut conn, &format!("MAIL FROM:<{MAILBOX}>\r\n")).await;
        command(&mut conn, &format!("RCPT TO:<customer{i}@fabrikam.com>\r\n")).await;
        command(&mut conn, "DATA\r\n").await;
        let body = format!(
            "From: {MAILBOX}\r\nTo: customer{i}@fabrikam.com\r\nSubject: status bench {i}\r\n\r\nbody\r\n.\r\n"
        );
        let code = command(&mut conn, &body).await;
        assert_eq!(code, 250, "message {i} not accepted");
    }
    command(&mut conn, "QUIT\r\n").await;
}

async fn command(conn: &mut BufReader<TcpStream>, text: &str) -> u16 {
    conn.get_mut().write_all(text.as_bytes()).await.unwrap();
    reply(conn).await
}

/// The reply's code (the last line of a multi-line reply).
async fn reply(conn: &mut BufReader<TcpStream>) -> u16 {
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            conn.read_line(&mut line).await.unwrap() > 0,
            "the relay closed the connection"
        );
        if line.as_bytes().get(3) != Some(&b'-') {
            return line.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn wait_for_port(port: u16) {
    for _ in 0..300 {
        if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the relay does not listen on {port}");
}
