//! Workload identity federation, without I/O: tokens of the issuers the emulator stands in for
//! (a Kubernetes cluster's service account tokens), and Entra's check of such a token presented
//! as a client assertion against the app's federated identity credentials.
//!
//! Entra matches issuer, then subject, then audience, each exactly (case-sensitive since
//! 2024), and verifies the signature with the keys of the issuer's OIDC discovery document. The
//! emulator does not fetch discovery documents: it knows the key of the issuers it signs for
//! (`Scenario::issuers`) and its own (managed identity tokens, issued by Entra itself), and
//! answers AADSTS50166 for any other issuer a credential names.

use jsonwebtoken::{Algorithm, Header, Validation};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::errors::{EntraError, FederatedPart};
use crate::model::App;
use crate::pki::TokenSigningKey;

/// Claims of a federated token, as a projected service account token carries them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FederatedClaims {
    /// Issuer URL.
    pub iss: String,
    /// Subject.
    pub sub: String,
    /// Audience (one, or several).
    pub aud: serde_json::Value,
    /// Issued at.
    #[serde(default)]
    pub iat: Option<f64>,
    /// Not before.
    #[serde(default)]
    pub nbf: Option<f64>,
    /// Expiry.
    pub exp: f64,
}

/// A token of `issuer` for `subject` and `audience`, valid for `lifetime_secs` from `now`,
/// signed with the key of the issuers the emulator stands in for.
pub fn mint(
    key: &TokenSigningKey,
    issuer: &str,
    subject: &str,
    audience: &str,
    now: i64,
    lifetime_secs: i64,
) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(key.kid.clone());
    let claims = FederatedClaims {
        iss: issuer.to_owned(),
        sub: subject.to_owned(),
        aud: serde_json::Value::String(audience.to_owned()),
        iat: Some(now as f64),
        nbf: Some(now as f64),
        exp: (now + lifetime_secs) as f64,
    };
    jsonwebtoken::encode(&header, &claims, key.encoding_key()).expect("RS256 signing with a valid key")
}

