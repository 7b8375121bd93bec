//! Test environment: a working tenant built with the library's builder, a raw SMTP client that
//! shows every reply exactly, token requests over real HTTPS, and client assertions.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use m365_emulator::{ClientCertificate, Emulator, Endpoint, Options, Scenario};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use sha1::Digest as _;
use tokio::io::{AsyncBufReadExt as _, AsyncRead, AsyncWrite, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;

pub(crate) use m365_emulator::fixture::{APP_OBJECT, CLIENT, DOMAIN, MAILBOX, SECRET_ID, TENANT};
pub(crate) const SP: &str = m365_emulator::fixture::SERVICE_PRINCIPAL;
pub(crate) const SHARED: &str = m365_emulator::fixture::SHARED_MAILBOX;
pub(crate) const SECRET: &str = "Xq58Q~test.secret.value";
pub(crate) const EXCHANGE_SCOPE: &str = "https://outlook.office365.com/.default";

/// The wall clock, through the emulator's clock module (the one reader of the system time).
pub(crate) fn now() -> time::OffsetDateTime {
    m365_emulator::Clock::new().now()
}

/// Measures how long something took, to check that delays happened (never that work was fast).
pub(crate) struct Stopwatch(time::OffsetDateTime);

impl Stopwatch {
    pub(crate) fn start() -> Self {
        Self(now())
    }

    pub(crate) fn elapsed(&self) -> Duration {
        (now() - self.0).try_into().unwrap_or_default()
    }
}

/// One client certificate for the whole test binary (RSA key generation is the slow part).
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

/// A tenant set up as the guides say: everything works.
pub(crate) fn contoso() -> Scenario {
    m365_emulator::fixture::contoso(SECRET, Some(&client_cert().cert_pem))
}

/// The same tenant set up for RBAC for Applications: no Exchange permission, no mailbox
/// permissions, an `Application SMTP.SendAsApp` assignment over `MAILBOX` and `SHARED`.
pub(crate) fn contoso_rbac() -> Scenario {
    m365_emulator::fixture::contoso_rbac(SECRET, Some(&client_cert().cert_pem))
}

pub(crate) async fn start(scenario: Scenario) -> Emulator {
    Emulator::start(Options::new(scenario)).await.expect("emulator starts")
}

/// `start(contoso())` after `change`.
pub(crate) async fn start_with(change: impl FnOnce(&mut Scenario)) -> Emulator {
    let mut scenario = contoso();
    change(&mut scenario);
    start(scenario).await
}

// ---------------------------------------------------------------- token endpoint

pub(crate) fn http(emulator: &Emulator) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(emulator.ca_pem().as_bytes()).unwrap()])
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// Status and JSON body of a token request with these form fields.
pub(crate) async fn token_request(
    emulator: &Emulator,
    tenant: &str,
    form: &[(&str, &str)],
) -> (u16, serde_json::Value) {
    let response = http(emulator)
        .post(emulator.token_endpoint(tenant))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(serde_json::Value::Null);
    (status, body)
}

pub(crate) fn secret_form(scope: &str) -> Vec<(&'static str, String)> {
    vec![
        ("grant_type", "client_credentials".into()),
        ("client_id", CLIENT.into()),
        ("client_secret", SECRET.into()),
        ("scope", scope.into()),
    ]
}

/// An access token for `scope` with the app's secret.
pub(crate) async fn token(emulator: &Emulator, scope: &str) -> String {
    let form = secret_form(scope);
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, body) = token_request(emulator, TENANT, &form).await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

pub(crate) async fn exchange_token(emulator: &Emulator) -> String {
    token(emulator, EXCHANGE_SCOPE).await
}

/// The claims of a JWT, unverified.
pub(crate) fn claims(jwt: &str) -> serde_json::Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// How to build a client assertion.
#[derive(Clone)]
pub(crate) struct Assertion {
    pub(crate) alg: jsonwebtoken::Algorithm,
    pub(crate) sha256_thumbprint: bool,
    pub(crate) padded_thumbprint: bool,
    pub(crate) x5c: bool,
    pub(crate) iss: String,
    pub(crate) sub: String,
    pub(crate) aud: String,
    pub(crate) exp_offset: i64,
    pub(crate) nbf_offset: Option<i64>,
    pub(crate) key_pem: String,
    pub(crate) cert_pem: String,
}

