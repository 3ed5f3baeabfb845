//! Debian packages: signed repositories, a real solver, a lock, and
//! installation by extraction — never by running dpkg, apt or a maintainer
//! script.
//!
//! `resolve` turns the recipe's `debian` block into a [`Lock`] (network:
//! `InRelease` + `Packages`); `layer` turns a lock into the package layer
//! (network only for `.deb`s missing from the cache).

pub mod control;
pub mod deb;
pub mod facts;
pub mod index;
pub mod install;
pub mod relation;
pub mod repo;
pub mod signature;
pub mod solve;
pub mod version;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use rayon::prelude::*;

use self::index::Package;
use self::repo::{Release, RepoError};
use self::solve::{Installed, Request, SolveError, Universe};
use crate::assemble::Lower;
use crate::assemble::entry::LayerPlan;
use crate::cache::CacheError;
use crate::digest::Digest;
use crate::fetch::{Download, FetchError, Fetcher};
use crate::lock::{Lock, LockedPackage, LockedRepository};
use crate::platform::Platform;
use crate::recipe::Recipe;

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum AptError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Repo(#[from] RepoError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Solve(#[from] SolveError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Fetch(#[from] FetchError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Deb(#[from] deb::DebError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Install(#[from] install::InstallError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Cache(#[from] CacheError),
    #[error("Debian has no architecture for the platform `{0}`")]
    #[diagnostic(help(
        "Debian packages exist for linux/amd64, linux/arm64, linux/arm/v7, linux/386, linux/ppc64le and linux/s390x"
    ))]
    Platform(String),
    #[error("the lock has no packages for `{0}`")]
    #[diagnostic(help("run `strata lock` again"))]
    LockPlatform(String),
}

/// Debian's name for a platform's architecture.
pub fn debian_arch(platform: &Platform) -> Result<&'static str, AptError> {
    Ok(
        match (platform.architecture.as_str(), platform.variant.as_deref()) {
            ("amd64", _) => "amd64",
            ("arm64", _) => "arm64",
            ("arm", Some("v7")) => "armhf",
            ("arm", Some("v5")) => "armel",
            ("386", _) => "i386",
            ("ppc64le", _) => "ppc64el",
            ("s390x", _) => "s390x",
            _ => return Err(AptError::Platform(platform.to_string())),
        },
    )
}

