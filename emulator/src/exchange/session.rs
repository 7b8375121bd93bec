//! One SMTP session with Exchange Online (or HVE, or ACS), as a state machine over bytes.
//!
//! [`Session::feed`] consumes what it can of the input buffer and returns what the connection
//! must do: send replies, wait, upgrade to TLS, close. The I/O loop in `server.rs` only reads,
//! feeds and writes, so everything here is tested without sockets. The session knows its
//! [`Endpoint`]; where HVE's or ACS's rules differ from Exchange's it asks `endpoint.rs`.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::auth::{Authenticated, Verdict};
use super::command::{self, Command, Param, Syntax};
use super::endpoint::{Credentials, Endpoint, Refusal};
use super::reply::{self, Wire};
use crate::Shared;
use crate::faults::{Effect, Stage, Subject};
use crate::model::Mailbox;
use crate::store::Delivered;

/// What the connection must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Output {
    /// Send these bytes.
    Reply(Wire),
    /// Wait before going on.
    Delay(Duration),
    /// Send what is queued, then start TLS; discard input received before the handshake.
    StartTls,
    /// Send what is queued, then close.
    Close,
    /// Never answer again; close when the client does.
    Hang,
}

enum Sasl {
    Xoauth2,
    LoginUser,
    LoginPassword { user: String },
}

struct Transaction {
    from: String,
    recipients: Vec<String>,
    binary: bool,
    content: Vec<u8>,
    too_big: bool,
    bare_lf: bool,
    chunked: bool,
    /// Content bytes received, and where an injected fault cuts the connection.
    received: u64,
    drop_after: Option<u64>,
    body_started: bool,
}

enum Mode {
    Command,
    /// Inside DATA; `line_start` is false after a bare LF, so `\n.\r\n` does not end the data.
    Data {
        line_start: bool,
    },
    /// Inside a BDAT chunk; `refusal` is the reply owed once a refused chunk has been read.
    Bdat {
        size: u64,
        remaining: u64,
        last: bool,
        refusal: Option<Wire>,
    },
}

/// The state of one connection.
pub(crate) struct Session {
    shared: Arc<Shared>,
    endpoint: Endpoint,
    id: u64,
    peer: String,
    tls: bool,
    greeted: bool,
    auth: Option<Authenticated>,
    sasl: Option<Sasl>,
    transaction: Option<Transaction>,
    mode: Mode,
    discarding_long_line: bool,
}

impl Session {
    /// A new session with `endpoint`; `tls` is true on the implicit-TLS port.
    pub(crate) fn new(shared: Arc<Shared>, endpoint: Endpoint, id: u64, peer: String, tls: bool) -> Self {
        Self {
            shared,
            endpoint,
            id,
            peer,
            tls,
            greeted: false,
            auth: None,
            sasl: None,
            transaction: None,
            mode: Mode::Command,
            discarding_long_line: false,
        }
    }

    /// The banner, or what a fault at `connect` does instead.
    pub(crate) fn start(&mut self) -> Vec<Output> {
        let mut out = Vec::new();
        if self.intercept(Stage::Connect, &mut out) {
            return out;
        }
        let scenario = self.shared.scenario();
        out.push(Output::Reply(reply::greeting(
            &self.endpoint.settings(&scenario),
            self.shared.clock.now(),
        )));
        out
    }

    /// The service this session plays.
    pub(crate) fn endpoint(&self) -> Endpoint {
        self.endpoint
    }

    /// TLS is up (after STARTTLS): the client starts over with EHLO (RFC 3207 §4.2).
    pub(crate) fn tls_started(&mut self) {
        self.tls = true;
        self.greeted = false;
        self.transaction = None;
    }

