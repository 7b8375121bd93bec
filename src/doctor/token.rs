//! The `token` check (a fresh token from Entra ID, no cache, so the credential is really tested)
//! and the `claims` check (what guide 001 checks by hand on jwt.ms).

use std::time::Duration;

use super::{Check, CheckId, Status, failure, symptom};
use crate::account::{Account, Transport};
use crate::catalog::{self, Evidence, Ids, Symptom};
use crate::oauth::{AccessToken, RetryPolicy, TokenProvider, inspect};
use crate::service::Service;
use crate::submit::{self, SubmitError};
use crate::sysexits::Code;

/// `token` and `claims`; the token, when Entra issued one.
pub(super) async fn checks(
    checks: &mut Vec<Check>,
    account: &Account,
    evidence: &Evidence,
    ids: &mut Ids,
) -> Option<AccessToken> {
    let (mut token_check, token) = token(account, evidence, ids).await;
    let explained_above = checks
        .iter()
        .any(|c| c.id == CheckId::Credential && c.status == Status::Fail);
    if explained_above && token_check.diagnosis.as_ref().is_some_and(|d| d.id == "aadsts/7000215") {
        token_check.diagnosis = None;
        token_check
            .evidence
            .push("Entra confirms the credential problem above.".to_owned());
    }
    checks.push(token_check);
    let claims = token
        .as_ref()
        .and_then(|t| inspect::decode(t.token.expose()))
        .map(|(_, c)| c);
    if let Some(c) = &claims {
        ids.sp_id = c["oid"].as_str().map(str::to_owned);
    }
    checks.push(match &claims {
        Some(c) => claims_check(account, c, ids),
        None if token.is_some() => Check::new(
            CheckId::Claims,
            Status::Warn,
            "the token is opaque; its claims cannot be read",
        ),
        None => Check::new(CheckId::Claims, Status::Skip, "needs a token"),
    });
    token
}

/// A fresh token: no cache, so the credential is really tested.
async fn token(account: &Account, evidence: &Evidence, ids: &Ids) -> (Check, Option<AccessToken>) {
    let Some(source) = account.token_source() else {
        return (
            Check::new(CheckId::Token, Status::Skip, "basic AUTH needs no token"),
            None,
        );
    };
    let tls = match crate::tls::client_config(account.ca_file.as_deref()) {
        Ok(t) => t,
        Err(e) => return (failure(CheckId::Token, &e.into(), evidence, ids), None),
    };
    let http = match submit::http_client(&tls) {
        Ok(h) => h,
        Err(e) => return (failure(CheckId::Token, &e, evidence, ids), None),
    };
    let retry = RetryPolicy {
        attempts: 2,
        base_delay: Duration::from_millis(500),
        max_delay: Duration::from_secs(5),
    };
    let provider = TokenProvider::new(http, source, retry, None);
    match provider.token().await {
        Ok(token) => {
            let lifetime = crate::clock::Timestamp::now().secs_until(token.expires_at);
            (
                Check::new(
                    CheckId::Token,
                    Status::Pass,
                    format!("token issued, valid for {lifetime} s"),
                ),
                Some(token),
            )
        }
        Err(e) => (failure(CheckId::Token, &SubmitError::Token(e), evidence, ids), None),
    }
}

