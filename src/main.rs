//! The `strata` command: parses arguments and wires the library's stages.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand, ValueEnum};
use miette::{IntoDiagnostic, Report, WrapErr};

use strata::build::{BuildOptions, build};
use strata::cache::Cache;
use strata::diff;
use strata::inspect;
use strata::layer::compress::Compression;
use strata::layout::Layout;
use strata::lint;
use strata::output;
use strata::progress;
use strata::push::{self, Destination, Image};
use strata::recipe::Recipe;
use strata::reference::Reference;
use strata::registry::{self, Client, auth::Credential};
use strata::sbom;

#[derive(Parser)]
#[command(
    name = "strata",
    version,
    about = "Declarative, daemonless, byte-reproducible OCI image builder"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Print nothing but errors
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// Log what strata does on stderr (`-vv` for more detail)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Progress on stderr: bars on a terminal, else one line per step
    #[arg(long, global = true, value_enum, default_value_t = ProgressArg::Auto)]
    progress: ProgressArg,
}

#[derive(Clone, Copy, ValueEnum)]
enum ProgressArg {
    /// `tty` when stderr is a terminal, else `plain`
    Auto,
    /// Progress bars
    Tty,
    /// One line per step, for logs and CI
    Plain,
    /// No progress (results and errors still print)
    None,
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
        /// Push the image to these registries after building (`REGISTRY/REPO[:TAG]`)
        #[arg(long, value_name = "DEST")]
        push: Vec<String>,
        /// Write the image's digest to this file (for CI)
        #[arg(long, value_name = "FILE")]
        digest_file: Option<PathBuf>,
        /// The SBOM attached to the image (an OCI artifact whose subject is the image)
        #[arg(long, value_enum, default_value_t = sbom::Format::Spdx)]
        sbom: sbom::Format,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Print the SBOM attached to an image in an OCI layout
    Sbom {
        /// `DIR` or `DIR:TAG`
        image: String,
        /// Which document, when the image has both
        #[arg(long, value_enum)]
        format: Option<sbom::Format>,
    },
    /// Push an image from an OCI layout to one or more registries
    Push {
        /// `DIR` or `DIR:TAG`
        image: String,
        /// Where to push: `REGISTRY/REPO[:TAG]`, any number of them
        #[arg(required = true, value_name = "DEST")]
        destinations: Vec<String>,
        /// Tags every destination gets when it names none (default: the layout's tag)
        #[arg(short, long = "tag", value_name = "TAG")]
        tags: Vec<String>,
        /// Write the pushed digest to this file (for CI)
        #[arg(long, value_name = "FILE")]
        digest_file: Option<PathBuf>,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Print the digest a registry tag points at, to pin a `base`
    ResolveBase {
        /// `REGISTRY/REPO:TAG` (Docker Hub short names expand as Docker does)
        reference: String,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Check and store credentials for a registry (in the containers auth file)
    Login {
        /// The registry host, e.g. `ghcr.io` or `127.0.0.1:5000`
        registry: String,
        #[arg(short, long)]
        username: String,
        /// Read the password from standard input
        #[arg(long)]
        password_stdin: bool,
        /// The password (visible to other users in the process list: prefer --password-stdin)
        #[arg(short, long, env = "STRATA_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        #[command(flatten)]
        tls: TlsArgs,
    },
    /// Resolve the recipe's Debian packages and write the lock beside it
    Lock {
        /// The recipe (a KDL file such as `image.kdl`)
        recipe: PathBuf,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Write a commented starter recipe (TRE Python) into the current folder
    Init,
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    Completions { shell: clap_complete::Shell },
    /// Print the man page (roff) on standard output
    Man,
    /// Check a recipe and the image it would build against the TRE and
    /// supply-chain rules (spec/lint.md)
    Lint {
        /// The recipes (KDL files such as `image.kdl`)
        #[arg(required_unless_present = "list")]
        recipes: Vec<PathBuf>,
        #[arg(long, value_enum, default_value_t = LintFormat::Human)]
        format: LintFormat,
        /// Silence these rules (`STR004` or `STR004,STR006`), besides the recipe's `lint { allow … }`
        #[arg(long, value_name = "ID")]
        allow: Vec<String>,
        /// Fail on warnings too
        #[arg(long)]
        strict: bool,
        /// Only the rules that read the recipe and the files it copies: no base, no packages
        #[arg(long = "static")]
        static_only: bool,
        /// Use the cache only: no network at all
        #[arg(long)]
        offline: bool,
        /// Print the rules and exit
        #[arg(long)]
        list: bool,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Show what an OCI layout holds: config, layers, labels
    Inspect {
        /// `DIR` or `DIR:TAG`
        image: String,
        #[arg(long)]
        json: bool,
    },
    /// Show what changed between two images: config, layers, files, packages
    Diff {
        /// The first image: `DIR` or `DIR:TAG`
        a: String,
        /// The second image: `DIR` or `DIR:TAG`
        b: String,
        /// Print the differences as JSON on stdout
        #[arg(long)]
        json: bool,
        /// Exit with 1 when the images differ, as `git diff --exit-code` does
        #[arg(long)]
        exit_code: bool,
    },
}

/// Registry access, as skopeo names the flags.
#[derive(clap::Args)]
struct RegistryArgs {
    /// Credentials for every registry, instead of the auth files
    #[arg(
        long,
        value_name = "USER:PASSWORD",
        env = "STRATA_CREDS",
        hide_env_values = true
    )]
    creds: Option<String>,
    #[command(flatten)]
    tls: TlsArgs,
}

#[derive(clap::Args)]
struct TlsArgs {
    /// A PEM file of extra CA certificates to trust
    #[arg(long, value_name = "FILE")]
    ca_file: Vec<PathBuf>,
    /// A folder of `*.crt` CA certificates to trust
    #[arg(long, value_name = "DIR")]
    cert_dir: Option<PathBuf>,
    /// Allow plain HTTP and unverified TLS for every registry (loopback ones may always use HTTP)
    #[arg(long)]
    insecure: bool,
}

impl RegistryArgs {
    fn options(self) -> Result<registry::Options, Report> {
        let credentials = match self.creds {
            Some(text) => Some(Credential::parse_flag(&text).ok_or_else(|| {
                miette::miette!(
                    help = "write `--creds USER:PASSWORD`",
                    "`--creds` must be `USER:PASSWORD`"
                )
            })?),
            None => None,
        };
        Ok(registry::Options {
            credentials,
            ..self.tls.options()
        })
    }
}

impl TlsArgs {
    fn options(self) -> registry::Options {
        registry::Options {
            credentials: None,
            ca_files: self.ca_file,
            cert_dir: self.cert_dir,
            insecure: self.insecure,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum LintFormat {
    /// Diagnostics with the recipe line, for people
    Human,
    Json,
    /// SARIF 2.1.0, for GitHub code scanning
    Sarif,
}

struct LintOptions {
    format: LintFormat,
    allow: Vec<String>,
    strict: bool,
    static_only: bool,
    offline: bool,
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
    let mode = match cli.progress {
        ProgressArg::Auto => progress::Mode::Auto,
        ProgressArg::Tty => progress::Mode::Tty,
        ProgressArg::Plain => progress::Mode::Plain,
        ProgressArg::None => progress::Mode::Off,
    };
    progress::install(progress::Progress::new(mode, cli.quiet));
    progress::init_logs(cli.verbose);
    // Logs and CI output are read by grep and people alike: wrap only on a terminal.
    let on_terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let no_color = progress::no_color();
    let _ = miette::set_hook(Box::new(move |_| {
        let opts = miette::MietteHandlerOpts::new().wrap_lines(on_terminal);
        Box::new(if no_color { opts.color(false) } else { opts }.build())
    }));
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(report) => {
            progress::get().suspend(|| eprintln!("{report:?}"));
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
            push,
            digest_file,
            sbom,
            registry,
        } => {
            let options = BuildOptions {
                compression,
                tags,
                locked,
                offline,
                sbom,
                ..BuildOptions::new(&recipe, registry.options()?)
            };
            let publish = Publish {
                destinations: push,
                digest_file,
            };
            build_command(&recipe, output, format, &options, json, &publish)
        }
        Command::Push {
            image,
            destinations,
            tags,
            digest_file,
            registry,
        } => push_command(&image, &destinations, tags, digest_file, registry),
        Command::ResolveBase {
            reference,
            registry,
        } => {
            let reference = Reference::parse(&reference)
                .into_diagnostic()
                .wrap_err("cannot read the reference")?;
            let client = Client::new(registry.options()?)?;
            let digest = client.resolve(&reference)?;
            println!(
                "{}",
                Reference {
                    digest: Some(digest),
                    ..reference
                }
            );
            Ok(())
        }
        Command::Login {
            registry,
            username,
            password_stdin,
            password,
            tls,
        } => login_command(&registry, username, password_stdin, password, tls),
        Command::Lock { recipe, registry } => lock_command(&recipe, registry.options()?),
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
                print!("{}", strata::lint::render::list());
                return Ok(());
            }
            let options = LintOptions {
                format,
                allow,
                strict,
                static_only,
                offline,
            };
            lint_command(&recipes, &options, &registry.options()?)
        }
        Command::Inspect { image, json } => inspect_command(&image, json),
        Command::Sbom { image, format } => {
            let (dir, tag) = split_image(&image);
            let layout = Layout::open(Path::new(dir))?;
            let document = sbom::artifact::find(&layout, tag, format)?;
            std::io::Write::write_all(&mut std::io::stdout(), &document)
                .into_diagnostic()
                .wrap_err("cannot print the SBOM")
        }
        Command::Diff {
            a,
            b,
            json,
            exit_code,
        } => diff_command(&a, &b, json, exit_code),
        Command::Init => {
            let recipe = strata::init::init(Path::new("."))?;
            say(format!(
                "wrote {} and analysis/main.py; build with `strata build {}`",
                recipe.display(),
                recipe.display()
            ));
            Ok(())
        }
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "strata", &mut std::io::stdout());
            Ok(())
        }
        Command::Man => {
            let command = <Cli as clap::CommandFactory>::command();
            clap_mangen::Man::new(command)
                .render(&mut std::io::stdout())
                .into_diagnostic()
                .wrap_err("cannot print the man page")
        }
    }
}

