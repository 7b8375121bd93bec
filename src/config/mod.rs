//! Configuration: one resolution path, flags > environment > config file > defaults, into a
//! validated [`Account`]. Every value remembers where it came from, so an error names the file
//! and line, the environment variable, or the flag.
//!
//! The config file (`--config`, else `$XDG_CONFIG_HOME/m365-mailer/config.toml`, else
//! `/etc/m365-mailer/config.toml`) holds named accounts; `docs/configuration.md` documents every
//! field and maps the guides' settings onto them.

mod credential;
mod file;
mod layer;
mod relay;

use std::path::PathBuf;

pub(crate) use crate::setting::{Origin, Setting};
pub(crate) use relay::{RelayOverrides, queue_dir};

use crate::account::{Account, AccountAuth, Transport};
use crate::oauth::{AssertionStyle, Cloud};
use crate::smtp::{Security, Target};
use credential::auth;
use layer::{Layer, Layers};

/// A configuration error, with where the value came from.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has an unknown field.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message with line and column.
        message: String,
    },
    /// A value is invalid or missing.
    #[error("{origin}: {message}")]
    Invalid {
        /// Where the value came from.
        origin: Origin,
        /// What is wrong and what to do.
        message: String,
    },
}

impl ConfigError {
    fn invalid(origin: &Origin, message: impl Into<String>) -> Self {
        Self::Invalid {
            origin: origin.clone(),
            message: message.into(),
        }
    }
}

/// Resolved configuration: the selected account and what `config check` should report.
#[derive(Debug)]
pub(crate) struct Config {
    /// The account to use.
    pub(crate) account: Account,
    /// Every account name in the file.
    pub(crate) account_names: Vec<String>,
    /// The config file used, if any.
    pub(crate) file: Option<PathBuf>,
    /// Things that work but should be changed.
    pub(crate) warnings: Vec<Warning>,
}

/// Something that works but should be changed, and where it is configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Warning {
    /// What it is about.
    pub(crate) kind: WarningKind,
    /// Where the value came from.
    pub(crate) origin: Origin,
    /// What is wrong and what to do.
    pub(crate) message: String,
}

/// What a [`Warning`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WarningKind {
    /// The token or password would cross the network unencrypted.
    Plaintext,
    /// A scope Entra refuses for client credentials.
    Scope,
    /// A secret written in the config file itself.
    SecretInFile,
    /// A client secret that is a Secret ID, not the secret's value.
    SecretLooksLikeId,
    /// The credential expires within 30 days, or has expired.
    CredentialExpiry,
}

impl Warning {
    fn new(kind: WarningKind, origin: &Origin, message: impl Into<String>) -> Self {
        Self {
            kind,
            origin: origin.clone(),
            message: message.into(),
        }
    }

    /// About the credential itself (`doctor` reports those in its credential check).
    pub(crate) fn is_about_credential(&self) -> bool {
        matches!(
            self.kind,
            WarningKind::SecretLooksLikeId | WarningKind::CredentialExpiry
        )
    }
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.origin, self.message)
    }
}

/// Flags that override configuration (each `send`-like command has them).
#[derive(Debug, Clone, Default)]
pub(crate) struct Overrides {
    /// `--config`.
    pub(crate) config: Option<PathBuf>,
    /// `--account`.
    pub(crate) account: Option<String>,
    /// Field overrides from flags, by config field name.
    pub(crate) fields: Vec<(&'static str, &'static str, String)>,
}

