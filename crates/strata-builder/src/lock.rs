//! The lock file: every Debian package an image gets, with its hash, per
//! platform, the signed repository state it was resolved against, and the
//! ids of the system accounts the packages' scripts created.
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

use miette::SourceSpan;
use serde::Serialize;

use strata_client::credentials::split_login;
use strata_debian::locked::{LockedPackage, LockedRepository};
use strata_oci::digest::Digest;
use strata_pypi::locked::LockedWheel;

use crate::recipe::document;
use crate::recipe::node::{Node, Source};
use crate::recipe::{Excerpt, Recipe, Spanned};

pub const LOCK_VERSION: i128 = 1;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lock {
    pub inputs: Digest,
    pub repositories: Vec<LockedRepository>,
    /// Platform (`linux/amd64`) → packages sorted by name.
    pub platforms: BTreeMap<String, Vec<LockedPackage>>,
    /// Platform → the system accounts the packages' scripts created, with
    /// the ids they got: later builds give them the same ids, whatever
    /// packages are added.
    pub accounts: BTreeMap<String, Vec<LockedAccount>>,
    /// Platform → the Python wheels, sorted by name.
    pub wheels: BTreeMap<String, Vec<LockedWheel>>,
}

/// A system user (`uid` set) or group a package's script created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockedAccount {
    pub name: String,
    pub uid: Option<u32>,
    pub gid: u32,
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
        src: Excerpt,
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
    /// Whether the Essential set is resolved too (`essential #false`).
    essential: bool,
    /// The `python` block's requirements; absent without one, so that the
    /// locks of recipes without Python keep their digest.
    #[serde(skip_serializing_if = "Option::is_none")]
    python: Option<PythonInputs>,
}

