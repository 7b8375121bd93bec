//! Injected faults: replies at named stages, dropped connections, latency, and a token endpoint
//! that fails, is slow, or does not answer.

use std::time::Duration;

use m365_emulator::{Fault, Stage};

use crate::support::*;

const PRX4: &str = "451 4.7.0 Temporary server error. Please try again later. PRX4";

#[tokio::test]
async fn a_reply_at_each_stage_fires_once_then_the_service_recovers() {
    let emulator = start(contoso()).await;
    let token = exchange_token(&emulator).await;
    let content = message(MAILBOX, "bob@fabrikam.com", "Faults");

    emulator
        .faults()
        .add(Fault::reply(Stage::Connect, "421 4.3.2 Service not available").times(1))
        .unwrap();
    Smtp::connect(&emulator).await.greeting.expect(421, "4.3.2");

    emulator.faults().add(Fault::reply(Stage::Auth, "535 5.7.139 Authentication unsuccessful, the request did not meet the criteria to be authenticated successfully. Contact your administrator.").times(1)).unwrap();
    let mut smtp = Smtp::connect_tls(&emulator).await;
    smtp.cmd(&format!("AUTH XOAUTH2 {}", xoauth2(MAILBOX, &token)))
        .await
        .expect(535, "5.7.139");
    smtp.cmd(&format!("AUTH XOAUTH2 {}", xoauth2(MAILBOX, &token)))
        .await
        .expect(235, "2.7.0");

    emulator.faults().add(Fault::reply(Stage::Mail, PRX4).times(1)).unwrap();
    smtp.cmd("MAIL FROM:<mailer@contoso.com>").await.expect(451, "4.7.0");
    emulator
        .faults()
        .add(
            Fault::reply(
                Stage::Rcpt,
                "550 5.7.708 Service unavailable. Access denied, traffic not accepted from this IP.",
            )
            .times(1),
        )
        .unwrap();
    smtp.cmd("MAIL FROM:<mailer@contoso.com>").await.expect(250, "2.1.0");
    smtp.cmd("RCPT TO:<bob@fabrikam.com>").await.expect(550, "5.7.708");
    smtp.cmd("RCPT TO:<bob@fabrikam.com>").await.expect(250, "2.1.5");
    emulator.faults().add(Fault::reply(Stage::Data, PRX4).times(1)).unwrap();
    smtp.cmd("DATA").await.expect(451, "4.7.0");
    smtp.cmd("RSET").await.expect(250, "2.0.0");

    emulator
        .faults()
        .add(Fault::reply(Stage::DataEnd, "550 5.1.8 Access denied, bad outbound sender").times(1))
        .unwrap();
    smtp.send_mail(MAILBOX, &["bob@fabrikam.com"], &content)
        .await
        .expect(550, "5.1.8");
    smtp.send_mail(MAILBOX, &["bob@fabrikam.com"], &content)
        .await
        .expect(250, "2.0.0");
    assert_eq!(emulator.store().len(), 1);
    assert_eq!(emulator.stats().faults_fired, 6);
}

#[tokio::test]
async fn faults_can_be_limited_to_a_mailbox_and_skip_events() {
    let emulator = start(contoso()).await;
    let token = exchange_token(&emulator).await;
    emulator
        .faults()
        .add(Fault::reply(Stage::Mail, PRX4).for_mailbox(SHARED))
        .unwrap();
    emulator
        .faults()
        .add(Fault::reply(Stage::Rcpt, PRX4).skip(1).times(1))
        .unwrap();
    let mut smtp = Smtp::authenticated(&emulator, MAILBOX, &token).await;
    smtp.cmd("MAIL FROM:<mailer@contoso.com>").await.expect(250, "2.1.0");
    smtp.cmd("RCPT TO:<a@fabrikam.com>").await.expect(250, "2.1.5");
    smtp.cmd("RCPT TO:<b@fabrikam.com>").await.expect(451, "4.7.0");
    smtp.cmd("RCPT TO:<c@fabrikam.com>").await.expect(250, "2.1.5");
}

