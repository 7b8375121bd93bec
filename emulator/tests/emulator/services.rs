//! Microsoft's two other SMTP submission services, each on its own port: Exchange Online High
//! Volume Email (HVE) and Azure Communication Services Email (ACS), every rule with an accepting
//! case and each refusal; and the Entra side (the Communication Services resource, the refusal of
//! a multitenant app without a service principal).

use m365_emulator::fixture::{ACS_DOMAIN, ACS_RESOURCE, ACS_SENDER, ACS_USERNAME, HVE_ACCOUNT};
use m365_emulator::model::{BasicAuth, Timestamp};
use m365_emulator::{Api, App, Emulator, Endpoint, Identity, Scenario, Tenant};

use crate::support::*;

const COMMUNICATION_SCOPE: &str = "https://communication.azure.com/.default";
const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";

fn refusals(emulator: &Emulator, cause: &str) -> u64 {
    emulator.stats().auth.refusals.get(cause).copied().unwrap_or(0)
}

fn submission_refusals(emulator: &Emulator, cause: &str) -> u64 {
    emulator.stats().submission_refusals.get(cause).copied().unwrap_or(0)
}

// ---------------------------------------------------------------- HVE

/// A TLS session on the HVE port authenticated as the HVE account.
async fn hve(emulator: &Emulator, token: &str) -> Smtp {
    let mut smtp = Smtp::connect_tls_to(emulator, Endpoint::Hve).await;
    smtp.cmd(&format!("AUTH XOAUTH2 {}", xoauth2(HVE_ACCOUNT, token)))
        .await
        .expect(235, "2.7.0");
    smtp
}

/// AUTH XOAUTH2 on the HVE port expecting a refusal with this code and cause (counted once more).
async fn hve_refused(emulator: &Emulator, user: &str, token: &str, code: u16, enhanced: &str, cause: &str) -> Reply {
    let before = refusals(emulator, cause);
    let mut smtp = Smtp::connect_tls_to(emulator, Endpoint::Hve).await;
    let reply = smtp.cmd(&format!("AUTH XOAUTH2 {}", xoauth2(user, token))).await;
    reply.expect(code, enhanced);
    assert_eq!(refusals(emulator, cause), before + 1, "cause `{cause}`");
    smtp.cmd(&format!("MAIL FROM:<{HVE_ACCOUNT}>"))
        .await
        .expect(530, "5.7.57");
    reply
}

#[tokio::test]
async fn hve_greets_like_exchange_and_delivers_with_an_exchange_mail_send_token() {
    let emulator = start(contoso()).await;
    let mut smtp = Smtp::connect_to(&emulator, Endpoint::Hve).await;
    assert!(
        smtp.greeting.lines[0].contains(".outlook.com Microsoft ESMTP MAIL Service ready at "),
        "{:?}",
        smtp.greeting
    );
    let before = smtp.cmd("EHLO client.example").await;
    assert!(before.lines.contains(&"STARTTLS".to_owned()), "{before:?}");
    smtp.cmd("AUTH XOAUTH2").await.expect(504, "5.7.4");
    smtp.starttls().await;
    let after = smtp.cmd("EHLO client.example").await;
    assert!(after.lines.contains(&"AUTH LOGIN XOAUTH2".to_owned()), "{after:?}");

    let token = exchange_token(&emulator).await;
    smtp.cmd(&format!("AUTH XOAUTH2 {}", xoauth2(HVE_ACCOUNT, &token)))
        .await
        .expect(235, "2.7.0");
    let content = message(HVE_ACCOUNT, "bob@contoso.com", "Bulk");
    smtp.send_mail(
        HVE_ACCOUNT,
        &["bob@contoso.com", "carol@contoso.onmicrosoft.com"],
        &content,
    )
    .await
    .expect(250, "2.0.0");

    let stored = emulator.store().messages();
    assert_eq!(stored.len(), 1);
    let m = &stored[0];
    assert_eq!(
        (m.endpoint, m.mailbox.as_str(), m.tenant_id.as_str()),
        (Endpoint::Hve, HVE_ACCOUNT, TENANT)
    );
    assert_eq!(m.data, content);
    assert!(matches!(&m.identity, Identity::Xoauth2 { client_id, .. } if client_id == CLIENT));
    assert_eq!(serde_json::to_value(&**m).unwrap()["endpoint"], "hve");
    assert_eq!(emulator.stats().messages_by_endpoint.get("hve"), Some(&1));

    // The HVE account is no Exchange mailbox, and Exchange messages say so.
    let mut exchange = Smtp::connect_tls(&emulator).await;
    exchange
        .cmd(&format!("AUTH XOAUTH2 {}", xoauth2(HVE_ACCOUNT, &token)))
        .await
        .expect(535, "5.7.3");
    let mut exchange = Smtp::authenticated(&emulator, MAILBOX, &token).await;
    exchange
        .send_mail(
            MAILBOX,
            &["bob@fabrikam.com"],
            &message(MAILBOX, "bob@fabrikam.com", "x"),
        )
        .await
        .expect(250, "2.0.0");
    assert_eq!(emulator.store().messages()[1].endpoint, Endpoint::Exchange);
}

