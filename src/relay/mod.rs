//! The relay: a local SMTP server for devices and applications that cannot do OAuth. It accepts
//! their mail, stores it durably, and delivers it to Exchange Online with the account's token.
//!
//! - `session`: the inbound SMTP state machine (sans-IO); `listener`: sockets, TLS, limits;
//!   `verifier`: password checks on a fixed pool of threads.
//! - `policy`: who may relay (users, networks) and as whom.
//! - `limits`: Exchange's per-mailbox limits enforced locally (pure).
//! - `outcome`: what an attempt means for the queue (pure); `deliver`: the workers;
//!   `dsn`: reports of messages given up on.
//! - `alert`: webhooks when mail stops flowing, from an outbox in the queue.
//! - `metrics` and `admin`: Prometheus metrics, health and readiness over HTTP; `status`: the
//!   status page the admin endpoint serves at `/`.

pub(crate) mod admin;
pub(crate) mod alert;
pub(crate) mod deliver;
pub(crate) mod dsn;
pub(crate) mod limits;
pub(crate) mod listener;
pub(crate) mod metrics;
pub(crate) mod outcome;
pub(crate) mod policy;
pub(crate) mod session;
pub(crate) mod settings;
pub(crate) mod status;
pub(crate) mod verifier;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::queue::{Location, Queue, QueueError};
use deliver::AccountDelivery;
use listener::Shared;
use settings::{Inbound, Listener, ListenerTls, RelayConfig, ServerCertificate};