    /// Consumes what it can of `input` and says what to do.
    pub(crate) fn feed(&mut self, input: &mut Vec<u8>) -> Vec<Output> {
        let mut out = Vec::new();
        let mut pos = 0;
        loop {
            let step = match self.mode {
                Mode::Command => self.command_step(&input[pos..], &mut out),
                Mode::Data { .. } => self.data_step(&input[pos..], &mut out),
                Mode::Bdat { .. } => self.bdat_step(&input[pos..], &mut out),
            };
            let Some(consumed) = step else { break };
            pos += consumed;
            if matches!(out.last(), Some(Output::StartTls | Output::Close | Output::Hang)) {
                break;
            }
        }
        input.drain(..pos);
        out
    }

    fn command_step(&mut self, input: &[u8], out: &mut Vec<Output>) -> Option<usize> {
        // RFC 4954 §4: a SASL response line may be up to 12,288 octets whatever the command limit.
        let command_limit = self.shared.scenario().exchange.max_line_length;
        let max = if self.sasl.is_some() {
            command_limit.max(12_288)
        } else {
            command_limit
        };
        let Some(newline) = input.iter().position(|b| *b == b'\n') else {
            if input.len() > max {
                if !self.discarding_long_line {
                    out.push(Output::Reply(reply::line_too_long()));
                }
                self.discarding_long_line = true;
                return Some(input.len());
            }
            return None;
        };
        let consumed = newline + 1;
        if std::mem::take(&mut self.discarding_long_line) {
            return Some(consumed);
        }
        let raw = &input[..newline];
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.len() + 2 > max {
            out.push(Output::Reply(reply::line_too_long()));
            return Some(consumed);
        }
        let line = String::from_utf8_lossy(raw).into_owned();
        if let Some(sasl) = self.sasl.take() {
            self.sasl_response(sasl, &line, out);
        } else {
            self.command(&line, out);
        }
        Some(consumed)
    }

    fn command(&mut self, line: &str, out: &mut Vec<Output>) {
        let parsed = command::parse(line);
        let verb = parsed.as_ref().map_or("SYNTAX", Command::verb).to_owned();
        self.shared.stats.update(|c| *c.commands.entry(verb).or_default() += 1);
        let command = match parsed {
            Ok(c) => c,
            Err(Syntax::Sender) => return out.push(Output::Reply(reply::bad_sender_address())),
            Err(Syntax::Recipient) => return out.push(Output::Reply(reply::bad_recipient_address())),
            Err(Syntax::Arguments) => return out.push(Output::Reply(reply::bad_arguments())),
        };
        let scenario = self.shared.scenario();
        let settings = &*self.endpoint.settings(&scenario);
        let reply = match command {
            Command::Ehlo(_) | Command::Helo(_) => {
                if self.intercept(Stage::Ehlo, out) {
                    return;
                }
                self.greeted = true;
                self.transaction = None;
                if matches!(command, Command::Ehlo(_)) {
                    reply::ehlo(settings, &self.peer, self.tls)
                } else {
                    reply::helo(settings, &self.peer)
                }
            }
            Command::StartTls if self.tls => reply::tls_already(),
            Command::StartTls => {
                if self.intercept(Stage::Starttls, out) {
                    return;
                }
                out.push(Output::Reply(reply::starttls_ready()));
                return out.push(Output::StartTls);
            }
            Command::Auth { mechanism, initial } => return self.auth_command(line, &mechanism, initial, out),
            Command::Mail { from, params } => match self.mail(from, &params, out) {
                Some(r) => r,
                None => return,
            },
            Command::Rcpt { to, params } => match self.rcpt(to, &params, out) {
                Some(r) => r,
                None => return,
            },
            Command::Data => match self.data_command(out) {
                Some(r) => r,
                None => return,
            },
            Command::Bdat { size, last } => return self.bdat_command(size, last, out),
            Command::Rset => {
                if self.intercept(Stage::Rset, out) {
                    return;
                }
                self.transaction = None;
                reply::reset()
            }
            Command::Noop => reply::ok(),
            Command::Quit => {
                if self.intercept(Stage::Quit, out) {
                    return;
                }
                out.push(Output::Reply(reply::bye()));
                return out.push(Output::Close);
            }
            Command::Vrfy => reply::vrfy(),
            Command::Help => reply::help(),
            Command::Unknown(verb) => reply::unrecognized(&verb),
        };
        out.push(Output::Reply(reply));
    }

