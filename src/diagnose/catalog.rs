//! The diagnosis catalog: every Entra ID error and Exchange Online reply the guides and the
//! fact sheet list, with its likely causes in order, the fix, whether retrying or waiting for
//! propagation helps, and where Microsoft documents it. Data only; matching and rendering are in
//! `diagnose/mod.rs`.
//!
//! Placeholders in fixes: `{tenant}`, `{client_id}`, `{mailbox}`, `{sp_id}` (the enterprise
//! application's object id), `{from}`, `{scope}`, `{smtp_host}`, `{smtp_port}`. In `commands`
//! they are filled in quoted for PowerShell.

/// What a catalog entry recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// An SMTP reply: its code, its enhanced code, and a fragment its text must contain when
    /// entries share the codes.
    Smtp {
        /// Three-digit code; 0 matches any.
        code: u16,
        /// Enhanced status code.
        enhanced: &'static str,
        /// Case-insensitive fragment of the text.
        text: Option<&'static str>,
    },
    /// An Entra ID error.
    Aadsts(u32),
    /// A Microsoft Graph error: HTTP status, `error.code` (empty matches any) and a fragment
    /// its message must contain when entries share both.
    Graph {
        /// HTTP status.
        status: u16,
        /// `error.code`.
        code: &'static str,
        /// Case-insensitive fragment of `error.message`.
        text: Option<&'static str>,
    },
    /// Something observed without a server reply (a port that does not answer, an untrusted
    /// certificate) or reported by another tool in its own words.
    Symptom(&'static str),
}

/// Whether trying again can succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Try again later without changing anything.
    Transient,
    /// Change something first.
    Permanent,
    /// Exchange throttles the sender for a period it decides.
    AfterThrottling,
    /// Exchange refuses everything from the account — the tenant, the mailbox or this IP is
    /// blocked, or the mailbox is full — until an administrator acts. The messages are not at
    /// fault: a queue keeps them and pauses the account.
    AfterAccountFix,
}

/// One possible cause and how to fix it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cause {
    /// Stable identifier, used by `doctor --json` and tests.
    pub id: &'static str,
    /// What is wrong.
    pub why: &'static str,
    /// What to do, in words (portal steps).
    pub fix: &'static str,
    /// Commands that do it (Exchange Online PowerShell, az).
    pub commands: &'static [&'static str],
}

/// A failure the catalog knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Stable identifier (`aadsts` for Entra entries: see [`Entry::id`]).
    pub key: &'static str,
    /// What it recognises.
    pub signal: Signal,
    /// One line on what happened.
    pub summary: &'static str,
    /// How other tools and the guides' tables word it.
    pub aliases: &'static [&'static str],
    /// Likely causes, most likely first.
    pub causes: &'static [Cause],
    /// Retry classification.
    pub retry: Retry,
    /// Whether a recent change may simply not have propagated yet (5–15 minutes, sometimes
    /// longer).
    pub propagation: bool,
    /// Where Microsoft documents it.
    pub link: &'static str,
}

const LEARN_XOAUTH: &str = "https://learn.microsoft.com/exchange/client-developer/legacy-protocols/how-to-authenticate-an-imap-pop-smtp-application-by-using-oauth";
const LEARN_SMTP_AUTH: &str =
    "https://learn.microsoft.com/exchange/clients-and-mobile-in-exchange-online/authenticated-client-smtp-submission";
const LEARN_SUBMISSION: &str =
    "https://learn.microsoft.com/exchange/troubleshoot/send-emails/smtp-submission-improvements";
const LEARN_NDR: &str =
    "https://learn.microsoft.com/exchange/troubleshoot/email-delivery/ndr/non-delivery-reports-in-exchange-online";
const LEARN_CONTINUOUS: &str =
    "https://learn.microsoft.com/exchange/mail-flow-best-practices/continuous-error-throttling-smtp-auth-submissions";
const LEARN_7XX: &str = "https://learn.microsoft.com/exchange/troubleshoot/email-delivery/ndr/fix-error-codes-550-5-7-703-550-5-7-705-550-5-7-708-550-5-7-750";
const LEARN_AADSTS: &str = "https://learn.microsoft.com/entra/identity-platform/reference-error-codes";
const LEARN_CLIENT_CREDENTIALS: &str =
    "https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow";
const LEARN_CERTIFICATES: &str = "https://learn.microsoft.com/entra/identity-platform/certificate-credentials";

const CONNECT: &str = "Connect-ExchangeOnline -Organization {tenant}";