impl Assertion {
    /// MSAL's defaults with a PFX: PS256 and `x5t#S256`.
    pub(crate) fn new(emulator: &Emulator) -> Self {
        Self {
            alg: jsonwebtoken::Algorithm::PS256,
            sha256_thumbprint: true,
            padded_thumbprint: false,
            x5c: false,
            iss: CLIENT.into(),
            sub: CLIENT.into(),
            aud: emulator.token_endpoint(TENANT),
            exp_offset: 600,
            nbf_offset: None,
            key_pem: client_cert().key_pem.clone(),
            cert_pem: client_cert().cert_pem.clone(),
        }
    }

    pub(crate) fn sign(&self) -> String {
        let der = CertificateDer::from_pem_slice(self.cert_pem.as_bytes()).unwrap();
        let encode = |bytes: &[u8]| {
            let t = URL_SAFE_NO_PAD.encode(bytes);
            if self.padded_thumbprint { pad(t) } else { t }
        };
        let mut header = jsonwebtoken::Header::new(self.alg);
        header.typ = Some("JWT".into());
        if self.sha256_thumbprint {
            header.x5t_s256 = Some(encode(&sha2::Sha256::digest(&der)));
        } else {
            header.x5t = Some(encode(&sha1::Sha1::digest(&der)));
        }
        if self.x5c {
            header.x5c = Some(vec![STANDARD.encode(&der)]);
        }
        let now = now().unix_timestamp();
        let mut claims = serde_json::json!({
            "aud": self.aud, "iss": self.iss, "sub": self.sub,
            "jti": uuid::Uuid::new_v4().to_string(), "iat": now, "exp": now + self.exp_offset,
        });
        if let Some(nbf) = self.nbf_offset {
            claims["nbf"] = (now + nbf).into();
        }
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(self.key_pem.as_bytes()).unwrap();
        jsonwebtoken::encode(&header, &claims, &key).unwrap()
    }

    pub(crate) fn form(&self, scope: &str) -> Vec<(&'static str, String)> {
        vec![
            ("grant_type", "client_credentials".into()),
            ("client_id", CLIENT.into()),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into(),
            ),
            ("client_assertion", self.sign()),
            ("scope", scope.into()),
        ]
    }
}

fn pad(mut s: String) -> String {
    while !s.len().is_multiple_of(4) {
        s.push('=');
    }
    s
}

// ---------------------------------------------------------------- SMTP

/// A reply as received: code, the enhanced code of the first line, and every line's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reply {
    pub(crate) code: u16,
    pub(crate) lines: Vec<String>,
}

impl Reply {
    pub(crate) fn enhanced(&self) -> &str {
        self.lines[0].split(' ').next().unwrap_or_default()
    }

    /// Asserts code and enhanced code.
    #[track_caller]
    pub(crate) fn expect(&self, code: u16, enhanced: &str) -> &Self {
        assert_eq!((self.code, self.enhanced()), (code, enhanced), "reply: {self:?}");
        self
    }
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// A line-level SMTP client over TCP and TLS.
pub(crate) struct Smtp {
    stream: BufReader<Box<dyn Stream>>,
    ca: String,
    pub(crate) greeting: Reply,
}

impl Smtp {
    pub(crate) async fn connect(emulator: &Emulator) -> Self {
        Self::connect_to(emulator, Endpoint::Exchange).await
    }

    /// Connects to one of the SMTP endpoints (Exchange, HVE, ACS).
    pub(crate) async fn connect_to(emulator: &Emulator, endpoint: Endpoint) -> Self {
        let tcp = TcpStream::connect(emulator.endpoint_addr(endpoint)).await.unwrap();
        let mut smtp = Self {
            stream: BufReader::new(Box::new(tcp)),
            ca: emulator.ca_pem().to_owned(),
            greeting: Reply { code: 0, lines: vec![] },
        };
        smtp.greeting = smtp.read().await;
        smtp
    }

    /// Connects, STARTTLS, EHLO again.
    pub(crate) async fn connect_tls(emulator: &Emulator) -> Self {
        Self::connect_tls_to(emulator, Endpoint::Exchange).await
    }

