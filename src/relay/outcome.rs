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

use crate::config::Account;
use crate::diagnose::{self, Evidence, Ids, catalog::Retry};
use crate::queue::{Backoff, DeadLetter, Leased, Next, Op};
use crate::smtp::{Delivery, Reply, SmtpError};
use crate::submit::SubmitError;

/// Where an attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Getting an authenticated connection.
    Connect,
    /// The transaction on an authenticated connection.
    Transaction,
}

/// What to do after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Queue operations, applied together.
    pub ops: Vec<Op>,
    /// Recipients delivered now.
    pub delivered: usize,
    /// Recipients deferred.
    pub deferred: usize,
    /// Recipients given up on.
    pub dead: usize,
    /// Exchange is throttling the mailbox: pause it.
    pub throttled: bool,
    /// Exchange or the path to it is unavailable: pause the account before the next attempt.
    pub unavailable: bool,
    /// Exchange refuses the account itself: pause it until `blocked_until_ms`; the messages
    /// wait without counting an attempt.
    pub blocked: bool,
    /// The connection can carry the next message.
    pub keep_connection: bool,
    /// The reply or error, for the log.
    pub reply: String,
    /// The diagnosis, for the log and the dead-letter area.
    pub diagnosis: String,
}

/// When paused work may go again (Unix milliseconds): after throttling, and after a refusal of
/// the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resume {
    /// A throttled mailbox.
    pub throttled_ms: i64,
    /// A refused account.
    pub blocked_ms: i64,
}

/// What a reply says, for the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Meaning {
    /// Try again after the usual wait.
    Transient,
    /// Exchange wants the mailbox to slow down.
    Throttled,
    /// Exchange refuses the account, whatever the message.
    Blocked,
    /// The message (or this recipient) will never go.
    Refused,
}

fn meaning(reply: &Reply) -> Meaning {
    let retry = diagnose::for_reply(reply).map(|e| e.retry);
    match retry {
        _ if reply.code() == 432 => Meaning::Throttled,
        Some(Retry::AfterThrottling) => Meaning::Throttled,
        Some(Retry::AfterAccountFix) => Meaning::Blocked,
        _ if reply.is_permanent() => Meaning::Refused,
        _ => Meaning::Transient,
    }
}

