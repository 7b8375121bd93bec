//! `m365-emulator`: runs the emulator standalone and tells the user how to reach it.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use m365_emulator::{Emulator, Options, Scenario};

/// An offline emulator of Entra ID's token endpoint and Exchange Online SMTP.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Tenant file (TOML) describing tenants, apps, mailboxes, knobs and faults.
    #[arg(long, value_name = "FILE")]
    tenant: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    listen: IpAddr,
    /// Port of the token endpoint (0 picks a free port).
    #[arg(long, default_value_t = 14443)]
    http_port: u16,
    /// Port of SMTP with STARTTLS, the role of smtp.office365.com:587 (0 picks a free port).
    #[arg(long, default_value_t = 2587)]
    smtp_port: u16,
    /// Also serve SMTP with implicit TLS on this port (the role of 465).
    #[arg(long)]
    smtps_port: Option<u16>,
    /// Port of High Volume Email's SMTP with STARTTLS, the role of smtp-hve.office365.com:587
    /// (0 picks a free port).
    #[arg(long, default_value_t = 2588)]
    hve_port: u16,
    /// Port of Azure Communication Services Email's SMTP with STARTTLS, the role of
    /// smtp.azurecomm.net:587 (0 picks a free port).
    #[arg(long, default_value_t = 2589)]
    acs_port: u16,
    /// Serve the token endpoint over plain HTTP instead of HTTPS.
    #[arg(long)]
    plain_http: bool,
    /// Where the CA, keys, generated client certificates and delivered messages are kept
    /// [default: $XDG_STATE_HOME/m365-emulator].
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Extra DNS name or IP address for the server certificate (repeatable).
    #[arg(long = "hostname", value_name = "NAME")]
    hostnames: Vec<String>,
    /// Print the endpoints and credentials as one JSON object on the first line of stdout.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "m365_emulator=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("m365-emulator: cannot start the async runtime: {e}");
            return ExitCode::from(70);
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("m365-emulator: {e:#}");
            ExitCode::from(78)
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let scenario = Scenario::load(&args.tenant)?;
    let state_dir = args.state_dir.unwrap_or_else(default_state_dir);
    let options = Options {
        listen: args.listen,
        http_port: args.http_port,
        smtp_port: args.smtp_port,
        smtps_port: args.smtps_port,
        hve_port: args.hve_port,
        acs_port: args.acs_port,
        plain_http: args.plain_http,
        state_dir: Some(state_dir.clone()),
        hostnames: args.hostnames,
        ..Options::new(scenario)
    };
    let emulator = Emulator::start(options).await.context(
        "starting the emulator (use --http-port 0 --smtp-port 0 --hve-port 0 --acs-port 0 to pick free ports)",
    )?;
    let summary = summary(&emulator, &state_dir);
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        print_human(&emulator, &summary);
    }
    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    eprintln!("m365-emulator: stopped");
    Ok(())
}

fn default_state_dir() -> PathBuf {
    std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .map_or_else(|| PathBuf::from(".m365-emulator"), |d| d.join("m365-emulator"))
}

/// Everything a script needs to drive the emulator.
fn summary(emulator: &Emulator, state_dir: &std::path::Path) -> serde_json::Value {
    let scenario = emulator.scenario();
    let tenants: Vec<_> = scenario
        .tenants
        .iter()
        .map(|t| {
            let apps: Vec<_> = t
                .apps
                .iter()
                .map(|a| {
                    let certificates: Vec<_> = emulator
                        .generated_certificates()
                        .iter()
                        .filter(|g| g.client_id == a.client_id)
                        .map(|g| {
                            let registered = g.certificate.registered();
                            serde_json::json!({
                                "thumbprint": registered.hex_thumbprint(),
                                "key_file": g.files.as_ref().map(|f| f.0.display().to_string()),
                                "cert_file": g.files.as_ref().map(|f| f.1.display().to_string()),
                            })
                        })
                        .collect();
                    serde_json::json!({
                        "display_name": a.display_name,
                        "client_id": a.client_id,
                        "object_id": a.object_id,
                        "service_principal_id": a.service_principal_id,
                        "secrets": a.secrets,
                        "generated_certificates": certificates,
                        "permissions": a.permissions,
                    })
                })
                .collect();
            serde_json::json!({
                "id": t.id,
                "name": t.name,
                "domains": t.domains,
                "authority": emulator.authority(&t.id),
                "token_endpoint": emulator.token_endpoint(&t.id),
                "apps": apps,
                "mailboxes": t.mailboxes.iter().map(|m| &m.address).collect::<Vec<_>>(),
                "hve_accounts": t.hve_accounts.iter().map(|a| &a.address).collect::<Vec<_>>(),
                "acs_smtp_usernames": t
                    .acs_resources
                    .iter()
                    .flat_map(|r| r.smtp_usernames.iter().map(|u| &u.username))
                    .collect::<Vec<_>>(),
            })
        })
        .collect();
    serde_json::json!({
        "base_url": emulator.base_url(),
        "scope": "https://outlook.office365.com/.default",
        "smtp": emulator.smtp_addr().to_string(),
        "smtps": emulator.smtps_addr().map(|a| a.to_string()),
        "hve": emulator.hve_addr().to_string(),
        "acs": emulator.acs_addr().to_string(),
        "acs_scope": "https://communication.azure.com/.default",
        "ca_file": emulator.ca_path().display().to_string(),
        "state_dir": state_dir.display().to_string(),
        "mail_dir": state_dir.join("mailboxes").display().to_string(),
        "stats_url": format!("{}/_emulator/stats", emulator.base_url()),
        "tenants": tenants,
    })
}

