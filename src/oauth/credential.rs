//! Client credentials: a secret; a certificate with its RSA private key read from PKCS#12
//! (`.pfx`/`.p12`, both the legacy 3DES/RC2 and the AES-256/PBES2 encodings) or from PEM
//! (PKCS#8, encrypted PKCS#8, or PKCS#1) with its certificate chain; or a federated token file
//! (workload identity federation).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use jsonwebtoken::EncodingKey;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use sha1::Digest as _;
use x509_parser::prelude::{FromDer as _, X509Certificate};

use crate::clock::Timestamp;
use crate::secret::Secret;

/// What the app proves itself with.
#[derive(Debug, Clone)]
pub(crate) enum ClientCredential {
    /// A client secret value.
    Secret(Secret),
    /// A certificate whose private key signs client assertions.
    Certificate(Arc<Certificate>),
    /// A file holding a token from another identity provider (a Kubernetes service account
    /// token, projected by the workload identity webhook), sent as the client assertion. The
    /// file is read for every token request: the kubelet replaces it before it expires.
    FederatedTokenFile(PathBuf),
    /// A user-assigned managed identity whose token is the client assertion.
    ManagedIdentity(super::managed_identity::ManagedIdentity),
}

/// Reads a federated token file: the token, trimmed.
pub(crate) fn read_federated_token(path: &Path) -> Result<Secret, std::io::Error> {
    let text = std::fs::read_to_string(path)?;
    let token = text.trim();
    if token.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "the file is empty",
        ));
    }
    Ok(Secret::new(token.to_owned()))
}

/// Why a credential could not be loaded.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CredentialError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The password does not open the file.
    #[error("the password does not open {path} (wrong certificate password?)")]
    WrongPassword {
        /// The file.
        path: PathBuf,
    },
    /// An encrypted key or PKCS#12 file without a password.
    #[error("{path} is encrypted: give its password")]
    PasswordNeeded {
        /// The file.
        path: PathBuf,
    },
    /// Not a certificate or key file this tool reads.
    #[error("{path}: {detail}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The key is not RSA; Entra ID signs and verifies client assertions with RSA only.
    #[error("{path}: the private key is not RSA; Entra ID accepts RSA certificates only")]
    NotRsa {
        /// The file.
        path: PathBuf,
    },
    /// The private key does not belong to the certificate.
    #[error("the private key in {key} does not match the certificate in {cert}")]
    KeyMismatch {
        /// Key file.
        key: PathBuf,
        /// Certificate file.
        cert: PathBuf,
    },
}

/// A certificate credential, ready to sign.
pub(crate) struct Certificate {
    key: EncodingKey,
    /// The chain, leaf first (DER).
    pub(crate) chain: Vec<Vec<u8>>,
    /// SHA-1 of the leaf (the `x5t` thumbprint, the portal's "Thumbprint").
    pub(crate) sha1: [u8; 20],
    /// SHA-256 of the leaf (`x5t#S256`).
    pub(crate) sha256: [u8; 32],
    /// End of validity.
    pub(crate) not_after: Timestamp,
    /// Subject, for messages.
    pub(crate) subject: String,
}

impl std::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificate")
            .field("subject", &self.subject)
            .field("thumbprint", &self.thumbprint_hex())
            .field("not_after", &self.not_after)
            .field("key", &"[redacted]")
            .finish()
    }
}

impl Certificate {
    /// Loads a certificate credential: a PKCS#12 file, or a PEM file holding the certificate
    /// (and the key, unless `key_path` names a separate key file).
    pub(crate) fn load(
        path: &Path,
        key_path: Option<&Path>,
        password: Option<&Secret>,
    ) -> Result<Self, CredentialError> {
        let bytes = read(path)?;
        if !looks_like_pem(&bytes) {
            if key_path.is_some() {
                return Err(CredentialError::Unreadable {
                    path: path.to_owned(),
                    detail: "a PKCS#12 file holds its own key; give no separate key file".into(),
                });
            }
            return Self::from_pkcs12(&bytes, password, path);
        }
        let key_bytes = match key_path {
            Some(k) => read(k)?,
            None => bytes.clone(),
        };
        Self::from_pem(&key_bytes, &bytes, password, key_path.unwrap_or(path), path)
    }

