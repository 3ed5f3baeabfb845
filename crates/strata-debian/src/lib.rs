//! Debian as a package source: signed repositories, indexes, a real solver,
//! `.deb` reading, and what packages say about themselves. It never runs
//! dpkg, apt or a maintainer script, and knows nothing of layers or images.
//!
//! [`resolve`] turns repositories and requests into lock entries (network:
//! `InRelease` + `Packages`); [`unpack`] turns lock entries into unpacked
//! packages in the cache (network only for `.deb`s missing from it), which
//! assembly lays out as a layer.

pub mod control;
pub mod deb;
pub mod facts;
pub mod index;
pub mod locked;
pub mod order;
pub mod relation;
pub mod repo;
pub mod script;
pub mod signature;
pub mod solve;
pub mod version;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;

use self::index::Package;
use self::locked::{LockedPackage, LockedRepository};
use self::repo::RepositorySpec;
use self::repo::{Release, RepoError};
use self::solve::{Installed, Request, SolveError, Universe};
use strata_cache::{Cache, CacheError};
use strata_client::fetch::{Download, FetchError, Fetcher};
use strata_oci::compression::Compression;
use strata_oci::digest::Digest;
use strata_oci::platform::Platform;

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum DebianError {
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
    Cache(#[from] CacheError),
    #[error("Debian has no architecture for the platform `{0}`")]
    #[diagnostic(help(
        "Debian packages exist for linux/amd64, linux/arm64, linux/arm/v7, linux/386, linux/ppc64le and linux/s390x"
    ))]
    Platform(String),
}

/// Debian's name for a platform's architecture.
pub fn debian_arch(platform: &Platform) -> Result<&'static str, DebianError> {
    Ok(
        match (platform.architecture.as_str(), platform.variant.as_deref()) {
            ("amd64", _) => "amd64",
            ("arm64", _) => "arm64",
            ("arm", Some("v7")) => "armhf",
            ("arm", Some("v5")) => "armel",
            ("386", _) => "i386",
            ("ppc64le", _) => "ppc64el",
            ("s390x", _) => "s390x",
            _ => return Err(DebianError::Platform(platform.to_string())),
        },
    )
}

/// What resolution decides: each repository's signed state, and the packages
/// each platform gets, sorted by name.
pub struct Resolution {
    pub repositories: Vec<LockedRepository>,
    /// Platform (`linux/amd64`) → packages.
    pub platforms: BTreeMap<String, Vec<LockedPackage>>,
}

/// Resolves `requests` for each platform (with what its base already has)
/// against the signed repositories, plus the release's Essential packages
/// when `essential` is set. Keyring paths are relative to `context`.
pub fn resolve(
    repositories: &[RepositorySpec],
    requests: &[Request],
    essential: bool,
    context: &Path,
    platforms: &[(Platform, Vec<Installed>)],
    fetcher: &Fetcher,
) -> Result<Resolution, DebianError> {
    let releases: Vec<Release> = repositories
        .par_iter()
        .map(|spec| {
            let keyring = repo::load_keyring(spec, context)?;
            repo::fetch_release(fetcher, spec, &keyring)
        })
        .collect::<Result<_, RepoError>>()?;

    let mut locked = BTreeMap::new();
    for (platform, installed) in platforms {
        let arch = debian_arch(platform)?;
        let mut indexes = Vec::new();
        for (repo_index, (spec, release)) in repositories.iter().zip(&releases).enumerate() {
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
                .collect::<Result<_, DebianError>>()
        })?;
        let universe = Universe::new(lists.into_iter().flatten().collect(), installed.clone())?;
        let mut requests = requests.to_vec();
        if essential {
            for name in universe.essential() {
                if !requests.iter().any(|r| r.name == name) {
                    requests.push(Request {
                        name,
                        version: None,
                    });
                }
            }
        }
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
    Ok(Resolution {
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
    })
}

