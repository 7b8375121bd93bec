//! The account: who sends (tenant, application, mailbox, the addresses it may send as), with
//! what credential, over which transport. Configuration builds it once, validated; `send`, the
//! relay, `doctor` and `token` read it. One rule says how close its credential is to expiring.

use std::fmt;
use std::path::PathBuf;

use crate::clock::Timestamp;
use crate::oauth::{AssertionStyle, ClientCredential, Cloud, TokenSource};
use crate::secret::Secret;
use crate::service::Service;
use crate::setting::{Origin, Setting};
use crate::smtp::{Credentials, Target};

/// How the account authenticates to SMTP.
#[derive(Debug, Clone)]
pub(crate) enum AccountAuth {
    /// OAuth 2.0 client credentials and `AUTH XOAUTH2`.
    OAuth {
        /// Secret or certificate.
        credential: ClientCredential,
        /// Where the credential came from (for `config check`).
        origin: Origin,
    },
    /// A password with `AUTH PLAIN`/`LOGIN`, for servers that still take one.
    Password {
        /// Login.
        user: String,
        /// Password.
        password: Secret,
    },
}

/// How messages go to Exchange Online.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    /// SMTP client submission with `AUTH XOAUTH2` (port 587).
    Smtp,
    /// Microsoft Graph `sendMail` over HTTPS (port 443), the MIME form.
    Graph,
}

/// A resolved, validated account.
#[derive(Debug, Clone)]
pub(crate) struct Account {
    /// Its name in the config file (`default` without one).
    pub(crate) name: String,
    /// Tenant id or verified domain (absent when a full token endpoint is given).
    pub(crate) tenant: Option<Setting<String>>,
    /// Application (client) id.
    pub(crate) client_id: Option<Setting<String>>,
    /// The mailbox that authenticates (XOAUTH2 `user=`).
    pub(crate) mailbox: Setting<String>,
    /// From address used when a message has none: `from`, else the mailbox.
    pub(crate) default_from: String,
    /// Addresses the account may send as besides the mailbox (SendAs grants).
    pub(crate) allowed_senders: Vec<String>,
    /// Cloud preset.
    pub(crate) cloud: Cloud,
    /// The Microsoft service it submits to.
    pub(crate) service: Setting<Service>,
    /// ACS: the SMTP Username resource's user name, which authenticates in place of the mailbox.
    pub(crate) smtp_username: Option<Setting<String>>,
    /// HVE: the tenant's accepted domains, the only ones it delivers to; empty when not known.
    pub(crate) internal_domains: Vec<String>,
    /// Token endpoint URL.
    pub(crate) token_endpoint: Setting<String>,
    /// Token scope.
    pub(crate) scope: Setting<String>,
    /// SMTP server.
    pub(crate) smtp: Target,
    /// How messages go to Exchange.
    pub(crate) transport: Transport,
    /// Microsoft Graph root (the cloud's, or the emulator's), without a trailing slash.
    pub(crate) graph_url: String,
    /// Graph: keep a copy in the mailbox's Sent Items.
    pub(crate) save_to_sent_items: bool,
    /// Extra trust anchors.
    pub(crate) ca_file: Option<PathBuf>,
    /// How to authenticate.
    pub(crate) auth: AccountAuth,
    /// Client assertion style for certificates.
    pub(crate) assertion_style: AssertionStyle,
    /// Send the certificate chain in assertions.
    pub(crate) send_x5c: bool,
    /// When the client secret expires (Entra shows it; the secret itself does not carry it).
    pub(crate) secret_expires: Option<Setting<time::Date>>,
}

impl Account {
    /// When the credential stops working, and what it is: a client secret (its expiry from the
    /// configuration, since the secret does not carry it) or a certificate (`notAfter`).
    /// Federated tokens rotate and passwords do not expire here: `None`.
    pub(crate) fn credential_expiry(&self) -> Option<CredentialExpiry> {
        let AccountAuth::OAuth { credential, origin } = &self.auth else {
            return None;
        };
        match credential {
            ClientCredential::Secret(_) => self.secret_expires.as_ref().map(|date| CredentialExpiry {
                credential: CredentialKind::ClientSecret,
                at: Timestamp::from_datetime(date.value.midnight().assume_utc()),
                origin: date.origin.clone(),
            }),
            ClientCredential::Certificate(cert) => Some(CredentialExpiry {
                credential: CredentialKind::Certificate,
                at: cert.not_after,
                origin: origin.clone(),
            }),
            ClientCredential::FederatedTokenFile(_) | ClientCredential::ManagedIdentity(_) => None,
        }
    }

