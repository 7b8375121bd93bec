//! Test environment: the emulator with a working tenant, and the real `m365-mailer` binary
//! configured for it through the environment only, with its own home, cache and config dirs.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

use m365_emulator::{ClientCertificate, Emulator, Options, Scenario};
use tokio::io::AsyncWriteExt as _;

pub(crate) use m365_emulator::fixture::{CLIENT, MAILBOX, SECRET_ID, TENANT};
pub(crate) const SHARED: &str = m365_emulator::fixture::SHARED_MAILBOX;
pub(crate) const SECRET: &str = "Xq58Q~integration.secret.value";

/// The wall clock through the emulator's clock module.
pub(crate) fn now() -> time::OffsetDateTime {
    m365_emulator::Clock::new().now()
}

/// A stopwatch's start, for tests that measure how long the program took (the tests' one read
/// of the monotonic clock).
#[allow(clippy::disallowed_methods)]
pub(crate) fn instant() -> std::time::Instant {
    std::time::Instant::now()
}

/// One client certificate for the test binary.
pub(crate) fn client_cert() -> &'static ClientCertificate {
    static CERT: OnceLock<ClientCertificate> = OnceLock::new();
    CERT.get_or_init(|| {
        let now = now();
        ClientCertificate::generate(
            "Contoso Mailer",
            now - time::Duration::days(1),
            now + time::Duration::days(365),
        )
        .unwrap()
    })
}

/// A tenant set up as the guides say.
pub(crate) fn contoso() -> Scenario {
    m365_emulator::fixture::contoso(SECRET, Some(&client_cert().cert_pem))
}

/// The emulator and a private directory for the binary's home, cache and files.
pub(crate) struct World {
    pub(crate) emulator: Emulator,
    pub(crate) dir: tempfile::TempDir,
    /// Environment the binary runs with.
    pub(crate) env: Vec<(String, String)>,
}

