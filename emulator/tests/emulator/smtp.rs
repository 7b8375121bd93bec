//! Exchange Online SMTP: the dialogue as observed, every AUTH refusal with its exact reply and
//! cause, the transaction, Send-As, pipelining and CHUNKING.

use m365_emulator::model::BasicAuth;
use m365_emulator::{Api, Emulator, Scenario};

use crate::support::*;

#[tokio::test]
async fn greeting_and_ehlo_lists_as_observed() {
    let emulator = start(contoso()).await;
    let mut smtp = Smtp::connect(&emulator).await;
    assert_eq!(smtp.greeting.code, 220);
    let banner = &smtp.greeting.lines[0];
    assert!(
        banner.contains(".outlook.com Microsoft ESMTP MAIL Service ready at "),
        "{banner}"
    );
    assert!(banner.ends_with(" +0000 [") || banner.ends_with(']'), "{banner}");

    let before = smtp.cmd("EHLO client.example").await;
    assert_eq!(before.code, 250);
    assert!(before.lines[0].ends_with("Hello [127.0.0.1]"), "{:?}", before.lines);
    assert_eq!(
        before.lines[1..],
        [
            "SIZE 157286400",
            "PIPELINING",
            "DSN",
            "ENHANCEDSTATUSCODES",
            "STARTTLS",
            "8BITMIME",
            "BINARYMIME",
            "CHUNKING",
            "SMTPUTF8"
        ]
    );
    smtp.cmd("AUTH XOAUTH2").await.expect(504, "5.7.4");
    smtp.cmd("MAIL FROM:<mailer@contoso.com>").await.expect(530, "5.7.57");
    smtp.starttls().await;
    let after = smtp.cmd("EHLO client.example").await;
    assert_eq!(
        after.lines[1..],
        [
            "SIZE 157286400",
            "PIPELINING",
            "DSN",
            "ENHANCEDSTATUSCODES",
            "AUTH LOGIN XOAUTH2",
            "8BITMIME",
            "BINARYMIME",
            "CHUNKING",
            "SMTPUTF8"
        ]
    );
    let refused = smtp.cmd("MAIL FROM:<mailer@contoso.com>").await;
    refused.expect(530, "5.7.57");
    assert!(
        refused.lines[0].starts_with("5.7.57 Client not authenticated to send mail. ["),
        "{refused:?}"
    );
    smtp.cmd("AUTH PLAIN AGEAYg==").await.expect(504, "5.7.4");
    smtp.cmd("STARTTLS").await.expect(503, "5.5.2");
    smtp.cmd("FROB").await.expect(500, "5.3.3");
    smtp.cmd("QUIT").await.expect(221, "2.0.0");
}

#[tokio::test]
async fn xoauth2_with_and_without_initial_response() {
    let emulator = start(contoso()).await;
    let token = exchange_token(&emulator).await;

    let mut one = Smtp::connect_tls(&emulator).await;
    let line = format!("AUTH XOAUTH2 {}", xoauth2(MAILBOX, &token));
    assert!(
        line.len() > 512,
        "a real token does not fit RFC 4954's 512-octet AUTH line"
    );
    one.cmd(&line).await.expect(235, "2.7.0");
    one.cmd("AUTH XOAUTH2").await.expect(503, "5.5.2");

    let mut two = Smtp::connect_tls(&emulator).await;
    let challenge = two.cmd("AUTH XOAUTH2").await;
    assert_eq!((challenge.code, challenge.lines[0].as_str()), (334, ""));
    let ok = two.cmd(&xoauth2(MAILBOX, &token)).await;
    ok.expect(235, "2.7.0");
    assert_eq!(ok.lines[0], "2.7.0 Authentication successful");

    let auth = emulator.stats().auth;
    assert_eq!((auth.succeeded, auth.initial_response, auth.two_step), (2, 1, 1));
    assert_eq!(auth.longest_auth_line, line.len() as u64 + 2);
}