fn lock_command(recipe_path: &Path, registry: registry::Options) -> Result<(), Report> {
    let recipe = Recipe::load(recipe_path)?;
    let cache = Cache::from_env()?;
    let options = BuildOptions::new(recipe_path, registry);
    match strata::build::lock(&recipe, &options, &cache)? {
        Some(lock) => {
            let count: usize = lock.platforms.values().map(Vec::len).sum();
            say(format!(
                "locked {count} package(s) → {}",
                options.lock_path.display()
            ));
        }
        None => say("the recipe installs no packages: nothing to lock".to_owned()),
    }
    Ok(())
}

/// Where a build goes besides its output: registries and a digest file.
struct Publish {
    destinations: Vec<String>,
    digest_file: Option<PathBuf>,
}

fn build_command(
    recipe_path: &Path,
    output: Option<PathBuf>,
    format: Format,
    options: &BuildOptions,
    json: bool,
    publish: &Publish,
) -> Result<(), Report> {
    let started = Instant::now();
    let recipe = Recipe::load(recipe_path)?;
    let allow = lint::Allow::new(&recipe, &[])?;
    let errors = lint::check_before_build(&recipe, &allow);
    if !errors.is_empty() {
        let color = std::io::IsTerminal::is_terminal(&std::io::stderr())
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        eprint!("{}", lint::render::human(&recipe, &errors, color));
        return Err(miette::miette!(
            help = "fix them, or silence a rule with `lint { allow \"STRnnn\" }` in the recipe",
            "the recipe breaks lint rules that stop a build"
        ));
    }
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
    if !json {
        for l in &report.layers {
            say(format!(
                "  layer {:<12} {}  {:>10} bytes  {}",
                l.name,
                l.blob.digest,
                l.blob.size,
                if l.cached { "cached" } else { "built" }
            ));
        }
        say(format!(
            "built {}:{} → {} ({}) in {:.2}s",
            recipe.name.value,
            built.tags.join(","),
            dest.display(),
            built.top.digest(),
            started.elapsed().as_secs_f64()
        ));
    }
    let mut pushed = Vec::new();
    if !publish.destinations.is_empty() {
        let destinations = publish
            .destinations
            .iter()
            .map(|d| Destination::parse(d, &built.tags))
            .collect::<Result<Vec<_>, _>>()?;
        let client = Client::new(options.registry.clone())?;
        let image = Image::from_blobs(&built.blobs, &built.top, &built.referrers)?;
        pushed = push::push(&client, &image, &destinations)?;
        if !json {
            print_pushed(&pushed);
        }
    }
    if let Some(path) = &publish.digest_file {
        let digest = built
            .top
            .digest()
            .try_into()
            .into_diagnostic()
            .wrap_err("the image's digest is not sha256")?;
        push::write_digest_file(path, &digest)?;
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
            "pushed": pushed.iter().map(push_json).collect::<Vec<_>>(),
            "referrers": built
                .referrers
                .iter()
                .map(|d| serde_json::json!({
                    "digest": d.digest().to_string(),
                    "artifactType": d.artifact_type().as_ref().map(ToString::to_string),
                }))
                .collect::<Vec<_>>(),
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&result).into_diagnostic()?
        );
    }
    Ok(())
}

