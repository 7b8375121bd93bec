//! The `[relay]` section: listeners, who may relay, inbound limits, delivery limits and retries.
//! Resolved once into a validated [`RelayConfig`]; every error names the file, line and key.
//! Defaults are production values (`docs/relay.md` documents each).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;
use toml::Spanned;

use super::{ConfigError, Env, Origin, Overrides, Sources};
use crate::queue::Location;
use crate::relay::policy::{self, Exposure};
use crate::relay::settings::RelayConfig;

mod alerts;
mod limits;
mod listen;
mod policy_section;
mod queue;

pub(crate) use queue::migration as queue_migration;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRelay {
    hostname: Option<Spanned<String>>,
    queue_dir: Option<Spanned<String>>,
    queue: Option<Spanned<String>>,
    queue_password_file: Option<Spanned<String>>,
    queue_password_env: Option<Spanned<String>>,
    max_message_size: Option<Spanned<u64>>,
    max_recipients: Option<Spanned<u64>>,
    max_connections: Option<Spanned<u64>>,
    max_connections_per_client: Option<Spanned<u64>>,
    max_line_length: Option<Spanned<u64>>,
    bare_lf: Option<Spanned<String>>,
    command_timeout: Option<Spanned<String>>,
    line_timeout: Option<Spanned<String>>,
    data_timeout: Option<Spanned<String>>,
    auth_failure_delay: Option<Spanned<String>>,
    max_session_time: Option<Spanned<String>>,
    plaintext_auth_networks: Option<Spanned<Vec<String>>>,
    certificate: Option<Spanned<String>>,
    private_key: Option<Spanned<String>>,
    admin_listen: Option<Spanned<String>>,
    admin_token_file: Option<Spanned<String>>,
    #[serde(default)]
    admin_tls: bool,
    admin_token_env: Option<Spanned<String>>,
    #[serde(default)]
    listen: Vec<RawListener>,
    #[serde(default)]
    users: Vec<RawUser>,
    allow: Option<Vec<RawAllow>>,
    #[serde(default)]
    delivery: RawDelivery,
    alerting: Option<alerts::RawAlerting>,
    #[serde(default)]
    alerts: Vec<alerts::RawAlert>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawListener {
    address: Spanned<String>,
    tls: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUser {
    name: Spanned<String>,
    password_hash: Spanned<String>,
    account: Option<Spanned<String>>,
    #[serde(default)]
    rewrite_sender: bool,
}

/// Without the password hash, which can be attacked offline.
impl std::fmt::Debug for RawUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawUser")
            .field("name", self.name.get_ref())
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAllow {
    networks: Spanned<Vec<String>>,
    account: Option<Spanned<String>>,
    #[serde(default)]
    rewrite_sender: bool,
    /// The networks include public addresses, and the operator says they are theirs.
    #[serde(default)]
    public: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDelivery {
    connections_per_account: Option<Spanned<u64>>,
    messages_per_minute: Option<Spanned<u64>>,
    messages_per_hour: Option<Spanned<u64>>,
    recipients_per_day: Option<Spanned<u64>>,
    rate_window: Option<Spanned<String>>,
    day_window: Option<Spanned<String>>,
    hour_window: Option<Spanned<String>>,
    retry_initial: Option<Spanned<String>>,
    retry_max: Option<Spanned<String>>,
    max_queue_lifetime: Option<Spanned<String>>,
    connection_idle: Option<Spanned<String>>,
    lease_time: Option<Spanned<String>>,
    dsn_to: Option<Spanned<String>>,
    /// `[relay.delivery.accounts.NAME]`: one account's limits over its service's and the above.
    #[serde(default)]
    accounts: std::collections::BTreeMap<String, RawAccountLimits>,
}

/// One account's sending limits (`[relay.delivery.accounts.NAME]`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccountLimits {
    messages_per_minute: Option<Spanned<u64>>,
    messages_per_hour: Option<Spanned<u64>>,
    recipients_per_day: Option<Spanned<u64>>,
}

/// Command-line overrides of the relay section.
#[derive(Debug, Clone, Default)]
pub(crate) struct RelayOverrides {
    /// `--config`, `--account` (the default account for rules that name none).
    pub(crate) config: Overrides,
    /// `--listen`: replaces the configured listeners with plain ones.
    pub(crate) listen: Vec<SocketAddr>,
    /// `--queue-dir`.
    pub(crate) queue_dir: Option<PathBuf>,
    /// `--admin`: the admin endpoint's address, or `off`.
    pub(crate) admin: Option<String>,
}

/// Reads `[relay]` values with their position.
pub(super) struct Reader<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Reader<'_> {
    fn origin<T>(&self, value: &Spanned<T>, key: &str) -> Origin {
        Origin::File {
            path: self.path.to_owned(),
            line: self.text[..value.span().start.min(self.text.len())]
                .matches('\n')
                .count()
                + 1,
            key: format!("relay.{key}"),
        }
    }

    fn invalid<T>(&self, value: &Spanned<T>, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::invalid(&self.origin(value, key), message)
    }

    fn duration(&self, value: Option<&Spanned<String>>, key: &str, default: Duration) -> Result<Duration, ConfigError> {
        let Some(v) = value else { return Ok(default) };
        let parsed = humantime::parse_duration(v.get_ref().trim()).map_err(|e| {
            self.invalid(
                v,
                key,
                format!("`{}` is not a duration ({e}): write e.g. 30s, 5m, 2h, 5d", v.get_ref()),
            )
        })?;
        if parsed.is_zero() {
            return Err(self.invalid(v, key, "must be longer than zero"));
        }
        Ok(parsed)
    }

    fn count(&self, value: Option<&Spanned<u64>>, key: &str, default: u64) -> Result<u64, ConfigError> {
        match value {
            None => Ok(default),
            Some(v) if *v.get_ref() == 0 => Err(self.invalid(v, key, "must be at least 1")),
            Some(v) => Ok(*v.get_ref()),
        }
    }

    fn networks(&self, value: &Spanned<Vec<String>>, key: &str) -> Result<Vec<IpNet>, ConfigError> {
        value
            .get_ref()
            .iter()
            .map(|text| {
                let text = text.trim();
                text.parse::<IpNet>()
                    .or_else(|_| text.parse::<std::net::IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        self.invalid(
                            value,
                            key,
                            format!(
                                "`{text}` is not an address or network: write e.g. 192.168.10.0/24, 10.0.0.7 or ::1"
                            ),
                        )
                    })
            })
            .collect()
    }
}

