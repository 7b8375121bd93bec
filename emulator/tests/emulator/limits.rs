//! Exchange Online's per-mailbox limits, with time windows compressed by `time_scale`.

use std::time::Duration;

use crate::support::*;

#[tokio::test]
async fn a_fourth_concurrent_connection_gets_432_4_3_2() {
    let emulator = start(contoso()).await;
    let token = exchange_token(&emulator).await;
    let mut sessions = Vec::new();
    for _ in 0..4 {
        sessions.push(Smtp::authenticated(&emulator, MAILBOX, &token).await);
    }
    let content = message(MAILBOX, "bob@fabrikam.com", "Busy");
    let refused = sessions[3].send_mail(MAILBOX, &["bob@fabrikam.com"], &content).await;
    refused.expect(432, "4.3.2");
    assert!(
        refused.lines[0].starts_with("4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded [Hostname="),
        "{refused:?}"
    );
    sessions[0]
        .send_mail(MAILBOX, &["bob@fabrikam.com"], &content)
        .await
        .expect(250, "2.0.0");

    // When one of the first three leaves, the fourth may submit.
    sessions[1].cmd("QUIT").await.expect(221, "2.0.0");
    drop(sessions.remove(1));
    tokio::time::sleep(Duration::from_millis(50)).await;
    sessions[2]
        .send_mail(MAILBOX, &["bob@fabrikam.com"], &content)
        .await
        .expect(250, "2.0.0");
    let stats = emulator.stats();
    assert_eq!(stats.throttle.thread_limit, 1);
    assert_eq!(stats.peak_connections.get(MAILBOX), Some(&4));
}

#[tokio::test]
async fn messages_beyond_the_rate_are_delayed_not_refused() {
    // 3 messages a "minute" of half a second.
    let emulator = start_with(|s| {
        s.exchange.messages_per_minute = 3;
        s.exchange.time_scale = 120.0;
    })
    .await;
    let token = exchange_token(&emulator).await;
    let mut smtp = Smtp::authenticated(&emulator, MAILBOX, &token).await;
    let started = Stopwatch::start();
    for i in 0..7 {
        let content = message(MAILBOX, "bob@fabrikam.com", &format!("Message {i}"));
        smtp.send_mail(MAILBOX, &["bob@fabrikam.com"], &content)
            .await
            .expect(250, "2.0.0");
    }
    let throttle = emulator.stats().throttle;
    let times: Vec<_> = emulator.store().messages().iter().map(|m| m.received_at).collect();
    assert_eq!(times.len(), 7);
    assert!(throttle.rate_delays >= 2, "{throttle:?}");
    // Never more than three submissions in any window; seven need two further windows.
    for pair in times.windows(4) {
        assert!(pair[3] - pair[0] >= time::Duration::milliseconds(500), "{times:?}");
    }
    assert!(
        started.elapsed() >= Duration::from_millis(1000),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn the_daily_recipient_quota_refuses_with_554_5_2_0() {
    let emulator = start_with(|s| s.exchange.recipients_per_day = 5).await;
    let token = exchange_token(&emulator).await;
    let mut smtp = Smtp::authenticated(&emulator, MAILBOX, &token).await;
    let to = ["a@fabrikam.com", "b@fabrikam.com", "c@fabrikam.com"];
    let content = message(MAILBOX, "a@fabrikam.com", "Quota");
    smtp.send_mail(MAILBOX, &to, &content).await.expect(250, "2.0.0");
    let refused = smtp.send_mail(MAILBOX, &to, &content).await;
    refused.expect(554, "5.2.0");
    assert!(refused.lines[0].starts_with("5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException"));
    smtp.send_mail(MAILBOX, &to[..2], &content).await.expect(250, "2.0.0");
    assert_eq!(emulator.stats().throttle.quota, 1);
}

#[tokio::test]
async fn recipients_per_message_are_capped() {
    let emulator = start_with(|s| s.exchange.max_recipients_per_message = 2).await;
    let token = exchange_token(&emulator).await;
    let mut smtp = Smtp::authenticated(&emulator, MAILBOX, &token).await;
    smtp.cmd("MAIL FROM:<mailer@contoso.com>").await.expect(250, "2.1.0");
    smtp.cmd("RCPT TO:<a@fabrikam.com>").await.expect(250, "2.1.5");
    smtp.cmd("RCPT TO:<b@fabrikam.com>").await.expect(250, "2.1.5");
    smtp.cmd("RCPT TO:<c@fabrikam.com>").await.expect(452, "4.5.3");
    assert_eq!(emulator.stats().throttle.too_many_recipients, 1);
}

#[tokio::test]
async fn an_unlicensed_user_mailbox_gets_a_transient_451() {
    let emulator = start_with(|s| s.tenants[0].mailboxes[0].licensed = false).await;
    let token = exchange_token(&emulator).await;
    let mut smtp = Smtp::authenticated(&emulator, MAILBOX, &token).await;
    let reply = smtp
        .send_mail(
            MAILBOX,
            &["bob@fabrikam.com"],
            &message(MAILBOX, "bob@fabrikam.com", "x"),
        )
        .await;
    reply.expect(451, "4.7.0");
    assert!(reply.lines[0].ends_with("PRX4"));
}
