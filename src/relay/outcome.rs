//! What a delivery attempt means for the queue (pure): which recipients are done, which wait,
//! which are given up on, and whether Exchange is throttling the mailbox.
//!
//! Failures while connecting (network, TLS, token, AUTH) are never final on their own: a wrong
//! secret or a missing permission is fixed by the administrator and the queue then drains, as
//! Postfix's `smtp_sasl_auth_soft_bounce` does. Refusals of the account itself (a blocked
//! tenant, mailbox or IP, a full mailbox: the catalog's [`Retry::AfterAccountFix`]) pause the
//! account and keep its messages, untouched. Only replies about the message itself (a recipient
//! that does not exist, a sender the mailbox may not use, a message too large) send it to the
//! dead-letter area at once. Everything is given up on after the queue lifetime.

use crate::account::Account;
use crate::catalog::{Evidence, Ids, Retry};
use crate::clock::Timestamp;
use crate::queue::{Backoff, DeadLetter, Leased, Next, Op};
use crate::smtp::{Delivery, Reply, SmtpError, Step};
use crate::submit::SubmitError;
use crate::verdict::Verdict;

/// Where an attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Getting an authenticated connection.
    Connect,
    /// The transaction on an authenticated connection.
    Transaction,
}

/// What to do after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Queue operations, applied together.
    pub(crate) ops: Vec<Op>,
    /// Recipients delivered now.
    pub(crate) delivered: usize,
    /// Recipients deferred.
    pub(crate) deferred: usize,
    /// Recipients given up on.
    pub(crate) dead: usize,
    /// Exchange is throttling the mailbox: nothing goes before this.
    pub(crate) throttled: Option<Timestamp>,
    /// Exchange or the path to it is unavailable: pause the account before the next attempt.
    pub(crate) unavailable: bool,
    /// Exchange refuses the account itself: pause it until `blocked`; the messages wait
    /// without counting an attempt.
    pub(crate) blocked: bool,
    /// The connection can carry the next message.
    pub(crate) keep_connection: bool,
    /// The reply or error, for the log.
    pub(crate) reply: String,
    /// The diagnosis, for the log and the dead-letter area.
    pub(crate) diagnosis: String,
}

/// When paused work may go again: after throttling, and after a refusal of
/// the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Resume {
    /// A throttled mailbox (the server's `Retry-After` may ask for longer).
    pub(crate) throttled: Timestamp,
    /// A refused account.
    pub(crate) blocked: Timestamp,
}

/// Plans the queue operations after attempting `leased` at `now`.
pub(crate) fn plan(
    leased: &Leased,
    stage: Stage,
    result: &Result<Delivery, SubmitError>,
    account: &Account,
    backoff: &Backoff,
    now: Timestamp,
    resume: Resume,
) -> Plan {
    let mut plan = empty(String::new(), String::new());
    let failed: Vec<(String, Reply)> = match (stage, result) {
        (_, Ok(delivery)) => {
            plan.reply = delivery.reply.to_string();
            delivery.rejected.clone()
        }
        (Stage::Transaction, Err(SubmitError::Smtp(SmtpError::RecipientsRejected { rejected }))) => {
            plan.reply = rejected.first().map(|(_, r)| r.to_string()).unwrap_or_default();
            rejected.clone()
        }
        (_, Err(e)) => {
            whole(&mut plan, leased, stage, e, account, backoff, now, resume);
            return plan;
        }
    };
    per_recipient(&mut plan, leased, &failed, account, backoff, now, resume);
    plan
}

/// The whole message failed: the verdict on the failure decides.
#[allow(clippy::too_many_arguments)]
fn whole(
    plan: &mut Plan,
    leased: &Leased,
    stage: Stage,
    error: &SubmitError,
    account: &Account,
    backoff: &Backoff,
    now: Timestamp,
    resume: Resume,
) {
    let verdict = Verdict::of(error);
    plan.reply = error.to_string();
    plan.diagnosis = explain(&verdict, account);
    plan.keep_connection = stage == Stage::Transaction
        && match error {
            SubmitError::Smtp(SmtpError::Rejected { reply, .. }) => reply.code() != 421,
            SubmitError::Smtp(
                SmtpError::TooBig { .. } | SmtpError::NotOffered { .. } | SmtpError::BadAddress { .. },
            ) => true,
            _ => false,
        };
    if stage == Stage::Connect {
        // Network, TLS, token endpoint, AUTH: the account is unavailable, not the message
        // wrong; it goes once the administrator has fixed what the diagnosis names.
        plan.unavailable = true;
        retry(plan, leased, backoff, now, None);
        return;
    }
    match verdict.retry {
        Retry::AfterThrottling => throttle(plan, leased, backoff, now, resume, &verdict),
        Retry::AfterAccountFix => block(plan, leased, backoff, now, resume),
        Retry::Permanent if verdict.blames_message() => give_up(plan, leased, &leased.message.recipients, now),
        Retry::Permanent => {
            // The account's credential, permissions or settings: fixed by the administrator.
            plan.unavailable = true;
            retry(plan, leased, backoff, now, None);
        }
        Retry::Transient => {
            // A reply of the SMTP server shows the path works; anything else (the connection
            // broke, Graph failed) says it does not, for now.
            plan.unavailable = !matches!(error, SubmitError::Smtp(SmtpError::Rejected { .. }));
            retry(plan, leased, backoff, now, None);
        }
    }
}

