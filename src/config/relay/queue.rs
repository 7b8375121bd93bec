//! Where the relay keeps its queue: SQLite in `queue_dir` (the default, for one relay), or
//! PostgreSQL named by `queue` or `M365_MAILER_QUEUE_URL` (for several relays sharing it).
//!
//! The database password comes from the URL, `queue_password_file`, `queue_password_env`, or
//! libpq's password file (`PGPASSFILE`, else `~/.pgpass`), in that order; it is never printed.

use std::path::Path;

use toml::Spanned;

use super::{RawRelay, Reader, RelayOverrides, default_queue_dir, relative};
use crate::config::{ConfigError, Env, Origin};
use crate::queue::{Location, Target};
use crate::secret::Secret;

/// The environment variable that names a PostgreSQL queue.
const QUEUE_URL_ENV: &str = "M365_MAILER_QUEUE_URL";

/// The queue's location: `--queue-dir`, then `M365_MAILER_QUEUE_URL`, then the file's `queue`
/// or `queue_dir` (not both), then the default directory.
pub(super) fn location(
    r: &Reader<'_>,
    raw: &RawRelay,
    overrides: &RelayOverrides,
    env: Env<'_>,
    config_path: &Path,
) -> Result<Location, ConfigError> {
    if let Some(dir) = &overrides.queue_dir {
        return Ok(Location::Directory(dir.clone()));
    }
    if let (Some(_), Some(dir)) = (&raw.queue, &raw.queue_dir) {
        return Err(r.invalid(
            dir,
            "queue_dir",
            "set either queue (a PostgreSQL URL, for several relays) or queue_dir (SQLite, for one), not both",
        ));
    }
    let url = match (env(QUEUE_URL_ENV), &raw.queue) {
        (Some(url), _) => Some((url, Origin::Env(QUEUE_URL_ENV.to_owned()))),
        (None, Some(url)) => Some((url.get_ref().clone(), r.origin(url, "queue"))),
        (None, None) => None,
    };
    let Some((url, origin)) = url else {
        return Ok(Location::Directory(match &raw.queue_dir {
            Some(dir) => relative(config_path, dir.get_ref()),
            None => default_queue_dir(env),
        }));
    };
    let target = Target::parse(url.trim()).map_err(|e| ConfigError::invalid(&origin, e.to_string()))?;
    let password = if target.has_password() {
        None
    } else {
        password(r, raw, env, &target)?
    };
    Ok(Location::Postgres { target, password })
}

/// What `queue migrate` moves and where: the SQLite directory (`--queue-dir`, the file's
/// `queue_dir`, else the default) and the PostgreSQL queue (`to`, else the configured one).
pub(crate) fn migration(
    overrides: &RelayOverrides,
    to: Option<&str>,
    env: Env<'_>,
) -> Result<(std::path::PathBuf, Target, Option<Secret>), ConfigError> {
    let configured = super::queue_location(overrides, env)?;
    let origin = Origin::Flag("--to".into());
    let (target, password) = match (to, &configured) {
        (Some(url), _) => {
            let target = Target::parse(url.trim()).map_err(|e| ConfigError::invalid(&origin, e.to_string()))?;
            let password = if target.has_password() {
                None
            } else {
                pgpass(env, &target)
            };
            (target, password)
        }
        (None, Location::Postgres { target, password }) => (target.clone(), password.clone()),
        (None, Location::Directory(_)) => {
            return Err(ConfigError::invalid(
                &origin,
                "name the PostgreSQL queue: --to postgres://user@host/database, or queue = \"postgres://…\" in [relay]",
            ));
        }
    };
    let dir = match (&overrides.queue_dir, configured) {
        (Some(dir), _) => dir.clone(),
        (None, Location::Directory(dir)) => dir,
        (None, Location::Postgres { .. }) => default_queue_dir(env),
    };
    Ok((dir, target, password))
}

