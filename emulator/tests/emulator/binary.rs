//! The standalone program: `--json` prints everything a script needs on the first line, the
//! generated certificate's key signs assertions the token endpoint accepts, and a broken tenant
//! file is refused with the field named.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

use crate::support::*;

const BIN: &str = env!("CARGO_BIN_EXE_m365-emulator");

fn example() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/contoso.toml")
}

struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn json_summary_then_serves_the_example_tenant() {
    let state = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args([
            "--tenant",
            example().to_str().unwrap(),
            "--http-port",
            "0",
            "--smtp-port",
            "0",
            "--hve-port",
            "0",
            "--acs-port",
            "0",
            "--json",
        ])
        .arg("--state-dir")
        .arg(state.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _running = Running(child);
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        line
    })
    .await
    .unwrap();
    let summary: serde_json::Value = serde_json::from_str(&line).unwrap();
    let tenant = &summary["tenants"][0];
    let app = &tenant["apps"][0];
    assert_eq!(
        tenant["domains"],
        serde_json::json!(["contoso.com", "contoso.onmicrosoft.com"])
    );
    assert_eq!(summary["scope"], "https://outlook.office365.com/.default");
    let ca = std::fs::read(summary["ca_file"].as_str().unwrap()).unwrap();
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
        .build()
        .unwrap();

    let secret = app["secrets"][0]["value"].as_str().unwrap();
    let client_id = app["client_id"].as_str().unwrap();
    let endpoint = tenant["token_endpoint"].as_str().unwrap();
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", client_id),
        ("client_secret", secret),
        ("scope", "https://outlook.office365.com/.default"),
    ];
    let response = client.post(endpoint).form(&form).send().await.unwrap();
    assert_eq!(response.status(), 200);

    // The generated key pair works as a certificate credential.
    let cert = &app["generated_certificates"][0];
    let mut assertion = Assertion {
        key_pem: std::fs::read_to_string(cert["key_file"].as_str().unwrap()).unwrap(),
        cert_pem: std::fs::read_to_string(cert["cert_file"].as_str().unwrap()).unwrap(),
        iss: client_id.into(),
        sub: client_id.into(),
        aud: endpoint.into(),
        alg: jsonwebtoken::Algorithm::PS256,
        sha256_thumbprint: true,
        padded_thumbprint: false,
        x5c: false,
        exp_offset: 600,
        nbf_offset: None,
    };
    assertion.iss = client_id.into();
    let mut form = assertion.form("https://outlook.office365.com/.default");
    form[1].1 = client_id.into();
    let response = client.post(endpoint).form(&form).send().await.unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());

    let smtp = tokio::net::TcpStream::connect(summary["smtp"].as_str().unwrap())
        .await
        .unwrap();
    let mut reader = tokio::io::BufReader::new(smtp);
    let mut greeting = String::new();
    tokio::io::AsyncBufReadExt::read_line(&mut reader, &mut greeting)
        .await
        .unwrap();
    assert!(
        greeting.starts_with("220 ") && greeting.contains("Microsoft ESMTP MAIL Service ready"),
        "{greeting}"
    );

    // The other two SMTP services, and who may use them.
    assert_eq!(tenant["hve_accounts"], serde_json::json!(["hve@contoso.com"]));
    assert_eq!(tenant["acs_smtp_usernames"], serde_json::json!(["contoso-smtp"]));
    for (key, host) in [("hve", ".outlook.com "), ("acs", "smtp.azurecomm.net ")] {
        let tcp = tokio::net::TcpStream::connect(summary[key].as_str().unwrap())
            .await
            .unwrap();
        let mut reader = tokio::io::BufReader::new(tcp);
        let mut greeting = String::new();
        tokio::io::AsyncBufReadExt::read_line(&mut reader, &mut greeting)
            .await
            .unwrap();
        assert!(
            greeting.starts_with("220 ") && greeting.contains(host),
            "{key}: {greeting}"
        );
    }
}

#[test]
fn a_broken_tenant_file_names_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.toml");
    let text = std::fs::read_to_string(example()).unwrap().replace(
        "client_id = \"0b7e2f4c-5d6a-4e8b-9c1d-3f2a4b6c8d0e\"",
        "client_id = \"0b7e2f4c\"",
    );
    std::fs::write(&path, text).unwrap();
    let output = Command::new(BIN)
        .args([
            "--tenant",
            path.to_str().unwrap(),
            "--http-port",
            "0",
            "--smtp-port",
            "0",
            "--hve-port",
            "0",
            "--acs-port",
            "0",
        ])
        .arg("--state-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("tenants[0].apps[0].client_id: `0b7e2f4c` is not a GUID"),
        "{stderr}"
    );

    std::fs::write(
        &path,
        "[[tenants]]\nid = \"6f1d3c2a-9b4e-4d7a-8c1f-2e5b7a9d0c13\"\ndomains = [\"contoso.com\"]\nsmtp_auth = true\n",
    )
    .unwrap();
    let output = Command::new(BIN)
        .args(["--tenant", path.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("smtp_auth") && stderr.contains("line 4"), "{stderr}");
}
