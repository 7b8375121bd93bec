//! The token endpoint: every error of the list as a table, then the successful shapes.

use m365_emulator::{Api, App, Emulator, Scenario, Tenant};

use crate::support::*;

const EXPIRED_CLIENT: &str = "5e0c1b8a-2d4f-4a6b-9c8d-7e6f5a4b3c2d";
const NO_CONSENT_CLIENT: &str = "7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
const FABRIKAM: &str = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d";
const FABRIKAM_CLIENT: &str = "b2c3d4e5-f6a7-4b8c-9d0e-1f2a3b4c5d6e";
/// A multitenant app registered in fabrikam, with no service principal in contoso.
const MULTITENANT_CLIENT: &str = "c3d4e5f6-a7b8-4c9d-8e0f-2a3b4c5d6e7f";

fn scenario() -> Scenario {
    let mut s = contoso();
    let yesterday = now() - time::Duration::days(1);
    let tenant = &mut s.tenants[0];
    tenant.apps.push(
        App::new(
            EXPIRED_CLIENT,
            "5e0c1b8a-2d4f-4a6b-9c8d-000000000001",
            "5e0c1b8a-2d4f-4a6b-9c8d-000000000002",
        )
        .secret(
            "5e0c1b8a-2d4f-4a6b-9c8d-000000000003",
            "expired-secret",
            Some(yesterday),
        )
        .permission(Api::Exchange, "SMTP.SendAsApp", true),
    );
    tenant.apps.push(
        App::new(
            NO_CONSENT_CLIENT,
            "7a1b2c3d-4e5f-4a6b-8c7d-000000000001",
            "7a1b2c3d-4e5f-4a6b-8c7d-000000000002",
        )
        .secret("7a1b2c3d-4e5f-4a6b-8c7d-000000000003", "no-consent-secret", None)
        .permission(Api::Exchange, "SMTP.SendAsApp", false),
    );
    let mut fabrikam = Tenant::new(FABRIKAM, "fabrikam.com").app(
        App::new(
            FABRIKAM_CLIENT,
            "b2c3d4e5-f6a7-4b8c-9d0e-000000000001",
            "b2c3d4e5-f6a7-4b8c-9d0e-000000000002",
        )
        .secret("b2c3d4e5-f6a7-4b8c-9d0e-000000000003", "fabrikam-secret", None),
    );
    fabrikam.apps.push(
        App::new(
            MULTITENANT_CLIENT,
            "c3d4e5f6-a7b8-4c9d-8e0f-000000000001",
            "c3d4e5f6-a7b8-4c9d-8e0f-000000000002",
        )
        .secret("c3d4e5f6-a7b8-4c9d-8e0f-000000000003", "multitenant-secret", None)
        .multitenant(true),
    );
    fabrikam.exchange_online = false;
    s.tenants.push(fabrikam);
    s
}

