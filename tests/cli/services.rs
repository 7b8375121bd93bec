//! The three Microsoft services an account can submit to, against the emulator's three SMTP
//! endpoints: a mailbox on Exchange Online, High Volume Email and Azure Communication Services,
//! each with every credential it takes; HVE's token freshness and its internal recipients.

use std::time::Duration;

use m365_emulator::fixture::{ACS_SENDER, ACS_USERNAME, HVE_ACCOUNT};
use m365_emulator::model::FederatedCredential;
use m365_emulator::{Endpoint, Identity};

use crate::support::*;

/// A credential of the contoso app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Credential {
    Secret,
    Certificate,
    /// A Kubernetes service account token of a trusted issuer.
    Federated,
    /// A user-assigned managed identity's token from IMDS.
    ManagedIdentity,
}

impl Credential {
    pub(crate) const ALL: [Credential; 4] = [
        Credential::Secret,
        Credential::Certificate,
        Credential::Federated,
        Credential::ManagedIdentity,
    ];
}

const ISSUER: &str = "https://oidc.aks.test/6f1d3c2a/cluster-1/";
const SUBJECT: &str = "system:serviceaccount:mail:m365-mailer";
const IDENTITY_CLIENT: &str = "5a1c9e27-3b4d-4f6a-8e2c-7d9b1f3a5c60";
const IDENTITY_PRINCIPAL: &str = "c3e8a1f5-7b2d-4c9e-a6f1-2d8b4e7c9a03";

/// A world whose app also trusts a cluster's service account and a managed identity.
pub(crate) async fn every_credential_world(change: impl FnOnce(&mut m365_emulator::Scenario)) -> World {
    World::start_with(|s| {
        s.issuers.push(ISSUER.to_owned());
        let tenant = &mut s.tenants[0];
        tenant.managed_identities.push(m365_emulator::model::ManagedIdentity {
            client_id: IDENTITY_CLIENT.to_owned(),
            principal_id: IDENTITY_PRINCIPAL.to_owned(),
        });
        let identity_issuer = m365_emulator::entra::identity::issuer(&tenant.id);
        let app = tenant.apps.iter_mut().find(|a| a.client_id == CLIENT).unwrap();
        app.federated_credentials
            .push(FederatedCredential::new(ISSUER, SUBJECT));
        app.federated_credentials
            .push(FederatedCredential::new(&identity_issuer, IDENTITY_PRINCIPAL));
        change(s);
    })
    .await
}

/// The config-file lines of `credential` (files written into `world`'s directory); the managed
/// identity's endpoint comes from the environment (`M365_MAILER_IMDS_ENDPOINT`).
pub(crate) fn credential_lines(world: &World, credential: Credential) -> String {
    match credential {
        Credential::Secret => format!("client_secret = \"{SECRET}\"\n"),
        Credential::Certificate => {
            let cert = client_cert();
            let pem = world.file("client.pem", format!("{}{}", cert.key_pem, cert.cert_pem));
            format!("certificate = \"{}\"\n", pem.display())
        }
        Credential::Federated => {
            let token = world
                .emulator
                .federated_token(ISSUER, SUBJECT, "api://AzureADTokenExchange", 3600);
            let file = world.file("azure-identity-token", token);
            format!("federated_token_file = \"{}\"\n", file.display())
        }
        Credential::ManagedIdentity => format!("managed_identity_client_id = \"{IDENTITY_CLIENT}\"\n"),
    }
}

/// The sender and the SMTP settings of `service`'s account, as config-file lines.
pub(crate) fn service_lines(world: &World, service: &str) -> String {
    let (addr, mailbox, username) = match service {
        "exchange" => (world.emulator.smtp_addr(), MAILBOX, None),
        "hve" => (world.emulator.hve_addr(), HVE_ACCOUNT, None),
        "acs" => (world.emulator.acs_addr(), ACS_SENDER, Some(ACS_USERNAME)),
        other => panic!("{other}"),
    };
    let username = username.map_or(String::new(), |u| format!("smtp_username = \"{u}\"\n"));
    format!(
        "service = \"{service}\"\nmailbox = \"{mailbox}\"\n{username}smtp_host = \"127.0.0.1\"\nsmtp_port = {}\n",
        addr.port()
    )
}

/// A config file whose default account is `service`'s with `credential`; the tenant, the app,
/// the authority and the CA come from the world's environment, which must set no credential.
pub(crate) fn account_file(world: &World, service: &str, credential: Credential) -> std::path::PathBuf {
    let body = format!(
        "[accounts.default]\n{}{}",
        service_lines(world, service),
        credential_lines(world, credential)
    );
    world.file(&format!("{service}-{credential:?}.toml"), body)
}