// Causes shared by several entries.
const NO_ADMIN_CONSENT: Cause = Cause {
    id: "no-admin-consent",
    why: "the app's SMTP.SendAsApp permission has no admin consent, so the token carries no role",
    fix: "Entra admin center → App registrations → the app → API permissions: add Office 365 Exchange Online → Application permissions → SMTP.SendAsApp, then \"Grant admin consent\".",
    commands: &["az ad app permission admin-consent --id {client_id}"],
};
const SP_NOT_REGISTERED: Cause = Cause {
    id: "sp-not-registered",
    why: "the app's service principal is not registered in Exchange Online (Entra permissions alone are not enough)",
    fix: "Register it with the Object ID of the Enterprise application (not of the App registration).",
    commands: &[CONNECT, "New-ServicePrincipal -AppId {client_id} -ObjectId {sp_id}"],
};
const SP_WRONG_OBJECT_ID: Cause = Cause {
    id: "sp-wrong-object-id",
    why: "the service principal was registered in Exchange with the App registration's Object ID instead of the Enterprise application's",
    fix: "Remove the wrong registration and register the Enterprise application's Object ID (Enterprise applications → the app → Object ID).",
    commands: &[
        CONNECT,
        "Get-ServicePrincipal | Where-Object AppId -eq {client_id} | Format-List DisplayName, AppId, ObjectId",
        "Remove-ServicePrincipal -Identity {client_id}",
        "New-ServicePrincipal -AppId {client_id} -ObjectId {sp_id}",
    ],
};
const NO_FULL_ACCESS: Cause = Cause {
    id: "no-full-access",
    why: "the service principal has no FullAccess on the mailbox it authenticates as",
    fix: "Grant FullAccess on the mailbox to the service principal.",
    commands: &[
        CONNECT,
        "Add-MailboxPermission -Identity {mailbox} -User {sp_id} -AccessRights FullAccess",
    ],
};
const NO_SEND_AS: Cause = Cause {
    id: "no-send-as",
    why: "the From address (or envelope sender) is not the authenticated mailbox and the app has no SendAs right on it",
    fix: "Send as the mailbox, or grant SendAs on the From address and list it in allowed_senders.",
    commands: &[
        CONNECT,
        "Add-RecipientPermission -Identity {from} -Trustee {sp_id} -AccessRights SendAs -Confirm:$false",
    ],
};
const SMTP_AUTH_OFF_TENANT: Cause = Cause {
    id: "smtp-auth-disabled-tenant",
    why: "SMTP AUTH is turned off for the organisation (the default since 2020) and the mailbox follows it",
    fix: "Enable SMTP AUTH for this mailbox only (preferred), or for the organisation.",
    commands: &[
        CONNECT,
        "Set-CASMailbox -Identity {mailbox} -SmtpClientAuthenticationDisabled $false",
        "Set-TransportConfig -SmtpClientAuthenticationDisabled $false",
    ],
};
const SMTP_AUTH_OFF_MAILBOX: Cause = Cause {
    id: "smtp-auth-disabled-mailbox",
    why: "SMTP AUTH is turned off for this mailbox (Set-CASMailbox), which wins over the organisation setting",
    fix: "Enable SMTP AUTH for the mailbox; the setting is not shown in the Exchange admin center.",
    commands: &[
        CONNECT,
        "Set-CASMailbox -Identity {mailbox} -SmtpClientAuthenticationDisabled $false",
        "Get-CASMailbox -Identity {mailbox} | Format-List SmtpClientAuthenticationDisabled",
    ],
};
const SECURITY_DEFAULTS: Cause = Cause {
    id: "security-defaults",
    why: "Entra ID security defaults are on; they block SMTP AUTH for the whole tenant",
    fix: "Entra admin center → Overview → Properties → Manage security defaults: turn them off (replace them with Conditional Access policies).",
    commands: &[],
};
const WRONG_SECRET: Cause = Cause {
    id: "wrong-secret",
    why: "the client secret is wrong: often the Secret ID (a GUID) was copied instead of the secret's Value, or a character was lost",
    fix: "Entra admin center → App registrations → the app → Certificates & secrets → New client secret; copy the Value column at once (it is shown only once).",
    commands: &["az ad app credential reset --id {client_id} --append --display-name m365-mailer"],
};
const EXPIRED_SECRET: Cause = Cause {
    id: "expired-secret",
    why: "the client secret has expired",
    fix: "Create a new client secret (Certificates & secrets), update the configuration, and set a reminder before it expires; or use a certificate.",
    commands: &["az ad app credential reset --id {client_id} --append --display-name m365-mailer"],
};
const WRONG_SCOPE: Cause = Cause {
    id: "wrong-scope",
    why: "the scope is not the Exchange resource followed by /.default",
    fix: "Use the scope https://outlook.office365.com/.default (GCC High: https://outlook.office365.us/.default).",
    commands: &[],
};
const PROPAGATION: Cause = Cause {
    id: "propagation",
    why: "a recent change (consent, registration, permission) has not reached every server yet",
    fix: "Wait 5 to 15 minutes after the last change, then try again.",
    commands: &[],
};
const WRONG_TENANT: Cause = Cause {
    id: "wrong-tenant",
    why: "the tenant is not the one the app is registered in (or a typo in the Directory (tenant) ID or domain)",
    fix: "Copy the Directory (tenant) ID from the app registration's Overview page.",
    commands: &[],
};
const UNKNOWN_CLIENT: Cause = Cause {
    id: "unknown-client",
    why: "no app with this client id exists in the tenant (a typo, the Object ID used instead of the Application (client) ID, or the wrong tenant)",
    fix: "Copy the Application (client) ID from the app registration's Overview page, and check the tenant.",
    commands: &[],
};
const CERT_NOT_REGISTERED: Cause = Cause {
    id: "certificate-not-registered",
    why: "the certificate that signed the assertion is not uploaded to the app registration (or the private key belongs to another certificate)",
    fix: "Upload the certificate's public part (.cer/.pem) under App registrations → the app → Certificates & secrets → Certificates.",
    commands: &["az ad app credential reset --id {client_id} --cert @certificate.pem --append"],
};
const CLOCK_SKEW: Cause = Cause {
    id: "clock-skew",
    why: "the client assertion is outside its validity: this machine's clock is off by more than 5 minutes, or an assertion was reused after it expired",
    fix: "Synchronise the clock (NTP) and try again.",
    commands: &["timedatectl status"],
};
const STALE_FEDERATED_TOKEN: Cause = Cause {
    id: "stale-federated-token",
    why: "the federated token (AZURE_FEDERATED_TOKEN_FILE, federated_token_file) has expired: the file is a copy, or nothing refreshes it",
    fix: "Point federated_token_file at the projected service account token the workload identity webhook mounts (the kubelet replaces it before it expires); do not copy the token elsewhere.",
    commands: &["kubectl describe pod POD | grep -A3 azure-identity-token"],
};
const FIC_ISSUER: Cause = Cause {
    id: "federated-issuer",
    why: "no federated credential of the app has the token's issuer (`iss`); the match is exact and case-sensitive, a trailing slash included",
    fix: "Add a federated credential whose Issuer is the cluster's OIDC issuer URL exactly as the token carries it (m365-mailer doctor shows it), or correct the existing one.",
    commands: &[
        "az ad app federated-credential list --id {client_id}",
        "az aks show --name CLUSTER --resource-group GROUP --query oidcIssuerProfile.issuerUrl --output tsv",
    ],
};
const FIC_SUBJECT: Cause = Cause {
    id: "federated-subject",
    why: "no federated credential of the app with this issuer has the token's subject (`sub`, for Kubernetes system:serviceaccount:NAMESPACE:NAME); the match is exact and case-sensitive",
    fix: "Create a federated credential for this service account (fic.json with name, issuer, subject and audiences [\"api://AzureADTokenExchange\"]), or run the workload under the service account one names.",
    commands: &[
        "az ad app federated-credential list --id {client_id}",
        "az ad app federated-credential create --id {client_id} --parameters fic.json",
    ],
};
const FIC_AUDIENCE: Cause = Cause {
    id: "federated-audience",
    why: "the token's audience (`aud`) is not among the federated credential's audiences (api://AzureADTokenExchange by default)",
    fix: "Project the service account token with the audience api://AzureADTokenExchange (the workload identity webhook does), or add its audience to the federated credential.",
    commands: &["az ad app federated-credential list --id {client_id}"],
};
const WRONG_MAILBOX: Cause = Cause {
    id: "mailbox-not-found",
    why: "the mailbox named as the SMTP user does not exist in the token's tenant",
    fix: "Set mailbox to the primary address of an existing mailbox of the tenant (a licensed user or a shared mailbox).",
    commands: &[CONNECT, "Get-Mailbox -Identity {mailbox}"],
};
const FIREWALL: Cause = Cause {
    id: "port-blocked",
    why: "outbound connections to the SMTP port are blocked (firewalls and many hosting providers block 587 and 25)",
    fix: "Allow outbound TCP to {smtp_host}:{smtp_port}, or send through Microsoft Graph over HTTPS instead.",
    commands: &[],
};

