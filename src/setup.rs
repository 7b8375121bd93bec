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
    let ps = |v: &str| powershell::quote(v).expect("checked");
    let tenant = ps(&spec.tenant);
    let client = ps(&spec.client_id);
    let mailbox = ps(&spec.mailbox);
    let sp = spec.sp_id.as_deref().map_or_else(|| "$sp".to_owned(), ps);
    let name = ps(&spec.display_name);
    let mut s = String::new();
    let mut line = |text: &str| {
        s.push_str(text);
        s.push('\n');
    };
    line(&format!(
        "# m365-mailer setup: {} sends through Exchange Online as app {}",
        spec.mailbox, spec.client_id
    ));
    line(&format!(
        "# in tenant {}{}.",
        spec.tenant,
        if spec.rbac { ", with RBAC for Applications" } else { "" }
    ));
    line("#");
    line("# Part 1: Entra admin center (https://entra.microsoft.com), as a Global or Application Administrator.");
    line("#   a. App registrations → New registration: any name, \"Accounts in this organizational directory only\",");
    line("#      no redirect URI. The Overview page shows the Application (client) ID and the Directory (tenant) ID.");
    match (&spec.certificate, &thumbprint) {
        (Some(path), Some(thumb)) => {
            line("#   b. Certificates & secrets → Certificates → Upload certificate: the public part of");
            line(&format!(
                "#      {} (thumbprint {thumb}). The private key stays on this server.",
                path.display()
            ));
            line(&format!(
                "#      az ad app credential reset --id {} --cert @{} --append",
                spec.client_id,
                sh(&path.display().to_string())
            ));
        }
        _ => {
            line(
                "#   b. Certificates & secrets → New client secret → copy the Value column at once (it is shown only once;",
            );
            line("#      the Secret ID next to it is not the secret). Note the expiry date and renew before it.");
            line(&format!(
                "#      az ad app credential reset --id {} --append --display-name m365-mailer",
                spec.client_id
            ));
        }
    }
    if spec.rbac {
        line("#   c. API permissions: do NOT add SMTP.SendAsApp. With RBAC for Applications the permission is granted");
        line("#      in Exchange below, limited to the mailboxes of a management scope; the Entra permission would");
        line("#      trigger the FullAccess check instead.");
    } else {
        line("#   c. API permissions → Add a permission → APIs my organization uses → Office 365 Exchange Online →");
        line("#      Application permissions → SMTP.SendAsApp → Add permissions, then \"Grant admin consent\".");
        line(&format!(
            "#      az ad app permission admin-consent --id {}",
            spec.client_id
        ));
    }
    line("#   d. Enterprise applications → the app → Overview → Object ID. This is the service principal's object id");
    line("#      that Exchange needs. It is NOT the Object ID shown under App registrations.");
    line(&format!(
        "#      az ad sp show --id {} --query id -o tsv",
        spec.client_id
    ));
    line("#");
    line("# Part 2: Exchange Online PowerShell (Azure Cloud Shell has the module; elsewhere:");
    line("#   Install-Module -Name ExchangeOnlineManagement -Scope CurrentUser).");
    line("");
    line(&format!("Connect-ExchangeOnline -Organization {tenant}"));
    if spec.sp_id.is_none() {
        line("");
        line("# Paste the Enterprise application's Object ID (step 1d):");
        line("$sp = Read-Host 'Enterprise application Object ID'");
    }
    line("");
    line("# Register the app's service principal in Exchange. -ObjectId is the Enterprise application's Object ID;");
    line("# the App registration's Object ID here is the most common cause of 535 5.7.3.");
    line(&format!(
        "New-ServicePrincipal -AppId {client} -ObjectId {sp} -DisplayName {name}"
    ));
    line("");
    if spec.rbac {
        let filter = format!("PrimarySmtpAddress -eq {}", opath(&spec.mailbox));
        line("# Limit the app to this mailbox with a management scope, and give it the SMTP role for that scope.");
        line(&format!(
            "New-ManagementScope -Name {} -RecipientRestrictionFilter {}",
            ps("m365-mailer scope"),
            ps(&filter)
        ));
        line(&format!(
            "New-ManagementRoleAssignment -Name {} -Role 'Application SMTP.SendAsApp' -App {sp} -CustomResourceScope {}",
            ps("m365-mailer SMTP"),
            ps("m365-mailer scope")
        ));
    } else {
        line("# Let the service principal open the mailbox it authenticates as, and send as it (the guides grant");
        line("# both; FullAccess is what SMTP checks, SendAs keeps Send-As checks quiet).");
        line(&format!(
            "Add-MailboxPermission -Identity {mailbox} -User {sp} -AccessRights FullAccess -AutoMapping $false"
        ));
        line(&format!(
            "Add-RecipientPermission -Identity {mailbox} -Trustee {sp} -AccessRights SendAs -Confirm:$false"
        ));
    }
    for other in &spec.send_as {
        line(&format!("# Send as {other} too (list it in allowed_senders as well)."));
        line(&format!(
            "Add-RecipientPermission -Identity {} -Trustee {sp} -AccessRights SendAs -Confirm:$false",
            ps(other)
        ));
    }
    line("");
    line("# Turn SMTP AUTH on for this mailbox ($false means enabled). Security defaults in Entra ID must be off.");
    line(&format!(
        "Set-CASMailbox -Identity {mailbox} -SmtpClientAuthenticationDisabled $false"
    ));
    line("# Or for the whole organisation: Set-TransportConfig -SmtpClientAuthenticationDisabled $false");
    line("");
    line("# Check:");
    line(&format!(
        "Get-ServicePrincipal | Where-Object AppId -eq {client} | Format-List DisplayName, AppId, ObjectId"
    ));
    if spec.rbac {
        line(&format!(
            "Get-ManagementRoleAssignment -RoleAssignee {sp} | Format-List Name, Role, CustomResourceScope"
        ));
    } else {
        line(&format!(
            "Get-MailboxPermission -Identity {mailbox} | Where-Object AccessRights -like '*FullAccess*'"
        ));
    }
    line(&format!("Get-RecipientPermission -Identity {mailbox}"));
    line(&format!(
        "Get-CASMailbox -Identity {mailbox} | Format-List SmtpClientAuthenticationDisabled"
    ));
    line("");
    line("# Part 3: changes take 5 to 15 minutes (RBAC up to an hour) to reach every server. Then:");
    line("#   m365-mailer doctor --send-test <your address>");
    Ok(s)
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