impl RelayConfig {
    /// Resolves the relay configuration from the config file (if any), the environment and the
    /// flags.
    pub(crate) fn resolve(overrides: &RelayOverrides) -> Result<Self, ConfigError> {
        Self::resolve_with(overrides, &super::process_env)
    }

    /// Resolves with the given environment.
    pub(crate) fn resolve_with(overrides: &RelayOverrides, env: Env<'_>) -> Result<Self, ConfigError> {
        let sources = Sources::load(&overrides.config, env)?;
        // The default account: the one `send` would use with the same flags and environment.
        let default = sources.config()?;
        let path = sources.path.clone().unwrap_or_default();
        let unset = RawRelay::default();
        let raw = sources.file.as_ref().and_then(|f| f.relay.as_ref()).unwrap_or(&unset);
        let text = sources.file.as_ref().map_or("", |f| f.text.as_str());
        let r = Reader { path: &path, text };
        let (policy, accounts) = policy_section::policy(&r, raw, &sources, &default)?;
        let session = limits::session(&r, raw)?;
        let delivery = limits::delivery(&r, raw, &accounts)?;
        limits::check_recipients(&r, raw, &session, &delivery)?;
        let admin = match (&overrides.admin, &raw.admin_listen) {
            (Some(flag), _) => {
                parse_admin(flag).map_err(|e| ConfigError::invalid(&Origin::Flag("--admin".into()), e))?
            }
            (None, Some(v)) => parse_admin(v.get_ref()).map_err(|e| r.invalid(v, "admin_listen", e))?,
            (None, None) => Some(SocketAddr::from(([127, 0, 0, 1], DEFAULT_ADMIN_PORT))),
        };
        let admin_token = admin_token(&r, raw, env, admin, &overrides.admin)?;
        let alerts = alerts::alerts(&r, raw, env, &session.hostname)?;
        Ok(Self {
            listeners: listen::listeners(&r, raw, overrides)?,
            certificate: listen::certificate(&r, raw, &path)?,
            queue: queue::location(&r, raw, overrides, env, &path)?,
            session,
            inbound: limits::inbound(&r, raw)?,
            policy,
            accounts,
            delivery,
            admin,
            admin_token,
            admin_tls: raw.admin_tls,
            alerts,
        })
    }
}

