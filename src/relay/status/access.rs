//! Who may change the queue from the status page: whoever presents the admin token, as a
//! bearer token (`Authorization: Bearer …`, for scripts) or typed once into the login form,
//! which opens a session: a cookie (`HttpOnly`, `SameSite=Strict`) and a CSRF token that every
//! form of the page carries. Without a token configured the page is read only.

use std::collections::HashMap;
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use axum::http::{HeaderMap, header};
use tokio::time::Instant;

use crate::secret::Secret;

/// The session cookie's name.
pub(crate) const COOKIE: &str = "m365_mailer_session";
/// How long a session lasts.
const LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Sessions kept at most (the oldest go first): a flood of logins cannot fill memory.
const MAX_SESSIONS: usize = 64;

/// The admin token and the open sessions. `Debug` shows neither: both let one change the queue.
pub(crate) struct Access {
    /// Replaced on reload.
    token: RwLock<Option<Secret>>,
    /// The page is served over TLS: the cookie is `Secure`.
    tls: bool,
    sessions: Mutex<HashMap<String, Session>>,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("token", &*self.token())
            .field("tls", &self.tls)
            .field("sessions", &self.lock().len())
            .finish()
    }
}

#[derive(Clone)]
struct Session {
    csrf: String,
    expires: Instant,
}

impl Access {
    /// Access with `token` (`None` keeps the page read only), served over TLS or not.
    pub(crate) fn new(token: Option<Secret>, tls: bool) -> Self {
        Self {
            token: RwLock::new(token),
            tls,
            sessions: Mutex::new(HashMap::new()),
        }
    }

    /// Takes the token of a reloaded configuration; a different one ends every session
    /// (they were opened with the old one).
    pub(crate) fn replace_token(&self, token: Option<Secret>) {
        let mut held = self.token.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if *held != token {
            *held = token;
            self.lock().clear();
        }
    }

    /// Whether a token is configured (else nothing can be changed here).
    pub(crate) fn enabled(&self) -> bool {
        self.token().is_some()
    }

    fn token(&self) -> std::sync::RwLockReadGuard<'_, Option<Secret>> {
        self.token.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A new session when `typed` is the token: its cookie value.
    pub(crate) fn login(&self, typed: &str) -> Option<String> {
        if !self.is_token(typed) {
            return None;
        }
        let now = crate::clock::instant();
        let mut sessions = self.lock();
        sessions.retain(|_, s| s.expires > now);
        if sessions.len() >= MAX_SESSIONS
            && let Some(oldest) = sessions.iter().min_by_key(|(_, s)| s.expires).map(|(id, _)| id.clone())
        {
            sessions.remove(&oldest);
        }
        let id = random();
        sessions.insert(
            id.clone(),
            Session {
                csrf: random(),
                expires: now + LIFETIME,
            },
        );
        Some(id)
    }

    /// Ends the request's session.
    pub(crate) fn logout(&self, headers: &HeaderMap) {
        if let Some(id) = session_id(headers) {
            self.lock().remove(&id);
        }
    }

    /// The CSRF token of the request's session, when it has a live one.
    pub(crate) fn csrf(&self, headers: &HeaderMap) -> Option<String> {
        let id = session_id(headers)?;
        let now = crate::clock::instant();
        self.lock().get(&id).filter(|s| s.expires > now).map(|s| s.csrf.clone())
    }

    /// Whether a POST may change the queue: the bearer token, or a live session whose CSRF
    /// token the form carries.
    pub(crate) fn allows(&self, headers: &HeaderMap, csrf: Option<&str>) -> bool {
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if bearer.is_some_and(|b| self.is_token(b.trim())) {
            return true;
        }
        match (self.csrf(headers), csrf) {
            (Some(expected), Some(given)) => same(expected.as_bytes(), given.as_bytes()),
            _ => false,
        }
    }

    /// The `Set-Cookie` value for session `id` (`Secure` when the page is served over TLS).
    pub(crate) fn cookie(&self, id: &str) -> String {
        let secure = if self.tls { "; Secure" } else { "" };
        format!(
            "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
            LIFETIME.as_secs()
        )
    }

    fn is_token(&self, typed: &str) -> bool {
        self.token()
            .as_ref()
            .is_some_and(|t| same(t.expose().as_bytes(), typed.as_bytes()))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.sessions.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The session cookie's value in the request.
fn session_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(COOKIE)?.strip_prefix('=').map(str::to_owned))
}

/// 244 random bits as hex (two version-4 UUIDs, from the operating system's generator).
fn random() -> String {
    format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())
}

/// Compares in time that depends on the lengths only, so the token cannot be guessed a
/// character at a time by timing. Written here: it is three lines, not worth a crate.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_cookie(id: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, format!("other=1; {COOKIE}={id}").parse().unwrap());
        h
    }

    #[test]
    fn the_token_opens_a_session_whose_forms_carry_its_csrf_token() {
        let access = Access::new(Some(Secret::new("0123456789abcdef-token")), true);
        assert!(access.login("wrong").is_none());
        let id = access.login("0123456789abcdef-token").unwrap();
        let headers = with_cookie(&id);
        let csrf = access.csrf(&headers).unwrap();
        assert!(access.allows(&headers, Some(&csrf)));
        assert!(!access.allows(&headers, None), "a cookie alone is not enough (CSRF)");
        assert!(!access.allows(&headers, Some("forged")));
        assert!(!access.allows(&with_cookie("guessed"), Some(&csrf)));
        let mut bearer = HeaderMap::new();
        bearer.insert(header::AUTHORIZATION, "Bearer 0123456789abcdef-token".parse().unwrap());
        assert!(access.allows(&bearer, None));
        let shown = format!("{access:?}");
        assert!(
            !shown.contains("0123456789abcdef-token") && !shown.contains(&id) && !shown.contains(&csrf),
            "{shown}"
        );
        access.logout(&headers);
        assert!(access.csrf(&headers).is_none());
        let cookie = access.cookie(&id);
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && cookie.ends_with("; Secure"));
        assert!(
            !Access::new(None, false).allows(&bearer, None),
            "no token configured: read only"
        );
    }

    #[test]
    fn a_new_token_on_reload_ends_the_sessions_of_the_old_one() {
        let access = Access::new(Some(Secret::new("0123456789abcdef-old")), false);
        let id = access.login("0123456789abcdef-old").unwrap();
        access.replace_token(Some(Secret::new("0123456789abcdef-old")));
        assert!(access.csrf(&with_cookie(&id)).is_some(), "the same token keeps them");
        access.replace_token(Some(Secret::new("0123456789abcdef-new")));
        assert!(access.csrf(&with_cookie(&id)).is_none());
        assert!(access.login("0123456789abcdef-old").is_none());
        assert!(access.login("0123456789abcdef-new").is_some());
        access.replace_token(None);
        assert!(!access.enabled());
    }
}