    fn auth_command(&mut self, line: &str, mechanism: &str, initial: Option<String>, out: &mut Vec<Output>) {
        let refusal = if !self.greeted {
            Some(reply::hello_first())
        } else if self.auth.is_some() {
            Some(reply::already_authenticated())
        } else if !self.tls || !matches!(mechanism, "XOAUTH2" | "LOGIN") {
            // AUTH is only offered after STARTTLS, and only LOGIN and XOAUTH2.
            Some(reply::unrecognized_auth())
        } else {
            None
        };
        if let Some(r) = refusal {
            return out.push(Output::Reply(r));
        }
        let line_len = line.len() as u64 + 2;
        self.shared.stats.update(|c| {
            c.auth.longest_auth_line = c.auth.longest_auth_line.max(line_len);
            if initial.is_some() {
                c.auth.initial_response += 1;
            } else {
                c.auth.two_step += 1;
            }
        });
        match (mechanism, initial) {
            ("XOAUTH2", Some(ir)) => self.finish_auth(Sasl::Xoauth2, &ir, out),
            ("XOAUTH2", None) => {
                self.sasl = Some(Sasl::Xoauth2);
                out.push(Output::Reply(reply::auth_continue("")));
            }
            (_, Some(ir)) => self.sasl_response(Sasl::LoginUser, &ir, out),
            (_, None) => {
                self.sasl = Some(Sasl::LoginUser);
                out.push(Output::Reply(reply::auth_continue("VXNlcm5hbWU6")));
            }
        }
    }

    fn sasl_response(&mut self, sasl: Sasl, line: &str, out: &mut Vec<Output>) {
        if line.trim() == "*" {
            // RFC 4954 says 501 for a cancelled exchange; Exchange Online answers 535.
            let failed = self
                .endpoint
                .auth_failed(&self.shared.scenario(), self.shared.clock.now());
            return self.refuse_auth(failed, "cancelled", out);
        }
        match sasl {
            Sasl::LoginUser => {
                let user = decode_text(line);
                self.sasl = Some(Sasl::LoginPassword { user });
                out.push(Output::Reply(reply::auth_continue("UGFzc3dvcmQ6")));
            }
            other => self.finish_auth(other, line, out),
        }
    }

    fn finish_auth(&mut self, sasl: Sasl, response: &str, out: &mut Vec<Output>) {
        let scenario = self.shared.scenario();
        let now = self.shared.clock.now();
        let (user, password);
        let credentials = match sasl {
            Sasl::Xoauth2 => Credentials::Xoauth2(response),
            Sasl::LoginPassword { user: login } => {
                (user, password) = (login, decode_text(response));
                Credentials::Login {
                    user: &user,
                    password: &password,
                }
            }
            Sasl::LoginUser => unreachable!("a user name is answered with a password prompt"),
        };
        let verdict = self
            .endpoint
            .authenticate(&scenario, &self.shared.signing, now, credentials);
        match verdict {
            Verdict::Accept(authenticated) => {
                let mailbox = authenticated.mailbox.clone();
                if self.intercept_for(Stage::Auth, Some(&mailbox), out) {
                    return;
                }
                // Concurrent connections are an Exchange mailbox limit.
                let exchange = self.endpoint == Endpoint::Exchange;
                let open = if exchange {
                    self.shared.limits.connect(&mailbox, self.id) as u64
                } else {
                    0
                };
                self.shared.stats.update(|c| {
                    c.auth.succeeded += 1;
                    if exchange {
                        let peak = c.peak_connections.entry(mailbox.to_ascii_lowercase()).or_default();
                        *peak = (*peak).max(open);
                    }
                });
                tracing::debug!(mailbox = %mailbox, "AUTH accepted");
                self.auth = Some(authenticated);
                out.push(Output::Reply(reply::auth_ok()));
            }
            Verdict::Refuse { reply, reason } => {
                if self.intercept(Stage::Auth, out) {
                    return;
                }
                self.refuse_auth(reply, reason, out);
            }
        }
    }