fn print_human(emulator: &Emulator, summary: &serde_json::Value) {
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
    println!("m365-emulator: Entra ID and Exchange Online, offline\n");
    println!(
        "  token endpoint   {}/{{tenant}}/oauth2/v2.0/token",
        emulator.base_url()
    );
    println!("  SMTP (STARTTLS)  {}", emulator.smtp_addr());
    if let Some(addr) = emulator.smtps_addr() {
        println!("  SMTP (TLS)       {addr}");
    }
    println!("  HVE SMTP         {} (STARTTLS)", emulator.hve_addr());
    println!("  ACS SMTP         {} (STARTTLS)", emulator.acs_addr());
    println!("  CA certificate   {}", text(&summary["ca_file"]));
    println!("  delivered mail   {}", text(&summary["mail_dir"]));
    println!("  counters         {}", text(&summary["stats_url"]));
    for tenant in summary["tenants"].as_array().into_iter().flatten() {
        println!("\ntenant {} ({})", text(&tenant["name"]), text(&tenant["id"]));
        let domains: Vec<String> = tenant["domains"].as_array().into_iter().flatten().map(text).collect();
        println!("  domains          {}", domains.join(", "));
        println!("  token endpoint   {}", text(&tenant["token_endpoint"]));
        for app in tenant["apps"].as_array().into_iter().flatten() {
            println!(
                "  app              {} ({})",
                text(&app["display_name"]),
                text(&app["client_id"])
            );
            for secret in app["secrets"].as_array().into_iter().flatten() {
                println!("    client secret  {}", text(&secret["value"]));
            }
            for cert in app["generated_certificates"].as_array().into_iter().flatten() {
                println!(
                    "    certificate    {} (thumbprint {})",
                    text(&cert["cert_file"]),
                    text(&cert["thumbprint"])
                );
                println!("    private key    {}", text(&cert["key_file"]));
            }
        }
        let list = |key: &str| -> String {
            let items: Vec<String> = tenant[key].as_array().into_iter().flatten().map(text).collect();
            items.join(", ")
        };
        println!("  mailboxes        {}", list("mailboxes"));
        if tenant["hve_accounts"].as_array().is_some_and(|a| !a.is_empty()) {
            println!("  HVE accounts     {}", list("hve_accounts"));
        }
        if tenant["acs_smtp_usernames"].as_array().is_some_and(|a| !a.is_empty()) {
            println!(
                "  ACS usernames    {} (password: the app's client secret)",
                list("acs_smtp_usernames")
            );
        }
    }
    if let Some((tenant, app)) = summary["tenants"]
        .as_array()
        .and_then(|t| t.first())
        .and_then(|t| t["apps"].as_array()?.first().map(|a| (t, a)))
        && let Some(secret) = app["secrets"].as_array().and_then(|s| s.first())
    {
        println!("\nTry it:");
        println!(
            "  curl --cacert {} {} -d grant_type=client_credentials -d client_id={} --data-urlencode client_secret={} -d scope=https://outlook.office365.com/.default",
            text(&summary["ca_file"]),
            text(&tenant["token_endpoint"]),
            text(&app["client_id"]),
            text(&secret["value"]),
        );
    }
    println!("\nPress Ctrl-C to stop.");
}
