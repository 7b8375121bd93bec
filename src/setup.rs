//! `setup`: the steps for the user's own ids, as a commented PowerShell script with the portal
//! steps and `az` equivalents, for each Microsoft service (fact sheet §1.6 and §8):
//!
//! - `exchange` (`exchange.rs`): a mailbox on Exchange Online; RBAC for Applications by default,
//!   the SMTP.SendAsApp permission and mailbox permissions with `--per-mailbox`;
//! - `hve` (`hve.rs`): a High Volume Email account and the app it allows;
//! - `acs` (`acs.rs`): Azure Communication Services Email, its role and SMTP Username.
//!
//! Every value is checked (`check.rs`) and quoted, so a hostile or mistyped one cannot become a
//! command.

mod acs;
pub(crate) mod apply;
mod check;
mod exchange;
mod hve;
#[cfg(test)]
mod tests;

use std::path::PathBuf;

use crate::powershell::{self, Unquotable};
use crate::service::Service;

/// What to set up.
#[derive(Debug, Clone, Default)]
pub(crate) struct Spec {
    /// The Microsoft service the app sends through.
    pub(crate) service: Service,
    /// Directory (tenant) ID or a verified domain.
    pub(crate) tenant: String,
    /// Application (client) ID.
    pub(crate) client_id: String,
    /// The address that sends: the mailbox (exchange), the HVE account (hve), the MailFrom
    /// sender address (acs, where it may be left out).
    pub(crate) mailbox: Option<String>,
    /// Enterprise application Object ID, when known (exchange, hve).
    pub(crate) sp_id: Option<String>,
    /// Other addresses the app should send as (exchange).
    pub(crate) send_as: Vec<String>,
    /// A certificate to upload instead of creating a secret.
    pub(crate) certificate: Option<PathBuf>,
    /// Display name of the service principal in Exchange; for acs the SMTP Username resource's
    /// name.
    pub(crate) display_name: String,
    /// How Exchange lets the app use the mailbox, when asked for (exchange; default RBAC).
    pub(crate) access: Option<Access>,
    /// The Azure ids of an ACS setup.
    pub(crate) acs: AcsIds,
    /// `setup --apply` has done the Entra part: the script starts at Exchange.
    pub(crate) entra_done: bool,
}

impl Spec {
    /// The sending address; `check` has made sure it is there where the service needs one.
    fn address(&self) -> &str {
        self.mailbox.as_deref().unwrap_or_default()
    }
}

/// How Exchange Online lets the app send as the mailbox.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Access {
    /// RBAC for Applications: the role `Application SMTP.SendAsApp` for a management scope.
    #[default]
    Rbac,
    /// The Entra permission SMTP.SendAsApp with admin consent, FullAccess and SendAs.
    PerMailbox,
}

/// Azure Communication Services: where the resource is and the SMTP Username to create. Each
/// left out is asked for when the script runs.
#[derive(Debug, Clone, Default)]
pub(crate) struct AcsIds {
    /// Subscription ID (GUID).
    pub(crate) subscription: Option<String>,
    /// Resource group of the Communication Services resource.
    pub(crate) resource_group: Option<String>,
    /// Name of the Communication Services resource.
    pub(crate) resource: Option<String>,
    /// The SMTP Username's user name (what SMTP AUTH LOGIN sends).
    pub(crate) smtp_username: Option<String>,
}

impl AcsIds {
    /// Whether any was given.
    fn any(&self) -> Option<&'static str> {
        [
            (self.subscription.is_some(), "subscription"),
            (self.resource_group.is_some(), "resource-group"),
            (self.resource.is_some(), "acs-resource"),
            (self.smtp_username.is_some(), "smtp-username"),
        ]
        .into_iter()
        .find_map(|(given, flag)| given.then_some(flag))
    }
}

/// A value that cannot go into the script, or flags that do not fit together.
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
    /// A name outside the characters this tool accepts for it.
    #[error("--{flag} `{value}` is not {rule}")]
    BadName {
        /// The flag.
        flag: &'static str,
        /// The value, escaped.
        value: String,
        /// What it must be.
        rule: &'static str,
    },
    /// The service needs the sending address.
    #[error("--service {service} needs --mailbox: {what}")]
    MissingMailbox {
        /// The service.
        service: Service,
        /// What the address is for it.
        what: &'static str,
    },
    /// A flag of another service.
    #[error("--{flag} applies to --service {applies}, not to --service {service}")]
    NotForService {
        /// The flag.
        flag: &'static str,
        /// The services it applies to.
        applies: &'static str,
        /// The service asked for.
        service: Service,
    },
    /// A value with a line break or control character.
    #[error(transparent)]
    Unquotable(#[from] Unquotable),
    /// The certificate could not be read.
    #[error("cannot read the certificate {path}: {detail}")]
    Certificate {
        /// The file.
        path: PathBuf,
        /// What failed.
        detail: String,
    },
}

