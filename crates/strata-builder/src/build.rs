//! The pipeline, end to end: recipe → base → assemble → layers → image → blobs.
//! Writing the blobs out is the caller's choice (see `output`).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use std::path::PathBuf;

use crate::assemble::debian::InstallError;
use crate::assemble::{self, AssembleError, Planned};
use crate::base::{self, BaseError, BaseImage};
use crate::image::labels::{self, Provenance};
use crate::image::{self, Blob, BlobSource, ImageError, ImageSpec, ManifestLayer};
use crate::layer::compress::Encoding;
use crate::layer::{self, LayerError};
use crate::lock::{self, Lock, LockError};
use crate::output::{Built, PlatformImage};
use crate::provenance::{self, EpochError};
use crate::recipe::{DebianSpec, Recipe};
use crate::sbom;
use crate::stage;
use strata_cache::Cache;
use strata_client::fetch::Fetcher;
use strata_debian::solve::{Installed, Request};
use strata_oci::path::ImagePath;
use strata_oci::platform::Platform;
use strata_oci::reference::{Tag, TagError};

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum BuildError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Base(#[from] BaseError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Assemble(#[from] AssembleError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Layer(#[from] LayerError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Epoch(#[from] EpochError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Debian(#[from] strata_debian::DebianError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Install(#[from] InstallError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Python(#[from] assemble::python::PythonError),
    #[error("cannot write the image's SBOM")]
    Sbom(#[source] sbom::SbomError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Tag(#[from] TagError),
    #[error("`--cache` needs the network, and `--offline` forbids it")]
    #[diagnostic(help(
        "drop `--cache` to build from the local cache alone, or `--offline` to use the registry cache"
    ))]
    OfflineSharedCache,
    #[error("the recipe does not build `{platform}`")]
    #[diagnostic(help("`--platform` picks one of the recipe's platforms: {listed}"))]
    NotAPlatform { platform: String, listed: String },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Registry(#[from] strata_registry::RegistryError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Shared(#[from] layer::shared::SharedCacheError),
}

pub struct BuildOptions {
    pub compression: Encoding,
    /// Tags besides the recipe's version.
    pub tags: Vec<String>,
    /// Where the recipe's lock lives (`image.lock` beside `image.kdl`).
    pub lock_path: PathBuf,
    /// A missing or stale lock is an error instead of being re-resolved.
    pub locked: bool,
    /// Use the cache only: no network at all.
    pub offline: bool,
    /// Credentials and TLS for registry bases.
    pub registry: strata_registry::Options,
    /// The SBOM to attach to the image, if any.
    pub sbom: Option<sbom::Format>,
    /// A registry repository that layers are shared through
    /// (`--cache REGISTRY/REPO`), and whether what it gives is rebuilt and
    /// compared (`--verify-cache`).
    pub shared_cache: Option<String>,
    pub verify_cache: bool,
    /// Build only this one of the recipe's platforms (`--platform`).
    pub platform: Option<Platform>,
    /// Layers found in the registry cache stay there (the image is only
    /// pushed, to that registry: `--format none`).
    pub lazy_layers: bool,
}

impl BuildOptions {
    /// The defaults for the recipe at `recipe_path`: gzip, no extra tags,
    /// the lock beside the recipe, network allowed, an SPDX SBOM.
    pub fn new(recipe_path: &std::path::Path, registry: strata_registry::Options) -> BuildOptions {
        BuildOptions {
            compression: Encoding::default(),
            tags: Vec::new(),
            lock_path: lock::path_for(recipe_path),
            locked: false,
            offline: false,
            registry,
            sbom: Some(sbom::Format::Spdx),
            shared_cache: None,
            verify_cache: false,
            platform: None,
            lazy_layers: false,
        }
    }
}

