//! A working tenant, set up the way the guides say: the starting point of tests, the demo and the
//! benchmarks. Its ids are those of `emulator/examples/contoso.toml`; change the returned
//! [`Scenario`] to break one thing at a time.

use crate::model::{Api, App, Mailbox, Scenario, Tenant};

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

/// The tenant with `secret` (and `certificate_pem`, when given) registered on the app.
pub fn contoso(secret: &str, certificate_pem: Option<&str>) -> Scenario {
    let mut app = App::new(CLIENT, APP_OBJECT, SERVICE_PRINCIPAL)
        .secret(SECRET_ID, secret, None)
        .permission(Api::Exchange, "SMTP.SendAsApp", true)
        .permission(Api::Graph, "Mail.Send", true);
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
        .mailbox(Mailbox::new(OTHER_MAILBOX));
    Scenario::new(vec![tenant])
}