/// Authenticates `mailbox` with `token` and expects a refusal with this code, enhanced code and
/// (for the counters) cause.
async fn refused(emulator: &Emulator, mailbox: &str, token: &str, code: u16, enhanced: &str, cause: &str) -> Reply {
    let mut smtp = Smtp::connect_tls(emulator).await;
    let reply = smtp.cmd(&format!("AUTH XOAUTH2 {}", xoauth2(mailbox, token))).await;
    reply.expect(code, enhanced);
    let refusals = emulator.stats().auth.refusals;
    assert_eq!(refusals.get(cause), Some(&1), "cause `{cause}` in {refusals:?}");
    // Still not allowed to send.
    smtp.cmd(&format!("MAIL FROM:<{mailbox}>")).await.expect(530, "5.7.57");
    reply
}

/// Starts the emulator with a changed contoso, gets a token, expects the AUTH refusal.
async fn refusal_case(change: impl FnOnce(&mut Scenario), code: u16, enhanced: &str, cause: &str) -> Reply {
    let emulator = start_with(change).await;
    let token = exchange_token(&emulator).await;
    refused(&emulator, MAILBOX, &token, code, enhanced, cause).await
}

#[tokio::test]
async fn bad_expired_and_wrong_audience_tokens_get_535_5_7_3() {
    let emulator = start(contoso()).await;
    let reply = refused(
        &emulator,
        MAILBOX,
        "EwBAAl3BAAUFFpUAo7J3Ve0bjLBWZWCclRC3EoAA",
        535,
        "5.7.3",
        "token invalid",
    )
    .await;
    let text = &reply.lines[0];
    assert!(
        text.starts_with("5.7.3 Authentication unsuccessful [") && text.ends_with(']'),
        "{text}"
    );
    let parts: Vec<&str> = text
        .trim_end_matches(']')
        .rsplit_once('[')
        .unwrap()
        .1
        .split(' ')
        .collect();
    assert_eq!(parts.len(), 3, "server, ISO time and a hex id: {text}");
    assert!(parts[1].ends_with('Z') && parts[2].len() == 16, "{text}");

    let graph = token(&emulator, "https://graph.microsoft.com/.default").await;
    refused(
        &emulator,
        MAILBOX,
        &graph,
        535,
        "5.7.3",
        "token audience is not Exchange Online",
    )
    .await;

    let exchange = exchange_token(&emulator).await;
    emulator.clock().advance(time::Duration::seconds(3600));
    refused(&emulator, MAILBOX, &exchange, 535, "5.7.3", "token expired").await;
}

#[tokio::test]
async fn token_without_smtp_send_as_app_role() {
    refusal_case(
        |s| s.tenants[0].apps[0].permissions.retain(|p| p.api != Api::Exchange),
        535,
        "5.7.3",
        "token has no SMTP.SendAsApp role",
    )
    .await;
    refusal_case(
        |s| s.tenants[0].apps[0].permissions[0].admin_consent = false,
        535,
        "5.7.3",
        "token has no SMTP.SendAsApp role",
    )
    .await;
}

#[tokio::test]
async fn service_principal_missing_or_registered_with_the_wrong_object_id() {
    refusal_case(
        |s| s.tenants[0].exchange_service_principals.clear(),
        535,
        "5.7.3",
        "service principal not registered in Exchange",
    )
    .await;
    refusal_case(
        |s| s.tenants[0].exchange_service_principals[0].object_id = APP_OBJECT.into(),
        535,
        "5.7.3",
        "service principal registered with the app registration's object id",
    )
    .await;
}

#[tokio::test]
async fn unknown_mailbox_or_no_full_access() {
    let emulator = start(contoso()).await;
    let token = exchange_token(&emulator).await;
    refused(
        &emulator,
        "nobody@contoso.com",
        &token,
        535,
        "5.7.3",
        "user= mailbox not found in the token's tenant",
    )
    .await;
    refusal_case(
        |s| s.tenants[0].mailboxes[0].full_access.clear(),
        535,
        "5.7.3",
        "no FullAccess on the mailbox",
    )
    .await;
}

