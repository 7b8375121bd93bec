//! Relay benchmark: m365-mailer relay, Postfix as a relay, and email-oauth2-proxy, on the same
//! machine in the same run, with the same load.
//!
//! - Upstream: the emulator with 20 ms added per SMTP round trip, for m365-mailer and
//!   email-oauth2-proxy (both speak XOAUTH2). Postfix cannot do XOAUTH2 without a SASL plugin,
//!   so it forwards to Postfix's `smtp-sink`.
//! - Load: 2 KB messages over 1 and 16 sessions, each session reusing its connection, one
//!   message at a time (what `smtp-source -d` does); this client measures every message's accept
//!   latency (from the final `.` to the `250`). email-oauth2-proxy only accepts authenticated
//!   clients, so its sessions start with `AUTH PLAIN`; the others do not authenticate (allowed
//!   by address). `smtp-source` itself runs too, as a cross-check of the accept rate.
//! - Durability as shipped: m365-mailer's SQLite queue with `synchronous=FULL`, or its
//!   PostgreSQL queue (for several relays; the private server `run.sh` starts through
//!   `.ci/postgres`, `fsync` and `synchronous_commit` on, over verified TLS on loopback),
//!   Postfix's queue files with its normal fsync; email-oauth2-proxy has no queue (it forwards
//!   while the client waits).
//!
//! `bash bench/relay/run.sh` installs the peers and runs this (`cargo bench --bench relay`); the
//! table goes to standard output and into `docs/benchmarks.md`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use m365_emulator::fixture::{CLIENT, MAILBOX, TENANT};
use m365_emulator::{Emulator, Scenario};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;

const SECRET: &str = "Xq58Q~bench.secret";
/// The peers, in the table's order.
const RELAY: &str = "m365-mailer relay";
const RELAY_POSTGRES: &str = "m365-mailer relay, PostgreSQL queue";
const PEERS: [&str; 4] = [RELAY, RELAY_POSTGRES, "Postfix", "email-oauth2-proxy"];
const LATENCY_MS: u64 = 20;
const BODY_BYTES: usize = 2048;

/// Messages per run, by peer kind: a slow peer gets fewer so the run stays short.
fn messages(peer: &str, sessions: usize) -> usize {
    match (peer, sessions) {
        ("email-oauth2-proxy", 1) => 50,
        ("email-oauth2-proxy", _) => 320,
        (_, 1) => 1_000,
        _ => 4_000,
    }
}

fn clock() -> std::time::Instant {
    #[allow(clippy::disallowed_methods)] // a benchmark measures wall time
    std::time::Instant::now()
}

fn scenario() -> Scenario {
    let mut scenario = m365_emulator::fixture::contoso(SECRET, None);
    scenario.latency.smtp_command_ms = LATENCY_MS;
    scenario.exchange.messages_per_minute = 100_000_000;
    scenario.exchange.recipients_per_day = 100_000_000;
    scenario.exchange.max_connections_per_mailbox = 100;
    scenario
}

/// A peer under test.
struct Peer {
    name: &'static str,
    port: u16,
    auth: bool,
    /// Processes whose memory counts.
    pids: Box<dyn Fn() -> Vec<u32>>,
    /// Messages it forwards to the emulator (false: to smtp-sink).
    upstream_emulator: bool,
    _guard: Box<dyn std::any::Any>,
}

/// One load run.
#[derive(Debug, Default, Clone)]
struct Run {
    rate: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: usize,
}

#[derive(Debug, Default, Clone)]
struct Row {
    runs: HashMap<usize, Run>,
    smtp_source_rate: HashMap<usize, f64>,
    idle_rss_kib: u64,
    idle_private_kib: u64,
    rss_1000_kib: u64,
    idle_greeted: usize,
    loaded_rss_kib: u64,
    round_trips_per_message: Option<f64>,
    token_requests: Option<u64>,
    note: String,
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(run());
}

