//! What Exchange checks when a client authenticates (fact sheet §1.4, §1.6, §1.7, §8): the XOAUTH2
//! string, the token, the organisation's and the mailbox's SMTP AUTH switches, then one of two
//! ways to authorise the app on the mailbox: the `SMTP.SendAsApp` role in the token with the
//! service principal's registration in Exchange and FullAccess on the mailbox, or, for a token
//! without the role, RBAC for Applications (an `Application SMTP.SendAsApp` management role
//! assignment whose scope holds the mailbox). Every refusal carries the reply Exchange sends and a
//! reason for the emulator's counters and log, since many causes share `535 5.7.3`.

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

/// Whether a token's `aud` is Exchange Online's.
pub(crate) fn is_exchange_audience(aud: &str) -> bool {
    AUDIENCES.iter().any(|a| aud.eq_ignore_ascii_case(a))
}

/// The identity a session sends as after a successful AUTH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Authenticated {
    pub tenant_id: String,
    /// The mailbox's primary address.
    pub mailbox: String,
    pub identity: Identity,
    /// Names a SendAs grant may use for this identity.
    pub trustees: Vec<String>,
    /// When RBAC for Applications authorised the AUTH: the mailboxes in the scopes of the service
    /// principal's `Application SMTP.SendAsApp` assignments, which it may also send as (assumed:
    /// Microsoft does not say whether the scope alone grants Send-As). Empty otherwise.
    pub rbac_scope: Vec<String>,
    /// The Communication Services resource, on the ACS endpoint.
    pub acs_resource: Option<String>,
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

/// Decodes an XOAUTH2 response and verifies its token's signature and lifetime: the `user=`
/// value and the claims, or the reason for the counters.
pub(crate) fn verified_xoauth2(
    key: &TokenSigningKey,
    now: OffsetDateTime,
    encoded: &str,
) -> Result<(String, AccessClaims), &'static str> {
    let (user, access_token) = decode_xoauth2(encoded).ok_or("malformed XOAUTH2 string")?;
    match token::verify(&access_token, key, now.unix_timestamp()) {
        Ok(claims) => Ok((user, claims)),
        Err(token::TokenRejection::Expired) => Err("token expired"),
        Err(token::TokenRejection::NotYetValid) => Err("token not yet valid"),
        Err(_) => Err("token invalid"),
    }
}

/// Decides `AUTH XOAUTH2`.
pub(crate) fn xoauth2(scenario: &Scenario, key: &TokenSigningKey, now: OffsetDateTime, encoded: &str) -> Verdict {
    let settings = &scenario.exchange;
    let refuse = |reason| Verdict::Refuse {
        reply: reply::auth_failed(settings, now),
        reason,
    };
    let (user, claims) = match verified_xoauth2(key, now, encoded) {
        Ok(verified) => verified,
        Err(reason) => return refuse(reason),
    };
    if !is_exchange_audience(&claims.aud) {
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
    let has_role = claims.roles.iter().flatten().any(|r| r == "SMTP.SendAsApp");
    let Some(registration) = tenant.exchange_registration(&claims.appid, &claims.oid) else {
        // Without the role only RBAC could authorise, and its assignments are held by the
        // registration; an app without either is refused for the missing role, as before RBAC.
        return refuse(if has_role || rbac_configured_for(tenant, &claims.appid) {
            registration_refusal(tenant, &claims)
        } else {
            "token has no SMTP.SendAsApp role"
        });
    };
    let trustees = trustees(&claims, registration.display_name.as_deref());
    let rbac_scope = if has_role {
        // "Including the SMTP.SendAsApp claim would trigger an unnecessary check for mailbox
        // permissions" (DOC-SMTP-RBAC): with the role, FullAccess decides, whatever RBAC says.
        let names: Vec<&str> = trustees.iter().map(String::as_str).collect();
        if !Mailbox::grants(&mailbox.full_access, &names) {
            return refuse("no FullAccess on the mailbox");
        }
        Vec::new()
    } else {
        let assignments: Vec<_> = tenant.smtp_send_as_app_assignments(registration).collect();
        if assignments.is_empty() {
            return refuse("token has no SMTP.SendAsApp role");
        }
        if !assignments.iter().any(|a| a.scope_contains(&mailbox.address)) {
            return refuse("no SMTP.SendAsApp role and no RBAC assignment for the mailbox");
        }
        assignments.iter().flat_map(|a| a.mailboxes.iter().cloned()).collect()
    };
    Verdict::Accept(Authenticated {
        tenant_id: tenant.id.clone(),
        mailbox: mailbox.address.clone(),
        identity: Identity::Xoauth2 {
            client_id: claims.appid.clone(),
            service_principal_id: claims.oid.clone(),
        },
        trustees,
        rbac_scope,
        acs_resource: None,
    })
}

/// Why the token's `appid` and `oid` match no Exchange registration.
fn registration_refusal(tenant: &Tenant, claims: &AccessClaims) -> &'static str {
    let registered_with_app_object_id = tenant.app_by_client_id(&claims.appid).is_some_and(|app| {
        tenant
            .exchange_service_principals
            .iter()
            .any(|sp| sp.object_id.eq_ignore_ascii_case(&app.object_id))
    });
    if registered_with_app_object_id {
        "service principal registered with the app registration's object id"
    } else {
        "service principal not registered in Exchange"
    }
}

