//! The relay as a real process: clients nobody here wrote (Python's smtplib, curl, swaks,
//! Postfix's smtp-source) hand it mail over TCP and TLS, and it delivers to the emulator.

use std::collections::HashMap;
use std::time::Duration;

use crate::support::*;

/// An Exchange without limits, for tests that are not about them.
fn unlimited(s: &mut m365_emulator::Scenario) {
    s.exchange.messages_per_minute = 1_000_000;
    s.exchange.recipients_per_day = 100_000_000;
}

/// Relay limits to match.
const FAST_DELIVERY: &str = "[relay.delivery]\nmessages_per_minute = 1000000\nrecipients_per_day = 100000000\n";

/// A hash made by the binary itself.
async fn hash(world: &World, password: &str) -> String {
    let out = world
        .run(&["relay", "hash-password"], format!("{password}\n").as_bytes())
        .await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

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
    let _ = FAST_DELIVERY;
    let _ = unlimited;
    relay.kill().await;
}
