//! Accepting connections: limits per relay and per client address, TLS, the delay after failed
//! AUTH, and the I/O loop that drives a [`Session`]. A message is acknowledged only after the
//! queue has committed it.
//!
//! A client is counted by its IPv4 address, or by its IPv6 /64 (one host commonly has a whole
//! /64). Password checks are Argon2 (19 MiB each): at most one per core runs at a time, and a
//! client that has failed waits before its next check rather than after, so many connections
//! cost waiting sockets, not memory or CPU. Writes have a deadline and sessions a lifetime: a
//! client that never reads, or never leaves, does not keep its slot.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::metrics::Metrics;
use super::policy::{Policy, Rule};
use super::session::{Accepted, Event, Session, Settings, Waiting};
use super::settings::{Inbound, ListenerTls};
use crate::clock::{self, Timestamp};
use crate::queue::{self, NewMessage, Queue};
use crate::secret::Secret;
use crate::stream::Stream;

/// Longest delay after failed AUTH attempts.
const MAX_AUTH_DELAY: Duration = Duration::from_secs(30);
/// How long a closing session waits for the client to close its side.
const LINGER: Duration = Duration::from_secs(2);
/// Failures are forgotten after this long without one.
const AUTH_FAILURE_MEMORY: Duration = Duration::from_secs(15 * 60);
/// A session past its lifetime may finish its transaction for this long.
const LIFETIME_GRACE: Duration = Duration::from_secs(5 * 60);

/// Where a client is counted: its IPv4 address, or its IPv6 /64.
pub(crate) fn client_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let segments = v6.segments();
            IpAddr::V6(std::net::Ipv6Addr::new(
                segments[0],
                segments[1],
                segments[2],
                segments[3],
                0,
                0,
                0,
                0,
            ))
        }
        v4 => v4,
    }
}

/// What every session shares.
#[derive(Debug)]
pub(crate) struct Shared {
    /// Session settings (the STARTTLS flag is set per listener).
    pub(crate) settings: Settings,
    /// Who may relay; replaced on reload.
    pub(crate) policy: RwLock<Arc<Policy>>,
    /// Limits and timeouts.
    pub(crate) inbound: Inbound,
    /// TLS for STARTTLS and implicit-TLS listeners.
    pub(crate) tls: Option<Arc<rustls::ServerConfig>>,
    /// The queue.
    pub(crate) queue: Queue,
    /// Told the account of each stored message, so delivery starts at once.
    pub(crate) stored: mpsc::UnboundedSender<String>,
    /// Becomes `true` when the relay shuts down.
    pub(crate) shutdown: watch::Receiver<bool>,
    /// The metrics.
    pub(crate) metrics: Arc<Metrics>,
    /// Open connections, in total and per client (address or /64).
    pub(super) connections: Mutex<Connections>,
    /// Failed AUTH attempts per client (address or /64), and the last one.
    pub(super) auth_failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
    /// Where passwords are checked: one thread per core.
    pub(super) verifier: super::verifier::Verifier,
}

#[derive(Debug, Default)]
pub(super) struct Connections {
    total: usize,
    per_client: HashMap<IpAddr, usize>,
}

impl Shared {
    fn policy(&self) -> Arc<Policy> {
        Arc::clone(&self.policy.read().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Counts a connection in, or says why it is refused; `ip` is the [`client_key`].
    fn admit(&self, ip: IpAddr) -> Result<(), &'static str> {
        let mut c = self
            .connections
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if c.total >= self.inbound.max_connections {
            return Err("Too many connections, try again later");
        }
        let mine = c.per_client.entry(ip).or_default();
        if *mine >= self.inbound.max_connections_per_client {
            return Err("Too many connections from your address, try again later");
        }
        *mine += 1;
        c.total += 1;
        Ok(())
    }

    fn release(&self, ip: IpAddr) {
        let mut c = self
            .connections
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.per_client.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                c.per_client.remove(&ip);
            }
        }
    }

    /// How long a client that has failed waits before its next password is checked.
    fn auth_delay(&self, key: IpAddr) -> Duration {
        let now = clock::instant();
        let failures = self
            .auth_failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match failures.get(&key) {
            Some((n, last)) if now.saturating_duration_since(*last) < AUTH_FAILURE_MEMORY => {
                crate::backoff::doubling(self.inbound.auth_failure_delay, *n, MAX_AUTH_DELAY)
            }
            _ => Duration::ZERO,
        }
    }

    /// Records a failed AUTH from a client. A success does not clear it: one good password from
    /// an address must not reset what other attempts from it failed.
    fn auth_failed(&self, key: IpAddr) {
        let now = clock::instant();
        let mut failures = self
            .auth_failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        failures.retain(|_, (_, last)| now.saturating_duration_since(*last) < AUTH_FAILURE_MEMORY);
        let entry = failures.entry(key).or_insert((0, now));
        entry.0 = entry.0.saturating_add(1);
        entry.1 = now;
    }

    /// Checks a password (after the client's delay, on the verifier's threads) and logs the
    /// outcome: the user's rule, or `None`.
    async fn authenticate(&self, ip: IpAddr, user: &str, password: Secret) -> Option<Rule> {
        let key = client_key(ip);
        let delay = self.auth_delay(key);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let policy = self.policy();
        let name = user.to_owned();
        let rule = self
            .verifier
            .run(move || policy.verify(&name, password.expose().as_bytes()))
            .await
            .flatten();
        // The name is the client's text: a line break in it would forge a log line.
        let shown = user.escape_debug().to_string();
        if rule.is_some() {
            tracing::info!(client = %ip, user = %shown, "authenticated");
        } else {
            self.metrics.auth_failures.inc();
            self.metrics.activity.auth_failed(ip, Timestamp::now());
            self.auth_failed(key);
            let next_delay_ms = self.auth_delay(key).as_millis() as u64;
            tracing::warn!(client = %ip, user = %shown, next_delay_ms, "authentication failed");
        }
        rule
    }
}

