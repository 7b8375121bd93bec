//! SMTP command lines as Exchange Online parses them.
//!
//! Written here rather than taken from a crate: the emulator must answer malformed input with
//! Exchange's own texts, and it must stay independent of the parser the product's relay uses, so
//! that a parsing bug cannot hide on both sides.

/// A parsed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Command {
    Ehlo(String),
    Helo(String),
    StartTls,
    Auth { mechanism: String, initial: Option<String> },
    Mail { from: String, params: Vec<Param> },
    Rcpt { to: String, params: Vec<Param> },
    Data,
    Bdat { size: u64, last: bool },
    Rset,
    Noop,
    Quit,
    Vrfy,
    Help,
    Unknown(String),
}

/// An ESMTP parameter: `KEY=value` or `KEY`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Param {
    pub key: String,
    pub value: Option<String>,
}

/// Why a line is not a valid command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Syntax {
    /// `MAIL FROM` without a valid `<address>`.
    Sender,
    /// `RCPT TO` without a valid `<address>`.
    Recipient,
    /// Arguments of the wrong shape.
    Arguments,
}

impl Command {
    /// The verb, upper-case, for counters.
    pub(crate) fn verb(&self) -> &str {
        match self {
            Command::Ehlo(_) => "EHLO",
            Command::Helo(_) => "HELO",
            Command::StartTls => "STARTTLS",
            Command::Auth { .. } => "AUTH",
            Command::Mail { .. } => "MAIL",
            Command::Rcpt { .. } => "RCPT",
            Command::Data => "DATA",
            Command::Bdat { .. } => "BDAT",
            Command::Rset => "RSET",
            Command::Noop => "NOOP",
            Command::Quit => "QUIT",
            Command::Vrfy => "VRFY",
            Command::Help => "HELP",
            Command::Unknown(_) => "UNKNOWN",
        }
    }
}

/// Parses one command line (without its line ending).
pub(crate) fn parse(line: &str) -> Result<Command, Syntax> {
    let (verb, rest) = match line.split_once(' ') {
        Some((v, r)) => (v, r.trim()),
        None => (line.trim(), ""),
    };
    let upper = verb.to_ascii_uppercase();
    Ok(match upper.as_str() {
        "EHLO" => Command::Ehlo(domain(rest)?),
        "HELO" => Command::Helo(domain(rest)?),
        "STARTTLS" => no_args(rest, Command::StartTls)?,
        "AUTH" => {
            let mut words = rest.split_whitespace();
            let mechanism = words.next().ok_or(Syntax::Arguments)?.to_ascii_uppercase();
            let initial = words.next().map(str::to_owned);
            if words.next().is_some() {
                return Err(Syntax::Arguments);
            }
            Command::Auth { mechanism, initial }
        }
        "MAIL" => {
            let (from, params) = path_and_params(rest, "FROM:").ok_or(Syntax::Sender)?;
            if !from.is_empty() && !is_address(&from) {
                return Err(Syntax::Sender);
            }
            Command::Mail { from, params }
        }
        "RCPT" => {
            let (to, params) = path_and_params(rest, "TO:").ok_or(Syntax::Recipient)?;
            if !is_address(&to) {
                return Err(Syntax::Recipient);
            }
            Command::Rcpt { to, params }
        }
        "DATA" => no_args(rest, Command::Data)?,
        "BDAT" => {
            let mut words = rest.split_whitespace();
            let size = words
                .next()
                .and_then(|w| w.parse::<u64>().ok())
                .ok_or(Syntax::Arguments)?;
            let last = match words.next() {
                None => false,
                Some(w) if w.eq_ignore_ascii_case("LAST") => true,
                Some(_) => return Err(Syntax::Arguments),
            };
            if words.next().is_some() {
                return Err(Syntax::Arguments);
            }
            Command::Bdat { size, last }
        }
        "RSET" => no_args(rest, Command::Rset)?,
        "NOOP" => Command::Noop,
        "QUIT" => no_args(rest, Command::Quit)?,
        "VRFY" => Command::Vrfy,
        "HELP" => Command::Help,
        _ => Command::Unknown(verb.to_owned()),
    })
}

fn no_args(rest: &str, command: Command) -> Result<Command, Syntax> {
    if rest.is_empty() {
        Ok(command)
    } else {
        Err(Syntax::Arguments)
    }
}

fn domain(rest: &str) -> Result<String, Syntax> {
    let name = rest.split_whitespace().next().ok_or(Syntax::Arguments)?;
    Ok(name.to_owned())
}

/// `FROM:<path> params`: the prefix is case-insensitive and may be followed by a space, but the
/// angle brackets are required: Exchange refuses bare addresses, which is why devices that send
/// them fail (fact sheet §1.5).
fn path_and_params(rest: &str, prefix: &str) -> Option<(String, Vec<Param>)> {
    let head = rest.get(..prefix.len())?;
    if !head.eq_ignore_ascii_case(prefix) {
        return None;
    }
    let after = rest[prefix.len()..].trim_start();
    let inner_end = after.strip_prefix('<')?.find('>')?;
    let path = &after[1..=inner_end];
    let path = path.trim();
    // A source route (`<@a,@b:user@c>`) is accepted and ignored (RFC 5321 §4.1.2).
    let path = path
        .rsplit_once(':')
        .filter(|_| path.starts_with('@'))
        .map_or(path, |(_, p)| p);
    let params = after[inner_end + 2..]
        .split_whitespace()
        .map(|p| match p.split_once('=') {
            Some((k, v)) => Param {
                key: k.to_ascii_uppercase(),
                value: Some(v.to_owned()),
            },
            None => Param {
                key: p.to_ascii_uppercase(),
                value: None,
            },
        })
        .collect();
    Some((path.to_owned(), params))
}

