//! The catalog against the guides' error tables, the issue's list and the fact sheet's replies.

use super::*;

fn reply(line: &str) -> Reply {
    let code: u16 = line[..3].parse().unwrap();
    Reply::new(code, vec![line[4..].to_owned()])
}

/// What a row of a guide's table is, as m365-mailer observes it.
enum Seen {
    Reply(&'static str),
    Aadsts(u32),
    Symptom(Symptom),
}

/// Every row of the troubleshooting tables of guides 000, 003 and 004 (in the guides' words),
/// as the failure m365-mailer sees for it.
#[test]
fn every_row_of_the_guides_error_tables_is_in_the_catalog() {
    use Seen::{Aadsts, Reply as R};
    let rows: &[(&str, Seen, &str)] = &[
        // 000
        (
            "535 5.7.3 Authentication Unsuccessful",
            R("535 5.7.3 Authentication Unsuccessful"),
            "smtp/535-5.7.3",
        ),
        (
            "535 5.7.3 even after Part 2",
            R("535 5.7.3 Authentication unsuccessful"),
            "smtp/535-5.7.3",
        ),
        (
            "550 5.7.501 Spam abuse detected",
            R("550 5.7.501 Spam abuse detected"),
            "smtp/550-5.7.501",
        ),
        ("Token fetch fails", Aadsts(1002012), "aadsts/1002012"),
        (
            "XOAUTH2 not supported",
            Seen::Symptom(Symptom::Xoauth2NotOffered),
            "symptom/xoauth2-not-offered",
        ),
        ("Client secret not working", Aadsts(7000215), "aadsts/7000215"),
        // 003
        (
            "535 5.7.139 — SmtpClientAuthentication is disabled for the Tenant",
            R("535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant"),
            "smtp/535-5.7.139-tenant",
        ),
        (
            "554 5.2.252 — SendAsDenied",
            R("554 5.2.252 SendAsDenied"),
            "smtp/554-5.2.252-send-as",
        ),
        (
            "430 4.2.0 — Mailbox logon failure / Authentication Context has no rights",
            R("430 4.2.0 Mailbox logon failure"),
            "smtp/430-4.2.0",
        ),
        (
            "ExchangeOnlineManagement module errors",
            Seen::Symptom(Symptom::ExchangeModule),
            "symptom/exchange-module",
        ),
        // 004
        (
            "Insufficient privileges to complete the operation",
            Aadsts(65001),
            "aadsts/65001",
        ),
        ("Invalid client secret", Aadsts(7000215), "aadsts/7000215"),
        (
            "AADSTS700016: Application with identifier not found",
            Aadsts(700016),
            "aadsts/700016",
        ),
        (
            "AADSTS65001: The user or administrator has not consented",
            Aadsts(65001),
            "aadsts/65001",
        ),
        (
            "Emails not sending with OAuth enabled",
            Seen::Symptom(Symptom::NotSending),
            "symptom/not-sending",
        ),
    ];
    for (row, seen, id) in rows {
        let entry = match seen {
            Seen::Reply(line) => for_reply(&reply(line)),
            Aadsts(code) => for_aadsts(*code),
            Seen::Symptom(s) => symptom(*s),
        };
        assert_eq!(entry.map(Entry::id).as_deref(), Some(*id), "{row}");
    }
}

#[test]
fn every_symptom_has_its_entry() {
    use Symptom::*;
    for s in [
        PortBlocked,
        TokenClaims,
        Dns,
        TlsUntrusted,
        Xoauth2NotOffered,
        ExchangeModule,
        NotSending,
    ] {
        assert!(symptom(s).is_some(), "{s:?}");
    }
}

#[test]
fn every_reply_of_the_issue_and_fact_sheet_has_its_entry() {
    let rows = [
        (
            "535 5.7.3 Authentication unsuccessful [AM0PR06CA0126.eurprd06.prod.outlook.com 2024-02-14T14:50:26.590Z 08DC2D372B4C3DED]",
            "smtp/535-5.7.3",
        ),
        (
            "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information.",
            "smtp/535-5.7.139-tenant",
        ),
        (
            "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Mailbox. Visit https://aka.ms/smtp_auth_disabled for more information.",
            "smtp/535-5.7.139-mailbox",
        ),
        (
            "535 5.7.139 Authentication unsuccessful, user is locked by your organization's security defaults policy. Contact your administrator.",
            "smtp/535-5.7.139-security-defaults",
        ),
        (
            "535 5.7.139 Authentication unsuccessful, basic authentication is disabled.",
            "smtp/535-5.7.139-basic-auth",
        ),
        (
            "535 5.7.139 Authentication unsuccessful, the request did not meet the criteria to be authenticated successfully. Contact your administrator.",
            "smtp/535-5.7.139-conditional-access",
        ),
        (
            "550 5.7.30 Basic authentication is not supported for Client Submission.",
            "smtp/550-5.7.30",
        ),
        ("530 5.7.57 Client not authenticated to send mail.", "smtp/530-5.7.57"),
        (
            "554 5.2.252 SendAsDenied; a@contoso.com not allowed to send as b@contoso.com; STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied",
            "smtp/554-5.2.252-send-as",
        ),
        (
            "550 5.2.251 Sender throttled due to continuous mailbox full errors.",
            "smtp/550-5.2.251",
        ),
        (
            "550 5.2.252 Sender throttled due to continuous send as denied errors.",
            "smtp/550-5.2.252-throttled",
        ),
        (
            "550 5.2.253 Sender throttled due to continuous invalid license errors.",
            "smtp/550-5.2.253",
        ),
        (
            "550 5.2.254 Sender throttled due to continuous too many recipients errors.",
            "smtp/550-5.2.254",
        ),
        (
            "550 5.2.255 Sender throttled due to continuous invalid recipients errors.",
            "smtp/550-5.2.255",
        ),
        (
            "550 5.7.60 SMTP; Client does not have permissions to send as this sender",
            "smtp/550-5.7.60",
        ),
        (
            "432 4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded",
            "smtp/432-4.3.2",
        ),
        (
            "554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException",
            "smtp/554-5.2.0",
        ),
        (
            "554 5.2.2 mailbox full; STOREDRV.Submission.Exception:QuotaExceededException.MapiExceptionShutoffQuotaExceeded",
            "smtp/554-5.2.2",
        ),
        ("550 5.1.8 Access denied, bad outbound sender", "smtp/550-5.1.8"),
        ("550 5.7.501 Access denied, spam abuse detected", "smtp/550-5.7.501"),
        ("550 5.7.502 Access denied, banned sender", "smtp/550-5.7.502"),
        ("550 5.7.503 Access denied, banned sender", "smtp/550-5.7.503"),
        ("550 5.7.506 Access Denied, Bad HELO", "smtp/550-5.7.506"),
        (
            "550 5.7.705 Access denied, tenant has exceeded threshold",
            "smtp/550-5.7.705",
        ),
        (
            "550 5.7.708 Service unavailable. Access denied, traffic not accepted from this IP.",
            "smtp/550-5.7.708",
        ),
        (
            "550 5.7.750 Service unavailable. Client blocked from sending from unregistered domains",
            "smtp/550-5.7.750",
        ),
        (
            "421 4.7.66 TLS 1.0 and 1.1 are not supported. Please upgrade/update your client to support TLS 1.2.",
            "smtp/421-4.7.66",
        ),
        (
            "451 4.7.0 Temporary server error. Please try again later. PRX4",
            "smtp/451-4.7.0",
        ),
        ("451 4.7.550 Access denied, please try again later", "smtp/4.7.5xx"),
        ("554 5.6.11 SMTPSEND.BareLinefeedsAreIllegal", "smtp/5.6.11"),
        (
            "554 5.6.211 Invalid MIME Content: Number of Header objects (100001) exceeded",
            "smtp/554-5.6.211",
        ),
        (
            "552 5.3.4 Message size exceeds fixed maximum message size",
            "smtp/552-5.3.4",
        ),
        (
            "550 5.7.233 - Your message can't be sent because your tenant has exceeded its daily limit for sending email to external recipients",
            "smtp/550-5.7.233",
        ),
        ("430 4.2.0 Mailbox logon failure", "smtp/430-4.2.0"),
    ];
    for (line, id) in rows {
        let entry = for_reply(&reply(line)).unwrap_or_else(|| panic!("no entry for {line}"));
        assert_eq!(entry.id(), id, "{line}");
    }
}

#[test]
fn every_aadsts_code_of_the_issue_has_an_entry() {
    let codes = [
        90002, 900023, 90038, 700016, 7000215, 7000222, 7000216, 7000218, 700027, 700024, 50012, 50027, 50048, 700030,
        70011, 1002012, 700022, 500011, 650052, 65001, 53003, 9001023, 7000112, 50196, 90055, 90024, 50033, 90033,
        90006,
    ];
    for code in codes {
        let entry = for_aadsts(code).unwrap_or_else(|| panic!("AADSTS{code} missing"));
        let transient = [90055, 90024, 50033, 90033, 90006, 50196].contains(&code);
        assert_eq!(entry.retry == Retry::Transient, transient, "AADSTS{code}");
    }
}

#[test]
fn the_catalog_is_well_formed() {
    let known = [
        "tenant",
        "client_id",
        "mailbox",
        "sp_id",
        "from",
        "scope",
        "smtp_host",
        "smtp_port",
    ];
    let mut ids = std::collections::HashSet::new();
    for entry in entries() {
        assert!(ids.insert(entry.id()), "duplicate id {}", entry.id());
        assert!(!entry.causes.is_empty(), "{} has no cause", entry.id());
        for cause in entry.causes {
            for text in [cause.why, cause.fix].iter().chain(cause.commands) {
                let mut rest = *text;
                while let Some(start) = rest.find('{') {
                    let end = rest[start..].find('}').expect("closed placeholder") + start;
                    assert!(
                        known.contains(&&rest[start + 1..end]),
                        "{}: unknown placeholder in {text}",
                        entry.id()
                    );
                    rest = &rest[end + 1..];
                }
            }
        }
    }
}

fn ids() -> Ids {
    Ids {
        tenant: Some("contoso.com".into()),
        client_id: Some("0b7e2f4c-5d6a-4e8b-9c1d-3f2a4b6c8d0e".into()),
        mailbox: Some("mailer@contoso.com".into()),
        ..Ids::default()
    }
}

#[test]
fn a_535_is_narrowed_by_the_token_claims() {
    let entry = for_reply(&reply("535 5.7.3 Authentication unsuccessful")).unwrap();
    let no_roles = explain(
        entry,
        &Evidence {
            claims: Some(
                serde_json::json!({"aud": "https://outlook.office365.com", "tid": "t", "appid": "a", "oid": "o"}),
            ),
            ..Evidence::default()
        },
    );
    assert!(no_roles.confirmed);
    assert_eq!(no_roles.causes[0].id, "no-admin-consent");

    let right = explain(
        entry,
        &Evidence {
            claims: Some(
                serde_json::json!({"aud": "https://outlook.office365.com", "tid": "t", "appid": "a", "oid": "6d5c", "roles": ["SMTP.SendAsApp"]}),
            ),
            ..Evidence::default()
        },
    );
    assert!(!right.confirmed);
    let remaining: Vec<&str> = right.causes.iter().map(|c| c.id).collect();
    assert_eq!(
        remaining,
        [
            "sp-not-registered",
            "sp-wrong-object-id",
            "no-full-access",
            "mailbox-not-found",
            "propagation"
        ]
    );
    assert!(
        right
            .notes
            .iter()
            .any(|n| n.contains("cannot be checked from outside the tenant"))
    );

    let graph = explain(
        entry,
        &Evidence {
            claims: Some(serde_json::json!({"aud": "https://graph.microsoft.com"})),
            ..Evidence::default()
        },
    );
    assert_eq!(graph.causes[0].id, "wrong-audience");

    // With the token's oid, the fix names the exact Object ID to register.
    let rendered = right.render(&Ids {
        sp_id: Some("6d5c4b3a-2f1e-4d0c-9b8a-7f6e5d4c3b2a".into()),
        ..ids()
    });
    let register = &rendered.causes[0].commands[1];
    assert_eq!(
        register,
        "New-ServicePrincipal -AppId '0b7e2f4c-5d6a-4e8b-9c1d-3f2a4b6c8d0e' -ObjectId '6d5c4b3a-2f1e-4d0c-9b8a-7f6e5d4c3b2a'"
    );
    let unknown = right.render(&ids());
    assert!(unknown.causes[0].commands[1].ends_with("-ObjectId <Enterprise application Object ID>"));
}

#[test]
fn a_secret_id_pasted_as_the_secret_is_named() {
    let d = explain(
        for_aadsts(7000215).unwrap(),
        &Evidence {
            secret_looks_like_id: true,
            ..Evidence::default()
        },
    );
    assert!(d.confirmed);
    assert!(d.notes[0].contains("Secret ID"));
    let text = d.render(&ids()).to_text("  ");
    assert!(
        text.contains("Cause: the client secret is wrong") && text.contains("Value"),
        "{text}"
    );
}
