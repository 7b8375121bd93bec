//! `setup --apply`: the administrator signs in with a device code; the Entra steps run through
//! Microsoft Graph (`setup::apply`), each result written into the config file as soon as it
//! exists, so a run stopped half way continues where it stopped; the Exchange part is printed
//! with every id filled in (and saved beside the config file); then the doctor's checks run
//! again until Exchange has taken the changes.
//!
//! The administrator's token lives in memory only (`oauth::device`): it is never written, and
//! nothing here prints it.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::args::SetupArgs;
use super::exit::{Code, Failure};
use crate::clock::{self, Timestamp};
use crate::config::write::{self, WriteError};
use crate::config::{Config, Field, Overrides};
use crate::directory::Directory;
use crate::doctor::{self, CheckId, Status};
use crate::oauth::cloud::Cloud;
use crate::oauth::device::{self, DeviceCode, SignIn};
use crate::service::Service;
use crate::setup::apply::{self, ApplyError, Done, Permission};
use crate::setup::{self, Spec};

/// The delegated Microsoft Graph scopes: no broader than the steps need.
const SCOPES: [&str; 2] = ["Application.ReadWrite.All", "AppRoleAssignment.ReadWrite.All"];

pub(super) async fn run(args: &SetupArgs, mut spec: Spec) -> Result<(), Failure> {
    if spec.service == Service::Acs {
        return Err(Failure::new(
            Code::Usage,
            "--apply does the Entra part of --service exchange and hve; Azure Communication Services authorises with an Azure role on its resource: run setup --service acs without --apply for its steps",
        ));
    }
    // Every value is checked before anyone signs in: the script is made once with stand-in ids.
    let stand_in = "00000000-0000-0000-0000-000000000000";
    setup::script(&Spec {
        client_id: stand_in.to_owned(),
        sp_id: Some(stand_in.to_owned()),
        ..spec.clone()
    })
    .map_err(|e| Failure::new(Code::Usage, e.to_string()))?;
    let sign_in_client = args
        .sign_in_client_id
        .clone()
        .unwrap_or_else(|| device::GRAPH_COMMAND_LINE_TOOLS.to_owned());
    if uuid::Uuid::parse_str(&sign_in_client).is_err() {
        return Err(Failure::new(
            Code::Usage,
            format!("--sign-in-client-id `{}` is not a GUID", sign_in_client.escape_debug()),
        ));
    }
    let endpoints = Endpoints::from_env()?;
    let path = config_path(args);
    let account = &args.account;
    let stored = |field| write::stored(&path, account, field).map_err(config_failure);
    let stored_client = stored(Field::ClientId)?;
    if let Some(id) = &stored_client
        && uuid::Uuid::parse_str(id).is_err()
    {
        return Err(Failure::new(
            Code::Config,
            format!("{}: accounts.{account}.client_id is not a GUID", path.display()),
        ));
    }
    let stored_key = stored(Field::ClientSecretId)?;
    let secret_file = stored(Field::ClientSecretFile)?
        .map(PathBuf::from)
        .unwrap_or_else(|| path.with_file_name(format!("{account}.secret")));

    let client = http_client(endpoints.ca_file.as_deref())?;
    let sign_in = SignIn {
        authority: endpoints.authority.clone(),
        tenant: spec.tenant.clone(),
        client_id: sign_in_client,
        scopes: SCOPES
            .iter()
            .map(|s| format!("{}/{s}", endpoints.graph_scope_root))
            .collect(),
    };
    let code = sign_in.start(&client).await.map_err(sign_in_failure)?;
    show_code(&code);
    let token = sign_in.wait(&client, &code).await.map_err(sign_in_failure)?;
    println!("Signed in.");
    let dir = Directory::new(client, &endpoints.graph, token.access_token);

    let permission = Permission::needed(spec.service, spec.access.unwrap_or_default(), false);
    let resource = match permission {
        Some(p) => Some((p, apply::resource(&dir, p).await.map_err(apply_failure)?)),
        None => None,
    };
    let wanted = apply::required(resource.as_ref().map(|(p, (_, role))| (*p, role)));
    let (app, done) = apply::app(&dir, stored_client.as_deref(), &spec.display_name, &wanted)
        .await
        .map_err(apply_failure)?;
    step(
        "App registration",
        done,
        &format!("Application (client) ID {}", app.app_id),
    );
    let mut fields = vec![
        (Field::Tenant, spec.tenant.clone()),
        (Field::ClientId, app.app_id.clone()),
        (Field::Mailbox, spec.mailbox.clone().unwrap_or_default()),
    ];
    if spec.service != Service::Exchange {
        fields.push((Field::Service, spec.service.to_string()));
    }
    if done == Done::Created {
        // Stored at once: a run stopped after this finds the app, never makes a second one.
        save(&path, account, &fields)?;
    }
    let (principal, done) = apply::service_principal(&dir, &app).await.map_err(apply_failure)?;
    step("Enterprise application", done, &format!("Object ID {}", principal.id));
    match &resource {
        Some((p, (api, role))) => {
            let done = apply::consent(&dir, &principal, api, role, *p)
                .await
                .map_err(apply_failure)?;
            step("Admin consent", done, &format!("{} of {}", p.role, api.app_id));
        }
        None => println!("  Admin consent: none needed (RBAC for Applications takes no Entra permission)"),
    }
    let now = Timestamp::now();
    let keep = stored_key
        .as_deref()
        .filter(|key| secret_file.is_file() && apply::secret_lasts(&app, key, now));
    match keep {
        Some(key) => step(
            "Client secret",
            Done::Found,
            &format!("Secret ID {key}, in {}", secret_file.display()),
        ),
        None => {
            let new = apply::add_secret(&dir, &app, now, args.secret_days)
                .await
                .map_err(apply_failure)?;
            write::write_secret(&secret_file, &new.secret_text).map_err(config_failure)?;
            let expires = new.end_date_time.get(..10).unwrap_or(&new.end_date_time).to_owned();
            step(
                "Client secret",
                Done::Created,
                &format!(
                    "Secret ID {}, expires {expires}, value in {}",
                    new.key_id,
                    secret_file.display()
                ),
            );
            fields.extend([
                (Field::ClientSecretFile, secret_file.display().to_string()),
                (Field::ClientSecretExpires, expires),
                (Field::ClientSecretId, new.key_id),
            ]);
            save(&path, account, &fields)?;
        }
    }
    println!("  Account [accounts.{account}] in {}", path.display());

    spec.client_id = app.app_id.clone();
    spec.sp_id = Some(principal.id.clone());
    spec.entra_done = true;
    let script = setup::script(&spec).map_err(|e| Failure::new(Code::Software, e.to_string()))?;
    let script_path = path.with_file_name(format!("{account}-exchange.ps1"));
    if std::fs::read_to_string(&script_path).ok().as_deref() != Some(script.as_str()) {
        crate::private::replace(&script_path, script.as_bytes())
            .map_err(|e| Failure::new(Code::CantCreate, format!("{}: {e}", script_path.display())))?;
    }
    println!();
    println!(
        "Now the Exchange part, in Exchange Online PowerShell (saved as {}):",
        script_path.display()
    );
    println!();
    print!("{script}");
    println!();
    offer_pwsh(&script_path).await;
    wait_for_exchange(&path, account, args).await
}

