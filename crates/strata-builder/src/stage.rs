//! A platform's package stage, recorded under a key from the lock alone.
//!
//! Installing the locked packages is most of a build: download, unpack,
//! lay out as dpkg would, compile byte-code, split into layers and compress
//! them. What comes out depends only on the lock's packages and wheels, the
//! base, the recipe's `debian` and `python` settings, the lock's release
//! time ([`time`]) and the compression: [`Inputs`] names all of them, and their hash is the stage's
//! key. A build whose lock is current looks the key up (in the local cache,
//! then in the registry cache) before it fetches a single package; a record
//! gives the stage's layers as built blobs, and what the rest of the build
//! needs from the stage: the filesystem view, the account files, the
//! packages' licences and the warnings its programs gave.
//!
//! A record carries its own inputs, and one whose inputs differ from the
//! build's is not used: a record copied under another key is caught. Its
//! blobs are checked against their digests and `diff_id`s when they are
//! downloaded. That a record's blobs are what building its inputs gives is
//! trusted because the record comes from the local cache or from the
//! repository the user named; `--verify-cache` builds the stage and
//! compares (`spec/cache.md`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::assemble::Planned;
use crate::layer::LayerBlob;
use crate::layer::compress::Encoding;
use crate::lock::{Lock, LockedAccount};
use crate::recipe::Recipe;
use strata_cache::Cache;
use strata_debian::facts::PackageFacts;
use strata_oci::digest::Digest;
use strata_oci::path::ImagePath;
use strata_oci::platform::Platform;
use strata_oci::view::{View, ViewEntry, ViewKind};
use strata_pypi::locked::LockedWheel;

/// Bumped whenever what a stage writes changes for the same inputs (a new
/// layout rule, a new byte-code step), so that older records are not used.
const FORMAT: u32 = 1;

/// The cache's records of stages, by key.
const RECORDS: &str = "stages";

/// The time of a stage's entries that the packages do not date themselves
/// (their dpkg records, byte-code, folders): the newest release the lock
/// was resolved against, or the build's epoch when that is earlier. A new
/// commit of the recipe's checkout moves the epoch, not the lock: the
/// package layers stay the same bytes until the lock changes.
pub fn time(lock: &Lock, epoch: u64) -> u64 {
    lock.repositories
        .iter()
        .filter_map(|r| r.released())
        .max()
        .map_or(epoch, |released| released.min(epoch))
}

/// Everything a package stage's output depends on: the key's preimage, and
/// part of the record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inputs {
    format: u32,
    strata: String,
    platform: String,
    /// The base's manifest digest; `None` for scratch.
    base: Option<String>,
    /// The lock's `inputs`: the recipe's packages, repositories and
    /// requirements.
    lock_inputs: String,
    /// `name version architecture sha256`, in the lock's order.
    packages: Vec<String>,
    /// `suite version` of each repository.
    repositories: Vec<String>,
    /// `name uid gid` of the system accounts the lock records.
    accounts: Vec<String>,
    /// `name version sha256` of each wheel.
    wheels: Vec<String>,
    debian: Option<DebianInputs>,
    venv: Option<String>,
    /// [`time`]: the entries' time.
    time: u64,
    compression: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct DebianInputs {
    suite: String,
    keep_docs: bool,
    bytecode: bool,
    layers: u32,
    answers: BTreeMap<String, String>,
    /// `path sha256` of each site CA certificate.
    certificates: Vec<String>,
    /// `name uid gid home shell` of each declared system user.
    users: Vec<String>,
}

