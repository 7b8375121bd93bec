//! Microsoft Graph's directory calls that set an app up and manage its credentials, with the
//! administrator's delegated token (`oauth::device`): applications, their service principals,
//! app role assignments (admin consent), and password credentials.
//!
//! Every failure names the call (method and path), the error Graph gave, and for a refusal
//! what the signed-in administrator lacks ([`Needs`]). The token is sent as a bearer header
//! and is never part of an error or a log.

mod objects;

use serde::de::DeserializeOwned;
use serde_json::{Value, json};

pub(crate) use objects::{AppRole, Application, NewPassword, RequiredAccess, ServicePrincipal};

use crate::graph::GraphError;
use crate::secret::Secret;

/// What a call needs of the signed-in administrator, named when Graph refuses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Needs {
    /// Reading or changing applications and service principals.
    Applications,
    /// Admin consent to another API's application permission (Exchange Online's).
    Consent,
    /// Admin consent to Microsoft Graph's own application permissions.
    GraphConsent,
}

impl Needs {
    fn explain(self) -> &'static str {
        match self {
            Needs::Applications => {
                "the signed-in account needs the role Application Administrator, Cloud Application Administrator or Global Administrator, and the sign-in the delegated scope Application.ReadWrite.All"
            }
            Needs::Consent => {
                "granting admin consent needs the role Application Administrator, Cloud Application Administrator or Global Administrator, and the sign-in the delegated scope AppRoleAssignment.ReadWrite.All"
            }
            Needs::GraphConsent => {
                "consenting to Microsoft Graph's application permissions (Mail.Send) needs the role Global Administrator or Privileged Role Administrator, and the sign-in the delegated scope AppRoleAssignment.ReadWrite.All"
            }
        }
    }
}

/// A directory call that failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DirectoryError {
    /// Graph answered with an error.
    #[error("{call}: Microsoft Graph answered {error}{}", hint(*.error_status, *.needs))]
    Refused {
        /// `METHOD /v1.0/…`.
        call: String,
        /// What Graph said.
        error: GraphError,
        /// Status, for the hint.
        error_status: u16,
        /// What the call needs.
        needs: Needs,
    },
    /// Graph could not be reached.
    #[error("{call}: cannot reach Microsoft Graph: {detail}")]
    Unreachable {
        /// `METHOD /v1.0/…`.
        call: String,
        /// What failed.
        detail: String,
    },
    /// The answer is not what Graph documents.
    #[error("{call}: the answer cannot be read: {detail}")]
    Malformed {
        /// `METHOD /v1.0/…`.
        call: String,
        /// What is wrong with it.
        detail: String,
    },
}

fn hint(status: u16, needs: Needs) -> String {
    if status == 401 || status == 403 {
        format!(": {}", needs.explain())
    } else {
        String::new()
    }
}

/// Microsoft Graph's directory, as the signed-in administrator.
pub(crate) struct Directory {
    client: reqwest::Client,
    /// Graph's root, e.g. `https://graph.microsoft.com`.
    root: String,
    token: Secret,
}

