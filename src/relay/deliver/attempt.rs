//! One attempt: on the pooled connection (opened and authenticated first if needed) or as one
//! Graph request, with the lease renewed while it runs.

use super::*;

impl AccountDelivery {
    /// Runs `attempt` while renewing the lease of `leased`, so a slow delivery keeps its message.
    pub(super) async fn renewing<T>(&self, leased: &Leased, attempt: impl Future<Output = T>) -> T {
        tokio::pin!(attempt);
        let every = (self.settings.lease / 3).max(Duration::from_millis(100));
        loop {
            tokio::select! {
                done = &mut attempt => return done,
                () = tokio::time::sleep(every) => {
                    let until = Timestamp::now() + self.settings.lease;
                    let renew = Op::Renew { id: leased.message.id.clone(), until };
                    if let Err(e) = self.queue.apply(vec![renew]).await {
                        tracing::warn!(queue_id = %leased.message.id, error = %e, "cannot renew the lease");
                    }
                }
            }
        }
    }

    pub(super) fn token_outdated(&self, up: &Upstream) -> bool {
        let Some(provider) = self.submitter.provider() else {
            return false;
        };
        let (Some(used), Some(current)) = (up.token_expires_at, provider.current()) else {
            return false;
        };
        current.expires_at > used || Timestamp::now().until(used) < provider.minimum_validity()
    }

    /// Sends `leased` with one Microsoft Graph request. Failing to get a token counts as failing
    /// to connect (the account is unavailable, not the message wrong).
    pub(super) async fn attempt_graph(&self, leased: &Leased) -> (Stage, Result<crate::smtp::Delivery, SubmitError>) {
        let outgoing = crate::message::Outgoing {
            envelope: Envelope {
                from: leased.message.sender.clone(),
                to: leased.message.recipients.clone(),
            },
            content: leased.message.content.clone(),
            from_header: Vec::new(),
        };
        let result = self.submitter.submit_graph_once(&outgoing).await;
        let stage = match &result {
            Err(SubmitError::Token(_)) => Stage::Connect,
            _ => Stage::Transaction,
        };
        (stage, result)
    }

    /// Sends `leased` on the connection, opening and authenticating one first if needed.
    pub(super) async fn attempt(
        &self,
        leased: &Leased,
        upstream: &mut Option<Upstream>,
        started: Instant,
    ) -> (Stage, Result<crate::smtp::Delivery, SubmitError>) {
        if upstream.is_none() {
            match self.submitter.connect().await {
                Ok(connection) => {
                    self.metrics.upstream_connections.get_or_create(&self.label).inc();
                    let token_expires_at = self
                        .submitter
                        .provider()
                        .and_then(|p| p.current())
                        .map(|t| t.expires_at);
                    *upstream = Some(Upstream {
                        connection,
                        token_expires_at,
                        idle_since: started,
                    });
                }
                Err(e) => return (Stage::Connect, Err(e)),
            }
        }
        let up = upstream.as_mut().expect("connected above");
        let envelope = Envelope {
            from: leased.message.sender.clone(),
            to: leased.message.recipients.clone(),
        };
        let result = up
            .connection
            .send_mail(&envelope, &leased.message.content)
            .await
            .map_err(SubmitError::from);
        (Stage::Transaction, result)
    }
}

/// A pooled connection the server had closed before it took anything of this message: a clean
/// end of the connection, or a refused write, while the envelope's replies were awaited, or
/// `421` to RSET or MAIL. Never once the content's reply is awaited: Exchange may have taken the
/// message by then, and sending it again would deliver it twice.
pub(super) fn stale(result: &Result<crate::smtp::Delivery, SubmitError>) -> bool {
    use std::io::ErrorKind;

    use crate::smtp::{SmtpError, Step};
    match result {
        Err(SubmitError::Smtp(SmtpError::Io { step, source })) => {
            matches!(step, Step::Rset | Step::Mail | Step::Rcpt | Step::Data)
                && matches!(
                    source.kind(),
                    ErrorKind::UnexpectedEof
                        | ErrorKind::BrokenPipe
                        | ErrorKind::ConnectionReset
                        | ErrorKind::ConnectionAborted
                )
        }
        Err(SubmitError::Smtp(SmtpError::Rejected { reply, step, .. })) => {
            reply.code() == 421 && matches!(step, Step::Mail | Step::Rset)
        }
        _ => false,
    }
}
