//! `setup`: the Entra ID and Exchange Online steps for the user's own ids, as a commented
//! PowerShell script with the portal steps and `az` equivalents. Every value is checked and
//! quoted, so a hostile or mistyped one cannot become a command.

use std::path::Path;

use crate::powershell::{self, Unquotable};

/// What to set up.
#[derive(Debug, Clone, Default)]
pub(crate) struct Spec {
    /// Directory (tenant) ID or a verified domain.
    pub(crate) tenant: String,
    /// Application (client) ID.
    pub(crate) client_id: String,
    /// The mailbox the app sends as.
    pub(crate) mailbox: String,
    /// Enterprise application Object ID, when known.
    pub(crate) sp_id: Option<String>,
    /// Other addresses the app should send as (SendAs).
    pub(crate) send_as: Vec<String>,
    /// A certificate to upload instead of creating a secret.
    pub(crate) certificate: Option<std::path::PathBuf>,
    /// Display name for the service principal in Exchange.
    pub(crate) display_name: String,
    /// RBAC for Applications instead of the SMTP.SendAsApp permission and FullAccess.
    pub(crate) rbac: bool,
}

/// A value that cannot go into the script.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SetupError {
    /// Not a GUID where one is needed.
    #[error("--{flag} `{value}` is not a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)")]
    NotGuid {
        /// The flag.
        flag: &'static str,
        /// The value, escaped.
        value: String,
    },
    /// Neither a GUID nor a domain.
    #[error("--tenant `{0}` is neither a GUID nor a domain")]
    BadTenant(String),
    /// Not an address.
    #[error("--{flag} `{value}` is not an email address")]
    BadAddress {
        /// The flag.
        flag: &'static str,
        /// The value, escaped.
        value: String,
    },
    /// A value with a line break or control character.
    #[error(transparent)]
    Unquotable(#[from] Unquotable),
    /// The certificate could not be read.
    #[error("cannot read the certificate {path}: {detail}")]
    Certificate {
        /// The file.
        path: std::path::PathBuf,
        /// What failed.
        detail: String,
    },
}

fn guid(flag: &'static str, value: &str) -> Result<(), SetupError> {
    uuid::Uuid::try_parse(value).map(drop).map_err(|_| SetupError::NotGuid {
        flag,
        value: value.escape_debug().to_string(),
    })
}

fn address(flag: &'static str, value: &str) -> Result<(), SetupError> {
    powershell::quote(value)?;
    crate::message::check_address(value).map_err(|_| SetupError::BadAddress {
        flag,
        value: value.escape_debug().to_string(),
    })
}

/// Checks the spec; returns the certificate's SHA-1 thumbprint when one is given.
fn check(spec: &Spec) -> Result<Option<String>, SetupError> {
    if uuid::Uuid::try_parse(&spec.tenant).is_err() && !crate::message::is_domain(&spec.tenant) {
        return Err(SetupError::BadTenant(spec.tenant.escape_debug().to_string()));
    }
    guid("client-id", &spec.client_id)?;
    if let Some(sp) = &spec.sp_id {
        guid("sp-id", sp)?;
    }
    address("mailbox", &spec.mailbox)?;
    for a in &spec.send_as {
        address("send-as", a)?;
    }
    powershell::quote(&spec.display_name)?;
    match &spec.certificate {
        Some(path) => {
            // The path is written into the script's comments and an `az` command: a line break
            // in it would start a line of its own.
            powershell::quote(&path.to_string_lossy())?;
            certificate_thumbprint(path).map(Some)
        }
        None => Ok(None),
    }
}

fn certificate_thumbprint(path: &Path) -> Result<String, SetupError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    use sha1::Digest as _;
    let error = |detail: String| SetupError::Certificate {
        path: path.to_owned(),
        detail,
    };
    let bytes = std::fs::read(path).map_err(|e| error(e.to_string()))?;
    let der = CertificateDer::from_pem_slice(&bytes).map_or(bytes, |c| c.to_vec());
    x509_parser::parse_x509_certificate(&der).map_err(|e| error(format!("not a certificate: {e}")))?;
    Ok(sha1::Sha1::digest(&der).iter().map(|b| format!("{b:02X}")).collect())
}

/// POSIX shell quoting for the `az` lines (file paths).
fn sh(value: &str) -> String {
    format!("'{}'", value.replace('\'', "'\\''"))
}