/// Every platform's base, pulled or read once per build.
fn bases(
    recipe: &Recipe,
    options: &BuildOptions,
    cache: &Cache,
) -> Result<Vec<(Platform, BaseImage)>, BuildError> {
    let sources = base::Sources::new(cache, &options.registry, options.offline);
    if let Some(only) = &options.platform
        && !recipe.platforms.iter().any(|p| &p.value == only)
    {
        return Err(BuildError::NotAPlatform {
            platform: only.to_string(),
            listed: recipe
                .platforms
                .iter()
                .map(|p| p.value.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    let mut bases = Vec::new();
    for platform in recipe.platforms.iter().filter(|p| {
        options
            .platform
            .as_ref()
            .is_none_or(|only| &p.value == only)
    }) {
        bases.push((
            platform.value.clone(),
            base::resolve(recipe, &platform.value, &sources)?,
        ));
    }
    Ok(bases)
}

/// The lock's `inputs` for the recipe: its Debian part, and the `python`
/// block's requirements as read from their files.
fn lock_inputs(recipe: &Recipe) -> Result<strata_oci::digest::Digest, BuildError> {
    let python = match &recipe.python {
        Some(python) => {
            let reqs = assemble::python::requirements(recipe, python)?;
            let text = |r: &strata_pypi::resolve::Request| {
                let mut line = r.requirement.to_string();
                for hash in &r.hashes {
                    line.push_str(&format!(" --hash={hash}"));
                }
                line
            };
            let lock_file = match &python.lock_file {
                Some(file) => {
                    let path = recipe.context.join(&file.value);
                    let bytes = std::fs::read(&path).map_err(|source| {
                        assemble::python::PythonError::ReadLockFile { path, source }
                    })?;
                    Some(strata_oci::digest::Digest::of(&bytes).to_string())
                }
                None => None,
            };
            Some(lock::PythonInputs {
                requirements: reqs.requests.iter().map(text).collect(),
                constraints: reqs.constraints.iter().map(text).collect(),
                pre: reqs.pre,
                indexes: python.indexes.clone(),
                lock_file,
            })
        }
        None => None,
    };
    Ok(lock::inputs(recipe, python))
}

/// The lock to build from: the one on disk when it matches the recipe, else
/// a fresh resolution of the Debian packages (the Python ones are resolved
/// per platform once the interpreter is known), written beside the recipe
/// only once the build succeeds (never with `--locked`).
fn current_lock(
    recipe: &Recipe,
    bases: &[(Platform, BaseImage)],
    options: &BuildOptions,
    fetcher: &Fetcher,
    force: bool,
) -> Result<(Lock, bool), BuildError> {
    let path = &options.lock_path;
    let inputs = lock_inputs(recipe)?;
    let on_disk = Lock::read(path)?;
    let exists = on_disk.is_some();
    let on_disk = match on_disk {
        Some(lock) if lock.inputs == inputs && !force => {
            tracing::info!(lock = %path.display(), "the lock matches the recipe");
            return Ok((lock, false));
        }
        other => other,
    };
    tracing::info!(lock = %path.display(), exists, "the lock is missing or stale");
    if options.locked {
        return Err(if exists {
            LockError::Stale { path: path.clone() }
        } else {
            LockError::Missing { path: path.clone() }
        }
        .into());
    }
    let mut lock = match &recipe.debian {
        Some(debian) => resolve_debian(recipe, debian, bases, fetcher)?,
        None => Lock {
            inputs,
            repositories: Vec::new(),
            platforms: bases
                .iter()
                .map(|(p, _)| (p.to_string(), Vec::new()))
                .collect(),
            accounts: BTreeMap::new(),
            wheels: BTreeMap::new(),
        },
    };
    lock.inputs = inputs;
    // System accounts keep the ids the old lock recorded.
    lock.accounts = on_disk.map(|old| old.accounts).unwrap_or_default();
    Ok((lock, true))
}

/// Resolves the recipe's packages afresh and writes the lock (`strata lock`).
/// With a `python` block, the image is planned (not written) so that the
/// wheels are resolved for the interpreter its packages install.
pub fn lock(
    recipe: &Recipe,
    options: &BuildOptions,
    cache: &Cache,
) -> Result<Option<Lock>, BuildError> {
    if recipe.debian.is_none() && recipe.python.is_none() {
        return Ok(None);
    }
    if recipe.python.is_some() {
        let prepared = prepare(
            recipe,
            options,
            cache,
            0,
            &mut Timings::default(),
            Purpose::Lock,
            None,
        )?;
        let Some((mut lock, _)) = prepared.lock else {
            return Ok(None);
        };
        Recorded::of(prepared.platforms.iter().map(|(_, p, _)| p)).apply(&mut lock);
        lock.write(&options.lock_path)?;
        return Ok(Some(lock));
    }
    let bases = bases(recipe, options, cache)?;
    let fetcher = fetcher(recipe, cache, options)?;
    let (mut lock, _) = current_lock(recipe, &bases, options, &fetcher, true)?;
    // Accounts are recorded by builds; a new lock keeps the old lock's.
    if let Some(old) = Lock::read(&options.lock_path)? {
        lock.accounts = old.accounts;
    }
    lock.write(&options.lock_path)?;
    Ok(Some(lock))
}

/// The downloader for packages and indexes, with the credentials of
/// mirrors and indexes behind a login.
fn fetcher(recipe: &Recipe, cache: &Cache, options: &BuildOptions) -> Result<Fetcher, BuildError> {
    let mut credentials = strata_client::credentials::Credentials::from_env()
        .map_err(assemble::python::PythonError::from)?;
    let debian = recipe.debian.iter().flat_map(|d| &d.logins);
    let python = recipe.python.iter().flat_map(|p| &p.logins);
    for login in debian.chain(python) {
        credentials.add_login(&login.url, login.basic.clone());
    }
    Ok(
        Fetcher::new(cache.clone(), options.offline, options.registry.timeouts)
            .map_err(strata_debian::DebianError::from)?
            .with_credentials(credentials),
    )
}

/// What planning decided for the lock, per platform: the system accounts
/// its packages' scripts created, and its wheels.
struct Recorded {
    accounts: BTreeMap<String, Vec<lock::LockedAccount>>,
    wheels: BTreeMap<String, Vec<strata_pypi::locked::LockedWheel>>,
}

impl Recorded {
    fn of<'a>(planned: impl Iterator<Item = &'a Planned> + Clone) -> Recorded {
        Recorded {
            accounts: planned
                .clone()
                .filter(|p| !p.created_accounts.is_empty())
                .map(|p| (p.platform.to_string(), p.created_accounts.clone()))
                .collect(),
            wheels: planned
                .filter(|p| !p.wheels.is_empty())
                .map(|p| (p.platform.to_string(), p.wheels.clone()))
                .collect(),
        }
    }

    fn apply(self, lock: &mut Lock) {
        lock.accounts = self.accounts;
        lock.wheels = self.wheels;
    }
}

/// The Debian packages of the libraries manylinux wheels expect from the
/// system beyond glibc and the Essential set (`libgcc-s1`).
const MANYLINUX_SYSTEM_PACKAGES: &[&str] = &["libstdc++6"];

fn resolve_debian(
    recipe: &Recipe,
    debian: &DebianSpec,
    bases: &[(Platform, BaseImage)],
    fetcher: &Fetcher,
) -> Result<Lock, BuildError> {
    let installed: Vec<(Platform, Vec<Installed>)> = bases
        .iter()
        .map(|(p, b)| (p.clone(), strata_debian::installed(b.lower.dpkg_status())))
        .collect();
    let mut requests: Vec<Request> = debian
        .install
        .iter()
        .map(|p| Request {
            name: p.name.clone(),
            version: p.version.clone(),
        })
        .collect();
    // manylinux wheels may link the C++ runtime (PEP 600's policy lets them
    // expect it from the system), and the Essential set lacks it: every
    // Debian image pip users know has it through apt.
    if recipe.python.is_some() {
        for name in MANYLINUX_SYSTEM_PACKAGES {
            if !requests.iter().any(|r| r.name == *name) {
                requests.push(Request {
                    name: (*name).to_owned(),
                    version: None,
                });
            }
        }
    }
    let step = strata_progress::get().step("resolve", "Debian packages");
    let resolution = strata_debian::resolve(
        &debian.repositories,
        &requests,
        debian.essential,
        &recipe.context,
        &installed,
        fetcher,
    )?;
    let count: usize = resolution.platforms.values().map(Vec::len).sum();
    step.finish(&format!("{count} locked"));
    Ok(Lock {
        inputs: lock::inputs(recipe, None),
        repositories: resolution.repositories,
        platforms: resolution.platforms,
        accounts: BTreeMap::new(),
        wheels: BTreeMap::new(),
    })
}

/// The phases a build reports the time of (`build --json`'s `timings`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    Base,
    Resolve,
    Packages,
    Assemble,
    Layers,
    Sbom,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Base => "base",
            Phase::Resolve => "resolve",
            Phase::Packages => "packages",
            Phase::Assemble => "assemble",
            Phase::Layers => "layers",
            Phase::Sbom => "sbom",
        }
    }
}