/// Some recipients were refused (or all, one by one): each one's verdict decides for it.
fn per_recipient(
    plan: &mut Plan,
    leased: &Leased,
    failed: &[(String, Reply)],
    account: &Account,
    backoff: &Backoff,
    now: Timestamp,
    resume: Resume,
) {
    let message = &leased.message;
    let verdicts: Vec<(&String, &Reply, Verdict)> = failed
        .iter()
        .map(|(r, reply)| (r, reply, Verdict::of_reply(reply, Step::Rcpt)))
        .collect();
    if let Some((_, reply, verdict)) = verdicts.iter().find(|(_, _, v)| v.retry == Retry::AfterAccountFix)
        && failed.len() == message.recipients.len()
    {
        // Every recipient refused because of the account: nothing was sent.
        plan.reply = reply.to_string();
        plan.keep_connection = reply.code() != 421;
        plan.diagnosis = explain(verdict, account);
        block(plan, leased, backoff, now, resume);
        return;
    }
    let delivered = message
        .recipients
        .iter()
        .filter(|r| !failed.iter().any(|(f, _)| f == *r))
        .count();
    let (permanent, transient): (Vec<_>, Vec<_>) = verdicts
        .iter()
        .partition(|(_, _, v)| v.retry == Retry::Permanent && v.blames_message());
    plan.delivered = delivered;
    if delivered > 0 {
        plan.ops.push(Op::Sent {
            account: message.account.clone(),
            recipients: u32::try_from(delivered).unwrap_or(u32::MAX),
            at: now,
        });
    }
    for (recipient, reply, verdict) in &permanent {
        plan.dead += 1;
        plan.ops.push(Op::Dead(DeadLetter {
            message: with_recipients(leased, vec![(*recipient).clone()]),
            attempts: leased.attempts + 1,
            failed: now,
            reply: reply.to_string(),
            diagnosis: explain(verdict, account),
        }));
    }
    let Some((_, first_reply, _)) = transient.first() else {
        plan.ops.push(Op::Remove(message.id.clone()));
        return;
    };
    let throttling = transient.iter().find(|(_, _, v)| v.retry == Retry::AfterThrottling);
    let mut rest = Plan {
        ops: Vec::new(),
        dead: 0,
        deferred: 0,
        reply: first_reply.to_string(),
        ..plan.clone()
    };
    let partial = Leased {
        message: with_recipients(leased, transient.iter().map(|(r, _, _)| (*r).clone()).collect()),
        ..leased.clone()
    };
    match throttling {
        Some((_, _, verdict)) => throttle(&mut rest, &partial, backoff, now, resume, verdict),
        None => retry(&mut rest, &partial, backoff, now, None),
    }
    plan.throttled = rest.throttled;
    plan.deferred = rest.deferred;
    plan.dead += rest.dead;
    plan.ops.extend(rest.ops);
}

/// Exchange is throttling the mailbox: defer without counting an attempt until the pause ends,
/// or later if the server asked for longer.
fn throttle(plan: &mut Plan, leased: &Leased, backoff: &Backoff, now: Timestamp, resume: Resume, verdict: &Verdict) {
    let asked = verdict.retry_after.map_or(now, |wait| now + wait);
    let until = resume.throttled.max(asked);
    plan.throttled = Some(until);
    retry(plan, leased, backoff, now, Some(until));
}

/// Deliveries of one message that may crash before it is given up on.
pub(crate) const MAX_CRASHES: u32 = 3;

