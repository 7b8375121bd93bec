//! Azure Communication Services Email (`smtp.azurecomm.net:587`, fact sheet §8): an SMTP
//! endpoint of the same shape as Exchange's (the dialogue is ASSUMED; nobody has published a
//! transcript) with ACS's own rules.
//!
//! - `AUTH LOGIN`: the user name is an *SMTP Username* resource; the password is a client secret
//!   of the Entra app it links; the app needs a role on the Communication Services resource.
//!   Every failure is `535 5.7.3 Authentication unsuccessful` (reported in jstedfast/MailKit#1967).
//! - `AUTH XOAUTH2`: a token for `https://communication.azure.com` of the linked app; `user=` is
//!   the SMTP username (ASSUMED).
//! - Senders: a linked domain (`550 5.1.7 The specified sender domain has not been linked.`,
//!   reported in MicrosoftDocs/azure-docs#123379), and a MailFrom address of it (ASSUMED reply).
//! - The resource's quota (30 a minute, 100 an hour by default): `451 4.7.500` (ASSUMED reply).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use time::OffsetDateTime;

use super::auth::{self, Authenticated, Verdict};
use super::endpoint::Refusal;
use super::limits::elapsed;
use super::reply::{self, Wire};
use crate::model::{AcsResource, Scenario, SmtpUsername, Tenant};
use crate::pki::TokenSigningKey;
use crate::store::Identity;

/// The audience of Communication Services tokens.
pub(crate) const AUDIENCE: &str = "https://communication.azure.com";

/// `535 5.7.3`, without Exchange's bracketed tag (as reported in jstedfast/MailKit#1967).
pub(crate) fn auth_failed() -> Wire {
    reply::line(535, "5.7.3 Authentication unsuccessful")
}

/// `550 5.1.7`: text reported in MicrosoftDocs/azure-docs#123379; the code 550 is assumed.
fn domain_not_linked() -> Wire {
    reply::line(550, "5.1.7 The specified sender domain has not been linked.")
}

/// `550 5.1.8`: ASSUMED text.
fn not_a_mail_from_address() -> Wire {
    reply::line(
        550,
        "5.1.8 The sender address is not a MailFrom address of the linked domain",
    )
}

/// `451 4.7.500`: ASSUMED text (the quota itself is documented).
fn quota_exhausted() -> Wire {
    reply::line(
        451,
        "4.7.500 Server busy: the email quota of the Communication Services resource is exhausted, try again later",
    )
}

fn refuse(reason: &'static str) -> Verdict {
    Verdict::Refuse {
        reply: auth_failed(),
        reason,
    }
}

/// The tenant of the app an SMTP username links: its own `tenant_id`, else the resource's.
fn linked_tenant<'a>(scenario: &'a Scenario, holder: &'a Tenant, user: &SmtpUsername) -> Option<&'a Tenant> {
    match &user.tenant_id {
        Some(id) => scenario.tenants.iter().find(|t| t.id.eq_ignore_ascii_case(id)),
        None => Some(holder),
    }
}

fn accepted(tenant: &Tenant, resource: &AcsResource, user: &SmtpUsername, identity: Identity) -> Verdict {
    Verdict::Accept(Authenticated {
        tenant_id: tenant.id.clone(),
        mailbox: user.username.clone(),
        identity,
        trustees: Vec::new(),
        rbac_scope: Vec::new(),
        acs_resource: Some(resource.name.clone()),
    })
}

/// Decides `AUTH LOGIN` on the ACS endpoint.
pub(crate) fn login(scenario: &Scenario, now: OffsetDateTime, user: &str, password: &str) -> Verdict {
    let Some((holder, resource, smtp)) = scenario.smtp_username(user) else {
        // A mailbox and its password belong to Exchange (ASSUMED reply).
        if scenario.mailbox(user).is_some() {
            return Verdict::Refuse {
                reply: reply::basic_auth_retired(),
                reason: "mailbox credentials on Communication Services",
            };
        }
        return refuse("unknown SMTP username");
    };
    let Some(app) = linked_tenant(scenario, holder, smtp).and_then(|t| t.app_by_client_id(&smtp.app_id)) else {
        return refuse("linked app not found");
    };
    if !app.enabled {
        return refuse("linked app disabled");
    }
    let Some(secret) = app.secrets.iter().find(|s| s.value == password) else {
        return refuse("wrong client secret");
    };
    if secret.expires.is_some_and(|e| e.0 <= now) {
        return refuse("client secret expired");
    }
    if !resource.has_role(&app.client_id) {
        return refuse("app has no role on the Communication Services resource");
    }
    let identity = Identity::AcsLogin {
        smtp_username: smtp.username.clone(),
        client_id: app.client_id.to_ascii_lowercase(),
    };
    accepted(holder, resource, smtp, identity)
}