/// The environment, as a function so tests can supply their own.
pub(crate) type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment as an [`Env`]: an empty variable counts as unset.
pub(crate) fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl Config {
    /// Resolves the configuration from flags, the process environment and the config file.
    pub(crate) fn resolve(overrides: &Overrides) -> Result<Self, ConfigError> {
        Self::resolve_with(overrides, &process_env)
    }

    /// Resolves with the given environment.
    pub(crate) fn resolve_with(overrides: &Overrides, env: Env<'_>) -> Result<Self, ConfigError> {
        let path = match &overrides.config {
            Some(p) => Some(p.clone()),
            None => default_config_path(env),
        };
        let parsed = match &path {
            Some(p) => Some(file::parse(p)?),
            None => None,
        };
        let account_names: Vec<String> = parsed
            .as_ref()
            .map(|f| f.accounts.keys().cloned().collect())
            .unwrap_or_default();
        let name = overrides
            .account
            .clone()
            .or_else(|| env("M365_MAILER_ACCOUNT"))
            .or_else(|| parsed.as_ref().and_then(|f| f.default_account.clone()))
            .or_else(|| (account_names.len() == 1).then(|| account_names[0].clone()))
            .unwrap_or_else(|| "default".to_owned());
        let file_layer = match (&parsed, &path) {
            (Some(f), Some(p)) => match f.accounts.get(&name) {
                Some(account) => account.layer(f, p, &name),
                None if account_names.is_empty() => Layer::default(),
                None => {
                    return Err(ConfigError::invalid(
                        &Origin::File {
                            path: p.clone(),
                            line: 1,
                            key: "accounts".into(),
                        },
                        format!("no account `{name}` (accounts: {})", account_names.join(", ")),
                    ));
                }
            },
            _ => Layer::default(),
        };
        let layers = Layers {
            flags: Layer::from_flags(&overrides.fields),
            env: Layer::from_env(env),
            file: file_layer,
        };
        let mut warnings = Vec::new();
        let account = build(&name, &layers, &mut warnings)?;
        Ok(Self {
            account,
            account_names,
            file: path,
            warnings,
        })
    }
}