    /// Reads a PKCS#12 archive.
    pub(crate) fn from_pkcs12(bytes: &[u8], password: Option<&Secret>, path: &Path) -> Result<Self, CredentialError> {
        let password = password.map_or("", Secret::expose);
        let store = p12_keystore::KeyStore::from_pkcs12(bytes, password, p12_keystore::Pkcs12ImportPolicy::Relaxed)
            .map_err(|e| {
                let text = e.to_string();
                if text.to_ascii_lowercase().contains("mac") && password.is_empty() {
                    CredentialError::PasswordNeeded { path: path.to_owned() }
                } else if text.to_ascii_lowercase().contains("mac") {
                    CredentialError::WrongPassword { path: path.to_owned() }
                } else {
                    CredentialError::Unreadable {
                        path: path.to_owned(),
                        detail: format!("not a readable PKCS#12 (.pfx) file: {text}"),
                    }
                }
            })?;
        let (_, chain) = store.private_key_chain().ok_or_else(|| CredentialError::Unreadable {
            path: path.to_owned(),
            detail: "the PKCS#12 file holds no private key with its certificate".into(),
        })?;
        let certs: Vec<Vec<u8>> = chain.certs().iter().map(|c| c.as_der().to_vec()).collect();
        Self::assemble(chain.key().as_der(), certs, path, path)
    }

    /// Reads a PEM private key (PKCS#8, encrypted PKCS#8 with `password`, or PKCS#1) and PEM
    /// certificates (leaf first).
    pub(crate) fn from_pem(
        key_pem: &[u8],
        cert_pem: &[u8],
        password: Option<&Secret>,
        key_path: &Path,
        cert_path: &Path,
    ) -> Result<Self, CredentialError> {
        let certs: Vec<Vec<u8>> = CertificateDer::pem_slice_iter(cert_pem)
            .filter_map(Result::ok)
            .map(|c| c.to_vec())
            .collect();
        if certs.is_empty() {
            return Err(CredentialError::Unreadable {
                path: cert_path.to_owned(),
                detail: "no -----BEGIN CERTIFICATE----- block".into(),
            });
        }
        let pkcs8 = pem_private_key(key_pem, password, key_path)?;
        Self::assemble(&pkcs8, certs, key_path, cert_path)
    }

    fn assemble(
        pkcs8_or_pkcs1: &[u8],
        chain: Vec<Vec<u8>>,
        key_path: &Path,
        cert_path: &Path,
    ) -> Result<Self, CredentialError> {
        let pkcs1 = rsa_pkcs1(pkcs8_or_pkcs1).ok_or_else(|| CredentialError::NotRsa {
            path: key_path.to_owned(),
        })?;
        let key = EncodingKey::from_rsa_der(&pkcs1);
        let leaf = chain.first().ok_or_else(|| CredentialError::Unreadable {
            path: cert_path.to_owned(),
            detail: "no certificate".into(),
        })?;
        let (_, parsed) = X509Certificate::from_der(leaf).map_err(|e| CredentialError::Unreadable {
            path: cert_path.to_owned(),
            detail: format!("not a valid X.509 certificate: {e}"),
        })?;
        let public = parsed.public_key().subject_public_key.data.to_vec();
        if !key_matches(&key, &public) {
            return Err(CredentialError::KeyMismatch {
                key: key_path.to_owned(),
                cert: cert_path.to_owned(),
            });
        }
        Ok(Self {
            key,
            sha1: sha1::Sha1::digest(leaf).into(),
            sha256: sha2::Sha256::digest(leaf).into(),
            not_after: Timestamp::from_datetime(parsed.validity().not_after.to_datetime()),
            subject: parsed.subject().to_string(),
            chain,
        })
    }

    /// The key that signs assertions.
    pub(crate) fn signing_key(&self) -> &EncodingKey {
        &self.key
    }

    /// The SHA-1 thumbprint as the portal shows it.
    pub(crate) fn thumbprint_hex(&self) -> String {
        self.sha1.iter().map(|b| format!("{b:02X}")).collect()
    }
}

