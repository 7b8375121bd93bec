//! Exchange Online High Volume Email (`smtp-hve.office365.com:587`, fact sheet §8): Exchange's
//! dialogue with HVE's own rules.
//!
//! - `AUTH XOAUTH2`: an Exchange Online token whose `user=` is an HVE account of the token's
//!   tenant, with at least `[hve] token_refused_within_secs` left (else `501 5.5.127 … Token will
//!   expire soon`, reported in tarickb/sasl-xoauth2#98), the *Office 365 Exchange Online*
//!   `Mail.Send` role (not `SMTP.SendAsApp`), and an app given `Add-HVEAppAccess`.
//! - `AUTH LOGIN`: the account's password, which Microsoft accepts until September 2028, unless
//!   the tenant's basic authentication is retired. Exchange's SMTP AUTH switches do not apply
//!   (assumed).
//! - Internal recipients only (since June 2025); the reply is ASSUMED.
//! - Envelope sender and From header must be the account (Exchange's Send-As reply).
//! - Recipients per rolling day for the whole tenant (Exchange's `554 5.2.0`).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use time::OffsetDateTime;

use super::auth::{self, Authenticated, Verdict};
use super::endpoint::Refusal;
use super::limits::elapsed;
use super::reply::{self, Wire};
use crate::model::{BasicAuth, Scenario};
use crate::pki::TokenSigningKey;
use crate::store::Identity;

/// The role an HVE app needs: *Office 365 Exchange Online* `Mail.Send`.
const ROLE: &str = "Mail.Send";

/// `501 5.5.127`: the token expires within `token_refused_within_secs` (text as reported in
/// tarickb/sasl-xoauth2#98).
fn token_expires_soon() -> Wire {
    reply::line(501, "5.5.127 Invalid XOAUTH2 auth data - Token will expire soon")
}

/// `550 5.7.1` for a recipient outside the tenant. ASSUMED: Microsoft documents that HVE sends
/// to internal recipients only, not the reply.
fn external_recipient() -> Wire {
    reply::line(550, "5.7.1 External recipients are not allowed for High Volume Email")
}

/// Decides `AUTH XOAUTH2` on the HVE endpoint.
pub(crate) fn xoauth2(scenario: &Scenario, key: &TokenSigningKey, now: OffsetDateTime, encoded: &str) -> Verdict {
    let refuse = |reason| Verdict::Refuse {
        reply: reply::auth_failed(&scenario.exchange, now),
        reason,
    };
    let (user, claims) = match auth::verified_xoauth2(key, now, encoded) {
        Ok(verified) => verified,
        Err(reason) => return refuse(reason),
    };
    if !auth::is_exchange_audience(&claims.aud) {
        return refuse("token audience is not Exchange Online");
    }
    let Some(tenant) = scenario.tenants.iter().find(|t| t.id.eq_ignore_ascii_case(&claims.tid)) else {
        return refuse("token tenant unknown");
    };
    let Some(account) = tenant.hve_account_by_address(&user) else {
        return refuse("not an HVE account");
    };
    if claims.exp - now.unix_timestamp() < i64::from(scenario.hve.token_refused_within_secs) {
        return Verdict::Refuse {
            reply: token_expires_soon(),
            reason: "token will expire soon",
        };
    }
    if !claims.roles.iter().flatten().any(|r| r == ROLE) {
        return refuse("token has no Mail.Send role");
    }
    if !account.allows_app(&claims.appid) {
        return refuse("app not added with Add-HVEAppAccess");
    }
    Verdict::Accept(Authenticated {
        tenant_id: tenant.id.clone(),
        mailbox: account.address.clone(),
        identity: Identity::Xoauth2 {
            client_id: claims.appid.clone(),
            service_principal_id: claims.oid.clone(),
        },
        trustees: vec![account.address.clone()],
        rbac_scope: Vec::new(),
        acs_resource: None,
    })
}

/// Decides `AUTH LOGIN` on the HVE endpoint.
pub(crate) fn login(scenario: &Scenario, now: OffsetDateTime, user: &str, password: &str) -> Verdict {
    let refuse = |reason| Verdict::Refuse {
        reply: reply::auth_failed(&scenario.exchange, now),
        reason,
    };
    let Some((tenant, account)) = scenario.hve_account(user) else {
        return refuse("not an HVE account");
    };
    if tenant.basic_auth == BasicAuth::Retired {
        return auth::retired();
    }
    match account.password.as_deref() {
        None => refuse("no password set on the HVE account"),
        Some(p) if p != password => refuse("wrong password"),
        Some(_) => Verdict::Accept(Authenticated {
            tenant_id: tenant.id.clone(),
            mailbox: account.address.clone(),
            identity: Identity::Basic,
            trustees: vec![account.address.clone()],
            rbac_scope: Vec::new(),
            acs_resource: None,
        }),
    }
}

