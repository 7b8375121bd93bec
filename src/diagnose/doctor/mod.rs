//! `doctor`: every link of the chain checked in order, each with its evidence and, when it
//! fails, the cause and the fix from the catalog. A check that cannot run because an earlier one
//! failed is reported as skipped, never dropped.

use std::time::Duration;

use serde::Serialize;

use super::{Evidence, Ids, Rendered, catalog};
use crate::config::{Account, AccountAuth, Config, ConfigError};
use crate::message::{self, Compose};
use crate::oauth::{AccessToken, ClientCredential, RetryPolicy, TokenProvider, TokenSource, inspect};
use crate::smtp::{self, Connection, Credentials, SmtpError};
use crate::submit::{self, SubmitError};

/// How a check went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// It works.
    Pass,
    /// It works, but should be changed.
    Warn,
    /// It does not work.
    Fail,
    /// It could not run.
    Skip,
}

/// One check.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// Stable id: `configuration`, `credential`, `dns`, `tcp`, `tls`, `token`, `claims`, `ehlo`,
    /// `auth`, `send`.
    pub id: &'static str,
    /// Outcome.
    pub status: Status,
    /// One line on what was found.
    pub summary: String,
    /// What was observed.
    pub evidence: Vec<String>,
    /// Cause and fix, when it failed or warns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diagnosis: Option<Rendered>,
    /// The sysexits code this failure stands for.
    #[serde(skip)]
    pub code: Option<u8>,
}

impl Check {
    fn new(id: &'static str, status: Status, summary: impl Into<String>) -> Self {
        Self {
            id,
            status,
            summary: summary.into(),
            evidence: Vec::new(),
            diagnosis: None,
            code: None,
        }
    }

    fn evidence(mut self, line: impl Into<String>) -> Self {
        self.evidence.push(line.into());
        self
    }

    fn failed(mut self, code: u8, diagnosis: Option<Rendered>) -> Self {
        self.status = Status::Fail;
        self.code = Some(code);
        self.diagnosis = diagnosis;
        self
    }
}

/// Every check, in order.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The account checked.
    pub account: Option<String>,
    /// The checks.
    pub checks: Vec<Check>,
}

impl Report {
    /// Checks with this status.
    pub fn count(&self, status: Status) -> usize {
        self.checks.iter().filter(|c| c.status == status).count()
    }

    /// 0 when nothing failed, else the sysexits code of the first failure.
    pub fn exit_code(&self) -> u8 {
        self.checks
            .iter()
            .find(|c| c.status == Status::Fail)
            .map_or(0, |c| c.code.unwrap_or(1))
    }
}

/// What `doctor` is asked to do besides checking.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Send a real test message to this address.
    pub send_test: Option<String>,
    /// From address of the test message (default: the account's).
    pub from: Option<String>,
}

mod graph;

const ALL: [&str; 10] = [
    "configuration",
    "credential",
    "dns",
    "tcp",
    "tls",
    "token",
    "claims",
    "ehlo",
    "auth",
    "send",
];

