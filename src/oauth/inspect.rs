//! Reading an access token's header and claims for display. Not a validation: Exchange tokens
//! carry a `nonce` header that makes their signature check fail outside Microsoft, by design.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Header and claims of a JWT, or `None` when the token is opaque.
pub(crate) fn decode(jwt: &str) -> Option<(serde_json::Value, serde_json::Value)> {
    let mut parts = jwt.split('.');
    let mut part = || -> Option<serde_json::Value> {
        let bytes = URL_SAFE_NO_PAD.decode(parts.next()?.trim_end_matches('=')).ok()?;
        serde_json::from_slice(&bytes).ok()
    };
    let header = part()?;
    let claims = part()?;
    Some((header, claims))
}

#[cfg(test)]
mod tests {
    #[test]
    fn opaque_tokens_have_no_claims() {
        assert!(super::decode("EwBAAl3BAAUFFpUAo7J3Ve0bjLBWZWCclRC3EoAA").is_none());
        let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwczovL291dGxvb2sub2ZmaWNlMzY1LmNvbSJ9.c2ln";
        let (header, claims) = super::decode(jwt).unwrap();
        assert_eq!(
            (header["alg"].as_str(), claims["aud"].as_str()),
            (Some("RS256"), Some("https://outlook.office365.com"))
        );
    }
}
