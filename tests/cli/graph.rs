//! The Microsoft Graph transport against the emulator's `sendMail`.

use m365_emulator::Fault;
use m365_emulator::fixture::{CLIENT, MAILBOX};
use m365_emulator::model::{AccessRight, Api, ApplicationAccessPolicy};

use crate::support::{World, complete_message, instant, submit};

async fn graph_world(change: impl FnOnce(&mut m365_emulator::Scenario)) -> World {
    let mut world = World::start_with(change).await;
    world.set("M365_MAILER_TRANSPORT", "graph");
    world.set("M365_MAILER_GRAPH_URL", &world.emulator.graph_url());
    world
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_goes_through_graph_byte_for_byte_and_hidden_recipients_become_bcc() {
    let world = graph_world(|_| {}).await;
    let content = complete_message("through Graph");
    world.send(&["--no-token-cache", "bob@fabrikam.com"], &content, 0).await;
    // sendmail -t: the Bcc header is removed from the content, and Graph gets it back.
    let with_bcc = b"From: mailer@contoso.com\r\nTo: bob@fabrikam.com\r\nBcc: audit@contoso.com\r\nSubject: t\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <t@contoso.com>\r\n\r\nbody\r\n";
    world.send(&["--no-token-cache", "-t"], with_bcc, 0).await;

    let messages = world.emulator.store().messages();
    assert_eq!(messages.len(), 2);
    assert!(messages.iter().all(|m| m.via_graph && m.mailbox == MAILBOX));
    assert_eq!(messages[0].data, content, "the MIME arrives as sent");
    assert_eq!(messages[1].rcpt_to, ["bob@fabrikam.com", "audit@contoso.com"]);
    let stats = world.emulator.stats();
    assert_eq!((stats.graph_requests, stats.smtp_connections), (2, 0));
}

#[tokio::test(flavor = "multi_thread")]
async fn throttling_is_waited_out_with_retry_after() {
    let world = graph_world(|_| {}).await;
    let body =
        r#"{"error":{"code":"ApplicationThrottled","message":"Application is over its MailboxConcurrency limit."}}"#;
    world
        .emulator
        .faults()
        .add(Fault::graph_http(429, body, Some(1)).times(1))
        .unwrap();
    let started = instant();
    world
        .send(
            &["--no-token-cache", "bob@fabrikam.com"],
            &complete_message("after 429"),
            0,
        )
        .await;
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(1),
        "Retry-After was honoured"
    );
    assert_eq!(world.emulator.store().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn graph_refusals_are_explained() {
    // An application access policy that leaves the mailbox out.
    let world = graph_world(|s| {
        s.tenants[0].application_access_policies.push(ApplicationAccessPolicy {
            app_id: CLIENT.to_owned(),
            mailboxes: vec!["alerts@contoso.com".to_owned()],
            access_right: AccessRight::RestrictAccess,
        });
    })
    .await;
    let out = world
        .send(&["--no-token-cache", "bob@fabrikam.com"], &complete_message("x"), 77)
        .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Access to OData is disabled"), "{stderr}");
    assert!(
        stderr.contains("Test-ApplicationAccessPolicy") && stderr.contains(MAILBOX),
        "{stderr}"
    );

    // No Mail.Send consent.
    let world = graph_world(|s| {
        let app = s.tenants[0].apps.iter_mut().find(|a| a.client_id == CLIENT).unwrap();
        app.permissions.retain(|p| p.api != Api::Graph);
    })
    .await;
    let out = world
        .send(&["--no-token-cache", "bob@fabrikam.com"], &complete_message("x"), 77)
        .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("ErrorAccessDenied") && stderr.contains("Mail.Send"),
        "{stderr}"
    );
    assert!(stderr.contains("b633e1c5-b582-4048-a93e-9f11b44c7e96=Role"), "{stderr}");

    // A recipient in the headers that the command line left out: refused before sending.
    let world = graph_world(|_| {}).await;
    let out = world
        .send(&["--no-token-cache", "carol@fabrikam.com"], &complete_message("x"), 65)
        .await;
    assert!(String::from_utf8_lossy(&out.stderr).contains("is in the message's headers but not among its recipients"));
    assert_eq!(world.emulator.stats().graph_requests, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_relay_delivers_through_graph_and_sorts_graphs_refusals() {
    let world = graph_world(|s| {
        s.exchange.messages_per_minute = 10_000;
    })
    .await;
    let relay = world
        .relay("[[relay.listen]]\naddress = \"127.0.0.1:0\"\n\n[relay.delivery]\nretry_initial = \"1s\"\nrate_window = \"2s\"\n")
        .await;
    let port = relay.addr().port();
    let content = complete_message("device through Graph");
    // The device names bob in To and audit only in the envelope.
    submit(port, &["bob@fabrikam.com", "audit@contoso.com"], &content);
    assert_eq!(world.wait_for_messages(1, std::time::Duration::from_secs(20)).await, 1);
    let stored = &world.emulator.store().messages()[0];
    assert!(stored.via_graph);
    assert_eq!(stored.rcpt_to, ["bob@fabrikam.com", "audit@contoso.com"]);
    let text = String::from_utf8_lossy(&stored.data);
    assert!(text.starts_with("Bcc: <audit@contoso.com>\r\nReceived: "), "{text}");
    assert!(
        stored.data.ends_with(&content),
        "the device's message follows byte for byte"
    );

    // Throttled once: the message waits and goes.
    world
        .emulator
        .faults()
        .add(Fault::graph_http(429, "{}", Some(1)).times(1))
        .unwrap();
    submit(port, &["bob@fabrikam.com"], &complete_message("after throttling"));
    assert_eq!(world.wait_for_messages(2, std::time::Duration::from_secs(30)).await, 2);

    // A To header naming someone outside the envelope: Graph would send to them too, so the
    // message goes to the dead-letter area, saying why, instead.
    submit(port, &["carol@fabrikam.com"], &complete_message("wrong envelope"));
    relay
        .wait_for_log("dead-lettered", std::time::Duration::from_secs(20))
        .await;
    let log = relay.log_text();
    assert!(
        log.contains("is in the message's headers but not among its recipients"),
        "{log}"
    );
    assert_eq!(world.emulator.store().len(), 2);
    relay.kill().await;
}

/// The app may also write drafts (large messages).
fn with_read_write(s: &mut m365_emulator::Scenario) {
    let app = s.tenants[0].apps.iter_mut().find(|a| a.client_id == CLIENT).unwrap();
    app.permissions.push(m365_emulator::model::Permission {
        api: Api::Graph,
        name: "Mail.ReadWrite".to_owned(),
        admin_consent: true,
    });
}

/// `len` bytes that do not compress.
fn noise(len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for byte in &mut bytes {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *byte = x as u8;
    }
    bytes
}

#[tokio::test(flavor = "multi_thread")]
async fn a_large_message_leaves_no_draft_and_a_lost_answer_is_not_sent_twice() {
    let world = graph_world(with_read_write).await;
    let file = world.file("scan.bin", noise(4 * 1024 * 1024));
    let args = [
        "--no-token-cache",
        "--to",
        "bob@fabrikam.com",
        "--subject",
        "scan",
        "--attach",
        file.to_str().unwrap(),
    ];
    // The upload session is refused: the draft made for the message is deleted.
    let faults = world.emulator.faults();
    faults
        .add(
            Fault::graph_http(400, r#"{"error":{"code":"ErrorInvalidRequest","message":"no"}}"#, None)
                .skip(1)
                .times(1),
        )
        .unwrap();
    let out = world.run(&[&["send"][..], &args].concat(), b"").await;
    assert_ne!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(world.emulator.graph_drafts(), 0, "no draft left in the mailbox");
    assert_eq!(world.emulator.store().len(), 0);
    // Graph sends the draft but the answer is lost (draft, session, two chunks, send): the
    // draft is gone, so it went; reported as sent, not sent again.
    faults.clear();
    faults.add(Fault::graph_accept_then_drop().skip(4).times(1)).unwrap();
    world.send(&args, b"", 0).await;
    assert_eq!(world.emulator.store().len(), 1, "sent once");
    assert_eq!(world.emulator.graph_drafts(), 0);
    // The connection breaks during an upload: the error is told (and retried) without the
    // pre-authenticated upload URL, which is a credential.
    faults.clear();
    faults
        .add(Fault::drop_connection(m365_emulator::Stage::Graph).skip(2).times(1))
        .unwrap();
    let mut world = world;
    world.set("M365_MAILER_LOG", "info");
    let out = world.send(&args, b"", 0).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("the attachment upload URL"), "{stderr}");
    assert!(!stderr.contains("/_graph/upload/"), "{stderr}");
    assert_eq!(world.emulator.store().len(), 2);
    assert_eq!(world.emulator.graph_drafts(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_relay_delivers_a_10_mb_attachment_through_graph_byte_for_byte() {
    use mail_parser::MimeHeaders as _;
    let world = graph_world(with_read_write).await;
    let relay = world.relay("[[relay.listen]]\naddress = \"127.0.0.1:0\"\n").await;

    // 10 MB that do not compress, as a scanner's PDF would be.
    let attachment = noise(10 * 1024 * 1024);
    let encoded = {
        use base64::Engine as _;
        let text = base64::engine::general_purpose::STANDARD.encode(&attachment);
        text.as_bytes()
            .chunks(76)
            .map(|l| std::str::from_utf8(l).unwrap())
            .collect::<Vec<_>>()
            .join("\r\n")
    };
    let message = format!(
        "From: {MAILBOX}\r\nTo: bob@fabrikam.com\r\nSubject: scan\r\nDate: Mon, 23 Nov 2026 18:00:00 +0000\r\nMessage-ID: <scan-10mb@contoso.com>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"scan-boundary\"\r\n\r\n--scan-boundary\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nScanned document attached.\r\n--scan-boundary\r\nContent-Type: application/pdf; name=\"scan.pdf\"\r\nContent-Disposition: attachment; filename=\"scan.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{encoded}\r\n--scan-boundary--\r\n"
    );
    submit(relay.addr().port(), &["bob@fabrikam.com"], message.as_bytes());
    let arrived = world.wait_for_messages(1, std::time::Duration::from_secs(60)).await;
    assert_eq!(arrived, 1, "{}", relay.log_text());

    let stored = &world.emulator.store().messages()[0];
    assert!(stored.via_graph);
    let parsed = mail_parser::MessageParser::default().parse(&stored.data).unwrap();
    assert_eq!(parsed.subject(), Some("scan"));
    assert_eq!(parsed.message_id(), Some("scan-10mb@contoso.com"));
    assert_eq!(parsed.body_text(0).as_deref(), Some("Scanned document attached."));
    let attachments: Vec<_> = parsed.attachments().collect();
    assert_eq!(attachments.len(), 1);
    assert_eq!(attachments[0].attachment_name(), Some("scan.pdf"));
    assert!(
        attachments[0].contents() == attachment.as_slice(),
        "the attachment arrives byte for byte"
    );
    // A draft, an upload session and the send: the 10 MB went to the upload URL in chunks.
    assert_eq!(world.emulator.stats().graph_requests, 3);
    relay.kill().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_checks_the_graph_path_and_finds_a_missing_mail_send_and_an_access_policy() {
    // A clean setup passes, and --send-test really sends through Graph.
    let world = graph_world(|_| {}).await;
    let out = world.run(&["doctor", "--send-test", "bob@fabrikam.com"], b"").await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("Microsoft Graph lets the app send as mailer@contoso.com"),
        "{stdout}"
    );
    assert!(stdout.contains("accepted by Microsoft Graph"), "{stdout}");
    assert_eq!(world.emulator.store().len(), 1);
    assert!(world.emulator.store().messages()[0].via_graph);

    // No Mail.Send: the token's roles say so before Graph is asked.
    let world = graph_world(|s| {
        let app = s.tenants[0].apps.iter_mut().find(|a| a.client_id == CLIENT).unwrap();
        app.permissions.retain(|p| p.api != Api::Graph);
    })
    .await;
    let out = world.run(&["doctor"], b"").await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(77), "{stdout}");
    assert!(stdout.contains("expected Mail.Send"), "{stdout}");
    assert!(stdout.contains("without the Mail.Send role"), "{stdout}");

    // An application access policy that leaves the mailbox out: found without sending.
    let world = graph_world(|s| {
        s.tenants[0].application_access_policies.push(ApplicationAccessPolicy {
            app_id: CLIENT.to_owned(),
            mailboxes: vec![MAILBOX.to_owned()],
            access_right: AccessRight::DenyAccess,
        });
    })
    .await;
    let out = world.run(&["doctor", "--json"], b"").await;
    assert_eq!(out.status.code(), Some(77));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let graph = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "graph")
        .unwrap();
    assert_eq!(graph["status"], "fail", "{graph}");
    let text = graph.to_string();
    assert!(
        text.contains("Access to OData is disabled") && text.contains("Test-ApplicationAccessPolicy"),
        "{text}"
    );
    assert_eq!(world.emulator.store().len(), 0, "the probe sends nothing");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_copy_in_sent_items_the_json_form_carries_the_message() {
    let mut world = graph_world(|_| {}).await;
    world.set("M365_MAILER_SAVE_TO_SENT_ITEMS", "false");
    let message = b"From: mailer@contoso.com\r\nTo: Bob <bob@fabrikam.com>\r\nSubject: nightly report\r\nX-Job: backup-7\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nAll good.\r\n--b\r\nContent-Type: text/csv\r\nContent-Disposition: attachment; filename=\"r.csv\"\r\n\r\nok,1\r\n--b--\r\n";
    world.send(&["--no-token-cache", "-t"], message, 0).await;
    let stored = &world.emulator.store().messages()[0];
    assert_eq!(stored.saved_to_sent_items, Some(false));
    let parsed = mail_parser::MessageParser::default().parse(&stored.data).unwrap();
    assert_eq!(parsed.subject(), Some("nightly report"));
    assert_eq!(parsed.body_text(0).as_deref(), Some("All good."));
    assert_eq!(parsed.header_raw("X-Job").map(str::trim), Some("backup-7"));
    let attachment = parsed.attachments().next().unwrap();
    assert_eq!(attachment.contents(), b"ok,1");
    assert_eq!(stored.rcpt_to, ["bob@fabrikam.com"]);
}