/// Time spent per phase, summed over platforms; phases that did not run are
/// absent.
#[derive(Debug, Clone, Default)]
pub struct Timings(BTreeMap<Phase, Duration>);

impl Timings {
    /// Runs `f`, adding its time to `phase`.
    fn time<T>(&mut self, phase: Phase, f: impl FnOnce() -> T) -> T {
        let started = Instant::now();
        let out = f();
        *self.0.entry(phase).or_default() += started.elapsed();
        out
    }

    pub fn iter(&self) -> impl Iterator<Item = (Phase, Duration)> + '_ {
        self.0.iter().map(|(p, d)| (*p, *d))
    }
}

fn plan_platform(
    recipe: &Recipe,
    platform: &Platform,
    base: &BaseImage,
    packages: Option<(&Fetcher, &Lock, bool)>,
    epoch: u64,
    timings: &mut Timings,
    stage: &mut Stage,
) -> Result<Planned, BuildError> {
    let mut lower = base.lower.clone();
    let mut plans = Vec::new();
    let mut facts = Vec::new();
    let mut unevaluated = Vec::new();
    let mut created_accounts = Vec::new();
    let mut wheels = Vec::new();
    let mut venv = None;
    let mut stage_files = Vec::new();
    let recorded = match stage {
        Stage::Recorded(recorded) => recorded.output.take(),
        _ => None,
    };
    if let (Some(output), Some((_, lock, _))) = (recorded, packages) {
        lower.view = output.view;
        for (path, text) in output.files {
            if let Ok(path) = ImagePath::from_relative(&path) {
                lower.files.insert(path, text);
            }
        }
        facts = output.packages;
        created_accounts = output.created;
        venv = output.venv;
        wheels = lock
            .wheels
            .get(&platform.to_string())
            .cloned()
            .unwrap_or_default();
        strata_progress::get()
            .step("install", format!("packages for {platform}"))
            .finish("recorded");
    } else if let Some((fetcher, lock, _)) = packages {
        let step = strata_progress::get().step("install", format!("packages for {platform}"));
        let time = stage::time(lock, epoch);
        let installed = timings.time(Phase::Packages, || {
            assemble::debian::layer(recipe, lock, platform, &lower, fetcher, time)
        })?;
        if let Some(installed) = installed {
            for plan in &installed.plans {
                lower.view.apply(plan);
            }
            for (path, text) in &installed.accounts {
                if let Ok(path) = ImagePath::from_relative(path) {
                    lower.files.insert(path, text.clone());
                }
            }
            stage_files = installed.accounts;
            plans.extend(installed.plans);
            facts = installed.packages;
            unevaluated = installed.unevaluated;
            created_accounts = installed.created;
        }
        step.finish("");
    }
    if let (Some(python), Some((fetcher, lock, fresh)), false) = (
        &recipe.python,
        packages,
        matches!(stage, Stage::Recorded(_)),
    ) {
        let mut versions: HashMap<String, String> = base_packages(base)
            .into_iter()
            .map(|p| (p.name, p.version))
            .collect();
        versions.extend(
            facts
                .iter()
                .map(|f| (f.locked.name.clone(), f.locked.version.clone())),
        );
        let interpreter =
            assemble::python::interpreter(&lower.view, &versions, &base_env(base), platform)?;
        let chosen = match lock.wheels.get(&platform.to_string()) {
            Some(locked) if !fresh => locked.clone(),
            // A current lock whose requirements all have false markers here.
            None if !fresh => Vec::new(),
            _ => timings.time(Phase::Resolve, || {
                assemble::python::lock_wheels(recipe, python, &interpreter, fetcher)
            })?,
        };
        let step =
            strata_progress::get().step("install", format!("Python packages for {platform}"));
        let installed = timings.time(Phase::Packages, || {
            assemble::python::layers(
                python,
                &interpreter,
                chosen,
                &mut lower.view,
                fetcher,
                stage::time(lock, epoch),
            )
        })?;
        plans.extend(installed.layers);
        wheels = installed.wheels;
        venv = installed.venv;
        step.finish("");
    }
    if let Stage::Planned(planned) = stage {
        planned.after = Some(After {
            view: lower.view.clone(),
            files: stage_files,
            layers: plans.len(),
        });
    }
    let assembly = timings.time(Phase::Assemble, || {
        assemble::assemble(recipe, &lower, epoch)
    })?;
    let mut view = lower.view;
    for plan in &assembly.layers {
        view.apply(plan);
    }
    plans.extend(assembly.layers);
    Ok(Planned {
        platform: platform.clone(),
        plans,
        user: assembly.user,
        packages: facts,
        unevaluated,
        created_accounts,
        wheels,
        venv,
        view,
        base: base.name.clone().zip(base.digest),
        base_packages: base_packages(base),
    })
}

