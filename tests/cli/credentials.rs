//! Certificate credentials end to end: PKCS#12 in the legacy (3DES) and the current (AES-256,
//! PBES2) encodings, encrypted PKCS#8 PEM, PKCS#1 PEM; written by the tests with p12-keystore
//! and, independently, with the openssl command.

use p12_keystore::{EncryptionAlgorithm, KeyStore, KeyStoreEntry, MacAlgorithm, PrivateKeyChain};
use rustls::pki_types::pem::PemObject as _;

use crate::support::*;

const PASSWORD: &str = "pfx pässword";

fn keystore() -> KeyStore {
    let cert = client_cert();
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes()).unwrap();
    let der = rustls::pki_types::CertificateDer::from_pem_slice(cert.cert_pem.as_bytes()).unwrap();
    let chain = PrivateKeyChain::new(
        vec![1u8, 2, 3, 4],
        p12_keystore::PrivateKey::from_der(key.secret_der()).unwrap(),
        [p12_keystore::Certificate::from_der(&der).unwrap()],
    );
    let mut store = KeyStore::new();
    store.add_entry("mailer", KeyStoreEntry::PrivateKeyChain(chain));
    store
}

/// Sends with the certificate at `path` (and its password) in place of the secret.
async fn send_with_certificate(world: &mut World, path: &std::path::Path, password: Option<&str>, code: i32) -> String {
    world.set("AZURE_CLIENT_SECRET", "");
    world.set("AZURE_CLIENT_CERTIFICATE_PATH", path.to_str().unwrap());
    world.set("AZURE_CLIENT_CERTIFICATE_PASSWORD", password.unwrap_or(""));
    let output = world
        .send(
            &["--no-token-cache", "bob@fabrikam.com"],
            &complete_message("Certificate"),
            code,
        )
        .await;
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn pkcs12_in_both_encodings() {
    let store = keystore();
    let legacy = store
        .writer(PASSWORD)
        .encryption_algorithm(EncryptionAlgorithm::PbeWithShaAnd3KeyTripleDesCbc)
        .mac_algorithm(MacAlgorithm::HmacSha1)
        .write()
        .unwrap();
    let modern = store
        .writer(PASSWORD)
        .encryption_algorithm(EncryptionAlgorithm::PbeWithHmacSha256AndAes256)
        .mac_algorithm(MacAlgorithm::HmacSha256)
        .write()
        .unwrap();
    let mut world = World::start().await;
    for (name, bytes) in [("legacy.pfx", legacy), ("modern.pfx", modern)] {
        let path = world.file(name, bytes);
        send_with_certificate(&mut world, &path, Some(PASSWORD), 0).await;
    }
    assert_eq!(world.emulator.store().len(), 2);
    assert_eq!(world.emulator.stats().tokens_for(CLIENT).issued, 2);

    let path = world.dir.path().join("modern.pfx");
    let stderr = send_with_certificate(&mut world, &path, Some("wrong"), 78).await;
    assert!(stderr.contains("password does not open"), "{stderr}");
}

#[tokio::test]
async fn files_written_by_openssl() {
    let Some(openssl) = program("openssl") else { return };
    let mut world = World::start().await;
    let key = world.file("key.pem", &client_cert().key_pem);
    let cert = world.file("cert.pem", &client_cert().cert_pem);
    let path = |name: &str| world.dir.path().join(name).to_str().unwrap().to_owned();
    let (key, cert) = (key.to_str().unwrap(), cert.to_str().unwrap());
    let pass = format!("pass:{PASSWORD}");
    // Current OpenSSL defaults: PBES2, AES-256-CBC, PBKDF2 with SHA-256.
    sh(
        &openssl,
        &[
            "pkcs12",
            "-export",
            "-inkey",
            key,
            "-in",
            cert,
            "-out",
            &path("openssl-aes.pfx"),
            "-passout",
            &pass,
        ],
    );
    // The legacy encoding older Windows and OpenSSL 1.1 produce.
    sh(
        &openssl,
        &[
            "pkcs12",
            "-export",
            "-inkey",
            key,
            "-in",
            cert,
            "-out",
            &path("openssl-3des.pfx"),
            "-passout",
            &pass,
            "-keypbe",
            "PBE-SHA1-3DES",
            "-certpbe",
            "PBE-SHA1-3DES",
            "-macalg",
            "sha1",
        ],
    );
    sh(
        &openssl,
        &[
            "pkcs8",
            "-topk8",
            "-v2",
            "aes-256-cbc",
            "-in",
            key,
            "-out",
            &path("encrypted-key.pem"),
            "-passout",
            &pass,
        ],
    );
    sh(
        &openssl,
        &["rsa", "-in", key, "-traditional", "-out", &path("pkcs1-key.pem")],
    );
    let encrypted = std::fs::read_to_string(path("encrypted-key.pem")).unwrap() + &client_cert().cert_pem;
    let encrypted_pem = world.file("encrypted.pem", encrypted);
    let pkcs1 = std::fs::read_to_string(path("pkcs1-key.pem")).unwrap() + &client_cert().cert_pem;
    let pkcs1_pem = world.file("pkcs1.pem", pkcs1);

    for name in ["openssl-aes.pfx", "openssl-3des.pfx"] {
        let pfx = world.dir.path().join(name);
        send_with_certificate(&mut world, &pfx, Some(PASSWORD), 0).await;
    }
    send_with_certificate(&mut world, &encrypted_pem, Some(PASSWORD), 0).await;
    send_with_certificate(&mut world, &pkcs1_pem, None, 0).await;
    assert_eq!(world.emulator.store().len(), 4);

    let stderr = send_with_certificate(&mut world, &encrypted_pem, None, 78).await;
    assert!(stderr.contains("is encrypted: give its password"), "{stderr}");
    let stderr = send_with_certificate(&mut world, &encrypted_pem, Some("wrong"), 78).await;
    assert!(stderr.contains("password does not open"), "{stderr}");
}

#[tokio::test]
async fn rs256_assertions_from_a_config_file_and_an_unregistered_certificate() {
    let mut world = World::start().await;
    let pem = world.file(
        "mailer.pem",
        format!("{}{}", client_cert().key_pem, client_cert().cert_pem),
    );
    let config = world.file(
        "config.toml",
        format!(
            "[accounts.main]\ncertificate = \"{}\"\nassertion = \"rs256\"\nsend_x5c = true\n",
            pem.display()
        ),
    );
    world.set("AZURE_CLIENT_SECRET", "");
    world
        .send(
            &[
                "--config",
                config.to_str().unwrap(),
                "--no-token-cache",
                "bob@fabrikam.com",
            ],
            &complete_message("RS256"),
            0,
        )
        .await;

    let now = now();
    let stranger = m365_emulator::ClientCertificate::generate(
        "Stranger",
        now - time::Duration::days(1),
        now + time::Duration::days(30),
    )
    .unwrap();
    let path = world.file("stranger.pem", format!("{}{}", stranger.key_pem, stranger.cert_pem));
    let stderr = send_with_certificate(&mut world, &path, None, 77).await;
    assert!(
        stderr.contains("AADSTS700027") && stderr.contains("is not uploaded to the app registration"),
        "{stderr}"
    );
}