#[tokio::test]
async fn smtp_auth_switched_off_for_tenant_mailbox_or_by_security_defaults() {
    let tenant = refusal_case(
        |s| s.tenants[0].smtp_client_authentication_disabled = true,
        535,
        "5.7.139",
        "SMTP AUTH disabled for the tenant",
    )
    .await;
    assert!(tenant.lines[0].starts_with(
        "5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information. ["
    ));
    let mailbox = refusal_case(
        |s| s.tenants[0].mailboxes[0].smtp_client_authentication_disabled = Some(true),
        535,
        "5.7.139",
        "SMTP AUTH disabled for the mailbox",
    )
    .await;
    assert!(mailbox.lines[0].contains("disabled for the Mailbox"), "{mailbox:?}");
    let defaults = refusal_case(
        |s| s.tenants[0].security_defaults = true,
        535,
        "5.7.139",
        "security defaults",
    )
    .await;
    assert!(defaults.lines[0].contains("security defaults policy"), "{defaults:?}");

    // The mailbox setting wins over the organisation's.
    let emulator = start_with(|s| {
        s.tenants[0].smtp_client_authentication_disabled = true;
        s.tenants[0].mailboxes[0].smtp_client_authentication_disabled = Some(false);
    })
    .await;
    let token = exchange_token(&emulator).await;
    Smtp::authenticated(&emulator, MAILBOX, &token).await;
}

#[tokio::test]
async fn basic_authentication_is_refused_unless_the_tenant_still_allows_it() {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let (user, password) = (b64(MAILBOX), b64("P@ssw0rd"));

    let emulator = start(contoso()).await;
    let mut smtp = Smtp::connect_tls(&emulator).await;
    assert_eq!(smtp.cmd("AUTH LOGIN").await.lines[0], "VXNlcm5hbWU6");
    assert_eq!(smtp.cmd(&user).await.lines[0], "UGFzc3dvcmQ6");
    let reply = smtp.cmd(&password).await;
    reply.expect(535, "5.7.139");
    assert!(reply.lines[0].starts_with("5.7.139 Authentication unsuccessful, basic authentication is disabled."));

    let retired = start_with(|s| s.tenants[0].basic_auth = BasicAuth::Retired).await;
    let mut smtp = Smtp::connect_tls(&retired).await;
    smtp.cmd(&format!("AUTH LOGIN {user}")).await;
    smtp.cmd(&password).await.expect(550, "5.7.30");

    let enabled = start_with(|s| {
        s.tenants[0].basic_auth = BasicAuth::Enabled;
        s.tenants[0].mailboxes[0].password = Some("P@ssw0rd".into());
    })
    .await;
    let mut smtp = Smtp::connect_tls(&enabled).await;
    smtp.cmd(&format!("AUTH LOGIN {user}")).await;
    smtp.cmd(&password).await.expect(235, "2.7.0");
    let mut wrong = Smtp::connect_tls(&enabled).await;
    wrong.cmd(&format!("AUTH LOGIN {user}")).await;
    wrong.cmd(&b64("wrong")).await.expect(535, "5.7.3");
}

#[tokio::test]
async fn transaction_replies_and_byte_exact_delivery() {
    let emulator = start(contoso()).await;
    let token = exchange_token(&emulator).await;
    let mut smtp = Smtp::authenticated(&emulator, MAILBOX, &token).await;
    let content = message(MAILBOX, "bob@fabrikam.com", "Report");
    let reply = smtp
        .send_mail(MAILBOX, &["bob@fabrikam.com", "carol@fabrikam.com"], &content)
        .await;
    reply.expect(250, "2.0.0");
    let id = std::str::from_utf8(&content)
        .unwrap()
        .split("Message-ID: ")
        .nth(1)
        .unwrap()
        .split("\r\n")
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(
        reply.lines[0],
        format!("2.0.0 OK {id} [Hostname=MW4PR04MB7315.namprd04.prod.outlook.com]")
    );

    let stored = emulator.store().messages();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].data, content, "byte for byte, dot-unstuffed");
    assert_eq!(stored[0].rcpt_to, ["bob@fabrikam.com", "carol@fabrikam.com"]);
    assert_eq!(stored[0].mailbox, MAILBOX);
    assert!(matches!(&stored[0].identity, m365_emulator::Identity::Xoauth2 { client_id, .. } if client_id == CLIENT));

    // Several messages per connection, RSET between.
    smtp.cmd("RSET").await.expect(250, "2.0.0");
    smtp.send_mail(
        MAILBOX,
        &["dave@fabrikam.com"],
        &message(MAILBOX, "dave@fabrikam.com", "Second"),
    )
    .await
    .expect(250, "2.0.0");
    smtp.cmd("RCPT TO:<x@fabrikam.com>").await.expect(503, "5.5.2");
    smtp.cmd("DATA").await.expect(503, "5.5.2");
    smtp.cmd("MAIL FROM:mailer@contoso.com").await.expect(501, "5.1.7");
    assert_eq!(emulator.stats().messages.get(MAILBOX), Some(&2));
}

