//! Who may relay: users with their password hashes, allowed networks (never public address
//! space unless acknowledged), the networks where AUTH may go in the clear, and the accounts
//! each rule sends as.

use ipnet::IpNet;
use toml::Spanned;

use super::{RawAllow, RawRelay, RawUser, Reader, check_exposure};
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
    let mut accounts = Accounts {
        r,
        sources,
        default,
        named: vec![default.account.clone()],
    };
    let users = users(r, &raw.users, &mut accounts)?;
    let networks = match &raw.allow {
        Some(rules) => networks(r, rules, &mut accounts)?,
        // The default: this machine only.
        None => policy::loopback()
            .into_iter()
            .map(|net| (net, network_rule(net, &default.account.name, false)))
            .collect(),
    };
    let policy = Policy {
        users,
        networks,
        plaintext_auth: plaintext_auth(r, raw.plaintext_auth_networks.as_ref())?,
        accounts: accounts
            .named
            .iter()
            .map(|a| {
                let service = a.service.value;
                let senders = Senders {
                    internal_domains: a.internal_domains.clone(),
                    max_recipients: service.max_recipients_per_message(),
                    max_message_size: service.max_message_size(),
                    ..Senders::new(a.mailbox.value.clone(), a.allowed_senders.clone())
                };
                (a.name.clone(), senders)
            })
            .collect(),
    };
    Ok((policy, accounts.named))
}

/// The accounts the rules name, each built once from the configuration's one reading.
struct Accounts<'a> {
    r: &'a Reader<'a>,
    sources: &'a Sources<'a>,
    default: &'a Config,
    named: Vec<Account>,
}

impl Accounts<'_> {
    /// The account a rule names (the default one when it names none), built on first use.
    fn name(&mut self, name: Option<&Spanned<String>>, key: &str) -> Result<String, ConfigError> {
        let Some(name) = name else {
            return Ok(self.default.account.name.clone());
        };
        let wanted = name.get_ref().trim().to_owned();
        if self.named.iter().any(|a| a.name == wanted) {
            return Ok(wanted);
        }
        let known = &self.default.account_names;
        if !known.contains(&wanted) {
            return Err(self.r.invalid(
                name,
                key,
                format!(
                    "no account `{wanted}` in the config file (accounts: {})",
                    known.join(", ")
                ),
            ));
        }
        // Its warnings are the doctor's to report, account by account.
        self.named.push(self.sources.account(&wanted, &mut Vec::new())?);
        Ok(wanted)
    }
}

fn users(r: &Reader<'_>, raw: &[RawUser], accounts: &mut Accounts<'_>) -> Result<Vec<User>, ConfigError> {
    let mut users: Vec<User> = Vec::new();
    for (i, u) in raw.iter().enumerate() {
        let key = format!("users[{i}]");
        let name = u.name.get_ref().trim().to_owned();
        if name.is_empty() || name.contains(|c: char| c.is_control()) {
            return Err(r.invalid(
                &u.name,
                &format!("{key}.name"),
                "a user needs a name without control characters",
            ));
        }
        if users.iter().any(|x| x.name.eq_ignore_ascii_case(&name)) {
            return Err(r.invalid(
                &u.name,
                &format!("{key}.name"),
                format!("user `{name}` is listed twice"),
            ));
        }
        let hash = u.password_hash.get_ref().trim();
        policy::check_hash(hash).map_err(|e| {
            r.invalid(
                &u.password_hash,
                &format!("{key}.password_hash"),
                format!("{e}; make one with `m365-mailer relay hash-password`"),
            )
        })?;
        let account = accounts.name(u.account.as_ref(), &format!("{key}.account"))?;
        users.push(User {
            rule: Rule {
                name: format!("user {name}"),
                account,
                rewrite_sender: u.rewrite_sender,
            },
            name,
            password_hash: hash.to_owned(),
        });
    }
    Ok(users)
}

fn networks(
    r: &Reader<'_>,
    rules: &[RawAllow],
    accounts: &mut Accounts<'_>,
) -> Result<Vec<(IpNet, Rule)>, ConfigError> {
    let mut networks = Vec::new();
    for (i, a) in rules.iter().enumerate() {
        let key = format!("allow[{i}]");
        let nets = r.networks(&a.networks, &format!("{key}.networks"))?;
        if nets.is_empty() {
            return Err(r.invalid(&a.networks, &format!("{key}.networks"), "list at least one network"));
        }
        check_exposure(&nets, a.public).map_err(|e| r.invalid(&a.networks, &format!("{key}.networks"), e))?;
        let account = accounts.name(a.account.as_ref(), &format!("{key}.account"))?;
        networks.extend(
            nets.into_iter()
                .map(|net| (net, network_rule(net, &account, a.rewrite_sender))),
        );
    }
    Ok(networks)
}

fn network_rule(net: IpNet, account: &str, rewrite_sender: bool) -> Rule {
    Rule {
        name: format!("network {net}"),
        account: account.to_owned(),
        rewrite_sender,
    }
}

/// Where AUTH may go without TLS: loopback unless configured, and never a public address.
fn plaintext_auth(r: &Reader<'_>, configured: Option<&Spanned<Vec<String>>>) -> Result<Vec<IpNet>, ConfigError> {
    let Some(v) = configured else {
        return Ok(policy::loopback());
    };
    let nets = r.networks(v, "plaintext_auth_networks")?;
    // Passwords in the clear over the Internet: never.
    if let Some(public) = nets.iter().find(|n| policy::exposure(n) != Exposure::Private) {
        return Err(r.invalid(
            v,
            "plaintext_auth_networks",
            format!("`{public}` includes public addresses: passwords would cross the Internet in the clear; list only local networks"),
        ));
    }
    Ok(nets)
}
