//! Configuration: one resolution path, flags > environment > config file > defaults, into a
//! validated [`Account`]. Every value remembers where it came from, so an error names the file
//! and line, the environment variable, or the flag.
//!
//! The config file (`--config`, else `$XDG_CONFIG_HOME/m365-mailer/config.toml`, else
//! `/etc/m365-mailer/config.toml`) holds named accounts; `docs/configuration.md` documents every
//! field and maps the guides' settings onto them.

mod account;
mod credential;
mod field;
mod file;
mod layer;
mod relay;
pub(crate) mod write;

use std::path::PathBuf;

pub(crate) use crate::setting::{Origin, Setting};
pub(crate) use relay::{RelayOverrides, queue_location, queue_migration};

use crate::account::Account;
pub(crate) use field::Field;
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
    pub(crate) fields: Vec<(Field, String)>,
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
        Sources::load(overrides, env)?.config()
    }
}

/// What configuration is resolved from, read once: the flags, the environment and the parsed
/// config file. Every account of a run (the relay names several) is built from the same reading.
struct Sources<'a> {
    overrides: &'a Overrides,
    env: Env<'a>,
    path: Option<PathBuf>,
    file: Option<file::File>,
}

impl<'a> Sources<'a> {
    fn load(overrides: &'a Overrides, env: Env<'a>) -> Result<Self, ConfigError> {
        let path = overrides.config.clone().or_else(|| default_config_path(env));
        let file = path.as_deref().map(file::parse).transpose()?;
        Ok(Self {
            overrides,
            env,
            path,
            file,
        })
    }

    fn account_names(&self) -> Vec<String> {
        self.file
            .as_ref()
            .map(|f| f.accounts.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// `--account`, else `M365_MAILER_ACCOUNT`, else the file's `default_account`, else its only
    /// account, else `default`.
    fn default_name(&self) -> String {
        let names = self.account_names();
        self.overrides
            .account
            .clone()
            .or_else(|| (self.env)("M365_MAILER_ACCOUNT"))
            .or_else(|| self.file.as_ref().and_then(|f| f.default_account.clone()))
            .or_else(|| (names.len() == 1).then(|| names[0].clone()))
            .unwrap_or_else(|| "default".to_owned())
    }

    /// The account called `name`, from the flags, the environment and its table in the file.
    fn account(&self, name: &str, warnings: &mut Vec<Warning>) -> Result<Account, ConfigError> {
        let file_layer = match (&self.file, &self.path) {
            (Some(f), Some(p)) => match f.accounts.get(name) {
                Some(account) => account.layer(f, p, name)?,
                None if f.accounts.is_empty() => Layer::default(),
                None => {
                    return Err(ConfigError::invalid(
                        &Origin::File {
                            path: p.clone(),
                            line: 1,
                            key: "accounts".into(),
                        },
                        format!("no account `{name}` (accounts: {})", self.account_names().join(", ")),
                    ));
                }
            },
            _ => Layer::default(),
        };
        let layers = Layers {
            flags: Layer::from_flags(&self.overrides.fields),
            env: Layer::from_env(self.env),
            file: file_layer,
        };
        account::build(name, &layers, self.env, warnings)
    }

    /// The default account with what `config check` reports.
    fn config(&self) -> Result<Config, ConfigError> {
        let mut warnings = Vec::new();
        let account = self.account(&self.default_name(), &mut warnings)?;
        Ok(Config {
            account,
            account_names: self.account_names(),
            file: self.path.clone(),
            warnings,
        })
    }
}

/// A config file's text read as far as it can be without opening anything it names: the TOML
/// and each account's table as a layer. For the properties of hostile input.
#[cfg(any(test, feature = "properties"))]
pub(crate) fn read_text(path: &std::path::Path, text: String) -> Result<(), ConfigError> {
    let file = file::parse_text(path, text)?;
    for (name, account) in &file.accounts {
        account.layer(&file, path, name)?;
    }
    Ok(())
}

/// The config file the commands read when no `--config` is given: the first that exists.
pub(crate) fn default_config_path(env: Env<'_>) -> Option<PathBuf> {
    let user = env("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".config")))
        .map(|d| d.join("m365-mailer").join("config.toml"));
    [user, Some(PathBuf::from("/etc/m365-mailer/config.toml"))]
        .into_iter()
        .flatten()
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests;
