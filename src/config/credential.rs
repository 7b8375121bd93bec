//! The account's credential: a client secret (literal, by environment variable or by file), a
//! certificate with its password, a federated token file, a managed identity, or a password.
//! It comes whole from the highest layer that names any part of it.

use std::path::{Path, PathBuf};

use super::field::Field;
use super::layer::{Layer, Layers};
use super::{ConfigError, Env, Warning, WarningKind};
use crate::account::AccountAuth;
use crate::oauth::{Certificate, ClientCredential, Cloud};
use crate::secret::Secret;
use crate::service::Service;
use crate::setting::{Origin, Setting};

const SECRET_FIELDS: [Field; 3] = [Field::ClientSecret, Field::ClientSecretEnv, Field::ClientSecretFile];
const CERT_FIELDS: [Field; 2] = [Field::Certificate, Field::PrivateKey];
const CERT_PASSWORD_FIELDS: [Field; 3] = [
    Field::CertificatePassword,
    Field::CertificatePasswordEnv,
    Field::CertificatePasswordFile,
];
const PASSWORD_FIELDS: [Field; 3] = [Field::SmtpPassword, Field::SmtpPasswordEnv, Field::SmtpPasswordFile];

/// The credential comes whole from the highest layer that names any part of it.
pub(super) fn auth(
    layers: &Layers,
    mailbox: &Setting<String>,
    cloud: Cloud,
    service: Service,
    env: Env<'_>,
    warnings: &mut Vec<Warning>,
) -> Result<AccountAuth, ConfigError> {
    let oauth_fields: Vec<Field> = SECRET_FIELDS
        .iter()
        .chain(&CERT_FIELDS)
        .chain(&CERT_PASSWORD_FIELDS)
        .chain(&[Field::FederatedTokenFile, Field::ManagedIdentityClientId])
        .copied()
        .collect();
    let oauth_layer = layers.highest_with(&oauth_fields);
    // ACS's SMTP Username goes with the app's credential, not with a password.
    let username: &[Field] = if service == Service::Acs {
        &[]
    } else {
        &[Field::SmtpUsername]
    };
    let password_fields = [username, &PASSWORD_FIELDS].concat();
    let password_layer = layers.highest_with(&password_fields);
    let layer = match (oauth_layer, password_layer) {
        (Some(o), Some(p)) if o.rank() <= p.rank() => o,
        (Some(o), None) => o,
        (_, Some(p)) => return password(p, mailbox, env, warnings),
        (None, None) => {
            return Err(ConfigError::invalid(
                &Origin::Missing("client_secret"),
                "no credential: set client_secret_file, client_secret_env, client_secret, certificate or federated_token_file (or AZURE_CLIENT_SECRET / AZURE_CLIENT_CERTIFICATE_PATH / AZURE_FEDERATED_TOKEN_FILE)",
            ));
        }
    };
    let secret = secret_from(layer, SECRET_FIELDS, env, warnings)?;
    let certificate = layer.get(Field::Certificate);
    let federated = layer.get(Field::FederatedTokenFile);
    if let Some(identity) = layer.get(Field::ManagedIdentityClientId) {
        if secret.is_some() || certificate.is_some() || federated.is_some() {
            return Err(ConfigError::invalid(
                &identity.origin,
                "a managed identity and a client secret, certificate or federated token file are set; keep one",
            ));
        }
        return managed_identity(layers, identity, cloud);
    }
    if let Some(federated) = federated {
        if secret.is_some() || certificate.is_some() {
            return Err(ConfigError::invalid(
                &federated.origin,
                "a federated token file and a client secret or certificate are set; keep one",
            ));
        }
        let path = PathBuf::from(&federated.value);
        crate::oauth::credential::read_federated_token(&path)
            .map_err(|e| ConfigError::invalid(&federated.origin, format!("cannot read {}: {e}", path.display())))?;
        return Ok(AccountAuth::OAuth {
            credential: ClientCredential::FederatedTokenFile(path),
            origin: federated.origin,
        });
    }
    match (secret, certificate) {
        (Some(_), Some(cert)) => Err(ConfigError::invalid(
            &cert.origin,
            "both a client secret and a certificate are set; keep one",
        )),
        (Some((secret, origin)), None) => Ok(client_secret(secret, origin, warnings)),
        (None, Some(cert)) => self::certificate(layer, cert, env, warnings),
        (None, None) => Err(ConfigError::invalid(
            &layer.any_origin(&CERT_PASSWORD_FIELDS),
            "a certificate password is set but no certificate",
        )),
    }
}

/// Basic AUTH with a username (the mailbox unless given) and a password.
fn password(
    layer: &Layer,
    mailbox: &Setting<String>,
    env: Env<'_>,
    warnings: &mut Vec<Warning>,
) -> Result<AccountAuth, ConfigError> {
    let user = layer
        .get(Field::SmtpUsername)
        .map_or_else(|| mailbox.value.clone(), |u| u.value);
    let (password, _) = secret_from(layer, PASSWORD_FIELDS, env, warnings)?.ok_or_else(|| {
        ConfigError::invalid(
            &Origin::Missing("smtp_password"),
            "smtp_username is set but no smtp_password",
        )
    })?;
    Ok(AccountAuth::Password { user, password })
}