/// What a `python` block's resolution depends on: every requirement as
/// read (files included), its hashes, the indexes, or the lock file's digest.
#[derive(Serialize)]
pub struct PythonInputs {
    pub requirements: Vec<String>,
    pub constraints: Vec<String>,
    pub pre: bool,
    pub indexes: Vec<String>,
    pub lock_file: Option<String>,
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

/// The `inputs` digest of a recipe's packages.
pub fn inputs(recipe: &Recipe, python: Option<PythonInputs>) -> Digest {
    let (repositories, install, essential) = match &recipe.debian {
        Some(d) => (&d.repositories[..], &d.install[..], d.essential),
        None => (&[][..], &[][..], false),
    };
    let inputs = Inputs {
        lock_version: LOCK_VERSION,
        base: recipe.base.value.to_string(),
        platforms: recipe
            .platforms
            .iter()
            .map(|p| p.value.to_string())
            .collect(),
        repositories: repositories
            .iter()
            .map(|r| RepositoryInputs {
                url: &r.url,
                suite: &r.suite,
                components: &r.components,
                keyring: r.keyring.as_ref().map(|k| k.display().to_string()),
            })
            .collect(),
        install: install
            .iter()
            .map(|p| PackageInputs {
                name: &p.name,
                version: p.version.as_deref(),
            })
            .collect(),
        essential,
        python,
    };
    let bytes = strata_oci::json::to_canonical_vec(&inputs)
        .expect("structs of strings, numbers and lists always serialise");
    Digest::of(&bytes)
}

impl Lock {
    /// The Python wheels of every platform as a PEP 751 `pylock.toml`.
    pub fn to_pylock(&self) -> String {
        let machines = self
            .wheels
            .iter()
            .map(|(platform, wheels)| {
                let machine = platform
                    .parse::<strata_oci::platform::Platform>()
                    .ok()
                    .and_then(|p| {
                        strata_pypi::interpreter::machine(&p.architecture, p.variant.as_deref())
                    })
                    .unwrap_or(platform);
                (machine.to_owned(), wheels.clone())
            })
            .collect();
        strata_pypi::pylock::write_pylock(&strata_pypi::locked::to_pylock(&machines))
    }

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
        let platforms: std::collections::BTreeSet<&String> =
            self.platforms.keys().chain(self.wheels.keys()).collect();
        for platform in platforms {
            let _ = writeln!(out, "platform {} {{", q(platform));
            for p in self.platforms.get(platform).into_iter().flatten() {
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
            for w in self.wheels.get(platform).into_iter().flatten() {
                let _ = write!(
                    out,
                    "    wheel {} version={} url={}",
                    q(&w.name),
                    q(&w.version),
                    q(&w.url)
                );
                if let Some(size) = w.size {
                    let _ = write!(out, " size={size}");
                }
                let _ = writeln!(
                    out,
                    " sha256={} tag={}",
                    q(&w.sha256.to_string()),
                    q(&w.tag)
                );
            }
            for a in self.accounts.get(platform).into_iter().flatten() {
                match a.uid {
                    Some(uid) => {
                        let _ = writeln!(out, "    user {} uid={uid} gid={}", q(&a.name), a.gid);
                    }
                    None => {
                        let _ = writeln!(out, "    group {} gid={}", q(&a.name), a.gid);
                    }
                }
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
        match std::fs::read(path) {
            Ok(bytes) => Lock::decode(path, bytes).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(LockError::Read {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// Decodes `bytes` as the lock at `path`.
    pub fn decode(path: &Path, bytes: Vec<u8>) -> Result<Lock, LockError> {
        let src = document::text(bytes, |text| LockSource {
            path: path.to_owned(),
            text,
        })?;
        let doc = document::parse(&src, &src.text)?;
        let mut inputs = None;
        let mut repositories = Vec::new();
        let mut platforms = BTreeMap::new();
        let mut accounts = BTreeMap::new();
        let mut wheels = BTreeMap::new();
        for node in doc.nodes() {
            let reader = Node { node, src: &src };
            match reader.name() {
                "lock-version" => {
                    if node.entries().first().and_then(|e| e.value().as_integer())
                        != Some(LOCK_VERSION)
                    {
                        return Err(src.invalid(
                            format!("this strata reads lock version {LOCK_VERSION}"),
                            node.span(),
                        ));
                    }
                }
                "inputs" => inputs = Some(src.digest(&reader.single_string("digest")?)?),
                "repository" => repositories.push(LockedRepository {
                    // Locks written before logins were taken out of URLs
                    // may hold one: it is dropped, never carried on.
                    url: split_login(&reader.single_string("URL")?.value).0,
                    suite: reader.required_prop_string("suite")?.value,
                    inrelease: src.digest(&reader.required_prop_string("inrelease")?)?,
                    date: reader.required_prop_string("date")?.value,
                    version: reader.prop_string("version")?.map(|v| v.value),
                }),
                "platform" => {
                    let mut packages = Vec::new();
                    let mut created = Vec::new();
                    let mut python = Vec::new();
                    for child in node.children().map(|c| c.nodes()).unwrap_or_default() {
                        let child = Node {
                            node: child,
                            src: &src,
                        };
                        match child.name() {
                            "user" | "group" => created.push(src.account(&child)?),
                            "wheel" => python.push(src.wheel(&child)?),
                            _ => packages.push(src.package(&child)?),
                        }
                    }
                    let platform = reader.single_string("platform")?.value;
                    if !created.is_empty() {
                        accounts.insert(platform.clone(), created);
                    }
                    if !python.is_empty() {
                        wheels.insert(platform.clone(), python);
                    }
                    platforms.insert(platform, packages);
                }
                other => {
                    return Err(src.invalid(format!("unknown node `{other}`"), node.span()));
                }
            }
        }
        Ok(Lock {
            inputs: inputs
                .ok_or_else(|| src.invalid("no `inputs` line".into(), SourceSpan::from(0..0)))?,
            repositories,
            platforms,
            accounts,
            wheels,
        })
    }
}

/// A lock's text, for errors that point into it.
struct LockSource {
    path: PathBuf,
    text: Arc<String>,
}

impl LockSource {
    fn invalid(&self, message: String, span: SourceSpan) -> LockError {
        let (src, span) = Excerpt::new(self.path.display().to_string(), self.text.clone(), span);
        LockError::Invalid { message, src, span }
    }

    fn digest(&self, value: &Spanned<String>) -> Result<Digest, LockError> {
        value
            .parse()
            .map_err(|e: strata_oci::digest::ParseDigestError| {
                self.invalid(e.to_string(), value.span)
            })
    }

    /// `user "NAME" uid=N gid=N` or `group "NAME" gid=N`.
    fn account(&self, r: &Node<'_, LockSource>) -> Result<LockedAccount, LockError> {
        let name = r.single_string("account name")?.value;
        let missing =
            |what: &str| self.invalid(format!("`{}` needs `{what}=`", r.name()), r.node.span());
        let gid = r.prop_u32("gid")?.ok_or_else(|| missing("gid"))?;
        let uid = match r.name() {
            "user" => Some(r.prop_u32("uid")?.ok_or_else(|| missing("uid"))?),
            _ => None,
        };
        Ok(LockedAccount { name, uid, gid })
    }

    /// `wheel "NAME" version= url= size= sha256= tag=`.
    fn wheel(&self, r: &Node<'_, LockSource>) -> Result<LockedWheel, LockError> {
        let size = match r.prop("size") {
            None => None,
            Some(e) => Some(
                e.value()
                    .as_integer()
                    .and_then(|s| u64::try_from(s).ok())
                    .ok_or_else(|| self.invalid("`size` must be a number".into(), e.span()))?,
            ),
        };
        let name = r.single_string("wheel name")?;
        if !strata_pypi::locked::valid_name(&name) {
            return Err(self.invalid(
                format!("`{}` is not a normalized Python project name", name.value),
                name.span,
            ));
        }
        Ok(LockedWheel {
            name: name.value,
            version: r.required_prop_string("version")?.value,
            url: split_login(&r.required_prop_string("url")?.value).0,
            size,
            sha256: self.digest(&r.required_prop_string("sha256")?)?,
            tag: r.required_prop_string("tag")?.value,
        })
    }

    fn package(&self, r: &Node<'_, LockSource>) -> Result<LockedPackage, LockError> {
        let name = r.single_string("package name")?;
        if !strata_debian::valid_package_name(&name) {
            return Err(self.invalid(
                format!("`{}` is not a Debian package name", name.value),
                name.span,
            ));
        }
        let size = r.prop("size");
        Ok(LockedPackage {
            name: name.value,
            version: r.required_prop_string("version")?.value,
            architecture: r.required_prop_string("architecture")?.value,
            repository: r.required_prop_string("repository")?.value,
            path: r.required_prop_string("path")?.value,
            size: size
                .and_then(|e| e.value().as_integer())
                .and_then(|s| u64::try_from(s).ok())
                .ok_or_else(|| {
                    let span = size.map_or(r.node.span(), |e| e.span());
                    self.invalid("`size` must be a number".into(), span)
                })?,
            sha256: self.digest(&r.required_prop_string("sha256")?)?,
        })
    }
}

/// Lock errors carry their own help (run `strata lock` again), so the
/// reader's label and help lines are not kept.
impl Source for LockSource {
    type Error = LockError;
    const NAME: &str = "lock";

    fn error(
        &self,
        span: SourceSpan,
        message: impl Into<String>,
        _label: impl Into<String>,
        _help: impl Into<Option<String>>,
    ) -> LockError {
        self.invalid(message.into(), span)
    }

    fn position(&self, span: SourceSpan) -> String {
        crate::recipe::position(&self.text, span)
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
            accounts: BTreeMap::from([(
                "linux/amd64".into(),
                vec![
                    LockedAccount {
                        name: "messagebus".into(),
                        uid: Some(100),
                        gid: 102,
                    },
                    LockedAccount {
                        name: "_ssh".into(),
                        uid: None,
                        gid: 101,
                    },
                ],
            )]),
            wheels: BTreeMap::from([(
                "linux/amd64".into(),
                vec![LockedWheel {
                    name: "six".into(),
                    version: "1.17.0".into(),
                    url: "https://files.pythonhosted.org/packages/b7/ce/six-1.17.0-py2.py3-none-any.whl".into(),
                    size: Some(11_050),
                    sha256: Digest::of(b"whl"),
                    tag: "py3-none-any".into(),
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