/// A request: tenant segment and form fields.
struct Request {
    tenant: &'static str,
    form: Vec<(&'static str, String)>,
}

fn secret_request(client: &str, secret: &str, scope: &str) -> Request {
    Request {
        tenant: TENANT,
        form: vec![
            ("grant_type", "client_credentials".into()),
            ("client_id", client.into()),
            ("client_secret", secret.into()),
            ("scope", scope.into()),
        ],
    }
}

fn with_tenant(mut r: Request, tenant: &'static str) -> Request {
    r.tenant = tenant;
    r
}

fn assertion(emulator: &Emulator, change: impl FnOnce(&mut Assertion)) -> Request {
    let mut a = Assertion::new(emulator);
    change(&mut a);
    Request {
        tenant: TENANT,
        form: a.form(EXCHANGE_SCOPE),
    }
}

#[tokio::test]
async fn every_token_error_in_entra_shape() {
    let emulator = start(scenario()).await;
    let other_key = {
        let now = now();
        m365_emulator::ClientCertificate::generate(
            "Other",
            now - time::Duration::days(1),
            now + time::Duration::days(30),
        )
        .unwrap()
    };
    let ok = || secret_request(CLIENT, SECRET, EXCHANGE_SCOPE);
    let rows: Vec<(&str, Request, u16, &str, u32)> = vec![
        (
            "unknown tenant id",
            with_tenant(ok(), "00000000-1111-2222-3333-444444444444"),
            400,
            "invalid_request",
            90002,
        ),
        (
            "unknown tenant domain",
            with_tenant(ok(), "northwind.com"),
            400,
            "invalid_request",
            90002,
        ),
        (
            "malformed tenant",
            with_tenant(ok(), "not_a_tenant"),
            400,
            "invalid_request",
            900023,
        ),
        ("/common", with_tenant(ok(), "common"), 400, "invalid_request", 9001023),
        (
            "/organizations",
            with_tenant(ok(), "organizations"),
            400,
            "invalid_request",
            9001023,
        ),
        (
            "unknown client",
            secret_request("11111111-2222-3333-4444-555555555555", SECRET, EXCHANGE_SCOPE),
            400,
            "unauthorized_client",
            700016,
        ),
        (
            "client of another tenant",
            secret_request(FABRIKAM_CLIENT, "fabrikam-secret", EXCHANGE_SCOPE),
            400,
            "unauthorized_client",
            700016,
        ),
        (
            "multitenant app of another tenant, no service principal here",
            secret_request(MULTITENANT_CLIENT, "multitenant-secret", EXCHANGE_SCOPE),
            401,
            "invalid_client",
            7000229,
        ),
        (
            "wrong secret",
            secret_request(CLIENT, "not-the-secret", EXCHANGE_SCOPE),
            401,
            "invalid_client",
            7000215,
        ),
        (
            "secret id in place of the value",
            secret_request(CLIENT, SECRET_ID, EXCHANGE_SCOPE),
            401,
            "invalid_client",
            7000215,
        ),
        (
            "expired secret",
            secret_request(EXPIRED_CLIENT, "expired-secret", EXCHANGE_SCOPE),
            401,
            "invalid_client",
            7000222,
        ),
        (
            "no credential",
            Request {
                tenant: TENANT,
                form: vec![
                    ("grant_type", "client_credentials".into()),
                    ("client_id", CLIENT.into()),
                    ("scope", EXCHANGE_SCOPE.into()),
                ],
            },
            401,
            "invalid_client",
            7000216,
        ),
        (
            "certificate not registered",
            assertion(&emulator, |a| {
                a.key_pem = other_key.key_pem.clone();
                a.cert_pem = other_key.cert_pem.clone();
            }),
            401,
            "invalid_client",
            700027,
        ),
        (
            "signature by another key",
            assertion(&emulator, |a| a.key_pem = other_key.key_pem.clone()),
            401,
            "invalid_client",
            700027,
        ),
        (
            "expired assertion",
            assertion(&emulator, |a| a.exp_offset = -301 - 60),
            401,
            "invalid_client",
            700024,
        ),
        (
            "assertion not yet valid",
            assertion(&emulator, |a| a.nbf_offset = Some(400)),
            401,
            "invalid_client",
            700024,
        ),
        (
            "subject is not the issuer",
            assertion(&emulator, |a| a.sub = "someone-else".into()),
            401,
            "invalid_client",
            50048,
        ),
        (
            "audience is another endpoint",
            assertion(&emulator, |a| {
                a.aud = "https://login.microsoftonline.com/common/oauth2/v2.0/token".into();
            }),
            401,
            "invalid_client",
            700023,
        ),
        (
            "scope without /.default",
            secret_request(CLIENT, SECRET, "https://outlook.office365.com/SMTP.SendAsApp"),
            400,
            "invalid_scope",
            1002012,
        ),
        (
            "bare permission as scope",
            secret_request(CLIENT, SECRET, "SMTP.SendAsApp"),
            400,
            "invalid_scope",
            1002012,
        ),
        (
            "scope names no resource",
            secret_request(CLIENT, SECRET, "/.default"),
            400,
            "invalid_scope",
            70011,
        ),
        (
            "resource unknown",
            secret_request(CLIENT, SECRET, "https://smtp.office365.com/.default"),
            400,
            "invalid_resource",
            500011,
        ),
        (
            "Exchange not in the tenant",
            with_tenant(
                secret_request(FABRIKAM_CLIENT, "fabrikam-secret", EXCHANGE_SCOPE),
                FABRIKAM,
            ),
            400,
            "invalid_resource",
            500011,
        ),
        (
            "two resources",
            secret_request(
                CLIENT,
                SECRET,
                "https://outlook.office365.com/.default https://graph.microsoft.com/.default",
            ),
            400,
            "invalid_scope",
            700022,
        ),
        (
            "missing grant_type",
            Request {
                tenant: TENANT,
                form: vec![
                    ("client_id", CLIENT.into()),
                    ("client_secret", SECRET.into()),
                    ("scope", EXCHANGE_SCOPE.into()),
                ],
            },
            400,
            "invalid_request",
            900144,
        ),
    ];
    let client = http(&emulator);
    for (name, request, status, error, code) in rows {
        let response = client
            .post(emulator.token_endpoint(request.tenant))
            .header("client-request-id", "0f0e0d0c-0b0a-4909-8807-060504030201")
            .form(&request.form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "{name}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"], error, "{name}: {body}");
        assert_eq!(body["error_codes"], serde_json::json!([code]), "{name}: {body}");
        let description = body["error_description"].as_str().unwrap();
        assert!(
            description.starts_with(&format!("AADSTS{code}: ")),
            "{name}: {description}"
        );
        for part in [
            "\r\nTrace ID: ",
            "\r\nCorrelation ID: 0f0e0d0c-0b0a-4909-8807-060504030201",
            "\r\nTimestamp: ",
        ] {
            assert!(description.contains(part), "{name}: {description}");
        }
        assert_eq!(body["correlation_id"], "0f0e0d0c-0b0a-4909-8807-060504030201", "{name}");
        for field in ["timestamp", "trace_id"] {
            assert!(body[field].is_string(), "{name}: {field}");
        }
    }
    let stats = emulator.stats();
    assert_eq!(stats.tokens_issued(), 0, "every row is an error");
    assert!(stats.tokens_for(CLIENT).failed >= 10);
}

