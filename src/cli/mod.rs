//! The command layer: turns parsed arguments into calls to the library and
//! prints what they return.
//!
//! `args` holds the clap definitions; each other module holds one family of
//! commands. The helpers below are the few every family shares.

mod args;
mod build;
mod generate;
mod inspect;
mod lint;
mod recipe;
mod registry;

use std::fmt::Display;
use std::io::{self, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

use miette::Report;

use strata_builder::build::BuildOptions;
use strata_progress as progress;

pub use args::Cli;
use args::{Command, SbomFormat};

/// Whether two references name the same registry (unreadable ones do not:
/// the build reports them).
fn same_registry(a: &str, b: &str) -> bool {
    use strata_oci::reference::Reference;
    matches!((Reference::parse(a), Reference::parse(b)), (Ok(a), Ok(b)) if a.registry == b.registry)
}

/// Runs a command; `Ok` holds its exit status (`strata diff --exit-code`
/// fails without an error).
pub fn run(cli: Cli) -> Result<ExitCode, Report> {
    let status = match cli.command {
        Command::Build {
            recipe,
            output,
            tags,
            format,
            compression,
            json,
            locked,
            offline,
            platform,
            push,
            digest_file,
            cache_repo,
            verify_cache,
            sbom,
            registry,
        } => {
            let options = BuildOptions {
                compression,
                tags,
                locked,
                offline,
                sbom: sbom.format(),
                // Layers stay in the registry cache when the image goes only
                // to that registry, which can mount them.
                lazy_layers: format == args::Format::None
                    && cache_repo
                        .as_deref()
                        .is_some_and(|cache| push.iter().all(|d| same_registry(d, cache))),
                shared_cache: cache_repo,
                verify_cache,
                platform,
                ..BuildOptions::new(&recipe, registry.options()?)
            };
            let publish = build::Publish {
                destinations: push,
                digest_file,
            };
            build::build_command(&recipe, output, format, &options, json, &publish)
        }
        Command::Push {
            image,
            destinations,
            tags,
            digest_file,
            registry,
        } => registry::push_command(&image, &destinations, tags, digest_file, registry),
        Command::ResolveBase {
            reference,
            registry,
        } => registry::resolve_base_command(&reference, registry),
        Command::Login {
            registry,
            username,
            password_stdin,
            password,
            tls,
        } => registry::login_command(&registry, username, password_stdin, password, tls),
        Command::Lock {
            recipe,
            registry,
            format,
        } => recipe::lock_command(&recipe, registry.options()?, format),
        Command::Cache { action } => match action {
            args::CacheAction::Export {
                recipe,
                destination,
                registry,
            } => recipe::cache_command(&recipe, &destination, registry.options()?, true),
            args::CacheAction::Import {
                recipe,
                source,
                registry,
            } => recipe::cache_command(&recipe, &source, registry.options()?, false),
        },
        Command::Lint {
            recipes,
            format,
            allow,
            strict,
            static_only,
            offline,
            list,
            registry,
        } => {
            if list {
                print(strata_builder::lint::render::list())?;
                return Ok(ExitCode::SUCCESS);
            }
            let options = lint::LintOptions {
                format,
                allow,
                strict,
                static_only,
                offline,
            };
            lint::lint_command(&recipes, &options, &registry.options()?)
        }
        Command::Inspect { image, json } => inspect::inspect_command(&image, json),
        Command::Sbom { image, format } => {
            inspect::sbom_command(&image, format.and_then(SbomFormat::format))
        }
        Command::Diff {
            a,
            b,
            json,
            exit_code,
        } => return inspect::diff_command(&a, &b, json, exit_code),
        Command::Init => recipe::init_command(),
        Command::Completions { shell } => generate::completions_command(shell),
        Command::Man => generate::man_command(),
    };
    status.map(|()| ExitCode::SUCCESS)
}

/// Standard output could not be written. When the reader went away
/// (`strata inspect out | head`) this is no failure: `main` ends quietly with
/// status 0, as ripgrep does.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("cannot write to standard output")]
pub struct StdoutError(#[source] pub io::Error);

impl StdoutError {
    pub fn is_closed_pipe(&self) -> bool {
        self.0.kind() == io::ErrorKind::BrokenPipe
    }
}

/// A command's result on stdout. Every result goes through here (never
/// `println!`, which panics on a closed pipe).
fn print(text: impl Display) -> Result<(), StdoutError> {
    write_stdout(|out| write!(out, "{text}"))
}

fn write_stdout(
    write: impl FnOnce(&mut io::StdoutLock) -> io::Result<()>,
) -> Result<(), StdoutError> {
    let mut out = io::stdout().lock();
    write(&mut out)
        .and_then(|()| out.flush())
        .map_err(StdoutError)
}

/// A result line on stderr, above any bars; `-q` drops it.
fn say(line: String) {
    progress::get().println(line);
}

/// `DIR` or `DIR:TAG` (a folder whose name holds `:` is taken whole).
fn split_image(image: &str) -> (&str, Option<&str>) {
    match image.rsplit_once(':') {
        Some((dir, tag)) if !Path::new(image).is_dir() => (dir, Some(tag)),
        _ => (image, None),
    }
}

/// Whether to colour what goes to `stream`: a terminal, and no `NO_COLOR`.
fn color(stream: &impl IsTerminal) -> bool {
    stream.is_terminal() && !progress::no_color()
}
