//! SMTP commands the client sends. `Display` is the wire format without the line ending;
//! [`Command::masked`] is what the transcript shows.

use std::fmt;

/// `BODY=` of MAIL FROM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Body {
    /// `BODY=8BITMIME`: content has octets above 127 (RFC 6152).
    EightBitMime,
    /// `BODY=BINARYMIME`: content is sent with BDAT and may be anything (RFC 3030).
    BinaryMime,
}

/// Parameters of MAIL FROM.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct MailParams {
    /// `SIZE=` (RFC 1870), when the server advertised SIZE.
    pub(crate) size: Option<usize>,
    /// `BODY=`, when needed.
    pub(crate) body: Option<Body>,
    /// `SMTPUTF8` (RFC 6531), when addresses or headers are UTF-8.
    pub(crate) smtputf8: bool,
}

/// A command. `Debug` is the masked form: an AUTH initial response or a SASL response is a
/// credential.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Command<'a> {
    /// `EHLO name`.
    Ehlo(&'a str),
    /// `STARTTLS`.
    StartTls,
    /// `AUTH mechanism [initial-response]`.
    Auth {
        /// `XOAUTH2`, `PLAIN`, `LOGIN`.
        mechanism: &'a str,
        /// Base64 initial response.
        initial: Option<&'a str>,
    },
    /// A SASL response line (base64, or empty).
    SaslResponse(&'a str),
    /// `MAIL FROM:<address> params`.
    Mail {
        /// Reverse path; empty for the null sender.
        from: &'a str,
        /// Parameters.
        params: MailParams,
    },
    /// `RCPT TO:<address>`.
    Rcpt(&'a str),
    /// `DATA`.
    Data,
    /// `BDAT size [LAST]`.
    Bdat {
        /// Octets in the chunk that follows.
        size: usize,
        /// Whether it is the last chunk.
        last: bool,
    },
    /// `RSET`.
    Rset,
    /// `QUIT`.
    Quit,
}

impl fmt::Display for Command<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Ehlo(name) => write!(f, "EHLO {name}"),
            Command::StartTls => f.write_str("STARTTLS"),
            Command::Auth {
                mechanism,
                initial: None,
            } => write!(f, "AUTH {mechanism}"),
            Command::Auth {
                mechanism,
                initial: Some(ir),
            } => write!(f, "AUTH {mechanism} {}", if ir.is_empty() { "=" } else { ir }),
            Command::SaslResponse(response) => f.write_str(response),
            Command::Mail { from, params } => {
                write!(f, "MAIL FROM:<{from}>")?;
                if let Some(size) = params.size {
                    write!(f, " SIZE={size}")?;
                }
                match params.body {
                    Some(Body::EightBitMime) => f.write_str(" BODY=8BITMIME")?,
                    Some(Body::BinaryMime) => f.write_str(" BODY=BINARYMIME")?,
                    None => {}
                }
                if params.smtputf8 {
                    f.write_str(" SMTPUTF8")?;
                }
                Ok(())
            }
            Command::Rcpt(to) => write!(f, "RCPT TO:<{to}>"),
            Command::Data => f.write_str("DATA"),
            Command::Bdat { size, last: true } => write!(f, "BDAT {size} LAST"),
            Command::Bdat { size, last: false } => write!(f, "BDAT {size}"),
            Command::Rset => f.write_str("RSET"),
            Command::Quit => f.write_str("QUIT"),
        }
    }
}

impl fmt::Debug for Command<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Command({:?})", self.masked())
    }
}

impl Command<'_> {
    /// The command followed by CRLF.
    pub(crate) fn to_wire(self) -> String {
        format!("{self}\r\n")
    }

    /// What a log may show: credentials after `AUTH <mechanism>` and SASL responses are masked.
    pub(crate) fn masked(&self) -> String {
        match self {
            Command::Auth {
                mechanism,
                initial: Some(_),
            } => format!("AUTH {mechanism} [redacted]"),
            Command::SaslResponse("") => String::new(),
            Command::SaslResponse(_) => "[redacted]".to_owned(),
            other => other.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_format() {
        let rows = [
            (Command::Ehlo("host.example"), "EHLO host.example"),
            (
                Command::Mail {
                    from: "a@contoso.com",
                    params: MailParams {
                        size: Some(1234),
                        body: Some(Body::EightBitMime),
                        smtputf8: true,
                    },
                },
                "MAIL FROM:<a@contoso.com> SIZE=1234 BODY=8BITMIME SMTPUTF8",
            ),
            (
                Command::Mail {
                    from: "",
                    params: MailParams::default(),
                },
                "MAIL FROM:<>",
            ),
            (Command::Rcpt("b@fabrikam.com"), "RCPT TO:<b@fabrikam.com>"),
            (Command::Bdat { size: 10, last: true }, "BDAT 10 LAST"),
            (Command::Bdat { size: 0, last: false }, "BDAT 0"),
            (
                Command::Auth {
                    mechanism: "XOAUTH2",
                    initial: None,
                },
                "AUTH XOAUTH2",
            ),
            (
                Command::Auth {
                    mechanism: "PLAIN",
                    initial: Some(""),
                },
                "AUTH PLAIN =",
            ),
        ];
        for (command, wire) in rows {
            assert_eq!(command.to_string(), wire);
        }
    }

    #[test]
    fn credentials_are_masked() {
        let auth = Command::Auth {
            mechanism: "XOAUTH2",
            initial: Some("dXNlcj1h"),
        };
        assert_eq!(auth.masked(), "AUTH XOAUTH2 [redacted]");
        assert_eq!(Command::SaslResponse("dXNlcj1h").masked(), "[redacted]");
        assert!(!Command::SaslResponse("dXNlcj1h").masked().contains("dXN"));
        assert!(!format!("{:?} {auth:?}", Command::SaslResponse("dXNlcj1h")).contains("dXN"));
    }
}