/// The script.
pub(crate) fn script(spec: &Spec) -> Result<String, SetupError> {
    let thumbprint = check(spec)?;
    let quoted = Quoted::new(spec);
    let mut s = Script::default();
    header(&mut s, spec);
    entra_steps(&mut s, spec, thumbprint.as_deref());
    register_service_principal(&mut s, spec, &quoted);
    if spec.rbac {
        management_scope(&mut s, spec, &quoted);
    } else {
        mailbox_permissions(&mut s, &quoted);
    }
    send_as_permissions(&mut s, spec, &quoted);
    enable_smtp_auth(&mut s, &quoted);
    verification(&mut s, spec, &quoted);
    closing(&mut s);
    Ok(s.0)
}

/// The spec's values as PowerShell literals; `sp` is `$sp` when the script asks for the Object ID.
struct Quoted {
    tenant: String,
    client: String,
    mailbox: String,
    sp: String,
    name: String,
}

impl Quoted {
    /// Quotes the values of a spec that passed `check`.
    fn new(spec: &Spec) -> Self {
        Self {
            tenant: ps(&spec.tenant),
            client: ps(&spec.client_id),
            mailbox: ps(&spec.mailbox),
            sp: spec.sp_id.as_deref().map_or_else(|| "$sp".to_owned(), ps),
            name: ps(&spec.display_name),
        }
    }
}

/// Quotes a value for PowerShell that `check` has already accepted.
fn ps(value: &str) -> String {
    powershell::quote(value).expect("checked")
}

/// The script's text, written line by line.
#[derive(Default)]
struct Script(String);

impl Script {
    /// Appends one line.
    fn line(&mut self, text: &str) {
        self.0.push_str(text);
        self.0.push('\n');
    }
}

/// The opening comment: who sends as what, in which tenant.
fn header(s: &mut Script, spec: &Spec) {
    s.line(&format!(
        "# m365-mailer setup: {} sends through Exchange Online as app {}",
        spec.mailbox, spec.client_id
    ));
    s.line(&format!(
        "# in tenant {}{}.",
        spec.tenant,
        if spec.rbac { ", with RBAC for Applications" } else { "" }
    ));
    s.line("#");
}

/// Part 1, the Entra admin center: app registration, credential, permission, Object ID.
fn entra_steps(s: &mut Script, spec: &Spec, thumbprint: Option<&str>) {
    s.line("# Part 1: Entra admin center (https://entra.microsoft.com), as a Global or Application Administrator.");
    s.line(
        "#   a. App registrations → New registration: any name, \"Accounts in this organizational directory only\",",
    );
    s.line(
        "#      no redirect URI. The Overview page shows the Application (client) ID and the Directory (tenant) ID.",
    );
    credential_step(s, spec, thumbprint);
    api_permission_step(s, spec);
    s.line(
        "#   d. Enterprise applications → the app → Overview → Object ID. This is the service principal's object id",
    );
    s.line("#      that Exchange needs. It is NOT the Object ID shown under App registrations.");
    s.line(&format!(
        "#      az ad sp show --id {} --query id -o tsv",
        spec.client_id
    ));
    s.line("#");
}

/// Step 1b: upload the certificate, or create a client secret.
fn credential_step(s: &mut Script, spec: &Spec, thumbprint: Option<&str>) {
    match (&spec.certificate, thumbprint) {
        (Some(path), Some(thumb)) => {
            s.line("#   b. Certificates & secrets → Certificates → Upload certificate: the public part of");
            s.line(&format!(
                "#      {} (thumbprint {thumb}). The private key stays on this server.",
                path.display()
            ));
            s.line(&format!(
                "#      az ad app credential reset --id {} --cert @{} --append",
                spec.client_id,
                sh(&path.display().to_string())
            ));
        }
        _ => {
            s.line(
                "#   b. Certificates & secrets → New client secret → copy the Value column at once (it is shown only once;",
            );
            s.line("#      the Secret ID next to it is not the secret). Note the expiry date and renew before it.");
            s.line(&format!(
                "#      az ad app credential reset --id {} --append --display-name m365-mailer",
                spec.client_id
            ));
        }
    }
}

