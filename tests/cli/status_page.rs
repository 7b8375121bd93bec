//! The relay's status page on the admin endpoint, with a queue and dead letters behind it.

use std::time::Duration;

use m365_emulator::{Fault, Stage};

use crate::support::*;

#[tokio::test(flavor = "multi_thread")]
async fn the_status_page_shows_accounts_the_queue_and_dead_letters() {
    let world = World::start().await;
    // The first message is refused for good; the next ones are deferred, and stay queued.
    world
        .emulator
        .faults()
        .add(Fault::reply(Stage::DataEnd, "550 5.7.1 <b>Refused</b> for the test").times(1))
        .unwrap();
    let relay = world
        .relay("[[relay.listen]]\naddress = \"127.0.0.1:0\"\n\n[relay.delivery]\nconnections_per_account = 1\n")
        .await;
    let port = relay.addr().port();
    submit(port, &["bob@fabrikam.com"], &complete_message("to the dead letters"));
    relay.wait_for_log("dead-lettered", Duration::from_secs(20)).await;
    world
        .emulator
        .faults()
        .add(Fault::reply(
            Stage::DataEnd,
            "451 4.3.2 System not accepting network messages",
        ))
        .unwrap();
    for i in 0..3 {
        submit(
            port,
            &["carol@fabrikam.com"],
            &complete_message(&format!("deferred {i}")),
        );
    }
    relay.wait_for_log("deferred", Duration::from_secs(20)).await;

    let url = format!("http://{}/", relay.admin.unwrap());
    let response = reqwest::get(&url).await.unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert!(
        headers["content-security-policy"]
            .to_str()
            .unwrap()
            .starts_with("default-src 'none'")
    );
    let page = response.text().await.unwrap();
    for expected in [
        "<h2>Accounts</h2>",
        MAILBOX,
        "Exchange",
        "3 waiting",
        "carol@fabrikam.com",
        "451 4.3.2 System not accepting network messages",
        "1 dead letters",
        "550 5.7.1 &lt;b&gt;Refused&lt;/b&gt; for the test",
    ] {
        assert!(page.contains(expected), "missing {expected:?}:\n{page}");
    }
    // A search narrows both lists.
    let found = reqwest::get(format!("{url}?q=nobody%40nowhere"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        found.contains("0 waiting messages") && found.contains("0 dead letters"),
        "{found}"
    );
    relay.kill().await;
}
