//! Workload identity federation: a federated token file (as the Kubernetes workload identity
//! webhook projects it) instead of a secret, against the emulator standing in for the cluster's
//! OIDC issuer.

use m365_emulator::fixture::CLIENT;
use m365_emulator::model::FederatedCredential;

use crate::support::{World, complete_message};

const ISSUER: &str = "https://oidc.aks.test/6f1d3c2a/cluster-1/";
const SUBJECT: &str = "system:serviceaccount:mail:m365-mailer";
const AUDIENCE: &str = "api://AzureADTokenExchange";

/// A world whose app trusts the service account `mail:m365-mailer` of the emulated cluster, and
/// whose environment is what the webhook injects (no secret).
async fn federated_world() -> (World, std::path::PathBuf) {
    let mut world = World::start_with(|s| {
        s.issuers.push(ISSUER.to_owned());
        let app = s.tenants[0].apps.iter_mut().find(|a| a.client_id == CLIENT).unwrap();
        app.federated_credentials
            .push(FederatedCredential::new(ISSUER, SUBJECT));
    })
    .await;
    let token_file = world.dir.path().join("azure-identity-token");
    world.set("AZURE_CLIENT_SECRET", "");
    world.set("AZURE_FEDERATED_TOKEN_FILE", &token_file.display().to_string());
    (world, token_file)
}

