//! Delivery status notifications (RFC 3464) for messages given up on, sent to the address the
//! administrator configured (`dsn_to`), never to the original sender: devices do not read mail,
//! and bouncing to a forged sender would make the relay a backscatter source.

use crate::clock::Timestamp;
use crate::queue::{DeadLetter, NewMessage};

/// Whether a dead letter may cause a notification: not for notifications and other automatic
/// messages (RFC 3834 `Auto-Submitted`), so two relays can never loop.
pub(crate) fn wanted(dead: &DeadLetter) -> bool {
    let headers = header_section(&dead.message.content);
    let text = String::from_utf8_lossy(headers).to_ascii_lowercase();
    !text
        .lines()
        .filter_map(|l| l.strip_prefix("auto-submitted:"))
        .any(|v| v.trim() != "no")
}

/// The notification about `dead`, from `mailbox` to `to`.
pub(crate) fn notification(
    dead: &DeadLetter,
    id: &str,
    mailbox: &str,
    to: &str,
    hostname: &str,
    now: Timestamp,
) -> NewMessage {
    let m = &dead.message;
    let date = crate::message::rfc5322_date(now);
    let boundary = format!("=_dsn_{id}");
    let domain = mailbox.rsplit_once('@').map_or("localhost", |(_, d)| d);
    let subject = crate::message::header_value(&m.content, "subject").unwrap_or_default();
    let status = status_code(&dead.reply);
    let arrival = crate::message::rfc5322_date(m.received);
    let mut body = String::new();
    body.push_str(&format!(
        "From: Mail Delivery System <{mailbox}>\r\nTo: {to}\r\nSubject: Undelivered mail: {}\r\nDate: {date}\r\n\
         Message-ID: <dsn-{id}@{domain}>\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"{boundary}\"\r\n\r\n",
        one_line(&subject)
    ));
    body.push_str(&format!(
        "--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         The relay on {hostname} gave up on a message.\r\n\r\n\
         Queue id:   {}\r\nMessage-ID: {}\r\nFrom:       {}\r\nTo:         {}\r\nClient:     {}\r\nAttempts:   {}\r\n\r\n\
         Exchange Online answered:\r\n  {}\r\n\r\n{}\r\n\r\n",
        m.id,
        m.message_id.as_deref().unwrap_or("(none)"),
        m.sender,
        m.recipients.join(", "),
        m.client,
        dead.attempts,
        one_line(&dead.reply),
        dead.diagnosis.replace('\n', "\r\n"),
    ));
    body.push_str(&format!(
        "--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\n\
         Reporting-MTA: dns; {hostname}\r\nX-Queue-ID: {}\r\nArrival-Date: {arrival}\r\n",
        m.id
    ));
    for recipient in &m.recipients {
        body.push_str(&format!(
            "\r\nFinal-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: {status}\r\n\
             Diagnostic-Code: smtp; {}\r\n",
            one_line(&dead.reply)
        ));
    }
    body.push_str(&format!(
        "\r\n--{boundary}\r\nContent-Type: text/rfc822-headers\r\n\r\n"
    ));
    body.push_str(&String::from_utf8_lossy(header_section(&m.content)));
    body.push_str(&format!("\r\n--{boundary}--\r\n"));
    NewMessage {
        id: id.to_owned(),
        account: m.account.clone(),
        sender: mailbox.to_owned(),
        recipients: vec![to.to_owned()],
        content: body.into_bytes(),
        message_id: Some(format!("<dsn-{id}@{domain}>")),
        client: "delivery status notification".to_owned(),
        received: now,
    }
}

/// `5.1.10` from `550 5.1.10 …`, else a generic permanent failure.
fn status_code(reply: &str) -> String {
    reply
        .split_whitespace()
        .find(|w| {
            let parts: Vec<&str> = w.split('.').collect();
            parts.len() == 3
                && parts
                    .iter()
                    .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        })
        .map_or_else(|| "5.0.0".to_owned(), str::to_owned)
}

fn one_line(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
}

fn header_section(content: &[u8]) -> &[u8] {
    content
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(content, |p| &content[..p + 2])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ms;

    fn dead(content: &str) -> DeadLetter {
        DeadLetter {
            message: NewMessage {
                id: "q1".into(),
                account: "main".into(),
                sender: "relay@contoso.com".into(),
                recipients: vec!["nobody@fabrikam.com".into()],
                content: content.as_bytes().to_vec(),
                message_id: Some("<scan@printer>".into()),
                client: "192.168.10.7".into(),
                received: ms(1_795_000_000_000),
            },
            attempts: 1,
            failed: ms(1_795_000_100_000),
            reply: "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found".into(),
            diagnosis: "the recipient does not exist\n  Fix: correct it".into(),
        }
    }

    #[test]
    fn a_report_in_rfc_3464_form() {
        let d = dead("From: relay@contoso.com\r\nSubject: Scan 3F\r\n\r\nbody\r\n");
        assert!(wanted(&d));
        let now = Timestamp::from_datetime(time::macros::datetime!(2026-11-23 18:00 UTC));
        let n = notification(
            &d,
            "q2",
            "relay@contoso.com",
            "postmaster@contoso.com",
            "relay.test",
            now,
        );
        let text = String::from_utf8(n.content).unwrap();
        assert_eq!(n.recipients, ["postmaster@contoso.com"]);
        assert_eq!(n.sender, "relay@contoso.com");
        for expected in [
            "Subject: Undelivered mail: Scan 3F\r\n",
            "Auto-Submitted: auto-replied\r\n",
            "Content-Type: multipart/report; report-type=delivery-status; boundary=\"=_dsn_q2\"",
            "Reporting-MTA: dns; relay.test\r\nX-Queue-ID: q1\r\n",
            "Final-Recipient: rfc822; nobody@fabrikam.com\r\nAction: failed\r\nStatus: 5.1.10\r\n",
            "Content-Type: text/rfc822-headers\r\n\r\nFrom: relay@contoso.com\r\nSubject: Scan 3F\r\n\r\n--=_dsn_q2--\r\n",
            "the recipient does not exist\r\n  Fix: correct it",
        ] {
            assert!(text.contains(expected), "{expected:?} in\n{text}");
        }
        let parsed = mail_parser::MessageParser::default().parse(text.as_bytes()).unwrap();
        assert_eq!(parsed.parts.len(), 4, "the report and its three parts");
    }

    #[test]
    fn no_report_about_a_report() {
        assert!(!wanted(&dead(
            "Auto-Submitted: auto-replied\r\nSubject: x\r\n\r\nb\r\n"
        )));
        assert!(wanted(&dead("Auto-Submitted: no\r\nSubject: x\r\n\r\nb\r\n")));
    }
}