/// Plans the queue operations after attempting `leased` at `now_ms`.
pub fn plan(
    leased: &Leased,
    stage: Stage,
    result: &Result<Delivery, SubmitError>,
    account: &Account,
    backoff: &Backoff,
    now_ms: i64,
    resume: Resume,
) -> Plan {
    let message = &leased.message;
    let mut plan = empty(String::new(), String::new());
    // Per recipient: delivered, or failed with a reply.
    let failed: Vec<(String, Reply)> = match (stage, result) {
        (_, Ok(delivery)) => {
            plan.reply = delivery.reply.to_string();
            delivery.rejected.clone()
        }
        (Stage::Transaction, Err(SubmitError::Smtp(SmtpError::RecipientsRejected { rejected }))) => {
            plan.reply = rejected.first().map(|(_, r)| r.to_string()).unwrap_or_default();
            rejected.clone()
        }
        (Stage::Transaction, Err(SubmitError::Smtp(e @ SmtpError::Rejected { reply, .. }))) => {
            plan.reply = e.to_string();
            plan.keep_connection = reply.code() != 421;
            plan.diagnosis = explain(result, account);
            match meaning(reply) {
                Meaning::Refused => give_up(&mut plan, leased, &message.recipients, now_ms),
                Meaning::Transient => retry(&mut plan, leased, backoff, now_ms, None),
                Meaning::Throttled => {
                    plan.throttled = true;
                    retry(&mut plan, leased, backoff, now_ms, Some(resume.throttled_ms));
                }
                Meaning::Blocked => block(&mut plan, leased, backoff, now_ms, resume),
            }
            return plan;
        }
        (Stage::Transaction, Err(e @ SubmitError::Graph(g))) => {
            plan.reply = e.to_string();
            plan.diagnosis = explain(result, account);
            plan.keep_connection = false;
            match graph_meaning(g) {
                GraphMeaning::Message => give_up(&mut plan, leased, &message.recipients, now_ms),
                GraphMeaning::Throttled => {
                    plan.throttled = true;
                    retry(&mut plan, leased, backoff, now_ms, Some(resume.throttled_ms));
                }
                GraphMeaning::Account => {
                    plan.unavailable = true;
                    retry(&mut plan, leased, backoff, now_ms, None);
                }
            }
            return plan;
        }
        (
            Stage::Transaction,
            Err(
                e @ SubmitError::Smtp(
                    SmtpError::TooBig { .. } | SmtpError::NotOffered { .. } | SmtpError::BadAddress { .. },
                ),
            ),
        ) => {
            plan.reply = e.to_string();
            plan.diagnosis = explain(result, account);
            give_up(&mut plan, leased, &message.recipients, now_ms);
            return plan;
        }
        (_, Err(e)) => {
            // Network, TLS, token endpoint, AUTH: the account is unavailable, not the message
            // wrong.
            plan.reply = e.to_string();
            plan.keep_connection = false;
            plan.unavailable = true;
            plan.diagnosis = explain(result, account);
            retry(&mut plan, leased, backoff, now_ms, None);
            return plan;
        }
    };

    if let Some((_, reply)) = failed.iter().find(|(_, r)| meaning(r) == Meaning::Blocked)
        && failed.len() == message.recipients.len()
    {
        // Every recipient refused because of the account: nothing was sent.
        plan.reply = reply.to_string();
        plan.keep_connection = reply.code() != 421;
        plan.diagnosis = diagnose::for_reply(reply)
            .map(|entry| render(&diagnose::explain(entry, &Evidence::of(account)), account))
            .unwrap_or_default();
        block(&mut plan, leased, backoff, now_ms, resume);
        return plan;
    }
    let delivered: Vec<&String> = message
        .recipients
        .iter()
        .filter(|r| !failed.iter().any(|(f, _)| f == *r))
        .collect();
    let (permanent, transient): (Vec<_>, Vec<_>) =
        failed.iter().partition(|(_, reply)| meaning(reply) == Meaning::Refused);
    plan.delivered = delivered.len();
    plan.throttled = transient.iter().any(|(_, reply)| meaning(reply) == Meaning::Throttled);
    if !delivered.is_empty() {
        plan.ops.push(Op::Sent {
            account: message.account.clone(),
            recipients: u32::try_from(delivered.len()).unwrap_or(u32::MAX),
            at_ms: now_ms,
        });
    }
    for (recipient, reply) in &permanent {
        plan.dead += 1;
        let diagnosis = diagnose::for_reply(reply)
            .map(|entry| render(&diagnose::explain(entry, &Evidence::of(account)), account))
            .unwrap_or_default();
        plan.ops.push(Op::Dead(DeadLetter {
            message: with_recipients(leased, vec![recipient.clone()]),
            attempts: leased.attempts + 1,
            failed_ms: now_ms,
            reply: reply.to_string(),
            diagnosis,
        }));
    }
    if transient.is_empty() {
        plan.ops.push(Op::Remove(message.id.clone()));
    } else {
        let waiting: Vec<String> = transient.iter().map(|(r, _)| r.clone()).collect();
        let reply = transient[0].1.to_string();
        let pause = plan.throttled.then_some(resume.throttled_ms);
        let mut rest = Plan {
            ops: Vec::new(),
            dead: 0,
            deferred: 0,
            ..plan.clone()
        };
        let partial = Leased {
            message: with_recipients(leased, waiting),
            ..leased.clone()
        };
        rest.reply = reply;
        retry(&mut rest, &partial, backoff, now_ms, pause);
        plan.deferred = rest.deferred;
        plan.dead += rest.dead;
        plan.ops.extend(rest.ops);
    }
    plan
}

/// Deliveries of one message that may crash before it is given up on.
pub const MAX_CRASHES: u32 = 3;

/// Plans what follows a delivery that crashed (a bug, not Exchange's answer): the message is
/// tried again after the usual wait, and given up on after [`MAX_CRASHES`], with what happened.
/// Whether Exchange had taken it is unknown; a duplicate is the cost of not losing it.
pub fn crashed(leased: &Leased, what: &str, backoff: &Backoff, now_ms: i64) -> Plan {
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
        give_up(&mut plan, leased, &leased.message.recipients, now_ms);
        return plan;
    }
    retry(&mut plan, leased, backoff, now_ms, None);
    for op in &mut plan.ops {
        if let Op::Defer { crashed, .. } = op {
            *crashed = true;
        }
    }
    plan
}

/// Gives up on `leased` at once for a reason found here, before Exchange was asked.
pub fn refused_here(leased: &Leased, reply: String, diagnosis: &str, now_ms: i64) -> Plan {
    let mut plan = empty(reply, diagnosis.to_owned());
    give_up(&mut plan, leased, &leased.message.recipients, now_ms);
    plan
}

