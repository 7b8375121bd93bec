//! `completions` and `man`: generated from the same clap definition the program parses with, so
//! they never drift from it.

use std::path::Path;

use clap::CommandFactory as _;

use super::args::Cli;
use super::exit::{Code, Failure};

pub(crate) fn completions(shell: clap_complete::Shell) -> Result<(), Failure> {
    let mut command = Cli::command();
    clap_complete::generate(shell, &mut command, "m365-mailer", &mut std::io::stdout());
    Ok(())
}

pub(crate) fn man(dir: Option<&Path>) -> Result<(), Failure> {
    let command = Cli::command();
    let written = match dir {
        None => clap_mangen::Man::new(command).render(&mut std::io::stdout()),
        Some(dir) => std::fs::create_dir_all(dir).and_then(|()| clap_mangen::generate_to(command, dir)),
    };
    written.map_err(|e| Failure::new(Code::IoErr, format!("cannot write the manual: {e}")))
}
