//! The lock file: every Debian package an image gets, with its hash, per
//! platform, and the signed repository state it was resolved against.
//!
//! Written next to the recipe (`image.kdl` → `image.lock`), in KDL, sorted,
//! one package per line, so that a review sees exactly what changed. A lock
//! is current when its `inputs` digest matches the recipe's: the base, the
//! platforms, the repositories and the `install` list.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kdl::{KdlDocument, KdlNode, KdlValue};
use miette::{NamedSource, SourceSpan};
use serde::Serialize;

use strata_debian::locked::{LockedPackage, LockedRepository};
use strata_oci::digest::Digest;

use crate::recipe::{DebianSpec, Recipe};

pub const LOCK_VERSION: i128 = 1;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lock {
    pub inputs: Digest,
    pub repositories: Vec<LockedRepository>,
    /// Platform (`linux/amd64`) → packages sorted by name.
    pub platforms: BTreeMap<String, Vec<LockedPackage>>,
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum LockError {
    #[error("cannot read the lock `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the lock `{}`", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the lock is invalid: {message}")]
    #[diagnostic(help(
        "the lock is written by `strata lock`: delete it and run `strata lock` again"
    ))]
    Invalid {
        message: String,
        #[source_code]
        src: NamedSource<Arc<String>>,
        #[label("here")]
        span: SourceSpan,
    },
    #[error("the lock `{}` does not match the recipe", path.display())]
    #[diagnostic(help(
        "`--locked` forbids re-resolving: run `strata lock` and commit the new lock"
    ))]
    Stale { path: PathBuf },
    #[error("the lock has no packages for `{0}`")]
    #[diagnostic(help("run `strata lock` again"))]
    NoPlatform(String),
    #[error("there is no lock `{}`", path.display())]
    #[diagnostic(help("`--locked` needs one: run `strata lock` and commit it"))]
    Missing { path: PathBuf },
}

/// `image.kdl` → `image.lock`.
pub fn path_for(recipe: &Path) -> PathBuf {
    recipe.with_extension("lock")
}

/// What a lock depends on, as hashed into its `inputs`: if any of it
/// changes, the lock is stale.
///
/// These structs are a persisted format: their field names and values are
/// hashed into every committed lock, so they are written out here (never
/// derived from internal types) and change only with [`LOCK_VERSION`]. The
/// fields are listed in `spec/lock.md`.
#[derive(Serialize)]
struct Inputs<'a> {
    lock_version: i128,
    /// The base as the recipe writes it: `scratch`, `oci:PATH@DIGEST`,
    /// `oci-archive:PATH@DIGEST` or a full registry reference.
    base: String,
    platforms: Vec<String>,
    repositories: Vec<RepositoryInputs<'a>>,
    install: Vec<PackageInputs<'a>>,
}

#[derive(Serialize)]
struct RepositoryInputs<'a> {
    url: &'a str,
    suite: &'a str,
    components: &'a [String],
    /// The keyring path as written in the recipe; `None`: Debian's.
    keyring: Option<String>,
}

#[derive(Serialize)]
struct PackageInputs<'a> {
    name: &'a str,
    version: Option<&'a str>,
}

/// The `inputs` digest of a recipe's Debian packages.
pub fn inputs(recipe: &Recipe, debian: &DebianSpec) -> Digest {
    let inputs = Inputs {
        lock_version: LOCK_VERSION,
        base: recipe.base.value.to_string(),
        platforms: recipe
            .platforms
            .iter()
            .map(|p| p.value.to_string())
            .collect(),
        repositories: debian
            .repositories
            .iter()
            .map(|r| RepositoryInputs {
                url: &r.url,
                suite: &r.suite,
                components: &r.components,
                keyring: r.keyring.as_ref().map(|k| k.display().to_string()),
            })
            .collect(),
        install: debian
            .install
            .iter()
            .map(|p| PackageInputs {
                name: &p.name,
                version: p.version.as_deref(),
            })
            .collect(),
    };
    let bytes = strata_oci::json::to_canonical_vec(&inputs)
        .expect("structs of strings, numbers and lists always serialise");
    Digest::of(&bytes)
}

impl Lock {
    pub fn render(&self) -> String {
        let q = quote;
        let mut out =
            String::from("// Written by `strata lock`: commit it; do not edit it by hand.\n");
        let _ = writeln!(out, "lock-version {LOCK_VERSION}");
        let _ = writeln!(out, "inputs {}", q(&self.inputs.to_string()));
        for r in &self.repositories {
            let _ = write!(
                out,
                "repository {} suite={} inrelease={} date={}",
                q(&r.url),
                q(&r.suite),
                q(&r.inrelease.to_string()),
                q(&r.date)
            );
            if let Some(v) = &r.version {
                let _ = write!(out, " version={}", q(v));
            }
            out.push('\n');
        }
        for (platform, packages) in &self.platforms {
            let _ = writeln!(out, "platform {} {{", q(platform));
            for p in packages {
                let _ = writeln!(
                    out,
                    "    package {} version={} architecture={} repository={} path={} size={} sha256={}",
                    q(&p.name),
                    q(&p.version),
                    q(&p.architecture),
                    q(&p.repository),
                    q(&p.path),
                    p.size,
                    q(&p.sha256.to_string())
                );
            }
            out.push_str("}\n");
        }
        out
    }

    pub fn write(&self, path: &Path) -> Result<(), LockError> {
        let text = self.render();
        strata_oci::atomic::write_file(path, |mut file| file.write_all(text.as_bytes())).map_err(
            |source| LockError::Write {
                path: path.to_owned(),
                source,
            },
        )
    }

