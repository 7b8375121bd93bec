//! Message content: DATA and BDAT, the size and line-end rules, the message handed to the driver.

use super::*;

impl Session {
    pub(super) fn data_command(&mut self) {
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
    pub(super) fn data(&mut self) -> Option<Event> {
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
        let content = std::mem::take(content);
        let too_big = *too_big;
        let max = self.transaction.as_ref().map_or(self.settings.max_message_size, |tx| {
            self.max_message_size(&tx.rule.account)
        });
        let too_big = too_big || content.len() > max;
        self.state = State::Command;
        if too_big {
            self.transaction = None;
            self.reply(552, "5.3.4", &format!("Message exceeds the limit of {max} bytes"));
            return None;
        }
        self.finish_message(content)
    }

    pub(super) fn bdat_command(&mut self, size: usize, last: bool) {
        let max = self.transaction.as_ref().map_or(self.settings.max_message_size, |tx| {
            self.max_message_size(&tx.rule.account)
        });
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

    pub(super) fn bdat(&mut self) -> Option<Event> {
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
    pub(super) fn finish_message(&mut self, content: Vec<u8>) -> Option<Event> {
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
}

/// A LF without CR before it, or a CR without LF after it.
pub(super) fn has_bare_line_end(content: &[u8]) -> bool {
    content.iter().enumerate().any(|(i, b)| match b {
        b'\n' => i == 0 || content[i - 1] != b'\r',
        b'\r' => content.get(i + 1) != Some(&b'\n'),
        _ => false,
    })
}