/// Runs every check.
pub async fn run(config: Result<Config, ConfigError>, options: &Options) -> Report {
    let mut checks = Vec::new();
    let config = match config {
        Ok(c) => c,
        Err(e) => {
            let diagnosis = None;
            checks.push(Check::new("configuration", Status::Fail, e.to_string()).failed(78, diagnosis));
            skip_rest(&mut checks, "the configuration is not usable");
            return Report { account: None, checks };
        }
    };
    let account = &config.account;
    let mut ids = Ids::of(account);
    let evidence = Evidence::of(account);
    checks.push(configuration(&config));
    checks.push(credential(account, &evidence, &ids));

    let dns = dns(account).await;
    let dns_failed = dns.status == Status::Fail;
    checks.push(dns);
    if dns_failed {
        skip_rest(&mut checks, "host names do not resolve");
        return Report::of(account, checks);
    }
    let graph = account.transport == crate::config::Transport::Graph;
    let tcp = if graph {
        graph::tcp(account, &ids).await
    } else {
        tcp(account, &ids).await
    };
    let tcp_ok = tcp.status == Status::Pass;
    checks.push(tcp);

    let mut connection = None;
    if graph {
        checks.push(if tcp_ok {
            graph::tls(account, &ids).await
        } else {
            Check::new("tls", Status::Skip, "needs a TCP connection")
        });
    } else if tcp_ok {
        let (check, conn) = tls(account, &ids).await;
        checks.push(check);
        connection = conn;
    } else {
        checks.push(Check::new("tls", Status::Skip, "needs a TCP connection"));
    }

    let (mut token_check, token) = token(account, &evidence, &ids).await;
    let explained_above = checks.iter().any(|c| c.id == "credential" && c.status == Status::Fail);
    if explained_above && token_check.diagnosis.as_ref().is_some_and(|d| d.id == "aadsts/7000215") {
        token_check.diagnosis = None;
        token_check
            .evidence
            .push("Entra confirms the credential problem above.".to_owned());
    }
    checks.push(token_check);
    let claims = token
        .as_ref()
        .and_then(|t| inspect::decode(t.token.expose()))
        .map(|(_, c)| c);
    if let Some(c) = &claims {
        ids.sp_id = c["oid"].as_str().map(str::to_owned);
    }
    let claims_check = match &claims {
        Some(c) => claims_check(account, c, &ids),
        None if token.is_some() => Check::new("claims", Status::Warn, "the token is opaque; its claims cannot be read"),
        None => Check::new("claims", Status::Skip, "needs a token"),
    };
    checks.push(claims_check);
    if account.transport == crate::config::Transport::Graph {
        let mut evidence = evidence;
        evidence.claims = claims;
        graph::checks(&mut checks, account, token.as_ref(), options, &evidence, &mut ids).await;
        return Report::of(account, checks);
    }

    let Some(mut connection) = connection else {
        for id in ["ehlo", "auth", "send"] {
            checks.push(Check::new(
                id,
                Status::Skip,
                "needs a TLS connection to the SMTP server",
            ));
        }
        return Report::of(account, checks);
    };
    let offered = connection.capabilities().auth.join(" ");
    let oauth = matches!(account.auth, AccountAuth::OAuth { .. });
    let mechanism = if oauth { "XOAUTH2" } else { "PLAIN or LOGIN" };
    let offers = if oauth {
        connection.capabilities().offers_auth("XOAUTH2")
    } else {
        connection.capabilities().offers_auth("PLAIN") || connection.capabilities().offers_auth("LOGIN")
    };
    if offers {
        checks.push(Check::new(
            "ehlo",
            Status::Pass,
            format!("after STARTTLS the server offers AUTH {offered}"),
        ));
    } else {
        let diagnosis = super::explain(catalog_symptom("xoauth2-not-offered"), &evidence).render(&ids);
        checks.push(
            Check::new(
                "ehlo",
                Status::Fail,
                format!("the server does not offer AUTH {mechanism}"),
            )
            .evidence(format!(
                "AUTH mechanisms offered: {}",
                if offered.is_empty() { "none" } else { &offered }
            ))
            .failed(69, Some(diagnosis)),
        );
        skip(&mut checks, &["auth", "send"], "needs AUTH");
        return Report::of(account, checks);
    }

    let credentials = match (&account.auth, &token) {
        (AccountAuth::OAuth { .. }, Some(t)) => Credentials::XOAuth2 {
            user: account.mailbox.value.clone(),
            token: t.token.clone(),
        },
        (AccountAuth::Password { user, password }, _) => Credentials::Password {
            user: user.clone(),
            password: password.clone(),
        },
        (AccountAuth::OAuth { .. }, None) => {
            skip(&mut checks, &["auth", "send"], "needs a token");
            return Report::of(account, checks);
        }
    };
    let mut evidence = evidence;
    evidence.claims = claims;
    match connection.authenticate(&credentials).await {
        Ok(()) => checks.push(Check::new(
            "auth",
            Status::Pass,
            format!("AUTH accepted for {}", account.mailbox.value),
        )),
        Err(e) => {
            let error = SubmitError::Smtp(e);
            checks.push(failure("auth", &error, &evidence, &ids));
            skip(&mut checks, &["send"], "needs a successful AUTH");
            return Report::of(account, checks);
        }
    }
    checks.push(send_test(account, &mut connection, options, &evidence, &mut ids).await);
    connection.quit().await;
    Report::of(account, checks)
}

impl Report {
    fn of(account: &Account, checks: Vec<Check>) -> Self {
        Self {
            account: Some(format!("{} ({})", account.name, account.mailbox.value)),
            checks,
        }
    }
}

