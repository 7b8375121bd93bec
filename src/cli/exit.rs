//! Outcomes as sysexits exit codes (`docs/exit-codes.md`), decided from the errors' own
//! classification, with a sentence on what to do.

use std::process::ExitCode;

use crate::config::ConfigError;
use crate::diagnose::{self, Evidence, Ids};
use crate::message::MessageError;
use crate::smtp::{Reply, SmtpError};
use crate::submit::SubmitError;

/// A failed command: the exit code and what to tell the user.
#[derive(Debug)]
pub struct Failure {
    /// sysexits code.
    pub code: Code,
    /// The explanation, possibly several lines.
    pub message: String,
}

/// sysexits codes used by this program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// 64: the command line is wrong.
    Usage = 64,
    /// 65: the message is unusable.
    Data = 65,
    /// 69: permanently refused.
    Unavailable = 69,
    /// 70: a bug or an impossible state.
    Software = 70,
    /// 75: temporary failure; retry later.
    TempFail = 75,
    /// 77: authentication or permission refused.
    NoPerm = 77,
    /// 78: configuration error.
    Config = 78,
}

impl Failure {
    /// A failure with this code and message.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// The process exit code.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.code as u8)
    }
}

impl From<ConfigError> for Failure {
    fn from(e: ConfigError) -> Self {
        Self::new(Code::Config, e.to_string())
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
pub fn submit_failure(e: &SubmitError, evidence: &Evidence, ids: &Ids) -> Failure {
    let mut message = e.to_string();
    if let Some(diagnosis) = diagnose::diagnose(e, evidence) {
        message.push('\n');
        message.push_str(diagnosis.render(ids).to_text("  ").trim_end());
    } else if e.is_transient() {
        message.push_str("\n  This is temporary: try again later.");
    }
    Failure::new(classify(e), message)
}

/// Exit code of a submission failure.
pub fn classify(e: &SubmitError) -> Code {
    if e.is_transient() {
        return Code::TempFail;
    }
    match e {
        SubmitError::Token(t) => match t.entra() {
            Some(entra)
                if matches!(
                    entra.error.as_str(),
                    "invalid_client" | "unauthorized_client" | "access_denied"
                ) =>
            {
                Code::NoPerm
            }
            Some(_) => Code::Config,
            None => Code::Software,
        },
        SubmitError::Smtp(s) => match s {
            SmtpError::Tls { .. } => Code::Config,
            SmtpError::Rejected { reply, .. } if is_permission(reply) => Code::NoPerm,
            _ => Code::Unavailable,
        },
        SubmitError::Tls(_) => Code::Config,
        SubmitError::Http(_) => Code::Software,
    }
}

/// Authentication and Send-As refusals: fixed by granting something, not by retrying.
fn is_permission(reply: &Reply) -> bool {
    let enhanced = reply.enhanced().map(|e| e.to_string()).unwrap_or_default();
    reply.code() == 535
        || matches!(enhanced.as_str(), "5.7.139" | "5.7.3" | "5.7.30" | "5.7.57" | "5.7.60")
        || (enhanced == "5.2.252" && reply.message().contains("SendAsDenied"))
}
