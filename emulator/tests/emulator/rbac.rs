//! RBAC for Applications on Exchange Online SMTP (fact sheet §1.6, §8): an app without the
//! `SMTP.SendAsApp` permission authenticates through an `Application SMTP.SendAsApp` management
//! role assignment whose scope holds the mailbox, without FullAccess; a token with the role still
//! needs FullAccess; the assignments are validated naming the field.

use m365_emulator::fixture::OTHER_MAILBOX;
use m365_emulator::model::{ManagementRoleAssignment, SMTP_SEND_AS_APP_ROLE};
use m365_emulator::{Api, Emulator, Identity, Scenario};

use crate::support::*;

const NO_ASSIGNMENT: &str = "no SMTP.SendAsApp role and no RBAC assignment for the mailbox";

/// AUTH as `mailbox` with `token`, expecting `535 5.7.3` with `cause` counted (`count` times so
/// far), and no sending afterwards.
async fn refused(emulator: &Emulator, mailbox: &str, token: &str, cause: &str, count: u64) {
    let mut smtp = Smtp::connect_tls(emulator).await;
    let reply = smtp.cmd(&format!("AUTH XOAUTH2 {}", xoauth2(mailbox, token))).await;
    reply.expect(535, "5.7.3");
    assert!(
        reply.lines[0].starts_with("5.7.3 Authentication unsuccessful ["),
        "{reply:?}"
    );
    let refusals = emulator.stats().auth.refusals;
    assert_eq!(refusals.get(cause), Some(&count), "cause `{cause}` in {refusals:?}");
    smtp.cmd(&format!("MAIL FROM:<{mailbox}>")).await.expect(530, "5.7.57");
}

#[tokio::test]
async fn an_rbac_only_app_delivers_for_the_mailboxes_of_its_scope() {
    let emulator = start(contoso_rbac()).await;
    let token = exchange_token(&emulator).await;
    assert!(
        claims(&token).get("roles").is_none(),
        "no Exchange permission: no roles"
    );

    let mut smtp = Smtp::authenticated(&emulator, MAILBOX, &token).await;
    smtp.send_mail(
        MAILBOX,
        &["bob@fabrikam.com"],
        &message(MAILBOX, "bob@fabrikam.com", "RBAC"),
    )
    .await
    .expect(250, "2.0.0");
    // Another mailbox of the scope, with no SendAs grant (assumed: the scope grants Send-As).
    smtp.send_mail(
        SHARED,
        &["bob@fabrikam.com"],
        &message(SHARED, "bob@fabrikam.com", "Alert"),
    )
    .await
    .expect(250, "2.0.0");
    // A mailbox outside the scope needs a SendAs grant, which it does not have.
    let denied = smtp
        .send_mail(
            MAILBOX,
            &["bob@fabrikam.com"],
            &message(OTHER_MAILBOX, "bob@fabrikam.com", "Hi"),
        )
        .await;
    denied.expect(554, "5.2.252");
    assert!(
        denied.lines[0].starts_with("5.2.252 SendAsDenied; mailer@contoso.com not allowed to send as ceo@contoso.com;"),
        "{denied:?}"
    );

    // The shared mailbox of the scope authenticates too.
    let mut shared = Smtp::authenticated(&emulator, SHARED, &token).await;
    shared
        .send_mail(
            SHARED,
            &["bob@fabrikam.com"],
            &message(SHARED, "bob@fabrikam.com", "Shared"),
        )
        .await
        .expect(250, "2.0.0");

    let stored = emulator.store().messages();
    let mailboxes: Vec<&str> = stored.iter().map(|m| m.mailbox.as_str()).collect();
    assert_eq!(mailboxes, [MAILBOX, MAILBOX, SHARED]);
    assert!(
        matches!(&stored[0].identity, Identity::Xoauth2 { client_id, service_principal_id }
        if client_id == CLIENT && service_principal_id == SP)
    );
    assert_eq!(emulator.stats().auth.succeeded, 2);
}

