//! The relay under abuse: many connections, slow clients, huge envelopes and messages.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;

use crate::support::*;

async fn connect(addr: std::net::SocketAddr) -> (BufReader<TcpStream>, String) {
    let mut conn = BufReader::new(TcpStream::connect(addr).await.unwrap());
    let mut line = String::new();
    conn.read_line(&mut line).await.unwrap();
    (conn, line)
}

async fn reply(conn: &mut BufReader<TcpStream>) -> String {
    let mut all = String::new();
    loop {
        let mut line = String::new();
        if conn.read_line(&mut line).await.unwrap() == 0 {
            return all;
        }
        all.push_str(&line);
        if line.as_bytes().get(3) == Some(&b' ') {
            return all;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_thousand_connections_hold_the_limit_and_the_relay_stays_up() {
    let world = World::start().await;
    let relay = world
        .relay(
            "[relay]\nmax_connections = 1000\nmax_connections_per_client = 1000\n\n\
             [[relay.listen]]\naddress = \"127.0.0.1:0\"\n",
        )
        .await;
    let addr = relay.addr();
    let mut open = Vec::new();
    for _ in 0..1000 {
        let (conn, banner) = connect(addr).await;
        assert!(banner.starts_with("220 "), "{banner}");
        open.push(conn);
    }
    let (_, refused) = connect(addr).await;
    assert_eq!(refused, "421 4.7.0 Too many connections, try again later\r\n");
    // Every held session still answers.
    for conn in open.iter_mut().step_by(97) {
        conn.get_mut().write_all(b"NOOP\r\n").await.unwrap();
        assert_eq!(reply(conn).await, "250 2.0.0 Ok\r\n");
    }
    open.truncate(990);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (mut conn, banner) = connect(addr).await;
    assert!(banner.starts_with("220 "), "a slot is free again: {banner}");
    conn.get_mut()
        .write_all(
            format!(
                "HELO t\r\nMAIL FROM:<{MAILBOX}>\r\nRCPT TO:<bob@fabrikam.com>\r\nDATA\r\nSubject: x\r\n\r\ny\r\n.\r\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let mut last = String::new();
    for _ in 0..5 {
        last = reply(&mut conn).await;
    }
    assert!(last.starts_with("250 2.0.0 Ok: queued as"), "{last}");
    assert_eq!(world.wait_for_messages(1, Duration::from_secs(20)).await, 1);
    let rss = rss_kib(&relay);
    eprintln!("1,000 idle connections: relay RSS {} MiB", rss / 1024);
    drop(open);
    relay.kill().await;
}

/// The relay's resident memory (Linux).
fn rss_kib(relay: &RelayProcess) -> u64 {
    std::fs::read_to_string(format!("/proc/{}/status", relay.pid()))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_clients_are_timed_out() {
    let world = World::start().await;
    let relay = world
        .relay(
            "[relay]\nhostname = \"relay.test\"\nline_timeout = \"1s\"\ndata_timeout = \"1s\"\ncommand_timeout = \"30s\"\n\n\
             [[relay.listen]]\naddress = \"127.0.0.1:0\"\n",
        )
        .await;
    // A command drip-fed byte by byte never completes in time.
    let (mut conn, _) = connect(relay.addr()).await;
    for b in b"EHLO slowly" {
        conn.get_mut().write_all(&[*b]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let answer = tokio::time::timeout(Duration::from_secs(5), reply(&mut conn))
        .await
        .unwrap();
    assert_eq!(answer, "421 4.4.2 relay.test Error: timeout exceeded\r\n");
    // A message that stops halfway.
    let (mut conn, _) = connect(relay.addr()).await;
    conn.get_mut()
        .write_all(
            format!("HELO t\r\nMAIL FROM:<{MAILBOX}>\r\nRCPT TO:<b@fabrikam.com>\r\nDATA\r\nSubject: half").as_bytes(),
        )
        .await
        .unwrap();
    let mut replies = String::new();
    for _ in 0..5 {
        replies.push_str(
            &tokio::time::timeout(Duration::from_secs(5), reply(&mut conn))
                .await
                .unwrap(),
        );
    }
    assert!(
        replies.ends_with("421 4.4.2 relay.test Error: timeout exceeded\r\n"),
        "{replies}"
    );
    let mut rest = Vec::new();
    let _ = conn.read_to_end(&mut rest).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(world.emulator.store().len(), 0, "nothing half received is delivered");
    relay.kill().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_thousand_recipients_are_refused_cleanly() {
    let world = World::start().await;
    let relay = world.relay("[[relay.listen]]\naddress = \"127.0.0.1:0\"\n").await;
    let (conn, _) = connect(relay.addr()).await;
    let mut flight = format!("EHLO t\r\nMAIL FROM:<{MAILBOX}>\r\n");
    for i in 0..10_000 {
        flight.push_str(&format!("RCPT TO:<user{i}@fabrikam.com>\r\n"));
    }
    flight.push_str("DATA\r\n");
    let (mut read, mut write) = conn.into_inner().into_split();
    let writer = tokio::spawn(async move {
        write.write_all(flight.as_bytes()).await.unwrap();
        write
    });
    let mut reader = BufReader::new(&mut read);
    let mut codes = std::collections::BTreeMap::<String, usize>::new();
    let mut line = String::new();
    let mut lines = 0;
    while lines < 10_003 {
        line.clear();
        reader.read_line(&mut line).await.unwrap();
        if line.as_bytes().get(3) == Some(&b'-') {
            continue;
        }
        *codes.entry(line[..3].to_owned()).or_default() += 1;
        lines += 1;
    }
    // EHLO, MAIL, 500 recipients (Exchange's limit), 9,500 × 452 4.5.3, 354.
    assert_eq!(codes.get("452"), Some(&9_500), "{codes:?}");
    assert_eq!(codes.get("250"), Some(&502), "{codes:?}");
    assert_eq!(codes.get("354"), Some(&1), "{codes:?}");
    let mut write = writer.await.unwrap();
    write
        .write_all(b"Subject: many\r\n\r\nx\r\n.\r\nQUIT\r\n")
        .await
        .unwrap();
    line.clear();
    reader.read_line(&mut line).await.unwrap();
    assert!(line.starts_with("250 2.0.0 Ok: queued as"), "{line}");
    assert_eq!(world.wait_for_messages(1, Duration::from_secs(20)).await, 1);
    assert_eq!(world.emulator.store().messages()[0].rcpt_to.len(), 500);
    relay.kill().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oversize_message_is_refused_before_it_is_stored() {
    let world = World::start().await;
    let relay = world
        .relay("[relay]\nmax_message_size = 100000\n\n[[relay.listen]]\naddress = \"127.0.0.1:0\"\n")
        .await;
    let (mut conn, _) = connect(relay.addr()).await;
    conn.get_mut()
        .write_all(format!("EHLO t\r\nMAIL FROM:<{MAILBOX}> SIZE=200000\r\n").as_bytes())
        .await
        .unwrap();
    assert!(reply(&mut conn).await.contains("250-SIZE 100000\r\n"));
    assert_eq!(
        reply(&mut conn).await,
        "552 5.3.4 Message size 200000 exceeds the limit of 100000 bytes\r\n"
    );
    // Without SIZE: read to its end, nothing kept.
    conn.get_mut()
        .write_all(format!("MAIL FROM:<{MAILBOX}>\r\nRCPT TO:<b@fabrikam.com>\r\nDATA\r\n").as_bytes())
        .await
        .unwrap();
    for _ in 0..3 {
        reply(&mut conn).await;
    }
    let line = format!("{}\r\n", "x".repeat(998));
    for _ in 0..1_000 {
        conn.get_mut().write_all(line.as_bytes()).await.unwrap();
    }
    conn.get_mut().write_all(b".\r\n").await.unwrap();
    assert_eq!(
        reply(&mut conn).await,
        "552 5.3.4 Message exceeds the limit of 100000 bytes\r\n"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let db = rusqlite::Connection::open(world.dir.path().join("queue").join("queue.sqlite3")).unwrap();
    let stored: i64 = db.query_row("SELECT count(*) FROM queue", [], |r| r.get(0)).unwrap();
    assert_eq!((stored, world.emulator.store().len()), (0, 0));
    relay.kill().await;
}

/// Opens a session from `source` (a loopback address) and reads the banner.
async fn connect_from(source: std::net::IpAddr, addr: std::net::SocketAddr) -> BufReader<TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(std::net::SocketAddr::new(source, 0)).unwrap();
    let mut conn = BufReader::new(socket.connect(addr).await.unwrap());
    let mut banner = String::new();
    conn.read_line(&mut banner).await.unwrap();
    conn
}

/// Peak resident memory of a process (VmHWM), in MiB.
fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib / 1024.0
}

#[tokio::test(flavor = "multi_thread")]
async fn three_hundred_wrong_passwords_at_once_cost_little_and_block_nobody() {
    use base64::Engine as _;
    let world = World::start().await;
    let hash = hash(&world, "the right password").await;
    let relay = world
        .relay(&format!(
            "[relay]\nauth_failure_delay = \"100ms\"\n\n[[relay.listen]]\naddress = \"127.0.0.1:0\"\n\n\
             [[relay.users]]\nname = \"device\"\npassword_hash = \"{hash}\"\n"
        ))
        .await;
    let addr = relay.addr();
    let wrong = base64::engine::general_purpose::STANDARD.encode("\0device\0not the password");
    let started = instant();
    let attacks: Vec<_> = (0..300u32)
        .map(|i| {
            let wrong = wrong.clone();
            tokio::spawn(async move {
                let source = std::net::IpAddr::from([127, 0, 0, 2 + (i % 30) as u8]);
                let mut conn = connect_from(source, addr).await;
                conn.get_mut()
                    .write_all(format!("EHLO attacker\r\nAUTH PLAIN {wrong}\r\n").as_bytes())
                    .await
                    .unwrap();
                let ehlo = reply(&mut conn).await;
                assert!(ehlo.contains("AUTH PLAIN LOGIN"), "{ehlo}");
                reply(&mut conn).await
            })
        })
        .collect();
    // Meanwhile a program on this machine hands in a message as usual.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = instant();
    let mut conn = connect_from(std::net::IpAddr::from([127, 0, 0, 1]), addr).await;
    conn.get_mut()
        .write_all(format!("EHLO cron\r\nMAIL FROM:<{MAILBOX}>\r\nRCPT TO:<bob@fabrikam.com>\r\nDATA\r\n").as_bytes())
        .await
        .unwrap();
    for _ in 0..4 {
        reply(&mut conn).await;
    }
    conn.get_mut()
        .write_all(b"Subject: during the attack\r\n\r\nok\r\n.\r\n")
        .await
        .unwrap();
    let stored = reply(&mut conn).await;
    let accepted_in = before.elapsed();
    assert!(stored.starts_with("250 2.0.0 Ok: queued as"), "{stored}");
    assert!(accepted_in < Duration::from_secs(2), "accepted in {accepted_in:?}");
    for attack in attacks {
        let answer = attack.await.unwrap();
        assert!(answer.starts_with("535 5.7.8"), "{answer}");
    }
    let peak = peak_rss_mib(relay.pid());
    eprintln!(
        "300 wrong AUTH from 30 addresses: all refused in {:?}; a loopback message accepted in {accepted_in:?}; peak RSS {peak:.1} MiB",
        started.elapsed()
    );
    assert!(peak < 256.0, "peak resident memory {peak:.1} MiB");
    relay.kill().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_good_password_does_not_forgive_the_bad_ones_and_names_cannot_forge_log_lines() {
    use base64::Engine as _;
    let world = World::start().await;
    let hash = hash(&world, "right").await;
    let relay = world
        .relay(&format!(
            "[relay]\nauth_failure_delay = \"50ms\"\n\n[[relay.listen]]\naddress = \"127.0.0.1:0\"\n\n\
             [[relay.users]]\nname = \"device\"\npassword_hash = \"{hash}\"\n"
        ))
        .await;
    let plain =
        |user: &str, password: &str| base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"));
    let addr = relay.addr();
    let attempt = |response: String| async move {
        let (mut conn, _) = connect(addr).await;
        conn.get_mut()
            .write_all(format!("EHLO x\r\nAUTH PLAIN {response}\r\n").as_bytes())
            .await
            .unwrap();
        reply(&mut conn).await;
        reply(&mut conn).await
    };
    assert!(attempt(plain("device", "wrong")).await.starts_with("535"));
    assert!(attempt(plain("device", "wrong")).await.starts_with("535"));
    assert!(attempt(plain("device", "right")).await.starts_with("235"));
    // A name with a line break: logged escaped, so it cannot start a line of its own.
    assert!(attempt(plain("x\nERROR forged", "wrong")).await.starts_with("535"));
    relay.wait_for_log("next_delay_ms=200", Duration::from_secs(10)).await;
    let log = relay.log_text();
    assert!(!log.lines().any(|l| l.starts_with("ERROR forged")), "{log}");
    assert!(log.contains(r"x\nERROR forged"), "{log}");
    relay.kill().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_never_reads_or_never_leaves_loses_its_slot() {
    let world = World::start().await;
    let relay = world
        .relay(
            "[relay]\nline_timeout = \"1s\"\nmax_session_time = \"2s\"\nmax_connections_per_client = 2\n\n\
             [[relay.listen]]\naddress = \"127.0.0.1:0\"\n",
        )
        .await;
    // Pipelines NOOPs and never reads a reply: once the buffers are full, the relay gives up.
    let (mut deaf, _) = connect(relay.addr()).await;
    let flood = "NOOP\r\n".repeat(100_000);
    let writer = tokio::spawn(async move {
        let mut sent = 0;
        for _ in 0..100 {
            if deaf.get_mut().write_all(flood.as_bytes()).await.is_err() {
                return sent;
            }
            sent += 1;
        }
        sent
    });
    relay
        .wait_for_log("the client does not read its replies", Duration::from_secs(20))
        .await;
    let rounds = tokio::time::timeout(Duration::from_secs(20), writer)
        .await
        .unwrap()
        .unwrap();
    assert!(rounds < 100, "the relay closed the connection");
    // Talks for ever: the session ends at its lifetime, at the next command.
    let (mut chatty, _) = connect(relay.addr()).await;
    let begun = instant();
    let ended = loop {
        chatty.get_mut().write_all(b"NOOP\r\n").await.unwrap();
        let answer = reply(&mut chatty).await;
        if !answer.starts_with("250") {
            break answer;
        }
        assert!(begun.elapsed() < Duration::from_secs(10), "still open");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert!(ended.starts_with("421 4.4.2"), "{ended}");
    assert!(begun.elapsed() >= Duration::from_secs(2));
    relay.kill().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ipv4_and_ipv6_listeners_share_a_port() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("skipped: no IPv6 on this machine");
        return;
    }
    let world = World::start().await;
    // A free port, for both.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let relay = world
        .relay(&format!(
            "[[relay.listen]]\naddress = \"0.0.0.0:{port}\"\n\n[[relay.listen]]\naddress = \"[::]:{port}\"\n"
        ))
        .await;
    assert_eq!(relay.addresses.len(), 2, "{}", relay.log_text());
    for addr in [format!("127.0.0.1:{port}"), format!("[::1]:{port}")] {
        let (_, banner) = connect(addr.parse().unwrap()).await;
        assert!(banner.starts_with("220 "), "{addr}: {banner}");
    }
    relay.kill().await;
}