/// The password from `queue_password_file` or `queue_password_env` (not both), else from the
/// password file libpq reads.
fn password(r: &Reader<'_>, raw: &RawRelay, env: Env<'_>, target: &Target) -> Result<Option<Secret>, ConfigError> {
    let password = secret_from(
        r,
        env,
        ("queue_password_file", raw.queue_password_file.as_ref()),
        ("queue_password_env", raw.queue_password_env.as_ref()),
    )?;
    Ok(password.or_else(|| pgpass(env, target)))
}

/// A secret from a file (`file.0` the key, `file.1` the path) or an environment variable
/// (`var.1` its name), not both; `None` when neither is set.
pub(super) fn secret_from(
    r: &Reader<'_>,
    env: Env<'_>,
    file: (&str, Option<&Spanned<String>>),
    var: (&str, Option<&Spanned<String>>),
) -> Result<Option<Secret>, ConfigError> {
    let value = match (file.1, var.1) {
        (Some(_), Some(name)) => {
            return Err(r.invalid(name, var.0, format!("set only one of {} and {}", file.0, var.0)));
        }
        (Some(path), None) => {
            let text = std::fs::read_to_string(path.get_ref()).map_err(|e| {
                r.invalid(
                    path,
                    file.0,
                    format!("cannot read the file it names: {e} (it holds a path; the secret goes in that file)"),
                )
            })?;
            (path, file.0, text.trim_end_matches(['\r', '\n']).to_owned())
        }
        (None, Some(name)) => {
            let value = env(name.get_ref()).ok_or_else(|| {
                r.invalid(
                    name,
                    var.0,
                    "the environment variable it names is not set (it holds the variable's name, not the secret)",
                )
            })?;
            (name, var.0, value)
        }
        (None, None) => return Ok(None),
    };
    let (at, key, text) = value;
    if text.is_empty() {
        return Err(r.invalid(at, key, "the secret is empty"));
    }
    Ok(Some(Secret::new(text)))
}

/// The first line of libpq's password file that matches the target (`PGPASSFILE`, else
/// `~/.pgpass`); like libpq, a file others can read is not used.
fn pgpass(env: Env<'_>, target: &Target) -> Option<Secret> {
    let path = env("PGPASSFILE")
        .map(std::path::PathBuf::from)
        .or_else(|| env("HOME").map(|home| Path::new(&home).join(".pgpass")))?;
    if let Err(e) = crate::private::check(&path, false) {
        if path.exists() {
            tracing::warn!("the password file is not used: {e}");
        }
        return None;
    }
    let text = std::fs::read_to_string(&path).ok()?;
    let config = target.config(None);
    let host = match config.get_hosts().first()? {
        tokio_postgres::config::Host::Tcp(name) => name.clone(),
        tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432).to_string();
    let database = config.get_dbname().or(config.get_user()).unwrap_or_default();
    let wanted = [
        host.as_str(),
        port.as_str(),
        database,
        config.get_user().unwrap_or_default(),
    ];
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .map(pgpass_fields)
        .find(|fields| {
            fields.len() == 5
                && fields
                    .iter()
                    .zip(wanted)
                    .all(|(have, want)| have == "*" || have == want)
        })
        .map(|fields| Secret::new(fields[4].clone()))
}