#[tokio::test]
async fn hve_refuses_a_token_with_less_than_ten_minutes_left() {
    let emulator = start(contoso()).await;
    let token = exchange_token(&emulator).await;
    assert_eq!(
        claims(&token)["exp"].as_i64().unwrap() - claims(&token)["iat"].as_i64().unwrap(),
        3599
    );

    // 12 minutes left: accepted.
    emulator.clock().advance(time::Duration::seconds(3599 - 12 * 60));
    hve(&emulator, &token).await;

    // 9 minutes left: refused, while Exchange still takes the token.
    emulator.clock().advance(time::Duration::seconds(3 * 60));
    let reply = hve_refused(&emulator, HVE_ACCOUNT, &token, 501, "5.5.127", "token will expire soon").await;
    assert_eq!(
        reply.lines[0],
        "5.5.127 Invalid XOAUTH2 auth data - Token will expire soon"
    );
    Smtp::authenticated(&emulator, MAILBOX, &token).await;
}

#[tokio::test]
async fn hve_xoauth2_refusals_name_their_cause() {
    let emulator = start(contoso()).await;
    let token = exchange_token(&emulator).await;
    let reply = hve_refused(&emulator, MAILBOX, &token, 535, "5.7.3", "not an HVE account").await;
    assert!(
        reply.lines[0].starts_with("5.7.3 Authentication unsuccessful [") && reply.lines[0].ends_with(']'),
        "worded as Exchange words it: {reply:?}"
    );
    let graph = crate::support::token(&emulator, GRAPH_SCOPE).await;
    hve_refused(
        &emulator,
        HVE_ACCOUNT,
        &graph,
        535,
        "5.7.3",
        "token audience is not Exchange Online",
    )
    .await;
    emulator.clock().advance(time::Duration::seconds(3600));
    hve_refused(&emulator, HVE_ACCOUNT, &token, 535, "5.7.3", "token expired").await;

    // SMTP.SendAsApp alone is not what HVE wants.
    let only_send_as_app = start_with(|s| {
        s.tenants[0].apps[0]
            .permissions
            .retain(|p| !(p.api == Api::Exchange && p.name == "Mail.Send"));
    })
    .await;
    let token = exchange_token(&only_send_as_app).await;
    assert_eq!(claims(&token)["roles"], serde_json::json!(["SMTP.SendAsApp"]));
    hve_refused(
        &only_send_as_app,
        HVE_ACCOUNT,
        &token,
        535,
        "5.7.3",
        "token has no Mail.Send role",
    )
    .await;

    let not_added = start_with(|s| s.tenants[0].hve_accounts[0].apps.clear()).await;
    let token = exchange_token(&not_added).await;
    hve_refused(
        &not_added,
        HVE_ACCOUNT,
        &token,
        535,
        "5.7.3",
        "app not added with Add-HVEAppAccess",
    )
    .await;
}

#[tokio::test]
async fn exchange_smtp_auth_switches_do_not_apply_to_hve() {
    let emulator = start_with(|s| {
        s.tenants[0].smtp_client_authentication_disabled = true;
        s.tenants[0].security_defaults = true;
    })
    .await;
    let token = exchange_token(&emulator).await;
    hve(&emulator, &token).await;
    let mut exchange = Smtp::connect_tls(&emulator).await;
    exchange
        .cmd(&format!("AUTH XOAUTH2 {}", xoauth2(MAILBOX, &token)))
        .await
        .expect(535, "5.7.139");
}

