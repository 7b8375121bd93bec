//! Benchmark of sending against the emulator with 20 ms of latency per round trip.
//!
//! 1. Upstream round trips per message for 100 messages on one connection (PIPELINING + BDAT:
//!    goal ≤ 1.1).
//! 2. Wall time of one `m365-mailer send` with a cached token, against msmtp given the same
//!    token, each run repeatedly in the same process; medians and their ratio.
//!
//! `bash bench/send/run.sh` installs msmtp and runs this (`cargo bench --bench send`).

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use m365_emulator::fixture::{CLIENT, MAILBOX, TENANT};
use m365_emulator::{Emulator, Scenario};
use m365_mailer::{Mailer, Message};

const SECRET: &str = "Xq58Q~bench.secret";
const LATENCY_MS: u64 = 20;
const MESSAGES: usize = 100;
const RUNS: usize = 15;

fn scenario() -> Scenario {
    let mut scenario = m365_emulator::fixture::contoso(SECRET, None);
    scenario.latency.smtp_command_ms = LATENCY_MS;
    scenario.exchange.messages_per_minute = 1_000_000;
    scenario.exchange.recipients_per_day = 1_000_000;
    scenario
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(run());
}

async fn run() {
    let emulator = Emulator::start(m365_emulator::Options::new(scenario()))
        .await
        .expect("emulator");
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, emulator.ca_pem()).expect("write CA");
    let env: Vec<(&str, String)> = vec![
        ("AZURE_TENANT_ID", TENANT.into()),
        ("AZURE_CLIENT_ID", CLIENT.into()),
        ("AZURE_CLIENT_SECRET", SECRET.into()),
        ("M365_MAILER_MAILBOX", MAILBOX.into()),
        ("M365_MAILER_TOKEN_ENDPOINT", emulator.token_endpoint(TENANT)),
        ("M365_MAILER_SMTP_HOST", emulator.smtp_addr().ip().to_string()),
        ("M365_MAILER_SMTP_PORT", emulator.smtp_addr().port().to_string()),
        ("M365_MAILER_CA_FILE", ca.display().to_string()),
    ];
    println!("Sending against the emulator, {LATENCY_MS} ms added per round trip.\n");

    // 1. Round trips per message on one connection.
    let config_file = dir.path().join("empty.toml");
    std::fs::write(&config_file, "").expect("write config");
    let mailer = Mailer::from_settings(Some(&config_file), None, |name| {
        env.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone())
    })
    .expect("mailer");
    let mut connection = mailer.connect().await.expect("connect");
    let before = emulator.stats().round_trips;
    let started = instant();
    let body = "x".repeat(2000);
    for i in 0..MESSAGES {
        let message = Message::text(MAILBOX, &["bob@fabrikam.com"], &format!("Message {i}"), &body).expect("message");
        connection.send(&message).await.expect("send");
    }
    let elapsed = started.elapsed();
    let round_trips = emulator.stats().round_trips - before;
    connection.close().await;
    let per_message = round_trips as f64 / MESSAGES as f64;
    println!("| {MESSAGES} messages on one connection | value |");
    println!("|---|---|");
    println!("| upstream round trips | {round_trips} |");
    println!("| round trips per message (goal ≤ 1.1) | {per_message:.2} |");
    println!(
        "| wall time | {:.2} s ({:.1} ms per message) |\n",
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1000.0 / MESSAGES as f64
    );

    // 2. One send with a cached token: m365-mailer against msmtp with the same token.
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).expect("home");
    let message = b"From: mailer@contoso.com\r\nTo: bob@fabrikam.com\r\nSubject: bench\r\n\r\nhello\r\n";
    let program = || {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_m365-mailer"));
        command
            .env_clear()
            .env("HOME", &home)
            .envs(env.iter().map(|(k, v)| (k, v)));
        command
    };
    let ours = |_: usize| {
        let mut command = program();
        command.args(["send", "bob@fabrikam.com"]);
        command
    };
    run_once(ours(0), message); // fills the token cache
    let before = emulator.stats();
    let our_times = measure(RUNS, |i| run_once(ours(i), message));
    let after = emulator.stats();
    let our_round_trips = (after.round_trips - before.round_trips) as f64 / RUNS as f64;
    assert_eq!(
        after.tokens_issued(),
        before.tokens_issued(),
        "every run used the cached token"
    );

    // The token msmtp is given: the one `m365-mailer token --raw` prints (from the cache).
    let mut token = program();
    token.args(["token", "--raw"]).stdin(Stdio::null());
    let printed = token.output().expect("m365-mailer token --raw");
    assert!(printed.status.success(), "{}", String::from_utf8_lossy(&printed.stderr));
    let token = String::from_utf8(printed.stdout).expect("UTF-8").trim().to_owned();
    let msmtp = which("msmtp");
    let theirs = msmtp.as_ref().map(|msmtp| {
        let config = dir.path().join("msmtprc");
        let token_file = dir.path().join("token");
        std::fs::write(&token_file, &token).expect("token file");
        let text = format!(
            "defaults\ntls on\ntls_starttls on\ntls_trust_file {}\naccount bench\nhost {}\nport {}\nauth xoauth2\nuser {MAILBOX}\nfrom {MAILBOX}\npasswordeval cat {}\naccount default : bench\n",
            ca.display(),
            emulator.smtp_addr().ip(),
            emulator.smtp_addr().port(),
            token_file.display()
        );
        std::fs::write(&config, text).expect("msmtprc");
        set_private(&config);
        let command = |_: usize| {
            let mut c = std::process::Command::new(msmtp);
            c.args(["-C", config.to_str().expect("utf-8 path"), "bob@fabrikam.com"]);
            c
        };
        run_once(command(0), message);
        let before = emulator.stats().round_trips;
        let times = measure(RUNS, |i| run_once(command(i), message));
        let round_trips = (emulator.stats().round_trips - before) as f64 / RUNS as f64;
        (times, round_trips)
    });

    println!("| one `send`, cached token, median of {RUNS} | wall time | round trips |");
    println!("|---|---|---|");
    println!("| m365-mailer | {:.1} ms | {our_round_trips:.1} |", median(&our_times));
    match theirs {
        Some((times, round_trips)) => {
            println!("| msmtp, same token | {:.1} ms | {round_trips:.1} |", median(&times));
            println!(
                "\nratio m365-mailer / msmtp: {:.2}",
                median(&our_times) / median(&times)
            );
        }
        None => println!("| msmtp | not installed (apt-get install msmtp) | |"),
    }
}

fn run_once(mut command: std::process::Command, message: &[u8]) {
    use std::io::Write as _;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(message)
        .expect("write message");
    let output = child.wait_with_output().expect("wait");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

/// Runs `f` `n` times; each run's duration.
fn measure(n: usize, mut f: impl FnMut(usize)) -> Vec<Duration> {
    (0..n)
        .map(|i| {
            let started = instant();
            f(i);
            started.elapsed()
        })
        .collect()
}

/// A stopwatch's start: the benchmark's one read of the monotonic clock.
#[allow(clippy::disallowed_methods)]
fn instant() -> std::time::Instant {
    std::time::Instant::now()
}

fn median(times: &[Duration]) -> f64 {
    let mut ms: Vec<f64> = times.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    ms.sort_by(f64::total_cmp);
    ms[ms.len() / 2]
}

fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join(program))
        .find(|p| p.is_file())
}

fn set_private(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
}
