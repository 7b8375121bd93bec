//! The token request as Entra reads it: form fields plus an optional HTTP Basic header.
//! Unknown fields (MSAL's `client_info`, `claims`, …) are ignored, as Entra ignores them.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// The assertion type of certificate and federated credentials.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A parsed token request.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TokenRequest {
    /// `grant_type`.
    pub grant_type: Option<String>,
    /// `client_id` (from the form, else from the Basic header).
    pub client_id: Option<String>,
    /// `scope`.
    pub scope: Option<String>,
    /// `device_code`, in the device authorization grant.
    pub device_code: Option<String>,
    /// How the client proves itself.
    pub credential: Credential,
}

/// The client's proof of identity.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum Credential {
    /// Nothing.
    #[default]
    None,
    /// `client_secret`, in the form or the Basic header.
    Secret(String),
    /// `client_assertion` with its declared type.
    Assertion {
        /// `client_assertion_type`.
        kind: Option<String>,
        /// The JWT.
        jwt: String,
    },
}

impl std::fmt::Debug for TokenRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenRequest")
            .field("grant_type", &self.grant_type)
            .field("client_id", &self.client_id)
            .field("scope", &self.scope)
            .field("device_code", &self.device_code.as_ref().map(|_| "[redacted]"))
            .field("credential", &self.credential)
            .finish()
    }
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Credential::None => "None",
            Credential::Secret(_) => "Secret([redacted])",
            Credential::Assertion { .. } => "Assertion([redacted])",
        })
    }
}

impl TokenRequest {
    /// Reads the form body and the `Authorization` header value, if any.
    pub fn parse(body: &[u8], authorization: Option<&str>) -> Self {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).unwrap_or_default();
        let field = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .filter(|v| !v.is_empty())
        };
        let basic = authorization.and_then(basic_credentials);
        let credential = match (field("client_assertion"), field("client_secret"), &basic) {
            (Some(jwt), _, _) => Credential::Assertion {
                kind: field("client_assertion_type"),
                jwt,
            },
            (None, Some(secret), _) => Credential::Secret(secret),
            (None, None, Some((_, secret))) => Credential::Secret(secret.clone()),
            (None, None, None) => Credential::None,
        };
        Self {
            grant_type: field("grant_type"),
            client_id: field("client_id").or_else(|| basic.map(|(id, _)| id)),
            scope: field("scope"),
            device_code: field("device_code"),
            credential,
        }
    }
}

/// RFC 6749 §2.3.1: `Basic base64(urlencode(client_id) ":" urlencode(secret))`.
fn basic_credentials(header: &str) -> Option<(String, String)> {
    let (scheme, value) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(value.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let unescape = |s: &str| {
        serde_urlencoded::from_str::<Vec<(String, String)>>(&format!("v={s}"))
            .ok()
            .and_then(|mut v| v.pop())
            .map(|(_, v)| v)
    };
    Some((unescape(id)?, unescape(secret)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_fields_and_unknown_extras() {
        let body = b"client_id=abc&scope=https%3A%2F%2Foutlook.office365.com%2F.default&client_secret=s%3D%2B&grant_type=client_credentials&client_info=1&claims=%7B%7D";
        let r = TokenRequest::parse(body, None);
        assert_eq!(r.grant_type.as_deref(), Some("client_credentials"));
        assert_eq!(r.client_id.as_deref(), Some("abc"));
        assert_eq!(r.scope.as_deref(), Some("https://outlook.office365.com/.default"));
        assert_eq!(r.credential, Credential::Secret("s=+".to_owned()));
    }

    #[test]
    fn basic_header_carries_id_and_secret() {
        let header = format!("Basic {}", STANDARD.encode("my%20app:p%40ss%3Aword"));
        let r = TokenRequest::parse(b"grant_type=client_credentials", Some(&header));
        assert_eq!(r.client_id.as_deref(), Some("my app"));
        assert_eq!(r.credential, Credential::Secret("p@ss:word".to_owned()));
    }

    #[test]
    fn assertion_wins_and_debug_redacts() {
        let body = format!(
            "client_assertion_type={}&client_assertion=eyJ.x.y&client_secret=zzz",
            urlencode(JWT_BEARER)
        );
        let r = TokenRequest::parse(body.as_bytes(), None);
        assert!(matches!(r.credential, Credential::Assertion { ref kind, .. } if kind.as_deref() == Some(JWT_BEARER)));
        let debug = format!("{r:?}");
        assert!(!debug.contains("eyJ") && !debug.contains("zzz"), "{debug}");
    }

    fn urlencode(s: &str) -> String {
        serde_urlencoded::to_string([("v", s)])
            .unwrap()
            .trim_start_matches("v=")
            .to_owned()
    }
}
