//! The `[relay]` section: listeners, who may relay, inbound limits, delivery limits and retries.
//! Resolved once into a validated [`RelayConfig`]; every error names the file, line and key.
//! Defaults are production values (`docs/relay.md` documents each).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;
use toml::Spanned;

use super::{Config, ConfigError, Env, Origin, Overrides};
use crate::queue::Backoff;
use crate::relay::limits::SendLimits;
use crate::relay::policy::{self, Exposure, Policy, Rule, Senders, User};
use crate::relay::session::{BareLf, Settings};
use crate::relay::settings::{DeliverySettings, Inbound, Listener, ListenerTls, RelayConfig, ServerCertificate};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRelay {
    hostname: Option<Spanned<String>>,
    queue_dir: Option<Spanned<String>>,
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
    #[serde(default)]
    listen: Vec<RawListener>,
    #[serde(default)]
    users: Vec<RawUser>,
    allow: Option<Vec<RawAllow>>,
    #[serde(default)]
    delivery: RawDelivery,
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
    recipients_per_day: Option<Spanned<u64>>,
    rate_window: Option<Spanned<String>>,
    day_window: Option<Spanned<String>>,
    retry_initial: Option<Spanned<String>>,
    retry_max: Option<Spanned<String>>,
    max_queue_lifetime: Option<Spanned<String>>,
    connection_idle: Option<Spanned<String>>,
    lease_time: Option<Spanned<String>>,
    dsn_to: Option<Spanned<String>>,
}

/// Command-line overrides of the relay section.
#[derive(Debug, Clone, Default)]
pub struct RelayOverrides {
    /// `--config`, `--account` (the default account for rules that name none).
    pub config: Overrides,
    /// `--listen`: replaces the configured listeners with plain ones.
    pub listen: Vec<SocketAddr>,
    /// `--queue-dir`.
    pub queue_dir: Option<PathBuf>,
    /// `--admin`: the admin endpoint's address, or `off`.
    pub admin: Option<String>,
}

