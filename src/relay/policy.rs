//! Who may relay, and as whom (pure).
//!
//! A client relays either as a user (name and password, AUTH PLAIN or LOGIN) or because its
//! address is in an allowed network. Each user and network has a rule: the account (mailbox and
//! credentials) that delivers its mail, and whether the sender is rewritten to that mailbox.
//! Anyone else is refused: the relay is never open.

use std::net::IpAddr;

use argon2::password_hash::PasswordHasher as _;
use argon2::password_hash::phc::PasswordHash;
use ipnet::IpNet;

/// The account a client's mail goes out through, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rule {
    /// Who this rule is for, for logs and replies: `user scanner`, `network 10.1.2.0/24`.
    pub(crate) name: String,
    /// The account (a name of the config file's accounts).
    pub(crate) account: String,
    /// Replace the envelope sender and the From header with the account's mailbox.
    pub(crate) rewrite_sender: bool,
}

/// A relay user. `Debug` leaves the hash out: it can be attacked offline.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct User {
    /// Login name.
    pub(crate) name: String,
    /// Argon2 PHC string (`m365-mailer relay hash-password`).
    pub(crate) password_hash: String,
    /// Where the user's mail goes.
    pub(crate) rule: Rule,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("name", &self.name)
            .field("rule", &self.rule)
            .finish_non_exhaustive()
    }
}

/// What an account may send: as whom, to whom, and how much at once (its service's limits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Senders {
    /// The mailbox that authenticates.
    pub(crate) mailbox: String,
    /// Addresses it has SendAs on.
    pub(crate) allowed: Vec<String>,
    /// HVE: the only domains it delivers to (empty: any).
    pub(crate) internal_domains: Vec<String>,
    /// Recipients per message its service takes.
    pub(crate) max_recipients: usize,
    /// The largest message its service takes.
    pub(crate) max_message_size: usize,
}

impl Senders {
    /// An account that may send as `mailbox` and `allowed`, under Exchange's limits.
    pub(crate) fn new(mailbox: impl Into<String>, allowed: Vec<String>) -> Self {
        Self {
            mailbox: mailbox.into(),
            allowed,
            internal_domains: Vec::new(),
            max_recipients: usize::MAX,
            max_message_size: usize::MAX,
        }
    }
}

impl Senders {
    /// Whether the account may send as `address`.
    pub(crate) fn allows(&self, address: &str) -> bool {
        address.eq_ignore_ascii_case(&self.mailbox) || self.allowed.iter().any(|a| a.eq_ignore_ascii_case(address))
    }
}

/// The whole policy.
#[derive(Debug, Clone, Default)]
pub(crate) struct Policy {
    /// Users, by lower-case name.
    pub(crate) users: Vec<User>,
    /// Allowed networks, first match wins.
    pub(crate) networks: Vec<(IpNet, Rule)>,
    /// Where AUTH without TLS is allowed (loopback by default).
    pub(crate) plaintext_auth: Vec<IpNet>,
    /// Each account's senders, by account name.
    pub(crate) accounts: Vec<(String, Senders)>,
}

/// Loopback networks.
pub(crate) fn loopback() -> Vec<IpNet> {
    vec!["127.0.0.0/8".parse().expect("valid"), "::1/128".parse().expect("valid")]
}

/// Networks that are not the public Internet: loopback, private (RFC 1918), shared (RFC 6598,
/// carrier-grade NAT), link-local, and IPv6 unique local (RFC 4193) and link-local.
const NOT_PUBLIC: [&str; 9] = [
    "127.0.0.0/8",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "169.254.0.0/16",
    "::1/128",
    "fc00::/7",
    "fe80::/10",
];

/// The largest public network a rule may allow once acknowledged: a /24 (IPv4) or a /56 (IPv6),
/// an office's own public addresses.
pub(crate) const LARGEST_PUBLIC: (u8, u8) = (24, 56);

/// Why an allowed network cannot be taken as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exposure {
    /// It lies within loopback, private or link-local space.
    Private,
    /// It includes public addresses, within the acknowledged size.
    SmallPublic,
    /// It includes more public addresses than any office has: the relay would be open.
    LargePublic,
}

/// How much of the public Internet `net` covers.
pub(crate) fn exposure(net: &IpNet) -> Exposure {
    let net = match net {
        // An IPv4-mapped IPv6 network is the IPv4 one.
        IpNet::V6(v6) if v6.network().to_ipv4_mapped().is_some() && v6.prefix_len() >= 96 => IpNet::new(
            IpAddr::V4(v6.network().to_ipv4_mapped().expect("checked")),
            v6.prefix_len() - 96,
        )
        .unwrap_or(*net),
        other => *other,
    };
    if NOT_PUBLIC
        .iter()
        .any(|p| p.parse::<IpNet>().is_ok_and(|private| private.contains(&net)))
    {
        return Exposure::Private;
    }
    let largest = match net {
        IpNet::V4(_) => LARGEST_PUBLIC.0,
        IpNet::V6(_) => LARGEST_PUBLIC.1,
    };
    if net.prefix_len() >= largest {
        Exposure::SmallPublic
    } else {
        Exposure::LargePublic
    }
}