/// Decides `AUTH XOAUTH2` on the ACS endpoint.
pub(crate) fn xoauth2(scenario: &Scenario, key: &TokenSigningKey, now: OffsetDateTime, encoded: &str) -> Verdict {
    let (user, claims) = match auth::verified_xoauth2(key, now, encoded) {
        Ok(verified) => verified,
        Err(reason) => return refuse(reason),
    };
    if !claims.aud.trim_end_matches('/').eq_ignore_ascii_case(AUDIENCE) {
        return refuse("token audience is not Communication Services");
    }
    let Some((holder, resource, smtp)) = scenario.smtp_username(&user) else {
        return refuse("unknown SMTP username");
    };
    let tenant_matches = linked_tenant(scenario, holder, smtp).is_some_and(|t| t.id.eq_ignore_ascii_case(&claims.tid));
    if !tenant_matches || !smtp.app_id.eq_ignore_ascii_case(&claims.appid) {
        return refuse("token is not of the SMTP username's app");
    }
    if !resource.has_role(&claims.appid) {
        return refuse("app has no role on the Communication Services resource");
    }
    let identity = Identity::Xoauth2 {
        client_id: claims.appid,
        service_principal_id: claims.oid,
    };
    accepted(holder, resource, smtp, identity)
}

/// The resource a session authenticated for, as the scenario has it now.
fn resource<'a>(scenario: &'a Scenario, auth: &Authenticated) -> Option<&'a AcsResource> {
    let name = auth.acs_resource.as_deref()?;
    scenario
        .tenants
        .iter()
        .find(|t| t.id == auth.tenant_id)?
        .acs_resources
        .iter()
        .find(|r| r.name.eq_ignore_ascii_case(name))
}

/// Every sender (envelope, From header) must be a MailFrom address of a linked domain.
pub(crate) fn sender_refusal(scenario: &Scenario, auth: &Authenticated, senders: &[String]) -> Option<Refusal> {
    let resource = resource(scenario, auth);
    senders.iter().find_map(|sender| {
        let domain = sender.rsplit_once('@').map_or("", |(_, d)| d);
        if !resource.is_some_and(|r| r.has_domain(domain)) {
            Some(Refusal {
                reply: domain_not_linked(),
                reason: "sender domain not linked",
            })
        } else if !resource.is_some_and(|r| r.has_sender(sender)) {
            Some(Refusal {
                reply: not_a_mail_from_address(),
                reason: "not a MailFrom address",
            })
        } else {
            None
        }
    })
}

/// Admits one message under the resource's per-minute and per-hour quota, or refuses it.
pub(crate) fn admit(
    scenario: &Scenario,
    quota: &ResourceQuota,
    auth: &Authenticated,
    now: OffsetDateTime,
) -> Result<(), Refusal> {
    let (per_minute, per_hour) =
        resource(scenario, auth).map_or((30, 100), |r| (r.messages_per_minute, r.messages_per_hour));
    let key = format!(
        "{}/{}",
        auth.tenant_id,
        auth.acs_resource.as_deref().unwrap_or_default()
    );
    let windows = Windows {
        per_minute,
        per_hour,
        minute: scenario.exchange.minute(),
        hour: scenario.exchange.hour(),
    };
    if quota.admit(&key, windows, now) {
        return Ok(());
    }
    Err(Refusal {
        reply: quota_exhausted(),
        reason: "Communication Services quota",
    })
}

/// A resource's quota with its (scaled) windows.
#[derive(Debug, Clone, Copy)]
struct Windows {
    per_minute: u32,
    per_hour: u32,
    minute: Duration,
    hour: Duration,
}

/// Messages each Communication Services resource accepted over the last (scaled) hour.
#[derive(Debug, Default)]
pub(crate) struct ResourceQuota {
    resources: Mutex<HashMap<String, VecDeque<OffsetDateTime>>>,
}

