//! `setup` for each service (snapshot-tested, hostile values) and `token` (claims and checks, `--raw`,
//! `--from-file`).

use crate::support::*;

const SETUP: &[&str] = &[
    "setup",
    "--tenant",
    "contoso.onmicrosoft.com",
    "--client-id",
    "0b7e2f4c-5d6a-4e8b-9c1d-3f2a4b6c8d0e",
    "--mailbox",
    "mailer@contoso.com",
];

#[tokio::test]
async fn setup_scripts_for_a_secret_a_certificate_and_per_mailbox() {
    let world = World::start().await;
    // RBAC for Applications is the default.
    let output = world.run(SETUP, b"").await;
    assert!(output.status.success());
    insta::assert_snapshot!("setup_secret", String::from_utf8_lossy(&output.stdout));

    // `--rbac`, hidden now, asks for what is the default anyway.
    let mut rbac = SETUP.to_vec();
    rbac.push("--rbac");
    let same = world.run(&rbac, b"").await;
    assert!(same.status.success());
    assert_eq!(same.stdout, output.stdout);

    let cert = world.file("mailer.pem", "");
    std::fs::write(&cert, &client_cert().cert_pem).unwrap();
    let mut args = SETUP.to_vec();
    let cert_path = cert.to_str().unwrap();
    args.extend([
        "--sp-id",
        "6d5c4b3a-2f1e-4d0c-9b8a-7f6e5d4c3b2a",
        "--certificate",
        cert_path,
        "--send-as",
        "alerts@contoso.com",
    ]);
    let output = world.run(&args, b"").await;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8_lossy(&output.stdout)
        .replace(cert_path, "<certificate>")
        .replace(&client_cert_thumbprint(), "<thumbprint>");
    insta::assert_snapshot!("setup_certificate", text);

    // The guides' way: the Entra permission, FullAccess and SendAs.
    let mut per_mailbox = SETUP.to_vec();
    per_mailbox.extend([
        "--sp-id",
        "6d5c4b3a-2f1e-4d0c-9b8a-7f6e5d4c3b2a",
        "--send-as",
        "alerts@contoso.com",
        "--per-mailbox",
    ]);
    let output = world.run(&per_mailbox, b"").await;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    insta::assert_snapshot!("setup_per_mailbox", String::from_utf8_lossy(&output.stdout));

    // Both ways at once is a usage error.
    per_mailbox.push("--rbac");
    let output = world.run(&per_mailbox, b"").await;
    assert_eq!(output.status.code(), Some(64));
    assert!(output.stdout.is_empty());
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot be used with"));
}

#[tokio::test]
async fn setup_scripts_for_high_volume_email_and_azure_communication_services() {
    let world = World::start().await;
    let hve = [
        "setup",
        "--service",
        "hve",
        "--tenant",
        "contoso.onmicrosoft.com",
        "--client-id",
        "0b7e2f4c-5d6a-4e8b-9c1d-3f2a4b6c8d0e",
        "--mailbox",
        "hve-alerts@contoso.com",
    ];
    let output = world.run(&hve, b"").await;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    insta::assert_snapshot!("setup_hve", String::from_utf8_lossy(&output.stdout));

    let acs = [
        "setup",
        "--service",
        "acs",
        "--tenant",
        "6f1d3c2a-9b4e-4d7a-8c1f-2e5b7a9d0c13",
        "--client-id",
        "0b7e2f4c-5d6a-4e8b-9c1d-3f2a4b6c8d0e",
        "--sender",
        "DoNotReply@mail.contoso.com",
        "--subscription",
        "11111111-2222-4333-8444-555555555555",
        "--resource-group",
        "rg-mail",
        "--acs-resource",
        "contoso-acs",
        "--smtp-username",
        "mailer",
    ];
    let output = world.run(&acs, b"").await;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    insta::assert_snapshot!("setup_acs", String::from_utf8_lossy(&output.stdout));
    // --sender is --mailbox by another name.
    let mut as_mailbox = acs.to_vec();
    as_mailbox[7] = "--mailbox";
    assert_eq!(world.run(&as_mailbox, b"").await.stdout, output.stdout);

    // Only the app: the Azure ids are asked for when the script runs, the config lines marked.
    let output = world
        .run(
            &SETUP[..5]
                .iter()
                .chain(&["--service", "acs"])
                .copied()
                .collect::<Vec<_>>(),
            b"",
        )
        .await;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    insta::assert_snapshot!("setup_acs_asked", String::from_utf8_lossy(&output.stdout));

    // Flags of another service, an unknown service, a missing mailbox: usage errors.
    for (extra, message) in [
        (
            &["--service", "hve", "--per-mailbox"][..],
            "--per-mailbox applies to --service exchange",
        ),
        (
            &["--service", "acs", "--send-as", "alerts@contoso.com"],
            "--send-as applies to --service exchange",
        ),
        (
            &["--subscription", "11111111-2222-4333-8444-555555555555"],
            "--subscription applies to --service acs",
        ),
        (&["--service", "smtp"], "expected exchange, hve or acs"),
    ] {
        let mut args = SETUP.to_vec();
        args.extend(extra);
        let output = world.run(&args, b"").await;
        assert_eq!(output.status.code(), Some(64), "{extra:?}");
        assert!(output.stdout.is_empty());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(message), "{extra:?}: {stderr}");
    }
    let output = world.run(&hve[..7], b"").await;
    assert_eq!(output.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--service hve needs --mailbox"));
}

