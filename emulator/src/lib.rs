//! An offline emulator of Entra ID's token endpoint and Exchange Online's SMTP submission
//! endpoint, faithful to how they answer and how they fail; beside it, Microsoft's two other
//! SMTP submission services, Exchange Online High Volume Email and Azure Communication Services
//! Email, each on its own port with its own rules ([`Endpoint`]).
//!
//! It runs in-process for tests ([`Emulator::start`]) or as the `m365-emulator` program. It never
//! uses the product's SMTP or OAuth code: a bug written twice the same way must not pass.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use m365_emulator::{Emulator, Options, Scenario};
//! let scenario = Scenario::load("emulator/examples/contoso.toml".as_ref())?;
//! let emulator = Emulator::start(Options::new(scenario)).await?;
//! println!("token endpoint: {}", emulator.token_endpoint("contoso.com"));
//! println!("SMTP: {}", emulator.smtp_addr());
//! println!("HVE: {}, ACS: {}", emulator.hve_addr(), emulator.acs_addr());
//! # Ok(()) }
//! ```
//!
//! # Layout
//! - `model/`: the tenant model (tenants, apps, mailboxes, knobs) and the tenant file.
//! - `entra/`: the token endpoint: request parsing, the grant decision, errors, tokens, discovery.
//! - `exchange/`: SMTP: command parser, replies, AUTH checks, limits, the session state machine
//!   and its I/O loop; `hve.rs` and `acs.rs` hold the rules of the other two services.
//! - `faults`: faults injected at named stages. `fixture`: a working tenant to start from.
//! - `pki`: the emulator's CA, the token-signing key, app certificates.
//! - `store`: accepted messages. `stats`: counters. `clock`: the one clock.
//! - `http`: the HTTPS server plumbing; `admin`: the `/_emulator/` API.

#![forbid(unsafe_code)]

mod admin;
pub mod clock;
pub mod directory;
pub mod entra;
mod exchange;
pub mod faults;
pub mod fixture;
pub mod graph;
mod http;
pub mod model;
pub mod pki;
pub mod stats;
pub mod store;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, RwLock};

use tokio::net::TcpListener;
use tokio::task::JoinSet;

pub use clock::Clock;
pub use exchange::Endpoint;
pub use exchange::powershell::ScriptError as ExchangeScriptError;
pub use faults::{Fault, FaultSet, Stage};
pub use model::{AcsResource, Api, App, HveAccount, Mailbox, Scenario, ScenarioError, SmtpUsername, Tenant};
pub use pki::ClientCertificate;
pub use stats::Counters;
pub use store::{Delivered, Identity, Store};

/// State shared by the token endpoint and the SMTP server.
pub(crate) struct Shared {
    scenario: RwLock<Arc<Scenario>>,
    pub(crate) clock: Clock,
    pub(crate) faults: FaultSet,
    pub(crate) stats: stats::Stats,
    pub(crate) store: Store,
    pub(crate) signing: pki::TokenSigningKey,
    /// The key of the OIDC issuers the emulator stands in for (made on first use).
    issuer_key: std::sync::OnceLock<pki::TokenSigningKey>,
    /// Graph drafts and attachment uploads in progress.
    pub(crate) drafts: graph::Drafts,
    pub(crate) limits: exchange::Limits,
    pub(crate) plain_http: bool,
    pub(crate) next_connection: AtomicU64,
    /// Device authorization grants in progress.
    pub(crate) device: entra::device::DeviceFlows,
}

impl Shared {
    fn new(
        scenario: Scenario,
        signing: pki::TokenSigningKey,
        faults: FaultSet,
        mail_dir: Option<PathBuf>,
        plain_http: bool,
    ) -> Self {
        Self {
            scenario: RwLock::new(Arc::new(scenario)),
            clock: Clock::new(),
            faults,
            stats: stats::Stats::default(),
            store: Store::new(mail_dir),
            signing,
            issuer_key: std::sync::OnceLock::new(),
            drafts: graph::Drafts::default(),
            limits: exchange::Limits::default(),
            plain_http,
            next_connection: AtomicU64::new(1),
            device: entra::device::DeviceFlows::default(),
        }
    }

    /// State for unit tests of the servers' logic, with a fresh signing key.
    #[cfg(test)]
    pub(crate) fn for_tests(mut scenario: Scenario) -> Arc<Self> {
        scenario.resolve(Path::new(".")).expect("a valid test scenario");
        let signing = pki::TokenSigningKey::generate().expect("key generation");
        Arc::new(Self::new(scenario, signing, FaultSet::default(), None, false))
    }