/// Accepts connections on `listener` until shutdown. Each session holds a clone of `open`, so
/// the relay knows when the last has ended.
pub(crate) async fn serve(listener: TcpListener, mode: ListenerTls, shared: Arc<Shared>, open: mpsc::Sender<()>) {
    let settings = Arc::new(Settings {
        starttls: mode == ListenerTls::StartTls && shared.tls.is_some(),
        ..shared.settings.clone()
    });
    let mut shutdown = shared.shutdown.clone();
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let ip = peer.ip().to_canonical();
        let key = client_key(ip);
        let shared = Arc::clone(&shared);
        let settings = Arc::clone(&settings);
        let open = open.clone();
        tokio::spawn(async move {
            let _open = open;
            if let Err(reason) = shared.admit(key) {
                shared.metrics.inbound_refused.inc();
                shared.metrics.activity.refused(reason);
                tracing::warn!(client = %ip, reason, "connection refused");
                refuse(tcp, reason).await;
                return;
            }
            shared.metrics.inbound_connections.inc();
            shared.metrics.activity.session_opened();
            let _ = tcp.set_nodelay(true);
            if let Err(e) = run(tcp, peer, mode == ListenerTls::Implicit, settings, &shared).await {
                tracing::debug!(client = %ip, error = %e, "session ended");
            }
            shared.metrics.activity.session_closed();
            shared.release(key);
        });
    }
}

async fn refuse(mut tcp: TcpStream, reason: &str) {
    let _ = tcp.write_all(&Session::refuse(reason)).await;
    let _ = tcp.shutdown().await;
}

/// The server side of TLS. A failed handshake is logged where operators look: it is how a
/// device that only speaks TLS 1.0 or 1.1 shows up.
async fn handshake(shared: &Shared, tcp: TcpStream, ip: IpAddr) -> std::io::Result<Stream> {
    let config = shared.tls.clone().ok_or(std::io::ErrorKind::Unsupported)?;
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let tls = tokio::time::timeout(shared.inbound.line_timeout, acceptor.accept(tcp))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))
        .and_then(|accepted| accepted);
    match tls {
        Ok(tls) => Ok(Stream::Tls(Box::new(tls.into()))),
        Err(e) => {
            tracing::warn!(client = %ip, error = %e, "TLS handshake failed (the relay speaks TLS 1.2 and 1.3)");
            Err(e)
        }
    }
}

/// One session, from greeting to close.
async fn run(
    tcp: TcpStream,
    peer: SocketAddr,
    implicit_tls: bool,
    settings: Arc<Settings>,
    shared: &Shared,
) -> std::io::Result<()> {
    let ip = peer.ip().to_canonical();
    let mut stream = if implicit_tls {
        handshake(shared, tcp, ip).await?
    } else {
        Stream::Plain(tcp)
    };
    let mut session = Session::new(settings, shared.policy(), ip, implicit_tls);
    let mut shutdown = shared.shutdown.clone();
    let ends = clock::instant() + shared.inbound.max_session_time;
    // Small: an idle session should cost little (1,000 of them are normal for a busy relay).
    let mut buf = vec![0u8; 8 * 1024];
    loop {
        let event = session.next_event();
        flush(&mut stream, &session.take_output(), shared, ip).await?;
        match event {
            Event::NeedInput => {
                if *shutdown.borrow() && !session.in_transaction() {
                    session.shutting_down();
                    continue;
                }
                let Some(limit) = read_limit(&mut session, &shared.inbound, ends, ip) else {
                    continue;
                };
                tokio::select! {
                    read = tokio::time::timeout(limit, stream.read(&mut buf)) => match read {
                        Ok(Ok(0) | Err(_)) => session.disconnected(),
                        Ok(Ok(n)) => session.receive(&buf[..n]),
                        Err(_) => {
                            tracing::info!(client = %ip, "session timed out");
                            session.timed_out();
                        }
                    },
                    _ = shutdown.changed(), if !session.in_transaction() => session.shutting_down(),
                }
            }
            Event::StartTls => {
                let Stream::Plain(tcp) = std::mem::replace(&mut stream, Stream::Closed) else {
                    return Ok(());
                };
                stream = handshake(shared, tcp, ip).await?;
                session.tls_started();
            }
            Event::CheckPassword { user, password } => {
                let rule = shared.authenticate(ip, &user, password).await;
                session.password_checked(&user, rule);
            }
            Event::Message(accepted) => match store(shared, ip, &accepted).await {
                Ok(id) => session.stored(Ok(&id)),
                Err(e) => session.stored(Err(&e)),
            },
            Event::Close => {
                // Closing with unread input would send a reset, and a reset can destroy replies
                // the client has not read yet (the `250` for its last message). So: end our
                // side, then read until the client closes too, for a little while.
                let _ = stream.shutdown().await;
                let _ = tokio::time::timeout(LINGER, async {
                    while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
                })
                .await;
                return Ok(());
            }
        }
    }
}

