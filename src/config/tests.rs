//! Resolution against the guides' fields, files, the environment and flags.

use std::path::Path;

use super::*;
use crate::account::AccountAuth;
use account::check_url;

const TENANT: &str = "6f1d3c2a-9b4e-4d7a-8c1f-2e5b7a9d0c13";
const CLIENT: &str = "0b7e2f4c-5d6a-4e8b-9c1d-3f2a4b6c8d0e";

fn resolve(dir: &Path, toml: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let path = dir.join("config.toml");
    std::fs::write(&path, toml).unwrap();
    let overrides = Overrides {
        config: Some(path),
        ..Overrides::default()
    };
    let env: Vec<(String, String)> = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    Config::resolve_with(&overrides, &|name| {
        env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    })
}

fn pfx(dir: &Path) -> PathBuf {
    use rustls::pki_types::pem::PemObject as _;
    let now = crate::clock::Timestamp::now().to_datetime();
    let cert = m365_emulator::ClientCertificate::generate("Mailer", now, now + time::Duration::days(400)).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes()).unwrap();
    let der = rustls::pki_types::CertificateDer::from_pem_slice(cert.cert_pem.as_bytes()).unwrap();
    let chain = p12_keystore::PrivateKeyChain::new(
        vec![1u8],
        p12_keystore::PrivateKey::from_der(key.secret_der()).unwrap(),
        [p12_keystore::Certificate::from_der(&der).unwrap()],
    );
    let mut store = p12_keystore::KeyStore::new();
    store.add_entry("mailer", p12_keystore::KeyStoreEntry::PrivateKeyChain(chain));
    let path = dir.join("mailer.pfx");
    std::fs::write(&path, store.writer("pfx-password").write().unwrap()).unwrap();
    path
}

#[test]
fn every_guide_is_expressible() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "Xq58Q~guide-secret\n").unwrap();
    std::fs::write(dir.path().join("pfx-password"), "pfx-password").unwrap();
    pfx(dir.path());
    let s = secret.display();
    let guides = [
        // 000: From Email, Client ID, Client Secret, Tenant ID.
        format!(
            "[accounts.main]\nmailbox = \"yourmail@contoso.onmicrosoft.com\"\nclient_id = \"{CLIENT}\"\nclient_secret_file = \"{s}\"\ntenant = \"{TENANT}\"\n"
        ),
        // 002: server, port, application id, secret, tenant, authorised From.
        format!(
            "[accounts.main]\nsmtp_host = \"smtp.office365.com\"\nsmtp_port = 587\nclient_id = \"{CLIENT}\"\nclient_secret_file = \"{s}\"\ntenant = \"{TENANT}\"\nmailbox = \"noreply@contoso.com\"\n"
        ),
        // 003: token endpoint URL, client id, scope, .pfx + password, From = login.
        format!(
            "[accounts.main]\ntoken_endpoint = \"https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token\"\nclient_id = \"{CLIENT}\"\nscope = \"https://outlook.office365.com/.default\"\ncertificate = \"mailer.pfx\"\ncertificate_password_file = \"pfx-password\"\nmailbox = \"mailbox@contoso.onmicrosoft.com\"\n"
        ),
        // 004: enabled, server, port, ssl, username, fromAddress, oauth fields, grantType.
        format!(
            "[accounts.main]\nenabled = true\nsmtp_host = \"smtp.office365.com\"\nsmtp_port = 587\nsecurity = \"starttls\"\nmailbox = \"xmpro@contoso.com\"\nfrom = \"xmpro@contoso.com\"\ntoken_endpoint = \"https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token\"\nclient_id = \"{CLIENT}\"\nclient_secret_file = \"{s}\"\nscope = \"https://outlook.office365.com/.default\"\ngrant_type = \"client_credentials\"\n"
        ),
    ];
    for (i, toml) in guides.iter().enumerate() {
        let config = resolve(dir.path(), toml, &[]).unwrap_or_else(|e| panic!("guide {i}: {e}"));
        let account = config.account;
        assert_eq!(
            account.token_endpoint.value,
            format!("https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token"),
            "guide {i}"
        );
        assert_eq!(
            (account.smtp.host.as_str(), account.smtp.port),
            ("smtp.office365.com", 587),
            "guide {i}"
        );
        assert_eq!(account.scope.value, "https://outlook.office365.com/.default");
        assert!(matches!(account.auth, AccountAuth::OAuth { .. }), "guide {i}");
        assert!(config.warnings.is_empty(), "guide {i}: {:?}", config.warnings);
    }
}

