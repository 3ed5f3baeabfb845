//! The command line as clap sees it: every command, flag and help text.
//!
//! Only definitions live here, and the small conversions from flags to the
//! library's options; what a command does is in the module named after it.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use miette::Report;

use strata_builder::layer::compress::Encoding;
use strata_builder::sbom;
use strata_progress as progress;
use strata_registry::{self as registry, auth::Credential};

/// What `strata lock` prints besides writing the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LockFormat {
    /// Nothing: the lock (`image.lock`) is the output
    Kdl,
    /// The Python packages as a PEP 751 `pylock.toml`
    Pylock,
}

#[derive(Parser)]
#[command(
    name = "strata",
    version,
    about = "Declarative, daemonless, byte-reproducible OCI image builder"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Print nothing but errors
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Log what strata does on stderr (`-vv` for more detail)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Progress on stderr: bars on a terminal, else one line per step
    #[arg(long, global = true, value_enum, default_value_t = ProgressArg::Auto)]
    pub progress: ProgressArg,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum ProgressArg {
    /// `tty` when stderr is a terminal, else `plain`
    Auto,
    /// Progress bars
    Tty,
    /// One line per step, for logs and CI
    Plain,
    /// No progress (results and errors still print)
    None,
}

impl ProgressArg {
    pub fn mode(self) -> progress::Mode {
        match self {
            ProgressArg::Auto => progress::Mode::Auto,
            ProgressArg::Tty => progress::Mode::Tty,
            ProgressArg::Plain => progress::Mode::Plain,
            ProgressArg::None => progress::Mode::Off,
        }
    }
}

#[derive(Subcommand)]
pub enum Command {
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
        compression: Encoding,
        /// Print the result as JSON on stdout
        #[arg(long)]
        json: bool,
        /// Fail instead of re-resolving when the lock is missing or stale
        #[arg(long)]
        locked: bool,
        /// Build from the cache alone, without any network access
        #[arg(long)]
        offline: bool,
        /// Build only this platform of the recipe's (`linux/arm64`), from the
        /// committed lock: one job of a CI matrix per platform
        #[arg(long, value_name = "OS/ARCH", requires = "locked")]
        platform: Option<strata_oci::platform::Platform>,
        /// Push the image to these registries after building (`REGISTRY/REPO[:TAG]`)
        #[arg(long, value_name = "DEST")]
        push: Vec<String>,
        /// Write the image's digest to this file (for CI)
        #[arg(long, value_name = "FILE")]
        digest_file: Option<PathBuf>,
        /// Share layers through this registry repository (`REGISTRY/REPO`):
        /// look them up there before building, publish them after
        #[arg(long = "cache", value_name = "REPO", env = "STRATA_CACHE_REPO")]
        cache_repo: Option<String>,
        /// Rebuild the layers the registry cache gives and fail on any difference
        #[arg(long, requires = "cache_repo")]
        verify_cache: bool,
        /// The SBOM attached to the image (an OCI artifact whose subject is the image)
        #[arg(long, value_enum, default_value_t = SbomFormat::Spdx)]
        sbom: SbomFormat,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Print the SBOM attached to an image in an OCI layout
    Sbom {
        /// `DIR` or `DIR:TAG`
        image: String,
        /// Which document, when the image has both
        #[arg(long, value_enum)]
        format: Option<SbomFormat>,
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
    /// Resolve the recipe's Debian and Python packages and write the lock beside it
    Lock {
        /// The recipe (a KDL file such as `image.kdl`)
        recipe: PathBuf,
        /// Also print the Python packages on standard output in this format
        /// (`pylock`: PEP 751 `pylock.toml`)
        #[arg(long, value_enum, default_value_t = LockFormat::Kdl)]
        format: LockFormat,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Move a recipe's locked inputs (package files, registry base) between
    /// the local cache and an archive: `oci:DIR` or `REGISTRY/REPO`
    Cache {
        #[command(subcommand)]
        action: CacheAction,
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
pub struct RegistryArgs {
    /// Credentials for every registry, instead of the auth files [env: STRATA_CREDS]
    #[arg(long, value_name = "USER:PASSWORD")]
    creds: Option<String>,
    #[command(flatten)]
    tls: TlsArgs,
}

#[derive(clap::Args)]
pub struct TlsArgs {
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
    pub fn options(self) -> Result<registry::Options, Report> {
        // Read here rather than by clap, so that errors name where the
        // credentials came from.
        let given = match self.creds {
            Some(text) => Some((text, "`--creds`")),
            None => std::env::var("STRATA_CREDS")
                .ok()
                .map(|text| (text, "`STRATA_CREDS`")),
        };
        let credentials = match given {
            Some((text, source)) => Some(Credential::parse(&text, source).ok_or_else(|| {
                miette::miette!(
                    help = "write `USER:PASSWORD`",
                    "{source} must be `USER:PASSWORD`"
                )
            })?),
            None => None,
        };
        Ok(registry::Options {
            credentials,
            ..self.tls.options()?
        })
    }
}

impl TlsArgs {
    pub fn options(self) -> Result<registry::Options, Report> {
        Ok(registry::Options {
            credentials: None,
            ca_files: self.ca_file,
            cert_dir: self.cert_dir,
            insecure: self.insecure,
            timeouts: registry::Timeouts::from_env()?,
        })
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum SbomFormat {
    Spdx,
    Cyclonedx,
    /// No SBOM
    None,
}

impl SbomFormat {
    pub fn format(self) -> Option<sbom::Format> {
        match self {
            SbomFormat::Spdx => Some(sbom::Format::Spdx),
            SbomFormat::Cyclonedx => Some(sbom::Format::Cyclonedx),
            SbomFormat::None => None,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum LintFormat {
    /// Diagnostics with the recipe line, for people
    Human,
    Json,
    /// SARIF 2.1.0, for GitHub code scanning
    Sarif,
}

#[derive(Subcommand)]
pub enum CacheAction {
    /// Copy the recipe's locked inputs into an archive (downloading what the
    /// local cache lacks), to rebuild the image once the mirror has dropped them
    Export {
        /// The recipe; its lock must be current
        recipe: PathBuf,
        /// `oci:DIR` (an OCI layout, created or added to) or `REGISTRY/REPO`
        destination: String,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Copy the recipe's locked inputs from an archive into the local cache,
    /// so that `strata build --offline` can rebuild it
    Import {
        /// The recipe; its lock must be current
        recipe: PathBuf,
        /// `oci:DIR` or `REGISTRY/REPO`
        source: String,
        #[command(flatten)]
        registry: RegistryArgs,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// An OCI image layout folder
    Oci,
    /// A tar of an OCI image layout
    OciArchive,
    /// A tar that `docker load` and `podman load` accept
    DockerArchive,
    /// No local output, only `--push`: layers the registry cache (`--cache`)
    /// holds on the same registry are mounted, never downloaded
    None,
}
