//! A catalog entry applied to one failure: its causes narrowed with what can be observed from
//! outside the tenant (the token's claims, the configured secret's shape), and rendered with
//! the user's ids, commands quoted for PowerShell.

use super::{Cause, Entry, Retry, Signal};
use crate::account::{Account, AccountAuth};
use crate::oauth::ClientCredential;
use crate::powershell;
use crate::service::Service;

/// The user's identifiers, for filling in fixes.
#[derive(Debug, Clone, Default)]
pub(crate) struct Ids {
    /// Tenant id or domain.
    pub(crate) tenant: Option<String>,
    /// Application (client) id.
    pub(crate) client_id: Option<String>,
    /// Mailbox that authenticates.
    pub(crate) mailbox: Option<String>,
    /// Enterprise application object id (the token's `oid`, when a token was seen).
    pub(crate) sp_id: Option<String>,
    /// The From address in question.
    pub(crate) from: Option<String>,
    /// Token scope.
    pub(crate) scope: Option<String>,
    /// SMTP host.
    pub(crate) smtp_host: Option<String>,
    /// SMTP port.
    pub(crate) smtp_port: Option<u16>,
}

impl Ids {
    /// The identifiers of an account.
    pub(crate) fn of(account: &Account) -> Self {
        Self {
            tenant: account.tenant.as_ref().map(|t| t.value.clone()),
            client_id: account.client_id.as_ref().map(|c| c.value.clone()),
            mailbox: Some(account.mailbox.value.clone()),
            sp_id: None,
            from: Some(account.default_from.clone()),
            scope: Some(account.scope.value.clone()),
            smtp_host: Some(account.smtp.host.clone()),
            smtp_port: Some(account.smtp.port),
        }
    }

    fn value(&self, name: &str) -> Option<String> {
        match name {
            "tenant" => self.tenant.clone(),
            "client_id" => self.client_id.clone(),
            "mailbox" => self.mailbox.clone(),
            "sp_id" => self.sp_id.clone(),
            "from" => self.from.clone(),
            "scope" => self.scope.clone(),
            "smtp_host" => self.smtp_host.clone(),
            "smtp_port" => self.smtp_port.map(|p| p.to_string()),
            _ => None,
        }
    }

    fn placeholder(name: &str) -> &'static str {
        match name {
            "tenant" => "<Directory (tenant) ID>",
            "client_id" => "<Application (client) ID>",
            "mailbox" => "<mailbox>",
            "sp_id" => "<Enterprise application Object ID>",
            "from" => "<From address>",
            "scope" => "<scope>",
            "smtp_host" => "smtp.office365.com",
            "smtp_port" => "587",
            _ => "<?>",
        }
    }

    /// Replaces `{name}` placeholders; with `quoted`, known values become PowerShell literals.
    pub(crate) fn fill(&self, template: &str, quoted: bool) -> String {
        let mut out = String::with_capacity(template.len() + 32);
        let mut rest = template;
        while let Some(start) = rest.find('{') {
            out.push_str(&rest[..start]);
            let Some(end) = rest[start..].find('}') else { break };
            let name = &rest[start + 1..start + end];
            match self.value(name) {
                Some(v) if quoted => {
                    let literal = powershell::quote(&v).unwrap_or_else(|_| Self::placeholder(name).to_owned());
                    out.push_str(&literal);
                }
                Some(v) => out.push_str(&v),
                None => out.push_str(Self::placeholder(name)),
            }
            rest = &rest[start + end + 1..];
        }
        out.push_str(rest);
        out
    }
}

/// What is known besides the failure itself.
#[derive(Debug, Clone, Default)]
pub(crate) struct Evidence {
    /// Claims of the token that was used, when it is a JWT.
    pub(crate) claims: Option<serde_json::Value>,
    /// The configured client secret is a GUID: a Secret ID pasted in place of the value.
    pub(crate) secret_looks_like_id: bool,
    /// The service the account submits to: HVE's and ACS's `535` have causes of their own.
    pub(crate) service: Service,
}

impl Evidence {
    /// What can be told from the account's configuration.
    pub(crate) fn of(account: &Account) -> Self {
        let secret_looks_like_id = matches!(&account.auth, AccountAuth::OAuth { credential: ClientCredential::Secret(s), .. }
            if uuid::Uuid::try_parse(s.expose().trim()).is_ok());
        Self {
            claims: None,
            secret_looks_like_id,
            service: account.service.value,
        }
    }
}

