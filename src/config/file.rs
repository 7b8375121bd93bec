//! The config file: named accounts in TOML. Values keep their line so errors can name it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::ConfigError;
use super::field::Field;
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

/// A value written as a string, number, boolean, date or list (`smtp_port = 587`, `ssl = true`,
/// `allowed_senders = ["a@contoso.com"]`).
#[derive(Deserialize)]
#[serde(untagged)]
enum Scalar {
    Text(String),
    Number(i64),
    Bool(bool),
    Date(toml::value::Datetime),
    List(Vec<String>),
}

/// One `[accounts.NAME]` table: keys are [`Field`] names, checked when it becomes a layer. Its
/// values include secrets: there is no `Debug` of them (see [`File`]'s).
#[derive(Default, Deserialize)]
#[serde(transparent)]
pub(crate) struct FileAccount(BTreeMap<String, Spanned<Scalar>>);

pub(crate) fn parse(path: &Path) -> Result<File, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_text(path, text)
}

/// The file's text, read from `path`.
pub(crate) fn parse_text(path: &Path, text: String) -> Result<File, ConfigError> {
    // No `Debug` of `File` or `Raw` can print the text: `File`'s is written by hand.
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
    pub(crate) fn layer(&self, file: &File, path: &Path, name: &str) -> Result<Layer, ConfigError> {
        let base = path.parent().unwrap_or(Path::new("."));
        let mut layer = Layer::file();
        // In the file's order, so the first error is the first wrong line.
        let mut entries: Vec<_> = self.0.iter().collect();
        entries.sort_by_key(|(_, value)| value.span().start);
        for (key, value) in entries {
            let origin = Origin::File {
                path: PathBuf::from(path),
                line: file.line(value.span().start),
                key: format!("accounts.{name}.{key}"),
            };
            let Some(field) = Field::in_file(key) else {
                return Err(ConfigError::invalid(
                    &origin,
                    format!("unknown field `{key}`, expected one of {}", Field::file_keys()),
                ));
            };
            let spec = field.spec();
            let mut text = match value.get_ref() {
                Scalar::List(list) if spec.list => {
                    layer.set_list(field, list.clone(), origin);
                    continue;
                }
                _ if spec.list => {
                    return Err(ConfigError::invalid(
                        &origin,
                        "expected a list, e.g. [\"alerts@contoso.com\"]",
                    ));
                }
                Scalar::List(_) => return Err(ConfigError::invalid(&origin, "expected one value, not a list")),
                Scalar::Text(t) => t.clone(),
                Scalar::Number(n) => n.to_string(),
                Scalar::Bool(b) => b.to_string(),
                Scalar::Date(d) => d.to_string(),
            };
            if spec.path && !text.is_empty() && Path::new(&text).is_relative() {
                text = base.join(&text).display().to_string();
            }
            layer.set(field, text, origin);
        }
        Ok(layer)
    }
}
