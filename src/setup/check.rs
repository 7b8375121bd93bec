//! Every value of a spec checked before a line is written: GUIDs where Microsoft takes GUIDs,
//! addresses, Azure names in the characters this tool accepts for them, no line breaks or
//! control characters anywhere; and the flags of another service refused, not ignored.

use std::path::Path;

use super::{Access, SetupError, Spec};
use crate::powershell;
use crate::service::Service;

/// Checks the spec; returns the certificate's SHA-1 thumbprint when one is given.
pub(super) fn check(spec: &Spec) -> Result<Option<String>, SetupError> {
    if uuid::Uuid::try_parse(&spec.tenant).is_err() && !crate::message::is_domain(&spec.tenant) {
        return Err(SetupError::BadTenant(spec.tenant.escape_debug().to_string()));
    }
    guid("client-id", &spec.client_id)?;
    if let Some(sp) = &spec.sp_id {
        guid("sp-id", sp)?;
    }
    if let Some(mailbox) = &spec.mailbox {
        address("mailbox", mailbox)?;
    }
    for a in &spec.send_as {
        address("send-as", a)?;
    }
    powershell::quote(&spec.display_name)?;
    fits_service(spec)?;
    acs_ids(spec)?;
    match &spec.certificate {
        Some(path) => {
            // The path is written into the script's comments and an `az` command: a line break
            // in it would start a line of its own.
            powershell::quote(&path.to_string_lossy())?;
            certificate_thumbprint(path).map(Some)
        }
        None => Ok(None),
    }
}

fn guid(flag: &'static str, value: &str) -> Result<(), SetupError> {
    uuid::Uuid::try_parse(value).map(drop).map_err(|_| SetupError::NotGuid {
        flag,
        value: value.escape_debug().to_string(),
    })
}

fn address(flag: &'static str, value: &str) -> Result<(), SetupError> {
    powershell::quote(value)?;
    crate::message::check_address(value).map_err(|_| SetupError::BadAddress {
        flag,
        value: value.escape_debug().to_string(),
    })
}

/// A name made of ASCII letters, digits and `extra`, of `1..=max` characters.
fn name(flag: &'static str, value: &str, max: usize, extra: &str, rule: &'static str) -> Result<(), SetupError> {
    let fits = !value.is_empty()
        && value.chars().count() <= max
        && value.chars().all(|c| c.is_ascii_alphanumeric() || extra.contains(c));
    if fits {
        Ok(())
    } else {
        Err(SetupError::BadName {
            flag,
            value: value.escape_debug().to_string(),
            rule,
        })
    }
}

/// The rule for `--display-name` with acs, where it names the SMTP Username resource.
const RESOURCE_NAME: &str = "a resource name: 1 to 63 letters, digits and hyphens";

/// The sending address where the service needs one, and no flag of another service.
fn fits_service(spec: &Spec) -> Result<(), SetupError> {
    let service = spec.service;
    let not_for = |flag: &'static str, applies: &'static str| Err(SetupError::NotForService { flag, applies, service });
    let access_flag = |a: Access| match a {
        Access::Rbac => "rbac",
        Access::PerMailbox => "per-mailbox",
    };
    if service != Service::Acs && spec.mailbox.is_none() {
        return Err(SetupError::MissingMailbox {
            service,
            what: if service == Service::Hve {
                "the HVE account's address"
            } else {
                "the mailbox the app sends as"
            },
        });
    }
    if service != Service::Acs
        && let Some(flag) = spec.acs.any()
    {
        return not_for(flag, "acs");
    }
    if service == Service::Exchange {
        return Ok(());
    }
    if !spec.send_as.is_empty() {
        return not_for("send-as", "exchange");
    }
    if let Some(a) = spec.access {
        return not_for(access_flag(a), "exchange");
    }
    if service == Service::Acs {
        if spec.sp_id.is_some() {
            return not_for("sp-id", "exchange and hve");
        }
        name("display-name", &spec.display_name, 63, "-", RESOURCE_NAME)?;
    }
    Ok(())
}

/// The Azure ids of an ACS setup, each in the characters Azure (or, where Azure allows more,
/// this tool) accepts: nothing that quoting would have to protect.
fn acs_ids(spec: &Spec) -> Result<(), SetupError> {
    let ids = &spec.acs;
    if let Some(subscription) = &ids.subscription {
        guid("subscription", subscription)?;
    }
    if let Some(group) = &ids.resource_group {
        name(
            "resource-group",
            group,
            90,
            "._-()",
            "a resource group name: 1 to 90 letters, digits, '.', '_', '-', '(' or ')', not ending in '.'",
        )?;
        if group.ends_with('.') {
            return Err(SetupError::BadName {
                flag: "resource-group",
                value: group.escape_debug().to_string(),
                rule: "a resource group name: it may not end in '.'",
            });
        }
    }
    if let Some(resource) = &ids.resource {
        name("acs-resource", resource, 63, "-", RESOURCE_NAME)?;
    }
    if let Some(username) = &ids.smtp_username {
        // An address has no control character (`check_address`), nor has a name of the rule.
        let is_address = crate::message::check_address(username).is_ok();
        if !is_address {
            name(
                "smtp-username",
                username,
                64,
                "._-",
                "an SMTP username: an email address, or 1 to 64 letters, digits, '.', '_' or '-'",
            )?;
        }
    }
    Ok(())
}

fn certificate_thumbprint(path: &Path) -> Result<String, SetupError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    use sha1::Digest as _;
    let error = |detail: String| SetupError::Certificate {
        path: path.to_owned(),
        detail,
    };
    let bytes = std::fs::read(path).map_err(|e| error(e.to_string()))?;
    let der = CertificateDer::from_pem_slice(&bytes).map_or(bytes, |c| c.to_vec());
    x509_parser::parse_x509_certificate(&der).map_err(|e| error(format!("not a certificate: {e}")))?;
    Ok(sha1::Sha1::digest(&der).iter().map(|b| format!("{b:02X}")).collect())
}