#[tokio::test]
async fn secret_in_form_or_basic_header_and_tenant_by_domain() {
    let emulator = start(scenario()).await;
    let exchange = exchange_token(&emulator).await;
    let c = claims(&exchange);
    assert_eq!(c["aud"], "https://outlook.office365.com");
    assert_eq!(c["iss"], format!("https://sts.windows.net/{TENANT}/"));
    assert_eq!(c["tid"], TENANT);
    assert_eq!(c["appid"], CLIENT);
    assert_eq!(c["appidacr"], "1");
    assert_eq!(c["oid"], SP);
    assert_eq!(c["idtyp"], "app");
    assert_eq!(c["ver"], "1.0");
    assert_eq!(c["roles"], serde_json::json!(["SMTP.SendAsApp", "Mail.Send"]));
    assert!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap() == 3599);

    let response = http(&emulator)
        .post(emulator.token_endpoint(DOMAIN))
        .basic_auth(CLIENT, Some(SECRET))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", EXCHANGE_SCOPE),
            ("client_info", "1"),
        ])
        .header("x-client-sku", "MSAL.Python")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store, no-cache");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3599);
    assert_eq!(body["ext_expires_in"], 3599);
    assert!(
        body.get("refresh_token").is_none(),
        "client credentials never get a refresh token"
    );

    let graph = token(&emulator, "https://graph.microsoft.com/.default").await;
    assert_eq!(claims(&graph)["aud"], "https://graph.microsoft.com");
    assert_eq!(claims(&graph)["roles"], serde_json::json!(["Mail.Send"]));
    assert_eq!(emulator.stats().tokens_for(CLIENT).issued, 3);
}