/// HVE takes recipients of the tenant's own domains only.
pub(crate) fn recipient_refusal(scenario: &Scenario, auth: &Authenticated, recipient: &str) -> Option<Refusal> {
    let tenant = scenario.tenants.iter().find(|t| t.id == auth.tenant_id)?;
    let domain = recipient.rsplit_once('@').map_or("", |(_, d)| d);
    if tenant.has_domain(domain) {
        return None;
    }
    Some(Refusal {
        reply: external_recipient(),
        reason: "external recipient on HVE",
    })
}

/// The envelope sender and the From header must be the HVE account itself.
pub(crate) fn sender_refusal(scenario: &Scenario, auth: &Authenticated, senders: &[String]) -> Option<Refusal> {
    let denied = senders
        .iter()
        .find(|s| !s.is_empty() && !s.eq_ignore_ascii_case(&auth.mailbox))?;
    Some(Refusal {
        reply: reply::send_as_denied(&scenario.exchange, &auth.mailbox, denied),
        reason: "sender is not the HVE account",
    })
}

/// Admits `recipients` more under the tenant's rolling-day quota, or refuses with Exchange's
/// `554 5.2.0`.
pub(crate) fn admit(
    scenario: &Scenario,
    quota: &TenantQuota,
    auth: &Authenticated,
    recipients: u32,
    now: OffsetDateTime,
) -> Result<(), Refusal> {
    let day = scenario.exchange.day();
    if quota.admit(&auth.tenant_id, recipients, scenario.hve.recipients_per_day, day, now) {
        return Ok(());
    }
    Err(Refusal {
        reply: reply::quota_exceeded(&scenario.exchange),
        reason: "HVE tenant recipient quota",
    })
}

/// HVE recipients of each tenant over the last (scaled) day.
#[derive(Debug, Default)]
pub(crate) struct TenantQuota {
    tenants: Mutex<HashMap<String, VecDeque<(OffsetDateTime, u32)>>>,
}