fn print_pushed(reports: &[push::PushReport]) {
    for r in reports {
        say(format!(
            "pushed {}:{} @ {} ({} uploaded, {} bytes; {} mounted; {} already there)",
            r.destination.name(),
            r.tags.join(","),
            r.digest,
            r.uploaded,
            r.uploaded_bytes,
            r.mounted,
            r.present
        ));
        for how in &r.referrers {
            say(format!("  attached {how}"));
        }
    }
}

fn push_json(r: &push::PushReport) -> serde_json::Value {
    serde_json::json!({
        "destination": r.destination.name(),
        "tags": r.tags,
        "digest": r.digest,
        "uploaded": r.uploaded,
        "uploadedBytes": r.uploaded_bytes,
        "mounted": r.mounted,
        "present": r.present,
        "referrers": r.referrers,
    })
}

fn push_command(
    image: &str,
    destinations: &[String],
    mut tags: Vec<String>,
    digest_file: Option<PathBuf>,
    registry: RegistryArgs,
) -> Result<(), Report> {
    let (dir, tag) = split_image(image);
    let layout = Layout::open(Path::new(dir))?;
    let top = layout.find(tag)?;
    if tags.is_empty() {
        tags.extend(tag.map(str::to_owned));
    }
    let destinations = destinations
        .iter()
        .map(|d| Destination::parse(d, &tags))
        .collect::<Result<Vec<_>, _>>()?;
    let image = Image::from_layout(&layout, top)?;
    let client = Client::new(registry.options()?)?;
    let reports = push::push(&client, &image, &destinations)?;
    print_pushed(&reports);
    if let Some(path) = digest_file {
        push::write_digest_file(&path, &image.digest())?;
    }
    Ok(())
}

