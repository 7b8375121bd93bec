//! The directory objects as Graph shows them, read without I/O. Ids are checked to be GUIDs
//! when they are read: they go into the paths of later calls.

use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};

use crate::secret::Secret;

/// A GUID, as Graph's ids are; anything else is refused when the answer is read.
fn guid<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let text = String::deserialize(d)?;
    uuid::Uuid::parse_str(&text)
        .map(|u| u.to_string())
        .map_err(|_| serde::de::Error::custom("an id that is not a GUID"))
}

/// An application registration.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Application {
    /// The object id (App registrations → Object ID).
    #[serde(deserialize_with = "guid")]
    pub(crate) id: String,
    /// The application (client) id.
    #[serde(deserialize_with = "guid")]
    pub(crate) app_id: String,
    /// The permissions it asks for.
    #[serde(default)]
    pub(crate) required_resource_access: Vec<RequiredAccessJson>,
    /// Its client secrets (without their values).
    #[serde(default)]
    pub(crate) password_credentials: Vec<PasswordCredential>,
}

impl Application {
    /// Whether it asks for every permission of `wanted`.
    pub(crate) fn asks_for(&self, wanted: &[RequiredAccess]) -> bool {
        wanted.iter().all(|w| {
            self.required_resource_access.iter().any(|r| {
                r.resource_app_id.eq_ignore_ascii_case(&w.resource_app_id)
                    && r.resource_access.iter().any(|a| a.id.eq_ignore_ascii_case(&w.role_id))
            })
        })
    }

    /// The client secret `key_id`, if the application has it.
    pub(crate) fn password(&self, key_id: &str) -> Option<&PasswordCredential> {
        self.password_credentials
            .iter()
            .find(|p| p.key_id.eq_ignore_ascii_case(key_id))
    }
}

/// `requiredResourceAccess` as Graph shows it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RequiredAccessJson {
    resource_app_id: String,
    #[serde(default)]
    resource_access: Vec<AccessJson>,
}

impl RequiredAccessJson {
    /// The resource API's application id.
    pub(crate) fn resource(&self) -> &str {
        &self.resource_app_id
    }

    /// The ids of the roles asked for.
    pub(crate) fn roles(&self) -> impl Iterator<Item = &str> {
        self.resource_access.iter().map(|a| a.id.as_str())
    }
}

#[derive(Debug, Clone, Deserialize)]
struct AccessJson {
    id: String,
}

/// A client secret of an application: its id and when it ends.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PasswordCredential {
    /// The Secret ID.
    #[serde(deserialize_with = "guid")]
    pub(crate) key_id: String,
    /// `endDateTime`, RFC 3339.
    #[serde(default)]
    pub(crate) end_date_time: Option<String>,
}

/// One application permission an app asks for: an app role of a resource API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RequiredAccess {
    /// The resource API's application id (Office 365 Exchange Online, Microsoft Graph).
    pub(crate) resource_app_id: String,
    /// The app role's id on that API.
    pub(crate) role_id: String,
}

/// `requiredResourceAccess` for these permissions, one entry per resource.
pub(crate) fn required_json(access: &[RequiredAccess]) -> Value {
    let mut resources: Vec<(&str, Vec<Value>)> = Vec::new();
    for a in access {
        let role = json!({ "id": a.role_id, "type": "Role" });
        match resources.iter_mut().find(|(r, _)| *r == a.resource_app_id) {
            Some((_, roles)) => roles.push(role),
            None => resources.push((&a.resource_app_id, vec![role])),
        }
    }
    Value::Array(
        resources
            .into_iter()
            .map(|(resource, roles)| json!({ "resourceAppId": resource, "resourceAccess": roles }))
            .collect(),
    )
}

/// A service principal: an Enterprise application, or a resource API's.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ServicePrincipal {
    /// The object id (Enterprise applications → Object ID).
    #[serde(deserialize_with = "guid")]
    pub(crate) id: String,
    /// The application id.
    #[serde(deserialize_with = "guid")]
    pub(crate) app_id: String,
    /// The app roles it defines (a resource API's).
    #[serde(default)]
    pub(crate) app_roles: Vec<AppRole>,
}

impl ServicePrincipal {
    /// The application permission named `value` (e.g. `SMTP.SendAsApp`).
    pub(crate) fn app_role(&self, value: &str) -> Option<&AppRole> {
        self.app_roles
            .iter()
            .find(|r| r.value == value && r.allowed_member_types.iter().any(|t| t == "Application"))
    }
}

/// An app role of a resource API.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AppRole {
    /// Its id.
    #[serde(deserialize_with = "guid")]
    pub(crate) id: String,
    /// Its name, e.g. `SMTP.SendAsApp`.
    #[serde(default)]
    pub(crate) value: String,
    #[serde(default)]
    allowed_member_types: Vec<String>,
}

/// `addPassword`'s answer: the only time Graph shows the secret's value.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct NewPassword {
    /// The Secret ID.
    #[serde(deserialize_with = "guid")]
    pub(crate) key_id: String,
    /// The value.
    #[serde(deserialize_with = "secret")]
    pub(crate) secret_text: Secret,
    /// When it ends, RFC 3339.
    pub(crate) end_date_time: String,
}

fn secret<'de, D: Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
    String::deserialize(d).map(Secret::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_and_ids_that_are_not_guids_refused() {
        let app: Application = serde_json::from_value(json!({
            "id": "9A8B7C6D-5E4F-4A3B-8C2D-1E0F9A8B7C6D", "appId": "0b7e2f4c-5d6a-4e8b-9c1d-3f2a4b6c8d0e",
            "requiredResourceAccess": [{"resourceAppId": "00000002-0000-0ff1-ce00-000000000000",
                "resourceAccess": [{"id": "e1a2b3c4-0000-4000-8000-0000000a0001", "type": "Role"}]}],
            "passwordCredentials": [{"keyId": "3c2b1a09-8f7e-4d6c-b5a4-932f1e0d9c8b", "endDateTime": "2027-06-01T00:00:00Z"}]
        }))
        .unwrap();
        assert_eq!(app.id, "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", "normalised");
        let smtp = RequiredAccess {
            resource_app_id: "00000002-0000-0ff1-ce00-000000000000".into(),
            role_id: "e1a2b3c4-0000-4000-8000-0000000a0001".into(),
        };
        assert!(app.asks_for(std::slice::from_ref(&smtp)));
        assert!(app.password("3C2B1A09-8F7E-4D6C-B5A4-932F1E0D9C8B").is_some());
        let hostile = json!({ "id": "../../me", "appId": "0b7e2f4c-5d6a-4e8b-9c1d-3f2a4b6c8d0e" });
        assert!(serde_json::from_value::<Application>(hostile).is_err());
        let two = [
            smtp.clone(),
            RequiredAccess {
                role_id: "x".into(),
                ..smtp
            },
        ];
        let shown = required_json(&two);
        assert_eq!(shown.as_array().unwrap().len(), 1, "one entry per resource");
        assert_eq!(shown[0]["resourceAccess"].as_array().unwrap().len(), 2);
        let new: NewPassword = serde_json::from_value(json!({
            "keyId": "3c2b1a09-8f7e-4d6c-b5a4-932f1e0d9c8b", "secretText": "Abc~value", "endDateTime": "2027-06-01T00:00:00Z"
        }))
        .unwrap();
        assert!(!format!("{new:?}").contains("Abc~value"), "the value is never printed");
    }
}
