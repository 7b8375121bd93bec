//! The token endpoint's answers, parsed without I/O: a token, or Entra's error with its AADSTS
//! code, trace and correlation ids (fact sheet §2.5, §2.6).

use serde::Deserialize;

use crate::secret::Secret;

/// A successful token response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TokenResponse {
    /// The bearer token.
    pub(crate) access_token: Secret,
    /// Seconds of validity from now.
    pub(crate) expires_in: u64,
    /// `refresh_in`, when Entra suggests refreshing early.
    pub(crate) refresh_in: Option<u64>,
}

/// Entra's error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EntraError {
    /// HTTP status.
    pub(crate) status: u16,
    /// OAuth `error` (`invalid_client`, …).
    pub(crate) error: String,
    /// `error_codes`: AADSTS numbers, the first is the one that matters.
    pub(crate) codes: Vec<u32>,
    /// `error_description` without its trailing trace lines.
    pub(crate) description: String,
    /// `trace_id`.
    pub(crate) trace_id: Option<String>,
    /// `correlation_id`.
    pub(crate) correlation_id: Option<String>,
    /// `timestamp`.
    pub(crate) timestamp: Option<String>,
}

impl std::fmt::Display for EntraError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.description)?;
        if let (Some(trace), Some(correlation)) = (&self.trace_id, &self.correlation_id) {
            write!(f, " (trace id {trace}, correlation id {correlation})")?;
        }
        Ok(())
    }
}

impl std::error::Error for EntraError {}

/// AADSTS codes Microsoft documents as transient.
const TRANSIENT_CODES: [u32; 5] = [90024, 50033, 90033, 90006, 90055];

impl EntraError {
    /// The AADSTS number.
    pub(crate) fn code(&self) -> Option<u32> {
        self.codes.first().copied()
    }

    /// Whether trying again later can succeed: server errors, throttling, and the AADSTS codes
    /// Microsoft calls retryable.
    pub(crate) fn is_transient(&self) -> bool {
        self.status >= 500
            || self.status == 429
            || self.error == "temporarily_unavailable"
            || self.codes.iter().any(|c| TRANSIENT_CODES.contains(c))
    }
}

#[derive(Deserialize)]
struct RawSuccess {
    access_token: String,
    #[serde(default)]
    token_type: Option<String>,
    expires_in: Option<Seconds>,
    #[serde(default)]
    refresh_in: Option<Seconds>,
}

/// `expires_in` is a number from the v2.0 endpoint and a string from v1-style ones.
#[derive(Deserialize)]
#[serde(untagged)]
enum Seconds {
    Number(u64),
    Float(f64),
    Text(String),
}

impl Seconds {
    fn value(&self) -> Option<u64> {
        match self {
            Seconds::Number(n) => Some(*n),
            Seconds::Float(f) if *f >= 0.0 => Some(*f as u64),
            Seconds::Float(_) => None,
            Seconds::Text(t) => t.trim().parse().ok(),
        }
    }
}

#[derive(Deserialize)]
struct RawError {
    error: Option<String>,
    error_description: Option<String>,
    #[serde(default)]
    error_codes: Vec<u32>,
    trace_id: Option<String>,
    correlation_id: Option<String>,
    timestamp: Option<String>,
}

/// Why a 200 answer is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the token endpoint's answer is not a token response: {0}")]
pub(crate) struct MalformedResponse(pub String);

/// Parses a 200 answer.
pub(crate) fn parse_token(body: &[u8]) -> Result<TokenResponse, MalformedResponse> {
    let raw: RawSuccess = serde_json::from_slice(body).map_err(|e| MalformedResponse(e.to_string()))?;
    if raw.access_token.is_empty() {
        return Err(MalformedResponse("empty access_token".into()));
    }
    if let Some(kind) = &raw.token_type
        && !kind.eq_ignore_ascii_case("bearer")
    {
        return Err(MalformedResponse(format!("token_type is `{kind}`, not Bearer")));
    }
    let expires_in = raw
        .expires_in
        .as_ref()
        .and_then(Seconds::value)
        .ok_or_else(|| MalformedResponse("expires_in is missing or not a number".into()))?;
    Ok(TokenResponse {
        access_token: Secret::new(raw.access_token),
        expires_in,
        refresh_in: raw.refresh_in.as_ref().and_then(Seconds::value),
    })
}

