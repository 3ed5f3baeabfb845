//! A wheel as the lock records it: enough to fetch and verify it again with
//! no index at all.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use strata_oci::digest::Digest;

use crate::filename::WheelFilename;
use crate::interpreter::{Interpreter, InterpreterError};
use std::collections::BTreeMap;

use uv_normalize::PackageName;
use uv_pep440::Version;
use uv_pep508::MarkerTree;

use crate::pylock::{LockedPackage as PylockPackage, LockedWheel as PylockWheel, Pylock};
use crate::tags::Tags;

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum LockFileError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Interpreter(#[from] InterpreterError),
    #[error("`{name}` in `{}` has no wheel for this image ({target})", path.display())]
    #[diagnostic(help(
        "regenerate the lock for this platform (e.g. `uv pip compile --python-platform x86_64-manylinux_2_36 --python-version 3.11 --format pylock.toml`), or drop `lock-file` so that strata resolves"
    ))]
    NoWheel {
        name: String,
        path: PathBuf,
        target: String,
    },
    #[error("`{name}` in `{}` has only a source distribution", path.display())]
    #[diagnostic(help(
        "strata installs wheels only; `uv export` lists the project itself: export with `--no-emit-project` (and `--no-dev`)"
    ))]
    SdistOnly { name: String, path: PathBuf },
}

/// The wheels a `pylock.toml` (or `uv.lock`) installs on `interpreter`'s
/// platform: each package whose marker holds there, with its best wheel for
/// the target, sorted by name. Nothing is resolved: the lock is the answer.
pub fn from_pylock(
    lock: &Pylock,
    path: &Path,
    interpreter: &Interpreter,
) -> Result<Vec<LockedWheel>, LockFileError> {
    let tags = Tags::new(&interpreter.target);
    let markers = interpreter.markers()?;
    let mut wheels = Vec::new();
    for package in &lock.packages {
        if package
            .marker
            .as_ref()
            .is_some_and(|m| !m.evaluate(&markers, &[]))
        {
            continue;
        }
        if package.has_sdist_only {
            return Err(LockFileError::SdistOnly {
                name: package.name.to_string(),
                path: path.to_owned(),
            });
        }
        let best = package
            .wheels
            .iter()
            .filter_map(|w| {
                let parsed = WheelFilename::from_str(&w.name).ok()?;
                let (rank, tag) = tags.best(&parsed)?;
                Some((rank, tag.to_string(), w, parsed))
            })
            .min_by_key(|(rank, _, _, _)| *rank);
        let Some((_, tag, wheel, parsed)) = best else {
            return Err(LockFileError::NoWheel {
                name: package.name.to_string(),
                path: path.to_owned(),
                target: interpreter.describe(),
            });
        };
        wheels.push(LockedWheel {
            name: package.name.to_string(),
            version: package
                .version
                .as_ref()
                .unwrap_or(&parsed.version)
                .to_string(),
            url: wheel.url.clone(),
            size: wheel.size,
            sha256: wheel.sha256,
            tag,
        });
    }
    wheels.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(wheels)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockedWheel {
    /// The normalized project name (PEP 503).
    pub name: String,
    pub version: String,
    pub url: String,
    /// `None` when the index did not say (PEP 700 made it optional).
    pub size: Option<u64>,
    pub sha256: Digest,
    /// The best tag the wheel has for the image's interpreter and platform.
    pub tag: String,
}

/// Whether `name` is a project name as PEP 508 spells them (checked where a
/// name enters from a lock a user may edit).
pub fn valid_name(name: &str) -> bool {
    PackageName::from_str(name).is_ok_and(|n| n.as_str() == name)
}

impl LockedWheel {
    /// The wheel's file name, the last segment of its URL.
    pub fn filename(&self) -> &str {
        let path = self.url.split(['?', '#']).next().unwrap_or(&self.url);
        path.rsplit('/').next().unwrap_or(path)
    }

    /// The wheel to fetch, and what it must hash to.
    pub fn download(&self) -> strata_client::fetch::Download {
        strata_client::fetch::Download {
            url: self.url.clone(),
            sha256: self.sha256,
            size: self.size,
        }
    }
}

/// One machine's wheel of one version of a package.
type Use<'a> = (&'a str, &'a LockedWheel);

/// The wheels of every platform as one PEP 751 lock: a package whose version
/// is the same everywhere is one entry listing each platform's wheel; one
/// whose versions differ gets an entry per machine, with a
/// `platform_machine` marker. `platforms` maps `uname -m` names to wheels.
pub fn to_pylock(platforms: &BTreeMap<String, Vec<LockedWheel>>) -> Pylock {
    let mut versions: BTreeMap<&str, BTreeMap<&str, Vec<Use>>> = BTreeMap::new();
    for (machine, wheels) in platforms {
        for wheel in wheels {
            versions
                .entry(&wheel.name)
                .or_default()
                .entry(&wheel.version)
                .or_default()
                .push((machine, wheel));
        }
    }
    let mut packages = Vec::new();
    for (name, by_version) in versions {
        // The lock reader checks names ([`valid_name`]).
        let Ok(name) = PackageName::from_str(name) else {
            continue;
        };
        let split = by_version.len() > 1;
        for (version, uses) in by_version {
            let marker = split.then(|| {
                let machines: Vec<String> = uses
                    .iter()
                    .map(|(machine, _)| format!("platform_machine == '{machine}'"))
                    .collect();
                machines.join(" or ")
            });
            let mut wheels: Vec<PylockWheel> = uses
                .iter()
                .map(|(_, w)| PylockWheel {
                    name: w.filename().to_owned(),
                    url: w.url.clone(),
                    size: w.size,
                    sha256: w.sha256,
                })
                .collect();
            wheels.sort_by(|a, b| a.name.cmp(&b.name));
            wheels.dedup_by(|a, b| a.name == b.name);
            packages.push(PylockPackage {
                name: name.clone(),
                version: Version::from_str(version).ok(),
                marker: marker.and_then(|m| MarkerTree::from_str(&m).ok()),
                index: None,
                wheels,
                has_sdist_only: false,
            });
        }
    }
    Pylock {
        requires_python: None,
        created_by: "strata".to_owned(),
        packages,
    }
}
