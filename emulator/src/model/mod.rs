//! What the emulator emulates: tenants, the knobs of the two services, and injected faults.
//!
//! A [`Scenario`] comes from a tenant file (TOML, see `docs/emulator.md`) or is built in code with
//! the same types. [`Scenario::load`] resolves certificate files and validates everything, naming
//! the offending field, before a server starts.

mod services;
mod settings;
mod tenant;
mod validate;

use std::path::Path;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub use services::{AcsResource, HveAccount, MAX_HVE_APPS, SmtpUsername};
pub use settings::{AcsSettings, EntraSettings, ExchangeSettings, HveSettings, Latency};
pub use tenant::{
    APPLICATION_ROLES, AccessRight, Api, App, AppCertificate, ApplicationAccessPolicy, BasicAuth, ClientSecret,
    DIRECTORY_ROLES, DirectoryUser, ExchangeServicePrincipal, FederatedCredential, Mailbox, ManagedIdentity,
    ManagementRoleAssignment, Permission, SMTP_SEND_AS_APP_ROLE, Tenant,
};
pub(crate) use validate::is_dns_name;
pub use validate::{Generated, ScenarioError};

use crate::faults::Fault;

/// Everything the emulator serves.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Token endpoint knobs.
    #[serde(default)]
    pub entra: EntraSettings,
    /// SMTP behaviour and Exchange Online's limits.
    #[serde(default)]
    pub exchange: ExchangeSettings,
    /// Limits of Exchange Online High Volume Email.
    #[serde(default)]
    pub hve: HveSettings,
    /// Azure Communication Services Email SMTP knobs.
    #[serde(default)]
    pub acs: AcsSettings,
    /// Injected latency.
    #[serde(default)]
    pub latency: Latency,
    /// The tenants.
    #[serde(default)]
    pub tenants: Vec<Tenant>,
    /// Faults active from the start (more can be added at run time).
    #[serde(default)]
    pub faults: Vec<Fault>,
    /// OIDC issuers the emulator signs tokens for, standing in for a Kubernetes cluster or
    /// another identity provider in workload identity federation.
    #[serde(default)]
    pub issuers: Vec<String>,
}

impl Scenario {
    /// A scenario with these tenants and default settings.
    pub fn new(tenants: Vec<Tenant>) -> Self {
        Self {
            tenants,
            ..Self::default()
        }
    }

    /// Reads, resolves and validates a tenant file.
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut scenario: Scenario = toml::from_str(&text).map_err(|e| ScenarioError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        scenario.resolve(path.parent().unwrap_or(Path::new(".")))?;
        Ok(scenario)
    }

    /// Parses tenant-file text; certificate paths are taken relative to `base_dir`.
    pub fn from_toml(text: &str, base_dir: &Path) -> Result<Self, ScenarioError> {
        let mut scenario: Scenario = toml::from_str(text).map_err(|e| ScenarioError::Parse {
            path: "<text>".into(),
            message: e.to_string(),
        })?;
        scenario.resolve(base_dir)?;
        Ok(scenario)
    }

    /// The tenant a token-endpoint path segment or a mailbox domain names.
    pub fn tenant(&self, name: &str) -> Option<&Tenant> {
        self.tenants.iter().find(|t| t.answers_to(name))
    }

    /// The tenant and mailbox for an address, searching every tenant.
    pub fn mailbox(&self, address: &str) -> Option<(&Tenant, &Mailbox)> {
        self.tenants
            .iter()
            .find_map(|t| t.mailbox_by_address(address).map(|m| (t, m)))
    }

    /// The tenant and HVE account for an address, searching every tenant.
    pub fn hve_account(&self, address: &str) -> Option<(&Tenant, &HveAccount)> {
        self.tenants
            .iter()
            .find_map(|t| t.hve_account_by_address(address).map(|a| (t, a)))
    }

    /// The SMTP username clients log in with (any case), with its Communication Services
    /// resource and the tenant holding the resource, searching every tenant.
    pub fn smtp_username(&self, username: &str) -> Option<(&Tenant, &AcsResource, &SmtpUsername)> {
        self.tenants.iter().find_map(|t| {
            t.acs_resources
                .iter()
                .find_map(|r| r.smtp_username_by_login(username).map(|u| (t, r, u)))
        })
    }
}

/// A point in time in the tenant file: a TOML datetime (`2027-06-30T00:00:00Z`), a date
/// (`2027-06-30`, midnight UTC) or an RFC 3339 string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(pub OffsetDateTime);

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let text = self
            .0
            .format(&time::format_description::well_known::Rfc3339)
            .map_err(serde::ser::Error::custom)?;
        serializer.serialize_str(&text)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Toml(toml::value::Datetime),
            Text(String),
        }
        let text = match Raw::deserialize(deserializer)? {
            Raw::Toml(datetime) => datetime.to_string(),
            Raw::Text(text) => text,
        };
        parse_timestamp(&text).map(Timestamp).map_err(serde::de::Error::custom)
    }
}

fn parse_timestamp(text: &str) -> Result<OffsetDateTime, String> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(t);
    }
    let date_only = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(text, &date_only)
        .map(|d| d.midnight().assume_utc())
        .map_err(|_| format!("`{text}` is not a date-time like 2027-06-30T00:00:00Z or a date like 2027-06-30"))
}
