//! The SMTP client: connect, STARTTLS or implicit TLS, EHLO, AUTH, and pipelined transactions,
//! several per connection.
//!
//! Written on tokio-rustls rather than taken from a crate: none keeps Exchange's full replies,
//! pipelines MAIL/RCPT/DATA, reports per recipient, and takes a fresh token per connection
//! (`docs/architecture.md`). The protocol pieces it uses (commands, reply parser, SASL,
//! dot-stuffing) are pure and tested on their own; this file only moves bytes.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use super::command::{Body, Command, MailParams};
use super::ehlo::Capabilities;
use super::error::{SmtpError, Step};
use super::reply::{Reply, ReplyParser};
use super::sasl::{self, Credentials};
use super::transcript::Transcript;
use super::transparency;
use crate::stream::Stream;

use super::settings::{Delivery, Envelope, Security, Settings, Target, Timeouts};

/// Messages above this size are not pipelined behind the envelope: if the envelope is refused,
/// sending them would be wasted.
const PIPELINE_CONTENT_LIMIT: usize = 256 * 1024;

/// An open, greeted (and possibly authenticated) connection.
pub(crate) struct Connection {
    stream: Stream,
    host: String,
    buffer: Vec<u8>,
    parser: ReplyParser,
    caps: Capabilities,
    timeouts: Timeouts,
    transcript: Transcript,
    transactions: usize,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("host", &self.host)
            .field("caps", &self.caps)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Connects, reads the banner, says EHLO, and sets up TLS as `target` asks.
    pub(crate) async fn open(target: &Target, settings: &Settings) -> Result<Self, SmtpError> {
        let timeouts = settings.timeouts;
        let connect = TcpStream::connect((target.host.as_str(), target.port));
        let tcp = match tokio::time::timeout(timeouts.connect, connect).await {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(source)) => {
                return Err(SmtpError::Connect {
                    host: target.host.clone(),
                    port: target.port,
                    source,
                });
            }
            Err(_) => {
                return Err(SmtpError::Timeout {
                    step: Step::Connect,
                    after: timeouts.connect,
                });
            }
        };
        let _ = tcp.set_nodelay(true);
        let mut transcript = Transcript::new(settings.keep_transcript);
        transcript.note(format!("connected to {}:{}", target.host, target.port));
        let stream = match target.security {
            Security::ImplicitTls => handshake(tcp, &target.host, settings, &mut transcript).await?,
            Security::StartTls | Security::InsecurePlaintext => Stream::Plain(tcp),
        };
        let mut conn = Self {
            stream,
            host: target.host.clone(),
            buffer: Vec::with_capacity(4096),
            parser: ReplyParser::default(),
            caps: Capabilities::default(),
            timeouts,
            transcript,
            transactions: 0,
        };
        conn.expect(Step::Greeting, |r| r.code() == 220).await?;
        conn.ehlo(&settings.helo_name).await?;
        if target.security == Security::StartTls {
            if !conn.caps.starttls {
                return Err(SmtpError::NotOffered {
                    what: "STARTTLS",
                    offered: String::new(),
                });
            }
            conn.send(&[Command::StartTls]).await?;
            conn.expect(Step::StartTls, |r| r.code() == 220).await?;
            let Stream::Plain(tcp) = std::mem::replace(&mut conn.stream, Stream::Closed) else {
                unreachable!("STARTTLS is only sent on a plain connection");
            };
            // Anything the server sent before the handshake is discarded (RFC 3207 §4.2).
            conn.buffer.clear();
            conn.stream = handshake(tcp, &target.host, settings, &mut conn.transcript).await?;
            conn.ehlo(&settings.helo_name).await?;
        }
        Ok(conn)
    }

    /// What the server offers (after TLS, when TLS is used).
    pub(crate) fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    /// The kept transcript lines, if `keep_transcript` was set.
    pub(crate) fn take_transcript(&mut self) -> Vec<String> {
        self.transcript.take()
    }

    /// Authenticates. XOAUTH2 puts the token on the AUTH line only when the line fits in 512
    /// octets, and answers an error challenge with an empty line to get the final reply.
    pub(crate) async fn authenticate(&mut self, credentials: &Credentials) -> Result<(), SmtpError> {
        match credentials {
            Credentials::XOAuth2 { user, token } => {
                if !self.caps.offers_auth("XOAUTH2") {
                    return Err(SmtpError::NotOffered {
                        what: "AUTH XOAUTH2",
                        offered: self.offered_auth(),
                    });
                }
                let response = sasl::xoauth2(user, token);
                self.sasl("XOAUTH2", response.expose()).await
            }
            Credentials::Password { user, password } if self.caps.offers_auth("PLAIN") => {
                self.sasl("PLAIN", sasl::plain(user, password).expose()).await
            }
            Credentials::Password { user, password } if self.caps.offers_auth("LOGIN") => {
                self.send(&[Command::Auth {
                    mechanism: "LOGIN",
                    initial: None,
                }])
                .await?;
                for answer in [sasl::login_answer(user), sasl::login_answer(password.expose())] {
                    self.expect(Step::Auth, |r| r.code() == 334).await?;
                    self.send(&[Command::SaslResponse(answer.expose())]).await?;
                }
                self.expect(Step::Auth, |r| r.code() == 235).await.map(drop)
            }
            Credentials::Password { .. } => Err(SmtpError::NotOffered {
                what: "AUTH PLAIN or LOGIN",
                offered: self.offered_auth(),
            }),
        }
    }

    async fn sasl(&mut self, mechanism: &str, response: &str) -> Result<(), SmtpError> {
        if sasl::initial_response_fits(mechanism, response) {
            self.send(&[Command::Auth {
                mechanism,
                initial: Some(response),
            }])
            .await?;
        } else {
            self.send(&[Command::Auth {
                mechanism,
                initial: None,
            }])
            .await?;
            self.expect(Step::Auth, |r| r.code() == 334).await?;
            self.send(&[Command::SaslResponse(response)]).await?;
        }
        let reply = self.read(Step::Auth).await?;
        if reply.code() == 235 {
            return Ok(());
        }
        if reply.code() == 334 {
            // An error challenge: the server reports why in base64 JSON and waits for an empty
            // response before sending the real failure (RFC 7628 §3.2.3).
            let challenge = reply.lines().first().and_then(|l| sasl::error_challenge_text(l));
            self.send(&[Command::SaslResponse("")]).await?;
            let reply = self.read(Step::Auth).await?;
            return Err(SmtpError::Rejected {
                step: Step::Auth,
                reply,
                challenge,
            });
        }
        Err(SmtpError::Rejected {
            step: Step::Auth,
            reply,
            challenge: None,
        })
    }

    fn offered_auth(&self) -> String {
        self.caps.auth.join(" ")
    }

    /// Sends one message: MAIL, RCPT and the content in as few round trips as the server
    /// allows (one with PIPELINING and CHUNKING). Content line endings are normalised to CRLF.
    pub(crate) async fn send_mail(&mut self, envelope: &Envelope, content: &[u8]) -> Result<Delivery, SmtpError> {
        // Whatever checked the addresses before, none goes on the wire that could carry more
        // than an address.
        let senders = std::iter::once(&envelope.from).filter(|f| !f.is_empty());
        if let Some(bad) = senders
            .chain(&envelope.to)
            .find(|a| crate::message::check_address(a).is_err())
        {
            return Err(SmtpError::BadAddress {
                address: bad.escape_debug().to_string(),
            });
        }
        let content = transparency::normalize_line_endings(content);
        let params = self.mail_params(envelope, &content)?;
        let reset = self.transactions > 0;
        self.transactions += 1;
        let mut envelope_commands = Vec::with_capacity(envelope.to.len() + 2);
        if reset {
            envelope_commands.push(Command::Rset);
        }
        envelope_commands.push(Command::Mail {
            from: &envelope.from,
            params,
        });
        envelope_commands.extend(envelope.to.iter().map(|r| Command::Rcpt(r)));
        let transaction = Transaction {
            envelope,
            commands: envelope_commands,
            content: &content,
            reset,
        };
        if self.caps.pipelining {
            self.send_pipelined(&transaction).await
        } else {
            self.send_in_lockstep(&transaction).await
        }
    }

    /// Without PIPELINING: each envelope command and its reply in turn, then the content.
    async fn send_in_lockstep(&mut self, t: &Transaction<'_>) -> Result<Delivery, SmtpError> {
        let (envelope, envelope_commands, content, reset) = (t.envelope, &t.commands[..], t.content, t.reset);
        let mut replies = Vec::with_capacity(envelope_commands.len());
        for command in envelope_commands {
            self.send(std::slice::from_ref(command)).await?;
            replies.push(self.read(step_of(command)).await?);
        }
        let rejected = envelope_verdict(envelope, replies, reset)?;
        let reply = if self.caps.chunking {
            self.send_with(&[bdat(content)], Some(content)).await?;
            self.read_content_reply().await?
        } else {
            self.send(&[Command::Data]).await?;
            self.expect(Step::Data, |r| r.code() == 354).await?;
            self.send_content(content).await?
        };
        finish(reply, rejected)
    }

    /// With PIPELINING: one flight of the envelope, then with CHUNKING a small message's content
    /// right behind it, or DATA without CHUNKING.
    async fn send_pipelined(&mut self, t: &Transaction<'_>) -> Result<Delivery, SmtpError> {
        let (envelope, envelope_commands, content, reset) = (t.envelope, &t.commands[..], t.content, t.reset);
        let content_in_flight = self.caps.chunking && content.len() <= PIPELINE_CONTENT_LIMIT;
        let mut flight = envelope_commands.to_vec();
        if content_in_flight {
            flight.push(bdat(content));
        } else if !self.caps.chunking {
            flight.push(Command::Data);
        }
        self.send_with(&flight, content_in_flight.then_some(content)).await?;
        let mut replies = Vec::with_capacity(envelope_commands.len());
        for command in envelope_commands {
            replies.push(self.read(step_of(command)).await?);
        }
        let verdict = envelope_verdict(envelope, replies, reset);
        if content_in_flight {
            // The server reads the chunk and answers it even after refusing the envelope.
            let reply = self.read_content_reply().await?;
            return finish(reply, verdict?);
        }
        if self.caps.chunking {
            let rejected = verdict?;
            self.send_with(&[bdat(content)], Some(content)).await?;
            let reply = self.read_content_reply().await?;
            return finish(reply, rejected);
        }
        let data = self.read(Step::Data).await?;
        match (verdict, data.code()) {
            (Ok(rejected), 354) => {
                let reply = self.send_content(content).await?;
                finish(reply, rejected)
            }
            (Err(refusal), 354) => {
                // DATA was accepted although nothing can be delivered: end it at once.
                self.write_bytes(b".\r\n", Step::Content).await?;
                let _ = self.read(Step::Content).await;
                Err(refusal)
            }
            (Err(refusal), _) => Err(refusal),
            (Ok(_), _) => Err(SmtpError::Rejected {
                step: Step::Data,
                reply: data,
                challenge: None,
            }),
        }
    }

    /// Sends dot-stuffed content after `354` and reads the reply.
    async fn send_content(&mut self, content: &[u8]) -> Result<Reply, SmtpError> {
        let wire = transparency::data_content(content);
        self.transcript.content(wire.len());
        self.write_bytes(&wire, Step::Content).await?;
        self.read_content_reply().await
    }

    async fn read_content_reply(&mut self) -> Result<Reply, SmtpError> {
        let timeout = self.timeouts.content;
        self.read_within(Step::Content, timeout).await
    }

    fn mail_params(&self, envelope: &Envelope, content: &[u8]) -> Result<MailParams, SmtpError> {
        if let Some(limit) = self.caps.size_limit()
            && content.len() > limit
        {
            return Err(SmtpError::TooBig {
                size: content.len(),
                limit,
            });
        }
        let body = if !transparency::has_eight_bit(content) {
            None
        } else if self.caps.eight_bit_mime {
            Some(Body::EightBitMime)
        } else if self.caps.binary_mime && self.caps.chunking {
            Some(Body::BinaryMime)
        } else {
            return Err(SmtpError::NotOffered {
                what: "8BITMIME (the message has 8-bit content)",
                offered: String::new(),
            });
        };
        let header_end = content
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(content.len(), |p| p + 2);
        let smtputf8 =
            !envelope.from.is_ascii() || envelope.to.iter().any(|r| !r.is_ascii()) || !content[..header_end].is_ascii();
        if smtputf8 && !self.caps.smtputf8 {
            return Err(SmtpError::NotOffered {
                what: "SMTPUTF8 (an address or header is not ASCII)",
                offered: String::new(),
            });
        }
        Ok(MailParams {
            size: self.caps.size.map(|_| content.len()),
            body,
            smtputf8,
        })
    }

    /// Says goodbye; errors are ignored, the message is already delivered.
    pub(crate) async fn quit(mut self) {
        if self.send(&[Command::Quit]).await.is_ok() {
            let _ = self.read(Step::Rset).await;
        }
        let _ = self.stream.shutdown().await;
    }

    async fn ehlo(&mut self, name: &str) -> Result<(), SmtpError> {
        self.send(&[Command::Ehlo(name)]).await?;
        let reply = self.expect(Step::Ehlo, |r| r.code() == 250).await?;
        self.caps = Capabilities::from_ehlo(&reply);
        Ok(())
    }

    async fn send(&mut self, commands: &[Command<'_>]) -> Result<(), SmtpError> {
        self.send_with(commands, None).await
    }

    /// Writes commands (and content after them) in one write.
    async fn send_with(&mut self, commands: &[Command<'_>], content: Option<&[u8]>) -> Result<(), SmtpError> {
        let mut wire = Vec::with_capacity(256 + content.map_or(0, <[u8]>::len));
        for command in commands {
            self.transcript.client(command);
            wire.extend_from_slice(command.to_wire().as_bytes());
        }
        if let Some(content) = content {
            self.transcript.content(content.len());
            wire.extend_from_slice(content);
        }
        let step = commands.first().map_or(Step::Content, step_of);
        self.write_bytes(&wire, step).await
    }

    async fn write_bytes(&mut self, bytes: &[u8], step: Step) -> Result<(), SmtpError> {
        let timeout = self.timeouts.content;
        let write = async {
            self.stream.write_all(bytes).await?;
            self.stream.flush().await
        };
        match tokio::time::timeout(timeout, write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(source)) => Err(SmtpError::Io { step, source }),
            Err(_) => Err(SmtpError::Timeout { step, after: timeout }),
        }
    }

    /// Reads a reply and checks it; a reply failing `ok` is an error.
    async fn expect(&mut self, step: Step, ok: impl Fn(&Reply) -> bool) -> Result<Reply, SmtpError> {
        let reply = self.read(step).await?;
        if ok(&reply) {
            Ok(reply)
        } else {
            Err(SmtpError::Rejected {
                step,
                reply,
                challenge: None,
            })
        }
    }

    async fn read(&mut self, step: Step) -> Result<Reply, SmtpError> {
        let timeout = self.timeouts.command;
        self.read_within(step, timeout).await
    }

    async fn read_within(&mut self, step: Step, timeout: Duration) -> Result<Reply, SmtpError> {
        let read = async {
            loop {
                if let Some(reply) = self
                    .parser
                    .parse(&mut self.buffer)
                    .map_err(|source| SmtpError::Protocol { step, source })?
                {
                    return Ok(reply);
                }
                let n = self
                    .stream
                    .read_buf(&mut self.buffer)
                    .await
                    .map_err(|source| SmtpError::Io { step, source })?;
                if n == 0 {
                    return Err(SmtpError::Io {
                        step,
                        source: std::io::ErrorKind::UnexpectedEof.into(),
                    });
                }
            }
        };
        let reply = match tokio::time::timeout(timeout, read).await {
            Ok(result) => result?,
            Err(_) => return Err(SmtpError::Timeout { step, after: timeout }),
        };
        self.transcript.server(&reply);
        Ok(reply)
    }
}