async fn run() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let emulator = Emulator::start(m365_emulator::Options::new(scenario()))
        .await
        .expect("emulator");
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, emulator.ca_pem()).expect("write CA");
    println!(
        "Relay benchmark: 2 KB messages, 1 and 16 sessions; upstream the emulator with {LATENCY_MS} ms per round trip \
         (Postfix: smtp-sink).\n"
    );

    let mut rows: Vec<(&'static str, Row)> = Vec::new();
    let peers: Vec<(&'static str, Result<Peer, String>)> = vec![
        (RELAY, start_relay(root, &emulator, &ca, dir.path(), None).await),
        (
            RELAY_POSTGRES,
            match postgres_queue() {
                Ok(url) => start_relay(root, &emulator, &ca, dir.path(), Some(&url)).await,
                Err(e) => Err(e),
            },
        ),
        ("Postfix", start_postfix().await),
        (
            "email-oauth2-proxy",
            start_emailproxy(root, &emulator, &ca, dir.path()).await,
        ),
    ];
    // `RELAY_BENCH_ONLY=NAME` measures one peer (and writes nothing); `RELAY_BENCH_KEEP=1`
    // keeps the working directory with the peers' configurations and logs.
    let only = std::env::var("RELAY_BENCH_ONLY").ok();
    if std::env::var_os("RELAY_BENCH_KEEP").is_some() {
        println!("working directory kept: {}", dir.keep().display());
    }
    for (name, peer) in peers {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let peer = match peer {
            Ok(p) => p,
            Err(e) => {
                println!("{name}: not measured: {e}");
                rows.push((
                    name,
                    Row {
                        note: e,
                        ..Row::default()
                    },
                ));
                continue;
            }
        };
        println!("{name} on port {}", peer.port);
        let row = measure(&peer, &emulator).await;
        println!("  {row:?}\n");
        rows.push((name, row));
        drop(peer);
    }
    let table = render(&rows);
    println!("{table}");
    if only.is_none() {
        write_docs(root, &table);
    }
}

