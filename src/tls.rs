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
pub enum TlsError {
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
pub fn read_pem_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
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

/// A client configuration trusting Mozilla's roots, `SSL_CERT_FILE`, and `extra_ca_file`.
pub fn client_config(extra_ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, TlsError> {
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
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("aws-lc-rs supports TLS 1.2 and 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