/// The checks of guide 001: aud, iss with the tenant, appid, idtyp, roles.
pub(crate) fn claim_checks(account: &Account, claims: &serde_json::Value) -> Vec<(bool, String)> {
    let text = |k: &str| claims[k].as_str().unwrap_or("(absent)").to_owned();
    let resource = account.scope.value.trim_end_matches("/.default").trim_end_matches('/');
    // HVE takes Exchange's Mail.Send, not SMTP.SendAsApp; ACS authorises with Azure roles on
    // its resource, which no token carries; so does Exchange with RBAC for Applications
    // (`Application SMTP.SendAsApp` assigned in Exchange), whose tokens carry no roles at all.
    let role = match (account.service.value, account.transport) {
        (Service::Acs, _) => None,
        (Service::Hve, _) | (Service::Exchange, Transport::Graph) => Some("Mail.Send"),
        (Service::Exchange, Transport::Smtp) if claims["roles"].is_null() => None,
        (Service::Exchange, Transport::Smtp) => Some("SMTP.SendAsApp"),
    };
    let tid = text("tid");
    let tenant_matches = match account.tenant.as_ref().map(|t| t.value.as_str()) {
        Some(t) if uuid::Uuid::try_parse(t).is_ok() => tid.eq_ignore_ascii_case(t),
        _ => true,
    };
    let roles: Vec<String> = claims["roles"]
        .as_array()
        .map(|r| r.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    let client = account.client_id.as_ref().map_or(String::new(), |c| c.value.clone());
    let check = |ok: bool, claim: &str, value: String, expected: &str| {
        let message = if ok {
            format!("{claim} {value}")
        } else {
            format!("{claim} {value}, expected {expected}")
        };
        (ok, message)
    };
    let roles_text = if roles.is_empty() && role.is_none() && account.service.value == Service::Exchange {
        "absent (as with RBAC for Applications; without it, SMTP.SendAsApp needs admin consent)".to_owned()
    } else if roles.is_empty() {
        "absent".to_owned()
    } else {
        roles.join(", ")
    };
    vec![
        check(
            text("aud").trim_end_matches('/').eq_ignore_ascii_case(resource),
            "aud",
            text("aud"),
            resource,
        ),
        check(
            text("iss") == format!("https://sts.windows.net/{tid}/") && tenant_matches,
            "iss",
            text("iss"),
            "https://sts.windows.net/<tenant>/ of the configured tenant",
        ),
        check(
            text("appid").eq_ignore_ascii_case(&client),
            "appid",
            text("appid"),
            &client,
        ),
        check(text("idtyp") == "app", "idtyp", text("idtyp"), "app"),
        check(
            role.is_none_or(|role| roles.iter().any(|r| r == role)),
            "roles",
            roles_text,
            role.unwrap_or("none"),
        ),
    ]
}

fn claims_check(account: &Account, claims: &serde_json::Value, ids: &Ids) -> Check {
    let results = claim_checks(account, claims);
    let failed: Vec<&String> = results.iter().filter(|(ok, _)| !ok).map(|(_, m)| m).collect();
    let mut check = if failed.is_empty() {
        Check::new(
            CheckId::Claims,
            Status::Pass,
            format!(
                "aud, iss, appid, idtyp and roles are as {} needs them",
                account.service.value.title()
            ),
        )
    } else {
        Check::new(
            CheckId::Claims,
            Status::Fail,
            format!("the token is not one Exchange accepts: {}", failed[0]),
        )
    };
    for (ok, message) in &results {
        check = check.evidence(format!("{} {message}", if *ok { "ok  " } else { "bad " }));
    }
    if !failed.is_empty() {
        // Each claim that is wrong has one cause: aud, iss, appid, idtyp, roles in that order.
        const CAUSES: [&str; 5] = [
            "wrong-audience",
            "wrong-tenant",
            "unknown-client",
            "delegated-token",
            "no-admin-consent",
        ];
        let wrong: Vec<&str> = results
            .iter()
            .zip(CAUSES)
            .filter(|((ok, _), _)| !ok)
            .map(|(_, c)| c)
            .collect();
        let mut diagnosis = catalog::explain(symptom(Symptom::TokenClaims), &Evidence::default());
        diagnosis.causes.retain(|c| wrong.contains(&c.id));
        diagnosis.confirmed = true;
        if wrong.contains(&"no-admin-consent") {
            let note = match account.transport {
                Transport::Smtp if account.service.value == Service::Hve => {
                    "Entra issued the token without the Mail.Send role: HVE needs the Office 365 Exchange Online application permission Mail.Send, with admin consent."
                }
                Transport::Smtp => {
                    "Entra issued the token without the SMTP.SendAsApp role: the permission has no admin consent."
                }
                Transport::Graph => {
                    "Entra issued the token without the Mail.Send role: the app lacks the Microsoft Graph application permission Mail.Send, or its admin consent."
                }
            };
            diagnosis.notes.push(note.to_owned());
        }
        check = check.failed(Code::NoPerm, Some(diagnosis.render(ids)));
    }
    check
}