/// Checks the replies to RSET (if sent), MAIL and each RCPT: the recipients refused while
/// others were accepted, or the refusal of the whole envelope.
fn envelope_verdict(envelope: &Envelope, replies: Vec<Reply>, reset: bool) -> Result<Vec<(String, Reply)>, SmtpError> {
    let mut replies = replies.into_iter().skip(usize::from(reset));
    let mail = replies.next().expect("one reply per command");
    if !mail.is_positive() {
        return Err(SmtpError::Rejected {
            step: Step::Mail,
            reply: mail,
            challenge: None,
        });
    }
    let rejected: Vec<(String, Reply)> = envelope
        .to
        .iter()
        .zip(replies)
        .filter(|(_, reply)| !reply.is_positive())
        .map(|(to, reply)| (to.clone(), reply))
        .collect();
    if rejected.len() == envelope.to.len() {
        return Err(SmtpError::RecipientsRejected { rejected });
    }
    Ok(rejected)
}

/// The final reply decides.
/// One message's transaction, ready for the wire.
struct Transaction<'a> {
    envelope: &'a Envelope,
    /// RSET (after an earlier message), MAIL and each RCPT.
    commands: Vec<Command<'a>>,
    /// With CRLF line endings.
    content: &'a [u8],
    /// Whether RSET comes first.
    reset: bool,
}

