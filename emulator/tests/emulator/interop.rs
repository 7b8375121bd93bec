//! The emulator against clients nobody here wrote: Python's smtplib (on Exchange and on ACS),
//! curl, and Microsoft's MSAL for Python. `.ci/run` installs them (MSAL into `.venv`); on a developer machine without them
//! these tests say so and pass, under CI (`CI` set) a missing client is a failure.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use m365_emulator::Emulator;

use crate::support::*;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

/// A client program, or `None` (and a note) when it is not installed outside CI.
fn tool(name: &str, candidates: &[PathBuf], probe: &[&str]) -> Option<PathBuf> {
    for candidate in candidates {
        let ok = Command::new(candidate)
            .args(probe)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Some(candidate.clone());
        }
    }
    if std::env::var_os("CI").is_some() {
        panic!("{name} is required under CI (.ci/run installs it)");
    }
    eprintln!("skipped: {name} is not installed; run .ci/run (or see README) to get it");
    None
}

fn python_with_msal() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = std::env::var_os("M365_TEST_PYTHON")
        .map(PathBuf::from)
        .into_iter()
        .collect();
    candidates.push(workspace().join(".venv/bin/python"));
    tool("Python with msal", &candidates, &["-c", "import msal, cryptography"])
}

fn python() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = std::env::var_os("M365_TEST_PYTHON")
        .map(PathBuf::from)
        .into_iter()
        .collect();
    candidates.extend([workspace().join(".venv/bin/python"), "python3".into()]);
    tool("python3", &candidates, &["-c", "import smtplib, ssl"])
}

fn curl() -> Option<PathBuf> {
    tool("curl", &["curl".into()], &["--version"])
}

/// Runs `program script` with `input` as JSON on stdin; returns its JSON output.
fn run_json(program: &Path, script: &str, input: &serde_json::Value) -> serde_json::Value {
    use std::io::Write as _;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop").join(script);
    // requests lets these override the `verify` MSAL passes it; the scripts name the CA themselves.
    let mut child = Command::new(program)
        .arg(&script)
        .env_remove("REQUESTS_CA_BUNDLE")
        .env_remove("CURL_CA_BUNDLE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{} failed:\n{}",
        script.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

async fn smtplib(
    emulator: &Emulator,
    python: &Path,
    initial_response: bool,
    pipelining: bool,
) -> (serde_json::Value, Vec<u8>) {
    let token = exchange_token(emulator).await;
    let dir = tempfile::tempdir().unwrap();
    let content = message(MAILBOX, "bob@fabrikam.com", "From smtplib");
    let message_file = dir.path().join("message.eml");
    std::fs::write(&message_file, &content).unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, emulator.ca_pem()).unwrap();
    let input = serde_json::json!({
        "smtp": emulator.smtp_addr().to_string(),
        "ca_file": ca_file,
        "mailbox": MAILBOX,
        "to": "bob@fabrikam.com",
        "token": token,
        "message_file": message_file,
        "initial_response": initial_response,
        "pipelining": pipelining,
    });
    let python = python.to_owned();
    let output = tokio::task::spawn_blocking(move || run_json(&python, "smtplib_client.py", &input))
        .await
        .unwrap();
    (output, content)
}

#[tokio::test]
async fn python_smtplib_starttls_xoauth2_both_forms_and_pipelining() {
    let Some(python) = python() else { return };
    let emulator = start(contoso()).await;

    let (out, content) = smtplib(&emulator, &python, true, false).await;
    assert_eq!(out["starttls_offered"], true);
    assert_eq!(out["auth_offered"].as_str().map(str::trim), Some("LOGIN XOAUTH2"));
    assert_eq!(out["auth"][0], 235);
    assert_eq!(out["refused"], serde_json::json!({}));
    assert_eq!(emulator.store().messages()[0].data, content, "byte for byte");

    let (out, content) = smtplib(&emulator, &python, false, true).await;
    assert_eq!(out["auth"][0], 235);
    assert_eq!(out["pipelining_offered"], true);
    assert_eq!(
        out["flight"],
        serde_json::json!([
            [250, "2.1.0 Sender OK"],
            [250, "2.1.5 Recipient OK"],
            [354, "Start mail input; end with <CRLF>.<CRLF>"]
        ])
    );
    assert_eq!(out["data"][0], 250);
    assert_eq!(emulator.store().messages()[1].data, content);

    let auth = emulator.stats().auth;
    assert_eq!(
        (auth.initial_response, auth.two_step),
        (1, 1),
        "smtplib used both forms"
    );
}

/// Azure Communication Services through smtplib's own `login()`: AUTH LOGIN with the SMTP
/// username and the app's client secret.
#[tokio::test]
async fn python_smtplib_logs_in_to_acs_with_the_smtp_username_and_the_client_secret() {
    use m365_emulator::fixture::{ACS_SENDER, ACS_USERNAME};
    let Some(python) = python() else { return };
    let emulator = start(contoso()).await;
    let dir = tempfile::tempdir().unwrap();
    let content = message(ACS_SENDER, "bob@fabrikam.com", "From smtplib through ACS");
    let message_file = dir.path().join("message.eml");
    std::fs::write(&message_file, &content).unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, emulator.ca_pem()).unwrap();
    let input = serde_json::json!({
        "smtp": emulator.acs_addr().to_string(),
        "ca_file": ca_file,
        "username": ACS_USERNAME,
        "password": SECRET,
        "sender": ACS_SENDER,
        "to": "bob@fabrikam.com",
        "message_file": message_file,
    });
    let out = tokio::task::spawn_blocking(move || run_json(&python, "smtplib_login_client.py", &input))
        .await
        .unwrap();
    assert_eq!(out["starttls_offered"], true);
    assert_eq!(out["auth_offered"].as_str().map(str::trim), Some("LOGIN XOAUTH2"));
    assert_eq!(
        out["wrong"],
        serde_json::json!([535, "5.7.3 Authentication unsuccessful"])
    );
    assert_eq!(out["login"][0], 235);
    assert_eq!(out["refused"], serde_json::json!({}));
    let stored = emulator.store().messages();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].endpoint, m365_emulator::Endpoint::Acs);
    assert_eq!(stored[0].mailbox, ACS_USERNAME);
    assert_eq!(stored[0].data, content, "byte for byte");
    let auth = emulator.stats().auth;
    assert_eq!(
        (auth.succeeded, auth.refusals.get("wrong client secret")),
        (1, Some(&1))
    );
}

