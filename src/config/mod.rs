//! Configuration: one resolution path, flags > environment > config file > defaults, into a
//! validated [`Account`]. Every value remembers where it came from, so an error names the file
//! and line, the environment variable, or the flag.
//!
//! The config file (`--config`, else `$XDG_CONFIG_HOME/m365-mailer/config.toml`, else
//! `/etc/m365-mailer/config.toml`) holds named accounts; `docs/configuration.md` documents every
//! field and maps the guides' settings onto them.

mod file;
mod layer;
mod relay;

use std::path::{Path, PathBuf};

pub use crate::setting::{Origin, Setting};
pub use relay::{RelayOverrides, queue_dir};

use crate::account::{Account, AccountAuth, Transport};
use crate::oauth::{AssertionStyle, Certificate, ClientCredential, Cloud};
use crate::secret::Secret;
use crate::smtp::{Security, Target};
use layer::{Layer, Layers};

/// A configuration error, with where the value came from.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
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
pub struct Config {
    /// The account to use.
    pub account: Account,
    /// Every account name in the file.
    pub account_names: Vec<String>,
    /// The config file used, if any.
    pub file: Option<PathBuf>,
    /// Things that work but should be changed.
    pub warnings: Vec<Warning>,
}

/// Something that works but should be changed, and where it is configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// What it is about.
    pub kind: WarningKind,
    /// Where the value came from.
    pub origin: Origin,
    /// What is wrong and what to do.
    pub message: String,
}