    /// [`Smtp::connect_tls`] to one of the SMTP endpoints.
    pub(crate) async fn connect_tls_to(emulator: &Emulator, endpoint: Endpoint) -> Self {
        let mut smtp = Self::connect_to(emulator, endpoint).await;
        assert_eq!(smtp.cmd("EHLO client.example").await.code, 250);
        smtp.starttls().await;
        smtp.cmd("EHLO client.example").await;
        smtp
    }

    /// Connects with TLS and authenticates `mailbox` with `token` (initial response form).
    pub(crate) async fn authenticated(emulator: &Emulator, mailbox: &str, token: &str) -> Self {
        let mut smtp = Self::connect_tls(emulator).await;
        smtp.cmd(&format!("AUTH XOAUTH2 {}", xoauth2(mailbox, token)))
            .await
            .expect(235, "2.7.0");
        smtp
    }

    pub(crate) async fn starttls(&mut self) {
        self.cmd("STARTTLS").await.expect(220, "2.0.0");
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(self.ca.as_bytes()).unwrap())
            .unwrap();
        let config =
            rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let placeholder: Box<dyn Stream> = Box::new(tokio::io::duplex(1).0);
        let plain = std::mem::replace(&mut self.stream, BufReader::new(placeholder));
        let tls = connector
            .connect(ServerName::try_from("localhost").unwrap(), plain.into_inner())
            .await
            .unwrap();
        self.stream = BufReader::new(Box::new(tls));
    }

    pub(crate) async fn send(&mut self, bytes: &[u8]) {
        self.stream.get_mut().write_all(bytes).await.unwrap();
        self.stream.get_mut().flush().await.unwrap();
    }

    pub(crate) async fn cmd(&mut self, line: &str) -> Reply {
        self.send(format!("{line}\r\n").as_bytes()).await;
        self.read().await
    }

    pub(crate) async fn read(&mut self) -> Reply {
        self.try_read().await.expect("a reply, not a closed connection")
    }

    /// A reply, or `None` if the server closed the connection.
    pub(crate) async fn try_read(&mut self) -> Option<Reply> {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(Duration::from_secs(20), self.stream.read_line(&mut line))
                .await
                .expect("reply within 20 s")
                .ok()?;
            if n == 0 {
                return None;
            }
            let line = line.trim_end_matches(['\r', '\n']);
            let code: u16 = line[..3].parse().unwrap();
            lines.push(line.get(4..).unwrap_or_default().to_owned());
            if line.as_bytes().get(3) != Some(&b'-') {
                return Some(Reply { code, lines });
            }
        }
    }

    /// MAIL, RCPT and DATA with `content` (CRLF lines, dot-stuffed here).
    pub(crate) async fn send_mail(&mut self, from: &str, to: &[&str], content: &[u8]) -> Reply {
        self.cmd(&format!("MAIL FROM:<{from}>")).await.expect(250, "2.1.0");
        for r in to {
            self.cmd(&format!("RCPT TO:<{r}>")).await.expect(250, "2.1.5");
        }
        self.cmd("DATA").await.expect(354, "Start");
        self.send(&dot_stuff(content)).await;
        self.send(b".\r\n").await;
        self.read().await
    }
}

impl Smtp {
    /// `AUTH LOGIN` with the user name on the AUTH line, then the password: the password's reply.
    pub(crate) async fn login(&mut self, user: &str, password: &str) -> Reply {
        let prompt = self.cmd(&format!("AUTH LOGIN {}", STANDARD.encode(user))).await;
        assert_eq!(
            (prompt.code, prompt.lines[0].as_str()),
            (334, "UGFzc3dvcmQ6"),
            "{prompt:?}"
        );
        self.cmd(&STANDARD.encode(password)).await
    }
}

pub(crate) fn xoauth2(user: &str, token: &str) -> String {
    STANDARD.encode(format!("user={user}\x01auth=Bearer {token}\x01\x01"))
}

pub(crate) fn dot_stuff(content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 16);
    let mut line_start = true;
    for &b in content {
        if line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        line_start = b == b'\n';
    }
    out
}

pub(crate) fn message(from: &str, to: &str, subject: &str) -> Vec<u8> {
    format!("From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{}@client.example>\r\n\r\nHello.\r\n.A line with a leading dot.\r\n", uuid::Uuid::new_v4().simple())
        .into_bytes()
}
