//! Tenants as Entra ID and Exchange Online see them: app registrations with their credentials and
//! permissions, the service principals Exchange knows about, and mailboxes with their grants.
//!
//! Every struct deserialises from the tenant file and has builder methods for tests; both produce
//! the same values, so a test written with the builder describes a file a user could write.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::Timestamp;
use super::services::{AcsResource, HveAccount};
use crate::pki::RegisteredCertificate;

/// One Entra ID tenant with its Exchange Online organisation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tenant {
    /// Directory (tenant) id, a GUID.
    pub id: String,
    /// Organisation name, shown in error texts.
    #[serde(default = "default_tenant_name")]
    pub name: String,
    /// Verified domains; the token endpoint accepts any of them in place of the id.
    pub domains: Vec<String>,
    /// `Set-TransportConfig -SmtpClientAuthenticationDisabled`. Microsoft's default for
    /// organisations created since 2020 is `true` (SMTP AUTH off), and so is ours.
    #[serde(default = "yes")]
    pub smtp_client_authentication_disabled: bool,
    /// Entra security defaults: when on, SMTP AUTH is refused whatever the other settings say.
    #[serde(default)]
    pub security_defaults: bool,
    /// What `AUTH LOGIN` with a password meets.
    #[serde(default)]
    pub basic_auth: BasicAuth,
    /// Whether the organisation has Exchange Online; without it the resource is not in the tenant.
    #[serde(default = "yes")]
    pub exchange_online: bool,
    /// App registrations (and their enterprise applications).
    #[serde(default)]
    pub apps: Vec<App>,
    /// What `New-ServicePrincipal -AppId … -ObjectId …` registered in Exchange Online.
    #[serde(default)]
    pub exchange_service_principals: Vec<ExchangeServicePrincipal>,
    /// Mailboxes of the organisation.
    #[serde(default)]
    pub mailboxes: Vec<Mailbox>,
    /// User-assigned managed identities, whose tokens the emulated IMDS and App Service
    /// identity endpoints hand out.
    #[serde(default)]
    pub managed_identities: Vec<ManagedIdentity>,
    /// Application access policies (`New-ApplicationAccessPolicy`): which mailboxes an app may
    /// use through Microsoft Graph.
    #[serde(default)]
    pub application_access_policies: Vec<ApplicationAccessPolicy>,
    /// RBAC for Applications (`New-ManagementRoleAssignment -App … -Role … -CustomResourceScope
    /// …`): application roles held by service principals registered in Exchange, each over the
    /// mailboxes of a management scope. SMTP honours `Application SMTP.SendAsApp`.
    #[serde(default)]
    pub management_role_assignments: Vec<ManagementRoleAssignment>,
    /// Exchange Online High Volume Email accounts.
    #[serde(default)]
    pub hve_accounts: Vec<HveAccount>,
    /// Azure Communication Services resources with Email, billed to this tenant's subscription;
    /// their SMTP endpoint is the emulator's ACS port.
    #[serde(default)]
    pub acs_resources: Vec<AcsResource>,
    /// People who can sign in (the device authorization grant), with their directory roles.
    #[serde(default)]
    pub users: Vec<DirectoryUser>,
}

/// A user of the directory, as an administrator who signs in with a device code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryUser {
    /// `admin@contoso.com`.
    pub user_principal_name: String,
    /// Object id (the token's `oid`).
    pub object_id: String,
    /// Directory roles by name: `Global Administrator`, `Application Administrator`, `Cloud
    /// Application Administrator`, `Privileged Role Administrator`, or none.
    #[serde(default)]
    pub roles: Vec<String>,
}

/// Directory roles the emulator knows, with their template ids (the `wids` claim).
pub const DIRECTORY_ROLES: [(&str, &str); 4] = [
    ("Global Administrator", "62e90394-69f5-4237-9190-012177145e10"),
    ("Application Administrator", "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3"),
    (
        "Cloud Application Administrator",
        "158c047a-c907-4556-b7ef-446551a6b5f7",
    ),
    ("Privileged Role Administrator", "e8611ab8-c189-46e8-94e1-60213ab1f814"),
];

