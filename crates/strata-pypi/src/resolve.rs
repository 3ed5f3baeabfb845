//! Resolution of Python requirements to one wheel per package, for the
//! image's interpreter and platform, with a real SAT solver (resolvo, as for
//! Debian).
//!
//! How PyPI maps onto resolvo: every project is a name whose candidates are
//! its versions that have a compatible wheel; `name[extra]` is a name of its
//! own whose candidate at version V depends on `name == V` plus the
//! requirements the extra adds (the approach of pip's and uv's resolvers).
//! Versions that exist but cannot be used (no compatible wheel, yanked,
//! `Requires-Python`, a pre-release) are given to the solver as excluded,
//! with the reason, so that an unsolvable request explains itself.
//! Metadata is fetched lazily, for the versions the solver looks at, and the
//! pages of a package's dependencies are fetched in parallel as soon as its
//! metadata is known.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use resolvo::utils::Pool;
use resolvo::{
    Candidates, Condition, ConditionId, ConditionalRequirement, Dependencies, DependencyProvider,
    Interner, KnownDependencies, NameId, Problem, Requirement as SolverRequirement, SolvableId,
    Solver, SolverCache, StringId, UnsolvableOrCancelled, VersionSetId, VersionSetUnionId,
};
use strata_oci::digest::Digest;
use uv_normalize::{ExtraName, PackageName};
use uv_pep440::{Version, VersionSpecifiers};
use uv_pep508::{MarkerEnvironment, Requirement, VersionOrUrl};

use crate::client::{Client, ClientError};
use crate::filename::{self, WheelFilename};
use crate::index::DistFile;
use crate::interpreter::{Interpreter, InterpreterError};
use crate::locked::LockedWheel;
use crate::tags::{Tag, Tags};

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ResolveError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Client(#[from] ClientError),
    #[error("no index has a project `{name}` (required by {origin})")]
    #[diagnostic(help("check the spelling, and the recipe's `index` lines"))]
    NotFound { name: String, origin: String },
    #[error("the Python requirements cannot be installed together:\n{explanation}")]
    #[diagnostic(help(
        "relax a pin named above, or pick versions that agree; `uv pip compile` shows the same conflict"
    ))]
    Unsolvable { explanation: String },
    #[error("the solver stopped after {steps} steps without finding versions that fit together")]
    #[diagnostic(help(
        "the requirements leave too many versions open: pin the packages named in the recipe (`name==version`), or add a constraints file with the versions `uv pip compile` picks"
    ))]
    TooHard { steps: u64 },
    #[error(
        "`{name}` has no wheel for this image ({target}); it is required by {chain}\n{found}\nstrata looked for these tags, best first: {tags}"
    )]
    #[diagnostic(help(
        "strata installs wheels only (building an sdist would run code): pin a version that has a wheel for this platform, use a base with a newer glibc or another Python, or drop the package"
    ))]
    NoWheel {
        name: String,
        target: String,
        chain: String,
        found: String,
        tags: String,
    },
    #[error("no wheel of `{name}` matches the hashes given for it ({origin})")]
    #[diagnostic(help(
        "the hashes must be the sha256 of wheels the index lists for this platform: regenerate them (`uv pip compile --generate-hashes`)"
    ))]
    HashMismatch { name: String, origin: String },
    #[error("`{name}` has no `--hash` while other requirements do")]
    #[diagnostic(help(
        "with hashes, every package must be pinned with its hashes, as pip's --require-hashes says: add `{name}==VERSION --hash=sha256:…`"
    ))]
    Unhashed { name: String },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Interpreter(#[from] InterpreterError),
    #[error("the index `{index}` gives no sha256 for `{file}`")]
    #[diagnostic(help(
        "strata locks every wheel by its sha256: use an index that lists hashes (PEP 691 `hashes`)"
    ))]
    NoHash { file: String, index: String },
    #[error("`{requirement}` (from {origin}) names a URL, not a version")]
    #[diagnostic(help("strata installs from indexes only: publish the wheel to an index"))]
    Url { requirement: String, origin: String },
}

/// A requirement and where it was written.
#[derive(Debug, Clone)]
pub struct Request {
    pub requirement: Requirement,
    /// `--hash=sha256:…` pins: the wheel must be one of these.
    pub hashes: Vec<Digest>,
    /// `requirements.txt:3`, `the recipe`: for messages.
    pub origin: String,
}

