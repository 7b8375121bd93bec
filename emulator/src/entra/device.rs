//! The device authorization grant (RFC 8628) as Entra runs it: `/devicecode` hands out a device
//! code and a user code; the administrator "signs in" with the user code (here through the
//! emulator's admin API, standing in for the browser at `https://www.microsoft.com/link`); the
//! client polls the token endpoint and gets `authorization_pending` (AADSTS70016), `slow_down`
//! when it polls sooner than `interval`, `authorization_declined`, `expired_token` (AADSTS70020)
//! or `bad_verification_code`, then a delegated Microsoft Graph token carrying the user's `oid`,
//! the granted `scp` and the user's directory roles as `wids`.
//!
//! Entra documents `authorization_pending`, `authorization_declined`, `bad_verification_code`
//! and `expired_token`; `slow_down` is RFC 8628's, and its AADSTS number here is assumed.

use std::collections::HashMap;
use std::sync::Mutex;

use jsonwebtoken::{Algorithm, Header};
use serde::{Deserialize, Serialize};

use super::EntraError;
use crate::model::{DIRECTORY_ROLES, DirectoryUser, Scenario};
use crate::pki::TokenSigningKey;

/// `grant_type` of a device code redemption.
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// Microsoft Graph Command Line Tools: the first-party public client Microsoft Graph PowerShell
/// signs in with, present in every tenant.
pub const GRAPH_COMMAND_LINE_TOOLS: &str = "14d82eec-204b-4c2f-b7e8-296a70dab67e";
/// Microsoft Graph's app id, and its resource URI.
pub const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";
const GRAPH: &str = "https://graph.microsoft.com";
/// Where the user signs in.
pub const VERIFICATION_URI: &str = "https://www.microsoft.com/link";
/// OpenID Connect scopes: asked for by MSAL with every request, never in `scp`.
const OIDC_SCOPES: [&str; 4] = ["openid", "profile", "offline_access", "email"];

/// The device flows in progress.
#[derive(Debug, Default)]
pub struct DeviceFlows {
    flows: Mutex<HashMap<String, Flow>>,
}

#[derive(Debug, Clone)]
struct Flow {
    user_code: String,
    tenant_id: String,
    client_id: String,
    scopes: Vec<String>,
    expires_at: i64,
    /// Unix milliseconds before which a poll is too early.
    next_poll_ms: i64,
    interval_ms: i64,
    state: State,
}

#[derive(Debug, Clone)]
enum State {
    Pending,
    Declined,
    Approved(DirectoryUser),
}

/// A new flow, as `/devicecode` answers it.
#[derive(Debug, Clone, Serialize)]
pub struct Started {
    /// What the client polls with.
    pub device_code: String,
    /// What the user types.
    pub user_code: String,
    /// Where.
    pub verification_uri: String,
    /// Seconds until both expire.
    pub expires_in: u32,
    /// Seconds between polls.
    pub interval: u32,
    /// The sentence to show the user.
    pub message: String,
}

/// A redeemed flow: who signed in, for which client, with which scopes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approved {
    /// Tenant id.
    pub tenant_id: String,
    /// The public client.
    pub client_id: String,
    /// Granted Graph scopes (`scp`), without OpenID Connect's.
    pub scopes: Vec<String>,
    /// The user.
    pub user: DirectoryUser,
}

fn error(code: u32, error: &'static str, message: &str) -> EntraError {
    EntraError {
        code,
        error,
        status: 400,
        message: message.to_owned(),
        retry_after: None,
    }
}

/// The Graph scopes of a `scope` parameter: `https://graph.microsoft.com/X` or bare `X`.
fn graph_scopes(scope: &str) -> Result<Vec<String>, EntraError> {
    let mut out = Vec::new();
    for s in scope.split_whitespace() {
        if OIDC_SCOPES.iter().any(|o| s.eq_ignore_ascii_case(o)) {
            continue;
        }
        let name = match s.strip_prefix(GRAPH).map(|rest| rest.trim_start_matches('/')) {
            Some(name) => name,
            None if !s.contains("://") && !s.contains('/') => s,
            None => {
                return Err(error(
                    70011,
                    "invalid_scope",
                    &format!(
                        "The provided value for the input parameter 'scope' is not valid. The scope {s} is not valid: only Microsoft Graph scopes are known here."
                    ),
                ));
            }
        };
        if !name.is_empty() && !out.iter().any(|o: &String| o.eq_ignore_ascii_case(name)) {
            out.push(name.to_owned());
        }
    }
    Ok(out)
}