fn skip_rest(checks: &mut Vec<Check>, why: &str) {
    let done: Vec<&str> = checks.iter().map(|c| c.id).collect();
    let rest: Vec<&'static str> = ALL.iter().copied().filter(|id| !done.contains(id)).collect();
    skip(checks, &rest, why);
}

fn skip(checks: &mut Vec<Check>, ids: &[&'static str], why: &str) {
    for id in ids {
        checks.push(Check::new(id, Status::Skip, why));
    }
}

fn catalog_symptom(name: &str) -> &'static catalog::Entry {
    super::symptom(name)
}

/// A failed check explained from the catalog.
fn failure(id: &'static str, error: &SubmitError, evidence: &Evidence, ids: &Ids) -> Check {
    let code = crate::sysexits::classify(error) as u8;
    let diagnosis = super::diagnose(error, evidence).map(|d| d.render(ids));
    Check::new(id, Status::Fail, error.to_string()).failed(code, diagnosis)
}

fn configuration(config: &Config) -> Check {
    let a = &config.account;
    let source = config
        .file
        .as_ref()
        .map_or_else(|| "environment and flags".to_owned(), |f| f.display().to_string());
    let mut check = Check::new(
        "configuration",
        Status::Pass,
        format!("account `{}` from {source}", a.name),
    );
    if let Some(t) = &a.tenant {
        let shape = if uuid::Uuid::try_parse(&t.value).is_ok() {
            "GUID"
        } else {
            "domain"
        };
        check = check.evidence(format!("tenant {} ({shape})", t.value));
    }
    if let Some(c) = &a.client_id {
        check = check.evidence(format!("client id {}", c.value));
    }
    check = check.evidence(format!("mailbox {}", a.mailbox.value));
    if !a.token_endpoint.value.is_empty() {
        // With the tenant shown above, the endpoint fits the report's width.
        let endpoint = match &a.tenant {
            Some(t) => a.token_endpoint.value.replace(&format!("/{}/", t.value), "/{tenant}/"),
            None => a.token_endpoint.value.clone(),
        };
        check = check.evidence(format!("token endpoint {endpoint}"));
    }
    check = check.evidence(format!("scope {}", a.scope.value));
    check = check.evidence(format!("SMTP {}:{}", a.smtp.host, a.smtp.port));
    let warnings: Vec<&String> = config
        .warnings
        .iter()
        .filter(|w| !w.contains("looks like a secret ID") && !w.contains("expires in") && !w.contains("expired on"))
        .collect();
    if !warnings.is_empty() {
        check.status = Status::Warn;
        for w in warnings {
            check = check.evidence(format!("warning: {w}"));
        }
    }
    check
}

fn credential(account: &Account, evidence: &Evidence, ids: &Ids) -> Check {
    match &account.auth {
        AccountAuth::OAuth {
            credential: ClientCredential::Secret(_),
            origin,
        } => {
            if evidence.secret_looks_like_id {
                let entry = super::for_aadsts(7000215).expect("in the catalog");
                let diagnosis = super::explain(entry, evidence).render(ids);
                return Check::new(
                    "credential",
                    Status::Fail,
                    "the client secret is a GUID: a Secret ID, not the secret's Value",
                )
                .evidence(format!("client secret from {origin}"))
                .failed(77, Some(diagnosis));
            }
            let check = Check::new("credential", Status::Pass, format!("client secret from {origin}"));
            let Some(expires) = &account.secret_expires else {
                return check
                    .evidence("its expiry is not configured (client_secret_expires): set it to be warned in time");
            };
            let days = (expires.value - crate::clock::now().date()).whole_days();
            if days < 0 {
                let diagnosis =
                    super::explain(super::for_aadsts(7000222).expect("in the catalog"), evidence).render(ids);
                return Check::new(
                    "credential",
                    Status::Fail,
                    format!("the client secret expired on {}", expires.value),
                )
                .failed(77, Some(diagnosis));
            }
            let mut check = check.evidence(format!("expires {} ({days} days)", expires.value));
            if days < 30 {
                check.status = Status::Warn;
                check.summary = format!(
                    "the client secret expires in {days} days ({}){}",
                    expires.value,
                    urgency(days)
                );
                check = check.evidence("create a new secret and update the configuration before it expires");
            }
            check
        }
        AccountAuth::OAuth {
            credential: ClientCredential::Certificate(cert),
            origin,
        } => {
            let days = (cert.not_after - crate::clock::now()).whole_days();
            let mut check = Check::new(
                "credential",
                Status::Pass,
                format!(
                    "certificate {}, expires {} ({days} days)",
                    cert.thumbprint_hex(),
                    cert.not_after.date()
                ),
            )
            .evidence(format!("subject {}", cert.subject))
            .evidence(format!("from {origin}, private key matches"));
            if days < 30 {
                check.status = Status::Warn;
                check.summary.push_str(urgency(days));
                check = check.evidence("renew it and upload the new certificate before it expires");
            }
            check
        }
        AccountAuth::OAuth {
            credential: ClientCredential::FederatedTokenFile(path),
            origin,
        } => federated_token(path, origin, evidence, ids),
        AccountAuth::OAuth {
            credential: ClientCredential::ManagedIdentity(identity),
            origin,
        } => Check::new(
            "credential",
            Status::Pass,
            format!("user-assigned managed identity {}", identity.client_id),
        )
        .evidence(format!(
            "from {origin}; its token for {} is the client assertion",
            identity.audience
        ))
        .evidence(match &identity.endpoint {
            crate::oauth::managed_identity::IdentityEndpoint::Imds(url) => {
                format!("identity endpoint {url} (Azure VM)")
            }
            crate::oauth::managed_identity::IdentityEndpoint::AppService { url, .. } => {
                format!("identity endpoint {url} (App Service)")
            }
        }),
        AccountAuth::Password { user, .. } => {
            Check::new("credential", Status::Pass, format!("password for {user} (basic AUTH)"))
        }
    }
}