/// What the solver decides for one package.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub name: PackageName,
    pub version: Version,
    /// The wheel picked: the best-ranked compatible one of that version.
    pub file: DistFile,
    /// The index the project's page came from.
    pub index: String,
    /// The tag the wheel was picked for (its best for this target).
    pub tag: Tag,
}

/// The target's facts the solver needs.
pub struct Environment<'a> {
    pub tags: &'a Tags,
    pub markers: &'a MarkerEnvironment,
    pub python: &'a Version,
    /// `cp311-manylinux_2_36_x86_64`: for messages.
    pub description: String,
    /// Whether pre-releases may be picked for every package (`--pre`).
    pub pre: bool,
}

/// Resolves `requests` for `interpreter` and its platform into lock entries.
pub fn lock(
    client: &Client<'_>,
    interpreter: &Interpreter,
    requests: &[Request],
    constraints: &[Request],
    pre: bool,
) -> Result<Vec<LockedWheel>, ResolveError> {
    let tags = Tags::new(&interpreter.target);
    let markers = interpreter.markers()?;
    let python = interpreter.version()?;
    let env = Environment {
        tags: &tags,
        markers: &markers,
        python: &python,
        description: interpreter.describe(),
        pre,
    };
    let resolved = resolve(client, requests, constraints, &env)?;
    resolved
        .into_iter()
        .map(|r| {
            let sha256 = r.file.sha256.ok_or_else(|| ResolveError::NoHash {
                file: r.file.filename.clone(),
                index: r.index.clone(),
            })?;
            Ok(LockedWheel {
                name: r.name.to_string(),
                version: r.version.to_string(),
                url: r.file.url,
                size: r.file.size,
                sha256,
                tag: r.tag.to_string(),
            })
        })
        .collect()
}

/// Resolves `requests` (markers evaluated for the target) under
/// `constraints`; returns one wheel per package, sorted by name.
pub fn resolve(
    client: &Client<'_>,
    requests: &[Request],
    constraints: &[Request],
    env: &Environment<'_>,
) -> Result<Vec<Resolved>, ResolveError> {
    let active: Vec<&Request> = requests
        .iter()
        .filter(|r| r.requirement.evaluate_markers(env.markers, &[]))
        .collect();
    for r in active.iter().copied().chain(constraints) {
        if let Some(VersionOrUrl::Url(_)) = &r.requirement.version_or_url {
            return Err(ResolveError::Url {
                requirement: r.requirement.to_string(),
                origin: r.origin.clone(),
            });
        }
    }
    let names: Vec<PackageName> = active.iter().map(|r| r.requirement.name.clone()).collect();
    client.prefetch(&names)?;
    for r in &active {
        if client.page(&r.requirement.name)?.is_none() {
            return Err(ResolveError::NotFound {
                name: r.requirement.name.to_string(),
                origin: r.origin.clone(),
            });
        }
    }
    let mut hashes: HashMap<PackageName, (Vec<Digest>, String)> = HashMap::new();
    for r in active.iter().filter(|r| !r.hashes.is_empty()) {
        hashes
            .entry(r.requirement.name.clone())
            .or_insert_with(|| (Vec::new(), r.origin.clone()))
            .0
            .extend(r.hashes.iter().copied());
    }
    let pre_allowed = active
        .iter()
        .copied()
        .chain(constraints)
        .filter(|r| {
            specifiers(&r.requirement).is_some_and(|s| s.iter().any(|s| s.any_prerelease()))
        })
        .map(|r| r.requirement.name.clone())
        .collect();
    let provider = Provider {
        pool: Pool::default(),
        client,
        env,
        hashes,
        pre_allowed,
        solvables: Mutex::default(),
        versions: Mutex::default(),
        no_wheel: Mutex::default(),
        parents: Mutex::default(),
        failure: Mutex::default(),
        steps: AtomicU64::default(),
    };
    // A hash pin that matches no usable wheel is named before solving: the
    // solver would only say that no version fits.
    for (name, (_, origin)) in &provider.hashes {
        if provider.versions(name)?.is_none_or(|v| v.usable.is_empty()) {
            return Err(ResolveError::HashMismatch {
                name: name.to_string(),
                origin: origin.clone(),
            });
        }
    }
    let mut requirements = Vec::new();
    for r in &active {
        for name in provider.names_of(&r.requirement) {
            let set = provider.set(name, specifiers(&r.requirement));
            requirements.push(ConditionalRequirement::from(SolverRequirement::Single(set)));
        }
        provider.record_parent(&r.requirement.name, r.origin.clone());
    }
    let constrains: Vec<VersionSetId> = constraints
        .iter()
        .filter(|r| r.requirement.evaluate_markers(env.markers, &[]))
        .map(|r| {
            let name = provider
                .pool
                .intern_package_name(r.requirement.name.to_string());
            provider.set(name, specifiers(&r.requirement))
        })
        .collect();
    let mut solver = Solver::new(provider);
    let problem = Problem::new()
        .requirements(requirements)
        .constraints(constrains);
    let solution = match solver.solve(problem) {
        Ok(solution) => {
            let steps = solver.provider().steps.load(Ordering::Relaxed);
            tracing::debug!("resolved in {steps} of the solver's {STEPS} steps");
            solution
        }
        Err(UnsolvableOrCancelled::Unsolvable(conflict)) => {
            let explanation = conflict.display_user_friendly(&solver).to_string();
            return Err(solver
                .provider()
                .no_wheel_error(&explanation)
                .unwrap_or(ResolveError::Unsolvable { explanation }));
        }
        Err(UnsolvableOrCancelled::Cancelled(value)) if value.is::<BudgetSpent>() => {
            return Err(ResolveError::TooHard { steps: STEPS });
        }
        Err(UnsolvableOrCancelled::Cancelled(_)) => {
            let failure = solver
                .provider()
                .failure
                .lock()
                .ok()
                .and_then(|mut f| f.take());
            return Err(failure.unwrap_or_else(|| ResolveError::Unsolvable {
                explanation: "the solver was cancelled".into(),
            }));
        }
    };
    let provider = solver.provider();
    let mut resolved = Vec::new();
    for solvable in solution {
        let candidate = &provider.pool.resolve_solvable(solvable).record;
        if candidate.extra.is_some() {
            continue;
        }
        let Some(file) = &candidate.file else {
            continue;
        };
        resolved.push(Resolved {
            name: candidate.name.clone(),
            version: candidate.version.clone(),
            file: file.file.clone(),
            index: file.index.clone(),
            tag: file.tag.clone(),
        });
    }
    if !provider.hashes.is_empty()
        && let Some(r) = resolved
            .iter()
            .find(|r| !provider.hashes.contains_key(&r.name))
    {
        return Err(ResolveError::Unhashed {
            name: r.name.to_string(),
        });
    }
    resolved.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(resolved)
}