/// Every entry.
pub static ENTRIES: &[Entry] = &[
    // ---------------------------------------------------------------- Exchange Online, AUTH
    Entry {
        key: "smtp/535-5.7.3",
        signal: Signal::Smtp {
            code: 535,
            enhanced: "5.7.3",
            text: None,
        },
        summary: "Exchange refused the token (Authentication unsuccessful)",
        aliases: &[
            "535 5.7.3 Authentication Unsuccessful",
            "Authentication unsuccessful",
            "535 5.7.3 even after Part 2",
            "SMTP authentication failed",
        ],
        causes: &[
            NO_ADMIN_CONSENT,
            SP_NOT_REGISTERED,
            SP_WRONG_OBJECT_ID,
            NO_FULL_ACCESS,
            WRONG_MAILBOX,
            PROPAGATION,
        ],
        retry: Retry::Permanent,
        propagation: true,
        link: LEARN_XOAUTH,
    },
    Entry {
        key: "smtp/535-5.7.139-tenant",
        signal: Signal::Smtp {
            code: 535,
            enhanced: "5.7.139",
            text: Some("disabled for the Tenant"),
        },
        summary: "SMTP AUTH is disabled for the organisation",
        aliases: &[
            "535 5.7.139 SmtpClientAuthentication is disabled for the Tenant",
            "SMTP AUTH disabled",
        ],
        causes: &[SMTP_AUTH_OFF_TENANT],
        retry: Retry::Permanent,
        propagation: true,
        link: LEARN_SMTP_AUTH,
    },
    Entry {
        key: "smtp/535-5.7.139-mailbox",
        signal: Signal::Smtp {
            code: 535,
            enhanced: "5.7.139",
            text: Some("disabled for the Mailbox"),
        },
        summary: "SMTP AUTH is disabled for the mailbox",
        aliases: &["SmtpClientAuthentication is disabled for the Mailbox"],
        causes: &[SMTP_AUTH_OFF_MAILBOX],
        retry: Retry::Permanent,
        propagation: true,
        link: LEARN_SMTP_AUTH,
    },
    Entry {
        key: "smtp/535-5.7.139-security-defaults",
        signal: Signal::Smtp {
            code: 535,
            enhanced: "5.7.139",
            text: Some("security defaults"),
        },
        summary: "security defaults block SMTP AUTH",
        aliases: &["user is locked by your organization's security defaults policy"],
        causes: &[SECURITY_DEFAULTS],
        retry: Retry::Permanent,
        propagation: true,
        link: "https://learn.microsoft.com/entra/fundamentals/security-defaults",
    },
    Entry {
        key: "smtp/535-5.7.139-basic-auth",
        signal: Signal::Smtp {
            code: 535,
            enhanced: "5.7.139",
            text: Some("basic authentication is disabled"),
        },
        summary: "a password was refused: basic authentication is disabled",
        aliases: &["basic authentication is disabled"],
        causes: &[Cause {
            id: "basic-auth-disabled",
            why: "the server takes OAuth tokens only; passwords (AUTH LOGIN/PLAIN) are switched off",
            fix: "Configure OAuth client credentials (tenant, client_id, a client secret or certificate) instead of smtp_username/smtp_password.",
            commands: &[],
        }],
        retry: Retry::Permanent,
        propagation: false,
        link: LEARN_XOAUTH,
    },
    Entry {
        key: "smtp/535-5.7.139-conditional-access",
        signal: Signal::Smtp {
            code: 535,
            enhanced: "5.7.139",
            text: Some("did not meet the criteria"),
        },
        summary: "a Conditional Access or authentication policy blocked the sign-in",
        aliases: &["the request did not meet the criteria to be authenticated successfully"],
        causes: &[Cause {
            id: "conditional-access",
            why: "a Conditional Access policy (or an authentication policy) blocks this sign-in",
            fix: "Entra admin center → Sign-in logs (service principal sign-ins) shows which policy; exclude the app or allow this location.",
            commands: &[],
        }],
        retry: Retry::Permanent,
        propagation: true,
        link: "https://learn.microsoft.com/entra/identity/conditional-access/workload-identity",
    },
    Entry {
        key: "smtp/550-5.7.30",
        signal: Signal::Smtp {
            code: 550,
            enhanced: "5.7.30",
            text: None,
        },
        summary: "basic authentication is not supported for client submission",
        aliases: &["Basic authentication is not supported for Client Submission"],
        causes: &[Cause {
            id: "basic-auth-retired",
            why: "Microsoft has retired passwords for SMTP client submission in this tenant",
            fix: "Use OAuth client credentials (this tool's default) instead of a password.",
            commands: &[],
        }],
        retry: Retry::Permanent,
        propagation: false,
        link: "https://techcommunity.microsoft.com/blog/exchange/exchange-online-to-retire-basic-auth-for-client-submission-smtp-auth/4114750",
    },
    Entry {
        key: "smtp/530-5.7.57",
        signal: Signal::Smtp {
            code: 530,
            enhanced: "5.7.57",
            text: None,
        },
        summary: "the client did not authenticate before sending",
        aliases: &[
            "Client not authenticated to send mail",
            "Client was not authenticated to send anonymous mail during MAIL FROM",
        ],
        causes: &[Cause {
            id: "not-authenticated",
            why: "MAIL FROM was sent without a successful AUTH, or without STARTTLS first",
            fix: "Authenticate (AUTH XOAUTH2) after STARTTLS on port 587; check the earlier AUTH reply for the real failure.",
            commands: &[],
        }],
        retry: Retry::AfterAccountFix,
        propagation: false,
        link: "https://learn.microsoft.com/exchange/troubleshoot/email-delivery/ndr/fix-error-code-5-7-57-in-exchange-online",
    },
    Entry {
        key: "smtp/430-4.2.0",
        signal: Signal::Smtp {
            code: 430,
            enhanced: "4.2.0",
            text: None,
        },
        summary: "mailbox logon failure: the authenticated identity has no rights on the mailbox",
        aliases: &[
            "430 4.2.0 Mailbox logon failure",
            "Authentication Context has no rights",
        ],
        causes: &[NO_FULL_ACCESS, PROPAGATION],
        retry: Retry::Transient,
        propagation: true,
        link: LEARN_XOAUTH,
    },
    // ---------------------------------------------------------------- Send-As, sender
    Entry {
        key: "smtp/554-5.2.252-send-as",
        signal: Signal::Smtp {
            code: 554,
            enhanced: "5.2.252",
            text: Some("SendAsDenied"),
        },
        summary: "SendAsDenied: the app may not send as the From address",
        aliases: &["554 5.2.252 SendAsDenied", "SendAsDenied", "not allowed to send as"],
        causes: &[NO_SEND_AS, PROPAGATION],
        retry: Retry::Permanent,
        propagation: true,
        link: LEARN_XOAUTH,
    },
    Entry {
        key: "smtp/550-5.7.60",
        signal: Signal::Smtp {
            code: 550,
            enhanced: "5.7.60",
            text: None,
        },
        summary: "the client has no permission to send as this sender",
        aliases: &["Client does not have permissions to send as this sender"],
        causes: &[NO_SEND_AS, PROPAGATION],
        retry: Retry::Permanent,
        propagation: true,
        link: "https://learn.microsoft.com/exchange/troubleshoot/email-delivery/fix-issues-with-printers-scanners-and-lob-applications-that-send-email-using-off",
    },
    Entry {
        key: "smtp/550-5.7.750",
        signal: Signal::Smtp {
            code: 550,
            enhanced: "5.7.750",
            text: None,
        },
        summary: "sending from a domain that is not an accepted domain of the tenant",
        aliases: &["Client blocked from sending from unregistered domains"],
        causes: &[Cause {
            id: "unregistered-domain",
            why: "the sender's domain is not an accepted domain of the tenant",
            fix: "Send from an address in one of the tenant's accepted domains, or add and verify the domain (Microsoft 365 admin center → Settings → Domains).",
            commands: &[CONNECT, "Get-AcceptedDomain"],
        }],
        retry: Retry::Permanent,
        propagation: false,
        link: LEARN_7XX,
    },
    // ---------------------------------------------------------------- limits and throttling
    Entry {
        key: "smtp/432-4.3.2",
        signal: Signal::Smtp {
            code: 432,
            enhanced: "4.3.2",
            text: None,
        },
        summary: "more than 3 concurrent connections for this mailbox",
        aliases: &["sender thread limit exceeded", "STOREDRV.ClientSubmit"],
        causes: &[Cause {
            id: "too-many-connections",
            why: "Exchange allows 3 concurrent submitting connections per mailbox; this was one more",
            fix: "Send through fewer connections at once (the relay keeps to 3 per mailbox), or spread the load over several mailboxes.",
            commands: &[],
        }],
        retry: Retry::Transient,
        propagation: false,
        link: LEARN_SUBMISSION,
    },
    Entry {
        key: "smtp/554-5.2.0",
        signal: Signal::Smtp {
            code: 554,
            enhanced: "5.2.0",
            text: Some("SubmissionQuotaExceeded"),
        },
        summary: "the mailbox sent to more than 10,000 recipients in 24 hours",
        aliases: &[
            "SubmissionQuotaExceededException",
            "Submission quota exceeded",
            "5.1.90",
        ],
        causes: &[Cause {
            id: "recipient-quota",
            why: "the 10,000 recipients per rolling 24 hours of the mailbox are used up",
            fix: "Wait until the window frees (sending resumes within 24 hours), spread the mail over several mailboxes, or use High Volume Email or a bulk-mail service for mass mail.",
            commands: &[],
        }],
        retry: Retry::AfterThrottling,
        propagation: false,
        link: "https://learn.microsoft.com/exchange/troubleshoot/email-delivery/ndr/fix-error-for-submission-quota-exceeded-in-exchange-online",
    },
    Entry {
        key: "smtp/554-5.2.2",
        signal: Signal::Smtp {
            code: 554,
            enhanced: "5.2.2",
            text: None,
        },
        summary: "the sending mailbox is full",
        aliases: &["mailbox full", "QuotaExceededException"],
        causes: &[Cause {
            id: "mailbox-full",
            why: "every message sent over SMTP is kept in the mailbox's Sent Items, which has filled the mailbox",
            fix: "Empty Sent Items (a retention policy can do it regularly), or raise the mailbox quota.",
            commands: &[
                CONNECT,
                "Get-MailboxStatistics -Identity {mailbox} | Format-List TotalItemSize",
            ],
        }],
        retry: Retry::AfterAccountFix,
        propagation: false,
        link: LEARN_SUBMISSION,
    },
    Entry {
        key: "smtp/550-5.2.251",
        signal: Signal::Smtp {
            code: 550,
            enhanced: "5.2.251",
            text: None,
        },
        summary: "throttled after continuous mailbox-full errors",
        aliases: &["Sender throttled due to continuous mailbox full errors"],
        causes: &[Cause {
            id: "throttled-mailbox-full",
            why: "the mailbox kept failing because it is full, so Exchange throttles it for a while",
            fix: "Free space in the mailbox (Sent Items); the throttle lifts after a period Microsoft decides, support cannot lift it.",
            commands: &[],
        }],
        retry: Retry::AfterThrottling,
        propagation: false,
        link: LEARN_CONTINUOUS,
    },
    Entry {
        key: "smtp/550-5.2.252-throttled",
        signal: Signal::Smtp {
            code: 550,
            enhanced: "5.2.252",
            text: Some("continuous send as denied"),
        },
        summary: "throttled after continuous SendAsDenied errors",
        aliases: &["Sender throttled due to continuous send as denied errors"],
        causes: &[Cause {
            id: "throttled-send-as",
            ..NO_SEND_AS
        }],
        retry: Retry::AfterThrottling,
        propagation: false,
        link: LEARN_CONTINUOUS,
    },
    Entry {
        key: "smtp/550-5.2.253",
        signal: Signal::Smtp {
            code: 550,
            enhanced: "5.2.253",
            text: None,
        },
        summary: "throttled after continuous invalid-licence errors",
        aliases: &["Sender throttled due to continuous invalid license errors"],
        causes: &[Cause {
            id: "throttled-license",
            why: "the mailbox has no Exchange Online licence and kept failing",
            fix: "Assign an Exchange Online licence to the user, or send as a shared mailbox.",
            commands: &[],
        }],
        retry: Retry::AfterThrottling,
        propagation: false,
        link: LEARN_CONTINUOUS,
    },
    Entry {
        key: "smtp/550-5.2.254",
        signal: Signal::Smtp {
            code: 550,
            enhanced: "5.2.254",
            text: None,
        },
        summary: "throttled after continuous too-many-recipients errors",
        aliases: &["Sender throttled due to continuous too many recipients errors"],
        causes: &[Cause {
            id: "throttled-recipients",
            why: "messages kept exceeding the recipient limit (500 per message by default)",
            fix: "Send to fewer recipients per message; the throttle lifts after a period Microsoft decides.",
            commands: &[],
        }],
        retry: Retry::AfterThrottling,
        propagation: false,
        link: LEARN_CONTINUOUS,
    },
    Entry {
        key: "smtp/550-5.2.255",
        signal: Signal::Smtp {
            code: 550,
            enhanced: "5.2.255",
            text: None,
        },
        summary: "throttled after continuous invalid-recipient errors",
        aliases: &["Sender throttled due to continuous invalid recipients errors"],
        causes: &[Cause {
            id: "throttled-invalid-recipients",
            why: "messages kept going to addresses that do not exist",
            fix: "Clean the recipient lists; the throttle lifts after a period Microsoft decides.",
            commands: &[],
        }],
        retry: Retry::AfterThrottling,
        propagation: false,
        link: LEARN_CONTINUOUS,
    },
    Entry {
        key: "smtp/550-5.7.233",
        signal: Signal::Smtp {
            code: 550,
            enhanced: "5.7.233",
            text: None,
        },
        summary: "the tenant exceeded its daily limit of external recipients",
        aliases: &["tenant external recipient rate limit"],
        causes: &[Cause {
            id: "tenant-external-limit",
            why: "the tenant-wide external recipient rate limit (TERRL), scaled by licence count, is used up",
            fix: "Wait for the rolling window; check the status with Get-LimitsEnforcementStatus; more licences raise the limit.",
            commands: &[CONNECT, "Get-LimitsEnforcementStatus"],
        }],
        retry: Retry::AfterThrottling,
        propagation: false,
        link: LEARN_NDR,
    },
    // ---------------------------------------------------------------- recipients
    Entry {
        key: "smtp/550-5.1.10",
        signal: Signal::Smtp {
            code: 550,
            enhanced: "5.1.10",
            text: None,
        },
        summary: "the recipient does not exist",
        aliases: &[
            "RESOLVER.ADR.RecipientNotFound",
            "Recipient not found by SMTP address lookup",
        ],
        causes: &[Cause {
            id: "recipient-not-found",
            why: "no mailbox, contact or group has this address (a typo, or a removed mailbox); for other domains, \
                  Exchange checked the recipient with Directory-Based Edge Blocking",
            fix: "Correct the recipient address in the application or device that sends the message.",
            commands: &[],
        }],
        retry: Retry::Permanent,
        propagation: false,
        link: LEARN_NDR,
    },
    // ---------------------------------------------------------------- reputation and policy
    Entry {
        key: "smtp/550-5.1.8",
        signal: Signal::Smtp {
            code: 550,
            enhanced: "5.1.8",
            text: None,
        },
        summary: "the sender is on the Restricted users list (bad outbound sender)",
        aliases: &["Access denied, bad outbound sender"],
        causes: &[Cause {
            id: "restricted-sender",
            why: "Microsoft blocked the mailbox for sending spam or too much mail (often a compromised account)",
            fix: "Secure the account, then release it in the Defender portal → Restricted entities.",
            commands: &[],
        }],
        retry: Retry::AfterAccountFix,
        propagation: false,
        link: LEARN_NDR,
    },
    Entry {
        key: "smtp/550-5.7.501",
        signal: Signal::Smtp {
            code: 550,
            enhanced: "5.7.501",
            text: None,
        },
        summary: "access denied, spam abuse detected",
        aliases: &["550 5.7.501 Spam abuse detected", "Access denied, spam abuse detected"],
        causes: &[Cause {
            id: "spam-abuse",
            why: "the tenant is banned from sending, typically a trial tenant with a poor IP reputation, or spam was sent",
            fix: "Use a paid subscription or open a Microsoft support request.",
            commands: &[],
        }],
        retry: Retry::AfterAccountFix,
        propagation: false,
        link: LEARN_NDR,
    },
    Entry {
        key: "smtp/550-5.7.502",
        signal: Signal::Smtp {
            code: 550,
            enhanced: "5.7.502",
            text: None,
        },
        summary: "access denied, banned sender",
        aliases: &["Access denied, banned sender"],
        causes: &[Cause {
            id: "banned-sender",
            why: "Microsoft banned the sender",
            fix: "Open a Microsoft support request.",
            commands: &[],
        }],
        retry: Retry::AfterAccountFix,
        propagation: false,
        link: LEARN_NDR,
    },
    Entry {
        key: "smtp/550-5.7.503",
        signal: Signal::Smtp {
            code: 550,
            enhanced: "5.7.503",
            text: None,
        },
        summary: "access denied, banned sender",
        aliases: &[],
        causes: &[Cause {
            id: "banned-sender",
            why: "Microsoft banned the sender",
            fix: "Open a Microsoft support request.",
            commands: &[],
        }],
        retry: Retry::AfterAccountFix,
        propagation: false,
        link: LEARN_NDR,
    },
    Entry {
        key: "smtp/550-5.7.506",
        signal: Signal::Smtp {
            code: 550,
            enhanced: "5.7.506",
            text: None,
        },
        summary: "access denied, bad HELO",
        aliases: &["Access Denied, Bad HELO"],
        causes: &[Cause {
            id: "bad-helo",
            why: "the client introduced itself (EHLO) with the server's own name or another forged name",
            fix: "Use this host's own name in EHLO (m365-mailer does); check that no proxy rewrites it.",
            commands: &[],
        }],
        retry: Retry::AfterAccountFix,
        propagation: false,
        link: LEARN_NDR,
    },
    Entry {
        key: "smtp/550-5.7.705",
        signal: Signal::Smtp {
            code: 550,
            enhanced: "5.7.705",
            text: None,
        },
        summary: "access denied, the tenant exceeded a threshold",
        aliases: &["Access denied, tenant has exceeded threshold"],
        causes: &[Cause {
            id: "tenant-threshold",
            why: "the tenant sent spam or too much bulk mail, or a lapsed subscription was renewed",
            fix: "Open a Microsoft support request; stop any mass mail from the tenant.",
            commands: &[],
        }],
        retry: Retry::AfterAccountFix,
        propagation: false,
        link: LEARN_7XX,
    },
    Entry {
        key: "smtp/550-5.7.708",
        signal: Signal::Smtp {
            code: 550,
            enhanced: "5.7.708",
            text: None,
        },
        summary: "traffic from this IP is not accepted",
        aliases: &["Access denied, traffic not accepted from this IP"],
        causes: &[Cause {
            id: "ip-reputation",
            why: "the sending IP has a poor reputation, typical of new or trial tenants",
            fix: "Use a paid subscription, send from another network, or open a Microsoft support request.",
            commands: &[],
        }],
        retry: Retry::AfterAccountFix,
        propagation: false,
        link: LEARN_7XX,
    },
    Entry {
        key: "smtp/4.7.5xx",
        signal: Signal::Smtp {
            code: 0,
            enhanced: "4.7.500",
            text: None,
        },
        summary: "access temporarily denied for suspicious activity",
        aliases: &["Access denied, please try again later"],
        causes: &[Cause {
            id: "temporary-restriction",
            why: "Microsoft restricts the sender for a while after suspicious activity",
            fix: "Wait and try again; if it persists, open a Microsoft support request.",
            commands: &[],
        }],
        retry: Retry::Transient,
        propagation: false,
        link: LEARN_NDR,
    },
    // ---------------------------------------------------------------- transport and content
    Entry {
        key: "smtp/421-4.7.66",
        signal: Signal::Smtp {
            code: 421,
            enhanced: "4.7.66",
            text: None,
        },
        summary: "TLS 1.0 or 1.1 is not supported",
        aliases: &["TLS 1.0 and 1.1 are not supported", "5.7.67"],
        causes: &[Cause {
            id: "legacy-tls",
            why: "the client negotiated TLS 1.0 or 1.1; Exchange Online requires TLS 1.2 or later",
            fix: "Use TLS 1.2 or later (m365-mailer always does); for old devices, the relay speaks their TLS locally.",
            commands: &[],
        }],
        retry: Retry::Permanent,
        propagation: false,
        link: "https://learn.microsoft.com/exchange/mail-flow-best-practices/opt-in-exchange-online-endpoint-for-legacy-tls-using-smtp-auth",
    },
    Entry {
        key: "smtp/451-4.7.0",
        signal: Signal::Smtp {
            code: 451,
            enhanced: "4.7.0",
            text: None,
        },
        summary: "temporary server error",
        aliases: &["Temporary server error. Please try again later", "PRX4", "PRX2", "PRX5"],
        causes: &[
            Cause {
                id: "temporary",
                why: "a temporary problem on Microsoft's side",
                fix: "Try again later; a queue (the relay) does this by itself.",
                commands: &[],
            },
            Cause {
                id: "unlicensed-mailbox",
                why: "PRX4 also appears when the sending user mailbox has no Exchange Online licence",
                fix: "Assign an Exchange Online licence to the mailbox, or send as a shared mailbox.",
                commands: &[
                    CONNECT,
                    "Get-Mailbox -Identity {mailbox} | Format-List RecipientTypeDetails, SKUAssigned",
                ],
            },
        ],
        retry: Retry::Transient,
        propagation: false,
        link: LEARN_SUBMISSION,
    },
    Entry {
        key: "smtp/5.6.11",
        signal: Signal::Smtp {
            code: 0,
            enhanced: "5.6.11",
            text: None,
        },
        summary: "the message contains bare line feeds",
        aliases: &["Invalid characters", "BareLinefeedsAreIllegal"],
        causes: &[Cause {
            id: "bare-line-feed",
            why: "lines end with LF alone instead of CRLF",
            fix: "Send CRLF line endings (m365-mailer converts them; other clients may need fixing).",
            commands: &[],
        }],
        retry: Retry::Permanent,
        propagation: false,
        link: LEARN_NDR,
    },
    Entry {
        key: "smtp/554-5.6.211",
        signal: Signal::Smtp {
            code: 554,
            enhanced: "5.6.211",
            text: None,
        },
        summary: "invalid MIME content",
        aliases: &["Invalid MIME Content"],
        causes: &[Cause {
            id: "invalid-mime",
            why: "the message's MIME structure is malformed or has too many header objects",
            fix: "Fix the program that builds the message; check it with a MIME validator.",
            commands: &[],
        }],
        retry: Retry::Permanent,
        propagation: false,
        link: LEARN_NDR,
    },
    Entry {
        key: "smtp/552-5.3.4",
        signal: Signal::Smtp {
            code: 552,
            enhanced: "5.3.4",
            text: None,
        },
        summary: "the message is too big",
        aliases: &["Message size exceeds fixed maximum message size"],
        causes: &[Cause {
            id: "too-big",
            why: "the message exceeds the mailbox's MaxSendSize (35 MB by default, attachments grow by a third in base64)",
            fix: "Send smaller attachments, or raise the limit.",
            commands: &[CONNECT, "Set-Mailbox -Identity {mailbox} -MaxSendSize 150MB"],
        }],
        retry: Retry::Permanent,
        propagation: false,
        link: "https://learn.microsoft.com/office365/servicedescriptions/exchange-online-service-description/exchange-online-limits",
    },
    // ---------------------------------------------------------------- Entra ID
    aadsts(
        90002,
        "the tenant was not found",
        &["Tenant not found"],
        &[
            WRONG_TENANT,
            Cause {
                id: "wrong-cloud",
                why: "the tenant lives in another national cloud (GCC High, DoD, China)",
                fix: "Set cloud (gcc-high, dod, china) or the authority host of the tenant's cloud.",
                commands: &[],
            },
        ],
        Retry::Permanent,
        false,
    ),
    aadsts(
        900023,
        "the tenant identifier is neither a GUID nor a domain",
        &[],
        &[WRONG_TENANT],
        Retry::Permanent,
        false,
    ),
    aadsts(
        90038,
        "the tenant belongs to another national cloud",
        &[],
        &[Cause {
            id: "wrong-cloud",
            why: "the tenant lives in another national cloud, whose token endpoint must be used",
            fix: "Set cloud (gcc-high, dod, china) to match the tenant.",
            commands: &[],
        }],
        Retry::Permanent,
        false,
    ),
    aadsts(
        700016,
        "no app with this client id in the tenant",
        &[
            "AADSTS700016: Application with identifier not found",
            "Application with identifier",
        ],
        &[UNKNOWN_CLIENT, WRONG_TENANT, PROPAGATION],
        Retry::Permanent,
        true,
    ),
    aadsts(
        7000215,
        "invalid client secret",
        &[
            "Invalid client secret",
            "Client secret not working",
            "Invalid client secret provided",
        ],
        &[WRONG_SECRET, EXPIRED_SECRET],
        Retry::Permanent,
        false,
    ),
    aadsts(
        7000222,
        "the client secret has expired",
        &["Client secret not working", "secret expired"],
        &[EXPIRED_SECRET],
        Retry::Permanent,
        false,
    ),
    aadsts(
        7000216,
        "no client secret or assertion was sent",
        &[],
        &[Cause {
            id: "no-credential",
            why: "the request carried neither a client secret nor a client assertion",
            fix: "Configure client_secret_file/client_secret_env or a certificate.",
            commands: &[],
        }],
        Retry::Permanent,
        false,
    ),
    aadsts(
        7000218,
        "the request must contain a client assertion or secret",
        &[],
        &[Cause {
            id: "no-credential",
            why: "the request carried neither a client secret nor a client assertion (or the app is a public client)",
            fix: "Configure a client secret or a certificate.",
            commands: &[],
        }],
        Retry::Permanent,
        false,
    ),
    aadsts(
        700027,
        "the client assertion's key is unknown or its signature is invalid",
        &["Client assertion contains an invalid signature"],
        &[
            CERT_NOT_REGISTERED,
            Cause {
                id: "certificate-expired",
                why: "the registered certificate has expired",
                fix: "Create a new certificate, upload it, and configure it.",
                commands: &[],
            },
        ],
        Retry::Permanent,
        true,
    ),
    aadsts(
        700024,
        "the client assertion is not within its valid time range",
        &["Client assertion is not within its valid time range"],
        &[CLOCK_SKEW, STALE_FEDERATED_TOKEN],
        Retry::Permanent,
        false,
    ),
    aadsts(
        700211,
        "no federated identity credential matches the token's issuer",
        &["No matching federated identity record found for presented assertion issuer"],
        &[FIC_ISSUER],
        Retry::Permanent,
        true,
    ),
    aadsts(
        700212,
        "no federated identity credential matches the token's audience",
        &["No matching federated identity record found for presented assertion audience"],
        &[FIC_AUDIENCE],
        Retry::Permanent,
        true,
    ),
    aadsts(
        700213,
        "no federated identity credential matches the token's subject",
        &["No matching federated identity record found for presented assertion subject"],
        &[FIC_SUBJECT],
        Retry::Permanent,
        true,
    ),
    aadsts(
        7002138,
        "the token's subject matches a federated identity credential only when case is ignored",
        &["The subject matches with case-insensitive comparison, but not with case-sensitive comparison"],
        &[FIC_SUBJECT],
        Retry::Permanent,
        true,
    ),
    aadsts(
        50012,
        "authentication failed (assertion or certificate not accepted)",
        &[],
        &[CERT_NOT_REGISTERED, CLOCK_SKEW],
        Retry::Permanent,
        false,
    ),
    aadsts(
        50027,
        "the JWT is invalid or malformed",
        &[],
        &[Cause {
            id: "malformed-assertion",
            why: "the client assertion is not a valid signed JWT (wrong algorithm, audience or issuer)",
            fix: "Use a certificate credential as configured; report a bug if m365-mailer signed it.",
            commands: &[],
        }],
        Retry::Permanent,
        false,
    ),
    aadsts(
        50048,
        "the assertion's subject differs from its issuer",
        &[],
        &[Cause {
            id: "assertion-subject",
            why: "the client assertion's sub and iss differ; both must be the client id",
            fix: "Check the client id; report a bug if m365-mailer signed it.",
            commands: &[],
        }],
        Retry::Permanent,
        false,
    ),
    aadsts(
        700030,
        "the certificate's subject name is not authorised",
        &[],
        &[Cause {
            id: "certificate-subject",
            why: "the app trusts certificates by subject name and issuer, and this one does not match",
            fix: "Use the certificate the app's trustedCertificateSubjects names, with send_x5c = true.",
            commands: &[],
        }],
        Retry::Permanent,
        false,
    ),
    aadsts(
        70011,
        "the scope is not valid",
        &["Token fetch fails"],
        &[WRONG_SCOPE],
        Retry::Permanent,
        false,
    ),
    aadsts(
        1002012,
        "the scope lacks /.default",
        &["Token fetch fails", "Wrong OAuth2 scope"],
        &[WRONG_SCOPE],
        Retry::Permanent,
        false,
    ),
    aadsts(
        700022,
        "the scope names more than one resource",
        &[],
        &[WRONG_SCOPE],
        Retry::Permanent,
        false,
    ),
    aadsts(
        500011,
        "the resource is not in the tenant",
        &[],
        &[
            WRONG_SCOPE,
            Cause {
                id: "no-exchange",
                why: "the tenant has no Exchange Online (or the scope names another cloud's resource)",
                fix: "Check that the tenant has Exchange Online licences and that scope and cloud match it.",
                commands: &[],
            },
        ],
        Retry::Permanent,
        false,
    ),
    aadsts(
        650052,
        "the app needs a service the organisation has not subscribed to",
        &[],
        &[Cause {
            id: "no-exchange",
            why: "the tenant has no Exchange Online subscription",
            fix: "Use a tenant with Exchange Online licences.",
            commands: &[],
        }],
        Retry::Permanent,
        false,
    ),
    aadsts(
        65001,
        "no consent",
        &[
            "AADSTS65001: The user or administrator has not consented",
            "Insufficient privileges to complete the operation",
            "has not consented",
        ],
        &[NO_ADMIN_CONSENT, PROPAGATION],
        Retry::Permanent,
        true,
    ),
    aadsts(
        53003,
        "blocked by Conditional Access",
        &[],
        &[Cause {
            id: "conditional-access",
            why: "a Conditional Access policy for workload identities blocks this sign-in",
            fix: "Entra admin center → Sign-in logs (service principal sign-ins) shows the policy; exclude the app or allow this location.",
            commands: &[],
        }],
        Retry::Permanent,
        true,
    ),
    aadsts(
        9001023,
        "client credentials are not supported on /common or /organizations",
        &[],
        &[WRONG_TENANT],
        Retry::Permanent,
        false,
    ),
    aadsts(
        7000112,
        "the app is disabled",
        &[],
        &[Cause {
            id: "app-disabled",
            why: "the enterprise application is disabled (\"Enabled for users to sign-in?\" is No)",
            fix: "Enterprise applications → the app → Properties → Enabled for users to sign-in: Yes.",
            commands: &[],
        }],
        Retry::Permanent,
        true,
    ),
    aadsts(
        50196,
        "request loop detected",
        &[],
        &[Cause {
            id: "request-loop",
            why: "too many identical token requests in a short time",
            fix: "Cache tokens (m365-mailer does: check that its cache directory is writable) and stop retry loops.",
            commands: &[],
        }],
        Retry::Transient,
        false,
    ),
    aadsts(
        90055,
        "the tenant is throttled",
        &[],
        &[TRANSIENT_ENTRA],
        Retry::Transient,
        false,
    ),
    aadsts(
        90024,
        "a transient error (request budget exceeded)",
        &[],
        &[TRANSIENT_ENTRA],
        Retry::Transient,
        false,
    ),
    aadsts(
        50033,
        "a transient error",
        &[],
        &[TRANSIENT_ENTRA],
        Retry::Transient,
        false,
    ),
    aadsts(
        90033,
        "the directory service is unavailable",
        &[],
        &[TRANSIENT_ENTRA],
        Retry::Transient,
        false,
    ),
    aadsts(
        90006,
        "an external server error",
        &[],
        &[TRANSIENT_ENTRA],
        Retry::Transient,
        false,
    ),
    // ---------------------------------------------------------------- symptoms
    Entry {
        key: "symptom/port-blocked",
        signal: Signal::Symptom("port-blocked"),
        summary: "the SMTP port does not answer",
        aliases: &["Connection timeout", "Connection timed out"],
        causes: &[FIREWALL],
        retry: Retry::Transient,
        propagation: false,
        link: LEARN_SMTP_AUTH,
    },
    Entry {
        key: "symptom/token-claims",
        signal: Signal::Symptom("token-claims"),
        summary: "the token is not one Exchange Online accepts",
        aliases: &[],
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
        propagation: true,
        link: LEARN_XOAUTH,
    },
    Entry {
        key: "symptom/dns",
        signal: Signal::Symptom("dns"),
        summary: "a host name does not resolve",
        aliases: &["Name or service not known", "failed to lookup address"],
        causes: &[Cause {
            id: "dns",
            why: "the host name is misspelt, or this machine has no DNS (or only an internal one that does not resolve public names)",
            fix: "Check the host name ({smtp_host}, the token endpoint's host) and this machine's resolver; a proxy-only network needs the HTTPS proxy for the token endpoint.",
            commands: &["getent hosts {smtp_host}"],
        }],
        retry: Retry::Transient,
        propagation: false,
        link: LEARN_SMTP_AUTH,
    },
    Entry {
        key: "symptom/tls-untrusted",
        signal: Signal::Symptom("tls-untrusted"),
        summary: "the server's TLS certificate is not trusted",
        aliases: &["certificate verify failed", "UnknownIssuer"],
        causes: &[Cause {
            id: "tls-untrusted",
            why: "a TLS-inspecting proxy or a private CA presents a certificate no trusted root vouches for",
            fix: "If the issuer is your organisation's proxy, add its CA certificate (PEM) with ca_file or M365_MAILER_CA_FILE; otherwise something intercepts the connection.",
            commands: &[],
        }],
        retry: Retry::Permanent,
        propagation: false,
        link: LEARN_SMTP_AUTH,
    },
    Entry {
        key: "symptom/xoauth2-not-offered",
        signal: Signal::Symptom("xoauth2-not-offered"),
        summary: "the server does not offer AUTH XOAUTH2",
        aliases: &["XOAUTH2 not supported", "Requested auth method not available"],
        causes: &[Cause {
            id: "xoauth2-not-offered",
            why: "the client authenticated before STARTTLS (Exchange offers AUTH only over TLS), or talks to a server that is not Exchange Online, or the client's mechanism list lacks XOAUTH2",
            fix: "Use STARTTLS on port 587 to {smtp_host}, and the XOAUTH2 mechanism (in Java mail: mail.smtp.auth.mechanisms=XOAUTH2).",
            commands: &[],
        }],
        retry: Retry::Permanent,
        propagation: false,
        link: LEARN_XOAUTH,
    },
    Entry {
        key: "symptom/exchange-module",
        signal: Signal::Symptom("exchange-module"),
        summary: "the ExchangeOnlineManagement PowerShell module is missing or broken",
        aliases: &["ExchangeOnlineManagement module errors"],
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
        propagation: false,
        link: "https://learn.microsoft.com/powershell/exchange/exchange-online-powershell-v2",
    },
    Entry {
        key: "symptom/not-sending",
        signal: Signal::Symptom("not-sending"),
        summary: "mail is not sent although OAuth is configured",
        aliases: &["Emails not sending with OAuth enabled"],
        causes: &[WRONG_MAILBOX, NO_FULL_ACCESS, SMTP_AUTH_OFF_MAILBOX],
        retry: Retry::Permanent,
        propagation: true,
        link: LEARN_XOAUTH,
    },
    // ---------------------------------------------------------------- Microsoft Graph
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
        true,
    ),
    graph(
        404,
        "ErrorInvalidUser",
        None,
        "Microsoft Graph knows no such user",
        &[WRONG_MAILBOX],
        Retry::Permanent,
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
        Retry::Transient,
        false,
    ),
];

