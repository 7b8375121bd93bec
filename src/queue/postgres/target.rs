//! Where a PostgreSQL queue is, read from a libpq-style URL, and how it is reached: always over
//! TLS that verifies the server (rustls), except on a loopback address or a Unix socket when
//! `sslmode=disable` says so.
//!
//! tokio-postgres reads the URL itself but knows only `disable`, `prefer` and `require`, which
//! never check who answers; so `sslmode` and `sslrootcert` are taken out here, and TLS is
//! always required and verified when it is on.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr as _;

use crate::secret::Secret;

/// A PostgreSQL queue: the URL (which may carry the password, so it never prints) and what it
/// says about TLS.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Target {
    url: Secret,
    shown: String,
    tls: Tls,
}

/// How the connection is protected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tls {
    /// TLS, the server's certificate checked against Mozilla's roots, `SSL_CERT_FILE` and
    /// `sslrootcert`, and its name against the host (`verify-full`, the default).
    Verified {
        /// `sslrootcert`: a private CA's certificates (PEM).
        root_cert: Option<PathBuf>,
    },
    /// No TLS: only to a loopback address or a Unix socket (`sslmode=disable`).
    Disabled,
}

/// A URL that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("queue URL {shown}: {reason}")]
pub(crate) struct TargetError {
    /// The URL, password masked.
    pub(crate) shown: String,
    /// What is wrong and what to write instead.
    pub(crate) reason: String,
}

impl Target {
    /// Reads `postgres://user[:password]@host[:port]/database[?sslmode=…&sslrootcert=…]`.
    pub(crate) fn parse(url: &str) -> Result<Self, TargetError> {
        let shown = mask_password(url);
        let fail = |reason: String| TargetError {
            shown: shown.clone(),
            reason,
        };
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(fail("expected postgres://user@host/database".to_owned()));
        }
        let (rest, query) = split_query(url);
        let mut sslmode = None;
        let mut root_cert = None;
        let mut kept = Vec::new();
        for (key, value) in query {
            match key {
                "sslmode" => sslmode = Some(value.to_owned()),
                "sslrootcert" => root_cert = Some(PathBuf::from(value)),
                _ => kept.push(format!("{key}={value}")),
            }
        }
        let rebuilt = if kept.is_empty() {
            rest.to_owned()
        } else {
            format!("{rest}?{}", kept.join("&"))
        };
        let config = tokio_postgres::Config::from_str(&rebuilt).map_err(|e| fail(e.to_string()))?;
        if config.get_hosts().is_empty() {
            return Err(fail("it names no host".to_owned()));
        }
        if config.get_user().is_none() {
            return Err(fail("it names no user (postgres://user@host/database)".to_owned()));
        }
        let tls = match sslmode.as_deref().unwrap_or("verify-full") {
            "verify-full" => Tls::Verified { root_cert },
            "disable" if all_local(&config) => Tls::Disabled,
            "disable" => {
                return Err(fail(
                    "sslmode=disable is accepted only for a loopback address or a Unix socket: the password \
                     and every message would cross the network in clear; use sslmode=verify-full"
                        .to_owned(),
                ));
            }
            weaker @ ("allow" | "prefer" | "require" | "verify-ca") => {
                return Err(fail(format!(
                    "sslmode={weaker} does not check the server's name, so anyone on the path could \
                     answer; use sslmode=verify-full (with sslrootcert=FILE for a private CA)"
                )));
            }
            other => {
                return Err(fail(format!(
                    "unknown sslmode `{other}`: expected verify-full, or disable on a loopback address"
                )));
            }
        };
        Ok(Self {
            url: Secret::new(rebuilt),
            shown,
            tls,
        })
    }

    /// The connection settings for tokio-postgres (TLS aside), with `password` when the URL
    /// has none.
    pub(crate) fn config(&self, password: Option<&Secret>) -> tokio_postgres::Config {
        let mut config = tokio_postgres::Config::from_str(self.url.expose()).expect("checked by parse");
        if config.get_password().is_none()
            && let Some(password) = password
        {
            config.password(password.expose());
        }
        if config.get_application_name().is_none() {
            config.application_name("m365-mailer");
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(std::time::Duration::from_secs(5));
        }
        // A peer that vanishes without closing is noticed within a minute, not hours.
        config.keepalives_idle(std::time::Duration::from_secs(30));
        config.ssl_mode(match self.tls {
            Tls::Verified { .. } => tokio_postgres::config::SslMode::Require,
            Tls::Disabled => tokio_postgres::config::SslMode::Disable,
        });
        config
    }

    /// How the connection is protected.
    pub(crate) fn tls(&self) -> &Tls {
        &self.tls
    }

    /// Whether the URL carries a password.
    pub(crate) fn has_password(&self) -> bool {
        self.config(None).get_password().is_some()
    }
}