/// The second warning level: a week or less left.
fn urgency(days: i64) -> &'static str {
    if days <= 7 { ": renew it now" } else { "" }
}

/// The audience Entra expects of a federated token in the global cloud.
const TOKEN_EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";

/// A federated token file: readable, a JWT, for Entra's token exchange, not expired. Entra
/// checks issuer and subject against the app's federated credentials; they are shown so that
/// they can be compared with `az ad app federated-credential list`.
fn federated_token(path: &std::path::Path, origin: &crate::config::Origin, evidence: &Evidence, ids: &Ids) -> Check {
    let token = match crate::oauth::credential::read_federated_token(path) {
        Ok(t) => t,
        Err(e) => {
            return Check::new(
                "credential",
                Status::Fail,
                format!("cannot read the federated token file {}: {e}", path.display()),
            )
            .evidence(format!("from {origin}"))
            .failed(78, None);
        }
    };
    let Some((_, claims)) = inspect::decode(token.expose()) else {
        return Check::new(
            "credential",
            Status::Fail,
            format!("{} does not hold a JWT", path.display()),
        )
        .evidence("a federated token file holds one signed JWT (a projected service account token)")
        .failed(78, None);
    };
    let text = |name: &str| claims[name].as_str().unwrap_or("(none)").to_owned();
    let audiences: Vec<String> = match &claims["aud"] {
        serde_json::Value::String(a) => vec![a.clone()],
        serde_json::Value::Array(a) => a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
        _ => Vec::new(),
    };
    let mut check = Check::new(
        "credential",
        Status::Pass,
        format!("federated token from {}", path.display()),
    )
    .evidence(format!("issuer {}", text("iss")))
    .evidence(format!("subject {}", text("sub")))
    .evidence(format!("audience {}", audiences.join(", ")))
    .evidence(format!("from {origin}; read again for every token request"));
    if let Some(exp) = claims["exp"].as_f64() {
        let left = exp as i64 - crate::clock::unix_now();
        if left <= 0 {
            let entry = super::for_aadsts(700024).expect("in the catalog");
            check.status = Status::Fail;
            check.summary = format!("the federated token in {} expired {} s ago", path.display(), -left);
            return check
                .evidence("the file is not being refreshed: the kubelet replaces a projected token well before it expires, a copied token goes stale")
                .failed(77, Some(super::explain(entry, evidence).render(ids)));
        }
        check = check.evidence(format!("expires in {left} s"));
    }
    if !audiences.iter().any(|a| a.starts_with(TOKEN_EXCHANGE_AUDIENCE)) {
        check.status = Status::Warn;
        check = check.evidence(format!(
            "Entra expects the audience {TOKEN_EXCHANGE_AUDIENCE} (…USGov, …China in national clouds) unless the federated credential lists another"
        ));
    }
    check
}