impl Directory {
    /// The directory at `root` with the administrator's `token`.
    pub(crate) fn new(client: reqwest::Client, root: &str, token: Secret) -> Self {
        Self {
            client,
            root: root.trim_end_matches('/').to_owned(),
            token,
        }
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        needs: Needs,
    ) -> Result<Option<T>, DirectoryError> {
        let call = format!("{method} {}", path.split('?').next().unwrap_or(path));
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.root))
            .bearer_auth(self.token.expose());
        if let Some(body) = body {
            request = request.json(&body);
        }
        let unreachable = |e: reqwest::Error| DirectoryError::Unreachable {
            call: call.clone(),
            detail: crate::tls::error_chain(&e),
        };
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(unreachable)?;
        if !(200..300).contains(&status) {
            return Err(DirectoryError::Refused {
                call,
                error: GraphError::parse(status, &bytes, None),
                error_status: status,
                needs,
            });
        }
        if status == 204 || bytes.is_empty() {
            return Ok(None);
        }
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| DirectoryError::Malformed {
                call,
                detail: e.to_string(),
            })
    }

    async fn list<T: DeserializeOwned>(&self, path: &str) -> Result<Vec<T>, DirectoryError> {
        #[derive(serde::Deserialize)]
        struct Page<T> {
            value: Vec<T>,
        }
        let page: Option<Page<T>> = self.call(reqwest::Method::GET, path, None, Needs::Applications).await?;
        Ok(page.map(|p| p.value).unwrap_or_default())
    }

    async fn one<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Value,
        needs: Needs,
    ) -> Result<T, DirectoryError> {
        let call = format!("{method} {path}");
        self.call(method, path, Some(body), needs)
            .await?
            .ok_or(DirectoryError::Malformed {
                call,
                detail: "an empty answer".to_owned(),
            })
    }

    /// The application with this application (client) id, if the tenant has it. `app_id` is a
    /// GUID the caller has checked (it goes into a `$filter`).
    pub(crate) async fn application(&self, app_id: &str) -> Result<Option<Application>, DirectoryError> {
        let path = format!("/v1.0/applications?$filter=appId eq '{app_id}'");
        Ok(self.list(&path).await?.into_iter().next())
    }

    /// Registers an application in this tenant only, asking for `access`.
    pub(crate) async fn create_application(
        &self,
        display_name: &str,
        access: &[RequiredAccess],
    ) -> Result<Application, DirectoryError> {
        let body = json!({
            "displayName": display_name,
            "signInAudience": "AzureADMyOrg",
            "requiredResourceAccess": objects::required_json(access),
        });
        self.one(reqwest::Method::POST, "/v1.0/applications", body, Needs::Applications)
            .await
    }

    /// Replaces the application's requested permissions with `access`.
    pub(crate) async fn set_required_access(
        &self,
        object_id: &str,
        access: &[RequiredAccess],
    ) -> Result<(), DirectoryError> {
        let body = json!({ "requiredResourceAccess": objects::required_json(access) });
        let path = format!("/v1.0/applications/{object_id}");
        self.call::<Value>(reqwest::Method::PATCH, &path, Some(body), Needs::Applications)
            .await
            .map(drop)
    }

    /// The service principal of an application (client) id: the app's own, or a resource API's.
    pub(crate) async fn service_principal(&self, app_id: &str) -> Result<Option<ServicePrincipal>, DirectoryError> {
        let path = format!("/v1.0/servicePrincipals?$filter=appId eq '{app_id}'");
        Ok(self.list(&path).await?.into_iter().next())
    }

    /// Creates the service principal (the Enterprise application) of an application.
    pub(crate) async fn create_service_principal(&self, app_id: &str) -> Result<ServicePrincipal, DirectoryError> {
        let body = json!({ "appId": app_id });
        self.one(
            reqwest::Method::POST,
            "/v1.0/servicePrincipals",
            body,
            Needs::Applications,
        )
        .await
    }

    /// The app roles granted to a service principal, as (resource id, app role id).
    pub(crate) async fn granted_roles(&self, principal_id: &str) -> Result<Vec<(String, String)>, DirectoryError> {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Assignment {
            resource_id: String,
            app_role_id: String,
        }
        let path = format!("/v1.0/servicePrincipals/{principal_id}/appRoleAssignments");
        let list: Vec<Assignment> = self.list(&path).await?;
        Ok(list.into_iter().map(|a| (a.resource_id, a.app_role_id)).collect())
    }

    /// Admin consent: the app role `role` of `resource` granted to `principal_id`.
    pub(crate) async fn grant_role(
        &self,
        principal_id: &str,
        resource: &ServicePrincipal,
        role: &AppRole,
        needs: Needs,
    ) -> Result<(), DirectoryError> {
        let body = json!({ "principalId": principal_id, "resourceId": resource.id, "appRoleId": role.id });
        let path = format!("/v1.0/servicePrincipals/{principal_id}/appRoleAssignments");
        self.one::<Value>(reqwest::Method::POST, &path, body, needs)
            .await
            .map(drop)
    }

    /// A new client secret on the application, valid until `end` (RFC 3339).
    pub(crate) async fn add_password(
        &self,
        object_id: &str,
        display_name: &str,
        end: &str,
    ) -> Result<NewPassword, DirectoryError> {
        let body = json!({ "passwordCredential": { "displayName": display_name, "endDateTime": end } });
        let path = format!("/v1.0/applications/{object_id}/addPassword");
        self.one(reqwest::Method::POST, &path, body, Needs::Applications).await
    }

    /// Removes the client secret `key_id` from the application.
    #[allow(dead_code, reason = "credential rotate, next")]
    pub(crate) async fn remove_password(&self, object_id: &str, key_id: &str) -> Result<(), DirectoryError> {
        let body = json!({ "keyId": key_id });
        let path = format!("/v1.0/applications/{object_id}/removePassword");
        self.call::<Value>(reqwest::Method::POST, &path, Some(body), Needs::Applications)
            .await
            .map(drop)
    }
}