impl World {
    pub(crate) async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub(crate) async fn start_with(change: impl FnOnce(&mut Scenario)) -> Self {
        let mut scenario = contoso();
        change(&mut scenario);
        let emulator = Emulator::start(Options::new(scenario)).await.expect("emulator starts");
        let dir = tempfile::tempdir().unwrap();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, emulator.ca_pem()).unwrap();
        let env = vec![
            ("AZURE_TENANT_ID".into(), TENANT.into()),
            ("AZURE_CLIENT_ID".into(), CLIENT.into()),
            ("AZURE_CLIENT_SECRET".into(), SECRET.into()),
            ("M365_MAILER_MAILBOX".into(), MAILBOX.into()),
            // The token endpoint is made from the tenant, as with Microsoft's authority.
            ("AZURE_AUTHORITY_HOST".into(), emulator.base_url()),
            ("M365_MAILER_SMTP_HOST".into(), emulator.smtp_addr().ip().to_string()),
            ("M365_MAILER_SMTP_PORT".into(), emulator.smtp_addr().port().to_string()),
            ("M365_MAILER_CA_FILE".into(), ca_file.display().to_string()),
        ];
        Self { emulator, dir, env }
    }

    /// Replaces or adds an environment variable; an empty value removes it.
    pub(crate) fn set(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        if !value.is_empty() {
            self.env.push((key.into(), value.into()));
        }
    }

    /// Writes a file into the private directory.
    pub(crate) fn file(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// The library's mailer with this world's settings (by their environment names) and the
    /// config file `config`, as a program embedding it would build it.
    pub(crate) fn mailer(&self, config: &Path) -> m365_mailer::Mailer {
        let env = self.env.clone();
        m365_mailer::Mailer::from_settings(Some(config), None, move |name| {
            env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
        .expect("a mailer")
    }

    pub(crate) fn cache_dir(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    /// Runs `m365-mailer args…` with `stdin`.
    pub(crate) async fn run(&self, args: &[&str], stdin: &[u8]) -> Output {
        self.run_program(Path::new(env!("CARGO_BIN_EXE_m365-mailer")), args, stdin)
            .await
    }

    /// Runs `program args…` with `stdin` in this world's environment.
    pub(crate) async fn run_program(&self, program: &Path, args: &[&str], stdin: &[u8]) -> Output {
        let mut command = tokio::process::Command::new(program);
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("XDG_CACHE_HOME", self.cache_dir())
            .env("XDG_CONFIG_HOME", self.dir.path().join("config"))
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = command.spawn().unwrap();
        let mut input = child.stdin.take().unwrap();
        // A command that fails early does not read its input: that is its answer, not an error.
        let _ = input.write_all(stdin).await;
        drop(input);
        child.wait_with_output().await.unwrap()
    }

    /// `send` with these arguments; asserts the exit code.
    pub(crate) async fn send(&self, args: &[&str], stdin: &[u8], code: i32) -> Output {
        let mut all = vec!["send"];
        all.extend_from_slice(args);
        let output = self.run(&all, stdin).await;
        assert_eq!(
            output.status.code(),
            Some(code),
            "send {args:?}\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }
}

/// A message with all its headers, so nothing is added.
pub(crate) fn complete_message(subject: &str) -> Vec<u8> {
    format!(
        "From: {MAILBOX}\r\nTo: bob@fabrikam.com\r\nSubject: {subject}\r\nDate: Mon, 23 Nov 2026 18:00:00 +0000\r\nMessage-ID: <{}@contoso.com>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nLine one.\r\n.A line starting with a dot.\r\n..Two dots.\r\n\r\n.\r\nLast line.\r\n",
        uuid::Uuid::new_v4().simple()
    )
    .into_bytes()
}

/// Runs a program if it is installed; under CI a missing program is a failure.
pub(crate) fn program(name: &str) -> Option<PathBuf> {
    let found = if Path::new(name).is_absolute() {
        Path::new(name).is_file()
    } else {
        std::process::Command::new(name)
            .arg("--version")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok()
    };
    if found {
        return Some(PathBuf::from(name));
    }
    if std::env::var_os("CI").is_some() {
        panic!("{name} is required under CI (.ci/run installs it)");
    }
    eprintln!("skipped: {name} is not installed");
    None
}

/// Runs `program args` and asserts success.
pub(crate) fn sh(program: &Path, args: &[&str]) {
    let output = std::process::Command::new(program).args(args).output().unwrap();
    assert!(
        output.status.success(),
        "{} {args:?}: {}",
        program.display(),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A relay started as the real binary, with its queue in the world's directory.
pub(crate) struct RelayProcess {
    child: tokio::process::Child,
    /// Addresses of the configured listeners, in order.
    pub(crate) addresses: Vec<std::net::SocketAddr>,
    /// The admin endpoint.
    pub(crate) admin: Option<std::net::SocketAddr>,
    /// Everything it logged so far.
    pub(crate) log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl RelayProcess {
    /// The first listener.
    pub(crate) fn addr(&self) -> std::net::SocketAddr {
        self.addresses[0]
    }

    /// Stops it with SIGKILL: no chance to clean up.
    pub(crate) async fn kill(mut self) {
        self.child.kill().await.unwrap();
    }

    /// Its process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }

    /// Sends it a signal (`HUP`, `TERM`, …).
    pub(crate) fn signal(&self, name: &str) {
        let pid = self.child.id().expect("running");
        let status = std::process::Command::new("kill")
            .arg(format!("-{name}"))
            .arg(pid.to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits until the log contains `text`.
    pub(crate) async fn wait_for_log(&self, text: &str, timeout: std::time::Duration) {
        let found = tokio::time::timeout(timeout, async {
            while !self.log_text().contains(text) {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(found.is_ok(), "no `{text}` in the log:\n{}", self.log_text());
    }

    /// Stops it with SIGTERM and waits for it to exit.
    pub(crate) async fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().expect("running");
        std::process::Command::new("kill")
            .arg(pid.to_string())
            .status()
            .unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(60), self.child.wait())
            .await
            .expect("the relay stops within a minute")
            .unwrap()
    }

    pub(crate) fn log_text(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl World {
    /// The config file holding `relay` (a `[relay]` section; the account comes from the
    /// environment).
    pub(crate) fn relay_config(&self, relay: &str) -> PathBuf {
        self.file("relay.toml", relay)
    }

    /// Starts `m365-mailer relay` with `relay` as config and waits until it listens.
    pub(crate) async fn relay(&self, relay: &str) -> RelayProcess {
        let config = self.relay_config(relay);
        self.relay_with(&["--config", config.to_str().unwrap()]).await
    }

    /// Starts `m365-mailer relay args…` with the world's queue directory, or the PostgreSQL
    /// queue its environment names (`M365_MAILER_QUEUE_URL`).
    pub(crate) async fn relay_with(&self, args: &[&str]) -> RelayProcess {
        use tokio::io::AsyncBufReadExt as _;
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_m365-mailer"));
        command.arg("relay").args(args);
        if !self.env.iter().any(|(k, _)| k == "M365_MAILER_QUEUE_URL") {
            command.arg("--queue-dir").arg(self.dir.path().join("queue"));
        }
        command
            .args(["--admin", "127.0.0.1:0"])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("XDG_CACHE_HOME", self.cache_dir())
            .env("XDG_CONFIG_HOME", self.dir.path().join("config"))
            .env("M365_MAILER_LOG", "info")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().unwrap();
        let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let mut addresses = Vec::new();
        let mut admin = None;
        let started = tokio::time::timeout(std::time::Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                log.lock().unwrap().push_str(&format!("{line}\n"));
                if let Some(addr) = line.strip_prefix("m365-mailer relay: listening on ") {
                    addresses.push(addr.parse().unwrap());
                } else if let Some(addr) = line.strip_prefix("m365-mailer relay: admin on http://") {
                    admin = Some(addr.parse().unwrap());
                } else if line.starts_with("m365-mailer relay: ready") {
                    return true;
                }
                if line.starts_with("m365-mailer: ") {
                    return false;
                }
            }
            false
        })
        .await;
        assert!(started == Ok(true), "the relay did not start:\n{}", log.lock().unwrap());
        let sink = std::sync::Arc::clone(&log);
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                sink.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
        RelayProcess {
            child,
            addresses,
            admin,
            log,
        }
    }

    /// Waits until the emulator holds `count` messages (or `timeout` passes); returns how many.
    pub(crate) async fn wait_for_messages(&self, count: usize, timeout: std::time::Duration) -> usize {
        let store = self.emulator.store();
        let _ = tokio::time::timeout(timeout, async {
            while store.len() < count {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        })
        .await;
        store.len()
    }
}

/// The queue id the relay wrote into a delivered message's `Received` header.
pub(crate) fn relay_queue_id(data: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(&data[..data.len().min(2048)]);
    let start = text.find(" (m365-mailer) with ")?;
    let rest = &text[start..];
    let id = rest.split(" id ").nth(1)?;
    Some(id.chars().take_while(char::is_ascii_alphanumeric).collect())
}

/// The Python interpreter for interoperability scripts.
pub(crate) fn python() -> String {
    std::env::var("M365_TEST_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

/// Hands `content` to the relay on `port` with Python's smtplib.
pub(crate) fn submit(port: u16, recipients: &[&str], content: &[u8]) {
    const SCRIPT: &str = r#"
import smtplib, sys
port, recipients = int(sys.argv[1]), sys.argv[2].split(",")
with smtplib.SMTP("127.0.0.1", port, timeout=20) as s:
    s.sendmail("mailer@contoso.com", recipients, sys.stdin.buffer.read())
"#;
    use std::io::Write as _;
    let mut child = std::process::Command::new(python())
        .args(["-c", SCRIPT, &port.to_string(), &recipients.join(",")])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(content).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// `GET path` on the relay's admin endpoint: status and body.
pub(crate) async fn admin_get(relay: &RelayProcess, path: &str) -> (u16, String) {
    let url = format!("http://{}{path}", relay.admin.expect("the admin endpoint runs"));
    let response = reqwest::get(&url).await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// An Argon2 hash of `password` made by the binary itself.
pub(crate) async fn hash(world: &World, password: &str) -> String {
    let out = world
        .run(&["relay", "hash-password"], format!("{password}\n").as_bytes())
        .await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}
