//! The Graph directory calls of an app's setup, as an administrator signed in with a device
//! code makes them: an app registration, a secret, its service principal, admin consent; what
//! each step changes at the token endpoint; and Graph's refusals for a missing scope or role.

use m365_emulator::Emulator;
use m365_emulator::directory::EXCHANGE_APP_ID;
use m365_emulator::entra::device::GRAPH_COMMAND_LINE_TOOLS;
use m365_emulator::model::DirectoryUser;
use serde_json::{Value, json};

use crate::support::*;

const GRAPH: &str = "https://graph.microsoft.com";

fn user(upn: &str, id: &str, roles: &[&str]) -> DirectoryUser {
    DirectoryUser {
        user_principal_name: upn.into(),
        object_id: id.into(),
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
    }
}

/// A delegated Graph token of `upn`, through the device authorization grant over HTTP.
async fn sign_in(emulator: &Emulator, upn: &str, scopes: &str) -> String {
    let http = http(emulator);
    let started: Value = http
        .post(format!("{}/{TENANT}/oauth2/v2.0/devicecode", emulator.base_url()))
        .form(&[("client_id", GRAPH_COMMAND_LINE_TOOLS), ("scope", scopes)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let approved = http
        .post(format!("{}/_emulator/device-sign-in", emulator.base_url()))
        .json(&json!({ "user_code": started["user_code"], "user": upn }))
        .send()
        .await
        .unwrap();
    assert_eq!(approved.status(), 204);
    let form = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("client_id", GRAPH_COMMAND_LINE_TOOLS),
        ("device_code", started["device_code"].as_str().unwrap()),
    ];
    let (status, body) = token_request(emulator, TENANT, &form).await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

/// `method path` with `token` and a JSON body: status and JSON answer.
async fn call(emulator: &Emulator, token: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let url = format!("{}{path}", emulator.base_url());
    let request = match method {
        "GET" => http(emulator).get(url),
        _ => http(emulator).post(url),
    };
    let request = request.bearer_auth(token);
    let request = match body {
        Some(body) => request.json(&body),
        None => request,
    };
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn app_token(emulator: &Emulator, client_id: &str, secret: &str) -> (u16, Value) {
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", client_id),
        ("client_secret", secret),
        ("scope", EXCHANGE_SCOPE),
    ];
    token_request(emulator, TENANT, &form).await
}

#[tokio::test]
async fn an_administrator_sets_up_an_app_through_graph_step_by_step() {
    let emulator = start_with(|s| {
        s.tenants[0].users = vec![
            user(
                "admin@contoso.com",
                "5c3e6f1a-0000-4000-8000-000000000001",
                &["Cloud Application Administrator"],
            ),
            user("helpdesk@contoso.com", "5c3e6f1a-0000-4000-8000-000000000002", &[]),
        ];
    })
    .await;
    let scopes = format!("{GRAPH}/Application.ReadWrite.All {GRAPH}/AppRoleAssignment.ReadWrite.All");
    let admin = sign_in(&emulator, "admin@contoso.com", &scopes).await;

    // Exchange Online's service principal and its app roles, looked up by value.
    let (status, found) = call(
        &emulator,
        &admin,
        "GET",
        &format!("/v1.0/servicePrincipals?$filter=appId eq '{EXCHANGE_APP_ID}'"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{found}");
    let exchange = &found["value"][0];
    let role = exchange["appRoles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["value"] == "SMTP.SendAsApp")
        .unwrap()["id"]
        .clone();

    let (status, app) = call(
        &emulator,
        &admin,
        "POST",
        "/v1.0/applications",
        Some(json!({
            "displayName": "m365-mailer",
            "requiredResourceAccess": [{ "resourceAppId": EXCHANGE_APP_ID, "resourceAccess": [{ "id": role, "type": "Role" }] }],
        })),
    )
    .await;
    assert_eq!(status, 201, "{app}");
    let (object_id, client_id) = (app["id"].as_str().unwrap(), app["appId"].as_str().unwrap());
    let (status, listed) = call(
        &emulator,
        &admin,
        "GET",
        &format!("/v1.0/applications?$filter=appId eq '{client_id}'"),
        None,
    )
    .await;
    assert_eq!(
        (status, listed["value"].as_array().unwrap().len()),
        (200, 1),
        "found by appId"
    );

    let (status, secret) = call(
        &emulator,
        &admin,
        "POST",
        &format!("/v1.0/applications/{object_id}/addPassword"),
        Some(json!({ "passwordCredential": { "displayName": "m365-mailer", "endDateTime": "2099-01-01T00:00:00Z" } })),
    )
    .await;
    assert_eq!(status, 200, "{secret}");
    let value = secret["secretText"].as_str().unwrap().to_owned();
    let (status, body) = app_token(&emulator, client_id, &value).await;
    assert_eq!(
        (status, body["error_codes"][0].as_u64()),
        (401, Some(7000229)),
        "no service principal yet: {body}"
    );

    let (status, sp) = call(
        &emulator,
        &admin,
        "POST",
        "/v1.0/servicePrincipals",
        Some(json!({ "appId": client_id })),
    )
    .await;
    assert_eq!(status, 201, "{sp}");
    let (status, again) = call(
        &emulator,
        &admin,
        "POST",
        "/v1.0/servicePrincipals",
        Some(json!({ "appId": client_id })),
    )
    .await;
    assert_eq!(
        (status, again["error"]["code"].as_str()),
        (400, Some("Request_MultipleObjectsWithSameKeyValue"))
    );
    let (status, body) = app_token(&emulator, client_id, &value).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        claims(body["access_token"].as_str().unwrap()).get("roles").is_none(),
        "no consent yet"
    );

    let sp_id = sp["id"].as_str().unwrap();
    let assignment = json!({ "principalId": sp_id, "resourceId": exchange["id"], "appRoleId": role });
    let (status, body) = call(
        &emulator,
        &admin,
        "POST",
        &format!("/v1.0/servicePrincipals/{sp_id}/appRoleAssignments"),
        Some(assignment),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (_, body) = app_token(&emulator, client_id, &value).await;
    assert_eq!(
        claims(body["access_token"].as_str().unwrap())["roles"],
        json!(["SMTP.SendAsApp"])
    );

    // Consent to Microsoft Graph's application permissions is beyond this administrator.
    let (_, graph) = call(
        &emulator,
        &admin,
        "GET",
        "/v1.0/servicePrincipals?$filter=appId eq '00000003-0000-0000-c000-000000000000'",
        None,
    )
    .await;
    let graph = &graph["value"][0];
    let mail_send = graph["appRoles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["value"] == "Mail.Send")
        .unwrap()["id"]
        .clone();
    let (status, denied) = call(
        &emulator,
        &admin,
        "POST",
        &format!("/v1.0/servicePrincipals/{sp_id}/appRoleAssignments"),
        Some(json!({ "principalId": sp_id, "resourceId": graph["id"], "appRoleId": mail_send })),
    )
    .await;
    assert_eq!(
        (status, denied["error"]["code"].as_str()),
        (403, Some("Authorization_RequestDenied"))
    );

    // Removing the secret: it no longer signs in.
    let (status, _) = call(
        &emulator,
        &admin,
        "POST",
        &format!("/v1.0/applications/{object_id}/removePassword"),
        Some(json!({ "keyId": secret["keyId"] })),
    )
    .await;
    assert_eq!(status, 204);
    let (status, body) = app_token(&emulator, client_id, &value).await;
    assert_eq!(
        (status, body["error_codes"][0].as_u64()),
        (401, Some(7000215)),
        "{body}"
    );
}

#[tokio::test]
async fn graph_refuses_a_user_without_the_role_or_a_token_without_the_scope() {
    let emulator = start_with(|s| {
        s.tenants[0].users = vec![
            user(
                "admin@contoso.com",
                "5c3e6f1a-0000-4000-8000-000000000001",
                &["Application Administrator"],
            ),
            user("helpdesk@contoso.com", "5c3e6f1a-0000-4000-8000-000000000002", &[]),
        ];
    })
    .await;
    let body = json!({ "displayName": "not allowed" });
    let helpdesk = sign_in(
        &emulator,
        "helpdesk@contoso.com",
        &format!("{GRAPH}/Application.ReadWrite.All"),
    )
    .await;
    let (status, denied) = call(&emulator, &helpdesk, "POST", "/v1.0/applications", Some(body.clone())).await;
    assert_eq!(
        (status, denied["error"]["code"].as_str()),
        (403, Some("Authorization_RequestDenied"))
    );
    assert_eq!(
        denied["error"]["message"],
        "Insufficient privileges to complete the operation."
    );
    let narrow = sign_in(&emulator, "admin@contoso.com", &format!("{GRAPH}/User.Read")).await;
    let (status, _) = call(&emulator, &narrow, "POST", "/v1.0/applications", Some(body)).await;
    assert_eq!(status, 403, "the role alone is not enough: the token lacks the scope");
    let app_only = exchange_token(&emulator).await;
    let (status, _) = call(&emulator, &app_only, "GET", "/v1.0/applications", None).await;
    assert_eq!(status, 401, "an app-only token is no administrator's");
}