/// Checks a federated token presented by `app`. `iss` is the token's issuer, read before its
/// signature was checked; `key_for` gives that issuer's signing key, if the emulator knows it.
pub fn check<'k>(
    app: &App,
    jwt: &str,
    iss: &str,
    now: OffsetDateTime,
    key_for: impl FnOnce(&str) -> Option<&'k TokenSigningKey>,
) -> Result<(), EntraError> {
    let by_issuer: Vec<_> = app.federated_credentials.iter().filter(|f| f.issuer == iss).collect();
    if by_issuer.is_empty() {
        return Err(EntraError::no_federated_match(FederatedPart::Issuer, iss));
    }
    let key = key_for(iss).ok_or_else(|| EntraError::issuer_keys_unavailable(iss))?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<FederatedClaims>(jwt, key.decoding_key(), &validation)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => EntraError::malformed_assertion(
                "The signature of the federated token does not verify with its issuer's keys.",
            ),
            _ => EntraError::malformed_assertion(&e.to_string()),
        })?
        .claims;
    let by_subject: Vec<_> = by_issuer.iter().filter(|f| f.subject == claims.sub).collect();
    if by_subject.is_empty() {
        let part = if by_issuer.iter().any(|f| f.subject.eq_ignore_ascii_case(&claims.sub)) {
            FederatedPart::SubjectCase
        } else {
            FederatedPart::Subject
        };
        return Err(EntraError::no_federated_match(part, &claims.sub));
    }
    let audiences: Vec<&str> = match &claims.aud {
        serde_json::Value::String(a) => vec![a.as_str()],
        serde_json::Value::Array(a) => a.iter().filter_map(serde_json::Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !by_subject
        .iter()
        .any(|f| f.audiences.iter().any(|a| audiences.contains(&a.as_str())))
    {
        return Err(EntraError::no_federated_match(
            FederatedPart::Audience,
            &audiences.join(", "),
        ));
    }
    let t = now.unix_timestamp();
    let (exp, nbf) = (claims.exp as i64, claims.nbf.map(|n| n as i64));
    if t > exp + super::grant::SKEW_SECS || nbf.is_some_and(|nbf| t + super::grant::SKEW_SECS < nbf) {
        return Err(EntraError::assertion_time_range(now, nbf, exp));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::{self, CLIENT};
    use crate::model::FederatedCredential;

    const ISSUER: &str = "https://oidc.aks.test/cluster-1/";
    const SUBJECT: &str = "system:serviceaccount:mail:relay";
    const AUDIENCE: &str = "api://AzureADTokenExchange";

    fn scenario() -> crate::model::Scenario {
        let mut scenario = fixture::contoso("unused", None);
        scenario.issuers = vec![ISSUER.to_owned(), "https://elsewhere.test".to_owned()];
        scenario.tenants[0].apps[0]
            .federated_credentials
            .push(FederatedCredential::new(ISSUER, SUBJECT));
        scenario
    }

    fn outcome(
        scenario: &crate::model::Scenario,
        key: &TokenSigningKey,
        jwt: &str,
        now: OffsetDateTime,
    ) -> Result<(), u32> {
        let app = scenario.tenants[0].app_by_client_id(CLIENT).unwrap();
        let iss = jsonwebtoken::dangerous::insecure_decode::<FederatedClaims>(jwt)
            .unwrap()
            .claims
            .iss;
        let known = |iss: &str| scenario.issuers.iter().any(|i| i == iss).then_some(key);
        check(app, jwt, &iss, now, known).map_err(|e| e.code)
    }

    #[test]
    fn issuer_subject_audience_and_time_are_checked_in_entras_order() {
        let scenario = scenario();
        let key = TokenSigningKey::generate().unwrap();
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let t = now.unix_timestamp();
        let token = |iss: &str, sub: &str, aud: &str, issued: i64| mint(&key, iss, sub, aud, issued, 3600);
        let cases: [(&str, String, Result<(), u32>); 8] = [
            ("matching", token(ISSUER, SUBJECT, AUDIENCE, t), Ok(())),
            (
                "issuer without its trailing slash",
                token(ISSUER.trim_end_matches('/'), SUBJECT, AUDIENCE, t),
                Err(700211),
            ),
            (
                "an issuer no credential names",
                token("https://elsewhere.test", SUBJECT, AUDIENCE, t),
                Err(700211),
            ),
            (
                "another service account",
                token(ISSUER, "system:serviceaccount:mail:other", AUDIENCE, t),
                Err(700213),
            ),
            (
                "subject differing in case",
                token(ISSUER, &SUBJECT.to_uppercase(), AUDIENCE, t),
                Err(7002138),
            ),
            (
                "another audience",
                token(ISSUER, SUBJECT, "https://kubernetes.default.svc", t),
                Err(700212),
            ),
            (
                "expired an hour ago",
                token(ISSUER, SUBJECT, AUDIENCE, t - 7200),
                Err(700024),
            ),
            (
                "signed by another key",
                mint(
                    &TokenSigningKey::generate().unwrap(),
                    ISSUER,
                    SUBJECT,
                    AUDIENCE,
                    t,
                    3600,
                ),
                Err(50027),
            ),
        ];
        for (what, jwt, expected) in cases {
            assert_eq!(outcome(&scenario, &key, &jwt, now), expected, "{what}");
        }
    }

    #[test]
    fn a_credential_naming_an_issuer_the_emulator_does_not_sign_for_cannot_be_verified() {
        let mut scenario = scenario();
        scenario.issuers.clear();
        let key = TokenSigningKey::generate().unwrap();
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let jwt = mint(&key, ISSUER, SUBJECT, AUDIENCE, now.unix_timestamp(), 3600);
        assert_eq!(outcome(&scenario, &key, &jwt, now), Err(50166));
    }

    #[test]
    fn the_error_texts_name_what_did_not_match() {
        let e = EntraError::no_federated_match(FederatedPart::Subject, SUBJECT);
        assert_eq!(e.error, "invalid_client");
        assert!(e.message.starts_with(&format!(
            "No matching federated identity record found for presented assertion subject '{SUBJECT}'."
        )));
        let e = EntraError::no_federated_match(FederatedPart::SubjectCase, SUBJECT);
        assert!(
            e.message
                .contains("matches with case-insensitive comparison, but not with case-sensitive")
        );
    }
}