#[tokio::test]
async fn hve_login_takes_the_account_password_until_basic_auth_is_retired() {
    let emulator = start_with(|s| s.tenants[0].hve_accounts[0].password = Some("HVE-pass".into())).await;
    let mut smtp = Smtp::connect_tls_to(&emulator, Endpoint::Hve).await;
    smtp.login(HVE_ACCOUNT, "HVE-pass").await.expect(235, "2.7.0");
    smtp.send_mail(
        HVE_ACCOUNT,
        &["bob@contoso.com"],
        &message(HVE_ACCOUNT, "bob@contoso.com", "Basic"),
    )
    .await
    .expect(250, "2.0.0");
    assert_eq!(emulator.store().messages()[0].identity, Identity::Basic);

    let mut wrong = Smtp::connect_tls_to(&emulator, Endpoint::Hve).await;
    wrong.login(HVE_ACCOUNT, "not-it").await.expect(535, "5.7.3");
    assert_eq!(refusals(&emulator, "wrong password"), 1);
    let mut mailbox = Smtp::connect_tls_to(&emulator, Endpoint::Hve).await;
    mailbox.login(MAILBOX, "HVE-pass").await.expect(535, "5.7.3");
    assert_eq!(refusals(&emulator, "not an HVE account"), 1);

    let retired = start_with(|s| {
        s.tenants[0].hve_accounts[0].password = Some("HVE-pass".into());
        s.tenants[0].basic_auth = BasicAuth::Retired;
    })
    .await;
    let mut smtp = Smtp::connect_tls_to(&retired, Endpoint::Hve).await;
    let reply = smtp.login(HVE_ACCOUNT, "HVE-pass").await;
    reply.expect(550, "5.7.30");
    assert_eq!(
        reply.lines[0],
        "5.7.30 Basic authentication is not supported for Client Submission."
    );
}

#[tokio::test]
async fn hve_takes_internal_recipients_only() {
    let emulator = start(contoso()).await;
    let token = exchange_token(&emulator).await;
    let mut smtp = hve(&emulator, &token).await;
    smtp.cmd(&format!("MAIL FROM:<{HVE_ACCOUNT}>"))
        .await
        .expect(250, "2.1.0");
    let external = smtp.cmd("RCPT TO:<bob@fabrikam.com>").await;
    external.expect(550, "5.7.1");
    assert_eq!(
        external.lines[0],
        "5.7.1 External recipients are not allowed for High Volume Email"
    );
    smtp.cmd("RCPT TO:<bob@CONTOSO.com>").await.expect(250, "2.1.5");
    smtp.cmd("RCPT TO:<eve@contoso.com.evil.example>")
        .await
        .expect(550, "5.7.1");
    smtp.cmd("DATA").await.expect(354, "Start");
    smtp.send(&dot_stuff(&message(HVE_ACCOUNT, "bob@contoso.com", "Internal")))
        .await;
    smtp.send(b".\r\n").await;
    smtp.read().await.expect(250, "2.0.0");
    assert_eq!(emulator.store().messages()[0].rcpt_to, ["bob@CONTOSO.com"]);
    assert_eq!(submission_refusals(&emulator, "external recipient on HVE"), 2);
}

#[tokio::test]
async fn hve_sends_only_as_the_account() {
    let emulator = start(contoso()).await;
    let token = exchange_token(&emulator).await;
    let mut smtp = hve(&emulator, &token).await;
    let header = smtp
        .send_mail(
            HVE_ACCOUNT,
            &["bob@contoso.com"],
            &message(MAILBOX, "bob@contoso.com", "x"),
        )
        .await;
    header.expect(554, "5.2.252");
    assert!(
        header.lines[0].starts_with("5.2.252 SendAsDenied; hve@contoso.com not allowed to send as mailer@contoso.com;"),
        "{header:?}"
    );
    smtp.send_mail(
        MAILBOX,
        &["bob@contoso.com"],
        &message(HVE_ACCOUNT, "bob@contoso.com", "x"),
    )
    .await
    .expect(554, "5.2.252");
    assert!(emulator.store().is_empty());
    assert_eq!(submission_refusals(&emulator, "sender is not the HVE account"), 2);
}