#[tokio::test]
async fn an_rbac_only_app_is_refused_outside_its_scope() {
    let emulator = start(contoso_rbac()).await;
    let token = exchange_token(&emulator).await;
    refused(&emulator, OTHER_MAILBOX, &token, NO_ASSIGNMENT, 1).await;

    // The scope shrinks: the shared mailbox is out.
    emulator
        .update(|s| s.tenants[0].management_role_assignments[0].mailboxes = vec![MAILBOX.into()])
        .unwrap();
    refused(&emulator, SHARED, &token, NO_ASSIGNMENT, 2).await;
    let mut smtp = Smtp::authenticated(&emulator, MAILBOX, &token).await;
    smtp.send_mail(
        MAILBOX,
        &["bob@fabrikam.com"],
        &message(SHARED, "bob@fabrikam.com", "Not any more"),
    )
    .await
    .expect(554, "5.2.252");

    // A role Exchange does not honour on SMTP, or no assignment at all: the missing role.
    emulator
        .update(|s| s.tenants[0].management_role_assignments[0].role = "Application Mail.Send".into())
        .unwrap();
    refused(&emulator, MAILBOX, &token, "token has no SMTP.SendAsApp role", 1).await;
    emulator
        .update(|s| s.tenants[0].management_role_assignments.clear())
        .unwrap();
    refused(&emulator, MAILBOX, &token, "token has no SMTP.SendAsApp role", 2).await;

    // The SMTP AUTH switches come first, as for any token.
    emulator
        .update(|s| {
            s.tenants[0]
                .management_role_assignments
                .push(ManagementRoleAssignment::new(SP, SMTP_SEND_AS_APP_ROLE, &[MAILBOX]));
            s.tenants[0].smtp_client_authentication_disabled = true;
        })
        .unwrap();
    let mut smtp = Smtp::connect_tls(&emulator).await;
    smtp.cmd(&format!("AUTH XOAUTH2 {}", xoauth2(MAILBOX, &token)))
        .await
        .expect(535, "5.7.139");
}

#[tokio::test]
async fn a_token_with_the_role_still_needs_full_access() {
    // The app asks for SMTP.SendAsApp again: "Including the SMTP.SendAsApp claim would trigger an
    // unnecessary check for mailbox permissions."
    let mut scenario = contoso_rbac();
    let app = &mut scenario.tenants[0].apps[0];
    *app = app.clone().permission(Api::Exchange, "SMTP.SendAsApp", true);
    let emulator = start(scenario).await;
    let token = exchange_token(&emulator).await;
    assert_eq!(claims(&token)["roles"], serde_json::json!(["SMTP.SendAsApp"]));
    refused(&emulator, MAILBOX, &token, "no FullAccess on the mailbox", 1).await;

    emulator
        .update(|s| s.tenants[0].mailboxes[0].full_access.push(SP.into()))
        .unwrap();
    let mut smtp = Smtp::authenticated(&emulator, MAILBOX, &token).await;
    smtp.send_mail(
        MAILBOX,
        &["bob@fabrikam.com"],
        &message(MAILBOX, "bob@fabrikam.com", "Classic"),
    )
    .await
    .expect(250, "2.0.0");
    // The existing way throughout: Send-As by SendAs grants, not by the scope.
    smtp.send_mail(
        MAILBOX,
        &["bob@fabrikam.com"],
        &message(SHARED, "bob@fabrikam.com", "Alert"),
    )
    .await
    .expect(554, "5.2.252");
    assert_eq!(emulator.store().len(), 1);
}

#[tokio::test]
async fn the_classic_fixture_is_untouched_by_rbac() {
    // An assignment beside the classic setup changes nothing for its tokens, which carry the role.
    let emulator = start_with(|s| {
        s.tenants[0]
            .management_role_assignments
            .push(ManagementRoleAssignment::new(
                SP,
                SMTP_SEND_AS_APP_ROLE,
                &[OTHER_MAILBOX],
            ));
    })
    .await;
    let token = exchange_token(&emulator).await;
    refused(&emulator, OTHER_MAILBOX, &token, "no FullAccess on the mailbox", 1).await;
    Smtp::authenticated(&emulator, MAILBOX, &token).await;
}

