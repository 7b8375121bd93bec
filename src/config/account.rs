//! One account from its merged layers: a reader per part (who sends, the SMTP target, the
//! identity in Entra ID, the transport), each checking its values and naming their origin.

use std::path::PathBuf;

use super::credential::auth;
use super::field::Field;
use super::layer::Layers;
use super::{ConfigError, Env, Warning, WarningKind};
use crate::account::{Account, AccountAuth, Transport};
use crate::oauth::{AssertionStyle, Cloud};
use crate::service::Service;
use crate::setting::{Origin, Setting};
use crate::smtp::{Security, Target};

/// Builds the account from the merged layers, checking every value.
pub(super) fn build(
    name: &str,
    layers: &Layers,
    env: Env<'_>,
    warnings: &mut Vec<Warning>,
) -> Result<Account, ConfigError> {
    check_usable(name, layers)?;
    let cloud = match layers.get(Field::Cloud) {
        Some(s) => s
            .value
            .parse::<Cloud>()
            .map_err(|e| ConfigError::invalid(&s.origin, e))?,
        None => Cloud::Global,
    };
    let service = service(layers, cloud)?;
    let senders = senders(layers)?;
    let smtp = smtp_target(layers, cloud, service.value, warnings)?;
    let auth = auth(layers, &senders.mailbox, cloud, service.value, env, warnings)?;
    let oauth = matches!(auth, AccountAuth::OAuth { .. });
    let identity = identity(layers, cloud, oauth)?;
    let route = route(layers, cloud, &service, oauth, warnings)?;
    let smtp_username = smtp_username(layers, &service, &auth)?;
    let internal_domains = internal_domains(layers, &service)?;
    let account = Account {
        name: name.to_owned(),
        tenant: identity.tenant,
        client_id: identity.client_id,
        default_from: senders.from,
        mailbox: senders.mailbox,
        allowed_senders: senders.allowed,
        cloud,
        service,
        smtp_username,
        internal_domains,
        token_endpoint: identity.token_endpoint,
        scope: route.scope,
        smtp,
        transport: route.transport,
        graph_url: route.graph_url,
        save_to_sent_items: flag(layers, Field::SaveToSentItems, true)?,
        ca_file: layers.get(Field::CaFile).map(|c| PathBuf::from(c.value)),
        auth,
        assertion_style: match layers.get(Field::Assertion) {
            Some(a) => a
                .value
                .parse()
                .map_err(|e: String| ConfigError::invalid(&a.origin, e))?,
            None => AssertionStyle::default(),
        },
        send_x5c: flag(layers, Field::SendX5c, false)?,
        secret_expires: secret_expires(layers)?,
    };
    if let Some(expiry) = account.credential_expiry()
        && let Some(message) = expiry.warning(crate::clock::Timestamp::now())
    {
        warnings.push(Warning::new(WarningKind::CredentialExpiry, &expiry.origin, message));
    }
    Ok(account)
}

/// `enabled = false` and a grant type other than client credentials end here.
fn check_usable(name: &str, layers: &Layers) -> Result<(), ConfigError> {
    if let Some(enabled) = layers.get(Field::Enabled)
        && !parse_bool(&enabled)?
    {
        return Err(ConfigError::invalid(
            &enabled.origin,
            format!("account `{name}` is disabled (enabled = false)"),
        ));
    }
    if let Some(grant) = layers.get(Field::GrantType)
        && grant.value != "client_credentials"
    {
        return Err(ConfigError::invalid(
            &grant.origin,
            format!(
                "grant type `{}` is not supported: app-only sending uses client_credentials",
                grant.value
            ),
        ));
    }
    Ok(())
}

/// The mailbox that authenticates, the default From, and the other addresses it may send as.
struct Senders {
    mailbox: Setting<String>,
    from: String,
    allowed: Vec<String>,
}

