//! Certificates and keys: the emulator's own CA (clients trust it to reach the HTTPS token
//! endpoint and the SMTP STARTTLS port), the key that signs access tokens, certificates users
//! upload to app registrations, and client certificates generated for examples and tests.

use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_RSA_SHA256,
};
use sha1::Digest as _;
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};

/// Errors creating, reading or parsing certificates and keys.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// A certificate could not be parsed.
    #[error("not a valid X.509 certificate: {0}")]
    BadCertificate(String),
    /// A certificate has no RSA public key; Entra only accepts RSA keys for client assertions.
    #[error("the certificate's key is not RSA (Entra ID accepts RSA certificates only)")]
    NotRsa,
    /// Key or certificate generation failed.
    #[error("generating a key or certificate failed: {0}")]
    Generate(#[from] rcgen::Error),
    /// Reading or writing the state directory failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// A certificate uploaded to an app registration, parsed once.
#[derive(Debug, Clone)]
pub struct RegisteredCertificate {
    /// DER bytes.
    pub der: Vec<u8>,
    /// RSA public key (PKCS#1 `RSAPublicKey` DER) used to verify client assertions.
    pub rsa_public_key: Vec<u8>,
    /// SHA-1 of the DER, the `x5t` thumbprint.
    pub sha1: [u8; 20],
    /// SHA-256 of the DER, the `x5t#S256` thumbprint.
    pub sha256: [u8; 32],
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
    /// Subject distinguished name, for messages.
    pub subject: String,
}

impl RegisteredCertificate {
    /// Parses a certificate from PEM (`-----BEGIN CERTIFICATE-----`) or DER bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, PkiError> {
        use rustls::pki_types::{CertificateDer, pem::PemObject as _};
        let der = match CertificateDer::from_pem_slice(bytes) {
            Ok(der) => der.to_vec(),
            Err(_) => bytes.to_vec(),
        };
        let (_, cert) = X509Certificate::from_der(&der).map_err(|e| PkiError::BadCertificate(e.to_string()))?;
        let spki = cert.public_key();
        if spki.algorithm.algorithm != x509_parser::oid_registry::OID_PKCS1_RSAENCRYPTION {
            return Err(PkiError::NotRsa);
        }
        Ok(Self {
            rsa_public_key: spki.subject_public_key.data.to_vec(),
            sha1: sha1::Sha1::digest(&der).into(),
            sha256: sha2::Sha256::digest(&der).into(),
            not_before: cert.validity().not_before.to_datetime(),
            not_after: cert.validity().not_after.to_datetime(),
            subject: cert.subject().to_string(),
            der,
        })
    }

    /// Whether a JWT header thumbprint (`x5t` when `sha256` is false, `x5t#S256` otherwise)
    /// names this certificate. Entra accepts base64url with or without padding, and MSAL sends
    /// it padded.
    pub fn matches_thumbprint(&self, thumbprint: &str, sha256: bool) -> bool {
        let decoded = URL_SAFE_NO_PAD.decode(thumbprint.trim_end_matches('='));
        match decoded {
            Ok(bytes) if sha256 => bytes == self.sha256,
            Ok(bytes) => bytes == self.sha1,
            Err(_) => false,
        }
    }

    /// The SHA-1 thumbprint as the portal shows it (upper-case hex).
    pub fn hex_thumbprint(&self) -> String {
        self.sha1.iter().map(|b| format!("{b:02X}")).collect()
    }
}

/// A client certificate with its private key, generated for an app registration.
#[derive(Clone)]
pub struct ClientCertificate {
    /// Private key, PKCS#8 PEM.
    pub key_pem: String,
    /// Self-signed certificate, PEM.
    pub cert_pem: String,
}

impl std::fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("key_pem", &"[redacted]")
            .field("cert_pem", &self.cert_pem)
            .finish()
    }
}