/// What a [`Warning`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WarningKind {
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
    pub fn is_about_credential(&self) -> bool {
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
pub struct Overrides {
    /// `--config`.
    pub config: Option<PathBuf>,
    /// `--account`.
    pub account: Option<String>,
    /// Field overrides from flags, by config field name.
    pub fields: Vec<(&'static str, &'static str, String)>,
}

/// The environment, as a function so tests can supply their own.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

impl Config {
    /// Resolves the configuration from flags, the process environment and the config file.
    pub fn resolve(overrides: &Overrides) -> Result<Self, ConfigError> {
        Self::resolve_with(overrides, &|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// Resolves with the given environment.
    pub fn resolve_with(overrides: &Overrides, env: Env<'_>) -> Result<Self, ConfigError> {
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

const SECRET_FIELDS: [&str; 3] = ["client_secret", "client_secret_env", "client_secret_file"];
const CERT_FIELDS: [&str; 2] = ["certificate", "private_key"];
const FEDERATED_FIELD: &str = "federated_token_file";
const MANAGED_IDENTITY_FIELD: &str = "managed_identity_client_id";
const CERT_PASSWORD_FIELDS: [&str; 3] = [
    "certificate_password",
    "certificate_password_env",
    "certificate_password_file",
];
const PASSWORD_FIELDS: [&str; 4] = [
    "smtp_username",
    "smtp_password",
    "smtp_password_env",
    "smtp_password_file",
];

/// The credential comes whole from the highest layer that names any part of it.
fn auth(
    layers: &Layers,
    mailbox: &Setting<String>,
    cloud: Cloud,
    warnings: &mut Vec<Warning>,
) -> Result<AccountAuth, ConfigError> {
    let oauth_fields: Vec<&str> = SECRET_FIELDS
        .iter()
        .chain(&CERT_FIELDS)
        .chain(&CERT_PASSWORD_FIELDS)
        .chain(&[FEDERATED_FIELD, MANAGED_IDENTITY_FIELD])
        .copied()
        .collect();
    let oauth_layer = layers.highest_with(&oauth_fields);
    let password_layer = layers.highest_with(&PASSWORD_FIELDS);
    let layer = match (oauth_layer, password_layer) {
        (Some(o), Some(p)) if o.rank() <= p.rank() => o,
        (Some(o), None) => o,
        (_, Some(p)) => {
            let user = p
                .get("smtp_username")
                .map_or_else(|| mailbox.value.clone(), |u| u.value);
            let password = secret_from(p, "smtp_password", "smtp_password_env", "smtp_password_file", warnings)?
                .ok_or_else(|| {
                    ConfigError::invalid(
                        &Origin::Missing("smtp_password"),
                        "smtp_username is set but no smtp_password",
                    )
                })?;
            return Ok(AccountAuth::Password {
                user,
                password: password.0,
            });
        }
        (None, None) => {
            return Err(ConfigError::invalid(
                &Origin::Missing("client_secret"),
                "no credential: set client_secret_file, client_secret_env, client_secret, certificate or federated_token_file (or AZURE_CLIENT_SECRET / AZURE_CLIENT_CERTIFICATE_PATH / AZURE_FEDERATED_TOKEN_FILE)",
            ));
        }
    };
    let secret = secret_from(
        layer,
        "client_secret",
        "client_secret_env",
        "client_secret_file",
        warnings,
    )?;
    let certificate = layer.get("certificate");
    if let Some(identity) = layer.get(MANAGED_IDENTITY_FIELD) {
        if secret.is_some() || certificate.is_some() || layer.get(FEDERATED_FIELD).is_some() {
            return Err(ConfigError::invalid(
                &identity.origin,
                "a managed identity and a client secret, certificate or federated token file are set; keep one",
            ));
        }
        if uuid::Uuid::try_parse(&identity.value).is_err() {
            return Err(ConfigError::invalid(
                &identity.origin,
                format!(
                    "`{}` is not a GUID: copy the Client ID of the user-assigned managed identity",
                    identity.value
                ),
            ));
        }
        use crate::oauth::managed_identity::{IMDS, IdentityEndpoint, ManagedIdentity};
        let endpoint = match (layers.get("identity_endpoint"), layers.get("identity_header")) {
            (Some(url), Some(header)) => IdentityEndpoint::AppService {
                url: url.value,
                header: Secret::new(header.value),
            },
            _ => IdentityEndpoint::Imds(layers.get("imds_endpoint").map_or_else(|| IMDS.to_owned(), |u| u.value)),
        };
        return Ok(AccountAuth::OAuth {
            credential: ClientCredential::ManagedIdentity(ManagedIdentity {
                client_id: identity.value,
                audience: cloud.endpoints().federation_audience.to_owned(),
                endpoint,
            }),
            origin: identity.origin,
        });
    }
    if let Some(federated) = layer.get(FEDERATED_FIELD) {
        if secret.is_some() || certificate.is_some() {
            return Err(ConfigError::invalid(
                &federated.origin,
                "a federated token file and a client secret or certificate are set; keep one",
            ));
        }
        let path = PathBuf::from(&federated.value);
        crate::oauth::credential::read_federated_token(&path)
            .map_err(|e| ConfigError::invalid(&federated.origin, format!("cannot read {}: {e}", path.display())))?;
        return Ok(AccountAuth::OAuth {
            credential: ClientCredential::FederatedTokenFile(path),
            origin: federated.origin,
        });
    }
    match (secret, certificate) {
        (Some(_), Some(cert)) => Err(ConfigError::invalid(
            &cert.origin,
            "both a client secret and a certificate are set; keep one",
        )),
        (Some((secret, origin)), None) => {
            if uuid::Uuid::try_parse(secret.expose().trim()).is_ok() {
                warnings.push(Warning::new(
                    WarningKind::SecretLooksLikeId,
                    &origin,
                    "the client secret looks like a secret ID (a GUID), not the secret's value; copy the Value column when the secret is created",
                ));
            }
            Ok(AccountAuth::OAuth {
                credential: ClientCredential::Secret(secret),
                origin,
            })
        }
        (None, Some(cert)) => {
            let password = secret_from(
                layer,
                "certificate_password",
                "certificate_password_env",
                "certificate_password_file",
                warnings,
            )?;
            let key = layer.get("private_key").map(|k| PathBuf::from(k.value));
            let loaded = Certificate::load(Path::new(&cert.value), key.as_deref(), password.as_ref().map(|p| &p.0))
                .map_err(|e| ConfigError::invalid(&cert.origin, e.to_string()))?;
            Ok(AccountAuth::OAuth {
                credential: ClientCredential::Certificate(std::sync::Arc::new(loaded)),
                origin: cert.origin,
            })
        }
        (None, None) => Err(ConfigError::invalid(
            &layer.any_origin(&CERT_PASSWORD_FIELDS),
            "a certificate password is set but no certificate",
        )),
    }
}

/// A secret given literally, by environment variable name, or by file.
fn secret_from(
    layer: &Layer,
    literal: &str,
    env_var: &str,
    file: &str,
    warnings: &mut Vec<Warning>,
) -> Result<Option<(Secret, Origin)>, ConfigError> {
    let given: Vec<(&str, Setting<String>)> = [literal, env_var, file]
        .into_iter()
        .filter_map(|f| layer.get(f).map(|s| (f, s)))
        .collect();
    if given.len() > 1 {
        return Err(ConfigError::invalid(
            &given[1].1.origin,
            format!("set only one of {literal}, {env_var} and {file}"),
        ));
    }
    let Some((field, setting)) = given.into_iter().next() else {
        return Ok(None);
    };
    // The name or path is not printed in errors: a secret pasted where its name belongs would be
    // shown back. The origin says which setting it is.
    let value = if field == env_var {
        std::env::var(&setting.value).map_err(|_| {
            ConfigError::invalid(
                &setting.origin,
                format!(
                    "the environment variable it names is not set (it holds the variable's name; the secret itself goes in {literal} or a file named by {file})"
                ),
            )
        })?
    } else if field == file {
        let text = std::fs::read_to_string(&setting.value).map_err(|e| {
            ConfigError::invalid(
                &setting.origin,
                format!("cannot read the file it names: {e} (it holds a path; the secret itself goes in that file)"),
            )
        })?;
        text.trim_end_matches(['\r', '\n']).to_owned()
    } else {
        if matches!(setting.origin, Origin::File { .. }) {
            warnings.push(Warning::new(
                WarningKind::SecretInFile,
                &setting.origin,
                format!(
                    "a secret is written in the config file; prefer {file} (a file readable only by this service) or {env_var}"
                ),
            ));
        }
        setting.value.clone()
    };
    if value.is_empty() {
        return Err(ConfigError::invalid(&setting.origin, "the secret is empty"));
    }
    Ok(Some((Secret::new(value), setting.origin)))
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
mod tests {
    use super::*;

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
        let now = crate::clock::now();
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
            error.contains("expected a sequence") && !error.contains(secret),
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
}
