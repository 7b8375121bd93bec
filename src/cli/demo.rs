//! `demo`: the emulator in-process with a generated tenant, then what a user does with a real
//! one: tokens with a secret and with a certificate, a message over STARTTLS + XOAUTH2, the
//! message arriving, a failure explained, and a round trip through the relay.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use m365_emulator::fixture::{self, CLIENT, MAILBOX, TENANT};
use m365_emulator::{ClientCertificate, Delivered, Emulator};

use super::exit::{Code, Failure};
use crate::config::{Config, Overrides, RelayOverrides};
use crate::message::{self, Compose, Outgoing};
use crate::oauth::inspect;
use crate::relay::settings::RelayConfig;
use crate::relay::{Listeners, Relay};
use crate::submit::{Options, Submitter};

pub(super) async fn run() -> Result<(), Failure> {
    let dir = tempfile::tempdir().map_err(|e| software("temporary directory", e))?;
    let certificate = generate_certificate()?;
    let secret = format!("Xq58Q~demo.{}", uuid::Uuid::new_v4().simple());

    heading(
        1,
        "Starting the emulator of Entra ID and Exchange Online with a generated tenant",
    );
    let emulator = start_emulator(&secret, &certificate).await?;
    let files = write_files(dir.path(), &emulator, &certificate)?;
    let mut env = environment(&emulator, &secret, &files.ca);

    heading(
        2,
        "A token with a client secret, configured only through the environment",
    );
    let secret_submitter = token_with_secret(&env, &files.config).await?;

    heading(3, "A token with a certificate (PS256 client assertion, x5t#S256)");
    token_with_certificate(&mut env, &files).await?;

    heading(4, "Sending a message over STARTTLS + AUTH XOAUTH2");
    let outgoing = send_message(&secret_submitter).await?;

    heading(5, "The message in the emulator's mailbox");
    show_mailbox(&emulator, &outgoing);

    heading(6, "A failure, explained: a From address the app may not send as");
    explain_refused_sender(&secret_submitter).await?;
    heading(
        7,
        "A device that cannot do OAuth hands a message to the relay, which delivers it",
    );
    relay_round_trip(&emulator, &env, dir.path()).await?;

    print_stats(&emulator);
    Ok(())
}

/// The files the demo writes for the configuration to point at.
struct Files {
    /// The emulator's CA certificate.
    ca: PathBuf,
    /// The app's private key and certificate.
    certificate: PathBuf,
    /// An empty config file.
    config: PathBuf,
}

/// A certificate for the app, valid from yesterday for a year.
fn generate_certificate() -> Result<ClientCertificate, Failure> {
    let now = crate::clock::Timestamp::now().to_datetime();
    ClientCertificate::generate(
        "Contoso Mailer",
        now - time::Duration::days(1),
        now + time::Duration::days(365),
    )
    .map_err(|e| software("generating a certificate", e))
}

/// Step 1: starts the emulator with a tenant that knows the secret and certificate; prints its endpoints.
async fn start_emulator(secret: &str, certificate: &ClientCertificate) -> Result<Emulator, Failure> {
    let scenario = fixture::contoso(secret, Some(&certificate.cert_pem));
    let emulator = Emulator::start(m365_emulator::Options::new(scenario))
        .await
        .map_err(|e| software("starting the emulator", e))?;
    println!("   token endpoint  {}", emulator.token_endpoint(TENANT));
    println!("   SMTP            {} (STARTTLS, AUTH XOAUTH2)", emulator.smtp_addr());
    Ok(emulator)
}

/// Writes the emulator's CA, the app's key and certificate, and an empty config file into `dir`.
fn write_files(dir: &Path, emulator: &Emulator, certificate: &ClientCertificate) -> Result<Files, Failure> {
    let files = Files {
        ca: dir.join("emulator-ca.pem"),
        certificate: dir.join("mailer.pem"),
        config: dir.join("config.toml"),
    };
    let written = std::fs::write(&files.ca, emulator.ca_pem())
        .and_then(|()| {
            std::fs::write(
                &files.certificate,
                format!("{}{}", certificate.key_pem, certificate.cert_pem),
            )
        })
        .and_then(|()| std::fs::write(&files.config, "# the demo configures itself through the environment\n"));
    written.map_err(|e| software("writing demo files", e))?;
    Ok(files)
}

/// The environment that configures the app with its client secret, against the emulator.
fn environment(emulator: &Emulator, secret: &str, ca_file: &Path) -> HashMap<&'static str, String> {
    HashMap::from([
        ("AZURE_TENANT_ID", TENANT.to_owned()),
        ("AZURE_CLIENT_ID", CLIENT.to_owned()),
        ("AZURE_CLIENT_SECRET", secret.to_owned()),
        ("M365_MAILER_MAILBOX", MAILBOX.to_owned()),
        ("M365_MAILER_TOKEN_ENDPOINT", emulator.token_endpoint(TENANT)),
        ("M365_MAILER_SMTP_HOST", emulator.smtp_addr().ip().to_string()),
        ("M365_MAILER_SMTP_PORT", emulator.smtp_addr().port().to_string()),
        ("M365_MAILER_CA_FILE", ca_file.display().to_string()),
    ])
}