#[test]
fn no_error_or_debug_shows_a_secret_of_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "Xq58Q~never.shown.value";
    // A typo on the secret's line: toml would quote the line.
    let error = resolve(dir.path(), &format!("[accounts.main]\nclient_secret = {secret}\n"), &[])
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("config.toml: line 2, column 17: string values must be quoted"),
        "{error}"
    );
    assert!(!error.contains(secret), "{error}");
    // serde's messages quote the value they did not expect.
    let error = resolve(
        dir.path(),
        &format!("[accounts.main]\nallowed_senders = \"{secret}\"\n"),
        &[],
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("allowed_senders: expected a list") && !error.contains(secret),
        "{error}"
    );
    // A secret pasted where its variable's name or its file's path belongs.
    for field in ["client_secret_env", "client_secret_file"] {
        let toml = format!(
            "[accounts.main]\nmailbox = \"a@contoso.com\"\ntenant = \"contoso.com\"\nclient_id = \"{CLIENT}\"\n{field} = \"{secret}\"\n"
        );
        let error = resolve(dir.path(), &toml, &[]).unwrap_err().to_string();
        assert!(error.contains(&format!("accounts.main.{field}")), "{error}");
        assert!(!error.contains(secret), "{error}");
    }
    let path = dir.path().join("config.toml");
    std::fs::write(&path, format!("[accounts.main]\nclient_secret = \"{secret}\"\n")).unwrap();
    let parsed = file::parse(&path).unwrap();
    let shown = format!("{parsed:?} {:?}", parsed.accounts["main"].layer(&parsed, &path, "main"));
    assert!(!shown.contains(secret), "{shown}");
}

#[test]
fn plaintext_smtp_is_refused_for_microsoft_and_warned_about_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret"), "s").unwrap();
    let base = format!(
        "[accounts.main]\nmailbox = \"a@contoso.com\"\ntenant = \"contoso.com\"\nclient_id = \"{CLIENT}\"\nclient_secret_file = \"secret\"\nsecurity = \"insecure-plaintext\"\n"
    );
    let env = [];
    let error = resolve(dir.path(), &base, &env).map(drop);
    let error = match error {
        Err(e) => e.to_string(),
        Ok(()) => panic!("accepted plaintext to Exchange Online"),
    };
    assert!(error.contains("Exchange Online takes AUTH only over TLS"), "{error}");
    let remote = format!("{base}smtp_host = \"mail.fabrikam.example\"\n");
    let config = resolve(dir.path(), &remote, &env).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        config.warnings.iter().any(|w| w.to_string().contains("unencrypted")),
        "{:?}",
        config.warnings
    );
    let local = format!("{base}smtp_host = \"127.0.0.1\"\n");
    let config = resolve(dir.path(), &local, &env).unwrap();
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
}

#[test]
fn plain_http_only_to_this_machine_by_the_parsed_host() {
    let setting = |v: &str| Setting {
        value: v.to_owned(),
        origin: Origin::Default,
    };
    for ok in [
        "https://login.microsoftonline.com/t/oauth2/v2.0/token",
        "http://127.0.0.1:8080/t",
        "http://127.1.2.3/t",
        "http://localhost:9/t",
        "http://LOCALHOST/t",
        "http://[::1]:8080/t",
        "http://[::ffff:127.0.0.1]/t",
    ] {
        assert!(check_url(&setting(ok)).is_ok(), "{ok}");
    }
    for bad in [
        "http://localhost.example.com/t",
        "http://127.0.0.1.evil.example/t",
        "http://localhost@evil.example/t",
        "http://[::2]/t",
        "http://10.0.0.1/t",
        "ftp://localhost/t",
        "login.microsoftonline.com/t",
    ] {
        assert!(check_url(&setting(bad)).is_err(), "{bad}");
    }
}