/// A failure explained.
#[derive(Debug, Clone)]
pub(crate) struct Diagnosis {
    /// The catalog entry.
    pub(crate) entry: &'static Entry,
    /// Causes still possible, most likely first.
    pub(crate) causes: Vec<&'static Cause>,
    /// Whether the first cause was established from evidence rather than guessed.
    pub(crate) confirmed: bool,
    /// What was observed, and what could not be checked.
    pub(crate) notes: Vec<String>,
}

/// The entry's causes, narrowed by the evidence.
pub(crate) fn explain(entry: &'static Entry, evidence: &Evidence) -> Diagnosis {
    let mut diagnosis = Diagnosis {
        entry,
        causes: entry.causes.iter().collect(),
        confirmed: false,
        notes: Vec::new(),
    };
    match entry.signal {
        Signal::Smtp { enhanced: "5.7.3", .. } => match evidence.service {
            Service::Exchange => narrow_535(&mut diagnosis, evidence),
            Service::Hve => narrow_535_hve(&mut diagnosis, evidence),
            Service::Acs => {
                diagnosis.causes = super::services::ACS_535.iter().collect();
                diagnosis.notes.push(
                    "Azure Communication Services answers 535 for a wrong SMTP Username, a wrong or expired secret and a missing role alike; they are in the order they are most often the cause."
                        .to_owned(),
                );
            }
        },
        Signal::Smtp { enhanced: "5.7.30", .. } if evidence.service == Service::Acs => {
            diagnosis.causes = vec![&super::services::ACS_MAILBOX_PASSWORD];
            diagnosis.confirmed = true;
        }
        Signal::Aadsts(7000215) if evidence.secret_looks_like_id => {
            diagnosis.confirmed = true;
            diagnosis.notes.push(
                "The configured client secret is a GUID: that is the Secret ID column, not the secret's Value."
                    .to_owned(),
            );
        }
        _ => {}
    }
    diagnosis
}

const EXCHANGE_AUDIENCES: [&str; 2] = ["https://outlook.office365.com", "https://outlook.office.com"];

/// `535 5.7.3` has many causes; the token's claims rule some in or out.
fn narrow_535(diagnosis: &mut Diagnosis, evidence: &Evidence) {
    let Some(claims) = &evidence.claims else {
        diagnosis
            .notes
            .push("The token could not be inspected (it is not a JWT), so no cause is ruled out.".to_owned());
        return;
    };
    let text = |k: &str| claims[k].as_str().unwrap_or_default().to_owned();
    let roles: Vec<String> = claims["roles"]
        .as_array()
        .map(|r| r.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    let aud = text("aud");
    if !EXCHANGE_AUDIENCES
        .iter()
        .any(|a| aud.trim_end_matches('/').eq_ignore_ascii_case(a))
    {
        diagnosis
            .notes
            .push(format!("The token is for `{aud}`, not for Exchange Online."));
        diagnosis.causes = vec![&WRONG_AUDIENCE];
        diagnosis.confirmed = true;
        return;
    }
    if !roles.iter().any(|r| r == "SMTP.SendAsApp") {
        diagnosis.notes.push(if roles.is_empty() {
            "The token carries no roles: Entra issued it without any consented application permission.".to_owned()
        } else {
            format!("The token's roles are {} but not SMTP.SendAsApp.", roles.join(", "))
        });
        diagnosis
            .causes
            .retain(|c| c.id == "no-admin-consent" || c.id == "propagation");
        if roles.is_empty() {
            // Tokens carry no roles with RBAC for Applications: then Exchange's own role
            // assignment is what is missing.
            let after_consent = diagnosis.causes.len().min(1);
            diagnosis.causes.insert(after_consent, &NO_RBAC_ASSIGNMENT);
        }
        diagnosis.confirmed = true;
        return;
    }
    diagnosis.causes.retain(|c| c.id != "no-admin-consent");
    diagnosis.notes.push(format!(
        "The token is right: audience {aud}, tenant {}, app {}, role SMTP.SendAsApp, service principal {}.",
        text("tid"),
        text("appid"),
        text("oid")
    ));
    diagnosis.notes.push(
        "What remains is on Exchange's side and cannot be checked from outside the tenant: the service principal's registration (Get-ServicePrincipal) and the mailbox permission (Get-MailboxPermission)."
            .to_owned(),
    );
}

/// HVE's `535 5.7.3`: its own causes, and its role is Mail.Send.
fn narrow_535_hve(diagnosis: &mut Diagnosis, evidence: &Evidence) {
    diagnosis.causes = super::services::HVE_535.iter().collect();
    let Some(claims) = &evidence.claims else { return };
    let has_mail_send = claims["roles"]
        .as_array()
        .is_some_and(|roles| roles.iter().any(|r| r.as_str() == Some("Mail.Send")));
    if has_mail_send {
        diagnosis.causes.retain(|c| c.id != "hve-no-mail-send");
        diagnosis
            .notes
            .push("The token carries Mail.Send: what remains is on Exchange's side.".to_owned());
    } else {
        diagnosis
            .causes
            .retain(|c| c.id == "hve-no-mail-send" || c.id == "propagation");
        diagnosis.confirmed = true;
        diagnosis
            .notes
            .push("The token carries no Mail.Send role of Office 365 Exchange Online.".to_owned());
    }
}

const NO_RBAC_ASSIGNMENT: Cause = Cause {
    id: "no-rbac-assignment",
    why: "with RBAC for Applications (no API permission, so no roles in the token) Exchange needs the role Application SMTP.SendAsApp assigned to the service principal with a scope that holds the mailbox; it takes up to 2 hours to apply",
    fix: "Assign the role with a management scope for the mailbox (`m365-mailer setup` prints the commands), check it with Test-ServicePrincipalAuthorization, and wait; or grant SMTP.SendAsApp with admin consent (`setup --per-mailbox`).",
    commands: &["Test-ServicePrincipalAuthorization -Identity {sp_id} -Resource {mailbox}"],
};

const WRONG_AUDIENCE: Cause = Cause {
    id: "wrong-audience",
    why: "the token was issued for another resource than Exchange Online (the scope names Graph or another API)",
    fix: "Request the token with scope https://outlook.office365.com/.default.",
    commands: &[],
};

/// A diagnosis with the user's values filled in.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Rendered {
    /// Catalog id.
    pub(crate) id: String,
    /// What happened.
    pub(crate) summary: String,
    /// Causes, most likely first.
    pub(crate) causes: Vec<RenderedCause>,
    /// Whether the first cause is established.
    pub(crate) confirmed: bool,
    /// Observations.
    pub(crate) notes: Vec<String>,
    /// `transient`, `permanent` or `after-throttling`.
    pub(crate) retry: &'static str,
    /// Whether waiting 5–15 minutes after a change may help.
    pub(crate) propagation: bool,
    /// Documentation.
    pub(crate) link: String,
}

