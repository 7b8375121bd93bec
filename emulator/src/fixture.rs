//! A working tenant, set up the way the guides say: the starting point of tests, the demo and the
//! benchmarks. Its ids are those of `emulator/examples/contoso.toml`; change the returned
//! [`Scenario`] to break one thing at a time.

use crate::model::{
    AcsResource, Api, App, HveAccount, Mailbox, ManagementRoleAssignment, SMTP_SEND_AS_APP_ROLE, Scenario,
    SmtpUsername, Tenant,
};

/// Directory (tenant) id.
pub const TENANT: &str = "6f1d3c2a-9b4e-4d7a-8c1f-2e5b7a9d0c13";
/// The tenant's verified domain (its other one is `contoso.onmicrosoft.com`).
pub const DOMAIN: &str = "contoso.com";
/// Application (client) id.
pub const CLIENT: &str = "0b7e2f4c-5d6a-4e8b-9c1d-3f2a4b6c8d0e";
/// Object id of the app registration (the wrong one for `New-ServicePrincipal`).
pub const APP_OBJECT: &str = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d";
/// Object id of the enterprise application: the service principal.
pub const SERVICE_PRINCIPAL: &str = "6d5c4b3a-2f1e-4d0c-9b8a-7f6e5d4c3b2a";
/// Id of the client secret (users paste it in place of the value).
pub const SECRET_ID: &str = "3c2b1a09-8f7e-4d6c-b5a4-932f1e0d9c8b";
/// The mailbox the app authenticates as, with FullAccess.
pub const MAILBOX: &str = "mailer@contoso.com";
/// A shared mailbox the app has SendAs on.
pub const SHARED_MAILBOX: &str = "alerts@contoso.com";
/// A mailbox the app has no rights on.
pub const OTHER_MAILBOX: &str = "ceo@contoso.com";
/// The High Volume Email account, with `Add-HVEAppAccess` for the app.
pub const HVE_ACCOUNT: &str = "hve@contoso.com";
/// The Azure Communication Services resource.
pub const ACS_RESOURCE: &str = "contoso-acs";
/// The SMTP username of the ACS resource (linking the app; the password is its client secret).
pub const ACS_USERNAME: &str = "contoso-smtp";
/// The email domain connected to the ACS resource.
pub const ACS_DOMAIN: &str = "notify.contoso.com";
/// The MailFrom address of the connected domain.
pub const ACS_SENDER: &str = "donotreply@notify.contoso.com";

/// The tenant with `secret` (and `certificate_pem`, when given) registered on the app.
pub fn contoso(secret: &str, certificate_pem: Option<&str>) -> Scenario {
    let mut app = App::new(CLIENT, APP_OBJECT, SERVICE_PRINCIPAL)
        .secret(SECRET_ID, secret, None)
        .permission(Api::Exchange, "SMTP.SendAsApp", true)
        .permission(Api::Graph, "Mail.Send", true)
        // Office 365 Exchange Online Mail.Send: what High Volume Email wants.
        .permission(Api::Exchange, "Mail.Send", true);
    app.display_name = "Contoso Mailer".to_owned();
    if let Some(pem) = certificate_pem {
        app = app.certificate_pem(pem);
    }
    let mut shared = Mailbox::new(SHARED_MAILBOX).send_as(SERVICE_PRINCIPAL);
    shared.shared = true;
    let tenant = Tenant::new(TENANT, DOMAIN)
        .domain("contoso.onmicrosoft.com")
        .app(app)
        .exchange_service_principal(CLIENT, SERVICE_PRINCIPAL)
        .mailbox(Mailbox::new(MAILBOX).full_access(SERVICE_PRINCIPAL))
        .mailbox(shared)
        .mailbox(Mailbox::new(OTHER_MAILBOX))
        .hve_account(HveAccount::new(HVE_ACCOUNT).app(CLIENT))
        .acs_resource(
            AcsResource::new(ACS_RESOURCE)
                .domain(ACS_DOMAIN)
                .sender(ACS_SENDER)
                .role_assignment(CLIENT)
                .smtp_username(SmtpUsername::new(ACS_USERNAME, ACS_USERNAME, CLIENT)),
        );
    Scenario::new(vec![tenant])
}

/// The same tenant set up for RBAC for Applications instead (Microsoft's SMTP onboarding to App
/// RBAC): the app has no Office 365 Exchange Online permission (its Exchange tokens carry no
/// roles; Graph `Mail.Send` stays), no mailbox holds FullAccess or SendAs for it, and its
/// registered service principal holds `Application SMTP.SendAsApp` over a management scope of
/// [`MAILBOX`] and [`SHARED_MAILBOX`]. [`OTHER_MAILBOX`] is outside the scope. Sending as
/// [`SHARED_MAILBOX`] while authenticated as [`MAILBOX`] rests on the emulator's assumption that
/// the scope grants Send-As. HVE, which wants the Exchange `Mail.Send` permission, refuses this
/// app.
pub fn contoso_rbac(secret: &str, certificate_pem: Option<&str>) -> Scenario {
    let mut scenario = contoso(secret, certificate_pem);
    let tenant = &mut scenario.tenants[0];
    for app in &mut tenant.apps {
        app.permissions.retain(|p| p.api != Api::Exchange);
    }
    for mailbox in &mut tenant.mailboxes {
        mailbox.full_access.clear();
        mailbox.send_as.clear();
    }
    tenant.management_role_assignments.push(ManagementRoleAssignment::new(
        SERVICE_PRINCIPAL,
        SMTP_SEND_AS_APP_ROLE,
        &[MAILBOX, SHARED_MAILBOX],
    ));
    scenario
}