fn default_config_path(env: Env<'_>) -> Option<PathBuf> {
    let user = env("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".config")))
        .map(|d| d.join("m365-mailer").join("config.toml"));
    [user, Some(PathBuf::from("/etc/m365-mailer/config.toml"))]
        .into_iter()
        .flatten()
        .find(|p| p.is_file())
}

/// Builds the account from the merged layers, checking every value.
fn build(name: &str, layers: &Layers, warnings: &mut Vec<Warning>) -> Result<Account, ConfigError> {
    if let Some(enabled) = layers.get("enabled")
        && !parse_bool(&enabled)?
    {
        return Err(ConfigError::invalid(
            &enabled.origin,
            format!("account `{name}` is disabled (enabled = false)"),
        ));
    }
    if let Some(grant) = layers.get("grant_type")
        && grant.value != "client_credentials"
    {
        return Err(ConfigError::invalid(
            &grant.origin,
            format!(
                "grant type `{}` is not supported: app-only sending uses client_credentials",
                grant.value
            ),
        ));
    }
    let cloud = match layers.get("cloud") {
        Some(s) => s
            .value
            .parse::<Cloud>()
            .map_err(|e| ConfigError::invalid(&s.origin, e))?,
        None => Cloud::Global,
    };
    let endpoints = cloud.endpoints();

    let mailbox = layers.get("mailbox").ok_or_else(|| {
        ConfigError::invalid(
            &Origin::Missing("mailbox"),
            "no mailbox: set `mailbox` (the address that authenticates and sends) or M365_MAILER_MAILBOX",
        )
    })?;
    check_address(&mailbox)?;
    let from = layers.get("from");
    if let Some(f) = &from {
        check_address(f)?;
    }
    let allowed_senders = match layers.list("allowed_senders") {
        Some(list) => {
            for sender in &list.value {
                crate::message::check_address(sender).map_err(|e| ConfigError::invalid(&list.origin, e.to_string()))?;
            }
            list.value
        }
        None => Vec::new(),
    };

    let security = match layers.get("security") {
        Some(s) => match s.value.to_ascii_lowercase().as_str() {
            "starttls" | "ssl" | "true" => Security::StartTls,
            "tls" | "implicit-tls" | "smtps" => Security::ImplicitTls,
            "insecure-plaintext" => Security::InsecurePlaintext,
            _ => {
                return Err(ConfigError::invalid(
                    &s.origin,
                    format!("security `{}`: expected starttls, tls or insecure-plaintext", s.value),
                ));
            }
        },
        None => Security::StartTls,
    };
    let port = match layers.get("smtp_port") {
        Some(p) => p
            .value
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| ConfigError::invalid(&p.origin, format!("`{}` is not a port number", p.value)))?,
        None if security == Security::ImplicitTls => 465,
        None => 587,
    };
    let host = layers
        .get("smtp_host")
        .map_or_else(|| endpoints.smtp_host.to_owned(), |h| h.value);
    if security == Security::InsecurePlaintext {
        let origin = layers.get("security").map(|s| s.origin).unwrap_or(Origin::Default);
        if is_microsoft_smtp(&host) {
            return Err(ConfigError::invalid(
                &origin,
                format!(
                    "security `insecure-plaintext` with {host}: Exchange Online takes AUTH only over TLS, and the token would cross the network in the clear; use starttls"
                ),
            ));
        }
        if !is_this_machine(&host) {
            warnings.push(Warning::new(
                WarningKind::Plaintext,
                &origin,
                format!(
                    "security `insecure-plaintext` sends the token or password to {host} unencrypted; use it only with a test server on this machine"
                ),
            ));
        }
    }
    let ca_file = layers.get("ca_file").map(|c| PathBuf::from(c.value));

    let auth = auth(layers, &mailbox, cloud, warnings)?;
    let oauth = matches!(auth, AccountAuth::OAuth { .. });
    let tenant = layers.get("tenant");
    if let Some(t) = &tenant
        && uuid::Uuid::try_parse(&t.value).is_err()
        && !crate::message::is_domain(&t.value)
    {
        return Err(ConfigError::invalid(
            &t.origin,
            format!(
                "tenant `{}` is neither a GUID (Directory (tenant) ID) nor a domain like contoso.onmicrosoft.com",
                t.value
            ),
        ));
    }
    let client_id = layers.get("client_id");
    if let Some(c) = &client_id
        && uuid::Uuid::try_parse(&c.value).is_err()
    {
        return Err(ConfigError::invalid(
            &c.origin,
            format!(
                "client id `{}` is not a GUID: copy the Application (client) ID from the app's Overview page",
                c.value
            ),
        ));
    }
    if oauth && client_id.is_none() {
        return Err(ConfigError::invalid(
            &Origin::Missing("client_id"),
            "no client id: set `client_id` (Application (client) ID) or AZURE_CLIENT_ID",
        ));
    }
    let authority = layers
        .get("authority_host")
        .map(|a| a.value.trim_end_matches('/').to_owned());
    let token_endpoint = match (layers.get("token_endpoint"), &tenant) {
        (Some(e), _) => e,
        (None, Some(t)) => Setting {
            value: Cloud::token_endpoint(authority.as_deref().unwrap_or(endpoints.login), &t.value),
            origin: t.origin.clone(),
        },
        (None, None) if oauth => {
            return Err(ConfigError::invalid(
                &Origin::Missing("tenant"),
                "no tenant: set `tenant` (Directory (tenant) ID or domain) or AZURE_TENANT_ID, or a full `token_endpoint`",
            ));
        }
        (None, None) => Setting {
            value: String::new(),
            origin: Origin::Default,
        },
    };
    if oauth {
        check_url(&token_endpoint)?;
    }
    let transport = match layers.get("transport") {
        Some(t) => match t.value.to_ascii_lowercase().as_str() {
            "smtp" => Transport::Smtp,
            "graph" => Transport::Graph,
            other => {
                return Err(ConfigError::invalid(
                    &t.origin,
                    format!("transport `{other}` is not `smtp` or `graph`"),
                ));
            }
        },
        None => Transport::Smtp,
    };
    let default_scope = match transport {
        Transport::Smtp => cloud.exchange_scope(),
        Transport::Graph => format!("{}/.default", endpoints.graph),
    };
    let graph_url = layers.get("graph_url").unwrap_or_else(|| Setting {
        value: endpoints.graph.to_owned(),
        origin: Origin::Default,
    });
    if transport == Transport::Graph {
        check_url(&graph_url)?;
        if !oauth {
            return Err(ConfigError::invalid(
                &graph_url.origin,
                "the Graph transport needs an OAuth credential (a secret, certificate, federated token or managed identity), not a password",
            ));
        }
    }
    let scope = layers.get("scope").unwrap_or_else(|| Setting {
        value: default_scope.clone(),
        origin: Origin::Default,
    });
    if oauth && !scope.value.trim().ends_with("/.default") {
        warnings.push(Warning::new(
            WarningKind::Scope,
            &scope.origin,
            format!(
                "scope `{}` does not end in /.default; Entra ID refuses it for client credentials (AADSTS1002012). Use {default_scope}",
                scope.value
            ),
        ));
    }
    let assertion_style = match layers.get("assertion") {
        Some(a) => a
            .value
            .parse()
            .map_err(|e: String| ConfigError::invalid(&a.origin, e))?,
        None => AssertionStyle::default(),
    };
    let save_to_sent_items = match layers.get("save_to_sent_items") {
        Some(s) => parse_bool(&s)?,
        None => true,
    };
    let send_x5c = match layers.get("send_x5c") {
        Some(s) => parse_bool(&s)?,
        None => false,
    };
    let secret_expires = match layers.get("client_secret_expires") {
        Some(s) => {
            let date = parse_date(&s.value).ok_or_else(|| {
                ConfigError::invalid(&s.origin, format!("`{}` is not a date like 2027-06-30", s.value))
            })?;
            Some(Setting {
                value: date,
                origin: s.origin,
            })
        }
        None => None,
    };
    let account = Account {
        name: name.to_owned(),
        tenant,
        client_id,
        default_from: from.map_or_else(|| mailbox.value.clone(), |f| f.value),
        mailbox,
        allowed_senders,
        cloud,
        token_endpoint,
        scope,
        smtp: Target { host, port, security },
        transport,
        graph_url: graph_url.value.trim_end_matches('/').to_owned(),
        save_to_sent_items,
        ca_file,
        auth,
        assertion_style,
        send_x5c,
        secret_expires,
    };
    if let Some(expiry) = account.credential_expiry()
        && let Some(message) = expiry.warning(crate::clock::now())
    {
        warnings.push(Warning::new(WarningKind::CredentialExpiry, &expiry.origin, message));
    }
    Ok(account)
}

