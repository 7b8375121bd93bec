//! Who may relay: users with their password hashes, allowed networks (never public address
//! space unless acknowledged), the networks where AUTH may go in the clear, and the accounts
//! each rule sends as.

use toml::Spanned;

use super::{RawRelay, Reader, check_exposure};
use crate::account::Account;
use crate::config::{Config, ConfigError, Sources};
use crate::relay::policy::{self, Exposure, Policy, Rule, Senders, User};

/// Users, allowed networks, plaintext AUTH networks, and the accounts they name (the default
/// account first).
pub(super) fn policy(
    r: &Reader<'_>,
    raw: &RawRelay,
    sources: &Sources<'_>,
    default: &Config,
) -> Result<(Policy, Vec<Account>), ConfigError> {
    let mut accounts = vec![default.account.clone()];
    let mut account_for = |name: Option<&Spanned<String>>, key: &str| -> Result<String, ConfigError> {
        let Some(name) = name else {
            return Ok(default.account.name.clone());
        };
        let wanted = name.get_ref().trim().to_owned();
        if accounts.iter().any(|a| a.name == wanted) {
            return Ok(wanted);
        }
        if !default.account_names.contains(&wanted) {
            return Err(r.invalid(
                name,
                key,
                format!(
                    "no account `{wanted}` in the config file (accounts: {})",
                    default.account_names.join(", ")
                ),
            ));
        }
        // Its warnings are the doctor's to report, account by account.
        accounts.push(sources.account(&wanted, &mut Vec::new())?);
        Ok(wanted)
    };

    let mut users = Vec::new();
    for (i, u) in raw.users.iter().enumerate() {
        let key = format!("users[{i}]");
        let name = u.name.get_ref().trim().to_owned();
        if name.is_empty() || name.contains(|c: char| c.is_control()) {
            return Err(r.invalid(
                &u.name,
                &format!("{key}.name"),
                "a user needs a name without control characters",
            ));
        }
        if users.iter().any(|x: &User| x.name.eq_ignore_ascii_case(&name)) {
            return Err(r.invalid(
                &u.name,
                &format!("{key}.name"),
                format!("user `{name}` is listed twice"),
            ));
        }
        policy::check_hash(u.password_hash.get_ref().trim()).map_err(|e| {
            r.invalid(
                &u.password_hash,
                &format!("{key}.password_hash"),
                format!("{e}; make one with `m365-mailer relay hash-password`"),
            )
        })?;
        let account = account_for(u.account.as_ref(), &format!("{key}.account"))?;
        users.push(User {
            rule: Rule {
                name: format!("user {name}"),
                account,
                rewrite_sender: u.rewrite_sender,
            },
            name,
            password_hash: u.password_hash.get_ref().trim().to_owned(),
        });
    }

    let mut networks = Vec::new();
    match &raw.allow {
        // The default: this machine only.
        None => {
            let account = default.account.name.clone();
            for net in policy::loopback() {
                networks.push((
                    net,
                    Rule {
                        name: format!("network {net}"),
                        account: account.clone(),
                        rewrite_sender: false,
                    },
                ));
            }
        }
        Some(rules) => {
            for (i, a) in rules.iter().enumerate() {
                let key = format!("allow[{i}]");
                let nets = r.networks(&a.networks, &format!("{key}.networks"))?;
                if nets.is_empty() {
                    return Err(r.invalid(&a.networks, &format!("{key}.networks"), "list at least one network"));
                }
                check_exposure(&nets, a.public).map_err(|e| r.invalid(&a.networks, &format!("{key}.networks"), e))?;
                let account = account_for(a.account.as_ref(), &format!("{key}.account"))?;
                for net in nets {
                    networks.push((
                        net,
                        Rule {
                            name: format!("network {net}"),
                            account: account.clone(),
                            rewrite_sender: a.rewrite_sender,
                        },
                    ));
                }
            }
        }
    }
    let plaintext_auth = match &raw.plaintext_auth_networks {
        Some(v) => {
            let nets = r.networks(v, "plaintext_auth_networks")?;
            // Passwords in the clear over the Internet: never.
            if let Some(public) = nets.iter().find(|n| policy::exposure(n) != Exposure::Private) {
                return Err(r.invalid(
                    v,
                    "plaintext_auth_networks",
                    format!("`{public}` includes public addresses: passwords would cross the Internet in the clear; list only local networks"),
                ));
            }
            nets
        }
        None => policy::loopback(),
    };

    let policy = Policy {
        users,
        networks,
        plaintext_auth,
        accounts: accounts
            .iter()
            .map(|a| {
                (
                    a.name.clone(),
                    Senders {
                        mailbox: a.mailbox.value.clone(),
                        allowed: a.allowed_senders.clone(),
                    },
                )
            })
            .collect(),
    };
    Ok((policy, accounts))
}