fn host_of(url: &str) -> Option<(String, u16)> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split('/').next()?;
    let default = if scheme == "http" { 80 } else { 443 };
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || authority.starts_with('[') => Some((
            host.trim_matches(['[', ']']).to_owned(),
            port.parse().unwrap_or(default),
        )),
        _ => Some((authority.to_owned(), default)),
    }
}

async fn dns(account: &Account) -> Check {
    let upstream = match account.transport {
        crate::config::Transport::Smtp => (account.smtp.host.clone(), account.smtp.port),
        crate::config::Transport::Graph => host_of(&account.graph_url).unwrap_or_default(),
    };
    let mut targets = vec![upstream];
    if matches!(account.auth, AccountAuth::OAuth { .. })
        && let Some(login) = host_of(&account.token_endpoint.value)
    {
        targets.insert(0, login);
    }
    targets.dedup_by(|a, b| a.0 == b.0);
    let mut check = Check::new("dns", Status::Pass, "host names resolve");
    for (host, port) in targets {
        match tokio::time::timeout(Duration::from_secs(10), tokio::net::lookup_host((host.as_str(), port))).await {
            Ok(Ok(addresses)) => {
                let list: Vec<String> = addresses.map(|a| a.ip().to_string()).take(3).collect();
                check = check.evidence(format!("{host} → {}", list.join(", ")));
            }
            Ok(Err(e)) => {
                let ids = Ids {
                    smtp_host: Some(host.clone()),
                    ..Ids::default()
                };
                let diagnosis = super::explain(catalog_symptom("dns"), &Evidence::default()).render(&ids);
                return Check::new("dns", Status::Fail, format!("{host} does not resolve: {e}"))
                    .failed(75, Some(diagnosis));
            }
            Err(_) => {
                return Check::new("dns", Status::Fail, format!("resolving {host} took more than 10 s"))
                    .failed(75, None);
            }
        }
    }
    check
}

async fn tcp(account: &Account, ids: &Ids) -> Check {
    connect_check(&account.smtp.host, account.smtp.port, "", ids).await
}

/// The `tcp` check: a connection to `host:port` (`what` names it in the summary).
async fn connect_check(host: &str, port: u16, what: &str, ids: &Ids) -> Check {
    let target = format!("{host}:{port}");
    let started = crate::clock::instant();
    let connect = tokio::net::TcpStream::connect((host, port));
    let blocked = || super::explain(catalog_symptom("port-blocked"), &Evidence::default()).render(ids);
    match tokio::time::timeout(Duration::from_secs(10), connect).await {
        Ok(Ok(_)) => Check::new(
            "tcp",
            Status::Pass,
            format!(
                "connected to {target}{what} in {} ms",
                crate::clock::since(started).as_millis()
            ),
        ),
        Ok(Err(e)) => {
            Check::new("tcp", Status::Fail, format!("cannot connect to {target}: {e}")).failed(75, Some(blocked()))
        }
        Err(_) => Check::new(
            "tcp",
            Status::Fail,
            format!("no answer from {target} within 10 s (a firewall drops the packets)"),
        )
        .failed(75, Some(blocked())),
    }
}

/// STARTTLS (or implicit TLS) with the configured trust anchors; keeps the connection.
async fn tls(account: &Account, ids: &Ids) -> (Check, Option<Connection>) {
    let (config, presented) = match crate::tls::inspecting_config(account.ca_file.as_deref()) {
        Ok(pair) => pair,
        Err(e) => return (Check::new("tls", Status::Fail, e.to_string()).failed(78, None), None),
    };
    let settings = smtp::Settings {
        helo_name: "m365-mailer-doctor".to_owned(),
        tls: config,
        timeouts: smtp::Timeouts {
            connect: Duration::from_secs(10),
            command: Duration::from_secs(30),
            content: Duration::from_secs(60),
        },
        keep_transcript: false,
    };
    match Connection::open(&account.smtp, &settings).await {
        Ok(connection) if account.smtp.security == smtp::Security::InsecurePlaintext => (
            Check::new(
                "tls",
                Status::Warn,
                "no TLS (security = insecure-plaintext): the token and the messages cross the network in the clear",
            ),
            Some(connection),
        ),
        Ok(connection) => {
            let mut check = Check::new(
                "tls",
                Status::Pass,
                "TLS established; the certificate is trusted and names the host",
            );
            if let Some(leaf) = presented.certificates().first() {
                check = check.evidence(describe_certificate(leaf));
            }
            (check, Some(connection))
        }
        Err(e @ SmtpError::Tls { .. }) => {
            let mut check = Check::new("tls", Status::Fail, e.to_string());
            for cert in presented.certificates().iter().take(2) {
                check = check.evidence(format!("presented: {}", describe_certificate(cert)));
            }
            let diagnosis = super::explain(catalog_symptom("tls-untrusted"), &Evidence::default()).render(ids);
            (check.failed(78, Some(diagnosis)), None)
        }
        Err(e) => (failure("tls", &SubmitError::Smtp(e), &Evidence::default(), ids), None),
    }
}

