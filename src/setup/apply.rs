//! `setup --apply`: the Entra part of the setup done through Microsoft Graph, as the signed-in
//! administrator. Each step finds what an earlier run made before it makes anything, so a run
//! stopped half way and run again finishes, and a run after a finished one changes nothing:
//!
//! 1. the app registration: found by the client id stored in the config file, else created
//!    (never found by name: two apps may share one) with the permission the service needs;
//! 2. its service principal (the Enterprise application, whose object id Exchange wants);
//! 3. admin consent: the app role assigned on the resource API's service principal;
//! 4. a client secret, unless the one stored is still the app's and has time left.
//!
//! Which permission: none with RBAC for Applications (Microsoft: "Refrain from adding any
//! permissions"), Office 365 Exchange Online's `SMTP.SendAsApp` with `--per-mailbox`, its
//! `Mail.Send` for High Volume Email, Microsoft Graph's `Mail.Send` for the Graph transport.

use std::time::Duration;

use super::Access;
use crate::clock::Timestamp;
use crate::directory::{
    AppRole, Application, Directory, DirectoryError, Needs, NewPassword, RequiredAccess, ServicePrincipal,
};
use crate::service::Service;

/// Office 365 Exchange Online's application id.
pub(crate) const EXCHANGE_ONLINE: &str = "00000002-0000-0ff1-ce00-000000000000";
/// Microsoft Graph's application id.
pub(crate) const MICROSOFT_GRAPH: &str = "00000003-0000-0000-c000-000000000000";
/// A stored secret with less than this left is replaced.
pub(crate) const SECRET_RENEW_WITHIN: Duration = Duration::from_secs(30 * 86_400);

/// The application permission an app needs: the resource API and the role's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Permission {
    /// The resource API's application id.
    pub(crate) resource: &'static str,
    /// The app role's value.
    pub(crate) role: &'static str,
}

impl Permission {
    /// What the service (and, for Exchange, the access and transport) needs; `None` with RBAC.
    pub(crate) fn needed(service: Service, access: Access, graph_transport: bool) -> Option<Self> {
        let exchange = |role| {
            Some(Permission {
                resource: EXCHANGE_ONLINE,
                role,
            })
        };
        match service {
            _ if graph_transport => Some(Permission {
                resource: MICROSOFT_GRAPH,
                role: "Mail.Send",
            }),
            Service::Exchange if access == Access::Rbac => None,
            Service::Exchange => exchange("SMTP.SendAsApp"),
            Service::Hve => exchange("Mail.Send"),
            // ACS authorises with an Azure role on the resource, not an app role.
            Service::Acs => None,
        }
    }

    fn needs(self) -> Needs {
        if self.resource == MICROSOFT_GRAPH {
            Needs::GraphConsent
        } else {
            Needs::Consent
        }
    }
}

/// Whether a step made something or found it made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Done {
    /// Made now.
    Created,
    /// Changed now.
    Updated,
    /// Already so.
    Found,
}

/// Why a step failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApplyError {
    /// A Graph call failed.
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    /// The stored client id names no app of the tenant.
    #[error(
        "the config file names the app {0}, and the tenant has no app with that Application (client) ID: it was deleted, or the config names another tenant; remove client_id from the account to make a new app"
    )]
    StoredAppGone(String),
    /// A resource API without its service principal or role.
    #[error("{0}")]
    Resource(String),
}

/// The resource API's service principal and the app role of `permission`.
pub(crate) async fn resource(
    dir: &Directory,
    permission: Permission,
) -> Result<(ServicePrincipal, AppRole), ApplyError> {
    let name = if permission.resource == MICROSOFT_GRAPH {
        "Microsoft Graph"
    } else {
        "Office 365 Exchange Online"
    };
    let sp = dir.service_principal(permission.resource).await?.ok_or_else(|| {
        ApplyError::Resource(format!(
            "the tenant has no service principal of {name} ({}): it has no Exchange Online subscription",
            permission.resource
        ))
    })?;
    let role = sp
        .app_role(permission.role)
        .cloned()
        .ok_or_else(|| ApplyError::Resource(format!("{name} has no application permission {}", permission.role)))?;
    Ok((sp, role))
}