fn specifiers(requirement: &Requirement) -> Option<&VersionSpecifiers> {
    match &requirement.version_or_url {
        Some(VersionOrUrl::VersionSpecifier(s)) => Some(s),
        _ => None,
    }
}

/// A version of a project (or of one of its extras) the solver may pick.
#[derive(Debug, Clone)]
struct Candidate {
    name: PackageName,
    extra: Option<ExtraName>,
    version: Version,
    /// The wheel for this version; every candidate offered has one.
    file: Option<Arc<Picked>>,
}

#[derive(Debug)]
struct Picked {
    file: DistFile,
    index: String,
    tag: Tag,
}

impl fmt::Display for Candidate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.version)
    }
}

/// A set of versions of one name: what a requirement allows.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Set(Option<VersionSpecifiers>);

impl resolvo::utils::VersionSet for Set {
    type V = Candidate;
}

impl fmt::Display for Set {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            None => f.write_str("*"),
            Some(s) if s.is_empty() => f.write_str("*"),
            Some(s) => write!(f, "{s}"),
        }
    }
}

struct Provider<'a> {
    pool: Pool<Set, String>,
    client: &'a Client<'a>,
    env: &'a Environment<'a>,
    hashes: HashMap<PackageName, (Vec<Digest>, String)>,
    pre_allowed: HashSet<PackageName>,
    solvables: Mutex<HashMap<(String, Version), SolvableId>>,
    /// Per project: every usable version and its wheel, best version first.
    versions: Mutex<HashMap<PackageName, Arc<Versions>>>,
    /// Projects none of whose versions has a usable wheel: what was found.
    no_wheel: Mutex<BTreeMap<String, String>>,
    /// The first requirement that pulled each project in.
    parents: Mutex<HashMap<String, String>>,
    /// An error that stopped the solver (reported after it cancels).
    failure: Mutex<Option<ResolveError>>,
    /// How many times the solver has asked whether to go on: once per
    /// propagation, so about once per decision.
    steps: AtomicU64,
}