    fn refuse_auth(&mut self, reply: Wire, reason: &'static str, out: &mut Vec<Output>) {
        tracing::info!(peer = %self.peer, reason, "AUTH refused");
        self.shared.stats.update(|c| {
            c.auth.failed += 1;
            *c.auth.refusals.entry(reason.to_owned()).or_default() += 1;
        });
        out.push(Output::Reply(reply));
    }

    fn mail(&mut self, from: String, params: &[Param], out: &mut Vec<Output>) -> Option<Wire> {
        let scenario = self.shared.scenario();
        let settings = &*self.endpoint.settings(&scenario);
        if !self.greeted {
            return Some(reply::hello_first());
        }
        let Some(auth) = &self.auth else {
            return Some(reply::not_authenticated(settings, self.shared.clock.now()));
        };
        if self.transaction.is_some() {
            return Some(reply::sender_already());
        }
        if self.intercept(Stage::Mail, out) {
            return None;
        }
        let mut binary = false;
        for p in params {
            match (p.key.as_str(), p.value.as_deref()) {
                ("SIZE", Some(v)) => match v.parse::<u64>() {
                    Ok(size) if size > settings.max_message_size => return Some(reply::too_big()),
                    Ok(_) => {}
                    Err(_) => return Some(reply::bad_arguments()),
                },
                ("BODY", Some(v)) if v.eq_ignore_ascii_case("BINARYMIME") => binary = true,
                ("BODY", Some(v)) if v.eq_ignore_ascii_case("7BIT") || v.eq_ignore_ascii_case("8BITMIME") => {}
                ("SMTPUTF8", None) | ("RET" | "ENVID" | "AUTH", Some(_)) => {}
                _ => return Some(reply::bad_arguments()),
            }
        }
        if let Some(refusal) = self.endpoint.sender_refusal(&scenario, auth, &from) {
            return Some(self.refused(refusal));
        }
        self.transaction = Some(Transaction {
            from,
            recipients: Vec::new(),
            binary,
            content: Vec::new(),
            too_big: false,
            bare_lf: false,
            chunked: false,
            received: 0,
            drop_after: None,
            body_started: false,
        });
        Some(reply::sender_ok())
    }

    fn rcpt(&mut self, to: String, params: &[Param], out: &mut Vec<Output>) -> Option<Wire> {
        let scenario = self.shared.scenario();
        let max = self.endpoint.settings(&scenario).max_recipients_per_message as usize;
        let Some(count) = self.transaction.as_ref().map(|t| t.recipients.len()) else {
            return Some(reply::need_mail());
        };
        if self.intercept(Stage::Rcpt, out) {
            return None;
        }
        if params
            .iter()
            .any(|p| !matches!((p.key.as_str(), &p.value), ("NOTIFY" | "ORCPT", Some(_))))
        {
            return Some(reply::bad_arguments());
        }
        if let Some(auth) = &self.auth
            && let Some(refusal) = self.endpoint.recipient_refusal(&scenario, auth, &to)
        {
            return Some(self.refused(refusal));
        }
        if count >= max {
            self.shared.stats.update(|c| c.throttle.too_many_recipients += 1);
            return Some(reply::too_many_recipients());
        }
        self.transaction.as_mut()?.recipients.push(to);
        Some(reply::recipient_ok())
    }

    fn data_command(&mut self, out: &mut Vec<Output>) -> Option<Wire> {
        match &self.transaction {
            None => return Some(reply::need_mail()),
            Some(t) if t.recipients.is_empty() => return Some(reply::need_rcpt()),
            Some(t) if t.binary => return Some(reply::binarymime_needs_bdat()),
            Some(_) => {}
        }
        if self.intercept(Stage::Data, out) || !self.start_body(out) {
            return None;
        }
        self.mode = Mode::Data { line_start: true };
        Some(reply::start_data())
    }

