//! Faults injected at named stages of the SMTP session and of the token endpoint.
//!
//! A fault matches a stage (and optionally a mailbox or client id), lets the first `skip`
//! matching events through, then fires at most `times` times. Faults come from the tenant file
//! and can be added or cleared while the emulator runs.

use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Where a fault fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// A new SMTP connection, before the banner.
    Connect,
    /// `EHLO` or `HELO`.
    Ehlo,
    /// `STARTTLS`.
    Starttls,
    /// `AUTH`, when the client's credentials have been received.
    Auth,
    /// `MAIL FROM`.
    Mail,
    /// `RCPT TO`.
    Rcpt,
    /// The `DATA` command.
    Data,
    /// While the message content is arriving (DATA or BDAT); `drop` honours `after_bytes`.
    DataBody,
    /// After the final dot (or `BDAT … LAST`), before the message is accepted.
    DataEnd,
    /// `RSET`.
    Rset,
    /// `QUIT`.
    Quit,
    /// A request to the token endpoint.
    Token,
    /// A Microsoft Graph request (`sendMail`, a draft, an upload, a draft's send).
    Graph,
    /// A Microsoft Graph directory call of a setup (`directory.rs`): applications, service
    /// principals, secrets, consent; `skip` picks which call of a run fails.
    Directory,
}

impl Stage {
    fn is_smtp(self) -> bool {
        !matches!(self, Stage::Token | Stage::Graph | Stage::Directory)
    }
}

/// What a fault does, as written in the tenant file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// Answer with `reply` (SMTP) instead of the normal reply.
    Reply,
    /// Close the connection without a reply (SMTP, or the token endpoint's TCP connection).
    Drop,
    /// At `data_end`: accept and store the message, then close without sending the `250`.
    AcceptThenDrop,
    /// Wait `ms` milliseconds, then carry on normally.
    Delay,
    /// Never answer; the client has to time out.
    Hang,
    /// Token endpoint: answer with HTTP `status`, optional `body` and `retry_after`.
    Http,
    /// Token endpoint: answer with the Entra error `code` (AADSTS number) in Entra's shape.
    Aadsts,
}

/// One injected fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// Where it fires.
    pub stage: Stage,
    /// What it does.
    pub action: ActionKind,
    /// `reply`: the SMTP reply, e.g. `451 4.7.0 Temporary server error. Please try again later. PRX4`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<String>,
    /// `delay`: milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ms: Option<u64>,
    /// `drop` at `data_body`: bytes of content to receive before closing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_bytes: Option<u64>,
    /// `http`: the status code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// `http`: the response body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// `http`: the `Retry-After` header, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// `aadsts`: the error number, e.g. 90033.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u32>,
    /// Only for this (authenticated) mailbox.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mailbox: Option<String>,
    /// Only for token requests of this client id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Matching events to let through before firing.
    #[serde(default)]
    pub skip: u32,
    /// How many times to fire; absent means every time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u32>,
}

/// What a fired fault does, checked and typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Send this SMTP reply (CRLF-terminated lines) instead of the normal one.
    Reply(String),
    /// Close the connection, after `after_bytes` of message content at `data_body`.
    Drop {
        /// Content bytes to accept first.
        after_bytes: u64,
    },
    /// Store the message, then close without replying.
    AcceptThenDrop,
    /// Wait, then proceed.
    Delay(Duration),
    /// Stop answering.
    Hang,
    /// HTTP answer from the token endpoint.
    Http {
        /// Status code.
        status: u16,
        /// Body.
        body: String,
        /// `Retry-After` seconds.
        retry_after: Option<u64>,
    },
    /// An Entra error by AADSTS number.
    Aadsts(u32),
}

impl Fault {
    fn new(stage: Stage, action: ActionKind) -> Self {
        Self {
            stage,
            action,
            reply: None,
            ms: None,
            after_bytes: None,
            status: None,
            body: None,
            retry_after: None,
            code: None,
            mailbox: None,
            client_id: None,
            skip: 0,
            times: None,
        }
    }

    /// Answer `reply` at `stage`.
    pub fn reply(stage: Stage, reply: &str) -> Self {
        Self {
            reply: Some(reply.to_owned()),
            ..Self::new(stage, ActionKind::Reply)
        }
    }

    /// Close the connection at `stage`.
    pub fn drop_connection(stage: Stage) -> Self {
        Self::new(stage, ActionKind::Drop)
    }

    /// Close the connection after `bytes` of message content.
    pub fn drop_mid_data(bytes: u64) -> Self {
        Self {
            after_bytes: Some(bytes),
            ..Self::new(Stage::DataBody, ActionKind::Drop)
        }
    }

    /// Accept the message, then close without replying.
    pub fn accept_then_drop() -> Self {
        Self::new(Stage::DataEnd, ActionKind::AcceptThenDrop)
    }