#[tokio::test]
async fn hve_limits_per_message_and_per_tenant_day() {
    let emulator = start_with(|s| {
        s.hve.max_recipients_per_message = 2;
        s.hve.max_message_size = 1000;
        s.hve.recipients_per_day = 3;
    })
    .await;
    let token = exchange_token(&emulator).await;
    let mut smtp = hve(&emulator, &token).await;
    smtp.cmd(&format!("MAIL FROM:<{HVE_ACCOUNT}>"))
        .await
        .expect(250, "2.1.0");
    smtp.cmd("RCPT TO:<a@contoso.com>").await.expect(250, "2.1.5");
    smtp.cmd("RCPT TO:<b@contoso.com>").await.expect(250, "2.1.5");
    smtp.cmd("RCPT TO:<c@contoso.com>").await.expect(452, "4.5.3");
    smtp.cmd("RSET").await.expect(250, "2.0.0");
    smtp.cmd(&format!("MAIL FROM:<{HVE_ACCOUNT}> SIZE=1001"))
        .await
        .expect(552, "5.3.4");
    let big = format!("From: {HVE_ACCOUNT}\r\n\r\n{}\r\n", "x".repeat(1000));
    smtp.send_mail(HVE_ACCOUNT, &["a@contoso.com"], big.as_bytes())
        .await
        .expect(552, "5.3.4");

    // 3 recipients a day for the whole tenant.
    let content = message(HVE_ACCOUNT, "a@contoso.com", "Quota");
    let two = ["a@contoso.com", "b@contoso.com"];
    smtp.send_mail(HVE_ACCOUNT, &two, &content).await.expect(250, "2.0.0");
    let refused = smtp.send_mail(HVE_ACCOUNT, &two, &content).await;
    refused.expect(554, "5.2.0");
    assert!(refused.lines[0].starts_with("5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException"));
    smtp.send_mail(HVE_ACCOUNT, &two[..1], &content)
        .await
        .expect(250, "2.0.0");
    let throttle = emulator.stats().throttle;
    assert_eq!((throttle.quota, throttle.too_many_recipients), (1, 1));

    // Exchange's mailbox limits are its own: 500 recipients a message there.
    let mut exchange = Smtp::authenticated(&emulator, MAILBOX, &token).await;
    exchange
        .send_mail(
            MAILBOX,
            &["a@fabrikam.com", "b@fabrikam.com", "c@fabrikam.com"],
            &message(MAILBOX, "a@fabrikam.com", "x"),
        )
        .await
        .expect(250, "2.0.0");

    // A day later the tenant may send again.
    emulator.clock().advance(time::Duration::days(1));
    let token = exchange_token(&emulator).await;
    hve(&emulator, &token)
        .await
        .send_mail(HVE_ACCOUNT, &two, &content)
        .await
        .expect(250, "2.0.0");
}

// ---------------------------------------------------------------- ACS

/// A TLS session on the ACS port logged in with the SMTP username and the client secret.
async fn acs(emulator: &Emulator) -> Smtp {
    let mut smtp = Smtp::connect_tls_to(emulator, Endpoint::Acs).await;
    smtp.login(ACS_USERNAME, SECRET).await.expect(235, "2.7.0");
    smtp
}

/// AUTH LOGIN on the ACS port expecting a refusal with this code and cause.
async fn acs_refused(emulator: &Emulator, user: &str, password: &str, code: u16, enhanced: &str, cause: &str) -> Reply {
    let before = refusals(emulator, cause);
    let mut smtp = Smtp::connect_tls_to(emulator, Endpoint::Acs).await;
    let reply = smtp.login(user, password).await;
    reply.expect(code, enhanced);
    assert_eq!(refusals(emulator, cause), before + 1, "cause `{cause}`");
    smtp.cmd(&format!("MAIL FROM:<{ACS_SENDER}>"))
        .await
        .expect(530, "5.7.57");
    reply
}

#[tokio::test]
async fn acs_login_with_the_smtp_username_and_the_client_secret_delivers() {
    let emulator = start(contoso()).await;
    let mut smtp = Smtp::connect_to(&emulator, Endpoint::Acs).await;
    assert!(
        smtp.greeting.lines[0].starts_with("smtp.azurecomm.net "),
        "{:?}",
        smtp.greeting
    );
    let before = smtp.cmd("EHLO client.example").await;
    assert_eq!(before.lines[0], "smtp.azurecomm.net Hello [127.0.0.1]");
    assert!(before.lines.contains(&"STARTTLS".to_owned()));
    smtp.cmd("AUTH LOGIN").await.expect(504, "5.7.4");
    smtp.starttls().await;
    let after = smtp.cmd("EHLO client.example").await;
    assert!(after.lines.contains(&"AUTH LOGIN XOAUTH2".to_owned()), "{after:?}");
    smtp.login(ACS_USERNAME, SECRET).await.expect(235, "2.7.0");

    let content = message(ACS_SENDER, "bob@fabrikam.com", "Your order");
    let reply = smtp
        .send_mail(ACS_SENDER, &["bob@fabrikam.com", "carol@example.org"], &content)
        .await;
    reply.expect(250, "2.0.0");
    assert!(reply.lines[0].ends_with("[Hostname=smtp.azurecomm.net]"), "{reply:?}");

    let stored = emulator.store().messages();
    assert_eq!(stored.len(), 1);
    let m = &stored[0];
    assert_eq!(
        (m.endpoint, m.mailbox.as_str(), m.tenant_id.as_str()),
        (Endpoint::Acs, ACS_USERNAME, TENANT)
    );
    assert_eq!(
        m.identity,
        Identity::AcsLogin {
            smtp_username: ACS_USERNAME.into(),
            client_id: CLIENT.into()
        }
    );
    assert_eq!(m.data, content);
    let json = serde_json::to_value(&**m).unwrap();
    assert_eq!(
        (json["endpoint"].as_str(), json["identity"]["method"].as_str()),
        (Some("acs"), Some("acs_login"))
    );
    let stats = emulator.stats();
    assert_eq!(stats.messages_by_endpoint.get("acs"), Some(&1));
    assert_eq!(stats.messages.get(ACS_USERNAME), Some(&1));

    // The user name is case-insensitive; the two-step LOGIN works too.
    let mut two_step = Smtp::connect_tls_to(&emulator, Endpoint::Acs).await;
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    assert_eq!(two_step.cmd("AUTH LOGIN").await.lines[0], "VXNlcm5hbWU6");
    two_step.cmd(&b64("Contoso-SMTP")).await;
    two_step.cmd(&b64(SECRET)).await.expect(235, "2.7.0");
}