    pub(crate) fn issuer_key(&self) -> &pki::TokenSigningKey {
        self.issuer_key
            .get_or_init(|| pki::TokenSigningKey::generate().expect("RSA key generation"))
    }

    pub(crate) fn scenario(&self) -> Arc<Scenario> {
        Arc::clone(&self.scenario.read().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Changes the scenario: validated first, kept only when valid. Changes are serialised, so
    /// two at once never lose one another.
    pub(crate) fn update(&self, change: impl FnOnce(&mut Scenario)) -> Result<(), ScenarioError> {
        let mut held = self.scenario.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut next = (**held).clone();
        change(&mut next);
        next.resolve(Path::new("."))?;
        *held = Arc::new(next);
        Ok(())
    }

    /// `Emulator::exchange_powershell`, for the admin endpoint too.
    pub(crate) fn exchange_powershell(&self, script: &str) -> Result<String, ExchangeScriptError> {
        let mut result = None;
        self.update(|scenario| result = Some(exchange::powershell::run(scenario, script)))
            .map_err(|e| ExchangeScriptError {
                line: 0,
                message: format!("the script's changes leave the tenant invalid: {e}"),
            })?;
        result.unwrap_or_else(|| Ok(String::new()))
    }
}

/// How to run the emulator.
#[derive(Debug, Clone)]
pub struct Options {
    /// Tenants, knobs and initial faults.
    pub scenario: Scenario,
    /// Address to listen on (loopback by default).
    pub listen: IpAddr,
    /// Port of the token endpoint (0: any free port).
    pub http_port: u16,
    /// Port of SMTP with STARTTLS, the role of 587 (0: any free port).
    pub smtp_port: u16,
    /// Port of SMTP with implicit TLS, the role of 465; off when `None`.
    pub smtps_port: Option<u16>,
    /// Port of High Volume Email's SMTP with STARTTLS, the role of
    /// `smtp-hve.office365.com:587` (0: any free port).
    pub hve_port: u16,
    /// Port of Azure Communication Services' SMTP with STARTTLS, the role of
    /// `smtp.azurecomm.net:587` (0: any free port).
    pub acs_port: u16,
    /// Serve the token endpoint over plain HTTP instead of HTTPS.
    pub plain_http: bool,
    /// Where the CA, the token-signing key, generated client certificates and delivered
    /// messages are kept; `None` keeps everything in memory (the CA file then goes to a
    /// temporary directory that lives as long as the emulator).
    pub state_dir: Option<PathBuf>,
    /// Extra names for the server certificate, besides `localhost`, `127.0.0.1` and `::1`.
    pub hostnames: Vec<String>,
}

impl Options {
    /// Loopback, free ports, HTTPS, everything in memory.
    pub fn new(scenario: Scenario) -> Self {
        Self {
            scenario,
            listen: IpAddr::V4(Ipv4Addr::LOCALHOST),
            http_port: 0,
            smtp_port: 0,
            smtps_port: None,
            hve_port: 0,
            acs_port: 0,
            plain_http: false,
            state_dir: None,
            hostnames: Vec::new(),
        }
    }
}

/// Why the emulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The scenario is invalid.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// A key or certificate could not be made or saved.
    #[error(transparent)]
    Pki(#[from] pki::PkiError),
    /// A port could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// Another I/O error (state directory).
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// A running emulator. Dropping it stops the servers.
pub struct Emulator {
    shared: Arc<Shared>,
    http_addr: SocketAddr,
    smtp_addr: SocketAddr,
    smtps_addr: Option<SocketAddr>,
    hve_addr: SocketAddr,
    acs_addr: SocketAddr,
    ca_pem: String,
    ca_path: PathBuf,
    credentials: Vec<model::Generated>,
    _temp: Option<tempfile::TempDir>,
    _tasks: JoinSet<()>,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator")
            .field("http_addr", &self.http_addr)
            .field("smtp_addr", &self.smtp_addr)
            .field("smtps_addr", &self.smtps_addr)
            .field("hve_addr", &self.hve_addr)
            .field("acs_addr", &self.acs_addr)
            .field("ca_path", &self.ca_path)
            .finish_non_exhaustive()
    }
}

impl Emulator {
    /// Validates the scenario, creates or loads keys, binds the ports and starts serving.
    pub async fn start(options: Options) -> Result<Self, StartError> {
        let Options {
            mut scenario,
            listen,
            http_port,
            smtp_port,
            smtps_port,
            hve_port,
            acs_port,
            plain_http,
            state_dir,
            hostnames,
        } = options;
        let credentials_dir = state_dir.as_ref().map(|d| d.join("credentials"));
        let credentials = scenario.provision(credentials_dir.as_deref())?;
        scenario.resolve(Path::new("."))?;

        let (authority, signing, temp) = match &state_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir)?;
                (
                    pki::Authority::load_or_create(dir)?,
                    pki::TokenSigningKey::load_or_create(dir)?,
                    None,
                )
            }
            None => {
                let temp = tempfile::Builder::new().prefix("m365-emulator-").tempdir()?;
                let authority = pki::Authority::generate()?;
                pki::write_file(&temp.path().join("ca.pem"), authority.ca_pem().as_bytes(), false)?;
                (authority, pki::TokenSigningKey::generate()?, Some(temp))
            }
        };
        let ca_path = state_dir
            .as_deref()
            .or(temp.as_ref().map(tempfile::TempDir::path))
            .map(|d| d.join("ca.pem"))
            .unwrap_or_default();
        let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()];
        names.extend(hostnames.iter().cloned());
        if !listen.is_unspecified() && !names.contains(&listen.to_string()) {
            names.push(listen.to_string());
        }
        let tls = authority.server_config(&names)?;

        let faults = FaultSet::default();
        for fault in std::mem::take(&mut scenario.faults) {
            faults.add(fault).map_err(|message| ScenarioError::Invalid {
                field: "faults".into(),
                message,
            })?;
        }
        let mail_dir = state_dir.as_ref().map(|d| d.join("mailboxes"));
        let shared = Arc::new(Shared::new(scenario, signing, faults, mail_dir, plain_http));

        let http = bind(SocketAddr::new(listen, http_port)).await?;
        let smtp = bind(SocketAddr::new(listen, smtp_port)).await?;
        let smtps = match smtps_port {
            Some(port) => Some(bind(SocketAddr::new(listen, port)).await?),
            None => None,
        };
        let hve = bind(SocketAddr::new(listen, hve_port)).await?;
        let acs = bind(SocketAddr::new(listen, acs_port)).await?;
        let http_addr = http.local_addr()?;
        let smtp_addr = smtp.local_addr()?;
        let smtps_addr = smtps.as_ref().map(TcpListener::local_addr).transpose()?;
        let hve_addr = hve.local_addr()?;
        let acs_addr = acs.local_addr()?;

        let router = entra::router()
            .merge(graph::router())
            .merge(directory::router(Arc::clone(&shared)))
            .merge(admin::router())
            .with_state(Arc::clone(&shared));
        let mut tasks = JoinSet::new();
        let http_tls = (!plain_http).then(|| Arc::clone(&tls));
        tasks.spawn(http::serve(http, http_tls, router, Arc::clone(&shared)));
        let serve = |listener, implicit_tls, endpoint| {
            exchange::serve(listener, Arc::clone(&tls), implicit_tls, endpoint, Arc::clone(&shared))
        };
        tasks.spawn(serve(smtp, false, Endpoint::Exchange));
        tasks.spawn(serve(hve, false, Endpoint::Hve));
        tasks.spawn(serve(acs, false, Endpoint::Acs));
        if let Some(smtps) = smtps {
            tasks.spawn(serve(smtps, true, Endpoint::Exchange));
        }
        Ok(Self {
            shared,
            http_addr,
            smtp_addr,
            smtps_addr,
            hve_addr,
            acs_addr,
            ca_pem: authority.ca_pem().to_owned(),
            ca_path,
            credentials,
            _temp: temp,
            _tasks: tasks,
        })
    }

    /// `https://127.0.0.1:port` (or `http://` when plain HTTP was asked for).
    pub fn base_url(&self) -> String {
        let scheme = if self.shared.plain_http { "http" } else { "https" };
        format!("{scheme}://{}", self.http_addr)
    }

    /// The authority URL for a tenant (id or domain), as MSAL takes it.
    pub fn authority(&self, tenant: &str) -> String {
        format!("{}/{tenant}", self.base_url())
    }

    /// The v2.0 token endpoint of a tenant.
    pub fn token_endpoint(&self, tenant: &str) -> String {
        format!("{}/oauth2/v2.0/token", self.authority(tenant))
    }

    /// Address of the token endpoint's server.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// SMTP with STARTTLS.
    pub fn smtp_addr(&self) -> SocketAddr {
        self.smtp_addr
    }

    /// SMTP with implicit TLS, if enabled.
    pub fn smtps_addr(&self) -> Option<SocketAddr> {
        self.smtps_addr
    }

    /// Exchange Online High Volume Email's SMTP with STARTTLS.
    pub fn hve_addr(&self) -> SocketAddr {
        self.hve_addr
    }

    /// Azure Communication Services Email's SMTP with STARTTLS.
    pub fn acs_addr(&self) -> SocketAddr {
        self.acs_addr
    }

    /// The STARTTLS address of an endpoint.
    pub fn endpoint_addr(&self, endpoint: Endpoint) -> SocketAddr {
        match endpoint {
            Endpoint::Exchange => self.smtp_addr,
            Endpoint::Hve => self.hve_addr,
            Endpoint::Acs => self.acs_addr,
        }
    }

    /// The CA certificate (PEM) that signs the servers' certificates.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Where the CA certificate is written.
    pub fn ca_path(&self) -> &Path {
        &self.ca_path
    }

    /// The key pair generated for a `generate = true` certificate of this client id.
    pub fn generated_certificate(&self, client_id: &str) -> Option<&ClientCertificate> {
        self.credentials
            .iter()
            .find(|g| g.client_id.eq_ignore_ascii_case(client_id))
            .map(|g| &g.certificate)
    }

    /// Every generated key pair.
    pub fn generated_certificates(&self) -> &[model::Generated] {
        &self.credentials
    }

    /// The Microsoft Graph root (`graph_url` of an account), e.g. `https://127.0.0.1:PORT`.
    pub fn graph_url(&self) -> String {
        self.base_url()
    }

    /// The URL of the emulated Azure VM identity endpoint (IMDS), for `M365_MAILER_IMDS_ENDPOINT`.
    pub fn imds_endpoint(&self) -> String {
        format!("{}/metadata/identity/oauth2/token", self.base_url())
    }

    /// The emulated App Service identity endpoint and the header value it requires
    /// (`IDENTITY_ENDPOINT`, `IDENTITY_HEADER`).
    pub fn app_service_identity(&self) -> (String, &'static str) {
        (
            format!("{}/msi/token", self.base_url()),
            entra::identity::IDENTITY_HEADER,
        )
    }

    /// A federated token (what a Kubernetes cluster projects for a service account) of
    /// `issuer`, one of the scenario's `issuers`, for `subject` and `audience`, valid for
    /// `lifetime_secs` by the emulator's clock.
    pub fn federated_token(&self, issuer: &str, subject: &str, audience: &str, lifetime_secs: i64) -> String {
        let now = self.shared.clock.now().unix_timestamp();
        entra::federation::mint(self.shared.issuer_key(), issuer, subject, audience, now, lifetime_secs)
    }

    /// The accepted messages.
    pub fn store(&self) -> &Store {
        &self.shared.store
    }

    /// Graph drafts neither sent nor deleted.
    pub fn graph_drafts(&self) -> usize {
        self.shared.drafts.count()
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Counters {
        self.shared.stats.snapshot()
    }

    /// Resets the counters.
    pub fn reset_stats(&self) {
        self.shared.stats.reset();
    }

    /// The faults in force; add or clear them while running.
    pub fn faults(&self) -> &FaultSet {
        &self.shared.faults
    }

    /// The emulator's clock; advance it to let tokens, secrets and certificates expire.
    pub fn clock(&self) -> &Clock {
        &self.shared.clock
    }

    /// The scenario in force.
    pub fn scenario(&self) -> Arc<Scenario> {
        self.shared.scenario()
    }

    /// The administrator `upn` signs in with the device code `user_code` (what the browser
    /// page does in Entra), approving or declining it.
    pub fn sign_in_device(&self, user_code: &str, upn: &str, approve: bool) -> Result<(), String> {
        let now = self.shared.clock.now();
        let now_ms = i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX);
        self.shared
            .device
            .sign_in(&self.shared.scenario(), user_code, upn, approve, now_ms)
    }

    /// Runs an Exchange Online PowerShell script of setup steps against the scenario
    /// (`exchange::powershell`): what its read-only commands print, or the line that stopped it.
    /// The lines before a failing one stay applied, as in Exchange.
    pub fn exchange_powershell(&self, script: &str) -> Result<String, ExchangeScriptError> {
        self.shared.exchange_powershell(script)
    }

    /// Changes the scenario while running (grant consent, remove a permission, …). The change is
    /// validated first; an invalid one is refused and the old scenario kept.
    pub fn update(&self, change: impl FnOnce(&mut Scenario)) -> Result<(), ScenarioError> {
        self.shared.update(change)
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })
}
