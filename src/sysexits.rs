//! Exit codes of sendmail and msmtp (sysexits), and which one a failure stands for. `send` exits
//! with them and `doctor` reports them; `docs/exit-codes.md` explains each.

use crate::smtp::{Reply, SmtpError};
use crate::submit::SubmitError;

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
    /// 71: the operating system refused (a port in use, no permission to bind).
    OsErr = 71,
    /// 73: a file or directory cannot be created (the relay's queue).
    CantCreate = 73,
    /// 74: reading or writing failed.
    IoErr = 74,
    /// 75: temporary failure; retry later.
    TempFail = 75,
    /// 77: authentication or permission refused.
    NoPerm = 77,
    /// 78: configuration error.
    Config = 78,
}

impl Code {
    /// The code for a number; unknown numbers are `Software`.
    pub fn from_u8(code: u8) -> Self {
        match code {
            64 => Code::Usage,
            65 => Code::Data,
            69 => Code::Unavailable,
            71 => Code::OsErr,
            73 => Code::CantCreate,
            74 => Code::IoErr,
            75 => Code::TempFail,
            77 => Code::NoPerm,
            78 => Code::Config,
            _ => Code::Software,
        }
    }
}

/// The code a submission failure stands for.
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
            None if matches!(
                t,
                crate::oauth::TokenError::FederatedToken { .. } | crate::oauth::TokenError::ManagedIdentity(_)
            ) =>
            {
                Code::Config
            }
            None => Code::Software,
        },
        SubmitError::Smtp(s) => match s {
            SmtpError::Tls { .. } => Code::Config,
            SmtpError::Rejected { reply, .. } if is_permission(reply) => Code::NoPerm,
            _ => Code::Unavailable,
        },
        SubmitError::Graph(g) => match g.graph().map(|e| e.status) {
            Some(401 | 403) => Code::NoPerm,
            Some(400 | 413) => Code::Data,
            Some(404) => Code::Config,
            Some(_) => Code::Unavailable,
            None => Code::Data,
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