#[tokio::test]
async fn acs_login_refusals_share_535_with_distinct_causes() {
    let emulator = start(contoso()).await;
    let cases = [
        (ACS_USERNAME, "not-the-secret", "wrong client secret"),
        (ACS_USERNAME, SECRET_ID, "wrong client secret"),
        ("nobody", SECRET, "unknown SMTP username"),
        (ACS_RESOURCE, SECRET, "unknown SMTP username"),
    ];
    for (user, password, cause) in cases {
        let reply = acs_refused(&emulator, user, password, 535, "5.7.3", cause).await;
        assert_eq!(reply.lines, ["5.7.3 Authentication unsuccessful"]);
    }

    // A mailbox and its password are Exchange's, not ACS's.
    let reply = acs_refused(
        &emulator,
        MAILBOX,
        "P@ssw0rd",
        550,
        "5.7.30",
        "mailbox credentials on Communication Services",
    )
    .await;
    assert_eq!(
        reply.lines[0],
        "5.7.30 Basic authentication is not supported for Client Submission."
    );

    // The secret expires by the emulator's clock.
    let expires = emulator.clock().now() + time::Duration::hours(1);
    emulator
        .update(|s| s.tenants[0].apps[0].secrets[0].expires = Some(Timestamp(expires)))
        .unwrap();
    acs(&emulator).await;
    emulator.clock().advance(time::Duration::hours(2));
    acs_refused(&emulator, ACS_USERNAME, SECRET, 535, "5.7.3", "client secret expired").await;
    emulator
        .update(|s| s.tenants[0].apps[0].secrets[0].expires = None)
        .unwrap();

    emulator
        .update(|s| s.tenants[0].acs_resources[0].role_assignments.clear())
        .unwrap();
    acs_refused(
        &emulator,
        ACS_USERNAME,
        SECRET,
        535,
        "5.7.3",
        "app has no role on the Communication Services resource",
    )
    .await;
    emulator.update(|s| s.tenants[0].apps[0].enabled = false).unwrap();
    acs_refused(&emulator, ACS_USERNAME, SECRET, 535, "5.7.3", "linked app disabled").await;
    assert_eq!(emulator.stats().auth.succeeded, 1);
}

#[tokio::test]
async fn acs_xoauth2_with_a_communication_services_token() {
    let emulator = start(contoso()).await;
    let token = token(&emulator, COMMUNICATION_SCOPE).await;
    let c = claims(&token);
    assert_eq!(c["aud"], "https://communication.azure.com");
    assert!(c.get("roles").is_none(), "ACS authorises with Azure RBAC: {c}");

    let mut smtp = Smtp::connect_tls_to(&emulator, Endpoint::Acs).await;
    smtp.cmd(&format!("AUTH XOAUTH2 {}", xoauth2(ACS_USERNAME, &token)))
        .await
        .expect(235, "2.7.0");
    smtp.send_mail(
        ACS_SENDER,
        &["bob@fabrikam.com"],
        &message(ACS_SENDER, "bob@fabrikam.com", "OAuth"),
    )
    .await
    .expect(250, "2.0.0");
    let stored = emulator.store().messages();
    assert!(matches!(&stored[0].identity, Identity::Xoauth2 { client_id, .. } if client_id == CLIENT));
    assert_eq!(stored[0].mailbox, ACS_USERNAME);

    let refused = |user: &'static str, token: String, cause: &'static str| {
        let emulator = &emulator;
        async move {
            let before = refusals(emulator, cause);
            let mut smtp = Smtp::connect_tls_to(emulator, Endpoint::Acs).await;
            let reply = smtp.cmd(&format!("AUTH XOAUTH2 {}", xoauth2(user, &token))).await;
            reply.expect(535, "5.7.3");
            assert_eq!(reply.lines, ["5.7.3 Authentication unsuccessful"]);
            assert_eq!(refusals(emulator, cause), before + 1, "{cause}");
        }
    };
    let exchange = exchange_token(&emulator).await;
    refused(ACS_USERNAME, exchange, "token audience is not Communication Services").await;
    refused("someone-else", token.clone(), "unknown SMTP username").await;
    // Exchange does not take a Communication Services token.
    let mut smtp = Smtp::connect_tls(&emulator).await;
    smtp.cmd(&format!("AUTH XOAUTH2 {}", xoauth2(MAILBOX, &token)))
        .await
        .expect(535, "5.7.3");
    assert_eq!(refusals(&emulator, "token audience is not Exchange Online"), 1);

    emulator
        .update(|s| s.tenants[0].acs_resources[0].role_assignments.clear())
        .unwrap();
    refused(
        ACS_USERNAME,
        token,
        "app has no role on the Communication Services resource",
    )
    .await;
}

