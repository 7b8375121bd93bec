//! The same behaviour from both stores: each scenario runs against SQLite in a temporary
//! directory and against a fresh PostgreSQL database, through the [`Queue`] handle the relay
//! uses.

use std::collections::BTreeSet;
use std::time::Duration;

use super::postgres::testing::TestDatabase;
use super::*;
use crate::clock::ms;

fn message(id: &str, account: &str, received: i64) -> NewMessage {
    NewMessage {
        id: id.into(),
        account: account.into(),
        sender: "scanner@contoso.com".into(),
        recipients: vec!["a@fabrikam.com".into(), "b@fabrikam.com".into()],
        content: b"Subject: scan\r\n\r\nbody \x00\xff\r\n".to_vec(),
        message_id: Some("<1@scanner>".into()),
        client: "192.0.2.7".into(),
        received: ms(received),
    }
}

/// Leases at `now` for a minute.
async fn lease(queue: &Queue, account: &str, now: i64) -> Vec<String> {
    let leased = queue.lease(account, ms(now), 10, ms(now + 60_000)).await.unwrap();
    leased.into_iter().map(|l| l.message.id).collect()
}

async fn lifecycle(queue: &Queue) {
    for m in [
        message("m1", "main", 1000),
        message("m2", "main", 2000),
        message("m3", "other", 1500),
    ] {
        queue.enqueue(m).await.unwrap();
    }
    assert!(
        lease(queue, "main", 999).await.is_empty(),
        "nothing is due before it was received"
    );
    let leased = queue.lease("main", ms(5000), 10, ms(65_000)).await.unwrap();
    assert_eq!(
        leased.iter().map(|l| l.message.id.as_str()).collect::<Vec<_>>(),
        ["m1", "m2"]
    );
    assert_eq!(
        leased[0].message,
        message("m1", "main", 1000),
        "content and fields intact"
    );
    assert!(
        lease(queue, "main", 5000).await.is_empty(),
        "leased messages are not leased twice"
    );

    // m1: one recipient delivered, the other deferred.
    queue
        .apply(vec![
            Op::Sent {
                account: "main".into(),
                recipients: 1,
                at: ms(5000),
            },
            Op::Defer {
                id: "m1".into(),
                recipients: vec!["b@fabrikam.com".into()],
                next_attempt: ms(9000),
                attempted: true,
                crashed: false,
                at: ms(5000),
                reply: "451 4.7.500 Server busy".into(),
            },
        ])
        .await
        .unwrap();
    assert_eq!(queue.next_due("main", ms(5000)).await.unwrap(), Some(ms(9000)));
    assert_eq!(queue.next_due("nobody", ms(5000)).await.unwrap(), None);
    assert_eq!(queue.recipients_since("main", ms(4000)).await.unwrap(), [(ms(5000), 1)]);
    assert!(queue.recipients_since("main", ms(5001)).await.unwrap().is_empty());

    // m2's lease is renewed, then runs out: it is due again without anyone releasing it.
    queue
        .apply(vec![Op::Renew {
            id: "m2".into(),
            until: ms(70_000),
        }])
        .await
        .unwrap();
    assert_eq!(lease(queue, "main", 9000).await, ["m1"]);
    assert_eq!(
        lease(queue, "main", 69_999).await,
        ["m1"],
        "m1's lease has run out, m2's was renewed"
    );
    assert_eq!(lease(queue, "main", 70_000).await, ["m2"]);

    // m1 given up on: a dead letter, gone from the queue.
    let leased = queue.lease("main", ms(200_000), 10, ms(260_000)).await.unwrap();
    let m1 = leased.iter().find(|l| l.message.id == "m1").unwrap();
    assert_eq!(
        (m1.attempts, m1.message.recipients.as_slice()),
        (1, &["b@fabrikam.com".to_owned()][..])
    );
    queue
        .apply(vec![
            Op::Dead(DeadLetter {
                message: m1.message.clone(),
                attempts: 2,
                failed: ms(200_000),
                reply: "550 5.1.10 RESOLVER.ADR.RecipientNotFound".into(),
                diagnosis: "the recipient does not exist".into(),
            }),
            Op::Remove("m1".into()),
            Op::Pause {
                account: "other".into(),
                until: ms(300_000),
                reason: "535 5.7.139".into(),
                at: ms(200_000),
            },
        ])
        .await
        .unwrap();
    let stats = queue.stats().await.unwrap();
    assert_eq!((stats.queued, stats.oldest, stats.dead), (2, Some(ms(1500)), 1));
    queue.apply(vec![Op::Resume("other".into())]).await.unwrap();
}