/// Plans what follows a delivery that crashed (a bug, not Exchange's answer): the message is
/// tried again after the usual wait, and given up on after [`MAX_CRASHES`], with what happened.
/// Whether Exchange had taken it is unknown; a duplicate is the cost of not losing it.
pub(crate) fn crashed(leased: &Leased, what: &str, backoff: &Backoff, now: Timestamp) -> Plan {
    let mut plan = empty(
        format!("the delivery crashed: {what}"),
        "m365-mailer failed while delivering this message (a bug: please report it with the log line of the \
         crash). Other messages are not affected; this one is tried again, and given up on after a few crashes."
            .to_owned(),
    );
    plan.keep_connection = false;
    let crashes = leased.crashes + 1;
    if crashes >= MAX_CRASHES {
        plan.reply = format!("gave up after {crashes} crashed deliveries; last: {what}");
        give_up(&mut plan, leased, &leased.message.recipients, now);
        return plan;
    }
    retry(&mut plan, leased, backoff, now, None);
    for op in &mut plan.ops {
        if let Op::Defer { crashed, .. } = op {
            *crashed = true;
        }
    }
    plan
}

/// Gives up on `leased` at once for a reason found here, before Exchange was asked.
pub(crate) fn refused_here(leased: &Leased, reply: String, diagnosis: &str, now: Timestamp) -> Plan {
    let mut plan = empty(reply, diagnosis.to_owned());
    give_up(&mut plan, leased, &leased.message.recipients, now);
    plan
}

fn empty(reply: String, diagnosis: String) -> Plan {
    Plan {
        ops: Vec::new(),
        delivered: 0,
        deferred: 0,
        dead: 0,
        throttled: None,
        unavailable: false,
        blocked: false,
        keep_connection: true,
        reply,
        diagnosis,
    }
}

/// Exchange refuses the account: keep every recipient, untried, until the account may go again.
fn block(plan: &mut Plan, leased: &Leased, backoff: &Backoff, now: Timestamp, resume: Resume) {
    plan.blocked = true;
    plan.unavailable = true;
    retry(plan, leased, backoff, now, Some(resume.blocked));
}

/// Defers every recipient of `leased`, or gives up when the message is too old. `paused_until`:
/// the mailbox is throttled or the account refused, so this was not the message's attempt.
fn retry(plan: &mut Plan, leased: &Leased, backoff: &Backoff, now: Timestamp, paused_until: Option<Timestamp>) {
    let message = &leased.message;
    let attempted = paused_until.is_none();
    let failures = leased.attempts + u32::from(attempted);
    let next_attempt = match (backoff.next(failures.max(1), message.received, now), paused_until) {
        (Next::GiveUp, _) => {
            let age_hours = now.since(message.received).as_secs() / 3600;
            plan.reply = format!(
                "gave up after {failures} attempts over {age_hours} hours; last: {}",
                plan.reply
            );
            give_up(plan, leased, &message.recipients, now);
            return;
        }
        (Next::RetryAt(_), Some(until)) => until,
        (Next::RetryAt(at), None) => at,
    };
    plan.deferred += message.recipients.len();
    plan.ops.push(Op::Defer {
        id: message.id.clone(),
        recipients: message.recipients.clone(),
        next_attempt,
        attempted,
        crashed: false,
        at: now,
        reply: plan.reply.clone(),
    });
}

fn give_up(plan: &mut Plan, leased: &Leased, recipients: &[String], now: Timestamp) {
    plan.dead += recipients.len();
    plan.ops.push(Op::Dead(DeadLetter {
        message: with_recipients(leased, recipients.to_vec()),
        attempts: leased.attempts + 1,
        failed: now,
        reply: plan.reply.clone(),
        diagnosis: plan.diagnosis.clone(),
    }));
    plan.ops.push(Op::Remove(leased.message.id.clone()));
}

fn with_recipients(leased: &Leased, recipients: Vec<String>) -> crate::queue::NewMessage {
    crate::queue::NewMessage {
        recipients,
        ..leased.message.clone()
    }
}

fn explain(verdict: &Verdict, account: &Account) -> String {
    verdict
        .diagnosis(&Evidence::of(account))
        .map(|d| render(&d, account))
        .unwrap_or_default()
}

fn render(diagnosis: &crate::catalog::Diagnosis, account: &Account) -> String {
    let rendered = diagnosis.render(&Ids::of(account));
    format!("{}\n{}", rendered.summary, rendered.to_text("  ").trim_end())
}

#[cfg(test)]
#[path = "outcome_tests.rs"]
mod tests;
