use super::*;
use crate::clock::ms;
use crate::testing::Tenant;

const NOW: Timestamp = ms(1_796_312_678_000);

#[test]
fn a_device_code_answer_is_read_and_kept_within_bounds() {
    let body = br#"{"device_code":"DC-secret","user_code":"ABCD2345E","verification_uri":"https://www.microsoft.com/link","expires_in":900,"interval":0}"#;
    let code = DeviceCode::parse(200, body, NOW).unwrap();
    assert_eq!(code.interval, Duration::from_secs(1), "never a busy poll");
    assert_eq!(code.expires_at, NOW + Duration::from_secs(900));
    assert!(code.message.contains("ABCD2345E") && code.message.contains("https://www.microsoft.com/link"));
    assert!(
        !format!("{code:?}").contains("DC-secret"),
        "the device code is a credential"
    );
    let forever =
        br#"{"device_code":"d","user_code":"u","verification_uri":"v","expires_in":99999999,"interval":99999}"#;
    let code = DeviceCode::parse(200, forever, NOW).unwrap();
    assert_eq!(
        (code.interval, code.expires_at),
        (Duration::from_secs(60), NOW + Duration::from_secs(3600))
    );
    assert!(matches!(
        DeviceCode::parse(200, b"{}", NOW),
        Err(DeviceError::Malformed(_))
    ));
    let refused = br#"{"error":"unauthorized_client","error_description":"AADSTS700016: Application not found.","error_codes":[700016]}"#;
    match DeviceCode::parse(400, refused, NOW) {
        Err(DeviceError::Refused(e)) => assert_eq!(e.code(), Some(700016)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn each_poll_answer_means_what_rfc_8628_says() {
    let error = |e: &str| format!(r#"{{"error":"{e}","error_description":"AADSTS70016: x","error_codes":[70016]}}"#);
    let poll = |status, body: &str| Poll::of(status, body.as_bytes(), "https://www.microsoft.com/link");
    assert!(matches!(poll(400, &error("authorization_pending")), Poll::Pending));
    assert!(matches!(poll(400, &error("slow_down")), Poll::SlowDown));
    assert!(matches!(
        poll(400, &error("authorization_declined")),
        Poll::Failed(DeviceError::Declined(_))
    ));
    assert!(matches!(
        poll(400, &error("expired_token")),
        Poll::Failed(DeviceError::Expired)
    ));
    assert!(matches!(
        poll(400, &error("bad_verification_code")),
        Poll::Failed(DeviceError::Refused(_))
    ));
    assert!(matches!(poll(200, "not json"), Poll::Failed(DeviceError::Malformed(_))));
    match poll(
        200,
        r#"{"token_type":"Bearer","expires_in":3599,"access_token":"eyJ.admin.token"}"#,
    ) {
        Poll::Done(token) => {
            assert!(!format!("{token:?}").contains("eyJ"), "never printed");
        }
        other => panic!("{other:?}"),
    }
}

const ADMIN: &str = "admin@contoso.com";

async fn tenant() -> Tenant {
    Tenant::start_with(|s| {
        s.entra.device_code_interval_secs = 1;
        s.tenants[0].users.push(m365_emulator::model::DirectoryUser {
            user_principal_name: ADMIN.into(),
            object_id: "5c3e6f1a-0000-4000-8000-000000000001".into(),
            roles: vec!["Cloud Application Administrator".into()],
        });
    })
    .await
}

fn signing_in(tenant: &Tenant, client_id: &str) -> (SignIn, reqwest::Client) {
    let tls = crate::tls::client_config(Some(&tenant.ca)).unwrap();
    let client = crate::submit::http_client(&tls).unwrap();
    let sign_in = SignIn {
        authority: tenant.emulator.base_url(),
        tenant: m365_emulator::fixture::TENANT.to_owned(),
        client_id: client_id.to_owned(),
        scopes: vec![
            "https://graph.microsoft.com/Application.ReadWrite.All".into(),
            "https://graph.microsoft.com/AppRoleAssignment.ReadWrite.All".into(),
        ],
    };
    (sign_in, client)
}

#[tokio::test]
async fn an_administrator_signs_in_with_the_code_while_the_client_polls() {
    let tenant = tenant().await;
    let (sign_in, client) = signing_in(&tenant, GRAPH_COMMAND_LINE_TOOLS);
    let code = sign_in.start(&client).await.unwrap();
    assert_eq!(code.verification_uri, "https://www.microsoft.com/link");
    let waiting = sign_in.wait(&client, &code);
    let approve = async {
        // The client hears `authorization_pending` first.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        tenant.emulator.sign_in_device(&code.user_code, ADMIN, true).unwrap();
    };
    let (token, ()) = tokio::join!(waiting, approve);
    let token = token.unwrap();
    let (_, claims) = crate::oauth::inspect::decode(token.access_token.expose()).unwrap();
    assert_eq!(claims["upn"], ADMIN);
    assert_eq!(
        claims["scp"],
        "Application.ReadWrite.All AppRoleAssignment.ReadWrite.All"
    );
    let polls = tenant.emulator.stats().tokens_for(GRAPH_COMMAND_LINE_TOOLS);
    assert!(polls.failed >= 1 && polls.issued == 1, "{polls:?}");
}

#[tokio::test]
async fn a_declined_sign_in_and_an_unknown_client_say_so() {
    let tenant = tenant().await;
    let (sign_in, client) = signing_in(&tenant, GRAPH_COMMAND_LINE_TOOLS);
    let code = sign_in.start(&client).await.unwrap();
    tenant.emulator.sign_in_device(&code.user_code, ADMIN, false).unwrap();
    let declined = sign_in.wait(&client, &code).await.unwrap_err();
    assert!(
        declined
            .to_string()
            .contains("declined at https://www.microsoft.com/link"),
        "{declined}"
    );
    let (other, client) = signing_in(&tenant, "11111111-2222-3333-4444-555555555555");
    match other.start(&client).await {
        Err(DeviceError::Refused(e)) => assert_eq!(e.code(), Some(700016)),
        result => panic!("{result:?}"),
    }
}
