//! Outcomes as sysexits exit codes (`docs/exit-codes.md`), decided from the errors' own
//! classification, with a sentence on what to do.

use std::process::ExitCode;

use crate::config::ConfigError;
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
        let code = classify(&e);
        let mut message = e.to_string();
        if let Some(hint) = hint(&e) {
            message.push_str("\n  ");
            message.push_str(&hint);
        }
        if e.is_transient() {
            message.push_str("\n  This is temporary: try again later.");
        }
        Self::new(code, message)
    }
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

/// One line on the likely cause, for the refusals every guide lists.
fn hint(e: &SubmitError) -> Option<String> {
    match e {
        SubmitError::Token(t) => match t.entra()?.code()? {
            7000215 => Some("The client secret is wrong. Copy the secret's Value (not its Secret ID) when it is created; create a new one if it was lost.".into()),
            7000222 => Some("The client secret has expired: create a new one under Certificates & secrets.".into()),
            700016 => Some("No app with this client id in this tenant: check the Application (client) ID and the Directory (tenant) ID.".into()),
            90002 => Some("No such tenant: check the Directory (tenant) ID or domain, and the cloud.".into()),
            1002012 | 70011 => Some("The scope must be the resource followed by /.default, e.g. https://outlook.office365.com/.default.".into()),
            700027 => Some("The certificate is not registered on the app (upload its public part under Certificates & secrets) or the key does not match.".into()),
            _ => None,
        },
        SubmitError::Smtp(s) => {
            let reply = s.reply()?;
            let enhanced = reply.enhanced().map(|e| e.to_string()).unwrap_or_default();
            let text = reply.message();
            match enhanced.as_str() {
                "5.7.3" => Some("Exchange refused the token. Usual causes: the app's service principal is not registered in Exchange (New-ServicePrincipal), it was registered with the App registration's object id instead of the Enterprise application's, SMTP.SendAsApp lacks admin consent, or the app has no FullAccess on the mailbox (Add-MailboxPermission).".into()),
                "5.7.139" if text.contains("for the Tenant") => Some("SMTP AUTH is off for the organisation: Set-TransportConfig -SmtpClientAuthenticationDisabled $false, or enable it for this mailbox with Set-CASMailbox -SmtpClientAuthenticationDisabled $false.".into()),
                "5.7.139" if text.contains("for the Mailbox") => Some("SMTP AUTH is off for this mailbox: Set-CASMailbox -Identity <mailbox> -SmtpClientAuthenticationDisabled $false.".into()),
                "5.7.139" if text.contains("security defaults") => Some("Security defaults are on in Entra ID; SMTP AUTH cannot work until they are turned off (or replaced by Conditional Access).".into()),
                "5.2.252" if text.contains("SendAsDenied") => Some("The From address is not the mailbox and the app may not send as it: grant SendAs with Add-RecipientPermission -Identity <from address> -Trustee <service principal> -AccessRights SendAs, then list the address in allowed_senders.".into()),
                "4.3.2" => Some("More than 3 connections for this mailbox at once: Exchange allows 3.".into()),
                _ => None,
            }
        }
        _ => None,
    }
}
