//! Client assertions (private_key_jwt) signed with the app's certificate (fact sheet §2.3).

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, Header};
use serde::Serialize;

use super::credential::Certificate;
use crate::clock::Timestamp;

/// How the assertion is signed and which thumbprint names the key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum AssertionStyle {
    /// PS256 with `x5t#S256`: current Entra guidance and MSAL's default for certificates.
    #[default]
    Ps256,
    /// RS256 with `x5t` (SHA-1): older Entra guidance, ADFS.
    Rs256,
}

impl std::str::FromStr for AssertionStyle {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "ps256" => Ok(Self::Ps256),
            "rs256" => Ok(Self::Rs256),
            _ => Err(format!("unknown assertion style `{s}`: expected ps256 or rs256")),
        }
    }
}

/// Lifetime of an assertion; Entra recommends 5–10 minutes.
pub(crate) const LIFETIME: Duration = Duration::from_secs(600);
/// An assertion is reused until this long before it expires, as MSAL does.
pub(crate) const REUSE_MARGIN: Duration = Duration::from_secs(60);

#[derive(Serialize)]
struct Claims<'a> {
    aud: &'a str,
    iss: &'a str,
    sub: &'a str,
    jti: String,
    nbf: i64,
    iat: i64,
    exp: i64,
}

/// A signed assertion and when it expires.
#[derive(Debug, Clone)]
pub(crate) struct Assertion {
    /// The JWT.
    pub(crate) jwt: crate::secret::Secret,
    /// `exp`.
    pub(crate) expires_at: Timestamp,
}

impl Assertion {
    /// Whether it can still be sent at `now`.
    pub(crate) fn reusable(&self, now: Timestamp) -> bool {
        now < self.expires_at - REUSE_MARGIN
    }
}

/// Signs an assertion for `client_id` addressed to `token_endpoint`, valid from `now`.
pub(crate) fn sign(
    certificate: &Certificate,
    style: AssertionStyle,
    include_x5c: bool,
    client_id: &str,
    token_endpoint: &str,
    now: Timestamp,
) -> Result<Assertion, jsonwebtoken::errors::Error> {
    let mut header = Header::new(match style {
        AssertionStyle::Ps256 => Algorithm::PS256,
        AssertionStyle::Rs256 => Algorithm::RS256,
    });
    header.typ = Some("JWT".to_owned());
    match style {
        AssertionStyle::Ps256 => header.x5t_s256 = Some(URL_SAFE_NO_PAD.encode(certificate.sha256)),
        AssertionStyle::Rs256 => header.x5t = Some(URL_SAFE_NO_PAD.encode(certificate.sha1)),
    }
    if include_x5c {
        header.x5c = Some(certificate.chain.iter().map(|der| STANDARD.encode(der)).collect());
    }
    let claims = Claims {
        aud: token_endpoint,
        iss: client_id,
        sub: client_id,
        jti: uuid::Uuid::new_v4().to_string(),
        nbf: now.unix_secs(),
        iat: now.unix_secs(),
        exp: (now + LIFETIME).unix_secs(),
    };
    let jwt = jsonwebtoken::encode(&header, &claims, certificate.signing_key())?;
    Ok(Assertion {
        jwt: jwt.into(),
        expires_at: Timestamp::from_unix_secs(claims.exp),
    })
}
