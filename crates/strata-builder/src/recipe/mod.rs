//! The recipe: what an image is, decoded from KDL into typed values that keep
//! their place in the file so that any later error can point back at it.

mod decode;
mod diagnostic;
pub(crate) mod document;
pub(crate) mod node;

use std::path::{Path, PathBuf};

use self::node::Source;
pub(crate) use diagnostic::position;
pub use diagnostic::{Excerpt, Invalid, RecipeError, RecipeSource};
use miette::SourceSpan;
use strata_debian::repo::RepositorySpec;
use strata_oci::digest::Digest;
use strata_oci::path::ImagePath;
use strata_oci::platform::Platform;

/// The 1-based line a span starts on, for messages that name a line.
pub(crate) fn line_of(text: &str, span: SourceSpan) -> usize {
    text.get(..span.offset())
        .map_or(1, |before| before.matches('\n').count() + 1)
}

/// A value and the place in the recipe it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spanned<T> {
    pub value: T,
    pub span: SourceSpan,
}

impl<T> std::ops::Deref for Spanned<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

#[derive(Debug, Clone)]
pub struct Recipe {
    pub source: RecipeSource,
    /// The folder host paths are relative to: the recipe's own folder.
    pub context: PathBuf,
    pub name: Spanned<String>,
    pub metadata: Metadata,
    pub labels: Vec<(Spanned<String>, Spanned<String>)>,
    pub base: Spanned<BaseRef>,
    pub platforms: Vec<Spanned<Platform>>,
    pub user: Option<UserSpec>,
    /// Accounts packages expect (`system-user`), written into `/etc/passwd`
    /// and `/etc/group` as a postinst's `adduser --system` would have.
    pub system_users: Vec<UserSpec>,
    pub tre: bool,
    pub layers: Vec<LayerSpec>,
    pub runtime: Runtime,
    pub debian: Option<DebianSpec>,
    pub python: Option<PythonSpec>,
    /// Lint rules the recipe silences (`lint { allow "STR004" }`).
    pub lint_allow: Vec<Spanned<String>>,
    /// Every top-level node, in file order, so that checks which run after
    /// decoding (`strata lint`) can point at the line a value came from.
    pub nodes: Vec<NodeSpan>,
}

/// Where one top-level node is, and its first string argument.
#[derive(Debug, Clone)]
pub struct NodeSpan {
    pub name: String,
    pub key: Option<String>,
    pub span: SourceSpan,
}

/// The `debian` block: where packages come from and which to install.
#[derive(Debug, Clone)]
pub struct DebianSpec {
    pub span: SourceSpan,
    /// The release codename (`bookworm`): names the default repositories.
    pub suite: Spanned<String>,
    pub repositories: Vec<RepositorySpec>,
    /// Logins taken out of the repositories' URLs.
    pub logins: Vec<Login>,
    pub install: Vec<Spanned<PackageRequest>>,
    pub keep_docs: bool,
    /// Whether the release's Essential packages are installed too (the
    /// default, as on any Debian system); `essential #false` leaves them out.
    pub essential: bool,
    /// Whether Python byte-code is compiled for the packages' modules (the
    /// default, as Debian's `py3compile` does); `bytecode #false` skips it.
    pub bytecode: bool,
    /// How many layers the packages take (`layers N`; see
    /// `assemble::layering`).
    pub layers: u32,
    /// The time zone tzdata is configured with (`Area/Zone`).
    pub timezone: Spanned<String>,
    /// Site CA certificates (paths relative to the recipe) installed into
    /// `/usr/local/share/ca-certificates` and the CA store.
    pub ca_certificates: Vec<Spanned<String>>,
}

impl DebianSpec {
    /// The debconf answers the recipe implies, ahead of template defaults.
    pub fn debconf_answers(&self) -> std::collections::BTreeMap<String, String> {
        let mut answers = std::collections::BTreeMap::new();
        // What libpaper1's config script derives from the C locale's
        // LC_PAPER (210 x 297 mm); strata runs no config script.
        answers.insert("libpaper/defaultpaper".to_owned(), "a4".to_owned());
        if let Some((area, zone)) = self.timezone.value.split_once('/') {
            answers.insert("tzdata/Areas".to_owned(), area.to_owned());
            answers.insert(format!("tzdata/Zones/{area}"), zone.to_owned());
        }
        answers
    }
}

/// The `python` block: Python packages from PyPI-style indexes.
#[derive(Debug, Clone)]
pub struct PythonSpec {
    pub span: SourceSpan,
    /// pip requirements files, relative to the recipe.
    pub requirements: Vec<Spanned<String>>,
    /// Inline requirements, in pip's syntax.
    pub install: Vec<Spanned<String>>,
    /// A PEP 751 `pylock.toml` or a `uv.lock` to install as it is.
    pub lock_file: Option<Spanned<String>>,
    /// Simple-API index URLs, in order; PyPI's when the recipe names none.
    pub indexes: Vec<String>,
    /// Logins taken out of the index URLs.
    pub logins: Vec<Login>,
    /// The venv packages go into; `None`: the interpreter's own site-packages.
    pub venv: Option<ImagePath>,
}