    fn bdat_command(&mut self, size: u64, last: bool, out: &mut Vec<Output>) {
        let refusal = match &self.transaction {
            None => Some(reply::need_mail()),
            Some(t) if t.recipients.is_empty() => Some(reply::need_rcpt()),
            Some(_) => None,
        };
        if refusal.is_none() && !self.start_body(out) {
            return;
        }
        self.mode = Mode::Bdat {
            size,
            remaining: size,
            last,
            refusal,
        };
    }

    /// The first time content starts for a transaction: faults at `data_body`.
    fn start_body(&mut self, out: &mut Vec<Output>) -> bool {
        let started = self.transaction.as_ref().is_some_and(|t| t.body_started);
        if started {
            return true;
        }
        let effect = self.fault(Stage::DataBody);
        let Some(t) = self.transaction.as_mut() else {
            return false;
        };
        t.body_started = true;
        match effect {
            Some(Effect::Drop { after_bytes }) => t.drop_after = Some(after_bytes),
            Some(Effect::Delay(d)) => out.push(Output::Delay(d)),
            Some(Effect::Hang) => {
                out.push(Output::Hang);
                return false;
            }
            _ => {}
        }
        true
    }

    fn data_step(&mut self, input: &[u8], out: &mut Vec<Output>) -> Option<usize> {
        let Mode::Data { mut line_start } = self.mode else {
            return None;
        };
        let max = self.endpoint.max_message_size(&self.shared.scenario());
        let mut consumed = 0;
        let mut finished = false;
        {
            let t = self.transaction.as_mut()?;
            while let Some(nl) = input[consumed..].iter().position(|b| *b == b'\n') {
                let line = &input[consumed..consumed + nl + 1];
                if line_start && line == b".\r\n" {
                    consumed += line.len();
                    finished = true;
                    break;
                }
                if t.drop_after.is_some_and(|d| t.received + line.len() as u64 > d) {
                    out.push(Output::Close);
                    return Some(consumed);
                }
                consumed += line.len();
                t.received += line.len() as u64;
                let crlf = line.ends_with(b"\r\n");
                t.bare_lf |= !crlf;
                let content = if line_start && line.starts_with(b".") {
                    &line[1..]
                } else {
                    line
                };
                append(t, content, max);
                line_start = crlf;
            }
        }
        if finished {
            self.mode = Mode::Command;
            self.finish_message(out);
        } else {
            self.mode = Mode::Data { line_start };
        }
        (consumed > 0 || finished).then_some(consumed)
    }

    fn bdat_step(&mut self, input: &[u8], out: &mut Vec<Output>) -> Option<usize> {
        let Mode::Bdat {
            size,
            remaining,
            last,
            refusal,
        } = &mut self.mode
        else {
            return None;
        };
        let take = (*remaining).min(input.len() as u64) as usize;
        if take == 0 && *remaining > 0 {
            return None;
        }
        let max = self.endpoint.max_message_size(&self.shared.scenario());
        if refusal.is_none()
            && let Some(t) = self.transaction.as_mut()
        {
            if let Some(d) = t.drop_after
                && t.received + take as u64 > d
            {
                out.push(Output::Close);
                return Some(d.saturating_sub(t.received) as usize);
            }
            t.received += take as u64;
            t.chunked = true;
            append(t, &input[..take], max);
        }
        *remaining -= take as u64;
        if *remaining > 0 {
            return Some(take);
        }
        let (size, last, refusal) = (*size, *last, refusal.take());
        self.mode = Mode::Command;
        match refusal {
            Some(r) => out.push(Output::Reply(r)),
            None if last => self.finish_message(out),
            None => out.push(Output::Reply(reply::chunk_ok(size))),
        }
        Some(take)
    }