fn empty(reply: String, diagnosis: String) -> Plan {
    Plan {
        ops: Vec::new(),
        delivered: 0,
        deferred: 0,
        dead: 0,
        throttled: false,
        unavailable: false,
        blocked: false,
        keep_connection: true,
        reply,
        diagnosis,
    }
}

/// Exchange refuses the account: keep every recipient, untried, until the account may go again.
fn block(plan: &mut Plan, leased: &Leased, backoff: &Backoff, now_ms: i64, resume: Resume) {
    plan.blocked = true;
    plan.unavailable = true;
    retry(plan, leased, backoff, now_ms, Some(resume.blocked_ms));
}

/// What a Graph failure is about.
enum GraphMeaning {
    /// The message itself (too large, no usable recipients, a From the mailbox may not use):
    /// given up on at once.
    Message,
    /// Throttling (429) or Graph unavailable (503): the mailbox pauses.
    Throttled,
    /// The account, its permissions or the path to Graph: fixed by the administrator, then
    /// the queue drains.
    Account,
}

fn graph_meaning(error: &crate::graph::GraphSendError) -> GraphMeaning {
    use crate::graph::GraphSendError;
    match error {
        GraphSendError::Message(_) => GraphMeaning::Message,
        GraphSendError::Network { .. } => GraphMeaning::Account,
        GraphSendError::Refused(e) => match (e.status, e.code.as_str()) {
            (429 | 503, _) => GraphMeaning::Throttled,
            (400 | 413, _) | (_, "ErrorSendAsDenied") => GraphMeaning::Message,
            _ => GraphMeaning::Account,
        },
    }
}

/// Defers every recipient of `leased`, or gives up when the message is too old. `paused_until`:
/// the mailbox is throttled or the account refused, so this was not the message's attempt.
fn retry(plan: &mut Plan, leased: &Leased, backoff: &Backoff, now_ms: i64, paused_until: Option<i64>) {
    let message = &leased.message;
    let attempted = paused_until.is_none();
    let failures = leased.attempts + u32::from(attempted);
    let next_attempt_ms = match (backoff.next(failures.max(1), message.received_ms, now_ms), paused_until) {
        (Next::GiveUp, _) => {
            let age_hours = (now_ms - message.received_ms) / 3_600_000;
            plan.reply = format!(
                "gave up after {failures} attempts over {age_hours} hours; last: {}",
                plan.reply
            );
            give_up(plan, leased, &message.recipients, now_ms);
            return;
        }
        (Next::RetryAt(_), Some(until)) => until,
        (Next::RetryAt(at), None) => at,
    };
    plan.deferred += message.recipients.len();
    plan.ops.push(Op::Defer {
        id: message.id.clone(),
        recipients: message.recipients.clone(),
        next_attempt_ms,
        attempted,
        crashed: false,
        at_ms: now_ms,
        reply: plan.reply.clone(),
    });
}

