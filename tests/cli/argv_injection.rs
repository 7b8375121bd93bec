//! `send` as `/usr/sbin/sendmail` called by a web application with text its user typed: no
//! argument after a recipient is ever an option. A listening trap stands for the endpoint an
//! attacker would name; it must never be reached.

use std::time::Duration;

use crate::support::*;

/// A TCP listener that counts who connects to it.
struct Trap {
    address: std::net::SocketAddr,
    hits: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Trap {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = std::sync::Arc::clone(&hits);
        tokio::spawn(async move {
            while let Ok((_stream, _)) = listener.accept().await {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        });
        Self { address, hits }
    }

    fn hits(&self) -> usize {
        self.hits.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn options_after_a_recipient_never_take_effect() {
    let world = World::start().await;
    let trap = Trap::start().await;
    let url = format!("http://{}/token", trap.address);
    let port = trap.address.port().to_string();
    let secret_file = world.file("passwd", "root:x:0:0\n");
    let other_config = world.file("other.toml", "[accounts.evil]\nmailbox = \"x@evil.example\"\n");
    let message = b"Subject: contact form\n\nhello\n";
    let attempts: Vec<Vec<String>> = vec![
        vec!["ops@contoso.com".into(), format!("--token-endpoint={url}")],
        vec!["ops@contoso.com".into(), "--token-endpoint".into(), url.clone()],
        vec![
            "ops@contoso.com".into(),
            "--smtp-host".into(),
            "127.0.0.1".into(),
            "--smtp-port".into(),
            port.clone(),
        ],
        vec![
            "ops@contoso.com".into(),
            "--security".into(),
            "insecure-plaintext".into(),
        ],
        vec![
            "ops@contoso.com".into(),
            "--config".into(),
            other_config.display().to_string(),
        ],
        vec![
            "ops@contoso.com".into(),
            "--attach".into(),
            secret_file.display().to_string(),
            "--subject".into(),
            "x".into(),
        ],
        vec![
            "ops@contoso.com".into(),
            "-odb".into(),
            format!("--token-endpoint={url}"),
        ],
        vec!["--".into(), format!("--token-endpoint={url}")],
    ];
    // As `m365-mailer send …` and as the `sendmail` symlink.
    let sendmail = world.dir.path().join("sendmail");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_m365-mailer"), &sendmail).unwrap();
    for args in &attempts {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = world.send(&args, message, 64).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("give options before the recipients"),
            "{args:?}: {stderr}"
        );
        let out = std::process::Command::new(&sendmail)
            .args(&args)
            .env_clear()
            .env("HOME", world.dir.path())
            .envs(world.env.iter().map(|(k, v)| (k, v)))
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(64), "sendmail {args:?}");
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(trap.hits(), 0, "the named endpoint was never reached");
    assert_eq!(world.emulator.stats().smtp_connections, 0, "nothing was sent at all");
    assert!(world.emulator.store().is_empty());
    // Options before the recipient still work as options.
    world.send(&["-i", "-odb", "ops@contoso.com"], message, 0).await;
    assert_eq!(world.emulator.store().len(), 1);
}