#[test]
fn environment_overrides_the_file_and_errors_name_the_origin() {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[accounts.main]\ntenant = \"contoso.com\"\nclient_id = \"{CLIENT}\"\nmailbox = \"a@contoso.com\"\nclient_secret = \"literal\"\n"
    );
    let config = resolve(dir.path(), &toml, &[("M365_MAILER_MAILBOX", "b@contoso.com")]).unwrap();
    assert_eq!(config.account.mailbox.value, "b@contoso.com");
    assert_eq!(config.account.mailbox.origin, Origin::Env("M365_MAILER_MAILBOX".into()));
    assert!(config.warnings.iter().any(|w| {
        w.to_string()
            .contains("config.toml:5: accounts.main.client_secret: a secret is written")
    }));

    type Row<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
    let rows: &[Row<'_>] = &[
        (
            "tenant = \"not a tenant\"\n",
            &[],
            "config.toml:2: accounts.main.tenant: tenant `not a tenant` is neither a GUID",
        ),
        (
            "smtp_port = 70000\n",
            &[],
            "config.toml:2: accounts.main.smtp_port: `70000` is not a port number",
        ),
        (
            "cloud = \"mars\"\n",
            &[],
            "config.toml:2: accounts.main.cloud: unknown cloud `mars`",
        ),
        (
            "security = \"maybe\"\n",
            &[],
            "accounts.main.security: security `maybe`",
        ),
        (
            "grant_type = \"password\"\n",
            &[],
            "grant type `password` is not supported",
        ),
        (
            "",
            &[("AZURE_CLIENT_CERTIFICATE_PATH", "/nonexistent.pfx")],
            "environment variable AZURE_CLIENT_CERTIFICATE_PATH: cannot read /nonexistent.pfx",
        ),
        (
            "certificate = \"x.pfx\"\n",
            &[],
            "both a client secret and a certificate",
        ),
        ("enabled = false\n", &[], "account `main` is disabled"),
        (
            "service = \"smtp\"\n",
            &[],
            "config.toml:2: accounts.main.service: unknown service `smtp`: expected exchange, hve or acs",
        ),
        (
            "service = \"hve\"\n",
            &[("M365_MAILER_CLOUD", "china")],
            "accounts.main.service: service `hve` is documented for the worldwide cloud only, not `china`",
        ),
        (
            "service = \"acs\"\n",
            &[("M365_MAILER_TRANSPORT", "graph")],
            "service `acs` takes mail over SMTP only",
        ),
    ];
    let base = format!(
        "[accounts.main]\nmailbox = \"a@contoso.com\"\ntenant = \"contoso.com\"\nclient_id = \"{CLIENT}\"\nclient_secret = \"s\"\n"
    );
    for (extra, env, expected) in rows {
        // The extra line goes first so its line number is 2.
        let toml = base.replacen('\n', &format!("\n{extra}"), 1);
        let toml = if extra.starts_with("tenant") {
            toml.replace("tenant = \"contoso.com\"\n", "")
        } else {
            toml
        };
        let error = resolve(dir.path(), &toml, env).unwrap_err().to_string();
        assert!(error.contains(expected), "{extra:?}: {error}");
    }
    let missing = resolve(dir.path(), "[accounts.main]\nmailbox = \"a@contoso.com\"\n", &[])
        .unwrap_err()
        .to_string();
    assert!(missing.contains("no credential"), "{missing}");
    let only_env = Config::resolve_with(&Overrides::default(), &|name| match name {
        "AZURE_TENANT_ID" => Some(TENANT.into()),
        "AZURE_CLIENT_ID" => Some(CLIENT.into()),
        "AZURE_CLIENT_SECRET" => Some(TENANT.into()),
        "M365_MAILER_MAILBOX" => Some("a@contoso.com".into()),
        "M365_MAILER_CLOUD" => Some("gcc-high".into()),
        _ => None,
    })
    .unwrap();
    assert_eq!(only_env.account.smtp.host, "smtp.office365.us");
    assert_eq!(
        only_env.account.token_endpoint.value,
        format!("https://login.microsoftonline.us/{TENANT}/oauth2/v2.0/token")
    );
    assert!(
        only_env
            .warnings
            .iter()
            .any(|w| w.to_string().contains("looks like a secret ID")),
        "{:?}",
        only_env.warnings
    );
}

/// Each service brings its host and scope; the account's own fields still win, and the
/// environment sets the service like any other field.
#[test]
fn a_service_brings_its_host_and_scope() {
    let dir = tempfile::tempdir().unwrap();
    let base = format!(
        "[accounts.main]\nmailbox = \"a@contoso.com\"\ntenant = \"contoso.com\"\nclient_id = \"{CLIENT}\"\nclient_secret = \"s\"\n"
    );
    let rows = [
        (
            "",
            "exchange",
            "smtp.office365.com",
            "https://outlook.office365.com/.default",
        ),
        (
            "service = \"hve\"\n",
            "hve",
            "smtp-hve.office365.com",
            "https://outlook.office365.com/.default",
        ),
        (
            "service = \"acs\"\nsmtp_username = \"contoso-smtp\"\n",
            "acs",
            "smtp.azurecomm.net",
            "https://communication.azure.com/.default",
        ),
        (
            "service = \"hve\"\nsmtp_host = \"smtp.hve.mx.microsoft\"\n",
            "hve",
            "smtp.hve.mx.microsoft",
            "https://outlook.office365.com/.default",
        ),
    ];
    for (extra, service, host, scope) in rows {
        let c = resolve(dir.path(), &format!("{base}{extra}"), &[]).unwrap();
        assert_eq!(c.account.service.value.to_string(), service, "{extra}");
        assert_eq!(
            (c.account.smtp.host.as_str(), c.account.smtp.port),
            (host, 587),
            "{extra}"
        );
        assert_eq!(c.account.scope.value, scope, "{extra}");
    }
    let hve = resolve(dir.path(), &base, &[("M365_MAILER_SERVICE", "hve")]).unwrap();
    assert_eq!(hve.account.smtp.host, "smtp-hve.office365.com");
    assert_eq!(
        hve.account.token_source().unwrap().minimum_validity,
        std::time::Duration::from_secs(15 * 60),
        "HVE's tokens have at least 15 minutes left"
    );
    assert_eq!(
        hve.account.service.origin.to_string(),
        "environment variable M365_MAILER_SERVICE"
    );
}