const TRANSIENT_ENTRA: Cause = Cause {
    id: "entra-transient",
    why: "Entra ID is busy or partly unavailable",
    fix: "Try again later; m365-mailer retries with backoff, honouring Retry-After.",
    commands: &[],
};

const fn aadsts(
    code: u32,
    summary: &'static str,
    aliases: &'static [&'static str],
    causes: &'static [Cause],
    retry: Retry,
    propagation: bool,
) -> Entry {
    Entry {
        key: "aadsts",
        signal: Signal::Aadsts(code),
        summary,
        aliases,
        causes,
        retry,
        propagation,
        link: LEARN_AADSTS,
    }
}

const LEARN_GRAPH_SENDMAIL: &str = "https://learn.microsoft.com/graph/api/user-sendmail";

const fn graph(
    status: u16,
    code: &'static str,
    text: Option<&'static str>,
    summary: &'static str,
    causes: &'static [Cause],
    retry: Retry,
    propagation: bool,
) -> Entry {
    Entry {
        key: "graph",
        signal: Signal::Graph { status, code, text },
        summary,
        aliases: &[],
        causes,
        retry,
        propagation,
        link: LEARN_GRAPH_SENDMAIL,
    }
}

/// The client-credentials documentation, for entries that need the whole flow.
pub const CLIENT_CREDENTIALS_DOCS: &str = LEARN_CLIENT_CREDENTIALS;
/// The certificate-credentials documentation.
pub const CERTIFICATE_DOCS: &str = LEARN_CERTIFICATES;

impl Entry {
    /// Stable identifier: `smtp/535-5.7.3`, `aadsts/7000215`, `symptom/port-blocked`.
    pub fn id(&self) -> String {
        match self.signal {
            Signal::Aadsts(code) => format!("aadsts/{code}"),
            Signal::Graph { status, code, text } => {
                format!(
                    "graph/{status}/{code}{}",
                    text.map_or(String::new(), |t| format!("/{t}"))
                )
            }
            _ => self.key.to_owned(),
        }
    }

    /// Where to read more: Entra's code lookup for AADSTS entries.
    pub fn link(&self) -> String {
        match self.signal {
            Signal::Aadsts(code) => format!("https://login.microsoftonline.com/error?code={code}"),
            _ => self.link.to_owned(),
        }
    }
}