impl ClientCertificate {
    /// A 2048-bit RSA key and a self-signed certificate valid between the two instants, the way
    /// `New-SelfSignedCertificate` or `openssl req -x509` makes one for an app registration.
    pub fn generate(
        common_name: &str,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Result<Self, PkiError> {
        let key = rsa_key()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = name(common_name);
        params.not_before = not_before;
        params.not_after = not_after;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params.self_signed(&key)?;
        Ok(Self {
            key_pem: key.serialize_pem(),
            cert_pem: cert.pem(),
        })
    }

    /// The certificate as an app registration stores it.
    pub fn registered(&self) -> RegisteredCertificate {
        RegisteredCertificate::parse(self.cert_pem.as_bytes()).expect("a generated certificate parses")
    }
}

/// The emulator's certificate authority and the server identity it issues.
pub struct Authority {
    ca_cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority").finish_non_exhaustive()
    }
}

impl Authority {
    /// Loads the CA from `dir` (`ca.pem`, `ca-key.pem`) or creates and saves one there, so that
    /// a client configured to trust it keeps working across restarts.
    pub fn load_or_create(dir: &Path) -> Result<Self, PkiError> {
        let cert_path = dir.join("ca.pem");
        let key_path = dir.join("ca-key.pem");
        if let (Ok(cert_pem), Ok(key_pem)) = (std::fs::read_to_string(&cert_path), std::fs::read_to_string(&key_path)) {
            let issuer = Issuer::from_ca_cert_pem(&cert_pem, KeyPair::from_pem(&key_pem)?)?;
            return Ok(Self {
                ca_cert_pem: cert_pem,
                issuer,
            });
        }
        let authority = Self::generate()?;
        write_file(&cert_path, authority.ca_cert_pem.as_bytes(), false)?;
        write_file(&key_path, authority.issuer.key().serialize_pem().as_bytes(), true)?;
        Ok(authority)
    }

    /// A new CA held in memory only.
    pub fn generate() -> Result<Self, PkiError> {
        // ECDSA P-256 keeps CA and server key generation instantaneous; clients see an ordinary
        // TLS server certificate chain.
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = name("m365-emulator local CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = rcgen::date_time_ymd(2024, 1, 1);
        params.not_after = rcgen::date_time_ymd(2049, 12, 31);
        let ca_cert_pem = params.self_signed(&key)?.pem();
        Ok(Self {
            ca_cert_pem,
            issuer: Issuer::new(params, key),
        })
    }

    /// The CA certificate, PEM, for clients to trust.
    pub fn ca_pem(&self) -> &str {
        &self.ca_cert_pem
    }

    /// A rustls server configuration with a fresh certificate for `names` (DNS names or IP
    /// addresses), chained to this CA.
    pub fn server_config(&self, names: &[String]) -> Result<Arc<rustls::ServerConfig>, PkiError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(names.to_vec())?;
        params.distinguished_name = name(names.first().map_or("m365-emulator", String::as_str));
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        // Strict verifiers (Python's ssl with VERIFY_X509_STRICT, as urllib3 2 sets) need the
        // authority key identifier to find the issuer.
        params.use_authority_key_identifier_extension = true;
        let now = crate::clock::Clock::new().now();
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(365);
        let cert = params.signed_by(&key, &self.issuer)?;
        let chain = vec![cert.der().clone()];
        let key_der = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("aws-lc-rs supports the default protocol versions")
            .with_no_client_auth()
            .with_single_cert(chain, key_der)
            .map_err(|e| PkiError::BadCertificate(e.to_string()))?;
        Ok(Arc::new(config))
    }
}

/// The RSA key that signs access tokens, with the self-signed certificate Entra publishes for
/// its signing keys (in JWKS as `x5c`).
pub struct TokenSigningKey {
    key_pem: String,
    encoding: jsonwebtoken::EncodingKey,
    decoding: jsonwebtoken::DecodingKey,
    jwk: serde_json::Value,
    /// Key id: base64url SHA-1 thumbprint of the certificate, as Entra's `kid`/`x5t`.
    pub kid: String,
}