/// Where the administrator signs in and Graph is, from the environment as the other commands
/// read it (`AZURE_AUTHORITY_HOST`, `M365_MAILER_GRAPH_URL`, `M365_MAILER_CLOUD`,
/// `M365_MAILER_CA_FILE`).
struct Endpoints {
    authority: String,
    graph: String,
    /// The scopes' resource: always the cloud's Graph (an emulator's tokens are for it too).
    graph_scope_root: String,
    ca_file: Option<PathBuf>,
}

impl Endpoints {
    fn from_env() -> Result<Self, Failure> {
        let env = crate::config::process_env;
        let cloud: Cloud = match env("M365_MAILER_CLOUD") {
            Some(text) => text
                .parse()
                .map_err(|e| Failure::new(Code::Config, format!("environment variable M365_MAILER_CLOUD: {e}")))?,
            None => Cloud::Global,
        };
        let endpoints = cloud.endpoints();
        Ok(Self {
            authority: env("AZURE_AUTHORITY_HOST").unwrap_or_else(|| endpoints.login.to_owned()),
            graph: env("M365_MAILER_GRAPH_URL").unwrap_or_else(|| endpoints.graph.to_owned()),
            graph_scope_root: endpoints.graph.to_owned(),
            ca_file: env("M365_MAILER_CA_FILE").map(PathBuf::from),
        })
    }
}

