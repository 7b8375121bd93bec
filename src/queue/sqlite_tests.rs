//! Tests of `sqlite.rs`.

use super::*;
use crate::clock::ms;

fn message(id: &str, account: &str, received: i64) -> NewMessage {
    NewMessage {
        id: id.into(),
        account: account.into(),
        sender: "scanner@contoso.com".into(),
        recipients: vec!["a@fabrikam.com".into(), "b@fabrikam.com".into()],
        content: b"Subject: scan\r\n\r\nbody\r\n".to_vec(),
        message_id: Some("<1@scanner>".into()),
        client: "192.0.2.7".into(),
        received: ms(received),
    }
}

fn one(store: &mut SqliteStore, ops: Vec<Op>) -> Vec<OpResult> {
    store.apply(&[ops]).unwrap().pop().unwrap().unwrap()
}

fn lease(store: &mut SqliteStore, account: &str, now: i64) -> Vec<Leased> {
    match one(
        store,
        vec![Op::Lease {
            account: account.into(),
            now: ms(now),
            limit: 10,
            until: ms(now + 60_000),
        }],
    )
    .pop()
    {
        Some(OpResult::Leased(l)) => l,
        other => panic!("{other:?}"),
    }
}

#[test]
fn lease_defer_recover_and_finish() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    let mut store = SqliteStore::open(&path).unwrap();
    one(
        &mut store,
        vec![
            Op::Enqueue(message("m1", "main", 1000)),
            Op::Enqueue(message("m2", "main", 2000)),
            Op::Enqueue(message("m3", "other", 1500)),
        ],
    );
    assert!(
        lease(&mut store, "main", 999).is_empty(),
        "nothing is due before it was received"
    );
    let leased = lease(&mut store, "main", 5000);
    assert_eq!(
        leased.iter().map(|l| l.message.id.as_str()).collect::<Vec<_>>(),
        ["m1", "m2"]
    );
    assert_eq!(leased[0].message, message("m1", "main", 1000));
    assert!(
        lease(&mut store, "main", 5000).is_empty(),
        "leased messages are not leased twice"
    );

    // m1: one recipient delivered, the other deferred.
    one(
        &mut store,
        vec![
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
        ],
    );
    assert_eq!(
        one(
            &mut store,
            vec![Op::NextDue {
                account: "main".into(),
                now: ms(5000)
            }]
        ),
        [OpResult::NextDue(Some(ms(9000)))]
    );

    // A crash now: m2 is still leased. Reopening puts it back.
    drop(store);
    let mut store = SqliteStore::open(&path).unwrap();
    assert_eq!(
        store.recover().unwrap(),
        Recovered {
            queued: 3,
            released: 1,
            dead: 0
        }
    );
    let leased = lease(&mut store, "main", 9000);
    assert_eq!(leased.len(), 2);
    let m1 = leased.iter().find(|l| l.message.id == "m1").unwrap();
    assert_eq!(m1.attempts, 1);
    assert_eq!(m1.message.recipients, ["b@fabrikam.com"]);

    let dead = DeadLetter {
        message: m1.message.clone(),
        attempts: 2,
        failed: ms(9500),
        reply: "550 5.1.10 RESOLVER.ADR.RecipientNotFound".into(),
        diagnosis: "the recipient does not exist".into(),
    };
    one(
        &mut store,
        vec![Op::Dead(dead), Op::Remove("m1".into()), Op::Remove("m2".into())],
    );
    assert_eq!(
        one(
            &mut store,
            vec![Op::SentSince {
                account: "main".into(),
                since: ms(0)
            }]
        ),
        [OpResult::Sent(vec![(ms(5000), 1)])]
    );
    assert_eq!(
        store.recover().unwrap(),
        Recovered {
            queued: 1,
            released: 0,
            dead: 1
        }
    );
}