fn write_token(world: &World, path: &std::path::Path, subject: &str, lifetime_secs: i64) {
    std::fs::write(
        path,
        world.emulator.federated_token(ISSUER, subject, AUDIENCE, lifetime_secs),
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_token_file_is_read_again_for_every_token_request() {
    let (world, token_file) = federated_world().await;
    write_token(&world, &token_file, SUBJECT, 3600);
    world
        .send(
            &["--no-token-cache", "bob@fabrikam.com"],
            &complete_message("federated 1"),
            0,
        )
        .await;

    // The file changes: a token of a service account the app does not trust is refused…
    write_token(&world, &token_file, "system:serviceaccount:mail:other", 3600);
    let out = world
        .send(
            &["--no-token-cache", "bob@fabrikam.com"],
            &complete_message("refused"),
            77,
        )
        .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("AADSTS700213"), "{stderr}");
    assert!(
        stderr.contains("system:serviceaccount:NAMESPACE:NAME"),
        "the fix names the subject form: {stderr}"
    );

    // …an expired one (a copied file nobody refreshes) is explained…
    write_token(&world, &token_file, SUBJECT, -3600);
    let out = world
        .send(
            &["--no-token-cache", "bob@fabrikam.com"],
            &complete_message("stale"),
            77,
        )
        .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("AADSTS700024") && stderr.contains("federated token"),
        "{stderr}"
    );

    // …and the kubelet's next rotation works again.
    write_token(&world, &token_file, SUBJECT, 3600);
    world
        .send(
            &["--no-token-cache", "bob@fabrikam.com"],
            &complete_message("federated 2"),
            0,
        )
        .await;

    let stats = world.emulator.stats();
    assert_eq!(stats.tokens_issued(), 2);
    let subjects: Vec<String> = world
        .emulator
        .store()
        .messages()
        .iter()
        .map(|m| {
            String::from_utf8_lossy(&m.data)
                .lines()
                .find(|l| l.starts_with("Subject:"))
                .unwrap_or("")
                .to_owned()
        })
        .collect();
    assert_eq!(subjects, ["Subject: federated 1", "Subject: federated 2"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_shows_the_federated_tokens_claims_and_config_refuses_two_credentials() {
    let (mut world, token_file) = federated_world().await;
    write_token(&world, &token_file, SUBJECT, 3600);
    let out = world.run(&["doctor"], b"").await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for expected in [
        format!("issuer {ISSUER}"),
        format!("subject {SUBJECT}"),
        format!("audience {AUDIENCE}"),
    ] {
        assert!(stdout.contains(&expected), "{expected} missing from:\n{stdout}");
    }

    // An expired token fails the credential check before any request is made.
    write_token(&world, &token_file, SUBJECT, -60);
    let out = world.run(&["doctor"], b"").await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(77), "{stdout}");
    assert!(
        stdout.contains("the federated token in") && stdout.contains("expired"),
        "{stdout}"
    );

    // A secret beside the token file: which one was meant is not guessed.
    world.set("AZURE_CLIENT_SECRET", "a-secret");
    let out = world.send(&["bob@fabrikam.com"], &complete_message("x"), 78).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("AZURE_FEDERATED_TOKEN_FILE") && stderr.contains("keep one"),
        "{stderr}"
    );
}

const IDENTITY_CLIENT: &str = "5a1c9e27-3b4d-4f6a-8e2c-7d9b1f3a5c60";
const IDENTITY_PRINCIPAL: &str = "c3e8a1f5-7b2d-4c9e-a6f1-2d8b4e7c9a03";

/// A world whose app trusts a user-assigned managed identity of the tenant (the documented
/// managed-identity-as-credential setup), configured without any secret.
async fn managed_identity_world(trusted_subject: &str) -> World {
    let subject = trusted_subject.to_owned();
    let mut world = World::start_with(move |s| {
        let tenant = &mut s.tenants[0];
        tenant.managed_identities.push(m365_emulator::model::ManagedIdentity {
            client_id: IDENTITY_CLIENT.to_owned(),
            principal_id: IDENTITY_PRINCIPAL.to_owned(),
        });
        let issuer = m365_emulator::entra::identity::issuer(&tenant.id);
        let app = tenant.apps.iter_mut().find(|a| a.client_id == CLIENT).unwrap();
        app.federated_credentials
            .push(FederatedCredential::new(&issuer, &subject));
    })
    .await;
    world.set("AZURE_CLIENT_SECRET", "");
    world.set("M365_MAILER_MANAGED_IDENTITY_CLIENT_ID", IDENTITY_CLIENT);
    world
}

#[tokio::test(flavor = "multi_thread")]
async fn a_managed_identity_signs_the_app_in_from_imds_and_from_app_service() {
    let mut world = managed_identity_world(IDENTITY_PRINCIPAL).await;
    world.set("M365_MAILER_IMDS_ENDPOINT", &world.emulator.imds_endpoint());
    world
        .send(
            &["--no-token-cache", "bob@fabrikam.com"],
            &complete_message("via IMDS"),
            0,
        )
        .await;

    let (endpoint, header) = world.emulator.app_service_identity();
    world.set("M365_MAILER_IMDS_ENDPOINT", "");
    world.set("IDENTITY_ENDPOINT", &endpoint);
    world.set("IDENTITY_HEADER", header);
    world
        .send(
            &["--no-token-cache", "bob@fabrikam.com"],
            &complete_message("via App Service"),
            0,
        )
        .await;

    let stats = world.emulator.stats();
    assert_eq!(stats.managed_identity_tokens, 2);
    assert_eq!(stats.tokens_issued(), 2);
    assert_eq!(world.emulator.store().len(), 2);

    // A wrong identity header is refused by the endpoint, and said so.
    world.set("IDENTITY_HEADER", "wrong");
    let out = world
        .send(&["--no-token-cache", "bob@fabrikam.com"], &complete_message("x"), 78)
        .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("managed identity endpoint") && stderr.contains("401"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_app_that_trusts_another_identity_refuses_this_one() {
    let mut world = managed_identity_world("00000000-0000-0000-0000-00000000abcd").await;
    world.set("M365_MAILER_IMDS_ENDPOINT", &world.emulator.imds_endpoint());
    let out = world
        .send(&["--no-token-cache", "bob@fabrikam.com"], &complete_message("x"), 77)
        .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("AADSTS700213") && stderr.contains(IDENTITY_PRINCIPAL),
        "{stderr}"
    );
}