/// A user code: nine characters, letters and digits that cannot be misread.
fn user_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    uuid::Uuid::new_v4()
        .as_bytes()
        .iter()
        .take(9)
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect()
}

impl DeviceFlows {
    /// `/devicecode` for `client_id` in the tenant named `tenant`, at `now_ms`.
    pub fn start(
        &self,
        scenario: &Scenario,
        tenant: &str,
        client_id: &str,
        scope: &str,
        now_ms: i64,
    ) -> Result<Started, EntraError> {
        let tenant = super::grant::find_tenant(scenario, tenant)?;
        let public = client_id.eq_ignore_ascii_case(GRAPH_COMMAND_LINE_TOOLS);
        if !public {
            return Err(error(
                700016,
                "unauthorized_client",
                &format!(
                    "Application with identifier '{client_id}' was not found in the directory '{}', or it is not a public client that may use the device code flow.",
                    tenant.name
                ),
            ));
        }
        let scopes = graph_scopes(scope)?;
        if scopes.is_empty() {
            return Err(error(
                900144,
                "invalid_request",
                "The request body must contain the following parameter: 'scope'.",
            ));
        }
        let (lifetime, interval) = (
            scenario.entra.device_code_lifetime_secs,
            scenario.entra.device_code_interval_secs,
        );
        let device_code = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        let code = user_code();
        self.lock().insert(
            device_code.clone(),
            Flow {
                user_code: code.clone(),
                tenant_id: tenant.id.clone(),
                client_id: client_id.to_owned(),
                scopes,
                expires_at: now_ms + i64::from(lifetime) * 1000,
                next_poll_ms: now_ms,
                interval_ms: i64::from(interval) * 1000,
                state: State::Pending,
            },
        );
        Ok(Started {
            device_code,
            message: format!(
                "To sign in, use a web browser to open the page {VERIFICATION_URI} and enter the code {code} to authenticate."
            ),
            user_code: code,
            verification_uri: VERIFICATION_URI.to_owned(),
            expires_in: lifetime,
            interval,
        })
    }

    /// The user `upn` enters `user_code` and approves (or declines) the sign-in.
    pub fn sign_in(
        &self,
        scenario: &Scenario,
        user_code: &str,
        upn: &str,
        approve: bool,
        now_ms: i64,
    ) -> Result<(), String> {
        let mut flows = self.lock();
        let flow = flows
            .values_mut()
            .find(|f| f.user_code.eq_ignore_ascii_case(user_code.trim()))
            .ok_or_else(|| format!("no device sign-in has the code {user_code}"))?;
        if now_ms >= flow.expires_at {
            return Err(format!("the code {user_code} has expired"));
        }
        let tenant = scenario.tenant(&flow.tenant_id).ok_or("the tenant is gone")?;
        let user = tenant
            .users
            .iter()
            .find(|u| u.user_principal_name.eq_ignore_ascii_case(upn))
            .ok_or_else(|| format!("{upn} is not a user of {}", tenant.name))?;
        flow.state = if approve {
            State::Approved(user.clone())
        } else {
            State::Declined
        };
        Ok(())
    }

