//! The config file: named accounts in TOML. Values keep their line so errors can name it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::ConfigError;
use super::layer::Layer;
use crate::setting::Origin;

/// The parsed file. Its text holds secrets written in it: `Debug` names the accounts only.
pub(crate) struct File {
    pub(crate) text: String,
    pub(crate) default_account: Option<String>,
    pub(crate) accounts: BTreeMap<String, FileAccount>,
    pub(crate) relay: Option<super::relay::RawRelay>,
}

impl std::fmt::Debug for File {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("File")
            .field("default_account", &self.default_account)
            .field("accounts", &self.accounts.keys().collect::<Vec<_>>())
            .field("relay", &self.relay.is_some())
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    default_account: Option<String>,
    #[serde(default)]
    accounts: BTreeMap<String, FileAccount>,
    relay: Option<super::relay::RawRelay>,
}

/// A value written as a string, number or boolean (`smtp_port = 587`, `ssl = true`).
#[derive(Deserialize)]
#[serde(untagged)]
enum Scalar {
    Text(String),
    Number(i64),
    Bool(bool),
    Date(toml::value::Datetime),
}

/// One `[accounts.NAME]` table. Field names are those of `docs/configuration.md`. Its values
/// include secrets: there is no `Debug` of them (see [`File`]'s).
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileAccount {
    enabled: Option<Spanned<Scalar>>,
    tenant: Option<Spanned<Scalar>>,
    client_id: Option<Spanned<Scalar>>,
    mailbox: Option<Spanned<Scalar>>,
    from: Option<Spanned<Scalar>>,
    allowed_senders: Option<Spanned<Vec<String>>>,
    cloud: Option<Spanned<Scalar>>,
    authority_host: Option<Spanned<Scalar>>,
    token_endpoint: Option<Spanned<Scalar>>,
    scope: Option<Spanned<Scalar>>,
    transport: Option<Spanned<Scalar>>,
    graph_url: Option<Spanned<Scalar>>,
    save_to_sent_items: Option<Spanned<Scalar>>,
    grant_type: Option<Spanned<Scalar>>,
    smtp_host: Option<Spanned<Scalar>>,
    smtp_port: Option<Spanned<Scalar>>,
    security: Option<Spanned<Scalar>>,
    ca_file: Option<Spanned<Scalar>>,
    client_secret: Option<Spanned<Scalar>>,
    client_secret_env: Option<Spanned<Scalar>>,
    client_secret_file: Option<Spanned<Scalar>>,
    client_secret_expires: Option<Spanned<Scalar>>,
    certificate: Option<Spanned<Scalar>>,
    certificate_password: Option<Spanned<Scalar>>,
    certificate_password_env: Option<Spanned<Scalar>>,
    certificate_password_file: Option<Spanned<Scalar>>,
    private_key: Option<Spanned<Scalar>>,
    federated_token_file: Option<Spanned<Scalar>>,
    managed_identity_client_id: Option<Spanned<Scalar>>,
    assertion: Option<Spanned<Scalar>>,
    send_x5c: Option<Spanned<Scalar>>,
    smtp_username: Option<Spanned<Scalar>>,
    smtp_password: Option<Spanned<Scalar>>,
    smtp_password_env: Option<Spanned<Scalar>>,
    smtp_password_file: Option<Spanned<Scalar>>,
}

pub(crate) fn parse(path: &Path) -> Result<File, ConfigError> {
    // No `Debug` of `File` or `Raw` can print the text: `File`'s is written by hand.
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    let raw: Raw = toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        message: parse_error(&text, &e),
    })?;
    Ok(File {
        text,
        default_account: raw.default_account,
        accounts: raw.accounts,
        relay: raw.relay,
    })
}

/// The parser's message with line and column, without the offending line (which toml quotes in
/// full: it may hold a secret) and with every value the file sets hidden (serde's messages quote
/// the value they did not expect).
fn parse_error(text: &str, error: &toml::de::Error) -> String {
    let mut message = error.message().to_owned();
    let values = text.lines().filter_map(|line| {
        let value = line.split_once('=')?.1.trim();
        let value = value
            .trim_matches(|c| c == '"' || c == '\'' || c == '[' || c == ']')
            .trim();
        (value.len() >= 3).then_some(value)
    });
    for value in values {
        if message.contains(value) {
            message = message.replace(value, "[value hidden]");
        }
    }
    match error.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message,
    }
}

impl File {
    fn line(&self, offset: usize) -> usize {
        self.text[..offset.min(self.text.len())].matches('\n').count() + 1
    }
}

impl FileAccount {
    /// The account's values as a layer; relative paths are taken from the file's directory.
    pub(crate) fn layer(&self, file: &File, path: &Path, name: &str) -> Layer {
        let base = path.parent().unwrap_or(Path::new("."));
        let mut layer = Layer::file();
        let fields: [(&str, &Option<Spanned<Scalar>>); 34] = [
            ("enabled", &self.enabled),
            ("tenant", &self.tenant),
            ("client_id", &self.client_id),
            ("mailbox", &self.mailbox),
            ("from", &self.from),
            ("cloud", &self.cloud),
            ("authority_host", &self.authority_host),
            ("token_endpoint", &self.token_endpoint),
            ("scope", &self.scope),
            ("transport", &self.transport),
            ("graph_url", &self.graph_url),
            ("save_to_sent_items", &self.save_to_sent_items),
            ("grant_type", &self.grant_type),
            ("smtp_host", &self.smtp_host),
            ("smtp_port", &self.smtp_port),
            ("security", &self.security),
            ("ca_file", &self.ca_file),
            ("client_secret", &self.client_secret),
            ("client_secret_env", &self.client_secret_env),
            ("client_secret_file", &self.client_secret_file),
            ("client_secret_expires", &self.client_secret_expires),
            ("certificate", &self.certificate),
            ("certificate_password", &self.certificate_password),
            ("certificate_password_env", &self.certificate_password_env),
            ("certificate_password_file", &self.certificate_password_file),
            ("private_key", &self.private_key),
            ("federated_token_file", &self.federated_token_file),
            ("managed_identity_client_id", &self.managed_identity_client_id),
            ("assertion", &self.assertion),
            ("send_x5c", &self.send_x5c),
            ("smtp_username", &self.smtp_username),
            ("smtp_password", &self.smtp_password),
            ("smtp_password_env", &self.smtp_password_env),
            ("smtp_password_file", &self.smtp_password_file),
        ];
        const PATHS: [&str; 7] = [
            "ca_file",
            "client_secret_file",
            "certificate",
            "certificate_password_file",
            "private_key",
            "federated_token_file",
            "smtp_password_file",
        ];
        for (field, value) in fields {
            let Some(spanned) = value else { continue };
            let mut text = match spanned.get_ref() {
                Scalar::Text(t) => t.clone(),
                Scalar::Number(n) => n.to_string(),
                Scalar::Bool(b) => b.to_string(),
                Scalar::Date(d) => d.to_string(),
            };
            if PATHS.contains(&field) && !text.is_empty() && Path::new(&text).is_relative() {
                text = base.join(&text).display().to_string();
            }
            let origin = Origin::File {
                path: PathBuf::from(path),
                line: file.line(spanned.span().start),
                key: format!("accounts.{name}.{field}"),
            };
            layer.set(field, text, origin);
        }
        if let Some(senders) = &self.allowed_senders {
            let origin = Origin::File {
                path: PathBuf::from(path),
                line: file.line(senders.span().start),
                key: format!("accounts.{name}.allowed_senders"),
            };
            layer.set_list("allowed_senders", senders.get_ref().clone(), origin);
        }
        layer
    }
}