impl Inputs {
    /// The inputs of `platform`'s stage; `None` when the recipe installs
    /// nothing, or a site certificate cannot be read (the stage itself
    /// reports that).
    pub fn of(
        recipe: &Recipe,
        lock: &Lock,
        platform: &Platform,
        base: Option<&Digest>,
        time: u64,
        compression: Encoding,
    ) -> Option<Inputs> {
        if recipe.debian.is_none() && recipe.python.is_none() {
            return None;
        }
        let key = platform.to_string();
        let debian = match &recipe.debian {
            Some(d) => Some(DebianInputs {
                suite: d.suite.value.clone(),
                keep_docs: d.keep_docs,
                bytecode: d.bytecode,
                layers: d.layers,
                answers: d.debconf_answers(),
                certificates: d
                    .ca_certificates
                    .iter()
                    .map(|c| {
                        std::fs::read(recipe.context.join(&c.value))
                            .ok()
                            .map(|bytes| format!("{} {}", c.value, Digest::of(&bytes)))
                    })
                    .collect::<Option<_>>()?,
                users: recipe
                    .system_users
                    .iter()
                    .map(|u| {
                        format!(
                            "{} {} {} {} {}",
                            u.name.value, u.uid, u.gid, u.home, u.shell
                        )
                    })
                    .collect(),
            }),
            None => None,
        };
        Some(Inputs {
            format: FORMAT,
            strata: env!("CARGO_PKG_VERSION").to_owned(),
            platform: key.clone(),
            base: base.map(Digest::to_string),
            lock_inputs: lock.inputs.to_string(),
            packages: lock
                .platforms
                .get(&key)
                .into_iter()
                .flatten()
                .map(|p| format!("{} {} {} {}", p.name, p.version, p.architecture, p.sha256))
                .collect(),
            repositories: lock
                .repositories
                .iter()
                .map(|r| format!("{} {}", r.suite, r.version.as_deref().unwrap_or("")))
                .collect(),
            accounts: accounts(lock.accounts.get(&key).into_iter().flatten()),
            wheels: wheels(lock.wheels.get(&key).into_iter().flatten()),
            debian,
            venv: recipe
                .python
                .as_ref()
                .and_then(|p| p.venv.as_ref())
                .map(ImagePath::to_string),
            time,
            compression: compression.to_string(),
        })
    }

    /// These inputs with the accounts and wheels planning chose: what the
    /// lock says once the build writes it.
    pub fn planned(mut self, planned: &Planned) -> Inputs {
        self.accounts = accounts(&planned.created_accounts);
        self.wheels = wheels(&planned.wheels);
        self
    }

    pub fn key(&self) -> Digest {
        Digest::of(
            &strata_oci::json::to_canonical_vec(self)
                .expect("structs of strings, numbers and lists always serialise"),
        )
    }
}

/// `name uid gid` of each account, sorted: the lock and planning may list
/// them in different orders.
fn accounts<'a>(all: impl IntoIterator<Item = &'a LockedAccount>) -> Vec<String> {
    sorted(all, |a| format!("{} {:?} {}", a.name, a.uid, a.gid))
}

/// `name version sha256` of each wheel, sorted.
fn wheels<'a>(all: impl IntoIterator<Item = &'a LockedWheel>) -> Vec<String> {
    sorted(all, |w| format!("{} {} {}", w.name, w.version, w.sha256))
}

fn sorted<T>(all: impl IntoIterator<Item = T>, line: impl Fn(T) -> String) -> Vec<String> {
    let mut out: Vec<String> = all.into_iter().map(line).collect();
    out.sort();
    out
}

/// One of the stage's layers, as built.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layer {
    pub name: String,
    pub created_by: String,
    pub blob: LayerBlob,
}

/// A path of the view: `[path, kind, mode, uid, gid, target]`, kind one of
/// `d f l o`. An array rather than an object: a large image's view has
/// tens of thousands of paths, and field names would double the record.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ViewPath(String, char, u32, u32, u32, Option<String>);

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Account {
    name: String,
    uid: Option<u32>,
    gid: u32,
}

/// The persisted record of a stage.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    inputs: Inputs,
    pub layers: Vec<Layer>,
    /// The filesystem once the stage's layers are applied over the base.
    view: Vec<ViewPath>,
    /// The account files the packages wrote (path, text).
    files: Vec<(String, String)>,
    /// Each locked package's name and licences, in the lock's order.
    licenses: Vec<(String, Vec<String>)>,
    created: Vec<Account>,
    venv: Option<String>,
    /// Missing interpreter → the stage's programs that need it.
    pub interpreters: BTreeMap<String, Vec<String>>,
    /// Missing library → the stage's modules that need it.
    pub libraries: BTreeMap<String, Vec<String>>,
}

/// What the rest of a build takes from a stage.
pub struct Output {
    pub view: View,
    pub files: Vec<(String, String)>,
    pub packages: Vec<PackageFacts>,
    pub created: Vec<LockedAccount>,
    pub venv: Option<String>,
}

