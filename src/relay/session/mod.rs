//! One inbound SMTP session as a state machine without I/O: bytes in, replies and events out.
//!
//! The driver (`listener.rs`) feeds what it reads with [`Session::receive`], writes what
//! [`Session::take_output`] returns, and acts on each [`Event`]: a TLS handshake, a password to
//! check, a message to store. Everything a client can do to the relay is decided here, so it is
//! tested here, without sockets.
//!
//! Commands are parsed by `smtp-proto` (Stalwart's parser); message content by its
//! `DataReceiver` (the end of data is only `CRLF.CRLF`, dot-unstuffing). What real devices send
//! and the parser would refuse is accepted where it is unambiguous: `MAIL FROM:addr` without
//! angle brackets, a space after the colon, bare LF line ends on commands.

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use smtp_proto::request::receiver::DataReceiver;
use smtp_proto::{Error as ParseError, Request};

use super::policy::{Policy, Rule};
use crate::secret::Secret;
use commands::send_as_refusal;

mod auth;
mod commands;
mod content;

/// What to do with bare LF line ends in message content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BareLf {
    /// Turn them into CRLF (as Postfix does by default): old devices and scripts send them.
    Normalize,
    /// Refuse the message (Exchange itself refuses bare LF).
    Refuse,
}

/// Session limits and what the listener offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Settings {
    /// Name in the greeting and EHLO reply.
    pub(crate) hostname: String,
    /// Largest message accepted (advertised as SIZE).
    pub(crate) max_message_size: usize,
    /// Most recipients per message.
    pub(crate) max_recipients: usize,
    /// Longest command line, CRLF included.
    pub(crate) max_line_length: usize,
    /// Bare LF in content.
    pub(crate) bare_lf: BareLf,
    /// The listener can upgrade with STARTTLS.
    pub(crate) starttls: bool,
    /// Bad commands before the session is closed.
    pub(crate) max_errors: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            hostname: "localhost".into(),
            max_message_size: 35 * 1024 * 1024,
            max_recipients: 500,
            max_line_length: 4096,
            bare_lf: BareLf::Normalize,
            starttls: false,
            max_errors: 10,
        }
    }
}

/// Longest SASL response line (RFC 4954 §4).
const MAX_SASL_LINE: usize = 12_288;

/// What the driver must do next.
#[derive(Debug)]
pub(crate) enum Event {
    /// Write the output, then read more and [`Session::receive`] it.
    NeedInput,
    /// Write the output, run the TLS handshake, then call [`Session::tls_started`].
    StartTls,
    /// Check a password (slowly, off the async threads), then call
    /// [`Session::password_checked`].
    CheckPassword {
        /// Login name.
        user: String,
        /// Password.
        password: Secret,
    },
    /// Store the message durably, then call [`Session::stored`].
    Message(Box<Accepted>),
    /// Write the output and close the connection.
    Close,
}

/// A message the client finished sending, checked against the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Accepted {
    /// The rule it falls under.
    pub(crate) rule: Rule,
    /// Envelope sender (after rewriting).
    pub(crate) sender: String,
    /// Envelope recipients.
    pub(crate) recipients: Vec<String>,
    /// Content with CRLF line ends, unstuffed (From rewritten when the rule says so).
    pub(crate) content: Vec<u8>,
    /// The client's HELO/EHLO name.
    pub(crate) helo: String,
    /// It said EHLO (ESMTP) rather than HELO.
    pub(crate) esmtp: bool,
    /// The client's address.
    pub(crate) client: IpAddr,
    /// The authenticated user.
    pub(crate) user: Option<String>,
    /// Whether the session was encrypted.
    pub(crate) tls: bool,
}

impl Accepted {
    /// The `Received` trace header the relay adds (RFC 5321 §4.4, protocol names of RFC 3848).
    pub(crate) fn received_header(&self, hostname: &str, id: &str, date: &str) -> String {
        let protocol = match (self.esmtp, self.tls, self.user.is_some()) {
            (false, _, _) => "SMTP",
            (true, false, false) => "ESMTP",
            (true, true, false) => "ESMTPS",
            (true, false, true) => "ESMTPA",
            (true, true, true) => "ESMTPSA",
        };
        let helo: String = self
            .helo
            .chars()
            .filter(|c| c.is_ascii_graphic() && !"()[];".contains(*c))
            .take(64)
            .collect();
        let recipient = match self.recipients.as_slice() {
            [one] => format!("\r\n\tfor <{one}>"),
            _ => String::new(),
        };
        format!(
            "Received: from {helo} ([{}])\r\n\tby {hostname} (m365-mailer) with {protocol} id {id}{recipient};\r\n\t{date}\r\n",
            self.client
        )
    }
}

/// Which timeout applies while waiting for input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Waiting {
    /// For the next command.
    Command,
    /// For the rest of a command line already started.
    Line,
    /// For message content.
    Content,
}

