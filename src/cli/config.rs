//! `config check`: resolve, validate, and show where every value came from; secrets redacted.

use super::args::AccountArgs;
use super::exit::Failure;
use crate::account::{Account, AccountAuth};
use crate::config::{Config, Origin, Setting};
use crate::oauth::ClientCredential;
use crate::smtp::Security;

pub(super) fn check(args: &AccountArgs) -> Result<(), Failure> {
    let config = Config::resolve(&args.overrides())?;
    print!("{}", render(&config));
    Ok(())
}

/// The report, as printed.
pub(crate) fn render(config: &Config) -> String {
    let mut out = String::new();
    config_file(&mut out, config);
    identity(&mut out, &config.account);
    smtp(&mut out, &config.account);
    match &config.account.auth {
        AccountAuth::OAuth { credential, origin } => oauth(&mut out, &config.account, credential, origin),
        AccountAuth::Password { user, .. } => {
            line(
                &mut out,
                "credential",
                &format!("password for {user} [redacted] (AUTH PLAIN/LOGIN)"),
                None,
            );
        }
    }
    for warning in &config.warnings {
        out.push_str(&format!("warning: {warning}\n"));
    }
    out.push_str("configuration is valid\n");
    out
}

/// Appends one `label  value  [origin]` line.
fn line(out: &mut String, label: &str, value: &str, origin: Option<String>) {
    out.push_str(&format!("{label:<17}{value}"));
    if let Some(o) = origin {
        out.push_str(&format!("  [{o}]"));
    }
    out.push('\n');
}

/// A setting's value and its origin, as `line` takes them.
fn setting<T: std::fmt::Display>(s: &Setting<T>) -> (String, Option<String>) {
    (s.value.to_string(), Some(s.origin.to_string()))
}

/// The config file and the accounts it defines, or that there is none.
fn config_file(out: &mut String, config: &Config) {
    match &config.file {
        Some(path) => out.push_str(&format!(
            "config file      {} (accounts: {})\n",
            path.display(),
            if config.account_names.is_empty() {
                "none".to_owned()
            } else {
                config.account_names.join(", ")
            }
        )),
        None => out.push_str("config file      none (environment and flags only)\n"),
    }
}

/// Who the account is: name, tenant, client id, mailbox, senders, and cloud.
fn identity(out: &mut String, a: &Account) {
    line(out, "account", &a.name, None);
    if let Some(t) = &a.tenant {
        let (v, o) = setting(t);
        line(out, "tenant", &v, o);
    }
    if let Some(c) = &a.client_id {
        let (v, o) = setting(c);
        line(out, "client id", &v, o);
    }
    let (v, o) = setting(&a.mailbox);
    line(out, "mailbox", &v, o);
    line(out, "default From", &a.default_from, None);
    if !a.allowed_senders.is_empty() {
        line(out, "allowed senders", &a.allowed_senders.join(", "), None);
    }
    line(out, "cloud", &a.cloud.to_string(), None);
    let (v, o) = setting(&a.service);
    line(out, "service", &v, o);
    if !a.internal_domains.is_empty() {
        line(out, "internal domains", &a.internal_domains.join(", "), None);
    }
}

/// The SMTP server, its security, and any extra CA file.
fn smtp(out: &mut String, a: &Account) {
    let security = match a.smtp.security {
        Security::StartTls => "STARTTLS",
        Security::ImplicitTls => "TLS",
        Security::InsecurePlaintext => "plaintext (insecure)",
    };
    line(
        out,
        "smtp",
        &format!("{}:{} ({security})", a.smtp.host, a.smtp.port),
        None,
    );
    if let Some(user) = &a.smtp_username {
        let how = if a.needs_token() {
            "AUTH XOAUTH2"
        } else {
            "AUTH LOGIN with the client secret"
        };
        line(
            out,
            "smtp username",
            &format!("{} ({how})", user.value),
            Some(user.origin.to_string()),
        );
    }
    if let Some(ca) = &a.ca_file {
        line(out, "extra CA file", &ca.display().to_string(), None);
    }
}

/// OAuth: token endpoint, scope, the credential (secrets redacted), and when a secret expires.
fn oauth(out: &mut String, a: &Account, credential: &ClientCredential, origin: &Origin) {
    let (v, o) = setting(&a.token_endpoint);
    line(out, "token endpoint", &v, o);
    let (v, o) = setting(&a.scope);
    line(out, "scope", &v, o);
    line(out, "credential", &describe(a, credential), Some(origin.to_string()));
    if let Some(expires) = &a.secret_expires {
        line(
            out,
            "secret expires",
            &expires.value.to_string(),
            Some(expires.origin.to_string()),
        );
    }
}

/// What the client credential is, without its secret.
fn describe(a: &Account, credential: &ClientCredential) -> String {
    match credential {
        ClientCredential::Secret(_) => "client secret [redacted]".to_owned(),
        ClientCredential::Certificate(c) => format!(
            "certificate {} (thumbprint {}, expires {}, {:?} assertions)",
            c.subject,
            c.thumbprint_hex(),
            c.not_after.date(),
            a.assertion_style
        ),
        ClientCredential::FederatedTokenFile(path) => {
            format!("federated token from {} (read for every request)", path.display())
        }
        ClientCredential::ManagedIdentity(identity) => {
            format!(
                "managed identity {} (its token is the client assertion)",
                identity.client_id
            )
        }
    }
}
