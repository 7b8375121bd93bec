//! Knobs of the emulated services: the `[entra]`, `[exchange]`, `[hve]`, `[acs]` and `[latency]`
//! tables of the tenant file. Defaults are Microsoft's documented values (fact sheet §5.1, §8).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Token endpoint knobs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EntraSettings {
    /// `expires_in` of issued tokens, in seconds (Entra: 3599 for app-only tokens).
    pub token_lifetime_secs: u32,
    /// `refresh_in` to include in token responses; Entra sends it only for long-lived tokens.
    pub refresh_in_secs: Option<u32>,
    /// `interval` of the device authorization grant: a client polling sooner is told
    /// `slow_down` (Entra: 5 seconds).
    pub device_code_interval_secs: u32,
    /// `expires_in` of a device code (Entra: 900 seconds).
    pub device_code_lifetime_secs: u32,
}

impl Default for EntraSettings {
    fn default() -> Self {
        Self {
            token_lifetime_secs: 3599,
            refresh_in_secs: None,
            device_code_interval_secs: 5,
            device_code_lifetime_secs: 900,
        }
    }
}

/// Exchange Online SMTP knobs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExchangeSettings {
    /// Front-end server name in the banner, EHLO reply and error brackets.
    pub frontend_host: String,
    /// Mailbox server name in `[Hostname=…]` of submission replies.
    pub mailbox_host: String,
    /// Maximum message size a mailbox may send (`MaxSendSize`, 35 MB by default). EHLO still
    /// advertises `SIZE 157286400`, as Exchange Online does.
    pub max_message_size: u64,
    /// Recipients per message (`RecipientLimits`, 500 by default).
    pub max_recipients_per_message: u32,
    /// Concurrent authenticated connections per mailbox before `432 4.3.2`.
    pub max_connections_per_mailbox: u32,
    /// Messages per minute per mailbox; beyond it submissions are delayed, not refused.
    pub messages_per_minute: u32,
    /// Recipients per rolling 24 hours per mailbox before `554 5.2.0`.
    pub recipients_per_day: u32,
    /// Speeds up the rate windows: with 60, a "minute" lasts one second and a "day" 24 minutes.
    pub time_scale: f64,
    /// Longest command line accepted (the AUTH line with an initial response is the longest).
    /// Exchange Online takes AUTH lines of several kilobytes; set 512 to behave like a server
    /// that enforces RFC 4954's limit. SASL response lines may always be 12,288 octets.
    pub max_line_length: usize,
    /// Seconds a connection may sit idle before the server closes it.
    pub idle_timeout_secs: u64,
}

impl Default for ExchangeSettings {
    fn default() -> Self {
        Self {
            frontend_host: "MW4PR04CA0001.namprd04.prod.outlook.com".to_owned(),
            mailbox_host: "MW4PR04MB7315.namprd04.prod.outlook.com".to_owned(),
            max_message_size: 35 * 1024 * 1024,
            max_recipients_per_message: 500,
            max_connections_per_mailbox: 3,
            messages_per_minute: 30,
            recipients_per_day: 10_000,
            time_scale: 1.0,
            max_line_length: 32 * 1024,
            idle_timeout_secs: 600,
        }
    }
}

impl ExchangeSettings {
    /// Length of the message-rate window after scaling.
    pub fn minute(&self) -> Duration {
        self.scaled(60.0)
    }

    /// Length of an hour after scaling (the hourly quota of Communication Services).
    pub fn hour(&self) -> Duration {
        self.scaled(3_600.0)
    }

    /// Length of the recipient-rate window after scaling.
    pub fn day(&self) -> Duration {
        self.scaled(86_400.0)
    }

    fn scaled(&self, secs: f64) -> Duration {
        let scale = if self.time_scale > 0.0 { self.time_scale } else { 1.0 };
        Duration::from_secs_f64(secs / scale)
    }
}

/// Exchange Online High Volume Email knobs (the preview limits Microsoft published). Its rate
/// windows follow `[exchange] time_scale`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HveSettings {
    /// Recipients per message before `452 4.5.3`.
    pub max_recipients_per_message: u32,
    /// Largest message, in octets, before `552 5.3.4`.
    pub max_message_size: u64,
    /// Recipients per rolling (scaled) day for the whole tenant before `554 5.2.0`.
    pub recipients_per_day: u32,
    /// A token with less than this many seconds left is refused with `501 5.5.127 … Token will
    /// expire soon` (about ten minutes, as reported).
    pub token_refused_within_secs: u32,
}

impl Default for HveSettings {
    fn default() -> Self {
        Self {
            max_recipients_per_message: 50,
            max_message_size: 10 * 1024 * 1024,
            recipients_per_day: 100_000,
            token_refused_within_secs: 600,
        }
    }
}

/// Azure Communication Services Email SMTP knobs. The per-resource message quotas are fields of
/// each resource; their windows follow `[exchange] time_scale`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AcsSettings {
    /// Server name in the banner, the EHLO reply and `[Hostname=…]` (the real one is not
    /// recorded; assumed).
    pub frontend_host: String,
    /// Recipients per message before `452 4.5.3`.
    pub max_recipients_per_message: u32,
    /// Largest message, in octets, before `552 5.3.4`.
    pub max_message_size: u64,
}

impl Default for AcsSettings {
    fn default() -> Self {
        Self {
            frontend_host: "smtp.azurecomm.net".to_owned(),
            max_recipients_per_message: 50,
            max_message_size: 10 * 1024 * 1024,
        }
    }
}

/// Latency added to every exchange, so benchmarks see the cost of round trips.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Latency {
    /// Added once per flight of SMTP commands: when the server has answered everything it has
    /// and new input arrives. Pipelined commands share one delay, as they share one network
    /// round trip.
    pub smtp_command_ms: u64,
    /// Added to every HTTP request.
    pub http_request_ms: u64,
}