#[derive(Debug)]
enum State {
    Command,
    AuthPlain,
    AuthLoginUser,
    AuthLoginPassword {
        user: String,
    },
    Data {
        receiver: DataReceiverBox,
        content: Vec<u8>,
        too_big: bool,
    },
    Bdat {
        left: usize,
        last: bool,
        refusal: Option<Refusal>,
    },
    CheckingPassword,
    Storing,
    StartingTls,
    Closed,
}

/// `DataReceiver` has no `Debug`.
struct DataReceiverBox(DataReceiver);

impl std::fmt::Debug for DataReceiverBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataReceiver")
    }
}

#[derive(Debug)]
struct Transaction {
    rule: Rule,
    sender: String,
    recipients: Vec<String>,
    smtputf8: bool,
    /// BDAT content so far.
    chunks: Vec<u8>,
    /// A BDAT chunk was refused: the rest is refused too, until LAST.
    failed: Option<Refusal>,
}

/// A refusal: code, enhanced code, text.
#[derive(Debug, Clone)]
struct Refusal(u16, &'static str, String);

/// One inbound session. Its input buffer may hold an AUTH response (a password in base64):
/// `Debug` shows the state, never the buffers.
pub(crate) struct Session {
    settings: Arc<Settings>,
    policy: Arc<Policy>,
    client: IpAddr,
    tls: bool,
    input: Vec<u8>,
    output: Vec<u8>,
    state: State,
    /// HELO/EHLO name, and whether it was EHLO.
    helo: Option<(String, bool)>,
    user: Option<(String, Rule)>,
    transaction: Option<Transaction>,
    errors: u32,
    /// Discarding the rest of an over-long line.
    skipping_line: bool,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            State::Command => "command",
            State::AuthPlain | State::AuthLoginUser | State::AuthLoginPassword { .. } => "auth",
            State::Data { .. } | State::Bdat { .. } => "content",
            State::CheckingPassword => "checking password",
            State::Storing => "storing",
            State::StartingTls => "starting TLS",
            State::Closed => "closed",
        };
        f.debug_struct("Session")
            .field("client", &self.client)
            .field("tls", &self.tls)
            .field("state", &state)
            .field("user", &self.user.as_ref().map(|(name, _)| name))
            .field("buffered", &self.input.len())
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A session with a client at `client`; `tls` when the listener is implicit TLS. The
    /// greeting is in the output.
    pub(crate) fn new(settings: Arc<Settings>, policy: Arc<Policy>, client: IpAddr, tls: bool) -> Self {
        let mut session = Self {
            settings,
            policy,
            client: client.to_canonical(),
            tls,
            input: Vec::new(),
            output: Vec::new(),
            state: State::Command,
            helo: None,
            user: None,
            transaction: None,
            errors: 0,
            skipping_line: false,
        };
        let greeting = format!("{} ESMTP m365-mailer relay", session.settings.hostname);
        session.reply(220, "", &greeting);
        session
    }

    /// Refuses a client before the session starts (too many connections) and closes.
    pub(crate) fn refuse(reason: &str) -> Vec<u8> {
        format!("421 4.7.0 {reason}\r\n").into_bytes()
    }

    /// Bytes read from the client.
    pub(crate) fn receive(&mut self, bytes: &[u8]) {
        self.input.extend_from_slice(bytes);
    }

    /// Replies to write.
    pub(crate) fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.output)
    }

    /// Which timeout applies while waiting for input.
    pub(crate) fn waiting(&self) -> Waiting {
        match self.state {
            State::Data { .. } | State::Bdat { .. } => Waiting::Content,
            _ if !self.input.is_empty() || self.skipping_line => Waiting::Line,
            _ => Waiting::Command,
        }
    }

    /// The client went quiet for too long.
    pub(crate) fn timed_out(&mut self) {
        self.reply(
            421,
            "4.4.2",
            &format!("{} Error: timeout exceeded", self.settings.hostname),
        );
        self.state = State::Closed;
    }

    /// The session has lasted its lifetime (`max_session_time`): the client reconnects.
    pub(crate) fn lifetime_reached(&mut self) {
        self.reply(
            421,
            "4.4.2",
            &format!("{} Error: session lasted too long, reconnect", self.settings.hostname),
        );
        self.state = State::Closed;
    }

    /// The client closed the connection or it failed.
    pub(crate) fn disconnected(&mut self) {
        self.state = State::Closed;
    }

    /// The relay is shutting down: refuse what comes next.
    pub(crate) fn shutting_down(&mut self) {
        self.reply(421, "4.3.2", "Service shutting down, try again later");
        self.state = State::Closed;
    }

    /// Whether a message is half received (shutdown waits for it).
    pub(crate) fn in_transaction(&self) -> bool {
        self.transaction.is_some()
    }

    /// Processes buffered input until the driver has to act.
    pub(crate) fn next_event(&mut self) -> Event {
        loop {
            match &mut self.state {
                State::Closed => return Event::Close,
                State::StartingTls => return Event::StartTls,
                State::CheckingPassword | State::Storing => return Event::NeedInput,
                State::Data { .. } => {
                    if let Some(event) = self.data() {
                        return event;
                    }
                    if matches!(self.state, State::Data { .. }) {
                        return Event::NeedInput;
                    }
                }
                State::Bdat { .. } => {
                    if let Some(event) = self.bdat() {
                        return event;
                    }
                    if matches!(self.state, State::Bdat { .. }) {
                        return Event::NeedInput;
                    }
                }
                State::Command | State::AuthPlain | State::AuthLoginUser | State::AuthLoginPassword { .. } => {
                    let Some(line) = self.line() else {
                        return Event::NeedInput;
                    };
                    if let Some(event) = self.handle_line(&line) {
                        return event;
                    }
                }
            }
        }
    }

    /// The TLS handshake finished: the session starts over (RFC 3207 §4.2).
    pub(crate) fn tls_started(&mut self) {
        self.tls = true;
        self.helo = None;
        self.user = None;
        self.transaction = None;
        self.input.clear();
        self.state = State::Command;
    }

    /// The outcome of [`Event::CheckPassword`]: the user's rule, or `None` when refused.
    pub(crate) fn password_checked(&mut self, user: &str, rule: Option<Rule>) {
        self.state = State::Command;
        match rule {
            Some(rule) => {
                self.user = Some((user.to_owned(), rule));
                self.reply(235, "2.7.0", "Authentication successful");
            }
            None => {
                self.errors += 1;
                self.reply(535, "5.7.8", "Authentication credentials invalid");
                self.check_errors();
            }
        }
    }

    /// The outcome of [`Event::Message`]: its queue id once durably stored, or why not.
    pub(crate) fn stored(&mut self, result: Result<&str, &str>) {
        self.state = State::Command;
        self.transaction = None;
        match result {
            Ok(id) => self.reply(250, "2.0.0", &format!("Ok: queued as {id}")),
            Err(why) => self.reply(451, "4.3.0", &format!("Message not stored, try again later: {why}")),
        }
    }

    fn reply(&mut self, code: u16, enhanced: &str, text: &str) {
        let text = text.replace(['\r', '\n'], " ");
        if enhanced.is_empty() {
            self.output.extend_from_slice(format!("{code} {text}\r\n").as_bytes());
        } else {
            self.output
                .extend_from_slice(format!("{code} {enhanced} {text}\r\n").as_bytes());
        }
    }

    fn error(&mut self, code: u16, enhanced: &str, text: &str) {
        self.errors += 1;
        self.reply(code, enhanced, text);
        self.check_errors();
    }

    fn check_errors(&mut self) {
        if self.errors >= self.settings.max_errors {
            self.reply(421, "4.7.0", "Too many errors, closing the connection");
            self.state = State::Closed;
        }
    }

    /// The next complete line, CRLF or LF removed. An over-long line is answered and skipped.
    fn line(&mut self) -> Option<Vec<u8>> {
        let limit = match self.state {
            State::Command => self.settings.max_line_length,
            _ => MAX_SASL_LINE,
        };
        loop {
            let Some(newline) = self.input.iter().position(|b| *b == b'\n') else {
                if self.input.len() > limit {
                    self.input.clear();
                    if !self.skipping_line {
                        self.skipping_line = true;
                        self.error(500, "5.5.2", "Line too long");
                    }
                }
                return None;
            };
            let mut line: Vec<u8> = self.input.drain(..=newline).collect();
            if std::mem::take(&mut self.skipping_line) {
                continue;
            }
            if line.len() > limit {
                self.error(500, "5.5.2", "Line too long");
                if matches!(self.state, State::Closed) {
                    return None;
                }
                continue;
            }
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Some(line);
        }
    }

    fn handle_line(&mut self, line: &[u8]) -> Option<Event> {
        match std::mem::replace(&mut self.state, State::Command) {
            State::AuthPlain => self.auth_plain(line),
            State::AuthLoginUser => {
                if line == b"*" {
                    self.error(501, "5.7.0", "Authentication cancelled");
                    return None;
                }
                self.auth_login_user(line)
            }
            State::AuthLoginPassword { user } => {
                if line == b"*" {
                    self.error(501, "5.7.0", "Authentication cancelled");
                    return None;
                }
                match BASE64.decode(line) {
                    Ok(password) => Some(self.check_password(user, &password)),
                    Err(_) => {
                        self.error(501, "5.5.2", "Cannot decode the response");
                        None
                    }
                }
            }
            _ => self.command(line),
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod service_tests;