impl std::fmt::Debug for TokenSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl TokenSigningKey {
    /// Loads the key from `dir/token-signing-key.pem` or creates and saves one, so tokens cached
    /// by clients stay valid across restarts.
    pub fn load_or_create(dir: &Path) -> Result<Self, PkiError> {
        let path = dir.join("token-signing-key.pem");
        if let Ok(key_pem) = std::fs::read_to_string(&path) {
            return Self::from_key_pem(key_pem);
        }
        let key = Self::generate()?;
        write_file(&path, key.key_pem.as_bytes(), true)?;
        Ok(key)
    }

    /// A new key held in memory only.
    pub fn generate() -> Result<Self, PkiError> {
        Self::from_key_pem(rsa_key()?.serialize_pem())
    }

    fn from_key_pem(key_pem: String) -> Result<Self, PkiError> {
        let key = KeyPair::from_pem(&key_pem)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = name("accounts.accesscontrol.windows.net");
        params.not_before = rcgen::date_time_ymd(2024, 1, 1);
        params.not_after = rcgen::date_time_ymd(2049, 12, 31);
        let cert_der = params.self_signed(&key)?.der().to_vec();
        let cert = RegisteredCertificate::parse(&cert_der)?;
        let kid = URL_SAFE_NO_PAD.encode(cert.sha1);
        let (n, e) = rsa_components(&cert.rsa_public_key);
        let jwk = serde_json::json!({
            "kty": "RSA",
            "use": "sig",
            "kid": kid,
            "x5t": kid,
            "n": URL_SAFE_NO_PAD.encode(n),
            "e": URL_SAFE_NO_PAD.encode(e),
            "x5c": [STANDARD.encode(&cert_der)],
        });
        let encoding = jsonwebtoken::EncodingKey::from_rsa_pem(key_pem.as_bytes())
            .map_err(|e| PkiError::BadCertificate(e.to_string()))?;
        Ok(Self {
            key_pem,
            encoding,
            decoding: jsonwebtoken::DecodingKey::from_rsa_der(&cert.rsa_public_key),
            jwk,
            kid,
        })
    }

    /// The key for signing (RS256).
    pub fn encoding_key(&self) -> &jsonwebtoken::EncodingKey {
        &self.encoding
    }

    /// The key for verifying tokens this emulator issued.
    pub fn decoding_key(&self) -> &jsonwebtoken::DecodingKey {
        &self.decoding
    }

    /// The JWKS entry for this key, shaped like Entra's `discovery/keys` document.
    pub fn jwk(&self) -> &serde_json::Value {
        &self.jwk
    }
}

/// Splits a PKCS#1 `RSAPublicKey` into modulus and exponent.
fn rsa_components(pkcs1: &[u8]) -> (Vec<u8>, Vec<u8>) {
    use x509_parser::der_parser::ber::BerObjectContent;
    let parsed = x509_parser::der_parser::parse_der(pkcs1).map(|(_, o)| o);
    let items = match parsed.as_ref().map(|o| &o.content) {
        Ok(BerObjectContent::Sequence(items)) if items.len() == 2 => items,
        _ => return (Vec::new(), Vec::new()),
    };
    let int = |i: usize| match items[i].content {
        BerObjectContent::Integer(bytes) => bytes.iter().copied().skip_while(|b| *b == 0).collect(),
        _ => Vec::new(),
    };
    (int(0), int(1))
}

fn rsa_key() -> Result<KeyPair, PkiError> {
    Ok(KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)?)
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}

/// Writes a file, creating its directory; private keys get mode 0600.
pub(crate) fn write_file(path: &Path, bytes: &[u8], private: bool) -> Result<(), PkiError> {
    let io = |source| PkiError::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    use std::io::Write as _;
    options.open(path).and_then(|mut f| f.write_all(bytes)).map_err(io)
}
