//! A configuration value and where it came from: a line of the config file, an environment
//! variable, a flag or the default. Errors and `config check` name the origin; the account keeps
//! it so that a failure much later (an expired secret) still says where to fix it.

use std::fmt;
use std::path::PathBuf;

/// Where a configuration value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Origin {
    /// A line of the config file.
    File {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// Dotted key, e.g. `accounts.main.client_id`.
        key: String,
    },
    /// An environment variable.
    Env(String),
    /// A command-line flag.
    Flag(String),
    /// The built-in default.
    Default,
    /// Nowhere: the value is missing.
    Missing(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File { path, line, key } => write!(f, "{}:{line}: {key}", path.display()),
            Origin::Env(name) => write!(f, "environment variable {name}"),
            Origin::Flag(flag) => f.write_str(flag),
            Origin::Default => f.write_str("default"),
            Origin::Missing(field) => write!(f, "configuration ({field})"),
        }
    }
}

/// A value and its origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Setting<T> {
    /// The value.
    pub(crate) value: T,
    /// Where it came from.
    pub(crate) origin: Origin,
}
