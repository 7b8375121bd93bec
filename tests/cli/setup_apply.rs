//! `setup --apply` from an empty tenant to a working sender: the real binary signs an
//! administrator in with a device code (approved by the test through the emulator, as the
//! administrator's browser would), does the Entra part through the emulator's Microsoft Graph,
//! writes the account, prints the Exchange part, and waits; the test applies that printed
//! script through the emulator's Exchange Online PowerShell, and the wait ends with the checks
//! passing and a test message sent.

use std::process::Stdio;
use std::time::Duration;

use m365_emulator::model::DirectoryUser;
use m365_emulator::{Fault, Scenario};
use tokio::io::{AsyncBufReadExt as _, BufReader};

use crate::support::*;

const ADMIN: &str = "admin@contoso.com";
const TEST_TO: &str = "bob@fabrikam.com";

/// Contoso with its mailboxes and an administrator, and no app, no Exchange registration, no
/// grant: where a new customer starts.
fn empty_tenant(s: &mut Scenario) {
    s.entra.device_code_interval_secs = 1;
    let tenant = &mut s.tenants[0];
    tenant.apps.clear();
    tenant.exchange_service_principals.clear();
    tenant.management_role_assignments.clear();
    tenant.hve_accounts.clear();
    tenant.acs_resources.clear();
    for mailbox in &mut tenant.mailboxes {
        mailbox.full_access.clear();
        mailbox.send_as.clear();
    }
    tenant.users.push(DirectoryUser {
        user_principal_name: ADMIN.into(),
        object_id: "5c3e6f1a-0000-4000-8000-000000000001".into(),
        roles: vec!["Application Administrator".into()],
    });
}

async fn world() -> World {
    world_with(|_| {}).await
}

/// An empty tenant changed by `change`, and the binary's environment without an account.
async fn world_with(change: impl FnOnce(&mut Scenario)) -> World {
    let mut world = World::start_with(|s| {
        empty_tenant(s);
        change(s);
    })
    .await;
    // Nothing of the account from the environment: it is what setup writes into the file.
    for key in [
        "AZURE_TENANT_ID",
        "AZURE_CLIENT_ID",
        "AZURE_CLIENT_SECRET",
        "M365_MAILER_MAILBOX",
    ] {
        world.set(key, "");
    }
    let graph = world.emulator.graph_url();
    world.set("M365_MAILER_GRAPH_URL", &graph);
    world
}

