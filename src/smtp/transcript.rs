//! The wire transcript: every command and reply at debug level (target `m365_mailer::wire`),
//! optionally kept for `--verbose`. Credentials never appear: AUTH initial responses and SASL
//! responses are masked by [`Command::masked`], and message content is summarised by size.

use super::command::Command;
use super::reply::Reply;

/// Collects the transcript of one connection.
#[derive(Debug, Default)]
pub(crate) struct Transcript {
    keep: bool,
    lines: Vec<String>,
}

impl Transcript {
    /// A transcript that logs, and also keeps its lines when `keep` is true.
    pub(crate) fn new(keep: bool) -> Self {
        Self {
            keep,
            lines: Vec::new(),
        }
    }

    /// A command sent.
    pub(crate) fn client(&mut self, command: &Command<'_>) {
        self.push(format!("C: {}", command.masked()));
    }

    /// Message content sent.
    pub(crate) fn content(&mut self, octets: usize) {
        self.push(format!("C: <message content, {octets} octets>"));
    }

    /// A reply received, one transcript line per reply line.
    pub(crate) fn server(&mut self, reply: &Reply) {
        let count = reply.lines().len();
        for (i, line) in reply.lines().iter().enumerate() {
            let sep = if i + 1 == count { ' ' } else { '-' };
            self.push(format!("S: {}{sep}{line}", reply.code()));
        }
    }

    /// Something that happened on the connection.
    pub(crate) fn note(&mut self, text: impl Into<String>) {
        self.push(format!("-- {}", text.into()));
    }

    /// The kept lines.
    pub(crate) fn take(&mut self) -> Vec<String> {
        std::mem::take(&mut self.lines)
    }

    fn push(&mut self, line: String) {
        tracing::debug!(target: "m365_mailer::wire", "{line}");
        if self.keep {
            self.lines.push(line);
        }
    }
}