fn base_packages(base: &BaseImage) -> Vec<strata_debian::BasePackage> {
    strata_debian::base_packages(base.lower.dpkg_status())
}

/// The base config's `Env`, as name and value.
fn base_env(base: &BaseImage) -> Vec<(String, String)> {
    base.config
        .as_ref()
        .and_then(|c| c.config().as_ref())
        .and_then(|c| c.env().as_ref())
        .into_iter()
        .flatten()
        .map(|v| {
            let (k, val) = v.split_once('=').unwrap_or((v, ""));
            (k.to_owned(), val.to_owned())
        })
        .collect()
}

/// Everything a build decides before it writes anything: every platform's
/// base and planned layers, and the lock (with whether it was resolved
/// afresh, and so is still to be written).
struct Prepared {
    platforms: Vec<(BaseImage, Planned, Stage)>,
    lock: Option<(Lock, bool)>,
    /// Package files the registry cache lacks, published after the build.
    unshared: Vec<layer::shared::PackageFile>,
}

/// What a `prepare` is for: a lock resolves afresh, and only a build uses
/// the records of package stages (lint looks at every planned entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Build,
    Lock,
    Lint,
}

/// How a platform's package stage is had (see `crate::stage`).
enum Stage {
    /// Not recorded: no packages, or not a build.
    None,
    /// From a record: its layers are built already.
    Recorded(Box<RecordedStage>),
    /// Planned by this build, and recorded once its layers are built.
    Planned(Box<PlannedStage>),
}

struct PlannedStage {
    inputs: stage::Inputs,
    /// The registry cache's record, with `--verify-cache`: compared.
    remote: Option<stage::Record>,
    /// Filled in by planning.
    after: Option<After>,
}

impl Stage {
    fn planned(inputs: stage::Inputs, remote: Option<stage::Record>) -> Stage {
        Stage::Planned(Box::new(PlannedStage {
            inputs,
            remote,
            after: None,
        }))
    }
}

struct RecordedStage {
    record: stage::Record,
    /// What planning takes from it, until it does.
    output: Option<stage::Output>,
    layers: Vec<layer::Built>,
    /// Found in the local cache only: the registry cache gets it too.
    publish: bool,
}

/// The image once a planned stage is applied over the base.
struct After {
    view: strata_oci::view::View,
    /// The account files the packages wrote (path, text).
    files: Vec<(String, String)>,
    /// How many of the platform's layers are the stage's.
    layers: usize,
}

/// The stage `inputs` name, from the local cache's record or the registry
/// cache's (its blobs downloaded and checked, or left there for a push-only
/// build); else to be planned.
fn find_stage(
    inputs: stage::Inputs,
    lock: &Lock,
    platform: &Platform,
    cache: &Cache,
    shared: Option<&layer::shared::SharedCache>,
    options: &BuildOptions,
) -> Result<Stage, BuildError> {
    let verify = shared.is_some_and(|s| s.verify);
    let key = inputs.key();
    if !verify && let Some(record) = stage::Record::cached(cache, &inputs) {
        let layers = record
            .layers
            .iter()
            .map(|l| layer::Built::found(l.blob.clone(), cache.blob_path(&l.blob.digest), false))
            .collect();
        if let Ok(output) = record.output(lock, platform) {
            let publish = match shared {
                Some(shared) => !shared.has_stage(&key)?,
                None => false,
            };
            return Ok(Stage::Recorded(Box::new(RecordedStage {
                record,
                output: Some(output),
                layers,
                publish,
            })));
        }
    }
    let Some(shared) = shared else {
        return Ok(Stage::planned(inputs, None));
    };
    let ignored = |why: &str| {
        strata_progress::get().println(format!(
            "warning: {platform}: the package stage `{}` in `{}` is ignored: {why}",
            layer::shared::SharedCache::stage_tag(&key),
            shared.name()
        ));
    };
    let record = match shared.lookup_stage(&key, cache)? {
        layer::shared::StageEntry::Missing => return Ok(Stage::planned(inputs, None)),
        layer::shared::StageEntry::Foreign(why) => {
            ignored(&why);
            return Ok(Stage::planned(inputs, None));
        }
        layer::shared::StageEntry::Found(bytes) => match stage::Record::parse(&bytes, &inputs) {
            Ok(record) => record,
            Err(why) => {
                ignored(&why);
                return Ok(Stage::planned(inputs, None));
            }
        },
    };
    if verify {
        return Ok(Stage::planned(inputs, Some(record)));
    }
    let output = match record.output(lock, platform) {
        Ok(output) => output,
        Err(why) => {
            ignored(&why);
            return Ok(Stage::planned(inputs, None));
        }
    };
    let mut layers = Vec::new();
    for l in &record.layers {
        if options.lazy_layers {
            layers.push(layer::Built::lazy(l.blob.clone()));
            continue;
        }
        let local = cache.verified_blob(&l.blob.digest);
        let fetched = local.is_none();
        let path = match local {
            Some(path) => path,
            None => {
                let step = strata_progress::get().step("fetch", l.name.clone());
                match shared.fetch(&l.blob, cache) {
                    Ok(path) => {
                        step.finish(&strata_progress::size(l.blob.size));
                        path
                    }
                    Err(e) => {
                        ignored(&format!("its layer `{}`: {}", l.name, layer::causes(&e)));
                        return Ok(Stage::planned(inputs, None));
                    }
                }
            }
        };
        layers.push(layer::Built::found(l.blob.clone(), path, fetched));
    }
    if !options.lazy_layers {
        record.write(cache).map_err(LayerError::from)?;
    }
    Ok(Stage::Recorded(Box::new(RecordedStage {
        record,
        output: Some(output),
        layers,
        publish: false,
    })))
}

