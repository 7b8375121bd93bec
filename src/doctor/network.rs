//! The path to Microsoft: `dns`, `tcp` and, for SMTP, `tls` (STARTTLS with the configured trust
//! anchors, the connection kept for the checks that follow).

use std::time::Duration;

use super::{Check, CheckId, Status, failure, graph, skip_rest};
use crate::account::{Account, AccountAuth, Transport};
use crate::catalog::{Evidence, Ids, Symptom};
use crate::smtp::{self, Connection, SmtpError};
use crate::submit::SubmitError;
use crate::sysexits::Code;

/// `dns`, `tcp` and `tls`. `None` when the rest cannot run (host names do not resolve); else the
/// SMTP connection TLS opened, when it did.
pub(super) async fn checks(checks: &mut Vec<Check>, account: &Account, ids: &Ids) -> Option<Option<Connection>> {
    let dns = dns(account).await;
    let dns_failed = dns.status == Status::Fail;
    checks.push(dns);
    if dns_failed {
        skip_rest(checks, "host names do not resolve");
        return None;
    }
    let graph = account.transport == Transport::Graph;
    let tcp = if graph {
        graph::tcp(account, ids).await
    } else {
        connect_check(&account.smtp.host, account.smtp.port, "", ids).await
    };
    let tcp_ok = tcp.status == Status::Pass;
    checks.push(tcp);
    if !tcp_ok {
        checks.push(Check::new(CheckId::Tls, Status::Skip, "needs a TCP connection"));
        return Some(None);
    }
    if graph {
        checks.push(graph::tls(account, ids).await);
        return Some(None);
    }
    let (check, connection) = tls(account, ids).await;
    checks.push(check);
    Some(connection)
}

pub(super) fn host_of(url: &str) -> Option<(String, u16)> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split('/').next()?;
    let default = if scheme == "http" { 80 } else { 443 };
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || authority.starts_with('[') => Some((
            host.trim_matches(['[', ']']).to_owned(),
            port.parse().unwrap_or(default),
        )),
        _ => Some((authority.to_owned(), default)),
    }
}

async fn dns(account: &Account) -> Check {
    let upstream = match account.transport {
        Transport::Smtp => (account.smtp.host.clone(), account.smtp.port),
        Transport::Graph => host_of(&account.graph_url).unwrap_or_default(),
    };
    let mut targets = vec![upstream];
    if matches!(account.auth, AccountAuth::OAuth { .. })
        && let Some(login) = host_of(&account.token_endpoint.value)
    {
        targets.insert(0, login);
    }
    targets.dedup_by(|a, b| a.0 == b.0);
    let mut check = Check::new(CheckId::Dns, Status::Pass, "host names resolve");
    for (host, port) in targets {
        match tokio::time::timeout(Duration::from_secs(10), tokio::net::lookup_host((host.as_str(), port))).await {
            Ok(Ok(addresses)) => {
                let list: Vec<String> = addresses.map(|a| a.ip().to_string()).take(3).collect();
                check = check.evidence(format!("{host} → {}", list.join(", ")));
            }
            Ok(Err(e)) => {
                let ids = Ids {
                    smtp_host: Some(host.clone()),
                    ..Ids::default()
                };
                return Check::new(CheckId::Dns, Status::Fail, format!("{host} does not resolve: {e}")).failed_with(
                    Symptom::Dns,
                    &Evidence::default(),
                    &ids,
                );
            }
            Err(_) => {
                return Check::new(
                    CheckId::Dns,
                    Status::Fail,
                    format!("resolving {host} took more than 10 s"),
                )
                .failed(Code::TempFail, None);
            }
        }
    }
    check
}

/// The `tcp` check: a connection to `host:port` (`what` names it in the summary).
pub(super) async fn connect_check(host: &str, port: u16, what: &str, ids: &Ids) -> Check {
    let target = format!("{host}:{port}");
    let started = crate::clock::instant();
    let connect = tokio::net::TcpStream::connect((host, port));
    match tokio::time::timeout(Duration::from_secs(10), connect).await {
        Ok(Ok(_)) => Check::new(
            CheckId::Tcp,
            Status::Pass,
            format!(
                "connected to {target}{what} in {} ms",
                crate::clock::since(started).as_millis()
            ),
        ),
        Ok(Err(e)) => Check::new(CheckId::Tcp, Status::Fail, format!("cannot connect to {target}: {e}")).failed_with(
            Symptom::PortBlocked,
            &Evidence::default(),
            ids,
        ),
        Err(_) => Check::new(
            CheckId::Tcp,
            Status::Fail,
            format!("no answer from {target} within 10 s (a firewall drops the packets)"),
        )
        .failed_with(Symptom::PortBlocked, &Evidence::default(), ids),
    }
}

/// STARTTLS (or implicit TLS) with the configured trust anchors; keeps the connection.
async fn tls(account: &Account, ids: &Ids) -> (Check, Option<Connection>) {
    let (config, presented) = match crate::tls::inspecting_config(account.ca_file.as_deref()) {
        Ok(pair) => pair,
        Err(e) => return (failure(CheckId::Tls, &e.into(), &Evidence::default(), ids), None),
    };
    let settings = smtp::Settings {
        helo_name: "m365-mailer-doctor".to_owned(),
        tls: config,
        timeouts: smtp::Timeouts {
            connect: Duration::from_secs(10),
            command: Duration::from_secs(30),
            content: Duration::from_secs(60),
        },
        keep_transcript: false,
    };
    match Connection::open(&account.smtp, &settings).await {
        Ok(connection) if account.smtp.security == smtp::Security::InsecurePlaintext => (
            Check::new(
                CheckId::Tls,
                Status::Warn,
                "no TLS (security = insecure-plaintext): the token and the messages cross the network in the clear",
            ),
            Some(connection),
        ),
        Ok(connection) => {
            let mut check = Check::new(
                CheckId::Tls,
                Status::Pass,
                "TLS established; the certificate is trusted and names the host",
            );
            if let Some(leaf) = presented.certificates().first() {
                check = check.evidence(describe_certificate(leaf));
            }
            (check, Some(connection))
        }
        Err(e @ SmtpError::Tls { .. }) => {
            let mut check = Check::new(CheckId::Tls, Status::Fail, e.to_string());
            for cert in presented.certificates().iter().take(2) {
                check = check.evidence(format!("presented: {}", describe_certificate(cert)));
            }
            (
                check.failed_with(Symptom::TlsUntrusted, &Evidence::default(), ids),
                None,
            )
        }
        Err(e) => (
            failure(CheckId::Tls, &SubmitError::Smtp(e), &Evidence::default(), ids),
            None,
        ),
    }
}

fn describe_certificate(der: &[u8]) -> String {
    use x509_parser::prelude::FromDer as _;
    match x509_parser::prelude::X509Certificate::from_der(der) {
        Ok((_, cert)) => format!("certificate for {} issued by {}", cert.subject(), cert.issuer()),
        Err(_) => "an unreadable certificate".to_owned(),
    }
}
