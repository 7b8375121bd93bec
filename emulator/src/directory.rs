//! The Microsoft Graph directory calls that set an app up, with a delegated token from the
//! device authorization grant (`entra/device.rs`): applications (create, find by `appId`,
//! read, `addPassword`, `removePassword`), service principals (create, find by `appId`, the
//! resource service principals of Exchange Online and Microsoft Graph with their app roles) and
//! app role assignments (admin consent). They change the scenario, so what they create signs
//! in at the token endpoint at once.
//!
//! Authorisation is Graph's for delegated calls: the token's `scp` must hold the scope of the
//! call (`Application.ReadWrite.All`, `AppRoleAssignment.ReadWrite.All`), and the signed-in
//! user must hold a directory role that may do it (Global, Application or Cloud Application
//! Administrator; consent to Microsoft Graph's application permissions needs Global or
//! Privileged Role Administrator). Otherwise `403 Authorization_RequestDenied`,
//! "Insufficient privileges to complete the operation.", as Graph answers both.
//!
//! App role ids: Microsoft Graph's `Mail.Send` is Graph's own; the emulator's Exchange Online
//! roles have ids of its own (clients look roles up by `value`, never by a remembered id).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Shared;
use crate::entra::device::{DelegatedClaims, GRAPH_APP_ID};
use crate::graph::GraphError;
use crate::model::{Api, App, ClientSecret, DIRECTORY_ROLES, Permission, Tenant, Timestamp};

/// Office 365 Exchange Online's application id.
pub const EXCHANGE_APP_ID: &str = "00000002-0000-0ff1-ce00-000000000000";

/// A resource API: the API, its app id, its service principal's object id, its app roles as
/// (id, value).
type Resource = (Api, &'static str, &'static str, &'static [(&'static str, &'static str)]);

/// The two resource APIs.
const RESOURCES: [Resource; 2] = [
    (
        Api::Exchange,
        EXCHANGE_APP_ID,
        "e1a2b3c4-0000-4000-8000-00000000e001",
        &[
            ("e1a2b3c4-0000-4000-8000-0000000a0001", "SMTP.SendAsApp"),
            ("e1a2b3c4-0000-4000-8000-0000000a0002", "Mail.Send"),
            ("e1a2b3c4-0000-4000-8000-0000000a0003", "full_access_as_app"),
        ],
    ),
    (
        Api::Graph,
        GRAPH_APP_ID,
        "e1a2b3c4-0000-4000-8000-00000000e002",
        &[
            ("b633e1c5-b582-4048-a93e-9f11b44c7e96", "Mail.Send"),
            ("e2a3a72e-5f79-4c64-b1b1-878b674786c9", "Mail.ReadWrite"),
        ],
    ),
];

const APPLICATION_SCOPE: &str = "Application.ReadWrite.All";
const ASSIGNMENT_SCOPE: &str = "AppRoleAssignment.ReadWrite.All";
/// Roles that may manage applications and consent to other APIs' application permissions.
const APP_ADMINS: [&str; 3] = [
    "Global Administrator",
    "Application Administrator",
    "Cloud Application Administrator",
];
/// Roles that may consent to Microsoft Graph's application permissions.
const GRAPH_CONSENT: [&str; 2] = ["Global Administrator", "Privileged Role Administrator"];

pub(crate) fn router(shared: Arc<Shared>) -> Router<Arc<Shared>> {
    Router::new()
        .route("/v1.0/applications", get(list_applications).post(create_application))
        .route(
            "/v1.0/applications/{id}",
            get(get_application).patch(update_application),
        )
        .route("/v1.0/applications/{id}/addPassword", post(add_password))
        .route("/v1.0/applications/{id}/removePassword", post(remove_password))
        .route(
            "/v1.0/servicePrincipals",
            get(list_service_principals).post(create_service_principal),
        )
        .route(
            "/v1.0/servicePrincipals/{id}/appRoleAssignments",
            get(list_app_role_assignments).post(assign_app_role),
        )
        .layer(axum::middleware::from_fn_with_state(shared, faults))
}

/// Faults of stage `directory`, before any call is handled.
async fn faults(
    State(shared): State<Arc<Shared>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match crate::graph::stage_fault(&shared, crate::faults::Stage::Directory, None).await {
        crate::graph::Fired::Answer(response) => response,
        _ => next.run(request).await,
    }
}

/// The signed-in administrator.
struct Caller {
    claims: DelegatedClaims,
    roles: Vec<&'static str>,
}

impl Caller {
    fn may(&self, scope: &str, roles: &[&str]) -> Result<(), GraphError> {
        let scoped = self.claims.scp.split(' ').any(|s| s.eq_ignore_ascii_case(scope));
        let allowed = self.roles.iter().any(|r| roles.contains(r));
        if scoped && allowed {
            Ok(())
        } else {
            Err(GraphError(
                StatusCode::FORBIDDEN,
                "Authorization_RequestDenied",
                "Insufficient privileges to complete the operation.".to_owned(),
            ))
        }
    }
}

fn caller(shared: &Shared, headers: &HeaderMap) -> Result<Caller, GraphError> {
    let unauthorized = |m: &str| GraphError(StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken", m.to_owned());
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| unauthorized("Access token is empty."))?;
    let claims = crate::entra::device::verify(bearer, &shared.signing, shared.clock.now().unix_timestamp())
        .ok_or_else(|| unauthorized("Access token validation failure."))?;
    let roles = DIRECTORY_ROLES
        .iter()
        .filter(|(_, id)| claims.wids.iter().any(|w| w == id))
        .map(|(name, _)| *name)
        .collect();
    Ok(Caller { claims, roles })
}

/// Runs `change` on the caller's tenant in a new scenario, validated before it is kept.
fn change<T>(
    shared: &Shared,
    tenant_id: &str,
    change: impl FnOnce(&mut Tenant) -> Result<T, GraphError>,
) -> Result<T, GraphError> {
    let mut result = None;
    let mut failure = None;
    shared
        .update(|scenario| {
            let Some(tenant) = scenario
                .tenants
                .iter_mut()
                .find(|t| t.id.eq_ignore_ascii_case(tenant_id))
            else {
                failure = Some(not_found("tenant"));
                return;
            };
            match change(tenant) {
                Ok(value) => result = Some(value),
                Err(e) => failure = Some(e),
            }
        })
        .map_err(|e| GraphError(StatusCode::BAD_REQUEST, "Request_BadRequest", e.to_string()))?;
    match (result, failure) {
        (Some(value), None) => Ok(value),
        (_, Some(e)) => Err(e),
        (None, None) => Err(not_found("tenant")),
    }
}

/// The application of object id `id`.
fn app_mut<'a>(tenant: &'a mut Tenant, id: &str) -> Result<&'a mut App, GraphError> {
    tenant
        .apps
        .iter_mut()
        .find(|a| a.object_id.eq_ignore_ascii_case(id))
        .ok_or_else(|| not_found(id))
}