fn senders(layers: &Layers) -> Result<Senders, ConfigError> {
    let mailbox = layers.get(Field::Mailbox).ok_or_else(|| {
        ConfigError::invalid(
            &Origin::Missing("mailbox"),
            "no mailbox: set `mailbox` (the address that authenticates and sends) or M365_MAILER_MAILBOX",
        )
    })?;
    check_address(&mailbox)?;
    let from = match layers.get(Field::From) {
        Some(f) => {
            check_address(&f)?;
            f.value
        }
        None => mailbox.value.clone(),
    };
    let allowed = match layers.list(Field::AllowedSenders) {
        Some(list) => {
            for sender in &list.value {
                crate::message::check_address(sender).map_err(|e| ConfigError::invalid(&list.origin, e.to_string()))?;
            }
            list.value
        }
        None => Vec::new(),
    };
    Ok(Senders { mailbox, from, allowed })
}

/// The service, and whether it exists in the account's cloud.
fn service(layers: &Layers, cloud: Cloud) -> Result<Setting<Service>, ConfigError> {
    let Some(s) = layers.get(Field::Service) else {
        return Ok(Setting {
            value: Service::Exchange,
            origin: Origin::Default,
        });
    };
    let service = s
        .value
        .parse::<Service>()
        .map_err(|e| ConfigError::invalid(&s.origin, e))?;
    if !service.available_in(cloud) {
        return Err(ConfigError::invalid(
            &s.origin,
            format!("service `{service}` is documented for the worldwide cloud only, not `{cloud}`"),
        ));
    }
    Ok(Setting {
        value: service,
        origin: s.origin,
    })
}

/// ACS authenticates with its SMTP Username resource's user name, never the mailbox's address:
/// required there, and only there beside an OAuth credential.
fn smtp_username(
    layers: &Layers,
    service: &Setting<Service>,
    auth: &AccountAuth,
) -> Result<Option<Setting<String>>, ConfigError> {
    if service.value != Service::Acs || !matches!(auth, AccountAuth::OAuth { .. }) {
        return Ok(None);
    }
    let Some(username) = layers.get(Field::SmtpUsername) else {
        return Err(ConfigError::invalid(
            &Origin::Missing("smtp_username"),
            "service `acs` needs `smtp_username` (M365_MAILER_SMTP_USERNAME): the user name of the SMTP Username resource that links the app to the Communication Services resource",
        ));
    };
    let value = username.value.trim();
    if value.is_empty() || value.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(ConfigError::invalid(
            &username.origin,
            "smtp_username must be one word: the SMTP Username resource's user name (free-form or an address)",
        ));
    }
    Ok(Some(Setting {
        value: value.to_owned(),
        origin: username.origin,
    }))
}

/// HVE's accepted domains: recipients elsewhere are refused before anything is sent.
fn internal_domains(layers: &Layers, service: &Setting<Service>) -> Result<Vec<String>, ConfigError> {
    let Some(list) = layers.list(Field::InternalDomains) else {
        return Ok(Vec::new());
    };
    if service.value != Service::Hve {
        return Err(ConfigError::invalid(
            &list.origin,
            format!(
                "internal_domains applies to service `hve`, which delivers inside the tenant only; this account's service is `{}`",
                service.value
            ),
        ));
    }
    let mut domains = Vec::with_capacity(list.value.len());
    for domain in &list.value {
        let domain = domain.trim().trim_start_matches('@').to_ascii_lowercase();
        if !crate::message::is_domain(&domain) {
            return Err(ConfigError::invalid(
                &list.origin,
                format!("`{domain}` in internal_domains is not a domain (write contoso.com, not an address)"),
            ));
        }
        domains.push(domain);
    }
    Ok(domains)
}

