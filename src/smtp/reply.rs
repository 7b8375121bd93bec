//! SMTP replies: an incremental parser that keeps everything the server said.
//!
//! Written here because the crates of the field drop what matters for Exchange Online: enhanced
//! codes above 255 (`5.7.708`, `4.7.500`) and the lines after the first. A reply keeps its code,
//! its enhanced status code and every line, and says whether it is transient or permanent.

use std::fmt;

/// Longest reply line accepted (Exchange's SendAsDenied reply is about 1 KB).
const MAX_LINE: usize = 16 * 1024;
/// Most lines in one reply (EHLO replies have a dozen).
const MAX_LINES: usize = 512;

/// An RFC 3463 enhanced status code, `class.subject.detail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct EnhancedCode {
    /// 2, 4 or 5.
    pub(crate) class: u8,
    /// Up to three digits.
    pub(crate) subject: u16,
    /// Up to three digits.
    pub(crate) detail: u16,
}

impl EnhancedCode {
    /// Parses `5.7.139` at the start of `text`; returns the code and the rest of the text.
    fn split(text: &str) -> Option<(Self, &str)> {
        let end = text.find(' ').unwrap_or(text.len());
        let mut parts = text[..end].split('.');
        let class = parts.next()?;
        let subject = parts.next()?;
        let detail = parts.next()?;
        let number = |s: &str, max: usize| -> Option<u16> {
            (!s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse().ok())
                .flatten()
        };
        let code = Self {
            class: number(class, 1).filter(|c| matches!(c, 2 | 4 | 5))? as u8,
            subject: number(subject, 3)?,
            detail: number(detail, 3)?,
        };
        (parts.next().is_none()).then(|| (code, text[end..].trim_start()))
    }
}

impl fmt::Display for EnhancedCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

/// A complete reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reply {
    code: u16,
    enhanced: Option<EnhancedCode>,
    lines: Vec<String>,
}

impl Reply {
    /// A reply from its parts (tests, and errors synthesised from local checks).
    pub(crate) fn new(code: u16, lines: Vec<String>) -> Self {
        let enhanced = lines.first().and_then(|l| EnhancedCode::split(l)).map(|(c, _)| c);
        Self { code, enhanced, lines }
    }

    /// The three-digit code.
    pub(crate) fn code(&self) -> u16 {
        self.code
    }

    /// The enhanced status code of the first line, if the server sent one.
    pub(crate) fn enhanced(&self) -> Option<EnhancedCode> {
        self.enhanced
    }

    /// Every line's text after the code and separator, enhanced code included.
    pub(crate) fn lines(&self) -> &[String] {
        &self.lines
    }

    /// The text without enhanced codes, lines joined with spaces.
    pub(crate) fn message(&self) -> String {
        self.lines
            .iter()
            .map(|l| EnhancedCode::split(l).map_or(l.as_str(), |(_, rest)| rest))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// 2xx.
    pub(crate) fn is_positive(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// 4xx: try again later.
    pub(crate) fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }
}

impl fmt::Display for Reply {
    /// The reply as the server sent it, lines joined with ` / `.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        for (i, line) in self.lines.iter().enumerate() {
            f.write_str(if i == 0 { " " } else { " / " })?;
            f.write_str(line)?;
        }
        Ok(())
    }
}

/// Why bytes from the server are not a reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ReplyError {
    /// A line does not start with a three-digit code and a separator.
    #[error("the server sent something that is not an SMTP reply: {0:?}")]
    Malformed(String),
    /// The lines of one reply carry different codes.
    #[error("the server mixed reply codes {first} and {other} in one reply")]
    MixedCodes {
        /// The first line's code.
        first: u16,
        /// The differing code.
        other: u16,
    },
    /// A line or the reply is longer than any server sends.
    #[error("the server's reply is too long")]
    TooLong,
}

/// Parses replies from a byte buffer as they arrive.
#[derive(Debug, Default)]
pub(crate) struct ReplyParser {
    code: Option<u16>,
    lines: Vec<String>,
}