#[test]
fn an_unknown_or_misplaced_field_is_named_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let base =
        format!("[accounts.main]\ntenant = \"{TENANT}\"\nclient_id = \"{CLIENT}\"\nmailbox = \"a@contoso.com\"\n");
    let refused = |more: &str| {
        resolve(dir.path(), &format!("{base}{more}"), &[])
            .unwrap_err()
            .to_string()
    };
    let error = refused("client_secrte = \"x\"\n");
    assert!(
        error.contains("config.toml:5: accounts.main.client_secrte: unknown field `client_secrte`, expected one of")
            && error.contains("`client_secret`"),
        "{error}"
    );
    // Set by the platform (App Service), never by the file.
    let error = refused("identity_header = \"x\"\n");
    assert!(error.contains("unknown field `identity_header`"), "{error}");
    let error = refused("mailbox_list = 1\nfrom = [\"b@contoso.com\"]\n");
    assert!(error.contains("unknown field `mailbox_list`"), "{error}");
    let error = refused("from = [\"b@contoso.com\"]\n");
    assert!(
        error.contains("accounts.main.from: expected one value, not a list"),
        "{error}"
    );
}

#[test]
fn acs_logs_in_with_its_smtp_username_and_hve_knows_its_domains() {
    use crate::smtp::Credentials;
    let dir = tempfile::tempdir().unwrap();
    let base = format!(
        "[accounts.main]\nmailbox = \"donotreply@notify.contoso.com\"\ntenant = \"contoso.com\"\nclient_id = \"{CLIENT}\"\nclient_secret = \"s3cret\"\n"
    );
    let missing = resolve(dir.path(), &format!("{base}service = \"acs\"\n"), &[]).unwrap_err();
    assert!(missing.to_string().contains("needs `smtp_username`"), "{missing}");

    // The username from the environment stays with the file's client secret.
    let acs = resolve(
        dir.path(),
        &format!("{base}service = \"acs\"\n"),
        &[("M365_MAILER_SMTP_USERNAME", "contoso-smtp")],
    )
    .unwrap()
    .account;
    assert!(!acs.needs_token(), "ACS takes the secret itself");
    match acs.smtp_credentials(None) {
        Some(Credentials::Password { user, password }) => {
            assert_eq!((user.as_str(), password.expose()), ("contoso-smtp", "s3cret"));
        }
        other => panic!("{other:?}"),
    }
    assert!(format!("{acs:?}").contains("[redacted]") && !format!("{acs:?}").contains("s3cret"));

    let hve = resolve(
        dir.path(),
        &format!("{base}service = \"hve\"\ninternal_domains = [\"Contoso.com\", \"@fabrikam.com\"]\n"),
        &[],
    )
    .unwrap()
    .account;
    assert!(hve.needs_token());
    let recipients = [
        "ops@contoso.com".to_owned(),
        "a@fabrikam.com".to_owned(),
        "x@gmail.com".to_owned(),
        "y@sub.contoso.com".to_owned(),
    ];
    assert_eq!(
        hve.external_recipients(&recipients),
        ["x@gmail.com", "y@sub.contoso.com"]
    );

    let elsewhere = resolve(
        dir.path(),
        &format!("{base}internal_domains = [\"contoso.com\"]\n"),
        &[],
    )
    .unwrap_err();
    assert!(
        elsewhere.to_string().contains("applies to service `hve`"),
        "{elsewhere}"
    );
    let address = resolve(
        dir.path(),
        &format!("{base}service = \"hve\"\ninternal_domains = [\"ops@contoso.com\"]\n"),
        &[],
    )
    .unwrap_err();
    assert!(address.to_string().contains("is not a domain"), "{address}");
}
