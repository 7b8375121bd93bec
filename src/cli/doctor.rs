//! `doctor`: check every link of the chain and print the report.

use std::io::IsTerminal as _;

use super::args::DoctorArgs;
use super::exit::Failure;
use crate::config::Config;
use crate::doctor::{self, report};

pub(super) async fn run(args: &DoctorArgs) -> Result<(), Failure> {
    let config = Config::resolve(&args.account.overrides());
    let options = doctor::Options {
        send_test: args.send_test.clone(),
        from: args.from.clone(),
    };
    let result = doctor::run(config, &options).await;
    if args.json {
        println!("{}", report::json(&result));
    } else {
        let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        print!("{}", report::human(&result, colour));
    }
    match result.exit_code() {
        None => Ok(()),
        Some(code) => Err(Failure::silent(code)),
    }
}
