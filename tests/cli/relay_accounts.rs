//! The relay when Exchange refuses the account itself: the account pauses, says why, and keeps
//! its messages until the refusal ends.

use std::time::Duration;

use crate::support::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_account_pauses_and_keeps_its_queue() {
    use m365_emulator::{Fault, Stage};
    let world = World::start().await;
    // The IP is refused twice, then Exchange takes mail again.
    world
        .emulator
        .faults()
        .add(
            Fault::reply(
                Stage::Mail,
                "550 5.7.708 Service unavailable. Access denied, traffic not accepted from this IP. [MW4PR04CA0001]",
            )
            .times(2),
        )
        .unwrap();
    let relay = world
        .relay("[[relay.listen]]\naddress = \"127.0.0.1:0\"\n\n[relay.delivery]\nconnections_per_account = 1\nretry_initial = \"2s\"\nretry_max = \"4s\"\n")
        .await;
    let port = relay.addr().port();
    for i in 0..3 {
        submit(port, &["bob@fabrikam.com"], &complete_message(&format!("held {i}")));
    }
    relay
        .wait_for_log("Exchange refuses this account", Duration::from_secs(20))
        .await;
    // While paused: nothing is given up on, and readiness, the log and `queue` say why.
    let (status, ready) = admin_get(&relay, "/readyz").await;
    assert_eq!(status, 503, "{ready}");
    assert!(ready.contains("5.7.708"), "{ready}");
    let queue_dir = world.dir.path().join("queue");
    let list = world
        .run(&["queue", "--queue-dir", queue_dir.to_str().unwrap()], b"")
        .await;
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(
        text.contains("Account default is paused") && text.contains("5.7.708") && text.contains("-- 3 messages"),
        "{text}"
    );
    // The refusal ends: every message goes, none was dead-lettered.
    assert_eq!(
        world.wait_for_messages(3, Duration::from_secs(30)).await,
        3,
        "{}",
        relay.log_text()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let list = world
        .run(&["queue", "--queue-dir", queue_dir.to_str().unwrap(), "dead"], b"")
        .await;
    assert!(
        String::from_utf8_lossy(&list.stdout).contains("The dead-letter area is empty."),
        "{}",
        String::from_utf8_lossy(&list.stdout)
    );
    let list = world
        .run(&["queue", "--queue-dir", queue_dir.to_str().unwrap()], b"")
        .await;
    assert_eq!(String::from_utf8_lossy(&list.stdout), "The queue is empty.\n");
    let (status, _) = admin_get(&relay, "/readyz").await;
    assert_eq!(status, 200);
    relay.kill().await;
}