/// Step 2: prints the environment (secret redacted) and the token it gets; returns its submitter.
async fn token_with_secret(env: &HashMap<&str, String>, config: &Path) -> Result<Submitter, Failure> {
    for key in [
        "AZURE_TENANT_ID",
        "AZURE_CLIENT_ID",
        "AZURE_CLIENT_SECRET",
        "M365_MAILER_MAILBOX",
        "M365_MAILER_TOKEN_ENDPOINT",
    ] {
        println!(
            "   {key}={}",
            if key.ends_with("SECRET") {
                "[redacted]"
            } else {
                env[key].as_str()
            }
        );
    }
    let secret_submitter = submitter(env, config)?;
    show_token(&secret_submitter).await?;
    Ok(secret_submitter)
}

/// Step 3: replaces the secret with the certificate in `env` and shows the token it gets.
async fn token_with_certificate(env: &mut HashMap<&str, String>, files: &Files) -> Result<(), Failure> {
    env.remove("AZURE_CLIENT_SECRET");
    env.insert("AZURE_CLIENT_CERTIFICATE_PATH", files.certificate.display().to_string());
    println!("   AZURE_CLIENT_CERTIFICATE_PATH={}", files.certificate.display());
    show_token(&submitter(env, &files.config)?).await
}

/// Step 4: sends a message as the mailbox, printing the SMTP transcript; returns what was sent.
async fn send_message(secret_submitter: &Submitter) -> Result<Outgoing, Failure> {
    let outgoing = message::compose(&Compose {
        from: MAILBOX.to_owned(),
        from_name: Some("Contoso Mailer".to_owned()),
        to: vec!["alex@fabrikam.com".to_owned()],
        subject: Some("Hello from m365-mailer".to_owned()),
        text: Some("Sent with OAuth2 client credentials, no password.\r\n".to_owned()),
        ..Compose::default()
    })?;
    let attempt = secret_submitter.submit(&outgoing).await;
    for line in &attempt.transcript {
        println!("   {line}");
    }
    attempt.outcome?;
    Ok(outgoing)
}

/// Step 5: prints what the emulator's mailbox received and whether it is what was sent.
fn show_mailbox(emulator: &Emulator, outgoing: &Outgoing) {
    for delivered in emulator.store().messages() {
        println!(
            "   mailbox {} from {} to {}",
            delivered.mailbox,
            delivered.mail_from,
            delivered.rcpt_to.join(", ")
        );
        let text = String::from_utf8_lossy(&delivered.data);
        for header in text
            .lines()
            .take_while(|l| !l.is_empty())
            .filter(|l| l.starts_with("Subject") || l.starts_with("From"))
        {
            println!("   {header}");
        }
        println!(
            "   ({} octets, identical to what was sent: {})",
            delivered.data.len(),
            delivered.data == outgoing.content
        );
    }
}

/// Step 6: a From address the app may not send as, refused by m365-mailer and then by Exchange.
async fn explain_refused_sender(secret_submitter: &Submitter) -> Result<(), Failure> {
    let ceo = message::compose(&Compose {
        from: fixture::OTHER_MAILBOX.to_owned(),
        to: vec!["alex@fabrikam.com".to_owned()],
        subject: Some("Quarterly results".to_owned()),
        text: Some("...".to_owned()),
        ..Compose::default()
    })?;
    if let Err(failure) = super::send::check_senders(secret_submitter.account(), &ceo) {
        println!(
            "   m365-mailer refuses before connecting (exit code {}):",
            failure.code as u8
        );
        print_indented(&failure.message);
    }
    println!("   What Exchange Online says when sent anyway:");
    if let Err(error) = secret_submitter.submit(&ceo).await.outcome {
        let failure = Failure::from(error);
        print_indented(&format!("{} (exit code {})", failure.message, failure.code as u8));
    }
    Ok(())
}

/// Prints the emulator's counters for the whole demo.
fn print_stats(emulator: &Emulator) {
    let stats = emulator.stats();
    println!(
        "\nDone: {} token requests, {} SMTP connections, {} messages delivered.",
        stats.tokens_issued(),
        stats.smtp_connections,
        stats.messages_total()
    );
}

/// Starts the relay in-process (queue in `dir`), sends to it as a scanner would (plain SMTP,
/// no password, from an allowed address), and shows the message arriving at Exchange.
async fn relay_round_trip(emulator: &Emulator, env: &HashMap<&str, String>, dir: &Path) -> Result<(), Failure> {
    let relay = start_relay(env, dir).await?;
    let before = emulator.store().len();
    send_as_scanner(relay.addresses[0]).await?;

    let arrived = wait_for_delivery(emulator, before).await;
    relay.stop(std::time::Duration::from_secs(5)).await;
    if !arrived {
        return Err(software(
            "the relay",
            "the message did not reach the emulator within 30 s",
        ));
    }
    print_trace_header(&emulator.store().messages()[before]);
    Ok(())
}