/// The world's environment without a credential or an SMTP target of its own, and with the
/// emulator's IMDS for the managed identity.
pub(crate) fn clear_account_env(world: &mut World) {
    for key in [
        "AZURE_CLIENT_SECRET",
        "M365_MAILER_MAILBOX",
        "M365_MAILER_SMTP_HOST",
        "M365_MAILER_SMTP_PORT",
    ] {
        world.set(key, "");
    }
    let imds = world.emulator.imds_endpoint();
    world.set("M365_MAILER_IMDS_ENDPOINT", &imds);
}

/// Points `world`'s account (through the environment) at `service`'s endpoint with the secret.
pub(crate) fn use_service(world: &mut World, service: &str) {
    let (addr, mailbox, username) = match service {
        "hve" => (world.emulator.hve_addr(), HVE_ACCOUNT, ""),
        "acs" => (world.emulator.acs_addr(), ACS_SENDER, ACS_USERNAME),
        other => panic!("{other}"),
    };
    world.set("M365_MAILER_SERVICE", service);
    world.set("M365_MAILER_MAILBOX", mailbox);
    world.set("M365_MAILER_SMTP_USERNAME", username);
    world.set("M365_MAILER_SMTP_PORT", &addr.port().to_string());
}

/// The address `service`'s account sends as.
pub(crate) fn sender_of(service: &str) -> &'static str {
    match service {
        "hve" => HVE_ACCOUNT,
        "acs" => ACS_SENDER,
        _ => MAILBOX,
    }
}

/// Whether `service` with `credential` authenticates with a token (`AUTH XOAUTH2`): all but
/// ACS with a client secret, which logs in with it.
pub(crate) fn with_token(service: &str, credential: Credential) -> bool {
    !(service == "acs" && credential == Credential::Secret)
}

fn message(from: &str, to: &str, subject: &str) -> Vec<u8> {
    format!("From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\n\r\nThrough one of three services.\r\n").into_bytes()
}

/// `send` through HVE to a recipient inside the tenant, which must succeed.
async fn send_inside(world: &World, subject: &str) -> std::process::Output {
    world
        .send(
            &["-i", "ops@contoso.com"],
            &message(HVE_ACCOUNT, "ops@contoso.com", subject),
            0,
        )
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn send_delivers_through_each_service_with_each_credential_it_takes() {
    let mut world = every_credential_world(|_| {}).await;
    clear_account_env(&mut world);
    let endpoints = [
        ("exchange", Endpoint::Exchange),
        ("hve", Endpoint::Hve),
        ("acs", Endpoint::Acs),
    ];
    for (service, endpoint) in endpoints {
        for credential in Credential::ALL {
            let config = account_file(&world, service, credential);
            let tokens = world.emulator.stats().tokens_issued();
            let from = sender_of(service);
            let subject = format!("{service} {credential:?}");
            world
                .send(
                    &[
                        "--config",
                        config.to_str().unwrap(),
                        "--no-token-cache",
                        "-i",
                        "ops@contoso.com",
                    ],
                    &message(from, "ops@contoso.com", &subject),
                    0,
                )
                .await;
            let stored = world.emulator.store().messages();
            let delivered = stored.last().unwrap();
            assert!(String::from_utf8_lossy(&delivered.data).contains(&subject), "{subject}");
            assert_eq!(
                (delivered.endpoint, delivered.mail_from.as_str()),
                (endpoint, from),
                "{subject}"
            );
            let token = matches!(delivered.identity, Identity::Xoauth2 { .. });
            assert_eq!(
                token,
                with_token(service, credential),
                "{subject}: {:?}",
                delivered.identity
            );
            if !token {
                assert_eq!(
                    world.emulator.stats().tokens_issued(),
                    tokens,
                    "ACS's LOGIN asks nothing of the token endpoint"
                );
            }
        }
    }
    assert_eq!(world.emulator.store().len(), 12);
}

#[tokio::test]
async fn hve_refuses_outside_recipients_before_connecting() {
    let mut world = World::start().await;
    use_service(&mut world, "hve");
    let config = world.file(
        "hve.toml",
        "[accounts.default]\nservice = \"hve\"\ninternal_domains = [\"contoso.com\"]\n",
    );
    let output = world
        .send(
            &[
                "--config",
                config.to_str().unwrap(),
                "-i",
                "ops@contoso.com",
                "someone@fabrikam.com",
            ],
            &message(HVE_ACCOUNT, "ops@contoso.com", "outside"),
            65,
        )
        .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("delivers to the tenant's own domains only (contoso.com)")
            && stderr.contains("someone@fabrikam.com"),
        "{stderr}"
    );
    assert_eq!(world.emulator.stats().smtp_connections, 0, "nothing was tried");
    assert_eq!(world.emulator.stats().tokens_issued(), 0);

    // Without the list, HVE's own refusal is explained.
    let output = world
        .send(
            &["-i", "someone@fabrikam.com"],
            &message(HVE_ACCOUNT, "someone@fabrikam.com", "outside"),
            69,
        )
        .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("550 5.7.1"), "{stderr}");
    assert!(
        stderr.contains("only to recipients of the tenant's own accepted domains"),
        "{stderr}"
    );
}