#[test]
fn rbac_assignments_are_validated_naming_the_field() {
    let check = |change: &dyn Fn(&mut Scenario), field: &str, says: &str| {
        let mut s = contoso_rbac();
        change(&mut s);
        let error = s.validate().expect_err(field).to_string();
        assert!(error.starts_with(&format!("{field}: ")), "{field}: {error}");
        assert!(error.contains(says), "{error}");
    };
    let at = "tenants[0].management_role_assignments[0]";
    check(
        &|s| s.tenants[0].management_role_assignments[0].role = "SMTP.SendAsApp".into(),
        &format!("{at}.role"),
        "did you mean `Application SMTP.SendAsApp`?",
    );
    check(
        &|s| s.tenants[0].management_role_assignments[0].role = "Application SMTP.Send".into(),
        &format!("{at}.role"),
        "is not an application role of Exchange Online",
    );
    check(
        &|s| s.tenants[0].management_role_assignments[0].app = APP_OBJECT.into(),
        &format!("{at}.app"),
        "names no service principal registered in Exchange",
    );
    check(
        &|s| s.tenants[0].exchange_service_principals.clear(),
        &format!("{at}.app"),
        "New-ServicePrincipal",
    );
    check(
        &|s| s.tenants[0].management_role_assignments[0].mailboxes.clear(),
        &format!("{at}.mailboxes"),
        "at least one recipient",
    );
    check(
        &|s| s.tenants[0].management_role_assignments[0].mailboxes[1] = "alerts".into(),
        &format!("{at}.mailboxes[1]"),
        "is not an email address",
    );
    // Any case, as Exchange's role names; the other application roles are known.
    let mut s = contoso_rbac();
    s.tenants[0].management_role_assignments[0].role = "application smtp.sendasapp".into();
    s.tenants[0]
        .management_role_assignments
        .push(ManagementRoleAssignment::new(
            CLIENT,
            "Application Mail.Send",
            &[OTHER_MAILBOX],
        ));
    s.validate().unwrap();
}

#[tokio::test]
async fn an_invalid_update_is_refused_and_the_scenario_kept() {
    let emulator = start(contoso_rbac()).await;
    // Remove-ServicePrincipal while an assignment holds it: refused, as `-App` must resolve.
    let error = emulator
        .update(|s| s.tenants[0].exchange_service_principals.clear())
        .unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("tenants[0].management_role_assignments[0].app: "),
        "{error}"
    );
    let token = exchange_token(&emulator).await;
    Smtp::authenticated(&emulator, MAILBOX, &token).await;
}

#[test]
fn the_tenant_file_spells_an_assignment() {
    let text = format!(
        r#"
        [[tenants]]
        id = "{TENANT}"
        domains = ["{DOMAIN}"]
        smtp_client_authentication_disabled = false
        [[tenants.apps]]
        client_id = "{CLIENT}"
        object_id = "{APP_OBJECT}"
        service_principal_id = "{SP}"
        [[tenants.exchange_service_principals]]
        app_id = "{CLIENT}"
        object_id = "{SP}"
        display_name = "Contoso Mailer"
        [[tenants.mailboxes]]
        address = "{MAILBOX}"
        [[tenants.management_role_assignments]]
        app = "Contoso Mailer"
        role = "Application SMTP.SendAsApp"
        mailboxes = ["{MAILBOX}", "{SHARED}"]
    "#
    );
    let s = Scenario::from_toml(&text, std::path::Path::new(".")).unwrap();
    assert_eq!(
        s.tenants[0].management_role_assignments,
        [ManagementRoleAssignment::new(
            "Contoso Mailer",
            SMTP_SEND_AS_APP_ROLE,
            &[MAILBOX, SHARED]
        )]
    );
    let built = m365_emulator::Tenant::new(TENANT, DOMAIN).management_role_assignment(
        "Contoso Mailer",
        SMTP_SEND_AS_APP_ROLE,
        &[MAILBOX, SHARED],
    );
    assert_eq!(
        built.management_role_assignments,
        s.tenants[0].management_role_assignments
    );
    let error = Scenario::from_toml(
        &text.replace("role = ", "scope = \"RBAC Scope\"\n        role = "),
        std::path::Path::new("."),
    )
    .unwrap_err();
    assert!(error.to_string().contains("unknown field `scope`"), "{error}");
}
