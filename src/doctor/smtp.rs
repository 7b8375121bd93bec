//! The SMTP checks on the connection `tls` opened: `ehlo` (the AUTH mechanism is offered),
//! `auth`, and `send` (a real test message, when asked).

use super::{Check, CheckId, Options, Status, failure, skip};
use crate::account::{Account, AccountAuth};
use crate::catalog::{self, Evidence, Ids, Symptom};
use crate::smtp::{self, Connection, Credentials};
use crate::submit::SubmitError;
use crate::sysexits::Code;

/// `ehlo`, `auth` and `send` on the connection `tls` opened; `credentials` is `None` when no
/// token could be had.
pub(super) async fn checks(
    checks: &mut Vec<Check>,
    account: &Account,
    mut connection: Connection,
    credentials: Option<Credentials>,
    options: &Options,
    evidence: &Evidence,
    ids: &mut Ids,
) {
    let offered = connection.capabilities().auth.join(" ");
    let oauth = matches!(credentials, Some(Credentials::XOAuth2 { .. }))
        || (credentials.is_none() && matches!(account.auth, AccountAuth::OAuth { .. }));
    let mechanism = if oauth { "XOAUTH2" } else { "PLAIN or LOGIN" };
    let offers = if oauth {
        connection.capabilities().offers_auth("XOAUTH2")
    } else {
        connection.capabilities().offers_auth("PLAIN") || connection.capabilities().offers_auth("LOGIN")
    };
    if !offers {
        checks.push(
            Check::new(
                CheckId::Ehlo,
                Status::Fail,
                format!("the server does not offer AUTH {mechanism}"),
            )
            .evidence(format!(
                "AUTH mechanisms offered: {}",
                if offered.is_empty() { "none" } else { &offered }
            ))
            .failed_with(Symptom::Xoauth2NotOffered, evidence, ids),
        );
        skip(checks, &[CheckId::Auth, CheckId::Send], "needs AUTH");
        return;
    }
    checks.push(Check::new(
        CheckId::Ehlo,
        Status::Pass,
        format!("after STARTTLS the server offers AUTH {offered}"),
    ));
    let Some(credentials) = credentials else {
        skip(checks, &[CheckId::Auth, CheckId::Send], "needs a token");
        return;
    };
    if let Err(e) = connection.authenticate(&credentials).await {
        checks.push(failure(CheckId::Auth, &SubmitError::Smtp(e), evidence, ids));
        skip(checks, &[CheckId::Send], "needs a successful AUTH");
        return;
    }
    checks.push(Check::new(
        CheckId::Auth,
        Status::Pass,
        format!("AUTH accepted for {}", account.sasl_user()),
    ));
    checks.push(send_test(account, &mut connection, options, evidence, ids).await);
    connection.quit().await;
}

async fn send_test(
    account: &Account,
    connection: &mut Connection,
    options: &Options,
    evidence: &Evidence,
    ids: &mut Ids,
) -> Check {
    let through = format!("{}:{}", account.smtp.host, account.smtp.port);
    let (outgoing, from, to) = match super::test_message(account, options, ids, &through) {
        Ok(message) => message,
        Err(check) => return *check,
    };
    if !account.may_send_as(&from) {
        let diagnosis = catalog::explain(
            catalog::for_reply(&smtp::Reply::new(554, vec!["5.2.252 SendAsDenied".into()])).expect("in the catalog"),
            evidence,
        )
        .render(ids);
        return Check::new(
            CheckId::Send,
            Status::Fail,
            format!(
                "{from} is neither the mailbox nor an allowed sender: Exchange would answer 554 5.2.252 SendAsDenied"
            ),
        )
        .failed(Code::NoPerm, Some(diagnosis));
    }
    match connection.send_mail(&outgoing.envelope, &outgoing.content).await {
        Ok(delivery) => Check::new(
            CheckId::Send,
            Status::Pass,
            format!("test message from {from} to {to} accepted"),
        )
        .evidence(delivery.reply.to_string()),
        Err(e) => failure(CheckId::Send, &SubmitError::Smtp(e), evidence, ids),
    }
}