/// Step 1c: the SMTP.SendAsApp permission with admin consent, or why RBAC goes without it.
fn api_permission_step(s: &mut Script, spec: &Spec) {
    if spec.rbac {
        s.line(
            "#   c. API permissions: do NOT add SMTP.SendAsApp. With RBAC for Applications the permission is granted",
        );
        s.line("#      in Exchange below, limited to the mailboxes of a management scope; the Entra permission would");
        s.line("#      trigger the FullAccess check instead.");
    } else {
        s.line("#   c. API permissions → Add a permission → APIs my organization uses → Office 365 Exchange Online →");
        s.line("#      Application permissions → SMTP.SendAsApp → Add permissions, then \"Grant admin consent\".");
        s.line(&format!(
            "#      az ad app permission admin-consent --id {}",
            spec.client_id
        ));
    }
}

/// Part 2 up to `New-ServicePrincipal`: connect to Exchange Online and register the app there.
fn register_service_principal(s: &mut Script, spec: &Spec, q: &Quoted) {
    s.line("# Part 2: Exchange Online PowerShell (Azure Cloud Shell has the module; elsewhere:");
    s.line("#   Install-Module -Name ExchangeOnlineManagement -Scope CurrentUser).");
    let Quoted {
        tenant,
        client,
        sp,
        name,
        ..
    } = q;
    s.line("");
    s.line(&format!("Connect-ExchangeOnline -Organization {tenant}"));
    if spec.sp_id.is_none() {
        s.line("");
        s.line("# Paste the Enterprise application's Object ID (step 1d):");
        s.line("$sp = Read-Host 'Enterprise application Object ID'");
    }
    s.line("");
    s.line("# Register the app's service principal in Exchange. -ObjectId is the Enterprise application's Object ID;");
    s.line("# the App registration's Object ID here is the most common cause of 535 5.7.3.");
    s.line(&format!(
        "New-ServicePrincipal -AppId {client} -ObjectId {sp} -DisplayName {name}"
    ));
    s.line("");
}

/// RBAC for Applications: a management scope of this mailbox and the SMTP role for it.
fn management_scope(s: &mut Script, spec: &Spec, q: &Quoted) {
    let sp = &q.sp;
    let filter = format!("PrimarySmtpAddress -eq {}", opath(&spec.mailbox));
    s.line("# Limit the app to this mailbox with a management scope, and give it the SMTP role for that scope.");
    s.line(&format!(
        "New-ManagementScope -Name {} -RecipientRestrictionFilter {}",
        ps("m365-mailer scope"),
        ps(&filter)
    ));
    s.line(&format!(
        "New-ManagementRoleAssignment -Name {} -Role 'Application SMTP.SendAsApp' -App {sp} -CustomResourceScope {}",
        ps("m365-mailer SMTP"),
        ps("m365-mailer scope")
    ));
}

/// Without RBAC: FullAccess and SendAs on the mailbox for the service principal.
fn mailbox_permissions(s: &mut Script, q: &Quoted) {
    let Quoted { mailbox, sp, .. } = q;
    s.line("# Let the service principal open the mailbox it authenticates as, and send as it (the guides grant");
    s.line("# both; FullAccess is what SMTP checks, SendAs keeps Send-As checks quiet).");
    s.line(&format!(
        "Add-MailboxPermission -Identity {mailbox} -User {sp} -AccessRights FullAccess -AutoMapping $false"
    ));
    s.line(&format!(
        "Add-RecipientPermission -Identity {mailbox} -Trustee {sp} -AccessRights SendAs -Confirm:$false"
    ));
}

/// SendAs on each other address the app sends as.
fn send_as_permissions(s: &mut Script, spec: &Spec, q: &Quoted) {
    let sp = &q.sp;
    for other in &spec.send_as {
        s.line(&format!("# Send as {other} too (list it in allowed_senders as well)."));
        s.line(&format!(
            "Add-RecipientPermission -Identity {} -Trustee {sp} -AccessRights SendAs -Confirm:$false",
            ps(other)
        ));
    }
}

/// SMTP AUTH on for the mailbox (or the organisation).
fn enable_smtp_auth(s: &mut Script, q: &Quoted) {
    let mailbox = &q.mailbox;
    s.line("");
    s.line("# Turn SMTP AUTH on for this mailbox ($false means enabled). Security defaults in Entra ID must be off.");
    s.line(&format!(
        "Set-CASMailbox -Identity {mailbox} -SmtpClientAuthenticationDisabled $false"
    ));
    s.line("# Or for the whole organisation: Set-TransportConfig -SmtpClientAuthenticationDisabled $false");
    s.line("");
}