/// Records a stage this build planned, once its layers are built: in the
/// local cache, and in the registry cache when it lacks it. With
/// `--verify-cache`, a registry record that differs is an error.
fn record_stage(
    stage: Stage,
    planned: &Planned,
    built: &[layer::Built],
    cache: &Cache,
    shared: Option<&layer::shared::SharedCache>,
) -> Result<(), BuildError> {
    let (record, layers, remote) = match stage {
        Stage::None => return Ok(()),
        Stage::Recorded(recorded) => {
            if !recorded.publish {
                return Ok(());
            }
            (recorded.record, recorded.layers, None)
        }
        Stage::Planned(stage) => {
            let PlannedStage {
                inputs,
                remote,
                after,
            } = *stage;
            let Some(After {
                view,
                files,
                layers: count,
            }) = after
            else {
                return Ok(());
            };
            let layers: Vec<stage::Layer> = planned.plans[..count]
                .iter()
                .zip(built)
                .map(|(plan, built)| stage::Layer {
                    name: plan.name.clone(),
                    created_by: plan.created_by.clone(),
                    blob: built.blob.clone(),
                })
                .collect();
            // Keyed by what the lock says once written: a lock resolved
            // afresh learns its accounts and wheels from planning.
            let inputs = inputs.planned(planned);
            let record = stage::Record::new(inputs, layers, &view, files, planned);
            (record, built[..count].to_vec(), remote)
        }
    };
    if let (Some(shared), Some(remote)) = (shared, &remote)
        && remote.layers != record.layers
    {
        let at = (0..)
            .find(|&i| record.layers.get(i) != remote.layers.get(i))
            .unwrap_or(0);
        return Err(layer::shared::SharedCacheError::StageMismatch {
            repository: shared.name(),
            platform: planned.platform.to_string(),
            layer: record
                .layers
                .get(at)
                .or(remote.layers.get(at))
                .map_or_else(String::new, |l| l.name.clone()),
            tag: layer::shared::SharedCache::stage_tag(&record.key()),
        }
        .into());
    }
    if layers.iter().all(|l| !l.lazy) {
        record.write(cache).map_err(LayerError::from)?;
    }
    if let Some(shared) = shared.filter(|_| remote.is_none()) {
        let blobs: Vec<(&layer::LayerBlob, &std::path::PathBuf)> =
            layers.iter().map(|l| (&l.blob, &l.path)).collect();
        shared.publish_stage(&record.key(), &record.to_json(), &blobs)?;
    }
    Ok(())
}

/// Adds a stage record's findings to those of the layers after it.
fn merge(
    into: &mut BTreeMap<String, Vec<String>>,
    recorded: Option<&BTreeMap<String, Vec<String>>>,
) {
    for (missing, users) in recorded.into_iter().flatten() {
        let all = into.entry(missing.clone()).or_default();
        all.extend(users.iter().cloned());
        all.sort();
        all.dedup();
    }
}

fn prepare(
    recipe: &Recipe,
    options: &BuildOptions,
    cache: &Cache,
    epoch: u64,
    timings: &mut Timings,
    purpose: Purpose,
    shared: Option<&layer::shared::SharedCache>,
) -> Result<Prepared, BuildError> {
    let force = purpose == Purpose::Lock;
    let bases = timings.time(Phase::Base, || bases(recipe, options, cache))?;
    let packages = if recipe.debian.is_some() || recipe.python.is_some() {
        Some(timings.time(Phase::Resolve, || {
            let fetcher = fetcher(recipe, cache, options)?;
            let lock = current_lock(recipe, &bases, options, &fetcher, force)?;
            Ok::<_, BuildError>((fetcher, lock))
        })?)
    } else {
        None
    };
    // The stages' records first: packages are fetched only for a stage that
    // none gives.
    let mut found = Vec::new();
    for (platform, base) in &bases {
        found.push(match &packages {
            Some((_, (lock, fresh))) if purpose == Purpose::Build => {
                match stage::Inputs::of(
                    recipe,
                    lock,
                    platform,
                    base.digest.as_ref(),
                    stage::time(lock, epoch),
                    options.compression,
                ) {
                    Some(inputs) if !fresh => {
                        find_stage(inputs, lock, platform, cache, shared, options)?
                    }
                    Some(inputs) => Stage::planned(inputs, None),
                    None => Stage::None,
                }
            }
            _ => Stage::None,
        });
    }
    let unshared = match (shared, &packages) {
        (Some(shared), Some((_, (lock, _))))
            if !found.iter().all(|s| matches!(s, Stage::Recorded(_))) =>
        {
            shared.fetch_packages(&package_files(lock), cache)?
        }
        _ => Vec::new(),
    };
    let mut platforms = Vec::new();
    for ((platform, base), mut stage) in bases.into_iter().zip(found) {
        let fetched = packages.as_ref().map(|(f, (l, fresh))| (f, l, *fresh));
        let planned = plan_platform(
            recipe, &platform, &base, fetched, epoch, timings, &mut stage,
        )?;
        platforms.push((base, planned, stage));
    }
    Ok(Prepared {
        platforms,
        lock: packages.map(|(_, lock)| lock),
        unshared,
    })
}