/// A user-assigned managed identity, its token from App Service's endpoint or IMDS.
fn managed_identity(layers: &Layers, identity: Setting<String>, cloud: Cloud) -> Result<AccountAuth, ConfigError> {
    use crate::oauth::managed_identity::{IMDS, IdentityEndpoint, ManagedIdentity};
    if uuid::Uuid::try_parse(&identity.value).is_err() {
        return Err(ConfigError::invalid(
            &identity.origin,
            format!(
                "`{}` is not a GUID: copy the Client ID of the user-assigned managed identity",
                identity.value
            ),
        ));
    }
    let endpoint = match (layers.get(Field::IdentityEndpoint), layers.get(Field::IdentityHeader)) {
        (Some(url), Some(header)) => IdentityEndpoint::AppService {
            url: url.value,
            header: Secret::new(header.value),
        },
        _ => IdentityEndpoint::Imds(
            layers
                .get(Field::ImdsEndpoint)
                .map_or_else(|| IMDS.to_owned(), |u| u.value),
        ),
    };
    Ok(AccountAuth::OAuth {
        credential: ClientCredential::ManagedIdentity(ManagedIdentity {
            client_id: identity.value,
            audience: cloud.endpoints().federation_audience.to_owned(),
            endpoint,
        }),
        origin: identity.origin,
    })
}

fn client_secret(secret: Secret, origin: Origin, warnings: &mut Vec<Warning>) -> AccountAuth {
    if uuid::Uuid::try_parse(secret.expose().trim()).is_ok() {
        warnings.push(Warning::new(
            WarningKind::SecretLooksLikeId,
            &origin,
            "the client secret looks like a secret ID (a GUID), not the secret's value; copy the Value column when the secret is created",
        ));
    }
    AccountAuth::OAuth {
        credential: ClientCredential::Secret(secret),
        origin,
    }
}

/// A certificate with its key (in it or beside it) and the password of either, loaded now so a
/// wrong password is a configuration error.
fn certificate(
    layer: &Layer,
    cert: Setting<String>,
    env: Env<'_>,
    warnings: &mut Vec<Warning>,
) -> Result<AccountAuth, ConfigError> {
    let password = secret_from(layer, CERT_PASSWORD_FIELDS, env, warnings)?;
    let key = layer.get(Field::PrivateKey).map(|k| PathBuf::from(k.value));
    let loaded = Certificate::load(Path::new(&cert.value), key.as_deref(), password.as_ref().map(|p| &p.0))
        .map_err(|e| ConfigError::invalid(&cert.origin, e.to_string()))?;
    Ok(AccountAuth::OAuth {
        credential: ClientCredential::Certificate(std::sync::Arc::new(loaded)),
        origin: cert.origin,
    })
}

/// A secret given literally, by environment variable name, or by file.
/// `fields` are the literal, the variable's name and the file's path, in that order.
fn secret_from(
    layer: &Layer,
    fields: [Field; 3],
    env: Env<'_>,
    warnings: &mut Vec<Warning>,
) -> Result<Option<(Secret, Origin)>, ConfigError> {
    let [literal, env_var, file] = fields.map(Field::name);
    let given: Vec<(Field, Setting<String>)> = fields
        .into_iter()
        .filter_map(|f| layer.get(f).map(|s| (f, s)))
        .collect();
    if given.len() > 1 {
        return Err(ConfigError::invalid(
            &given[1].1.origin,
            format!("set only one of {literal}, {env_var} and {file}"),
        ));
    }
    let Some((field, setting)) = given.into_iter().next() else {
        return Ok(None);
    };
    // The name or path is not printed in errors: a secret pasted where its name belongs would be
    // shown back. The origin says which setting it is.
    let value = if field == fields[1] {
        env(&setting.value).ok_or_else(|| {
            ConfigError::invalid(
                &setting.origin,
                format!(
                    "the environment variable it names is not set (it holds the variable's name; the secret itself goes in {literal} or a file named by {file})"
                ),
            )
        })?
    } else if field == fields[2] {
        let text = std::fs::read_to_string(&setting.value).map_err(|e| {
            ConfigError::invalid(
                &setting.origin,
                format!("cannot read the file it names: {e} (it holds a path; the secret itself goes in that file)"),
            )
        })?;
        text.trim_end_matches(['\r', '\n']).to_owned()
    } else {
        if matches!(setting.origin, Origin::File { .. }) {
            warnings.push(Warning::new(
                WarningKind::SecretInFile,
                &setting.origin,
                format!(
                    "a secret is written in the config file; prefer {file} (a file readable only by this service) or {env_var}"
                ),
            ));
        }
        setting.value.clone()
    };
    if value.is_empty() {
        return Err(ConfigError::invalid(&setting.origin, "the secret is empty"));
    }
    Ok(Some((Secret::new(value), setting.origin)))
}