impl ReplyParser {
    /// Takes one complete reply from the front of `buffer`, consuming its bytes; `Ok(None)` when
    /// more bytes are needed (the partial reply is kept).
    pub(crate) fn parse(&mut self, buffer: &mut Vec<u8>) -> Result<Option<Reply>, ReplyError> {
        let mut consumed = 0;
        let result = loop {
            let rest = &buffer[consumed..];
            let Some(newline) = rest.iter().position(|b| *b == b'\n') else {
                if rest.len() > MAX_LINE {
                    break Err(ReplyError::TooLong);
                }
                break Ok(None);
            };
            let raw = &rest[..newline];
            consumed += newline + 1;
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            if raw.len() > MAX_LINE {
                break Err(ReplyError::TooLong);
            }
            let line = String::from_utf8_lossy(raw);
            let Some((code, last, text)) = split_line(&line) else {
                break Err(ReplyError::Malformed(line.into_owned()));
            };
            match self.code {
                Some(first) if first != code => break Err(ReplyError::MixedCodes { first, other: code }),
                _ => self.code = Some(code),
            }
            if self.lines.len() >= MAX_LINES {
                break Err(ReplyError::TooLong);
            }
            self.lines.push(text.to_owned());
            if last {
                let lines = std::mem::take(&mut self.lines);
                self.code = None;
                break Ok(Some(Reply::new(code, lines)));
            }
        };
        buffer.drain(..consumed);
        if result.is_err() {
            *self = Self::default();
        }
        result
    }
}

