//! The SMTP listener: accepts connections, runs TLS (STARTTLS or implicit), and moves bytes
//! between the socket and the [`Session`] state machine. Replies are written when the session has
//! consumed everything received, so pipelined commands get their replies in one flight.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use super::endpoint::Endpoint;
use super::reply;
use super::session::{Output, Session};
use crate::Shared;

/// Serves SMTP as `endpoint` on `listener` until the task is aborted; `implicit_tls` selects
/// the port-465 role.
pub(crate) async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    implicit_tls: bool,
    endpoint: Endpoint,
    shared: Arc<Shared>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let mut connections = JoinSet::new();
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "SMTP accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let shared = Arc::clone(&shared);
        let acceptor = acceptor.clone();
        connections.spawn(async move {
            shared.stats.update(|c| {
                c.smtp_connections += 1;
                c.smtp_connections_open += 1;
            });
            if let Err(e) = connection(tcp, peer, acceptor, implicit_tls, endpoint, &shared).await {
                tracing::debug!(%peer, error = %e, "SMTP connection ended with an error");
            }
            shared.stats.update(|c| c.smtp_connections_open -= 1);
        });
        while connections.try_join_next().is_some() {}
    }
}

async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    implicit_tls: bool,
    endpoint: Endpoint,
    shared: &Arc<Shared>,
) -> std::io::Result<()> {
    let id = shared.next_connection.fetch_add(1, Ordering::Relaxed);
    let mut session = Session::new(Arc::clone(shared), endpoint, id, peer.ip().to_string(), implicit_tls);
    if implicit_tls {
        let tls = acceptor.accept(tcp).await?;
        let greeting = session.start();
        drive(tls, &mut session, greeting, false, shared).await?;
        return Ok(());
    }
    let greeting = session.start();
    if let Some(tcp) = drive(tcp, &mut session, greeting, false, shared).await? {
        let tls = acceptor.accept(tcp).await?;
        session.tls_started();
        // The client's first command over TLS answers our "220 ready": a new round trip.
        drive(tls, &mut session, Vec::new(), true, shared).await?;
    }
    Ok(())
}

/// Runs the session over `stream`; returns the stream when the session asks for STARTTLS.
/// `answered` says the client has a reply to react to before any input arrives.
async fn drive<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    session: &mut Session,
    mut outputs: Vec<Output>,
    answered: bool,
    shared: &Shared,
) -> std::io::Result<Option<S>> {
    let mut input = Vec::with_capacity(16 * 1024);
    let mut pending = Vec::with_capacity(1024);
    let mut answered = answered;
    loop {
        for output in outputs.drain(..) {
            match output {
                Output::Reply(wire) => pending.extend_from_slice(wire.as_bytes()),
                Output::Delay(d) => {
                    answered |= !pending.is_empty();
                    flush(&mut stream, &mut pending).await?;
                    tokio::time::sleep(d).await;
                }
                Output::StartTls => {
                    flush(&mut stream, &mut pending).await?;
                    // Anything pipelined after STARTTLS arrived in clear text: discard it.
                    return Ok(Some(stream));
                }
                Output::Close => {
                    flush(&mut stream, &mut pending).await?;
                    let _ = stream.shutdown().await;
                    return Ok(None);
                }
                Output::Hang => {
                    flush(&mut stream, &mut pending).await?;
                    let mut sink = [0u8; 4096];
                    while stream.read(&mut sink).await? > 0 {}
                    return Ok(None);
                }
            }
        }
        answered |= !pending.is_empty();
        flush(&mut stream, &mut pending).await?;

        let settings = shared.scenario();
        let idle = Duration::from_secs(settings.exchange.idle_timeout_secs);
        let read = tokio::time::timeout(idle, stream.read_buf(&mut input)).await;
        let n = match read {
            Ok(result) => result?,
            Err(_) => {
                let knobs = session.endpoint().settings(&settings);
                pending.extend_from_slice(reply::timeout(&knobs).as_bytes());
                flush(&mut stream, &mut pending).await?;
                return Ok(None);
            }
        };
        if n == 0 {
            return Ok(None);
        }
        if std::mem::take(&mut answered) {
            // The client read our replies and sent more: one round trip.
            shared.stats.update(|c| c.round_trips += 1);
            let latency = settings.latency.smtp_command_ms;
            if latency > 0 {
                tokio::time::sleep(Duration::from_millis(latency)).await;
            }
        }
        outputs = session.feed(&mut input);
    }
}

async fn flush<S: AsyncWrite + Unpin>(stream: &mut S, pending: &mut Vec<u8>) -> std::io::Result<()> {
    if !pending.is_empty() {
        stream.write_all(pending).await?;
        stream.flush().await?;
        pending.clear();
    }
    Ok(())
}
