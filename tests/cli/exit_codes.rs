//! Exit codes (sysexits): 77 for refused authentication and Send-As, 69 for other permanent
//! refusals, 75 for temporary failures and unreachable servers, 78 for configuration.

use m365_emulator::{Fault, Stage};

use crate::support::*;

async fn send_expecting(world: &World, code: i32, args: &[&str]) -> String {
    // Options first: after a recipient everything is a recipient.
    let mut all = args.to_vec();
    all.push("bob@fabrikam.com");
    let output = world.send(&all, &complete_message("Exit codes"), code).await;
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn authentication_refusals_are_77() {
    let world = World::start_with(|s| s.tenants[0].exchange_service_principals.clear()).await;
    let stderr = send_expecting(&world, 77, &[]).await;
    assert!(
        stderr.contains("535 5.7.3 Authentication unsuccessful") && stderr.contains("New-ServicePrincipal"),
        "{stderr}"
    );
    // The token's oid is the Enterprise application's Object ID: the fix names it.
    let sp = m365_emulator::fixture::SERVICE_PRINCIPAL;
    assert!(
        stderr.contains(&format!("New-ServicePrincipal -AppId '{CLIENT}' -ObjectId '{sp}'")),
        "{stderr}"
    );

    let world = World::start_with(|s| s.tenants[0].smtp_client_authentication_disabled = true).await;
    let stderr = send_expecting(&world, 77, &[]).await;
    assert!(
        stderr.contains("535 5.7.139") && stderr.contains("Set-TransportConfig"),
        "{stderr}"
    );

    let world = World::start().await;
    let message = String::from_utf8(complete_message("x"))
        .unwrap()
        .replace("From: mailer@contoso.com", "From: ceo@contoso.com");
    let output = world
        .send(&["--no-from-check", "bob@fabrikam.com"], message.as_bytes(), 77)
        .await;
    assert!(String::from_utf8_lossy(&output.stderr).contains("554 5.2.252 SendAsDenied"));
}

#[tokio::test]
async fn other_permanent_refusals_are_69_and_temporary_ones_75() {
    let world = World::start().await;
    world
        .emulator
        .faults()
        .add(
            Fault::reply(
                Stage::Rcpt,
                "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup",
            )
            .times(1),
        )
        .unwrap();
    let stderr = send_expecting(&world, 69, &[]).await;
    assert!(stderr.contains("550 5.1.10"), "{stderr}");
    world
        .emulator
        .faults()
        .add(
            Fault::reply(
                Stage::DataEnd,
                "550 5.7.708 Service unavailable. Access denied, traffic not accepted from this IP.",
            )
            .times(1),
        )
        .unwrap();
    send_expecting(&world, 69, &[]).await;

    world
        .emulator
        .faults()
        .add(
            Fault::reply(
                Stage::Mail,
                "451 4.7.0 Temporary server error. Please try again later. PRX4",
            )
            .times(1),
        )
        .unwrap();
    let stderr = send_expecting(&world, 75, &[]).await;
    assert!(stderr.contains("try again later"), "{stderr}");
    world.emulator.faults().add(Fault::drop_mid_data(10).times(1)).unwrap();
    send_expecting(&world, 75, &[]).await;
    assert!(world.emulator.store().is_empty());
}

#[tokio::test]
async fn unreachable_servers_are_75() {
    let mut world = World::start().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    world.set("M365_MAILER_SMTP_PORT", &closed.to_string());
    let stderr = send_expecting(&world, 75, &[]).await;
    assert!(stderr.contains("cannot connect"), "{stderr}");
    world.set(
        "M365_MAILER_TOKEN_ENDPOINT",
        &format!("https://127.0.0.1:{closed}/{TENANT}/oauth2/v2.0/token"),
    );
    let stderr = send_expecting(&world, 75, &["--no-token-cache"]).await;
    assert!(stderr.contains("cannot reach the token endpoint"), "{stderr}");
}

#[tokio::test]
async fn token_endpoint_refusals_are_77_or_78() {
    let mut world = World::start().await;
    world.set("AZURE_CLIENT_SECRET", SECRET_ID);
    let stderr = send_expecting(&world, 77, &[]).await;
    assert!(
        stderr.contains("AADSTS7000215") && stderr.contains("Secret ID"),
        "{stderr}"
    );
    assert!(stderr.contains("looks like a secret ID"), "config warns too: {stderr}");

    let mut world = World::start().await;
    world.set("M365_MAILER_TOKEN_ENDPOINT", "");
    world.set("AZURE_AUTHORITY_HOST", &world.emulator.base_url());
    world.set("AZURE_TENANT_ID", "northwind.com");
    let stderr = send_expecting(&world, 78, &[]).await;
    assert!(stderr.contains("AADSTS90002"), "{stderr}");
}

#[tokio::test]
async fn configuration_errors_are_78_and_name_their_origin() {
    let mut world = World::start().await;
    world.set("AZURE_CLIENT_ID", "0b7e2f4c");
    let stderr = send_expecting(&world, 78, &[]).await;
    assert!(
        stderr.contains("environment variable AZURE_CLIENT_ID: client id `0b7e2f4c` is not a GUID"),
        "{stderr}"
    );

    let mut world = World::start().await;
    world.set("M365_MAILER_SMTP_PORT", "");
    let config = world.file(
        "config.toml",
        "[accounts.main]\nmailbox = \"mailer@contoso.com\"\nsmtp_port = \"nope\"\n",
    );
    let output = world
        .run(
            &["send", "--config", config.to_str().unwrap(), "a@fabrikam.com"],
            b"Subject: x\n\nx\n",
        )
        .await;
    assert_eq!(output.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("config.toml:3: accounts.main.smtp_port"), "{stderr}");

    let bad = world.file("bad.toml", "[accounts.main]\nmailbx = \"x\"\n");
    let output = world
        .run(&["config", "check", "--config", bad.to_str().unwrap()], b"")
        .await;
    assert_eq!(output.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&output.stderr).contains("mailbx"));
}
