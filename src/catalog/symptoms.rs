//! Failures seen without a server's reply, or reported by another tool.

#[allow(clippy::wildcard_imports)]
use super::causes::*;
use super::{Blame, Cause, Entry, Retry, Signal, Symptom};

/// The entries of this family.
pub(super) static ENTRIES: &[Entry] = &[
    Entry {
        key: "symptom/port-blocked",
        signal: Signal::Symptom(Symptom::PortBlocked),
        summary: "the SMTP port does not answer",
        causes: &[FIREWALL],
        retry: Retry::Transient,
        blame: Blame::Path,
        propagation: false,
        link: LEARN_SMTP_AUTH,
    },
    Entry {
        key: "symptom/token-claims",
        signal: Signal::Symptom(Symptom::TokenClaims),
        summary: "the token is not one Exchange Online accepts",
        causes: &[
            Cause {
                id: "wrong-audience",
                why: "the token was issued for another resource than Exchange Online (the scope names Graph or another API)",
                fix: "Request the token with scope https://outlook.office365.com/.default.",
                commands: &[],
            },
            WRONG_TENANT,
            UNKNOWN_CLIENT,
            Cause {
                id: "delegated-token",
                why: "the token was issued to a user (delegated), not to the app; this tool's flow is client credentials",
                fix: "Use the app's client credentials (client secret or certificate), not a user sign-in.",
                commands: &[],
            },
            NO_ADMIN_CONSENT,
        ],
        retry: Retry::Permanent,
        blame: Blame::Credential,
        propagation: true,
        link: LEARN_XOAUTH,
    },
    Entry {
        key: "symptom/dns",
        signal: Signal::Symptom(Symptom::Dns),
        summary: "a host name does not resolve",
        causes: &[Cause {
            id: "dns",
            why: "the host name is misspelt, or this machine has no DNS (or only an internal one that does not resolve public names)",
            fix: "Check the host name ({smtp_host}, the token endpoint's host) and this machine's resolver; a proxy-only network needs the HTTPS proxy for the token endpoint.",
            commands: &["getent hosts {smtp_host}"],
        }],
        retry: Retry::Transient,
        blame: Blame::Path,
        propagation: false,
        link: LEARN_SMTP_AUTH,
    },
    Entry {
        key: "symptom/tls-untrusted",
        signal: Signal::Symptom(Symptom::TlsUntrusted),
        summary: "the server's TLS certificate is not trusted",
        causes: &[Cause {
            id: "tls-untrusted",
            why: "a TLS-inspecting proxy or a private CA presents a certificate no trusted root vouches for",
            fix: "If the issuer is your organisation's proxy, add its CA certificate (PEM) with ca_file or M365_MAILER_CA_FILE; otherwise something intercepts the connection.",
            commands: &[],
        }],
        retry: Retry::Permanent,
        blame: Blame::Configuration,
        propagation: false,
        link: LEARN_SMTP_AUTH,
    },
    Entry {
        key: "symptom/xoauth2-not-offered",
        signal: Signal::Symptom(Symptom::Xoauth2NotOffered),
        summary: "the server does not offer AUTH XOAUTH2",
        causes: &[Cause {
            id: "xoauth2-not-offered",
            why: "the client authenticated before STARTTLS (Exchange offers AUTH only over TLS), or talks to a server that is not Exchange Online, or the client's mechanism list lacks XOAUTH2",
            fix: "Use STARTTLS on port 587 to {smtp_host}, and the XOAUTH2 mechanism (in Java mail: mail.smtp.auth.mechanisms=XOAUTH2).",
            commands: &[],
        }],
        retry: Retry::Permanent,
        blame: Blame::Path,
        propagation: false,
        link: LEARN_XOAUTH,
    },
    Entry {
        key: "symptom/exchange-module",
        signal: Signal::Symptom(Symptom::ExchangeModule),
        summary: "the ExchangeOnlineManagement PowerShell module is missing or broken",
        causes: &[Cause {
            id: "exchange-module",
            why: "the module that provides Connect-ExchangeOnline is not installed or is outdated",
            fix: "Install it (Azure Cloud Shell has it), then connect.",
            commands: &[
                "Install-Module -Name ExchangeOnlineManagement -Force -AllowClobber -Scope CurrentUser",
                "Import-Module ExchangeOnlineManagement -Force",
                CONNECT,
            ],
        }],
        retry: Retry::Permanent,
        blame: Blame::Configuration,
        propagation: false,
        link: "https://learn.microsoft.com/powershell/exchange/exchange-online-powershell-v2",
    },
    Entry {
        key: "symptom/not-sending",
        signal: Signal::Symptom(Symptom::NotSending),
        summary: "mail is not sent although OAuth is configured",
        causes: &[WRONG_MAILBOX, NO_FULL_ACCESS, SMTP_AUTH_OFF_MAILBOX],
        retry: Retry::Permanent,
        blame: Blame::Credential,
        propagation: true,
        link: LEARN_XOAUTH,
    },
];
