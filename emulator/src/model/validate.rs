//! Loading certificates named by the tenant file and checking the whole scenario before a server
//! starts. Every error names the field it is about, as `tenants[0].apps[1].client_id`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::{APPLICATION_ROLES, AcsResource, MAX_HVE_APPS, ManagementRoleAssignment, Scenario, Tenant};
use crate::pki::{ClientCertificate, RegisteredCertificate};

/// A tenant file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("cannot read tenant file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has a field of the wrong type or an unknown field.
    #[error("tenant file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A value is invalid.
    #[error("{field}: {message}")]
    Invalid {
        /// Path of the field, e.g. `tenants[0].mailboxes[2].address`.
        field: String,
        /// What is wrong and what is expected.
        message: String,
    },
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> ScenarioError {
    ScenarioError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

impl Scenario {
    /// Reads certificate files (relative to `base_dir`), parses PEM certificates not parsed yet,
    /// and validates. Certificates marked `generate` are created by [`Scenario::provision`].
    pub fn resolve(&mut self, base_dir: &Path) -> Result<(), ScenarioError> {
        for (t, tenant) in self.tenants.iter_mut().enumerate() {
            for (a, app) in tenant.apps.iter_mut().enumerate() {
                for (c, cert) in app.certificates.iter_mut().enumerate() {
                    let field = format!("tenants[{t}].apps[{a}].certificates[{c}]");
                    let sources =
                        usize::from(cert.path.is_some()) + usize::from(cert.pem.is_some()) + usize::from(cert.generate);
                    if sources != 1 {
                        return Err(invalid(field, "give exactly one of `path`, `pem` or `generate = true`"));
                    }
                    if cert.registered.is_some() {
                        continue;
                    }
                    let bytes = match (&cert.path, &cert.pem) {
                        (Some(path), _) => {
                            let full = base_dir.join(path);
                            std::fs::read(&full).map_err(|e| {
                                invalid(format!("{field}.path"), format!("cannot read {}: {e}", full.display()))
                            })?
                        }
                        (None, Some(pem)) => pem.clone().into_bytes(),
                        (None, None) => continue,
                    };
                    let parsed = RegisteredCertificate::parse(&bytes).map_err(|e| invalid(field, e.to_string()))?;
                    cert.registered = Some(parsed);
                }
            }
        }
        self.validate()
    }

    /// Creates the key pairs of certificates marked `generate`, reusing the ones saved in `dir`
    /// by an earlier run, and returns them so the user can be handed the keys.
    pub fn provision(&mut self, dir: Option<&Path>) -> Result<Vec<Generated>, ScenarioError> {
        let mut generated = Vec::new();
        for (t, tenant) in self.tenants.iter_mut().enumerate() {
            for (a, app) in tenant.apps.iter_mut().enumerate() {
                for (c, cert) in app.certificates.iter_mut().enumerate() {
                    if !cert.generate || cert.registered.is_some() {
                        continue;
                    }
                    let field = format!("tenants[{t}].apps[{a}].certificates[{c}]");
                    let stem = format!("{}-{c}", app.client_id.to_ascii_lowercase());
                    let files = dir.map(|d| (d.join(format!("{stem}.key.pem")), d.join(format!("{stem}.cert.pem"))));
                    let certificate =
                        load_or_generate(files.as_ref(), &app.display_name).map_err(|e| invalid(&field, e))?;
                    cert.registered = Some(certificate.registered());
                    generated.push(Generated {
                        client_id: app.client_id.clone(),
                        certificate,
                        files,
                    });
                }
            }
        }
        Ok(generated)
    }

    /// Checks identifiers, references and knobs.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        let mut tenant_ids = HashSet::new();
        let mut domains = HashSet::new();
        for (t, tenant) in self.tenants.iter().enumerate() {
            let at = format!("tenants[{t}]");
            guid(&format!("{at}.id"), &tenant.id)?;
            if !tenant_ids.insert(tenant.id.to_ascii_lowercase()) {
                return Err(invalid(
                    format!("{at}.id"),
                    format!("tenant `{}` is defined twice", tenant.id),
                ));
            }
            if tenant.domains.is_empty() {
                return Err(invalid(
                    format!("{at}.domains"),
                    "a tenant needs at least one verified domain",
                ));
            }
            unique_domains(&at, &tenant.domains, &mut domains, "verified")?;
            validate_tenant(&at, tenant)?;
        }
        self.validate_smtp_usernames()?;
        let e = &self.exchange;
        if e.time_scale.is_nan() || e.time_scale <= 0.0 {
            return Err(invalid("exchange.time_scale", "must be a positive number"));
        }
        if e.max_line_length < 512 {
            return Err(invalid("exchange.max_line_length", "must be at least 512 (RFC 5321)"));
        }
        let (hve, acs) = (&self.hve, &self.acs);
        for (field, value) in [
            (
                "hve.max_recipients_per_message",
                u64::from(hve.max_recipients_per_message),
            ),
            ("hve.max_message_size", hve.max_message_size),
            ("hve.recipients_per_day", u64::from(hve.recipients_per_day)),
            (
                "acs.max_recipients_per_message",
                u64::from(acs.max_recipients_per_message),
            ),
            ("acs.max_message_size", acs.max_message_size),
        ] {
            if value == 0 {
                return Err(invalid(field, "must be positive"));
            }
        }
        if acs.frontend_host.trim().is_empty() {
            return Err(invalid("acs.frontend_host", "must not be empty"));
        }
        if self.entra.token_lifetime_secs == 0 {
            return Err(invalid("entra.token_lifetime_secs", "must be positive"));
        }
        for (f, fault) in self.faults.iter().enumerate() {
            fault.validate().map_err(|m| invalid(format!("faults[{f}]"), m))?;
        }
        Ok(())
    }
}