    /// The message is complete: Exchange's submission checks, then the store.
    fn finish_message(&mut self, out: &mut Vec<Output>) {
        let Some(t) = self.transaction.take() else { return };
        let Some(auth) = self.auth.clone() else { return };
        let mut accept_then_drop = false;
        match self.fault(Stage::DataEnd) {
            Some(Effect::Reply(r)) => return out.push(Output::Reply(r)),
            Some(Effect::Drop { .. }) => return out.push(Output::Close),
            Some(Effect::Hang) => return out.push(Output::Hang),
            Some(Effect::Delay(d)) => out.push(Output::Delay(d)),
            Some(Effect::AcceptThenDrop) => accept_then_drop = true,
            _ => {}
        }
        let scenario = self.shared.scenario();
        let settings = &*self.endpoint.settings(&scenario);
        let refusal = if t.too_big {
            Some(reply::too_big())
        } else if t.bare_lf && !t.chunked {
            Some(reply::bare_line_feed())
        } else if self.endpoint != Endpoint::Exchange {
            self.endpoint
                .content_refusal(&scenario, &auth, &senders(&t))
                .map(|r| self.refused(r))
        } else if !self
            .shared
            .limits
            .within_connection_limit(settings, &auth.mailbox, self.id)
        {
            self.shared.stats.update(|c| c.throttle.thread_limit += 1);
            Some(reply::thread_limit(settings))
        } else if scenario
            .mailbox(&auth.mailbox)
            .is_some_and(|(_, m)| !m.shared && !m.licensed)
        {
            Some(reply::unlicensed())
        } else {
            self.send_as_refusal(&t, &auth)
        };
        if let Some(r) = refusal {
            return out.push(Output::Reply(r));
        }
        let now = self.shared.clock.now();
        let recipients = t.recipients.len() as u32;
        if let Err(refusal) = self
            .endpoint
            .admit(&scenario, &self.shared.limits, &auth, recipients, now)
        {
            let acs = self.endpoint == Endpoint::Acs;
            self.shared.stats.update(|c| {
                if acs {
                    c.throttle.acs_quota += 1;
                } else {
                    c.throttle.quota += 1;
                }
            });
            return out.push(Output::Reply(self.refused(refusal)));
        }
        let delay = if self.endpoint == Endpoint::Exchange {
            let Ok(delay) = self.shared.limits.admit(settings, &auth.mailbox, recipients, now) else {
                self.shared.stats.update(|c| c.throttle.quota += 1);
                return out.push(Output::Reply(reply::quota_exceeded(settings)));
            };
            delay
        } else {
            Duration::ZERO
        };
        if !delay.is_zero() {
            self.shared.stats.update(|c| {
                c.throttle.rate_delays += 1;
                c.throttle.rate_delay_ms += delay.as_millis() as u64;
            });
            out.push(Output::Delay(delay));
        }
        let message_id = header_message_id(&t.content)
            .unwrap_or_else(|| format!("<{}@{}>", uuid::Uuid::new_v4().simple(), settings.mailbox_host));
        let delivered = self.shared.store.deliver(Delivered {
            id: uuid::Uuid::new_v4().simple().to_string().to_ascii_uppercase(),
            received_at: now + delay,
            tenant_id: auth.tenant_id.clone(),
            mailbox: auth.mailbox.clone(),
            identity: auth.identity.clone(),
            endpoint: self.endpoint,
            mail_from: t.from,
            rcpt_to: t.recipients,
            chunked: t.chunked,
            via_graph: false,
            saved_to_sent_items: None,
            data: t.content,
        });
        self.shared.stats.update(|c| {
            *c.messages.entry(auth.mailbox.to_ascii_lowercase()).or_default() += 1;
            *c.messages_by_endpoint
                .entry(self.endpoint.name().to_owned())
                .or_default() += 1;
        });
        tracing::info!(id = %delivered.id, endpoint = self.endpoint.name(), mailbox = %auth.mailbox, recipients = delivered.rcpt_to.len(), "message accepted");
        if accept_then_drop {
            out.push(Output::Close);
        } else {
            out.push(Output::Reply(reply::queued(settings, &message_id)));
        }
    }

