//! Python packages from PyPI-style indexes: the image's interpreter found
//! in its files, the requirements read, resolved (or taken from the lock or
//! a `pylock.toml`), the wheels fetched, verified and unpacked, and their
//! files laid out in a venv (or the interpreter's site-packages) as layers
//! after Debian's. Nothing here runs Python.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use rayon::prelude::*;
use strata_client::fetch::{Download, Fetcher};
use strata_oci::entry::{Content, Entry, Fingerprint, Kind, LayerPlan, Source};
use strata_oci::path::ImagePath;
use strata_oci::platform::Platform;
use strata_oci::view::{View, ViewKind};
use strata_pypi::client::Client;
use strata_pypi::install::{self, FileContent, Scheme};
use strata_pypi::interpreter::{self, Interpreter};
use strata_pypi::locked::LockedWheel;
use strata_pypi::pylock;
use strata_pypi::requirements::{self, Origin};
use strata_pypi::resolve::{self, Request};
use strata_pypi::tags::Target;
use strata_pypi::wheel::{self, Unpacked};

use crate::recipe::{PythonSpec, Recipe};

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum PythonError {
    #[error("the image for {platform} has no Python interpreter for the `python` block")]
    #[diagnostic(help(
        "add `install \"python3\"` to the `debian` block, or use a base image that has Python (e.g. `python:3.12-slim`, pinned by digest)"
    ))]
    NoInterpreter { platform: String },
    #[error("strata has no wheel platform for `{0}`")]
    #[diagnostic(help(
        "Python packages are installed for linux/amd64, linux/arm64, linux/arm/v7, linux/386, linux/ppc64le and linux/s390x"
    ))]
    Platform(String),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Interpreter(#[from] interpreter::InterpreterError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Credentials(#[from] strata_client::credentials::CredentialsError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Requirements(#[from] requirements::RequirementsError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Pylock(#[from] Box<pylock::PylockError>),
    #[error("cannot read the lock file `{}`", path.display())]
    #[diagnostic(help("check that the file exists and is readable"))]
    ReadLockFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    #[diagnostic(transparent)]
    LockFile(#[from] strata_pypi::locked::LockFileError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Resolve(#[from] resolve::ResolveError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Client(#[from] strata_pypi::client::ClientError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Fetch(#[from] strata_client::fetch::FetchError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Wheel(#[from] wheel::WheelError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Install(#[from] install::InstallError),
    #[error("`{path}` is installed by both `{first}` and `{second}`")]
    #[diagnostic(help(
        "two wheels ship the same file: pin versions that do not clash, or drop one of them"
    ))]
    Clash {
        path: String,
        first: String,
        second: String,
    },
    #[error("`{path}` from the wheel of `{package}` is not a valid image path")]
    #[diagnostic(help("the wheel is malformed: pick another version"))]
    Path { path: String, package: String },
}

/// A wheel over this many bytes unpacked gets a layer of its own, so that
/// changing a small package never re-compresses or re-pushes it (torch is
/// ~2 GB; most packages are under 50 MB).
const OWN_LAYER: u64 = 100 << 20;

/// What the Python packages add to one platform's image.
pub struct PythonLayers {
    pub layers: Vec<LayerPlan>,
    pub wheels: Vec<LockedWheel>,
    /// The venv, for `VIRTUAL_ENV` and `PATH`; `None` without one.
    pub venv: Option<String>,
}

/// The requirements of the `python` block, read from the recipe and its
/// files; in order, each with where it was written.
pub struct Requirements {
    pub requests: Vec<Request>,
    pub constraints: Vec<Request>,
    pub pre: bool,
}

pub fn requirements(recipe: &Recipe, python: &PythonSpec) -> Result<Requirements, PythonError> {
    let mut out = Requirements {
        requests: Vec::new(),
        constraints: Vec::new(),
        pre: false,
    };
    let request = |r: requirements::Requirement| Request {
        origin: format!("{}:{}", r.origin.file.display(), r.origin.line),
        requirement: r.requirement,
        hashes: r.hashes,
    };
    for file in &python.requirements {
        let read = requirements::read(&recipe.context.join(&file.value))?;
        out.requests
            .extend(read.requirements.into_iter().map(request));
        out.constraints
            .extend(read.constraints.into_iter().map(request));
        out.pre |= read.pre;
    }
    for text in &python.install {
        let origin = Origin {
            file: recipe.source.path.clone(),
            line: crate::recipe::line_of(&recipe.source.text, text.span),
        };
        out.requests
            .push(request(requirements::parse_one(&text.value, origin)?));
    }
    Ok(out)
}