fn client_cert_thumbprint() -> String {
    use rustls::pki_types::pem::PemObject as _;
    use sha1::Digest as _;
    let der = rustls::pki_types::CertificateDer::from_pem_slice(client_cert().cert_pem.as_bytes()).unwrap();
    sha1::Sha1::digest(&der).iter().map(|b| format!("{b:02X}")).collect()
}

#[tokio::test]
async fn setup_refuses_what_it_cannot_quote() {
    let world = World::start().await;
    let mut args = SETUP.to_vec();
    args[6] = "mailer@contoso.com\nStop-Computer";
    let output = world.run(&args, b"").await;
    assert_eq!(output.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&output.stderr).contains("line break"));
    assert!(output.stdout.is_empty());

    let mut args = SETUP.to_vec();
    args[2] = "contoso.com'; Stop-Computer; '";
    assert_eq!(world.run(&args, b"").await.status.code(), Some(64));

    // The Azure ids of `--service acs` too.
    for (flag, value) in [
        ("--resource-group", "rg'; Stop-Computer; '"),
        ("--acs-resource", "acs$(Stop-Computer)"),
        ("--subscription", "`whoami`"),
        ("--smtp-username", "mailer\nStop-Computer"),
    ] {
        let mut args = SETUP.to_vec();
        args.extend(["--service", "acs", flag, value]);
        let output = world.run(&args, b"").await;
        assert_eq!(output.status.code(), Some(64), "{flag}");
        assert!(output.stdout.is_empty(), "{flag}");
        assert!(String::from_utf8_lossy(&output.stderr).contains(flag), "{flag}");
    }

    // A certificate path is written into the script too: a line break in it would be a command.
    let dir = world.dir.path().join("certs\nStop-Computer -Force\n#");
    std::fs::create_dir_all(&dir).unwrap();
    let pem = dir.join("mailer.pem");
    std::fs::write(&pem, &client_cert().cert_pem).unwrap();
    let mut args = SETUP.to_vec();
    let path = pem.display().to_string();
    args.extend(["--certificate", path.as_str()]);
    let output = world.run(&args, b"").await;
    assert_eq!(
        output.status.code(),
        Some(64),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("line break"));
    assert!(output.stdout.is_empty());
}

#[tokio::test]
async fn token_shows_claims_and_checks_and_only_raw_prints_it() {
    let world = World::start().await;
    let output = world.run(&["token", "--no-token-cache"], b"").await;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8_lossy(&output.stdout);
    for expected in [
        "  idtyp            app",
        "  roles            SMTP.SendAsApp",
        "  ok   roles SMTP.SendAsApp",
        "  ok   aud https://outlook.office365.com",
    ] {
        assert!(text.contains(expected), "missing {expected:?}:\n{text}");
    }
    assert!(!text.contains("eyJ"), "the token itself is not printed");

    let raw = world.run(&["token", "--raw"], b"").await;
    let token = String::from_utf8_lossy(&raw.stdout).trim().to_owned();
    assert!(token.starts_with("eyJ") && token.split('.').count() == 3);

    // A token without any role (no permission of the app has consent), read from standard input.
    let no_roles = World::start_with(|s| {
        for permission in &mut s.tenants[0].apps[0].permissions {
            permission.admin_consent = false;
        }
    })
    .await;
    let token = no_roles.run(&["token", "--raw", "--no-token-cache"], b"").await.stdout;
    let checked = world.run(&["token", "--from-file", "-"], &token).await;
    // That is what RBAC for Applications gives: Exchange decides with its own role assignment.
    assert_eq!(checked.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&checked.stdout).contains("roles absent (as with RBAC for Applications"),
        "{}",
        String::from_utf8_lossy(&checked.stdout)
    );
    // Roles, but not SMTP.SendAsApp (only the Mail.Send that HVE takes): Exchange refuses it.
    let other_role = World::start_with(|s| s.tenants[0].apps[0].permissions[0].admin_consent = false).await;
    let token = other_role
        .run(&["token", "--raw", "--no-token-cache"], b"")
        .await
        .stdout;
    let checked = world.run(&["token", "--from-file", "-"], &token).await;
    assert_eq!(checked.status.code(), Some(77));
    assert!(String::from_utf8_lossy(&checked.stdout).contains("BAD  roles Mail.Send, expected SMTP.SendAsApp"));
}