fn default_tenant_name() -> String {
    "Contoso".to_owned()
}

fn yes() -> bool {
    true
}

/// How the organisation answers basic authentication (a password) on SMTP.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BasicAuth {
    /// Passwords of mailboxes that have one are accepted (tenants before the retirement).
    Enabled,
    /// `535 5.7.139 Authentication unsuccessful, basic authentication is disabled.`
    #[default]
    Disabled,
    /// `550 5.7.30 Basic authentication is not supported for Client Submission.`
    Retired,
}

/// An app registration together with its enterprise application (service principal).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct App {
    /// Display name.
    #[serde(default = "default_app_name")]
    pub display_name: String,
    /// Application (client) id.
    pub client_id: String,
    /// Object id of the app registration ("App registrations → Object ID").
    pub object_id: String,
    /// Object id of the enterprise application, i.e. the service principal
    /// ("Enterprise applications → Object ID"); tokens carry it as `oid`.
    pub service_principal_id: String,
    /// A disabled enterprise application cannot sign in (AADSTS7000112).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Client secrets.
    #[serde(default)]
    pub secrets: Vec<ClientSecret>,
    /// Uploaded certificates (public part only).
    #[serde(default)]
    pub certificates: Vec<AppCertificate>,
    /// Application permissions requested by the app.
    #[serde(default)]
    pub permissions: Vec<Permission>,
    /// Federated identity credentials: tokens of other identity providers the app accepts as
    /// client assertions (workload identity federation).
    #[serde(default)]
    pub federated_credentials: Vec<FederatedCredential>,
    /// "Accounts in any organizational directory": other tenants may sign it in, once it has a
    /// service principal there (without one Entra answers AADSTS7000229).
    #[serde(default)]
    pub multitenant: bool,
}

/// An application access policy. Exchange scopes it with a mail-enabled security group; the
/// emulator lists the group's mailboxes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplicationAccessPolicy {
    /// The app's client id.
    pub app_id: String,
    /// The mailboxes of the policy's group.
    pub mailboxes: Vec<String>,
    /// `restrict_access`: only these mailboxes; `deny_access`: all but these.
    pub access_right: AccessRight,
}

/// What an application access policy does with its mailboxes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessRight {
    /// `-AccessRight RestrictAccess`.
    RestrictAccess,
    /// `-AccessRight DenyAccess`.
    DenyAccess,
}

/// The application role SMTP client submission honours in RBAC for Applications.
pub const SMTP_SEND_AS_APP_ROLE: &str = "Application SMTP.SendAsApp";

/// The application roles of RBAC for Applications in Exchange Online (`Get-ManagementRole |
/// ? Name -like 'Application *'`). Only [`SMTP_SEND_AS_APP_ROLE`] means anything to SMTP; the
/// others are accepted in the tenant file and change nothing here.
pub const APPLICATION_ROLES: &[&str] = &[
    SMTP_SEND_AS_APP_ROLE,
    "Application Mail.Read",
    "Application Mail.ReadBasic",
    "Application Mail.ReadWrite",
    "Application Mail.Send",
    "Application MailboxSettings.Read",
    "Application MailboxSettings.ReadWrite",
    "Application Calendars.Read",
    "Application Calendars.ReadWrite",
    "Application Contacts.Read",
    "Application Contacts.ReadWrite",
    "Application Mail Full Access",
    "Application Exchange Full Access",
    "Application EWS.AccessAsApp",
];