#[tokio::test]
async fn acs_senders_need_a_linked_domain_and_a_mail_from_address() {
    let emulator = start(contoso()).await;
    let mut smtp = acs(&emulator).await;
    let unlinked = smtp.cmd(&format!("MAIL FROM:<{MAILBOX}>")).await;
    unlinked.expect(550, "5.1.7");
    assert_eq!(
        unlinked.lines[0],
        "5.1.7 The specified sender domain has not been linked."
    );
    let other = smtp.cmd(&format!("MAIL FROM:<info@{ACS_DOMAIN}>")).await;
    other.expect(550, "5.1.8");
    assert_eq!(
        other.lines[0],
        "5.1.8 The sender address is not a MailFrom address of the linked domain"
    );
    smtp.cmd("MAIL FROM:<>").await.expect(550, "5.1.7");

    // The From header is held to the same rules after the data.
    smtp.send_mail(
        ACS_SENDER,
        &["bob@fabrikam.com"],
        &message(MAILBOX, "bob@fabrikam.com", "x"),
    )
    .await
    .expect(550, "5.1.7");
    smtp.send_mail(
        ACS_SENDER,
        &["bob@fabrikam.com"],
        &message(&format!("info@{ACS_DOMAIN}"), "bob@fabrikam.com", "x"),
    )
    .await
    .expect(550, "5.1.8");
    smtp.send_mail(
        ACS_SENDER,
        &["bob@fabrikam.com"],
        &message(&ACS_SENDER.to_ascii_uppercase(), "bob@fabrikam.com", "x"),
    )
    .await
    .expect(250, "2.0.0");
    assert_eq!(emulator.store().len(), 1);
    assert_eq!(submission_refusals(&emulator, "sender domain not linked"), 3);
    assert_eq!(submission_refusals(&emulator, "not a MailFrom address"), 2);
}

#[tokio::test]
async fn acs_limits_per_message() {
    let emulator = start_with(|s| {
        s.acs.max_recipients_per_message = 2;
        s.acs.max_message_size = 1000;
    })
    .await;
    let mut smtp = acs(&emulator).await;
    smtp.cmd(&format!("MAIL FROM:<{ACS_SENDER}>"))
        .await
        .expect(250, "2.1.0");
    smtp.cmd("RCPT TO:<a@fabrikam.com>").await.expect(250, "2.1.5");
    smtp.cmd("RCPT TO:<b@example.org>").await.expect(250, "2.1.5");
    smtp.cmd("RCPT TO:<c@contoso.com>").await.expect(452, "4.5.3");
    smtp.cmd("RSET").await.expect(250, "2.0.0");
    smtp.cmd(&format!("MAIL FROM:<{ACS_SENDER}> SIZE=1001"))
        .await
        .expect(552, "5.3.4");
    let big = format!("From: {ACS_SENDER}\r\n\r\n{}\r\n", "x".repeat(1000));
    smtp.send_mail(ACS_SENDER, &["a@fabrikam.com"], big.as_bytes())
        .await
        .expect(552, "5.3.4");
    assert!(emulator.store().is_empty());
}