fn describe_certificate(der: &[u8]) -> String {
    use x509_parser::prelude::FromDer as _;
    match x509_parser::prelude::X509Certificate::from_der(der) {
        Ok((_, cert)) => format!("certificate for {} issued by {}", cert.subject(), cert.issuer()),
        Err(_) => "an unreadable certificate".to_owned(),
    }
}

/// A fresh token: no cache, so the credential is really tested.
async fn token(account: &Account, evidence: &Evidence, ids: &Ids) -> (Check, Option<AccessToken>) {
    let AccountAuth::OAuth { credential, .. } = &account.auth else {
        return (Check::new("token", Status::Skip, "basic AUTH needs no token"), None);
    };
    let tls = match crate::tls::client_config(account.ca_file.as_deref()) {
        Ok(t) => t,
        Err(e) => return (Check::new("token", Status::Fail, e.to_string()).failed(78, None), None),
    };
    let http = match submit::http_client(&tls) {
        Ok(h) => h,
        Err(e) => return (Check::new("token", Status::Fail, e.to_string()).failed(70, None), None),
    };
    let source = TokenSource {
        token_endpoint: account.token_endpoint.value.clone(),
        client_id: account.client_id.as_ref().map(|c| c.value.clone()).unwrap_or_default(),
        scope: account.scope.value.clone(),
        credential: credential.clone(),
        assertion_style: account.assertion_style,
        send_x5c: account.send_x5c,
    };
    let retry = RetryPolicy {
        attempts: 2,
        base_delay: Duration::from_millis(500),
        max_delay: Duration::from_secs(5),
    };
    let provider = TokenProvider::new(http, source, retry, None);
    match provider.token().await {
        Ok(token) => {
            let lifetime = token.expires_at - crate::clock::unix_now();
            (
                Check::new("token", Status::Pass, format!("token issued, valid for {lifetime} s")),
                Some(token),
            )
        }
        Err(e) => {
            let error = SubmitError::Token(e);
            let mut check = failure("token", &error, evidence, ids);
            if check.diagnosis.is_none() && error.to_string().to_ascii_lowercase().contains("certificate") {
                check.diagnosis = Some(super::explain(catalog_symptom("tls-untrusted"), evidence).render(ids));
            }
            (check, None)
        }
    }
}

