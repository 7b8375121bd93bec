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

/// What to do with bare LF line ends in message content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BareLf {
    /// Turn them into CRLF (as Postfix does by default): old devices and scripts send them.
    Normalize,
    /// Refuse the message (Exchange itself refuses bare LF).
    Refuse,
}

/// Session limits and what the listener offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Name in the greeting and EHLO reply.
    pub hostname: String,
    /// Largest message accepted (advertised as SIZE).
    pub max_message_size: usize,
    /// Most recipients per message.
    pub max_recipients: usize,
    /// Longest command line, CRLF included.
    pub max_line_length: usize,
    /// Bare LF in content.
    pub bare_lf: BareLf,
    /// The listener can upgrade with STARTTLS.
    pub starttls: bool,
    /// Bad commands before the session is closed.
    pub max_errors: u32,
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
pub enum Event {
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
pub struct Accepted {
    /// The rule it falls under.
    pub rule: Rule,
    /// Envelope sender (after rewriting).
    pub sender: String,
    /// Envelope recipients.
    pub recipients: Vec<String>,
    /// Content with CRLF line ends, unstuffed (From rewritten when the rule says so).
    pub content: Vec<u8>,
    /// The client's HELO/EHLO name.
    pub helo: String,
    /// It said EHLO (ESMTP) rather than HELO.
    pub esmtp: bool,
    /// The client's address.
    pub client: IpAddr,
    /// The authenticated user.
    pub user: Option<String>,
    /// Whether the session was encrypted.
    pub tls: bool,
}

impl Accepted {
    /// The `Received` trace header the relay adds (RFC 5321 §4.4, protocol names of RFC 3848).
    pub fn received_header(&self, hostname: &str, id: &str, date: &str) -> String {
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
pub enum Waiting {
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
pub struct Session {
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
    pub fn new(settings: Arc<Settings>, policy: Arc<Policy>, client: IpAddr, tls: bool) -> Self {
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
    pub fn refuse(reason: &str) -> Vec<u8> {
        format!("421 4.7.0 {reason}\r\n").into_bytes()
    }

    /// Bytes read from the client.
    pub fn receive(&mut self, bytes: &[u8]) {
        self.input.extend_from_slice(bytes);
    }

    /// Replies to write.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.output)
    }

    /// Which timeout applies while waiting for input.
    pub fn waiting(&self) -> Waiting {
        match self.state {
            State::Data { .. } | State::Bdat { .. } => Waiting::Content,
            _ if !self.input.is_empty() || self.skipping_line => Waiting::Line,
            _ => Waiting::Command,
        }
    }

    /// The client went quiet for too long.
    pub fn timed_out(&mut self) {
        self.reply(
            421,
            "4.4.2",
            &format!("{} Error: timeout exceeded", self.settings.hostname),
        );
        self.state = State::Closed;
    }

    /// The session has lasted its lifetime (`max_session_time`): the client reconnects.
    pub fn lifetime_reached(&mut self) {
        self.reply(
            421,
            "4.4.2",
            &format!("{} Error: session lasted too long, reconnect", self.settings.hostname),
        );
        self.state = State::Closed;
    }

    /// The client closed the connection or it failed.
    pub fn disconnected(&mut self) {
        self.state = State::Closed;
    }

    /// The relay is shutting down: refuse what comes next.
    pub fn shutting_down(&mut self) {
        self.reply(421, "4.3.2", "Service shutting down, try again later");
        self.state = State::Closed;
    }

    /// Whether a message is half received (shutdown waits for it).
    pub fn in_transaction(&self) -> bool {
        self.transaction.is_some()
    }

    /// Processes buffered input until the driver has to act.
    pub fn next_event(&mut self) -> Event {
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
    pub fn tls_started(&mut self) {
        self.tls = true;
        self.helo = None;
        self.user = None;
        self.transaction = None;
        self.input.clear();
        self.state = State::Command;
    }

    /// The outcome of [`Event::CheckPassword`]: the user's rule, or `None` when refused.
    pub fn password_checked(&mut self, user: &str, rule: Option<Rule>) {
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
    pub fn stored(&mut self, result: Result<&str, &str>) {
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
                match decode(line) {
                    Some(user) => {
                        self.state = State::AuthLoginPassword { user };
                        self.reply(334, "", "UGFzc3dvcmQ6");
                        None
                    }
                    None => {
                        self.error(501, "5.5.2", "Cannot decode the response");
                        None
                    }
                }
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

    fn command(&mut self, line: &[u8]) -> Option<Event> {
        let mut wire = lenient(line).into_owned();
        wire.extend_from_slice(b"\r\n");
        let request = match Request::parse(&mut wire.iter()) {
            Ok(request) => request,
            Err(e) => {
                self.parse_error(&e);
                return None;
            }
        };
        match request {
            Request::Ehlo { host } => {
                self.greet(&host, true);
                None
            }
            Request::Helo { host } => {
                self.greet(&host, false);
                None
            }
            Request::Lhlo { .. } => {
                self.error(500, "5.5.1", "LHLO is for LMTP; use EHLO");
                None
            }
            Request::Mail { from } => {
                self.mail(&from.address, from.size, from.flags & smtp_proto::MAIL_SMTPUTF8 != 0);
                None
            }
            Request::Rcpt { to } => {
                self.rcpt(&to.address);
                None
            }
            Request::Data => {
                self.data_command();
                None
            }
            Request::Bdat { chunk_size, is_last } => {
                self.bdat_command(chunk_size, is_last);
                None
            }
            Request::Auth {
                mechanism,
                initial_response,
            } => self.auth(mechanism, &initial_response),
            Request::StartTls => self.starttls(),
            Request::Rset => {
                self.transaction = None;
                self.reply(250, "2.0.0", "Ok");
                None
            }
            Request::Noop { .. } => {
                self.reply(250, "2.0.0", "Ok");
                None
            }
            Request::Quit => {
                self.reply(221, "2.0.0", "Bye");
                self.state = State::Closed;
                Some(Event::Close)
            }
            Request::Vrfy { .. } => {
                self.reply(
                    252,
                    "2.5.2",
                    "Cannot VRFY user, but will accept message and attempt delivery",
                );
                None
            }
            Request::Help { .. } => {
                self.reply(
                    214,
                    "2.0.0",
                    "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP STARTTLS AUTH",
                );
                None
            }
            Request::Expn { .. } | Request::Etrn { .. } | Request::Atrn { .. } | Request::Burl { .. } => {
                self.error(502, "5.5.1", "Command not implemented");
                None
            }
        }
    }

    fn parse_error(&mut self, e: &ParseError) {
        match e {
            ParseError::UnknownCommand => self.error(500, "5.5.2", "Syntax error, command unrecognized"),
            ParseError::InvalidSenderAddress => self.error(501, "5.1.7", "Bad sender address syntax"),
            ParseError::InvalidRecipientAddress => self.error(501, "5.1.3", "Bad recipient address syntax"),
            ParseError::SyntaxError { syntax } => self.error(501, "5.5.4", &format!("Syntax: {syntax}")),
            ParseError::InvalidParameter { param } => self.error(501, "5.5.4", &format!("Invalid {param} parameter")),
            ParseError::UnsupportedParameter { param } => {
                let param = param.clone();
                self.error(555, "5.5.4", &format!("Unsupported parameter {param}"));
            }
            ParseError::ResponseTooLong => self.error(500, "5.5.2", "Line too long"),
            ParseError::NeedsMoreData { .. } | ParseError::InvalidResponse { .. } => {
                self.error(500, "5.5.2", "Syntax error");
            }
        }
    }

    fn auth_offered(&self) -> bool {
        self.policy.has_users() && (self.tls || self.policy.plaintext_auth_allowed(self.client))
    }

    fn greet(&mut self, host: &str, extended: bool) {
        self.helo = Some((host.to_owned(), extended));
        self.transaction = None;
        let hostname = self.settings.hostname.clone();
        if !extended {
            self.reply(250, "", &hostname);
            return;
        }
        let mut lines = vec![
            format!("{hostname} Hello [{}]", self.client),
            "PIPELINING".to_owned(),
            format!("SIZE {}", self.settings.max_message_size),
            "8BITMIME".to_owned(),
            "SMTPUTF8".to_owned(),
            "ENHANCEDSTATUSCODES".to_owned(),
            "CHUNKING".to_owned(),
        ];
        if self.settings.starttls && !self.tls {
            lines.push("STARTTLS".to_owned());
        }
        if self.auth_offered() {
            lines.push("AUTH PLAIN LOGIN".to_owned());
        }
        lines.push("HELP".to_owned());
        let last = lines.len() - 1;
        for (i, line) in lines.iter().enumerate() {
            let sep = if i == last { ' ' } else { '-' };
            self.output.extend_from_slice(format!("250{sep}{line}\r\n").as_bytes());
        }
    }

    /// The rule the client relays under now: its user's, else its network's.
    fn rule(&self) -> Option<Rule> {
        match &self.user {
            Some((_, rule)) => Some(rule.clone()),
            None => self.policy.network_rule(self.client).cloned(),
        }
    }

    fn mail(&mut self, from: &str, size: usize, smtputf8: bool) {
        if self.helo.is_none() {
            return self.error(503, "5.5.1", "Send HELO or EHLO first");
        }
        if self.transaction.is_some() {
            return self.error(503, "5.5.1", "Nested MAIL command");
        }
        let Some(rule) = self.rule() else {
            let how = if self.auth_offered() {
                "authenticate (AUTH) first"
            } else if self.policy.has_users() {
                "authenticate over TLS (STARTTLS, then AUTH)"
            } else {
                "ask the administrator to allow this address in relay.allow"
            };
            return self.error(
                530,
                "5.7.0",
                &format!(
                    "Authentication required: {} may not relay without it; {how}",
                    self.client
                ),
            );
        };
        if size > self.settings.max_message_size {
            return self.error(
                552,
                "5.3.4",
                &format!(
                    "Message size {size} exceeds the limit of {} bytes",
                    self.settings.max_message_size
                ),
            );
        }
        if !from.is_ascii() && !smtputf8 {
            return self.error(553, "5.6.7", "Non-ASCII sender address needs the SMTPUTF8 parameter");
        }
        let senders = self.policy.senders(&rule.account);
        let sender = match senders {
            Some(s) if rule.rewrite_sender => s.mailbox.clone(),
            Some(s) if !from.is_empty() && s.allows(from) => from.to_owned(),
            Some(s) => {
                let shown = if from.is_empty() { "the null sender <>" } else { from };
                return self.error(550, "5.7.60", &send_as_refusal(shown, &s.mailbox, &rule));
            }
            None => return self.error(451, "4.3.0", "The account for this client is not configured"),
        };
        self.transaction = Some(Transaction {
            rule,
            sender,
            recipients: Vec::new(),
            smtputf8,
            chunks: Vec::new(),
            failed: None,
        });
        self.reply(250, "2.1.0", "Sender OK");
    }

    fn rcpt(&mut self, to: &str) {
        let max = self.settings.max_recipients;
        let Some(tx) = &mut self.transaction else {
            return self.error(503, "5.5.1", "Need MAIL before RCPT");
        };
        if to.is_empty() {
            return self.error(501, "5.1.3", "Bad recipient address syntax");
        }
        if !to.is_ascii() && !tx.smtputf8 {
            return self.error(553, "5.6.7", "Non-ASCII recipient address needs SMTPUTF8 on MAIL FROM");
        }
        if crate::message::check_address(to).is_err() {
            // smtp-proto has taken the quotes off a quoted local part: sent on as it is, its
            // spaces or brackets would become RCPT parameters upstream.
            return self.error(
                553,
                "5.1.3",
                "Recipient address not accepted: quoted local parts, spaces and brackets are not relayed",
            );
        }
        if tx.recipients.len() >= max {
            return self.reply(452, "4.5.3", &format!("Too many recipients: at most {max} per message"));
        }
        if !tx.recipients.iter().any(|r| r.eq_ignore_ascii_case(to)) {
            tx.recipients.push(to.to_owned());
        }
        self.reply(250, "2.1.5", "Recipient OK");
    }

    fn data_command(&mut self) {
        match &self.transaction {
            None => self.error(503, "5.5.1", "Need MAIL before DATA"),
            Some(tx) if tx.recipients.is_empty() => self.error(554, "5.5.1", "No valid recipients"),
            Some(tx) if !tx.chunks.is_empty() => self.error(503, "5.5.1", "DATA after BDAT"),
            Some(_) => {
                self.reply(354, "", "End data with <CR><LF>.<CR><LF>");
                // The CRLF ending the DATA line starts the first line of content: without it
                // the receiver would neither unstuff a leading `..` nor see an empty message's
                // lone `.` (found by fuzzing the round trip with the client's dot-stuffing).
                let mut receiver = DataReceiver::new();
                let mut content = Vec::new();
                receiver.ingest(&mut b"\r\n".iter(), &mut content);
                content.clear();
                self.state = State::Data {
                    receiver: DataReceiverBox(receiver),
                    content,
                    too_big: false,
                };
            }
        }
    }

    /// Reads DATA content; `Some` when the message is complete and must be stored.
    fn data(&mut self) -> Option<Event> {
        let State::Data {
            receiver,
            content,
            too_big,
        } = &mut self.state
        else {
            return None;
        };
        let mut bytes = self.input.iter();
        let done = receiver.0.ingest(&mut bytes, content);
        let consumed = self.input.len() - bytes.as_slice().len();
        self.input.drain(..consumed);
        if content.len() > self.settings.max_message_size {
            // Keep reading to the end, storing nothing more.
            *too_big = true;
            content.clear();
        }
        if !done {
            return None;
        }
        let too_big = *too_big;
        let content = std::mem::take(content);
        self.state = State::Command;
        if too_big {
            self.transaction = None;
            self.reply(
                552,
                "5.3.4",
                &format!("Message exceeds the limit of {} bytes", self.settings.max_message_size),
            );
            return None;
        }
        self.finish_message(content)
    }

    fn bdat_command(&mut self, size: usize, last: bool) {
        let max = self.settings.max_message_size;
        let refusal = match &self.transaction {
            None => Some(Refusal(503, "5.5.1", "Need MAIL before BDAT".into())),
            Some(tx) if tx.failed.is_some() => tx.failed.clone(),
            Some(tx) if tx.recipients.is_empty() => Some(Refusal(554, "5.5.1", "No valid recipients".into())),
            Some(tx) if tx.chunks.len().saturating_add(size) > max => Some(Refusal(
                552,
                "5.3.4",
                format!("Message exceeds the limit of {max} bytes"),
            )),
            Some(_) => None,
        };
        if let Some(tx) = &mut self.transaction {
            tx.failed.clone_from(&refusal);
            if refusal.is_some() {
                tx.chunks = Vec::new();
            }
        }
        // The chunk follows the command whatever the answer: it is read in any case.
        self.state = State::Bdat {
            left: size,
            last,
            refusal,
        };
    }

    fn bdat(&mut self) -> Option<Event> {
        let State::Bdat { left, last, refusal } = &mut self.state else {
            return None;
        };
        let take = (*left).min(self.input.len());
        if refusal.is_none()
            && let Some(tx) = &mut self.transaction
        {
            tx.chunks.extend_from_slice(&self.input[..take]);
        }
        self.input.drain(..take);
        *left -= take;
        if *left > 0 {
            return None;
        }
        let (last, refusal) = (*last, refusal.take());
        self.state = State::Command;
        if let Some(Refusal(code, enhanced, text)) = refusal {
            if last {
                self.transaction = None;
            }
            self.error(code, enhanced, &text);
            return None;
        }
        let tx = self
            .transaction
            .as_mut()
            .expect("a chunk without refusal belongs to a transaction");
        if !last {
            let size = tx.chunks.len();
            self.reply(250, "2.0.0", &format!("{size} octets received"));
            return None;
        }
        let content = std::mem::take(&mut tx.chunks);
        self.finish_message(content)
    }

    /// Checks a complete message and hands it to the driver. Line ends are made CRLF first, so
    /// the From that is checked is the From that is delivered: a bare CR or LF would be a line
    /// end to Exchange, which reads the normalised copy.
    fn finish_message(&mut self, content: Vec<u8>) -> Option<Event> {
        let tx = self.transaction.as_ref().expect("a message belongs to a transaction");
        let content = if has_bare_line_end(&content) {
            match self.settings.bare_lf {
                BareLf::Normalize => crate::smtp::transparency::normalize_line_endings(&content).into_owned(),
                BareLf::Refuse => {
                    self.transaction = None;
                    self.error(
                        550,
                        "5.6.11",
                        "Message has bare CR or LF line ends; send CRLF (or set relay.bare_lf = \"normalize\")",
                    );
                    return None;
                }
            }
        } else {
            content
        };
        // A line that is no header field starts the body: an empty line goes before it, so no
        // reader takes it for a field (mail-parser reads `F\x0crom:` as `From:`).
        let content = match crate::message::end_head(&content) {
            Cow::Owned(ended) => ended,
            Cow::Borrowed(_) => content,
        };
        let senders = self.policy.senders(&tx.rule.account).cloned();
        let checked = match &senders {
            Some(senders) if tx.rule.rewrite_sender => {
                crate::message::rewrite_from(&content, &senders.mailbox).map_err(|e| (550, "5.6.0", e.to_string()))
            }
            Some(senders) => match crate::message::from_mailboxes(&content) {
                Err(e) => Err((550, "5.6.0", e.to_string())),
                Ok(from) => match from.iter().flatten().find(|m| !senders.allows(&m.address)) {
                    Some(refused) => Err((
                        550,
                        "5.7.60",
                        send_as_refusal(&refused.address, &senders.mailbox, &tx.rule),
                    )),
                    None => Ok(content),
                },
            },
            None => Ok(content),
        };
        let content = match checked {
            Ok(content) => content,
            Err((code, enhanced, text)) => {
                self.transaction = None;
                self.error(code, enhanced, &text);
                return None;
            }
        };
        let tx = self.transaction.as_ref().expect("checked above");
        self.state = State::Storing;
        Some(Event::Message(Box::new(Accepted {
            rule: tx.rule.clone(),
            sender: tx.sender.clone(),
            recipients: tx.recipients.clone(),
            content,
            helo: self.helo.as_ref().map(|(h, _)| h.clone()).unwrap_or_default(),
            esmtp: self.helo.as_ref().is_some_and(|(_, e)| *e),
            client: self.client,
            user: self.user.as_ref().map(|(name, _)| name.clone()),
            tls: self.tls,
        })))
    }

    fn auth(&mut self, mechanism: u64, initial: &str) -> Option<Event> {
        if self.helo.is_none() {
            self.error(503, "5.5.1", "Send EHLO first");
            return None;
        }
        if self.user.is_some() {
            self.error(503, "5.5.1", "Already authenticated");
            return None;
        }
        if self.transaction.is_some() {
            self.error(503, "5.5.1", "AUTH is not allowed during a mail transaction");
            return None;
        }
        if !self.policy.has_users() {
            self.error(502, "5.5.1", "AUTH is not offered here: no relay users are configured");
            return None;
        }
        if !self.tls && !self.policy.plaintext_auth_allowed(self.client) {
            self.error(
                538,
                "5.7.11",
                "Encryption required for requested authentication mechanism: use STARTTLS first",
            );
            return None;
        }
        match mechanism {
            smtp_proto::AUTH_PLAIN if initial.is_empty() => {
                self.state = State::AuthPlain;
                self.reply(334, "", "");
                None
            }
            smtp_proto::AUTH_PLAIN => self.auth_plain(initial.as_bytes()),
            smtp_proto::AUTH_LOGIN if initial.is_empty() => {
                self.state = State::AuthLoginUser;
                self.reply(334, "", "VXNlcm5hbWU6");
                None
            }
            smtp_proto::AUTH_LOGIN => match decode(initial.as_bytes()) {
                Some(user) => {
                    self.state = State::AuthLoginPassword { user };
                    self.reply(334, "", "UGFzc3dvcmQ6");
                    None
                }
                None => {
                    self.error(501, "5.5.2", "Cannot decode the response");
                    None
                }
            },
            _ => {
                self.error(504, "5.5.4", "Unrecognized authentication type: use PLAIN or LOGIN");
                None
            }
        }
    }

    fn auth_plain(&mut self, response: &[u8]) -> Option<Event> {
        if response == b"*" {
            self.error(501, "5.7.0", "Authentication cancelled");
            return None;
        }
        let decoded = if response == b"=" {
            Some(Vec::new())
        } else {
            BASE64.decode(response).ok()
        };
        let parts: Option<(String, String, Vec<u8>)> = decoded.and_then(|d| {
            let mut fields = d.splitn(3, |b| *b == 0);
            let authz = String::from_utf8(fields.next()?.to_vec()).ok()?;
            let user = String::from_utf8(fields.next()?.to_vec()).ok()?;
            let password = fields.next()?.to_vec();
            Some((authz, user, password))
        });
        match parts {
            Some((authz, user, password)) if authz.is_empty() || authz == user => {
                Some(self.check_password(user, &password))
            }
            Some(_) => {
                self.error(535, "5.7.8", "Authorization identity must be empty or the user");
                None
            }
            None => {
                self.error(501, "5.5.2", "Cannot decode the response");
                None
            }
        }
    }

    fn check_password(&mut self, user: String, password: &[u8]) -> Event {
        self.state = State::CheckingPassword;
        Event::CheckPassword {
            user,
            password: Secret::new(String::from_utf8_lossy(password).into_owned()),
        }
    }

    fn starttls(&mut self) -> Option<Event> {
        if self.tls {
            self.error(503, "5.5.1", "Already running TLS");
            return None;
        }
        if !self.settings.starttls {
            self.error(502, "5.5.1", "STARTTLS is not offered on this port");
            return None;
        }
        self.reply(220, "2.0.0", "Ready to start TLS");
        // Anything pipelined behind STARTTLS was sent in the clear: drop it (CVE-2011-0411).
        self.input.clear();
        self.state = State::StartingTls;
        Some(Event::StartTls)
    }
}

/// The refusal text for a sender the account may not send as.
fn send_as_refusal(sender: &str, mailbox: &str, rule: &Rule) -> String {
    format!(
        "{sender} is not allowed as sender for {}: the relay sends as {mailbox}, which needs SendAs on \
         {sender} (Add-RecipientPermission) listed in the account's allowed_senders, or set rewrite_sender \
         for this client",
        rule.name
    )
}

/// `MAIL FROM:addr` → `MAIL FROM:<addr>`, and no space after the colon: what devices send.
fn lenient(line: &[u8]) -> Cow<'_, [u8]> {
    for prefix in [&b"MAIL FROM:"[..], b"RCPT TO:"] {
        if line.len() < prefix.len() || !line[..prefix.len()].eq_ignore_ascii_case(prefix) {
            continue;
        }
        let rest = &line[prefix.len()..];
        let rest = &rest[rest.iter().take_while(|b| **b == b' ').count()..];
        if rest.starts_with(b"<") {
            let mut fixed = line[..prefix.len()].to_vec();
            fixed.extend_from_slice(rest);
            return Cow::Owned(fixed);
        }
        let end = rest.iter().position(|b| *b == b' ').unwrap_or(rest.len());
        let mut fixed = line[..prefix.len()].to_vec();
        fixed.push(b'<');
        fixed.extend_from_slice(&rest[..end]);
        fixed.push(b'>');
        fixed.extend_from_slice(&rest[end..]);
        return Cow::Owned(fixed);
    }
    Cow::Borrowed(line)
}

fn decode(line: &[u8]) -> Option<String> {
    BASE64.decode(line).ok().and_then(|d| String::from_utf8(d).ok())
}

/// A LF without CR before it, or a CR without LF after it.
fn has_bare_line_end(content: &[u8]) -> bool {
    content.iter().enumerate().any(|(i, b)| match b {
        b'\n' => i == 0 || content[i - 1] != b'\r',
        b'\r' => content.get(i + 1) != Some(&b'\n'),
        _ => false,
    })
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