fn not_found(what: &str) -> GraphError {
    GraphError(
        StatusCode::NOT_FOUND,
        "Request_ResourceNotFound",
        format!("Resource '{what}' does not exist or one of its queried reference-property objects are not present."),
    )
}

fn bad_request(message: &str) -> GraphError {
    GraphError(StatusCode::BAD_REQUEST, "Request_BadRequest", message.to_owned())
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, GraphError> {
    serde_json::from_slice(body).map_err(|e| bad_request(&format!("Invalid request body: {e}")))
}

/// An application as Graph shows it.
fn application_json(app: &App) -> Value {
    let mut required: Vec<Value> = Vec::new();
    for (api, app_id, _, roles) in RESOURCES {
        let access: Vec<Value> = app
            .permissions
            .iter()
            .filter(|p| p.api == api)
            .filter_map(|p| roles.iter().find(|(_, v)| *v == p.name))
            .map(|(id, _)| json!({ "id": id, "type": "Role" }))
            .collect();
        if !access.is_empty() {
            required.push(json!({ "resourceAppId": app_id, "resourceAccess": access }));
        }
    }
    let passwords: Vec<Value> = app
        .secrets
        .iter()
        .map(|s| {
            json!({
                "keyId": s.id,
                "hint": s.value.chars().take(3).collect::<String>(),
                "endDateTime": s.expires.as_ref().map(|t| t.0.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()),
            })
        })
        .collect();
    json!({
        "id": app.object_id,
        "appId": app.client_id,
        "displayName": app.display_name,
        "signInAudience": if app.multitenant { "AzureADMultipleOrgs" } else { "AzureADMyOrg" },
        "requiredResourceAccess": required,
        "passwordCredentials": passwords,
    })
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(rename = "$filter")]
    filter: Option<String>,
}

/// `appId eq '…'`, the one filter these lists take.
fn app_id_filter(query: &ListQuery) -> Result<Option<String>, GraphError> {
    let Some(filter) = &query.filter else { return Ok(None) };
    filter
        .trim()
        .strip_prefix("appId eq '")
        .and_then(|rest| rest.strip_suffix('\''))
        .map(|id| Some(id.to_owned()))
        .ok_or_else(|| bad_request("Unsupported filter: only appId eq '…' is known here."))
}

