//! What the families of the catalog share: Microsoft's documentation and the causes that more
//! than one failure has.

use super::Cause;

pub(super) const LEARN_XOAUTH: &str = "https://learn.microsoft.com/exchange/client-developer/legacy-protocols/how-to-authenticate-an-imap-pop-smtp-application-by-using-oauth";
pub(super) const LEARN_SMTP_AUTH: &str =
    "https://learn.microsoft.com/exchange/clients-and-mobile-in-exchange-online/authenticated-client-smtp-submission";
pub(super) const LEARN_SUBMISSION: &str =
    "https://learn.microsoft.com/exchange/troubleshoot/send-emails/smtp-submission-improvements";
pub(super) const LEARN_NDR: &str =
    "https://learn.microsoft.com/exchange/troubleshoot/email-delivery/ndr/non-delivery-reports-in-exchange-online";
pub(super) const LEARN_CONTINUOUS: &str =
    "https://learn.microsoft.com/exchange/mail-flow-best-practices/continuous-error-throttling-smtp-auth-submissions";
pub(super) const LEARN_7XX: &str = "https://learn.microsoft.com/exchange/troubleshoot/email-delivery/ndr/fix-error-codes-550-5-7-703-550-5-7-705-550-5-7-708-550-5-7-750";
pub(super) const LEARN_AADSTS: &str = "https://learn.microsoft.com/entra/identity-platform/reference-error-codes";

pub(super) const CONNECT: &str = "Connect-ExchangeOnline -Organization {tenant}";

