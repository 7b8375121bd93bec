//! The commands of a session: EHLO and HELO, MAIL, RCPT, STARTTLS, and the sender policy.

use super::*;

impl Session {
    pub(super) fn command(&mut self, line: &[u8]) -> Option<Event> {
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

    pub(super) fn parse_error(&mut self, e: &ParseError) {
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

    pub(super) fn auth_offered(&self) -> bool {
        self.policy.has_users() && (self.tls || self.policy.plaintext_auth_allowed(self.client))
    }

    pub(super) fn greet(&mut self, host: &str, extended: bool) {
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
    pub(super) fn rule(&self) -> Option<Rule> {
        match &self.user {
            Some((_, rule)) => Some(rule.clone()),
            None => self.policy.network_rule(self.client).cloned(),
        }
    }

    pub(super) fn mail(&mut self, from: &str, size: usize, smtputf8: bool) {
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
        let max_size = self.max_message_size(&rule.account);
        if size > max_size {
            return self.error(
                552,
                "5.3.4",
                &format!("Message size {size} exceeds the limit of {max_size} bytes"),
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

    pub(super) fn rcpt(&mut self, to: &str) {
        let Some(tx) = &mut self.transaction else {
            return self.error(503, "5.5.1", "Need MAIL before RCPT");
        };
        let senders = self.policy.senders(&tx.rule.account);
        let max = senders
            .map_or(usize::MAX, |s| s.max_recipients)
            .min(self.settings.max_recipients);
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
        if let Some(s) = senders
            && !s.internal_domains.is_empty()
            && !crate::account::is_internal(&s.internal_domains, to)
        {
            return self.error(
                550,
                "5.7.1",
                &format!(
                    "{to} is outside the tenant: High Volume Email delivers to {} only",
                    s.internal_domains.join(", ")
                ),
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

    /// The largest message `account`'s service takes, within the relay's own limit.
    pub(super) fn max_message_size(&self, account: &str) -> usize {
        self.policy
            .senders(account)
            .map_or(usize::MAX, |s| s.max_message_size)
            .min(self.settings.max_message_size)
    }

    pub(super) fn starttls(&mut self) -> Option<Event> {
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
pub(super) fn send_as_refusal(sender: &str, mailbox: &str, rule: &Rule) -> String {
    format!(
        "{sender} is not allowed as sender for {}: the relay sends as {mailbox}, which needs SendAs on \
         {sender} (Add-RecipientPermission) listed in the account's allowed_senders, or set rewrite_sender \
         for this client",
        rule.name
    )
}

/// `MAIL FROM:addr` → `MAIL FROM:<addr>`, and no space after the colon: what devices send.
pub(super) fn lenient(line: &[u8]) -> Cow<'_, [u8]> {
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