/// The fields of a password file line: four `:`-separated ones, then the password, the rest
/// of the line (`\:` and `\\` escape, as libpq reads them).
fn pgpass_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == ':' && fields.len() < 5 {
            fields.push(String::new());
            continue;
        }
        let field = fields.last_mut().expect("one field at least");
        if c == '\\' {
            field.extend(chars.next());
        } else {
            field.push(c);
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Overrides;

    /// Where the queue is, with `relay` as the file's `[relay]` section and `env` as the
    /// environment.
    fn locate(dir: &Path, relay: &str, env: &[(&str, String)]) -> Result<Location, ConfigError> {
        let path = dir.join("config.toml");
        std::fs::write(&path, format!("[relay]\n{relay}")).unwrap();
        let overrides = RelayOverrides {
            config: Overrides {
                config: Some(path),
                ..Overrides::default()
            },
            ..RelayOverrides::default()
        };
        super::super::queue_location(&overrides, &|name| {
            env.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone())
        })
    }

    fn password_of(location: &Location) -> Option<&str> {
        match location {
            Location::Postgres { password, .. } => password.as_ref().map(Secret::expose),
            Location::Directory(_) => None,
        }
    }

    #[test]
    fn a_postgres_url_from_the_file_or_the_environment_with_its_password() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("pg-password");
        std::fs::write(&secret, "s3cret\n").unwrap();
        let relay = format!(
            "queue = \"postgres://relay@db.contoso.com/mail\"\nqueue_password_file = \"{}\"\n",
            secret.display()
        );
        let found = locate(dir.path(), &relay, &[]).unwrap();
        assert_eq!(found.to_string(), "postgres://relay@db.contoso.com/mail");
        assert_eq!(password_of(&found), Some("s3cret"));
        // The environment wins over the file, and a password in the URL over the file's.
        let env = [(QUEUE_URL_ENV, "postgres://relay:inline@db2.contoso.com/mail".to_owned())];
        let found = locate(dir.path(), &relay, &env).unwrap();
        assert_eq!(found.to_string(), "postgres://relay:***@db2.contoso.com/mail");
        assert_eq!(password_of(&found), None);
        let by_name = "queue = \"postgres://relay@db.contoso.com/mail\"\nqueue_password_env = \"PG_PW\"\n";
        let found = locate(dir.path(), by_name, &[("PG_PW", "from-env".to_owned())]).unwrap();
        assert_eq!(password_of(&found), Some("from-env"));
        assert_eq!(
            locate(dir.path(), "queue_dir = \"spool\"\n", &[]).unwrap(),
            Location::Directory(dir.path().join("spool"))
        );
    }

    #[test]
    fn mistakes_name_the_setting_and_never_show_the_password() {
        let dir = tempfile::tempdir().unwrap();
        for (relay, env, says) in [
            (
                "queue = \"postgres://u@db/q\"\nqueue_dir = \"spool\"\n",
                None,
                "config.toml:3: relay.queue_dir: set either queue",
            ),
            (
                "queue = \"postgres://u:hunter2@db.contoso.com/q?sslmode=require\"\n",
                None,
                "relay.queue: queue URL postgres://u:***@db.contoso.com/q?sslmode=require: sslmode=require",
            ),
            (
                "",
                Some("mysql://u:hunter2@db/q"),
                "environment variable M365_MAILER_QUEUE_URL",
            ),
            (
                "queue = \"postgres://u@db/q\"\nqueue_password_env = \"NOT_SET\"\n",
                None,
                "relay.queue_password_env: the environment variable it names is not set",
            ),
        ] {
            let env: Vec<(&str, String)> = env.map(|url| (QUEUE_URL_ENV, url.to_owned())).into_iter().collect();
            let e = locate(dir.path(), relay, &env).unwrap_err().to_string();
            assert!(e.contains(says), "{relay:?}: {e}");
            assert!(!e.contains("hunter2"), "{e}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn the_password_file_libpq_reads_is_used_when_it_is_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let pgpass = dir.path().join("pgpass");
        std::fs::write(
            &pgpass,
            "# comment\nother:5432:*:relay:no\ndb.contoso.com:*:mail:relay:yes\n",
        )
        .unwrap();
        std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).unwrap();
        let env = [("PGPASSFILE", pgpass.display().to_string())];
        let relay = "queue = \"postgres://relay@db.contoso.com/mail\"\n";
        assert_eq!(password_of(&locate(dir.path(), relay, &env).unwrap()), Some("yes"));
        std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(password_of(&locate(dir.path(), relay, &env).unwrap()), None);
    }

    #[test]
    fn password_file_lines_are_split_as_libpq_splits_them() {
        assert_eq!(
            pgpass_fields("db.contoso.com:5432:mail:relay:s3:c\\:r\\\\et"),
            ["db.contoso.com", "5432", "mail", "relay", "s3:c:r\\et"]
        );
        assert_eq!(pgpass_fields("*:*:*:relay:pw"), ["*", "*", "*", "relay", "pw"]);
        assert_eq!(pgpass_fields("short:line").len(), 2);
    }
}