/// Reads `[relay]` values with their position.
struct Reader<'a> {
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
    pub fn resolve(overrides: &RelayOverrides) -> Result<Self, ConfigError> {
        Self::resolve_with(overrides, &|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// Resolves with the given environment.
    pub fn resolve_with(overrides: &RelayOverrides, env: Env<'_>) -> Result<Self, ConfigError> {
        // The default account: the one `send` would use with the same flags and environment.
        let default = Config::resolve_with(&overrides.config, env)?;
        let file = default.file.clone();
        let (raw, text) = match &file {
            Some(path) => {
                let parsed = super::file::parse(path)?;
                (parsed.relay.unwrap_or_default(), parsed.text)
            }
            None => (RawRelay::default(), String::new()),
        };
        let path = file.clone().unwrap_or_default();
        let r = Reader {
            path: &path,
            text: &text,
        };

        let mut accounts = vec![default.account.clone()];
        let mut account_for = |name: Option<&Spanned<String>>, key: &str| -> Result<String, ConfigError> {
            let Some(name) = name else {
                return Ok(default.account.name.clone());
            };
            let wanted = name.get_ref().trim().to_owned();
            if accounts.iter().any(|a| a.name == wanted) {
                return Ok(wanted);
            }
            if !default.account_names.contains(&wanted) {
                return Err(r.invalid(
                    name,
                    key,
                    format!(
                        "no account `{wanted}` in the config file (accounts: {})",
                        default.account_names.join(", ")
                    ),
                ));
            }
            let mut o = overrides.config.clone();
            o.account = Some(wanted.clone());
            accounts.push(Config::resolve_with(&o, env)?.account);
            Ok(wanted)
        };

        let mut users = Vec::new();
        for (i, u) in raw.users.iter().enumerate() {
            let key = format!("users[{i}]");
            let name = u.name.get_ref().trim().to_owned();
            if name.is_empty() || name.contains(|c: char| c.is_control()) {
                return Err(r.invalid(
                    &u.name,
                    &format!("{key}.name"),
                    "a user needs a name without control characters",
                ));
            }
            if users.iter().any(|x: &User| x.name.eq_ignore_ascii_case(&name)) {
                return Err(r.invalid(
                    &u.name,
                    &format!("{key}.name"),
                    format!("user `{name}` is listed twice"),
                ));
            }
            policy::check_hash(u.password_hash.get_ref().trim()).map_err(|e| {
                r.invalid(
                    &u.password_hash,
                    &format!("{key}.password_hash"),
                    format!("{e}; make one with `m365-mailer relay hash-password`"),
                )
            })?;
            let account = account_for(u.account.as_ref(), &format!("{key}.account"))?;
            users.push(User {
                rule: Rule {
                    name: format!("user {name}"),
                    account,
                    rewrite_sender: u.rewrite_sender,
                },
                name,
                password_hash: u.password_hash.get_ref().trim().to_owned(),
            });
        }

        let mut networks = Vec::new();
        match &raw.allow {
            // The default: this machine only.
            None => {
                let account = default.account.name.clone();
                for net in policy::loopback() {
                    networks.push((
                        net,
                        Rule {
                            name: format!("network {net}"),
                            account: account.clone(),
                            rewrite_sender: false,
                        },
                    ));
                }
            }
            Some(rules) => {
                for (i, a) in rules.iter().enumerate() {
                    let key = format!("allow[{i}]");
                    let nets = r.networks(&a.networks, &format!("{key}.networks"))?;
                    if nets.is_empty() {
                        return Err(r.invalid(&a.networks, &format!("{key}.networks"), "list at least one network"));
                    }
                    check_exposure(&nets, a.public)
                        .map_err(|e| r.invalid(&a.networks, &format!("{key}.networks"), e))?;
                    let account = account_for(a.account.as_ref(), &format!("{key}.account"))?;
                    for net in nets {
                        networks.push((
                            net,
                            Rule {
                                name: format!("network {net}"),
                                account: account.clone(),
                                rewrite_sender: a.rewrite_sender,
                            },
                        ));
                    }
                }
            }
        }
        let plaintext_auth = match &raw.plaintext_auth_networks {
            Some(v) => {
                let nets = r.networks(v, "plaintext_auth_networks")?;
                // Passwords in the clear over the Internet: never.
                if let Some(public) = nets.iter().find(|n| policy::exposure(n) != Exposure::Private) {
                    return Err(r.invalid(
                        v,
                        "plaintext_auth_networks",
                        format!("`{public}` includes public addresses: passwords would cross the Internet in the clear; list only local networks"),
                    ));
                }
                nets
            }
            None => policy::loopback(),
        };

        let tls_mode = |l: &RawListener, i: usize| -> Result<ListenerTls, ConfigError> {
            match l.tls.as_ref().map(|t| t.get_ref().trim().to_ascii_lowercase()) {
                None => Ok(ListenerTls::None),
                Some(t) => match t.as_str() {
                    "none" | "off" => Ok(ListenerTls::None),
                    "starttls" => Ok(ListenerTls::StartTls),
                    "implicit" | "tls" | "smtps" => Ok(ListenerTls::Implicit),
                    other => Err(r.invalid(
                        l.tls.as_ref().expect("present"),
                        &format!("listen[{i}].tls"),
                        format!("`{other}` is not a TLS mode: none, starttls or implicit"),
                    )),
                },
            }
        };
        let mut listeners = Vec::new();
        if overrides.listen.is_empty() {
            for (i, l) in raw.listen.iter().enumerate() {
                let address = l.address.get_ref().trim().parse::<SocketAddr>().map_err(|_| {
                    r.invalid(
                        &l.address,
                        &format!("listen[{i}].address"),
                        format!(
                            "`{}` is not an address and port: write e.g. 127.0.0.1:2525 or [::1]:2525",
                            l.address.get_ref()
                        ),
                    )
                })?;
                listeners.push(Listener {
                    address,
                    tls: tls_mode(l, i)?,
                });
            }
            if listeners.is_empty() {
                listeners.push(Listener {
                    address: SocketAddr::from(([127, 0, 0, 1], 2525)),
                    tls: ListenerTls::None,
                });
            }
        } else {
            listeners.extend(overrides.listen.iter().map(|address| Listener {
                address: *address,
                tls: ListenerTls::None,
            }));
        }

        let certificate = match (&raw.certificate, &raw.private_key) {
            (Some(c), Some(k)) => ServerCertificate::Files {
                certificate: relative(&path, c.get_ref()),
                private_key: relative(&path, k.get_ref()),
            },
            (None, None) => ServerCertificate::SelfSigned,
            (Some(c), None) => {
                return Err(r.invalid(c, "certificate", "set private_key too (the certificate's key, PEM)"));
            }
            (None, Some(k)) => return Err(r.invalid(k, "private_key", "set certificate too (the chain, PEM)")),
        };

        let bare_lf = match raw.bare_lf.as_ref().map(|v| v.get_ref().trim().to_ascii_lowercase()) {
            None => BareLf::Normalize,
            Some(v) if v == "normalize" || v == "normalise" => BareLf::Normalize,
            Some(v) if v == "refuse" || v == "reject" => BareLf::Refuse,
            Some(v) => {
                return Err(r.invalid(
                    raw.bare_lf.as_ref().expect("present"),
                    "bare_lf",
                    format!("`{v}` is not normalize or refuse"),
                ));
            }
        };
        let session = Settings {
            hostname: match &raw.hostname {
                Some(h) if crate::message::is_domain(h.get_ref().trim()) => h.get_ref().trim().to_owned(),
                Some(h) => return Err(r.invalid(h, "hostname", format!("`{}` is not a host name", h.get_ref()))),
                None => system_hostname(),
            },
            max_message_size: usize::try_from(r.count(
                raw.max_message_size.as_ref(),
                "max_message_size",
                35 * 1024 * 1024,
            )?)
            .unwrap_or(usize::MAX),
            max_recipients: r.count(raw.max_recipients.as_ref(), "max_recipients", 500)? as usize,
            max_line_length: r.count(raw.max_line_length.as_ref(), "max_line_length", 4096)?.max(512) as usize,
            bare_lf,
            starttls: false,
            max_errors: 10,
        };
        let inbound = Inbound {
            max_connections: r.count(raw.max_connections.as_ref(), "max_connections", 1000)? as usize,
            max_connections_per_client: r.count(
                raw.max_connections_per_client.as_ref(),
                "max_connections_per_client",
                50,
            )? as usize,
            command_timeout: r.duration(
                raw.command_timeout.as_ref(),
                "command_timeout",
                Duration::from_secs(300),
            )?,
            line_timeout: r.duration(raw.line_timeout.as_ref(), "line_timeout", Duration::from_secs(60))?,
            data_timeout: r.duration(raw.data_timeout.as_ref(), "data_timeout", Duration::from_secs(180))?,
            auth_failure_delay: r.duration(
                raw.auth_failure_delay.as_ref(),
                "auth_failure_delay",
                Duration::from_secs(1),
            )?,
            max_session_time: r.duration(
                raw.max_session_time.as_ref(),
                "max_session_time",
                Duration::from_secs(3600),
            )?,
        };

        let d = &raw.delivery;
        let defaults = SendLimits::default();
        let delivery = DeliverySettings {
            connections_per_account: r.count(
                d.connections_per_account.as_ref(),
                "delivery.connections_per_account",
                3,
            )? as usize,
            limits: SendLimits {
                messages: u32::try_from(r.count(
                    d.messages_per_minute.as_ref(),
                    "delivery.messages_per_minute",
                    u64::from(defaults.messages),
                )?)
                .unwrap_or(u32::MAX),
                window: r.duration(d.rate_window.as_ref(), "delivery.rate_window", defaults.window)?,
                recipients: u32::try_from(r.count(
                    d.recipients_per_day.as_ref(),
                    "delivery.recipients_per_day",
                    u64::from(defaults.recipients),
                )?)
                .unwrap_or(u32::MAX),
                day: r.duration(d.day_window.as_ref(), "delivery.day_window", defaults.day)?,
            },
            backoff: {
                let b = Backoff::default();
                Backoff {
                    initial: r.duration(d.retry_initial.as_ref(), "delivery.retry_initial", b.initial)?,
                    max: r.duration(d.retry_max.as_ref(), "delivery.retry_max", b.max)?,
                    lifetime: r.duration(d.max_queue_lifetime.as_ref(), "delivery.max_queue_lifetime", b.lifetime)?,
                }
            },
            connection_idle: r.duration(
                d.connection_idle.as_ref(),
                "delivery.connection_idle",
                Duration::from_secs(60),
            )?,
            lease: r.duration(d.lease_time.as_ref(), "delivery.lease_time", Duration::from_secs(600))?,
            dsn_to: match &d.dsn_to {
                Some(a) => {
                    let address = a.get_ref().trim().to_owned();
                    crate::message::check_address(&address)
                        .map_err(|e| r.invalid(a, "delivery.dsn_to", e.to_string()))?;
                    Some(address)
                }
                None => None,
            },
        };

        if session.max_recipients > delivery.limits.recipients as usize {
            // A message the mailbox could never send in a day would wait forever.
            let origin = raw
                .max_recipients
                .as_ref()
                .map(|v| r.origin(v, "max_recipients"))
                .or_else(|| {
                    d.recipients_per_day
                        .as_ref()
                        .map(|v| r.origin(v, "delivery.recipients_per_day"))
                })
                .unwrap_or(Origin::Default);
            return Err(ConfigError::invalid(
                &origin,
                format!(
                    "max_recipients ({}) is more than delivery.recipients_per_day ({}): a message with that many recipients could never be sent; lower max_recipients",
                    session.max_recipients, delivery.limits.recipients
                ),
            ));
        }
        let admin = match (&overrides.admin, &raw.admin_listen) {
            (Some(flag), _) => {
                parse_admin(flag).map_err(|e| ConfigError::invalid(&Origin::Flag("--admin".into()), e))?
            }
            (None, Some(v)) => parse_admin(v.get_ref()).map_err(|e| r.invalid(v, "admin_listen", e))?,
            (None, None) => Some(SocketAddr::from(([127, 0, 0, 1], DEFAULT_ADMIN_PORT))),
        };
        let queue_dir = match (&overrides.queue_dir, &raw.queue_dir) {
            (Some(dir), _) => dir.clone(),
            (None, Some(dir)) => relative(&path, dir.get_ref()),
            (None, None) => default_queue_dir(env),
        };
        let policy = Policy {
            users,
            networks,
            plaintext_auth,
            accounts: accounts
                .iter()
                .map(|a| {
                    (
                        a.name.clone(),
                        Senders {
                            mailbox: a.mailbox.value.clone(),
                            allowed: a.allowed_senders.clone(),
                        },
                    )
                })
                .collect(),
        };
        Ok(Self {
            listeners,
            certificate,
            queue_dir,
            session,
            inbound,
            policy,
            accounts,
            delivery,
            admin,
            file,
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

/// Only the queue directory, for the `queue` commands: they need no account or credentials.
pub fn queue_dir(overrides: &RelayOverrides, env: Env<'_>) -> Result<PathBuf, ConfigError> {
    if let Some(dir) = &overrides.queue_dir {
        return Ok(dir.clone());
    }
    let path = overrides
        .config
        .config
        .clone()
        .or_else(|| super::default_config_path(env));
    let configured = match &path {
        Some(p) => super::file::parse(p)?
            .relay
            .and_then(|r| r.queue_dir)
            .map(|d| relative(p, d.get_ref())),
        None => None,
    };
    Ok(configured.unwrap_or_else(|| default_queue_dir(env)))
}

/// The admin endpoint's default port (on 127.0.0.1).
const DEFAULT_ADMIN_PORT: u16 = 2580;

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
mod tests {
    use super::*;

    const ACCOUNT: &str = r#"
[accounts.main]
tenant = "contoso.onmicrosoft.com"
client_id = "0b7e2f4c-5d6a-4e8b-9c1d-3f2a4b6c8d0e"
client_secret = "~secret"
mailbox = "relay@contoso.com"
allowed_senders = ["alerts@contoso.com"]

[accounts.ops]
tenant = "contoso.onmicrosoft.com"
client_id = "0b7e2f4c-5d6a-4e8b-9c1d-3f2a4b6c8d0e"
client_secret = "~secret"
mailbox = "ops@contoso.com"
"#;

    fn resolve(dir: &Path, relay: &str) -> Result<RelayConfig, ConfigError> {
        let path = dir.join("config.toml");
        std::fs::write(&path, format!("default_account = \"main\"\n{ACCOUNT}\n{relay}")).unwrap();
        RelayConfig::resolve_with(
            &RelayOverrides {
                config: Overrides {
                    config: Some(path),
                    ..Overrides::default()
                },
                ..RelayOverrides::default()
            },
            &|name| (name == "HOME").then(|| "/home/u".to_owned()),
        )
    }

    #[test]
    fn defaults_listen_on_loopback_and_allow_only_loopback() {
        let dir = tempfile::tempdir().unwrap();
        let c = resolve(dir.path(), "").unwrap();
        assert_eq!(
            c.listeners,
            [Listener {
                address: "127.0.0.1:2525".parse().unwrap(),
                tls: ListenerTls::None
            }]
        );
        assert_eq!(c.policy.networks.len(), 2);
        assert!(c.policy.network_rule("127.0.0.1".parse().unwrap()).is_some());
        assert!(c.policy.network_rule("::1".parse().unwrap()).is_some());
        assert!(c.policy.network_rule("192.168.1.1".parse().unwrap()).is_none());
        assert!(c.policy.users.is_empty());
        assert_eq!(c.queue_dir, PathBuf::from("/home/u/.local/state/m365-mailer/queue"));
        assert_eq!(c.delivery.limits, SendLimits::default());
        assert_eq!(c.delivery.backoff, Backoff::default());
        assert_eq!(c.delivery.connections_per_account, 3);
        assert_eq!(c.session.max_message_size, 35 * 1024 * 1024);
        assert_eq!(c.certificate, ServerCertificate::SelfSigned);
    }

    #[test]
    fn a_full_section() {
        let dir = tempfile::tempdir().unwrap();
        let hash = policy::hash_password(b"pw");
        let c = resolve(
            dir.path(),
            &format!(
                r#"
[relay]
hostname = "relay.contoso.local"
queue_dir = "spool"
certificate = "relay.crt"
private_key = "relay.key"
max_message_size = 10485760
command_timeout = "2m"

[[relay.listen]]
address = "[::]:2525"
tls = "starttls"

[[relay.listen]]
address = "0.0.0.0:465"
tls = "implicit"

[[relay.users]]
name = "scanner"
password_hash = "{hash}"
account = "ops"
rewrite_sender = true

[[relay.allow]]
networks = ["192.168.10.0/24", "10.0.0.7"]

[[relay.allow]]
networks = ["203.0.113.0/24"]
public = true

[relay.delivery]
messages_per_minute = 20
rate_window = "1s"
retry_initial = "200ms"
dsn_to = "postmaster@contoso.com"
"#
            ),
        )
        .unwrap();
        assert_eq!(c.listeners.len(), 2);
        assert_eq!(c.listeners[1].tls, ListenerTls::Implicit);
        assert_eq!(c.queue_dir, dir.path().join("spool"));
        assert_eq!(c.session.hostname, "relay.contoso.local");
        assert_eq!(c.inbound.command_timeout, Duration::from_secs(120));
        let user = c.policy.user("scanner").unwrap();
        assert_eq!((user.rule.account.as_str(), user.rule.rewrite_sender), ("ops", true));
        let printer = c.policy.network_rule("10.0.0.7".parse().unwrap()).unwrap();
        assert_eq!(printer.account, "main");
        assert!(
            c.policy.network_rule("203.0.113.9".parse().unwrap()).is_some(),
            "an acknowledged public /24"
        );
        assert!(
            c.policy.network_rule("127.0.0.1".parse().unwrap()).is_none(),
            "allow replaces the default"
        );
        assert_eq!(
            c.accounts.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(),
            ["main", "ops"]
        );
        assert!(c.policy.senders("main").unwrap().allows("alerts@contoso.com"));
        assert_eq!(c.delivery.limits.messages, 20);
        assert_eq!(c.delivery.limits.window, Duration::from_secs(1));
        assert_eq!(c.delivery.backoff.initial, Duration::from_millis(200));
        assert_eq!(c.delivery.dsn_to.as_deref(), Some("postmaster@contoso.com"));
    }

    #[test]
    fn errors_name_the_line_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let lines_before = format!("default_account = \"main\"\n{ACCOUNT}\n").lines().count();
        let cases = [
            (
                "[relay]\nmax_recipients = 0\n",
                2,
                "relay.max_recipients: must be at least 1",
            ),
            (
                "[relay]\ndata_timeout = \"soon\"\n",
                2,
                "relay.data_timeout: `soon` is not a duration",
            ),
            ("[[relay.allow]]\nnetworks = [\"0.0.0.0/0\"]\n", 2, "open relay"),
            // Two halves are the whole Internet too.
            (
                "[[relay.allow]]\nnetworks = [\"0.0.0.0/1\", \"128.0.0.0/1\"]\npublic = true\n",
                2,
                "`0.0.0.0/1` covers more of the public Internet than a /24",
            ),
            (
                "[[relay.allow]]\nnetworks = [\"203.0.113.0/24\"]\n",
                2,
                "add `public = true` to this rule",
            ),
            (
                "[relay]\nplaintext_auth_networks = [\"203.0.113.7\"]\n",
                2,
                "passwords would cross the Internet in the clear",
            ),
            (
                "[[relay.allow]]\nnetworks = [\"printer\"]\n",
                2,
                "`printer` is not an address or network",
            ),
            (
                "[[relay.allow]]\nnetworks = [\"10.0.0.0/8\"]\naccount = \"nope\"\n",
                3,
                "no account `nope`",
            ),
            (
                "[[relay.users]]\nname = \"u\"\npassword_hash = \"hunter2\"\n",
                3,
                "relay.users[0].password_hash: not a PHC password hash",
            ),
            (
                "[[relay.listen]]\naddress = \"localhost\"\n",
                2,
                "`localhost` is not an address and port",
            ),
            (
                "[[relay.listen]]\naddress = \"127.0.0.1:25\"\ntls = \"yes\"\n",
                3,
                "`yes` is not a TLS mode",
            ),
            (
                "[relay]\ncertificate = \"c.pem\"\n",
                2,
                "relay.certificate: set private_key too",
            ),
            (
                "[relay.delivery]\ndsn_to = \"postmaster\"\n",
                2,
                "relay.delivery.dsn_to",
            ),
            (
                "[relay]\nmax_recipients = 600\n\n[relay.delivery]\nrecipients_per_day = 500\n",
                2,
                "relay.max_recipients: max_recipients (600) is more than delivery.recipients_per_day (500)",
            ),
        ];
        for (relay, line, expected) in cases {
            let err = resolve(dir.path(), relay).unwrap_err().to_string();
            let at = format!("config.toml:{}: ", lines_before + line);
            assert!(err.contains(&at) && err.contains(expected), "{relay:?}: {err}");
        }
        let err = resolve(dir.path(), "[relay]\nport = 25\n").unwrap_err().to_string();
        assert!(err.contains("unknown field `port`"), "{err}");
    }
}
