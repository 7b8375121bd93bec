//! `doctor`: every link of the chain checked in order, each with its evidence and, when it
//! fails, the cause and the fix from the catalog. A check that cannot run because an earlier one
//! failed is reported as skipped, never dropped.

use serde::Serialize;

use crate::account::{Account, Transport};
use crate::catalog::{self, Entry, Evidence, Ids, Rendered, Symptom};
use crate::config::{Config, ConfigError};
use crate::message;
use crate::oauth::inspect;
use crate::submit::SubmitError;
use crate::sysexits::Code;
use crate::verdict::Verdict;

mod configuration;
mod credential;
mod graph;
mod network;
pub(crate) mod report;
mod smtp;
mod token;

pub(crate) use token::claim_checks;

/// How a check went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Status {
    /// It works.
    Pass,
    /// It works, but should be changed.
    Warn,
    /// It does not work.
    Fail,
    /// It could not run.
    Skip,
}

/// The checks, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum CheckId {
    /// The configuration resolves.
    Configuration,
    /// The credential is usable and not expired.
    Credential,
    /// The host names resolve.
    Dns,
    /// The port answers.
    Tcp,
    /// TLS holds with the trust anchors.
    Tls,
    /// Entra issues a token.
    Token,
    /// The token's claims are what Exchange needs.
    Claims,
    /// The server offers the AUTH mechanism.
    Ehlo,
    /// AUTH succeeds.
    Auth,
    /// Graph accepts the app for the mailbox.
    Graph,
    /// A test message is accepted.
    Send,
}

impl CheckId {
    /// The checks of an SMTP account, in order.
    const SMTP: [CheckId; 10] = [
        CheckId::Configuration,
        CheckId::Credential,
        CheckId::Dns,
        CheckId::Tcp,
        CheckId::Tls,
        CheckId::Token,
        CheckId::Claims,
        CheckId::Ehlo,
        CheckId::Auth,
        CheckId::Send,
    ];

    /// Its name in the report and in `--json`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            CheckId::Configuration => "configuration",
            CheckId::Credential => "credential",
            CheckId::Dns => "dns",
            CheckId::Tcp => "tcp",
            CheckId::Tls => "tls",
            CheckId::Token => "token",
            CheckId::Claims => "claims",
            CheckId::Ehlo => "ehlo",
            CheckId::Auth => "auth",
            CheckId::Graph => "graph",
            CheckId::Send => "send",
        }
    }
}

impl std::fmt::Display for CheckId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
}

/// One check.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Check {
    /// Which check.
    pub(crate) id: CheckId,
    /// Outcome.
    pub(crate) status: Status,
    /// One line on what was found.
    pub(crate) summary: String,
    /// What was observed.
    pub(crate) evidence: Vec<String>,
    /// Cause and fix, when it failed or warns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) diagnosis: Option<Rendered>,
    /// The sysexits code this failure stands for.
    #[serde(skip)]
    pub(crate) code: Option<Code>,
}

impl Check {
    fn new(id: CheckId, status: Status, summary: impl Into<String>) -> Self {
        Self {
            id,
            status,
            summary: summary.into(),
            evidence: Vec::new(),
            diagnosis: None,
            code: None,
        }
    }

    fn evidence(mut self, line: impl Into<String>) -> Self {
        self.evidence.push(line.into());
        self
    }

    fn failed(mut self, code: Code, diagnosis: Option<Rendered>) -> Self {
        self.status = Status::Fail;
        self.code = Some(code);
        self.diagnosis = diagnosis;
        self
    }

    /// Failed as `entry` says, explained by it.
    fn failed_as(self, entry: &'static Entry, evidence: &Evidence, ids: &Ids) -> Self {
        let diagnosis = catalog::explain(entry, evidence).render(ids);
        self.failed(Verdict::of_entry(entry).code(), Some(diagnosis))
    }

    /// Failed as the catalog says of `symptom`.
    fn failed_with(self, symptom: Symptom, evidence: &Evidence, ids: &Ids) -> Self {
        self.failed_as(self::symptom(symptom), evidence, ids)
    }
}

/// Every check, in order.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Report {
    /// The account checked.
    pub(crate) account: Option<String>,
    /// The checks.
    pub(crate) checks: Vec<Check>,
}

impl Report {
    /// Checks with this status.
    pub(crate) fn count(&self, status: Status) -> usize {
        self.checks.iter().filter(|c| c.status == status).count()
    }

