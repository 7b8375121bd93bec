//! A failure is taught in one place: the catalog entry for `550 5.7.68 TenantInboundAttribution`
//! (`src/catalog/exchange_policy.rs`) is the only code that names it, and `send`'s exit code,
//! the relay's outcome and `doctor` all follow from it.

use std::time::Duration;

use m365_emulator::{Fault, Stage};

use crate::support::*;

const REPLY: &str = "550 5.7.68 TenantInboundAttribution; Rejecting. The message was attributed to a tenant by an inbound connector [BN8NAM11FT066]";

fn refuse(world: &World, times: u32) {
    world
        .emulator
        .faults()
        .add(Fault::reply(Stage::Mail, REPLY).times(times))
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failure_taught_once_reaches_send_the_relay_and_doctor() {
    let world = World::start().await;

    // `send`: permanent and the account's, not a permission: 69, with the entry's fix.
    refuse(&world, 1);
    let output = world.send(&["bob@fabrikam.com"], &complete_message("send"), 69).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("5.7.68") && stderr.contains("Get-InboundConnector"),
        "{stderr}"
    );

    // `doctor --send-test`: the send check fails with the same code and the same entry.
    refuse(&world, 1);
    let output = world
        .run(&["doctor", "--json", "--send-test", "bob@fabrikam.com"], b"")
        .await;
    assert_eq!(output.status.code(), Some(69));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let send = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "send")
        .unwrap();
    assert_eq!(send["status"], "fail", "{send}");
    assert_eq!(send["diagnosis"]["id"], "smtp/550-5.7.68", "{send}");
    assert_eq!(send["diagnosis"]["retry"], "after-account-fix", "{send}");

    // The relay: the account pauses and keeps the message, which goes once the refusal ends.
    refuse(&world, 1);
    let relay = world
        .relay("[[relay.listen]]\naddress = \"127.0.0.1:0\"\n\n[relay.delivery]\nretry_initial = \"1s\"\nretry_max = \"2s\"\n")
        .await;
    let before = world.emulator.store().len();
    submit(relay.addr().port(), &["bob@fabrikam.com"], &complete_message("relayed"));
    relay
        .wait_for_log("Exchange refuses this account", Duration::from_secs(20))
        .await;
    assert_eq!(
        world.wait_for_messages(before + 1, Duration::from_secs(30)).await,
        before + 1,
        "{}",
        relay.log_text()
    );
    assert!(!relay.log_text().contains("dead-lettered"), "{}", relay.log_text());
    relay.kill().await;
}
