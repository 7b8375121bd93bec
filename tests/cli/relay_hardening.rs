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
