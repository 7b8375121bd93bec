//! What Exchange checks when a client authenticates (fact sheet §1.4, §1.7): the XOAUTH2 string,
//! the token, the organisation's and the mailbox's SMTP AUTH switches, the `SMTP.SendAsApp` role,
//! the service principal's registration in Exchange and the FullAccess grant. Every refusal
//! carries the reply Exchange sends and a reason for the emulator's counters and log, since many
//! causes share `535 5.7.3`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use time::OffsetDateTime;

use super::reply::{self, Disabled, Wire};
use crate::entra::token::{self, AccessClaims};
use crate::model::{BasicAuth, Mailbox, Scenario, Tenant};
use crate::pki::TokenSigningKey;
use crate::store::Identity;

/// Audiences SMTP accepts.
const AUDIENCES: &[&str] = &["https://outlook.office365.com", "https://outlook.office.com"];

/// The identity a session sends as after a successful AUTH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Authenticated {
    pub tenant_id: String,
    /// The mailbox's primary address.
    pub mailbox: String,
    pub identity: Identity,
    /// Names a SendAs grant may use for this identity.
    pub trustees: Vec<String>,
}

/// The outcome of an AUTH exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    Accept(Authenticated),
    Refuse { reply: Wire, reason: &'static str },
}

/// Decodes `base64("user=" user "\x01auth=Bearer " token "\x01\x01")`.
pub(crate) fn decode_xoauth2(encoded: &str) -> Option<(String, String)> {
    let raw = STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let mut user = None;
    let mut token = None;
    for field in text.split('\x01').filter(|f| !f.is_empty()) {
        let (key, value) = field.split_once('=')?;
        if key.eq_ignore_ascii_case("user") {
            user = Some(value.to_owned());
        } else if key.eq_ignore_ascii_case("auth") {
            let (scheme, t) = value.split_once(' ')?;
            if !scheme.eq_ignore_ascii_case("bearer") {
                return None;
            }
            token = Some(t.trim().to_owned());
        }
    }
    Some((user?, token?))
}

/// Decides `AUTH XOAUTH2`.
pub(crate) fn xoauth2(scenario: &Scenario, key: &TokenSigningKey, now: OffsetDateTime, encoded: &str) -> Verdict {
    let settings = &scenario.exchange;
    let refuse = |reason| Verdict::Refuse {
        reply: reply::auth_failed(settings, now),
        reason,
    };
    let Some((user, access_token)) = decode_xoauth2(encoded) else {
        return refuse("malformed XOAUTH2 string");
    };
    let claims = match token::verify(&access_token, key, now.unix_timestamp()) {
        Ok(claims) => claims,
        Err(token::TokenRejection::Expired) => return refuse("token expired"),
        Err(token::TokenRejection::NotYetValid) => return refuse("token not yet valid"),
        Err(_) => return refuse("token invalid"),
    };
    if !AUDIENCES.iter().any(|a| claims.aud.eq_ignore_ascii_case(a)) {
        return refuse("token audience is not Exchange Online");
    }
    let Some(tenant) = scenario.tenants.iter().find(|t| t.id.eq_ignore_ascii_case(&claims.tid)) else {
        return refuse("token tenant unknown");
    };
    let Some(mailbox) = tenant.mailbox_by_address(&user) else {
        return refuse("user= mailbox not found in the token's tenant");
    };
    if let Some(disabled) = smtp_auth_disabled(tenant, mailbox) {
        return Verdict::Refuse {
            reply: reply::auth_disabled(settings, now, disabled),
            reason: disabled_reason(disabled),
        };
    }
    if !claims.roles.iter().flatten().any(|r| r == "SMTP.SendAsApp") {
        return refuse("token has no SMTP.SendAsApp role");
    }
    let Some(registration) = tenant.exchange_registration(&claims.appid, &claims.oid) else {
        let registered_with_app_object_id = tenant.app_by_client_id(&claims.appid).is_some_and(|app| {
            tenant
                .exchange_service_principals
                .iter()
                .any(|sp| sp.object_id.eq_ignore_ascii_case(&app.object_id))
        });
        return refuse(if registered_with_app_object_id {
            "service principal registered with the app registration's object id"
        } else {
            "service principal not registered in Exchange"
        });
    };
    let trustees = trustees(&claims, registration.display_name.as_deref());
    let names: Vec<&str> = trustees.iter().map(String::as_str).collect();
    if !Mailbox::grants(&mailbox.full_access, &names) {
        return refuse("no FullAccess on the mailbox");
    }
    Verdict::Accept(Authenticated {
        tenant_id: tenant.id.clone(),
        mailbox: mailbox.address.clone(),
        identity: Identity::Xoauth2 {
            client_id: claims.appid.clone(),
            service_principal_id: claims.oid.clone(),
        },
        trustees,
    })
}