#[tokio::test]
async fn send_as_is_checked_after_the_data() {
    let emulator = start(contoso()).await;
    let token = exchange_token(&emulator).await;
    let mut smtp = Smtp::authenticated(&emulator, MAILBOX, &token).await;

    let header_from = smtp
        .send_mail(
            MAILBOX,
            &["bob@fabrikam.com"],
            &message("ceo@contoso.com", "bob@fabrikam.com", "Hi"),
        )
        .await;
    header_from.expect(554, "5.2.252");
    assert!(
        header_from.lines[0].starts_with("5.2.252 SendAsDenied; mailer@contoso.com not allowed to send as ceo@contoso.com; STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied;"),
        "{header_from:?}"
    );
    let envelope = smtp
        .send_mail(
            "ceo@contoso.com",
            &["bob@fabrikam.com"],
            &message(MAILBOX, "bob@fabrikam.com", "Hi"),
        )
        .await;
    envelope.expect(554, "5.2.252");
    // A shared mailbox with SendAs granted to the service principal is fine.
    smtp.send_mail(
        SHARED,
        &["bob@fabrikam.com"],
        &message(SHARED, "bob@fabrikam.com", "Alert"),
    )
    .await
    .expect(250, "2.0.0");
    assert_eq!(emulator.store().len(), 1);
}

#[tokio::test]
async fn pipelining_answers_a_flight_of_commands_at_once() {
    let emulator = start(contoso()).await;
    let token = exchange_token(&emulator).await;
    let mut smtp = Smtp::authenticated(&emulator, MAILBOX, &token).await;
    let before = emulator.stats().round_trips;
    smtp.send(
        b"MAIL FROM:<mailer@contoso.com>\r\nRCPT TO:<bob@fabrikam.com>\r\nRCPT TO:<carol@fabrikam.com>\r\nDATA\r\n",
    )
    .await;
    for expected in [(250, "2.1.0"), (250, "2.1.5"), (250, "2.1.5")] {
        smtp.read().await.expect(expected.0, expected.1);
    }
    assert_eq!(smtp.read().await.code, 354);
    smtp.send(&dot_stuff(&message(MAILBOX, "bob@fabrikam.com", "Pipelined")))
        .await;
    smtp.send(b".\r\n").await;
    smtp.read().await.expect(250, "2.0.0");
    assert_eq!(
        emulator.stats().round_trips - before,
        2,
        "one flight for the envelope, one for the content"
    );
}