    /// Counts a refusal of HVE's or ACS's rules and gives its reply.
    fn refused(&self, refusal: Refusal) -> Wire {
        tracing::info!(peer = %self.peer, endpoint = self.endpoint.name(), reason = refusal.reason, "refused");
        self.shared
            .stats
            .update(|c| *c.submission_refusals.entry(refusal.reason.to_owned()).or_default() += 1);
        refusal.reply
    }

    /// Send-As is checked after the content, against the From header and the envelope sender.
    /// Under RBAC for Applications a mailbox of the assignment's scope may be sent as without a
    /// SendAs grant (assumed: Microsoft does not document whether the scope alone grants it).
    fn send_as_refusal(&self, t: &Transaction, auth: &Authenticated) -> Option<Wire> {
        let scenario = self.shared.scenario();
        let tenant = scenario.tenants.iter().find(|x| x.id == auth.tenant_id)?;
        let trustees: Vec<&str> = auth.trustees.iter().map(String::as_str).collect();
        let denied = senders(t).into_iter().find(|sender| {
            !sender.eq_ignore_ascii_case(&auth.mailbox)
                && !tenant.mailbox_by_address(sender).is_some_and(|m| {
                    auth.rbac_scope.iter().any(|s| s.eq_ignore_ascii_case(&m.address))
                        || Mailbox::grants(&m.send_as, &trustees)
                })
        })?;
        Some(reply::send_as_denied(&scenario.exchange, &auth.mailbox, &denied))
    }

    fn fault(&self, stage: Stage) -> Option<Effect> {
        let mailbox = self.auth.as_ref().map(|a| a.mailbox.as_str());
        self.fault_for(stage, mailbox)
    }

    fn fault_for(&self, stage: Stage, mailbox: Option<&str>) -> Option<Effect> {
        let effect = self.shared.faults.check(
            stage,
            Subject {
                mailbox,
                client_id: None,
            },
        )?;
        self.shared.stats.update(|c| c.faults_fired += 1);
        Some(effect)
    }

    /// Applies a fault at `stage`; true when it replaces the normal handling.
    fn intercept(&self, stage: Stage, out: &mut Vec<Output>) -> bool {
        let mailbox = self.auth.as_ref().map(|a| a.mailbox.clone());
        self.intercept_for(stage, mailbox.as_deref(), out)
    }

    fn intercept_for(&self, stage: Stage, mailbox: Option<&str>, out: &mut Vec<Output>) -> bool {
        match self.fault_for(stage, mailbox) {
            Some(Effect::Reply(r)) => out.push(Output::Reply(r)),
            Some(Effect::Drop { .. }) => out.push(Output::Close),
            Some(Effect::Hang) => out.push(Output::Hang),
            Some(Effect::Delay(d)) => {
                out.push(Output::Delay(d));
                return false;
            }
            _ => return false,
        }
        true
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(auth) = &self.auth {
            self.shared.limits.disconnect(&auth.mailbox, self.id);
        }
    }
}

fn append(t: &mut Transaction, bytes: &[u8], max: u64) {
    if t.too_big {
        return;
    }
    if t.content.len() as u64 + bytes.len() as u64 > max {
        t.too_big = true;
        t.content = Vec::new();
    } else {
        t.content.extend_from_slice(bytes);
    }
}

fn decode_text(b64: &str) -> String {
    STANDARD
        .decode(b64.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_default()
}

/// The From header addresses, then the envelope sender unless it is the null sender.
fn senders(t: &Transaction) -> Vec<String> {
    let mut senders = header_from(&t.content);
    if !t.from.is_empty() {
        senders.push(t.from.clone());
    }
    senders
}

fn header_message_id(content: &[u8]) -> Option<String> {
    let message = mail_parser::MessageParser::default().parse_headers(content)?;
    message.message_id().map(|id| format!("<{id}>"))
}

fn header_from(content: &[u8]) -> Vec<String> {
    let Some(message) = mail_parser::MessageParser::default().parse_headers(content) else {
        return Vec::new();
    };
    message
        .from()
        .map(|from| from.iter().filter_map(|a| a.address().map(str::to_owned)).collect())
        .unwrap_or_default()
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