/// `250-text`, `250 text` or a bare `250` → (code, is the last line, text).
fn split_line(line: &str) -> Option<(u16, bool, &str)> {
    let digits = line.get(..3)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) || !matches!(digits.as_bytes()[0], b'2'..=b'5') {
        return None;
    }
    let code = digits.parse().ok()?;
    match line.as_bytes().get(3) {
        None => Some((code, true, "")),
        Some(b' ') => Some((code, true, &line[4..])),
        Some(b'-') => Some((code, false, &line[4..])),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(bytes: &[u8]) -> Result<Vec<Reply>, ReplyError> {
        let mut parser = ReplyParser::default();
        let mut buffer = bytes.to_vec();
        let mut out = Vec::new();
        while let Some(reply) = parser.parse(&mut buffer)? {
            out.push(reply);
        }
        Ok(out)
    }

    #[test]
    fn table() {
        let enhanced = |class, subject, detail| Some(EnhancedCode { class, subject, detail });
        let rows: &[(&[u8], u16, Option<EnhancedCode>, usize)] = &[
            (b"235 2.7.0 Authentication successful\r\n", 235, enhanced(2, 7, 0), 1),
            (
                b"550 5.7.708 Service unavailable. Access denied, traffic not accepted from this IP.\r\n",
                550,
                enhanced(5, 7, 708),
                1,
            ),
            (
                b"451 4.7.500 Server busy. Please try again later.\r\n",
                451,
                enhanced(4, 7, 500),
                1,
            ),
            (
                b"535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant.\r\n",
                535,
                enhanced(5, 7, 139),
                1,
            ),
            (
                b"250-host Hello [1.2.3.4]\r\n250-SIZE 157286400\r\n250 SMTPUTF8\r\n",
                250,
                None,
                3,
            ),
            (b"334 \r\n", 334, None, 1),
            (b"334\r\n", 334, None, 1),
            (b"220 2.0.0 SMTP server ready\n", 220, enhanced(2, 0, 0), 1),
            (
                b"554 5.2.252 SendAsDenied; a@b not allowed to send as c@d\r\n",
                554,
                enhanced(5, 2, 252),
                1,
            ),
            (b"250 2.1.0.5 not an enhanced code\r\n", 250, None, 1),
            (b"250 6.1.0 wrong class\r\n", 250, None, 1),
        ];
        for (bytes, code, enh, lines) in rows {
            let replies = parse_all(bytes).unwrap();
            assert_eq!(replies.len(), 1, "{bytes:?}");
            assert_eq!(replies[0].code(), *code);
            assert_eq!(replies[0].enhanced(), *enh, "{bytes:?}");
            assert_eq!(replies[0].lines().len(), *lines);
        }
    }

    #[test]
    fn adversarial_input() {
        assert!(matches!(parse_all(b"hello\r\n"), Err(ReplyError::Malformed(_))));
        assert!(matches!(parse_all(b"25\r\n"), Err(ReplyError::Malformed(_))));
        assert!(matches!(parse_all(b"650 no\r\n"), Err(ReplyError::Malformed(_))));
        assert!(matches!(parse_all(b"250x\r\n"), Err(ReplyError::Malformed(_))));
        assert_eq!(
            parse_all(b"250-a\r\n251 b\r\n"),
            Err(ReplyError::MixedCodes { first: 250, other: 251 })
        );
        assert_eq!(parse_all(&vec![b'2'; MAX_LINE + 2]), Err(ReplyError::TooLong));
        assert_eq!(parse_all(b"250-partial\r\n250-still").unwrap(), vec![]);
    }

    #[test]
    fn pipelined_replies_come_out_one_by_one_across_splits() {
        let wire = b"250 2.1.0 Sender OK\r\n250 2.1.5 Recipient OK\r\n354 Start mail input; end with <CRLF>.<CRLF>\r\n";
        let whole = parse_all(wire).unwrap();
        assert_eq!(whole.iter().map(Reply::code).collect::<Vec<_>>(), [250, 250, 354]);
        let mut parser = ReplyParser::default();
        let mut buffer = Vec::new();
        let mut got = Vec::new();
        for byte in wire {
            buffer.push(*byte);
            if let Some(reply) = parser.parse(&mut buffer).unwrap() {
                got.push(reply);
            }
        }
        assert_eq!(got, whole);
    }

    #[test]
    fn classification_and_text() {
        let reply = parse_all(b"535-5.7.3 Authentication unsuccessful\r\n535 5.7.3 [host 2024 08DC]\r\n")
            .unwrap()
            .remove(0);
        assert!(reply.code() >= 500 && !reply.is_transient());
        assert_eq!(reply.message(), "Authentication unsuccessful [host 2024 08DC]");
        assert_eq!(
            reply.to_string(),
            "535 5.7.3 Authentication unsuccessful / 5.7.3 [host 2024 08DC]"
        );
        let busy = Reply::new(
            432,
            vec!["4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded".into()],
        );
        assert!(busy.is_transient());
        assert_eq!(busy.enhanced().unwrap().to_string(), "4.3.2");
    }

    fn wire(code: u16, lines: &[String]) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            let sep = if i + 1 == lines.len() { ' ' } else { '-' };
            out.extend_from_slice(format!("{code}{sep}{line}\r\n").as_bytes());
        }
        out
    }

    proptest::proptest! {
        /// What the server sends comes back whole, however the bytes are split.
        #[test]
        fn replies_round_trip_across_any_split(
            code in 200u16..600,
            lines in proptest::collection::vec("[ -~]{0,80}", 1..6),
            split in 0usize..400,
        ) {
            let bytes = wire(code, &lines);
            let split = split.min(bytes.len());
            let mut parser = ReplyParser::default();
            let mut buffer = bytes[..split].to_vec();
            let first = parser.parse(&mut buffer).unwrap();
            buffer.extend_from_slice(&bytes[split..]);
            let reply = match first {
                Some(r) => r,
                None => parser.parse(&mut buffer).unwrap().unwrap(),
            };
            proptest::prop_assert_eq!(reply.code(), code);
            proptest::prop_assert_eq!(reply.lines(), &lines[..]);
            proptest::prop_assert!(buffer.is_empty());
        }

        /// Any bytes: a reply, a clean error, or a request for more; never a panic.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..2048)) {
            let mut parser = ReplyParser::default();
            let mut buffer = bytes;
            for _ in 0..64 {
                match parser.parse(&mut buffer) {
                    Ok(Some(_)) => continue,
                    Ok(None) | Err(_) => break,
                }
            }
        }
    }
}