#[tokio::test]
async fn chunking_takes_bdat_in_one_round_trip() {
    let emulator = start(contoso()).await;
    let token = exchange_token(&emulator).await;
    let mut smtp = Smtp::authenticated(&emulator, MAILBOX, &token).await;
    let content = message(
        MAILBOX,
        "bob@fabrikam.com",
        "Chunked\r\n.line with a dot needs no stuffing",
    );
    let before = emulator.stats().round_trips;
    let mut flight = format!(
        "MAIL FROM:<mailer@contoso.com> BODY=BINARYMIME\r\nRCPT TO:<bob@fabrikam.com>\r\nBDAT {} LAST\r\n",
        content.len()
    )
    .into_bytes();
    flight.extend_from_slice(&content);
    smtp.send(&flight).await;
    smtp.read().await.expect(250, "2.1.0");
    smtp.read().await.expect(250, "2.1.5");
    smtp.read().await.expect(250, "2.0.0");
    assert_eq!(emulator.stats().round_trips - before, 1);
    assert_eq!(emulator.store().messages()[0].data, content);
    assert!(emulator.store().messages()[0].chunked);

    // Two chunks, and a refused chunk is read before the refusal.
    let (a, b) = content.split_at(10);
    let mut flight = b"MAIL FROM:<mailer@contoso.com>\r\nRCPT TO:<bob@fabrikam.com>\r\n".to_vec();
    flight.extend_from_slice(format!("BDAT {}\r\n", a.len()).as_bytes());
    flight.extend_from_slice(a);
    flight.extend_from_slice(format!("BDAT {} LAST\r\n", b.len()).as_bytes());
    flight.extend_from_slice(b);
    flight.extend_from_slice(b"BDAT 5 LAST\r\nhello");
    smtp.send(&flight).await;
    smtp.read().await.expect(250, "2.1.0");
    smtp.read().await.expect(250, "2.1.5");
    assert_eq!(smtp.read().await.lines[0], "2.0.0 CHUNK received OK, 10 octets");
    smtp.read().await.expect(250, "2.0.0");
    smtp.read().await.expect(503, "5.5.2");
    smtp.cmd("NOOP").await.expect(250, "2.0.0");
    assert_eq!(emulator.store().messages()[1].data, content);
}

#[tokio::test]
async fn bare_line_feeds_and_oversize_messages_are_refused() {
    let emulator = start_with(|s| s.exchange.max_message_size = 1000).await;
    let token = exchange_token(&emulator).await;
    let mut smtp = Smtp::authenticated(&emulator, MAILBOX, &token).await;
    smtp.send_mail(
        MAILBOX,
        &["bob@fabrikam.com"],
        b"From: mailer@contoso.com\r\n\r\nbare\nline feed\r\n",
    )
    .await
    .expect(554, "5.6.11");
    smtp.cmd("MAIL FROM:<mailer@contoso.com> SIZE=1001")
        .await
        .expect(552, "5.3.4");
    let big = format!("From: mailer@contoso.com\r\n\r\n{}\r\n", "x".repeat(1000));
    smtp.send_mail(MAILBOX, &["bob@fabrikam.com"], big.as_bytes())
        .await
        .expect(552, "5.3.4");
    assert!(emulator.store().is_empty());
}

#[tokio::test]
async fn implicit_tls_port_and_a_strict_line_limit() {
    let mut options = m365_emulator::Options::new(contoso());
    options.smtps_port = Some(0);
    options.scenario.exchange.max_line_length = 512;
    let emulator = Emulator::start(options).await.unwrap();
    let token = exchange_token(&emulator).await;

    // Port 465's role: TLS from the first byte, AUTH offered at once.
    let tcp = tokio::net::TcpStream::connect(emulator.smtps_addr().unwrap())
        .await
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    use rustls::pki_types::pem::PemObject as _;
    roots
        .add(rustls::pki_types::CertificateDer::from_pem_slice(emulator.ca_pem().as_bytes()).unwrap())
        .unwrap();
    let config =
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(rustls::pki_types::ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let mut reader = tokio::io::BufReader::new(tls);
    use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};
    let mut line = String::new();
    reader.read_line(&mut line).await.unwrap();
    assert!(line.starts_with("220 "), "{line}");
    reader.get_mut().write_all(b"EHLO client.example\r\n").await.unwrap();
    let mut ehlo = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).await.unwrap();
        ehlo.push(line.trim_end().to_owned());
        if line.as_bytes()[3] == b' ' {
            break;
        }
    }
    assert!(ehlo.contains(&"250-AUTH LOGIN XOAUTH2".to_owned()), "{ehlo:?}");

    // With RFC 4954's 512-octet limit, the one-line form of a real token is refused and the
    // two-step form works.
    let mut smtp = Smtp::connect_tls(&emulator).await;
    smtp.cmd(&format!("AUTH XOAUTH2 {}", xoauth2(MAILBOX, &token)))
        .await
        .expect(500, "5.5.2");
    assert_eq!(smtp.cmd("AUTH XOAUTH2").await.code, 334);
    smtp.cmd(&xoauth2(MAILBOX, &token)).await.expect(235, "2.7.0");
}
