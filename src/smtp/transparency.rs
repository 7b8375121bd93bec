//! Message content on the wire: line endings normalised to CRLF, and dot-stuffing for DATA
//! (RFC 5321 §4.5.2). BDAT sends the normalised content as is.

use std::borrow::Cow;

/// Every bare LF and bare CR becomes CRLF, and the content ends with CRLF.
pub(crate) fn normalize_line_endings(content: &[u8]) -> Cow<'_, [u8]> {
    let clean = content.windows(2).all(|w| (w[0] == b'\r') == (w[1] == b'\n'))
        && content.first() != Some(&b'\n')
        && content.last() != Some(&b'\r')
        && (content.is_empty() || content.ends_with(b"\r\n"));
    if clean {
        return Cow::Borrowed(content);
    }
    let mut out = Vec::with_capacity(content.len() + content.len() / 32 + 2);
    let mut i = 0;
    while i < content.len() {
        match content[i] {
            b'\r' if content.get(i + 1) == Some(&b'\n') => {
                out.extend_from_slice(b"\r\n");
                i += 2;
            }
            b'\r' | b'\n' => {
                out.extend_from_slice(b"\r\n");
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    Cow::Owned(out)
}

/// DATA content: CRLF-normalised, lines starting with `.` get another `.`, then `.` CRLF.
pub(crate) fn data_content(content: &[u8]) -> Vec<u8> {
    let content = normalize_line_endings(content);
    let mut out = Vec::with_capacity(content.len() + content.len() / 64 + 5);
    let mut line_start = true;
    for &b in content.iter() {
        if line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        line_start = b == b'\n';
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// Whether any octet is above 127 (the content then needs `BODY=8BITMIME` or BINARYMIME).
pub(crate) fn has_eight_bit(content: &[u8]) -> bool {
    !content.is_ascii()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a receiver does: undo dot-stuffing up to the terminator.
    fn unstuff(wire: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for line in wire.split_inclusive(|b| *b == b'\n') {
            if line == b".\r\n" {
                break;
            }
            out.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
        }
        out
    }

    #[test]
    fn table() {
        let rows: &[(&[u8], &[u8])] = &[
            (b"a\r\nb\r\n", b"a\r\nb\r\n.\r\n"),
            (b"a\nb", b"a\r\nb\r\n.\r\n"),
            (b".leading\r\n..two\r\n", b"..leading\r\n...two\r\n.\r\n"),
            (b"x\r\n.\r\nafter", b"x\r\n..\r\nafter\r\n.\r\n"),
            (b"bare\rcr\r\n", b"bare\r\ncr\r\n.\r\n"),
            (b"", b".\r\n"),
            (b"\n.", b"\r\n..\r\n.\r\n"),
        ];
        for (content, wire) in rows {
            assert_eq!(data_content(content), *wire, "{:?}", String::from_utf8_lossy(content));
        }
    }

    #[test]
    fn clean_content_is_not_copied() {
        assert!(matches!(normalize_line_endings(b"a\r\nb\r\n"), Cow::Borrowed(_)));
        assert!(matches!(normalize_line_endings(b"a\r\nb"), Cow::Owned(_)));
    }

    proptest::proptest! {
        #[test]
        fn stuffing_round_trips(content in proptest::collection::vec(proptest::prop_oneof![
            proptest::strategy::Just(b'.'), proptest::strategy::Just(b'\r'), proptest::strategy::Just(b'\n'),
            proptest::num::u8::ANY,
        ], 0..300)) {
            let normalized = normalize_line_endings(&content).into_owned();
            let wire = data_content(&content);
            proptest::prop_assert_eq!(&unstuff(&wire), &normalized);
            proptest::prop_assert!(normalized.windows(2).all(|w| (w[0] == b'\r') == (w[1] == b'\n')));
        }
    }
}
