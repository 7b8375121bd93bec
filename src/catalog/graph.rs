//! Microsoft Graph `sendMail` errors.

#[allow(clippy::wildcard_imports)]
use super::causes::*;
use super::{Blame, Cause, Entry, Retry, Signal};

/// The entries of this family.
pub(super) static ENTRIES: &[Entry] = &[
    graph(
        403,
        "ErrorAccessDenied",
        Some("Access to OData is disabled"),
        "an application access policy (or an RBAC for Applications scope) keeps the app from this mailbox",
        &[Cause {
            id: "graph-access-policy",
            why: "an application access policy restricts the app to a group the mailbox is not in, or denies it the mailbox; changes take up to an hour to apply",
            fix: "Add {mailbox} to the policy's mail-enabled security group (RestrictAccess), or remove it from a DenyAccess group; then test the policy.",
            commands: &[
                CONNECT,
                "Test-ApplicationAccessPolicy -Identity {mailbox} -AppId {client_id}",
                "Get-ApplicationAccessPolicy",
            ],
        }],
        Retry::Permanent,
        Blame::Credential,
        true,
    ),
    graph(
        403,
        "ErrorAccessDenied",
        None,
        "the app may not send mail through Microsoft Graph",
        &[Cause {
            id: "graph-mail-send",
            why: "the app has no Mail.Send application permission, or no administrator granted consent for it (the token has no Mail.Send role)",
            fix: "Add the Microsoft Graph application permission Mail.Send and grant admin consent.",
            commands: &[
                "az ad app permission add --id {client_id} --api 00000003-0000-0000-c000-000000000000 --api-permissions b633e1c5-b582-4048-a93e-9f11b44c7e96=Role",
                "az ad app permission admin-consent --id {client_id}",
            ],
        }],
        Retry::Permanent,
        Blame::Credential,
        true,
    ),
    graph(
        401,
        "InvalidAuthenticationToken",
        None,
        "Microsoft Graph does not accept the token",
        &[Cause {
            id: "graph-token-audience",
            why: "the token is for another resource (the scope is Exchange's, not https://graph.microsoft.com/.default), expired, or from another tenant",
            fix: "Leave scope unset with transport = \"graph\" (it defaults to the cloud's Graph scope), or set it to https://graph.microsoft.com/.default.",
            commands: &[],
        }],
        Retry::Permanent,
        Blame::Credential,
        false,
    ),
    graph(
        404,
        "MailboxNotEnabledForRESTAPI",
        None,
        "the mailbox cannot be used through Microsoft Graph",
        &[Cause {
            id: "graph-mailbox-not-enabled",
            why: "the user has no Exchange Online licence (so no cloud mailbox), or the mailbox is on-premises or inactive",
            fix: "Assign an Exchange Online licence to {mailbox}, or use a shared mailbox in Exchange Online.",
            commands: &[
                CONNECT,
                "Get-Mailbox -Identity {mailbox} | Format-List RecipientTypeDetails, IsInactiveMailbox",
            ],
        }],
        Retry::Permanent,
        Blame::Configuration,
        true,
    ),
    graph(
        404,
        "ErrorInvalidUser",
        None,
        "Microsoft Graph knows no such user",
        &[WRONG_MAILBOX],
        Retry::Permanent,
        Blame::Configuration,
        false,
    ),
    graph(
        403,
        "ErrorSendAsDenied",
        None,
        "the mailbox may not send as the message's From address",
        &[Cause {
            id: "graph-send-as",
            why: "the From header is neither {mailbox} nor an address it has Send As permission on",
            fix: "Send from {mailbox}, or grant it Send As on {from}.",
            commands: &[
                CONNECT,
                "Add-RecipientPermission -Identity {from} -Trustee {mailbox} -AccessRights SendAs",
            ],
        }],
        Retry::Permanent,
        Blame::Sender,
        true,
    ),
    graph(
        413,
        "",
        None,
        "the message is too large for one Microsoft Graph request (about 4 MB)",
        &[Cause {
            id: "graph-too-large",
            why: "one Graph request takes about 4 MB, base64 included; m365-mailer uploads attachments separately, so the message without its attachments is that large (or an attachment chunk was refused)",
            fix: "Make the message body smaller, or send it with transport = \"smtp\" (35 MB).",
            commands: &[],
        }],
        Retry::Permanent,
        Blame::Message,
        false,
    ),
    graph(
        429,
        "",
        None,
        "Microsoft Graph is throttling the app or the mailbox",
        &[Cause {
            id: "graph-throttled",
            why: "more than Outlook's limits per app and mailbox (10,000 requests in 10 minutes, 4 at a time, 150 MB of uploads in 5 minutes) or Exchange's sending limits",
            fix: "Wait for the Retry-After time and send fewer messages at once; m365-mailer waits it out up to a minute.",
            commands: &[],
        }],
        Retry::AfterThrottling,
        Blame::Account,
        false,
    ),
];

const LEARN_GRAPH_SENDMAIL: &str = "https://learn.microsoft.com/graph/api/user-sendmail";

#[allow(clippy::too_many_arguments)] // one per field of the entry
const fn graph(
    status: u16,
    code: &'static str,
    text: Option<&'static str>,
    summary: &'static str,
    causes: &'static [Cause],
    retry: Retry,
    blame: Blame,
    propagation: bool,
) -> Entry {
    Entry {
        key: "graph",
        signal: Signal::Graph { status, code, text },
        summary,
        causes,
        retry,
        blame,
        propagation,
        link: LEARN_GRAPH_SENDMAIL,
    }
}