#[tokio::test]
async fn curl_gets_a_token_and_sends_with_oauth2_bearer() {
    let Some(curl) = curl() else { return };
    let emulator = start(contoso()).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, emulator.ca_pem()).unwrap();

    // Seed 001's command, verbatim apart from the host and the CA.
    let endpoint = emulator.token_endpoint(TENANT);
    let scope = format!("scope={EXCHANGE_SCOPE}");
    let client = format!("client_id={CLIENT}");
    let secret = format!("client_secret={SECRET}");
    let args: Vec<String> = [
        "-s",
        "--cacert",
        ca_file.to_str().unwrap(),
        &endpoint,
        "-d",
        "grant_type=client_credentials",
        "-d",
        &client,
        "-d",
        &secret,
        "-d",
        &scope,
    ]
    .map(str::to_owned)
    .into();
    let curl2 = curl.clone();
    let output = tokio::task::spawn_blocking(move || Command::new(curl2).args(args).output().unwrap())
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(body["token_type"], "Bearer");
    let token = body["access_token"].as_str().unwrap().to_owned();

    let content = message(MAILBOX, "bob@fabrikam.com", "From curl");
    let message_file = dir.path().join("message.eml");
    std::fs::write(&message_file, &content).unwrap();
    let url = format!("smtp://{}", emulator.smtp_addr());
    let args = vec![
        "-sS".to_owned(),
        "--url".into(),
        url,
        "--ssl-reqd".into(),
        "--cacert".into(),
        ca_file.display().to_string(),
        "--mail-from".into(),
        MAILBOX.into(),
        "--mail-rcpt".into(),
        "bob@fabrikam.com".into(),
        "--user".into(),
        MAILBOX.into(),
        "--oauth2-bearer".into(),
        token,
        "--upload-file".into(),
        message_file.display().to_string(),
    ];
    let output = tokio::task::spawn_blocking(move || Command::new(curl).args(args).output().unwrap())
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stored = emulator.store().messages();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].data, content);
}

