//! PEP 751 lock files (`pylock.toml`) and uv's `uv.lock`, read into one
//! shape: the packages to install, each with its wheels and their sha256;
//! and `pylock.toml` written back from it.
//!
//! Only wheels are kept. A package locked as an sdist, a VCS checkout, a
//! directory or an archive is kept as `has_sdist_only`, so that whoever
//! installs it can say which package needs a build strata will not run.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Serialize};
use strata_oci::digest::{Digest, ParseDigestError};
use uv_normalize::{InvalidNameError, PackageName};
use uv_pep440::{Version, VersionParseError};
use uv_pep508::{MarkerTree, Pep508Error};

/// Lock files of large projects (every platform's wheels of a few hundred
/// packages) are a few MiB; the cap bounds what parsing a wrong file costs.
const MAX_LOCK_SIZE: usize = 64 << 20;

/// How many times, per package and extra of a `uv.lock`, a marker may grow
/// before reachability gives up. Each growth adds a condition under which
/// the package is needed; real locks need one or two per package, and the
/// cap bounds the time a contrived lock can take.
const MAX_MARKER_GROWTHS: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pylock {
    pub requires_python: Option<String>,
    pub created_by: String,
    pub packages: Vec<LockedPackage>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockedPackage {
    pub name: PackageName,
    pub version: Option<Version>,
    /// When the package is installed; `None` is always.
    pub marker: Option<MarkerTree>,
    /// The index it was resolved from, as the lock names it.
    pub index: Option<String>,
    pub wheels: Vec<LockedWheel>,
    /// An sdist, VCS, directory or archive entry and no wheels.
    pub has_sdist_only: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockedWheel {
    /// The file name.
    pub name: String,
    pub url: String,
    pub size: Option<u64>,
    pub sha256: Digest,
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum PylockError {
    #[error("`{}` is larger than 64 MiB", file.display())]
    #[diagnostic(help(
        "lock files are capped at 64 MiB to bound memory: check that the path names a lock file"
    ))]
    TooLarge { file: PathBuf },
    #[error("`{}` line {line} is not a valid lock file", file.display())]
    #[diagnostic(help(
        "regenerate it with the tool that made it (`uv lock`, `uv export --format pylock.toml`)"
    ))]
    Toml {
        file: PathBuf,
        line: usize,
        #[source]
        source: toml::de::Error,
    },
    #[error("`{}` has lock-version `{found}`", file.display())]
    #[diagnostic(help("strata reads PEP 751 lock-version \"1.0\": regenerate the lock"))]
    LockVersion { file: PathBuf, found: String },
    #[error("`{}` has version {found}", file.display())]
    #[diagnostic(help("strata reads uv.lock version 1: regenerate it with a current `uv lock`"))]
    UvLockVersion { file: PathBuf, found: u32 },
    #[error("`{}` names the package `{name}`, which is not a valid name", file.display())]
    #[diagnostic(help("regenerate the lock"))]
    Name {
        file: PathBuf,
        name: String,
        #[source]
        source: InvalidNameError,
    },
    #[error("`{}`: package `{package}` has the invalid version `{version}`", file.display())]
    #[diagnostic(help("regenerate the lock"))]
    Version {
        file: PathBuf,
        package: String,
        version: String,
        #[source]
        source: VersionParseError,
    },
    #[error("`{}`: package `{package}` has an invalid marker", file.display())]
    #[diagnostic(help("regenerate the lock"))]
    Marker {
        file: PathBuf,
        package: String,
        #[source]
        source: Box<Pep508Error>,
    },
    #[error("`{}`: wheel `{wheel}` of package `{package}` has no sha256 hash", file.display())]
    #[diagnostic(help(
        "strata checks every wheel against the sha256 its lock records: regenerate the lock with hashes"
    ))]
    MissingHash {
        file: PathBuf,
        package: String,
        wheel: String,
    },
    #[error("`{}`: wheel `{wheel}` of package `{package}` has a malformed sha256 `{hash}`", file.display())]
    #[diagnostic(help("regenerate the lock"))]
    MalformedHash {
        file: PathBuf,
        package: String,
        wheel: String,
        hash: String,
        #[source]
        source: ParseDigestError,
    },
    #[error("`{}`: wheel `{wheel}` of package `{package}` has no URL", file.display())]
    #[diagnostic(help(
        "strata installs from indexes only; publish the wheel to an index or a local index and lock again"
    ))]
    WheelWithoutUrl {
        file: PathBuf,
        package: String,
        wheel: String,
    },
    #[error("`{}` names no project: no package has `source = {{ virtual = \".\" }}` or `{{ editable = \".\" }}`", file.display())]
    #[diagnostic(help(
        "give the `uv.lock` that `uv lock` writes beside the project's pyproject.toml"
    ))]
    NoProject { file: PathBuf },
    #[error("`{}`: package `{package}` depends on `{dependency}`, which the lock does not hold", file.display())]
    #[diagnostic(help("the lock is incomplete: regenerate it with `uv lock`"))]
    UnknownDependency {
        file: PathBuf,
        package: String,
        dependency: String,
    },
    #[error("`{}`: package `{package}` depends on `{dependency}`, which names more than one package of the lock", file.display())]
    #[diagnostic(help("the lock is inconsistent: regenerate it with `uv lock`"))]
    AmbiguousDependency {
        file: PathBuf,
        package: String,
        dependency: String,
    },
    #[error("`{}`: the conditions under which packages are needed did not settle", file.display())]
    #[diagnostic(help(
        "strata gives up after {MAX_MARKER_GROWTHS} changes per package to bound time; export the lock with `uv export --format pylock.toml` and name that instead"
    ))]
    MarkersUnsettled { file: PathBuf },
}

