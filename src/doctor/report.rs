//! `doctor`'s report: for people (80 columns, colour only on a terminal) and for automation
//! (JSON).

use serde::Serialize;

use super::{Report, Status};
use crate::catalog::Rendered;

/// Width of the human report.
pub(crate) const WIDTH: usize = 80;

/// The report as JSON, with a summary.
pub(crate) fn json(report: &Report) -> String {
    #[derive(Serialize)]
    struct Summary {
        passed: usize,
        failed: usize,
        warnings: usize,
        skipped: usize,
        exit_code: u8,
    }
    #[derive(Serialize)]
    struct Document<'a> {
        #[serde(flatten)]
        report: &'a Report,
        summary: Summary,
    }
    let document = Document {
        report,
        summary: Summary {
            passed: report.count(Status::Pass),
            failed: report.count(Status::Fail),
            warnings: report.count(Status::Warn),
            skipped: report.count(Status::Skip),
            exit_code: report.exit_code().map_or(0, u8::from),
        },
    };
    serde_json::to_string_pretty(&document).expect("the report serialises")
}

/// The report for a terminal; `colour` adds ANSI colours to the status tags.
pub(crate) fn human(report: &Report, colour: bool) -> String {
    let mut out = String::new();
    match &report.account {
        Some(account) => out.push_str(&format!("m365-mailer doctor: account {account}\n\n")),
        None => out.push_str("m365-mailer doctor\n\n"),
    }
    for check in &report.checks {
        let (tag, code) = match check.status {
            Status::Pass => ("PASS", "32"),
            Status::Warn => ("WARN", "33"),
            Status::Fail => ("FAIL", "31"),
            Status::Skip => ("SKIP", "2"),
        };
        let tag = if colour {
            format!("\x1b[{code}m{tag}\x1b[0m")
        } else {
            tag.to_owned()
        };
        let head = format!("{:<14}{}", check.id, check.summary);
        let lines = wrap(&head, "", "              ", WIDTH - 6);
        for (i, line) in lines.iter().enumerate() {
            if i == 0 {
                out.push_str(&format!("{tag}  {line}\n"));
            } else {
                out.push_str(&format!("      {line}\n"));
            }
        }
        for evidence in &check.evidence {
            push_wrapped(&mut out, evidence, "      ", "        ");
        }
        if let Some(diagnosis) = &check.diagnosis {
            push_diagnosis(&mut out, diagnosis);
        }
    }
    out.push_str(&format!(
        "\n{} passed, {} failed, {} warnings, {} skipped\n",
        report.count(Status::Pass),
        report.count(Status::Fail),
        report.count(Status::Warn),
        report.count(Status::Skip)
    ));
    out
}

fn push_diagnosis(out: &mut String, d: &Rendered) {
    for note in &d.notes {
        push_wrapped(out, note, "      ", "      ");
    }
    let many = d.causes.len() > 1 && !d.confirmed;
    if many {
        push_wrapped(out, "Likely causes, most likely first:", "      ", "      ");
    }
    for (i, cause) in d.causes.iter().enumerate() {
        let first = if many {
            format!("{}. {}", i + 1, cause.why)
        } else {
            format!("Cause: {}", cause.why)
        };
        push_wrapped(out, &first, "      ", "         ");
        push_wrapped(out, &format!("Fix: {}", cause.fix), "         ", "              ");
        for command in &cause.commands {
            for line in command_lines(command, "           ") {
                out.push_str(&line);
                out.push('\n');
            }
        }
        if d.confirmed {
            break;
        }
    }
    if d.propagation {
        push_wrapped(
            out,
            "Changes in Entra ID and Exchange take 5 to 15 minutes to apply.",
            "      ",
            "      ",
        );
    }
    push_wrapped(out, &format!("More: {}", d.link), "      ", "            ");
}

fn push_wrapped(out: &mut String, text: &str, first: &str, rest: &str) {
    for line in wrap(text, first, rest, WIDTH) {
        out.push_str(&line);
        out.push('\n');
    }
}

