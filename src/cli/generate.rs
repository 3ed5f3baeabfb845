//! Commands that print what clap knows about the command line: shell
//! completions and the man page.

use miette::{IntoDiagnostic, Report, WrapErr};

use super::Cli;

pub fn completions_command(shell: clap_complete::Shell) -> Result<(), Report> {
    let mut command = <Cli as clap::CommandFactory>::command();
    clap_complete::generate(shell, &mut command, "strata", &mut std::io::stdout());
    Ok(())
}

pub fn man_command() -> Result<(), Report> {
    let command = <Cli as clap::CommandFactory>::command();
    clap_mangen::Man::new(command)
        .render(&mut std::io::stdout())
        .into_diagnostic()
        .wrap_err("cannot print the man page")
}