fn validate_tenant(at: &str, tenant: &Tenant) -> Result<(), ScenarioError> {
    let mut client_ids = HashSet::new();
    for (a, app) in tenant.apps.iter().enumerate() {
        let at = format!("{at}.apps[{a}]");
        guid(&format!("{at}.client_id"), &app.client_id)?;
        guid(&format!("{at}.object_id"), &app.object_id)?;
        // Empty: an app registration without its enterprise application yet (made through
        // Graph's `POST /applications`, before `POST /servicePrincipals`).
        if !app.service_principal_id.is_empty() {
            guid(&format!("{at}.service_principal_id"), &app.service_principal_id)?;
        }
        if !client_ids.insert(app.client_id.to_ascii_lowercase()) {
            return Err(invalid(
                format!("{at}.client_id"),
                format!("app `{}` is registered twice", app.client_id),
            ));
        }
        for (s, secret) in app.secrets.iter().enumerate() {
            guid(&format!("{at}.secrets[{s}].id"), &secret.id)?;
            if secret.value.is_empty() {
                return Err(invalid(format!("{at}.secrets[{s}].value"), "must not be empty"));
            }
        }
        for (p, permission) in app.permissions.iter().enumerate() {
            if permission.name.trim().is_empty() {
                return Err(invalid(format!("{at}.permissions[{p}].name"), "must not be empty"));
            }
        }
        if app.federated_credentials.len() > 20 {
            return Err(invalid(
                format!("{at}.federated_credentials"),
                "Entra allows at most 20 federated credentials per app",
            ));
        }
        for (f, fic) in app.federated_credentials.iter().enumerate() {
            let at = format!("{at}.federated_credentials[{f}]");
            if !(3..=120).contains(&fic.name.chars().count()) {
                return Err(invalid(format!("{at}.name"), "must be 3 to 120 characters"));
            }
            if fic.issuer.is_empty() || fic.subject.is_empty() || fic.audiences.is_empty() {
                return Err(invalid(at, "issuer, subject and at least one audience are required"));
            }
        }
    }
    for (s, sp) in tenant.exchange_service_principals.iter().enumerate() {
        guid(&format!("{at}.exchange_service_principals[{s}].app_id"), &sp.app_id)?;
        guid(
            &format!("{at}.exchange_service_principals[{s}].object_id"),
            &sp.object_id,
        )?;
    }
    for (r, assignment) in tenant.management_role_assignments.iter().enumerate() {
        validate_role_assignment(&format!("{at}.management_role_assignments[{r}]"), tenant, assignment)?;
    }
    let mut addresses = HashSet::new();
    for (m, mailbox) in tenant.mailboxes.iter().enumerate() {
        let field = format!("{at}.mailboxes[{m}].address");
        on_tenant_domain(tenant, &field, &mailbox.address)?;
        if !addresses.insert(mailbox.address.to_ascii_lowercase()) {
            return Err(invalid(
                field,
                format!("mailbox `{}` is defined twice", mailbox.address),
            ));
        }
    }
    for (h, account) in tenant.hve_accounts.iter().enumerate() {
        let at = format!("{at}.hve_accounts[{h}]");
        let field = format!("{at}.address");
        on_tenant_domain(tenant, &field, &account.address)?;
        if !addresses.insert(account.address.to_ascii_lowercase()) {
            return Err(invalid(
                field,
                format!("`{}` is already a mailbox or an HVE account", account.address),
            ));
        }
        if account.apps.len() > MAX_HVE_APPS {
            return Err(invalid(
                format!("{at}.apps"),
                format!("Add-HVEAppAccess allows at most {MAX_HVE_APPS} apps per HVE account"),
            ));
        }
        for (a, app) in account.apps.iter().enumerate() {
            guid(&format!("{at}.apps[{a}]"), app)?;
        }
        if account.password.as_deref() == Some("") {
            return Err(invalid(format!("{at}.password"), "must not be empty"));
        }
    }
    for (u, user) in tenant.users.iter().enumerate() {
        let at = format!("{at}.users[{u}]");
        guid(&format!("{at}.object_id"), &user.object_id)?;
        if !user.user_principal_name.contains('@') {
            return Err(invalid(format!("{at}.user_principal_name"), "must be name@domain"));
        }
        for role in &user.roles {
            if !super::DIRECTORY_ROLES.iter().any(|(name, _)| name == role) {
                let known: Vec<&str> = super::DIRECTORY_ROLES.iter().map(|(name, _)| *name).collect();
                return Err(invalid(
                    format!("{at}.roles"),
                    format!("unknown role `{role}`: one of {}", known.join(", ")),
                ));
            }
        }
    }
    let mut names = HashSet::new();
    for (r, resource) in tenant.acs_resources.iter().enumerate() {
        let at = format!("{at}.acs_resources[{r}]");
        if resource.name.trim().is_empty() {
            return Err(invalid(format!("{at}.name"), "must not be empty"));
        }
        if !names.insert(resource.name.to_ascii_lowercase()) {
            return Err(invalid(
                format!("{at}.name"),
                format!("resource `{}` is defined twice", resource.name),
            ));
        }
        validate_acs_resource(&at, resource)?;
    }
    Ok(())
}