/// One cause with its fix.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct RenderedCause {
    /// Stable id.
    pub(crate) id: &'static str,
    /// What is wrong.
    pub(crate) why: String,
    /// What to do.
    pub(crate) fix: String,
    /// Commands, values quoted for PowerShell.
    pub(crate) commands: Vec<String>,
}

impl Diagnosis {
    /// Fills in the user's values.
    pub(crate) fn render(&self, ids: &Ids) -> Rendered {
        Rendered {
            id: self.entry.id(),
            summary: self.entry.summary.to_owned(),
            causes: self
                .causes
                .iter()
                .map(|c| RenderedCause {
                    id: c.id,
                    why: ids.fill(c.why, false),
                    fix: ids.fill(c.fix, false),
                    commands: c.commands.iter().map(|cmd| ids.fill(cmd, true)).collect(),
                })
                .collect(),
            confirmed: self.confirmed,
            notes: self.notes.clone(),
            retry: match self.entry.retry {
                Retry::Transient => "transient",
                Retry::Permanent => "permanent",
                Retry::AfterThrottling => "after-throttling",
                Retry::AfterAccountFix => "after-account-fix",
            },
            propagation: self.entry.propagation,
            link: self.entry.link(),
        }
    }
}

impl Rendered {
    /// Indented text for a terminal: notes, then causes with fixes and commands.
    pub(crate) fn to_text(&self, indent: &str) -> String {
        let mut out = String::new();
        for note in &self.notes {
            out.push_str(&format!("{indent}{note}\n"));
        }
        let many = self.causes.len() > 1 && !self.confirmed;
        if many {
            out.push_str(&format!("{indent}Likely causes, most likely first:\n"));
        }
        for (i, cause) in self.causes.iter().enumerate() {
            let label = if many {
                format!("{}. ", i + 1)
            } else {
                "Cause: ".to_owned()
            };
            out.push_str(&format!("{indent}{label}{}\n", cause.why));
            out.push_str(&format!("{indent}   Fix: {}\n", cause.fix));
            for command in &cause.commands {
                out.push_str(&format!("{indent}     {command}\n"));
            }
            if self.confirmed {
                break;
            }
        }
        if self.propagation {
            out.push_str(&format!(
                "{indent}Changes in Entra ID and Exchange take 5 to 15 minutes to apply.\n"
            ));
        }
        out.push_str(&format!("{indent}More: {}\n", self.link));
        out
    }
}
