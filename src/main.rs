//! The `strata` command: parses arguments and wires the library's stages.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand, ValueEnum};
use miette::{IntoDiagnostic, Report, WrapErr};

use strata::build::{BuildOptions, build};
use strata::cache::Cache;
use strata::inspect;
use strata::layer::compress::Compression;
use strata::layout::Layout;
use strata::lock;
use strata::output;
use strata::recipe::Recipe;

#[derive(Parser)]
#[command(
    name = "strata",
    version,
    about = "Declarative, daemonless, byte-reproducible OCI image builder"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build the image a recipe describes
    Build {
        /// The recipe (a KDL file such as `image.kdl`)
        recipe: PathBuf,
        /// Where to write: a layout folder, or a file for the archive formats
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Extra tags, besides the recipe's `version`
        #[arg(short, long = "tag", value_name = "TAG")]
        tags: Vec<String>,
        #[arg(long, value_enum, default_value_t = Format::Oci)]
        format: Format,
        /// Layer compression: `gzip`, `zstd`, or `ALGO:LEVEL`
        #[arg(long, default_value = "gzip")]
        compression: Compression,
        /// Print the result as JSON on stdout
        #[arg(long)]
        json: bool,
        /// Fail instead of re-resolving when the lock is missing or stale
        #[arg(long)]
        locked: bool,
        /// Build from the cache alone, without any network access
        #[arg(long)]
        offline: bool,
    },
    /// Resolve the recipe's Debian packages and write the lock beside it
    Lock {
        /// The recipe (a KDL file such as `image.kdl`)
        recipe: PathBuf,
    },
    /// Show what an OCI layout holds: config, layers, labels
    Inspect {
        /// `DIR` or `DIR:TAG`
        image: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    /// An OCI image layout folder
    Oci,
    /// A tar of an OCI image layout
    OciArchive,
    /// A tar that `docker load` and `podman load` accept
    DockerArchive,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Logs and CI output are read by grep and people alike: wrap only on a terminal.
    let on_terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = miette::set_hook(Box::new(move |_| {
        Box::new(
            miette::MietteHandlerOpts::new()
                .wrap_lines(on_terminal)
                .build(),
        )
    }));
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(report) => {
            eprintln!("{report:?}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), Report> {
    match cli.command {
        Command::Build {
            recipe,
            output,
            tags,
            format,
            compression,
            json,
            locked,
            offline,
        } => {
            let options = BuildOptions {
                compression,
                tags,
                lock_path: lock::path_for(&recipe),
                locked,
                offline,
            };
            build_command(&recipe, output, format, &options, json)
        }
        Command::Lock { recipe } => lock_command(&recipe),
        Command::Inspect { image, json } => inspect_command(&image, json),
    }
}

fn lock_command(recipe_path: &Path) -> Result<(), Report> {
    let recipe = Recipe::load(recipe_path)?;
    let cache = Cache::from_env()?;
    let options = BuildOptions {
        compression: Compression::default(),
        tags: Vec::new(),
        lock_path: lock::path_for(recipe_path),
        locked: false,
        offline: false,
    };
    match strata::build::lock(&recipe, &options, &cache)? {
        Some(lock) => {
            let count: usize = lock.platforms.values().map(Vec::len).sum();
            eprintln!(
                "locked {count} package(s) → {}",
                options.lock_path.display()
            );
        }
        None => eprintln!("the recipe installs no packages: nothing to lock"),
    }
    Ok(())
}

fn build_command(
    recipe_path: &Path,
    output: Option<PathBuf>,
    format: Format,
    options: &BuildOptions,
    json: bool,
) -> Result<(), Report> {
    let started = Instant::now();
    let recipe = Recipe::load(recipe_path)?;
    let cache = Cache::from_env()?;
    let report = build(&recipe, options, &cache)?;
    let built = &report.built;
    let dest = output.unwrap_or_else(|| match format {
        Format::Oci => PathBuf::from("out"),
        Format::OciArchive | Format::DockerArchive => PathBuf::from("out.tar"),
    });
    match format {
        Format::Oci => output::layout::write(&dest, built)?,
        Format::OciArchive => output::archive::write_oci(&dest, built)?,
        Format::DockerArchive => output::archive::write_docker(&dest, built, &recipe.name)?,
    }
    if json {
        let layers: Vec<_> = report
            .layers
            .iter()
            .map(|l| {
                serde_json::json!({
                    "name": l.name,
                    "digest": l.blob.digest,
                    "diffId": l.blob.diff_id,
                    "size": l.blob.size,
                    "entries": l.blob.entries,
                    "cached": l.cached,
                })
            })
            .collect();
        let manifests: Vec<_> = built
            .images
            .iter()
            .map(|i| serde_json::json!({"platform": i.platform.to_string(), "digest": i.manifest.digest}))
            .collect();
        let result = serde_json::json!({
            "digest": built.top.digest().to_string(),
            "tags": built.tags,
            "output": dest,
            "manifests": manifests,
            "layers": layers,
            "timings": report
                .timings
                .iter()
                .map(|(phase, d)| (phase.to_string(), d.as_secs_f64().into()))
                .collect::<serde_json::Map<_, _>>(),
            "seconds": started.elapsed().as_secs_f64(),
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&result).into_diagnostic()?
        );
    } else {
        for l in &report.layers {
            eprintln!(
                "  layer {:<12} {}  {:>10} bytes  {}",
                l.name,
                l.blob.digest,
                l.blob.size,
                if l.cached { "cached" } else { "built" }
            );
        }
        eprintln!(
            "built {}:{} → {} ({}) in {:.2}s",
            recipe.name.value,
            built.tags.join(","),
            dest.display(),
            built.top.digest(),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

fn inspect_command(image: &str, json: bool) -> Result<(), Report> {
    let (dir, tag) = match image.rsplit_once(':') {
        Some((dir, tag)) if !Path::new(image).is_dir() => (dir, Some(tag)),
        _ => (image, None),
    };
    let layout = Layout::open(Path::new(dir))?;
    let inspection = inspect::inspect(&layout, tag)?;
    if json {
        let text = serde_json::to_string_pretty(&inspection)
            .into_diagnostic()
            .wrap_err("cannot print the inspection")?;
        println!("{text}");
    } else {
        print!("{}", inspect::render(&inspection));
    }
    Ok(())
}
