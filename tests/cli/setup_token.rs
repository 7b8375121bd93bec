//! `setup` (snapshot-tested, hostile values) and `token` (claims and checks, `--raw`,
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
async fn setup_scripts_for_a_secret_a_certificate_and_rbac() {
    let world = World::start().await;
    let output = world.run(SETUP, b"").await;
    assert!(output.status.success());
    insta::assert_snapshot!("setup_secret", String::from_utf8_lossy(&output.stdout));

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

    let mut rbac = SETUP.to_vec();
    rbac.extend(["--sp-id", "6d5c4b3a-2f1e-4d0c-9b8a-7f6e5d4c3b2a", "--rbac"]);
    let output = world.run(&rbac, b"").await;
    insta::assert_snapshot!("setup_rbac", String::from_utf8_lossy(&output.stdout));
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

    // A token without the role, read from standard input.
    let no_roles = World::start_with(|s| s.tenants[0].apps[0].permissions[0].admin_consent = false).await;
    let token = no_roles.run(&["token", "--raw", "--no-token-cache"], b"").await.stdout;
    let checked = world.run(&["token", "--from-file", "-"], &token).await;
    assert_eq!(checked.status.code(), Some(77));
    assert!(String::from_utf8_lossy(&checked.stdout).contains("BAD  roles absent, expected SMTP.SendAsApp"));
}