/// The solver's budget, in steps, as for Debian packages: real requirement
/// sets take a few thousand; ones shaped like a pigeonhole problem take
/// exponentially many. Counted rather than timed, so that a build fails or
/// succeeds the same way on every machine.
const STEPS: u64 = 200_000;

/// The cancel value that says the budget is spent.
struct BudgetSpent;

/// A project's versions, sorted best first: usable ones with their wheel,
/// and unusable ones with why.
#[derive(Debug, Default)]
struct Versions {
    usable: Vec<(Version, Arc<Picked>)>,
    excluded: Vec<(Version, String)>,
}

impl Provider<'_> {
    /// The solver names a requirement needs: the project, and one per extra.
    fn names_of(&self, requirement: &Requirement) -> Vec<NameId> {
        let mut names = vec![self.pool.intern_package_name(requirement.name.to_string())];
        for extra in &*requirement.extras {
            names.push(
                self.pool
                    .intern_package_name(format!("{}[{extra}]", requirement.name)),
            );
        }
        names
    }

    fn set(&self, name: NameId, specifiers: Option<&VersionSpecifiers>) -> VersionSetId {
        self.pool.intern_version_set(name, Set(specifiers.cloned()))
    }

    fn record_parent(&self, name: &PackageName, parent: String) {
        self.parents
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(name.to_string())
            .or_insert(parent);
    }

    fn fail(&self, error: ResolveError) {
        if let Ok(mut slot) = self.failure.lock() {
            slot.get_or_insert(error);
        }
    }

    /// `name` or `name[extra]` back into its parts.
    fn parse_name(&self, name: NameId) -> Option<(PackageName, Option<ExtraName>)> {
        let text = self.pool.resolve_package_name(name);
        match text.split_once('[') {
            Some((base, extra)) => Some((
                PackageName::from_str(base).ok()?,
                Some(ExtraName::from_str(extra.trim_end_matches(']')).ok()?),
            )),
            None => Some((PackageName::from_str(text).ok()?, None)),
        }
    }

    fn solvable(&self, name: NameId, candidate: Candidate) -> SolvableId {
        let key = (
            self.pool.resolve_package_name(name).clone(),
            candidate.version.clone(),
        );
        let mut map = self.solvables.lock().unwrap_or_else(|e| e.into_inner());
        *map.entry(key)
            .or_insert_with(|| self.pool.intern_solvable(name, candidate))
    }

    /// The project's versions with the wheel each would install.
    fn versions(&self, name: &PackageName) -> Result<Option<Arc<Versions>>, ResolveError> {
        if let Some(v) = self
            .versions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
        {
            return Ok(Some(v.clone()));
        }
        let Some(found) = self.client.page(name)? else {
            return Ok(None);
        };
        let hashes = self.hashes.get(name);
        let pre = self.env.pre || self.pre_allowed.contains(name);
        // version → (best rank, wheel) and why the others were left out.
        let mut best: BTreeMap<Version, (usize, &DistFile, Tag)> = BTreeMap::new();
        let mut why: BTreeMap<Version, String> = BTreeMap::new();
        let mut seen_tags: Vec<String> = Vec::new();
        let mut sdists = 0;
        for file in &found.page.files {
            let Ok(wheel) = WheelFilename::from_str(&file.filename) else {
                if filename::is_sdist(&file.filename) {
                    sdists += 1;
                }
                continue;
            };
            let version = wheel.version.clone();
            let reason = if let Some(reason) = &file.yanked {
                Some(if reason.is_empty() {
                    "yanked".to_owned()
                } else {
                    format!("yanked: {reason}")
                })
            } else if file
                .requires_python
                .as_ref()
                .is_some_and(|s| !s.contains(self.env.python))
            {
                Some(format!(
                    "requires Python {}",
                    file.requires_python
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_default()
                ))
            } else if hashes.is_some_and(|(h, _)| file.sha256.is_none_or(|d| !h.contains(&d))) {
                Some("not one of the hashes given".to_owned())
            } else {
                None
            };
            let best_tag = self.env.tags.best(&wheel);
            if best_tag.is_none() && seen_tags.len() < 8 {
                for tag in &wheel.tags {
                    let tag = tag.to_string();
                    if !seen_tags.contains(&tag) && seen_tags.len() < 8 {
                        seen_tags.push(tag);
                    }
                }
            }
            match (reason, best_tag) {
                (Some(reason), _) => {
                    why.entry(version).or_insert(reason);
                }
                (None, None) => {
                    why.entry(version)
                        .or_insert_with(|| format!("no wheel for {}", self.env.description));
                }
                (None, Some((rank, tag))) => {
                    let better = best.get(&version).is_none_or(|(r, _, _)| rank < *r);
                    if better {
                        best.insert(version, (rank, file, tag.clone()));
                    }
                }
            }
        }
        let any_final = best.keys().any(|v| !v.any_prerelease());
        let mut versions = Versions::default();
        for (version, (_, file, tag)) in best.into_iter().rev() {
            if version.any_prerelease() && !pre && any_final {
                versions.excluded.push((
                    version,
                    "a pre-release (allow with a pre-release pin or `--pre`)".into(),
                ));
                continue;
            }
            why.remove(&version);
            let picked = Arc::new(Picked {
                file: file.clone(),
                index: found.index.clone(),
                tag,
            });
            versions.usable.push((version, picked));
        }
        versions.excluded.extend(why.into_iter().rev());
        if versions.usable.is_empty() {
            let found_text = if seen_tags.is_empty() && sdists > 0 {
                format!("it publishes only source distributions ({sdists} sdists, no wheels)")
            } else if seen_tags.is_empty() {
                "its wheels are all yanked, pinned out by hashes, or need another Python".to_owned()
            } else {
                format!("its wheels are for: {}", seen_tags.join(", "))
            };
            self.no_wheel
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(name.to_string(), found_text);
        }
        let versions = Arc::new(versions);
        self.versions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.clone(), versions.clone());
        Ok(Some(versions))
    }

    /// The no-wheel error for the first such project the conflict names.
    fn no_wheel_error(&self, explanation: &str) -> Option<ResolveError> {
        let no_wheel = self.no_wheel.lock().ok()?;
        let parents = self.parents.lock().ok()?;
        let (name, found) = no_wheel
            .iter()
            .find(|(name, _)| explanation.contains(name.as_str()))?;
        let mut chain = vec![name.clone()];
        let mut current = name.clone();
        while let Some(parent) = parents.get(&current) {
            if chain.contains(parent) || chain.len() > 32 {
                break;
            }
            chain.push(parent.clone());
            current = parent.split(' ').next().unwrap_or_default().to_owned();
        }
        chain.reverse();
        let tags: Vec<String> = self
            .env
            .tags
            .iter()
            .take(6)
            .map(ToString::to_string)
            .collect();
        Some(ResolveError::NoWheel {
            name: name.clone(),
            target: self.env.description.clone(),
            chain: chain.join(" → "),
            found: found.clone(),
            tags: format!(
                "{} … ({} in all)",
                tags.join(", "),
                self.env.tags.iter().count()
            ),
        })
    }
}