/// A `pylock.toml`, with the keys of PEP 751 that strata reads or writes.
#[derive(Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
struct PylockToml {
    lock_version: String,
    created_by: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    requires_python: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    packages: Vec<PackageToml>,
}

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
struct PackageToml {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    marker: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<String>,
    // Only whether these are there matters: strata builds none of them.
    #[serde(default, skip_serializing)]
    sdist: Option<IgnoredAny>,
    #[serde(default, skip_serializing)]
    vcs: Option<IgnoredAny>,
    #[serde(default, skip_serializing)]
    directory: Option<IgnoredAny>,
    #[serde(default, skip_serializing)]
    archive: Option<IgnoredAny>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    wheels: Vec<WheelToml>,
}

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
struct WheelToml {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    #[serde(default, skip_serializing)]
    path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
    /// Written by `write_pylock` as an inline table, as PEP 751 shows it:
    /// `toml`'s serializer would make it a `[packages.wheels.hashes]` table.
    #[serde(default, skip_serializing)]
    hashes: HashesToml,
}

#[derive(Default, Deserialize, Serialize)]
struct HashesToml {
    /// Hex, without the `sha256:` prefix; other algorithms are not read.
    sha256: Option<String>,
}

/// A `uv.lock`, with the keys strata reads.
#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct UvLockToml {
    version: u32,
    requires_python: Option<String>,
    #[serde(default)]
    manifest: UvManifestToml,
    #[serde(default, rename = "package")]
    packages: Vec<UvPackageToml>,
}

