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