/// A login a recipe wrote into a URL (`http://user:password@host/…`), as
/// apt's sources.list allows. It is taken out when the recipe is read, so
/// that the URL, which goes into the lock and the SBOM, never holds it.
#[derive(Debug, Clone)]
pub struct Login {
    pub url: String,
    pub basic: strata_client::credentials::Basic,
}

/// The index strata uses when a `python` block names none.
pub const PYPI: &str = "https://pypi.org/simple";

/// `name` or `name=version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageRequest {
    pub name: String,
    pub version: Option<String>,
}

/// The values behind the `org.opencontainers.image.*` annotations.
#[derive(Debug, Clone, Default)]
pub struct Metadata {
    pub version: Option<String>,
    pub description: Option<String>,
    pub source: Option<String>,
    pub url: Option<String>,
    pub documentation: Option<String>,
    pub vendor: Option<String>,
    pub licenses: Option<String>,
    pub authors: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaseRef {
    Scratch,
    /// A local OCI image layout and the digest of a manifest or index in it.
    OciLayout {
        path: PathBuf,
        digest: Digest,
    },
    /// A tar of an OCI image layout (`oci-archive:PATH@sha256:…`).
    OciArchive {
        path: PathBuf,
        digest: Digest,
    },
    /// An image in a registry. A reference without a digest is kept so that
    /// the build can look up the digest to suggest pinning.
    Registry(strata_oci::reference::Reference),
}

/// The base as a recipe writes it.
impl std::fmt::Display for BaseRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BaseRef::Scratch => f.write_str("scratch"),
            BaseRef::OciLayout { path, digest } => write!(f, "oci:{}@{digest}", path.display()),
            BaseRef::OciArchive { path, digest } => {
                write!(f, "oci-archive:{}@{digest}", path.display())
            }
            BaseRef::Registry(reference) => write!(f, "{reference}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct UserSpec {
    pub name: Spanned<String>,
    pub uid: u32,
    pub gid: u32,
    pub home: ImagePath,
    pub shell: String,
}

#[derive(Debug, Clone)]
pub struct LayerSpec {
    pub name: Spanned<String>,
    pub ops: Vec<Spanned<Op>>,
}

/// Who owns an entry: a user name looked up at assembly, or numeric ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    Name(String),
    Ids(u32, u32),
}

/// Where `copy` puts its source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyDest {
    pub path: ImagePath,
    /// Written with a trailing `/` (`/opt/app/`): a file goes inside this
    /// folder, under its own name.
    pub into: bool,
}

#[derive(Debug, Clone)]
pub enum Op {
    Copy {
        src: Spanned<String>,
        dest: Spanned<CopyDest>,
        mode: Option<u32>,
        owner: Option<Spanned<Owner>>,
        exclude: Vec<Spanned<String>>,
    },
    File {
        dest: Spanned<ImagePath>,
        content: String,
        mode: Option<u32>,
        owner: Option<Spanned<Owner>>,
    },
    Mkdir {
        dest: Spanned<ImagePath>,
        mode: Option<u32>,
        owner: Option<Spanned<Owner>>,
    },
    Symlink {
        link: Spanned<ImagePath>,
        target: String,
    },
}

/// The runtime part of the image config.
#[derive(Debug, Clone, Default)]
pub struct Runtime {
    pub env: Vec<(String, String)>,
    pub workdir: Option<String>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub expose: Vec<String>,
    pub volumes: Vec<String>,
    pub stop_signal: Option<String>,
}

impl Recipe {
    /// Reads and decodes the recipe at `path`.
    pub fn load(path: &Path) -> Result<Recipe, RecipeError> {
        let bytes = std::fs::read(path).map_err(|source| RecipeError::Read {
            path: path.to_owned(),
            source,
        })?;
        Recipe::decode(path, bytes)
    }

    /// Decodes `bytes` as the recipe at `path` (whose folder host paths are
    /// relative to).
    pub fn decode(path: &Path, bytes: Vec<u8>) -> Result<Recipe, RecipeError> {
        let source = document::text(bytes, |text| RecipeSource {
            path: path.to_owned(),
            text,
        })?;
        let context = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_owned();
        decode::decode(source, context)
    }

    /// The span of the first top-level node called `name` (and whose first
    /// argument is `key`, when given).
    pub fn node_span(&self, name: &str, key: Option<&str>) -> Option<SourceSpan> {
        self.nodes
            .iter()
            .find(|n| n.name == name && (key.is_none() || n.key.as_deref() == key))
            .map(|n| n.span)
    }

    /// The version, or `latest` when the recipe names none.
    pub fn tag(&self) -> &str {
        self.metadata.version.as_deref().unwrap_or("latest")
    }

    pub fn error(
        &self,
        span: SourceSpan,
        message: impl Into<String>,
        label: impl Into<String>,
        help: impl Into<Option<String>>,
    ) -> RecipeError {
        self.source.error(span, message, label, help)
    }
}
