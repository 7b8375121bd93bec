//! sendmail's command line, as msmtp reads it, normalised so clap can parse the rest.
//!
//! Legacy flags do not fit clap's rules (`-oi`, `-odb`, `-faddr` with the value attached, `-ti`
//! clusters), so this small pre-pass rewrites them: `-faddr` → `-f addr`, `-r` → `-f`, accepted
//! and ignored flags are dropped, other `-b` modes are refused.

use std::ffi::OsString;

/// A sendmail flag this tool does not implement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unsupported(pub String);

/// Flags accepted and ignored that take a value (attached or as the next argument).
const IGNORED_WITH_VALUE: &[char] = &['A', 'B', 'h', 'L', 'N', 'O', 'R', 'V', 'X'];
/// Flags accepted and ignored without a value.
const IGNORED: &[char] = &['i', 'G', 'm', 'n', 'U'];

/// Rewrites sendmail-style arguments (program name excluded).
pub fn normalize(args: impl IntoIterator<Item = OsString>) -> Result<Vec<OsString>, Unsupported> {
    let mut out = Vec::new();
    let mut args = args.into_iter().peekable();
    while let Some(arg) = args.next() {
        let Some(text) = arg.to_str() else {
            out.push(arg);
            continue;
        };
        if text == "--" {
            out.push(arg);
            out.extend(args.by_ref());
            break;
        }
        if text.starts_with("--") || !text.starts_with('-') || text == "-" {
            out.push(arg);
            continue;
        }
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
        normalize(args.iter().map(OsString::from)).map(|v| v.into_iter().map(|a| a.into_string().unwrap()).collect())
    }

    #[test]
    fn table() {
        let rows: &[(&[&str], &[&str])] = &[
            (&["-t", "-i"], &["-t"]),
            (&["-oi", "-t"], &["-t"]),
            (&["-ti"], &["-t"]),
            (&["-odb", "-oem", "-bm", "a@b.c"], &["a@b.c"]),
            (&["-fsender@b.c", "a@b.c"], &["-f", "sender@b.c", "a@b.c"]),
            (&["-f", "sender@b.c"], &["-f", "sender@b.c"]),
            (&["-r", "sender@b.c"], &["-f", "sender@b.c"]),
            (&["-FBackup Job"], &["-F", "Backup Job"]),
            (&["-N", "never", "-Rhdrs", "-B", "8BITMIME", "-v"], &["-v"]),
            (
                &["--to", "a@b.c", "--subject", "-x"],
                &["--to", "a@b.c", "--subject", "-x"],
            ),
            (&["--", "-odd@b.c"], &["--", "-odd@b.c"]),
        ];
        for (input, expected) in rows {
            assert_eq!(run(input).unwrap(), *expected, "{input:?}");
        }
        assert!(run(&["-bs"]).is_err());
        assert!(run(&["-bp"]).unwrap_err().0.contains("-bp"));
    }
}
