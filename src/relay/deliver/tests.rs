use std::sync::Mutex;

use super::*;
use crate::queue::{Backoff, Inspector, NewMessage};
use crate::relay::alert::AlertSettings;
use crate::testing::Tenant;

/// Markers: a message whose content holds one crashes its delivery (tests only).
static CRASH_ON: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Called by [`AccountDelivery::deliver`] in test builds: a stand-in for a bug that panics on
/// some content.
pub(super) fn crash_hook(leased: &Leased) {
    let hit = CRASH_ON
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
        .find(|m| leased.message.content.windows(m.len()).any(|w| w == m.as_bytes()))
        .cloned();
    if let Some(marker) = hit {
        panic!("test crash on {marker}");
    }
}

/// Relays (by host name) whose next worker loop crashes once (tests only).
static WORKER_CRASH: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Called at the top of each worker loop in test builds: a stand-in for a bug outside a delivery.
pub(super) fn worker_hook(hostname: &str) {
    let mut pending = WORKER_CRASH.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(i) = pending.iter().position(|h| h == hostname) {
        pending.remove(i);
        drop(pending);
        panic!("test crash of the worker of {hostname}");
    }
}

fn message(id: &str, subject: &str) -> NewMessage {
    NewMessage {
        id: id.into(),
        account: "default".into(),
        sender: m365_emulator::fixture::MAILBOX.into(),
        recipients: vec!["bob@fabrikam.com".into()],
        content: format!(
            "From: {}\r\nSubject: {subject}\r\n\r\nbody\r\n",
            m365_emulator::fixture::MAILBOX
        )
        .into_bytes(),
        message_id: None,
        client: "127.0.0.1".into(),
        received: Timestamp::now(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crashing_delivery_is_deferred_then_given_up_and_the_account_goes_on() {
    let marker = format!("crash-{}", uuid::Uuid::new_v4().simple());
    CRASH_ON.lock().unwrap().push(marker.clone());
    let tenant = Tenant::start().await;
    let emulator = &tenant.emulator;
    let dir = tempfile::tempdir().unwrap();
    let (delivery, queue, stop) = delivery_with(&tenant, dir.path(), Default::default()).await;
    queue.enqueue(message("crashes", &marker)).await.unwrap();
    queue.enqueue(message("fine", "an ordinary message")).await.unwrap();
    let (workers, refresher) = delivery.start();

    let inspector = Inspector::open(&dir.path().join("queue")).unwrap();
    let settled = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let waiting = inspector.list(Timestamp::now()).unwrap();
            if waiting.is_empty() && emulator.store().len() == 1 {
                return;
            }
            assert!(
                waiting
                    .iter()
                    .all(|e| !e.leased || e.message.id == "crashes" || e.message.id == "fine"),
                "{waiting:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(settled.is_ok(), "{:?}", inspector.list(Timestamp::now()));
    // The next message went; the crashing one was tried three times, then given up on with
    // what happened, and nothing is left "delivering now".
    let delivered = emulator.store().messages();
    assert!(String::from_utf8_lossy(&delivered[0].data).contains("an ordinary message"));
    let dead = inspector.dead().unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].message.id, "crashes");
    assert_eq!(dead[0].message.attempts, 3);
    assert!(
        dead[0]
            .reply
            .starts_with("gave up after 3 crashed deliveries; last: test crash on crash-"),
        "{}",
        dead[0].reply
    );
    assert!(dead[0].diagnosis.contains("a bug"), "{}", dead[0].diagnosis);
    // The worker is still alive: a new message goes too.
    queue.enqueue(message("later", "after the crash")).await.unwrap();
    delivery.notify();
    let later = tokio::time::timeout(Duration::from_secs(10), async {
        while emulator.store().len() < 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(later.is_ok(), "the worker survived its crashes");
    finish(&stop, workers, refresher).await;
}

/// Stops the workers and the refresher.
async fn finish(
    stop: &watch::Sender<bool>,
    workers: Vec<tokio::task::JoinHandle<()>>,
    refresher: Option<tokio::task::JoinHandle<()>>,
) {
    let _ = stop.send(true);
    for worker in workers {
        let _ = worker.await;
    }
    if let Some(r) = refresher {
        r.abort();
    }
}

#[test]
fn only_a_connection_closed_before_it_took_anything_is_retried_at_once() {
    use std::io::ErrorKind;

    use crate::smtp::{Reply, SmtpError, Step};
    let io = |step, kind: ErrorKind| -> Result<crate::smtp::Delivery, SubmitError> {
        Err(SubmitError::Smtp(SmtpError::Io {
            step,
            source: kind.into(),
        }))
    };
    let refused = |step, code, line: &str| -> Result<crate::smtp::Delivery, SubmitError> {
        Err(SubmitError::Smtp(SmtpError::Rejected {
            step,
            reply: Reply::new(code, vec![line.into()]),
            challenge: None,
        }))
    };
    assert!(stale(&io(Step::Rset, ErrorKind::UnexpectedEof)));
    assert!(stale(&io(Step::Rset, ErrorKind::BrokenPipe)));
    assert!(stale(&io(Step::Rcpt, ErrorKind::ConnectionReset)));
    assert!(stale(&refused(Step::Rset, 421, "4.4.2 timeout exceeded")));
    assert!(stale(&refused(Step::Mail, 421, "4.3.2 Service not available")));
    // Once the content's reply is awaited, Exchange may have taken the message.
    assert!(!stale(&io(Step::Content, ErrorKind::UnexpectedEof)));
    assert!(!stale(&io(Step::Content, ErrorKind::ConnectionReset)));
    assert!(!stale(&refused(Step::Content, 421, "4.3.2 Service not available")));
    assert!(!stale(&Err(SubmitError::Smtp(SmtpError::Timeout {
        step: Step::Content,
        after: Duration::from_secs(600),
    }))));
}

/// A delivery of the emulator's tenant with these limits, and its queue.
async fn delivery_with(
    tenant: &Tenant,
    dir: &std::path::Path,
    limits: crate::relay::limits::SendLimits,
) -> (Arc<AccountDelivery>, Queue, watch::Sender<bool>) {
    delivery_named(tenant, dir, limits, "relay.test").await
}

async fn delivery_named(
    tenant: &Tenant,
    dir: &std::path::Path,
    limits: crate::relay::limits::SendLimits,
    hostname: &str,
) -> (Arc<AccountDelivery>, Queue, watch::Sender<bool>) {
    let (queue, _) = Queue::open(&dir.join("queue")).unwrap();
    let settings = Settings {
        connections_per_account: 1,
        limits,
        per_account: Vec::new(),
        backoff: Backoff {
            initial: Duration::from_millis(50),
            max: Duration::from_millis(100),
            lifetime: Duration::from_secs(3600),
        },
        connection_idle: Duration::from_secs(60),
        lease: Duration::from_secs(600),
        dsn_to: None,
    };
    let (stop, stopped) = watch::channel(false);
    let delivery = AccountDelivery::new(
        tenant.account(),
        queue.clone(),
        settings,
        hostname.into(),
        Arc::new(Metrics::new()),
        Alerts::new(AlertSettings::off("relay.test")),
        stopped,
    )
    .await
    .unwrap();
    (delivery, queue, stop)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_that_crashes_outside_a_delivery_is_started_again() {
    let tenant = Tenant::start().await;
    let emulator = &tenant.emulator;
    let dir = tempfile::tempdir().unwrap();
    let hostname = format!("crash-{}.test", uuid::Uuid::new_v4().simple());
    WORKER_CRASH.lock().unwrap().push(hostname.clone());
    let (delivery, queue, stop) = delivery_named(&tenant, dir.path(), Default::default(), &hostname).await;
    let (workers, refresher) = delivery.start();
    queue
        .enqueue(message("after", "after the worker's crash"))
        .await
        .unwrap();
    delivery.notify();
    let delivered = tokio::time::timeout(Duration::from_secs(10), async {
        while emulator.store().is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(delivered.is_ok(), "the account's only worker came back");
    assert!(WORKER_CRASH.lock().unwrap().is_empty(), "it did crash");
    finish(&stop, workers, refresher).await;
}

/// The dead letters, once there are any (within 10 seconds).
async fn dead_letters(inspector: &Inspector) -> Option<Vec<crate::queue::DeadEntry>> {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let dead = inspector.dead().unwrap();
            if !dead.is_empty() {
                return dead;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn more_recipients_than_a_day_allows_is_said_at_once() {
    let tenant = Tenant::start().await;
    let emulator = &tenant.emulator;
    let dir = tempfile::tempdir().unwrap();
    let limits = crate::relay::limits::SendLimits {
        recipients: 2,
        ..crate::relay::limits::SendLimits::default()
    };
    let (delivery, queue, stop) = delivery_with(&tenant, dir.path(), limits).await;
    let mut big = message("big", "three recipients");
    big.recipients = vec![
        "a@fabrikam.com".into(),
        "b@fabrikam.com".into(),
        "c@fabrikam.com".into(),
    ];
    queue.enqueue(big).await.unwrap();
    let (workers, refresher) = delivery.start();
    let inspector = Inspector::open(&dir.path().join("queue")).unwrap();
    let dead = dead_letters(&inspector)
        .await
        .expect("given up on, not left waiting for ever");
    assert!(
        dead[0]
            .reply
            .starts_with("the message has 3 recipients; the mailbox may send to at most 2 in 24 hours"),
        "{}",
        dead[0].reply
    );
    assert!(inspector.list(Timestamp::now()).unwrap().is_empty());
    assert!(emulator.store().is_empty());
    finish(&stop, workers, refresher).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_smtp_client_never_writes_an_address_that_could_carry_parameters() {
    let tenant = Tenant::start().await;
    let emulator = &tenant.emulator;
    let submitter = Submitter::new(tenant.account(), &crate::submit::Options::default()).unwrap();
    let mut connection = submitter.connect().await.unwrap();
    let envelope = Envelope {
        from: m365_emulator::fixture::MAILBOX.into(),
        to: vec!["v@evil> NOTIFY=NEVER@x.com".into()],
    };
    let error = connection
        .send_mail(&envelope, b"Subject: x\r\n\r\nx\r\n")
        .await
        .unwrap_err();
    assert!(matches!(error, crate::smtp::SmtpError::BadAddress { .. }), "{error}");
    assert!(emulator.store().is_empty());
    assert_eq!(emulator.stats().command("RCPT"), 0, "no RCPT was written");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_whose_recipients_cannot_be_read_is_never_taken_as_delivered() {
    let tenant = Tenant::start().await;
    let emulator = &tenant.emulator;
    let dir = tempfile::tempdir().unwrap();
    let (delivery, queue, stop) = delivery_with(&tenant, dir.path(), Default::default()).await;
    queue.enqueue(message("damaged", "damaged row")).await.unwrap();
    // A disk or a hand that damaged the row.
    let file = dir.path().join("queue").join("queue.sqlite3");
    let damage = rusqlite::Connection::open(&file).unwrap();
    damage.busy_timeout(Duration::from_secs(5)).unwrap();
    damage
        .execute(
            "UPDATE queue SET recipients = '[\"bob@fabrikam.com\"' WHERE id = 'damaged'",
            [],
        )
        .unwrap();
    drop(damage);
    let (workers, refresher) = delivery.start();
    let inspector = Inspector::open(&dir.path().join("queue")).unwrap();
    let dead = dead_letters(&inspector)
        .await
        .expect("kept in the dead-letter area, not removed as delivered");
    assert!(dead[0].reply.contains("no readable recipient"), "{}", dead[0].reply);
    assert!(emulator.store().is_empty());
    assert_eq!(emulator.stats().command("MAIL"), 0, "nothing was sent");
    finish(&stop, workers, refresher).await;
}