async fn measure(peer: &Peer, emulator: &Emulator) -> Row {
    let mut row = Row {
        idle_rss_kib: memory(&(peer.pids)()),
        idle_private_kib: private_memory(&(peer.pids)()),
        ..Row::default()
    };
    for sessions in [1, 16] {
        emulator.reset_stats();
        let before = emulator.store().len();
        let n = messages(peer.name, sessions);
        let result = load(peer.port, sessions, n, peer.auth).await;
        row.loaded_rss_kib = row.loaded_rss_kib.max(memory(&(peer.pids)()));
        println!(
            "  {sessions:>2} sessions: {:.0} msg/s, p50 {:.2} ms, p99 {:.2} ms, {} errors",
            result.rate, result.p50_ms, result.p99_ms, result.errors
        );
        if peer.upstream_emulator {
            // Wait for delivery upstream, then count round trips and tokens.
            let want = before + n - result.errors;
            let store = emulator.store();
            let _ = tokio::time::timeout(Duration::from_secs(300), async {
                while store.len() < want {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
            .await;
            let stats = emulator.stats();
            let delivered = store.len() - before;
            let tokens: u64 = stats.token_requests.values().map(|c| c.issued + c.failed).sum();
            *row.token_requests.get_or_insert(0) += tokens;
            if sessions == 16 && delivered > 0 {
                row.round_trips_per_message = Some(stats.round_trips as f64 / delivered as f64);
            }
        }
        if peer.name != "email-oauth2-proxy"
            && let Some(rate) = smtp_source(peer.port, sessions, n).await
        {
            row.smtp_source_rate.insert(sessions, rate);
        }
        row.runs.insert(sessions, result);
    }
    // Last: a peer that cannot take 1,000 connections may be left broken.
    (row.rss_1000_kib, row.idle_greeted) = idle_connections(peer).await;
    row
}

/// The load: `sessions` connections, each sending its share one message at a time.
async fn load(port: u16, sessions: usize, messages: usize, auth: bool) -> Run {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let ready = Arc::new(tokio::sync::Barrier::new(sessions));
    let one_at_a_time = Arc::new(tokio::sync::Mutex::new(()));
    let tasks: Vec<_> = (0..sessions)
        .map(|s| {
            let share = messages / sessions + usize::from(s < messages % sessions);
            tokio::spawn(session(addr, share, auth, one_at_a_time.clone(), ready.clone()))
        })
        .collect();
    let mut latencies = Vec::new();
    let mut errors = 0;
    let mut started = None;
    for task in tasks {
        let (l, failed, start) = task.await.expect("session task");
        started = Some(started.map_or(start, |s: std::time::Instant| s.min(start)));
        latencies.extend(l);
        if let Some((count, reason)) = failed {
            println!("  a session failed with {count} messages unsent: {reason}");
            errors += count;
        }
    }
    let elapsed = started.map_or(f64::NAN, |s| s.elapsed().as_secs_f64());
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or(f64::NAN)
    };
    Run {
        rate: latencies.len() as f64 / elapsed,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        errors,
    }
}

/// A session's accept latencies; when it failed, the messages it did not send and why; when
/// its first message started.
type SessionResult = (Vec<f64>, Option<(usize, String)>, std::time::Instant);

/// One client session: connect and wait for the greeting (one session at a time: a peer with a
/// short listen backlog drops simultaneous connection attempts), EHLO (and AUTH), wait until
/// every session is ready, then send `count` messages one at a time. The rate counts from
/// that moment: it measures accepting mail, not accepting connections.
async fn session(
    addr: SocketAddr,
    count: usize,
    auth: bool,
    one_at_a_time: Arc<tokio::sync::Mutex<()>>,
    ready: Arc<tokio::sync::Barrier>,
) -> SessionResult {
    let mut latencies = Vec::with_capacity(count);
    let line = format!("{}\r\n", "x".repeat(76));
    let mut body = format!("From: {MAILBOX}\r\nTo: bob@fabrikam.com\r\nSubject: bench\r\n\r\n");
    while body.len() < BODY_BYTES {
        body.push_str(&line);
    }
    body.push_str(".\r\n");
    let opening = async {
        let turn = one_at_a_time.lock().await;
        let stream = TcpStream::connect(addr).await.map_err(|e| format!("connect: {e}"))?;
        let _ = stream.set_nodelay(true);
        let mut conn = BufReader::new(stream);
        expect(&mut conn, None, 220).await?;
        drop(turn);
        expect(&mut conn, Some("EHLO bench.local\r\n"), 250).await?;
        if auth {
            use base64::Engine as _;
            let plain = base64::engine::general_purpose::STANDARD.encode(format!("\0{MAILBOX}\0bench-password"));
            expect(&mut conn, Some(&format!("AUTH PLAIN {plain}\r\n")), 235).await?;
        }
        Ok::<_, String>(conn)
    };
    let opened = opening.await;
    ready.wait().await;
    let started = clock();
    let mut conn = match opened {
        Ok(conn) => conn,
        Err(e) => return (latencies, Some((count, e)), started),
    };
    for i in 0..count {
        let mail = async {
            expect(&mut conn, Some(&format!("MAIL FROM:<{MAILBOX}>\r\n")), 250).await?;
            expect(&mut conn, Some("RCPT TO:<bob@fabrikam.com>\r\n"), 250).await?;
            expect(&mut conn, Some("DATA\r\n"), 354).await?;
            let sent = clock();
            expect(&mut conn, Some(&body), 250).await?;
            Ok::<_, String>(sent.elapsed().as_secs_f64() * 1000.0)
        };
        match mail.await {
            Ok(latency) => latencies.push(latency),
            Err(e) => return (latencies, Some((count - i, e)), started),
        }
    }
    let _ = command(&mut conn, "QUIT\r\n").await;
    (latencies, None, started)
}

/// Sends `text` (or nothing, for the greeting) and checks the reply's code.
async fn expect(conn: &mut BufReader<TcpStream>, text: Option<&str>, want: u16) -> Result<(), String> {
    let got = match text {
        Some(text) => command(conn, text).await,
        None => reply(conn).await,
    };
    let step = text.map_or("greeting", |t| t.split_whitespace().next().unwrap_or("content"));
    match got {
        Some(code) if code == want => Ok(()),
        Some(code) => Err(format!("{step}: {code}")),
        None => Err(format!("{step}: no reply")),
    }
}

async fn command(conn: &mut BufReader<TcpStream>, text: &str) -> Option<u16> {
    conn.get_mut().write_all(text.as_bytes()).await.ok()?;
    reply(conn).await
}

/// The reply's code; `None` when the connection closed or 60 seconds passed without it.
async fn reply(conn: &mut BufReader<TcpStream>) -> Option<u16> {
    let mut line = String::new();
    loop {
        line.clear();
        let read = tokio::time::timeout(Duration::from_secs(60), conn.read_line(&mut line));
        if read.await.ok()?.ok()? == 0 {
            return None;
        }
        if line.as_bytes().get(3) != Some(&b'-') {
            return line.get(..3)?.parse().ok();
        }
    }
}

/// Holds 1,000 idle connections open (each greeted with 220) and returns the peer's memory
/// meanwhile and how many were greeted.
async fn idle_connections(peer: &Peer) -> (u64, usize) {
    let addr = SocketAddr::from(([127, 0, 0, 1], peer.port));
    let mut open = Vec::new();
    for _ in 0..1000 {
        let greeted = tokio::time::timeout(Duration::from_secs(5), async {
            let stream = TcpStream::connect(addr).await.ok()?;
            let mut conn = BufReader::new(stream);
            (reply(&mut conn).await? == 220).then_some(conn)
        })
        .await;
        match greeted {
            Ok(Some(conn)) => open.push(conn),
            _ => break,
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let held = memory(&(peer.pids)());
    let greeted = open.len();
    if greeted < 1000 {
        println!("  only {greeted} of 1,000 idle connections were greeted");
    }
    drop(open);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    (held, greeted)
}

/// `smtp-source -d -s N -m M -l 2048`: messages per second.
async fn smtp_source(port: u16, sessions: usize, messages: usize) -> Option<f64> {
    let started = clock();
    let status = tokio::process::Command::new("/usr/sbin/smtp-source")
        .args(["-d", "-s", &sessions.to_string(), "-m", &messages.to_string(), "-l"])
        .arg(BODY_BYTES.to_string())
        .args(["-f", MAILBOX, "-t", "bob@fabrikam.com"])
        .arg(format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .ok()?;
    status
        .success()
        .then(|| messages as f64 / started.elapsed().as_secs_f64())
}

/// Memory of `pids` in KiB: the resident set of a single process; for several processes
/// (Postfix) the sum of their proportional set sizes, which counts shared pages once.
fn memory(pids: &[u32]) -> u64 {
    memory_field(pids, false)
}

/// The part of [`memory`] that is the processes' own (anonymous: heap, stacks, buffers), not
/// code and data mapped from files.
fn private_memory(pids: &[u32]) -> u64 {
    memory_field(pids, true)
}

fn memory_field(pids: &[u32], anonymous: bool) -> u64 {
    let (file, field) = match (pids, anonymous) {
        ([_], false) => ("status", "VmRSS:"),
        ([_], true) => ("status", "RssAnon:"),
        (_, false) => ("smaps_rollup", "Pss:"),
        (_, true) => ("smaps_rollup", "Pss_Anon:"),
    };
    pids.iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/{file}")).ok())
        .filter_map(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .sum()
}

/// `pid` and all its descendants.
fn process_tree(pid: u32) -> Vec<u32> {
    let mut all = vec![pid];
    let mut i = 0;
    while i < all.len() {
        let children =
            std::fs::read_to_string(format!("/proc/{}/task/{}/children", all[i], all[i])).unwrap_or_default();
        all.extend(children.split_whitespace().filter_map(|c| c.parse::<u32>().ok()));
        i += 1;
    }
    all
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

async fn wait_for_port(port: u16, what: &str) -> Result<(), String> {
    for _ in 0..200 {
        if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!("{what} did not open port {port}"))
}

/// A child process killed when dropped.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A fresh database on the server `run.sh` started (`M365_TEST_POSTGRES_URL`, `…_CA`).
fn postgres_queue() -> Result<String, String> {
    let admin = std::env::var("M365_TEST_POSTGRES_URL")
        .map_err(|_| "no PostgreSQL server (bench/relay/run.sh starts one with .ci/postgres)".to_owned())?;
    let ca = std::env::var("M365_TEST_POSTGRES_CA").map_err(|e| e.to_string())?;
    let name = format!("m365_bench_{}", std::process::id());
    let out = std::process::Command::new("psql")
        .arg(format!("{admin}?sslmode=verify-full&sslrootcert={ca}"))
        .args(["-Atc", &format!("CREATE DATABASE {name}")])
        .output()
        .map_err(|e| format!("psql: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
    }
    let (base, _) = admin.rsplit_once('/').ok_or("postgres://…/database")?;
    Ok(format!("{base}/{name}?sslrootcert={ca}"))
}

/// The relay, with its SQLite queue in `dir`, or its queue at `queue_url`.
async fn start_relay(
    root: &Path,
    emulator: &Emulator,
    ca: &Path,
    dir: &Path,
    queue_url: Option<&str>,
) -> Result<Peer, String> {
    let binary = root.join("target/release/m365-mailer");
    if !binary.is_file() {
        return Err(format!(
            "{} is missing: run `cargo build --release` first",
            binary.display()
        ));
    }
    let port = free_port();
    let config = dir.join(format!("relay-{port}.toml"));
    std::fs::write(
        &config,
        format!(
            "[relay]\nmax_connections = 2000\nmax_connections_per_client = 2000\n\n\
             [[relay.listen]]\naddress = \"127.0.0.1:{port}\"\n\n[relay.delivery]\nmessages_per_minute = 100000000\n\
             recipients_per_day = 100000000\n"
        ),
    )
    .map_err(|e| e.to_string())?;
    let mut command = std::process::Command::new(binary);
    command.args(["relay", "--admin", "off", "--config"]).arg(&config);
    match queue_url {
        Some(url) => command.env("M365_MAILER_QUEUE_URL", url),
        None => command.arg("--queue-dir").arg(dir.join("relay-queue")),
    };
    let child = command
        .env("AZURE_TENANT_ID", TENANT)
        .env("AZURE_CLIENT_ID", CLIENT)
        .env("AZURE_CLIENT_SECRET", SECRET)
        .env("M365_MAILER_MAILBOX", MAILBOX)
        .env("M365_MAILER_TOKEN_ENDPOINT", emulator.token_endpoint(TENANT))
        .env("M365_MAILER_SMTP_HOST", emulator.smtp_addr().ip().to_string())
        .env("M365_MAILER_SMTP_PORT", emulator.smtp_addr().port().to_string())
        .env("M365_MAILER_CA_FILE", ca)
        .env("M365_MAILER_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let pid = child.id();
    let guard = Child(child);
    wait_for_port(port, "the relay").await?;
    Ok(Peer {
        name: if queue_url.is_some() { RELAY_POSTGRES } else { RELAY },
        port,
        auth: false,
        pids: Box::new(move || vec![pid]),
        upstream_emulator: true,
        _guard: Box::new(guard),
    })
}

/// A private Postfix instance (its own config, queue and log under /opt), relaying to
/// smtp-sink. Needs root, as Postfix does.
async fn start_postfix() -> Result<Peer, String> {
    if !Path::new("/usr/sbin/postfix").is_file() {
        return Err("Postfix is not installed (bench/relay/run.sh installs it)".into());
    }
    let base = PathBuf::from("/opt/m365-mailer-bench/postfix");
    let (port, sink_port) = (free_port(), free_port());
    let _ = std::fs::remove_dir_all(&base);
    for d in ["etc", "spool", "data"] {
        std::fs::create_dir_all(base.join(d)).map_err(|e| format!("{}: {e}", base.display()))?;
    }
    let master = std::fs::read_to_string("/etc/postfix/master.cf").map_err(|e| e.to_string())?;
    let master = master.replace(
        "smtp      inet  n       -       y       -       -       smtpd",
        &format!("127.0.0.1:{port} inet n - n - 1100 smtpd"),
    );
    std::fs::write(base.join("etc/master.cf"), master).map_err(|e| e.to_string())?;
    let b = base.display();
    std::fs::write(
        base.join("etc/main.cf"),
        format!(
            "compatibility_level = 3.6\nqueue_directory = {b}/spool\ndata_directory = {b}/data\n\
             inet_interfaces = 127.0.0.1\ninet_protocols = ipv4\nmynetworks = 127.0.0.0/8\n\
             relayhost = [127.0.0.1]:{sink_port}\nmyhostname = bench.local\nmydestination =\n\
             maillog_file = {b}/maillog\nmaillog_file_prefixes = {b}\n\
             smtpd_relay_restrictions = permit_mynetworks, reject\ndefault_process_limit = 200\n"
        ),
    )
    .map_err(|e| e.to_string())?;
    let etc = format!("{b}/etc");
    let sh = |args: &[&str]| {
        std::process::Command::new(args[0])
            .args(&args[1..])
            .status()
            .map_err(|e| format!("{args:?}: {e}"))
            .and_then(|s| {
                if s.success() {
                    Ok(())
                } else {
                    Err(format!("{args:?} failed"))
                }
            })
    };
    sh(&["postconf", "-e", &format!("alternate_config_directories = {etc}")])?;
    sh(&["chown", "postfix", &format!("{b}/data")])?;
    sh(&["postfix", "-c", &etc, "set-permissions"])?;
    let sink = std::process::Command::new("/usr/sbin/smtp-sink")
        .args(["-u", "postfix", "-c", &format!("127.0.0.1:{sink_port}"), "1000"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    sh(&["postfix", "-c", &etc, "start"])?;
    wait_for_port(port, "Postfix").await?;
    let pid_file = base.join("spool/pid/master.pid");
    let master_pid: u32 = std::fs::read_to_string(&pid_file)
        .map_err(|e| format!("{}: {e}", pid_file.display()))?
        .trim()
        .parse()
        .map_err(|e| format!("master.pid: {e}"))?;
    /// Stops the instance; the sink goes with it.
    struct Postfix(String, #[allow(dead_code)] Child);
    impl Drop for Postfix {
        fn drop(&mut self) {
            let _ = std::process::Command::new("postfix")
                .args(["-c", &self.0, "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
    Ok(Peer {
        name: "Postfix",
        port,
        auth: false,
        pids: Box::new(move || process_tree(master_pid)),
        upstream_emulator: false,
        _guard: Box::new(Postfix(etc, Child(sink))),
    })
}

/// email-oauth2-proxy from PyPI (the venv bench/relay/run.sh makes), client credentials against
/// the emulator.
async fn start_emailproxy(root: &Path, emulator: &Emulator, ca: &Path, dir: &Path) -> Result<Peer, String> {
    let python = root.join("target/bench-venv/bin/python");
    if !python.is_file() {
        return Err("no venv with emailproxy (bench/relay/run.sh makes target/bench-venv)".into());
    }
    let port = free_port();
    let config = dir.join("emailproxy.config");
    std::fs::write(
        &config,
        format!(
            "[Server setup]\n\n[SMTP-{port}]\nlocal_address = 127.0.0.1\nserver_address = {}\nserver_port = {}\n\
             server_starttls = True\n\n[Account setup]\n\n[{MAILBOX}]\ntoken_url = {}\n\
             oauth2_scope = https://outlook.office365.com/.default\noauth2_flow = client_credentials\n\
             client_id = {CLIENT}\nclient_secret = {SECRET}\n",
            emulator.smtp_addr().ip(),
            emulator.smtp_addr().port(),
            emulator.token_endpoint(TENANT),
        ),
    )
    .map_err(|e| e.to_string())?;
    let child = std::process::Command::new(&python)
        .args(["-m", "emailproxy", "--no-gui", "--config-file"])
        .arg(&config)
        .arg("--cache-store")
        .arg(dir.join("emailproxy.cache"))
        .arg("--log-file")
        .arg(dir.join("emailproxy.log"))
        .env("SSL_CERT_FILE", ca)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let pid = child.id();
    let guard = Child(child);
    wait_for_port(port, "email-oauth2-proxy").await?;
    Ok(Peer {
        name: "email-oauth2-proxy",
        port,
        auth: true,
        pids: Box::new(move || vec![pid]),
        upstream_emulator: true,
        _guard: Box::new(guard),
    })
}

fn render(rows: &[(&'static str, Row)]) -> String {
    let get = |name: &str| rows.iter().find(|(n, _)| *n == name).map(|(_, r)| r);
    let mut out = format!("| | {} |\n|---{}|\n", PEERS.join(" | "), "|---".repeat(PEERS.len()));
    let cell = |r: Option<&Row>, f: &dyn Fn(&Row) -> Option<String>| {
        r.and_then(|r| if r.note.is_empty() { f(r) } else { None })
            .unwrap_or_else(|| "—".to_owned())
    };
    let mut line = |label: &str, f: &dyn Fn(&Row) -> Option<String>| {
        let cells: Vec<String> = PEERS.iter().map(|name| cell(get(name), f)).collect();
        out.push_str(&format!("| {label} | {} |\n", cells.join(" | ")));
    };
    for sessions in [1, 16] {
        line(&format!("accept rate, {sessions} session(s) (msg/s)"), &|r| {
            r.runs.get(&sessions).map(|x| format!("{:.0}", x.rate))
        });
        line(&format!("p50 / p99 accept latency, {sessions} session(s) (ms)"), &|r| {
            r.runs
                .get(&sessions)
                .map(|x| format!("{:.2} / {:.2}", x.p50_ms, x.p99_ms))
        });
        line(
            &format!("smtp-source cross-check, {sessions} session(s) (msg/s)"),
            &|r| r.smtp_source_rate.get(&sessions).map(|x| format!("{x:.0}")),
        );
    }
    line("memory idle (MiB)", &|r| {
        Some(format!("{:.1}", r.idle_rss_kib as f64 / 1024.0))
    });
    line("… of which private (heap, stacks), idle (MiB)", &|r| {
        Some(format!("{:.1}", r.idle_private_kib as f64 / 1024.0))
    });
    line("memory with 1,000 idle connections (MiB)", &|r| {
        Some(format!(
            "{:.1}{}",
            r.rss_1000_kib as f64 / 1024.0,
            if r.idle_greeted < 1000 {
                format!(" ({} greeted)", r.idle_greeted)
            } else {
                String::new()
            }
        ))
    });
    line("memory under load, peak (MiB)", &|r| {
        Some(format!("{:.1}", r.loaded_rss_kib as f64 / 1024.0))
    });
    line("upstream round trips per message (20 ms each)", &|r| {
        r.round_trips_per_message.map(|x| format!("{x:.2}"))
    });
    line("token requests during the load", &|r| {
        r.token_requests.map(|x| x.to_string())
    });
    for (ours, queue) in [(RELAY, "SQLite"), (RELAY_POSTGRES, "PostgreSQL")] {
        let Some(relay) = get(ours) else {
            continue;
        };
        for other in ["Postfix", "email-oauth2-proxy"] {
            if let Some(o) = get(other) {
                for sessions in [1, 16] {
                    if let (Some(a), Some(b)) = (relay.runs.get(&sessions), o.runs.get(&sessions)) {
                        out.push_str(&format!(
                            "\nAccept rate m365-mailer ({queue}) / {other}, {sessions} session(s): **{:.1}×**",
                            a.rate / b.rate
                        ));
                    }
                }
            }
        }
        out.push('\n');
    }
    for (name, row) in rows {
        if !row.note.is_empty() {
            out.push_str(&format!("\n{name} was not measured: {}\n", row.note));
        }
        for (sessions, run) in &row.runs {
            if run.errors > 0 {
                out.push_str(&format!(
                    "\n{name}, {sessions} session(s): {} messages failed\n",
                    run.errors
                ));
            }
        }
    }
    out
}

/// Replaces the table between the markers in docs/benchmarks.md.
fn write_docs(root: &Path, table: &str) {
    let path = root.join("docs/benchmarks.md");
    let Ok(doc) = std::fs::read_to_string(&path) else {
        return;
    };
    let (start, end) = ("<!-- relay-bench:start -->", "<!-- relay-bench:end -->");
    let (Some(a), Some(b)) = (doc.find(start), doc.find(end)) else {
        println!("(docs/benchmarks.md has no relay markers; table not written)");
        return;
    };
    let stamp = time::OffsetDateTime::from(
        std::time::SystemTime::UNIX_EPOCH + {
            #[allow(clippy::disallowed_methods)] // the date of the measurement
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
        },
    )
    .date();
    let new = format!("{}{start}\nMeasured {stamp}.\n\n{table}{}", &doc[..a], &doc[b..]);
    if std::fs::write(&path, new).is_ok() {
        println!("(written to docs/benchmarks.md)");
    }
}