/// Whether an `Application SMTP.SendAsApp` assignment is held by a registration of `app_id`
/// (whatever its object id).
fn rbac_configured_for(tenant: &Tenant, app_id: &str) -> bool {
    tenant
        .exchange_service_principals
        .iter()
        .filter(|sp| sp.app_id.eq_ignore_ascii_case(app_id))
        .any(|sp| tenant.smtp_send_as_app_assignments(sp).next().is_some())
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
        rbac_scope: Vec::new(),
        acs_resource: None,
    })
}

pub(crate) fn retired() -> Verdict {
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
    use std::sync::OnceLock;

    use super::*;
    use crate::entra::Grant;
    use crate::fixture::{self, CLIENT, MAILBOX, OTHER_MAILBOX, SERVICE_PRINCIPAL, SHARED_MAILBOX, TENANT};
    use crate::model::{Api, ExchangeServicePrincipal, SMTP_SEND_AS_APP_ROLE};

    fn key() -> &'static TokenSigningKey {
        static KEY: OnceLock<TokenSigningKey> = OnceLock::new();
        KEY.get_or_init(|| TokenSigningKey::generate().unwrap())
    }

    /// The XOAUTH2 response for `user` with an Exchange token of the fixture's app carrying
    /// `roles`.
    fn xoauth2_response(user: &str, roles: &[&str]) -> String {
        let grant = Grant {
            tenant_id: TENANT.into(),
            client_id: CLIENT.into(),
            app_name: "Contoso Mailer".into(),
            service_principal_id: SERVICE_PRINCIPAL.into(),
            api: Api::Exchange,
            audience: "https://outlook.office365.com".into(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            appidacr: "1",
        };
        let access = token::mint(&grant, key(), crate::clock::Clock::new().unix(), 3599);
        STANDARD.encode(format!("user={user}\x01auth=Bearer {access}\x01\x01"))
    }

    fn decide(scenario: &Scenario, user: &str, roles: &[&str]) -> Verdict {
        scenario.validate().expect("a valid scenario");
        let response = xoauth2_response(user, roles);
        xoauth2(scenario, key(), crate::clock::Clock::new().now(), &response)
    }

    #[track_caller]
    fn accepted(verdict: Verdict) -> Authenticated {
        match verdict {
            Verdict::Accept(a) => a,
            Verdict::Refuse { reason, .. } => panic!("refused: {reason}"),
        }
    }

    #[track_caller]
    fn refused(verdict: Verdict) -> &'static str {
        match verdict {
            Verdict::Refuse { reply, reason } => {
                assert!(reply.starts_with("535 5.7.3 "), "{reply}");
                reason
            }
            Verdict::Accept(a) => panic!("accepted: {a:?}"),
        }
    }

    fn rbac() -> Scenario {
        fixture::contoso_rbac("secret", None)
    }

    #[test]
    fn rbac_authorises_a_role_less_token_for_a_mailbox_of_the_scope_without_full_access() {
        let scenario = rbac();
        for user in [MAILBOX, SHARED_MAILBOX, "MAILER@Contoso.com"] {
            let auth = accepted(decide(&scenario, user, &[]));
            assert_eq!(auth.rbac_scope, [MAILBOX, SHARED_MAILBOX], "{user}");
        }
        assert_eq!(
            refused(decide(&scenario, OTHER_MAILBOX, &[])),
            "no SMTP.SendAsApp role and no RBAC assignment for the mailbox"
        );
    }

    #[test]
    fn the_role_claim_takes_the_full_access_way_whatever_rbac_says() {
        let scenario = rbac();
        assert_eq!(
            refused(decide(&scenario, MAILBOX, &["SMTP.SendAsApp"])),
            "no FullAccess on the mailbox"
        );
        let mut granted = rbac();
        granted.tenants[0].mailboxes[0]
            .full_access
            .push(SERVICE_PRINCIPAL.into());
        let auth = accepted(decide(&granted, MAILBOX, &["SMTP.SendAsApp"]));
        assert!(auth.rbac_scope.is_empty(), "Send-As goes by SendAs grants only");
        // The classic setup: no RBAC, the role and FullAccess.
        let classic = fixture::contoso("secret", None);
        assert!(
            accepted(decide(&classic, MAILBOX, &["SMTP.SendAsApp"]))
                .rbac_scope
                .is_empty()
        );
        assert_eq!(
            refused(decide(&classic, MAILBOX, &[])),
            "token has no SMTP.SendAsApp role"
        );
    }

    #[test]
    fn only_an_smtp_assignment_held_by_the_tokens_registration_counts() {
        let mut scenario = rbac();
        scenario.tenants[0].management_role_assignments[0].role = "Application Mail.Send".into();
        assert_eq!(
            refused(decide(&scenario, MAILBOX, &[])),
            "token has no SMTP.SendAsApp role"
        );

        // Another registered service principal's assignment.
        let other_app = "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f";
        let other_sp = "2d3e4f5a-6b7c-4d8e-9f0a-1b2c3d4e5f6a";
        let mut scenario = rbac();
        let tenant = &mut scenario.tenants[0];
        tenant.exchange_service_principals.push(ExchangeServicePrincipal {
            app_id: other_app.into(),
            object_id: other_sp.into(),
            display_name: None,
        });
        tenant.management_role_assignments[0].app = other_sp.into();
        assert_eq!(
            refused(decide(&scenario, MAILBOX, &[])),
            "token has no SMTP.SendAsApp role"
        );

        // The assignment may name the service principal by app id or display name, any case.
        for name in [CLIENT.to_ascii_uppercase(), "contoso mailer".to_owned()] {
            let mut scenario = rbac();
            scenario.tenants[0].exchange_service_principals[0].display_name = Some("Contoso Mailer".into());
            scenario.tenants[0].management_role_assignments[0].app = name.clone();
            scenario.tenants[0].management_role_assignments[0].role = SMTP_SEND_AS_APP_ROLE.to_lowercase();
            accepted(decide(&scenario, MAILBOX, &[]));
        }
    }

    #[test]
    fn an_rbac_app_registered_with_the_wrong_object_id_is_told_so() {
        let mut scenario = rbac();
        let registration = &mut scenario.tenants[0].exchange_service_principals[0];
        registration.object_id = fixture::APP_OBJECT.into();
        scenario.tenants[0].management_role_assignments[0].app = CLIENT.into();
        assert_eq!(
            refused(decide(&scenario, MAILBOX, &[])),
            "service principal registered with the app registration's object id"
        );
    }

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