/// Decides `AUTH LOGIN` with a password.
pub(crate) fn basic(scenario: &Scenario, now: OffsetDateTime, user: &str, password: &str) -> Verdict {
    let settings = &scenario.exchange;
    let Some((tenant, mailbox)) = scenario.mailbox(user) else {
        let tenant = user.rsplit_once('@').and_then(|(_, d)| scenario.tenant(d));
        return match tenant.map(|t| t.basic_auth) {
            Some(BasicAuth::Retired) => retired(),
            Some(BasicAuth::Disabled) => disabled_basic(settings, now),
            _ => Verdict::Refuse {
                reply: reply::auth_failed(settings, now),
                reason: "unknown user",
            },
        };
    };
    match tenant.basic_auth {
        BasicAuth::Retired => return retired(),
        BasicAuth::Disabled => return disabled_basic(settings, now),
        BasicAuth::Enabled => {}
    }
    if let Some(disabled) = smtp_auth_disabled(tenant, mailbox) {
        return Verdict::Refuse {
            reply: reply::auth_disabled(settings, now, disabled),
            reason: disabled_reason(disabled),
        };
    }
    if mailbox.password.as_deref() != Some(password) {
        return Verdict::Refuse {
            reply: reply::auth_failed(settings, now),
            reason: "wrong password",
        };
    }
    Verdict::Accept(Authenticated {
        tenant_id: tenant.id.clone(),
        mailbox: mailbox.address.clone(),
        identity: Identity::Basic,
        trustees: vec![mailbox.address.clone()],
    })
}

fn retired() -> Verdict {
    Verdict::Refuse {
        reply: reply::basic_auth_retired(),
        reason: "basic authentication retired",
    }
}

fn disabled_basic(settings: &crate::model::ExchangeSettings, now: OffsetDateTime) -> Verdict {
    Verdict::Refuse {
        reply: reply::auth_disabled(settings, now, Disabled::BasicAuth),
        reason: "basic authentication disabled",
    }
}

/// Security defaults win; then the mailbox setting, then the organisation's.
fn smtp_auth_disabled(tenant: &Tenant, mailbox: &Mailbox) -> Option<Disabled> {
    if tenant.security_defaults {
        return Some(Disabled::SecurityDefaults);
    }
    match mailbox.smtp_client_authentication_disabled {
        Some(true) => Some(Disabled::Mailbox),
        Some(false) => None,
        None => tenant.smtp_client_authentication_disabled.then_some(Disabled::Tenant),
    }
}

fn disabled_reason(disabled: Disabled) -> &'static str {
    match disabled {
        Disabled::Tenant => "SMTP AUTH disabled for the tenant",
        Disabled::Mailbox => "SMTP AUTH disabled for the mailbox",
        Disabled::SecurityDefaults => "security defaults",
        Disabled::BasicAuth => "basic authentication disabled",
    }
}

/// A service principal can be named by object id, app id or its Exchange display name.
fn trustees(claims: &AccessClaims, display_name: Option<&str>) -> Vec<String> {
    let mut names = vec![claims.oid.clone(), claims.appid.clone()];
    names.extend(display_name.map(str::to_owned));
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn microsoft_documented_vector_decodes() {
        // The example of Microsoft's XOAUTH2 documentation (fact sheet §1.3).
        let encoded = "dXNlcj10ZXN0QGNvbnRvc28ub25taWNyb3NvZnQuY29tAWF1dGg9QmVhcmVyIEV3QkFBbDNCQUFVRkZwVUFvN0ozVmUwYmpMQldaV0NjbFJDM0VvQUEBAQ==";
        assert_eq!(
            decode_xoauth2(encoded),
            Some((
                "test@contoso.onmicrosoft.com".to_owned(),
                "EwBAAl3BAAUFFpUAo7J3Ve0bjLBWZWCclRC3EoAA".to_owned()
            ))
        );
    }

    #[test]
    fn lower_case_scheme_and_garbage() {
        let encoded = STANDARD.encode("user=a@b.c\x01auth=bearer tok\x01\x01");
        assert_eq!(decode_xoauth2(&encoded), Some(("a@b.c".to_owned(), "tok".to_owned())));
        assert_eq!(decode_xoauth2("%%%"), None);
        assert_eq!(decode_xoauth2(&STANDARD.encode("user=a@b.c\x01\x01")), None);
        assert_eq!(
            decode_xoauth2(&STANDARD.encode("user=a@b.c\x01auth=Basic x\x01\x01")),
            None
        );
    }
}