/// Allowed networks relay without a password: one that covers the public Internet would make
/// the relay an open relay. Public addresses need `public = true` and may be at most a /24
/// (IPv6: a /56).
fn check_exposure(nets: &[IpNet], acknowledged: bool) -> Result<(), String> {
    let (v4, v6) = policy::LARGEST_PUBLIC;
    for net in nets {
        match policy::exposure(net) {
            Exposure::Private => {}
            Exposure::SmallPublic if acknowledged => {}
            Exposure::SmallPublic => {
                return Err(format!(
                    "`{net}` includes public Internet addresses: anyone there could relay through this account. If they are your own, add `public = true` to this rule"
                ));
            }
            Exposure::LargePublic => {
                return Err(format!(
                    "`{net}` covers more of the public Internet than a /{v4} (IPv4) or /{v6} (IPv6): the relay would be an open relay; allow your own networks only"
                ));
            }
        }
    }
    Ok(())
}

/// Only where the queue is, for the `queue` commands: they need no account or credentials.
pub(crate) fn queue_location(overrides: &RelayOverrides, env: Env<'_>) -> Result<Location, ConfigError> {
    let path = overrides
        .config
        .config
        .clone()
        .or_else(|| super::default_config_path(env));
    let file = path.as_deref().map(super::file::parse).transpose()?;
    let unset = RawRelay::default();
    let raw = file.as_ref().and_then(|f| f.relay.as_ref()).unwrap_or(&unset);
    let path = path.unwrap_or_default();
    let r = Reader {
        path: &path,
        text: file.as_ref().map_or("", |f| f.text.as_str()),
    };
    queue::location(&r, raw, overrides, env, &path)
}

/// The admin endpoint's default port (on 127.0.0.1).
const DEFAULT_ADMIN_PORT: u16 = 2580;

/// The token that lets the status page change the queue; required when the admin endpoint
/// listens beyond this machine.
fn admin_token(
    r: &Reader<'_>,
    raw: &RawRelay,
    env: Env<'_>,
    admin: Option<SocketAddr>,
    flag: &Option<String>,
) -> Result<Option<crate::secret::Secret>, ConfigError> {
    let token = queue::secret_from(
        r,
        env,
        ("admin_token_file", raw.admin_token_file.as_ref()),
        ("admin_token_env", raw.admin_token_env.as_ref()),
    )?;
    if let Some(t) = &token
        && t.expose().chars().count() < MIN_ADMIN_TOKEN
    {
        let at = raw
            .admin_token_file
            .as_ref()
            .or(raw.admin_token_env.as_ref())
            .expect("one is set");
        return Err(r.invalid(
            at,
            "admin_token",
            format!("the admin token has fewer than {MIN_ADMIN_TOKEN} characters: make a long random one (openssl rand -hex 32)"),
        ));
    }
    if let Some(addr) = admin
        && !addr.ip().is_loopback()
        && token.is_none()
    {
        let origin = match (flag, &raw.admin_listen) {
            (Some(_), _) => Origin::Flag("--admin".into()),
            (None, Some(v)) => r.origin(v, "admin_listen"),
            (None, None) => Origin::Default,
        };
        return Err(ConfigError::invalid(
            &origin,
            format!(
                "the admin endpoint on {addr} would be reachable from other machines without a token: set admin_token_file (or admin_token_env), or listen on 127.0.0.1"
            ),
        ));
    }
    Ok(token)
}

/// The least length of the admin token.
const MIN_ADMIN_TOKEN: usize = 16;

fn parse_admin(value: &str) -> Result<Option<SocketAddr>, String> {
    let value = value.trim();
    if value.eq_ignore_ascii_case("off") || value.is_empty() {
        return Ok(None);
    }
    value
        .parse()
        .map(Some)
        .map_err(|_| format!("`{value}` is not an address and port (e.g. 127.0.0.1:2580) or `off`"))
}

fn relative(config: &Path, value: &str) -> PathBuf {
    let p = PathBuf::from(value.trim());
    match config.parent() {
        Some(dir) if p.is_relative() => dir.join(p),
        _ => p,
    }
}

/// `$STATE_DIRECTORY` (systemd's `StateDirectory=`), else `$XDG_STATE_HOME/m365-mailer/queue`,
/// else `~/.local/state/m365-mailer/queue`, else `/var/lib/m365-mailer/queue`.
fn default_queue_dir(env: Env<'_>) -> PathBuf {
    if let Some(dir) = env("STATE_DIRECTORY") {
        // systemd may pass several, separated by colons: the first is ours.
        return PathBuf::from(dir.split(':').next().unwrap_or_default()).join("queue");
    }
    env("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".local").join("state")))
        .map_or_else(
            || PathBuf::from("/var/lib/m365-mailer/queue"),
            |d| d.join("m365-mailer").join("queue"),
        )
}

fn system_hostname() -> String {
    crate::system::host_name()
        .filter(|h| crate::message::is_domain(h))
        .unwrap_or_else(|| "localhost".to_owned())
}

#[cfg(test)]
mod tests;