    /// Microsoft Graph does what the request asks, then closes without answering.
    pub fn graph_accept_then_drop() -> Self {
        Self::new(Stage::Graph, ActionKind::AcceptThenDrop)
    }

    /// Delay `stage` by `ms` milliseconds.
    pub fn delay(stage: Stage, ms: u64) -> Self {
        Self {
            ms: Some(ms),
            ..Self::new(stage, ActionKind::Delay)
        }
    }

    /// Never answer at `stage`.
    pub fn hang(stage: Stage) -> Self {
        Self::new(stage, ActionKind::Hang)
    }

    /// The token endpoint answers with this HTTP status and body.
    pub fn http(status: u16, body: &str, retry_after: Option<u64>) -> Self {
        Self {
            status: Some(status),
            body: Some(body.to_owned()),
            retry_after,
            ..Self::new(Stage::Token, ActionKind::Http)
        }
    }

    /// Microsoft Graph answers with this HTTP status and body (throttling: 429 with
    /// `Retry-After`).
    pub fn graph_http(status: u16, body: &str, retry_after: Option<u64>) -> Self {
        Self {
            stage: Stage::Graph,
            ..Self::http(status, body, retry_after)
        }
    }

    /// A Microsoft Graph directory call answers with this HTTP status and body.
    pub fn directory_http(status: u16, body: &str) -> Self {
        Self {
            stage: Stage::Directory,
            ..Self::http(status, body, None)
        }
    }

    /// The token endpoint answers with an Entra error.
    pub fn aadsts(code: u32) -> Self {
        Self {
            code: Some(code),
            ..Self::new(Stage::Token, ActionKind::Aadsts)
        }
    }

    /// Fire at most `n` times.
    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }

    /// Let `n` matching events through first.
    pub fn skip(mut self, n: u32) -> Self {
        self.skip = n;
        self
    }

    /// Only for this mailbox.
    pub fn for_mailbox(mut self, mailbox: &str) -> Self {
        self.mailbox = Some(mailbox.to_owned());
        self
    }

    /// Only for this client id.
    pub fn for_client(mut self, client_id: &str) -> Self {
        self.client_id = Some(client_id.to_owned());
        self
    }

    /// The typed effect, or what is missing or misplaced.
    pub fn effect(&self) -> Result<Effect, String> {
        let smtp_only = |e: Effect| {
            if self.stage.is_smtp() {
                Ok(e)
            } else {
                Err(format!(
                    "action `{:?}` applies to SMTP stages, not `token` or `graph`",
                    self.action
                )
                .to_lowercase())
            }
        };
        let http_only = |e: Effect| {
            if matches!(self.stage, Stage::Token | Stage::Graph | Stage::Directory) {
                Ok(e)
            } else {
                Err("action `http` applies to stages `token`, `graph` and `directory` only".to_owned())
            }
        };
        let token_only = |e: Effect| {
            if self.stage == Stage::Token {
                Ok(e)
            } else {
                Err("action `aadsts` applies to stage `token` only".to_owned())
            }
        };
        match self.action {
            ActionKind::Reply => {
                let reply = self.reply.as_deref().ok_or("action `reply` needs `reply`")?;
                smtp_only(Effect::Reply(smtp_reply(reply)?))
            }
            ActionKind::Drop => Ok(Effect::Drop {
                after_bytes: self.after_bytes.unwrap_or(0),
            }),
            ActionKind::AcceptThenDrop if matches!(self.stage, Stage::DataEnd | Stage::Graph) => {
                Ok(Effect::AcceptThenDrop)
            }
            ActionKind::AcceptThenDrop => {
                Err("action `accept_then_drop` applies to stages `data_end` and `graph` only".to_owned())
            }
            ActionKind::Delay => Ok(Effect::Delay(Duration::from_millis(
                self.ms.ok_or("action `delay` needs `ms`")?,
            ))),
            ActionKind::Hang => Ok(Effect::Hang),
            ActionKind::Http => {
                let status = self.status.ok_or("action `http` needs `status`")?;
                if !(100..=599).contains(&status) {
                    return Err(format!("`status` {status} is not an HTTP status"));
                }
                http_only(Effect::Http {
                    status,
                    body: self.body.clone().unwrap_or_default(),
                    retry_after: self.retry_after,
                })
            }
            ActionKind::Aadsts => token_only(Effect::Aadsts(self.code.ok_or("action `aadsts` needs `code`")?)),
        }
    }

    /// Checks that the fault's fields fit its action and stage.
    pub fn validate(&self) -> Result<(), String> {
        self.effect().map(drop)
    }
}