/// The commands that show what was set up.
fn verification(s: &mut Script, spec: &Spec, q: &Quoted) {
    let Quoted {
        client, mailbox, sp, ..
    } = q;
    s.line("# Check:");
    s.line(&format!(
        "Get-ServicePrincipal | Where-Object AppId -eq {client} | Format-List DisplayName, AppId, ObjectId"
    ));
    if spec.rbac {
        s.line(&format!(
            "Get-ManagementRoleAssignment -RoleAssignee {sp} | Format-List Name, Role, CustomResourceScope"
        ));
    } else {
        s.line(&format!(
            "Get-MailboxPermission -Identity {mailbox} | Where-Object AccessRights -like '*FullAccess*'"
        ));
    }
    s.line(&format!("Get-RecipientPermission -Identity {mailbox}"));
    s.line(&format!(
        "Get-CASMailbox -Identity {mailbox} | Format-List SmtpClientAuthenticationDisabled"
    ));
}

/// Part 3: wait for the changes to spread, then test with `doctor`.
fn closing(s: &mut Script) {
    s.line("");
    s.line("# Part 3: changes take 5 to 15 minutes (RBAC up to an hour) to reach every server. Then:");
    s.line("#   m365-mailer doctor --send-test <your address>");
}

/// An OPATH string literal (inside a filter): single quotes doubled.
fn opath(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Spec {
        Spec {
            tenant: "contoso.onmicrosoft.com".into(),
            client_id: "0b7e2f4c-5d6a-4e8b-9c1d-3f2a4b6c8d0e".into(),
            mailbox: "mailer@contoso.com".into(),
            sp_id: Some("6d5c4b3a-2f1e-4d0c-9b8a-7f6e5d4c3b2a".into()),
            display_name: "m365-mailer".into(),
            ..Spec::default()
        }
    }

    #[test]
    fn the_script_names_the_right_object_id() {
        let text = script(&spec()).unwrap();
        assert!(text.contains("New-ServicePrincipal -AppId '0b7e2f4c-5d6a-4e8b-9c1d-3f2a4b6c8d0e' -ObjectId '6d5c4b3a-2f1e-4d0c-9b8a-7f6e5d4c3b2a'"));
        assert!(text.contains("NOT the Object ID shown under App registrations"));
        let rbac = script(&Spec { rbac: true, ..spec() }).unwrap();
        assert!(
            rbac.contains("-RecipientRestrictionFilter 'PrimarySmtpAddress -eq ''mailer@contoso.com'''"),
            "{rbac}"
        );
        assert!(!rbac.contains("Add-MailboxPermission"));
    }

    #[test]
    fn hostile_values_are_quoted_or_refused() {
        let quoted = Spec {
            mailbox: "o'brien$home`x@contoso.com".into(),
            send_as: vec!["o\u{2019}neil\u{2018}$x@contoso.com".into()],
            display_name: "a'; Remove-Mailbox -Identity *; $(Stop-Computer) '".into(),
            ..spec()
        };
        let text = script(&quoted).unwrap();
        assert!(text.contains("-Identity 'o''brien$home`x@contoso.com'"), "{text}");
        assert!(
            text.contains("-DisplayName 'a''; Remove-Mailbox -Identity *; $(Stop-Computer) '''"),
            "{text}"
        );
        assert!(
            text.contains("'o\u{2019}\u{2019}neil\u{2018}\u{2018}$x@contoso.com'"),
            "{text}"
        );
        assert!(
            !text
                .lines()
                .any(|l| l.starts_with("Stop-Computer") || l.starts_with("Remove-Mailbox"))
        );

        let refused = [
            Spec {
                tenant: "contoso.com'; Stop-Computer; '".into(),
                ..spec()
            },
            Spec {
                client_id: "$(Stop-Computer)".into(),
                ..spec()
            },
            Spec {
                mailbox: "x$(Stop-Computer)@contoso.com".into(),
                ..spec()
            },
            Spec {
                mailbox: "a@contoso.com\nStop-Computer".into(),
                ..spec()
            },
            Spec {
                display_name: "x\r\nStop-Computer".into(),
                ..spec()
            },
            Spec {
                sp_id: Some("`whoami`".into()),
                ..spec()
            },
        ];
        for spec in refused {
            assert!(script(&spec).is_err(), "{spec:?}");
        }
    }
}
