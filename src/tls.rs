//! TLS client configuration shared by the token endpoint's HTTPS and SMTP.
//!
//! Certificates and host names are always verified. Trusted: Mozilla's roots (compiled in, so
//! minimal containers work), the bundle named by `SSL_CERT_FILE` if set, and an extra PEM file
//! from the configuration (a private CA, an intercepting proxy's CA, the emulator's CA).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;

/// Why trust anchors could not be loaded.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TlsError {
    /// A CA file could not be read.
    #[error("cannot read CA certificates from {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A CA file holds no usable certificate.
    #[error("{path} holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)")]
    Empty {
        /// The file.
        path: PathBuf,
    },
}

/// Reads every certificate of a PEM file.
pub(crate) fn read_pem_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&bytes).filter_map(Result::ok).collect();
    if certs.is_empty() {
        return Err(TlsError::Empty { path: path.to_owned() });
    }
    Ok(certs)
}

/// Mozilla's roots, `SSL_CERT_FILE`, and `extra_ca_file`.
pub(crate) fn root_store(extra_ca_file: Option<&Path>) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let env_file = std::env::var_os("SSL_CERT_FILE").map(PathBuf::from);
    for file in env_file.iter().map(PathBuf::as_path).chain(extra_ca_file) {
        for cert in read_pem_certificates(file)? {
            // A certificate rustls cannot use as an anchor is skipped, as OpenSSL skips it.
            let _ = roots.add(cert);
        }
    }
    Ok(roots)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// A client configuration trusting [`root_store`].
pub(crate) fn client_config(extra_ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("aws-lc-rs supports TLS 1.2 and 1.3")
        .with_root_certificates(root_store(extra_ca_file)?)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The same verification as [`client_config`], also keeping the certificates the server
/// presented, so `doctor` can name the issuer of a certificate it does not trust (an
/// intercepting proxy, a private CA). Nothing is accepted that `client_config` would refuse.
pub(crate) fn inspecting_config(
    extra_ca_file: Option<&Path>,
) -> Result<(Arc<rustls::ClientConfig>, Arc<PresentedChain>), TlsError> {
    let verifier =
        rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(root_store(extra_ca_file)?), provider())
            .build()
            .expect("a verifier over a root store always builds");
    let chain = Arc::new(PresentedChain {
        inner: verifier,
        seen: std::sync::Mutex::default(),
    });
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("aws-lc-rs supports TLS 1.2 and 1.3")
        .dangerous()
        .with_custom_certificate_verifier(Arc::clone(&chain) as Arc<dyn rustls::client::danger::ServerCertVerifier>)
        .with_no_client_auth();
    Ok((Arc::new(config), chain))
}

/// A verifier that delegates every decision to the standard one and remembers what it saw.
#[derive(Debug)]
pub(crate) struct PresentedChain {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    seen: std::sync::Mutex<Vec<CertificateDer<'static>>>,
}

impl PresentedChain {
    /// The certificates of the last handshake, leaf first.
    pub(crate) fn certificates(&self) -> Vec<CertificateDer<'static>> {
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl rustls::client::danger::ServerCertVerifier for PresentedChain {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &rustls::pki_types::ServerName<'_>,
        ocsp_response: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        let mut seen = vec![end_entity.clone().into_owned()];
        seen.extend(intermediates.iter().map(|c| c.clone().into_owned()));
        *self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = seen;
        self.inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The relay's server side: its configuration and the certificate's fingerprint.
#[derive(Debug, Clone)]
pub(crate) struct ServerIdentity {
    /// For the acceptor.
    pub(crate) config: Arc<rustls::ServerConfig>,
    /// SHA-256 of the leaf certificate, colon-separated hex (what clients pin or compare).
    pub(crate) fingerprint: String,
    /// Generated at start rather than the operator's.
    pub(crate) self_signed: bool,
}

/// Why the relay's server certificate could not be loaded.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ServerTlsError {
    /// The certificate file.
    #[error(transparent)]
    Certificate(#[from] TlsError),
    /// The key file.
    #[error("cannot read the private key from {path}: {detail}")]
    Key {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// Certificate and key do not belong together, or are unusable.
    #[error("the relay certificate cannot be used: {0}")]
    Unusable(String),
}

/// The operator's certificate chain and key (PEM files), or with `None` a self-signed
/// certificate for `hostname` generated now.
pub(crate) fn server_identity(files: Option<(&Path, &Path)>, hostname: &str) -> Result<ServerIdentity, ServerTlsError> {
    use rustls::pki_types::PrivateKeyDer;
    let (chain, key, self_signed) = match files {
        Some((certificate, key)) => {
            let chain = read_pem_certificates(certificate)?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| ServerTlsError::Key {
                path: key.to_owned(),
                detail: e.to_string(),
            })?;
            (chain, key, false)
        }
        None => {
            let names = vec![hostname.to_owned(), "localhost".to_owned()];
            let generated = rcgen::generate_simple_self_signed(names)
                .map_err(|e| ServerTlsError::Unusable(format!("cannot generate a certificate: {e}")))?;
            let key = PrivateKeyDer::try_from(generated.signing_key.serialize_der())
                .map_err(|e| ServerTlsError::Unusable(e.to_owned()))?;
            (vec![generated.cert.der().clone()], key, true)
        }
    };
    let fingerprint = {
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(chain[0].as_ref());
        digest.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
    };
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("aws-lc-rs supports TLS 1.2 and 1.3")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| ServerTlsError::Unusable(e.to_string()))?;
    Ok(ServerIdentity {
        config: Arc::new(config),
        fingerprint,
        self_signed,
    })
}

/// The error and its causes on one line (reqwest hides the TLS reason in the chain). reqwest's
/// own "error sending request for url (…)" repeats the URL and is left out.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let top = error.to_string();
    let mut text = if top.starts_with("error sending request") {
        String::new()
    } else {
        top
    };
    let mut source = error.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

/// Whether `error` (or one of its causes) is a certificate the trust anchors do not vouch for:
/// an intercepting proxy, a private CA, a name that does not match.
pub(crate) fn is_untrusted_certificate(error: &(dyn std::error::Error + 'static)) -> bool {
    if matches!(
        error.downcast_ref::<rustls::Error>(),
        Some(rustls::Error::InvalidCertificate(_))
    ) {
        return true;
    }
    // An `io::Error`'s `source()` skips the error it wraps: look inside it too.
    let wrapped = error.downcast_ref::<std::io::Error>().and_then(std::io::Error::get_ref);
    wrapped.is_some_and(|inner| is_untrusted_certificate(inner)) || error.source().is_some_and(is_untrusted_certificate)
}