async fn a_failed_request_changes_nothing(queue: &Queue) {
    queue.enqueue(message("dup", "main", 1000)).await.unwrap();
    let again = queue
        .apply(vec![
            Op::Enqueue(message("fresh", "main", 1000)),
            Op::Enqueue(message("dup", "main", 1000)),
        ])
        .await;
    assert!(matches!(again, Err(QueueError::Store(_))), "{again:?}");
    assert_eq!(
        lease(queue, "main", 5000).await,
        ["dup"],
        "the whole request was rolled back"
    );
}

fn alert(destination: &str, kind: &str, at: i64) -> NewAlert {
    NewAlert {
        destination: destination.into(),
        kind: kind.into(),
        event: format!("{{\"at\":{at}}}"),
        at: ms(at),
    }
}

async fn due(queue: &Queue, now: i64) -> (Vec<i64>, Vec<LastSent>) {
    match queue
        .outbox(OutboxOp::Due {
            now: ms(now),
            limit: 100,
        })
        .await
        .unwrap()
    {
        OutboxResult::Due(pending, sent) => (pending.into_iter().map(|p| p.seq).collect(), sent),
        other => panic!("{other:?}"),
    }
}

async fn claim(queue: &Queue, seqs: &[i64], now: i64, window: i64) -> Vec<i64> {
    let op = OutboxOp::Claim {
        destination: "teams".into(),
        kind: "dead-lettered".into(),
        seqs: seqs.to_vec(),
        now: ms(now),
        not_since: ms(now - window),
        until: ms(now + 60_000),
    };
    match queue.outbox(op).await.unwrap() {
        OutboxResult::Claimed(seqs) => seqs,
        other => panic!("{other:?}"),
    }
}

/// The alert outbox: stored with what it is about, conditions announced once, a window per
/// destination and kind, claims, failures and retries.
async fn outbox(queue: &Queue) {
    // An alert stored with its dead letter; a request that fails stores neither.
    queue.enqueue(message("a1", "main", 1000)).await.unwrap();
    let failed = queue
        .apply(vec![
            Op::Outbox(OutboxOp::Add(vec![alert("teams", "dead-lettered", 1000)])),
            Op::Enqueue(message("a1", "main", 1000)),
        ])
        .await;
    assert!(failed.is_err());
    assert_eq!(
        due(queue, 5000).await.0,
        Vec::<i64>::new(),
        "rolled back with the request"
    );
    queue
        .outbox(OutboxOp::Add(vec![
            alert("teams", "dead-lettered", 1000),
            alert("teams", "dead-lettered", 1100),
        ]))
        .await
        .unwrap();
    let (seqs, sent) = due(queue, 5000).await;
    assert_eq!((seqs.len(), sent), (2, Vec::new()));

    // A condition is raised once, however often it is seen; cleared once.
    let raise = || OutboxOp::Raise {
        key: "queue-age".into(),
        since: ms(2000),
        alerts: vec![alert("teams", "queue-old", 2000)],
    };
    assert_eq!(queue.outbox(raise()).await.unwrap(), OutboxResult::Changed(true));
    assert_eq!(queue.outbox(raise()).await.unwrap(), OutboxResult::Changed(false));
    let clear = || OutboxOp::Clear {
        key: "queue-age".into(),
        alerts: vec![alert("teams", "queue-old-resolved", 3000)],
    };
    assert_eq!(queue.outbox(clear()).await.unwrap(), OutboxResult::Changed(true));
    assert_eq!(queue.outbox(clear()).await.unwrap(), OutboxResult::Changed(false));
    assert_eq!(due(queue, 5000).await.0.len(), 4);

    // The window: one claim per destination and kind within it.
    assert_eq!(claim(queue, &seqs[..1], 5000, 60_000).await, &seqs[..1]);
    assert_eq!(
        claim(queue, &seqs[1..], 6000, 60_000).await,
        Vec::<i64>::new(),
        "within the window"
    );
    let (still, sent) = due(queue, 6000).await;
    assert!(!still.contains(&seqs[0]), "a claimed alert is not due");
    assert_eq!((sent[0].destination.as_str(), sent[0].at), ("teams", ms(5000)));
    // A failed post opens the window again and is due after its wait.
    queue
        .outbox(OutboxOp::Failed {
            destination: "teams".into(),
            kind: "dead-lettered".into(),
            seqs: seqs[..1].to_vec(),
            next_attempt: ms(9000),
            error: "HTTP 503".into(),
        })
        .await
        .unwrap();
    assert!(!due(queue, 8000).await.0.contains(&seqs[0]));
    assert!(due(queue, 9000).await.0.contains(&seqs[0]));
    assert_eq!(claim(queue, &seqs, 9000, 60_000).await, seqs, "both, in one post");
    queue.outbox(OutboxOp::Sent(seqs.clone())).await.unwrap();
    let (left, _) = due(queue, 100_000).await;
    assert_eq!(left.len(), 2, "the queue-age alerts are left");
}