/// Parses an error answer; a body that is not Entra's JSON still yields an error naming the
/// status and the start of the body.
pub(crate) fn parse_error(status: u16, body: &[u8]) -> EntraError {
    match serde_json::from_slice::<RawError>(body) {
        Ok(raw) if raw.error.is_some() || !raw.error_codes.is_empty() => {
            let full = raw.error_description.unwrap_or_default();
            // Entra appends "\r\nTrace ID: …\r\nCorrelation ID: …\r\nTimestamp: …".
            let mut description = full.split("\r\nTrace ID:").next().unwrap_or_default().trim().to_owned();
            if description.is_empty() {
                // An error without its description still has to say something.
                let error = raw.error.as_deref().unwrap_or_default();
                description = format!("HTTP {status}, error `{error}` without a description");
            }
            let mut codes = raw.error_codes;
            if codes.is_empty()
                && let Some(code) = aadsts_code(&description)
            {
                codes.push(code);
            }
            EntraError {
                status,
                error: raw.error.unwrap_or_default(),
                codes,
                description,
                trace_id: raw.trace_id,
                correlation_id: raw.correlation_id,
                timestamp: raw.timestamp,
            }
        }
        _ => {
            let text = String::from_utf8_lossy(body);
            let snippet: String = text.chars().take(200).collect();
            EntraError {
                status,
                error: String::new(),
                codes: Vec::new(),
                description: if snippet.trim().is_empty() {
                    format!("HTTP {status} with no explanation")
                } else {
                    format!("HTTP {status}: {}", snippet.trim())
                },
                trace_id: None,
                correlation_id: None,
                timestamp: None,
            }
        }
    }
}

/// `AADSTS7000215: …` → 7000215.
fn aadsts_code(description: &str) -> Option<u32> {
    let rest = description.strip_prefix("AADSTS")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_shapes() {
        let token =
            parse_token(br#"{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"eyJ0"}"#)
                .unwrap();
        assert_eq!(
            (token.access_token.expose(), token.expires_in, token.refresh_in),
            ("eyJ0", 3599, None)
        );
        let text = parse_token(br#"{"access_token":"x","expires_in":"3600","refresh_in":"1800"}"#).unwrap();
        assert_eq!((text.expires_in, text.refresh_in), (3600, Some(1800)));
        assert!(parse_token(br#"{"access_token":"x"}"#).is_err());
        assert!(parse_token(br#"{"access_token":"","expires_in":1}"#).is_err());
        assert!(parse_token(br#"{"access_token":"x","expires_in":1,"token_type":"pop"}"#).is_err());
        assert!(parse_token(b"<html>").is_err());
    }

    #[test]
    fn entra_errors() {
        let body = br#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.\r\nTrace ID: t-1\r\nCorrelation ID: c-1\r\nTimestamp: 2026-11-23 18:14:36Z","error_codes":[7000215],"timestamp":"2026-11-23 18:14:36Z","trace_id":"t-1","correlation_id":"c-1"}"#;
        let e = parse_error(401, body);
        assert_eq!(e.code(), Some(7000215));
        assert_eq!(e.description, "AADSTS7000215: Invalid client secret provided.");
        assert!(!e.is_transient());
        assert_eq!(
            e.to_string(),
            "AADSTS7000215: Invalid client secret provided. (trace id t-1, correlation id c-1)"
        );

        let throttled = parse_error(429, br#"{"error":"temporarily_unavailable","error_codes":[90055]}"#);
        assert!(throttled.is_transient());
        let transient = parse_error(
            400,
            br#"{"error":"invalid_request","error_description":"AADSTS90033: MSODS down"}"#,
        );
        assert_eq!(transient.code(), Some(90033));
        assert!(transient.is_transient());

        // Found by the fuzzer: a JSON array fills the fields by position, all empty.
        let array = parse_error(400, br#"["","",[],"","",""]"#);
        assert_eq!(array.description, "HTTP 400, error `` without a description");

        let html = parse_error(502, b"<html>Bad Gateway</html>");
        assert!(html.is_transient());
        assert_eq!(html.description, "HTTP 502: <html>Bad Gateway</html>");
        assert_eq!(parse_error(503, b"").description, "HTTP 503 with no explanation");
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_any_body(body in proptest::collection::vec(proptest::num::u8::ANY, 0..512), status in 100u16..600) {
            let _ = parse_token(&body);
            let e = parse_error(status, &body);
            proptest::prop_assert!(!e.description.is_empty());
        }

        #[test]
        fn json_with_arbitrary_fields_never_panics(
            token in "[ -~]{0,40}", expires in proptest::option::of(0u64..100_000), error in "[a-z_]{0,20}", code in 0u32..10_000_000,
        ) {
            let body = serde_json::json!({"access_token": token, "expires_in": expires, "error": error, "error_codes": [code]}).to_string();
            let _ = parse_token(body.as_bytes());
            proptest::prop_assert_eq!(parse_error(400, body.as_bytes()).code(), Some(code));
        }
    }
}
