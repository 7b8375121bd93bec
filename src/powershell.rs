//! Quoting values for the PowerShell and `az` commands this tool prints, so that a hostile or
//! mistyped value (quotes, `$()`, backticks, line breaks) cannot become a command.

/// Why a value cannot be put in a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` cannot be used in a command: {reason}")]
pub(crate) struct Unquotable {
    /// The value, with control characters escaped.
    pub(crate) value: String,
    /// Why.
    pub(crate) reason: &'static str,
}

/// Single quotes that PowerShell accepts as string delimiters: ASCII and the typographic ones.
const SINGLE_QUOTES: [char; 5] = ['\'', '\u{2018}', '\u{2019}', '\u{201A}', '\u{201B}'];

/// A PowerShell single-quoted literal: nothing inside is expanded (`$`, backticks and double
/// quotes are literal), and every single quote — the typographic ones too, which PowerShell
/// also ends strings with — is doubled. Control characters (line breaks) are refused: they
/// would end the command.
pub(crate) fn quote(value: &str) -> Result<String, Unquotable> {
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(Unquotable {
            value: value.escape_debug().to_string(),
            reason: if c == '\n' || c == '\r' {
                "it contains a line break"
            } else {
                "it contains a control character"
            },
        });
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        if SINGLE_QUOTES.contains(&c) {
            out.push(c);
        }
        out.push(c);
    }
    out.push('\'');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_values_stay_literal() {
        let rows = [
            ("mailer@contoso.com", "'mailer@contoso.com'"),
            ("o'brien@contoso.com", "'o''brien@contoso.com'"),
            ("$(Remove-Item C:\\ -Recurse)", "'$(Remove-Item C:\\ -Recurse)'"),
            ("`whoami`", "'`whoami`'"),
            ("\"; Stop-Computer; \"", "'\"; Stop-Computer; \"'"),
            (
                "a\u{2019}; Stop-Computer; \u{2018}",
                "'a\u{2019}\u{2019}; Stop-Computer; \u{2018}\u{2018}'",
            ),
        ];
        for (value, quoted) in rows {
            assert_eq!(quote(value).unwrap(), quoted, "{value}");
        }
        assert!(quote("a\nStop-Computer").is_err());
        assert!(quote("a\rb").is_err());
        assert!(quote("a\u{0}b").is_err());
    }
}
