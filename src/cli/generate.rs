//! Commands that print what clap knows about the command line: shell
//! completions and the man page.

use std::io::Write;

use miette::Report;

use super::{Cli, write_stdout};

pub fn completions_command(shell: clap_complete::Shell) -> Result<(), Report> {
    let mut command = <Cli as clap::CommandFactory>::command();
    // Generated in memory: `generate` panics when its writer fails.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "strata", &mut script);
    Ok(write_stdout(|out| out.write_all(&script))?)
}

pub fn man_command() -> Result<(), Report> {
    let command = <Cli as clap::CommandFactory>::command();
    Ok(write_stdout(|out| {
        clap_mangen::Man::new(command).render(out)
    })?)
}