/// The image's CPython, from its files: `python3` on the usual `PATH`
/// (`/usr/local/bin` first, as in the official images), its version from
/// its file name and the package database or the base's `PYTHON_VERSION`,
/// and glibc's version from the `libc6` package.
pub fn interpreter(
    view: &View,
    packages: &HashMap<String, String>,
    base_env: &[(String, String)],
    platform: &Platform,
) -> Result<Interpreter, PythonError> {
    let arch = interpreter::machine(&platform.architecture, platform.variant.as_deref())
        .ok_or_else(|| PythonError::Platform(platform.to_string()))?;
    let none = || PythonError::NoInterpreter {
        platform: platform.to_string(),
    };
    let found = ["usr/local/bin", "usr/bin"].iter().find_map(|dir| {
        let link = ImagePath::from_relative(&format!("{dir}/python3")).ok()?;
        let resolved = view.resolve(&link)?;
        let entry = view.get(&resolved)?;
        (entry.kind == ViewKind::File).then_some(())?;
        let name = resolved.as_str().rsplit('/').next()?;
        let (version, free_threaded) = python_version_of(name).or_else(|| {
            // `python3` itself is the binary: its versioned sibling names it.
            view.paths_below(&ImagePath::from_relative(dir).ok()?)
                .filter_map(|(p, _)| python_version_of(p.as_str().rsplit('/').next()?))
                .max()
        })?;
        Some((
            format!("/{}", resolved.as_str()),
            dir,
            version,
            free_threaded,
        ))
    });
    let (path, dir, (major, minor), free_threaded) = found.ok_or_else(none)?;
    // `python3.11` or, in minimal images, only `python3.11-minimal`.
    let debian_version = [
        format!("python{major}.{minor}"),
        format!("python{major}.{minor}-minimal"),
    ]
    .iter()
    .find_map(|name| packages.get(name))
    .filter(|_| *dir == "usr/bin");
    let debian = debian_version.is_some();
    let full_version = debian_version
        .map(|v| interpreter::upstream_version(v).to_owned())
        .or_else(|| {
            base_env
                .iter()
                .find(|(k, _)| k == "PYTHON_VERSION")
                .map(|(_, v)| v.clone())
                .filter(|v| v.starts_with(&format!("{major}.{minor}.")))
        })
        .unwrap_or_else(|| format!("{major}.{minor}.0"));
    Ok(Interpreter {
        path,
        full_version,
        prefix: format!("/{}", dir.trim_end_matches("/bin")),
        debian,
        target: Target {
            python: (major, minor),
            free_threaded,
            glibc: packages
                .get("libc6")
                .and_then(|v| interpreter::glibc_of_debian_version(v)),
            arch: arch.to_owned(),
        },
    })
}

/// `python3.11` → (3, 11), not free-threaded; `python3.13t` → (3, 13), free-threaded.
fn python_version_of(name: &str) -> Option<((u8, u8), bool)> {
    let rest = name.strip_prefix("python3.")?;
    let (digits, free_threaded) = match rest.strip_suffix('t') {
        Some(d) => (d, true),
        None => (rest, false),
    };
    Some(((3, digits.parse().ok()?), free_threaded))
}

/// The wheels to install on this platform: resolved afresh, or read from the
/// recipe's `lock-file`.
pub fn lock_wheels(
    recipe: &Recipe,
    python: &PythonSpec,
    interpreter: &Interpreter,
    fetcher: &Fetcher,
) -> Result<Vec<LockedWheel>, PythonError> {
    if let Some(file) = &python.lock_file {
        let path = recipe.context.join(&file.value);
        let text = std::fs::read_to_string(&path).map_err(|source| PythonError::ReadLockFile {
            path: path.clone(),
            source,
        })?;
        let lock = if path.file_name().is_some_and(|n| n == "uv.lock") {
            pylock::read_uv_lock(&text, &path).map_err(Box::new)?
        } else {
            pylock::read_pylock(&text, &path).map_err(Box::new)?
        };
        return Ok(strata_pypi::locked::from_pylock(&lock, &path, interpreter)?);
    }
    let reqs = requirements(recipe, python)?;
    let step = strata_progress::get().step("resolve", "Python packages");
    let client = Client::new(fetcher, &python.indexes);
    let wheels = resolve::lock(
        &client,
        interpreter,
        &reqs.requests,
        &reqs.constraints,
        reqs.pre,
    )?;
    step.finish(&format!("{} locked", wheels.len()));
    Ok(wheels)
}

