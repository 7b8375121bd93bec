//! SASL for SMTP AUTH: the XOAUTH2 string, PLAIN and LOGIN, and the rules for sending them.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::secret::Secret;

/// RFC 4954 §4: the AUTH command line, initial response included, is at most 512 octets.
pub(crate) const AUTH_LINE_LIMIT: usize = 512;

/// How the client authenticates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Credentials {
    /// OAuth 2.0 bearer token for `user` (the mailbox) with `AUTH XOAUTH2`.
    XOAuth2 {
        /// Mailbox the token acts for.
        user: String,
        /// Access token.
        token: Secret,
    },
    /// Password with `AUTH PLAIN` (or `LOGIN` when PLAIN is not offered), for servers that
    /// still take passwords.
    Password {
        /// Login.
        user: String,
        /// Password.
        password: Secret,
    },
}

/// `base64("user=" user "\x01auth=Bearer " token "\x01\x01")` (Microsoft's XOAUTH2 format).
pub(crate) fn xoauth2(user: &str, token: &Secret) -> Secret {
    Secret::new(STANDARD.encode(format!("user={user}\x01auth=Bearer {}\x01\x01", token.expose())))
}

/// `base64("\0" user "\0" password)` (RFC 4616).
pub(crate) fn plain(user: &str, password: &Secret) -> Secret {
    Secret::new(STANDARD.encode(format!("\0{user}\0{}", password.expose())))
}

/// Base64 of a LOGIN prompt answer.
pub(crate) fn login_answer(text: &str) -> Secret {
    Secret::new(STANDARD.encode(text))
}

/// Whether `AUTH <mechanism> <initial response>` with its CRLF fits RFC 4954's 512 octets; when
/// it does not, the client sends `AUTH <mechanism>` and the response after the `334`.
pub(crate) fn initial_response_fits(mechanism: &str, initial_response: &str) -> bool {
    "AUTH ".len() + mechanism.len() + 1 + initial_response.len() + 2 <= AUTH_LINE_LIMIT
}

/// A `334` challenge after credentials is an error report (Gmail and RFC 7628 servers send
/// base64 JSON); returns its decoded text for the error message.
pub(crate) fn error_challenge_text(challenge: &str) -> Option<String> {
    let bytes = STANDARD.decode(challenge.trim()).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    (!text.trim().is_empty()).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn microsoft_documented_vector() {
        let encoded = xoauth2(
            "test@contoso.onmicrosoft.com",
            &"EwBAAl3BAAUFFpUAo7J3Ve0bjLBWZWCclRC3EoAA".into(),
        );
        assert_eq!(
            encoded.expose(),
            "dXNlcj10ZXN0QGNvbnRvc28ub25taWNyb3NvZnQuY29tAWF1dGg9QmVhcmVyIEV3QkFBbDNCQUFVRkZwVUFvN0ozVmUwYmpMQldaV0NjbFJDM0VvQUEBAQ=="
        );
    }

    #[test]
    fn the_512_octet_rule() {
        // "AUTH XOAUTH2 " is 13 octets and CRLF 2: 497 octets of response fit, 498 do not.
        assert!(initial_response_fits("XOAUTH2", &"a".repeat(497)));
        assert!(!initial_response_fits("XOAUTH2", &"a".repeat(498)));
    }

    #[test]
    fn plain_and_error_challenges() {
        assert_eq!(plain("u", &"p".into()).expose(), STANDARD.encode("\0u\0p"));
        let gmail = STANDARD.encode(r#"{"status":"400","schemes":"Bearer","scope":"https://mail.google.com/"}"#);
        assert!(error_challenge_text(&gmail).unwrap().contains("\"status\":\"400\""));
        assert_eq!(error_challenge_text(""), None);
    }
}
