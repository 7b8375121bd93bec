//! The `[relay]` section against files, the environment and flags.

use super::*;
use crate::queue::Backoff;
use crate::relay::limits::SendLimits;
use crate::relay::settings::{Listener, ListenerTls, ServerCertificate};

const ACCOUNT: &str = r#"
[accounts.main]
tenant = "contoso.onmicrosoft.com"
client_id = "0b7e2f4c-5d6a-4e8b-9c1d-3f2a4b6c8d0e"
client_secret = "~secret"
mailbox = "relay@contoso.com"
allowed_senders = ["alerts@contoso.com"]

[accounts.ops]
tenant = "contoso.onmicrosoft.com"
client_id = "0b7e2f4c-5d6a-4e8b-9c1d-3f2a4b6c8d0e"
client_secret = "~secret"
mailbox = "ops@contoso.com"
"#;

fn resolve(dir: &Path, relay: &str) -> Result<RelayConfig, ConfigError> {
    let path = dir.join("config.toml");
    std::fs::write(&path, format!("default_account = \"main\"\n{ACCOUNT}\n{relay}")).unwrap();
    RelayConfig::resolve_with(
        &RelayOverrides {
            config: Overrides {
                config: Some(path),
                ..Overrides::default()
            },
            ..RelayOverrides::default()
        },
        &|name| (name == "HOME").then(|| "/home/u".to_owned()),
    )
}

#[test]
fn defaults_listen_on_loopback_and_allow_only_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let c = resolve(dir.path(), "").unwrap();
    assert_eq!(
        c.listeners,
        [Listener {
            address: "127.0.0.1:2525".parse().unwrap(),
            tls: ListenerTls::None
        }]
    );
    assert_eq!(c.policy.networks.len(), 2);
    assert!(c.policy.network_rule("127.0.0.1".parse().unwrap()).is_some());
    assert!(c.policy.network_rule("::1".parse().unwrap()).is_some());
    assert!(c.policy.network_rule("192.168.1.1".parse().unwrap()).is_none());
    assert!(c.policy.users.is_empty());
    assert_eq!(
        c.queue,
        Location::Directory(PathBuf::from("/home/u/.local/state/m365-mailer/queue"))
    );
    assert_eq!(c.delivery.limits, SendLimits::default());
    assert_eq!(c.delivery.backoff, Backoff::default());
    assert_eq!(c.delivery.connections_per_account, 3);
    assert_eq!(c.session.max_message_size, 35 * 1024 * 1024);
    assert_eq!(c.certificate, ServerCertificate::SelfSigned);
}

#[test]
fn a_full_section() {
    let dir = tempfile::tempdir().unwrap();
    let hash = policy::hash_password(b"pw");
    let c = resolve(
        dir.path(),
        &format!(
            r#"
[relay]
hostname = "relay.contoso.local"
queue_dir = "spool"
certificate = "relay.crt"
private_key = "relay.key"
max_message_size = 10485760
command_timeout = "2m"

[[relay.listen]]
address = "[::]:2525"
tls = "starttls"

[[relay.listen]]
address = "0.0.0.0:465"
tls = "implicit"

[[relay.users]]
name = "scanner"
password_hash = "{hash}"
account = "ops"
rewrite_sender = true

[[relay.allow]]
networks = ["192.168.10.0/24", "10.0.0.7"]

[[relay.allow]]
networks = ["203.0.113.0/24"]
public = true

[relay.delivery]
messages_per_minute = 20
rate_window = "1s"
retry_initial = "200ms"
dsn_to = "postmaster@contoso.com"
"#
        ),
    )
    .unwrap();
    assert_eq!(c.listeners.len(), 2);
    assert_eq!(c.listeners[1].tls, ListenerTls::Implicit);
    assert_eq!(c.queue, Location::Directory(dir.path().join("spool")));
    assert_eq!(c.session.hostname, "relay.contoso.local");
    assert_eq!(c.inbound.command_timeout, Duration::from_secs(120));
    let user = c.policy.user("scanner").unwrap();
    assert_eq!((user.rule.account.as_str(), user.rule.rewrite_sender), ("ops", true));
    let printer = c.policy.network_rule("10.0.0.7".parse().unwrap()).unwrap();
    assert_eq!(printer.account, "main");
    assert!(
        c.policy.network_rule("203.0.113.9".parse().unwrap()).is_some(),
        "an acknowledged public /24"
    );
    assert!(
        c.policy.network_rule("127.0.0.1".parse().unwrap()).is_none(),
        "allow replaces the default"
    );
    assert_eq!(
        c.accounts.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(),
        ["main", "ops"]
    );
    assert!(c.policy.senders("main").unwrap().allows("alerts@contoso.com"));
    assert_eq!(c.delivery.limits.messages, 20);
    assert_eq!(c.delivery.limits.window, Duration::from_secs(1));
    assert_eq!(c.delivery.backoff.initial, Duration::from_millis(200));
    assert_eq!(c.delivery.dsn_to.as_deref(), Some("postmaster@contoso.com"));
}

