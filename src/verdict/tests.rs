//! The verdict on each kind of failure, and the exit code it gives.

use super::*;
use crate::oauth::response::parse_error;

fn rejected(step: Step, line: &str) -> SubmitError {
    let code: u16 = line[..3].parse().unwrap();
    SubmitError::Smtp(SmtpError::Rejected {
        step,
        reply: Reply::new(code, vec![line[4..].to_owned()]),
        challenge: None,
    })
}

fn graph_refused(status: u16, code: &str, retry_after: Option<u64>) -> SubmitError {
    SubmitError::Graph(GraphSendError::Refused(GraphError {
        status,
        code: code.to_owned(),
        message: String::new(),
        retry_after: retry_after.map(Duration::from_secs),
    }))
}

fn entra(code: u32, error: &str, status: u16) -> SubmitError {
    let body = format!(r#"{{"error":"{error}","error_description":"AADSTS{code}: x","error_codes":[{code}]}}"#);
    SubmitError::Token(TokenError::Entra(Box::new(parse_error(status, body.as_bytes()))))
}

#[test]
fn the_catalog_decides_and_the_protocol_judges_what_it_does_not_know() {
    let cases: Vec<(SubmitError, Retry, Blame, Code, Option<&str>)> = vec![
        (
            rejected(Step::Auth, "535 5.7.3 Authentication unsuccessful"),
            Retry::Permanent,
            Blame::Credential,
            Code::NoPerm,
            Some("smtp/535-5.7.3"),
        ),
        (
            rejected(Step::Mail, "554 5.2.252 SendAsDenied; a not allowed to send as b"),
            Retry::Permanent,
            Blame::Sender,
            Code::NoPerm,
            Some("smtp/554-5.2.252-send-as"),
        ),
        (
            rejected(Step::Rcpt, "550 5.1.10 RESOLVER.ADR.RecipientNotFound"),
            Retry::Permanent,
            Blame::Message,
            Code::Unavailable,
            Some("smtp/550-5.1.10"),
        ),
        (
            rejected(
                Step::Content,
                "550 5.7.708 Access denied, traffic not accepted from this IP",
            ),
            Retry::AfterAccountFix,
            Blame::Account,
            Code::Unavailable,
            Some("smtp/550-5.7.708"),
        ),
        (
            rejected(
                Step::Mail,
                "432 4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded",
            ),
            Retry::AfterThrottling,
            Blame::Account,
            Code::TempFail,
            Some("smtp/432-4.3.2"),
        ),
        // Replies no entry knows: the class and the step decide.
        (
            rejected(Step::Rcpt, "550 5.9.9 no"),
            Retry::Permanent,
            Blame::Message,
            Code::Unavailable,
            None,
        ),
        (
            rejected(Step::Auth, "535 5.9.9 no"),
            Retry::Permanent,
            Blame::Credential,
            Code::NoPerm,
            None,
        ),
        (
            rejected(Step::Data, "452 4.9.9 later"),
            Retry::Transient,
            Blame::Message,
            Code::TempFail,
            None,
        ),
        (
            rejected(Step::Ehlo, "554 5.9.9 go away"),
            Retry::Permanent,
            Blame::Path,
            Code::Unavailable,
            None,
        ),
        (
            entra(7000215, "invalid_client", 401),
            Retry::Permanent,
            Blame::Credential,
            Code::NoPerm,
            Some("aadsts/7000215"),
        ),
        (
            entra(90002, "invalid_request", 400),
            Retry::Permanent,
            Blame::Configuration,
            Code::Config,
            Some("aadsts/90002"),
        ),
        // AADSTS codes the catalog lacks: the OAuth error field and the status decide.
        (
            entra(1, "invalid_client", 401),
            Retry::Permanent,
            Blame::Credential,
            Code::NoPerm,
            None,
        ),
        (
            entra(1, "invalid_scope", 400),
            Retry::Permanent,
            Blame::Configuration,
            Code::Config,
            None,
        ),
        (
            entra(1, "server_error", 503),
            Retry::Transient,
            Blame::Path,
            Code::TempFail,
            None,
        ),
        (
            graph_refused(403, "ErrorSendAsDenied", None),
            Retry::Permanent,
            Blame::Sender,
            Code::NoPerm,
            Some("graph/403/ErrorSendAsDenied"),
        ),
        (
            graph_refused(429, "", Some(7)),
            Retry::AfterThrottling,
            Blame::Account,
            Code::TempFail,
            Some("graph/429/"),
        ),
        (
            graph_refused(503, "", None),
            Retry::AfterThrottling,
            Blame::Account,
            Code::TempFail,
            None,
        ),
        (
            graph_refused(502, "", None),
            Retry::Transient,
            Blame::Path,
            Code::TempFail,
            None,
        ),
        (
            graph_refused(400, "ErrorMimeContentInvalid", None),
            Retry::Permanent,
            Blame::Message,
            Code::Unavailable,
            None,
        ),
        (
            graph_refused(409, "", None),
            Retry::Permanent,
            Blame::Account,
            Code::Unavailable,
            None,
        ),
        (
            SubmitError::Graph(GraphSendError::Message("no recipients".into())),
            Retry::Permanent,
            Blame::Message,
            Code::Data,
            None,
        ),
        (
            SubmitError::Smtp(SmtpError::Timeout {
                step: Step::Connect,
                after: Duration::from_secs(10),
            }),
            Retry::Transient,
            Blame::Path,
            Code::TempFail,
            Some("symptom/port-blocked"),
        ),
        (
            SubmitError::Smtp(SmtpError::NotOffered {
                what: "AUTH XOAUTH2",
                offered: "LOGIN".into(),
            }),
            Retry::Permanent,
            Blame::Path,
            Code::Unavailable,
            Some("symptom/xoauth2-not-offered"),
        ),
        (
            SubmitError::Smtp(SmtpError::NotOffered {
                what: "SMTPUTF8",
                offered: String::new(),
            }),
            Retry::Permanent,
            Blame::Message,
            Code::Unavailable,
            None,
        ),
        (
            SubmitError::GraphWithoutOAuth,
            Retry::Permanent,
            Blame::Configuration,
            Code::Config,
            None,
        ),
    ];
    for (error, retry, blame, code, entry) in cases {
        let verdict = Verdict::of(&error);
        assert_eq!(
            (
                verdict.retry,
                verdict.blame,
                verdict.code(),
                verdict.entry.map(Entry::id).as_deref()
            ),
            (retry, blame, code, entry),
            "{error}"
        );
    }
}

#[test]
fn retry_after_travels_with_the_verdict() {
    let verdict = Verdict::of(&graph_refused(429, "", Some(7)));
    assert_eq!(verdict.retry_after, Some(Duration::from_secs(7)));
    assert!(verdict.is_transient() && !verdict.blames_message());
}

#[test]
fn a_certificate_nobody_vouches_for_is_recognised_by_type_not_by_words() {
    let untrusted = std::io::Error::other(rustls::Error::InvalidCertificate(
        rustls::CertificateError::UnknownIssuer,
    ));
    let verdict = Verdict::of(&SubmitError::Smtp(SmtpError::Tls {
        host: "smtp.office365.com".into(),
        source: untrusted,
    }));
    assert_eq!(verdict.entry.map(Entry::id).as_deref(), Some("symptom/tls-untrusted"));
    assert_eq!(verdict.code(), Code::Config);
    // The word alone is not enough.
    let worded = std::io::Error::other("certificate: handshake aborted by peer");
    let verdict = Verdict::of(&SubmitError::Smtp(SmtpError::Tls {
        host: "smtp.office365.com".into(),
        source: worded,
    }));
    assert_eq!(verdict.entry, None);
}
