//! `send` end to end: the real binary, configured through the environment only, against the
//! emulator over TCP and TLS.

use mail_parser::MimeHeaders as _;

use crate::support::*;

#[tokio::test]
async fn sendmail_style_delivers_the_input_byte_for_byte() {
    let world = World::start().await;
    let message = complete_message("Byte for byte");
    world.send(&["-i", "bob@fabrikam.com"], &message, 0).await;
    let stored = world.emulator.store().messages();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].data, message, "nothing added, nothing lost, dots survive");
    assert_eq!(stored[0].rcpt_to, ["bob@fabrikam.com"]);
    assert_eq!(stored[0].mail_from, MAILBOX);
    let auth = world.emulator.stats().auth;
    assert_eq!(
        (auth.two_step, auth.initial_response),
        (1, 0),
        "a real token does not fit the 512-octet AUTH line"
    );
}

#[tokio::test]
async fn dash_t_takes_every_recipient_line_and_refuses_what_it_cannot_read() {
    let world = World::start().await;
    // As a new user runs it: two To lines and two Bcc lines.
    let message = b"From: mailer@contoso.com\nTo: a@x.example\nTo: b@x.example\nBcc: c@x.example\nBcc: d@x.example\nSubject: t\n\nb\n";
    let output = world.send(&["-t", "--dry-run"], message, 0).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let rcpt: Vec<&str> = stdout.lines().filter(|l| l.starts_with("RCPT TO:")).collect();
    assert_eq!(
        rcpt,
        [
            "RCPT TO:<a@x.example>",
            "RCPT TO:<b@x.example>",
            "RCPT TO:<c@x.example>",
            "RCPT TO:<d@x.example>"
        ]
    );
    assert!(!stdout.contains("Bcc:"), "{stdout}");
    // A name without an address would be a recipient lost: the message is refused instead.
    let output = world
        .send(
            &["-t"],
            b"From: mailer@contoso.com\nTo: a@x.example, Bob\nSubject: t\n\nb\n",
            65,
        )
        .await;
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("the To: line names `Bob`, which is not an email address"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(world.emulator.stats().smtp_connections, 0);
}

#[tokio::test]
async fn dash_t_reads_recipients_and_bcc_is_not_delivered() {
    let world = World::start().await;
    let message =
        b"To: a@fabrikam.com\nCc: c@fabrikam.com\nBcc: secret-audit@contoso.com\nSubject: Bcc test\n\nHello\n";
    world.send(&["-t", "-oi"], message, 0).await;
    let stored = &world.emulator.store().messages()[0];
    assert_eq!(
        stored.rcpt_to,
        ["a@fabrikam.com", "c@fabrikam.com", "secret-audit@contoso.com"]
    );
    let text = String::from_utf8_lossy(&stored.data);
    assert!(!text.contains("secret-audit"), "Bcc must not reach the message: {text}");
    // Added headers first, then the input minus Bcc, line endings normalised to CRLF.
    let added: Vec<&str> = text.lines().take(3).collect();
    assert!(
        added[0].starts_with("From: mailer@contoso.com")
            && added[1].starts_with("Date: ")
            && added[2].starts_with("Message-ID: <"),
        "{text}"
    );
    assert!(
        text.ends_with("To: a@fabrikam.com\r\nCc: c@fabrikam.com\r\nSubject: Bcc test\r\n\r\nHello\r\n"),
        "{text}"
    );
}

#[tokio::test]
async fn composed_from_flags_with_an_attachment() {
    let world = World::start().await;
    let attachment = world.file("report.csv", "a,b\n1,2\n");
    let attachment = attachment.to_str().unwrap();
    let args = [
        "--to",
        "a@fabrikam.com",
        "--bcc",
        "audit@contoso.com",
        "--subject",
        "Report",
        "--body",
        "See attached.",
        "--attach",
        attachment,
    ];
    world.send(&args, b"", 0).await;
    let stored = &world.emulator.store().messages()[0];
    assert_eq!(stored.rcpt_to, ["a@fabrikam.com", "audit@contoso.com"]);
    let parsed = mail_parser::MessageParser::default().parse(&stored.data).unwrap();
    assert_eq!(parsed.subject(), Some("Report"));
    assert!(parsed.bcc().is_none());
    let attachment = parsed.attachments().next().unwrap();
    assert_eq!(attachment.attachment_name(), Some("report.csv"));
    assert_eq!(attachment.contents(), b"a,b\n1,2\n");
    assert_eq!(attachment.content_type().map(|c| c.subtype()), Some(Some("csv")));
}

#[tokio::test]
async fn header_injection_and_a_foreign_from_are_refused_before_connecting() {
    let world = World::start().await;
    let output = world
        .send(
            &["--to", "a@fabrikam.com", "--subject", "x\nBcc: victim@fabrikam.com"],
            b"",
            64,
        )
        .await;
    assert!(String::from_utf8_lossy(&output.stderr).contains("line break"));
    let output = world
        .send(
            &["--to", "a@fabrikam.com", "--from", "ceo@contoso.com", "--subject", "x"],
            b"",
            77,
        )
        .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("SendAsDenied") && stderr.contains("Add-RecipientPermission -Identity 'ceo@contoso.com'"),
        "{stderr}"
    );
    assert_eq!(world.emulator.stats().smtp_connections, 0);
    assert_eq!(
        world.emulator.stats().tokens_issued(),
        0,
        "refused before asking for a token"
    );
}

