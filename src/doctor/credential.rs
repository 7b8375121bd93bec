//! The `credential` check: the secret's shape and expiry, the certificate's, the federated token
//! file, the managed identity.

use super::{Check, CheckId, Status};
use crate::account::{Account, AccountAuth, CredentialKind, Expiry};
use crate::catalog::{self, Evidence, Ids};
use crate::clock::Timestamp;
use crate::oauth::managed_identity::{IdentityEndpoint, ManagedIdentity};
use crate::oauth::{Certificate, ClientCredential, inspect};
use crate::setting::Origin;
use crate::sysexits::Code;

pub(super) fn check(account: &Account, evidence: &Evidence, ids: &Ids) -> Check {
    match &account.auth {
        AccountAuth::OAuth {
            credential: ClientCredential::Secret(_),
            origin,
        } => client_secret(account, origin, evidence, ids),
        AccountAuth::OAuth {
            credential: ClientCredential::Certificate(cert),
            origin,
        } => certificate(account, cert, origin, evidence, ids),
        AccountAuth::OAuth {
            credential: ClientCredential::FederatedTokenFile(path),
            origin,
        } => federated_token(path, origin, evidence, ids),
        AccountAuth::OAuth {
            credential: ClientCredential::ManagedIdentity(identity),
            origin,
        } => managed_identity(identity, origin),
        AccountAuth::Password { user, .. } => Check::new(
            CheckId::Credential,
            Status::Pass,
            format!("password for {user} (basic AUTH)"),
        ),
    }
}

/// A client secret: its value, not its id, and its configured expiry.
fn client_secret(account: &Account, origin: &Origin, evidence: &Evidence, ids: &Ids) -> Check {
    if evidence.secret_looks_like_id {
        let entry = catalog::for_aadsts(7000215).expect("in the catalog");
        return Check::new(
            CheckId::Credential,
            Status::Fail,
            "the client secret is a GUID: a Secret ID, not the secret's Value",
        )
        .evidence(format!("client secret from {origin}"))
        .failed_as(entry, evidence, ids);
    }
    let check = Check::new(
        CheckId::Credential,
        Status::Pass,
        format!("client secret from {origin}"),
    );
    if account.secret_expires.is_none() {
        return check.evidence("its expiry is not configured (client_secret_expires): set it to be warned in time");
    }
    expiry(check, account, format!("client secret from {origin}"), evidence, ids)
}

/// A certificate (loaded with its key already): thumbprint, subject and expiry.
fn certificate(account: &Account, cert: &Certificate, origin: &Origin, evidence: &Evidence, ids: &Ids) -> Check {
    let days = Timestamp::now().days_until(cert.not_after);
    let check = Check::new(
        CheckId::Credential,
        Status::Pass,
        format!(
            "certificate {}, expires {} ({days} days)",
            cert.thumbprint_hex(),
            cert.not_after.date()
        ),
    )
    .evidence(format!("subject {}", cert.subject))
    .evidence(format!("from {origin}, private key matches"));
    expiry(
        check,
        account,
        format!("certificate {}", cert.thumbprint_hex()),
        evidence,
        ids,
    )
}

/// A managed identity: which one, and where its token comes from.
fn managed_identity(identity: &ManagedIdentity, origin: &Origin) -> Check {
    Check::new(
        CheckId::Credential,
        Status::Pass,
        format!("user-assigned managed identity {}", identity.client_id),
    )
    .evidence(format!(
        "from {origin}; its token for {} is the client assertion",
        identity.audience
    ))
    .evidence(match &identity.endpoint {
        IdentityEndpoint::Imds(url) => format!("identity endpoint {url} (Azure VM)"),
        IdentityEndpoint::AppService { url, .. } => format!("identity endpoint {url} (App Service)"),
    })
}

/// The credential's expiry, by the one rule (`account.rs`): a warning within 30 days (`which`
/// names the credential then), a failure once expired, with Entra's error for it.
fn expiry(mut check: Check, account: &Account, which: String, evidence: &Evidence, ids: &Ids) -> Check {
    let Some(expiry) = account.credential_expiry() else {
        return check;
    };
    let now = Timestamp::now();
    let (what, date) = (expiry.credential, expiry.at.date());
    let days = expiry.days_left(now);
    match expiry.at(now) {
        // A certificate's summary already says when.
        Expiry::Distant if what == CredentialKind::Certificate => check,
        Expiry::Distant => check.evidence(format!("expires {date} ({days} days)")),
        Expiry::Soon { .. } | Expiry::Imminent { .. } => {
            check.status = Status::Warn;
            check.summary = expiry.warning(now).unwrap_or_default();
            check.evidence(which)
        }
        Expiry::Expired => {
            let code = match what {
                CredentialKind::ClientSecret => 7000222,
                CredentialKind::Certificate => 700027,
            };
            check.summary = format!("the {what} expired on {date}");
            check.failed_as(catalog::for_aadsts(code).expect("in the catalog"), evidence, ids)
        }
    }
}

/// The audience Entra expects of a federated token in the global cloud.
const TOKEN_EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";

/// A federated token file: readable, a JWT, for Entra's token exchange, not expired. Entra
/// checks issuer and subject against the app's federated credentials; they are shown so that
/// they can be compared with `az ad app federated-credential list`.
fn federated_token(path: &std::path::Path, origin: &Origin, evidence: &Evidence, ids: &Ids) -> Check {
    let token = match crate::oauth::credential::read_federated_token(path) {
        Ok(t) => t,
        Err(e) => {
            return Check::new(
                CheckId::Credential,
                Status::Fail,
                format!("cannot read the federated token file {}: {e}", path.display()),
            )
            .evidence(format!("from {origin}"))
            .failed(Code::Config, None);
        }
    };
    let Some((_, claims)) = inspect::decode(token.expose()) else {
        return Check::new(
            CheckId::Credential,
            Status::Fail,
            format!("{} does not hold a JWT", path.display()),
        )
        .evidence("a federated token file holds one signed JWT (a projected service account token)")
        .failed(Code::Config, None);
    };
    let text = |name: &str| claims[name].as_str().unwrap_or("(none)").to_owned();
    let audiences: Vec<String> = match &claims["aud"] {
        serde_json::Value::String(a) => vec![a.clone()],
        serde_json::Value::Array(a) => a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
        _ => Vec::new(),
    };
    let mut check = Check::new(
        CheckId::Credential,
        Status::Pass,
        format!("federated token from {}", path.display()),
    )
    .evidence(format!("issuer {}", text("iss")))
    .evidence(format!("subject {}", text("sub")))
    .evidence(format!("audience {}", audiences.join(", ")))
    .evidence(format!("from {origin}; read again for every token request"));
    if let Some(exp) = claims["exp"].as_f64() {
        let left = Timestamp::now().secs_until(Timestamp::from_unix_secs(exp as i64));
        if left <= 0 {
            let entry = catalog::for_aadsts(700024).expect("in the catalog");
            check.status = Status::Fail;
            check.summary = format!("the federated token in {} expired {} s ago", path.display(), -left);
            return check
                .evidence("the file is not being refreshed: the kubelet replaces a projected token well before it expires, a copied token goes stale")
                .failed_as(entry, evidence, ids);
        }
        check = check.evidence(format!("expires in {left} s"));
    }
    if !audiences.iter().any(|a| a.starts_with(TOKEN_EXCHANGE_AUDIENCE)) {
        check.status = Status::Warn;
        check = check.evidence(format!(
            "Entra expects the audience {TOKEN_EXCHANGE_AUDIENCE} (…USGov, …China in national clouds) unless the federated credential lists another"
        ));
    }
    check
}