#[tokio::test]
async fn acs_quota_refuses_the_31st_message_of_a_scaled_minute() {
    // A "minute" of 30 seconds.
    let emulator = start_with(|s| s.exchange.time_scale = 2.0).await;
    let mut smtp = acs(&emulator).await;
    let content = message(ACS_SENDER, "bob@fabrikam.com", "Notice");
    for _ in 0..30 {
        smtp.send_mail(ACS_SENDER, &["bob@fabrikam.com"], &content)
            .await
            .expect(250, "2.0.0");
    }
    let busy = smtp.send_mail(ACS_SENDER, &["bob@fabrikam.com"], &content).await;
    busy.expect(451, "4.7.500");
    assert_eq!(
        busy.lines[0],
        "4.7.500 Server busy: the email quota of the Communication Services resource is exhausted, try again later"
    );
    // Refused, not delayed; refused messages are not counted.
    smtp.send_mail(ACS_SENDER, &["bob@fabrikam.com"], &content)
        .await
        .expect(451, "4.7.500");
    assert_eq!(emulator.store().len(), 30);
    assert_eq!(emulator.stats().throttle.acs_quota, 2);
    assert_eq!(emulator.stats().throttle.rate_delays, 0);

    emulator.clock().advance(time::Duration::seconds(30));
    smtp.send_mail(ACS_SENDER, &["bob@fabrikam.com"], &content)
        .await
        .expect(250, "2.0.0");
}

#[tokio::test]
async fn acs_hourly_quota_per_resource() {
    let emulator = start_with(|s| s.tenants[0].acs_resources[0].messages_per_hour = 3).await;
    let mut smtp = acs(&emulator).await;
    let content = message(ACS_SENDER, "bob@fabrikam.com", "Notice");
    for _ in 0..3 {
        smtp.send_mail(ACS_SENDER, &["bob@fabrikam.com"], &content)
            .await
            .expect(250, "2.0.0");
    }
    smtp.send_mail(ACS_SENDER, &["bob@fabrikam.com"], &content)
        .await
        .expect(451, "4.7.500");
    emulator.clock().advance(time::Duration::minutes(59));
    smtp.send_mail(ACS_SENDER, &["bob@fabrikam.com"], &content)
        .await
        .expect(451, "4.7.500");
    emulator.clock().advance(time::Duration::minutes(1));
    smtp.send_mail(ACS_SENDER, &["bob@fabrikam.com"], &content)
        .await
        .expect(250, "2.0.0");
}

// ---------------------------------------------------------------- Entra

#[tokio::test]
async fn a_multitenant_app_without_a_service_principal_gets_aadsts7000229() {
    const FABRIKAM: &str = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d";
    let emulator = start_with(|s| {
        s.tenants[0].apps[0].multitenant = true;
        s.tenants.push(Tenant::new(FABRIKAM, "fabrikam.com"));
    })
    .await;
    let form = secret_form(EXCHANGE_SCOPE);
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    for tenant in [FABRIKAM, "fabrikam.com"] {
        let (status, body) = token_request(&emulator, tenant, &form).await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["error"], "invalid_client");
        assert_eq!(body["error_codes"], serde_json::json!([7000229]));
        let expected = format!(
            "AADSTS7000229: The client application {CLIENT} is missing service principal in the tenant {FABRIKAM}. See instructions here: https://go.microsoft.com/fwlink/?linkid=2225119\r\nTrace ID: "
        );
        assert!(
            body["error_description"].as_str().unwrap().starts_with(&expected),
            "{body}"
        );
    }
    // In its own tenant it signs in as before; a single-tenant app elsewhere is unknown.
    assert_eq!(token_request(&emulator, TENANT, &form).await.0, 200);
    emulator.update(|s| s.tenants[0].apps[0].multitenant = false).unwrap();
    let (status, body) = token_request(&emulator, FABRIKAM, &form).await;
    assert_eq!((status, &body["error_codes"]), (400, &serde_json::json!([700016])));
}

// ---------------------------------------------------------------- the tenant file

#[test]
fn the_example_tenant_file_keeps_in_step_with_the_fixture() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/contoso.toml");
    let example = Scenario::load(&path).unwrap();
    let fixture = m365_emulator::fixture::contoso(SECRET, None);
    let (e, f) = (&example.tenants[0], &fixture.tenants[0]);
    assert_eq!(e.hve_accounts, f.hve_accounts);
    assert_eq!(e.acs_resources, f.acs_resources);
    assert_eq!(e.apps[0].permissions, f.apps[0].permissions);
    let json = |v: serde_json::Result<serde_json::Value>| v.unwrap();
    assert_eq!(
        json(serde_json::to_value(&example.hve)),
        json(serde_json::to_value(&fixture.hve))
    );
    assert_eq!(
        json(serde_json::to_value(&example.acs)),
        json(serde_json::to_value(&fixture.acs))
    );
}

