//! What the status page shows of an account: its state, its token and credential, its use of
//! the limits, its connections.

use super::*;

impl AccountDelivery {
    /// What the status page shows of the account now.
    pub(crate) fn status(&self) -> crate::relay::status::AccountView {
        let account = self.submitter.account();
        let now = Timestamp::now();
        let (usage, limits) = {
            let mut limiter = self.limiter.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            (limiter.usage(clock::instant()), limiter.limits())
        };
        let unavailable_until = *self
            .unavailable_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let later = |until: Option<Instant>| until.map(|u| now + u.saturating_duration_since(clock::instant()));
        crate::relay::status::AccountView {
            name: account.name.clone(),
            service: account.service.value,
            mailbox: account.mailbox.value.clone(),
            transport: account.transport,
            token_expires: self
                .submitter
                .provider()
                .and_then(|p| p.current())
                .map(|t| t.expires_at),
            needs_token: account.needs_token(),
            credential: account.credential_expiry().map(|e| (e.credential.to_string(), e.at)),
            usage,
            limits,
            connections: self.metrics.upstream_connections.get_or_create(&self.label).get(),
            unavailable: self
                .unavailable
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
            unavailable_until: later(unavailable_until),
            throttled_until: later(usage.paused_until),
            last_reply: self
                .last_reply
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
        }
    }
}