/// Where the wheels go: the venv's scheme, or the interpreter's own.
fn scheme(interpreter: &Interpreter, venv: Option<&ImagePath>) -> (Scheme, String) {
    let lib = interpreter.lib_dir();
    match venv {
        Some(venv) => {
            let root = venv.as_str().to_owned();
            let site = format!("{root}/{lib}/site-packages");
            (
                Scheme {
                    purelib: site.clone(),
                    platlib: site,
                    scripts: format!("{root}/bin"),
                    headers: format!("{root}/include/site/{}", interpreter.executable_name()),
                    data: root.clone(),
                },
                format!("/{root}/bin/python"),
            )
        }
        None => {
            let site = interpreter.system_site_packages();
            let prefix = if interpreter.debian {
                "usr/local".to_owned()
            } else {
                interpreter.prefix.trim_start_matches('/').to_owned()
            };
            (
                Scheme {
                    purelib: site.clone(),
                    platlib: site,
                    scripts: format!("{prefix}/bin"),
                    headers: format!("{prefix}/include/{}", interpreter.executable_name()),
                    data: prefix,
                },
                interpreter.path.clone(),
            )
        }
    }
}

/// Fetches (or finds in the cache) and unpacks the wheels, and plans their
/// layers over `view` (which each planned layer is applied to): the venv and
/// the small wheels in one, each large wheel alone.
pub fn layers(
    python: &PythonSpec,
    interpreter: &Interpreter,
    wheels: Vec<LockedWheel>,
    view: &mut View,
    fetcher: &Fetcher,
    mtime: u64,
) -> Result<PythonLayers, PythonError> {
    let cache = fetcher.cache();
    let unpacked = unpack_all(&wheels, fetcher)?;
    let (scheme, python_path) = scheme(interpreter, python.venv.as_ref());
    let entry = |path: &str, kind: Kind, mode: u32, package: &str| {
        let path = ImagePath::from_relative(path).map_err(|_| PythonError::Path {
            path: path.to_owned(),
            package: package.to_owned(),
        })?;
        Ok::<_, PythonError>(Entry {
            path,
            kind,
            mode,
            uid: 0,
            gid: 0,
            mtime,
        })
    };
    let mut shared: BTreeMap<ImagePath, Entry> = BTreeMap::new();
    if let Some(venv) = &python.venv {
        for e in venv_entries(venv, interpreter, mtime) {
            shared.insert(e.path.clone(), e);
        }
    }
    let mut owners: HashMap<ImagePath, String> = HashMap::new();
    let mut own_layers = Vec::new();
    for (locked, unpacked) in wheels.iter().zip(&unpacked) {
        let read = |member: &str| wheel::read_member(cache, unpacked, member, 16 << 20);
        let files = install::install(unpacked, read, &scheme, &python_path, "strata")?;
        let blob = cache.blob_path(&unpacked.blob);
        let total: u64 = files
            .iter()
            .map(|f| match &f.content {
                FileContent::Member { size, .. } => *size,
                FileContent::Generated(bytes) => bytes.len() as u64,
            })
            .sum();
        let mut entries = BTreeMap::new();
        for file in files {
            let content = match file.content {
                FileContent::Member {
                    offset,
                    size,
                    sha256,
                } => Content {
                    source: Source::Slice {
                        path: blob.clone(),
                        offset,
                    },
                    size,
                    fingerprint: Fingerprint::Digest(sha256),
                },
                FileContent::Generated(bytes) => Content::inline(bytes),
            };
            let mode = if file.executable { 0o555 } else { 0o444 };
            let e = entry(&file.path, Kind::File(content), mode, &locked.name)?;
            if let Some(first) = owners.insert(e.path.clone(), locked.name.clone()) {
                return Err(PythonError::Clash {
                    path: format!("/{}", e.path),
                    first,
                    second: locked.name.clone(),
                });
            }
            entries.insert(e.path.clone(), e);
        }
        if total > OWN_LAYER {
            own_layers.push((locked, entries));
        } else {
            shared.extend(entries);
        }
    }
    let mut layers = Vec::new();
    let mut plan = |name: String, created_by: String, mut entries: BTreeMap<ImagePath, Entry>| {
        // Nothing to install here (every marker false, no venv): no layer.
        if entries.is_empty() {
            return;
        }
        super::add_parents(&mut entries, view);
        let plan = LayerPlan {
            name,
            created_by,
            entries: entries.into_values().collect(),
        };
        view.apply(&plan);
        layers.push(plan);
    };
    let names: Vec<String> = wheels
        .iter()
        .filter(|w| !own_layers.iter().any(|(o, _)| o.name == w.name))
        .map(|w| format!("{}=={}", w.name, w.version))
        .collect();
    plan(
        "python".to_owned(),
        format!("strata: python packages {}", names.join(" ")),
        shared,
    );
    for (locked, entries) in own_layers {
        plan(
            format!("python-{}", locked.name),
            format!("strata: python package {}=={}", locked.name, locked.version),
            entries,
        );
    }
    Ok(PythonLayers {
        layers,
        venv: python.venv.as_ref().map(ToString::to_string),
        wheels,
    })
}