    /// A poll of the token endpoint with `device_code` by `client_id` at `now_ms`.
    pub fn poll(&self, device_code: &str, client_id: &str, now_ms: i64) -> Result<Approved, EntraError> {
        let mut flows = self.lock();
        let Some(flow) = flows.get_mut(device_code) else {
            return Err(error(
                70019,
                "bad_verification_code",
                "The provided value for the input parameter 'device_code' is not valid. Verification code is invalid.",
            ));
        };
        if !flow.client_id.eq_ignore_ascii_case(client_id) {
            return Err(error(
                70019,
                "bad_verification_code",
                "The device code was issued to another client.",
            ));
        }
        if now_ms >= flow.expires_at {
            flows.remove(device_code);
            return Err(error(
                70020,
                "expired_token",
                "The provided value for the input parameter 'device_code' is not valid. This device code has expired.",
            ));
        }
        // A little slack for the client's timer.
        if now_ms + 250 < flow.next_poll_ms {
            flow.interval_ms += 5000;
            flow.next_poll_ms = now_ms + flow.interval_ms;
            return Err(error(
                70016,
                "slow_down",
                "The client is polling too fast: wait 5 seconds more between polls.",
            ));
        }
        flow.next_poll_ms = now_ms + flow.interval_ms;
        match flow.state.clone() {
            State::Pending => Err(error(
                70016,
                "authorization_pending",
                "The provided request has not yet been authorized by the user. The user must input their code.",
            )),
            State::Declined => {
                flows.remove(device_code);
                Err(error(70000, "authorization_declined", "The user declined the sign-in."))
            }
            State::Approved(user) => {
                let flow = flows.remove(device_code).expect("present");
                Ok(Approved {
                    tenant_id: flow.tenant_id,
                    client_id: flow.client_id,
                    scopes: flow.scopes,
                    user,
                })
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Flow>> {
        self.flows.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Claims of a delegated Microsoft Graph token (v1.0, as Entra mints them for Graph).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DelegatedClaims {
    /// `https://graph.microsoft.com`.
    pub aud: String,
    /// `https://sts.windows.net/{tid}/`.
    pub iss: String,
    /// Issued at.
    pub iat: i64,
    /// Not before.
    pub nbf: i64,
    /// Expiry.
    pub exp: i64,
    /// The public client.
    pub appid: String,
    /// `user`.
    pub idtyp: String,
    /// The user's object id.
    pub oid: String,
    /// Granted scopes, space-separated.
    pub scp: String,
    /// Subject.
    pub sub: String,
    /// Tenant id.
    pub tid: String,
    /// The user.
    pub upn: String,
    /// Template ids of the user's directory roles.
    pub wids: Vec<String>,
    /// Token version.
    pub ver: String,
}

/// The claims of a delegated token minted here, if it verifies and has not expired at `now`.
pub fn verify(token: &str, key: &TokenSigningKey, now: i64) -> Option<DelegatedClaims> {
    let mut validation = jsonwebtoken::Validation::new(Algorithm::RS256);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<DelegatedClaims>(token, key.decoding_key(), &validation)
        .ok()?
        .claims;
    (claims.idtyp == "user" && claims.nbf <= now && now < claims.exp).then_some(claims)
}

/// Mints the delegated token of an approved flow.
pub fn mint(approved: &Approved, key: &TokenSigningKey, now: i64, lifetime: u32) -> String {
    let wids = approved
        .user
        .roles
        .iter()
        .filter_map(|r| {
            DIRECTORY_ROLES
                .iter()
                .find(|(name, _)| name == r)
                .map(|(_, id)| (*id).to_owned())
        })
        .collect();
    let claims = DelegatedClaims {
        aud: GRAPH.to_owned(),
        iss: format!("https://sts.windows.net/{}/", approved.tenant_id),
        iat: now,
        nbf: now,
        exp: now + i64::from(lifetime),
        appid: approved.client_id.clone(),
        idtyp: "user".to_owned(),
        oid: approved.user.object_id.clone(),
        scp: approved.scopes.join(" "),
        sub: approved.user.object_id.clone(),
        tid: approved.tenant_id.clone(),
        upn: approved.user.user_principal_name.clone(),
        wids,
        ver: "1.0".to_owned(),
    };
    let mut header = Header::new(Algorithm::RS256);
    header.typ = Some("JWT".to_owned());
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, &claims, key.encoding_key()).expect("RS256 signing with a valid key")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario() -> Scenario {
        let mut s = crate::fixture::contoso("secret-value", None);
        s.tenants[0].users.push(DirectoryUser {
            user_principal_name: "admin@contoso.com".into(),
            object_id: "5c3e6f1a-0000-4000-8000-000000000001".into(),
            roles: vec!["Cloud Application Administrator".into()],
        });
        s
    }

    #[test]
    fn pending_then_slow_down_then_approved_once() {
        let s = scenario();
        let flows = DeviceFlows::default();
        let tenant = &s.tenants[0].id;
        let scope = "https://graph.microsoft.com/Application.ReadWrite.All AppRoleAssignment.ReadWrite.All openid offline_access";
        let started = flows.start(&s, tenant, GRAPH_COMMAND_LINE_TOOLS, scope, 0).unwrap();
        assert_eq!((started.interval, started.expires_in), (5, 900));
        assert!(started.message.contains(&started.user_code));
        let poll = |at: i64| {
            flows
                .poll(&started.device_code, GRAPH_COMMAND_LINE_TOOLS, at)
                .map_err(|e| e.error)
        };
        assert_eq!(poll(0), Err("authorization_pending"));
        assert_eq!(poll(1000), Err("slow_down"), "sooner than the interval");
        assert_eq!(poll(7000), Err("slow_down"), "still sooner than the 10 s it grew to");
        assert_eq!(
            poll(22_000),
            Err("authorization_pending"),
            "15 s after, the interval now: in time"
        );
        flows
            .sign_in(&s, &started.user_code.to_lowercase(), "ADMIN@contoso.com", true, 30_000)
            .unwrap();
        let approved = poll(37_000).unwrap();
        assert_eq!(
            approved.scopes,
            ["Application.ReadWrite.All", "AppRoleAssignment.ReadWrite.All"]
        );
        assert_eq!(poll(80_000), Err("bad_verification_code"), "redeemed once");
        let key = TokenSigningKey::generate().unwrap();
        let token = mint(&approved, &key, 100, 3600);
        let payload = token.split('.').nth(1).unwrap();
        use base64::Engine as _;
        let claims: DelegatedClaims = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap(),
        )
        .unwrap();
        assert_eq!(claims.wids, ["158c047a-c907-4556-b7ef-446551a6b5f7"]);
        assert_eq!((claims.idtyp.as_str(), claims.aud.as_str()), ("user", GRAPH));
    }

    #[test]
    fn declined_expired_and_refused_requests() {
        let s = scenario();
        let flows = DeviceFlows::default();
        let tenant = &s.tenants[0].id;
        let a = flows
            .start(&s, tenant, GRAPH_COMMAND_LINE_TOOLS, "Application.ReadWrite.All", 0)
            .unwrap();
        flows
            .sign_in(&s, &a.user_code, "admin@contoso.com", false, 1000)
            .unwrap();
        assert_eq!(
            flows
                .poll(&a.device_code, GRAPH_COMMAND_LINE_TOOLS, 6000)
                .unwrap_err()
                .error,
            "authorization_declined"
        );
        let b = flows
            .start(&s, tenant, GRAPH_COMMAND_LINE_TOOLS, "Application.ReadWrite.All", 0)
            .unwrap();
        assert!(
            flows
                .sign_in(&s, &b.user_code, "nobody@contoso.com", true, 1000)
                .is_err()
        );
        let expired = flows
            .poll(&b.device_code, GRAPH_COMMAND_LINE_TOOLS, 900_000)
            .unwrap_err();
        assert_eq!((expired.error, expired.code), ("expired_token", 70020));
        let other = flows
            .start(&s, tenant, "11111111-2222-3333-4444-555555555555", "User.Read", 0)
            .unwrap_err();
        assert_eq!(other.code, 700016);
        let scope = flows
            .start(
                &s,
                tenant,
                GRAPH_COMMAND_LINE_TOOLS,
                "https://outlook.office365.com/SMTP.Send",
                0,
            )
            .unwrap_err();
        assert_eq!(scope.error, "invalid_scope");
        assert_eq!(
            flows
                .start(&s, tenant, GRAPH_COMMAND_LINE_TOOLS, "openid profile", 0)
                .unwrap_err()
                .code,
            900144
        );
    }
}