impl ResourceQuota {
    /// Records a message at `now` unless the last minute or hour is full; false then.
    fn admit(&self, key: &str, windows: Windows, now: OffsetDateTime) -> bool {
        let mut map = self.resources.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let accepted = map.entry(key.to_ascii_lowercase()).or_default();
        while accepted.front().is_some_and(|t| elapsed(*t, now) >= windows.hour) {
            accepted.pop_front();
        }
        let last_minute = accepted.iter().filter(|t| elapsed(**t, now) < windows.minute).count();
        if last_minute >= windows.per_minute as usize || accepted.len() >= windows.per_hour as usize {
            return false;
        }
        accepted.push_back(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;

    use super::*;
    use crate::entra::{Grant, token};
    use crate::model::{Api, App, Mailbox};

    const TENANT: &str = "6f1d3c2a-9b4e-4d7a-8c1f-2e5b7a9d0c13";
    const CLIENT: &str = "0b7e2f4c-5d6a-4e8b-9c1d-3f2a4b6c8d0e";
    const SECRET_ID: &str = "3c2b1a09-8f7e-4d6c-b5a4-932f1e0d9c8b";

    fn scenario() -> Scenario {
        let app = App::new(
            CLIENT,
            "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
            "6d5c4b3a-2f1e-4d0c-9b8a-7f6e5d4c3b2a",
        )
        .secret(SECRET_ID, "the-secret", None);
        let resource = AcsResource::new("contoso-acs")
            .domain("notify.contoso.com")
            .sender("donotreply@notify.contoso.com")
            .role_assignment(CLIENT)
            .smtp_username(SmtpUsername::new("contoso-smtp", "contoso-smtp", CLIENT));
        let tenant = Tenant::new(TENANT, "contoso.com")
            .app(app)
            .mailbox(Mailbox::new("mailer@contoso.com"))
            .acs_resource(resource);
        let scenario = Scenario::new(vec![tenant]);
        scenario.validate().unwrap();
        scenario
    }

    fn reason(verdict: &Verdict) -> (&str, &str) {
        match verdict {
            Verdict::Accept(_) => ("235", "accepted"),
            Verdict::Refuse { reply, reason } => (&reply[..3], reason),
        }
    }

    #[test]
    fn login_refusals_share_535_with_distinct_causes() {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let mut s = scenario();
        let ok = login(&s, now, "CONTOSO-SMTP", "the-secret");
        let Verdict::Accept(auth) = &ok else { panic!("{ok:?}") };
        assert_eq!(auth.mailbox, "contoso-smtp");
        assert_eq!(auth.acs_resource.as_deref(), Some("contoso-acs"));
        assert_eq!(
            auth.identity,
            Identity::AcsLogin {
                smtp_username: "contoso-smtp".into(),
                client_id: CLIENT.into()
            }
        );
        assert_eq!(
            reason(&login(&s, now, "contoso-smtp", SECRET_ID)),
            ("535", "wrong client secret")
        );
        assert_eq!(
            reason(&login(&s, now, "nobody", "the-secret")),
            ("535", "unknown SMTP username")
        );
        assert_eq!(
            reason(&login(&s, now, "mailer@contoso.com", "pw")),
            ("550", "mailbox credentials on Communication Services")
        );
        s.tenants[0].apps[0].secrets[0].expires = Some(crate::model::Timestamp(now));
        assert_eq!(
            reason(&login(&s, now, "contoso-smtp", "the-secret")),
            ("535", "client secret expired")
        );
        s.tenants[0].apps[0].secrets[0].expires = None;
        s.tenants[0].acs_resources[0].role_assignments.clear();
        assert_eq!(
            reason(&login(&s, now, "contoso-smtp", "the-secret")),
            ("535", "app has no role on the Communication Services resource")
        );
        let Verdict::Refuse { reply, .. } = login(&s, now, "contoso-smtp", "the-secret") else {
            panic!()
        };
        assert_eq!(reply, "535 5.7.3 Authentication unsuccessful\r\n");
    }

    #[test]
    fn xoauth2_takes_a_communication_token_of_the_linked_app() {
        let s = scenario();
        let key = TokenSigningKey::generate().unwrap();
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let mint = |audience: &str, api| {
            let grant = Grant {
                tenant_id: TENANT.into(),
                client_id: CLIENT.into(),
                app_name: "Mailer".into(),
                service_principal_id: "6d5c4b3a-2f1e-4d0c-9b8a-7f6e5d4c3b2a".into(),
                api,
                audience: audience.into(),
                roles: Vec::new(),
                appidacr: "1",
            };
            token::mint(&grant, &key, now.unix_timestamp(), 3599)
        };
        let sasl = |user: &str, token: &str| STANDARD.encode(format!("user={user}\x01auth=Bearer {token}\x01\x01"));
        let good = mint(AUDIENCE, Api::Communication);
        assert_eq!(
            reason(&xoauth2(&s, &key, now, &sasl("contoso-smtp", &good))),
            ("235", "accepted")
        );
        assert_eq!(
            reason(&xoauth2(&s, &key, now, &sasl("other", &good))),
            ("535", "unknown SMTP username")
        );
        let exchange = mint("https://outlook.office365.com", Api::Exchange);
        assert_eq!(
            reason(&xoauth2(&s, &key, now, &sasl("contoso-smtp", &exchange))),
            ("535", "token audience is not Communication Services")
        );
    }

    #[test]
    fn senders_need_a_linked_domain_and_a_mail_from_address() {
        let s = scenario();
        let Verdict::Accept(auth) = login(&s, OffsetDateTime::UNIX_EPOCH, "contoso-smtp", "the-secret") else {
            panic!()
        };
        assert_eq!(
            sender_refusal(&s, &auth, &["DoNotReply@notify.contoso.com".into()]),
            None
        );
        let unlinked = sender_refusal(&s, &auth, &["mailer@contoso.com".into()]).unwrap();
        assert_eq!(
            unlinked.reply,
            "550 5.1.7 The specified sender domain has not been linked.\r\n"
        );
        let other = sender_refusal(&s, &auth, &["info@notify.contoso.com".into()]).unwrap();
        assert!(other.reply.starts_with("550 5.1.8 "), "{other:?}");
        assert_eq!(
            sender_refusal(&s, &auth, &[String::new()]).unwrap().reason,
            "sender domain not linked"
        );
    }

    #[test]
    fn a_session_on_the_acs_endpoint() {
        let mut s = scenario();
        s.tenants[0].acs_resources[0].messages_per_minute = 1;
        let shared = crate::Shared::for_tests(s);
        let login = format!(
            "AUTH LOGIN {}\r\n{}\r\n",
            STANDARD.encode("contoso-smtp"),
            STANDARD.encode("the-secret")
        );
        let message = "MAIL FROM:<donotreply@notify.contoso.com>\r\nRCPT TO:<bob@fabrikam.com>\r\nDATA\r\nFrom: donotreply@notify.contoso.com\r\n\r\nHi\r\n.\r\n";
        let input = format!("EHLO x\r\n{login}MAIL FROM:<mailer@contoso.com>\r\n{message}{message}");
        assert_eq!(
            super::super::endpoint::dialogue(&shared, super::super::Endpoint::Acs, &input),
            [
                "250", "334", "235", "550", "250", "250", "354", "250", "250", "250", "354", "451"
            ]
        );
        let stored = shared.store.messages();
        assert_eq!(stored.len(), 1);
        assert_eq!(
            (stored[0].endpoint, stored[0].mailbox.as_str()),
            (super::super::Endpoint::Acs, "contoso-smtp")
        );
    }

    #[test]
    fn the_quota_counts_accepted_messages_per_minute_and_per_hour() {
        let quota = ResourceQuota::default();
        let windows = Windows {
            per_minute: 3,
            per_hour: 5,
            minute: Duration::from_secs(60),
            hour: Duration::from_secs(3600),
        };
        let t = OffsetDateTime::UNIX_EPOCH;
        let first: Vec<bool> = (0..4).map(|_| quota.admit("r", windows, t)).collect();
        assert_eq!(first, [true, true, true, false]);
        let later = t + time::Duration::minutes(1);
        let second: Vec<bool> = (0..3).map(|_| quota.admit("r", windows, later)).collect();
        assert_eq!(second, [true, true, false], "five an hour");
        assert!(quota.admit("r", windows, t + time::Duration::hours(1)));
        assert!(quota.admit("other", windows, t));
    }
}