/// One index, streamed; if the stream fails, the file is fetched again with
/// retries and read from the cache.
fn read_index(
    fetcher: &Fetcher,
    download: &Download,
    compression: Compression,
    arch: &str,
    repo_index: usize,
) -> Result<Vec<Arc<Package>>, DebianError> {
    let streamed = fetcher
        .open(download)
        .map_err(DebianError::from)
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
        Err(DebianError::Fetch(FetchError::Offline { missing })) => {
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

/// Whether `path` (relative to the image root) is part of the dpkg database
/// that lists installed packages: `status`, or distroless's `status.d/`.
pub fn is_status_file(path: &str) -> bool {
    path == "var/lib/dpkg/status"
        || (path.starts_with("var/lib/dpkg/status.d/") && !path.ends_with(".md5sums"))
}

/// The packages a dpkg database (the texts of its [status
/// files](is_status_file)) lists as installed, for the solver.
pub fn installed<'a>(status: impl IntoIterator<Item = &'a str>) -> Vec<Installed> {
    let mut out = Vec::new();
    for_each_installed(status, |p| {
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

/// The packages a dpkg database (the texts of its [status
/// files](is_status_file)) lists as installed, for the SBOM.
pub fn base_packages<'a>(status: impl IntoIterator<Item = &'a str>) -> Vec<BasePackage> {
    let mut out = Vec::new();
    for_each_installed(status, |p| {
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

/// Calls `f` with every installed package's stanza in a dpkg database. A
/// stanza without `Status` (distroless's `status.d`) counts as installed.
fn for_each_installed<'a>(
    status: impl IntoIterator<Item = &'a str>,
    mut f: impl FnMut(&control::Paragraph),
) {
    for text in status {
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
    /// [`UNPACK_FORMAT`] when written; records of another format (or none:
    /// before debconf templates were kept) are unpacked again.
    #[serde(default)]
    format: u32,
    control: deb::Control,
    entries: Vec<deb::DataEntry>,
    /// The digest of the data tar the entries' offsets point into: the copy
    /// is checked against it before it is used.
    data_tar: Digest,
}

/// A package ready to install: its lock entry, control data and its files,
/// whose contents are slices of `data_tar`, the uncompressed data member
/// kept in the cache.
pub struct Unpacked {
    pub locked: LockedPackage,
    pub control: deb::Control,
    pub entries: Vec<deb::DataEntry>,
    pub data_tar: PathBuf,
}

/// Fetches the locked packages into the cache (or finds them there) and
/// unpacks each once: later builds read the unpacked copy, and need not even
/// the `.deb` (it was checked against its sha256 before it was unpacked).
pub fn unpack(packages: &[LockedPackage], fetcher: &Fetcher) -> Result<Vec<Unpacked>, DebianError> {
    let cache = fetcher.cache();
    let dir = cache.dir(UNPACKED)?;
    let records: Vec<Option<UnpackRecord>> = packages
        .par_iter()
        .map(|p| cached_record(cache, &dir, p))
        .collect();
    let downloads: Vec<Download> = packages
        .iter()
        .zip(&records)
        .filter(|(_, record)| record.is_none())
        .map(|(p, _)| p.download())
        .collect();
    fetcher.fetch_all(&downloads)?;
    packages
        .par_iter()
        .zip(records)
        .map(|(locked, record)| unpack_cached(cache, &dir, locked, record))
        .collect()
}

/// The cache folder of unpacked packages: `<sha256>.tar` and its record.
const UNPACKED: &str = "debs";
/// What an unpack record holds changed: 2 keeps debconf `templates`, 3 the
/// digest of the data tar.
const UNPACK_FORMAT: u32 = 3;

fn tar_path(dir: &Path, locked: &LockedPackage) -> PathBuf {
    dir.join(format!("{}.tar", locked.sha256.hex()))
}

/// The unpack record of a package whose tar is in place and has the digest
/// the record gives. A copy damaged since it was unpacked is removed, and the
/// package is unpacked again from its `.deb`, downloaded again if needed.
fn cached_record(cache: &Cache, dir: &Path, locked: &LockedPackage) -> Option<UnpackRecord> {
    cache
        .read_record::<UnpackRecord>(UNPACKED, &locked.sha256)
        .filter(|r| {
            r.format == UNPACK_FORMAT
                && cache
                    .verified_file(&tar_path(dir, locked), &r.data_tar)
                    .is_some()
        })
}

fn unpack_cached(
    cache: &Cache,
    dir: &Path,
    locked: &LockedPackage,
    cached: Option<UnpackRecord>,
) -> Result<Unpacked, DebianError> {
    let tar = tar_path(dir, locked);
    let record = match cached {
        Some(record) => record,
        None => {
            // Unpacked in this process's own temporary folder (removed when
            // it dies) and moved into place whole.
            let work = cache.temp_dir()?;
            let name = format!("the package `{} {}`", locked.name, locked.version);
            let unpacked = deb::unpack_as(
                &cache.blob_path(&locked.sha256),
                &name,
                &work.path().join("data.tar"),
            )?;
            std::fs::rename(&unpacked.data_tar, &tar).map_err(|source| CacheError::Io {
                path: tar.clone(),
                source,
            })?;
            let record = UnpackRecord {
                format: UNPACK_FORMAT,
                control: unpacked.control,
                entries: unpacked.entries,
                data_tar: unpacked.data_tar_digest,
            };
            // Written after the tar: a record means the tar is complete.
            cache.write_record(UNPACKED, &locked.sha256, &record)?;
            record
        }
    };
    Ok(Unpacked {
        locked: locked.clone(),
        control: record.control,
        entries: record.entries,
        data_tar: tar,
    })
}

/// Debian policy's package names: lowercase letters, digits, `+`, `-` and
/// `.`, at least two characters, starting with a letter or digit. Checked
/// wherever a name enters strata (recipe, index, lock), since names become
/// paths (`/var/lib/dpkg/status.d/NAME`).
pub fn valid_package_name(name: &str) -> bool {
    name.len() >= 2
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b))
}

/// sha256 digests as Debian indexes write them (bare hex).
pub fn parse_hex_digest(hex: &str) -> Option<Digest> {
    format!("sha256:{hex}").parse().ok()
}