fn wrap(text: &str, first: &str, rest: &str, width: usize) -> Vec<String> {
    // Identifiers are not split at their hyphens; only words longer than a line are broken.
    let options = textwrap::Options::new(width)
        .initial_indent(first)
        .subsequent_indent(rest)
        .word_splitter(textwrap::WordSplitter::NoHyphenation)
        .break_words(true);
    textwrap::wrap(text, options)
        .into_iter()
        .map(|l| l.into_owned())
        .collect()
}

/// A command split at its parameters so each line fits, continued with a backtick
/// (PowerShell) or a backslash (`az`, shell), so it can still be pasted whole.
pub(crate) fn command_lines(command: &str, indent: &str) -> Vec<String> {
    let shell = command.starts_with("az ") || command.starts_with("getent ") || command.starts_with("timedatectl");
    let (separator, continuation) = if shell { (" --", " \\") } else { (" -", " `") };
    let mut pieces: Vec<String> = Vec::new();
    let mut rest = command;
    while let Some(i) = find_parameter(rest, separator) {
        pieces.push(rest[..i].to_owned());
        rest = &rest[i + 1..];
    }
    pieces.push(rest.to_owned());
    let mut lines = Vec::new();
    let mut current = String::from(indent);
    let limit = WIDTH - continuation.len();
    for piece in pieces {
        let candidate_len = current.len() + usize::from(current.len() > indent.len()) + piece.len();
        if current.len() > indent.len() && candidate_len > limit {
            current.push_str(continuation);
            lines.push(current);
            current = format!("{indent}    {piece}");
        } else {
            if current.len() > indent.len() {
                current.push(' ');
            }
            current.push_str(&piece);
        }
    }
    lines.push(current);
    lines
}

/// The next ` -Param` (or ` --param`), or pipe, outside quotes.
fn find_parameter(text: &str, separator: &str) -> Option<usize> {
    let mut quoted = false;
    let bytes = text.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'\'' {
            quoted = !quoted;
        }
        if quoted || i == 0 {
            continue;
        }
        if text[i..].starts_with(" | ") {
            return Some(i);
        }
        if text[i..].starts_with(separator) && bytes.get(i + separator.len()).is_some_and(u8::is_ascii_alphabetic) {
            return Some(i);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_commands_are_continued_not_cut() {
        let command = "New-ServicePrincipal -AppId '0b7e2f4c-5d6a-4e8b-9c1d-3f2a4b6c8d0e' -ObjectId '6d5c4b3a-2f1e-4d0c-9b8a-7f6e5d4c3b2a'";
        let lines = command_lines(command, "    ");
        assert_eq!(
            lines,
            [
                "    New-ServicePrincipal -AppId '0b7e2f4c-5d6a-4e8b-9c1d-3f2a4b6c8d0e' `",
                "        -ObjectId '6d5c4b3a-2f1e-4d0c-9b8a-7f6e5d4c3b2a'"
            ]
        );
        assert!(lines.iter().all(|l| l.len() <= WIDTH));
        let piped = command_lines(
            "Get-ServicePrincipal | Where-Object AppId -eq '0b7e2f4c-5d6a-4e8b-9c1d-3f2a4b6c8d0e' | Format-List DisplayName, AppId, ObjectId",
            "           ",
        );
        assert!(piped.iter().all(|l| l.len() <= WIDTH), "{piped:#?}");
        let quoted = command_lines("Add-RecipientPermission -Identity 'a -b@contoso.com' -Trustee 'x'", "");
        assert_eq!(
            quoted,
            ["Add-RecipientPermission -Identity 'a -b@contoso.com' -Trustee 'x'"]
        );
        let az = command_lines(
            "az ad app credential reset --id '0b7e2f4c-5d6a-4e8b-9c1d-3f2a4b6c8d0e' --append --display-name m365-mailer",
            "  ",
        );
        assert!(az[0].ends_with(" \\") && az.len() == 2, "{az:?}");
    }
}
