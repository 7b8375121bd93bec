//! One relay, three accounts, one per Microsoft service, each client routed to its account by
//! its relay user: a burst from each is delivered within each service's limits.

use std::time::Duration;

use m365_emulator::Endpoint;
use m365_emulator::fixture::{ACS_SENDER, ACS_USERNAME, HVE_ACCOUNT};

use crate::support::*;

/// Speeds the emulator's windows up 600 times: a minute is 100 ms, an hour 6 s.
const SCALE: f64 = 600.0;

/// Sends `count` messages to `recipients` as relay user `user` with Python's smtplib, the
/// first three to `extra` too; returns the recipients refused, one line each (`address code
/// text`).
fn burst(port: u16, user: &str, sender: &str, recipients: &[&str], extra: &str, count: usize) -> Vec<String> {
    const SCRIPT: &str = r#"
import smtplib, sys
port, user, sender, count = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
recipients, extra = sys.argv[5].split(","), [a for a in sys.argv[6:] if a]
with smtplib.SMTP("127.0.0.1", port, timeout=60) as s:
    s.login(user, "burst-Password-1")
    for i in range(count):
        body = f"From: {sender}\r\nTo: {recipients[0]}\r\nSubject: {user} {i}\r\n\r\nburst\r\n"
        to = recipients + (extra if i < 3 else [])
        for address, (code, text) in s.sendmail(sender, to, body).items():
            print(address, code, text.decode())
"#;
    let out = std::process::Command::new(python())
        .args([
            "-c",
            SCRIPT,
            &port.to_string(),
            user,
            sender,
            &count.to_string(),
            &recipients.join(","),
            extra,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn three_accounts_one_per_service_each_within_its_limits() {
    let mut world = World::start_with(|s| {
        s.exchange.time_scale = SCALE;
        // A quota below the burst, so the hourly window is what holds it back.
        s.tenants[0].acs_resources[0].messages_per_hour = 35;
    })
    .await;
    // Everything comes from the file: the environment would set every account.
    for (key, _) in world.env.clone() {
        world.set(&key, "");
    }
    let hash = hash(&world, "burst-Password-1").await;
    let ca = world.dir.path().join("ca.pem");
    let account = |name: &str, extra: &str, port: u16| {
        format!(
            "[accounts.{name}]\ntenant = \"{TENANT}\"\nclient_id = \"{CLIENT}\"\nclient_secret = \"{SECRET}\"\nauthority_host = \"{}\"\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {port}\nca_file = \"{}\"\n{extra}\n",
            world.emulator.base_url(),
            ca.display()
        )
    };
    let user = |name: &str, account: &str| {
        format!("[[relay.users]]\nname = \"{name}\"\npassword_hash = \"{hash}\"\naccount = \"{account}\"\n")
    };
    let window = Duration::from_secs_f64(60.0 / SCALE);
    let config = format!(
        "default_account = \"mailbox\"\n{}{}{}[relay]\n[[relay.listen]]\naddress = \"127.0.0.1:0\"\n{}{}{}[relay.delivery]\nrate_window = \"{}ms\"\nhour_window = \"{}ms\"\n[relay.delivery.accounts.outside]\nmessages_per_hour = 35\n",
        account(
            "mailbox",
            &format!("mailbox = \"{MAILBOX}\""),
            world.emulator.smtp_addr().port()
        ),
        account(
            "bulk",
            &format!("service = \"hve\"\nmailbox = \"{HVE_ACCOUNT}\"\ninternal_domains = [\"contoso.com\"]"),
            world.emulator.hve_addr().port()
        ),
        account(
            "outside",
            &format!("service = \"acs\"\nmailbox = \"{ACS_SENDER}\"\nsmtp_username = \"{ACS_USERNAME}\""),
            world.emulator.acs_addr().port()
        ),
        user("app", "mailbox"),
        user("alerts", "bulk"),
        user("shop", "outside"),
        window.as_millis(),
        window.as_millis() * 60,
    );
    let relay = world.relay(&config).await;
    let port = relay.addr().port();
    let started = instant();
    // HVE's client also writes to someone outside the tenant, three times.
    let bursts = [
        ("app", MAILBOX, "bob@fabrikam.com", ""),
        ("alerts", HVE_ACCOUNT, "ops@contoso.com", "someone@fabrikam.com"),
        ("shop", ACS_SENDER, "customer@fabrikam.com", ""),
    ];
    let handles: Vec<_> = bursts
        .into_iter()
        .map(|(user, sender, to, extra)| {
            std::thread::spawn(move || (user, burst(port, user, sender, &[to], extra, 40)))
        })
        .collect();
    for handle in handles {
        let (user, refused) = handle.join().unwrap();
        if user == "alerts" {
            assert_eq!(refused.len(), 3, "{refused:?}");
            assert!(
                refused.iter().all(|r| r.starts_with("someone@fabrikam.com 550 5.7.1")),
                "{refused:?}"
            );
        } else {
            assert!(refused.is_empty(), "{user}: {refused:?}");
        }
    }
    assert_eq!(
        world.wait_for_messages(120, Duration::from_secs(60)).await,
        120,
        "{}",
        relay.log_text()
    );
    let took = started.elapsed();
    let stored = world.emulator.store().messages();
    let through = |endpoint: Endpoint| stored.iter().filter(|m| m.endpoint == endpoint).collect::<Vec<_>>();
    let (exchange, hve, acs) = (
        through(Endpoint::Exchange),
        through(Endpoint::Hve),
        through(Endpoint::Acs),
    );
    assert_eq!((exchange.len(), hve.len(), acs.len()), (40, 40, 40));
    assert!(hve.iter().all(|m| m.rcpt_to == ["ops@contoso.com"]));
    // Nothing was refused or throttled by any service.
    let stats = world.emulator.stats();
    assert_eq!(stats.throttle.quota, 0, "{:?}", stats.throttle);
    assert_eq!(stats.throttle.rate_delays, 0, "{:?}", stats.throttle);
    // ACS's hourly quota held the last five back by an hour (6 s here).
    let mut times: Vec<_> = acs.iter().map(|m| m.received_at).collect();
    times.sort();
    let held = times[35] - times[0];
    assert!(
        held >= time::Duration::seconds_f64(5.5),
        "the 36th came {held} after the first"
    );
    assert!(took < Duration::from_secs(60));
    let dead = world
        .run(
            &[
                "queue",
                "--queue-dir",
                world.dir.path().join("queue").to_str().unwrap(),
                "dead",
            ],
            b"",
        )
        .await;
    assert!(String::from_utf8_lossy(&dead.stdout).contains("The dead-letter area is empty."));
    relay.kill().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_relay_delivers_through_each_service_with_each_credential_it_takes() {
    use crate::services::{
        Credential, clear_account_env, credential_lines, every_credential_world, sender_of, service_lines, with_token,
    };
    // Four accounts send as the same mailbox here, each with up to three connections: more than
    // Exchange's three per mailbox, which is not what this test is about.
    let mut world = every_credential_world(|s| s.exchange.max_connections_per_mailbox = 12).await;
    clear_account_env(&mut world);
    let hash = hash(&world, "burst-Password-1").await;
    let mut accounts = String::from("default_account = \"exchange-Secret\"\n");
    let mut users = String::new();
    let mut rows = Vec::new();
    for service in ["exchange", "hve", "acs"] {
        for credential in Credential::ALL {
            let name = format!("{service}-{credential:?}");
            accounts.push_str(&format!(
                "[accounts.{name}]\n{}{}",
                service_lines(&world, service),
                credential_lines(&world, credential)
            ));
            users.push_str(&format!(
                "[[relay.users]]\nname = \"{name}\"\npassword_hash = \"{hash}\"\naccount = \"{name}\"\n"
            ));
            rows.push((name, service, credential));
        }
    }
    let relay = world
        .relay(&format!(
            "{accounts}[relay]\n[[relay.listen]]\naddress = \"127.0.0.1:0\"\n{users}"
        ))
        .await;
    let port = relay.addr().port();
    for (name, service, _) in &rows {
        let refused = burst(port, name, sender_of(service), &["ops@contoso.com"], "", 1);
        assert!(refused.is_empty(), "{name}: {refused:?}");
    }
    assert_eq!(
        world.wait_for_messages(rows.len(), Duration::from_secs(60)).await,
        rows.len(),
        "{}",
        relay.log_text()
    );
    let stored = world.emulator.store().messages();
    for (name, service, credential) in &rows {
        let subject = format!("Subject: {name} 0\r\n");
        let delivered = stored
            .iter()
            .find(|m| String::from_utf8_lossy(&m.data).contains(&subject))
            .unwrap_or_else(|| panic!("{name} not delivered"));
        let endpoint = match *service {
            "hve" => Endpoint::Hve,
            "acs" => Endpoint::Acs,
            _ => Endpoint::Exchange,
        };
        assert_eq!(delivered.endpoint, endpoint, "{name}");
        assert_eq!(
            matches!(delivered.identity, m365_emulator::Identity::Xoauth2 { .. }),
            with_token(service, *credential),
            "{name}: {:?}",
            delivered.identity
        );
    }
    relay.kill().await;
}
