//! The library's examples (`examples/`), built by `cargo test`, run against the emulator as a
//! program using the crate would.

use std::path::PathBuf;

use crate::support::*;

/// `target/<profile>/examples/<name>`, beside this test binary's `deps/`.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let path = profile.join("examples").join(name);
    assert!(
        path.exists(),
        "{} is not built (cargo test builds the examples)",
        path.display()
    );
    path
}

#[tokio::test]
async fn the_secret_and_the_certificate_examples_send_and_report_refusals() {
    let mut world = World::start().await;
    let output = world
        .run_program(&example("send_with_secret"), &["bob@fabrikam.com"], b"")
        .await;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("accepted: 250"));

    world.set("AZURE_CLIENT_SECRET", "");
    let pem = world.file(
        "mailer.pem",
        format!("{}{}", client_cert().key_pem, client_cert().cert_pem),
    );
    world.set("AZURE_CLIENT_CERTIFICATE_PATH", pem.to_str().unwrap());
    let output = world
        .run_program(&example("send_with_certificate"), &["carol@fabrikam.com"], b"")
        .await;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let store = world.emulator.store();
    assert_eq!(store.len(), 2);

    // A refusal comes back with its verdict: the exit code and the catalog's fix.
    world.set("AZURE_CLIENT_CERTIFICATE_PATH", "");
    world.set("AZURE_CLIENT_SECRET", "not-the-secret");
    let output = world
        .run_program(&example("send_with_secret"), &["bob@fabrikam.com"], b"")
        .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(77), "{stderr}");
    assert!(stderr.contains("AADSTS7000215"), "{stderr}");
}