#[tokio::test]
async fn no_roles_claim_without_admin_consent() {
    let emulator = start(scenario()).await;
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", NO_CONSENT_CLIENT),
        ("client_secret", "no-consent-secret"),
        ("scope", EXCHANGE_SCOPE),
    ];
    let (status, body) = token_request(&emulator, TENANT, &form).await;
    assert_eq!(status, 200, "Entra issues the token; the resource refuses it");
    assert!(claims(body["access_token"].as_str().unwrap()).get("roles").is_none());
}

#[tokio::test]
async fn certificate_assertions_in_every_accepted_shape() {
    let emulator = start(scenario()).await;
    type Shape = Box<dyn Fn(&mut Assertion)>;
    let shapes: Vec<(&str, Shape)> = vec![
        ("PS256 + x5t#S256", Box::new(|_| {})),
        (
            "PS256 + padded x5t#S256 (MSAL)",
            Box::new(|a| a.padded_thumbprint = true),
        ),
        (
            "RS256 + x5t",
            Box::new(|a| {
                a.alg = jsonwebtoken::Algorithm::RS256;
                a.sha256_thumbprint = false;
            }),
        ),
        (
            "RS256 + padded x5t",
            Box::new(|a| {
                a.alg = jsonwebtoken::Algorithm::RS256;
                a.sha256_thumbprint = false;
                a.padded_thumbprint = true;
            }),
        ),
        ("with x5c", Box::new(|a| a.x5c = true)),
        (
            "audience names the domain",
            Box::new(|a| a.aud = a.aud.replace(TENANT, DOMAIN)),
        ),
        (
            "audience on Microsoft's host",
            Box::new(|a| a.aud = format!("https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token")),
        ),
        ("within the skew", Box::new(|a| a.exp_offset = -200)),
    ];
    for (name, change) in shapes {
        let mut a = Assertion::new(&emulator);
        change(&mut a);
        let form = a.form(EXCHANGE_SCOPE);
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, body) = token_request(&emulator, TENANT, &form).await;
        assert_eq!(status, 200, "{name}: {body}");
        assert_eq!(
            claims(body["access_token"].as_str().unwrap())["appidacr"],
            "2",
            "{name}"
        );
    }
}

#[tokio::test]
async fn discovery_documents_name_the_tenant_endpoints() {
    let emulator = start(scenario()).await;
    let client = http(&emulator);
    let config: serde_json::Value = client
        .get(format!(
            "{}/v2.0/.well-known/openid-configuration",
            emulator.authority(DOMAIN)
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(config["token_endpoint"], emulator.token_endpoint(TENANT));
    let authorize = format!("{}/oauth2/v2.0/authorize", emulator.authority(TENANT));
    let instance: serde_json::Value = client
        .get(format!(
            "{}/common/discovery/instance?{}",
            emulator.base_url(),
            serde_urlencoded::to_string([("api-version", "1.1"), ("authorization_endpoint", authorize.as_str())])
                .unwrap()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        instance["tenant_discovery_endpoint"],
        format!("{}/v2.0/.well-known/openid-configuration", emulator.authority(TENANT))
    );
    let keys: serde_json::Value = client
        .get(config["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = exchange_token(&emulator).await;
    let header: serde_json::Value = {
        use base64::Engine as _;
        let h = token.split('.').next().unwrap();
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(h).unwrap()).unwrap()
    };
    assert_eq!(keys["keys"][0]["kid"], header["kid"]);
    let unknown = client
        .get(format!(
            "{}/v2.0/.well-known/openid-configuration",
            emulator.authority("northwind.com")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 400);
}