/// A management role assignment of RBAC for Applications: `New-ManagementRoleAssignment -App
/// <service principal> -Role <role> -CustomResourceScope <scope>`. Exchange scopes it with a
/// management scope's recipient filter (`New-ManagementScope -RecipientRestrictionFilter
/// "PrimarySmtpAddress -eq '…' -or …"`); the emulator lists the addresses the filter matches
/// instead of evaluating OPATH.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManagementRoleAssignment {
    /// `-App`: the service principal as Exchange knows it (`exchange_service_principals`), by
    /// object id, app id or display name.
    pub app: String,
    /// `-Role`: an application role, e.g. `Application SMTP.SendAsApp`.
    pub role: String,
    /// The primary SMTP addresses of the management scope's recipients.
    pub mailboxes: Vec<String>,
}

impl ManagementRoleAssignment {
    /// An assignment of `role` to `app` over `mailboxes`.
    pub fn new(app: &str, role: &str, mailboxes: &[&str]) -> Self {
        Self {
            app: app.to_owned(),
            role: role.to_owned(),
            mailboxes: mailboxes.iter().map(|m| (*m).to_owned()).collect(),
        }
    }

    /// Whether the role is `Application SMTP.SendAsApp` (any case, as Exchange's role names).
    pub fn is_smtp_send_as_app(&self) -> bool {
        self.role.eq_ignore_ascii_case(SMTP_SEND_AS_APP_ROLE)
    }

    /// Whether the scope holds `address` (any case).
    pub fn scope_contains(&self, address: &str) -> bool {
        self.mailboxes.iter().any(|m| m.eq_ignore_ascii_case(address))
    }
}

impl Tenant {
    /// Whether the application access policies let `app_id` use `mailbox` through Graph (no
    /// policy for the app: every mailbox).
    pub fn graph_access_allowed(&self, app_id: &str, mailbox: &str) -> bool {
        self.application_access_policies
            .iter()
            .filter(|p| p.app_id.eq_ignore_ascii_case(app_id))
            .all(|p| {
                let listed = p.mailboxes.iter().any(|m| m.eq_ignore_ascii_case(mailbox));
                match p.access_right {
                    AccessRight::RestrictAccess => listed,
                    AccessRight::DenyAccess => !listed,
                }
            })
    }
}

/// A user-assigned managed identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManagedIdentity {
    /// Client id (what `client_id=` selects at the identity endpoint).
    pub client_id: String,
    /// Principal (object) id: the subject of its tokens, and of a federated credential that
    /// trusts it.
    pub principal_id: String,
}

/// A federated identity credential ("Certificates & secrets → Federated credentials"): a token
/// whose issuer and subject equal these (exactly, case included) and whose audience is listed
/// signs the app in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FederatedCredential {
    /// Name (3–120 characters in Entra).
    #[serde(default = "default_federated_name")]
    pub name: String,
    /// OIDC issuer URL, e.g. a Kubernetes cluster's.
    pub issuer: String,
    /// Subject, e.g. `system:serviceaccount:NAMESPACE:NAME`.
    pub subject: String,
    /// Accepted audiences.
    #[serde(default = "default_federated_audiences")]
    pub audiences: Vec<String>,
}

fn default_federated_name() -> String {
    "workload".to_owned()
}

fn default_federated_audiences() -> Vec<String> {
    vec!["api://AzureADTokenExchange".to_owned()]
}

impl FederatedCredential {
    /// A credential for `issuer` and `subject` with the default audience.
    pub fn new(issuer: &str, subject: &str) -> Self {
        Self {
            name: default_federated_name(),
            issuer: issuer.to_owned(),
            subject: subject.to_owned(),
            audiences: default_federated_audiences(),
        }
    }
}

fn default_app_name() -> String {
    "Mailer".to_owned()
}

/// A client secret as Entra stores it.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSecret {
    /// "Secret ID" column of the portal, a GUID. Users paste it in place of the value.
    pub id: String,
    /// The secret value shown once at creation.
    pub value: String,
    /// End of validity; absent means it never expires.
    #[serde(default)]
    pub expires: Option<Timestamp>,
}

impl std::fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSecret")
            .field("id", &self.id)
            .field("value", &"[redacted]")
            .field("expires", &self.expires)
            .finish()
    }
}

