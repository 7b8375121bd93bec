//! `config check`: resolve, validate, and show where every value came from; secrets redacted.

use super::args::AccountArgs;
use super::exit::Failure;
use crate::account::AccountAuth;
use crate::config::{Config, Setting};
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
    let a = &config.account;
    let line = |out: &mut String, label: &str, value: &str, origin: Option<String>| {
        out.push_str(&format!("{label:<17}{value}"));
        if let Some(o) = origin {
            out.push_str(&format!("  [{o}]"));
        }
        out.push('\n');
    };
    let setting = |s: &Setting<String>| (s.value.clone(), Some(s.origin.to_string()));
    line(&mut out, "account", &a.name, None);
    if let Some(t) = &a.tenant {
        let (v, o) = setting(t);
        line(&mut out, "tenant", &v, o);
    }
    if let Some(c) = &a.client_id {
        let (v, o) = setting(c);
        line(&mut out, "client id", &v, o);
    }
    let (v, o) = setting(&a.mailbox);
    line(&mut out, "mailbox", &v, o);
    line(&mut out, "default From", &a.default_from, None);
    if !a.allowed_senders.is_empty() {
        line(&mut out, "allowed senders", &a.allowed_senders.join(", "), None);
    }
    line(&mut out, "cloud", &a.cloud.to_string(), None);
    let security = match a.smtp.security {
        Security::StartTls => "STARTTLS",
        Security::ImplicitTls => "TLS",
        Security::InsecurePlaintext => "plaintext (insecure)",
    };
    line(
        &mut out,
        "smtp",
        &format!("{}:{} ({security})", a.smtp.host, a.smtp.port),
        None,
    );
    if let Some(ca) = &a.ca_file {
        line(&mut out, "extra CA file", &ca.display().to_string(), None);
    }
    match &a.auth {
        AccountAuth::OAuth { credential, origin } => {
            let (v, o) = setting(&a.token_endpoint);
            line(&mut out, "token endpoint", &v, o);
            let (v, o) = setting(&a.scope);
            line(&mut out, "scope", &v, o);
            let described = match credential {
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
            };
            line(&mut out, "credential", &described, Some(origin.to_string()));
            if let Some(expires) = &a.secret_expires {
                line(
                    &mut out,
                    "secret expires",
                    &expires.value.to_string(),
                    Some(expires.origin.to_string()),
                );
            }
        }
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