fn login_command(
    registry: &str,
    username: String,
    password_stdin: bool,
    password: Option<String>,
    tls: TlsArgs,
) -> Result<(), Report> {
    let secret = match (password_stdin, password) {
        (true, _) => {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                .into_diagnostic()
                .wrap_err("cannot read the password from standard input")?;
            text.trim_end_matches(['\n', '\r']).to_owned()
        }
        (false, Some(p)) => p,
        (false, None) => {
            return Err(miette::miette!(
                help = "pipe it in with `--password-stdin`, or pass `--password`",
                "no password given"
            ));
        }
    };
    let credential = Credential {
        username,
        secret,
        source: "the login command line".to_owned(),
    };
    let file = registry::auth::login_file().ok_or_else(|| {
        miette::miette!(
            help = "set `REGISTRY_AUTH_FILE` to the file to write",
            "no place for the auth file: none of REGISTRY_AUTH_FILE, XDG_RUNTIME_DIR, XDG_CONFIG_HOME or HOME is set"
        )
    })?;
    Client::new(tls.options())?.check_login(registry, credential.clone())?;
    registry::auth::save(&file, registry, &credential)?;
    say(format!(
        "login to {registry} succeeded; saved in {}",
        file.display()
    ));
    Ok(())
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

/// Lint findings are the command's output (stdout), like hadolint's; the
/// exit code says whether they fail the run.
fn lint_command(
    recipes: &[PathBuf],
    options: &LintOptions,
    registry: &registry::Options,
) -> Result<(), Report> {
    let mut results = Vec::new();
    for path in recipes {
        results.push(lint_recipe(path, options, registry)?);
    }
    match options.format {
        LintFormat::Human => {
            let color = std::io::IsTerminal::is_terminal(&std::io::stdout())
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
            for (recipe, findings) in &results {
                print!("{}", lint::render::human(recipe, findings, color));
            }
        }
        // One recipe, one document; several (a pre-commit run), an array.
        LintFormat::Json => {
            let mut documents: Vec<_> = results
                .iter()
                .map(|(recipe, findings)| lint::render::json(recipe, findings))
                .collect();
            match documents.len() {
                1 => println!("{:#}", documents.remove(0)),
                _ => println!("{:#}", serde_json::Value::Array(documents)),
            }
        }
        LintFormat::Sarif => println!("{:#}", lint::render::sarif(&results)),
    }
    if results
        .iter()
        .any(|(_, findings)| lint::fails(findings, options.strict))
    {
        return Err(Report::new(LintFailed));
    }
    Ok(())
}

fn lint_recipe(
    recipe_path: &Path,
    options: &LintOptions,
    registry: &registry::Options,
) -> Result<(Recipe, Vec<lint::Finding>), Report> {
    let recipe = Recipe::load(recipe_path)?;
    let allow = lint::Allow::new(&recipe, &options.allow)?;
    if options.static_only {
        let findings = lint::check_recipe(&recipe, &allow)?;
        return Ok((recipe, findings));
    }
    let cache = Cache::from_env()?;
    let build_options = BuildOptions {
        offline: options.offline,
        ..BuildOptions::new(recipe_path, registry.clone())
    };
    let findings = match strata::build::plan(&recipe, &build_options, &cache) {
        Ok(planned) => lint::check(&recipe, &planned, &allow)?,
        // A recipe the build rejects still gets its recipe findings, when
        // they explain the rejection.
        Err(error) => {
            let findings = lint::check_recipe(&recipe, &allow)?;
            if !lint::fails(&findings, false) {
                return Err(error.into());
            }
            progress::get()
                .suspend(|| eprintln!("note: image rules not run, the build stops first: {error}"));
            findings
        }
    };
    Ok((recipe, findings))
}

/// Findings that fail the run were already printed: exit 1 without more output.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("lint found problems")]
struct LintFailed;

fn inspect_command(image: &str, json: bool) -> Result<(), Report> {
    let (dir, tag) = split_image(image);
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

fn diff_command(a: &str, b: &str, json: bool, exit_code: bool) -> Result<(), Report> {
    let (dir_a, tag_a) = split_image(a);
    let (dir_b, tag_b) = split_image(b);
    let layout_a = Layout::open(Path::new(dir_a))?;
    let layout_b = Layout::open(Path::new(dir_b))?;
    let input = |name, layout, tag| diff::Input { name, layout, tag };
    let result = diff::diff(&input(a, &layout_a, tag_a), &input(b, &layout_b, tag_b))?;
    if json {
        let text = serde_json::to_string_pretty(&result)
            .into_diagnostic()
            .wrap_err("cannot print the diff")?;
        println!("{text}");
    } else {
        print!("{}", diff::render::render(&result));
    }
    if exit_code && !result.identical {
        // Differences are a result, not an error: no diagnostic on stderr,
        // just the status, once everything printed has reached stdout.
        let _ = std::io::Write::flush(&mut std::io::stdout());
        std::process::exit(1);
    }
    Ok(())
}