#[derive(Default, Deserialize)]
struct UvManifestToml {
    /// A workspace's projects; a single project's lock has none.
    #[serde(default)]
    members: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct UvPackageToml {
    name: String,
    version: Option<String>,
    source: UvSourceToml,
    #[serde(default)]
    dependencies: Vec<UvDependencyToml>,
    #[serde(default)]
    optional_dependencies: BTreeMap<String, Vec<UvDependencyToml>>,
    sdist: Option<IgnoredAny>,
    #[serde(default)]
    wheels: Vec<UvWheelToml>,
}

/// Where a package comes from; one key is set.
#[derive(Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
struct UvSourceToml {
    registry: Option<String>,
    git: Option<String>,
    url: Option<String>,
    path: Option<String>,
    directory: Option<String>,
    editable: Option<String>,
    r#virtual: Option<String>,
}

/// An edge: `version` and `source` are there when the name alone is
/// ambiguous, as when forks of the resolution lock two versions.
#[derive(Deserialize)]
struct UvDependencyToml {
    name: String,
    version: Option<String>,
    source: Option<UvSourceToml>,
    marker: Option<String>,
    #[serde(default)]
    extra: Vec<String>,
}

#[derive(Deserialize)]
struct UvWheelToml {
    url: Option<String>,
    path: Option<String>,
    filename: Option<String>,
    /// `sha256:<hex>`, or another algorithm strata does not check.
    hash: Option<String>,
    size: Option<u64>,
}

/// Reads a PEP 751 `pylock.toml`; `path` names it in errors. lock-version
/// must be "1.0", and every wheel needs `hashes.sha256` (other algorithms
/// are not read: strata checks sha256).
pub fn read_pylock(text: &str, path: &Path) -> Result<Pylock, PylockError> {
    let lock: PylockToml = parse_toml(text, path)?;
    if lock.lock_version != "1.0" {
        return Err(PylockError::LockVersion {
            file: path.to_owned(),
            found: lock.lock_version,
        });
    }
    let packages = lock
        .packages
        .into_iter()
        .map(|package| {
            let name = package_name(&package.name, path)?;
            let version = version(&name, package.version.as_deref(), path)?;
            let described = describe(&name, version.as_ref());
            let marker = package
                .marker
                .as_deref()
                .map(|marker| parse_marker(marker, &described, path))
                .transpose()?
                .filter(|marker| !marker.is_true());
            let wheels = package
                .wheels
                .into_iter()
                .map(|wheel| {
                    locked_wheel(
                        WheelFields {
                            name: wheel.name,
                            url: wheel.url,
                            path: wheel.path,
                            size: wheel.size,
                            sha256: wheel.hashes.sha256,
                        },
                        &described,
                        path,
                    )
                })
                .collect::<Result<Vec<_>, _>>()?;
            let built = package.sdist.is_some()
                || package.vcs.is_some()
                || package.directory.is_some()
                || package.archive.is_some();
            Ok(LockedPackage {
                name,
                version,
                marker,
                index: package.index,
                has_sdist_only: built && wheels.is_empty(),
                wheels,
            })
        })
        .collect::<Result<_, PylockError>>()?;
    Ok(Pylock {
        requires_python: lock.requires_python,
        created_by: lock.created_by,
        packages,
    })
}

/// Reads a `uv.lock` into the packages a PEP 751 lock would list.
///
/// uv puts markers on dependency edges, not on packages, and a lock can hold
/// two versions of one package for different Pythons or platforms (forks of
/// the resolution). Installing every package that has a compatible wheel
/// would install both; so, as `uv export` does, each package's marker is
/// computed from the project's root(s): the disjunction, over every path to
/// it, of the conjunction of the edge markers on that path. An edge
/// `extra = [...]` brings in that extra's `optional-dependencies`.
///
/// What is kept is what `uv sync --no-dev --no-install-workspace` installs:
/// the project itself (and workspace members) are roots, not packages, since
/// they are built from source, and the roots' extras and dependency groups
/// are not followed unless a dependency asks for them. Non-registry packages
/// (git, url, path, directory) that are reached are kept, as
/// `has_sdist_only` when they have no wheels.
pub fn read_uv_lock(text: &str, path: &Path) -> Result<Pylock, PylockError> {
    let lock: UvLockToml = parse_toml(text, path)?;
    if lock.version != 1 {
        return Err(PylockError::UvLockVersion {
            file: path.to_owned(),
            found: lock.version,
        });
    }
    let names = lock
        .packages
        .iter()
        .map(|package| package_name(&package.name, path))
        .collect::<Result<Vec<_>, _>>()?;
    let markers = Graph::new(&lock, &names, path)?.reach(path)?;
    let mut packages = Vec::new();
    for ((package, name), marker) in lock.packages.into_iter().zip(names).zip(markers) {
        let Some(marker) = marker else {
            continue;
        };
        let version = version(&name, package.version.as_deref(), path)?;
        let described = describe(&name, version.as_ref());
        let wheels = package
            .wheels
            .into_iter()
            .map(|wheel| {
                let sha256 = wheel
                    .hash
                    .as_deref()
                    .and_then(|hash| hash.strip_prefix("sha256:"))
                    .map(str::to_owned);
                locked_wheel(
                    WheelFields {
                        name: wheel.filename,
                        url: wheel.url,
                        path: wheel.path,
                        size: wheel.size,
                        sha256,
                    },
                    &described,
                    path,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        let index = package.source.registry;
        packages.push(LockedPackage {
            name,
            version,
            marker: (!marker.is_true()).then_some(marker),
            has_sdist_only: wheels.is_empty() && (package.sdist.is_some() || index.is_none()),
            index,
            wheels,
        });
    }
    Ok(Pylock {
        requires_python: lock.requires_python,
        created_by: "uv".to_owned(),
        packages,
    })
}

/// Deterministic TOML, as PEP 751 lays it out, packages sorted by name.
///
/// A package with no wheels is written with no distribution: strata writes
/// the locks its own resolver makes, which hold wheels only.
pub fn write_pylock(lock: &Pylock) -> String {
    let mut out = document(&PylockToml {
        lock_version: "1.0".to_owned(),
        created_by: "strata".to_owned(),
        requires_python: lock.requires_python.clone(),
        packages: Vec::new(),
    });
    let mut packages: Vec<&LockedPackage> = lock.packages.iter().collect();
    packages.sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
    for package in packages {
        out.push_str("\n[[packages]]\n");
        out.push_str(&document(&PackageToml {
            name: package.name.to_string(),
            version: package.version.as_ref().map(Version::to_string),
            marker: package.marker.and_then(MarkerTree::try_to_string),
            index: package.index.clone(),
            sdist: None,
            vcs: None,
            directory: None,
            archive: None,
            wheels: Vec::new(),
        }));
        for wheel in &package.wheels {
            out.push_str("\n[[packages.wheels]]\n");
            out.push_str(&document(&WheelToml {
                name: Some(wheel.name.clone()),
                url: Some(wheel.url.clone()),
                path: None,
                size: wheel.size,
                hashes: HashesToml::default(),
            }));
            let hashes = HashesToml {
                sha256: Some(wheel.sha256.hex()),
            };
            out.push_str(&format!("hashes = {}\n", inline(&hashes)));
        }
    }
    out
}

/// `toml` fails to serialize only what TOML cannot hold (enums, a `None`
/// inside an array); the lock structs hold strings, integers and tables.
const SERIALIZES: &str = "lock structs hold only strings, integers and tables";

fn document<T: Serialize>(value: &T) -> String {
    toml::to_string(value).expect(SERIALIZES)
}

fn inline<T: Serialize>(value: &T) -> String {
    let mut out = String::new();
    value
        .serialize(toml::ser::ValueSerializer::new(&mut out))
        .expect(SERIALIZES);
    out
}

fn parse_toml<T: DeserializeOwned>(text: &str, path: &Path) -> Result<T, PylockError> {
    if text.len() > MAX_LOCK_SIZE {
        return Err(PylockError::TooLarge {
            file: path.to_owned(),
        });
    }
    toml::from_str(text).map_err(|source: toml::de::Error| PylockError::Toml {
        file: path.to_owned(),
        line: source.span().map_or(1, |span| {
            text[..span.start.min(text.len())].lines().count().max(1)
        }),
        source,
    })
}

fn package_name(name: &str, path: &Path) -> Result<PackageName, PylockError> {
    PackageName::from_str(name).map_err(|source| PylockError::Name {
        file: path.to_owned(),
        name: name.to_owned(),
        source,
    })
}

fn version(
    name: &PackageName,
    version: Option<&str>,
    path: &Path,
) -> Result<Option<Version>, PylockError> {
    version
        .map(|version| {
            Version::from_str(version).map_err(|source| PylockError::Version {
                file: path.to_owned(),
                package: name.to_string(),
                version: version.to_owned(),
                source,
            })
        })
        .transpose()
}

fn parse_marker(marker: &str, package: &str, path: &Path) -> Result<MarkerTree, PylockError> {
    MarkerTree::from_str(marker).map_err(|source| PylockError::Marker {
        file: path.to_owned(),
        package: package.to_owned(),
        source: Box::new(source),
    })
}

/// `name version`, to name a package in errors.
fn describe(name: &PackageName, version: Option<&Version>) -> String {
    match version {
        Some(version) => format!("{name} {version}"),
        None => name.to_string(),
    }
}

/// A wheel entry as either lock format has it.
struct WheelFields {
    name: Option<String>,
    url: Option<String>,
    path: Option<String>,
    size: Option<u64>,
    /// Hex, without the `sha256:` prefix.
    sha256: Option<String>,
}

fn locked_wheel(
    fields: WheelFields,
    package: &str,
    path: &Path,
) -> Result<LockedWheel, PylockError> {
    let name = fields
        .name
        .or_else(|| fields.url.as_deref().map(file_name_of))
        .or_else(|| fields.path.as_deref().map(file_name_of))
        .unwrap_or_default();
    let Some(url) = fields.url else {
        return Err(PylockError::WheelWithoutUrl {
            file: path.to_owned(),
            package: package.to_owned(),
            wheel: name,
        });
    };
    let Some(hex) = fields.sha256 else {
        return Err(PylockError::MissingHash {
            file: path.to_owned(),
            package: package.to_owned(),
            wheel: name,
        });
    };
    let sha256 =
        Digest::from_str(&format!("sha256:{}", hex.to_ascii_lowercase())).map_err(|source| {
            PylockError::MalformedHash {
                file: path.to_owned(),
                package: package.to_owned(),
                wheel: name.clone(),
                hash: hex,
                source,
            }
        })?;
    Ok(LockedWheel {
        name,
        // The URL goes into strata's lock and SBOM: a login in it must not.
        url: strata_client::credentials::split_login(&url).0,
        size: fields.size,
        sha256,
    })
}

/// The file name a URL or path ends with, `%XX` escapes decoded (indexes
/// write `+` of local versions as `%2B`).
fn file_name_of(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or_default();
    let last = path.rsplit(['/', '\\']).next().unwrap_or_default();
    let mut bytes = Vec::with_capacity(last.len());
    let mut rest = last.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        let escaped = (byte == b'%')
            .then(|| tail.get(..2))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(decoded) => {
                bytes.push(decoded);
                rest = &tail[2..];
            }
            None => {
                bytes.push(byte);
                rest = tail;
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A `uv.lock`'s dependency graph, edges resolved to package indexes.
struct Graph<'a> {
    roots: Vec<usize>,
    /// Per package: the edges of its `dependencies`, and of each extra.
    dependencies: Vec<Vec<Edge<'a>>>,
    extras: Vec<HashMap<&'a str, Vec<Edge<'a>>>>,
}

struct Edge<'a> {
    to: usize,
    marker: MarkerTree,
    extras: &'a [String],
}

/// A package, or one of its extras (which brings the package too).
type Node<'a> = (usize, Option<&'a str>);

impl<'a> Graph<'a> {
    fn new(lock: &'a UvLockToml, names: &[PackageName], path: &Path) -> Result<Self, PylockError> {
        let members = lock
            .manifest
            .members
            .iter()
            .map(|member| package_name(member, path))
            .collect::<Result<HashSet<_>, _>>()?;
        let roots: Vec<usize> = lock
            .packages
            .iter()
            .zip(names)
            .enumerate()
            .filter(|(_, (package, name))| {
                members.contains(*name)
                    || package.source.r#virtual.as_deref() == Some(".")
                    || package.source.editable.as_deref() == Some(".")
            })
            .map(|(index, _)| index)
            .collect();
        if roots.is_empty() {
            return Err(PylockError::NoProject {
                file: path.to_owned(),
            });
        }
        let mut by_name: HashMap<&PackageName, Vec<usize>> = HashMap::new();
        for (index, name) in names.iter().enumerate() {
            by_name.entry(name).or_default().push(index);
        }
        let resolve = |from: usize, edges: &'a [UvDependencyToml]| {
            edges
                .iter()
                .map(|edge| resolve_edge(lock, names, &by_name, from, edge, path))
                .collect::<Result<Vec<_>, _>>()
        };
        let mut dependencies = Vec::with_capacity(lock.packages.len());
        let mut extras = Vec::with_capacity(lock.packages.len());
        for (index, package) in lock.packages.iter().enumerate() {
            dependencies.push(resolve(index, &package.dependencies)?);
            extras.push(
                package
                    .optional_dependencies
                    .iter()
                    .map(|(extra, edges)| Ok((extra.as_str(), resolve(index, edges)?)))
                    .collect::<Result<HashMap<_, _>, PylockError>>()?,
            );
        }
        Ok(Graph {
            roots,
            dependencies,
            extras,
        })
    }

    /// Each package's marker from the roots, `None` for roots and for the
    /// packages no root reaches.
    fn reach(&self, path: &Path) -> Result<Vec<Option<MarkerTree>>, PylockError> {
        let mut reached: HashMap<Node<'a>, MarkerTree> = HashMap::new();
        let mut work: Vec<Node<'a>> = Vec::new();
        for &root in &self.roots {
            reached.insert((root, None), MarkerTree::TRUE);
            work.push((root, None));
        }
        let mut growths = 0;
        let max_growths = MAX_MARKER_GROWTHS * (self.dependencies.len() + 1);
        while let Some(node) = work.pop() {
            let from = reached.get(&node).copied().unwrap_or(MarkerTree::FALSE);
            let (package, extra) = node;
            let edges = match extra {
                None => self.dependencies[package].as_slice(),
                Some(extra) => self.extras[package]
                    .get(extra)
                    .map_or(&[][..], Vec::as_slice),
            };
            let mut targets: Vec<(Node<'a>, MarkerTree)> = Vec::new();
            if extra.is_some() {
                targets.push(((package, None), from));
            }
            for edge in edges {
                let marker = from.and(edge.marker);
                targets.push(((edge.to, None), marker));
                targets.extend(
                    edge.extras
                        .iter()
                        .map(|extra| ((edge.to, Some(extra.as_str())), marker)),
                );
            }
            for (target, marker) in targets {
                let old = reached.get(&target).copied().unwrap_or(MarkerTree::FALSE);
                let new = old.or(marker);
                if new != old {
                    growths += 1;
                    if growths > max_growths {
                        return Err(PylockError::MarkersUnsettled {
                            file: path.to_owned(),
                        });
                    }
                    reached.insert(target, new);
                    work.push(target);
                }
            }
        }
        Ok((0..self.dependencies.len())
            .map(|package| {
                reached
                    .get(&(package, None))
                    .copied()
                    .filter(|marker| !marker.is_false() && !self.roots.contains(&package))
            })
            .collect())
    }
}

fn resolve_edge<'a>(
    lock: &UvLockToml,
    names: &[PackageName],
    by_name: &HashMap<&PackageName, Vec<usize>>,
    from: usize,
    edge: &'a UvDependencyToml,
    path: &Path,
) -> Result<Edge<'a>, PylockError> {
    let package = match &lock.packages[from].version {
        Some(version) => format!("{} {version}", names[from]),
        None => names[from].to_string(),
    };
    let name = package_name(&edge.name, path)?;
    let candidates: Vec<usize> = by_name
        .get(&name)
        .into_iter()
        .flatten()
        .copied()
        .filter(|&index| {
            let candidate = &lock.packages[index];
            edge.version
                .as_ref()
                .is_none_or(|version| candidate.version.as_ref() == Some(version))
                && edge
                    .source
                    .as_ref()
                    .is_none_or(|source| candidate.source == *source)
        })
        .collect();
    let to = match candidates[..] {
        [to] => to,
        [] => {
            return Err(PylockError::UnknownDependency {
                file: path.to_owned(),
                package,
                dependency: edge.name.clone(),
            });
        }
        _ => {
            return Err(PylockError::AmbiguousDependency {
                file: path.to_owned(),
                package,
                dependency: edge.name.clone(),
            });
        }
    };
    let marker = edge
        .marker
        .as_deref()
        .map(|marker| parse_marker(marker, &package, path))
        .transpose()?
        .unwrap_or(MarkerTree::TRUE);
    Ok(Edge {
        to,
        marker,
        extras: &edge.extra,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use miette::Diagnostic;

    const SHA_A: &str = "4721f391ed90541fddacab5acf947aa0d3dc7d27b2e1e8eda2be8970586c3274";
    const SHA_B: &str = "ff70335d468e7eb6ec65b95b99d3a2836546063f63acc5171de367e834932a81";

    // Written by uv 0.13.9: `uv pip compile --format pylock.toml
    // --python-version 3.12` of `six` and `packaging`; and, for a project
    // with requires-python >=3.9 needing `six`, `packaging` and
    // `exceptiongroup; python_version < '3.11'` (which forks packaging into
    // 26.3 below Python 3.10 and 26.4 above), `uv lock` and
    // `uv export --format pylock.toml`.
    const UV_COMPILE: &str = include_str!("testdata/uv-pip-compile.pylock.toml");
    const UV_EXPORT: &str = include_str!("testdata/uv-export.pylock.toml");
    const UV_LOCK: &str = include_str!("testdata/uv.lock");

    fn pylock(text: &str) -> Result<Pylock, PylockError> {
        read_pylock(text, Path::new("pylock.toml"))
    }

    fn uv_lock(text: &str) -> Result<Pylock, PylockError> {
        read_uv_lock(text, Path::new("uv.lock"))
    }

    fn marker(text: &str) -> MarkerTree {
        MarkerTree::from_str(text).unwrap()
    }

    fn digest(hex: &str) -> Digest {
        Digest::from_str(&format!("sha256:{hex}")).unwrap()
    }

    fn package<'a>(lock: &'a Pylock, name: &str) -> &'a LockedPackage {
        lock.packages
            .iter()
            .find(|package| package.name.as_ref() == name)
            .unwrap()
    }

    fn help(error: &PylockError) -> String {
        error.help().unwrap().to_string()
    }

    #[test]
    fn reads_what_uv_pip_compile_writes() {
        let lock = pylock(UV_COMPILE).unwrap();
        assert_eq!(lock.created_by, "uv");
        assert_eq!(lock.requires_python.as_deref(), Some(">=3.12"));
        let names: Vec<_> = lock.packages.iter().map(|p| p.name.to_string()).collect();
        assert_eq!(names, ["packaging", "six"]);
        let six = package(&lock, "six");
        assert_eq!(six.version, Some(Version::from_str("1.17.0").unwrap()));
        assert_eq!(six.marker, None);
        assert_eq!(six.index, None);
        assert!(!six.has_sdist_only);
        assert_eq!(
            six.wheels,
            [LockedWheel {
                name: "six-1.17.0-py2.py3-none-any.whl".to_owned(),
                url: "https://files.pythonhosted.org/packages/b7/ce/149a00dd41f10bc29e5921b496af8b574d8413afcd5e30dfa0ed46c2cc5e/six-1.17.0-py2.py3-none-any.whl".to_owned(),
                size: Some(11050),
                sha256: digest(SHA_A),
            }]
        );
    }

    #[test]
    fn reads_what_uv_export_writes_with_markers_and_two_versions() {
        let lock = pylock(UV_EXPORT).unwrap();
        let versions: Vec<_> = lock
            .packages
            .iter()
            .map(|p| format!("{} {}", p.name, p.version.as_ref().unwrap()))
            .collect();
        assert_eq!(
            versions,
            [
                "exceptiongroup 1.3.2",
                "packaging 26.3",
                "packaging 26.4",
                "six 1.17.0",
                "typing-extensions 4.16.0"
            ]
        );
        assert_eq!(
            lock.packages[1].marker,
            Some(marker("python_full_version < '3.10'"))
        );
        assert_eq!(
            lock.packages[2].marker,
            Some(marker("python_full_version >= '3.10'"))
        );
        assert_eq!(lock.packages[3].marker, None);
        assert_eq!(
            lock.packages[3].index.as_deref(),
            Some("https://pypi.org/simple")
        );
    }

    /// The markers strata computes from uv.lock's edges are the ones
    /// `uv export` computed for the same lock, and so is everything else.
    #[test]
    fn uv_lock_reads_as_uv_exports_it() {
        let from_uv_lock = uv_lock(UV_LOCK).unwrap();
        let exported = pylock(UV_EXPORT).unwrap();
        assert_eq!(from_uv_lock, exported);
        assert!(
            from_uv_lock
                .packages
                .iter()
                .all(|package| package.name.as_ref() != "demo")
        );
    }

    #[test]
    fn write_then_read_round_trips() {
        let mut lock = pylock(UV_EXPORT).unwrap();
        lock.created_by = "strata".to_owned();
        let written = write_pylock(&lock);
        assert_eq!(pylock(&written).unwrap(), lock);
        let again = write_pylock(&pylock(&written).unwrap());
        assert_eq!(again, written);
    }

    #[test]
    fn write_lays_out_as_pep_751_shows() {
        let lock = Pylock {
            requires_python: Some(">=3.11".to_owned()),
            created_by: "whoever".to_owned(),
            packages: vec![
                LockedPackage {
                    name: PackageName::from_str("Typing_Extensions").unwrap(),
                    version: Some(Version::from_str("4.16.0").unwrap()),
                    marker: Some(marker("python_version < '3.13'")),
                    index: Some("https://pypi.org/simple".to_owned()),
                    wheels: vec![LockedWheel {
                        name: "typing_extensions-4.16.0-py3-none-any.whl".to_owned(),
                        url: "https://example.com/typing_extensions-4.16.0-py3-none-any.whl"
                            .to_owned(),
                        size: Some(45571),
                        sha256: digest(SHA_A),
                    }],
                    has_sdist_only: false,
                },
                LockedPackage {
                    name: PackageName::from_str("six").unwrap(),
                    version: None,
                    marker: None,
                    index: None,
                    wheels: vec![LockedWheel {
                        name: "six-1.17.0-py3-none-any.whl".to_owned(),
                        url: "https://example.com/six \"quoted\".whl".to_owned(),
                        size: None,
                        sha256: digest(SHA_B),
                    }],
                    has_sdist_only: false,
                },
            ],
        };
        let expected = format!(
            r#"lock-version = "1.0"
created-by = "strata"
requires-python = ">=3.11"

[[packages]]
name = "six"

[[packages.wheels]]
name = "six-1.17.0-py3-none-any.whl"
url = 'https://example.com/six "quoted".whl'
hashes = {{ sha256 = "{SHA_B}" }}

[[packages]]
name = "typing-extensions"
version = "4.16.0"
marker = "python_full_version < '3.13'"
index = "https://pypi.org/simple"

[[packages.wheels]]
name = "typing_extensions-4.16.0-py3-none-any.whl"
url = "https://example.com/typing_extensions-4.16.0-py3-none-any.whl"
size = 45571
hashes = {{ sha256 = "{SHA_A}" }}
"#
        );
        assert_eq!(write_pylock(&lock), expected);
    }

    #[test]
    fn write_sorts_packages_and_is_deterministic() {
        let lock = pylock(UV_EXPORT).unwrap();
        let mut reversed = lock.clone();
        reversed.packages.reverse();
        assert_eq!(write_pylock(&reversed), write_pylock(&lock));
    }

    #[test]
    fn wrong_lock_version_is_an_error() {
        let error = pylock("lock-version = \"2.0\"\ncreated-by = \"x\"\n").unwrap_err();
        assert!(
            matches!(&error, PylockError::LockVersion { found, .. } if found == "2.0"),
            "{error:?}"
        );
        assert!(help(&error).contains("lock-version \"1.0\""));
    }

    fn one_wheel(wheel: &str) -> String {
        format!(
            "lock-version = \"1.0\"\ncreated-by = \"x\"\n\n[[packages]]\nname = \"six\"\nversion = \"1.17.0\"\n\n[[packages.wheels]]\n{wheel}\n"
        )
    }

    #[test]
    fn a_wheel_without_sha256_is_an_error_naming_package_and_wheel() {
        for wheel in [
            "url = \"https://example.com/six-1.17.0-py3-none-any.whl\"",
            "url = \"https://example.com/six-1.17.0-py3-none-any.whl\"\nhashes = { sha512 = \"abcd\" }",
        ] {
            let error = pylock(&one_wheel(wheel)).unwrap_err();
            assert!(
                matches!(&error, PylockError::MissingHash { package, wheel, .. }
                    if package == "six 1.17.0" && wheel == "six-1.17.0-py3-none-any.whl"),
                "{error:?}"
            );
            assert!(error.to_string().contains("pylock.toml"), "{error}");
        }
    }

    #[test]
    fn a_malformed_sha256_is_an_error() {
        let error = pylock(&one_wheel(
            "name = \"six.whl\"\nurl = \"https://example.com/six.whl\"\nhashes = { sha256 = \"abc\" }",
        ))
        .unwrap_err();
        assert!(
            matches!(&error, PylockError::MalformedHash { wheel, hash, .. } if wheel == "six.whl" && hash == "abc"),
            "{error:?}"
        );
    }

    #[test]
    fn a_wheel_with_a_path_only_is_an_error() {
        let error = pylock(&one_wheel(&format!(
            "path = \"wheels/six-1.17.0-py3-none-any.whl\"\nhashes = {{ sha256 = \"{SHA_A}\" }}"
        )))
        .unwrap_err();
        assert!(
            matches!(&error, PylockError::WheelWithoutUrl { wheel, .. } if wheel == "six-1.17.0-py3-none-any.whl"),
            "{error:?}"
        );
        assert!(help(&error).contains("strata installs from indexes only"));
    }

    #[test]
    fn sdist_vcs_directory_and_archive_only_packages_are_marked() {
        for entry in [
            format!(
                "sdist = {{ url = \"https://example.com/six-1.17.0.tar.gz\", hashes = {{ sha256 = \"{SHA_B}\" }} }}"
            ),
            "vcs = { type = \"git\", url = \"https://example.com/six.git\", commit-id = \"abc\" }"
                .to_owned(),
            "directory = { path = \".\", editable = true }".to_owned(),
            format!(
                "archive = {{ url = \"https://example.com/six.zip\", hashes = {{ sha256 = \"{SHA_B}\" }} }}"
            ),
        ] {
            let lock = pylock(&format!(
                "lock-version = \"1.0\"\ncreated-by = \"x\"\n\n[[packages]]\nname = \"six\"\n{entry}\n"
            ))
            .unwrap();
            assert!(lock.packages[0].has_sdist_only, "{entry}");
            assert!(lock.packages[0].wheels.is_empty());
        }
        // With a wheel too, the sdist does not matter.
        let lock = pylock(&format!(
            "{}sdist = {{ url = \"https://example.com/six-1.17.0.tar.gz\", hashes = {{ sha256 = \"{SHA_B}\" }} }}\nwheels = [{{ url = \"https://example.com/six-1.17.0-py3-none-any.whl\", hashes = {{ sha256 = \"{SHA_A}\" }} }}]\n",
            "lock-version = \"1.0\"\ncreated-by = \"x\"\n\n[[packages]]\nname = \"six\"\n"
        ))
        .unwrap();
        assert!(!lock.packages[0].has_sdist_only);
        assert_eq!(lock.packages[0].wheels[0].sha256, digest(SHA_A));
    }

    #[test]
    fn toml_errors_name_the_line() {
        let error = pylock("lock-version = \"1.0\"\ncreated-by = \"x\"\n\n[[packages]]\nname = \n")
            .unwrap_err();
        assert!(
            matches!(&error, PylockError::Toml { line: 5, .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains("pylock.toml` line 5"), "{error}");
        let error = pylock("lock-version = \"1.0\"\n").unwrap_err();
        assert!(matches!(&error, PylockError::Toml { .. }), "{error:?}");
        assert!(
            std::error::Error::source(&error)
                .unwrap()
                .to_string()
                .contains("created-by"),
            "{error}"
        );
    }

    #[test]
    fn invalid_names_versions_and_markers_are_errors() {
        let head = "lock-version = \"1.0\"\ncreated-by = \"x\"\n\n[[packages]]\n";
        let error = pylock(&format!("{head}name = \"-bad-\"\n")).unwrap_err();
        assert!(
            matches!(&error, PylockError::Name { name, .. } if name == "-bad-"),
            "{error:?}"
        );
        let error = pylock(&format!("{head}name = \"six\"\nversion = \"one\"\n")).unwrap_err();
        assert!(
            matches!(&error, PylockError::Version { package, version, .. } if package == "six" && version == "one"),
            "{error:?}"
        );
        let error = pylock(&format!(
            "{head}name = \"six\"\nmarker = \"python_version <\"\n"
        ))
        .unwrap_err();
        assert!(
            matches!(&error, PylockError::Marker { package, .. } if package == "six"),
            "{error:?}"
        );
    }

    #[test]
    fn oversized_text_is_refused() {
        let text = " ".repeat(MAX_LOCK_SIZE + 1);
        let error = pylock(&text).unwrap_err();
        assert!(matches!(error, PylockError::TooLarge { .. }), "{error:?}");
        let error = uv_lock(&text).unwrap_err();
        assert!(matches!(error, PylockError::TooLarge { .. }), "{error:?}");
    }

    fn uv_wheel(file: &str, hex: &str) -> String {
        format!(
            "wheels = [{{ url = \"https://files.example/{file}\", hash = \"sha256:{hex}\", size = 10 }}]"
        )
    }

    /// Extras on edges, a dependency cycle, markers met along two paths, a
    /// git package, and what no root reaches (an extra nobody asks for, the
    /// project's dev group).
    #[test]
    fn uv_lock_markers_follow_edges_and_extras() {
        let text = format!(
            r#"version = 1
revision = 3
requires-python = ">=3.10"

[[package]]
name = "app"
version = "0.1.0"
source = {{ editable = "." }}
dependencies = [
    {{ name = "httpx", extra = ["http2"], marker = "sys_platform == 'linux'" }},
    {{ name = "tomli", marker = "python_full_version < '3.11'" }},
    {{ name = "gitdep" }},
]

[package.optional-dependencies]
docs = [{{ name = "unused" }}]

[package.dev-dependencies]
dev = [{{ name = "pytest" }}]

[[package]]
name = "httpx"
version = "0.28.1"
source = {{ registry = "https://pypi.org/simple" }}
dependencies = [{{ name = "tomli" }}]
{httpx}

[package.optional-dependencies]
http2 = [{{ name = "h2" }}]

[[package]]
name = "h2"
version = "4.2.0"
source = {{ registry = "https://pypi.org/simple" }}
dependencies = [{{ name = "httpx" }}]
{h2}

[[package]]
name = "tomli"
version = "2.2.1"
source = {{ registry = "https://pypi.org/simple" }}
{tomli}

[[package]]
name = "unused"
version = "1.0"
source = {{ registry = "https://pypi.org/simple" }}
{unused}

[[package]]
name = "pytest"
version = "8.0"
source = {{ registry = "https://pypi.org/simple" }}
{pytest}

[[package]]
name = "gitdep"
version = "1.0"
source = {{ git = "https://example.com/gitdep?rev=abc#abc" }}
"#,
            httpx = uv_wheel("httpx-0.28.1-py3-none-any.whl", SHA_A),
            h2 = uv_wheel("h2-4.2.0%2Blocal-py3-none-any.whl", SHA_B),
            tomli = uv_wheel("tomli-2.2.1-py3-none-any.whl", SHA_A),
            unused = uv_wheel("unused-1.0-py3-none-any.whl", SHA_A),
            pytest = uv_wheel("pytest-8.0-py3-none-any.whl", SHA_A),
        );
        let lock = uv_lock(&text).unwrap();
        let names: Vec<_> = lock.packages.iter().map(|p| p.name.to_string()).collect();
        assert_eq!(names, ["httpx", "h2", "tomli", "gitdep"]);
        let linux = Some(marker("sys_platform == 'linux'"));
        assert_eq!(package(&lock, "httpx").marker, linux);
        assert_eq!(package(&lock, "h2").marker, linux);
        assert_eq!(
            package(&lock, "tomli").marker,
            Some(marker(
                "python_full_version < '3.11' or sys_platform == 'linux'"
            ))
        );
        let h2 = package(&lock, "h2");
        assert_eq!(h2.wheels[0].name, "h2-4.2.0+local-py3-none-any.whl");
        assert_eq!(h2.wheels[0].size, Some(10));
        assert_eq!(h2.index.as_deref(), Some("https://pypi.org/simple"));
        let git = package(&lock, "gitdep");
        assert!(git.has_sdist_only);
        assert_eq!(git.marker, None);
        assert_eq!(git.index, None);
        assert_eq!(lock.created_by, "uv");
        assert_eq!(lock.requires_python.as_deref(), Some(">=3.10"));
    }

    fn uv_project(dependencies: &str, packages: &str) -> String {
        format!(
            "version = 1\nrequires-python = \">=3.10\"\n\n[[package]]\nname = \"app\"\nversion = \"0.1.0\"\nsource = {{ virtual = \".\" }}\ndependencies = [{dependencies}]\n\n{packages}"
        )
    }

    fn uv_registry_package(name: &str, version: &str, wheels: &str) -> String {
        format!(
            "[[package]]\nname = \"{name}\"\nversion = \"{version}\"\nsource = {{ registry = \"https://pypi.org/simple\" }}\n{wheels}\n\n"
        )
    }

    #[test]
    fn uv_lock_workspace_members_are_roots() {
        let text = format!(
            "version = 1\n\n[manifest]\nmembers = [\"lib-a\"]\n\n[[package]]\nname = \"lib-a\"\nversion = \"0.1.0\"\nsource = {{ editable = \"packages/lib-a\" }}\ndependencies = [{{ name = \"six\" }}]\n\n{}",
            uv_registry_package(
                "six",
                "1.17.0",
                &uv_wheel("six-1.17.0-py3-none-any.whl", SHA_A)
            )
        );
        let lock = uv_lock(&text).unwrap();
        assert_eq!(lock.packages.len(), 1);
        assert_eq!(lock.packages[0].name.as_ref(), "six");
    }

    #[test]
    fn uv_lock_sdist_only_package_is_marked() {
        let text = uv_project(
            "{ name = \"six\" }",
            &uv_registry_package(
                "six",
                "1.17.0",
                &format!(
                    "sdist = {{ url = \"https://files.example/six-1.17.0.tar.gz\", hash = \"sha256:{SHA_B}\" }}"
                ),
            ),
        );
        let lock = uv_lock(&text).unwrap();
        assert!(lock.packages[0].has_sdist_only);
    }

    #[test]
    fn uv_lock_wheel_without_sha256_is_an_error() {
        for wheel in [
            "wheels = [{ url = \"https://files.example/six-1.17.0-py3-none-any.whl\" }]",
            "wheels = [{ url = \"https://files.example/six-1.17.0-py3-none-any.whl\", hash = \"sha512:abcd\" }]",
        ] {
            let text = uv_project(
                "{ name = \"six\" }",
                &uv_registry_package("six", "1.17.0", wheel),
            );
            let error = uv_lock(&text).unwrap_err();
            assert!(
                matches!(&error, PylockError::MissingHash { package, wheel, .. }
                    if package == "six 1.17.0" && wheel == "six-1.17.0-py3-none-any.whl"),
                "{error:?}"
            );
        }
        let text = uv_project(
            "{ name = \"six\" }",
            &uv_registry_package(
                "six",
                "1.17.0",
                &format!(
                    "wheels = [{{ path = \"six-1.17.0-py3-none-any.whl\", hash = \"sha256:{SHA_A}\" }}]"
                ),
            ),
        );
        let error = uv_lock(&text).unwrap_err();
        assert!(
            matches!(error, PylockError::WheelWithoutUrl { .. }),
            "{error:?}"
        );
    }

    #[test]
    fn uv_lock_version_other_than_1_is_an_error() {
        let error = uv_lock("version = 2\n").unwrap_err();
        assert!(
            matches!(error, PylockError::UvLockVersion { found: 2, .. }),
            "{error:?}"
        );
    }

    #[test]
    fn uv_lock_without_a_project_is_an_error() {
        let text = format!(
            "version = 1\n\n{}",
            uv_registry_package(
                "six",
                "1.17.0",
                &uv_wheel("six-1.17.0-py3-none-any.whl", SHA_A)
            )
        );
        let error = uv_lock(&text).unwrap_err();
        assert!(matches!(error, PylockError::NoProject { .. }), "{error:?}");
    }

    #[test]
    fn uv_lock_edges_must_name_one_package() {
        let wheel = uv_wheel("six-1.17.0-py3-none-any.whl", SHA_A);
        let error = uv_lock(&uv_project("{ name = \"missing\" }", "")).unwrap_err();
        assert!(
            matches!(&error, PylockError::UnknownDependency { package, dependency, .. }
                if package == "app 0.1.0" && dependency == "missing"),
            "{error:?}"
        );
        let two = format!(
            "{}{}",
            uv_registry_package("six", "1.16.0", &wheel),
            uv_registry_package("six", "1.17.0", &wheel)
        );
        let error = uv_lock(&uv_project("{ name = \"six\" }", &two)).unwrap_err();
        assert!(
            matches!(error, PylockError::AmbiguousDependency { .. }),
            "{error:?}"
        );
        let lock = uv_lock(&uv_project(
            "{ name = \"six\", version = \"1.16.0\" }",
            &two,
        ))
        .unwrap();
        assert_eq!(lock.packages.len(), 1);
        assert_eq!(
            lock.packages[0].version,
            Some(Version::from_str("1.16.0").unwrap())
        );
    }

    #[test]
    fn uv_lock_markers_that_never_settle_are_an_error() {
        let edges: Vec<String> = (0..200)
            .map(|patch| {
                format!("{{ name = \"six\", marker = \"python_full_version == '3.10.{patch}'\" }}")
            })
            .collect();
        let text = uv_project(
            &edges.join(", "),
            &uv_registry_package(
                "six",
                "1.17.0",
                &uv_wheel("six-1.17.0-py3-none-any.whl", SHA_A),
            ),
        );
        let error = uv_lock(&text).unwrap_err();
        assert!(
            matches!(error, PylockError::MarkersUnsettled { .. }),
            "{error:?}"
        );
    }
}