/// Step 1: the app registration of the stored client id, or a new one, asking for `wanted`.
pub(crate) async fn app(
    dir: &Directory,
    stored: Option<&str>,
    display_name: &str,
    wanted: &[RequiredAccess],
) -> Result<(Application, Done), ApplyError> {
    let Some(client_id) = stored else {
        return Ok((dir.create_application(display_name, wanted).await?, Done::Created));
    };
    let app = dir
        .application(client_id)
        .await?
        .ok_or_else(|| ApplyError::StoredAppGone(client_id.to_owned()))?;
    if app.asks_for(wanted) {
        return Ok((app, Done::Found));
    }
    // Keep what it asks for already (another tool's permission) and add ours.
    let mut all: Vec<RequiredAccess> = app
        .required_resource_access
        .iter()
        .flat_map(|r| {
            r.roles().map(|role| RequiredAccess {
                resource_app_id: r.resource().to_owned(),
                role_id: role.to_owned(),
            })
        })
        .collect();
    all.extend(wanted.iter().filter(|w| !all.contains(w)).cloned().collect::<Vec<_>>());
    dir.set_required_access(&app.id, &all).await?;
    Ok((app, Done::Updated))
}

/// Step 2: the app's service principal.
pub(crate) async fn service_principal(
    dir: &Directory,
    app: &Application,
) -> Result<(ServicePrincipal, Done), ApplyError> {
    match dir.service_principal(&app.app_id).await? {
        Some(sp) => Ok((sp, Done::Found)),
        None => Ok((dir.create_service_principal(&app.app_id).await?, Done::Created)),
    }
}

/// Step 3: admin consent to `role` of `resource` for the app's service principal.
pub(crate) async fn consent(
    dir: &Directory,
    principal: &ServicePrincipal,
    resource: &ServicePrincipal,
    role: &AppRole,
    permission: Permission,
) -> Result<Done, ApplyError> {
    let granted = dir.granted_roles(&principal.id).await?;
    let has = granted
        .iter()
        .any(|(r, a)| r.eq_ignore_ascii_case(&resource.id) && a.eq_ignore_ascii_case(&role.id));
    if has {
        return Ok(Done::Found);
    }
    dir.grant_role(&principal.id, resource, role, permission.needs())
        .await?;
    Ok(Done::Created)
}

/// Whether the stored secret `key_id` is still the app's and lasts beyond `SECRET_RENEW_WITHIN`
/// from `now`.
pub(crate) fn secret_lasts(app: &Application, key_id: &str, now: Timestamp) -> bool {
    app.password(key_id)
        .and_then(|p| p.end_date_time.as_deref())
        .and_then(|end| time::OffsetDateTime::parse(end, &time::format_description::well_known::Rfc3339).ok())
        .is_some_and(|end| Timestamp::from_datetime(end) > now + SECRET_RENEW_WITHIN)
}

/// Step 4: a new client secret on the app, ending `days` days from `now`.
pub(crate) async fn add_secret(
    dir: &Directory,
    app: &Application,
    now: Timestamp,
    days: u32,
) -> Result<NewPassword, ApplyError> {
    let end = (now + Duration::from_secs(u64::from(days) * 86_400))
        .to_datetime()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let date = now.date();
    Ok(dir.add_password(&app.id, &format!("m365-mailer {date}"), &end).await?)
}

/// The app roles of `permission` as `requiredResourceAccess` wants them.
pub(crate) fn required(permission: Option<(Permission, &AppRole)>) -> Vec<RequiredAccess> {
    permission
        .map(|(p, role)| RequiredAccess {
            resource_app_id: p.resource.to_owned(),
            role_id: role.id.clone(),
        })
        .into_iter()
        .collect()
}
