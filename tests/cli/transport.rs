//! The SMTP client and the token provider as a library: several messages per connection, step
//! timeouts, implicit TLS, trust anchors, passwords for servers that still take them, and tokens
//! kept fresh in the background.

use std::sync::Arc;
use std::time::Duration;

use m365_emulator::{Fault, Stage};
use m365_mailer::config::{Config, Overrides};
use m365_mailer::message::{self, Compose};
use m365_mailer::smtp::SmtpError;
use m365_mailer::submit::{Options, SubmitError, Submitter};

use crate::support::*;

fn submitter(world: &World, options: &Options) -> Submitter {
    let config = world.file("empty.toml", "");
    let overrides = Overrides {
        config: Some(config),
        ..Overrides::default()
    };
    let env = world.env.clone();
    let resolved = Config::resolve_with(&overrides, &|name| {
        env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    })
    .expect("configuration");
    Submitter::new(resolved.account, options).expect("submitter")
}

fn message(subject: &str) -> message::Outgoing {
    message::compose(&Compose {
        from: MAILBOX.into(),
        to: vec!["bob@fabrikam.com".into()],
        subject: Some(subject.into()),
        text: Some("Hello".into()),
        ..Compose::default()
    })
    .unwrap()
}

#[tokio::test]
async fn several_messages_on_one_connection_with_rset_between() {
    let world = World::start().await;
    let submitter = submitter(&world, &Options::default());
    let mut connection = submitter.connect().await.unwrap();
    for i in 0..3 {
        let m = message(&format!("Message {i}"));
        connection.send_mail(&m.envelope, &m.content).await.unwrap();
    }
    connection.quit().await;
    let stats = world.emulator.stats();
    assert_eq!(world.emulator.store().len(), 3);
    assert_eq!(stats.smtp_connections, 1);
    assert_eq!(stats.command("RSET"), 2);
    assert_eq!(stats.command("BDAT"), 3, "CHUNKING is used when offered");
}

#[tokio::test]
async fn utf8_headers_declare_smtputf8() {
    let world = World::start().await;
    let submitter = submitter(
        &world,
        &Options {
            keep_transcript: true,
            ..Options::default()
        },
    );
    let raw = "From: mailer@contoso.com\r\nTo: bob@fabrikam.com\r\nSubject: Grüße\r\n\r\nÜber\r\n".as_bytes();
    let outgoing = message::from_raw(
        raw,
        &message::RawOptions {
            recipients: vec!["bob@fabrikam.com".into()],
            default_from: MAILBOX.into(),
            ..Default::default()
        },
    )
    .unwrap();
    let attempt = submitter.submit(&outgoing).await;
    attempt.outcome.unwrap();
    let mail = attempt
        .transcript
        .iter()
        .find(|l| l.starts_with("C: MAIL FROM"))
        .unwrap();
    assert!(mail.contains("BODY=8BITMIME") && mail.contains("SMTPUTF8"), "{mail}");
}

#[tokio::test]
async fn a_silent_server_times_out_as_a_temporary_failure() {
    let world = World::start().await;
    world.emulator.faults().add(Fault::hang(Stage::Mail)).unwrap();
    let mut options = Options::default();
    options.timeouts.command = Duration::from_millis(500);
    let error = submitter(&world, &options)
        .submit(&message("Hang"))
        .await
        .outcome
        .unwrap_err();
    assert!(matches!(error, SubmitError::Smtp(SmtpError::Timeout { .. })), "{error}");
    assert!(m365_mailer::verdict::Verdict::of(&error).is_transient());
}

#[tokio::test]
async fn implicit_tls_on_the_465_role() {
    let mut options = m365_emulator::Options::new(contoso());
    options.smtps_port = Some(0);
    let mut world = World::start().await;
    world.emulator = m365_emulator::Emulator::start(options).await.unwrap();
    let ca = world.file("ca.pem", world.emulator.ca_pem());
    world.set("M365_MAILER_CA_FILE", ca.to_str().unwrap());
    world.set("M365_MAILER_TOKEN_ENDPOINT", &world.emulator.token_endpoint(TENANT));
    world.set(
        "M365_MAILER_SMTP_PORT",
        &world.emulator.smtps_addr().unwrap().port().to_string(),
    );
    world.set("M365_MAILER_SMTP_SECURITY", "tls");
    world
        .send(&["bob@fabrikam.com"], &complete_message("Implicit TLS"), 0)
        .await;
    assert_eq!(world.emulator.store().len(), 1);
    assert_eq!(world.emulator.stats().command("STARTTLS"), 0);
}

#[tokio::test]
async fn trust_comes_from_ssl_cert_file_and_an_unknown_ca_is_refused() {
    let mut world = World::start().await;
    let ca = world.dir.path().join("ca.pem");
    world.set("M365_MAILER_CA_FILE", "");
    world.set("SSL_CERT_FILE", ca.to_str().unwrap());
    world
        .send(&["bob@fabrikam.com"], &complete_message("SSL_CERT_FILE"), 0)
        .await;

    // Neither: the emulator's CA is unknown, as an intercepting proxy's would be. A
    // configuration error (78) wherever it shows, the token endpoint as SMTP: retrying
    // changes nothing.
    world.set("SSL_CERT_FILE", "");
    let output = world
        .send(
            &["--no-token-cache", "bob@fabrikam.com"],
            &complete_message("Untrusted"),
            78,
        )
        .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot reach the token endpoint") && stderr.contains("ca_file or M365_MAILER_CA_FILE"),
        "{stderr}"
    );
    assert_eq!(world.emulator.store().len(), 1);
}

#[tokio::test]
async fn passwords_for_servers_that_still_take_them() {
    let mut world = World::start_with(|s| {
        s.tenants[0].basic_auth = m365_emulator::model::BasicAuth::Enabled;
        s.tenants[0].mailboxes[0].password = Some("P@ssw0rd".into());
    })
    .await;
    world.set("AZURE_CLIENT_SECRET", "");
    world.set("M365_MAILER_SMTP_USERNAME", MAILBOX);
    world.set("M365_MAILER_SMTP_PASSWORD", "P@ssw0rd");
    world.send(&["bob@fabrikam.com"], &complete_message("Basic"), 0).await;
    assert_eq!(
        world.emulator.store().messages()[0].identity,
        m365_emulator::Identity::Basic
    );
    assert_eq!(world.emulator.stats().tokens_issued(), 0);
}

#[tokio::test]
async fn tokens_are_refreshed_in_the_background_and_kept_when_a_refresh_fails() {
    let world = World::start_with(|s| s.entra.refresh_in_secs = Some(1)).await;
    let submitter = submitter(&world, &Options::default());
    let provider = Arc::clone(submitter.provider().unwrap());
    let first = provider.token().await.unwrap();
    assert_eq!(provider.requests(), 1);

    // Past refresh_in, a failed refresh still hands out the valid token.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    world.emulator.faults().add(Fault::aadsts(7000222).times(1)).unwrap();
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