#[tokio::test]
async fn an_hve_token_with_12_minutes_left_is_replaced_before_use() {
    let mut world = World::start().await;
    use_service(&mut world, "hve");
    send_inside(&world, "first").await;
    // The cached token now has 12 minutes left: enough for Exchange's mailboxes, too little for
    // HVE, which refuses tokens within about 10 minutes of their expiry.
    let dir = world.cache_dir().join("m365-mailer/tokens");
    let file = std::fs::read_dir(&dir).unwrap().next().unwrap().unwrap().path();
    let mut cached: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let now = now().unix_timestamp();
    cached["expires_at"] = (now + 12 * 60).into();
    cached["refresh_at"] = (now + 60).into();
    std::fs::write(&file, cached.to_string()).unwrap();
    send_inside(&world, "second").await;
    let stats = world.emulator.stats();
    assert_eq!(stats.tokens_for(CLIENT).issued, 2, "a new token before the second send");
    assert_eq!(stats.auth.failed, 0, "no token was refused: {:?}", stats.auth.refusals);
    assert_eq!(world.emulator.store().len(), 2);
}

#[tokio::test]
async fn send_answers_hve_s_5_5_127_with_a_new_token() {
    let mut world = World::start().await;
    use_service(&mut world, "hve");
    send_inside(&world, "first").await;
    // By HVE's clock the cached token has 8 minutes left; by ours, 60: HVE refuses it.
    world.emulator.clock().advance(time::Duration::minutes(52));
    let output = world
        .send(
            &["-i", "ops@contoso.com"],
            &message(HVE_ACCOUNT, "ops@contoso.com", "second"),
            0,
        )
        .await;
    let stats = world.emulator.stats();
    assert_eq!(
        stats.auth.refusals.get("token will expire soon"),
        Some(&1),
        "{:?}",
        stats.auth.refusals
    );
    assert_eq!(stats.tokens_for(CLIENT).issued, 2);
    assert_eq!(world.emulator.store().len(), 2);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("error"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_relay_answers_5_5_127_with_a_new_token_and_loses_nothing() {
    let mut world = World::start().await;
    use_service(&mut world, "hve");
    let relay = world
        .relay("[[relay.listen]]\naddress = \"127.0.0.1:0\"\n\n[[relay.allow]]\nnetworks = [\"127.0.0.1\"]\nrewrite_sender = true\n\n[relay.delivery]\nconnections_per_account = 1\nconnection_idle = \"1s\"\n")
        .await;
    let port = relay.addr().port();
    submit(
        port,
        &["ops@contoso.com"],
        &message(HVE_ACCOUNT, "ops@contoso.com", "first"),
    );
    assert_eq!(world.wait_for_messages(1, Duration::from_secs(20)).await, 1);
    // The pooled connection closes after a second idle; the next one authenticates again, with
    // a token HVE finds too old.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    world.emulator.clock().advance(time::Duration::minutes(52));
    submit(
        port,
        &["ops@contoso.com"],
        &message(HVE_ACCOUNT, "ops@contoso.com", "second"),
    );
    assert_eq!(
        world.wait_for_messages(2, Duration::from_secs(20)).await,
        2,
        "{}",
        relay.log_text()
    );
    let stats = world.emulator.stats();
    assert_eq!(
        stats.auth.refusals.get("token will expire soon"),
        Some(&1),
        "{:?}",
        stats.auth.refusals
    );
    assert!(
        relay.log_text().contains("too close to its expiry"),
        "{}",
        relay.log_text()
    );
    let queue_dir = world.dir.path().join("queue");
    let dead = world
        .run(&["queue", "--queue-dir", queue_dir.to_str().unwrap(), "dead"], b"")
        .await;
    assert!(String::from_utf8_lossy(&dead.stdout).contains("The dead-letter area is empty."));
    assert!(!relay.log_text().contains("deferred"), "{}", relay.log_text());
    relay.kill().await;
}
