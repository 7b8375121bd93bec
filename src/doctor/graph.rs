//! The doctor's checks for an account with `transport = "graph"`: the path to Microsoft Graph
//! (TCP and TLS to its host), what Graph says about the app and the mailbox (the `Mail.Send`
//! permission, an application access policy or RBAC scope that leaves the mailbox out, the
//! licence), found without sending anything, and optionally a real test message.

use std::time::Duration;

use super::{Check, CheckId, Options, Status, failure, skip};
use crate::account::Account;
use crate::catalog::{Evidence, Ids};
use crate::graph::GraphSendError;
use crate::oauth::AccessToken;
use crate::submit::{self, SubmitError};

/// Graph's host and port from `graph_url`.
fn target(account: &Account) -> (String, u16) {
    super::network::host_of(&account.graph_url).unwrap_or_else(|| (account.graph_url.clone(), 443))
}

pub(super) async fn tcp(account: &Account, ids: &Ids) -> Check {
    let (host, port) = target(account);
    super::network::connect_check(&host, port, " (Microsoft Graph)", ids).await
}

/// HTTPS to Graph's root with the configured trust anchors: any HTTP answer means TLS held.
pub(super) async fn tls(account: &Account, ids: &Ids) -> Check {
    let client = crate::tls::client_config(account.ca_file.as_deref())
        .map_err(SubmitError::from)
        .and_then(|tls| submit::http_client(&tls));
    let client = match client {
        Ok(c) => c,
        Err(e) => return failure(CheckId::Tls, &e, &Evidence::default(), ids),
    };
    match client
        .get(&account.graph_url)
        .timeout(Duration::from_secs(15))
        .send()
        .await
    {
        Ok(_) => Check::new(
            CheckId::Tls,
            Status::Pass,
            format!("HTTPS to {} established; the certificate is trusted", account.graph_url),
        ),
        Err(e) => {
            let error = SubmitError::Graph(GraphSendError::Network {
                url: account.graph_url.clone(),
                source: e.without_url(),
            });
            failure(CheckId::Tls, &error, &Evidence::default(), ids)
        }
    }
}

/// `graph` (the probe) and `send`.
pub(super) async fn checks(
    checks: &mut Vec<Check>,
    account: &Account,
    token: Option<&AccessToken>,
    options: &Options,
    evidence: &Evidence,
    ids: &mut Ids,
) {
    let Some(token) = token else {
        skip(checks, &[CheckId::Graph, CheckId::Send], "needs a token");
        return;
    };
    let http = match crate::tls::client_config(account.ca_file.as_deref())
        .map_err(SubmitError::from)
        .and_then(|tls| submit::http_client(&tls))
    {
        Ok(h) => h,
        Err(e) => {
            checks.push(failure(CheckId::Graph, &e, evidence, ids));
            return;
        }
    };
    let mailbox = &account.mailbox.value;
    match crate::graph::probe(&http, &account.graph_url, mailbox, &token.token).await {
        Ok(()) => checks.push(
            Check::new(
                CheckId::Graph,
                Status::Pass,
                format!("Microsoft Graph lets the app send as {mailbox}"),
            )
            .evidence("Mail.Send, the application access policies and the mailbox's licence allow it")
            .evidence("checked with a request Graph refuses as invalid MIME: nothing was sent"),
        ),
        Err(e) => {
            checks.push(failure(CheckId::Graph, &SubmitError::Graph(e), evidence, ids));
            skip(
                checks,
                &[CheckId::Send],
                "needs Graph to accept the app for the mailbox",
            );
            return;
        }
    }
    checks.push(send_test(account, options, evidence, ids).await);
}

async fn send_test(account: &Account, options: &Options, evidence: &Evidence, ids: &mut Ids) -> Check {
    let (outgoing, from, to) = match super::test_message(account, options, ids, "Microsoft Graph") {
        Ok(message) => message,
        Err(check) => return *check,
    };
    let submitter = match submit::Submitter::new(account.clone(), &submit::Options::default()) {
        Ok(s) => s,
        Err(e) => return failure(CheckId::Send, &e, evidence, ids),
    };
    match submitter.submit_graph_once(&outgoing).await {
        Ok(_) => Check::new(
            CheckId::Send,
            Status::Pass,
            format!("test message from {from} to {to} accepted by Microsoft Graph (202)"),
        ),
        Err(e) => failure(CheckId::Send, &e, evidence, ids),
    }
}