    /// What to ask the token endpoint for, for OAuth accounts (ACS with a client secret too:
    /// sending does not need the token, but `doctor` and `token` check the secret with it).
    pub(crate) fn token_source(&self) -> Option<TokenSource> {
        let AccountAuth::OAuth { credential, .. } = &self.auth else {
            return None;
        };
        Some(TokenSource {
            token_endpoint: self.token_endpoint.value.clone(),
            client_id: self.client_id.as_ref().map(|c| c.value.clone()).unwrap_or_default(),
            scope: self.scope.value.clone(),
            credential: credential.clone(),
            assertion_style: self.assertion_style,
            send_x5c: self.send_x5c,
            minimum_validity: self.service.value.minimum_token_validity(),
        })
    }

    /// Whether sending needs a token: OAuth, except ACS with a client secret, whose SMTP server
    /// takes the secret itself (`AUTH LOGIN` with the SMTP Username).
    pub(crate) fn needs_token(&self) -> bool {
        matches!(self.auth, AccountAuth::OAuth { .. }) && self.login_secret().is_none()
    }

    /// ACS with a client secret: the secret is the SMTP password.
    fn login_secret(&self) -> Option<&Secret> {
        match &self.auth {
            AccountAuth::OAuth {
                credential: ClientCredential::Secret(secret),
                ..
            } if self.service.value == Service::Acs => Some(secret),
            _ => None,
        }
    }

    /// The name SMTP authenticates: ACS's SMTP Username, else the mailbox.
    pub(crate) fn sasl_user(&self) -> &str {
        self.smtp_username.as_ref().map_or(&self.mailbox.value, |u| &u.value)
    }

    /// What to authenticate to SMTP with, given the current token when [`Account::needs_token`];
    /// `None` when a token is needed and there is none.
    pub(crate) fn smtp_credentials(&self, token: Option<&Secret>) -> Option<Credentials> {
        if let Some(secret) = self.login_secret() {
            return Some(Credentials::Password {
                user: self.sasl_user().to_owned(),
                password: secret.clone(),
            });
        }
        match &self.auth {
            AccountAuth::Password { user, password } => Some(Credentials::Password {
                user: user.clone(),
                password: password.clone(),
            }),
            AccountAuth::OAuth { .. } => token.map(|token| Credentials::XOAuth2 {
                user: self.sasl_user().to_owned(),
                token: token.clone(),
            }),
        }
    }

    /// The recipients HVE would refuse: those outside `internal_domains`, when they are known.
    pub(crate) fn external_recipients<'a>(&self, recipients: &'a [String]) -> Vec<&'a str> {
        if self.internal_domains.is_empty() {
            return Vec::new();
        }
        recipients
            .iter()
            .filter(|r| !is_internal(&self.internal_domains, r))
            .map(String::as_str)
            .collect()
    }

    /// Whether `address` may appear as sender: the mailbox or an allowed sender.
    pub(crate) fn may_send_as(&self, address: &str) -> bool {
        address.eq_ignore_ascii_case(&self.mailbox.value)
            || self.allowed_senders.iter().any(|a| a.eq_ignore_ascii_case(address))
    }
}

/// Whether `address` is on one of `domains` (exactly: an accepted domain does not take in its
/// subdomains unless it is listed itself).
pub(crate) fn is_internal(domains: &[String], address: &str) -> bool {
    address
        .rsplit_once('@')
        .is_some_and(|(_, domain)| domains.iter().any(|d| d.eq_ignore_ascii_case(domain)))
}

/// The kind of credential that expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CredentialKind {
    /// A client secret: its expiry is configured (`client_secret_expires`).
    ClientSecret,
    /// A certificate: its `notAfter`.
    Certificate,
}