/// What the `queue` commands see and change beside the relay's own handle.
async fn inspection(queue: &Queue, location: &Location) {
    for m in [message("m1", "main", 1000), message("m2", "main", 2000)] {
        queue.enqueue(m).await.unwrap();
    }
    assert_eq!(lease(queue, "main", 1500).await, ["m1"], "m1 is being delivered");
    let dead = DeadLetter {
        message: message("d1", "main", 500),
        attempts: 3,
        failed: ms(900),
        reply: "550 5.1.10".into(),
        diagnosis: "no such recipient".into(),
    };
    queue
        .apply(vec![
            Op::Dead(dead.clone()),
            Op::Dead(dead),
            Op::Pause {
                account: "main".into(),
                until: ms(600_000),
                reason: "535 5.7.139".into(),
                at: ms(1500),
            },
        ])
        .await
        .unwrap();
    let mut q = Inspection::open(location).await.unwrap();
    let now = ms(1600);
    let listed = q.list(now).await.unwrap();
    let shown: Vec<(&str, bool)> = listed.iter().map(|e| (e.message.id.as_str(), e.leased)).collect();
    assert_eq!(shown, [("m1", true), ("m2", false)]);
    assert_eq!(listed[0].message.subject.as_deref(), Some("scan"), "read from the head");
    assert_eq!(q.paused().await.unwrap()[0].reason, "535 5.7.139");
    assert_eq!(q.resolve("m").await.unwrap(), Err(Lookup::Ambiguous("m".into(), 2)));
    // LIKE's wildcards in what a user typed are dropped, not obeyed.
    assert_eq!(q.resolve("m%").await.unwrap(), Err(Lookup::Ambiguous("m%".into(), 2)));
    assert_eq!(q.resolve("x").await.unwrap(), Err(Lookup::NotFound("x".into())));
    assert_eq!(q.resolve("m2").await.unwrap(), Ok("m2".into()));
    let (entry, content) = q.show("m2", now).await.unwrap().unwrap();
    assert_eq!((entry.message.size, content), (26, message("m2", "main", 0).content));
    assert_eq!(q.retry("m1", now).await.unwrap(), Err(Lookup::Busy("m1".into())));
    assert_eq!(q.delete("m1", now).await.unwrap(), Err(Lookup::Busy("m1".into())));
    assert_eq!(q.retry("m2", now).await.unwrap(), Ok(()));
    assert_eq!(q.delete("m2", now).await.unwrap(), Ok(()));
    let dead = q.dead().await.unwrap();
    assert_eq!((dead.len(), dead[0].message.subject.as_deref()), (2, Some("scan")));
    assert_eq!(q.dead_show("d").await.unwrap()[0].0.reply, "550 5.1.10");
    assert_eq!(q.dead_retry(Some("d1"), now).await.unwrap(), 2, "both copies back");
    let listed = q.list(now).await.unwrap();
    assert!(
        listed.iter().all(|e| e.message.subject.as_deref() == Some("scan")),
        "kept when retried"
    );
    let back: Vec<String> = listed.into_iter().map(|e| e.message.id).collect();
    assert_eq!(back.len(), 3, "{back:?}");
    assert!(
        back.contains(&"d1".to_owned()) && back.iter().any(|id| id.starts_with("d1-")),
        "{back:?}"
    );
    assert_eq!(q.retry_all(now).await.unwrap(), 0, "both are due already");
    queue
        .apply(vec![Op::Dead(DeadLetter {
            message: message("d2", "main", 500),
            attempts: 1,
            failed: ms(900),
            reply: "550".into(),
            diagnosis: String::new(),
        })])
        .await
        .unwrap();
    assert_eq!(
        q.dead_purge(Some(ms(900))).await.unwrap(),
        0,
        "given up at 900, not before"
    );
    assert_eq!(q.dead_purge(None).await.unwrap(), 1);
}

#[tokio::test]
async fn sqlite_and_postgres_look_the_same_to_the_queue_commands() {
    let dir = tempfile::tempdir().unwrap();
    let (queue, _) = Queue::open(&dir.path().join("queue")).unwrap();
    inspection(&queue, &Location::Directory(dir.path().join("queue"))).await;
    let Some(db) = TestDatabase::create("sqlite_and_postgres_look_the_same_to_the_queue_commands").await else {
        return;
    };
    let (queue, _) = Queue::connect(&db.target, None).await.unwrap();
    let location = Location::Postgres {
        target: db.target.clone(),
        password: None,
    };
    inspection(&queue, &location).await;
}