impl Record {
    /// The record of a stage just built: `layers` are its layers' blobs, and
    /// `view` and `files` what the base looked like after it.
    pub fn new(
        inputs: Inputs,
        layers: Vec<Layer>,
        view: &View,
        files: Vec<(String, String)>,
        planned: &Planned,
    ) -> Record {
        let stage = &planned.plans[..layers.len()];
        Record {
            inputs,
            view: view
                .paths()
                .map(|(path, e)| {
                    let (kind, target) = match &e.kind {
                        ViewKind::Dir => ('d', None),
                        ViewKind::File => ('f', None),
                        ViewKind::Symlink(t) => ('l', Some(t.clone())),
                        ViewKind::Other => ('o', None),
                    };
                    ViewPath(path.as_str().to_owned(), kind, e.mode, e.uid, e.gid, target)
                })
                .collect(),
            files,
            licenses: planned
                .packages
                .iter()
                .map(|p| (p.locked.name.clone(), p.licenses.clone()))
                .collect(),
            created: planned
                .created_accounts
                .iter()
                .map(|a| Account {
                    name: a.name.clone(),
                    uid: a.uid,
                    gid: a.gid,
                })
                .collect(),
            venv: planned.venv.clone(),
            interpreters: crate::assemble::interpreters::missing(stage, &planned.view),
            libraries: crate::assemble::libraries::missing(stage, &planned.view, &planned.platform),
            layers,
        }
    }

    /// A record read back, when it is the record of `inputs`.
    pub fn parse(bytes: &[u8], inputs: &Inputs) -> Result<Record, String> {
        let record: Record =
            serde_json::from_slice(bytes).map_err(|e| format!("it is not a stage record ({e})"))?;
        if &record.inputs != inputs {
            return Err("it was recorded for other inputs".to_owned());
        }
        Ok(record)
    }

    pub fn to_json(&self) -> Vec<u8> {
        // Plain structs of strings, numbers and maps with string keys.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The local cache's record of `inputs`, when every blob it names is
    /// there too.
    pub fn cached(cache: &Cache, inputs: &Inputs) -> Option<Record> {
        let record: Record = cache.read_record(RECORDS, &inputs.key())?;
        (&record.inputs == inputs
            && record
                .layers
                .iter()
                .all(|l| cache.verified_blob(&l.blob.digest).is_some()))
        .then_some(record)
    }

    pub fn write(&self, cache: &Cache) -> Result<(), strata_cache::CacheError> {
        cache.write_record(RECORDS, &self.inputs.key(), self)
    }

    pub fn key(&self) -> Digest {
        self.inputs.key()
    }

    /// What the build takes from the stage, over `lock`'s packages.
    pub fn output(&self, lock: &Lock, platform: &Platform) -> Result<Output, String> {
        let locked = lock
            .platforms
            .get(&platform.to_string())
            .map_or(&[][..], Vec::as_slice);
        if locked.len() != self.licenses.len()
            || locked
                .iter()
                .zip(&self.licenses)
                .any(|(l, (name, _))| &l.name != name)
        {
            return Err("it lists other packages than the lock".to_owned());
        }
        let mut view = Vec::with_capacity(self.view.len());
        for ViewPath(path, kind, mode, uid, gid, target) in &self.view {
            let kind = match (kind, target) {
                ('d', None) => ViewKind::Dir,
                ('f', None) => ViewKind::File,
                ('l', Some(t)) => ViewKind::Symlink(t.clone()),
                ('o', None) => ViewKind::Other,
                _ => return Err(format!("its path `{path}` has no kind")),
            };
            let path =
                ImagePath::from_relative(path).map_err(|e| format!("its path `{path}`: {e}"))?;
            view.push((
                path,
                ViewEntry {
                    kind,
                    mode: *mode,
                    uid: *uid,
                    gid: *gid,
                },
            ));
        }
        Ok(Output {
            view: view.into_iter().collect(),
            files: self.files.clone(),
            packages: locked
                .iter()
                .zip(&self.licenses)
                .map(|(locked, (_, licenses))| PackageFacts {
                    locked: locked.clone(),
                    licenses: licenses.clone(),
                })
                .collect(),
            created: self
                .created
                .iter()
                .map(|a| LockedAccount {
                    name: a.name.clone(),
                    uid: a.uid,
                    gid: a.gid,
                })
                .collect(),
            venv: self.venv.clone(),
        })
    }
}