/// An RBAC for Applications assignment: a known application role, held by a service principal
/// registered in Exchange (`New-ManagementRoleAssignment -App` resolves it among them and fails
/// for anything else), over a scope of addresses.
fn validate_role_assignment(
    at: &str,
    tenant: &Tenant,
    assignment: &ManagementRoleAssignment,
) -> Result<(), ScenarioError> {
    if !APPLICATION_ROLES
        .iter()
        .any(|r| r.eq_ignore_ascii_case(&assignment.role))
    {
        let hint = APPLICATION_ROLES
            .iter()
            .find(|r| {
                r.strip_prefix("Application ")
                    .is_some_and(|bare| bare.eq_ignore_ascii_case(&assignment.role))
            })
            .map(|r| format!("; did you mean `{r}`?"))
            .unwrap_or_default();
        return Err(invalid(
            format!("{at}.role"),
            format!(
                "`{}` is not an application role of Exchange Online (known: {}){hint}",
                assignment.role,
                APPLICATION_ROLES.join(", ")
            ),
        ));
    }
    if tenant.exchange_service_principal_named(&assignment.app).is_none() {
        return Err(invalid(
            format!("{at}.app"),
            format!(
                "`{}` names no service principal registered in Exchange (`exchange_service_principals`, by object id, app id or display name); New-ManagementRoleAssignment -App needs New-ServicePrincipal first",
                assignment.app
            ),
        ));
    }
    if assignment.mailboxes.is_empty() {
        return Err(invalid(
            format!("{at}.mailboxes"),
            "a management scope needs at least one recipient (organisation-wide assignments are not modelled)",
        ));
    }
    for (m, mailbox) in assignment.mailboxes.iter().enumerate() {
        address_domain(&format!("{at}.mailboxes[{m}]"), mailbox)?;
    }
    Ok(())
}

/// `{at}.domains`: each a domain name, none already in `seen` (`how` it is held: verified,
/// connected).
fn unique_domains(at: &str, list: &[String], seen: &mut HashSet<String>, how: &str) -> Result<(), ScenarioError> {
    for (d, domain) in list.iter().enumerate() {
        if !is_dns_name(domain) {
            return Err(invalid(
                format!("{at}.domains[{d}]"),
                format!("`{domain}` is not a domain name"),
            ));
        }
        if !seen.insert(domain.to_ascii_lowercase()) {
            return Err(invalid(
                format!("{at}.domains[{d}]"),
                format!("domain `{domain}` is {how} twice"),
            ));
        }
    }
    Ok(())
}

