//! Access tokens: minted as Entra mints app-only v1.0 tokens, and checked when they come back in
//! `AUTH XOAUTH2`.

use jsonwebtoken::{Algorithm, Header, Validation};
use serde::{Deserialize, Serialize};

use super::grant::Grant;
use crate::pki::TokenSigningKey;

/// Claims of an app-only access token (fact sheet §1.6; Entra's access-token claims reference).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Audience: the resource.
    pub aud: String,
    /// `https://sts.windows.net/{tid}/`.
    pub iss: String,
    /// Issued at.
    pub iat: i64,
    /// Not before.
    pub nbf: i64,
    /// Expiry.
    pub exp: i64,
    /// Opaque Entra-internal value.
    pub aio: String,
    /// Display name of the client app.
    pub app_displayname: String,
    /// Client id.
    pub appid: String,
    /// `1` secret, `2` certificate.
    pub appidacr: String,
    /// Identity provider: the tenant itself.
    pub idp: String,
    /// `app` in app-only tokens.
    pub idtyp: String,
    /// Service principal object id.
    pub oid: String,
    /// Opaque Entra-internal value.
    pub rh: String,
    /// Application permissions with admin consent; absent when there are none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    /// Subject: the service principal.
    pub sub: String,
    /// Tenant id.
    pub tid: String,
    /// Token id.
    pub uti: String,
    /// Token version.
    pub ver: String,
}

/// Why an access token presented to SMTP is not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenRejection {
    /// Not a JWT, or claims missing.
    #[error("the token is not a well-formed access token")]
    Malformed,
    /// Not signed by this emulator's key.
    #[error("the token's signature does not verify")]
    BadSignature,
    /// Past `exp`.
    #[error("the token has expired")]
    Expired,
    /// Before `nbf`.
    #[error("the token is not valid yet")]
    NotYetValid,
}

/// Mints a token for a grant, valid `lifetime` seconds from `now`.
pub fn mint(grant: &Grant, key: &TokenSigningKey, now: i64, lifetime: u32) -> String {
    let issuer = format!("https://sts.windows.net/{}/", grant.tenant_id);
    let claims = AccessClaims {
        aud: grant.audience.clone(),
        iss: issuer.clone(),
        iat: now,
        nbf: now,
        exp: now + i64::from(lifetime),
        aio: opaque(),
        app_displayname: grant.app_name.clone(),
        appid: grant.client_id.clone(),
        appidacr: grant.appidacr.to_owned(),
        idp: issuer,
        idtyp: "app".to_owned(),
        oid: grant.service_principal_id.clone(),
        rh: opaque(),
        roles: (!grant.roles.is_empty()).then(|| grant.roles.clone()),
        sub: grant.service_principal_id.clone(),
        tid: grant.tenant_id.clone(),
        uti: opaque(),
        ver: "1.0".to_owned(),
    };
    let mut header = Header::new(Algorithm::RS256);
    header.typ = Some("JWT".to_owned());
    header.x5t = Some(key.kid.clone());
    header.kid = Some(key.kid.clone());
    // Exchange and Graph tokens carry a `nonce` header, which is why clients must not try to
    // validate them; the emulator keeps the shape.
    header.nonce = Some(opaque());
    jsonwebtoken::encode(&header, &claims, key.encoding_key()).expect("RS256 signing with a valid key")
}

/// Checks a token presented to the emulated services.
pub fn verify(token: &str, key: &TokenSigningKey, now: i64) -> Result<AccessClaims, TokenRejection> {
    let mut validation = Validation::new(Algorithm::RS256);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<AccessClaims>(token, key.decoding_key(), &validation)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => TokenRejection::BadSignature,
            _ => TokenRejection::Malformed,
        })?
        .claims;
    if now >= claims.exp {
        return Err(TokenRejection::Expired);
    }
    if now < claims.nbf {
        return Err(TokenRejection::NotYetValid);
    }
    Ok(claims)
}

fn opaque() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Api;

    fn grant(roles: &[&str]) -> Grant {
        Grant {
            tenant_id: "11111111-1111-1111-1111-111111111111".into(),
            client_id: "22222222-2222-2222-2222-222222222222".into(),
            app_name: "Mailer".into(),
            service_principal_id: "33333333-3333-3333-3333-333333333333".into(),
            api: Api::Exchange,
            audience: "https://outlook.office365.com".into(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            appidacr: "1",
        }
    }

    #[test]
    fn minted_tokens_verify_and_expire() {
        let key = TokenSigningKey::generate().unwrap();
        let token = mint(&grant(&["SMTP.SendAsApp"]), &key, 1_000, 3599);
        let claims = verify(&token, &key, 1_001).unwrap();
        assert_eq!(claims.roles.as_deref(), Some(&["SMTP.SendAsApp".to_owned()][..]));
        assert_eq!(
            claims.iss,
            "https://sts.windows.net/11111111-1111-1111-1111-111111111111/"
        );
        assert_eq!((claims.idtyp.as_str(), claims.ver.as_str()), ("app", "1.0"));
        assert_eq!(verify(&token, &key, 1_000 + 3599), Err(TokenRejection::Expired));
        assert!(token.len() > 512, "real tokens exceed RFC 4954's AUTH line, ours too");
    }

    #[test]
    fn no_roles_claim_without_consent_and_foreign_keys_fail() {
        let key = TokenSigningKey::generate().unwrap();
        let token = mint(&grant(&[]), &key, 1_000, 60);
        let payload = token.split('.').nth(1).unwrap();
        use base64::Engine as _;
        let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap();
        assert!(!String::from_utf8(json).unwrap().contains("roles"));
        let other = TokenSigningKey::generate().unwrap();
        assert_eq!(verify(&token, &other, 1_001), Err(TokenRejection::BadSignature));
        assert_eq!(verify("not a token", &key, 1_001), Err(TokenRejection::Malformed));
    }
}