#[tokio::test]
async fn msal_for_python_gets_tokens_with_a_secret_and_with_certificates() {
    let Some(python) = python_with_msal() else { return };
    let emulator = start(contoso()).await;
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let input = serde_json::json!({
        "authority": emulator.authority(TENANT),
        "base_url": emulator.base_url(),
        "client_id": CLIENT,
        "secret": SECRET,
        "scope": EXCHANGE_SCOPE,
        "ca_file": write("ca.pem", emulator.ca_pem()),
        "key_file": write("key.pem", &client_cert().key_pem),
        "cert_file": write("cert.pem", &client_cert().cert_pem),
        "pfx_file": dir.path().join("mailer.pfx"),
    });
    let out = tokio::task::spawn_blocking(move || run_json(&python, "msal_client.py", &input))
        .await
        .unwrap();

    for case in ["secret", "pem_thumbprint", "pfx"] {
        assert_eq!(out[case]["ok"], true, "{case}: {}", out[case]);
        let c = claims(out[case]["access_token"].as_str().unwrap());
        assert_eq!(c["roles"], serde_json::json!(["SMTP.SendAsApp", "Mail.Send"]), "{case}");
        assert_eq!(c["appidacr"], if case == "secret" { "1" } else { "2" }, "{case}");
    }
    assert_eq!(
        out["secret_cached"]["access_token"], out["secret"]["access_token"],
        "MSAL's cache served the second call"
    );
    assert_eq!(out["wrong_secret"]["ok"], false);
    assert_eq!(out["wrong_secret"]["error"], "invalid_client");
    assert_eq!(out["wrong_secret"]["error_codes"], serde_json::json!([7000215]));
    assert!(
        out["wrong_secret"]["error_description"]
            .as_str()
            .unwrap()
            .starts_with("AADSTS7000215: ")
    );
    // One request each for secret, PEM, PFX and the wrong secret; the cached call made none.
    assert_eq!(
        emulator.stats().tokens_for(CLIENT),
        m365_emulator::stats::TokenCounts { issued: 3, failed: 1 }
    );
}

/// Microsoft Graph `sendMail`, MIME form, driven by curl: a Graph token from the token
/// endpoint, the message base64-encoded as the body; then the documented refusals for a body
/// that is not base64 and one over Graph's 4 MB.
#[tokio::test]
async fn curl_sends_a_mime_message_through_graph() {
    use base64::Engine as _;
    let Some(curl) = curl() else { return };
    let emulator = start(contoso()).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, emulator.ca_pem()).unwrap();
    let run = |args: Vec<String>| {
        let curl = curl.clone();
        async move {
            tokio::task::spawn_blocking(move || Command::new(curl).args(args).output().unwrap())
                .await
                .unwrap()
        }
    };
    let ca = ca_file.display().to_string();
    let token_args = [
        "-s",
        "--cacert",
        &ca,
        &emulator.token_endpoint(TENANT),
        "-d",
        "grant_type=client_credentials",
        "-d",
        &format!("client_id={CLIENT}"),
        "-d",
        &format!("client_secret={SECRET}"),
        "-d",
        "scope=https://graph.microsoft.com/.default",
    ]
    .map(str::to_owned)
    .to_vec();
    let body: serde_json::Value = serde_json::from_slice(&run(token_args).await.stdout).unwrap();
    let token = body["access_token"].as_str().unwrap().to_owned();

    let send = |body_file: &Path| {
        vec![
            "-sS".to_owned(),
            "--cacert".into(),
            ca.clone(),
            "-o".into(),
            "-".into(),
            "-w".into(),
            "\n%{http_code}".into(),
            "-H".into(),
            format!("Authorization: Bearer {token}"),
            "-H".into(),
            "Content-Type: text/plain".into(),
            "--data-binary".into(),
            format!("@{}", body_file.display()),
            format!("{}/v1.0/users/{MAILBOX}/sendMail", emulator.graph_url()),
        ]
    };
    let status_and_body = |out: std::process::Output| {
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, status) = text.rsplit_once('\n').unwrap();
        (status.to_owned(), body.to_owned())
    };

    let content = message(MAILBOX, "bob@fabrikam.com", "From curl through Graph");
    let encoded = dir.path().join("message.b64");
    std::fs::write(&encoded, base64::engine::general_purpose::STANDARD.encode(&content)).unwrap();
    let (status, body) = status_and_body(run(send(&encoded)).await);
    assert_eq!((status.as_str(), body.as_str()), ("202", ""));
    let stored = emulator.store().messages();
    assert_eq!(stored.len(), 1);
    assert!(stored[0].via_graph);
    assert_eq!(stored[0].data, content);
    assert_eq!(stored[0].rcpt_to, ["bob@fabrikam.com"]);

    let garbage = dir.path().join("garbage");
    std::fs::write(&garbage, "this is not base64!").unwrap();
    let (status, body) = status_and_body(run(send(&garbage)).await);
    assert_eq!(status, "400");
    assert!(body.contains("ErrorMimeContentInvalidBase64String"), "{body}");

    let large = dir.path().join("large.b64");
    std::fs::write(&large, "A".repeat(m365_emulator::graph::MAX_REQUEST_BYTES + 4)).unwrap();
    let (status, body) = status_and_body(run(send(&large)).await);
    assert_eq!(status, "413");
    assert!(body.contains("ErrorRequestEntityTooLarge"), "{body}");
    assert_eq!(emulator.store().len(), 1);
}

