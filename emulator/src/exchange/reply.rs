//! Exchange Online's replies, verbatim where the fact sheet records them (§1.2, §1.5, §4).
//! Replies the fact sheet marks UNCONFIRMED are listed in `docs/emulator.md`.

use time::OffsetDateTime;

use crate::model::ExchangeSettings;

/// A wire reply: one or more CRLF-terminated lines.
pub(crate) type Wire = String;

pub(super) fn line(code: u16, text: &str) -> Wire {
    format!("{code} {text}\r\n")
}

fn multi(code: u16, lines: &[&str]) -> Wire {
    let mut out = String::new();
    for (i, l) in lines.iter().enumerate() {
        let sep = if i + 1 == lines.len() { ' ' } else { '-' };
        out.push_str(&format!("{code}{sep}{l}\r\n"));
    }
    out
}

/// `[<server> <ISO time> <16 hex digits>]`, the tag modern Exchange appends to refusals.
fn tag(settings: &ExchangeSettings, now: OffsetDateTime) -> String {
    let ts = now
        .format(time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        ))
        .unwrap_or_default();
    format!("[{} {ts} {}]", settings.frontend_host, hex_id())
}

fn hex_id() -> String {
    let bytes = uuid::Uuid::new_v4();
    bytes.as_bytes()[..8].iter().map(|b| format!("{b:02X}")).collect()
}

pub(crate) fn greeting(settings: &ExchangeSettings, now: OffsetDateTime) -> Wire {
    let date = now
        .format(time::macros::format_description!(
            "[weekday repr:short], [day padding:none] [month repr:short] [year] [hour]:[minute]:[second] +0000"
        ))
        .unwrap_or_default();
    line(
        220,
        &format!(
            "{} Microsoft ESMTP MAIL Service ready at {date} [{}]",
            settings.frontend_host,
            hex_id()
        ),
    )
}

/// The EHLO reply: before TLS it offers STARTTLS and no AUTH; after TLS, `AUTH LOGIN XOAUTH2`
/// takes STARTTLS's place.
pub(crate) fn ehlo(settings: &ExchangeSettings, peer: &str, tls: bool) -> Wire {
    let hello = format!("{} Hello [{peer}]", settings.frontend_host);
    let middle = if tls { "AUTH LOGIN XOAUTH2" } else { "STARTTLS" };
    multi(
        250,
        &[
            &hello,
            "SIZE 157286400",
            "PIPELINING",
            "DSN",
            "ENHANCEDSTATUSCODES",
            middle,
            "8BITMIME",
            "BINARYMIME",
            "CHUNKING",
            "SMTPUTF8",
        ],
    )
}

pub(crate) fn helo(settings: &ExchangeSettings, peer: &str) -> Wire {
    line(250, &format!("{} Hello [{peer}]", settings.frontend_host))
}

pub(crate) fn starttls_ready() -> Wire {
    line(220, "2.0.0 SMTP server ready")
}

pub(crate) fn auth_continue(challenge: &str) -> Wire {
    format!("334 {challenge}\r\n")
}

pub(crate) fn auth_ok() -> Wire {
    line(235, "2.7.0 Authentication successful")
}

pub(crate) fn auth_failed(settings: &ExchangeSettings, now: OffsetDateTime) -> Wire {
    line(
        535,
        &format!("5.7.3 Authentication unsuccessful {}", tag(settings, now)),
    )
}

/// Where SMTP AUTH was switched off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Disabled {
    Tenant,
    Mailbox,
    SecurityDefaults,
    BasicAuth,
}

pub(crate) fn auth_disabled(settings: &ExchangeSettings, now: OffsetDateTime, why: Disabled) -> Wire {
    let text = match why {
        Disabled::Tenant => format!(
            "5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information. {}",
            tag(settings, now)
        ),
        Disabled::Mailbox => format!(
            "5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Mailbox. Visit https://aka.ms/smtp_auth_disabled for more information. {}",
            tag(settings, now)
        ),
        Disabled::SecurityDefaults => format!(
            "5.7.139 Authentication unsuccessful, user is locked by your organization's security defaults policy. Contact your administrator. {}",
            tag(settings, now)
        ),
        Disabled::BasicAuth => format!(
            "5.7.139 Authentication unsuccessful, basic authentication is disabled. [{}]",
            settings.frontend_host
        ),
    };
    line(535, &text)
}

pub(crate) fn basic_auth_retired() -> Wire {
    line(
        550,
        "5.7.30 Basic authentication is not supported for Client Submission.",
    )
}

pub(crate) fn unrecognized_auth() -> Wire {
    line(504, "5.7.4 Unrecognized authentication type")
}

pub(crate) fn not_authenticated(settings: &ExchangeSettings, now: OffsetDateTime) -> Wire {
    line(
        530,
        &format!("5.7.57 Client not authenticated to send mail. {}", tag(settings, now)),
    )
}

