//! Tests of `provider.rs`.

use super::*;

/// A moment in Unix seconds.
fn s(secs: i64) -> Timestamp {
    Timestamp::from_unix_secs(secs)
}

fn token(expires_in: u64, refresh_in: Option<u64>, now: i64) -> AccessToken {
    AccessToken::from_response(
        response::TokenResponse {
            access_token: "t".into(),
            expires_in,
            refresh_in,
        },
        s(now),
        MINIMUM_VALIDITY,
    )
}

#[test]
fn freshness_over_a_token_life() {
    let t = token(3599, None, 1000);
    assert_eq!(t.freshness(s(1000), MINIMUM_VALIDITY), Freshness::Fresh);
    assert_eq!(t.freshness(s(1000 + 3599 - 601), MINIMUM_VALIDITY), Freshness::Fresh);
    assert_eq!(
        t.freshness(s(1000 + 3599 - 600), MINIMUM_VALIDITY),
        Freshness::Refresh,
        "ten minutes before expiry"
    );
    assert_eq!(t.freshness(s(1000 + 3599 - 61), MINIMUM_VALIDITY), Freshness::Refresh);
    assert_eq!(
        t.freshness(s(1000 + 3599 - 60), MINIMUM_VALIDITY),
        Freshness::Expired,
        "too close to expiry to hand out"
    );
    assert_eq!(t.freshness(s(1000 + 5000), MINIMUM_VALIDITY), Freshness::Expired);
}

/// High Volume Email refuses a token that "will expire soon": for a server that wants 15
/// minutes left, a token with 12 minutes left is not handed out, and one is refreshed half an
/// hour before it expires.
#[test]
fn a_server_that_wants_more_time_left_gets_fresher_tokens() {
    let fifteen = Duration::from_secs(15 * 60);
    let t = AccessToken::from_response(
        response::TokenResponse {
            access_token: "t".into(),
            expires_in: 3600,
            refresh_in: None,
        },
        s(0),
        fifteen,
    );
    assert_eq!(t.refresh_at, s(1800), "twice the minimum before expiry");
    let twelve_minutes_left = s(3600 - 12 * 60);
    assert_eq!(t.freshness(twelve_minutes_left, fifteen), Freshness::Expired);
    assert_eq!(
        t.freshness(twelve_minutes_left, MINIMUM_VALIDITY),
        Freshness::Refresh,
        "where a minute is enough, it still goes"
    );
}

#[test]
fn absurd_lifetimes_neither_overflow_nor_last() {
    for expires_in in [u64::MAX, i64::MAX as u64, 10_u64.pow(18)] {
        let t = token(expires_in, Some(u64::MAX), 1_800_000_000);
        assert_eq!(t.expires_at, s(1_800_000_000) + LONGEST_LIFETIME);
        assert!(t.refresh_at <= t.expires_at);
        assert_eq!(t.freshness(s(1_800_000_000), MINIMUM_VALIDITY), Freshness::Fresh);
    }
    let odd = AccessToken {
        token: Secret::new("t"),
        expires_at: s(i64::MIN),
        refresh_at: s(i64::MIN),
    };
    assert_eq!(odd.freshness(s(1_800_000_000), MINIMUM_VALIDITY), Freshness::Expired);
}

#[test]
fn refresh_in_brings_the_refresh_forward() {
    let t = token(86_400, Some(3600), 0);
    assert_eq!(t.refresh_at, s(3600));
    assert_eq!(t.freshness(s(3599), MINIMUM_VALIDITY), Freshness::Fresh);
    assert_eq!(t.freshness(s(3600), MINIMUM_VALIDITY), Freshness::Refresh);
    // A short-lived token is refreshed by the margin, whatever refresh_in says…
    assert_eq!(token(1500, Some(1400), 0).refresh_at, s(900));
    // … but not before half its life: it must not be due for refresh on arrival.
    assert_eq!(token(900, Some(800), 0).refresh_at, s(450));
    assert_eq!(token(130, None, 10).refresh_at, s(75));
}

