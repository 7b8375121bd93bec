//! Microsoft's two other SMTP submission services as a tenant sets them up: Exchange Online
//! High Volume Email (HVE) accounts, and Azure Communication Services (ACS) Email resources with
//! their linked domains, MailFrom addresses, role assignments and SMTP usernames.
//!
//! Like the rest of the model, every struct deserialises from the tenant file and has builder
//! methods that produce the same values.

use serde::{Deserialize, Serialize};

/// An HVE account (`New-MailUser -HVEAccount`), with the apps `Add-HVEAppAccess` gave access.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HveAccount {
    /// The account's address, on one of the tenant's verified domains.
    pub address: String,
    /// Client ids given `Add-HVEAppAccess -Identity <address> -AppId <client id>`; Microsoft
    /// allows at most 10 per account.
    #[serde(default)]
    pub apps: Vec<String>,
    /// Password for `AUTH LOGIN`, which Microsoft accepts on HVE until September 2028.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// Microsoft's limit of apps per HVE account (`Add-HVEAppAccess`).
pub const MAX_HVE_APPS: usize = 10;

impl HveAccount {
    /// An account no app may use yet and without a password.
    pub fn new(address: &str) -> Self {
        Self {
            address: address.to_owned(),
            apps: Vec::new(),
            password: None,
        }
    }

    /// `Add-HVEAppAccess` for an app's client id.
    pub fn app(mut self, client_id: &str) -> Self {
        self.apps.push(client_id.to_owned());
        self
    }

    /// Sets the password for basic authentication.
    pub fn password(mut self, password: &str) -> Self {
        self.password = Some(password.to_owned());
        self
    }

    /// Whether `Add-HVEAppAccess` was run for this client id.
    pub fn allows_app(&self, client_id: &str) -> bool {
        self.apps.iter().any(|a| a.eq_ignore_ascii_case(client_id))
    }
}

/// A Communication Services resource with Email connected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcsResource {
    /// The Communication Services resource's name.
    pub name: String,
    /// Email domains connected to the resource ("Connect domain").
    #[serde(default)]
    pub domains: Vec<String>,
    /// MailFrom addresses of the connected domains.
    #[serde(default)]
    pub senders: Vec<String>,
    /// Client ids holding "Communication and Email Service Owner" (or an equivalent custom role)
    /// on the resource.
    #[serde(default)]
    pub role_assignments: Vec<String>,
    /// SMTP Username resources of the Communication Services resource.
    #[serde(default)]
    pub smtp_usernames: Vec<SmtpUsername>,
    /// Messages per minute before `451 4.7.500` (Microsoft's default quota: 30).
    #[serde(default = "default_per_minute")]
    pub messages_per_minute: u32,
    /// Messages per hour before `451 4.7.500` (Microsoft's default quota: 100).
    #[serde(default = "default_per_hour")]
    pub messages_per_hour: u32,
}

fn default_per_minute() -> u32 {
    30
}

fn default_per_hour() -> u32 {
    100
}

impl AcsResource {
    /// A resource with no domain, sender, role or username, and Microsoft's default quota.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            domains: Vec::new(),
            senders: Vec::new(),
            role_assignments: Vec::new(),
            smtp_usernames: Vec::new(),
            messages_per_minute: default_per_minute(),
            messages_per_hour: default_per_hour(),
        }
    }

    /// Connects an email domain.
    pub fn domain(mut self, domain: &str) -> Self {
        self.domains.push(domain.to_owned());
        self
    }

    /// Adds a MailFrom address (on a connected domain).
    pub fn sender(mut self, address: &str) -> Self {
        self.senders.push(address.to_owned());
        self
    }

    /// Assigns the app "Communication and Email Service Owner" on the resource.
    pub fn role_assignment(mut self, client_id: &str) -> Self {
        self.role_assignments.push(client_id.to_owned());
        self
    }

    /// Adds an SMTP Username resource.
    pub fn smtp_username(mut self, username: SmtpUsername) -> Self {
        self.smtp_usernames.push(username);
        self
    }

    /// Sets the per-minute quota.
    pub fn messages_per_minute(mut self, limit: u32) -> Self {
        self.messages_per_minute = limit;
        self
    }

    /// Sets the per-hour quota.
    pub fn messages_per_hour(mut self, limit: u32) -> Self {
        self.messages_per_hour = limit;
        self
    }

    /// Whether `domain` is connected (any case).
    pub fn has_domain(&self, domain: &str) -> bool {
        self.domains.iter().any(|d| d.eq_ignore_ascii_case(domain))
    }

    /// Whether `address` is one of the MailFrom addresses (any case).
    pub fn has_sender(&self, address: &str) -> bool {
        self.senders.iter().any(|s| s.eq_ignore_ascii_case(address))
    }

    /// Whether the app holds a role on the resource.
    pub fn has_role(&self, client_id: &str) -> bool {
        self.role_assignments.iter().any(|r| r.eq_ignore_ascii_case(client_id))
    }

    /// The SMTP username a client logs in with (any case).
    pub fn smtp_username_by_login(&self, username: &str) -> Option<&SmtpUsername> {
        self.smtp_usernames
            .iter()
            .find(|u| u.username.eq_ignore_ascii_case(username))
    }
}

/// An SMTP Username resource: the login name clients send, and the Entra app whose client secret
/// is the password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpUsername {
    /// The SMTP Username resource's name.
    pub name: String,
    /// What the client sends as the login: free-form, or an address on a connected domain.
    pub username: String,
    /// The client id of the linked Entra application.
    pub app_id: String,
    /// The tenant of the linked application; absent means the tenant holding the resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
}

impl SmtpUsername {
    /// An SMTP username linking an app of the resource's own tenant.
    pub fn new(name: &str, username: &str, app_id: &str) -> Self {
        Self {
            name: name.to_owned(),
            username: username.to_owned(),
            app_id: app_id.to_owned(),
            tenant_id: None,
        }
    }

    /// Links an app of another tenant.
    pub fn tenant(mut self, tenant_id: &str) -> Self {
        self.tenant_id = Some(tenant_id.to_owned());
        self
    }
}