pub(crate) fn sender_ok() -> Wire {
    line(250, "2.1.0 Sender OK")
}

pub(crate) fn recipient_ok() -> Wire {
    line(250, "2.1.5 Recipient OK")
}

pub(crate) fn start_data() -> Wire {
    line(354, "Start mail input; end with <CRLF>.<CRLF>")
}

pub(crate) fn queued(settings: &ExchangeSettings, message_id: &str) -> Wire {
    line(
        250,
        &format!("2.0.0 OK {message_id} [Hostname={}]", settings.mailbox_host),
    )
}

pub(crate) fn chunk_ok(octets: u64) -> Wire {
    line(250, &format!("2.0.0 CHUNK received OK, {octets} octets"))
}

pub(crate) fn send_as_denied(settings: &ExchangeSettings, mailbox: &str, from: &str) -> Wire {
    line(
        554,
        &format!(
            "5.2.252 SendAsDenied; {mailbox} not allowed to send as {from}; STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied; Failed to process message due to a permanent exception with message [BeginDiagnosticData]Cannot submit message. 0.35250:0A00B384, 1.36674:0A000000, 1.61250:00000000, 1.45378:02000000, 1.44866:D0030000, 16.55847:B8110000 [EndDiagnosticData] [Hostname={}]",
            settings.mailbox_host
        ),
    )
}

pub(crate) fn thread_limit(settings: &ExchangeSettings) -> Wire {
    line(
        432,
        &format!(
            "4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded [Hostname={}]",
            settings.mailbox_host
        ),
    )
}

pub(crate) fn quota_exceeded(settings: &ExchangeSettings) -> Wire {
    line(
        554,
        &format!(
            "5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException; Failed to process message due to a permanent exception with message [BeginDiagnosticData]Cannot submit message. [EndDiagnosticData] [Hostname={}]",
            settings.mailbox_host
        ),
    )
}

pub(crate) fn unlicensed() -> Wire {
    line(451, "4.7.0 Temporary server error. Please try again later. PRX4")
}

pub(crate) fn too_many_recipients() -> Wire {
    line(452, "4.5.3 Too many recipients")
}

pub(crate) fn too_big() -> Wire {
    line(552, "5.3.4 Message size exceeds fixed maximum message size")
}

pub(crate) fn bare_line_feed() -> Wire {
    line(
        554,
        "5.6.11 SMTPSEND.BareLinefeedsAreIllegal; message contains bare linefeeds, which cannot be sent via DATA",
    )
}

pub(crate) fn ok() -> Wire {
    line(250, "2.0.0 OK")
}

pub(crate) fn reset() -> Wire {
    line(250, "2.0.0 Resetting")
}

pub(crate) fn bye() -> Wire {
    line(221, "2.0.0 Service closing transmission channel")
}

pub(crate) fn vrfy() -> Wire {
    line(252, "2.1.5 Cannot VRFY user, but will accept message for delivery")
}

pub(crate) fn help() -> Wire {
    multi(
        214,
        &[
            "This server supports the following commands:",
            "HELO EHLO STARTTLS RCPT DATA RSET MAIL QUIT HELP AUTH BDAT",
        ],
    )
}

pub(crate) fn hello_first() -> Wire {
    line(503, "5.5.2 Send hello first")
}

pub(crate) fn need_mail() -> Wire {
    line(503, "5.5.2 Need mail command")
}

pub(crate) fn need_rcpt() -> Wire {
    line(503, "5.5.2 Need rcpt command")
}

pub(crate) fn sender_already() -> Wire {
    line(503, "5.5.2 Sender already specified")
}

pub(crate) fn already_authenticated() -> Wire {
    line(503, "5.5.2 Already authenticated")
}

pub(crate) fn tls_already() -> Wire {
    line(503, "5.5.2 Only one STARTTLS command can be issued per session")
}

pub(crate) fn binarymime_needs_bdat() -> Wire {
    line(503, "5.5.2 BINARYMIME requires BDAT")
}

pub(crate) fn unrecognized(verb: &str) -> Wire {
    line(500, &format!("5.3.3 Unrecognized command '{verb}'"))
}

pub(crate) fn line_too_long() -> Wire {
    line(500, "5.5.2 Line too long")
}

pub(crate) fn bad_sender_address() -> Wire {
    line(501, "5.1.7 Invalid address")
}

pub(crate) fn bad_recipient_address() -> Wire {
    line(501, "5.1.3 Invalid address")
}

pub(crate) fn bad_arguments() -> Wire {
    line(501, "5.5.4 Invalid arguments")
}

pub(crate) fn timeout(settings: &ExchangeSettings) -> Wire {
    line(
        421,
        &format!(
            "4.4.2 {} Connection dropped due to SocketTimeout",
            settings.frontend_host
        ),
    )
}