fn read(path: &Path) -> Result<Vec<u8>, CredentialError> {
    std::fs::read(path).map_err(|source| CredentialError::Read {
        path: path.to_owned(),
        source,
    })
}

fn looks_like_pem(bytes: &[u8]) -> bool {
    bytes.windows(11).any(|w| w == b"-----BEGIN ")
}

/// The private key of a PEM file as DER (PKCS#8, or PKCS#1 for `RSA PRIVATE KEY`).
fn pem_private_key(pem: &[u8], password: Option<&Secret>, path: &Path) -> Result<Vec<u8>, CredentialError> {
    let text = String::from_utf8_lossy(pem);
    if text.contains("Proc-Type: 4,ENCRYPTED") {
        return Err(CredentialError::Unreadable {
            path: path.to_owned(),
            detail: "legacy OpenSSL-encrypted key; convert it: openssl pkcs8 -topk8 -in key.pem -out key-pkcs8.pem"
                .into(),
        });
    }
    if let Some(block) = pem_block(&text, "ENCRYPTED PRIVATE KEY") {
        let password = password.ok_or_else(|| CredentialError::PasswordNeeded { path: path.to_owned() })?;
        let unreadable = |detail: String| CredentialError::Unreadable {
            path: path.to_owned(),
            detail,
        };
        let (_, der) = pkcs8::der::pem::decode_vec(block.as_bytes()).map_err(|e| unreadable(e.to_string()))?;
        let info =
            pkcs8::EncryptedPrivateKeyInfoRef::try_from(der.as_slice()).map_err(|e| unreadable(e.to_string()))?;
        let document = info
            .decrypt(password.expose())
            .map_err(|_| CredentialError::WrongPassword { path: path.to_owned() })?;
        return Ok(document.as_bytes().to_vec());
    }
    match rustls::pki_types::PrivateKeyDer::from_pem_slice(pem) {
        Ok(rustls::pki_types::PrivateKeyDer::Pkcs8(k)) => Ok(k.secret_pkcs8_der().to_vec()),
        Ok(rustls::pki_types::PrivateKeyDer::Pkcs1(k)) => Ok(k.secret_pkcs1_der().to_vec()),
        Ok(_) => Err(CredentialError::NotRsa { path: path.to_owned() }),
        Err(_) => Err(CredentialError::Unreadable {
            path: path.to_owned(),
            detail: "no private key (expected -----BEGIN PRIVATE KEY-----, ENCRYPTED PRIVATE KEY or RSA PRIVATE KEY)"
                .into(),
        }),
    }
}

fn pem_block<'a>(text: &'a str, label: &str) -> Option<&'a str> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)?;
    let stop = text[start..].find(&end)? + start + end.len();
    Some(&text[start..stop])
}

/// PKCS#1 `RSAPrivateKey` from PKCS#8 (or PKCS#1 given as is); `None` when the key is not RSA.
fn rsa_pkcs1(der: &[u8]) -> Option<Vec<u8>> {
    const RSA_ENCRYPTION: pkcs8::ObjectIdentifier = pkcs8::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
    match pkcs8::PrivateKeyInfoRef::try_from(der) {
        Ok(info) if info.algorithm.oid == RSA_ENCRYPTION => Some(info.private_key.as_bytes().to_vec()),
        Ok(_) => None,
        // Not PKCS#8: take it as PKCS#1 if it signs.
        Err(_) => Some(der.to_vec()),
    }
}

/// Signs a probe with the key and verifies it with the certificate's public key.
fn key_matches(key: &EncodingKey, rsa_public_pkcs1: &[u8]) -> bool {
    let probe = b"m365-mailer key check";
    let Ok(signature) = jsonwebtoken::crypto::sign(probe, key, jsonwebtoken::Algorithm::RS256) else {
        return false;
    };
    let public = jsonwebtoken::DecodingKey::from_rsa_der(rsa_public_pkcs1);
    jsonwebtoken::crypto::verify(&signature, probe, &public, jsonwebtoken::Algorithm::RS256).unwrap_or(false)
}