fn give_up(plan: &mut Plan, leased: &Leased, recipients: &[String], now_ms: i64) {
    plan.dead += recipients.len();
    plan.ops.push(Op::Dead(DeadLetter {
        message: with_recipients(leased, recipients.to_vec()),
        attempts: leased.attempts + 1,
        failed_ms: now_ms,
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

fn explain(result: &Result<Delivery, SubmitError>, account: &Account) -> String {
    let Err(e) = result else { return String::new() };
    diagnose::diagnose(e, &Evidence::of(account))
        .map(|d| render(&d, account))
        .unwrap_or_default()
}

fn render(diagnosis: &diagnose::Diagnosis, account: &Account) -> String {
    let rendered = diagnosis.render(&Ids::of(account));
    format!("{}\n{}", rendered.summary, rendered.to_text("  ").trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::NewMessage;

    fn account() -> Account {
        let overrides = crate::config::Overrides::default();
        let env = |name: &str| -> Option<String> {
            match name {
                "AZURE_TENANT_ID" => Some("contoso.onmicrosoft.com".into()),
                "AZURE_CLIENT_ID" => Some("0b7e2f4c-5d6a-4e8b-9c1d-3f2a4b6c8d0e".into()),
                "AZURE_CLIENT_SECRET" => Some("~s".into()),
                "M365_MAILER_MAILBOX" => Some("relay@contoso.com".into()),
                _ => None,
            }
        };
        crate::config::Config::resolve_with(&overrides, &env).unwrap().account
    }

    fn leased(attempts: u32) -> Leased {
        Leased {
            message: NewMessage {
                id: "q1".into(),
                account: "default".into(),
                sender: "relay@contoso.com".into(),
                recipients: vec!["a@x.example".into(), "b@x.example".into(), "c@x.example".into()],
                content: b"Subject: s\r\n\r\nb\r\n".to_vec(),
                message_id: None,
                client: "127.0.0.1".into(),
                received_ms: 0,
            },
            attempts,
            crashes: 0,
        }
    }

    /// Accepted six days ago: past the queue lifetime.
    fn aged(attempts: u32) -> Leased {
        Leased {
            message: NewMessage {
                received_ms: NOW - 6 * 24 * 3_600_000,
                ..leased(attempts).message
            },
            ..leased(attempts)
        }
    }

    fn reply(code: u16, line: &str) -> Reply {
        Reply::new(code, vec![line.into()])
    }

    fn rejected(step: crate::smtp::Step, r: Reply) -> Result<Delivery, SubmitError> {
        Err(SubmitError::Smtp(SmtpError::Rejected {
            step,
            reply: r,
            challenge: None,
        }))
    }

    const NOW: i64 = 1_000_000;

    fn run(stage: Stage, result: &Result<Delivery, SubmitError>, attempts: u32) -> Plan {
        plan(
            &leased(attempts),
            stage,
            result,
            &account(),
            &Backoff::default(),
            NOW,
            RESUME,
        )
    }

    const RESUME: Resume = Resume {
        throttled_ms: NOW + 60_000,
        blocked_ms: NOW + 300_000,
    };

    #[test]
    fn per_recipient_results() {
        let ok = Ok(Delivery {
            reply: reply(250, "2.0.0 OK <x@y> [Hostname=MW4]"),
            rejected: vec![
                (
                    "b@x.example".into(),
                    reply(550, "5.1.10 RESOLVER.ADR.RecipientNotFound; not found"),
                ),
                (
                    "c@x.example".into(),
                    reply(451, "4.7.500 Server busy. Please try again later"),
                ),
            ],
        });
        let p = run(Stage::Transaction, &ok, 0);
        assert_eq!((p.delivered, p.dead, p.deferred, p.throttled), (1, 1, 1, false));
        assert!(matches!(
            &p.ops[0],
            Op::Sent {
                recipients: 1,
                at_ms: NOW,
                ..
            }
        ));
        let Op::Dead(dead) = &p.ops[1] else {
            panic!("{:?}", p.ops)
        };
        assert_eq!(dead.message.recipients, ["b@x.example"]);
        assert!(dead.reply.starts_with("550 5.1.10"), "{}", dead.reply);
        assert!(!dead.diagnosis.is_empty());
        let Op::Defer {
            recipients,
            next_attempt_ms,
            attempted,
            ..
        } = &p.ops[2]
        else {
            panic!("{:?}", p.ops)
        };
        assert_eq!(recipients, &["c@x.example"]);
        assert_eq!((*next_attempt_ms, *attempted), (NOW + 300_000, true));
        assert_eq!(p.ops.len(), 3, "the message stays queued for c");

        let all = Ok(Delivery {
            reply: reply(250, "2.0.0 OK"),
            rejected: vec![],
        });
        let p = run(Stage::Transaction, &all, 3);
        assert_eq!(
            p.ops,
            [
                Op::Sent {
                    account: "default".into(),
                    recipients: 3,
                    at_ms: NOW
                },
                Op::Remove("q1".into())
            ]
        );
    }

    #[test]
    fn message_refusals_go_to_the_dead_letter_area_at_once() {
        let p = run(
            Stage::Transaction,
            &rejected(
                crate::smtp::Step::Content,
                reply(
                    554,
                    "5.2.252 SendAsDenied; relay@contoso.com not allowed to send as ceo@contoso.com",
                ),
            ),
            0,
        );
        assert_eq!((p.dead, p.deferred), (3, 0));
        assert!(matches!(&p.ops[..], [Op::Dead(_), Op::Remove(_)]));
        assert!(
            p.diagnosis.contains("Add-RecipientPermission") || p.diagnosis.contains("SendAs"),
            "{}",
            p.diagnosis
        );
    }

    #[test]
    fn connection_failures_are_retried_until_the_lifetime_ends() {
        let auth = rejected(
            crate::smtp::Step::Auth,
            reply(
                535,
                "5.7.3 Authentication unsuccessful [MW4PR04CA0001.namprd04.prod.outlook.com]",
            ),
        );
        let p = run(Stage::Connect, &auth, 0);
        assert!(p.unavailable && !p.keep_connection);
        assert!(matches!(&p.ops[..], [Op::Defer { attempted: true, .. }]));
        assert!(
            p.diagnosis.contains("5.7.3") || p.diagnosis.contains("SMTP.SendAsApp"),
            "{}",
            p.diagnosis
        );

        let old = aged(40);
        let p = plan(
            &old,
            Stage::Connect,
            &auth,
            &account(),
            &Backoff::default(),
            NOW,
            RESUME,
        );
        assert_eq!(p.dead, 3);
        assert!(
            p.reply.starts_with("gave up after 41 attempts over 144 hours; last: "),
            "{}",
            p.reply
        );
    }

    #[test]
    fn throttling_pauses_without_counting_an_attempt() {
        let p = run(
            Stage::Transaction,
            &rejected(
                crate::smtp::Step::Content,
                reply(432, "4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded"),
            ),
            2,
        );
        assert!(p.throttled);
        assert!(matches!(
            &p.ops[..],
            [Op::Defer {
                attempted: false,
                next_attempt_ms,
                ..
            }] if *next_attempt_ms == NOW + 60_000
        ));
        // 421 closes the connection; it is a retry, not a refusal.
        let p = run(
            Stage::Transaction,
            &rejected(crate::smtp::Step::Mail, reply(421, "4.3.2 Service not available")),
            0,
        );
        assert!(!p.keep_connection && p.dead == 0 && p.deferred == 3);
    }

    #[test]
    fn a_refusal_of_the_account_pauses_it_and_keeps_the_messages() {
        // One misconfiguration must not drain the queue into the dead-letter area.
        for (step, line) in [
            (crate::smtp::Step::Mail, "5.1.8 Access denied, bad outbound sender"),
            (
                crate::smtp::Step::Mail,
                "5.7.708 Service unavailable. Access denied, traffic not accepted from this IP.",
            ),
            (
                crate::smtp::Step::Content,
                "5.7.501 Service unavailable. Spam abuse detected from IP range.",
            ),
        ] {
            let p = run(Stage::Transaction, &rejected(step, reply(550, line)), 2);
            assert!(p.blocked && p.unavailable, "{line}");
            assert_eq!((p.dead, p.deferred), (0, 3), "{line}");
            assert!(
                matches!(&p.ops[..], [Op::Defer { attempted: false, next_attempt_ms, .. }] if *next_attempt_ms == RESUME.blocked_ms),
                "{line}: {:?}",
                p.ops
            );
        }
        // Every recipient refused for the account's sake: the same.
        let all = Err(SubmitError::Smtp(SmtpError::RecipientsRejected {
            rejected: ["a@x.example", "b@x.example", "c@x.example"]
                .iter()
                .map(|r| {
                    (
                        (*r).to_owned(),
                        reply(550, "5.7.708 Access denied, traffic not accepted from this IP"),
                    )
                })
                .collect(),
        }));
        let p = run(Stage::Transaction, &all, 0);
        assert!(p.blocked && p.dead == 0 && p.deferred == 3);
        // Kept, but not for ever: the queue lifetime still ends it.
        let old = aged(0);
        let p = plan(
            &old,
            Stage::Transaction,
            &rejected(
                crate::smtp::Step::Mail,
                reply(550, "5.1.8 Access denied, bad outbound sender"),
            ),
            &account(),
            &Backoff::default(),
            NOW,
            RESUME,
        );
        assert_eq!(p.dead, 3);
    }

    #[test]
    fn crashes_are_retried_then_given_up_on() {
        let p = crashed(&leased(0), "index out of range", &Backoff::default(), NOW);
        assert!(
            matches!(
                &p.ops[..],
                [Op::Defer {
                    crashed: true,
                    attempted: true,
                    ..
                }]
            ),
            "{:?}",
            p.ops
        );
        let third = Leased {
            crashes: MAX_CRASHES - 1,
            ..leased(2)
        };
        let p = crashed(&third, "index out of range", &Backoff::default(), NOW);
        assert!(matches!(&p.ops[..], [Op::Dead(_), Op::Remove(_)]), "{:?}", p.ops);
        assert_eq!(p.reply, "gave up after 3 crashed deliveries; last: index out of range");
    }
}