/// A certificate uploaded to the app registration.
///
/// In the tenant file exactly one of `path` (a PEM or DER `.cer` file, relative to the tenant
/// file), `pem` (the PEM text) or `generate = true` (the emulator creates a key pair and a
/// self-signed certificate and hands the private key to the user) is given.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppCertificate {
    /// Path of the public certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<std::path::PathBuf>,
    /// PEM text of the public certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pem: Option<String>,
    /// Let the emulator generate the certificate (and its private key).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub generate: bool,
    /// The parsed certificate, filled in when the scenario is loaded.
    #[serde(skip)]
    pub registered: Option<RegisteredCertificate>,
}

/// An application permission (app role) requested by an app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Permission {
    /// The API exposing the role.
    pub api: Api,
    /// Role name, e.g. `SMTP.SendAsApp` or `Mail.Send`.
    pub name: String,
    /// Whether an administrator granted consent. Without it the role is not in tokens.
    #[serde(default = "yes")]
    pub admin_consent: bool,
}

/// The resource APIs the emulator knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Api {
    /// "Office 365 Exchange Online", app id `00000002-0000-0ff1-ce00-000000000000`.
    #[serde(rename = "exchange", alias = "Office 365 Exchange Online")]
    Exchange,
    /// "Microsoft Graph", app id `00000003-0000-0000-c000-000000000000`.
    #[serde(rename = "graph", alias = "Microsoft Graph")]
    Graph,
    /// Azure Communication Services (`https://communication.azure.com`). It authorises with Azure
    /// RBAC on the resource, not app roles: its tokens carry no `roles`.
    #[serde(rename = "communication", alias = "Azure Communication Services")]
    Communication,
}

/// A service principal registered in Exchange Online with `New-ServicePrincipal`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExchangeServicePrincipal {
    /// `-AppId`: the application (client) id.
    pub app_id: String,
    /// `-ObjectId` (or `-ServiceId`): must be the enterprise application's object id. Registering
    /// the app registration's object id here is the classic mistake.
    pub object_id: String,
    /// `-DisplayName`; `Add-RecipientPermission -Trustee` may name it.
    #[serde(default)]
    pub display_name: Option<String>,
}

impl ExchangeServicePrincipal {
    /// Whether `name` (any case) is its object id, app id or display name.
    pub fn answers_to(&self, name: &str) -> bool {
        self.object_id.eq_ignore_ascii_case(name)
            || self.app_id.eq_ignore_ascii_case(name)
            || self
                .display_name
                .as_deref()
                .is_some_and(|d| d.eq_ignore_ascii_case(name))
    }
}

/// A mailbox of the organisation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mailbox {
    /// Primary SMTP address.
    pub address: String,
    /// A shared mailbox needs no licence.
    #[serde(default)]
    pub shared: bool,
    /// Whether a user mailbox has an Exchange Online licence.
    #[serde(default = "yes")]
    pub licensed: bool,
    /// `Set-CASMailbox -SmtpClientAuthenticationDisabled`: absent is `$null` (follow the
    /// organisation), `false` enables SMTP AUTH for this mailbox, `true` disables it. The mailbox
    /// setting wins over the organisation's.
    #[serde(default)]
    pub smtp_client_authentication_disabled: Option<bool>,
    /// `Add-MailboxPermission -AccessRights FullAccess` trustees: service principal object ids,
    /// display names, or mailbox addresses.
    #[serde(default)]
    pub full_access: Vec<String>,
    /// `Add-RecipientPermission -AccessRights SendAs` trustees, named the same way.
    #[serde(default)]
    pub send_as: Vec<String>,
    /// Password for basic authentication, if the organisation still allows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