impl Interner for Provider<'_> {
    type NameId = NameId;
    type SolvableId = SolvableId;

    fn display_solvable(&self, solvable: SolvableId) -> impl fmt::Display + '_ {
        let s = self.pool.resolve_solvable(solvable);
        format!(
            "{} {}",
            self.pool.resolve_package_name(s.name),
            s.record.version
        )
    }

    fn display_name(&self, name: NameId) -> impl fmt::Display + '_ {
        self.pool.resolve_package_name(name).clone()
    }

    fn display_version_set(&self, version_set: VersionSetId) -> impl fmt::Display + '_ {
        self.pool.resolve_version_set(version_set).to_string()
    }

    fn display_string(&self, string_id: StringId) -> impl fmt::Display + '_ {
        self.pool.resolve_string(string_id).to_owned()
    }

    fn version_set_name(&self, version_set: VersionSetId) -> NameId {
        self.pool.resolve_version_set_package_name(version_set)
    }

    fn solvable_name(&self, solvable: SolvableId) -> NameId {
        self.pool.resolve_solvable(solvable).name
    }

    fn version_sets_in_union(
        &self,
        union: VersionSetUnionId,
    ) -> impl Iterator<Item = VersionSetId> {
        self.pool.resolve_version_set_union(union)
    }

    fn resolve_condition(&self, condition: ConditionId) -> Condition {
        self.pool.resolve_condition(condition).clone()
    }
}

