//! The `m365-mailer` program: parse, run, exit code.

fn main() -> std::process::ExitCode {
    m365_mailer::run(std::env::args_os())
}