impl fmt::Display for CredentialKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CredentialKind::ClientSecret => "client secret",
            CredentialKind::Certificate => "certificate",
        })
    }
}

/// When an account's credential stops working.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CredentialExpiry {
    /// What expires.
    pub(crate) credential: CredentialKind,
    /// When.
    pub(crate) at: Timestamp,
    /// Where it is configured.
    pub(crate) origin: Origin,
}

/// How close a credential is to expiring: the one rule for secrets and certificates, used by
/// the configuration's warnings, `doctor`, the relay's log and its metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expiry {
    /// More than 30 days left.
    Distant,
    /// 30 days or less: time to create the next one.
    Soon {
        /// Whole days left.
        days: i64,
    },
    /// 7 days or less: renew it now.
    Imminent {
        /// Whole days left.
        days: i64,
    },
    /// It no longer works: every token request fails until a new one is configured.
    Expired,
}

impl Expiry {
    /// How urgent it is, from 0 (distant) to 3 (expired): the relay logs each level once.
    pub(crate) fn urgency(self) -> u8 {
        match self {
            Expiry::Distant => 0,
            Expiry::Soon { .. } => 1,
            Expiry::Imminent { .. } => 2,
            Expiry::Expired => 3,
        }
    }
}

impl CredentialExpiry {
    /// How close it is at `now`. Days are counted between calendar dates (UTC), as Entra and
    /// certificates show them: a secret "expires 2027-06-30" has 10 days left on 2027-06-20.
    pub(crate) fn at(&self, now: Timestamp) -> Expiry {
        let days = self.days_left(now);
        match days {
            _ if self.seconds_left(now) <= 0 => Expiry::Expired,
            ..=7 => Expiry::Imminent { days },
            8..=30 => Expiry::Soon { days },
            _ => Expiry::Distant,
        }
    }

    /// Calendar days left at `now` (negative once past).
    pub(crate) fn days_left(&self, now: Timestamp) -> i64 {
        now.days_until(self.at)
    }

    /// Seconds left at `now` (negative once expired).
    pub(crate) fn seconds_left(&self, now: Timestamp) -> i64 {
        now.secs_until(self.at)
    }

    /// One sentence on it at `now`, or `None` while it is distant.
    pub(crate) fn warning(&self, now: Timestamp) -> Option<String> {
        let (what, date) = (self.credential, self.at.date());
        match self.at(now) {
            Expiry::Distant => None,
            Expiry::Soon { days } => Some(format!(
                "the {what} expires in {days} days ({date}): create a new one and configure it before then"
            )),
            Expiry::Imminent { days } => Some(format!("the {what} expires in {days} days ({date}): renew it now")),
            Expiry::Expired => Some(format!(
                "the {what} expired on {date}: every token request fails until a new one is configured"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_rule_for_every_credential_at_30_days_7_days_and_expiry() {
        let now = Timestamp::from_datetime(time::macros::datetime!(2027-06-20 12:00 UTC));
        for credential in [CredentialKind::ClientSecret, CredentialKind::Certificate] {
            let expiry = |days: i64, seconds: i64| CredentialExpiry {
                credential,
                at: Timestamp::from_unix_secs(now.unix_secs() + days * 86_400 + seconds),
                origin: Origin::Default,
            };
            assert_eq!(expiry(31, 0).at(now), Expiry::Distant);
            assert_eq!(expiry(30, 0).at(now), Expiry::Soon { days: 30 });
            assert_eq!(expiry(8, 0).at(now), Expiry::Soon { days: 8 });
            assert_eq!(expiry(7, 0).at(now), Expiry::Imminent { days: 7 });
            // Later today: 0 days left, not yet expired.
            assert_eq!(expiry(0, 1).at(now), Expiry::Imminent { days: 0 });
            assert_eq!(expiry(0, 0).at(now), Expiry::Expired);
            assert_eq!(expiry(-3, 0).at(now), Expiry::Expired);
            assert!(expiry(31, 0).warning(now).is_none());
            assert!(expiry(5, 0).warning(now).unwrap().ends_with(": renew it now"));
            assert!(
                expiry(-3, 0)
                    .warning(now)
                    .unwrap()
                    .contains(&format!("the {credential} expired on"))
            );
        }
    }
}
