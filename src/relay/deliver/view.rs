//! What the admin endpoint shows of an account: on the status page its state, its token and
//! credential, its use of the limits, its connections; its readiness; its token metrics.

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

    /// Whether the account can deliver: it has a usable token (or a password), and its last
    /// attempt reached Exchange. `Err` says what is wrong.
    pub(crate) fn readiness(&self) -> Result<(), String> {
        if let Some(provider) = self.submitter.provider() {
            match provider.current() {
                Some(token) if Timestamp::now().until(token.expires_at) > provider.minimum_validity() => {}
                _ => return Err("no valid token (the token endpoint has not answered yet, or refuses)".to_owned()),
            }
        }
        match self
            .unavailable
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
        {
            Some(why) => Err(format!("the last attempt failed: {why}")),
            None => Ok(()),
        }
    }

    /// Brings the token counters (they live in the token provider) and the credential expiry
    /// up to date.
    pub(crate) fn update_token_metrics(&self) {
        if let Some(expiry) = self.submitter.account().credential_expiry() {
            let label = crate::relay::metrics::CredentialLabel {
                account: self.label.account.clone(),
                credential: expiry.credential.to_string(),
            };
            let left = expiry.seconds_left(Timestamp::now());
            self.metrics.credential_expiry_seconds.get_or_create(&label).set(left);
        }
        if let Some(provider) = self.submitter.provider() {
            for (family, value) in [
                (&self.metrics.token_requests, provider.requests()),
                (&self.metrics.token_failures, provider.failures()),
            ] {
                let counter = family.get_or_create(&self.label);
                counter.inc_by(value.saturating_sub(counter.get()));
            }
        }
    }
}
