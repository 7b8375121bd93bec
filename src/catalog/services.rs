//! What High Volume Email and Azure Communication Services Email answer that a mailbox on
//! Exchange Online does not (fact sheet §8; `docs/services.md` marks each reply sourced,
//! reported or assumed), and the causes of their `535 5.7.3`, which shares Exchange's words
//! but not its causes: `diagnosis.rs` puts these in place of Exchange's for such an account.

use super::{Blame, Cause, Entry, Retry, Signal, Symptom};

const LEARN_HVE: &str = "https://learn.microsoft.com/exchange/mail-flow-best-practices/high-volume-mails-m365";
const LEARN_ACS_SMTP: &str =
    "https://learn.microsoft.com/azure/communication-services/quickstarts/email/send-email-smtp/smtp-authentication";
const LEARN_ACS_DOMAINS: &str =
    "https://learn.microsoft.com/azure/communication-services/quickstarts/email/connect-email-communication-resource";

const HVE_INTERNAL_ONLY: Cause = Cause {
    id: "hve-internal-only",
    why: "High Volume Email delivers only to recipients of the tenant's own accepted domains (since June 2025)",
    fix: "Send mail for outside recipients through a mailbox (service = \"exchange\") or Azure Communication Services (service = \"acs\"); list the tenant's accepted domains in internal_domains so such messages are refused before sending.",
    commands: &["Get-AcceptedDomain | Format-Table DomainName"],
};

const TOKEN_NEAR_EXPIRY: Cause = Cause {
    id: "token-near-expiry",
    why: "the token had less than about 10 minutes left when it was presented; m365-mailer fetches a new one and tries again at once, so seeing this means the new one was refused too: this machine's clock is ahead or behind",
    fix: "Synchronise the clock (NTP). With service = \"hve\" tokens are refreshed 30 minutes before they expire and never presented with less than 15 minutes left.",
    commands: &["timedatectl status"],
};

/// HVE's causes of `535 5.7.3`.
pub(super) const HVE_535: &[Cause] = &[
    Cause {
        id: "hve-no-app-access",
        why: "the app was not given access to the HVE account (Add-HVEAppAccess), or less than 5 minutes ago",
        fix: "Give the app access to the HVE account with its Enterprise application Object ID (not the client id; at most 10 apps per account), then wait up to 5 minutes.",
        commands: &[
            "Connect-ExchangeOnline -Organization {tenant}",
            "Add-HVEAppAccess -Identity {mailbox} -AppIds {sp_id}",
        ],
    },
    Cause {
        id: "hve-no-mail-send",
        why: "the token has no Mail.Send role of Office 365 Exchange Online: HVE takes that application permission, not SMTP.SendAsApp",
        fix: "App registrations → the app → API permissions → Add → APIs my organization uses → Office 365 Exchange Online → Application permissions → Mail.Send, then Grant admin consent.",
        commands: &[],
    },
    Cause {
        id: "hve-not-an-account",
        why: "the mailbox is not an HVE account of the tenant (HVE accounts are mail users created for HVE)",
        fix: "Set mailbox to the HVE account's address (Exchange admin center → Mail flow → High volume email).",
        commands: &["Get-MailUser -HVEAccount | Format-Table PrimarySmtpAddress"],
    },
    super::causes::PROPAGATION,
];

/// ACS's causes of `535 5.7.3`.
pub(super) const ACS_535: &[Cause] = &[
    Cause {
        id: "acs-smtp-username",
        why: "no SMTP Username resource has this user name, or it links another app or tenant",
        fix: "Azure portal → the Communication Services resource → SMTP Usernames: set smtp_username to the user name listed there, linked to this app ({client_id}) in tenant {tenant}.",
        commands: &[],
    },
    Cause {
        id: "acs-secret",
        why: "the password is not the current value of the app's client secret (the Value column, not the Secret ID), or the secret has expired",
        fix: "App registrations → the app → Certificates & secrets: create a new client secret and configure its Value.",
        commands: &["az ad app credential reset --id {client_id} --append --display-name m365-mailer"],
    },
    Cause {
        id: "acs-no-role",
        why: "the app holds no role on the Communication Services resource: it needs Communication and Email Service Owner, or a custom role with Microsoft.Communication/CommunicationServices/Read and Write and Microsoft.Communication/EmailServices/write",
        fix: "Azure portal → the Communication Services resource → Access control (IAM) → Add role assignment → the app.",
        commands: &[
            "az role assignment create --assignee {client_id} --role \"Communication and Email Service Owner\" --scope <Communication Services resource id>",
        ],
    },
    super::causes::PROPAGATION,
];