// Causes shared by several entries.
pub(super) const NO_ADMIN_CONSENT: Cause = Cause {
    id: "no-admin-consent",
    why: "the app's SMTP.SendAsApp permission has no admin consent, so the token carries no role",
    fix: "Entra admin center → App registrations → the app → API permissions: add Office 365 Exchange Online → Application permissions → SMTP.SendAsApp, then \"Grant admin consent\".",
    commands: &["az ad app permission admin-consent --id {client_id}"],
};
pub(super) const SP_NOT_REGISTERED: Cause = Cause {
    id: "sp-not-registered",
    why: "the app's service principal is not registered in Exchange Online (Entra permissions alone are not enough)",
    fix: "Register it with the Object ID of the Enterprise application (not of the App registration).",
    commands: &[CONNECT, "New-ServicePrincipal -AppId {client_id} -ObjectId {sp_id}"],
};
pub(super) const SP_WRONG_OBJECT_ID: Cause = Cause {
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
pub(super) const NO_FULL_ACCESS: Cause = Cause {
    id: "no-full-access",
    why: "the service principal has no FullAccess on the mailbox it authenticates as",
    fix: "Grant FullAccess on the mailbox to the service principal.",
    commands: &[
        CONNECT,
        "Add-MailboxPermission -Identity {mailbox} -User {sp_id} -AccessRights FullAccess",
    ],
};
pub(super) const NO_SEND_AS: Cause = Cause {
    id: "no-send-as",
    why: "the From address (or envelope sender) is not the authenticated mailbox and the app has no SendAs right on it",
    fix: "Send as the mailbox, or grant SendAs on the From address and list it in allowed_senders.",
    commands: &[
        CONNECT,
        "Add-RecipientPermission -Identity {from} -Trustee {sp_id} -AccessRights SendAs -Confirm:$false",
    ],
};
pub(super) const SMTP_AUTH_OFF_TENANT: Cause = Cause {
    id: "smtp-auth-disabled-tenant",
    why: "SMTP AUTH is turned off for the organisation (the default since 2020) and the mailbox follows it",
    fix: "Enable SMTP AUTH for this mailbox only (preferred), or for the organisation.",
    commands: &[
        CONNECT,
        "Set-CASMailbox -Identity {mailbox} -SmtpClientAuthenticationDisabled $false",
        "Set-TransportConfig -SmtpClientAuthenticationDisabled $false",
    ],
};
pub(super) const SMTP_AUTH_OFF_MAILBOX: Cause = Cause {
    id: "smtp-auth-disabled-mailbox",
    why: "SMTP AUTH is turned off for this mailbox (Set-CASMailbox), which wins over the organisation setting",
    fix: "Enable SMTP AUTH for the mailbox; the setting is not shown in the Exchange admin center.",
    commands: &[
        CONNECT,
        "Set-CASMailbox -Identity {mailbox} -SmtpClientAuthenticationDisabled $false",
        "Get-CASMailbox -Identity {mailbox} | Format-List SmtpClientAuthenticationDisabled",
    ],
};
pub(super) const SECURITY_DEFAULTS: Cause = Cause {
    id: "security-defaults",
    why: "Entra ID security defaults are on; they block SMTP AUTH for the whole tenant",
    fix: "Entra admin center → Overview → Properties → Manage security defaults: turn them off (replace them with Conditional Access policies).",
    commands: &[],
};
pub(super) const WRONG_SECRET: Cause = Cause {
    id: "wrong-secret",
    why: "the client secret is wrong: often the Secret ID (a GUID) was copied instead of the secret's Value, or a character was lost",
    fix: "Entra admin center → App registrations → the app → Certificates & secrets → New client secret; copy the Value column at once (it is shown only once).",
    commands: &["az ad app credential reset --id {client_id} --append --display-name m365-mailer"],
};
pub(super) const EXPIRED_SECRET: Cause = Cause {
    id: "expired-secret",
    why: "the client secret has expired",
    fix: "Create a new client secret (Certificates & secrets), update the configuration, and set a reminder before it expires; or use a certificate.",
    commands: &["az ad app credential reset --id {client_id} --append --display-name m365-mailer"],
};
pub(super) const WRONG_SCOPE: Cause = Cause {
    id: "wrong-scope",
    why: "the scope is not the Exchange resource followed by /.default",
    fix: "Use the scope https://outlook.office365.com/.default (GCC High: https://outlook.office365.us/.default).",
    commands: &[],
};
pub(super) const PROPAGATION: Cause = Cause {
    id: "propagation",
    why: "a recent change (consent, registration, permission) has not reached every server yet",
    fix: "Wait 5 to 15 minutes after the last change, then try again.",
    commands: &[],
};
pub(super) const WRONG_TENANT: Cause = Cause {
    id: "wrong-tenant",
    why: "the tenant is not the one the app is registered in (or a typo in the Directory (tenant) ID or domain)",
    fix: "Copy the Directory (tenant) ID from the app registration's Overview page.",
    commands: &[],
};
pub(super) const UNKNOWN_CLIENT: Cause = Cause {
    id: "unknown-client",
    why: "no app with this client id exists in the tenant (a typo, the Object ID used instead of the Application (client) ID, or the wrong tenant)",
    fix: "Copy the Application (client) ID from the app registration's Overview page, and check the tenant.",
    commands: &[],
};
pub(super) const CERT_NOT_REGISTERED: Cause = Cause {
    id: "certificate-not-registered",
    why: "the certificate that signed the assertion is not uploaded to the app registration (or the private key belongs to another certificate)",
    fix: "Upload the certificate's public part (.cer/.pem) under App registrations → the app → Certificates & secrets → Certificates.",
    commands: &["az ad app credential reset --id {client_id} --cert @certificate.pem --append"],
};
pub(super) const CLOCK_SKEW: Cause = Cause {
    id: "clock-skew",
    why: "the client assertion is outside its validity: this machine's clock is off by more than 5 minutes, or an assertion was reused after it expired",
    fix: "Synchronise the clock (NTP) and try again.",
    commands: &["timedatectl status"],
};
pub(super) const STALE_FEDERATED_TOKEN: Cause = Cause {
    id: "stale-federated-token",
    why: "the federated token (AZURE_FEDERATED_TOKEN_FILE, federated_token_file) has expired: the file is a copy, or nothing refreshes it",
    fix: "Point federated_token_file at the projected service account token the workload identity webhook mounts (the kubelet replaces it before it expires); do not copy the token elsewhere.",
    commands: &["kubectl describe pod POD | grep -A3 azure-identity-token"],
};
pub(super) const FIC_ISSUER: Cause = Cause {
    id: "federated-issuer",
    why: "no federated credential of the app has the token's issuer (`iss`); the match is exact and case-sensitive, a trailing slash included",
    fix: "Add a federated credential whose Issuer is the cluster's OIDC issuer URL exactly as the token carries it (m365-mailer doctor shows it), or correct the existing one.",
    commands: &[
        "az ad app federated-credential list --id {client_id}",
        "az aks show --name CLUSTER --resource-group GROUP --query oidcIssuerProfile.issuerUrl --output tsv",
    ],
};
pub(super) const FIC_SUBJECT: Cause = Cause {
    id: "federated-subject",
    why: "no federated credential of the app with this issuer has the token's subject (`sub`, for Kubernetes system:serviceaccount:NAMESPACE:NAME); the match is exact and case-sensitive",
    fix: "Create a federated credential for this service account (fic.json with name, issuer, subject and audiences [\"api://AzureADTokenExchange\"]), or run the workload under the service account one names.",
    commands: &[
        "az ad app federated-credential list --id {client_id}",
        "az ad app federated-credential create --id {client_id} --parameters fic.json",
    ],
};
pub(super) const FIC_AUDIENCE: Cause = Cause {
    id: "federated-audience",
    why: "the token's audience (`aud`) is not among the federated credential's audiences (api://AzureADTokenExchange by default)",
    fix: "Project the service account token with the audience api://AzureADTokenExchange (the workload identity webhook does), or add its audience to the federated credential.",
    commands: &["az ad app federated-credential list --id {client_id}"],
};
pub(super) const WRONG_MAILBOX: Cause = Cause {
    id: "mailbox-not-found",
    why: "the mailbox named as the SMTP user does not exist in the token's tenant",
    fix: "Set mailbox to the primary address of an existing mailbox of the tenant (a licensed user or a shared mailbox).",
    commands: &[CONNECT, "Get-Mailbox -Identity {mailbox}"],
};
pub(super) const FIREWALL: Cause = Cause {
    id: "port-blocked",
    why: "outbound connections to the SMTP port are blocked (firewalls and many hosting providers block 587 and 25)",
    fix: "Allow outbound TCP to {smtp_host}:{smtp_port}, or send through Microsoft Graph over HTTPS instead.",
    commands: &[],
};