    /// The sysexits code of the first failure; `None` when nothing failed.
    pub(crate) fn exit_code(&self) -> Option<Code> {
        self.checks
            .iter()
            .find(|c| c.status == Status::Fail)
            .map(|c| c.code.unwrap_or(Code::Software))
    }
}

/// What `doctor` is asked to do besides checking.
#[derive(Debug, Clone, Default)]
pub(crate) struct Options {
    /// Send a real test message to this address.
    pub(crate) send_test: Option<String>,
    /// From address of the test message (default: the account's).
    pub(crate) from: Option<String>,
}

/// Runs every check.
pub(crate) async fn run(config: Result<Config, ConfigError>, options: &Options) -> Report {
    let mut checks = Vec::new();
    let config = match config {
        Ok(c) => c,
        Err(e) => {
            checks.push(Check::new(CheckId::Configuration, Status::Fail, e.to_string()).failed(Code::Config, None));
            skip_rest(&mut checks, "the configuration is not usable");
            return Report { account: None, checks };
        }
    };
    let account = &config.account;
    let mut ids = Ids::of(account);
    let mut evidence = Evidence::of(account);
    checks.push(configuration::check(&config));
    checks.push(credential::check(account, &evidence, &ids));
    let Some(connection) = network::checks(&mut checks, account, &ids).await else {
        return Report::of(account, checks);
    };
    let token = token::checks(&mut checks, account, &evidence, &mut ids).await;
    evidence.claims = token
        .as_ref()
        .and_then(|t| inspect::decode(t.token.expose()))
        .map(|(_, c)| c);
    if account.transport == Transport::Graph {
        graph::checks(&mut checks, account, token.as_ref(), options, &evidence, &mut ids).await;
        return Report::of(account, checks);
    }
    let Some(connection) = connection else {
        skip(
            &mut checks,
            &[CheckId::Ehlo, CheckId::Auth, CheckId::Send],
            "needs a TLS connection to the SMTP server",
        );
        return Report::of(account, checks);
    };
    let credentials = account.smtp_credentials(token.as_ref().map(|t| &t.token));
    smtp::checks(
        &mut checks,
        account,
        connection,
        credentials,
        options,
        &evidence,
        &mut ids,
    )
    .await;
    Report::of(account, checks)
}

impl Report {
    fn of(account: &Account, checks: Vec<Check>) -> Self {
        Self {
            account: Some(format!("{} ({})", account.name, account.mailbox.value)),
            checks,
        }
    }
}

fn skip_rest(checks: &mut Vec<Check>, why: &str) {
    let rest: Vec<CheckId> = CheckId::SMTP
        .into_iter()
        .filter(|id| !checks.iter().any(|c| c.id == *id))
        .collect();
    skip(checks, &rest, why);
}

fn skip(checks: &mut Vec<Check>, ids: &[CheckId], why: &str) {
    for id in ids {
        checks.push(Check::new(*id, Status::Skip, why));
    }
}

/// The message `--send-test` asks for, sent `through` (named in its text), with its From and
/// To; else the check that says why there is none.
fn test_message(
    account: &Account,
    options: &Options,
    ids: &mut Ids,
    through: &str,
) -> Result<(message::Outgoing, String, String), Box<Check>> {
    let Some(to) = &options.send_test else {
        return Err(Box::new(Check::new(
            CheckId::Send,
            Status::Skip,
            "not asked: --send-test ADDRESS sends a real test message",
        )));
    };
    let from = options.from.clone().unwrap_or_else(|| account.default_from.clone());
    ids.from = Some(from.clone());
    let outgoing = message::compose(&message::Compose {
        from: from.clone(),
        to: vec![to.clone()],
        subject: Some("m365-mailer doctor: test message".to_owned()),
        text: Some(format!(
            "This message was sent by `m365-mailer doctor --send-test` from {from} through {through}.\r\n"
        )),
        ..message::Compose::default()
    })
    .map_err(|e| Box::new(Check::new(CheckId::Send, Status::Fail, e.to_string()).failed(Code::Data, None)))?;
    Ok((outgoing, from, to.clone()))
}

/// The catalog's entry for a symptom (each has one: the catalog's tests check).
fn symptom(symptom: Symptom) -> &'static Entry {
    catalog::symptom(symptom).expect("every symptom has its entry")
}

/// A failed check explained from the catalog.
fn failure(id: CheckId, error: &SubmitError, evidence: &Evidence, ids: &Ids) -> Check {
    let verdict = Verdict::of(error);
    let diagnosis = verdict.diagnosis(evidence).map(|d| d.render(ids));
    Check::new(id, Status::Fail, error.to_string()).failed(verdict.code(), diagnosis)
}
