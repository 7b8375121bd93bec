//! The command line: `main → run → exit code`. Arguments are parsed here, resolved once into a
//! validated configuration, and the rest of the program never sees clap types.

mod apply;
mod args;
mod config;
#[cfg(feature = "emulator")]
mod demo;
mod doctor;
pub(crate) mod exit;
mod generate;
mod queue;
mod relay;
mod send;
pub(crate) mod sendmail;
mod setup;
mod token;

use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;

use clap::Parser as _;

use args::{Cli, Command, ConfigCommand};
use exit::{Code, Failure};

/// Parses `args` (program name first) and runs the command; returns the exit code.
pub fn run(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let mut args: Vec<OsString> = args.into_iter().collect();
    let program = args.first().map(|p| {
        Path::new(p)
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned()
    });
    // Installed as /usr/sbin/sendmail (a symlink), behave as `send`.
    if program
        .as_deref()
        .is_some_and(|p| p == "sendmail" || p.starts_with("sendmail."))
    {
        args.insert(1, "send".into());
    }
    let args = match normalize_send(args) {
        Ok(args) => args,
        Err(e) => return report(&Failure::new(Code::Usage, e.0)),
    };
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(Code::Usage as u8)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    // The relay logs each message it accepts and delivers; other commands only warnings.
    match &cli.command {
        Command::Relay(relay) => init_logging("info", relay.log_format == "json"),
        _ => init_logging("warn", false),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            return report(&Failure::new(
                Code::Software,
                format!("cannot start the async runtime: {e}"),
            ));
        }
    };
    let outcome = runtime.block_on(async {
        match cli.command {
            Command::Send(send_args) => send::run(&send_args).await,
            Command::Config {
                command: ConfigCommand::Check(account),
            } => config::check(&account),
            #[cfg(feature = "emulator")]
            Command::Demo => demo::run().await,
            Command::Doctor(args) => doctor::run(&args).await,
            Command::Token(args) => token::run(&args).await,
            Command::Setup(args) => setup::run(&args).await,
            Command::Relay(args) => relay::run(&args).await,
            Command::Queue(args) => queue::run(&args).await,
            Command::Completions { shell } => generate::completions(shell),
            Command::Man { dir } => generate::man(dir.as_deref()),
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => report(&failure),
    }
}

/// Runs sendmail's argument rewriting on what follows `send`.
fn normalize_send(args: Vec<OsString>) -> Result<Vec<OsString>, sendmail::Unsupported> {
    if args.get(1).is_none_or(|a| a != "send") {
        return Ok(args);
    }
    // Which of `send`'s long options take a value, from its clap definition.
    let command = <Cli as clap::CommandFactory>::command();
    let send = command.find_subcommand("send").expect("`send` is a subcommand");
    let takes_value = |name: &str| {
        send.get_arguments()
            .any(|a| a.get_long() == Some(name) && a.get_action().takes_values())
    };
    let (head, tail) = args.split_at(2);
    let mut out = head.to_vec();
    out.extend(sendmail::normalize(tail.iter().cloned(), &takes_value)?);
    Ok(out)
}

fn report(failure: &Failure) -> ExitCode {
    if !failure.message.is_empty() {
        eprintln!("m365-mailer: {}", failure.message);
    }
    failure.exit_code()
}

/// Logs to stderr; `M365_MAILER_LOG` (or `RUST_LOG`) sets the filter, e.g.
/// `m365_mailer::wire=debug` for the masked SMTP transcript.
fn init_logging(default: &str, json: bool) {
    let filter = std::env::var("M365_MAILER_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| default.to_owned());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init()
    };
}

/// Used by `send` and `demo`: what to do with a prepared message.
pub(crate) fn print_dry_run(outgoing: &crate::message::Outgoing) {
    println!("MAIL FROM:<{}>", outgoing.envelope.from);
    for r in &outgoing.envelope.to {
        println!("RCPT TO:<{r}>");
    }
    println!();
    print!("{}", String::from_utf8_lossy(&outgoing.content));
}