/// How long to wait for the client's next bytes, or `None` once the session has outlived its
/// lifetime (it then ends at the next command; a message in progress has a little longer).
fn read_limit(session: &mut Session, inbound: &Inbound, ends: Instant, ip: IpAddr) -> Option<Duration> {
    let now = clock::instant();
    let hard_end = ends + LIFETIME_GRACE;
    if session.waiting() == Waiting::Command && (now >= hard_end || (now >= ends && !session.in_transaction())) {
        tracing::info!(client = %ip, "session lifetime reached");
        session.lifetime_reached();
        return None;
    }
    let limit = match session.waiting() {
        Waiting::Command => inbound.command_timeout,
        Waiting::Line => inbound.line_timeout,
        Waiting::Content => inbound.data_timeout,
    };
    Some(limit.min(hard_end.saturating_duration_since(now).max(Duration::from_millis(1))))
}

/// Sends the session's replies. A client that pipelines commands and never reads the replies
/// would hold its slot for ever once the socket's buffers are full: it gets a line's time.
async fn flush(stream: &mut Stream, output: &[u8], shared: &Shared, ip: IpAddr) -> std::io::Result<()> {
    if output.is_empty() {
        return Ok(());
    }
    match tokio::time::timeout(shared.inbound.line_timeout, stream.write_all(output)).await {
        Ok(written) => written,
        Err(_) => {
            tracing::info!(client = %ip, "the client does not read its replies; closing");
            Err(std::io::ErrorKind::TimedOut.into())
        }
    }
}

/// Stores an accepted message and wakes its account's deliverer: the queue id, or why not (the
/// client is told to retry).
async fn store(shared: &Shared, ip: IpAddr, accepted: &Accepted) -> Result<String, String> {
    let id = queue::new_id();
    let message = stamp(accepted, &id, &shared.settings.hostname);
    let account = message.account.clone();
    let (size, message_id) = (message.content.len(), message.message_id.clone());
    if let Err(e) = shared.queue.enqueue(message).await {
        tracing::error!(client = %ip, error = %e, "could not store a message; the client was told to retry");
        return Err(e.for_client().to_owned());
    }
    tracing::info!(
        queue_id = %id,
        message_id = message_id.as_deref().unwrap_or(""),
        client = %ip,
        user = accepted.user.as_deref().unwrap_or(""),
        account = %account,
        from = %accepted.sender,
        recipients = accepted.recipients.len(),
        size,
        "accepted"
    );
    shared.metrics.accepted.get_or_create(&Metrics::account(&account)).inc();
    shared
        .metrics
        .activity
        .record(crate::relay::status::Event::Accepted, Timestamp::now());
    let _ = shared.stored.send(account);
    Ok(id)
}

/// The stored form of an accepted message: trace header added, and the From, Date and
/// Message-ID headers devices often leave out.
pub(crate) fn stamp(accepted: &Accepted, id: &str, hostname: &str) -> NewMessage {
    let now = Timestamp::now();
    let date = crate::message::rfc5322_date(now);
    let completed = crate::message::add_missing_headers(&accepted.content, &accepted.sender, now);
    let mut content = accepted.received_header(hostname, id, &date).into_bytes();
    content.extend_from_slice(&completed);
    let message_id = crate::message::message_id(&content);
    let client = match &accepted.user {
        Some(user) => format!("{} user {}", accepted.client, user.escape_debug()),
        None => accepted.client.to_string(),
    };
    NewMessage {
        id: id.to_owned(),
        account: accepted.rule.account.clone(),
        sender: accepted.sender.clone(),
        recipients: accepted.recipients.clone(),
        content,
        message_id,
        client,
        received: now,
    }
}