    /// Reads the lock at `path`, or `None` when there is none.
    pub fn read(path: &Path) -> Result<Option<Lock>, LockError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => Arc::new(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(LockError::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        let invalid = |message: String, span: SourceSpan| LockError::Invalid {
            message,
            src: NamedSource::new(path.display().to_string(), text.clone()),
            span,
        };
        let doc = KdlDocument::parse_v2(&text).map_err(|e| {
            let span = e
                .diagnostics
                .first()
                .map_or(SourceSpan::from(0..0), |d| d.span);
            invalid("not valid KDL".into(), span)
        })?;
        let mut inputs = None;
        let mut repositories = Vec::new();
        let mut platforms = BTreeMap::new();
        for node in doc.nodes() {
            let reader = NodeReader {
                node,
                invalid: &invalid,
            };
            match node.name().value() {
                "lock-version" => {
                    if node.entries().first().and_then(|e| e.value().as_integer())
                        != Some(LOCK_VERSION)
                    {
                        return Err(invalid(
                            format!("this strata reads lock version {LOCK_VERSION}"),
                            node.span(),
                        ));
                    }
                }
                "inputs" => inputs = Some(reader.digest(None)?),
                "repository" => repositories.push(LockedRepository {
                    url: reader.string(None)?,
                    suite: reader.string(Some("suite"))?,
                    inrelease: reader.digest(Some("inrelease"))?,
                    date: reader.string(Some("date"))?,
                    version: reader.optional(Some("version")),
                }),
                "platform" => {
                    let mut packages = Vec::new();
                    for child in node.children().map(|c| c.nodes()).unwrap_or_default() {
                        let r = NodeReader {
                            node: child,
                            invalid: &invalid,
                        };
                        let name = r.string(None)?;
                        if !strata_debian::valid_package_name(&name) {
                            return Err(invalid(
                                format!("`{name}` is not a Debian package name"),
                                child.span(),
                            ));
                        }
                        packages.push(LockedPackage {
                            name,
                            version: r.string(Some("version"))?,
                            architecture: r.string(Some("architecture"))?,
                            repository: r.string(Some("repository"))?,
                            path: r.string(Some("path"))?,
                            size: child
                                .get("size")
                                .and_then(KdlValue::as_integer)
                                .and_then(|s| u64::try_from(s).ok())
                                .ok_or_else(|| {
                                    invalid("`size` must be a number".into(), child.span())
                                })?,
                            sha256: r.digest(Some("sha256"))?,
                        });
                    }
                    platforms.insert(reader.string(None)?, packages);
                }
                other => return Err(invalid(format!("unknown node `{other}`"), node.span())),
            }
        }
        Ok(Some(Lock {
            inputs: inputs
                .ok_or_else(|| invalid("no `inputs` line".into(), SourceSpan::from(0..0)))?,
            repositories,
            platforms,
        }))
    }
}

/// A KDL string, always quoted so that every value reads the same way.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

struct NodeReader<'a, F> {
    node: &'a KdlNode,
    invalid: &'a F,
}

impl<F: Fn(String, SourceSpan) -> LockError> NodeReader<'_, F> {
    fn optional(&self, key: Option<&str>) -> Option<String> {
        let value = match key {
            Some(k) => self.node.get(k),
            None => self
                .node
                .entries()
                .iter()
                .find(|e| e.name().is_none())
                .map(|e| e.value()),
        };
        value.and_then(KdlValue::as_string).map(str::to_owned)
    }

    fn string(&self, key: Option<&str>) -> Result<String, LockError> {
        self.optional(key).ok_or_else(|| {
            (self.invalid)(
                format!(
                    "`{}` needs {}",
                    self.node.name().value(),
                    key.map_or("a value".to_owned(), |k| format!("`{k}=`"))
                ),
                self.node.span(),
            )
        })
    }

    fn digest(&self, key: Option<&str>) -> Result<Digest, LockError> {
        self.string(key)?
            .parse()
            .map_err(|e: strata_oci::digest::ParseDigestError| {
                (self.invalid)(e.to_string(), self.node.span())
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let lock = Lock {
            inputs: Digest::of(b"x"),
            repositories: vec![LockedRepository {
                url: "http://deb.debian.org/debian".into(),
                suite: "bookworm".into(),
                inrelease: Digest::of(b"r"),
                date: "Sat, 11 Jul 2026 10:16:37 UTC".into(),
                version: Some("12.15".into()),
            }],
            platforms: BTreeMap::from([(
                "linux/amd64".into(),
                vec![LockedPackage {
                    name: "curl".into(),
                    version: "7.88.1-10+deb12u14".into(),
                    architecture: "amd64".into(),
                    repository: "http://deb.debian.org/debian".into(),
                    path: "pool/main/c/curl/curl_7.88.1-10+deb12u14_amd64.deb".into(),
                    size: 315_000,
                    sha256: Digest::of(b"deb"),
                }],
            )]),
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("image.lock");
        lock.write(&path).unwrap();
        assert_eq!(Lock::read(&path).unwrap(), Some(lock));
        assert_eq!(Lock::read(&dir.path().join("none.lock")).unwrap(), None);
    }

    #[test]
    fn points_at_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("image.lock");
        std::fs::write(&path, "lock-version 1\ninputs \"sha256:nope\"\n").unwrap();
        let err = Lock::read(&path).unwrap_err();
        assert!(err.to_string().contains("not a sha256 digest"), "{err}");
    }
}
