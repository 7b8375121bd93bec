//! Outcomes as sysexits exit codes (`docs/exit-codes.md`), decided from the errors' own
//! classification, with a sentence on what to do.

use std::process::ExitCode;

use crate::catalog::{Evidence, Ids};
use crate::config::ConfigError;
use crate::message::MessageError;
use crate::submit::SubmitError;
pub(crate) use crate::sysexits::Code;
use crate::verdict::Verdict;

/// A failed command: the exit code and what to tell the user.
#[derive(Debug)]
pub(crate) struct Failure {
    /// sysexits code.
    pub(crate) code: Code,
    /// The explanation, possibly several lines.
    pub(crate) message: String,
}

impl Failure {
    /// A failure with this code and message.
    pub(crate) fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// A failure already reported (by `doctor`'s report): only the exit code.
    pub(crate) fn silent(code: Code) -> Self {
        Self {
            code,
            message: String::new(),
        }
    }

    /// The process exit code.
    pub(crate) fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.code as u8)
    }
}

impl From<ConfigError> for Failure {
    fn from(e: ConfigError) -> Self {
        Self::new(Code::Config, e.to_string())
    }
}

impl From<crate::queue::QueueError> for Failure {
    fn from(e: crate::queue::QueueError) -> Self {
        Self::new(Code::IoErr, e.to_string())
    }
}

impl From<MessageError> for Failure {
    fn from(e: MessageError) -> Self {
        let code = match e {
            MessageError::LineBreak { .. } | MessageError::BadHeader(_) => Code::Usage,
            MessageError::Read { .. } => Code::Usage,
            _ => Code::Data,
        };
        Self::new(code, e.to_string())
    }
}

impl From<SubmitError> for Failure {
    fn from(e: SubmitError) -> Self {
        submit_failure(&e, &Evidence::default(), &Ids::default())
    }
}

/// A submission failure explained from the catalog, with what is known about the account.
pub(crate) fn submit_failure(e: &SubmitError, evidence: &Evidence, ids: &Ids) -> Failure {
    let verdict = Verdict::of(e);
    let mut message = e.to_string();
    if let Some(diagnosis) = verdict.diagnosis(evidence) {
        message.push('\n');
        message.push_str(diagnosis.render(ids).to_text("  ").trim_end());
    } else if verdict.is_transient() {
        message.push_str("\n  This is temporary: try again later.");
    }
    Failure::new(verdict.code(), message)
}
