//! Tokens: one request for many sends (disk cache), one for many concurrent callers, refresh of
//! an expired token, retries of transient token-endpoint failures only.

use std::sync::Arc;

use m365_emulator::{Fault, Stage};
use m365_mailer::oauth::{ClientCredential, DiskCache, RetryPolicy, TokenProvider, TokenSource};

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

fn provider(world: &World, retry: RetryPolicy) -> Arc<TokenProvider> {
    let tls = m365_mailer::tls::client_config(Some(&world.dir.path().join("ca.pem"))).unwrap();
    let http = m365_mailer::submit::http_client(&tls).unwrap();
    let source = TokenSource {
        token_endpoint: world.emulator.token_endpoint(TENANT),
        client_id: CLIENT.into(),
        scope: "https://outlook.office365.com/.default".into(),
        credential: ClientCredential::Secret(SECRET.into()),
        assertion_style: Default::default(),
        send_x5c: false,
    };
    Arc::new(TokenProvider::new(http, source, retry, None::<DiskCache>))
}

#[tokio::test]
async fn fifty_concurrent_callers_cause_one_request() {
    let world = World::start().await;
    world.emulator.faults().add(Fault::delay(Stage::Token, 200)).unwrap();
    let provider = provider(&world, RetryPolicy::default());
    let callers: Vec<_> = (0..50)
        .map(|_| {
            let p = Arc::clone(&provider);
            tokio::spawn(async move { p.token().await.map(|t| t.token) })
        })
        .collect();
    let mut tokens = Vec::new();
    for caller in callers {
        tokens.push(caller.await.unwrap().unwrap());
    }
    assert!(tokens.windows(2).all(|w| w[0] == w[1]), "everyone got the same token");
    assert_eq!(provider.requests(), 1);
    assert_eq!(world.emulator.stats().tokens_for(CLIENT).issued, 1);
}

#[tokio::test]
async fn transient_failures_are_retried_and_permanent_ones_are_not() {
    let world = World::start().await;
    let quick = RetryPolicy {
        attempts: 4,
        base_delay: std::time::Duration::from_millis(20),
        max_delay: std::time::Duration::from_millis(200),
    };
    world
        .emulator
        .faults()
        .add(Fault::http(503, "busy", Some(0)).times(1))
        .unwrap();
    world.emulator.faults().add(Fault::aadsts(90033).times(1)).unwrap();
    let provider = provider(&world, quick);
    provider.token().await.unwrap();
    assert_eq!(provider.requests(), 3, "503, then AADSTS90033, then the token");

    world.emulator.faults().add(Fault::aadsts(7000215).times(5)).unwrap();
    let fresh = self::provider(&world, quick);
    let error = fresh.token().await.unwrap_err();
    assert_eq!(error.entra().and_then(|e| e.code()), Some(7000215));
    assert!(!error.is_transient());
    assert_eq!(fresh.requests(), 1, "a wrong secret is not retried");
}
