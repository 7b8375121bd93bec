//! Tokens: one request for many sends (disk cache), one for many concurrent callers, refresh of
//! an expired token, retries of transient token-endpoint failures only.

use crate::support::*;

#[tokio::test]
async fn a_hundred_sends_share_one_token_through_the_disk_cache() {
    // Exchange's 30 messages a minute would make this take minutes.
    let world = World::start_with(|s| s.exchange.messages_per_minute = 1000).await;
    for i in 0..100 {
        world
            .send(&["bob@fabrikam.com"], &complete_message(&format!("Run {i}")), 0)
            .await;
    }
    let stats = world.emulator.stats();
    assert_eq!(stats.tokens_for(CLIENT).issued, 1, "{:?}", stats.token_requests);
    assert_eq!(world.emulator.store().len(), 100);

    // The cache is private to the user.
    use std::os::unix::fs::PermissionsExt as _;
    let dir = world.cache_dir().join("m365-mailer/tokens");
    assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
    let file = std::fs::read_dir(&dir).unwrap().next().unwrap().unwrap().path();
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
}

#[tokio::test]
async fn an_expired_cached_token_is_replaced() {
    let world = World::start().await;
    world.send(&["bob@fabrikam.com"], &complete_message("First"), 0).await;
    let dir = world.cache_dir().join("m365-mailer/tokens");
    let file = std::fs::read_dir(&dir).unwrap().next().unwrap().unwrap().path();
    let mut cached: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let past = now().unix_timestamp() - 10;
    cached["expires_at"] = past.into();
    cached["refresh_at"] = (past - 600).into();
    std::fs::write(&file, cached.to_string()).unwrap();
    world.send(&["bob@fabrikam.com"], &complete_message("Second"), 0).await;
    assert_eq!(world.emulator.stats().tokens_for(CLIENT).issued, 2);
    assert_eq!(world.emulator.store().len(), 2);
    world
        .send(&["--no-token-cache", "bob@fabrikam.com"], &complete_message("Third"), 0)
        .await;
    assert_eq!(
        world.emulator.stats().tokens_for(CLIENT).issued,
        3,
        "--no-token-cache asks again"
    );
}