#[test]
fn the_services_are_validated_naming_the_field() {
    let check = |change: &dyn Fn(&mut Scenario), field: &str| {
        let mut s = contoso();
        change(&mut s);
        let error = s.validate().expect_err(field).to_string();
        assert!(error.starts_with(&format!("{field}: ")), "{field}: {error}");
    };
    check(
        &|s| s.tenants[0].hve_accounts[0].address = "hve@fabrikam.com".into(),
        "tenants[0].hve_accounts[0].address",
    );
    check(
        &|s| s.tenants[0].hve_accounts[0].address = MAILBOX.into(),
        "tenants[0].hve_accounts[0].address",
    );
    check(
        &|s| {
            s.tenants[0].hve_accounts[0].apps = (0..11)
                .map(|i| format!("0b7e2f4c-5d6a-4e8b-9c1d-3f2a4b6c8d{i:02}"))
                .collect();
        },
        "tenants[0].hve_accounts[0].apps",
    );
    check(
        &|s| s.tenants[0].hve_accounts[0].apps[0] = "not-a-guid".into(),
        "tenants[0].hve_accounts[0].apps[0]",
    );
    check(
        &|s| s.tenants[0].acs_resources[0].senders.push("noreply@contoso.com".into()),
        "tenants[0].acs_resources[0].senders[1]",
    );
    check(
        &|s| s.tenants[0].acs_resources[0].domains.push("not a domain".into()),
        "tenants[0].acs_resources[0].domains[1]",
    );
    check(
        &|s| s.tenants[0].acs_resources[0].role_assignments.push("x".into()),
        "tenants[0].acs_resources[0].role_assignments[1]",
    );
    check(
        &|s| s.tenants[0].acs_resources[0].smtp_usernames[0].app_id = "x".into(),
        "tenants[0].acs_resources[0].smtp_usernames[0].app_id",
    );
    check(
        &|s| s.tenants[0].acs_resources[0].smtp_usernames[0].username = "smtp@contoso.com".into(),
        "tenants[0].acs_resources[0].smtp_usernames[0].username",
    );
    check(
        &|s| {
            s.tenants[0].acs_resources[0].smtp_usernames[0].tenant_id =
                Some("a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d".into());
        },
        "tenants[0].acs_resources[0].smtp_usernames[0].tenant_id",
    );
    check(
        &|s| {
            let copy = s.tenants[0].acs_resources[0].smtp_usernames[0].clone();
            s.tenants[0].acs_resources[0].smtp_usernames.push(copy);
        },
        "tenants[0].acs_resources[0].smtp_usernames[1].username",
    );
    check(
        &|s| s.tenants[0].acs_resources[0].messages_per_minute = 0,
        "tenants[0].acs_resources[0].messages_per_minute",
    );
    check(
        &|s| s.hve.max_recipients_per_message = 0,
        "hve.max_recipients_per_message",
    );
    check(&|s| s.acs.max_message_size = 0, "acs.max_message_size");

    // The tenant file spells the same thing.
    let text = r#"
        [hve]
        token_refused_within_secs = 300
        [[tenants]]
        id = "6f1d3c2a-9b4e-4d7a-8c1f-2e5b7a9d0c13"
        domains = ["contoso.com"]
        [[tenants.apps]]
        client_id = "0b7e2f4c-5d6a-4e8b-9c1d-3f2a4b6c8d0e"
        object_id = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
        service_principal_id = "6d5c4b3a-2f1e-4d0c-9b8a-7f6e5d4c3b2a"
        multitenant = true
        [[tenants.apps.permissions]]
        api = "communication"
        name = "ignored"
        [[tenants.hve_accounts]]
        address = "hve@contoso.com"
        apps = ["0b7e2f4c-5d6a-4e8b-9c1d-3f2a4b6c8d0e"]
        password = "pw"
        [[tenants.acs_resources]]
        name = "r"
        domains = ["mail.contoso.com"]
        senders = ["a@mail.contoso.com"]
        [[tenants.acs_resources.smtp_usernames]]
        name = "u"
        username = "a@mail.contoso.com"
        app_id = "0b7e2f4c-5d6a-4e8b-9c1d-3f2a4b6c8d0e"
    "#;
    let s = Scenario::from_toml(text, std::path::Path::new(".")).unwrap();
    assert_eq!(s.hve.token_refused_within_secs, 300);
    assert!(s.tenants[0].apps[0].multitenant);
    assert_eq!(s.tenants[0].apps[0].roles_for(Api::Communication), Vec::<String>::new());
    assert_eq!(s.tenants[0].hve_accounts[0].password.as_deref(), Some("pw"));
    let r = &s.tenants[0].acs_resources[0];
    assert_eq!((r.messages_per_minute, r.messages_per_hour), (30, 100));
    assert_eq!(r.smtp_usernames[0].tenant_id, None);
    assert!(s.smtp_username("A@MAIL.contoso.com").is_some());
    assert!(App::new(CLIENT, APP_OBJECT, SP).multitenant(true).multitenant);
}