#[test]
fn a_failing_request_is_rolled_back_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(&dir.path().join(FILE_NAME)).unwrap();
    let results = store
        .apply(&[
            vec![Op::Enqueue(message("a", "main", 1))],
            // The second enqueue of `a` fails; its first operation is rolled back with it.
            vec![
                Op::Enqueue(message("b", "main", 1)),
                Op::Enqueue(message("a", "main", 1)),
            ],
            vec![Op::Enqueue(message("c", "main", 1))],
        ])
        .unwrap();
    assert!(results[0].is_ok() && results[1].is_err() && results[2].is_ok());
    let ids: Vec<String> = lease(&mut store, "main", 10)
        .into_iter()
        .map(|l| l.message.id)
        .collect();
    assert_eq!(ids, ["a", "c"]);
}

#[test]
fn a_lease_runs_out_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(&dir.path().join(FILE_NAME)).unwrap();
    one(&mut store, vec![Op::Enqueue(message("m1", "main", 1000))]);
    assert_eq!(lease(&mut store, "main", 2000).len(), 1);
    // Its worker could not record the outcome (a full disk): nobody else may take it while
    // the lease holds, and anyone may once it has run out.
    assert!(lease(&mut store, "main", 2000 + 59_999).is_empty());
    assert_eq!(
        one(
            &mut store,
            vec![Op::NextDue {
                account: "main".into(),
                now: ms(3000)
            }]
        ),
        [OpResult::NextDue(Some(ms(62_000)))]
    );
    let again = lease(&mut store, "main", 62_000);
    assert_eq!(again.len(), 1, "taken again without a restart");
    one(
        &mut store,
        vec![Op::Renew {
            id: "m1".into(),
            until: ms(200_000),
        }],
    );
    assert!(lease(&mut store, "main", 150_000).is_empty(), "a renewed lease holds");
}

#[test]
fn a_transaction_rolled_back_whole_applies_nothing_of_its_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(&dir.path().join(FILE_NAME)).unwrap();
    // What a full disk or an I/O error does inside a batch: SQLite rolls back the whole
    // transaction, not only the failing statement.
    store
        .conn
        .execute_batch(
            "CREATE TEMP TRIGGER full_disk BEFORE INSERT ON queue WHEN NEW.id = 'boom'
             BEGIN SELECT RAISE(ROLLBACK, 'database or disk is full'); END;",
        )
        .unwrap();
    let outcome = store.apply(&[
        vec![Op::Enqueue(message("a", "main", 1))],
        vec![Op::Enqueue(message("boom", "main", 1))],
        vec![Op::Enqueue(message("c", "main", 1))],
    ]);
    assert!(outcome.is_err(), "every request is told it failed: {outcome:?}");
    // …and none of them is stored: a client told 451 that retries makes no duplicate.
    assert!(lease(&mut store, "main", 10).is_empty());
    // The store goes on working.
    one(&mut store, vec![Op::Enqueue(message("d", "main", 1))]);
    assert_eq!(lease(&mut store, "main", 10).len(), 1);
}

#[test]
fn format_1_is_upgraded_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    let v1 = Connection::open(&path).unwrap();
    v1.execute_batch(
        "CREATE TABLE queue (id TEXT PRIMARY KEY, account TEXT NOT NULL, sender TEXT NOT NULL,
             recipients TEXT NOT NULL, content BLOB NOT NULL, size INTEGER NOT NULL, message_id TEXT,
             client TEXT NOT NULL, received_ms INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
             next_attempt_ms INTEGER NOT NULL, leased INTEGER NOT NULL DEFAULT 0, last_attempt_ms INTEGER,
             last_reply TEXT);
         CREATE INDEX queue_due ON queue (account, leased, next_attempt_ms);
         INSERT INTO queue (id, account, sender, recipients, content, size, client, received_ms,
                            next_attempt_ms, leased)
             VALUES ('old', 'main', 's@contoso.com', '[\"a@fabrikam.com\"]', x'00', 1, '127.0.0.1', 1, 1, 1);
         PRAGMA user_version = 1;",
    )
    .unwrap();
    drop(v1);
    let mut store = SqliteStore::open(&path).unwrap();
    let leased = lease(&mut store, "main", 10);
    assert_eq!(leased.len(), 1, "the old lease flag is a lease that has run out");
    assert_eq!((leased[0].message.id.as_str(), leased[0].crashes), ("old", 0));
}

#[test]
fn a_newer_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let err = SqliteStore::open(&path).unwrap_err().to_string();
    assert!(err.contains("queue format 99 is newer"), "{err}");
}
