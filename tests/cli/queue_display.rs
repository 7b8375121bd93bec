//! What `queue` prints came from clients and servers: a message cannot drive the terminal
//! that lists it.

use std::time::Duration;

use crate::support::*;

#[tokio::test(flavor = "multi_thread")]
async fn control_characters_from_a_message_are_shown_escaped() {
    use m365_emulator::{Fault, Stage};
    let world = World::start().await;
    world
        .emulator
        .faults()
        .add(Fault::reply(Stage::DataEnd, "451 4.7.500 Server busy. Please try again later.").times(1))
        .unwrap();
    let relay = world
        .relay("[[relay.listen]]\naddress = \"127.0.0.1:0\"\n\n[relay.delivery]\nretry_initial = \"1h\"\n")
        .await;
    // Clears the screen and retitles the terminal, if printed as it is.
    let hostile = format!(
        "From: {MAILBOX}\r\nTo: bob@fabrikam.com\r\nSubject: \x1b[2J\x1b]0;owned\x07\r\nMessage-ID: <\x1b[31mred@x>\r\n\r\nbody\r\n"
    );
    submit(relay.addr().port(), &["bob@fabrikam.com"], hostile.as_bytes());
    relay.wait_for_log("deferred", Duration::from_secs(20)).await;
    let queue_dir = world.dir.path().join("queue");
    let dir = queue_dir.to_str().unwrap();
    let list = world.run(&["queue", "--queue-dir", dir], b"").await;
    let id: String = String::from_utf8_lossy(&list.stdout)
        .lines()
        .nth(1)
        .unwrap()
        .chars()
        .take(12)
        .collect();
    let show = world.run(&["queue", "--queue-dir", dir, "show", &id], b"").await;
    let whole = world
        .run(&["queue", "--queue-dir", dir, "show", &id, "--content"], b"")
        .await;
    for out in [&list, &show, &whole] {
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(
            !out.stdout.iter().any(|b| *b == 0x1b || *b == 0x07),
            "a control character reached the terminal:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let shown = String::from_utf8_lossy(&whole.stdout);
    assert!(shown.contains(r"\u{1b}[2J"), "{shown}");
    let summary = String::from_utf8_lossy(&show.stdout);
    assert!(
        summary.contains("Subject:      [2J ]0;owned\n"),
        "stored without its control characters: {summary}"
    );
    relay.kill().await;
}