/// Why the relay could not start.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StartError {
    /// The queue could not be opened.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// The server certificate could not be loaded.
    #[error(transparent)]
    Tls(#[from] crate::tls::ServerTlsError),
    /// An account could not be prepared.
    #[error("account `{account}`: {source}")]
    Account {
        /// The account.
        account: String,
        /// The cause.
        source: crate::submit::SubmitError,
    },
    /// A listening socket could not be opened.
    #[error("cannot listen on {address}: {source}")]
    Listen {
        /// The address.
        address: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
}

/// The account deliveries now running, by account name (shared with the admin endpoint and the
/// wake-up router; replaced on reload).
pub(crate) type Accounts = Arc<RwLock<HashMap<String, Arc<AccountDelivery>>>>;

/// One account's delivery and its tasks.
#[derive(Debug)]
struct AccountRun {
    delivery: Arc<AccountDelivery>,
    stop: watch::Sender<bool>,
    workers: Vec<JoinHandle<()>>,
    refresher: Option<JoinHandle<()>>,
}

/// A running relay.
#[derive(Debug)]
pub(crate) struct Relay {
    /// The addresses it listens on, in the configured order (with the actual ports when 0 was
    /// asked for).
    pub(crate) addresses: Vec<SocketAddr>,
    /// The admin endpoint's address, when it runs.
    pub(crate) admin: Option<SocketAddr>,
    /// The metrics.
    pub(crate) metrics: Arc<metrics::Metrics>,
    /// The queue.
    pub(crate) queue: Queue,
    /// What cannot change without a restart, to warn about on reload.
    fixed: Fixed,
    accounts: Accounts,
    runs: Vec<AccountRun>,
    retired: Vec<AccountRun>,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    /// Closed when no listener and no session is left.
    drained: mpsc::Receiver<()>,
    /// Listeners and the admin endpoint: they end on shutdown.
    tasks: Vec<JoinHandle<()>>,
    /// The wake-up router: aborted on shutdown.
    router: JoinHandle<()>,
    /// Alerting (its settings change on reload).
    alerts: alert::Alerts,
    /// Who may change the queue from the status page (its token changes on reload).
    access: Arc<status::Access>,
}

/// Settings a reload cannot change.
#[derive(Debug, Clone, PartialEq)]
struct Fixed {
    listeners: Vec<Listener>,
    certificate: ServerCertificate,
    queue: Location,
    admin: Option<SocketAddr>,
    admin_tls: bool,
    session: session::Settings,
    inbound: Inbound,
}

impl Fixed {
    fn of(config: &RelayConfig) -> Self {
        Self {
            listeners: config.listeners.clone(),
            certificate: config.certificate.clone(),
            queue: config.queue.clone(),
            admin: config.admin,
            admin_tls: config.admin_tls,
            session: config.session.clone(),
            inbound: config.inbound.clone(),
        }
    }
}

/// The relay's sockets, bound before anything else starts: a port already taken fails here,
/// before the queue is opened.
#[derive(Debug)]
pub(crate) struct Listeners {
    smtp: Vec<(Bound, ListenerTls)>,
    admin: Option<Bound>,
}

/// A listening socket and its address (with the actual port when 0 was asked for).
#[derive(Debug)]
struct Bound {
    listener: TcpListener,
    address: SocketAddr,
}

impl Listeners {
    /// Binds the SMTP listeners of `config` and its admin endpoint.
    pub(crate) fn bind(config: &RelayConfig) -> Result<Self, StartError> {
        let listen = |address| {
            let listener = bind(address).map_err(|source| StartError::Listen { address, source })?;
            let address = listener.local_addr().unwrap_or(address);
            Ok::<_, StartError>(Bound { listener, address })
        };
        let smtp = config
            .listeners
            .iter()
            .map(|l| Ok((listen(l.address)?, l.tls)))
            .collect::<Result<_, StartError>>()?;
        let admin = config.admin.map(listen).transpose()?;
        Ok(Self { smtp, admin })
    }
}

impl Relay {
    /// Starts the relay on `listeners`: checks the TLS certificate, opens the queue (putting
    /// back what a previous run left), starts delivery, then accepts connections.
    pub(crate) async fn start(config: RelayConfig, listeners: Listeners) -> Result<Self, StartError> {
        let needs_tls = config.admin_tls || listeners.smtp.iter().any(|(_, tls)| *tls != ListenerTls::None);
        let tls = if needs_tls { Some(server_tls(&config)?) } else { None };
        let (queue, recovered) = Queue::open_at(&config.queue).await?;
        tracing::info!(
            queue = %config.queue,
            queued = recovered.queued,
            put_back = recovered.released,
            dead = recovered.dead,
            "queue opened"
        );
        let (shutdown, shutdown_rx) = watch::channel(false);
        let metrics = Arc::new(metrics::Metrics::new());
        let alerts = alert::Alerts::new(config.alerts.clone());
        if recovered.released > 0 {
            restarted(&alerts, &queue, recovered.released).await;
        }
        let runs = start_accounts(&config, &queue, &metrics, &alerts).await?;
        let accounts: Accounts = Arc::new(RwLock::new(
            runs.iter()
                .map(|r| (r.delivery.name().to_owned(), Arc::clone(&r.delivery)))
                .collect(),
        ));
        let (stored, router) = wake_router(Arc::clone(&accounts), &queue);
        let mut tasks = vec![
            tokio::spawn(alert::post(
                alerts.clone(),
                queue.clone(),
                Arc::clone(&metrics),
                shutdown_rx.clone(),
            )),
            tokio::spawn(alert::watch(
                alerts.clone(),
                queue.clone(),
                Arc::clone(&accounts),
                shutdown_rx.clone(),
            )),
        ];
        let shared = Arc::new(Shared {
            settings: config.session.clone(),
            policy: RwLock::new(Arc::new(config.policy.clone())),
            inbound: config.inbound.clone(),
            tls: tls.clone(),
            queue: queue.clone(),
            stored,
            shutdown: shutdown_rx.clone(),
            metrics: Arc::clone(&metrics),
            connections: Default::default(),
            auth_failures: Default::default(),
            verifier: verifier::Verifier::per_core(),
        });

        // Every listener and every session holds a sender; `stop` waits for the last to go.
        let (open, drained) = mpsc::channel(1);
        let mut addresses = Vec::new();
        for (Bound { listener, address }, tls) in listeners.smtp {
            tracing::info!(address = %address, tls = ?tls, "listening");
            addresses.push(address);
            tasks.push(tokio::spawn(listener::serve(
                listener,
                tls,
                Arc::clone(&shared),
                open.clone(),
            )));
        }
        let access = Arc::new(status::Access::new(config.admin_token.clone(), config.admin_tls));
        let admin = listeners.admin.map(|Bound { listener, address }| {
            let state = admin::Admin {
                metrics: Arc::clone(&metrics),
                accounts: Arc::clone(&accounts),
                queue: queue.clone(),
                hostname: config.session.hostname.clone(),
                access: Arc::clone(&access),
            };
            let admin_tls = tls.clone().filter(|_| config.admin_tls);
            tasks.push(tokio::spawn(admin::serve(listener, state, admin_tls, shutdown_rx)));
            tracing::info!(address = %address, "admin endpoint: / (status page) /healthz /readyz /metrics");
            address
        });
        Ok(Self {
            addresses,
            admin,
            metrics,
            queue,
            fixed: Fixed::of(&config),
            accounts,
            runs,
            retired: Vec::new(),
            shared,
            shutdown,
            drained,
            tasks,
            router,
            alerts,
            access,
        })
    }

    /// Takes a new configuration: who may relay and through which accounts, and delivery
    /// settings. Open sessions keep the rules they started with; deliveries in flight finish
    /// under the old accounts. Returns what changed but needs a restart (listeners, TLS, the
    /// queue, session limits). On error nothing changes.
    pub(crate) async fn reload(&mut self, config: RelayConfig) -> Result<Vec<String>, StartError> {
        let runs = start_accounts(&config, &self.queue, &self.metrics, &self.alerts).await?;
        self.alerts.replace(config.alerts.clone());
        self.access.replace_token(config.admin_token.clone());
        let fixed = Fixed::of(&config);
        let mut ignored = Vec::new();
        for (what, changed) in [
            ("listeners", fixed.listeners != self.fixed.listeners),
            ("the TLS certificate", fixed.certificate != self.fixed.certificate),
            ("the queue", fixed.queue != self.fixed.queue),
            ("the admin endpoint", fixed.admin != self.fixed.admin),
            ("admin_tls", fixed.admin_tls != self.fixed.admin_tls),
            (
                "session settings (hostname, sizes, bare_lf)",
                fixed.session != self.fixed.session,
            ),
            ("connection limits and timeouts", fixed.inbound != self.fixed.inbound),
        ] {
            if changed {
                ignored.push(format!("{what} changed: restart the relay to apply"));
            }
        }
        *self
            .shared
            .policy
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(config.policy);
        *self.accounts.write().unwrap_or_else(std::sync::PoisonError::into_inner) = runs
            .iter()
            .map(|r| (r.delivery.name().to_owned(), Arc::clone(&r.delivery)))
            .collect();
        for old in std::mem::replace(&mut self.runs, runs) {
            let _ = old.stop.send(true);
            if let Some(refresher) = &old.refresher {
                refresher.abort();
            }
            self.retired.push(old);
        }
        self.retired.retain(|r| !r.workers.iter().all(JoinHandle::is_finished));
        Ok(ignored)
    }

    /// Stops accepting; open sessions finish the message they are receiving (the others are
    /// told to come back later); deliveries in flight finish. All within `deadline`. What is
    /// still queued stays queued; a message interrupted upstream is delivered again next start.
    pub(crate) async fn stop(self, deadline: Duration) {
        let _ = self.shutdown.send(true);
        for run in self.runs.iter().chain(&self.retired) {
            let _ = run.stop.send(true);
        }
        let end = crate::clock::instant() + deadline;
        let mut drained = self.drained;
        // `None` once the listeners and every session have dropped their sender.
        let _ = tokio::time::timeout_at(end, drained.recv()).await;
        let workers = self.runs.into_iter().chain(self.retired).flat_map(|r| {
            if let Some(refresher) = r.refresher {
                refresher.abort();
            }
            r.workers
        });
        for mut task in self.tasks.into_iter().chain(workers) {
            if tokio::time::timeout_at(end, &mut task).await.is_err() {
                task.abort();
            }
        }
        self.router.abort();
    }
}

/// The server's TLS configuration, from the configured certificate or a self-signed one.
fn server_tls(config: &RelayConfig) -> Result<Arc<rustls::ServerConfig>, StartError> {
    let files = match &config.certificate {
        ServerCertificate::Files {
            certificate,
            private_key,
        } => Some((certificate.as_path(), private_key.as_path())),
        ServerCertificate::SelfSigned => None,
    };
    let identity = crate::tls::server_identity(files, &config.session.hostname)?;
    tracing::info!(
        fingerprint = %identity.fingerprint,
        self_signed = identity.self_signed,
        "TLS certificate (SHA-256)"
    );
    Ok(identity.config)
}

/// Announces that the previous run left `released` deliveries unfinished (they are back in
/// the queue).
async fn restarted(alerts: &alert::Alerts, queue: &Queue, released: u64) {
    let rows = alerts.rows(&alert::Event::restarted(released, crate::clock::Timestamp::now()));
    if !rows.is_empty()
        && let Err(e) = queue.outbox(crate::queue::OutboxOp::Add(rows)).await
    {
        tracing::warn!(error = %e, "cannot store the alert about the unclean stop");
    }
}

/// Routes each stored message's account to its workers, so delivery starts at once: messages
/// this relay stored, and those other relays sharing the queue stored.
fn wake_router(accounts: Accounts, queue: &Queue) -> (mpsc::UnboundedSender<String>, JoinHandle<()>) {
    let (stored, mut stored_rx) = mpsc::unbounded_channel::<String>();
    let (queue, others) = (queue.clone(), stored.clone());
    let router = tokio::spawn(async move {
        let route = async {
            while let Some(account) = stored_rx.recv().await {
                let delivery = accounts
                    .read()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .get(&account)
                    .cloned();
                if let Some(delivery) = delivery {
                    delivery.notify();
                }
            }
        };
        tokio::join!(route, queue.forward_wake_ups(others));
    });
    (stored, router)
}

/// Starts delivery for every account of `config`.
async fn start_accounts(
    config: &RelayConfig,
    queue: &Queue,
    metrics: &Arc<metrics::Metrics>,
    alerts: &alert::Alerts,
) -> Result<Vec<AccountRun>, StartError> {
    let mut runs = Vec::new();
    for account in &config.accounts {
        let (stop, stopped) = watch::channel(false);
        let delivery = AccountDelivery::new(
            account.clone(),
            queue.clone(),
            config.delivery.for_account(&account.name),
            config.session.hostname.clone(),
            Arc::clone(metrics),
            alerts.clone(),
            stopped,
        )
        .await
        .map_err(|source| StartError::Account {
            account: account.name.clone(),
            source,
        })?;
        let (workers, refresher) = delivery.start();
        runs.push(AccountRun {
            delivery,
            stop,
            workers,
            refresher,
        });
    }
    Ok(runs)
}

/// A listening socket with address reuse; an IPv6 one is IPv6 only (`IPV6_V6ONLY`), so `[::]`
/// and `0.0.0.0` on the same port are two listeners, and an IPv4 client never reaches an IPv6
/// rule as a mapped address. tokio's `TcpSocket` cannot set the option: socket2 can.
fn bind(address: SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(address), Type::STREAM, Some(Protocol::TCP))?;
    if address.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&address.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}
