//! What sessions may send, inbound connection limits and timeouts, and delivery to Exchange:
//! every number with its production default (`docs/relay.md`).

use std::time::Duration;

use super::{RawRelay, Reader, system_hostname};
use toml::Spanned;

use crate::account::Account;
use crate::config::{ConfigError, Origin};
use crate::queue::Backoff;
use crate::relay::limits::SendLimits;
use crate::relay::session::{BareLf, Settings};
use crate::relay::settings::{DeliverySettings, Inbound};
use crate::service::Service;

/// What every session is allowed: sizes, recipients, line length, bare LF, the host name.
pub(super) fn session(r: &Reader<'_>, raw: &RawRelay) -> Result<Settings, ConfigError> {
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
    Ok(Settings {
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
    })
}

/// Connection limits and timeouts.
pub(super) fn inbound(r: &Reader<'_>, raw: &RawRelay) -> Result<Inbound, ConfigError> {
    Ok(Inbound {
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
    })
}

/// `[relay.delivery]`: connections, the services' limits, retries, leases, notifications.
pub(super) fn delivery(r: &Reader<'_>, raw: &RawRelay, accounts: &[Account]) -> Result<DeliverySettings, ConfigError> {
    let d = &raw.delivery;
    let defaults = SendLimits::default();
    let windows = SendLimits {
        window: r.duration(d.rate_window.as_ref(), "delivery.rate_window", defaults.window)?,
        hour: r.duration(d.hour_window.as_ref(), "delivery.hour_window", defaults.hour)?,
        day: r.duration(d.day_window.as_ref(), "delivery.day_window", defaults.day)?,
        ..defaults
    };
    let relay_wide = Rates {
        per_minute: d.messages_per_minute.as_ref(),
        per_hour: d.messages_per_hour.as_ref(),
        recipients_per_day: d.recipients_per_day.as_ref(),
        prefix: "delivery.".to_owned(),
    };
    for (name, own) in &d.accounts {
        let first = [
            &own.messages_per_minute,
            &own.messages_per_hour,
            &own.recipients_per_day,
        ]
        .into_iter()
        .find_map(Option::as_ref);
        if let Some(value) = first
            && !accounts.iter().any(|a| &a.name == name)
        {
            return Err(r.invalid(
                value,
                &format!("delivery.accounts.{name}"),
                format!(
                    "no relay rule sends through an account `{name}` (accounts in use: {})",
                    accounts.iter().map(|a| a.name.as_str()).collect::<Vec<_>>().join(", ")
                ),
            ));
        }
    }
    let mut per_account = Vec::with_capacity(accounts.len());
    for account in accounts {
        let service = account.service.value;
        let mut limits = relay_wide.over(r, service_limits(service, windows))?;
        if let Some(own) = d.accounts.get(&account.name) {
            limits = Rates {
                per_minute: own.messages_per_minute.as_ref(),
                per_hour: own.messages_per_hour.as_ref(),
                recipients_per_day: own.recipients_per_day.as_ref(),
                prefix: format!("delivery.accounts.{}.", account.name),
            }
            .over(r, limits)?;
        }
        per_account.push((account.name.clone(), limits));
    }
    Ok(DeliverySettings {
        connections_per_account: r.count(
            d.connections_per_account.as_ref(),
            "delivery.connections_per_account",
            3,
        )? as usize,
        limits: per_account.first().map_or(windows, |(_, l)| *l),
        per_account,
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
                crate::message::check_address(&address).map_err(|e| r.invalid(a, "delivery.dsn_to", e.to_string()))?;
                Some(address)
            }
            None => None,
        },
    })
}

/// A service's published limits (`Service::rates`) in the relay's windows.
fn service_limits(service: Service, windows: SendLimits) -> SendLimits {
    let rates = service.rates();
    SendLimits {
        messages: rates.per_minute.unwrap_or(u32::MAX),
        hourly: rates.per_hour.unwrap_or(u32::MAX),
        recipients: rates.recipients_per_day.unwrap_or(u32::MAX),
        ..windows
    }
}

/// The rate keys of `[relay.delivery]` or of one account's table, each overriding a limit.
struct Rates<'a> {
    per_minute: Option<&'a Spanned<u64>>,
    per_hour: Option<&'a Spanned<u64>>,
    recipients_per_day: Option<&'a Spanned<u64>>,
    prefix: String,
}

impl Rates<'_> {
    /// `base` with the limits these keys set.
    fn over(&self, r: &Reader<'_>, base: SendLimits) -> Result<SendLimits, ConfigError> {
        let count = |value: Option<&Spanned<u64>>, key: &str, default: u32| -> Result<u32, ConfigError> {
            let key = format!("{}{key}", self.prefix);
            Ok(u32::try_from(r.count(value, &key, u64::from(default))?).unwrap_or(u32::MAX))
        };
        Ok(SendLimits {
            messages: count(self.per_minute, "messages_per_minute", base.messages)?,
            hourly: count(self.per_hour, "messages_per_hour", base.hourly)?,
            recipients: count(self.recipients_per_day, "recipients_per_day", base.recipients)?,
            ..base
        })
    }
}

/// A message the mailbox could never send in a day would wait forever.
pub(super) fn check_recipients(
    r: &Reader<'_>,
    raw: &RawRelay,
    session: &Settings,
    delivery: &DeliverySettings,
) -> Result<(), ConfigError> {
    let d = &raw.delivery;
    let Some(day) = delivery.per_account.iter().map(|(_, l)| l.recipients).min() else {
        return Ok(());
    };
    if session.max_recipients > day as usize {
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
                session.max_recipients, day
            ),
        ));
    }
    Ok(())
}