/// Host, port and security; plaintext only to a test server, never to Microsoft.
fn smtp_target(
    layers: &Layers,
    cloud: Cloud,
    service: Service,
    warnings: &mut Vec<Warning>,
) -> Result<Target, ConfigError> {
    let security_setting = layers.get(Field::Security);
    let security = match &security_setting {
        Some(s) => match s.value.to_ascii_lowercase().as_str() {
            "starttls" | "ssl" | "true" => Security::StartTls,
            "tls" | "implicit-tls" | "smtps" => Security::ImplicitTls,
            "insecure-plaintext" => Security::InsecurePlaintext,
            _ => {
                return Err(ConfigError::invalid(
                    &s.origin,
                    format!("security `{}`: expected starttls, tls or insecure-plaintext", s.value),
                ));
            }
        },
        None => Security::StartTls,
    };
    let port = match layers.get(Field::SmtpPort) {
        Some(p) => p
            .value
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| ConfigError::invalid(&p.origin, format!("`{}` is not a port number", p.value)))?,
        None if security == Security::ImplicitTls => 465,
        None => 587,
    };
    let host = layers
        .get(Field::SmtpHost)
        .map_or_else(|| service.smtp_host(cloud).to_owned(), |h| h.value);
    if security == Security::InsecurePlaintext {
        let origin = security_setting.map_or(Origin::Default, |s| s.origin);
        if is_microsoft_smtp(&host) {
            return Err(ConfigError::invalid(
                &origin,
                format!(
                    "security `insecure-plaintext` with {host}: Exchange Online takes AUTH only over TLS, and the token would cross the network in the clear; use starttls"
                ),
            ));
        }
        if !is_this_machine(&host) {
            warnings.push(Warning::new(
                WarningKind::Plaintext,
                &origin,
                format!(
                    "security `insecure-plaintext` sends the token or password to {host} unencrypted; use it only with a test server on this machine"
                ),
            ));
        }
    }
    Ok(Target { host, port, security })
}

/// The app in Entra ID: tenant, client id and the token endpoint they make.
struct Identity {
    tenant: Option<Setting<String>>,
    client_id: Option<Setting<String>>,
    token_endpoint: Setting<String>,
}

fn identity(layers: &Layers, cloud: Cloud, oauth: bool) -> Result<Identity, ConfigError> {
    let tenant = layers.get(Field::Tenant);
    if let Some(t) = &tenant
        && uuid::Uuid::try_parse(&t.value).is_err()
        && !crate::message::is_domain(&t.value)
    {
        return Err(ConfigError::invalid(
            &t.origin,
            format!(
                "tenant `{}` is neither a GUID (Directory (tenant) ID) nor a domain like contoso.onmicrosoft.com",
                t.value
            ),
        ));
    }
    let client_id = layers.get(Field::ClientId);
    if let Some(c) = &client_id
        && uuid::Uuid::try_parse(&c.value).is_err()
    {
        return Err(ConfigError::invalid(
            &c.origin,
            format!(
                "client id `{}` is not a GUID: copy the Application (client) ID from the app's Overview page",
                c.value
            ),
        ));
    }
    if oauth && client_id.is_none() {
        return Err(ConfigError::invalid(
            &Origin::Missing("client_id"),
            "no client id: set `client_id` (Application (client) ID) or AZURE_CLIENT_ID",
        ));
    }
    let authority = layers
        .get(Field::AuthorityHost)
        .map(|a| a.value.trim_end_matches('/').to_owned());
    let token_endpoint = match (layers.get(Field::TokenEndpoint), &tenant) {
        (Some(e), _) => e,
        (None, Some(t)) => Setting {
            value: Cloud::token_endpoint(authority.as_deref().unwrap_or(cloud.endpoints().login), &t.value),
            origin: t.origin.clone(),
        },
        (None, None) if oauth => {
            return Err(ConfigError::invalid(
                &Origin::Missing("tenant"),
                "no tenant: set `tenant` (Directory (tenant) ID or domain) or AZURE_TENANT_ID, or a full `token_endpoint`",
            ));
        }
        (None, None) => Setting {
            value: String::new(),
            origin: Origin::Default,
        },
    };
    if oauth {
        check_url(&token_endpoint)?;
    }
    Ok(Identity {
        tenant,
        client_id,
        token_endpoint,
    })
}

/// SMTP or Graph, with the scope the token is asked for.
struct Route {
    transport: Transport,
    graph_url: String,
    scope: Setting<String>,
}