#[tokio::test]
async fn dropped_connections_after_mail_mid_data_and_before_the_final_reply() {
    let emulator = start(contoso()).await;
    let token = exchange_token(&emulator).await;
    let content = message(MAILBOX, "bob@fabrikam.com", &format!("Long {}", "x".repeat(2000)));

    emulator
        .faults()
        .add(Fault::drop_connection(Stage::Mail).times(1))
        .unwrap();
    let mut smtp = Smtp::authenticated(&emulator, MAILBOX, &token).await;
    smtp.send(b"MAIL FROM:<mailer@contoso.com>\r\n").await;
    assert!(smtp.try_read().await.is_none(), "closed after MAIL");

    emulator.faults().add(Fault::drop_mid_data(100).times(1)).unwrap();
    let mut smtp = Smtp::authenticated(&emulator, MAILBOX, &token).await;
    smtp.cmd("MAIL FROM:<mailer@contoso.com>").await.expect(250, "2.1.0");
    smtp.cmd("RCPT TO:<bob@fabrikam.com>").await.expect(250, "2.1.5");
    assert_eq!(smtp.cmd("DATA").await.code, 354);
    smtp.send(&dot_stuff(&content)).await;
    smtp.send(b".\r\n").await;
    assert!(smtp.try_read().await.is_none(), "closed mid-DATA");

    emulator
        .faults()
        .add(Fault::drop_connection(Stage::DataEnd).times(1))
        .unwrap();
    let mut smtp = Smtp::authenticated(&emulator, MAILBOX, &token).await;
    smtp.cmd("MAIL FROM:<mailer@contoso.com>").await.expect(250, "2.1.0");
    smtp.cmd("RCPT TO:<bob@fabrikam.com>").await.expect(250, "2.1.5");
    smtp.send(format!("BDAT {} LAST\r\n", content.len()).as_bytes()).await;
    smtp.send(&content).await;
    assert!(
        smtp.try_read().await.is_none(),
        "closed after the content, before the reply"
    );
    assert!(emulator.store().is_empty(), "none of those was accepted");

    // Accepted by Exchange, reply lost: the client cannot know, a resend duplicates.
    emulator.faults().add(Fault::accept_then_drop().times(1)).unwrap();
    let mut smtp = Smtp::authenticated(&emulator, MAILBOX, &token).await;
    smtp.cmd("MAIL FROM:<mailer@contoso.com>").await.expect(250, "2.1.0");
    smtp.cmd("RCPT TO:<bob@fabrikam.com>").await.expect(250, "2.1.5");
    assert_eq!(smtp.cmd("DATA").await.code, 354);
    smtp.send(&dot_stuff(&content)).await;
    smtp.send(b".\r\n").await;
    assert!(smtp.try_read().await.is_none());
    assert_eq!(emulator.store().len(), 1);
}

#[tokio::test]
async fn injected_latency_costs_one_delay_per_flight() {
    let emulator = start_with(|s| s.latency.smtp_command_ms = 60).await;
    let token = exchange_token(&emulator).await;
    let mut smtp = Smtp::authenticated(&emulator, MAILBOX, &token).await;
    let content = message(MAILBOX, "bob@fabrikam.com", "Latency");
    let mut flight = format!(
        "MAIL FROM:<mailer@contoso.com>\r\nRCPT TO:<bob@fabrikam.com>\r\nBDAT {} LAST\r\n",
        content.len()
    )
    .into_bytes();
    flight.extend_from_slice(&content);
    let before = emulator.stats().round_trips;
    let started = Stopwatch::start();
    smtp.send(&flight).await;
    for _ in 0..3 {
        smtp.read().await;
    }
    let elapsed = started.elapsed();
    assert_eq!(emulator.stats().round_trips - before, 1);
    assert!(elapsed >= Duration::from_millis(60), "{elapsed:?}");
}

#[tokio::test]
async fn token_endpoint_failing_slow_or_silent() {
    let emulator = start(contoso()).await;
    let form = secret_form(EXCHANGE_SCOPE);
    let client = http(&emulator);
    let post = || client.post(emulator.token_endpoint(TENANT)).form(&form).send();

    emulator
        .faults()
        .add(Fault::http(503, "Service Unavailable", Some(7)).times(1))
        .unwrap();
    let response = post().await.unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "7");

    emulator.faults().add(Fault::aadsts(90033).times(1)).unwrap();
    let response = post().await.unwrap();
    assert_eq!(response.status(), 503);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error_codes"], serde_json::json!([90033]));
    assert_eq!(body["error"], "temporarily_unavailable");

    emulator.faults().add(Fault::delay(Stage::Token, 300).times(1)).unwrap();
    let started = Stopwatch::start();
    assert_eq!(post().await.unwrap().status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(300));

    emulator.faults().add(Fault::hang(Stage::Token).times(1)).unwrap();
    let silent = client
        .post(emulator.token_endpoint(TENANT))
        .form(&form)
        .timeout(Duration::from_millis(500))
        .send()
        .await;
    assert!(silent.unwrap_err().is_timeout());

    emulator
        .faults()
        .add(Fault::drop_connection(Stage::Token).times(1))
        .unwrap();
    assert!(post().await.is_err(), "connection closed without an answer");

    assert_eq!(post().await.unwrap().status(), 200, "recovered");
}

#[tokio::test]
async fn faults_and_counters_over_the_admin_api() {
    let emulator = start(contoso()).await;
    let client = http(&emulator);
    let base = emulator.base_url();
    let fault = serde_json::json!({"stage": "token", "action": "aadsts", "code": 7000222, "times": 1});
    let added = client
        .post(format!("{base}/_emulator/faults"))
        .json(&fault)
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), 201);
    let bad = serde_json::json!({"stage": "mail", "action": "http", "status": 500});
    assert_eq!(
        client
            .post(format!("{base}/_emulator/faults"))
            .json(&bad)
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
    let form = secret_form(EXCHANGE_SCOPE);
    let body: serde_json::Value = client
        .post(emulator.token_endpoint(TENANT))
        .form(&form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["error_codes"][0], 7000222);
    let stats: serde_json::Value = client
        .get(format!("{base}/_emulator/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["token_requests"][CLIENT]["failed"], 1);
    assert_eq!(stats["faults_fired"], 1);
}

#[tokio::test]
async fn plain_http_only_when_asked() {
    let mut options = m365_emulator::Options::new(contoso());
    options.plain_http = true;
    let emulator = m365_emulator::Emulator::start(options).await.unwrap();
    assert!(emulator.base_url().starts_with("http://"));
    let form = secret_form(EXCHANGE_SCOPE);
    let response = reqwest::Client::new()
        .post(emulator.token_endpoint(DOMAIN))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}
