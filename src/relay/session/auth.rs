//! AUTH PLAIN and LOGIN: the exchange, then the password check the driver runs off the session.

use super::*;

impl Session {
    pub(super) fn auth(&mut self, mechanism: u64, initial: &str) -> Option<Event> {
        if self.helo.is_none() {
            self.error(503, "5.5.1", "Send EHLO first");
            return None;
        }
        if self.user.is_some() {
            self.error(503, "5.5.1", "Already authenticated");
            return None;
        }
        if self.transaction.is_some() {
            self.error(503, "5.5.1", "AUTH is not allowed during a mail transaction");
            return None;
        }
        if !self.policy.has_users() {
            self.error(502, "5.5.1", "AUTH is not offered here: no relay users are configured");
            return None;
        }
        if !self.tls && !self.policy.plaintext_auth_allowed(self.client) {
            self.error(
                538,
                "5.7.11",
                "Encryption required for requested authentication mechanism: use STARTTLS first",
            );
            return None;
        }
        match mechanism {
            smtp_proto::AUTH_PLAIN if initial.is_empty() => {
                self.state = State::AuthPlain;
                self.reply(334, "", "");
                None
            }
            smtp_proto::AUTH_PLAIN => self.auth_plain(initial.as_bytes()),
            smtp_proto::AUTH_LOGIN if initial.is_empty() => {
                self.state = State::AuthLoginUser;
                self.reply(334, "", "VXNlcm5hbWU6");
                None
            }
            smtp_proto::AUTH_LOGIN => self.auth_login_user(initial.as_bytes()),
            _ => {
                self.error(504, "5.5.4", "Unrecognized authentication type: use PLAIN or LOGIN");
                None
            }
        }
    }

    pub(super) fn auth_plain(&mut self, response: &[u8]) -> Option<Event> {
        if response == b"*" {
            self.error(501, "5.7.0", "Authentication cancelled");
            return None;
        }
        let decoded = if response == b"=" {
            Some(Vec::new())
        } else {
            BASE64.decode(response).ok()
        };
        let parts: Option<(String, String, Vec<u8>)> = decoded.and_then(|d| {
            let mut fields = d.splitn(3, |b| *b == 0);
            let authz = String::from_utf8(fields.next()?.to_vec()).ok()?;
            let user = String::from_utf8(fields.next()?.to_vec()).ok()?;
            let password = fields.next()?.to_vec();
            Some((authz, user, password))
        });
        match parts {
            Some((authz, user, password)) if authz.is_empty() || authz == user => {
                Some(self.check_password(user, &password))
            }
            Some(_) => {
                self.error(535, "5.7.8", "Authorization identity must be empty or the user");
                None
            }
            None => {
                self.error(501, "5.5.2", "Cannot decode the response");
                None
            }
        }
    }

    /// AUTH LOGIN's user name (given with AUTH or after `334 VXNlcm5hbWU6`): ask for the password.
    pub(super) fn auth_login_user(&mut self, response: &[u8]) -> Option<Event> {
        match decode(response) {
            Some(user) => {
                self.state = State::AuthLoginPassword { user };
                self.reply(334, "", "UGFzc3dvcmQ6");
            }
            None => self.error(501, "5.5.2", "Cannot decode the response"),
        }
        None
    }

    pub(super) fn check_password(&mut self, user: String, password: &[u8]) -> Event {
        self.state = State::CheckingPassword;
        Event::CheckPassword {
            user,
            password: Secret::new(String::from_utf8_lossy(password).into_owned()),
        }
    }
}

pub(super) fn decode(line: &[u8]) -> Option<String> {
    BASE64.decode(line).ok().and_then(|d| String::from_utf8(d).ok())
}