/// The script.
pub(crate) fn script(spec: &Spec) -> Result<String, SetupError> {
    let thumbprint = check::check(spec)?;
    let mut s = Script::default();
    match spec.service {
        Service::Exchange => exchange::script(&mut s, spec, thumbprint.as_deref()),
        Service::Hve => hve::script(&mut s, spec, thumbprint.as_deref()),
        Service::Acs => acs::script(&mut s, spec, thumbprint.as_deref()),
    }
    Ok(s.0)
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

    /// Appends comment lines, each prefixed with `# `.
    fn comments(&mut self, lines: &[&str]) {
        for l in lines {
            let text = format!("# {l}");
            self.line(text.trim_end());
        }
    }
}

/// Quotes a value for PowerShell that `check` has already accepted.
fn ps(value: &str) -> String {
    powershell::quote(value).expect("checked")
}

/// POSIX shell quoting for the `az` lines in comments (file paths).
fn sh(value: &str) -> String {
    format!("'{}'", value.replace('\'', "'\\''"))
}

/// An OPATH string literal (inside a filter): single quotes doubled.
fn opath(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// A TOML basic string, for the config lines the script shows.
fn toml(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Part 1 a–b, the same for every service: the app registration and its credential.
fn app_registration(s: &mut Script, spec: &Spec, thumbprint: Option<&str>) {
    s.line(
        "#   a. App registrations → New registration: any name, \"Accounts in this organizational directory only\",",
    );
    s.line(
        "#      no redirect URI. The Overview page shows the Application (client) ID and the Directory (tenant) ID.",
    );
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

/// Part 1 when `setup --apply` has done it: what it made, in place of the portal steps.
fn entra_done(s: &mut Script, spec: &Spec) {
    s.line("# Part 1 (Entra ID) is done: m365-mailer setup --apply made or found the app registration");
    s.line(&format!(
        "# {} with its Enterprise application (Object ID {}), its permission and its secret.",
        spec.client_id,
        spec.sp_id.as_deref().unwrap_or_default()
    ));
    s.line("#");
}

/// The step that finds the Enterprise application's Object ID.
fn object_id_step(s: &mut Script, spec: &Spec, letter: char, used_by: &str, also: Option<&str>) {
    s.line(&format!(
        "#   {letter}. Enterprise applications → the app → Overview → Object ID. This is the service principal's object id"
    ));
    s.line(&format!(
        "#      that {used_by} needs. It is NOT the Object ID shown under App registrations."
    ));
    if let Some(also) = also {
        s.line(&format!("#      {also}"));
    }
    s.line(&format!(
        "#      az ad sp show --id {} --query id -o tsv",
        spec.client_id
    ));
}

/// Connects to Exchange Online and, without `--sp-id`, asks for the Object ID; returns how the
/// script names it (a literal, or `$sp`).
fn connect_exchange(s: &mut Script, spec: &Spec, letter: char) -> String {
    s.line("# Part 2: Exchange Online PowerShell (Azure Cloud Shell has the module; elsewhere:");
    s.line("#   Install-Module -Name ExchangeOnlineManagement -Scope CurrentUser).");
    s.line("");
    s.line(&format!("Connect-ExchangeOnline -Organization {}", ps(&spec.tenant)));
    match &spec.sp_id {
        Some(sp) => ps(sp),
        None => {
            s.line("");
            s.line(&format!(
                "# Paste the Enterprise application's Object ID (step 1{letter}; or give it as --sp-id):"
            ));
            s.line("$sp = Read-Host 'Enterprise application Object ID'");
            "$sp".to_owned()
        }
    }
}

/// The credential line of the config file.
fn credential_config(spec: &Spec) -> String {
    match &spec.certificate {
        Some(path) => format!("certificate = {}", toml(&path.display().to_string())),
        None => "client_secret_file = \"/etc/m365-mailer/secret\"   # the secret's Value, readable by the service only"
            .to_owned(),
    }
}
