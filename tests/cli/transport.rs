//! The ways to Exchange: several messages per connection through the library's `Mailer`,
//! implicit TLS, trust anchors, and passwords for servers that still take them.

use m365_mailer::Message;

use crate::support::*;

#[tokio::test]
async fn several_messages_on_one_connection_with_rset_between() {
    let world = World::start().await;
    let config = world.file("empty.toml", "");
    let mailer = world.mailer(&config);
    let mut connection = mailer.connect().await.unwrap();
    for i in 0..3 {
        let message = Message::text(MAILBOX, &["bob@fabrikam.com"], &format!("Message {i}"), "Hello").unwrap();
        let accepted = connection.send(&message).await.unwrap();
        assert!(accepted.reply.starts_with("250 "), "{}", accepted.reply);
    }
    connection.close().await;
    let stats = world.emulator.stats();
    assert_eq!(world.emulator.store().len(), 3);
    assert_eq!(stats.smtp_connections, 1);
    assert_eq!(stats.command("RSET"), 2);
    assert_eq!(stats.command("BDAT"), 3, "CHUNKING is used when offered");
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