/// The checks of guide 001: aud, iss with the tenant, appid, idtyp, roles.
pub fn claim_checks(account: &Account, claims: &serde_json::Value) -> Vec<(bool, String)> {
    let text = |k: &str| claims[k].as_str().unwrap_or("(absent)").to_owned();
    let resource = account.scope.value.trim_end_matches("/.default").trim_end_matches('/');
    let role = match account.transport {
        crate::config::Transport::Smtp => "SMTP.SendAsApp",
        crate::config::Transport::Graph => "Mail.Send",
    };
    let tid = text("tid");
    let tenant_matches = match account.tenant.as_ref().map(|t| t.value.as_str()) {
        Some(t) if uuid::Uuid::try_parse(t).is_ok() => tid.eq_ignore_ascii_case(t),
        _ => true,
    };
    let roles: Vec<String> = claims["roles"]
        .as_array()
        .map(|r| r.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    let client = account.client_id.as_ref().map_or(String::new(), |c| c.value.clone());
    let check = |ok: bool, claim: &str, value: String, expected: &str| {
        let message = if ok {
            format!("{claim} {value}")
        } else {
            format!("{claim} {value}, expected {expected}")
        };
        (ok, message)
    };
    let roles_text = if roles.is_empty() {
        "absent".to_owned()
    } else {
        roles.join(", ")
    };
    vec![
        check(
            text("aud").trim_end_matches('/').eq_ignore_ascii_case(resource),
            "aud",
            text("aud"),
            resource,
        ),
        check(
            text("iss") == format!("https://sts.windows.net/{tid}/") && tenant_matches,
            "iss",
            text("iss"),
            "https://sts.windows.net/<tenant>/ of the configured tenant",
        ),
        check(
            text("appid").eq_ignore_ascii_case(&client),
            "appid",
            text("appid"),
            &client,
        ),
        check(text("idtyp") == "app", "idtyp", text("idtyp"), "app"),
        check(roles.iter().any(|r| r == role), "roles", roles_text, role),
    ]
}

fn claims_check(account: &Account, claims: &serde_json::Value, ids: &Ids) -> Check {
    let results = claim_checks(account, claims);
    let failed: Vec<&String> = results.iter().filter(|(ok, _)| !ok).map(|(_, m)| m).collect();
    let mut check = if failed.is_empty() {
        Check::new(
            "claims",
            Status::Pass,
            "aud, iss, appid, idtyp and roles are as Exchange needs them",
        )
    } else {
        Check::new(
            "claims",
            Status::Fail,
            format!("the token is not one Exchange accepts: {}", failed[0]),
        )
    };
    for (ok, message) in &results {
        check = check.evidence(format!("{} {message}", if *ok { "ok  " } else { "bad " }));
    }
    if !failed.is_empty() {
        // Each claim that is wrong has one cause: aud, iss, appid, idtyp, roles in that order.
        const CAUSES: [&str; 5] = [
            "wrong-audience",
            "wrong-tenant",
            "unknown-client",
            "delegated-token",
            "no-admin-consent",
        ];
        let wrong: Vec<&str> = results
            .iter()
            .zip(CAUSES)
            .filter(|((ok, _), _)| !ok)
            .map(|(_, c)| c)
            .collect();
        let mut diagnosis = super::explain(catalog_symptom("token-claims"), &Evidence::default());
        diagnosis.causes.retain(|c| wrong.contains(&c.id));
        diagnosis.confirmed = true;
        if wrong.contains(&"no-admin-consent") {
            let note = match account.transport {
                crate::config::Transport::Smtp => {
                    "Entra issued the token without the SMTP.SendAsApp role: the permission has no admin consent."
                }
                crate::config::Transport::Graph => {
                    "Entra issued the token without the Mail.Send role: the app lacks the Microsoft Graph application permission Mail.Send, or its admin consent."
                }
            };
            diagnosis.notes.push(note.to_owned());
        }
        check = check.failed(77, Some(diagnosis.render(ids)));
    }
    check
}

async fn send_test(
    account: &Account,
    connection: &mut Connection,
    options: &Options,
    evidence: &Evidence,
    ids: &mut Ids,
) -> Check {
    let Some(to) = &options.send_test else {
        return Check::new(
            "send",
            Status::Skip,
            "not asked: --send-test ADDRESS sends a real test message",
        );
    };
    let from = options.from.clone().unwrap_or_else(|| account.default_from.clone());
    ids.from = Some(from.clone());
    if !account.may_send_as(&from) {
        let diagnosis = super::explain(
            super::for_reply(&smtp::Reply::new(554, vec!["5.2.252 SendAsDenied".into()])).expect("in the catalog"),
            evidence,
        )
        .render(ids);
        return Check::new(
            "send",
            Status::Fail,
            format!(
                "{from} is neither the mailbox nor an allowed sender: Exchange would answer 554 5.2.252 SendAsDenied"
            ),
        )
        .failed(77, Some(diagnosis));
    }
    let outgoing = match message::compose(&Compose {
        from: from.clone(),
        to: vec![to.clone()],
        subject: Some("m365-mailer doctor: test message".to_owned()),
        text: Some(format!(
            "This message was sent by `m365-mailer doctor --send-test` from {from} through {}:{}.\r\n",
            account.smtp.host, account.smtp.port
        )),
        ..Compose::default()
    }) {
        Ok(o) => o,
        Err(e) => return Check::new("send", Status::Fail, e.to_string()).failed(65, None),
    };
    match connection.send_mail(&outgoing.envelope, &outgoing.content).await {
        Ok(delivery) => Check::new(
            "send",
            Status::Pass,
            format!("test message from {from} to {to} accepted"),
        )
        .evidence(delivery.reply.to_string()),
        Err(e) => failure("send", &SubmitError::Smtp(e), evidence, ids),
    }
}