fn config(world: &World) -> std::path::PathBuf {
    world.dir.path().join("etc").join("config.toml")
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// `setup --apply` with `extra` flags: approves the device code when it is shown and, when
/// `exchange` is set, applies the Exchange script it saved once the first check has failed
/// (as an administrator would, a while after).
async fn apply(world: &World, extra: &[&str], exchange: bool) -> Run {
    let config = config(world);
    let config = config.to_str().unwrap();
    let mut args = vec![
        "setup",
        "--apply",
        "--tenant",
        TENANT,
        "--mailbox",
        MAILBOX,
        "--config",
        config,
        "--check-every",
        "1s",
        "--wait",
        "30s",
    ];
    args.extend_from_slice(extra);
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_m365-mailer"));
    command
        .args(&args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", world.dir.path())
        .env("XDG_CACHE_HOME", world.cache_dir())
        .envs(world.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stdout = String::new();
    let script = world.dir.path().join("etc").join("main-exchange.ps1");
    let mut applied = false;
    let read = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(code) = line.strip_prefix("Code: ") {
                world.emulator.sign_in_device(code, ADMIN, true).unwrap();
            }
            if line.contains("not yet: ") && exchange && !applied {
                applied = true;
                let text = std::fs::read_to_string(&script).unwrap();
                world
                    .emulator
                    .exchange_powershell(&text)
                    .unwrap_or_else(|e| panic!("the printed script runs: {e}\n{text}"));
            }
            stdout.push_str(&line);
            stdout.push('\n');
        }
    };
    tokio::time::timeout(Duration::from_secs(90), read)
        .await
        .expect("setup --apply ends");
    let output = child.wait_with_output().await.unwrap();
    Run {
        code: output.status.code(),
        stdout,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn tenant_state(world: &World) -> String {
    let scenario = world.emulator.scenario();
    let tenant = &scenario.tenants[0];
    format!(
        "{:?}",
        (
            tenant
                .apps
                .iter()
                .map(|a| (&a.client_id, &a.service_principal_id, a.secrets.len(), &a.permissions))
                .collect::<Vec<_>>(),
            tenant.exchange_service_principals.len(),
            tenant.management_role_assignments.len(),
        )
    )
}

#[tokio::test]
async fn from_an_empty_tenant_to_a_working_sender_and_a_second_run_changes_nothing() {
    let world = world().await;
    let run = apply(&world, &["--send-test", TEST_TO], true).await;
    assert_eq!(run.code, Some(0), "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    for shown in [
        "App registration: made",
        "Enterprise application: made",
        "Admin consent: none needed",
        "Client secret: made",
        "New-ServicePrincipal -AppId",
        "not yet: auth: ",
        "the token and AUTH pass",
        "test message to bob@fabrikam.com accepted",
    ] {
        assert!(run.stdout.contains(shown), "{shown}\n{}", run.stdout);
    }
    let scenario = world.emulator.scenario();
    let app = &scenario.tenants[0].apps[0];
    assert_eq!(scenario.tenants[0].apps.len(), 1);
    let config_text = std::fs::read_to_string(config(&world)).unwrap();
    assert!(
        config_text.contains(&format!("client_id = \"{}\"", app.client_id)),
        "{config_text}"
    );
    assert!(
        config_text.contains(&format!("client_secret_id = \"{}\"", app.secrets[0].id)),
        "{config_text}"
    );
    let secret_file = world.dir.path().join("etc").join("main.secret");
    assert_eq!(std::fs::read_to_string(&secret_file).unwrap(), app.secrets[0].value);
    use std::os::unix::fs::PermissionsExt as _;
    for file in [config(&world), secret_file] {
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600,
            "{}",
            file.display()
        );
    }
    // The administrator's token (the one with delegated scopes, `scp`) is in no file and not
    // in the output; the app's own Exchange token is cached, as designed.
    for entry in walk(world.dir.path()) {
        let text = String::from_utf8_lossy(&std::fs::read(&entry).unwrap_or_default()).into_owned();
        assert!(
            !delegated_token_in(&text),
            "the administrator's token in {}",
            entry.display()
        );
    }
    assert!(!delegated_token_in(&run.stdout) && !delegated_token_in(&run.stderr));
    assert!(!run.stdout.contains("eyJ"), "no token printed");
    assert_eq!(world.emulator.store().messages().len(), 1, "the test message");

    // doctor, as the user runs it next, from the written config alone.
    let config_path = config(&world);
    let doctor = world
        .run(
            &[
                "doctor",
                "--config",
                config_path.to_str().unwrap(),
                "--send-test",
                TEST_TO,
            ],
            b"",
        )
        .await;
    assert_eq!(
        doctor.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&doctor.stdout)
    );

    // A second run finds everything and changes nothing, in the tenant and in the file.
    let before = (tenant_state(&world), std::fs::read(config(&world)).unwrap());
    let again = apply(&world, &[], false).await;
    assert_eq!(
        again.code,
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        again.stdout,
        again.stderr
    );
    assert!(
        !again.stdout.contains(": made") && !again.stdout.contains(": updated"),
        "{}",
        again.stdout
    );
    assert_eq!((tenant_state(&world), std::fs::read(config(&world)).unwrap()), before);
}

#[tokio::test]
async fn a_run_stopped_half_way_finishes_when_run_again() {
    let world = world().await;
    // The fourth directory call (after finding Exchange Online's service principal, making the
    // app and looking for its Enterprise application: making that) fails as Graph does when it
    // is in trouble.
    world
        .emulator
        .faults()
        .add(
            Fault::directory_http(
                503,
                r#"{"error":{"code":"serviceUnavailable","message":"Service Unavailable"}}"#,
            )
            .skip(3)
            .times(1),
        )
        .unwrap();
    let stopped = apply(&world, &["--per-mailbox"], false).await;
    assert_eq!(
        stopped.code,
        Some(69),
        "stdout:\n{}\nstderr:\n{}",
        stopped.stdout,
        stopped.stderr
    );
    assert!(
        stopped
            .stderr
            .contains("POST /v1.0/servicePrincipals: Microsoft Graph answered HTTP 503 serviceUnavailable")
            && stopped.stderr.contains("run the same command again"),
        "{}",
        stopped.stderr
    );
    assert!(stopped.stdout.contains("App registration: made"), "{}", stopped.stdout);
    let client_id = world.emulator.scenario().tenants[0].apps[0].client_id.clone();

    let finished = apply(&world, &["--per-mailbox", "--send-test", TEST_TO], true).await;
    assert_eq!(
        finished.code,
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        finished.stdout,
        finished.stderr
    );
    for shown in [
        "App registration: found",
        "Enterprise application: made",
        "Admin consent: made, SMTP.SendAsApp",
        "Client secret: made",
        "Add-MailboxPermission",
        "test message to bob@fabrikam.com accepted",
    ] {
        assert!(finished.stdout.contains(shown), "{shown}\n{}", finished.stdout);
    }
    let scenario = world.emulator.scenario();
    assert_eq!(scenario.tenants[0].apps.len(), 1, "never a second app");
    assert_eq!(scenario.tenants[0].apps[0].client_id, client_id);
}

#[tokio::test]
async fn an_administrator_without_the_role_is_told_which_one_is_missing() {
    let world = world_with(|s| s.tenants[0].users[0].roles.clear()).await;
    let run = apply(&world, &[], false).await;
    assert_eq!(run.code, Some(77), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("POST /v1.0/applications: Microsoft Graph answered HTTP 403 Authorization_RequestDenied")
            && run
                .stderr
                .contains("Application Administrator, Cloud Application Administrator or Global Administrator"),
        "{}",
        run.stderr
    );
    assert!(!config(&world).exists(), "nothing written");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// Whether `text` holds a JWT with a `scp` claim: a delegated token, as the administrator's is.
fn delegated_token_in(text: &str) -> bool {
    use base64::Engine as _;
    let jwt = regex::Regex::new(r"eyJ[A-Za-z0-9_-]+\.([A-Za-z0-9_-]+)\.[A-Za-z0-9_-]+").unwrap();
    jwt.captures_iter(text).any(|c| {
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&c[1])
            .unwrap_or_default();
        String::from_utf8_lossy(&payload).contains("\"scp\"")
    })
}