/// What rebuilding the recipe from its lock reads from outside: the lock's
/// package files and the blobs of a registry base, each once, all in the
/// local cache (downloaded when missing). `strata cache export` archives
/// these. The lock must be current.
pub fn locked_inputs(
    recipe: &Recipe,
    options: &BuildOptions,
    cache: &Cache,
) -> Result<Vec<layer::shared::PackageFile>, BuildError> {
    let bases = bases(recipe, options, cache)?;
    let mut files = Vec::new();
    if recipe.debian.is_some() || recipe.python.is_some() {
        let fetcher = fetcher(recipe, cache, options)?;
        let (lock, _) = current_lock(recipe, &bases, options, &fetcher, false)?;
        let downloads: Vec<strata_client::fetch::Download> = lock
            .platforms
            .values()
            .flatten()
            .map(|p| p.download())
            .chain(lock.wheels.values().flatten().map(|w| w.download()))
            .collect();
        fetcher
            .fetch_all(&downloads)
            .map_err(strata_debian::DebianError::from)?;
        files = package_files(&lock);
    }
    if let Some(digest) = registry_base(recipe) {
        let cached =
            |f: &layer::shared::PackageFile| Ok::<_, BuildError>(cache.verified_blob(&f.sha256));
        files.extend(base::blobs(&digest, cached)?);
    }
    Ok(files)
}

/// The pinned digest of the recipe's base, when it comes from a registry.
pub fn registry_base(recipe: &Recipe) -> Option<strata_oci::digest::Digest> {
    match &recipe.base.value {
        crate::recipe::BaseRef::Registry(reference) => reference.digest,
        _ => None,
    }
}

/// The package files of the recipe's lock, which must be current; read
/// without the network (what `strata cache import` brings in).
pub fn locked_packages(
    recipe: &Recipe,
    options: &BuildOptions,
) -> Result<Vec<layer::shared::PackageFile>, BuildError> {
    if recipe.debian.is_none() && recipe.python.is_none() {
        return Ok(Vec::new());
    }
    let path = &options.lock_path;
    match Lock::read(path)? {
        Some(lock) if lock.inputs == lock_inputs(recipe)? => Ok(package_files(&lock)),
        Some(_) => Err(LockError::Stale { path: path.clone() }.into()),
        None => Err(LockError::Missing { path: path.clone() }.into()),
    }
}

/// The lock's package files, each once: what the registry cache shares.
fn package_files(lock: &Lock) -> Vec<layer::shared::PackageFile> {
    let mut files: BTreeMap<strata_oci::digest::Digest, layer::shared::PackageFile> =
        BTreeMap::new();
    for package in lock.platforms.values().flatten() {
        files.insert(
            package.sha256,
            layer::shared::PackageFile {
                sha256: package.sha256,
                size: package.size,
                media_type: "application/vnd.debian.binary-package".to_owned(),
            },
        );
    }
    for wheel in lock.wheels.values().flatten() {
        files.insert(wheel.sha256, wheel_file(wheel));
    }
    files.into_values().collect()
}

fn wheel_file(wheel: &strata_pypi::locked::LockedWheel) -> layer::shared::PackageFile {
    layer::shared::PackageFile {
        sha256: wheel.sha256,
        size: wheel.size.unwrap_or(0),
        media_type: "application/zip".to_owned(),
    }
}

/// Everything a build would write, per platform, without writing it: the
/// bases, the lock (resolved when there is none, but never written) and the
/// planned layers. `strata lint` looks at these.
pub fn plan(
    recipe: &Recipe,
    options: &BuildOptions,
    cache: &Cache,
) -> Result<Vec<(BaseImage, Planned)>, BuildError> {
    Ok(prepare(
        recipe,
        options,
        cache,
        0,
        &mut Timings::default(),
        Purpose::Lint,
        None,
    )?
    .platforms
    .into_iter()
    .map(|(base, planned, _)| (base, planned))
    .collect())
}

/// Per-layer facts for reports.
#[derive(Debug, Clone)]
pub struct LayerReport {
    pub name: String,
    pub blob: layer::LayerBlob,
    /// Not compressed by this build: from the local or the registry cache.
    pub cached: bool,
    /// Downloaded from the registry cache.
    pub fetched: bool,
    /// Left in the registry cache, for the push to mount.
    pub lazy: bool,
}

pub struct BuildReport {
    pub built: Built,
    /// The lock used, and whether this build (re)wrote it.
    pub lock: Option<(Lock, bool)>,
    pub layers: Vec<LayerReport>,
    pub timings: Timings,
    /// What each platform's layers hold (for the SBOM).
    pub planned: Vec<Planned>,
}