impl TenantQuota {
    /// Records `recipients` for the tenant at `now`, unless that would take the last `day` over
    /// `limit`; false then.
    fn admit(
        &self,
        tenant_id: &str,
        recipients: u32,
        limit: u32,
        day: std::time::Duration,
        now: OffsetDateTime,
    ) -> bool {
        let mut map = self.tenants.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let window = map.entry(tenant_id.to_ascii_lowercase()).or_default();
        while window.front().is_some_and(|(t, _)| elapsed(*t, now) >= day) {
            window.pop_front();
        }
        let used: u64 = window.iter().map(|(_, n)| u64::from(*n)).sum();
        if used + u64::from(recipients) > u64::from(limit) {
            return false;
        }
        window.push_back((now, recipients));
        true
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;

    use super::*;
    use crate::entra::{Grant, token};
    use crate::model::{Api, HveAccount, Tenant};

    const TENANT: &str = "6f1d3c2a-9b4e-4d7a-8c1f-2e5b7a9d0c13";
    const CLIENT: &str = "0b7e2f4c-5d6a-4e8b-9c1d-3f2a4b6c8d0e";
    const OTHER_CLIENT: &str = "1b7e2f4c-5d6a-4e8b-9c1d-3f2a4b6c8d0e";
    const ACCOUNT: &str = "hve@contoso.com";

    fn scenario() -> Scenario {
        let tenant = Tenant::new(TENANT, "contoso.com")
            .hve_account(HveAccount::new(ACCOUNT).app(CLIENT).password("hve-password"));
        let scenario = Scenario::new(vec![tenant]);
        scenario.validate().unwrap();
        scenario
    }

    fn token(key: &TokenSigningKey, client_id: &str, roles: &[&str], now: i64, lifetime: u32) -> String {
        let grant = Grant {
            tenant_id: TENANT.into(),
            client_id: client_id.into(),
            app_name: "Mailer".into(),
            service_principal_id: "6d5c4b3a-2f1e-4d0c-9b8a-7f6e5d4c3b2a".into(),
            api: Api::Exchange,
            audience: "https://outlook.office365.com".into(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            appidacr: "1",
        };
        token::mint(&grant, key, now, lifetime)
    }

    fn sasl(user: &str, token: &str) -> String {
        STANDARD.encode(format!("user={user}\x01auth=Bearer {token}\x01\x01"))
    }

    fn reason(verdict: &Verdict) -> (&str, &str) {
        match verdict {
            Verdict::Accept(_) => ("235", "accepted"),
            Verdict::Refuse { reply, reason } => (&reply[..3], reason),
        }
    }

    #[test]
    fn xoauth2_rules_in_order() {
        let s = scenario();
        let key = TokenSigningKey::generate().unwrap();
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let t = now.unix_timestamp();
        let good = token(&key, CLIENT, &["Mail.Send"], t, 3599);
        let accepted = xoauth2(&s, &key, now, &sasl(ACCOUNT, &good));
        assert!(
            matches!(&accepted, Verdict::Accept(a) if a.mailbox == ACCOUNT),
            "{accepted:?}"
        );
        let cases = [
            (sasl("mailer@contoso.com", &good), ("535", "not an HVE account")),
            (
                sasl(ACCOUNT, &token(&key, CLIENT, &["Mail.Send"], t - 3000, 3599)),
                ("501", "token will expire soon"),
            ),
            (
                sasl(ACCOUNT, &token(&key, CLIENT, &["SMTP.SendAsApp"], t, 3599)),
                ("535", "token has no Mail.Send role"),
            ),
            (
                sasl(ACCOUNT, &token(&key, OTHER_CLIENT, &["Mail.Send"], t, 3599)),
                ("535", "app not added with Add-HVEAppAccess"),
            ),
        ];
        for (encoded, expected) in cases {
            assert_eq!(reason(&xoauth2(&s, &key, now, &encoded)), expected);
        }
        let soon = token(&key, CLIENT, &["Mail.Send"], t - 3000, 3599);
        let Verdict::Refuse { reply, .. } = xoauth2(&s, &key, now, &sasl(ACCOUNT, &soon)) else {
            panic!("refused")
        };
        assert_eq!(
            reply,
            "501 5.5.127 Invalid XOAUTH2 auth data - Token will expire soon\r\n"
        );
    }

    #[test]
    fn login_takes_the_account_password_until_basic_auth_is_retired() {
        let mut s = scenario();
        let now = OffsetDateTime::UNIX_EPOCH;
        assert_eq!(
            reason(&login(&s, now, "HVE@contoso.com", "hve-password")),
            ("235", "accepted")
        );
        assert_eq!(reason(&login(&s, now, ACCOUNT, "nope")), ("535", "wrong password"));
        assert_eq!(
            reason(&login(&s, now, "x@contoso.com", "nope")),
            ("535", "not an HVE account")
        );
        s.tenants[0].basic_auth = BasicAuth::Retired;
        assert_eq!(
            reason(&login(&s, now, ACCOUNT, "hve-password")),
            ("550", "basic authentication retired")
        );
    }

    #[test]
    fn internal_recipients_only_and_the_sender_is_the_account() {
        let s = scenario();
        let auth = match login(&s, OffsetDateTime::UNIX_EPOCH, ACCOUNT, "hve-password") {
            Verdict::Accept(a) => a,
            other => panic!("{other:?}"),
        };
        assert_eq!(recipient_refusal(&s, &auth, "bob@CONTOSO.com"), None);
        let external = recipient_refusal(&s, &auth, "bob@fabrikam.com").unwrap();
        assert_eq!(
            external.reply,
            "550 5.7.1 External recipients are not allowed for High Volume Email\r\n"
        );
        assert_eq!(sender_refusal(&s, &auth, &[ACCOUNT.into(), String::new()]), None);
        let denied = sender_refusal(&s, &auth, &["ceo@contoso.com".into()]).unwrap();
        assert!(
            denied
                .reply
                .starts_with("554 5.2.252 SendAsDenied; hve@contoso.com not allowed to send as ceo@contoso.com;")
        );
    }

    #[test]
    fn a_session_on_the_hve_endpoint() {
        let shared = crate::Shared::for_tests(scenario());
        let login = format!(
            "AUTH LOGIN {}\r\n{}\r\n",
            STANDARD.encode(ACCOUNT),
            STANDARD.encode("hve-password")
        );
        let input = format!(
            "EHLO x\r\n{login}MAIL FROM:<{ACCOUNT}>\r\nRCPT TO:<bob@fabrikam.com>\r\nRCPT TO:<bob@contoso.com>\r\nDATA\r\nFrom: {ACCOUNT}\r\n\r\nHi\r\n.\r\n"
        );
        assert_eq!(
            super::super::endpoint::dialogue(&shared, super::super::Endpoint::Hve, &input),
            ["250", "334", "235", "250", "550", "250", "354", "250"]
        );
        let stored = shared.store.messages();
        assert_eq!(stored[0].endpoint, super::super::Endpoint::Hve);
        assert_eq!(stored[0].rcpt_to, ["bob@contoso.com"]);
        assert_eq!(
            shared
                .stats
                .snapshot()
                .submission_refusals
                .get("external recipient on HVE"),
            Some(&1)
        );
    }

    #[test]
    fn the_tenant_quota_rolls_over_a_day() {
        let quota = TenantQuota::default();
        let day = std::time::Duration::from_secs(86_400);
        let t = OffsetDateTime::UNIX_EPOCH;
        assert!(quota.admit(TENANT, 6, 10, day, t));
        assert!(!quota.admit(TENANT, 5, 10, day, t), "refused ones are not counted");
        assert!(quota.admit(&TENANT.to_ascii_uppercase(), 4, 10, day, t));
        assert!(!quota.admit(TENANT, 1, 10, day, t));
        assert!(quota.admit(TENANT, 10, 10, day, t + time::Duration::days(1)));
    }
}
