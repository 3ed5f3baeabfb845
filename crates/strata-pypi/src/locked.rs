//! A wheel as the lock records it: enough to fetch and verify it again with
//! no index at all.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use strata_oci::digest::Digest;

use crate::filename::WheelFilename;
use crate::interpreter::{Interpreter, InterpreterError};
use crate::pylock::Pylock;
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
                Some((tags.rank(&parsed)?, w, parsed))
            })
            .min_by_key(|(rank, _, _)| *rank);
        let Some((rank, wheel, parsed)) = best else {
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
            tag: tags
                .iter()
                .nth(rank)
                .map(ToString::to_string)
                .unwrap_or_default(),
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

impl LockedWheel {
    /// The wheel's file name, the last segment of its URL.
    pub fn filename(&self) -> &str {
        let path = self.url.split(['?', '#']).next().unwrap_or(&self.url);
        path.rsplit('/').next().unwrap_or(path)
    }
}
