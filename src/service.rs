//! The Microsoft service an account submits to (fact sheet §8): a mailbox on Exchange Online,
//! High Volume Email, or Azure Communication Services Email. Each has its own SMTP host, token
//! scope and rules; the presets are here, and every one of them can be overridden by the
//! account's own fields. `docs/services.md` says which facts are sourced and which assumed.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::oauth::Cloud;
use crate::oauth::provider::MINIMUM_VALIDITY;

/// Where an account's mail goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Service {
    /// A mailbox on Exchange Online (`smtp.office365.com`, or Graph).
    #[default]
    Exchange,
    /// Exchange Online High Volume Email: internal recipients only.
    Hve,
    /// Azure Communication Services Email.
    Acs,
}

/// HVE's SMTP host (Microsoft Learn; third-party guides name `smtp.hve.mx.microsoft` as its
/// newer name, which `smtp_host` may set).
const HVE_HOST: &str = "smtp-hve.office365.com";
/// ACS Email's SMTP host (Microsoft Learn, "Send email with SMTP").
const ACS_HOST: &str = "smtp.azurecomm.net";
/// ACS's XOAUTH2 scope (Microsoft Learn, "SMTP authentication").
const ACS_SCOPE: &str = "https://communication.azure.com/.default";
/// HVE refuses a token "that will expire soon" (`501 5.5.127`), about 10 minutes before its
/// expiry by a report on sasl-xoauth2; 15 minutes keeps a margin.
const HVE_MINIMUM_VALIDITY: Duration = Duration::from_secs(15 * 60);

impl Service {
    /// Its name in Microsoft's words.
    pub(crate) fn title(self) -> &'static str {
        match self {
            Service::Exchange => "Exchange",
            Service::Hve => "High Volume Email",
            Service::Acs => "Azure Communication Services",
        }
    }

    /// Its SMTP host in `cloud`.
    pub(crate) fn smtp_host(self, cloud: Cloud) -> &'static str {
        match self {
            Service::Exchange => cloud.endpoints().smtp_host,
            Service::Hve => HVE_HOST,
            Service::Acs => ACS_HOST,
        }
    }

    /// The scope of its XOAUTH2 tokens in `cloud`.
    pub(crate) fn smtp_scope(self, cloud: Cloud) -> String {
        match self {
            Service::Exchange | Service::Hve => cloud.exchange_scope(),
            Service::Acs => ACS_SCOPE.to_owned(),
        }
    }

    /// The least time a token must have left when it is presented.
    pub(crate) fn minimum_token_validity(self) -> Duration {
        match self {
            Service::Hve => HVE_MINIMUM_VALIDITY,
            Service::Exchange | Service::Acs => MINIMUM_VALIDITY,
        }
    }

    /// Recipients one message may have (Exchange's `RecipientLimits` default; HVE and ACS: 50).
    pub(crate) fn max_recipients_per_message(self) -> usize {
        match self {
            Service::Exchange => 500,
            Service::Hve | Service::Acs => 50,
        }
    }

    /// The largest message it takes, in octets (Exchange: the mailbox's `MaxSendSize` default,
    /// 35 MB; HVE and ACS: 10 MB).
    pub(crate) fn max_message_size(self) -> usize {
        match self {
            Service::Exchange => 35 * 1024 * 1024,
            Service::Hve | Service::Acs => 10 * 1024 * 1024,
        }
    }

    /// Its sending limits: messages a minute, messages an hour, recipients a day; `None` where
    /// it has none (HVE publishes no message rate; ACS no daily recipient limit).
    pub(crate) fn rates(self) -> Rates {
        match self {
            Service::Exchange => Rates {
                per_minute: Some(30),
                per_hour: None,
                recipients_per_day: Some(10_000),
            },
            Service::Hve => Rates {
                per_minute: None,
                per_hour: None,
                recipients_per_day: Some(100_000),
            },
            Service::Acs => Rates {
                per_minute: Some(30),
                per_hour: Some(100),
                recipients_per_day: None,
            },
        }
    }

    /// Whether it exists in `cloud`: HVE and ACS Email are documented for the worldwide cloud
    /// only (assumed absent elsewhere until Microsoft says otherwise).
    pub(crate) fn available_in(self, cloud: Cloud) -> bool {
        self == Service::Exchange || cloud == Cloud::Global
    }
}

/// A service's published sending limits (fact sheet §5.1 and §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rates {
    /// Messages a minute.
    pub(crate) per_minute: Option<u32>,
    /// Messages an hour.
    pub(crate) per_hour: Option<u32>,
    /// Recipients in a rolling day (HVE: per tenant, held here per account).
    pub(crate) recipients_per_day: Option<u32>,
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Service::Exchange => "exchange",
            Service::Hve => "hve",
            Service::Acs => "acs",
        })
    }
}

impl FromStr for Service {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "exchange" | "exchange-online" | "mailbox" => Ok(Service::Exchange),
            "hve" | "high-volume-email" => Ok(Service::Hve),
            "acs" | "azure-communication-services" => Ok(Service::Acs),
            _ => Err(format!("unknown service `{s}`: expected exchange, hve or acs")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The presets against fact sheet §8.
    #[test]
    fn presets_match_the_fact_sheet() {
        let g = Cloud::Global;
        assert_eq!(Service::Exchange.smtp_host(g), "smtp.office365.com");
        assert_eq!(Service::Hve.smtp_host(g), "smtp-hve.office365.com");
        assert_eq!(Service::Acs.smtp_host(g), "smtp.azurecomm.net");
        assert_eq!(Service::Hve.smtp_scope(g), "https://outlook.office365.com/.default");
        assert_eq!(Service::Acs.smtp_scope(g), "https://communication.azure.com/.default");
        assert_eq!(Service::Exchange.smtp_host(Cloud::GccHigh), "smtp.office365.us");
        assert!(Service::Hve.minimum_token_validity() > Duration::from_secs(10 * 60));
        assert!(!Service::Acs.available_in(Cloud::China));
    }

    #[test]
    fn names_read_back() {
        for s in [Service::Exchange, Service::Hve, Service::Acs] {
            assert_eq!(s.to_string().parse::<Service>(), Ok(s));
        }
        assert_eq!("High_Volume_Email".parse::<Service>(), Ok(Service::Hve));
        assert!(
            "smtp"
                .parse::<Service>()
                .unwrap_err()
                .contains("expected exchange, hve or acs")
        );
    }
}