/// Starts the relay on a local port with its queue in `dir`, configured from `env`; prints where.
async fn start_relay(env: &HashMap<&str, String>, dir: &Path) -> Result<Relay, Failure> {
    let config_file = dir.join("relay.toml");
    std::fs::write(
        &config_file,
        "[relay]\nhostname = \"relay.contoso.local\"\nadmin_listen = \"off\"\n\n[[relay.listen]]\naddress = \"127.0.0.1:0\"\n",
    )
    .map_err(|e| software("writing the relay configuration", e))?;
    let overrides = RelayOverrides {
        config: Overrides {
            config: Some(config_file),
            ..Overrides::default()
        },
        queue_dir: Some(dir.join("queue")),
        ..RelayOverrides::default()
    };
    let config = RelayConfig::resolve_with(&overrides, &|name| env.get(name).cloned())?;
    let listeners = Listeners::bind(&config).map_err(|e| software("starting the relay", e))?;
    let relay = Relay::start(config, listeners)
        .await
        .map_err(|e| software("starting the relay", e))?;
    let address = relay.addresses[0];
    println!("   relay listening on {address}, queue in {}", relay.queue.location());
    println!("   allowed without a password: 127.0.0.0/8 and ::1 (the default); everyone else is refused");
    Ok(relay)
}

/// Sends a scan to the relay at `address` the way a device does (plain SMTP, no password), printing the transcript.
async fn send_as_scanner(address: SocketAddr) -> Result<(), Failure> {
    let device = crate::smtp::Target {
        host: address.ip().to_string(),
        port: address.port(),
        security: crate::smtp::Security::InsecurePlaintext,
    };
    let settings = crate::smtp::Settings {
        helo_name: "scanner-3f.contoso.local".to_owned(),
        tls: crate::tls::client_config(None).map_err(|e| software("TLS", e))?,
        timeouts: crate::smtp::Timeouts::default(),
        keep_transcript: true,
    };
    let scan = b"From: mailer@contoso.com\r\nTo: alex@fabrikam.com\r\nSubject: Scan from 3F\r\n\r\nScanned document attached.\r\n";
    let mut connection = crate::smtp::Connection::open(&device, &settings)
        .await
        .map_err(|e| software("connecting to the relay", e))?;
    let sent = connection
        .send_mail(
            &crate::smtp::Envelope {
                from: MAILBOX.to_owned(),
                to: vec!["alex@fabrikam.com".to_owned()],
            },
            scan,
        )
        .await;
    for line in connection.take_transcript() {
        println!("   device {line}");
    }
    connection.quit().await;
    sent.map_err(|e| software("sending to the relay", e))?;
    Ok(())
}

/// Waits up to 30 s for the emulator to hold more than `before` messages; false if it does not.
async fn wait_for_delivery(emulator: &Emulator, before: usize) -> bool {
    let store = emulator.store();
    tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while store.len() <= before {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .is_ok()
}

/// Prints the mailbox that received the relayed message and its `Received:` trace header.
fn print_trace_header(delivered: &Delivered) {
    println!(
        "   Exchange received it from mailbox {} over STARTTLS + AUTH XOAUTH2; its trace header:",
        delivered.mailbox
    );
    let text = String::from_utf8_lossy(&delivered.data);
    for line in text
        .lines()
        .take_while(|l| l.starts_with("Received:") || l.starts_with('\t'))
    {
        println!("     {line}");
    }
}

fn submitter(env: &HashMap<&str, String>, config: &Path) -> Result<Submitter, Failure> {
    let overrides = Overrides {
        config: Some(config.to_owned()),
        ..Overrides::default()
    };
    let resolved = Config::resolve_with(&overrides, &|name| env.get(name).cloned())?;
    let options = Options {
        keep_transcript: true,
        ..Options::default()
    };
    Ok(Submitter::new(resolved.account, &options)?)
}

async fn show_token(submitter: &Submitter) -> Result<(), Failure> {
    let provider = submitter.provider().expect("an OAuth account");
    let token = provider
        .token()
        .await
        .map_err(|e| Failure::from(crate::submit::SubmitError::from(e)))?;
    let Some((header, claims)) = inspect::decode(token.token.expose()) else {
        println!("   (opaque token)");
        return Ok(());
    };
    println!("   header: alg {} kid {}", header["alg"], header["kid"]);
    for claim in ["aud", "iss", "appid", "appidacr", "idtyp", "oid", "roles"] {
        println!("   {claim:<9} {}", claims[claim]);
    }
    println!(
        "   expires in {} s",
        crate::clock::Timestamp::now().secs_until(token.expires_at)
    );
    Ok(())
}

fn software(what: &str, error: impl std::fmt::Display) -> Failure {
    Failure::new(Code::Software, format!("{what}: {error}"))
}

fn heading(step: u32, text: &str) {
    println!("\n{step}. {text}");
}

fn print_indented(text: &str) {
    for line in text.lines() {
        println!("     {}", line.trim_start());
    }
}
