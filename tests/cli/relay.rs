//! The relay as a real process: clients nobody here wrote (Python's smtplib, curl, swaks,
//! Postfix's smtp-source) hand it mail over TCP and TLS, and it delivers to the emulator.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::support::*;

/// An Exchange without limits, for tests that are not about them.
fn unlimited(s: &mut m365_emulator::Scenario) {
    s.exchange.messages_per_minute = 1_000_000;
    s.exchange.recipients_per_day = 100_000_000;
}

/// Relay limits to match.
const FAST_DELIVERY: &str = "[relay.delivery]\nmessages_per_minute = 1000000\nrecipients_per_day = 100000000\n";

/// One upstream connection, so which connection a message takes is known.
const ONE_CONNECTION: &str =
    "[[relay.listen]]\naddress = \"127.0.0.1:0\"\n\n[relay.delivery]\nconnections_per_account = 1\n";

fn python_send(script: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(python())
        .arg("-c")
        .arg(script)
        .args(args)
        .env_remove("REQUESTS_CA_BUNDLE")
        .output()
        .unwrap()
}

const SMTPLIB: &str = r#"
import hashlib, smtplib, ssl, sys
mode, host, port, user, password, sender, rcpt = sys.argv[1:8]
msg = f"From: {sender}\r\nTo: {rcpt}\r\nSubject: smtplib {mode}\r\nMessage-ID: <{mode}@python>\r\n\r\nHello from smtplib ({mode}).\r\n.dot line\r\n"
if mode == "implicit":
    ctx = ssl._create_unverified_context()
    s = smtplib.SMTP_SSL(host, int(port), context=ctx, timeout=20)
else:
    s = smtplib.SMTP(host, int(port), timeout=20)
s.ehlo("python.test")
if mode in ("starttls", "implicit"):
    if mode == "starttls":
        s.starttls(context=ssl._create_unverified_context())
        s.ehlo("python.test")
    der = s.sock.getpeercert(binary_form=True)
    print(":".join(f"{b:02X}" for b in hashlib.sha256(der).digest()))
if user != "-":
    s.login(user, password)
refused = s.sendmail(sender, [rcpt], msg)
assert not refused, refused
s.quit()
"#;

#[tokio::test(flavor = "multi_thread")]
async fn real_clients_deliver_through_the_relay_exactly_once() {
    let Some(swaks) = program("swaks") else { return };
    let Some(curl) = program("curl") else { return };
    let world = World::start().await;
    let password = "Scanner-pw-42";
    let relay = world
        .relay(&format!(
            r#"
[relay]
hostname = "relay.test"

[[relay.listen]]
address = "127.0.0.1:0"

[[relay.listen]]
address = "127.0.0.1:0"
tls = "starttls"

[[relay.listen]]
address = "127.0.0.1:0"
tls = "implicit"

[[relay.users]]
name = "scanner"
password_hash = "{}"

[[relay.allow]]
networks = ["127.0.0.1/32"]
"#,
            hash(&world, password).await
        ))
        .await;
    let [plain, starttls, implicit] = relay.addresses[..] else {
        panic!("three listeners: {:?}", relay.addresses)
    };
    let log = relay.log_text();
    let fingerprint = log
        .lines()
        .find(|l| l.contains("TLS certificate (SHA-256)"))
        .and_then(|l| l.split("fingerprint=").nth(1))
        .map(|f| f.split_whitespace().next().unwrap().to_owned())
        .unwrap_or_else(|| panic!("the fingerprint is logged:\n{log}"));

    let port = |a: std::net::SocketAddr| a.port().to_string();
    let cases: [(&str, String, &str); 4] = [
        ("plain", port(plain), "-"),
        ("plain-auth", port(plain), "scanner"),
        ("starttls", port(starttls), "scanner"),
        ("implicit", port(implicit), "scanner"),
    ];
    for (mode, port, user) in &cases {
        let out = python_send(
            SMTPLIB,
            &[mode, "127.0.0.1", port, user, password, MAILBOX, "bob@fabrikam.com"],
        );
        assert!(
            out.status.success(),
            "smtplib {mode}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if *mode == "starttls" || *mode == "implicit" {
            assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), fingerprint, "{mode}");
        }
    }

    let message = world.file(
        "curl.eml",
        format!(
            "From: {MAILBOX}\r\nTo: carol@fabrikam.com\r\nSubject: curl\r\nMessage-ID: <curl@test>\r\n\r\nfrom curl\r\n"
        ),
    );
    sh(
        &curl,
        &[
            "--silent",
            "--show-error",
            &format!("smtp://127.0.0.1:{}", plain.port()),
            "--mail-from",
            MAILBOX,
            "--mail-rcpt",
            "carol@fabrikam.com",
            "--upload-file",
            message.to_str().unwrap(),
        ],
    );
    sh(
        &swaks,
        &[
            "--server",
            &format!("127.0.0.1:{}", starttls.port()),
            "--tls",
            "--auth",
            "LOGIN",
            "--auth-user",
            "scanner",
            "--auth-password",
            password,
            "--from",
            MAILBOX,
            "--to",
            "dave@fabrikam.com",
            "--header",
            "Message-ID: <swaks@test>",
            "--helo",
            "swaks.test",
        ],
    );

    assert_eq!(
        world.wait_for_messages(6, Duration::from_secs(30)).await,
        6,
        "{}",
        relay.log_text()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let messages = world.emulator.store().messages();
    assert_eq!(messages.len(), 6, "exactly once");
    let mut by_id: HashMap<String, usize> = HashMap::new();
    for m in &messages {
        assert_eq!(m.mailbox, MAILBOX);
        assert_eq!(m.mail_from, MAILBOX);
        let text = String::from_utf8_lossy(&m.data);
        assert!(text.starts_with("Received: from "), "{text}");
        *by_id.entry(relay_queue_id(&m.data).unwrap()).or_default() += 1;
    }
    assert!(by_id.values().all(|n| *n == 1), "{by_id:?}");
    let smtplib = messages
        .iter()
        .find(|m| String::from_utf8_lossy(&m.data).contains("Subject: smtplib starttls"))
        .unwrap();
    let text = String::from_utf8_lossy(&smtplib.data);
    assert!(
        text.contains("with ESMTPSA id") && text.contains("\r\n.dot line\r\n"),
        "{text}"
    );
    let log = relay.log_text();
    assert_eq!(log.matches(" accepted").count(), 6, "{log}");
    assert_eq!(log.matches(" delivered").count(), 6, "{log}");
    assert!(!log.contains(password), "the password never reaches the log");
    assert!(relay.terminate().await.success());
}