/// A PHC string to verify against when the user does not exist, so that an unknown name takes
/// as long to refuse as a wrong password (parameters as `hash_password` uses).
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$ft6mU8dE3Hp+9a2R/mYgRyYb3Iu0+eXDt0c2l9gqv1Q";

impl Policy {
    /// The rule of the first allowed network containing `ip`.
    pub(crate) fn network_rule(&self, ip: IpAddr) -> Option<&Rule> {
        let ip = ip.to_canonical();
        self.networks
            .iter()
            .find(|(net, _)| net.contains(&ip))
            .map(|(_, rule)| rule)
    }

    /// Whether AUTH may be used without TLS from `ip`.
    pub(crate) fn plaintext_auth_allowed(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.plaintext_auth.iter().any(|net| net.contains(&ip))
    }

    /// Whether any user is configured (AUTH is offered only then).
    pub(crate) fn has_users(&self) -> bool {
        !self.users.is_empty()
    }

    /// The user called `name` (case-insensitive).
    pub(crate) fn user(&self, name: &str) -> Option<&User> {
        self.users.iter().find(|u| u.name.eq_ignore_ascii_case(name))
    }

    /// The senders of `account`.
    pub(crate) fn senders(&self, account: &str) -> Option<&Senders> {
        self.accounts.iter().find(|(name, _)| name == account).map(|(_, s)| s)
    }

    /// Checks `password` for `name`: the user's rule when it matches. Slow on purpose (Argon2):
    /// run it off the async threads.
    pub(crate) fn verify(&self, name: &str, password: &[u8]) -> Option<Rule> {
        let user = self.user(name);
        let hash = user.map_or(DUMMY_HASH, |u| u.password_hash.as_str());
        let ok = verify_password(hash, password);
        match user {
            Some(user) if ok => Some(user.rule.clone()),
            _ => None,
        }
    }
}

/// Hashes a password for the config file (Argon2id, OWASP's parameters, random salt).
pub(crate) fn hash_password(password: &[u8]) -> String {
    argon2::Argon2::default()
        .hash_password(password)
        .expect("Argon2 with default parameters hashes any password")
        .to_string()
}

/// The most memory a hash may ask each check for (256 MiB): a relay checks one per core.
const MAX_MEMORY_KIB: u32 = 256 * 1024;

/// Whether `hash` is a PHC string this relay can verify.
pub(crate) fn check_hash(hash: &str) -> Result<(), String> {
    let parsed = PasswordHash::new(hash).map_err(|e| format!("not a PHC password hash ({e})"))?;
    if !parsed.algorithm.as_str().starts_with("argon2") {
        return Err(format!(
            "hash algorithm `{}` is not Argon2: make one with `m365-mailer relay hash-password`",
            parsed.algorithm
        ));
    }
    let params = argon2::Params::try_from(&parsed).map_err(|e| format!("unusable Argon2 parameters ({e})"))?;
    if params.m_cost() > MAX_MEMORY_KIB {
        return Err(format!(
            "the hash asks {} MiB per check, more than the relay allows ({} MiB)",
            params.m_cost() / 1024,
            MAX_MEMORY_KIB / 1024
        ));
    }
    Ok(())
}

