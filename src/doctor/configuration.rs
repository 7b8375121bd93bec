//! The `configuration` check: what was resolved, from where, and the warnings that are not the
//! credential's (the credential check reports those).

use super::{Check, CheckId, Status};
use crate::config::Config;

pub(super) fn check(config: &Config) -> Check {
    let a = &config.account;
    let source = config
        .file
        .as_ref()
        .map_or_else(|| "environment and flags".to_owned(), |f| f.display().to_string());
    let mut check = Check::new(
        CheckId::Configuration,
        Status::Pass,
        format!("account `{}` from {source}", a.name),
    );
    if let Some(t) = &a.tenant {
        let shape = if uuid::Uuid::try_parse(&t.value).is_ok() {
            "GUID"
        } else {
            "domain"
        };
        check = check.evidence(format!("tenant {} ({shape})", t.value));
    }
    if let Some(c) = &a.client_id {
        check = check.evidence(format!("client id {}", c.value));
    }
    check = check.evidence(format!("mailbox {}", a.mailbox.value));
    let service = a.service.value;
    check = check.evidence(format!("service {service} ({})", service.title()));
    if let Some(user) = &a.smtp_username {
        check = check.evidence(format!("SMTP username {}", user.value));
    }
    if !a.internal_domains.is_empty() {
        check = check.evidence(format!("internal domains {}", a.internal_domains.join(", ")));
    }
    if !a.token_endpoint.value.is_empty() {
        // With the tenant shown above, the endpoint fits the report's width.
        let endpoint = match &a.tenant {
            Some(t) => a.token_endpoint.value.replace(&format!("/{}/", t.value), "/{tenant}/"),
            None => a.token_endpoint.value.clone(),
        };
        check = check.evidence(format!("token endpoint {endpoint}"));
    }
    check = check.evidence(format!("scope {}", a.scope.value));
    check = check.evidence(format!("SMTP {}:{}", a.smtp.host, a.smtp.port));
    let warnings: Vec<_> = config.warnings.iter().filter(|w| !w.is_about_credential()).collect();
    if !warnings.is_empty() {
        check.status = Status::Warn;
        for w in warnings {
            check = check.evidence(format!("warning: {w}"));
        }
    }
    check
}