fn validate_acs_resource(at: &str, resource: &AcsResource) -> Result<(), ScenarioError> {
    unique_domains(at, &resource.domains, &mut HashSet::new(), "connected")?;
    let linked = |field: String, address: &str| -> Result<(), ScenarioError> {
        let domain = address_domain(&field, address)?;
        if resource.has_domain(domain) {
            return Ok(());
        }
        Err(invalid(
            field,
            format!(
                "`{domain}` is not one of the resource's connected domains ({})",
                resource.domains.join(", ")
            ),
        ))
    };
    for (s, sender) in resource.senders.iter().enumerate() {
        linked(format!("{at}.senders[{s}]"), sender)?;
    }
    for (a, app) in resource.role_assignments.iter().enumerate() {
        guid(&format!("{at}.role_assignments[{a}]"), app)?;
    }
    for (u, user) in resource.smtp_usernames.iter().enumerate() {
        let at = format!("{at}.smtp_usernames[{u}]");
        if user.name.trim().is_empty() {
            return Err(invalid(format!("{at}.name"), "must not be empty"));
        }
        if user.username.trim().is_empty() {
            return Err(invalid(format!("{at}.username"), "must not be empty"));
        }
        if user.username.contains('@') {
            linked(format!("{at}.username"), &user.username)?;
        }
        guid(&format!("{at}.app_id"), &user.app_id)?;
        if let Some(tenant_id) = &user.tenant_id {
            guid(&format!("{at}.tenant_id"), tenant_id)?;
        }
    }
    for (field, limit) in [
        ("messages_per_minute", resource.messages_per_minute),
        ("messages_per_hour", resource.messages_per_hour),
    ] {
        if limit == 0 {
            return Err(invalid(format!("{at}.{field}"), "must be positive"));
        }
    }
    Ok(())
}

impl Scenario {
    /// SMTP usernames are looked up across every tenant at `AUTH LOGIN`: they must be unique, and
    /// the tenant of their linked app must exist.
    fn validate_smtp_usernames(&self) -> Result<(), ScenarioError> {
        let mut seen = HashSet::new();
        for (t, tenant) in self.tenants.iter().enumerate() {
            for (r, resource) in tenant.acs_resources.iter().enumerate() {
                for (u, user) in resource.smtp_usernames.iter().enumerate() {
                    let at = format!("tenants[{t}].acs_resources[{r}].smtp_usernames[{u}]");
                    if !seen.insert(user.username.to_ascii_lowercase()) {
                        return Err(invalid(
                            format!("{at}.username"),
                            format!("SMTP username `{}` is defined twice", user.username),
                        ));
                    }
                    if let Some(tenant_id) = &user.tenant_id
                        && !self.tenants.iter().any(|x| x.id.eq_ignore_ascii_case(tenant_id))
                    {
                        return Err(invalid(
                            format!("{at}.tenant_id"),
                            format!("tenant `{tenant_id}` is not in the scenario"),
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

/// The domain of an email address, or an error naming `field`.
/// An address on one of the tenant's verified domains.
fn on_tenant_domain(tenant: &Tenant, field: &str, address: &str) -> Result<(), ScenarioError> {
    let domain = address_domain(field, address)?;
    if tenant.has_domain(domain) {
        return Ok(());
    }
    Err(invalid(
        field,
        format!(
            "`{domain}` is not one of the tenant's verified domains ({})",
            tenant.domains.join(", ")
        ),
    ))
}

fn address_domain<'a>(field: &str, address: &'a str) -> Result<&'a str, ScenarioError> {
    match address.rsplit_once('@') {
        Some((local, domain)) if !local.is_empty() && is_dns_name(domain) => Ok(domain),
        _ => Err(invalid(field, format!("`{address}` is not an email address"))),
    }
}

fn guid(field: &str, value: &str) -> Result<(), ScenarioError> {
    uuid::Uuid::try_parse(value).map(drop).map_err(|_| {
        invalid(
            field,
            format!("`{value}` is not a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)"),
        )
    })
}

/// A syntactically valid DNS name with at least two labels.
pub(crate) fn is_dns_name(name: &str) -> bool {
    let labels: Vec<&str> = name.split('.').collect();
    name.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// A certificate the emulator generated for an app, with its private key.
#[derive(Debug, Clone)]
pub struct Generated {
    /// The app's client id.
    pub client_id: String,
    /// Key and certificate.
    pub certificate: ClientCertificate,
    /// Where the key and the certificate were saved (`.key.pem`, `.cert.pem`), if anywhere.
    pub files: Option<(PathBuf, PathBuf)>,
}

fn load_or_generate(paths: Option<&(PathBuf, PathBuf)>, common_name: &str) -> Result<ClientCertificate, String> {
    if let Some((key_path, cert_path)) = paths
        && let (Ok(key_pem), Ok(cert_pem)) = (std::fs::read_to_string(key_path), std::fs::read_to_string(cert_path))
    {
        return Ok(ClientCertificate { key_pem, cert_pem });
    }
    let now = crate::clock::Clock::new().now();
    let client = ClientCertificate::generate(
        common_name,
        now - time::Duration::days(1),
        now + time::Duration::days(730),
    )
    .map_err(|e| e.to_string())?;
    if let Some((key_path, cert_path)) = paths {
        crate::pki::write_file(key_path, client.key_pem.as_bytes(), true).map_err(|e| e.to_string())?;
        crate::pki::write_file(cert_path, client.cert_pem.as_bytes(), false).map_err(|e| e.to_string())?;
    }
    Ok(client)
}