#[tokio::test]
async fn an_allowed_sender_may_be_used() {
    let mut world = World::start().await;
    let config = world.file(
        "config.toml",
        format!("[accounts.main]\nallowed_senders = [\"{SHARED}\"]\n"),
    );
    world.set("M365_MAILER_FROM", SHARED);
    let config = config.to_str().unwrap();
    world
        .send(
            &["--config", config, "--to", "a@fabrikam.com", "--subject", "Alert"],
            b"",
            0,
        )
        .await;
    let stored = &world.emulator.store().messages()[0];
    assert_eq!(stored.mail_from, SHARED);
}

#[tokio::test]
async fn dry_run_prints_and_sends_nothing() {
    let world = World::start().await;
    let output = world
        .send(&["--dry-run", "--to", "a@fabrikam.com", "--subject", "Dry"], b"", 0)
        .await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.starts_with("MAIL FROM:<mailer@contoso.com>\nRCPT TO:<a@fabrikam.com>\n\n"),
        "{stdout}"
    );
    assert!(stdout.contains("Subject: Dry"));
    assert_eq!(world.emulator.stats().tokens_issued(), 0);
}

#[tokio::test]
async fn verbose_shows_the_transcript_without_the_token() {
    let world = World::start().await;
    let output = world
        .send(&["-v", "bob@fabrikam.com"], &complete_message("Verbose"), 0)
        .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("C: AUTH XOAUTH2\n") && stderr.contains("C: [redacted]"),
        "{stderr}"
    );
    assert!(stderr.contains("S: 235 2.7.0 Authentication successful"));
    assert!(!stderr.contains("eyJ"), "no token in the transcript");
    assert!(!stderr.contains(SECRET));
}

#[tokio::test]
async fn invoked_as_sendmail() {
    let world = World::start().await;
    let link = world.dir.path().join("sendmail");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_m365-mailer"), &link).unwrap();
    let output = tokio::process::Command::new(&link)
        .args(["-t", "-i", "-f", MAILBOX])
        .env_clear()
        .env("HOME", world.dir.path())
        .env("XDG_CACHE_HOME", world.cache_dir())
        .envs(world.env.iter().map(|(k, v)| (k, v)))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use tokio::io::AsyncWriteExt as _;
    let mut child = output;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"To: cron@fabrikam.com\nSubject: nightly\n\nok\n")
        .await
        .unwrap();
    let output = child.wait_with_output().await.unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(world.emulator.store().messages()[0].rcpt_to, ["cron@fabrikam.com"]);
    let refused = tokio::process::Command::new(&link).arg("-bs").output().await.unwrap();
    assert_eq!(refused.status.code(), Some(64));
}

#[tokio::test]
async fn config_check_shows_each_origin_and_no_secret() {
    let mut world = World::start().await;
    let config = world.file(
        "config.toml",
        "default_account = \"alerts\"\n\n[accounts.alerts]\nfrom = \"alerts@contoso.com\"\nallowed_senders = [\"alerts@contoso.com\"]\nsmtp_port = 2525\n\n[accounts.other]\nmailbox = \"other@contoso.com\"\n",
    );
    world.set("M365_MAILER_SMTP_PORT", "");
    let output = world
        .run(
            &[
                "config",
                "check",
                "--config",
                config.to_str().unwrap(),
                "--tenant",
                "contoso.com",
            ],
            b"",
        )
        .await;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8_lossy(&output.stdout)
        .replace(world.dir.path().to_str().unwrap(), "<dir>")
        .replace(&world.emulator.base_url(), "<authority>");
    assert!(!text.contains(SECRET));
    insta::assert_snapshot!(text);
}

#[tokio::test]
async fn demo_runs_end_to_end() {
    let world = World::start().await;
    let output = world.run(&["demo"], b"").await;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8_lossy(&output.stdout);
    for expected in [
        "roles     [\"SMTP.SendAsApp\",\"Mail.Send\"]",
        "appidacr  \"2\"",
        "S: 235 2.7.0 Authentication successful",
        "identical to what was sent: true",
        "554 5.2.252 SendAsDenied",
        "Add-RecipientPermission",
    ] {
        assert!(stdout.contains(expected), "missing {expected:?} in:\n{stdout}");
    }
    assert!(!stdout.contains("Xq58Q~demo"), "the demo secret is not printed");
}