impl Tenant {
    /// A tenant with SMTP AUTH enabled organisation-wide and nothing else.
    pub fn new(id: impl Into<String>, domain: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            name: default_tenant_name(),
            domains: vec![domain.into()],
            smtp_client_authentication_disabled: false,
            security_defaults: false,
            basic_auth: BasicAuth::default(),
            exchange_online: true,
            apps: Vec::new(),
            exchange_service_principals: Vec::new(),
            mailboxes: Vec::new(),
            managed_identities: Vec::new(),
            application_access_policies: Vec::new(),
            management_role_assignments: Vec::new(),
            hve_accounts: Vec::new(),
            acs_resources: Vec::new(),
            users: Vec::new(),
        }
    }

    /// Adds a verified domain.
    pub fn domain(mut self, domain: impl Into<String>) -> Self {
        self.domains.push(domain.into());
        self
    }

    /// Adds an app registration.
    pub fn app(mut self, app: App) -> Self {
        self.apps.push(app);
        self
    }

    /// Registers a service principal in Exchange Online (`New-ServicePrincipal`).
    pub fn exchange_service_principal(mut self, app_id: &str, object_id: &str) -> Self {
        self.exchange_service_principals.push(ExchangeServicePrincipal {
            app_id: app_id.to_owned(),
            object_id: object_id.to_owned(),
            display_name: None,
        });
        self
    }

    /// Assigns an application role to a registered service principal over a management scope's
    /// mailboxes (`New-ManagementScope`, then `New-ManagementRoleAssignment -App <app> -Role <role>
    /// -CustomResourceScope <scope>`). `app` names the service principal by object id, app id or
    /// display name.
    pub fn management_role_assignment(mut self, app: &str, role: &str, mailboxes: &[&str]) -> Self {
        self.management_role_assignments
            .push(ManagementRoleAssignment::new(app, role, mailboxes));
        self
    }

    /// Adds a mailbox.
    pub fn mailbox(mut self, mailbox: Mailbox) -> Self {
        self.mailboxes.push(mailbox);
        self
    }

    /// Adds a High Volume Email account.
    pub fn hve_account(mut self, account: HveAccount) -> Self {
        self.hve_accounts.push(account);
        self
    }

    /// Adds an Azure Communication Services resource.
    pub fn acs_resource(mut self, resource: AcsResource) -> Self {
        self.acs_resources.push(resource);
        self
    }

    /// The HVE account with this address.
    pub fn hve_account_by_address(&self, address: &str) -> Option<&HveAccount> {
        self.hve_accounts
            .iter()
            .find(|a| a.address.eq_ignore_ascii_case(address))
    }

    /// Whether `name` (a GUID or a domain, any case) names this tenant.
    pub fn answers_to(&self, name: &str) -> bool {
        self.id.eq_ignore_ascii_case(name) || self.domains.iter().any(|d| d.eq_ignore_ascii_case(name))
    }

    /// The app registration with this client id.
    pub fn app_by_client_id(&self, client_id: &str) -> Option<&App> {
        self.apps.iter().find(|a| a.client_id.eq_ignore_ascii_case(client_id))
    }

    /// The mailbox with this address.
    pub fn mailbox_by_address(&self, address: &str) -> Option<&Mailbox> {
        self.mailboxes.iter().find(|m| m.address.eq_ignore_ascii_case(address))
    }

    /// Whether `domain` is one of the tenant's verified domains.
    pub fn has_domain(&self, domain: &str) -> bool {
        self.domains.iter().any(|d| d.eq_ignore_ascii_case(domain))
    }

    /// The service principal registered in Exchange that `name` (an object id, app id or display
    /// name, any case) identifies, as `-App` and trustee parameters resolve it.
    pub fn exchange_service_principal_named(&self, name: &str) -> Option<&ExchangeServicePrincipal> {
        self.exchange_service_principals.iter().find(|sp| sp.answers_to(name))
    }

    /// The `Application SMTP.SendAsApp` assignments held by `registration`.
    pub fn smtp_send_as_app_assignments<'a>(
        &'a self,
        registration: &'a ExchangeServicePrincipal,
    ) -> impl Iterator<Item = &'a ManagementRoleAssignment> + 'a {
        self.management_role_assignments
            .iter()
            .filter(move |a| a.is_smtp_send_as_app() && registration.answers_to(&a.app))
    }

    /// The Exchange registration whose object id matches a token's `oid` and `appid`.
    pub fn exchange_registration(&self, app_id: &str, object_id: &str) -> Option<&ExchangeServicePrincipal> {
        self.exchange_service_principals
            .iter()
            .find(|sp| sp.app_id.eq_ignore_ascii_case(app_id) && sp.object_id.eq_ignore_ascii_case(object_id))
    }
}