/// ACS's `550 5.7.30`: a mailbox's password where the app's client secret goes.
pub(super) const ACS_MAILBOX_PASSWORD: Cause = Cause {
    id: "acs-mailbox-password",
    why: "Azure Communication Services takes the SMTP Username resource's user name and the Entra app's client secret, not a mailbox's address and password",
    fix: "Set smtp_username to the SMTP Username (Communication Services resource → SMTP Usernames) and the app's client secret as the credential (client_secret_file), not smtp_password.",
    commands: &[],
};

/// The entries of this family.
pub(super) static ENTRIES: &[Entry] = &[
    Entry {
        key: "smtp/501-5.5.127",
        signal: Signal::Smtp {
            code: 501,
            enhanced: "5.5.127",
            text: None,
        },
        summary: "High Volume Email refused a token close to its expiry (Token will expire soon)",
        causes: &[TOKEN_NEAR_EXPIRY],
        retry: Retry::Transient,
        blame: Blame::Credential,
        propagation: false,
        link: "https://github.com/tarickb/sasl-xoauth2/issues/98",
    },
    Entry {
        key: "smtp/550-5.7.1-hve-external",
        signal: Signal::Smtp {
            code: 550,
            enhanced: "5.7.1",
            text: Some("High Volume Email"),
        },
        summary: "High Volume Email refused a recipient outside the tenant",
        causes: &[HVE_INTERNAL_ONLY],
        retry: Retry::Permanent,
        blame: Blame::Message,
        propagation: false,
        link: LEARN_HVE,
    },
    Entry {
        key: "symptom/hve-external-recipients",
        signal: Signal::Symptom(Symptom::HveExternalRecipients),
        summary: "recipients outside the tenant's accepted domains, which High Volume Email refuses",
        causes: &[HVE_INTERNAL_ONLY],
        retry: Retry::Permanent,
        blame: Blame::Message,
        propagation: false,
        link: LEARN_HVE,
    },
    Entry {
        key: "smtp/550-5.1.7-acs-domain",
        signal: Signal::Smtp {
            code: 0,
            enhanced: "5.1.7",
            text: Some("not been linked"),
        },
        summary: "Azure Communication Services: the sender's domain is not linked to the Communication Services resource",
        causes: &[Cause {
            id: "acs-domain-not-linked",
            why: "the From domain is not a verified domain connected to this Communication Services resource",
            fix: "Azure portal → the Communication Services resource → Email → Domains → Connect domain (the domain must first be verified in the Email Communication Services resource); or send from an address of a connected domain.",
            commands: &[],
        }],
        retry: Retry::Permanent,
        blame: Blame::Sender,
        propagation: true,
        link: LEARN_ACS_DOMAINS,
    },
    Entry {
        key: "smtp/550-5.1.8-acs-sender",
        signal: Signal::Smtp {
            code: 0,
            enhanced: "5.1.8",
            text: Some("MailFrom"),
        },
        summary: "Azure Communication Services: the sender is not a MailFrom address of its domain",
        causes: &[Cause {
            id: "acs-sender-not-configured",
            why: "the address is on a connected domain but is not one of its MailFrom addresses",
            fix: "Azure portal → the Email Communication Services resource → Provision domains → the domain → MailFrom addresses → Add; or set from to a listed address.",
            commands: &[],
        }],
        retry: Retry::Permanent,
        blame: Blame::Sender,
        propagation: true,
        link: LEARN_ACS_SMTP,
    },
];
