//! What packagers use: the manual pages and shell completions generated from the CLI
//! definition, and the systemd unit.

use crate::support::*;

#[tokio::test]
async fn manual_pages_for_every_command() {
    let world = World::start().await;
    let dir = world.dir.path().join("man");
    let out = world.run(&["man", "--dir", dir.to_str().unwrap()], b"").await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for page in [
        "m365-mailer.1",
        "m365-mailer-send.1",
        "m365-mailer-relay.1",
        "m365-mailer-queue.1",
        "m365-mailer-doctor.1",
    ] {
        let text = std::fs::read_to_string(dir.join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(text.contains(".TH") && text.contains(".SH NAME"), "{page}");
    }
    let relay = std::fs::read_to_string(dir.join("m365-mailer-relay.1")).unwrap();
    assert!(
        relay.contains("\\-\\-queue\\-dir") && relay.contains("\\-\\-log\\-format"),
        "{relay}"
    );
    let main = world.run(&["man"], b"").await;
    assert!(String::from_utf8_lossy(&main.stdout).contains("m365\\-mailer\\-relay(1)"));
}

#[tokio::test]
async fn shell_completions_load() {
    let world = World::start().await;
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = world.run(&["completions", shell], b"").await;
        assert!(out.status.success(), "{shell}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains("relay") && text.contains("hash-password"), "{shell}");
    }
    let bash = world.run(&["completions", "bash"], b"").await;
    let script = world.file("m365-mailer.bash", &bash.stdout);
    let check = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!("source {} && complete -p m365-mailer", script.display()))
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    assert!(String::from_utf8_lossy(&check.stdout).contains("m365-mailer"));
}

#[test]
fn the_systemd_unit_verifies() {
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/contrib/systemd/m365-mailer-relay.service"
    ))
    .unwrap();
    for hardening in [
        "DynamicUser=yes",
        "ProtectSystem=strict",
        "StateDirectory=m365-mailer",
        "NoNewPrivileges=yes",
    ] {
        assert!(unit.contains(hardening), "{hardening}");
    }
    for credentials in [
        "LoadCredential=client-secret:/etc/m365-mailer/client-secret",
        "ProcSubset=pid",
    ] {
        assert!(unit.contains(credentials), "{credentials}");
    }
    if program("systemd-analyze").is_none() {
        return;
    }
    // Verified as installed, with the binary under test in place of /usr/bin/m365-mailer.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m365-mailer-relay.service");
    std::fs::write(
        &path,
        unit.replace("/usr/bin/m365-mailer", env!("CARGO_BIN_EXE_m365-mailer")),
    )
    .unwrap();
    let out = std::process::Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify:\n{stderr}"
    );
    // The hardening, as systemd scores it: exposure 2.0 ("OK") or lower.
    let out = std::process::Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--threshold=20", "--no-pager"])
        .arg(&path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "systemd-analyze security:\n{stdout}");
    assert!(stdout.contains("Overall exposure level"), "{stdout}");
}
