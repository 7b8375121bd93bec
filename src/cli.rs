//! Command-line entry point. Subcommands arrive with the capabilities that need them; for now the
//! program only describes itself.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;

/// Send mail through Microsoft 365 with OAuth2 app-only credentials.
#[derive(Debug, Parser)]
#[command(name = "m365-mailer", version, about)]
struct Args {}

/// Parses `args` and runs the command; returns the process exit code.
pub fn run(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    match Args::try_parse_from(args) {
        Ok(Args {}) => {
            println!(
                "m365-mailer {}: no command given; the emulator runs with\n  cargo run --release -p m365-emulator -- --tenant emulator/examples/contoso.toml",
                env!("CARGO_PKG_VERSION")
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            let _ = e.print();
            ExitCode::from(if e.use_stderr() { 64 } else { 0 })
        }
    }
}