/// A local address that is not loopback, when the machine has one.
fn non_loopback_address() -> Option<std::net::IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

const PROBE: &str = r#"
import smtplib, sys, base64
source, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = smtplib.SMTP(host, port, source_address=(source, 0), timeout=20)
code, ehlo = s.ehlo("outsider.test")
print("EHLO", "AUTH" in ehlo.decode())
print("MAIL", *s.docmd("MAIL FROM:<mailer@contoso.com>"))
print("RCPT", *s.docmd("RCPT TO:<victim@fabrikam.com>"))
print("AUTH", *s.docmd("AUTH PLAIN " + base64.b64encode(b"\0scanner\0pw").decode()))
s.quit()
"#;

#[tokio::test(flavor = "multi_thread")]
async fn never_an_open_relay() {
    let world = World::start().await;
    let relay = world
        .relay(&format!(
            r#"
[relay]
plaintext_auth_networks = ["127.0.0.1/32"]

[[relay.listen]]
address = "0.0.0.0:0"

[[relay.users]]
name = "scanner"
password_hash = "{}"

[[relay.allow]]
networks = ["127.0.0.1/32"]
"#,
            hash(&world, "pw").await
        ))
        .await;
    let port = relay.addr().port().to_string();
    let mut sources = vec![("127.0.0.2".to_owned(), "127.0.0.1".to_owned())];
    match non_loopback_address() {
        Some(ip) => sources.push((ip.to_string(), ip.to_string())),
        None => eprintln!("no non-loopback address on this machine: only 127.0.0.2 is tried"),
    }
    for (source, target) in &sources {
        let out = python_send(PROBE, &[source, target, &port]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{source}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains("EHLO False"),
            "AUTH is not offered in the clear to {source}: {text}"
        );
        assert!(
            text.contains(&format!(
                "MAIL 530 b'5.7.0 Authentication required: {source} may not relay"
            )),
            "{source}: {text}"
        );
        assert!(text.contains("RCPT 503"), "{source}: {text}");
        assert!(text.contains("AUTH 538 b'5.7.11"), "{source}: {text}");
    }
    // From the allowed address the same client relays.
    let out = python_send(
        SMTPLIB,
        &["plain", "127.0.0.1", &port, "-", "", MAILBOX, "bob@fabrikam.com"],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(world.wait_for_messages(1, Duration::from_secs(20)).await, 1);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(world.emulator.store().len(), 1, "only the allowed client's message");
    relay.kill().await;
}

/// Queue ids of the messages `smtp-source -v` saw accepted.
fn acknowledged(output: &str) -> Vec<String> {
    output
        .lines()
        .filter_map(|l| l.split("250 2.0.0 Ok: queued as ").nth(1))
        .map(|id| id.trim().to_owned())
        .collect()
}

/// Delivered copies per relay queue id.
fn delivered(world: &World) -> HashMap<String, usize> {
    let mut copies = HashMap::new();
    for m in world.emulator.store().messages() {
        *copies
            .entry(relay_queue_id(&m.data).expect("a Received header"))
            .or_default() += 1;
    }
    copies
}

async fn smtp_source(program: &std::path::Path, addr: std::net::SocketAddr, messages: usize) -> tokio::process::Child {
    tokio::process::Command::new(program)
        .args(["-v", "-d", "-s", "16", "-l", "2048", "-m"])
        .arg(messages.to_string())
        .args(["-M", "source.test", "-f", MAILBOX, "-t", "bob@fabrikam.com"])
        .arg(addr.to_string())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn smtp_source_10000_messages_over_16_sessions_arrive_exactly_once() {
    let Some(source) = program("/usr/sbin/smtp-source") else {
        return;
    };
    let world = World::start_with(unlimited).await;
    let relay = world
        .relay(&format!(
            "[[relay.listen]]\naddress = \"127.0.0.1:0\"\n\n{FAST_DELIVERY}"
        ))
        .await;
    let child = smtp_source(&source, relay.addr(), 10_000).await;
    let out = child.wait_with_output().await.unwrap();
    let text = String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "smtp-source failed: {}",
        &text[text.len().saturating_sub(2000)..]
    );
    let acked = acknowledged(&text);
    assert_eq!(acked.len(), 10_000);
    assert_eq!(
        world.wait_for_messages(10_000, Duration::from_secs(240)).await,
        10_000,
        "{}",
        {
            let log = relay.log_text();
            log[log.len().saturating_sub(3000)..].to_owned()
        }
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let copies = delivered(&world);
    assert_eq!(copies.len(), 10_000);
    assert!(copies.values().all(|n| *n == 1), "every message exactly once");
    assert!(acked.iter().all(|id| copies.contains_key(id)));
    let stats = world.emulator.stats();
    assert!(
        stats.peak_connections.values().all(|n| *n <= 3),
        "{:?}",
        stats.peak_connections
    );
    relay.kill().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_relay_killed_mid_load_loses_nothing_it_acknowledged() {
    let Some(source) = program("/usr/sbin/smtp-source") else {
        return;
    };
    let world = World::start_with(unlimited).await;
    let config = format!("[[relay.listen]]\naddress = \"127.0.0.1:0\"\n\n{FAST_DELIVERY}");
    let relay = world.relay(&config).await;
    let child = smtp_source(&source, relay.addr(), 10_000).await;
    let pid = child.id().expect("running");
    // Its output is read all along: a full pipe would stall it.
    let output = tokio::spawn(child.wait_with_output());
    // Kill the relay once it has accepted a good part of the load and delivered some of it.
    let killed_at = tokio::time::timeout(Duration::from_secs(120), async {
        loop {
            let accepted = relay.log_text().matches(" accepted").count();
            if accepted >= 3_000 {
                return accepted;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the relay accepts messages");
    relay.kill().await;
    let delivered_before_restart = world.emulator.store().len();
    // smtp-source gives up on its broken sessions; make sure it is gone.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _ = std::process::Command::new("kill")
        .arg(pid.to_string())
        .stderr(std::process::Stdio::null())
        .status();
    let out = output.await.unwrap().unwrap();
    let text = String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    let acked = acknowledged(&text);
    assert!(
        acked.len() >= killed_at.min(3_000) - 100,
        "smtp-source saw {} acknowledgements",
        acked.len()
    );

    // Restarted on the same queue, the relay delivers what it had.
    let relay = world.relay(&config).await;
    let log = relay.log_text();
    assert!(log.contains("queue opened"), "{log}");
    let expected = acked.len();
    let _ = tokio::time::timeout(Duration::from_secs(240), async {
        loop {
            let copies = delivered(&world);
            if acked.iter().all(|id| copies.contains_key(id)) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let copies = delivered(&world);
    let lost = acked.iter().filter(|id| !copies.contains_key(*id)).count();
    let duplicated: usize = copies.values().map(|n| n - 1).sum();
    eprintln!(
        "durability: acknowledged {expected}, delivered before the kill {delivered_before_restart}, \
         delivered in all {}, lost {lost}, duplicated {duplicated}",
        copies.len()
    );
    assert_eq!(lost, 0, "every acknowledged message is delivered");
    // Duplicates can only be messages in flight upstream at the kill: at most one per
    // connection.
    assert!(duplicated <= 3, "duplicated {duplicated}");
    relay.kill().await;
}

const BATCH: &str = r#"
import smtplib, sys
host, port, sender, count = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
s = smtplib.SMTP(host, port, timeout=30)
for i in range(count):
    msg = f"From: {sender}\r\nTo: bob@fabrikam.com\r\nSubject: batch {i}\r\nMessage-ID: <batch-{i}@python>\r\n\r\nmessage {i}\r\n"
    s.sendmail(sender, ["bob@fabrikam.com"], msg)
s.quit()
"#;

/// The dead-letter area, read straight from the queue's SQLite file.
fn dead_letters(world: &World) -> Vec<(String, String, String)> {
    let db = rusqlite::Connection::open(world.dir.path().join("queue").join("queue.sqlite3")).unwrap();
    let mut stmt = db.prepare("SELECT recipients, reply, diagnosis FROM dead").unwrap();
    stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn upstream_faults_delay_but_never_lose_mail() {
    use m365_emulator::{Fault, Stage};
    let world = World::start_with(unlimited).await;
    let faults = world.emulator.faults();
    // The token endpoint is down for six requests: longer than one round of the provider's
    // retries.
    faults.add(Fault::http(503, "", None).times(6)).unwrap();
    faults.add(Fault::drop_mid_data(100).times(1)).unwrap();
    faults.add(Fault::drop_connection(Stage::Rcpt).times(1)).unwrap();
    for stage in [Stage::Mail, Stage::Rcpt, Stage::DataEnd] {
        faults
            .add(
                Fault::reply(
                    stage,
                    "451 4.7.500 Server busy. Please try again later. [MW4PR04CA0001]",
                )
                .times(1),
            )
            .unwrap();
    }
    faults
        .add(
            Fault::reply(
                Stage::Connect,
                "421 4.3.2 Service not available, closing transmission channel",
            )
            .times(1),
        )
        .unwrap();
    faults
        .add(Fault::reply(Stage::Ehlo, "421 4.3.2 Service not available").times(1))
        .unwrap();
    faults
        .add(Fault::reply(Stage::Auth, "454 4.7.0 Temporary authentication failure").times(1))
        .unwrap();
    // Throttling: the mailbox pauses for a window (one second here).
    faults
        .add(
            Fault::reply(
                Stage::DataEnd,
                "432 4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded [Hostname=MW4PR04MB7315]",
            )
            .skip(5)
            .times(1),
        )
        .unwrap();
    faults
        .add(
            Fault::reply(
                Stage::Rcpt,
                "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup",
            )
            .skip(3)
            .times(1),
        )
        .unwrap();
    let relay = world
        .relay(&format!(
            "[[relay.listen]]\naddress = \"127.0.0.1:0\"\n\n{FAST_DELIVERY}retry_initial = \"100ms\"\nretry_max = \"1s\"\nrate_window = \"1s\"\n\
             dsn_to = \"postmaster@contoso.com\"\n"
        ))
        .await;
    let out = python_send(BATCH, &["127.0.0.1", &relay.addr().port().to_string(), MAILBOX, "20"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // 19 messages and the notification about the 20th.
    assert_eq!(
        world.wait_for_messages(20, Duration::from_secs(60)).await,
        20,
        "{}",
        relay.log_text()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (reports, messages): (Vec<_>, Vec<_>) = world
        .emulator
        .store()
        .messages()
        .into_iter()
        .partition(|m| m.rcpt_to == ["postmaster@contoso.com"]);
    assert_eq!(messages.len(), 19, "19 delivered, once each");
    assert_eq!(reports.len(), 1);
    let report = String::from_utf8_lossy(&reports[0].data);
    assert!(
        report.contains("report-type=delivery-status")
            && report.contains("Status: 5.1.10")
            && report.contains("Final-Recipient: rfc822; bob@fabrikam.com"),
        "{report}"
    );
    let subjects: std::collections::HashSet<String> = messages
        .iter()
        .map(|m| {
            let text = String::from_utf8_lossy(&m.data);
            text.lines().find(|l| l.starts_with("Subject: ")).unwrap().to_owned()
        })
        .collect();
    assert_eq!(subjects.len(), 19);
    let dead = dead_letters(&world);
    assert_eq!(dead.len(), 1, "{dead:?}");
    let (recipients, reply, diagnosis) = &dead[0];
    assert_eq!(recipients, "[\"bob@fabrikam.com\"]");
    assert!(
        reply.starts_with("550 5.1.10 RESOLVER.ADR.RecipientNotFound"),
        "{reply}"
    );
    assert!(diagnosis.contains("the recipient does not exist"), "{diagnosis}");
    let log = relay.log_text();
    assert!(log.contains("deferred") && log.contains("dead-lettered"), "{log}");
    let stats = world.emulator.stats();
    assert_eq!(stats.faults_fired, 16, "every fault fired");
    assert!(log.contains("sender thread limit exceeded"), "{log}");
    relay.kill().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn exchange_limits_are_kept_and_the_allowed_rate_is_used() {
    // Exchange's limits as they are (30 messages a minute, 3 connections per mailbox), with
    // the minute shortened to one second on both sides so the test takes seconds.
    let world = World::start_with(|s| s.exchange.time_scale = 60.0).await;
    let relay = world
        .relay("[[relay.listen]]\naddress = \"127.0.0.1:0\"\n\n[relay.delivery]\nrate_window = \"1s\"\n")
        .await;
    let out = python_send(BATCH, &["127.0.0.1", &relay.addr().port().to_string(), MAILBOX, "300"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        world.wait_for_messages(300, Duration::from_secs(60)).await,
        300,
        "{}",
        relay.log_text()
    );

    let stats = world.emulator.stats();
    assert_eq!(stats.throttle.rate_delays, 0, "Exchange never had to delay a message");
    assert_eq!(stats.throttle.thread_limit, 0, "no 432 4.3.2");
    assert_eq!(stats.throttle.quota, 0);
    let peak = stats
        .peak_connections
        .get(&MAILBOX.to_ascii_lowercase())
        .copied()
        .unwrap_or_default();
    assert!((1..=3).contains(&peak), "peak connections {peak}");

    let mut times: Vec<time::OffsetDateTime> = world
        .emulator
        .store()
        .messages()
        .iter()
        .map(|m| m.received_at)
        .collect();
    times.sort();
    let window = time::Duration::seconds(1);
    for pair in times.windows(31) {
        assert!(pair[30] - pair[0] >= window, "31 messages within one window");
    }
    // The fastest allowed: 30 at once, then 30 more each window.
    let ideal: time::Duration = window * 9;
    let took = times[299] - times[0];
    let used = ideal.as_seconds_f64() / took.as_seconds_f64();
    eprintln!(
        "limits: 300 messages in {:.3} s (ideal {:.3} s): {:.1} % of the allowed rate, peak {peak} connections",
        took.as_seconds_f64(),
        ideal.as_seconds_f64(),
        used * 100.0
    );
    // Alone on this machine the relay uses 98 %; beside the rest of the suite on two cores,
    // scheduling delays at each of the nine window edges cost a few per cent (93 % seen). What
    // this guards against, a window waited out twice or a wake-up missed, costs half or more.
    assert!(used >= 0.90, "only {:.1} % of the allowed rate used", used * 100.0);
    relay.kill().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn connection_limits_timeouts_and_the_auth_delay() {
    use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
    let world = World::start().await;
    let ipv6 = std::net::TcpListener::bind("[::1]:0").is_ok();
    let relay = world
        .relay(&format!(
            r#"
[relay]
hostname = "relay.test"
max_connections_per_client = 2
command_timeout = "1s"
auth_failure_delay = "300ms"

[[relay.listen]]
address = "127.0.0.1:0"

{}
[[relay.users]]
name = "scanner"
password_hash = "{}"
"#,
            if ipv6 {
                "[[relay.listen]]\naddress = \"[::1]:0\"\n"
            } else {
                ""
            },
            hash(&world, "pw").await
        ))
        .await;
    let addr = relay.addr();
    async fn greeting(addr: std::net::SocketAddr) -> (BufReader<tokio::net::TcpStream>, String) {
        let mut conn = BufReader::new(tokio::net::TcpStream::connect(addr).await.unwrap());
        let mut line = String::new();
        conn.read_line(&mut line).await.unwrap();
        (conn, line)
    }
    let (mut first, banner) = greeting(addr).await;
    assert!(banner.starts_with("220 relay.test "), "{banner}");
    let (_second, banner) = greeting(addr).await;
    assert!(banner.starts_with("220 "), "{banner}");
    let (_, refused) = greeting(addr).await;
    assert_eq!(
        refused,
        "421 4.7.0 Too many connections from your address, try again later\r\n"
    );
    // IPv6: a listener of its own, and another client address.
    if ipv6 {
        let (_, banner) = greeting(relay.addresses[1]).await;
        assert!(banner.starts_with("220 "), "{banner}");
    } else {
        eprintln!("no IPv6 loopback on this machine: the IPv6 listener is not tried");
    }

    // Failed AUTH: after each failure from the address, the next password waits longer before
    // it is checked.
    first.get_mut().write_all(b"EHLO t\r\n").await.unwrap();
    let mut line = String::new();
    while !line.starts_with("250 ") {
        line.clear();
        first.read_line(&mut line).await.unwrap();
    }
    let mut waits = Vec::new();
    for _ in 0..3 {
        let started = m365_emulator::Clock::new().now();
        // \0scanner\0wrong
        first
            .get_mut()
            .write_all(b"AUTH PLAIN AHNjYW5uZXIAd3Jvbmc=\r\n")
            .await
            .unwrap();
        line.clear();
        first.read_line(&mut line).await.unwrap();
        assert!(line.starts_with("535 5.7.8"), "{line}");
        waits.push((m365_emulator::Clock::new().now() - started).as_seconds_f64());
    }
    assert!(
        waits[0] < 0.29 && waits[1] >= 0.29 && waits[2] >= 0.59,
        "delays {waits:?}"
    );

    // An idle session is closed after the command timeout.
    line.clear();
    let read = tokio::time::timeout(Duration::from_secs(5), first.read_line(&mut line)).await;
    assert!(read.is_ok(), "closed within the timeout");
    assert_eq!(line, "421 4.4.2 relay.test Error: timeout exceeded\r\n");
    relay.kill().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pooled_connection_closed_by_exchange_is_replaced_without_deferring() {
    let world = World::start_with(|s| s.exchange.idle_timeout_secs = 1).await;
    let relay = world.relay(ONE_CONNECTION).await;
    let port = relay.addr().port().to_string();
    for (i, expected) in [(0, 1), (1, 2)] {
        let out = python_send(BATCH, &["127.0.0.1", &port, MAILBOX, "1"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(
            world.wait_for_messages(expected, Duration::from_secs(20)).await,
            expected
        );
        if i == 0 {
            // Exchange drops the idle connection the relay keeps for the next message.
            tokio::time::sleep(Duration::from_millis(2500)).await;
        }
    }
    let log = relay.log_text();
    assert!(!log.contains("deferred"), "{log}");
    assert_eq!(
        world.emulator.stats().smtp_connections,
        2,
        "the second message needed a new connection"
    );
    relay.kill().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connection_is_replaced_before_its_token_expires() {
    // Tokens of 65 s: a minute before expiry (after 5 s) a connection is not reused, and the
    // new one authenticates with a new token.
    let world = World::start_with(|s| s.entra.token_lifetime_secs = 65).await;
    let relay = world.relay(ONE_CONNECTION).await;
    let port = relay.addr().port().to_string();
    for expected in [1, 2, 3] {
        let out = python_send(BATCH, &["127.0.0.1", &port, MAILBOX, "1"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(
            world.wait_for_messages(expected, Duration::from_secs(20)).await,
            expected
        );
        if expected == 1 {
            tokio::time::sleep(Duration::from_secs(6)).await;
        }
    }
    let stats = world.emulator.stats();
    assert_eq!(
        stats.auth.succeeded, 2,
        "a new connection and AUTH for the second message only"
    );
    assert_eq!(stats.smtp_connections, 2);
    assert_eq!(stats.tokens_issued(), 2, "the second connection has a token of its own");
    assert!(!relay.log_text().contains("deferred"));
    relay.kill().await;
}

const VERIFIED_STARTTLS: &str = r#"
import smtplib, ssl, sys
port, cafile, sender = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(cafile=cafile)
s = smtplib.SMTP("localhost", port, timeout=20)
s.starttls(context=ctx)
print(s.sock.version())
s.sendmail(sender, ["bob@fabrikam.com"], f"From: {sender}\r\nSubject: verified\r\n\r\nx\r\n")
s.quit()
"#;

const TLS_1_0_STARTTLS: &str = r#"
import smtplib, ssl, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1
s = smtplib.SMTP("localhost", int(sys.argv[1]), timeout=20)
try:
    s.starttls(context=ctx)
    print("handshake succeeded", s.sock.version())
except (ssl.SSLError, OSError) as e:
    print("handshake failed:", e)
"#;

#[tokio::test(flavor = "multi_thread")]
async fn the_operators_certificate_is_served_and_verifies() {
    let world = World::start().await;
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = world.file("relay.crt", generated.cert.pem());
    world.file("relay.key", generated.signing_key.serialize_pem());
    let relay = world
        .relay(
            "[relay]\ncertificate = \"relay.crt\"\nprivate_key = \"relay.key\"\n\n\
             [[relay.listen]]\naddress = \"127.0.0.1:0\"\ntls = \"starttls\"\n",
        )
        .await;
    assert!(relay.log_text().contains("self_signed=false"), "{}", relay.log_text());
    let out = python_send(
        VERIFIED_STARTTLS,
        &[&relay.addr().port().to_string(), cert.to_str().unwrap(), MAILBOX],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("TLSv1."));
    assert_eq!(world.wait_for_messages(1, Duration::from_secs(20)).await, 1);

    // An old device that speaks only TLS 1.0 fails the handshake, and the log says so.
    let out = python_send(TLS_1_0_STARTTLS, &[&relay.addr().port().to_string()]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.starts_with("handshake failed"),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    relay
        .wait_for_log("TLS handshake failed", Duration::from_secs(10))
        .await;

    // A key that does not belong to the certificate: the relay refuses to start, saying why.
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    world.file("relay.key", other.signing_key.serialize_pem());
    relay.kill().await;
    let config = world.relay_config(
        "[relay]\ncertificate = \"relay.crt\"\nprivate_key = \"relay.key\"\n\n\
         [[relay.listen]]\naddress = \"127.0.0.1:0\"\ntls = \"implicit\"\n",
    );
    let queue = world.dir.path().join("queue");
    let args = [
        "relay",
        "--config",
        config.to_str().unwrap(),
        "--queue-dir",
        queue.to_str().unwrap(),
    ];
    let out = world.run(&args, b"").await;
    assert_eq!(out.status.code(), Some(78), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the relay certificate cannot be used"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn each_rule_delivers_through_its_own_account() {
    // Two accounts of the same app: the main mailbox, and a shared mailbox it has FullAccess on.
    let mut world = World::start_with(|s| {
        let shared = s.tenants[0].mailboxes.iter_mut().find(|m| m.address == SHARED).unwrap();
        shared
            .full_access
            .push(m365_emulator::fixture::SERVICE_PRINCIPAL.to_owned());
    })
    .await;
    // Every value in the file: the environment would apply to both accounts.
    let ca = world
        .env
        .iter()
        .find(|(k, _)| k == "M365_MAILER_CA_FILE")
        .unwrap()
        .1
        .clone();
    let account = |mailbox: &str| {
        format!(
            "tenant = \"{TENANT}\"\nclient_id = \"{CLIENT}\"\nclient_secret = \"{SECRET}\"\nmailbox = \"{mailbox}\"\n\
             authority_host = \"{}\"\nsmtp_host = \"{}\"\nsmtp_port = {}\nca_file = \"{ca}\"\n",
            world.emulator.base_url(),
            world.emulator.smtp_addr().ip(),
            world.emulator.smtp_addr().port(),
        )
    };
    let config = format!(
        "default_account = \"main\"\n\n[accounts.main]\n{}\n[accounts.alerts]\n{}\n\
         [[relay.listen]]\naddress = \"127.0.0.1:0\"\n\n\
         [[relay.users]]\nname = \"monitoring\"\npassword_hash = \"{}\"\naccount = \"alerts\"\nrewrite_sender = true\n",
        account(MAILBOX),
        account(SHARED),
        hash(&world, "pw").await
    );
    for key in [
        "AZURE_TENANT_ID",
        "AZURE_CLIENT_ID",
        "AZURE_CLIENT_SECRET",
        "M365_MAILER_MAILBOX",
    ] {
        world.set(key, "");
    }
    for key in [
        "AZURE_AUTHORITY_HOST",
        "M365_MAILER_SMTP_HOST",
        "M365_MAILER_SMTP_PORT",
        "M365_MAILER_CA_FILE",
    ] {
        world.set(key, "");
    }
    let relay = world.relay(&config).await;
    let port = relay.addr().port().to_string();
    // From loopback without AUTH: the default account.
    let out = python_send(
        SMTPLIB,
        &["plain", "127.0.0.1", &port, "-", "", MAILBOX, "bob@fabrikam.com"],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The monitoring user: its account, with the sender rewritten to that mailbox.
    let out = python_send(
        SMTPLIB,
        &[
            "plain-auth",
            "127.0.0.1",
            &port,
            "monitoring",
            "pw",
            "zabbix@monitoring.local",
            "bob@fabrikam.com",
        ],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        world.wait_for_messages(2, Duration::from_secs(20)).await,
        2,
        "{}",
        relay.log_text()
    );
    let mut by_mailbox: Vec<(String, String)> = world
        .emulator
        .store()
        .messages()
        .iter()
        .map(|m| (m.mailbox.clone(), m.mail_from.clone()))
        .collect();
    by_mailbox.sort();
    assert_eq!(
        by_mailbox,
        [
            (SHARED.to_owned(), SHARED.to_owned()),
            (MAILBOX.to_owned(), MAILBOX.to_owned())
        ]
    );
    let rewritten = world.emulator.store().for_mailbox(SHARED);
    let text = String::from_utf8_lossy(&rewritten[0].data);
    assert!(
        text.contains(&format!("From: {SHARED}\r\n")) && text.contains("Reply-To: zabbix@monitoring.local\r\n"),
        "{text}"
    );
    relay.kill().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn queue_commands_beside_a_running_relay() {
    use m365_emulator::{Fault, Stage};
    let world = World::start().await;
    let faults = world.emulator.faults();
    // First message: refused for good; second and third: deferred for an hour.
    faults
        .add(
            Fault::reply(
                Stage::Rcpt,
                "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found",
            )
            .times(1),
        )
        .unwrap();
    faults
        .add(Fault::reply(Stage::DataEnd, "451 4.7.500 Server busy. Please try again later.").times(2))
        .unwrap();
    let relay = world
        .relay("[[relay.listen]]\naddress = \"127.0.0.1:0\"\n\n[relay.delivery]\nconnections_per_account = 1\nretry_initial = \"1h\"\n")
        .await;
    let queue_dir = world.dir.path().join("queue");
    let queue = |args: &[&str]| {
        let mut all = vec!["queue", "--queue-dir", queue_dir.to_str().unwrap()];
        all.extend_from_slice(args);
        all.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let w = &world;
    let run = |args: Vec<String>| async move {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = w.run(&args, b"").await;
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let port = relay.addr().port().to_string();
    let out = python_send(BATCH, &["127.0.0.1", &port, MAILBOX, "3"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let _ = tokio::time::timeout(Duration::from_secs(20), async {
        while relay.log_text().matches(" deferred").count() < 2 || !relay.log_text().contains("dead-lettered") {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;

    let list = run(queue(&["list"])).await;
    assert!(list.contains("-- 2 messages"), "{list}");
    assert!(
        list.contains("451 4.7.500 Server busy") && list.contains("in 59m"),
        "{list}"
    );
    let entries: serde_json::Value = serde_json::from_str(&run(queue(&["list", "--json"])).await).unwrap();
    let ids: Vec<String> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(entries[0]["attempts"], 1);

    let shown = run(queue(&["show", &ids[0][..12]])).await;
    assert!(
        shown.contains(&format!("Queue id:     {}", ids[0])) && shown.contains("Subject: batch"),
        "{shown}"
    );
    assert_eq!(
        run(queue(&["delete", &ids[1]])).await.trim(),
        format!("{}: deleted", ids[1])
    );
    assert_eq!(
        run(queue(&["retry", &ids[0]])).await.trim(),
        format!("{}: due now", ids[0])
    );

    let dead = run(queue(&["dead"])).await;
    assert!(
        dead.contains("550 5.1.10") && dead.contains("-- 1 dead letters"),
        "{dead}"
    );
    let dead_show = run(queue(&["dead", "show", ""])).await;
    assert!(dead_show.contains("the recipient does not exist"), "{dead_show}");
    assert_eq!(
        run(queue(&["dead", "retry", "--all"])).await.trim(),
        "1 dead letters back in the queue, due now"
    );

    // Both go out within the relay's recheck interval: the retried one and the dead letter.
    assert_eq!(
        world.wait_for_messages(2, Duration::from_secs(20)).await,
        2,
        "{}",
        relay.log_text()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(world.emulator.store().len(), 2, "the deleted message never goes out");
    assert_eq!(run(queue(&[])).await, "The queue is empty.\n");
    assert_eq!(run(queue(&["dead", "purge"])).await.trim(), "0 dead letters deleted");

    let missing = world
        .run(
            &queue(&["show", "ffff"]).iter().map(String::as_str).collect::<Vec<_>>(),
            b"",
        )
        .await;
    assert_eq!(missing.status.code(), Some(65));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no message `ffff` in the queue"));
    relay.kill().await;
}

/// `GET http://admin/path`: status and body.
/// The value of one series in a Prometheus exposition.
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn health_readiness_and_metrics_after_a_known_load() {
    use m365_emulator::{Fault, Stage};
    let world = World::start().await;
    world
        .emulator
        .faults()
        .add(
            Fault::reply(
                Stage::Rcpt,
                "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found",
            )
            .times(1),
        )
        .unwrap();
    let relay = world
        .relay("[[relay.listen]]\naddress = \"127.0.0.1:0\"\n\n[relay.delivery]\nconnections_per_account = 1\n")
        .await;
    assert_eq!(admin_get(&relay, "/healthz").await, (200, "ok\n".to_owned()));

    let out = python_send(BATCH, &["127.0.0.1", &relay.addr().port().to_string(), MAILBOX, "5"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(world.wait_for_messages(4, Duration::from_secs(20)).await, 4);
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while !relay.log_text().contains("dead-lettered") {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;

    let (status, ready) = admin_get(&relay, "/readyz").await;
    assert_eq!(status, 200, "{ready}");
    let (status, text) = admin_get(&relay, "/metrics").await;
    assert_eq!(status, 200);
    let account = "{account=\"default\"}";
    assert_eq!(
        metric(&text, &format!("m365_relay_messages_accepted_total{account}")),
        5.0
    );
    assert_eq!(
        metric(&text, &format!("m365_relay_messages_delivered_total{account}")),
        4.0
    );
    assert_eq!(
        metric(&text, &format!("m365_relay_messages_dead_lettered_total{account}")),
        1.0
    );
    assert_eq!(
        metric(
            &text,
            "m365_relay_upstream_replies_total{account=\"default\",code=\"250\"}"
        ),
        4.0
    );
    assert_eq!(
        metric(
            &text,
            "m365_relay_upstream_replies_total{account=\"default\",code=\"550\"}"
        ),
        1.0
    );
    assert_eq!(metric(&text, "m365_relay_delivery_latency_seconds_count"), 4.0);
    assert_eq!(metric(&text, "m365_relay_inbound_connections_total"), 1.0);
    assert_eq!(metric(&text, "m365_relay_auth_failures_total"), 0.0);
    assert_eq!(metric(&text, "m365_relay_queue_depth"), 0.0);
    assert_eq!(metric(&text, "m365_relay_dead_letters"), 1.0);
    assert_eq!(metric(&text, &format!("m365_relay_token_requests_total{account}")), 1.0);
    assert_eq!(metric(&text, &format!("m365_relay_upstream_connections{account}")), 1.0);

    // Exchange unreachable: the next attempt fails and the relay says it is not ready.
    world
        .emulator
        .faults()
        .add(Fault::drop_connection(Stage::Connect).times(100))
        .unwrap();
    world
        .emulator
        .faults()
        .add(Fault::drop_connection(Stage::Mail).times(1))
        .unwrap();
    let out = python_send(BATCH, &["127.0.0.1", &relay.addr().port().to_string(), MAILBOX, "1"]);
    assert!(out.status.success());
    let not_ready = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let (status, body) = admin_get(&relay, "/readyz").await;
            if status == 503 {
                return body;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("readiness turns to 503");
    assert!(
        not_ready.contains("\"ready\":false") && not_ready.contains("the last attempt failed"),
        "{not_ready}"
    );
    let (_, text) = admin_get(&relay, "/metrics").await;
    assert_eq!(metric(&text, "m365_relay_queue_depth"), 1.0);
    assert!(metric(&text, &format!("m365_relay_messages_deferred_total{account}")) >= 1.0);
    relay.kill().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn json_logs_have_one_line_per_accepted_and_delivered_message() {
    let world = World::start().await;
    let config = world.relay_config("[[relay.listen]]\naddress = \"127.0.0.1:0\"\n");
    let relay = world
        .relay_with(&["--config", config.to_str().unwrap(), "--log-format", "json"])
        .await;
    let out = python_send(BATCH, &["127.0.0.1", &relay.addr().port().to_string(), MAILBOX, "1"]);
    assert!(out.status.success());
    assert_eq!(world.wait_for_messages(1, Duration::from_secs(20)).await, 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let events: Vec<serde_json::Value> = relay
        .log_text()
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let find = |message: &str| {
        events
            .iter()
            .find(|e| e["message"] == message)
            .unwrap_or_else(|| panic!("no `{message}` event in {events:#?}"))
    };
    let accepted = find("accepted");
    let delivered = find("delivered");
    assert_eq!(accepted["queue_id"], delivered["queue_id"]);
    assert_eq!(accepted["message_id"], "<batch-0@python>");
    assert_eq!(delivered["message_id"], "<batch-0@python>");
    assert_eq!(accepted["level"], "INFO");
    assert!(
        !relay.log_text().contains(SECRET),
        "the client secret never reaches the log"
    );
    relay.kill().await;
}

/// Queue ids in the queue table, read straight from SQLite.
fn queued_ids(world: &World) -> Vec<String> {
    let db = rusqlite::Connection::open(world.dir.path().join("queue").join("queue.sqlite3")).unwrap();
    let mut stmt = db.prepare("SELECT id FROM queue").unwrap();
    stmt.query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// 16 sessions sending until told to stop or refused; prints `ACK <queue id>` for every `250`
/// after the data, so what the client was told is known exactly even if the server goes away.
const LOAD: &str = r#"
import smtplib, sys, threading
host, port, sender, per_session = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
lock = threading.Lock()
def session(n):
    try:
        s = smtplib.SMTP(host, port, timeout=60)
        s.ehlo("load.test")
        for i in range(per_session):
            s.mail(sender)
            s.rcpt("bob@fabrikam.com")
            code, resp = s.data(f"From: {sender}\r\nSubject: load {n}-{i}\r\n\r\n" + "x" * 2000 + "\r\n")
            if code != 250:
                return
            with lock:
                print("ACK", resp.decode().rsplit(" ", 1)[-1], flush=True)
    except Exception as e:
        with lock:
            print("ERR", n, repr(e), flush=True)
threads = [threading.Thread(target=session, args=(n,)) for n in range(16)]
for t in threads: t.start()
for t in threads: t.join()
"#;

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_during_load_loses_nothing_and_half_accepts_nothing() {
    let world = World::start_with(unlimited).await;
    let config = format!("[[relay.listen]]\naddress = \"127.0.0.1:0\"\n\n{FAST_DELIVERY}");
    let relay = world.relay(&config).await;
    let load = tokio::process::Command::new(python())
        .args([
            "-c",
            LOAD,
            "127.0.0.1",
            &relay.addr().port().to_string(),
            MAILBOX,
            "500",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let output = tokio::spawn(load.wait_with_output());
    tokio::time::timeout(Duration::from_secs(120), async {
        while relay.log_text().matches(" accepted").count() < 1_000 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the relay accepts messages");
    let log = Arc::clone(&relay.log);
    let status = relay.terminate().await;
    assert!(status.success(), "a clean exit: {status:?}");
    assert!(log.lock().unwrap().contains("stopped"));
    let out = tokio::time::timeout(Duration::from_secs(60), output)
        .await
        .expect("the clients end when the relay goes")
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let acked: std::collections::HashSet<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("ACK "))
        .map(str::to_owned)
        .collect();
    assert!(
        acked.len() >= 1_000 && acked.len() < 8_000,
        "acknowledged {}",
        acked.len()
    );
    assert_eq!(
        text.matches("ERR ").count(),
        16,
        "every session was ended by the relay:\n{text}"
    );

    // Everything stored was acknowledged: nothing is in the queue or at Exchange that the
    // client was not told about.
    let in_queue = queued_ids(&world);
    let stored: Vec<String> = in_queue.iter().cloned().chain(delivered(&world).into_keys()).collect();
    let half_accepted = stored.iter().filter(|id| !acked.contains(*id)).count();
    // Restarted, the relay delivers the rest; nothing was in flight, so nothing twice.
    let relay = world.relay(&config).await;
    let _ = tokio::time::timeout(Duration::from_secs(120), async {
        while !acked.iter().all(|id| delivered(&world).contains_key(id)) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    let copies = delivered(&world);
    let lost = acked.iter().filter(|id| !copies.contains_key(*id)).count();
    let duplicated: usize = copies.values().map(|n| n - 1).sum();
    eprintln!(
        "sigterm: acknowledged {}, queued at exit {}, half-accepted {half_accepted}, lost {lost}, duplicated {duplicated}",
        acked.len(),
        in_queue.len()
    );
    assert_eq!((half_accepted, lost, duplicated), (0, 0, 0));
    relay.kill().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_reloads_a_valid_configuration_and_refuses_a_broken_one() {
    use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
    let world = World::start().await;
    let listen = "[[relay.listen]]\naddress = \"127.0.0.1:0\"\n";
    let relay = world
        .relay(&format!("{listen}\n[[relay.allow]]\nnetworks = [\"127.0.0.1/32\"]\n"))
        .await;
    let addr = relay.addr();
    // A session opened before the reload keeps its rules.
    let mut early = BufReader::new(tokio::net::TcpStream::connect(addr).await.unwrap());
    let mut line = String::new();
    early.read_line(&mut line).await.unwrap();
    early.get_mut().write_all(b"HELO early\r\n").await.unwrap();
    line.clear();
    early.read_line(&mut line).await.unwrap();

    // New rules: loopback no longer relays without a password; user `late` does.
    world.relay_config(&format!(
        "{listen}\n[[relay.allow]]\nnetworks = [\"10.9.9.0/24\"]\n\n[[relay.users]]\nname = \"late\"\npassword_hash = \"{}\"\n",
        hash(&world, "pw").await
    ));
    relay.signal("HUP");
    relay
        .wait_for_log("configuration reloaded", Duration::from_secs(10))
        .await;

    let port = addr.port().to_string();
    let out = python_send(PROBE, &["127.0.0.1", "127.0.0.1", &port]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("MAIL 530"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = python_send(
        SMTPLIB,
        &[
            "plain-auth",
            "127.0.0.1",
            &port,
            "late",
            "pw",
            MAILBOX,
            "bob@fabrikam.com",
        ],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    early
        .get_mut()
        .write_all(format!("MAIL FROM:<{MAILBOX}>\r\nRCPT TO:<carol@fabrikam.com>\r\nDATA\r\n").as_bytes())
        .await
        .unwrap();
    for _ in 0..3 {
        line.clear();
        early.read_line(&mut line).await.unwrap();
    }
    assert!(line.starts_with("354"), "the early session still relays: {line}");
    early
        .get_mut()
        .write_all(b"Subject: early\r\n\r\nx\r\n.\r\nQUIT\r\n")
        .await
        .unwrap();
    line.clear();
    early.read_line(&mut line).await.unwrap();
    assert!(line.starts_with("250 2.0.0 Ok: queued as"), "{line}");
    assert_eq!(world.wait_for_messages(2, Duration::from_secs(20)).await, 2);

    // A broken file: refused with the reason, the running configuration stays.
    world.relay_config(&format!("{listen}\n[relay]\nmax_recipients = 0\n"));
    relay.signal("HUP");
    relay.wait_for_log("reload refused", Duration::from_secs(10)).await;
    assert!(
        relay.log_text().contains("relay.max_recipients: must be at least 1"),
        "{}",
        relay.log_text()
    );
    let out = python_send(
        SMTPLIB,
        &[
            "plain-auth",
            "127.0.0.1",
            &port,
            "late",
            "pw",
            MAILBOX,
            "dave@fabrikam.com",
        ],
    );
    assert!(
        out.status.success(),
        "still running the reloaded rules: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(world.wait_for_messages(3, Duration::from_secs(20)).await, 3);
    relay.kill().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_credential_near_expiry_is_logged_and_exported() {
    let mut world = World::start().await;
    let expires = (now() + time::Duration::days(5)).date();
    world.set("M365_MAILER_CLIENT_SECRET_EXPIRES", &expires.to_string());
    let relay = world.relay("[[relay.listen]]\naddress = \"127.0.0.1:0\"\n").await;
    relay
        // Days between calendar dates, as `config check` and `doctor` count them.
        .wait_for_log("the client secret expires in 5 days", Duration::from_secs(10))
        .await;
    let (status, text) = admin_get(&relay, "/metrics").await;
    assert_eq!(status, 200);
    let left = metric(
        &text,
        "m365_relay_credential_expiry_seconds{account=\"default\",credential=\"client secret\"}",
    );
    assert!((4.0 * 86_400.0..5.0 * 86_400.0).contains(&left), "{left}");
    relay.kill().await;
}