fn route(
    layers: &Layers,
    cloud: Cloud,
    service: &Setting<Service>,
    oauth: bool,
    warnings: &mut Vec<Warning>,
) -> Result<Route, ConfigError> {
    let endpoints = cloud.endpoints();
    let transport = match layers.get(Field::Transport) {
        Some(t) => match t.value.to_ascii_lowercase().as_str() {
            "smtp" => Transport::Smtp,
            "graph" => Transport::Graph,
            other => {
                return Err(ConfigError::invalid(
                    &t.origin,
                    format!("transport `{other}` is not `smtp` or `graph`"),
                ));
            }
        },
        None => Transport::Smtp,
    };
    if transport == Transport::Graph && service.value != Service::Exchange {
        return Err(ConfigError::invalid(
            &service.origin,
            format!(
                "service `{}` takes mail over SMTP only; the Graph transport sends from an Exchange mailbox (service `exchange`)",
                service.value
            ),
        ));
    }
    let default_scope = match transport {
        Transport::Smtp => service.value.smtp_scope(cloud),
        Transport::Graph => format!("{}/.default", endpoints.graph),
    };
    let graph_url = layers.get(Field::GraphUrl).unwrap_or_else(|| Setting {
        value: endpoints.graph.to_owned(),
        origin: Origin::Default,
    });
    if transport == Transport::Graph {
        check_url(&graph_url)?;
        if !oauth {
            return Err(ConfigError::invalid(
                &graph_url.origin,
                "the Graph transport needs an OAuth credential (a secret, certificate, federated token or managed identity), not a password",
            ));
        }
    }
    let scope = layers.get(Field::Scope).unwrap_or_else(|| Setting {
        value: default_scope.clone(),
        origin: Origin::Default,
    });
    if oauth && !scope.value.trim().ends_with("/.default") {
        warnings.push(Warning::new(
            WarningKind::Scope,
            &scope.origin,
            format!(
                "scope `{}` does not end in /.default; Entra ID refuses it for client credentials (AADSTS1002012). Use {default_scope}",
                scope.value
            ),
        ));
    }
    Ok(Route {
        transport,
        graph_url: graph_url.value.trim_end_matches('/').to_owned(),
        scope,
    })
}

fn flag(layers: &Layers, field: Field, default: bool) -> Result<bool, ConfigError> {
    layers.get(field).map_or(Ok(default), |s| parse_bool(&s))
}

fn secret_expires(layers: &Layers) -> Result<Option<Setting<time::Date>>, ConfigError> {
    let Some(s) = layers.get(Field::ClientSecretExpires) else {
        return Ok(None);
    };
    let date = parse_date(&s.value)
        .ok_or_else(|| ConfigError::invalid(&s.origin, format!("`{}` is not a date like 2027-06-30", s.value)))?;
    Ok(Some(Setting {
        value: date,
        origin: s.origin,
    }))
}

/// `2027-06-30`, or the date of an RFC 3339 date-time.
fn parse_date(text: &str) -> Option<time::Date> {
    let date = text.get(..10)?;
    time::Date::parse(date, time::macros::format_description!("[year]-[month]-[day]")).ok()
}

fn check_address(setting: &Setting<String>) -> Result<(), ConfigError> {
    crate::message::check_address(&setting.value).map_err(|e| ConfigError::invalid(&setting.origin, e.to_string()))
}

/// An `https://` URL; plain `http://` only to this machine (an emulator, a test server), decided
/// by the parsed host — `http://localhost.example.com/` is not this machine.
pub(super) fn check_url(setting: &Setting<String>) -> Result<(), ConfigError> {
    let v = &setting.value;
    let refused = || {
        ConfigError::invalid(
            &setting.origin,
            format!("`{}` must be an https:// URL", v.escape_debug()),
        )
    };
    let url = reqwest::Url::parse(v).map_err(|_| refused())?;
    let loopback = || url.host_str().is_some_and(is_this_machine);
    match url.scheme() {
        "https" if url.host_str().is_some() => Ok(()),
        "http" if loopback() => Ok(()),
        _ => Err(refused()),
    }
}

fn parse_bool(setting: &Setting<String>) -> Result<bool, ConfigError> {
    match setting.value.to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" | "on" => Ok(true),
        "false" | "no" | "0" | "off" => Ok(false),
        _ => Err(ConfigError::invalid(
            &setting.origin,
            format!("`{}` is not true or false", setting.value),
        )),
    }
}

/// Microsoft's SMTP submission endpoints (every cloud's).
fn is_microsoft_smtp(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    [
        "office365.com",
        "office365.us",
        "outlook.com",
        "partner.outlook.cn",
        "hve.mx.microsoft",
    ]
    .iter()
    .any(|d| host == *d || host.ends_with(&format!(".{d}")))
}

/// `localhost` or a loopback address.
fn is_this_machine(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback())
}