impl DependencyProvider for Provider<'_> {
    async fn filter_candidates(
        &self,
        candidates: &[SolvableId],
        version_set: VersionSetId,
        inverse: bool,
    ) -> Vec<SolvableId> {
        let set = self.pool.resolve_version_set(version_set);
        candidates
            .iter()
            .copied()
            .filter(|s| {
                let version = &self.pool.resolve_solvable(*s).record.version;
                set.0.as_ref().is_none_or(|spec| spec.contains(version)) != inverse
            })
            .collect()
    }

    async fn get_candidates(&self, name: NameId) -> Option<Candidates> {
        let (project, extra) = self.parse_name(name)?;
        let versions = match self.versions(&project) {
            Ok(v) => v?,
            Err(e) => {
                self.fail(e);
                return None;
            }
        };
        let candidate = |version: &Version, file: Option<Arc<Picked>>| Candidate {
            name: project.clone(),
            extra: extra.clone(),
            version: version.clone(),
            file,
        };
        let mut candidates = Candidates::default();
        for (version, picked) in &versions.usable {
            candidates
                .candidates
                .push(self.solvable(name, candidate(version, Some(picked.clone()))));
        }
        for (version, reason) in &versions.excluded {
            let id = self.solvable(name, candidate(version, None));
            candidates
                .excluded
                .push((id, self.pool.intern_string(reason.clone())));
        }
        candidates
            .candidates
            .extend(candidates.excluded.iter().map(|(id, _)| *id));
        Some(candidates)
    }

    async fn sort_candidates(&self, _: &SolverCache<Self>, solvables: &mut [SolvableId]) {
        solvables.sort_by(|a, b| {
            let va = &self.pool.resolve_solvable(*a).record.version;
            let vb = &self.pool.resolve_solvable(*b).record.version;
            vb.cmp(va)
        });
    }

    async fn get_dependencies(&self, solvable: SolvableId) -> Dependencies {
        let s = self.pool.resolve_solvable(solvable);
        let candidate = s.record.clone();
        let Some(picked) = &candidate.file else {
            return Dependencies::Unknown(self.pool.intern_string("excluded"));
        };
        let metadata = match self.client.metadata(&picked.file) {
            Ok(m) => m,
            Err(e) => {
                self.fail(e.into());
                return Dependencies::Unknown(self.pool.intern_string("no metadata"));
            }
        };
        if let Some(requires) = &metadata.requires_python
            && !requires.contains(self.env.python)
        {
            return Dependencies::Unknown(
                self.pool
                    .intern_string(format!("its metadata requires Python {requires}")),
            );
        }
        let mut deps = KnownDependencies::default();
        let extras: Vec<ExtraName> = candidate.extra.iter().cloned().collect();
        if candidate.extra.is_some() {
            // An extra is its project at the same version, plus more.
            let base = self.pool.intern_package_name(candidate.name.to_string());
            let exact = VersionSpecifiers::from_str(&format!("=={}", candidate.version)).ok();
            deps.requirements
                .push(SolverRequirement::Single(self.set(base, exact.as_ref())).into());
        }
        let parent = format!("{} {}", candidate.name, candidate.version);
        let mut names = Vec::new();
        for requirement in &metadata.requires_dist {
            let applies = requirement.evaluate_markers(self.env.markers, &extras);
            // An extra adds only what its marker enables beyond the base.
            let in_base =
                candidate.extra.is_some() && requirement.evaluate_markers(self.env.markers, &[]);
            if !applies || in_base {
                continue;
            }
            if let Some(VersionOrUrl::Url(_)) = &requirement.version_or_url {
                self.fail(ResolveError::Url {
                    requirement: requirement.to_string(),
                    origin: parent.clone(),
                });
                return Dependencies::Unknown(self.pool.intern_string("a URL requirement"));
            }
            for name in self.names_of(requirement) {
                deps.requirements.push(
                    SolverRequirement::Single(self.set(name, specifiers(requirement))).into(),
                );
            }
            self.record_parent(&requirement.name, parent.clone());
            names.push(requirement.name.clone());
        }
        if let Err(e) = self.client.prefetch(&names) {
            self.fail(e.into());
        }
        Dependencies::Known(deps)
    }

    fn should_cancel_with_value(&self) -> Option<Box<dyn std::any::Any>> {
        if self.steps.fetch_add(1, Ordering::Relaxed) >= STEPS {
            return Some(Box::new(BudgetSpent));
        }
        let failed = self.failure.lock().map(|e| e.is_some()).unwrap_or(false);
        failed.then(|| Box::new(()) as Box<dyn std::any::Any>)
    }
}