/// Resolves the recipe's packages for each platform (with what its base
/// already has) against the signed repositories.
pub fn resolve(
    recipe: &Recipe,
    platforms: &[(Platform, &Lower)],
    fetcher: &Fetcher,
) -> Result<Option<Lock>, AptError> {
    let (Some(debian), Some(inputs)) = (&recipe.debian, crate::lock::inputs(recipe)) else {
        return Ok(None);
    };
    let releases: Vec<Release> = debian
        .repositories
        .par_iter()
        .map(|spec| {
            let keyring = repo::load_keyring(spec, &recipe.context)?;
            repo::fetch_release(fetcher, spec, &keyring)
        })
        .collect::<Result<_, RepoError>>()?;
    let requests: Vec<Request> = debian
        .install
        .iter()
        .map(|p| Request {
            name: p.name.clone(),
            version: p.version.clone(),
        })
        .collect();

    let mut locked = BTreeMap::new();
    for (platform, lower) in platforms {
        let arch = debian_arch(platform)?;
        let mut indexes = Vec::new();
        for (repo_index, (spec, release)) in debian.repositories.iter().zip(&releases).enumerate() {
            for component in &spec.components {
                let (download, compression) = release.packages(component, arch)?;
                indexes.push((repo_index, download, compression));
            }
        }
        // Each index downloads, decompresses and parses at once, on its own threads.
        let lists: Vec<Vec<Arc<Package>>> = std::thread::scope(|scope| {
            let handles: Vec<_> = indexes
                .iter()
                .map(|(repo_index, download, compression)| {
                    scope.spawn(move || {
                        read_index(fetcher, download, *compression, arch, *repo_index)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect::<Result<_, AptError>>()
        })?;
        let universe = Universe::new(lists.into_iter().flatten().collect(), installed(lower))?;
        let chosen = solve::solve(&universe, &requests)?;
        let packages = chosen
            .iter()
            .map(|p| LockedPackage {
                name: p.name.clone(),
                version: p.version.to_string(),
                architecture: p.architecture.clone(),
                repository: releases[p.repository].url.clone(),
                path: p.filename.clone(),
                size: p.size,
                sha256: p.sha256,
            })
            .collect();
        locked.insert(platform.to_string(), packages);
    }
    Ok(Some(Lock {
        inputs,
        repositories: releases
            .iter()
            .map(|r| LockedRepository {
                url: r.url.clone(),
                suite: r.suite.clone(),
                inrelease: r.inrelease,
                date: r.date.clone(),
                version: r.version.clone(),
            })
            .collect(),
        platforms: locked,
    }))
}

/// One index, streamed; if the stream fails, the file is fetched again with
/// retries and read from the cache.
fn read_index(
    fetcher: &Fetcher,
    download: &Download,
    compression: repo::IndexCompression,
    arch: &str,
    repo_index: usize,
) -> Result<Vec<Arc<Package>>, AptError> {
    let streamed = fetcher
        .open(download)
        .map_err(AptError::from)
        .and_then(|raw| {
            Ok(repo::read_packages(
                raw,
                &download.url,
                compression,
                arch,
                repo_index,
            )?)
        });
    match streamed {
        Ok(list) => Ok(list),
        Err(AptError::Fetch(FetchError::Offline { missing })) => {
            Err(FetchError::Offline { missing }.into())
        }
        Err(_) => {
            let path = fetcher.fetch_all(std::slice::from_ref(download))?.remove(0);
            let file =
                std::fs::File::open(&path).map_err(|source| CacheError::Io { path, source })?;
            Ok(repo::read_packages(
                Box::new(file),
                &download.url,
                compression,
                arch,
                repo_index,
            )?)
        }
    }
}

/// The packages the base's dpkg database lists as installed.
fn installed(lower: &Lower) -> Vec<Installed> {
    let mut out = Vec::new();
    for_each_installed(lower, |p| {
        if let (Some(name), Some(version)) = (
            p.get("Package"),
            p.get("Version")
                .and_then(|v| version::Version::parse(v).ok()),
        ) {
            out.push(Installed {
                name: name.to_owned(),
                version,
                provides: p.get("Provides").map(str::to_owned),
            });
        }
    });
    out
}

/// A package the base's dpkg database lists as installed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct BasePackage {
    pub name: String,
    pub version: String,
    pub architecture: String,
}

/// The packages of the base's dpkg database (`status` and `status.d/`).
pub fn base_packages(lower: &Lower) -> Vec<BasePackage> {
    let mut out = Vec::new();
    for_each_installed(lower, |p| {
        if let (Some(name), Some(version), Some(architecture)) =
            (p.get("Package"), p.get("Version"), p.get("Architecture"))
        {
            out.push(BasePackage {
                name: name.to_owned(),
                version: version.to_owned(),
                architecture: architecture.to_owned(),
            });
        }
    });
    out
}

/// Calls `f` with every installed package's stanza in the base's dpkg
/// database. A stanza without `Status` (distroless's `status.d`) counts as
/// installed.
fn for_each_installed(lower: &Lower, mut f: impl FnMut(&control::Paragraph)) {
    let texts = lower
        .files
        .iter()
        .filter(|(p, _)| {
            p.as_str() == "var/lib/dpkg/status"
                || (p.as_str().starts_with("var/lib/dpkg/status.d/")
                    && !p.as_str().ends_with(".md5sums"))
        })
        .map(|(_, text)| text);
    for text in texts {
        let _ = control::for_each_paragraph(text.as_bytes(), |p| {
            if p.get("Status").is_none_or(|s| s.ends_with(" installed")) {
                f(p);
            }
            Ok(())
        });
    }
}

/// What the cache keeps of an unpacked package, next to its data tar.
#[derive(serde::Serialize, serde::Deserialize)]
struct UnpackRecord {
    control: deb::Control,
    entries: Vec<deb::DataEntry>,
}

/// The package layer and what each package says about itself.
pub struct PackageLayer {
    pub plan: LayerPlan,
    pub packages: Vec<facts::PackageFacts>,
}

/// Fetches and unpacks the platform's locked packages and plans their layer.
pub fn layer(
    recipe: &Recipe,
    lock: &Lock,
    platform: &Platform,
    lower: &Lower,
    fetcher: &Fetcher,
    mtime: u64,
) -> Result<Option<PackageLayer>, AptError> {
    let Some(debian) = &recipe.debian else {
        return Ok(None);
    };
    let packages = lock
        .platforms
        .get(&platform.to_string())
        .ok_or_else(|| AptError::LockPlatform(platform.to_string()))?;
    let downloads: Vec<Download> = packages
        .iter()
        .map(|p| Download {
            url: p.url(),
            sha256: p.sha256,
            size: p.size,
        })
        .collect();
    let paths = fetcher.fetch_all(&downloads)?;
    let cache = fetcher.cache();
    let dir = cache.dir("debs")?;
    let unpacked: Vec<install::Unpacked> = packages
        .par_iter()
        .zip(paths.par_iter())
        .map(|(locked, deb_path)| unpack_cached(&dir, locked, deb_path))
        .collect::<Result<_, AptError>>()?;
    let release_version = lock
        .repositories
        .iter()
        .find(|r| r.suite == debian.suite.value)
        .and_then(|r| r.version.as_deref());
    let plan = install::plan(
        &unpacked,
        lower,
        &install::Options {
            architecture: debian_arch(platform)?,
            suite: &debian.suite,
            release_version,
            keep_docs: debian.keep_docs,
            mtime,
        },
    )?;
    let packages = unpacked
        .par_iter()
        .map(|p| {
            facts::facts(p).map_err(|source| {
                AptError::Install(install::InstallError::Read {
                    package: p.locked.name.clone(),
                    source,
                })
            })
        })
        .collect::<Result<_, AptError>>()?;
    Ok(Some(PackageLayer { plan, packages }))
}

fn unpack_cached(
    dir: &std::path::Path,
    locked: &LockedPackage,
    deb_path: &std::path::Path,
) -> Result<install::Unpacked, AptError> {
    let hex = locked.sha256.hex();
    let tar: PathBuf = dir.join(format!("{hex}.tar"));
    let record_path = dir.join(format!("{hex}.json"));
    let cached = std::fs::read(&record_path)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<UnpackRecord>(&bytes).ok())
        .filter(|_| tar.is_file());
    let record = match cached {
        Some(record) => record,
        None => {
            let unpacked = deb::unpack(deb_path, &tar)?;
            let record = UnpackRecord {
                control: unpacked.control,
                entries: unpacked.entries,
            };
            let bytes = serde_json::to_vec(&record).expect("an unpack record always serialises");
            // Written last, through a rename: a record means the tar is complete.
            let tmp = tempfile::NamedTempFile::new_in(dir).map_err(|source| CacheError::Io {
                path: dir.to_owned(),
                source,
            })?;
            std::fs::write(tmp.path(), bytes).map_err(|source| CacheError::Io {
                path: record_path.clone(),
                source,
            })?;
            tmp.persist(&record_path).map_err(|e| CacheError::Io {
                path: record_path.clone(),
                source: e.error,
            })?;
            record
        }
    };
    Ok(install::Unpacked {
        locked: locked.clone(),
        control: record.control,
        entries: record.entries,
        data_tar: tar,
    })
}

/// sha256 digests as Debian indexes write them (bare hex).
pub fn parse_hex_digest(hex: &str) -> Option<Digest> {
    format!("sha256:{hex}").parse().ok()
}