fn respond(shared: &Shared, result: Result<(StatusCode, Value), GraphError>) -> Response {
    match result {
        Ok((StatusCode::NO_CONTENT, _)) => StatusCode::NO_CONTENT.into_response(),
        Ok((status, body)) => (status, axum::Json(body)).into_response(),
        Err(e) => e.respond(shared),
    }
}

async fn list_applications(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Response {
    let result = (|| {
        let caller = caller(&shared, &headers)?;
        caller.may(APPLICATION_SCOPE, &APP_ADMINS)?;
        let wanted = app_id_filter(&query)?;
        let scenario = shared.scenario();
        let tenant = scenario.tenant(&caller.claims.tid).ok_or_else(|| not_found("tenant"))?;
        let value: Vec<Value> = tenant
            .apps
            .iter()
            .filter(|a| wanted.as_ref().is_none_or(|w| a.client_id.eq_ignore_ascii_case(w)))
            .map(application_json)
            .collect();
        Ok((StatusCode::OK, json!({ "value": value })))
    })();
    respond(&shared, result)
}

async fn get_application(State(shared): State<Arc<Shared>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let result = (|| {
        let caller = caller(&shared, &headers)?;
        caller.may(APPLICATION_SCOPE, &APP_ADMINS)?;
        let scenario = shared.scenario();
        let tenant = scenario.tenant(&caller.claims.tid).ok_or_else(|| not_found("tenant"))?;
        let app = tenant
            .apps
            .iter()
            .find(|a| a.object_id.eq_ignore_ascii_case(&id))
            .ok_or_else(|| not_found(&id))?;
        Ok((StatusCode::OK, application_json(app)))
    })();
    respond(&shared, result)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewApplication {
    display_name: String,
    #[serde(default)]
    required_resource_access: Vec<ResourceAccess>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResourceAccess {
    resource_app_id: String,
    resource_access: Vec<RoleRef>,
}

#[derive(Deserialize)]
struct RoleRef {
    id: String,
    #[serde(rename = "type")]
    kind: String,
}

/// The permission an app role id of a resource names.
fn permission(resource_app_id: &str, role_id: &str, consent: bool) -> Result<Permission, GraphError> {
    let (api, _, _, roles) = RESOURCES
        .iter()
        .find(|(_, app_id, _, _)| app_id.eq_ignore_ascii_case(resource_app_id))
        .ok_or_else(|| bad_request(&format!("Resource '{resource_app_id}' is not known here.")))?;
    let (_, value) = roles
        .iter()
        .find(|(id, _)| id.eq_ignore_ascii_case(role_id))
        .ok_or_else(|| {
            bad_request(&format!(
                "Permission (scope or role) '{role_id}' does not exist on resource '{resource_app_id}'."
            ))
        })?;
    Ok(Permission {
        api: *api,
        name: (*value).to_owned(),
        admin_consent: consent,
    })
}

/// The permissions a `requiredResourceAccess` asks for, not yet consented.
fn requested(access: &[ResourceAccess]) -> Result<Vec<Permission>, GraphError> {
    let mut permissions = Vec::new();
    for resource in access {
        for role in &resource.resource_access {
            if role.kind != "Role" {
                return Err(bad_request("Only application permissions (type Role) are known here."));
            }
            permissions.push(permission(&resource.resource_app_id, &role.id, false)?);
        }
    }
    Ok(permissions)
}

async fn create_application(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let result = (|| {
        let caller = caller(&shared, &headers)?;
        caller.may(APPLICATION_SCOPE, &APP_ADMINS)?;
        let new: NewApplication = parse(&body)?;
        let permissions = requested(&new.required_resource_access)?;
        let mut app = App::new(&uuid::Uuid::new_v4().to_string(), &uuid::Uuid::new_v4().to_string(), "");
        app.display_name = new.display_name;
        app.permissions = permissions;
        let shown = application_json(&app);
        change(&shared, &caller.claims.tid, |tenant| {
            tenant.apps.push(app);
            Ok(())
        })?;
        Ok((StatusCode::CREATED, shown))
    })();
    respond(&shared, result)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApplicationUpdate {
    #[serde(default)]
    required_resource_access: Option<Vec<ResourceAccess>>,
}

/// `PATCH /applications/{id}`: the requested permissions replaced (consent already given to one
/// still requested is kept; the others go).
async fn update_application(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let result = (|| {
        let caller = caller(&shared, &headers)?;
        caller.may(APPLICATION_SCOPE, &APP_ADMINS)?;
        let update: ApplicationUpdate = parse(&body)?;
        let Some(access) = update.required_resource_access else {
            return Ok((StatusCode::NO_CONTENT, Value::Null));
        };
        let wanted = requested(&access)?;
        change(&shared, &caller.claims.tid, |tenant| {
            let app = app_mut(tenant, &id)?;
            app.permissions = wanted
                .into_iter()
                .map(|mut w| {
                    w.admin_consent = app
                        .permissions
                        .iter()
                        .any(|p| p.api == w.api && p.name == w.name && p.admin_consent);
                    w
                })
                .collect();
            Ok(())
        })?;
        Ok((StatusCode::NO_CONTENT, Value::Null))
    })();
    respond(&shared, result)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AddPassword {
    #[serde(default)]
    password_credential: PasswordCredential,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PasswordCredential {
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    end_date_time: Option<String>,
}

async fn add_password(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let result = (|| {
        let caller = caller(&shared, &headers)?;
        caller.may(APPLICATION_SCOPE, &APP_ADMINS)?;
        let request: AddPassword = parse(&body)?;
        let now = shared.clock.now();
        // Graph's default: two years.
        let end = match &request.password_credential.end_date_time {
            Some(text) => time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                .map_err(|_| bad_request("endDateTime is not a date and time (ISO 8601)."))?,
            None => now + time::Duration::days(730),
        };
        if end <= now {
            return Err(bad_request("The end date must be in the future."));
        }
        let secret = ClientSecret {
            id: uuid::Uuid::new_v4().to_string(),
            value: format!(
                "{}~{}",
                &uuid::Uuid::new_v4().simple().to_string()[..3],
                uuid::Uuid::new_v4().simple()
            ),
            expires: Some(Timestamp(end)),
        };
        let shown = json!({
            "keyId": secret.id,
            "secretText": secret.value,
            "hint": secret.value.chars().take(3).collect::<String>(),
            "displayName": request.password_credential.display_name,
            "endDateTime": end.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        });
        change(&shared, &caller.claims.tid, |tenant| {
            let app = app_mut(tenant, &id)?;
            app.secrets.push(secret);
            Ok(())
        })?;
        Ok((StatusCode::OK, shown))
    })();
    respond(&shared, result)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RemovePassword {
    key_id: String,
}

async fn remove_password(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let result = (|| {
        let caller = caller(&shared, &headers)?;
        caller.may(APPLICATION_SCOPE, &APP_ADMINS)?;
        let request: RemovePassword = parse(&body)?;
        change(&shared, &caller.claims.tid, |tenant| {
            let app = app_mut(tenant, &id)?;
            let before = app.secrets.len();
            app.secrets.retain(|s| !s.id.eq_ignore_ascii_case(&request.key_id));
            if app.secrets.len() == before {
                return Err(bad_request(&format!(
                    "No password credential with keyId {} exists.",
                    request.key_id
                )));
            }
            Ok(())
        })?;
        Ok((StatusCode::NO_CONTENT, Value::Null))
    })();
    respond(&shared, result)
}

fn service_principal_json(app: &App) -> Value {
    json!({ "id": app.service_principal_id, "appId": app.client_id, "displayName": app.display_name, "appRoles": [] })
}

fn resource_json(index: usize) -> Value {
    let (_, app_id, id, roles) = RESOURCES[index];
    let name = if app_id == EXCHANGE_APP_ID {
        "Office 365 Exchange Online"
    } else {
        "Microsoft Graph"
    };
    let roles: Vec<Value> = roles
        .iter()
        .map(
            |(id, value)| json!({ "id": id, "value": value, "allowedMemberTypes": ["Application"], "isEnabled": true }),
        )
        .collect();
    json!({ "id": id, "appId": app_id, "displayName": name, "appRoles": roles })
}

async fn list_service_principals(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Response {
    let result = (|| {
        let caller = caller(&shared, &headers)?;
        caller.may(APPLICATION_SCOPE, &APP_ADMINS)?;
        let wanted = app_id_filter(&query)?;
        let scenario = shared.scenario();
        let tenant = scenario.tenant(&caller.claims.tid).ok_or_else(|| not_found("tenant"))?;
        let matches = |app_id: &str| wanted.as_ref().is_none_or(|w| w.eq_ignore_ascii_case(app_id));
        let mut value: Vec<Value> = (0..RESOURCES.len())
            .filter(|i| matches(RESOURCES[*i].1))
            .map(resource_json)
            .collect();
        value.extend(
            tenant
                .apps
                .iter()
                .filter(|a| !a.service_principal_id.is_empty() && matches(&a.client_id))
                .map(service_principal_json),
        );
        Ok((StatusCode::OK, json!({ "value": value })))
    })();
    respond(&shared, result)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewServicePrincipal {
    app_id: String,
}

async fn create_service_principal(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let result = (|| {
        let caller = caller(&shared, &headers)?;
        caller.may(APPLICATION_SCOPE, &APP_ADMINS)?;
        let new: NewServicePrincipal = parse(&body)?;
        let shown = change(&shared, &caller.claims.tid, |tenant| {
            let app = tenant
                .apps
                .iter_mut()
                .find(|a| a.client_id.eq_ignore_ascii_case(&new.app_id))
                .ok_or_else(|| {
                    bad_request(&format!(
                        "The appId '{}' of the service principal does not reference a valid application object.",
                        new.app_id
                    ))
                })?;
            if !app.service_principal_id.is_empty() {
                return Err(bad_request_key("appId"));
            }
            app.service_principal_id = uuid::Uuid::new_v4().to_string();
            Ok(service_principal_json(app))
        })?;
        Ok((StatusCode::CREATED, shown))
    })();
    respond(&shared, result)
}

fn bad_request_key(property: &str) -> GraphError {
    GraphError(
        StatusCode::BAD_REQUEST,
        "Request_MultipleObjectsWithSameKeyValue",
        format!("Another object with the same value for property {property} already exists."),
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewAssignment {
    principal_id: String,
    resource_id: String,
    app_role_id: String,
}

async fn assign_app_role(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let result = (|| {
        let caller = caller(&shared, &headers)?;
        let new: NewAssignment = parse(&body)?;
        if !new.principal_id.eq_ignore_ascii_case(&id) {
            return Err(bad_request("principalId must be the service principal of the URL."));
        }
        let (api, resource_app_id, _, _) = RESOURCES
            .iter()
            .find(|(_, _, sp, _)| sp.eq_ignore_ascii_case(&new.resource_id))
            .ok_or_else(|| not_found(&new.resource_id))?;
        let consenters: &[&str] = if *api == Api::Graph {
            &GRAPH_CONSENT
        } else {
            &APP_ADMINS
        };
        caller.may(ASSIGNMENT_SCOPE, consenters)?;
        let granted = permission(resource_app_id, &new.app_role_id, true)?;
        let assignment_id = uuid::Uuid::new_v4().to_string();
        change(&shared, &caller.claims.tid, |tenant| {
            let app = tenant
                .apps
                .iter_mut()
                .find(|a| !a.service_principal_id.is_empty() && a.service_principal_id.eq_ignore_ascii_case(&id))
                .ok_or_else(|| not_found(&id))?;
            match app
                .permissions
                .iter_mut()
                .find(|p| p.api == granted.api && p.name == granted.name)
            {
                Some(p) => p.admin_consent = true,
                None => app.permissions.push(granted.clone()),
            }
            Ok(())
        })?;
        Ok((
            StatusCode::CREATED,
            json!({ "id": assignment_id, "principalId": new.principal_id, "resourceId": new.resource_id, "appRoleId": new.app_role_id }),
        ))
    })();
    respond(&shared, result)
}

/// The app role assignments a service principal holds: one per consented permission.
async fn list_app_role_assignments(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let result = (|| {
        let caller = caller(&shared, &headers)?;
        caller.may(APPLICATION_SCOPE, &APP_ADMINS)?;
        let scenario = shared.scenario();
        let tenant = scenario.tenant(&caller.claims.tid).ok_or_else(|| not_found("tenant"))?;
        let app = tenant
            .apps
            .iter()
            .find(|a| !a.service_principal_id.is_empty() && a.service_principal_id.eq_ignore_ascii_case(&id))
            .ok_or_else(|| not_found(&id))?;
        let value: Vec<Value> = app
            .permissions
            .iter()
            .filter(|p| p.admin_consent)
            .filter_map(|p| {
                let (_, _, resource, roles) = RESOURCES.iter().find(|(api, ..)| *api == p.api)?;
                let (role, _) = roles.iter().find(|(_, value)| *value == p.name)?;
                Some(json!({ "principalId": app.service_principal_id, "resourceId": resource, "appRoleId": role }))
            })
            .collect();
        Ok((StatusCode::OK, json!({ "value": value })))
    })();
    respond(&shared, result)
}
