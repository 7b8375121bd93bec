//! `doctor` against the emulator set up with each fault of the guides, configured only through
//! the environment: it must name the right cause and fix. Human and JSON reports are
//! snapshot-tested, with the run-dependent parts (ports, ids, times) normalised.

use m365_emulator::Scenario;
use m365_emulator::fixture::APP_OBJECT;

use crate::support::*;

type Change = Box<dyn FnOnce(&mut Scenario)>;

struct Case {
    name: &'static str,
    scenario: Change,
    env: Vec<(&'static str, String)>,
    args: Vec<&'static str>,
    /// The first failing check and the cause it must name.
    check: &'static str,
    cause: &'static str,
    /// Whether the cause must come first (it can be established from outside the tenant).
    first: bool,
}

fn case(name: &'static str, check: &'static str, cause: &'static str) -> Case {
    Case {
        name,
        scenario: Box::new(|_| {}),
        env: Vec::new(),
        args: Vec::new(),
        check,
        cause,
        first: true,
    }
}

impl Case {
    fn scenario(mut self, change: impl FnOnce(&mut Scenario) + 'static) -> Self {
        self.scenario = Box::new(change);
        self
    }

    fn env(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.env.push((key, value.into()));
        self
    }

    fn args(mut self, args: &[&'static str]) -> Self {
        self.args.extend_from_slice(args);
        self
    }

    fn among_causes(mut self) -> Self {
        self.first = false;
        self
    }

    /// The account of `service` (`hve`, `acs`), as `services::use_service` sets it.
    fn service(self, service: &'static str) -> Self {
        use m365_emulator::fixture::{ACS_SENDER, ACS_USERNAME, HVE_ACCOUNT};
        let (mailbox, username, port) = match service {
            "hve" => (HVE_ACCOUNT, "", "HVE_PORT"),
            _ => (ACS_SENDER, ACS_USERNAME, "ACS_PORT"),
        };
        self.env("M365_MAILER_SERVICE", service)
            .env("M365_MAILER_MAILBOX", mailbox)
            .env("M365_MAILER_SMTP_USERNAME", username)
            .env("M365_MAILER_SMTP_PORT", port)
    }
}

fn cases() -> Vec<Case> {
    let yesterday = now() - time::Duration::days(1);
    vec![
        case("wrong tenant", "token", "wrong-tenant").env("AZURE_TENANT_ID", "00000000-1111-2222-3333-444444444444"),
        case("unknown client id", "token", "unknown-client")
            .env("AZURE_CLIENT_ID", "11111111-2222-3333-4444-555555555555"),
        case("wrong secret", "token", "wrong-secret").env("AZURE_CLIENT_SECRET", "Xq58Q~not-the-right-value"),
        case("secret id as value", "credential", "wrong-secret").env("AZURE_CLIENT_SECRET", SECRET_ID),
        case("expired secret", "token", "expired-secret").scenario(move |s| {
            s.tenants[0].apps[0].secrets[0].expires = Some(m365_emulator::model::Timestamp(yesterday));
        }),
        case("certificate not registered", "token", "certificate-not-registered")
            .env("AZURE_CLIENT_SECRET", "")
            .env("AZURE_CLIENT_CERTIFICATE_PATH", "STRANGER"),
        // No consent for any of Exchange's permissions: a token without roles, as with RBAC for
        // Applications, which Exchange refuses when no role is assigned there either.
        case("no admin consent", "auth", "no-admin-consent").scenario(|s| {
            for p in &mut s.tenants[0].apps[0].permissions {
                p.admin_consent &= p.api != m365_emulator::Api::Exchange;
            }
        }),
        case("service principal not registered", "auth", "sp-not-registered")
            .scenario(|s| s.tenants[0].exchange_service_principals.clear())
            .among_causes(),
        case(
            "service principal registered with the app registration's object id",
            "auth",
            "sp-wrong-object-id",
        )
        .scenario(|s| s.tenants[0].exchange_service_principals[0].object_id = APP_OBJECT.into())
        .among_causes(),
        case("no FullAccess", "auth", "no-full-access")
            .scenario(|s| s.tenants[0].mailboxes[0].full_access.clear())
            .among_causes(),
        case("From not allowed", "send", "no-send-as").args(&[
            "--send-test",
            "bob@fabrikam.com",
            "--from",
            "ceo@contoso.com",
        ]),
        case("SMTP AUTH disabled for the tenant", "auth", "smtp-auth-disabled-tenant")
            .scenario(|s| s.tenants[0].smtp_client_authentication_disabled = true),
        case(
            "SMTP AUTH disabled for the mailbox",
            "auth",
            "smtp-auth-disabled-mailbox",
        )
        .scenario(|s| s.tenants[0].mailboxes[0].smtp_client_authentication_disabled = Some(true)),
        case("security defaults", "auth", "security-defaults").scenario(|s| s.tenants[0].security_defaults = true),
        case("scope without /.default", "token", "wrong-scope")
            .env("M365_MAILER_SCOPE", "https://outlook.office365.com/SMTP.SendAsApp"),
        case("SMTP port unreachable", "tcp", "port-blocked").env("M365_MAILER_SMTP_PORT", "CLOSED"),
        case("TLS certificate not trusted", "tls", "tls-untrusted").env("M365_MAILER_CA_FILE", ""),
        case("more than 3 concurrent connections", "send", "too-many-connections")
            .args(&["--send-test", "bob@fabrikam.com"]),
        case("HVE app not added", "auth", "hve-no-app-access")
            .service("hve")
            .scenario(|s| s.tenants[0].hve_accounts[0].apps.clear()),
        case("HVE token without Mail.Send", "claims", "no-admin-consent")
            .service("hve")
            .scenario(|s| {
                s.tenants[0].apps[0]
                    .permissions
                    .retain(|p| !(p.api == m365_emulator::Api::Exchange && p.name == "Mail.Send"));
            }),
        case("HVE token close to its expiry", "auth", "token-near-expiry")
            .service("hve")
            .scenario(|s| {
                s.faults.push(m365_emulator::Fault::reply(
                    m365_emulator::Stage::Auth,
                    "501 5.5.127 Invalid XOAUTH2 auth data - Token will expire soon",
                ));
            }),
        case("HVE external recipient", "send", "hve-internal-only")
            .service("hve")
            .args(&["--send-test", "someone@fabrikam.com"]),
        case("ACS wrong secret", "token", "wrong-secret")
            .service("acs")
            .env("AZURE_CLIENT_SECRET", "Xq58Q~not-the-right-value"),
        case("ACS unknown SMTP username", "auth", "acs-smtp-username")
            .service("acs")
            .env("M365_MAILER_SMTP_USERNAME", "contoso-smpt"),
        case("ACS sender not a MailFrom address", "send", "acs-sender-not-configured")
            .service("acs")
            .env("M365_MAILER_MAILBOX", "info@notify.contoso.com")
            .args(&["--send-test", "customer@fabrikam.com"]),
        case("ACS with a mailbox password", "auth", "acs-mailbox-password")
            .service("acs")
            .env("AZURE_CLIENT_SECRET", "")
            .env("M365_MAILER_SMTP_USERNAME", MAILBOX)
            .env("M365_MAILER_SMTP_PASSWORD", "a mailbox password"),
        case("HVE password after Basic's retirement", "auth", "basic-auth-retired")
            .service("hve")
            .env("AZURE_CLIENT_SECRET", "")
            .env("M365_MAILER_SMTP_USERNAME", m365_emulator::fixture::HVE_ACCOUNT)
            .env("M365_MAILER_SMTP_PASSWORD", "an HVE password")
            .scenario(|s| s.tenants[0].basic_auth = m365_emulator::model::BasicAuth::Retired),
        case("ACS app without a role", "auth", "acs-no-role")
            .service("acs")
            .scenario(|s| s.tenants[0].acs_resources[0].role_assignments.clear())
            .among_causes(),
        case("ACS sender domain not linked", "send", "acs-domain-not-linked")
            .service("acs")
            .env("M365_MAILER_MAILBOX", "donotreply@contoso.com")
            .args(&["--send-test", "customer@fabrikam.com"]),
        case(
            "multitenant app without a service principal",
            "token",
            "multitenant-no-service-principal",
        )
        .scenario(|s| {
            let mut app = s.tenants[0].apps.remove(0);
            app.multitenant = true;
            s.tenants
                .push(m365_emulator::Tenant::new("7a2e9c41-3b5d-4f6e-8a1c-9d0b2e4f6a8c", "fabrikam.com").app(app));
        }),
    ]
}

/// Makes a report independent of the run: ports, generated ids, times, paths.
fn normalise(text: &str, world: &World) -> String {
    let replacements = [
        (r"127\.0\.0\.1:\d+", "127.0.0.1:PORT"),
        (r"\d{4}-\d\d-\d\d(T| )\d\d:\d\d:\d\d(\.\d+)?Z", "TIME"),
        (r"\b[0-9A-F]{16}\]", "HEX]"),
        (r"<[0-9a-f]{32}@contoso\.com>", "<MESSAGE-ID>"),
        (r"in \d+ ms", "in N ms"),
        (r"valid for \d+ s", "valid for N s"),
        // The unregistered certificate is generated for the run.
        (r"certificate [0-9A-F]{40}", "certificate THUMBPRINT"),
        (r"'[0-9A-F]{8,}(\s+[0-9A-F]+)?'", "'THUMBPRINT'"),
        (r"\d{4}-\d\d-\d\d \(\d+ days\)", "DATE (N days)"),
        (r"in \d+ days \(\d{4}-\d\d-\d\d\)", "in N days (DATE)"),
    ];
    let mut out = text.replace(world.dir.path().to_str().unwrap(), "<dir>");
    for (pattern, with) in replacements {
        out = regex::Regex::new(pattern).unwrap().replace_all(&out, with).into_owned();
    }
    // Trace and correlation ids are new every time; the fixture's ids stay.
    let fixed = [
        TENANT,
        CLIENT,
        SECRET_ID,
        APP_OBJECT,
        m365_emulator::fixture::SERVICE_PRINCIPAL,
    ];
    let guid = regex::Regex::new(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}").unwrap();
    guid.replace_all(&out, |m: &regex::Captures<'_>| {
        if fixed.contains(&&m[0]) {
            m[0].to_owned()
        } else {
            "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx".to_owned()
        }
    })
    .into_owned()
}

#[tokio::test]
async fn every_fault_of_the_guides_is_named_with_its_fix() {
    for case in cases() {
        let name = case.name;
        let mut world = World::start_with(case.scenario).await;
        let mut sessions = Vec::new();
        if name.starts_with("more than 3") {
            for _ in 0..3 {
                sessions.push(hold_connection(&world).await);
            }
        }
        for (key, value) in &case.env {
            let value = match value.as_str() {
                "STRANGER" => {
                    let now = now();
                    let stranger =
                        m365_emulator::ClientCertificate::generate("Stranger", now, now + time::Duration::days(30))
                            .unwrap();
                    world
                        .file("stranger.pem", format!("{}{}", stranger.key_pem, stranger.cert_pem))
                        .display()
                        .to_string()
                }
                "HVE_PORT" => world.emulator.hve_addr().port().to_string(),
                "ACS_PORT" => world.emulator.acs_addr().port().to_string(),
                "CLOSED" => std::net::TcpListener::bind("127.0.0.1:0")
                    .unwrap()
                    .local_addr()
                    .unwrap()
                    .port()
                    .to_string(),
                other => other.to_owned(),
            };
            world.set(key, &value);
        }
        let mut args = vec!["doctor", "--json"];
        args.extend_from_slice(&case.args);
        let output = world.run(&args, b"").await;
        let report: serde_json::Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("{name}: {e}\n{}", String::from_utf8_lossy(&output.stdout)));
        assert_ne!(output.status.code(), Some(0), "{name}: doctor must fail");
        let failed = report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["status"] == "fail")
            .unwrap_or_else(|| panic!("{name}: nothing failed: {report:#}"));
        assert_eq!(failed["id"], case.check, "{name}: {failed:#}");
        let causes: Vec<&str> = failed["diagnosis"]["causes"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: no diagnosis: {failed:#}"))
            .iter()
            .map(|c| c["id"].as_str().unwrap())
            .collect();
        if case.first {
            assert_eq!(causes.first(), Some(&case.cause), "{name}: {causes:?}");
        } else {
            assert!(causes.contains(&case.cause), "{name}: {causes:?}");
        }
        assert!(
            !failed["diagnosis"]["causes"][0]["fix"].as_str().unwrap().is_empty(),
            "{name}"
        );
        // The held connections are let go, and the emulator frees a mailbox's slot only once it
        // has seen a connection end (doctor's own too): wait for that, or the second run could
        // still find every slot taken.
        for session in sessions {
            session.close().await;
        }
        tokio::time::timeout(std::time::Duration::from_secs(10), async {
            while world.emulator.stats().smtp_connections_open > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{name}: the emulator still counts open connections"));

        let human = world
            .run(&args[..1].iter().chain(&case.args).copied().collect::<Vec<_>>(), b"")
            .await;
        let text = String::from_utf8_lossy(&human.stdout);
        let wide: Vec<&str> = text.lines().filter(|l| l.chars().count() > 80).collect();
        assert!(wide.is_empty(), "{name}: wider than 80 columns: {wide:#?}");
        assert!(!text.contains("\x1b["), "no colour when not a terminal");
        let slug = name.replace(|c: char| !c.is_ascii_alphanumeric(), "_");
        insta::assert_snapshot!(format!("doctor_{slug}"), normalise(&text, &world));
        insta::assert_snapshot!(
            format!("doctor_{slug}_json"),
            normalise(&String::from_utf8_lossy(&output.stdout), &world)
        );
    }
}

/// An authenticated session left open, as a busy application would.
async fn hold_connection(world: &World) -> m365_mailer::Connection {
    let config = world.file("hold.toml", "");
    world.mailer(&config).connect().await.unwrap()
}

#[tokio::test]
async fn a_new_user_with_the_guides_fields_gets_a_clean_pass() {
    // Guide 000's fields only: From (the mailbox), client id, secret, tenant; the emulator's
    // endpoints and CA are what differ from Microsoft 365.
    let world = World::start().await;
    let output = world.run(&["doctor", "--send-test", "bob@fabrikam.com"], b"").await;
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(text.contains("10 passed, 0 failed, 0 warnings, 0 skipped"), "{text}");
    assert_eq!(world.emulator.store().len(), 1, "the test message arrived");
}

#[tokio::test]
async fn secret_expiry_warns_at_30_days_and_fails_when_past() {
    let mut world = World::start().await;
    let date = |days: i64| (now() + time::Duration::days(days)).date().to_string();
    world.set("M365_MAILER_CLIENT_SECRET_EXPIRES", &date(10));
    let output = world.run(&["doctor", "--json"], b"").await;
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(0), "a warning is not a failure");
    assert_eq!(report["checks"][1]["status"], "warn");
    assert!(
        report["checks"][1]["summary"]
            .as_str()
            .unwrap()
            .contains("expires in 10 days")
    );
    assert!(
        !report["checks"][1]["summary"]
            .as_str()
            .unwrap()
            .contains("renew it now")
    );

    // The second level: a week or less.
    world.set("M365_MAILER_CLIENT_SECRET_EXPIRES", &date(5));
    let output = world.run(&["doctor", "--json"], b"").await;
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["checks"][1]["status"], "warn");
    let summary = report["checks"][1]["summary"].as_str().unwrap();
    assert!(
        summary.contains("expires in 5 days") && summary.ends_with(": renew it now"),
        "{summary}"
    );

    world.set("M365_MAILER_CLIENT_SECRET_EXPIRES", &date(-1));
    let output = world.run(&["doctor", "--json"], b"").await;
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(77));
    assert_eq!(report["checks"][1]["status"], "fail");
    assert_eq!(report["checks"][1]["diagnosis"]["causes"][0]["id"], "expired-secret");
}

#[tokio::test]
async fn plaintext_smtp_is_never_reported_as_tls() {
    let mut world = World::start().await;
    world.set("M365_MAILER_SMTP_SECURITY", "insecure-plaintext");
    let output = world.run(&["doctor", "--json"], b"").await;
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let tls = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "tls")
        .unwrap();
    assert_eq!(tls["status"], "warn", "{tls}");
    assert!(tls["summary"].as_str().unwrap().contains("in the clear"), "{tls}");
}

#[tokio::test]
async fn rbac_for_applications_passes_without_any_role_in_the_token() {
    // What `setup` does by default: no API permission, no FullAccess; Exchange's role
    // assignment `Application SMTP.SendAsApp` scoped to the mailbox.
    let world = World::start_with(|s| {
        *s = m365_emulator::fixture::contoso_rbac(SECRET, Some(&client_cert().cert_pem));
    })
    .await;
    let output = world.run(&["doctor", "--send-test", "bob@fabrikam.com"], b"").await;
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(text.contains("roles absent (as with RBAC for Applications"), "{text}");
    assert_eq!(world.emulator.store().len(), 1, "the test message arrived");
}
