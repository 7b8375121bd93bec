//! Exit codes of sendmail and msmtp (sysexits). Which one a failure stands for is the verdict's
//! to say (`verdict.rs`); `docs/exit-codes.md` explains each.

/// sysexits codes used by this program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(into = "u8")]
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

impl From<Code> for u8 {
    fn from(code: Code) -> Self {
        code as u8
    }
}
