//! `demo`: the emulator in-process with a generated tenant, then what a user does with a real
//! one: tokens with a secret and with a certificate, a message over STARTTLS + XOAUTH2, the
//! message arriving, a failure explained, and a round trip through the relay.

use std::collections::HashMap;
use std::path::Path;

use m365_emulator::ClientCertificate;
use m365_emulator::fixture::{self, CLIENT, MAILBOX, TENANT};

use super::exit::{Code, Failure};
use crate::config::{Config, Overrides, RelayOverrides};
use crate::message::{self, Compose};
use crate::oauth::inspect;
use crate::relay::settings::RelayConfig;
use crate::relay::{Listeners, Relay};
use crate::submit::{Options, Submitter};

pub(super) async fn run() -> Result<(), Failure> {
    let dir = tempfile::tempdir().map_err(|e| software("temporary directory", e))?;
    let now = crate::clock::now();
    let certificate = ClientCertificate::generate(
        "Contoso Mailer",
        now - time::Duration::days(1),
        now + time::Duration::days(365),
    )
    .map_err(|e| software("generating a certificate", e))?;
    let secret = format!("Xq58Q~demo.{}", uuid::Uuid::new_v4().simple());

    heading(
        1,
        "Starting the emulator of Entra ID and Exchange Online with a generated tenant",
    );
    let scenario = fixture::contoso(&secret, Some(&certificate.cert_pem));
    let emulator = m365_emulator::Emulator::start(m365_emulator::Options::new(scenario))
        .await
        .map_err(|e| software("starting the emulator", e))?;
    println!("   token endpoint  {}", emulator.token_endpoint(TENANT));
    println!("   SMTP            {} (STARTTLS, AUTH XOAUTH2)", emulator.smtp_addr());
    let ca_file = dir.path().join("emulator-ca.pem");
    let cert_file = dir.path().join("mailer.pem");
    let empty_config = dir.path().join("config.toml");
    let written = std::fs::write(&ca_file, emulator.ca_pem())
        .and_then(|()| std::fs::write(&cert_file, format!("{}{}", certificate.key_pem, certificate.cert_pem)))
        .and_then(|()| std::fs::write(&empty_config, "# the demo configures itself through the environment\n"));
    written.map_err(|e| software("writing demo files", e))?;

    let mut env: HashMap<&str, String> = HashMap::from([
        ("AZURE_TENANT_ID", TENANT.to_owned()),
        ("AZURE_CLIENT_ID", CLIENT.to_owned()),
        ("AZURE_CLIENT_SECRET", secret.clone()),
        ("M365_MAILER_MAILBOX", MAILBOX.to_owned()),
        ("M365_MAILER_TOKEN_ENDPOINT", emulator.token_endpoint(TENANT)),
        ("M365_MAILER_SMTP_HOST", emulator.smtp_addr().ip().to_string()),
        ("M365_MAILER_SMTP_PORT", emulator.smtp_addr().port().to_string()),
        ("M365_MAILER_CA_FILE", ca_file.display().to_string()),
    ]);

    heading(
        2,
        "A token with a client secret, configured only through the environment",
    );
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
    let secret_submitter = submitter(&env, &empty_config)?;
    show_token(&secret_submitter).await?;

    heading(3, "A token with a certificate (PS256 client assertion, x5t#S256)");
    env.remove("AZURE_CLIENT_SECRET");
    env.insert("AZURE_CLIENT_CERTIFICATE_PATH", cert_file.display().to_string());
    println!("   AZURE_CLIENT_CERTIFICATE_PATH={}", cert_file.display());
    show_token(&submitter(&env, &empty_config)?).await?;

    heading(4, "Sending a message over STARTTLS + AUTH XOAUTH2");
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

    heading(5, "The message in the emulator's mailbox");
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

    heading(6, "A failure, explained: a From address the app may not send as");
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
    heading(
        7,
        "A device that cannot do OAuth hands a message to the relay, which delivers it",
    );
    relay_round_trip(&emulator, &env, dir.path()).await?;

    let stats = emulator.stats();
    println!(
        "\nDone: {} token requests, {} SMTP connections, {} messages delivered.",
        stats.tokens_issued(),
        stats.smtp_connections,
        stats.messages_total()
    );
    Ok(())
}

/// Starts the relay in-process (queue in `dir`), sends to it as a scanner would (plain SMTP,
/// no password, from an allowed address), and shows the message arriving at Exchange.
async fn relay_round_trip(
    emulator: &m365_emulator::Emulator,
    env: &HashMap<&str, String>,
    dir: &Path,
) -> Result<(), Failure> {
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
    println!(
        "   relay listening on {address}, queue in {}",
        relay.queue.dir().display()
    );
    println!("   allowed without a password: 127.0.0.0/8 and ::1 (the default); everyone else is refused");

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
    let before = emulator.store().len();
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

    let store = emulator.store();
    let arrived = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while store.len() <= before {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    relay.stop(std::time::Duration::from_secs(5)).await;
    if arrived.is_err() {
        return Err(software(
            "the relay",
            "the message did not reach the emulator within 30 s",
        ));
    }
    let delivered = &store.messages()[before];
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
    Ok(())
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
    println!("   expires in {} s", token.expires_at - crate::clock::unix_now());
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