/// `--config`, else the file the other commands read, else the user's.
fn config_path(args: &SetupArgs) -> PathBuf {
    if let Some(path) = &args.config {
        return path.clone();
    }
    crate::config::default_config_path(&crate::config::process_env).unwrap_or_else(|| {
        let env = crate::config::process_env;
        env("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".config")))
            .unwrap_or_else(|| PathBuf::from("/etc"))
            .join("m365-mailer")
            .join("config.toml")
    })
}

fn http_client(ca_file: Option<&Path>) -> Result<reqwest::Client, Failure> {
    let tls = crate::tls::client_config(ca_file).map_err(|e| Failure::new(Code::Config, e.to_string()))?;
    crate::submit::http_client(&tls).map_err(|e| Failure::new(Code::Software, e.to_string()))
}

/// The code, the page, and on a terminal a QR code of the page.
fn show_code(code: &DeviceCode) {
    println!("{}", code.message);
    println!("Code: {}", code.user_code);
    if std::io::stdout().is_terminal()
        && let Ok(qr) = qrcode::QrCode::new(code.verification_uri.as_bytes())
    {
        let image = qr
            .render::<qrcode::render::unicode::Dense1x2>()
            .quiet_zone(true)
            .build();
        println!("{image}");
    }
    println!(
        "Sign in as an Application Administrator, Cloud Application Administrator or Global Administrator. Waiting (the code works until {})…",
        code.expires_at
    );
}

fn step(what: &str, done: Done, detail: &str) {
    let verb = match done {
        Done::Created => "made",
        Done::Updated => "updated",
        Done::Found => "found",
    };
    println!("  {what}: {verb}, {detail}");
}

fn save(path: &Path, account: &str, fields: &[(Field, String)]) -> Result<(), Failure> {
    let fields: Vec<(Field, &str)> = fields.iter().map(|(f, v)| (*f, v.as_str())).collect();
    write::set_account(path, account, &fields).map_err(config_failure)
}

#[allow(clippy::needless_pass_by_value, reason = "used as map_err(config_failure)")]
fn config_failure(e: WriteError) -> Failure {
    Failure::new(Code::CantCreate, e.to_string())
}

#[allow(clippy::needless_pass_by_value, reason = "used as map_err(sign_in_failure)")]
fn sign_in_failure(e: device::DeviceError) -> Failure {
    let code = match e {
        device::DeviceError::Unreachable(_) => Code::Unavailable,
        device::DeviceError::Refused(_) => Code::NoPerm,
        _ => Code::TempFail,
    };
    Failure::new(code, e.to_string())
}

#[allow(clippy::needless_pass_by_value, reason = "used as map_err(apply_failure)")]
fn apply_failure(e: ApplyError) -> Failure {
    let code = match &e {
        ApplyError::Directory(crate::directory::DirectoryError::Unreachable { .. }) => Code::Unavailable,
        ApplyError::Directory(crate::directory::DirectoryError::Refused {
            error_status: 401 | 403,
            ..
        }) => Code::NoPerm,
        _ => Code::Unavailable,
    };
    Failure::new(
        code,
        format!("{e}\nWhat was done is kept: run the same command again to continue."),
    )
}

/// Where `pwsh` is installed and this is an interactive terminal: offers to run the script.
async fn offer_pwsh(script: &Path) {
    let interactive = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let pwsh = crate::system::find_program("pwsh");
    match (interactive, pwsh) {
        (true, Some(pwsh)) => {
            println!("pwsh is installed: run the Exchange part now? It signs in to Exchange Online itself. [y/N]");
            let mut answer = String::new();
            let read =
                tokio::task::spawn_blocking(move || std::io::stdin().read_line(&mut answer).map(|_| answer)).await;
            if matches!(read, Ok(Ok(a)) if a.trim().eq_ignore_ascii_case("y")) {
                let status = tokio::process::Command::new(pwsh)
                    .args(["-NoProfile", "-File"])
                    .arg(script)
                    .status()
                    .await;
                match status {
                    Ok(s) if s.success() => println!("The Exchange part ran."),
                    Ok(s) => {
                        println!("pwsh ended with {s}: see its output above; the checks below say what is missing.");
                    }
                    Err(e) => println!("pwsh could not be started: {e}"),
                }
            }
        }
        _ => println!(
            "Run it where the ExchangeOnlineManagement module is (Azure Cloud Shell has it): pwsh -File {}",
            script.display()
        ),
    }
}

/// The doctor's checks, again and again, until the token, AUTH (and the test message) pass or
/// `--wait` is over. A failure that waiting cannot mend (the configuration, the network) ends
/// the wait at once.
async fn wait_for_exchange(path: &Path, account: &str, args: &SetupArgs) -> Result<(), Failure> {
    if args.wait.is_zero() {
        println!("Not waiting (--wait 0): once Exchange has the changes, `m365-mailer doctor` says so.");
        return Ok(());
    }
    let overrides = Overrides {
        config: Some(path.to_owned()),
        account: Some(account.to_owned()),
        fields: Vec::new(),
    };
    let options = doctor::Options {
        send_test: args.send_test.clone(),
        from: None,
    };
    let waited_on = [
        CheckId::Token,
        CheckId::Claims,
        CheckId::Auth,
        CheckId::Graph,
        CheckId::Send,
    ];
    let start = clock::instant();
    println!(
        "Waiting for Exchange to take the changes (minutes, sometimes an hour; up to {}), checking every {}:",
        humantime::format_duration(args.wait),
        humantime::format_duration(args.check_every)
    );
    loop {
        let report = doctor::run(Config::resolve(&overrides), &options).await;
        let elapsed = Duration::from_secs(clock::since(start).as_secs());
        let Some(failed) = report.checks.iter().find(|c| c.status == Status::Fail) else {
            println!(
                "  {:>8}  the token and AUTH pass: the account works",
                humantime::format_duration(elapsed).to_string()
            );
            if let Some(to) = &args.send_test {
                println!("  test message to {to} accepted");
            }
            return Ok(());
        };
        let why = format!("{}: {}", failed.id, failed.summary.lines().next().unwrap_or_default());
        let code = failed.code.unwrap_or(Code::TempFail);
        if !waited_on.contains(&failed.id) {
            return Err(Failure::new(
                code,
                format!("{why}\nWaiting does not mend this: `m365-mailer doctor` shows the cause and the fix."),
            ));
        }
        if elapsed + args.check_every > args.wait {
            return Err(Failure::new(
                code,
                format!(
                    "Exchange has not taken the changes after {}: {why}\nRBAC assignments can take up to 2 hours; run `m365-mailer doctor` later, it shows the cause and the fix.",
                    humantime::format_duration(elapsed)
                ),
            ));
        }
        println!(
            "  {:>8}  not yet: {why}",
            humantime::format_duration(elapsed).to_string()
        );
        tokio::time::sleep(args.check_every).await;
    }
}