/// The whole content in one last chunk.
fn bdat(content: &[u8]) -> Command<'static> {
    Command::Bdat {
        size: content.len(),
        last: true,
    }
}

fn finish(reply: Reply, rejected: Vec<(String, Reply)>) -> Result<Delivery, SmtpError> {
    if reply.is_positive() {
        Ok(Delivery { reply, rejected })
    } else {
        Err(SmtpError::Rejected {
            step: Step::Content,
            reply,
            challenge: None,
        })
    }
}

fn step_of(command: &Command<'_>) -> Step {
    match command {
        Command::Ehlo(_) => Step::Ehlo,
        Command::StartTls => Step::StartTls,
        Command::Auth { .. } | Command::SaslResponse(_) => Step::Auth,
        Command::Mail { .. } => Step::Mail,
        Command::Rcpt(_) => Step::Rcpt,
        Command::Data | Command::Bdat { .. } => Step::Data,
        Command::Rset | Command::Quit => Step::Rset,
    }
}

async fn handshake(
    tcp: TcpStream,
    host: &str,
    settings: &Settings,
    transcript: &mut Transcript,
) -> Result<Stream, SmtpError> {
    let tls_error = |source| SmtpError::Tls {
        host: host.to_owned(),
        source,
    };
    let name = ServerName::try_from(host.to_owned())
        .map_err(|e| tls_error(std::io::Error::new(std::io::ErrorKind::InvalidInput, e)))?;
    let connector = tokio_rustls::TlsConnector::from(Arc::clone(&settings.tls));
    let tls = match tokio::time::timeout(settings.timeouts.connect, connector.connect(name, tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(source)) => return Err(tls_error(source)),
        Err(_) => {
            return Err(SmtpError::Timeout {
                step: Step::Tls,
                after: settings.timeouts.connect,
            });
        }
    };
    let (_, session) = tls.get_ref();
    transcript.note(format!(
        "TLS {:?} {:?}",
        session.protocol_version().map_or("?".into(), |v| format!("{v:?}")),
        session
            .negotiated_cipher_suite()
            .map_or("?".into(), |c| format!("{:?}", c.suite()))
    ));
    Ok(Stream::Tls(Box::new(tls.into())))
}