#[test]
fn errors_name_the_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let lines_before = format!("default_account = \"main\"\n{ACCOUNT}\n").lines().count();
    let cases = [
        (
            "[relay]\nmax_recipients = 0\n",
            2,
            "relay.max_recipients: must be at least 1",
        ),
        (
            "[relay]\ndata_timeout = \"soon\"\n",
            2,
            "relay.data_timeout: `soon` is not a duration",
        ),
        ("[[relay.allow]]\nnetworks = [\"0.0.0.0/0\"]\n", 2, "open relay"),
        // Two halves are the whole Internet too.
        (
            "[[relay.allow]]\nnetworks = [\"0.0.0.0/1\", \"128.0.0.0/1\"]\npublic = true\n",
            2,
            "`0.0.0.0/1` covers more of the public Internet than a /24",
        ),
        (
            "[[relay.allow]]\nnetworks = [\"203.0.113.0/24\"]\n",
            2,
            "add `public = true` to this rule",
        ),
        (
            "[relay]\nplaintext_auth_networks = [\"203.0.113.7\"]\n",
            2,
            "passwords would cross the Internet in the clear",
        ),
        (
            "[[relay.allow]]\nnetworks = [\"printer\"]\n",
            2,
            "`printer` is not an address or network",
        ),
        (
            "[[relay.allow]]\nnetworks = [\"10.0.0.0/8\"]\naccount = \"nope\"\n",
            3,
            "no account `nope`",
        ),
        (
            "[[relay.users]]\nname = \"u\"\npassword_hash = \"hunter2\"\n",
            3,
            "relay.users[0].password_hash: not a PHC password hash",
        ),
        (
            "[[relay.listen]]\naddress = \"localhost\"\n",
            2,
            "`localhost` is not an address and port",
        ),
        (
            "[[relay.listen]]\naddress = \"127.0.0.1:25\"\ntls = \"yes\"\n",
            3,
            "`yes` is not a TLS mode",
        ),
        (
            "[relay]\ncertificate = \"c.pem\"\n",
            2,
            "relay.certificate: set private_key too",
        ),
        (
            "[relay.delivery]\ndsn_to = \"postmaster\"\n",
            2,
            "relay.delivery.dsn_to",
        ),
        (
            "[relay]\nmax_recipients = 600\n\n[relay.delivery]\nrecipients_per_day = 500\n",
            2,
            "relay.max_recipients: max_recipients (600) is more than delivery.recipients_per_day (500)",
        ),
    ];
    for (relay, line, expected) in cases {
        let err = resolve(dir.path(), relay).unwrap_err().to_string();
        let at = format!("config.toml:{}: ", lines_before + line);
        assert!(err.contains(&at) && err.contains(expected), "{relay:?}: {err}");
    }
    let err = resolve(dir.path(), "[relay]\nport = 25\n").unwrap_err().to_string();
    assert!(err.contains("unknown field `port`"), "{err}");
}

#[test]
fn each_account_has_its_services_limits_under_the_configured_ones() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    let accounts = r#"
default_account = "main"
[accounts.main]
tenant = "contoso.onmicrosoft.com"
client_id = "0b7e2f4c-5d6a-4e8b-9c1d-3f2a4b6c8d0e"
client_secret = "~secret"
mailbox = "relay@contoso.com"

[accounts.bulk]
service = "hve"
internal_domains = ["contoso.com"]
tenant = "contoso.onmicrosoft.com"
client_id = "0b7e2f4c-5d6a-4e8b-9c1d-3f2a4b6c8d0e"
client_secret = "~secret"
mailbox = "hve@contoso.com"

[accounts.outside]
service = "acs"
smtp_username = "contoso-smtp"
tenant = "contoso.onmicrosoft.com"
client_id = "0b7e2f4c-5d6a-4e8b-9c1d-3f2a4b6c8d0e"
client_secret = "~secret"
mailbox = "donotreply@notify.contoso.com"
"#;
    let resolve = |relay: &str| {
        std::fs::write(&path, format!("{accounts}\n{relay}")).unwrap();
        RelayConfig::resolve_with(
            &RelayOverrides {
                config: Overrides {
                    config: Some(path.clone()),
                    ..Overrides::default()
                },
                ..RelayOverrides::default()
            },
            &|name| (name == "HOME").then(|| "/home/u".to_owned()),
        )
    };
    let rules = r#"
[relay]
[[relay.allow]]
networks = ["10.0.1.0/24"]
[[relay.allow]]
networks = ["10.0.2.0/24"]
account = "bulk"
[[relay.allow]]
networks = ["10.0.3.0/24"]
account = "outside"
"#;
    let c = resolve(rules).unwrap();
    let limits = |name: &str| c.delivery.for_account(name).limits;
    assert_eq!(limits("main"), SendLimits::default());
    let hve = limits("bulk");
    assert_eq!(
        (hve.messages, hve.hourly, hve.recipients),
        (u32::MAX, u32::MAX, 100_000)
    );
    let acs = limits("outside");
    assert_eq!((acs.messages, acs.hourly, acs.recipients), (30, 100, u32::MAX));
    let senders = c.policy.senders("bulk").unwrap();
    assert_eq!(
        (senders.max_recipients, senders.internal_domains.as_slice()),
        (50, &["contoso.com".to_owned()][..])
    );
    assert_eq!(c.policy.senders("outside").unwrap().max_message_size, 10 * 1024 * 1024);

    // Microsoft raised the ACS quota: the account's own table wins over the relay-wide keys.
    let raised = resolve(&format!(
        "{rules}\n[relay.delivery]\nmessages_per_minute = 20\n[relay.delivery.accounts.outside]\nmessages_per_minute = 60\nmessages_per_hour = 1000\n"
    ))
    .unwrap();
    let acs = raised.delivery.for_account("outside").limits;
    assert_eq!((acs.messages, acs.hourly), (60, 1000));
    assert_eq!(raised.delivery.for_account("main").limits.messages, 20);

    let unknown = resolve(&format!(
        "{rules}\n[relay.delivery.accounts.typo]\nmessages_per_hour = 5\n"
    ))
    .unwrap_err();
    assert!(
        unknown
            .to_string()
            .contains("no relay rule sends through an account `typo`"),
        "{unknown}"
    );
}