/// The build's tags: the recipe's version first, then `--tag`s, once each.
fn tags(recipe: &Recipe, options: &BuildOptions) -> Result<Vec<String>, BuildError> {
    let mut tags: Vec<String> = Vec::new();
    for tag in std::iter::once(&recipe.tag().to_owned()).chain(&options.tags) {
        tag.parse::<Tag>()?;
        if !tags.contains(tag) {
            tags.push(tag.clone());
        }
    }
    Ok(tags)
}

pub fn build(
    recipe: &Recipe,
    options: &BuildOptions,
    cache: &Cache,
) -> Result<BuildReport, BuildError> {
    let tags = tags(recipe, options)?;
    // Checked before any work: a wrong repository is an error at once.
    let client = match &options.shared_cache {
        Some(_) if options.offline => return Err(BuildError::OfflineSharedCache),
        Some(_) => Some(strata_registry::Client::new(options.registry.clone())?),
        None => None,
    };
    let shared = match (&client, &options.shared_cache) {
        (Some(client), Some(repository)) => Some(layer::shared::SharedCache::new(
            client,
            repository,
            options.verify_cache,
        )?),
        _ => None,
    };
    let epoch = provenance::epoch(&recipe.context)?;
    let provenance = Provenance {
        created: provenance::rfc3339(epoch),
        revision: provenance::revision(&recipe.context),
        ..Provenance::default()
    };
    let mut timings = Timings::default();
    let prepared = prepare(
        recipe,
        options,
        cache,
        epoch,
        &mut timings,
        Purpose::Build,
        shared.as_ref(),
    )?;
    // Say at once what cannot start: without the Essential set, programs
    // whose interpreter is missing; with wheels, modules whose libraries are.
    for (_, planned, stage) in &prepared.platforms {
        let recorded = match stage {
            Stage::Recorded(recorded) => Some(&recorded.record),
            _ => None,
        };
        let mut warnings = Vec::new();
        if recipe.debian.as_ref().is_some_and(|d| !d.essential) {
            let mut missing = assemble::interpreters::missing(&planned.plans, &planned.view);
            merge(&mut missing, recorded.map(|r| &r.interpreters));
            for (interpreter, files) in missing {
                warnings.push((
                    assemble::interpreters::describe(&interpreter, &files),
                    "STR016",
                ));
            }
        }
        if recipe.python.is_some() {
            let mut missing =
                assemble::libraries::missing(&planned.plans, &planned.view, &planned.platform);
            merge(&mut missing, recorded.map(|r| &r.libraries));
            for (soname, modules) in missing {
                warnings.push((assemble::libraries::describe(&soname, &modules), "STR017"));
            }
        }
        for (warning, rule) in warnings {
            strata_progress::get().println(format!(
                "warning: {}: {warning} (`strata lint`: {rule})",
                planned.platform
            ));
        }
    }

    let mut blobs: BTreeMap<String, Blob> = BTreeMap::new();
    let mut images = Vec::new();
    let mut reports = Vec::new();
    let mut planned_all = Vec::new();
    for (base, planned, stage) in prepared.platforms {
        let layers = timings.time(Phase::Layers, || {
            let (layers, built) = write_layers(
                &planned,
                &stage,
                options,
                cache,
                shared.as_ref(),
                &mut blobs,
                &mut reports,
            )?;
            record_stage(stage, &planned, &built, cache, shared.as_ref())?;
            Ok::<_, BuildError>(layers)
        })?;
        images.push(platform_image(
            recipe,
            &base,
            &planned,
            layers,
            &provenance,
            &mut blobs,
        )?);
        planned_all.push(planned);
    }

    let top = match images.as_slice() {
        [one] => image::platform_descriptor(&one.manifest, &one.platform)?,
        many => {
            let manifests: Vec<_> = many
                .iter()
                .map(|i| (i.manifest.clone(), i.platform.clone()))
                .collect();
            let index = image::index(&manifests, &labels::oci_annotations(recipe, &provenance))?;
            blobs.insert(index.digest.hex(), Blob::json(&index));
            index.descriptor()
        }
    };
    let mut referrers = Vec::new();
    if let Some(format) = options.sbom {
        referrers.push(timings.time(Phase::Sbom, || {
            attach_sbom(
                recipe,
                format,
                &planned_all,
                &top,
                &provenance.created,
                cache,
                &mut blobs,
            )
        })?);
    }
    let referrers_index = (!referrers.is_empty()).then(|| {
        let index = crate::sbom::artifact::referrers_index(&referrers);
        blobs.insert(index.digest.hex(), Blob::json(&index));
        index.digest
    });
    if let Some(shared) = &shared {
        let mut files = prepared.unshared;
        // A lock resolved afresh learned its wheels while planning.
        if prepared.lock.as_ref().is_some_and(|(_, fresh)| *fresh) {
            files.extend(planned_all.iter().flat_map(|p| &p.wheels).map(wheel_file));
        }
        let published = shared.publish_packages(&files, cache)?;
        tracing::info!(published, repository = %shared.name(), "package files shared");
    }
    // A fresh lock is written only once the whole build has succeeded; so
    // is a lock that lacks the ids system accounts got (unless `--locked`).
    let mut prepared_lock = prepared.lock;
    if let Some((lock, fresh)) = &mut prepared_lock {
        let recorded = Recorded::of(planned_all.iter());
        if *fresh || (!options.locked && lock.accounts != recorded.accounts) {
            recorded.apply(lock);
            lock.write(&options.lock_path)?;
            *fresh = true;
        }
    }
    Ok(BuildReport {
        lock: prepared_lock,
        built: Built {
            blobs: blobs.into_values().collect(),
            top,
            tags,
            images,
            referrers,
            referrers_index,
            epoch,
        },
        layers: reports,
        timings,
        planned: planned_all,
    })
}

