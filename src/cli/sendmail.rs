//! sendmail's command line, as msmtp reads it, normalised so clap can parse the rest.
//!
//! Legacy flags do not fit clap's rules (`-oi`, `-odb`, `-faddr` with the value attached, `-ti`
//! clusters), so this small pre-pass rewrites them: `-faddr` → `-f addr`, `-r` → `-f`, accepted
//! and ignored flags are dropped, other `-b` modes are refused.
//!
//! Options end at the first operand or at `--` (POSIX, and sendmail's own rule): everything
//! after is a recipient, whatever it looks like. A web application that passes its user's text
//! as a recipient (`sendmail "$to"`) can therefore never pass an option such as
//! `--token-endpoint=…` or `--attach /etc/…`; an operand that starts with `-` is refused as an
//! address later, as Postfix refuses it.

use std::ffi::OsString;

/// A sendmail flag this tool does not implement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Unsupported(pub String);

/// Flags accepted and ignored that take a value (attached or as the next argument).
const IGNORED_WITH_VALUE: &[char] = &['A', 'B', 'h', 'L', 'N', 'O', 'R', 'V', 'X'];
/// Flags accepted and ignored without a value.
const IGNORED: &[char] = &['i', 'G', 'm', 'n', 'U'];

/// Rewrites sendmail-style arguments (program name excluded). `takes_value` tells which long
/// options (`--subject`) take the next argument as their value.
pub(crate) fn normalize(
    args: impl IntoIterator<Item = OsString>,
    takes_value: &dyn Fn(&str) -> bool,
) -> Result<Vec<OsString>, Unsupported> {
    let mut out = Vec::new();
    let mut args = args.into_iter().peekable();
    while let Some(arg) = args.next() {
        let text = arg.to_string_lossy();
        if text == "--" || !text.starts_with('-') || text == "-" {
            // The first operand: no option after it.
            out.push("--".into());
            if text != "--" {
                out.push(arg);
            }
            out.extend(args.by_ref());
            break;
        }
        if let Some(long) = text.strip_prefix("--") {
            let value_follows = !long.contains('=') && takes_value(long);
            out.push(arg);
            if value_follows && let Some(value) = args.next() {
                out.push(value);
            }
            continue;
        }
        let Some(text) = arg.to_str() else {
            out.push(arg);
            continue;
        };
        let flag = &text[1..];
        let mut chars = flag.chars();
        let first = chars.next().expect("a flag after '-'");
        let rest = chars.as_str();
        match first {
            'o' => {} // -oi, -oem, -odb, any -o option
            'b' if rest == "m" => {}
            'b' => {
                return Err(Unsupported(format!(
                    "sendmail mode -b{rest} is not supported; only -bm (read a message and deliver it) is"
                )));
            }
            'f' | 'r' | 'F' => {
                let target = if first == 'F' { "-F" } else { "-f" };
                out.push(target.into());
                if rest.is_empty() {
                    if let Some(value) = args.next() {
                        out.push(value);
                    }
                } else {
                    out.push(rest.into());
                }
            }
            c if IGNORED_WITH_VALUE.contains(&c) => {
                if rest.is_empty() {
                    args.next();
                }
            }
            _ if flag.chars().all(|c| c == 't' || c == 'v' || IGNORED.contains(&c)) => {
                for c in flag.chars().filter(|c| *c == 't' || *c == 'v') {
                    out.push(format!("-{c}").into());
                }
            }
            _ => out.push(arg),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Vec<String>, Unsupported> {
        let takes_value = |name: &str| ["to", "subject", "token-endpoint"].contains(&name);
        normalize(args.iter().map(OsString::from), &takes_value)
            .map(|v| v.into_iter().map(|a| a.into_string().unwrap()).collect())
    }

    #[test]
    fn table() {
        let rows: &[(&[&str], &[&str])] = &[
            (&["-t", "-i"], &["-t"]),
            (&["-oi", "-t"], &["-t"]),
            (&["-ti"], &["-t"]),
            (&["-odb", "-oem", "-bm", "a@b.c"], &["--", "a@b.c"]),
            (&["-fsender@b.c", "a@b.c"], &["-f", "sender@b.c", "--", "a@b.c"]),
            (&["-f", "sender@b.c"], &["-f", "sender@b.c"]),
            (&["-r", "sender@b.c"], &["-f", "sender@b.c"]),
            (&["-FBackup Job"], &["-F", "Backup Job"]),
            (&["-N", "never", "-Rhdrs", "-B", "8BITMIME", "-v"], &["-v"]),
            (
                &["--to", "a@b.c", "--subject", "-x"],
                &["--to", "a@b.c", "--subject", "-x"],
            ),
            (&["--", "-odd@b.c"], &["--", "-odd@b.c"]),
            // Options end at the first operand: what follows is a recipient, never an option.
            (
                &["ops@contoso.com", "--token-endpoint=https://evil.example/"],
                &["--", "ops@contoso.com", "--token-endpoint=https://evil.example/"],
            ),
            (
                &["-t", "ops@contoso.com", "-f", "x@y.z", "--attach", "/etc/shadow"],
                &["-t", "--", "ops@contoso.com", "-f", "x@y.z", "--attach", "/etc/shadow"],
            ),
            (
                &["--token-endpoint", "https://login.example/t", "a@b.c"],
                &["--token-endpoint", "https://login.example/t", "--", "a@b.c"],
            ),
        ];
        for (input, expected) in rows {
            assert_eq!(run(input).unwrap(), *expected, "{input:?}");
        }
        assert!(run(&["-bs"]).is_err());
        assert!(run(&["-bp"]).unwrap_err().0.contains("-bp"));
    }
}