impl App {
    /// An app registration with the three ids the portal shows.
    pub fn new(client_id: &str, object_id: &str, service_principal_id: &str) -> Self {
        Self {
            display_name: default_app_name(),
            client_id: client_id.to_owned(),
            object_id: object_id.to_owned(),
            service_principal_id: service_principal_id.to_owned(),
            enabled: true,
            secrets: Vec::new(),
            certificates: Vec::new(),
            permissions: Vec::new(),
            federated_credentials: Vec::new(),
            multitenant: false,
        }
    }

    /// Makes the app multitenant (or single-tenant again).
    pub fn multitenant(mut self, multitenant: bool) -> Self {
        self.multitenant = multitenant;
        self
    }

    /// Adds a client secret.
    pub fn secret(mut self, id: &str, value: &str, expires: Option<OffsetDateTime>) -> Self {
        self.secrets.push(ClientSecret {
            id: id.to_owned(),
            value: value.to_owned(),
            expires: expires.map(Timestamp),
        });
        self
    }

    /// Uploads a certificate (PEM).
    pub fn certificate_pem(mut self, pem: &str) -> Self {
        self.certificates.push(AppCertificate {
            pem: Some(pem.to_owned()),
            ..AppCertificate::default()
        });
        self
    }

    /// Adds an application permission with or without admin consent.
    pub fn permission(mut self, api: Api, name: &str, admin_consent: bool) -> Self {
        self.permissions.push(Permission {
            api,
            name: name.to_owned(),
            admin_consent,
        });
        self
    }

    /// Roles a token for `api` carries: the consented permissions of that API (none for
    /// Communication Services, which uses Azure role assignments instead).
    pub fn roles_for(&self, api: Api) -> Vec<String> {
        if api == Api::Communication {
            return Vec::new();
        }
        self.permissions
            .iter()
            .filter(|p| p.api == api && p.admin_consent)
            .map(|p| p.name.clone())
            .collect()
    }

    /// The registered certificates, parsed.
    pub fn registered_certificates(&self) -> impl Iterator<Item = &RegisteredCertificate> {
        self.certificates.iter().filter_map(|c| c.registered.as_ref())
    }
}

impl Mailbox {
    /// A licensed user mailbox following the organisation's SMTP AUTH setting.
    pub fn new(address: &str) -> Self {
        Self {
            address: address.to_owned(),
            shared: false,
            licensed: true,
            smtp_client_authentication_disabled: None,
            full_access: Vec::new(),
            send_as: Vec::new(),
            password: None,
        }
    }

    /// Grants FullAccess (`Add-MailboxPermission`) to a trustee.
    pub fn full_access(mut self, trustee: &str) -> Self {
        self.full_access.push(trustee.to_owned());
        self
    }

    /// Grants SendAs (`Add-RecipientPermission`) to a trustee.
    pub fn send_as(mut self, trustee: &str) -> Self {
        self.send_as.push(trustee.to_owned());
        self
    }

    /// Sets the per-mailbox SMTP AUTH switch (`None` = `$null`).
    pub fn smtp_auth_disabled(mut self, disabled: Option<bool>) -> Self {
        self.smtp_client_authentication_disabled = disabled;
        self
    }

    /// Whether one of `names` appears in `grants` (case-insensitive).
    pub fn grants(grants: &[String], names: &[&str]) -> bool {
        grants.iter().any(|g| names.iter().any(|n| g.eq_ignore_ascii_case(n)))
    }
}