/// Turns `451 4.7.0 text` (lines separated by `\n`) into a wire reply.
fn smtp_reply(text: &str) -> Result<String, String> {
    let lines: Vec<&str> = text.lines().collect();
    let code = lines
        .first()
        .and_then(|l| l.get(..3))
        .filter(|c| c.bytes().all(|b| b.is_ascii_digit()) && matches!(c.as_bytes()[0], b'2'..=b'5'))
        .ok_or_else(|| format!("`reply` must start with a three-digit SMTP code: `{text}`"))?;
    let mut wire = String::new();
    for (i, line) in lines.iter().enumerate() {
        let rest = line.strip_prefix(code).unwrap_or(line).trim_start_matches([' ', '-']);
        let sep = if i + 1 == lines.len() { ' ' } else { '-' };
        wire.push_str(&format!("{code}{sep}{rest}\r\n"));
    }
    Ok(wire)
}

/// The faults in force, shared by both servers.
#[derive(Debug, Default)]
pub struct FaultSet {
    armed: Mutex<Vec<Armed>>,
}

#[derive(Debug)]
struct Armed {
    fault: Fault,
    effect: Effect,
    seen: u32,
    fired: u32,
}

/// Who an event concerns, for the `mailbox` and `client_id` filters.
#[derive(Debug, Default, Clone, Copy)]
pub struct Subject<'a> {
    /// The authenticated mailbox, once there is one.
    pub mailbox: Option<&'a str>,
    /// The client id of a token request.
    pub client_id: Option<&'a str>,
}

impl FaultSet {
    /// Adds a fault; refuses one whose fields do not fit its action.
    pub fn add(&self, fault: Fault) -> Result<(), String> {
        let effect = fault.effect()?;
        self.lock().push(Armed {
            fault,
            effect,
            seen: 0,
            fired: 0,
        });
        Ok(())
    }

    /// Removes every fault.
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// The faults in force.
    pub fn list(&self) -> Vec<Fault> {
        self.lock().iter().map(|a| a.fault.clone()).collect()
    }

    /// The effect of the first fault that fires for this event, if any.
    pub fn check(&self, stage: Stage, subject: Subject<'_>) -> Option<Effect> {
        let mut armed = self.lock();
        for a in armed.iter_mut() {
            let f = &a.fault;
            let matches = f.stage == stage
                && f.mailbox
                    .as_deref()
                    .is_none_or(|m| subject.mailbox.is_some_and(|s| s.eq_ignore_ascii_case(m)))
                && f.client_id
                    .as_deref()
                    .is_none_or(|c| subject.client_id.is_some_and(|s| s.eq_ignore_ascii_case(c)));
            if !matches || f.times.is_some_and(|t| a.fired >= t) {
                continue;
            }
            a.seen += 1;
            if a.seen <= f.skip {
                continue;
            }
            a.fired += 1;
            return Some(a.effect.clone());
        }
        None
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Armed>> {
        self.armed.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_and_times_bound_firing() {
        let set = FaultSet::default();
        set.add(
            Fault::reply(
                Stage::Rcpt,
                "451 4.7.0 Temporary server error. Please try again later. PRX4",
            )
            .skip(1)
            .times(2),
        )
        .unwrap();
        let fired: Vec<bool> = (0..5)
            .map(|_| set.check(Stage::Rcpt, Subject::default()).is_some())
            .collect();
        assert_eq!(fired, [false, true, true, false, false]);
        assert!(set.check(Stage::Mail, Subject::default()).is_none());
    }

    #[test]
    fn mailbox_filter_needs_that_mailbox() {
        let set = FaultSet::default();
        set.add(Fault::drop_connection(Stage::Mail).for_mailbox("a@contoso.com"))
            .unwrap();
        assert!(set.check(Stage::Mail, Subject::default()).is_none());
        let other = Subject {
            mailbox: Some("b@contoso.com"),
            ..Subject::default()
        };
        assert!(set.check(Stage::Mail, other).is_none());
        let same = Subject {
            mailbox: Some("A@contoso.com"),
            ..Subject::default()
        };
        assert_eq!(set.check(Stage::Mail, same), Some(Effect::Drop { after_bytes: 0 }));
    }

    #[test]
    fn replies_become_wire_lines() {
        assert_eq!(
            smtp_reply("550 5.7.708 Access denied").unwrap(),
            "550 5.7.708 Access denied\r\n"
        );
        assert_eq!(
            smtp_reply("451 first\n451 second").unwrap(),
            "451-first\r\n451 second\r\n"
        );
        assert!(smtp_reply("hello").is_err());
    }

    #[test]
    fn misplaced_actions_are_refused() {
        assert!(Fault::reply(Stage::Token, "500 x").validate().is_err());
        let mut http = Fault::http(503, "", None);
        http.stage = Stage::Mail;
        assert!(http.validate().is_err());
        let mut accept = Fault::accept_then_drop();
        accept.stage = Stage::Rcpt;
        assert!(accept.validate().is_err());
        assert!(Fault::aadsts(90033).validate().is_ok());
    }
}