/// `2027-06-30`, or the date of an RFC 3339 date-time.
fn parse_date(text: &str) -> Option<time::Date> {
    let date = text.get(..10)?;
    time::Date::parse(date, time::macros::format_description!("[year]-[month]-[day]")).ok()
}

fn check_address(setting: &Setting<String>) -> Result<(), ConfigError> {
    crate::message::check_address(&setting.value).map_err(|e| ConfigError::invalid(&setting.origin, e.to_string()))
}

/// An `https://` URL; plain `http://` only to this machine (an emulator, a test server), decided
/// by the parsed host — `http://localhost.example.com/` is not this machine.
fn check_url(setting: &Setting<String>) -> Result<(), ConfigError> {
    let v = &setting.value;
    let refused = || {
        ConfigError::invalid(
            &setting.origin,
            format!("`{}` must be an https:// URL", v.escape_debug()),
        )
    };
    let url = reqwest::Url::parse(v).map_err(|_| refused())?;
    let loopback = || url.host_str().is_some_and(is_this_machine);
    match url.scheme() {
        "https" if url.host_str().is_some() => Ok(()),
        "http" if loopback() => Ok(()),
        _ => Err(refused()),
    }
}

fn parse_bool(setting: &Setting<String>) -> Result<bool, ConfigError> {
    match setting.value.to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" | "on" => Ok(true),
        "false" | "no" | "0" | "off" => Ok(false),
        _ => Err(ConfigError::invalid(
            &setting.origin,
            format!("`{}` is not true or false", setting.value),
        )),
    }
}

/// Microsoft's SMTP submission endpoints (every cloud's).
fn is_microsoft_smtp(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    [
        "office365.com",
        "office365.us",
        "outlook.com",
        "partner.outlook.cn",
        "hve.mx.microsoft",
    ]
    .iter()
    .any(|d| host == *d || host.ends_with(&format!(".{d}")))
}

/// `localhost` or a loopback address.
fn is_this_machine(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

#[cfg(test)]
mod tests;