thread_local! {
    /// Argon2's working memory, kept by each password-check thread and wiped after each check.
    /// Allocated anew for every check (as `Argon2::verify_password` does), glibc never reuses
    /// these large 64-byte-aligned blocks: every check would keep another 19 MiB resident.
    static MEMORY: std::cell::RefCell<Vec<argon2::Block>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `Argon2::verify_password` with working memory that is reused (see [`MEMORY`]); the output is
/// compared in constant time (`phc::Output`'s equality).
fn verify_password(hash: &str, password: &[u8]) -> bool {
    use argon2::password_hash::phc::Output;
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(params)) = (
        argon2::Algorithm::try_from(parsed.algorithm.as_str()),
        argon2::Params::try_from(&parsed),
    ) else {
        return false;
    };
    let version = match parsed.version.map(argon2::Version::try_from) {
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
        None => argon2::Version::default(),
    };
    if params.m_cost() > MAX_MEMORY_KIB {
        return false;
    }
    let blocks = params.block_count();
    let argon = argon2::Argon2::new(algorithm, version, params);
    let mut out = vec![0u8; expected.len()];
    let hashed = MEMORY.with_borrow_mut(|memory| {
        memory.resize(blocks, argon2::Block::default());
        let hashed = argon.hash_password_into_with_memory(password, salt, &mut out, &mut memory[..blocks]);
        memory.iter_mut().for_each(zeroize::Zeroize::zeroize);
        hashed
    });
    hashed.is_ok() && Output::new(&out).is_ok_and(|computed| computed == *expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(name: &str, account: &str) -> Rule {
        Rule {
            name: name.into(),
            account: account.into(),
            rewrite_sender: false,
        }
    }

    #[test]
    fn networks_first_match_and_mapped_addresses() {
        let policy = Policy {
            networks: vec![
                ("192.168.10.0/24".parse().unwrap(), rule("printers", "main")),
                ("192.168.0.0/16".parse().unwrap(), rule("office", "other")),
            ],
            plaintext_auth: loopback(),
            ..Policy::default()
        };
        assert_eq!(
            policy.network_rule("192.168.10.9".parse().unwrap()).unwrap().name,
            "printers"
        );
        assert_eq!(
            policy.network_rule("::ffff:192.168.3.1".parse().unwrap()).unwrap().name,
            "office"
        );
        assert!(policy.network_rule("127.0.0.1".parse().unwrap()).is_none());
        assert!(policy.plaintext_auth_allowed("::1".parse().unwrap()));
        assert!(policy.plaintext_auth_allowed("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!policy.plaintext_auth_allowed("192.168.10.9".parse().unwrap()));
    }

    #[test]
    fn what_counts_as_public() {
        let e = |net: &str| exposure(&net.parse().unwrap());
        for private in [
            "10.1.2.0/24",
            "192.168.0.0/16",
            "172.20.0.0/16",
            "127.0.0.1/32",
            "fd00:1::/64",
            "::1/128",
            "::ffff:10.0.0.0/104",
        ] {
            assert_eq!(e(private), Exposure::Private, "{private}");
        }
        for small in [
            "203.0.113.0/24",
            "203.0.113.7/32",
            "2001:db8:1:100::/56",
            "::ffff:203.0.113.0/120",
        ] {
            assert_eq!(e(small), Exposure::SmallPublic, "{small}");
        }
        // Halves of the Internet, and networks that spill over a private range.
        for large in [
            "0.0.0.0/1",
            "128.0.0.0/1",
            "10.0.0.0/7",
            "203.0.112.0/23",
            "2000::/3",
            "::/1",
            "::ffff:0.0.0.0/96",
        ] {
            assert_eq!(e(large), Exposure::LargePublic, "{large}");
        }
    }

    #[test]
    fn passwords() {
        let hash = hash_password(b"correct horse");
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        check_hash(&hash).unwrap();
        check_hash(DUMMY_HASH).unwrap();
        assert!(check_hash("$2y$10$abcdefghijklmnopqrstuuJ0nTjv4aUOHJZ3iHk5y3ZxlqGcfdi").is_err());
        assert!(check_hash("hunter2").is_err());
        let greedy = hash.replace("m=19456", "m=1048576");
        assert!(check_hash(&greedy).unwrap_err().contains("1024 MiB per check"));
        let policy = Policy {
            users: vec![User {
                name: "Scanner".into(),
                password_hash: hash,
                rule: rule("user scanner", "main"),
            }],
            ..Policy::default()
        };
        assert_eq!(policy.verify("scanner", b"correct horse").unwrap().account, "main");
        assert!(policy.verify("scanner", b"wrong").is_none());
        assert!(policy.verify("nobody", b"correct horse").is_none());
        // The same answers as the argon2 crate's own verification, for other parameters too.
        for hash in [
            policy.users[0].password_hash.clone(),
            "$argon2i$v=19$m=4096,t=3,p=1$c29tZXNhbHRzb21lc2FsdA$2JFb1QLjyaBjxpIZ7AALGWcdjrEdvvNHh0YeS/IcKYo"
                .to_owned(),
        ] {
            let parsed = PasswordHash::new(&hash).unwrap();
            for password in [&b"correct horse"[..], b"password", b""] {
                use argon2::password_hash::PasswordVerifier as _;
                let theirs = argon2::Argon2::default().verify_password(password, &parsed).is_ok();
                assert_eq!(verify_password(&hash, password), theirs, "{hash}");
            }
        }
    }

    #[test]
    fn senders() {
        let s = Senders::new("relay@contoso.com", vec!["alerts@contoso.com".into()]);
        assert!(s.allows("Relay@Contoso.com") && s.allows("alerts@contoso.com"));
        assert!(!s.allows("ceo@contoso.com"));
    }
}