#[tokio::test]
async fn sqlite_keeps_the_queue_semantics() {
    for scenario in [0, 1, 2] {
        let dir = tempfile::tempdir().unwrap();
        let (queue, _) = Queue::open(&dir.path().join("queue")).unwrap();
        match scenario {
            0 => lifecycle(&queue).await,
            1 => a_failed_request_changes_nothing(&queue).await,
            _ => outbox(&queue).await,
        }
    }
}

#[tokio::test]
async fn postgres_keeps_the_queue_semantics() {
    for scenario in [0, 1, 2] {
        let Some(db) = TestDatabase::create("postgres_keeps_the_queue_semantics").await else {
            return;
        };
        let (queue, recovered) = Queue::connect(&db.target, None).await.unwrap();
        assert_eq!(recovered, Recovered::default());
        let Backend::Postgres(store) = &queue.backend else {
            unreachable!("connected to PostgreSQL")
        };
        assert!(postgres::testing::encrypted(store).await, "TLS, verified");
        match scenario {
            0 => lifecycle(&queue).await,
            1 => a_failed_request_changes_nothing(&queue).await,
            _ => outbox(&queue).await,
        }
        // A second relay starting on the same tables finds them as they are.
        let (_, again) = Queue::connect(&db.target, None).await.unwrap();
        assert_eq!(again.queued, queue.stats().await.unwrap().queued.unsigned_abs());
    }
}

/// Three relays leasing from one database at once: every message is leased by exactly one.
#[tokio::test]
async fn relays_sharing_postgres_never_lease_the_same_message() {
    let Some(db) = TestDatabase::create("relays_sharing_postgres_never_lease_the_same_message").await else {
        return;
    };
    let (first, _) = Queue::connect(&db.target, None).await.unwrap();
    for i in 0..300 {
        first.enqueue(message(&format!("m{i:03}"), "main", i)).await.unwrap();
    }
    let mut relays = Vec::new();
    for _ in 0..3 {
        let (queue, _) = Queue::connect(&db.target, None).await.unwrap();
        relays.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let leased = queue.lease("main", ms(1_000_000), 4, ms(2_000_000)).await.unwrap();
                if leased.is_empty() {
                    return mine;
                }
                mine.extend(leased.into_iter().map(|l| l.message.id));
                tokio::task::yield_now().await;
            }
        }));
    }
    let mut all = Vec::new();
    let mut busy = 0;
    for relay in relays {
        let mine = relay.await.unwrap();
        busy += usize::from(!mine.is_empty());
        all.extend(mine);
    }
    let distinct: BTreeSet<&String> = all.iter().collect();
    assert_eq!((all.len(), distinct.len()), (300, 300), "each message leased once");
    assert!(busy >= 2, "the relays shared the work");
}

/// A message stored through one relay wakes the others at once, by notification.
#[tokio::test]
async fn a_message_stored_by_one_relay_wakes_the_others() {
    let Some(db) = TestDatabase::create("a_message_stored_by_one_relay_wakes_the_others").await else {
        return;
    };
    let (listening, _) = Queue::connect(&db.target, None).await.unwrap();
    let (storing, _) = Queue::connect(&db.target, None).await.unwrap();
    let (to, mut woken) = tokio::sync::mpsc::unbounded_channel();
    let forwarder = tokio::spawn(async move { listening.forward_wake_ups(to).await });
    // Until the forwarder listens, a message wakes nobody: store until one does.
    let arrived = tokio::time::timeout(Duration::from_secs(10), async {
        let mut i = 0;
        loop {
            storing.enqueue(message(&format!("w{i}"), "ops", 1000)).await.unwrap();
            if let Ok(Some(account)) = tokio::time::timeout(Duration::from_millis(200), woken.recv()).await {
                return account;
            }
            i += 1;
        }
    })
    .await;
    assert_eq!(arrived.as_deref(), Ok("ops"));
    // The relay stops: the forwarder ends when nobody listens to it any more.
    drop(woken);
    storing.enqueue(message("last", "ops", 1000)).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), forwarder)
        .await
        .unwrap()
        .unwrap();
}

/// The database is unreachable: requests fail quickly, and a stored message is never claimed.
#[tokio::test]
async fn an_unreachable_database_fails_the_request_quickly() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let target = Target::parse(&format!("postgres://relay@127.0.0.1:{port}/mail?sslmode=disable")).unwrap();
    let started = crate::clock::instant();
    let e = Queue::connect(&target, Some(&Secret::new("pw")))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with(&format!("queue store: postgres://relay@127.0.0.1:{port}/mail")),
        "{e}"
    );
    assert!(crate::clock::since(started) < Duration::from_secs(10));
}