#[cfg(unix)]
#[test]
fn the_disk_cache_is_used_only_when_it_is_this_users_alone() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let cache = DiskCache::at(dir.path().join("tokens"));
    let source = TokenSource {
        token_endpoint: "https://login.example/t".into(),
        client_id: "c".into(),
        scope: "s".into(),
        credential: ClientCredential::Secret(Secret::new("x")),
        assertion_style: AssertionStyle::default(),
        send_x5c: false,
        minimum_validity: MINIMUM_VALIDITY,
    };
    let t = token(3599, None, Timestamp::now().unix_secs());
    cache.store(&source, &t).unwrap();
    let path = cache.path(&source);
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(cache.load(&source), Some(t.clone()));
    // Readable by others: not trusted (someone may have planted it, or read it).
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(cache.load(&source), None);
    // Replaced by a link to a file of one's choosing: not followed, neither to read nor to write.
    std::fs::remove_file(&path).unwrap();
    let elsewhere = dir.path().join("elsewhere.json");
    std::fs::write(&elsewhere, serde_json::to_vec(&t).unwrap()).unwrap();
    std::fs::set_permissions(&elsewhere, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &path).unwrap();
    assert_eq!(cache.load(&source), None);
    cache.store(&source, &t).unwrap();
    assert!(!std::fs::symlink_metadata(&path).unwrap().file_type().is_symlink());
    assert_eq!(
        std::fs::read(&elsewhere).unwrap(),
        serde_json::to_vec(&t).unwrap(),
        "untouched"
    );
    // A cache directory others can read is made private again when written.
    std::fs::set_permissions(dir.path().join("tokens"), std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(cache.load(&source), None);
    cache.store(&source, &t).unwrap();
    assert_eq!(cache.load(&source), Some(t));
}

#[test]
fn cached_tokens_serialise_with_the_token() {
    let t = token(3599, None, 0);
    let json = serde_json::to_string(&t).unwrap();
    assert_eq!(serde_json::from_str::<AccessToken>(&json).unwrap(), t);
    assert!(!format!("{t:?}").contains("\"t\""), "Debug does not show the token");
}

/// A provider for the emulator's tenant, without the disk cache.
fn provider(tenant: &crate::testing::Tenant, retry: RetryPolicy) -> Arc<TokenProvider> {
    let account = tenant.account();
    let tls = crate::tls::client_config(Some(&tenant.ca)).unwrap();
    let http = crate::submit::http_client(&tls).unwrap();
    Arc::new(TokenProvider::new(http, account.token_source().unwrap(), retry, None))
}

#[tokio::test]
async fn fifty_concurrent_callers_cause_one_request() {
    let tenant = crate::testing::Tenant::start().await;
    let faults = tenant.emulator.faults();
    faults
        .add(m365_emulator::Fault::delay(m365_emulator::Stage::Token, 200))
        .unwrap();
    let provider = provider(&tenant, RetryPolicy::default());
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
    assert_eq!(tenant.emulator.stats().tokens_issued(), 1);
}

#[tokio::test]
async fn transient_failures_are_retried_and_permanent_ones_are_not() {
    use m365_emulator::Fault;
    let tenant = crate::testing::Tenant::start().await;
    let quick = RetryPolicy {
        attempts: 4,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
    };
    let faults = tenant.emulator.faults();
    faults.add(Fault::http(503, "busy", Some(0)).times(1)).unwrap();
    faults.add(Fault::aadsts(90033).times(1)).unwrap();
    let provider = provider(&tenant, quick);
    provider.token().await.unwrap();
    assert_eq!(provider.requests(), 3, "503, then AADSTS90033, then the token");

    faults.add(Fault::aadsts(7000215).times(5)).unwrap();
    let fresh = self::provider(&tenant, quick);
    let error = fresh.token().await.unwrap_err();
    assert!(
        matches!(&error, TokenError::Entra(e) if e.code() == Some(7000215)),
        "{error}"
    );
    assert!(!error.is_transient());
    assert_eq!(fresh.requests(), 1, "a wrong secret is not retried");
}

#[tokio::test]
async fn tokens_are_refreshed_in_the_background_and_kept_when_a_refresh_fails() {
    let tenant = crate::testing::Tenant::start_with(|s| s.entra.refresh_in_secs = Some(1)).await;
    let provider = provider(&tenant, RetryPolicy::default());
    let first = provider.token().await.unwrap();
    assert_eq!(provider.requests(), 1);

    // Past refresh_in, a failed refresh still hands out the valid token.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let faults = tenant.emulator.faults();
    faults.add(m365_emulator::Fault::aadsts(7000222).times(1)).unwrap();
    let kept = provider.token().await.unwrap();
    assert_eq!(kept.token, first.token);
    assert_eq!(provider.requests(), 2);

    // The background refresher replaces it without anyone asking.
    let refresher = provider.spawn_refresher();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    refresher.abort();
    assert!(provider.requests() >= 3, "{}", provider.requests());
    assert_ne!(provider.token().await.unwrap().token, first.token);
}
