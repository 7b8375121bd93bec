//! The relay's status page on the admin endpoint, with a queue and dead letters behind it.

use std::time::Duration;

use m365_emulator::{Fault, Stage};

use crate::support::*;

/// A relay with one dead letter, refused with `reply`, and `waiting` messages deferred.
pub(crate) async fn relay_with_a_dead_letter(world: &World, reply: &str, waiting: usize) -> RelayProcess {
    // The first message is refused for good; the next ones are deferred, and stay queued.
    world
        .emulator
        .faults()
        .add(Fault::reply(Stage::DataEnd, reply).times(1))
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
    for i in 0..waiting {
        submit(
            port,
            &["carol@fabrikam.com"],
            &complete_message(&format!("deferred {i}")),
        );
    }
    relay.wait_for_log("deferred", Duration::from_secs(20)).await;
    relay
}

/// The text of `page` between the first `start` and the next `end`.
fn between<'a>(page: &'a str, start: &str, end: &str) -> &'a str {
    page.split(start)
        .nth(1)
        .and_then(|rest| rest.split(end).next())
        .unwrap_or_else(|| panic!("no {start:?} in {page}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_status_page_shows_accounts_the_queue_and_dead_letters() {
    let world = World::start().await;
    let relay = relay_with_a_dead_letter(&world, "550 5.7.1 <b>Refused</b> for the test", 3).await;

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
        "1 dead letter",
        "550 5.7.1 &lt;b&gt;Refused&lt;/b&gt; for the test",
        "<h2>Queue</h2>",
        "deferred 0",
        "to the dead letters",
    ] {
        assert!(page.contains(expected), "missing {expected:?}:\n{page}");
    }
    let accounts = page.split("<h2>Activity</h2>").next().unwrap();
    assert!(
        accounts.contains("451 4.3.2 System not accepting network messages"),
        "the account's last reply: {accounts}"
    );
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

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_letter_is_retried_from_the_page_with_the_token_only() {
    const TOKEN: &str = "status-page-token-0123456789";
    let mut world = World::start().await;
    world.set("STATUS_TOKEN", TOKEN);
    world
        .emulator
        .faults()
        .add(Fault::reply(Stage::DataEnd, "550 5.7.1 Refused once").times(1))
        .unwrap();
    let relay = world
        .relay("[relay]\nadmin_token_env = \"STATUS_TOKEN\"\n[[relay.listen]]\naddress = \"127.0.0.1:0\"\n")
        .await;
    submit(
        relay.addr().port(),
        &["bob@fabrikam.com"],
        &complete_message("retried from the page"),
    );
    relay.wait_for_log("dead-lettered", Duration::from_secs(20)).await;
    let base = format!("http://{}", relay.admin.unwrap());
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = client.get(&base).send().await.unwrap().text().await.unwrap();
    assert!(
        page.contains("href=\"/login\"") && !page.contains("/dead/retry"),
        "{page}"
    );
    let id = between(&page, "<td><code>", "</code>").to_owned();

    // Without the token nothing changes; a wrong one is refused.
    let anonymous = client
        .post(format!("{base}/dead/retry"))
        .form(&[("id", id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 403);
    let wrong = client
        .post(format!("{base}/login"))
        .form(&[("token", "guess")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert!(wrong.headers().get("set-cookie").is_none());

    // The token opens a session; the cookie alone is not enough, its CSRF token is needed too.
    let login = client
        .post(format!("{base}/login"))
        .form(&[("token", TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 303);
    let cookie = login.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let session = cookie.split(';').next().unwrap().to_owned();
    let forged = client
        .post(format!("{base}/dead/retry"))
        .header("cookie", &session)
        .form(&[("id", id.as_str()), ("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let page = client
        .get(&base)
        .header("cookie", &session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = between(&page, "name=\"csrf\" value=\"", "\"").to_owned();
    let retried = client
        .post(format!("{base}/dead/retry"))
        .header("cookie", &session)
        .form(&[("id", id.as_str()), ("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(retried.status(), 303);
    assert_eq!(retried.headers()["location"], "/?done=dead-retry-done");
    assert_eq!(
        world.wait_for_messages(1, Duration::from_secs(20)).await,
        1,
        "{}",
        relay.log_text()
    );
    let page = client
        .get(&base)
        .header("cookie", &session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("0 dead letters"), "{page}");
    let deliveries = page.split("<h2>Last deliveries</h2>").nth(1).unwrap();
    assert!(
        deliveries.contains(&id) && deliveries.contains("250 2.0.0 OK"),
        "{page}"
    );
    relay.kill().await;
}

#[tokio::test]
async fn the_admin_endpoint_beyond_loopback_needs_a_token() {
    let world = World::start().await;
    let config = world.relay_config("[relay]\nadmin_listen = \"0.0.0.0:0\"\n");
    let args = ["relay", "--config", config.to_str().unwrap()];
    let out = tokio::time::timeout(Duration::from_secs(30), world.run(&args, b""))
        .await
        .expect("the relay refuses to start");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(
        stderr.contains("admin_listen") && stderr.contains("without a token"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn over_tls_with_the_relays_certificate_the_cookie_is_secure() {
    let mut world = World::start().await;
    world.set("STATUS_TOKEN", "tls-status-page-token-0123456789");
    let relay = world
        .relay("[relay]\nadmin_tls = true\nadmin_token_env = \"STATUS_TOKEN\"\n[[relay.listen]]\naddress = \"127.0.0.1:0\"\n")
        .await;
    let base = format!("https://localhost:{}", relay.admin.unwrap().port());
    // The relay's certificate is self-signed here (its fingerprint is in the log).
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = client.get(&base).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("<h2>Accounts</h2>"));
    let plain = reqwest::get(format!("http://127.0.0.1:{}/", relay.admin.unwrap().port())).await;
    assert!(
        plain.is_err() || !plain.unwrap().status().is_success(),
        "no plain HTTP on the TLS port"
    );
    let login = client
        .post(format!("{base}/login"))
        .form(&[("token", "tls-status-page-token-0123456789")])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 303);
    assert!(login.headers()["set-cookie"].to_str().unwrap().ends_with("; Secure"));
    relay.kill().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_takes_a_new_admin_token_and_ends_the_old_sessions() {
    let world = World::start().await;
    let token_file = world.file("admin-token", "first-token-0123456789\n");
    let relay = world
        .relay(&format!(
            "[relay]\nadmin_token_file = \"{}\"\n[[relay.listen]]\naddress = \"127.0.0.1:0\"\n",
            token_file.display()
        ))
        .await;
    let base = format!("http://{}", relay.admin.unwrap());
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let post = |token: &'static str| {
        client
            .post(format!("{base}/dead/retry"))
            .bearer_auth(token)
            .form(&[("id", "0000")])
            .send()
    };
    assert_eq!(post("first-token-0123456789").await.unwrap().status(), 303);
    let login = client
        .post(format!("{base}/login"))
        .form(&[("token", "first-token-0123456789")])
        .send()
        .await
        .unwrap();
    let session = login.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let logged_in = |page: &str| page.contains("action=\"/logout\"");
    let page = |session: String| {
        let request = client.get(&base).header("cookie", session);
        async move { request.send().await.unwrap().text().await.unwrap() }
    };
    assert!(logged_in(&page(session.clone()).await));

    std::fs::write(&token_file, "second-token-0123456789\n").unwrap();
    relay.signal("HUP");
    relay
        .wait_for_log("configuration reloaded", Duration::from_secs(20))
        .await;
    assert_eq!(post("first-token-0123456789").await.unwrap().status(), 403);
    assert_eq!(post("second-token-0123456789").await.unwrap().status(), 303);
    assert!(!logged_in(&page(session).await), "the old token's session is over");
    relay.kill().await;
}
