//! The `strata` command: parses arguments and hands them to `cli`, which
//! wires the library's stages.

mod cli;

use std::process::ExitCode;

use clap::Parser;

use strata_progress as progress;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    progress::install(progress::Progress::new(cli.progress.mode(), cli.quiet));
    progress::init_logs(cli.verbose);
    // Logs and CI output are read by grep and people alike: wrap only on a terminal.
    let on_terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let no_color = progress::no_color();
    let _ = miette::set_hook(Box::new(move |_| {
        let opts = miette::MietteHandlerOpts::new().wrap_lines(on_terminal);
        Box::new(if no_color { opts.color(false) } else { opts }.build())
    }));
    match cli::run(cli) {
        Ok(status) => status,
        Err(report)
            if report
                .downcast_ref::<cli::StdoutError>()
                .is_some_and(cli::StdoutError::is_closed_pipe) =>
        {
            ExitCode::SUCCESS
        }
        Err(report) => {
            progress::get().suspend(|| eprintln!("{report:?}"));
            ExitCode::FAILURE
        }
    }
}