/// `local@domain`, with a quoted or dot-atom local part (UTF-8 allowed for SMTPUTF8).
pub(crate) fn is_address(address: &str) -> bool {
    let Some((local, domain)) = address.rsplit_once('@') else {
        return false;
    };
    let local_ok = if local.len() >= 2 && local.starts_with('"') && local.ends_with('"') {
        true
    } else {
        !local.is_empty()
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .chars()
                .all(|c| !c.is_ascii() || c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c))
    };
    let domain_ok = (domain.starts_with('[') && domain.ends_with(']'))
        || (!domain.is_empty()
            && domain.split('.').all(|l| {
                !l.is_empty()
                    && l.chars()
                        .all(|c| !c.is_ascii() || c.is_ascii_alphanumeric() || c == '-')
            }));
    local_ok && domain_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(key: &str, value: Option<&str>) -> Param {
        Param {
            key: key.to_owned(),
            value: value.map(str::to_owned),
        }
    }

    #[test]
    fn table() {
        let rows: &[(&str, Result<Command, Syntax>)] = &[
            ("EHLO client.example", Ok(Command::Ehlo("client.example".into()))),
            ("ehlo [192.0.2.1]", Ok(Command::Ehlo("[192.0.2.1]".into()))),
            ("EHLO", Err(Syntax::Arguments)),
            ("STARTTLS", Ok(Command::StartTls)),
            ("STARTTLS now", Err(Syntax::Arguments)),
            (
                "AUTH XOAUTH2",
                Ok(Command::Auth {
                    mechanism: "XOAUTH2".into(),
                    initial: None,
                }),
            ),
            (
                "auth xoauth2 dXNlcj0=",
                Ok(Command::Auth {
                    mechanism: "XOAUTH2".into(),
                    initial: Some("dXNlcj0=".into()),
                }),
            ),
            ("AUTH", Err(Syntax::Arguments)),
            (
                "MAIL FROM:<a@contoso.com>",
                Ok(Command::Mail {
                    from: "a@contoso.com".into(),
                    params: vec![],
                }),
            ),
            (
                "mail from: <a@contoso.com> SIZE=100 BODY=8BITMIME SMTPUTF8",
                Ok(Command::Mail {
                    from: "a@contoso.com".into(),
                    params: vec![p("SIZE", Some("100")), p("BODY", Some("8BITMIME")), p("SMTPUTF8", None)],
                }),
            ),
            (
                "MAIL FROM:<>",
                Ok(Command::Mail {
                    from: String::new(),
                    params: vec![],
                }),
            ),
            ("MAIL FROM:a@contoso.com", Err(Syntax::Sender)),
            ("MAIL FROM:<not an address>", Err(Syntax::Sender)),
            ("MAIL TO:<a@contoso.com>", Err(Syntax::Sender)),
            (
                "RCPT TO:<b@fabrikam.com> NOTIFY=NEVER",
                Ok(Command::Rcpt {
                    to: "b@fabrikam.com".into(),
                    params: vec![p("NOTIFY", Some("NEVER"))],
                }),
            ),
            (
                "RCPT TO:<@relay.example:b@fabrikam.com>",
                Ok(Command::Rcpt {
                    to: "b@fabrikam.com".into(),
                    params: vec![],
                }),
            ),
            ("RCPT TO:<>", Err(Syntax::Recipient)),
            ("RCPT TO:b@fabrikam.com", Err(Syntax::Recipient)),
            (
                "RCPT TO:<\"john smith\"@fabrikam.com>",
                Ok(Command::Rcpt {
                    to: "\"john smith\"@fabrikam.com".into(),
                    params: vec![],
                }),
            ),
            (
                "RCPT TO:<用户@例子.广告>",
                Ok(Command::Rcpt {
                    to: "用户@例子.广告".into(),
                    params: vec![],
                }),
            ),
            ("DATA", Ok(Command::Data)),
            (
                "BDAT 1000",
                Ok(Command::Bdat {
                    size: 1000,
                    last: false,
                }),
            ),
            ("bdat 0 last", Ok(Command::Bdat { size: 0, last: true })),
            ("BDAT -1", Err(Syntax::Arguments)),
            ("BDAT 10 FIRST", Err(Syntax::Arguments)),
            ("RSET", Ok(Command::Rset)),
            ("NOOP anything", Ok(Command::Noop)),
            ("QUIT", Ok(Command::Quit)),
            ("VRFY someone", Ok(Command::Vrfy)),
            ("XEXCH50 1 2", Ok(Command::Unknown("XEXCH50".into()))),
        ];
        for (line, expected) in rows {
            assert_eq!(&parse(line), expected, "{line}");
        }
    }
}