/// A platform's layers with their history lines, and its planned layers as
/// built.
type Written = (Vec<(ManifestLayer, String)>, Vec<layer::Built>);

/// Compresses one platform's layers (or finds them in the cache) into
/// `blobs`, after the layers of its recorded package stage, if any; returns
/// each layer with its history line, and the planned layers as built.
fn write_layers(
    planned: &Planned,
    stage: &Stage,
    options: &BuildOptions,
    cache: &Cache,
    shared: Option<&layer::shared::SharedCache>,
    blobs: &mut BTreeMap<String, Blob>,
    reports: &mut Vec<LayerReport>,
) -> Result<Written, BuildError> {
    let mut layers = Vec::new();
    let mut add = |name: &str, created_by: &str, built: &layer::Built| {
        tracing::info!(
            layer = %name,
            digest = %built.blob.digest,
            size = built.blob.size,
            cached = built.cached,
            "layer"
        );
        blobs.insert(
            built.blob.digest.hex(),
            Blob {
                digest: built.blob.digest,
                size: built.blob.size,
                source: match shared.filter(|_| built.lazy) {
                    Some(shared) => BlobSource::Registry(shared.reference().clone()),
                    None => BlobSource::File(built.path.clone()),
                },
            },
        );
        layers.push((ManifestLayer::from(&built.blob), created_by.to_owned()));
        reports.push(LayerReport {
            name: name.to_owned(),
            blob: built.blob.clone(),
            cached: built.cached,
            fetched: built.fetched,
            lazy: built.lazy,
        });
    };
    if let Stage::Recorded(recorded) = stage {
        for (layer, built) in recorded.record.layers.iter().zip(&recorded.layers) {
            add(&layer.name, &layer.created_by, built);
        }
    }
    // The SBOM lists the files of the layers after the package stage's.
    let listed_from = match stage {
        Stage::Planned(planned) => planned.after.as_ref().map_or(0, |a| a.layers),
        _ => 0,
    };
    let built_all = layer::build_all(
        &planned.plans,
        options.compression,
        cache,
        shared,
        options.lazy_layers,
        listed_from,
    )?;
    for (plan, built) in planned.plans.iter().zip(&built_all) {
        add(&plan.name, &plan.created_by, built);
    }
    Ok((layers, built_all))
}

/// One platform's config and manifest over its base's layers and `layers`,
/// into `blobs` with the base's layer blobs.
fn platform_image(
    recipe: &Recipe,
    base: &BaseImage,
    planned: &Planned,
    layers: Vec<(ManifestLayer, String)>,
    provenance: &Provenance,
    blobs: &mut BTreeMap<String, Blob>,
) -> Result<PlatformImage, BuildError> {
    for (layer, path) in &base.layers {
        blobs.insert(
            layer.digest.hex(),
            Blob {
                digest: layer.digest,
                size: layer.size,
                source: BlobSource::File(path.clone()),
            },
        );
    }
    let provenance = Provenance {
        base_name: base.name.clone(),
        base_digest: base.digest.map(|d| d.to_string()),
        ..provenance.clone()
    };
    let annotations = labels::oci_annotations(recipe, &provenance);
    let base_labels = base
        .config
        .as_ref()
        .and_then(|c| c.config().as_ref())
        .and_then(|c| c.labels().as_ref());
    let config_labels = labels::labels(recipe, base_labels, &annotations);
    let base_layers: Vec<ManifestLayer> = base.layers.iter().map(|(l, _)| l.clone()).collect();
    let image = image::image(&ImageSpec {
        platform: &planned.platform,
        base_config: base.config.as_ref(),
        base_layers: &base_layers,
        layers: &layers,
        user: planned.user.as_deref(),
        venv: planned.venv.as_deref(),
        runtime: &recipe.runtime,
        tre: recipe.tre,
        created: &provenance.created,
        labels: &config_labels,
        annotations: &annotations,
    })?;
    for json in [&image.config, &image.manifest] {
        blobs.insert(json.digest.hex(), Blob::json(json));
    }
    let mut all_layers = base_layers;
    all_layers.extend(layers.into_iter().map(|(l, _)| l));
    Ok(PlatformImage {
        platform: planned.platform.clone(),
        config: image.config,
        manifest: image.manifest,
        layers: all_layers,
    })
}

/// Writes the SBOM and its artifact manifest into `blobs`; returns the
/// artifact's descriptor for `index.json`.
fn attach_sbom(
    recipe: &Recipe,
    format: sbom::Format,
    planned: &[Planned],
    top: &oci_spec::image::Descriptor,
    created: &str,
    cache: &Cache,
    blobs: &mut BTreeMap<String, Blob>,
) -> Result<oci_spec::image::Descriptor, BuildError> {
    let media_type = format.media_type();
    let image =
        strata_oci::layout::descriptor_digest(top).expect("strata's own digests are sha256");
    let inventory =
        sbom::Inventory::new(recipe, planned, image, created, cache).map_err(BuildError::Sbom)?;
    let document = inventory.render(format);
    let manifest =
        sbom::artifact::manifest(top, media_type, &document, format.file_name(), created);
    for blob in [
        Blob::bytes(document),
        Blob::bytes(sbom::artifact::EMPTY_CONFIG.to_vec()),
        Blob::json(&manifest),
    ] {
        blobs.insert(blob.digest.hex(), blob);
    }
    Ok(sbom::artifact::descriptor(&manifest, media_type))
}