/// The wheels unpacked, fetching only those the cache has not unpacked yet:
/// an unpacked wheel was verified when it was unpacked, so a warm build
/// reads no wheel at all.
fn unpack_all(wheels: &[LockedWheel], fetcher: &Fetcher) -> Result<Vec<Unpacked>, PythonError> {
    let cache = fetcher.cache();
    let limits = wheel::Limits::default();
    let missing: Vec<&LockedWheel> = wheels
        .iter()
        .filter(|w| wheel::cached(cache, &w.sha256, &limits).is_none())
        .collect();
    let downloads: Vec<Download> = missing.iter().map(|w| w.download()).collect();
    fetcher.fetch_all(&downloads)?;
    wheels
        .par_iter()
        .map(|w| {
            let path = cache.blob_path(&w.sha256);
            Ok(wheel::unpack(
                cache,
                &path,
                &w.sha256,
                w.filename(),
                &limits,
            )?)
        })
        .collect()
}

/// What `python -m venv --without-pip` writes on Linux: `pyvenv.cfg`, the
/// `bin/python*` links to the image's interpreter, `lib64` → `lib` and the
/// empty site-packages. Activation scripts are not written: containers run
/// with `PATH` and `VIRTUAL_ENV` set in the config instead.
fn venv_entries(venv: &ImagePath, interpreter: &Interpreter, mtime: u64) -> Vec<Entry> {
    let at = |rel: &str| ImagePath::from_relative(&format!("{venv}/{rel}"));
    let home = interpreter
        .path
        .rsplit_once('/')
        .map_or("/usr/bin", |(dir, _)| dir);
    let cfg = format!(
        "home = {home}\ninclude-system-site-packages = false\nversion = {}\nexecutable = {}\n",
        interpreter.full_version, interpreter.path
    );
    let exe = interpreter.executable_name();
    let mut out = Vec::new();
    let dir = |p: ImagePath| Entry::dir(p, 0o755, 0, 0, mtime);
    let link = |p: ImagePath, target: &str| Entry {
        path: p,
        kind: Kind::Symlink(target.to_owned()),
        mode: 0o777,
        uid: 0,
        gid: 0,
        mtime,
    };
    out.push(dir(venv.clone()));
    let lib = interpreter.lib_dir();
    for rel in [
        "bin",
        "include",
        "lib",
        &lib,
        &format!("{lib}/site-packages"),
    ] {
        if let Ok(p) = at(rel) {
            out.push(dir(p));
        }
    }
    if let Ok(p) = at("pyvenv.cfg") {
        out.push(Entry {
            path: p,
            kind: Kind::File(Content::inline(cfg.into_bytes())),
            mode: 0o444,
            uid: 0,
            gid: 0,
            mtime,
        });
    }
    for (name, target) in [
        ("bin/python", interpreter.path.as_str()),
        ("bin/python3", "python"),
        (&*format!("bin/{exe}"), "python"),
        ("lib64", "lib"),
    ] {
        if let Ok(p) = at(name) {
            out.push(link(p, target));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_versions_from_names() {
        assert_eq!(python_version_of("python3.11"), Some(((3, 11), false)));
        assert_eq!(python_version_of("python3.13t"), Some(((3, 13), true)));
        assert_eq!(python_version_of("python3"), None);
        assert_eq!(python_version_of("python3.11-config"), None);
    }
}