/// The URL with its password masked: `postgres://relay:***@db.contoso.com/mail`.
impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("url", &self.shown)
            .field("tls", &self.tls)
            .finish()
    }
}

/// The part before `?`, and the query's `key=value` pairs.
fn split_query(url: &str) -> (&str, Vec<(&str, &str)>) {
    match url.split_once('?') {
        None => (url, Vec::new()),
        Some((rest, query)) => (
            rest,
            query
                .split('&')
                .filter(|pair| !pair.is_empty())
                .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
                .collect(),
        ),
    }
}

/// Every host is a loopback address or a Unix socket.
fn all_local(config: &tokio_postgres::Config) -> bool {
    config.get_hosts().iter().all(|host| match host {
        tokio_postgres::config::Host::Tcp(name) => {
            name == "localhost" || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
        }
        tokio_postgres::config::Host::Unix(_) => true,
    })
}

/// `scheme://user:password@…` with the password replaced by `***`; anything else unchanged.
fn mask_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verified_tls_is_the_default_and_the_password_never_shows() {
        let t = Target::parse("postgres://relay:s3cret@db.contoso.com:6432/mail?sslrootcert=/etc/ca.pem").unwrap();
        assert_eq!(
            t.to_string(),
            "postgres://relay:***@db.contoso.com:6432/mail?sslrootcert=/etc/ca.pem"
        );
        assert!(!format!("{t:?}").contains("s3cret"));
        assert_eq!(
            t.tls(),
            &Tls::Verified {
                root_cert: Some("/etc/ca.pem".into())
            }
        );
        let config = t.config(None);
        assert_eq!(config.get_password(), Some(&b"s3cret"[..]));
        assert_eq!(config.get_dbname(), Some("mail"));
        assert_eq!(config.get_application_name(), Some("m365-mailer"));
        assert!(t.has_password());
        let bare = Target::parse("postgresql://relay@db.contoso.com/mail").unwrap();
        assert!(!bare.has_password());
        assert_eq!(
            bare.config(Some(&Secret::new("from-file"))).get_password(),
            Some(&b"from-file"[..])
        );
    }

    #[test]
    fn anything_that_does_not_check_the_server_is_refused_off_this_machine() {
        for (url, says) in [
            (
                "postgres://u@db.contoso.com/q?sslmode=require",
                "sslmode=require does not check",
            ),
            (
                "postgres://u@db.contoso.com/q?sslmode=prefer",
                "sslmode=prefer does not check",
            ),
            (
                "postgres://u@db.contoso.com/q?sslmode=verify-ca",
                "verify-ca does not check",
            ),
            ("postgres://u@db.contoso.com/q?sslmode=disable", "only for a loopback"),
            ("postgres://u@db.contoso.com/q?sslmode=on", "unknown sslmode `on`"),
            ("postgres://db.contoso.com/q", "names no user"),
            ("mysql://u@db/q", "expected postgres://"),
            ("postgres://u:pw@db.contoso.com/q?port=x", "invalid connection string"),
        ] {
            let e = Target::parse(url).unwrap_err().to_string();
            assert!(e.contains(says), "{url}: {e}");
            assert!(!e.contains(":pw@"), "{e}");
        }
        for local in [
            "postgres://u@127.0.0.1/q?sslmode=disable",
            "postgres://u@localhost/q?sslmode=disable",
            "postgres://u@[::1]:5433/q?sslmode=disable",
            "postgres://u@%2Frun%2Fpostgresql/q?sslmode=disable",
        ] {
            assert_eq!(Target::parse(local).unwrap().tls(), &Tls::Disabled, "{local}");
        }
    }

    #[test]
    fn masking_leaves_urls_without_a_password_alone() {
        assert_eq!(mask_password("postgres://u@h/d"), "postgres://u@h/d");
        assert_eq!(mask_password("postgres://u:p@ss@h/d"), "postgres://u:***@h/d");
        assert_eq!(mask_password("postgres://h/d?x=a@b"), "postgres://h/d?x=a@b");
        assert_eq!(mask_password("not a url"), "not a url");
    }
}
