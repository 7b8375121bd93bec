//! Tests of `submit.rs` against the emulator: what goes on the wire, and step timeouts.

use std::time::Duration;

use m365_emulator::fixture::MAILBOX;
use m365_emulator::{Fault, Stage};

use super::*;
use crate::message::{self, Compose, RawOptions};
use crate::testing::Tenant;
use crate::verdict::Verdict;

fn message(subject: &str) -> Outgoing {
    message::compose(&Compose {
        from: MAILBOX.into(),
        to: vec!["bob@fabrikam.com".into()],
        subject: Some(subject.into()),
        text: Some("Hello".into()),
        ..Compose::default()
    })
    .unwrap()
}

#[tokio::test]
async fn utf8_headers_declare_smtputf8() {
    let tenant = Tenant::start().await;
    let options = Options {
        keep_transcript: true,
        ..Options::default()
    };
    let submitter = Submitter::new(tenant.account(), &options).unwrap();
    let raw = "From: mailer@contoso.com\r\nTo: bob@fabrikam.com\r\nSubject: Grüße\r\n\r\nÜber\r\n".as_bytes();
    let options = RawOptions {
        recipients: vec!["bob@fabrikam.com".into()],
        default_from: MAILBOX.into(),
        ..RawOptions::default()
    };
    let attempt = submitter.submit(&message::from_raw(raw, &options).unwrap()).await;
    attempt.outcome.unwrap();
    let mail = attempt
        .transcript
        .iter()
        .find(|l| l.starts_with("C: MAIL FROM"))
        .unwrap();
    assert!(mail.contains("BODY=8BITMIME") && mail.contains("SMTPUTF8"), "{mail}");
}

#[tokio::test]
async fn a_silent_server_times_out_as_a_temporary_failure() {
    let tenant = Tenant::start().await;
    tenant.emulator.faults().add(Fault::hang(Stage::Mail)).unwrap();
    let mut options = Options::default();
    options.timeouts.command = Duration::from_millis(500);
    let submitter = Submitter::new(tenant.account(), &options).unwrap();
    let error = submitter.submit(&message("Hang")).await.outcome.unwrap_err();
    assert!(matches!(error, SubmitError::Smtp(SmtpError::Timeout { .. })), "{error}");
    assert!(Verdict::of(&error).is_transient());
}