/// The device authorization grant through MSAL for Python's public client: MSAL starts the
/// flow, polls while the code is pending, and gets a delegated Graph token once the
/// administrator has signed in with the code.
#[tokio::test(flavor = "multi_thread")]
async fn msal_for_python_signs_an_administrator_in_with_a_device_code() {
    use std::io::{BufRead as _, Write as _};
    let Some(python) = python_with_msal() else { return };
    let mut scenario = contoso();
    scenario.entra.device_code_interval_secs = 1;
    scenario.tenants[0].users.push(m365_emulator::model::DirectoryUser {
        user_principal_name: "admin@contoso.com".into(),
        object_id: "5c3e6f1a-0000-4000-8000-000000000001".into(),
        roles: vec!["Application Administrator".into()],
    });
    let emulator = start(scenario).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, emulator.ca_pem()).unwrap();
    let input = serde_json::json!({
        "authority": emulator.authority(TENANT),
        "base_url": emulator.base_url(),
        "client_id": m365_emulator::entra::device::GRAPH_COMMAND_LINE_TOOLS,
        "scopes": [
            "https://graph.microsoft.com/Application.ReadWrite.All",
            "https://graph.microsoft.com/AppRoleAssignment.ReadWrite.All",
        ],
        "ca_file": ca_file,
    });
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/msal_device.py");
    let mut child = Command::new(&python)
        .arg(&script)
        .env_remove("REQUESTS_CA_BUNDLE")
        .env_remove("CURL_CA_BUNDLE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stderr = child.stderr.take().unwrap();
    let (flow, mut lines, mut child) = tokio::task::spawn_blocking(move || {
        let Some(Ok(first)) = lines.next() else {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut stderr, &mut text).unwrap();
            panic!("MSAL printed no flow: {text}");
        };
        child.stderr = Some(stderr);
        (serde_json::from_str::<serde_json::Value>(&first).unwrap(), lines, child)
    })
    .await
    .unwrap();
    assert_eq!(flow["verification_uri"], "https://www.microsoft.com/link", "{flow}");
    assert_eq!(flow["interval"], 1);
    let user_code = flow["user_code"].as_str().unwrap().to_owned();
    assert!(flow["message"].as_str().unwrap().contains(&user_code));
    // MSAL polls meanwhile and hears `authorization_pending`.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    emulator.sign_in_device(&user_code, "admin@contoso.com", true).unwrap();
    let result = tokio::task::spawn_blocking(move || {
        let line = lines.next().expect("MSAL printed its result").unwrap();
        let status = child.wait().unwrap();
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
        assert!(status.success(), "{stderr}");
        serde_json::from_str::<serde_json::Value>(&line).unwrap()
    })
    .await
    .unwrap();
    assert_eq!(result["ok"], true, "{result}");
    let c = claims(result["access_token"].as_str().unwrap());
    let mut scp: Vec<&str> = c["scp"].as_str().unwrap().split(' ').collect();
    scp.sort_unstable();
    assert_eq!(
        scp,
        ["AppRoleAssignment.ReadWrite.All", "Application.ReadWrite.All"],
        "MSAL's OpenID scopes left out"
    );
    assert_eq!(c["upn"], "admin@contoso.com");
    assert_eq!(c["idtyp"], "user");
    assert_eq!(c["wids"], serde_json::json!(["9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3"]));
    let polls = emulator
        .stats()
        .tokens_for(m365_emulator::entra::device::GRAPH_COMMAND_LINE_TOOLS);
    assert!(
        polls.failed >= 1 && polls.issued == 1,
        "pending polls, then the token: {polls:?}"
    );
}
