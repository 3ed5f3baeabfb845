//! Dependency resolution with a real SAT-based solver (resolvo), as apt's
//! solver would decide: the closure of `Pre-Depends` and `Depends` with
//! alternatives, virtual packages (`Provides`), version constraints in dpkg
//! order, and `Conflicts`/`Breaks` honoured. Recommends and Suggests are not
//! followed. Essential packages are never implied here: whoever builds the
//! requests adds [`Universe::essential`] when the image should have them, as
//! Debian's contract (and `mmdebstrap --variant=essential`) does.
//!
//! How Debian maps onto resolvo: every real package name is a resolvo name
//! whose candidates are that name's versions. A dependency `a (>= 1) | v`,
//! where `v` is virtual, becomes a union of version sets: `a` restricted to
//! `>= 1`, and for each package providing `v`, that package's name restricted
//! to exactly the providing versions. Conflicts become constraints with the
//! complement of the conflicting set.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use resolvo::utils::Pool;
use resolvo::{
    Candidates, Condition, ConditionId, ConditionalRequirement, Dependencies, DependencyProvider,
    Interner, KnownDependencies, NameId, Problem, Requirement, SolvableId, Solver, SolverCache,
    StringId, UnsolvableOrCancelled, VersionSetId, VersionSetUnionId,
};

use crate::index::{Package, Priority};
use crate::relation::{self, Alternatives, Op, Relation};
use crate::version::Version;

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum SolveError {
    #[error("the packages cannot be installed together:\n{explanation}")]
    #[diagnostic(help(
        "pin other versions with `name=version`, or drop one of the packages named above"
    ))]
    Unsolvable { explanation: String },
    #[error("the solver stopped after {steps} steps without finding a set of packages that fits")]
    #[diagnostic(help(
        "the requests leave too many alternatives open: pin versions with `name=version`, or request one of the alternatives (`a | b`, virtual packages) by name"
    ))]
    TooHard { steps: u64 },
    #[error("no repository has a package `{name}`{}", version.as_ref().map(|v| format!(" at version `{v}`")).unwrap_or_default())]
    #[diagnostic(help(
        "check the spelling and the `debian` suite; `apt-cache policy {name}` on a Debian host shows what exists"
    ))]
    NotFound {
        name: String,
        version: Option<String>,
    },
    #[error("package `{package}` has a relationship strata cannot read: {source}")]
    Relation {
        package: String,
        #[source]
        source: relation::ParseRelationError,
    },
}

/// A package already in the base image (from its dpkg database).
#[derive(Debug, Clone)]
pub struct Installed {
    pub name: String,
    pub version: Version,
    pub provides: Option<String>,
}

/// What the solver picks from.
pub struct Universe {
    packages: Vec<Arc<Package>>,
    installed: Vec<Installed>,
    by_name: HashMap<String, Vec<Candidate>>,
    /// Virtual name → (candidate, provided version if any).
    providers: HashMap<String, Vec<(Candidate, Option<Version>)>>,
}

/// A package the solver may choose: from an index, or already installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Candidate {
    Available(usize),
    Installed(usize),
}

impl Universe {
    pub fn new(
        packages: Vec<Arc<Package>>,
        installed: Vec<Installed>,
    ) -> Result<Universe, SolveError> {
        let mut by_name: HashMap<String, Vec<Candidate>> = HashMap::new();
        let mut providers: HashMap<String, Vec<(Candidate, Option<Version>)>> = HashMap::new();
        let mut add_provides =
            |candidate: Candidate, owner: &str, text: &Option<String>| -> Result<(), SolveError> {
                let Some(text) = text else { return Ok(()) };
                let list = relation::parse_list(text).map_err(|source| SolveError::Relation {
                    package: owner.to_owned(),
                    source,
                })?;
                for relation in list.into_iter().flatten() {
                    let version = relation.constraint.map(|(_, v)| v);
                    providers
                        .entry(relation.name)
                        .or_default()
                        .push((candidate, version));
                }
                Ok(())
            };
        for (i, p) in packages.iter().enumerate() {
            by_name
                .entry(p.name.clone())
                .or_default()
                .push(Candidate::Available(i));
            add_provides(Candidate::Available(i), &p.name, &p.provides)?;
        }
        for (i, p) in installed.iter().enumerate() {
            by_name
                .entry(p.name.clone())
                .or_default()
                .push(Candidate::Installed(i));
            add_provides(Candidate::Installed(i), &p.name, &p.provides)?;
        }
        Ok(Universe {
            packages,
            installed,
            by_name,
            providers,
        })
    }

    fn name_of(&self, c: Candidate) -> &str {
        match c {
            Candidate::Available(i) => &self.packages[i].name,
            Candidate::Installed(i) => &self.installed[i].name,
        }
    }

    fn version_of(&self, c: Candidate) -> &Version {
        match c {
            Candidate::Available(i) => &self.packages[i].version,
            Candidate::Installed(i) => &self.installed[i].version,
        }
    }

    pub fn package(&self, i: usize) -> &Arc<Package> {
        &self.packages[i]
    }

    /// The names of the `Essential: yes` packages the indexes offer, sorted:
    /// what every Debian system has without declaring it.
    pub fn essential(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .packages
            .iter()
            .filter(|p| p.essential)
            .map(|p| p.name.clone())
            .collect();
        names.sort();
        names.dedup();
        names
    }
}

/// A request from the recipe: `name` or `name=version`.
#[derive(Debug, Clone)]
pub struct Request {
    pub name: String,
    pub version: Option<String>,
}

/// Solves the requests; returns the packages to install (not those the base
/// already has), sorted by name.
pub fn solve(universe: &Universe, requests: &[Request]) -> Result<Vec<Arc<Package>>, SolveError> {
    solve_within(universe, requests, STEPS)
}

/// [`solve`], stopping after `budget` steps.
fn solve_within(
    universe: &Universe,
    requests: &[Request],
    budget: u64,
) -> Result<Vec<Arc<Package>>, SolveError> {
    let provider = Provider {
        pool: Pool::default(),
        universe,
        solvables: Default::default(),
        relation_error: Default::default(),
        steps: Default::default(),
        budget,
    };
    let mut requirements = Vec::new();
    for request in requests {
        let relation = Relation {
            name: request.name.clone(),
            arch: None,
            constraint: match &request.version {
                Some(v) => Some((
                    Op::Eq,
                    Version::parse(v).map_err(|_| SolveError::NotFound {
                        name: request.name.clone(),
                        version: Some(v.clone()),
                    })?,
                )),
                None => None,
            },
        };
        let sets = provider.relation_sets(&relation, None);
        let matching = sets.iter().any(|set| provider.set_has_candidates(*set));
        if !matching {
            return Err(SolveError::NotFound {
                name: request.name.clone(),
                version: request.version.clone(),
            });
        }
        requirements.push(provider.requirement(sets));
    }
    let mut solver = Solver::new(provider);
    let problem = Problem::new().requirements(requirements);
    let solution = match solver.solve(problem) {
        Ok(solution) => {
            let steps = solver.provider().steps.load(Ordering::Relaxed);
            tracing::debug!("solved in {steps} of the solver's {budget} steps");
            solution
        }
        Err(UnsolvableOrCancelled::Unsolvable(conflict)) => {
            return Err(SolveError::Unsolvable {
                explanation: conflict.display_user_friendly(&solver).to_string(),
            });
        }
        Err(UnsolvableOrCancelled::Cancelled(value)) if value.is::<BudgetSpent>() => {
            return Err(SolveError::TooHard { steps: budget });
        }
        Err(UnsolvableOrCancelled::Cancelled(_)) => {
            let error = solver
                .provider()
                .relation_error
                .lock()
                .ok()
                .and_then(|mut e| e.take());
            return Err(error.unwrap_or_else(|| SolveError::Unsolvable {
                explanation: "the solver was cancelled".into(),
            }));
        }
    };
    let mut chosen: Vec<Arc<Package>> = solution
        .into_iter()
        .filter_map(
            |s| match solver.provider().pool.resolve_solvable(s).record.0 {
                Candidate::Available(i) => Some(universe.packages[i].clone()),
                Candidate::Installed(_) => None,
            },
        )
        .collect();
    chosen.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(chosen)
}

/// A set of candidates of one name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Set {
    /// Versions matching an optional constraint (`>= 1.0`).
    Matching(Option<(Op, String)>),
    /// Exactly these candidates (the providers of a virtual name).
    Exactly(Vec<Candidate>),
    /// Everything but the inner set: what a conflict allows.
    Not(Box<Set>),
}

impl resolvo::utils::VersionSet for Set {
    type V = Record;
}

impl fmt::Display for Set {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Set::Matching(None) => f.write_str("*"),
            Set::Matching(Some((op, v))) => write!(f, "{op} {v}"),
            Set::Exactly(_) => f.write_str("(providing)"),
            Set::Not(inner) => write!(f, "not {inner}"),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Record(Candidate);

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

struct Provider<'a> {
    pool: Pool<Set, String>,
    universe: &'a Universe,
    solvables: std::sync::Mutex<HashMap<Candidate, SolvableId>>,
    /// A relationship that failed to parse, reported after cancelling.
    relation_error: std::sync::Mutex<Option<SolveError>>,
    /// How many times the solver has asked whether to go on: once per
    /// propagation, so about once per decision.
    steps: AtomicU64,
    /// How many steps it may take.
    budget: u64,
}

/// The solver's budget, in steps. Real requests (a desktop's worth of
/// packages from a full Debian index) take a few thousand; an index shaped
/// like a pigeonhole problem takes exponentially many, and would otherwise
/// run for hours. Counted rather than timed, so that a build fails or
/// succeeds the same way on every machine.
const STEPS: u64 = 200_000;

/// The cancel value that says the budget is spent.
struct BudgetSpent;

impl Provider<'_> {
    fn solvable(&self, c: Candidate) -> SolvableId {
        let mut map = self.solvables.lock().unwrap_or_else(|e| e.into_inner());
        *map.entry(c).or_insert_with(|| {
            let name = self.pool.intern_package_name(self.universe.name_of(c));
            self.pool.intern_solvable(name, Record(c))
        })
    }

    fn contains(&self, set: &Set, c: Candidate) -> bool {
        match set {
            Set::Matching(None) => true,
            Set::Matching(Some((op, v))) => Version::parse(v)
                .map(|want| op.matches(self.universe.version_of(c), &want))
                .unwrap_or(false),
            Set::Exactly(list) => list.contains(&c),
            Set::Not(inner) => !self.contains(inner, c),
        }
    }

    fn set_has_candidates(&self, id: VersionSetId) -> bool {
        let name = self.pool.resolve_version_set_package_name(id);
        let set = self.pool.resolve_version_set(id);
        self.universe
            .by_name
            .get(self.pool.resolve_package_name(name))
            .is_some_and(|cs| cs.iter().any(|c| self.contains(set, *c)))
    }

    /// The version sets that satisfy one relation: the real package and every
    /// provider of that name (a versioned relation only matches versioned
    /// provides, as Debian policy says). `skip` leaves a package out of its own
    /// conflicts.
    fn relation_sets(&self, relation: &Relation, skip: Option<Candidate>) -> Vec<VersionSetId> {
        let mut sets = Vec::new();
        let constraint = relation
            .constraint
            .as_ref()
            .map(|(op, v)| (*op, v.as_str().to_owned()));
        if self.universe.by_name.contains_key(&relation.name)
            || !self.universe.providers.contains_key(&relation.name)
        {
            let name = self.pool.intern_package_name(relation.name.as_str());
            sets.push(
                self.pool
                    .intern_version_set(name, Set::Matching(constraint)),
            );
        }
        let mut by_provider: HashMap<&str, Vec<Candidate>> = HashMap::new();
        for (c, provided) in self
            .universe
            .providers
            .get(&relation.name)
            .into_iter()
            .flatten()
        {
            if Some(*c) == skip {
                continue;
            }
            let ok = match (&relation.constraint, provided) {
                (None, _) => true,
                (Some((op, want)), Some(have)) => op.matches(have, want),
                (Some(_), None) => false,
            };
            if ok {
                by_provider
                    .entry(self.universe.name_of(*c))
                    .or_default()
                    .push(*c);
            }
        }
        // As apt does: a provider the base has first, then by priority, then
        // by name.
        let rank = |c: &Candidate| match c {
            Candidate::Installed(_) => (0, Priority::Required),
            Candidate::Available(i) => (1, self.universe.packages[*i].priority),
        };
        let mut names: Vec<_> = by_provider
            .into_iter()
            .map(|(name, list)| (list.iter().map(rank).min(), name, list))
            .collect();
        names.sort();
        for (_, name, mut list) in names {
            list.sort();
            let name = self.pool.intern_package_name(name);
            sets.push(self.pool.intern_version_set(name, Set::Exactly(list)));
        }
        sets
    }

    fn requirement(&self, sets: Vec<VersionSetId>) -> ConditionalRequirement {
        match sets.as_slice() {
            [one] => Requirement::Single(*one).into(),
            [first, rest @ ..] => Requirement::Union(
                self.pool
                    .intern_version_set_union(*first, rest.iter().copied()),
            )
            .into(),
            [] => {
                unreachable!("relation_sets always yields the real name when nothing provides it")
            }
        }
    }

    fn parse(&self, owner: &str, text: &Option<String>) -> Option<Vec<Alternatives>> {
        match text.as_deref().map(relation::parse_list).transpose() {
            Ok(list) => Some(list.unwrap_or_default()),
            Err(source) => {
                if let Ok(mut slot) = self.relation_error.lock() {
                    slot.get_or_insert(SolveError::Relation {
                        package: owner.to_owned(),
                        source,
                    });
                }
                None
            }
        }
    }
}

impl Interner for Provider<'_> {
    type NameId = NameId;
    type SolvableId = SolvableId;

    fn display_solvable(&self, solvable: SolvableId) -> impl fmt::Display + '_ {
        let c = self.pool.resolve_solvable(solvable).record.0;
        self.universe.version_of(c).to_string()
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
            .filter(|s| self.contains(set, self.pool.resolve_solvable(*s).record.0) != inverse)
            .collect()
    }

    async fn get_candidates(&self, name: NameId) -> Option<Candidates> {
        let list = self
            .universe
            .by_name
            .get(self.pool.resolve_package_name(name))?;
        let installed = list.iter().find(|c| matches!(c, Candidate::Installed(_)));
        Some(Candidates {
            candidates: list.iter().map(|c| self.solvable(*c)).collect(),
            // What the base has stays as it is: images are not upgraded in place.
            locked: installed.map(|c| self.solvable(*c)),
            ..Candidates::default()
        })
    }

    async fn sort_candidates(&self, _: &SolverCache<Self>, solvables: &mut [SolvableId]) {
        // Highest version first, across repositories as apt does; on a tie the
        // repository listed first wins.
        solvables.sort_by(|a, b| {
            let (ca, cb) = (
                self.pool.resolve_solvable(*a).record.0,
                self.pool.resolve_solvable(*b).record.0,
            );
            self.universe
                .version_of(cb)
                .cmp(self.universe.version_of(ca))
                .then_with(|| ca.cmp(&cb))
        });
    }

    async fn get_dependencies(&self, solvable: SolvableId) -> Dependencies {
        let c = self.pool.resolve_solvable(solvable).record.0;
        let Candidate::Available(i) = c else {
            // The base's packages are already installed and consistent.
            return Dependencies::Known(KnownDependencies::default());
        };
        let p = &self.universe.packages[i];
        let mut deps = KnownDependencies::default();
        for field in [&p.pre_depends, &p.depends] {
            let Some(groups) = self.parse(&p.name, field) else {
                return Dependencies::Unknown(self.pool.intern_string("unreadable relationship"));
            };
            for group in groups {
                let sets: Vec<VersionSetId> = group
                    .iter()
                    .flat_map(|r| self.relation_sets(r, None))
                    .collect();
                deps.requirements.push(self.requirement(sets));
            }
        }
        for field in [&p.conflicts, &p.breaks] {
            let Some(groups) = self.parse(&p.name, field) else {
                return Dependencies::Unknown(self.pool.intern_string("unreadable relationship"));
            };
            for relation in groups.into_iter().flatten() {
                for set in self.relation_sets(&relation, Some(c)) {
                    let name = self.pool.resolve_version_set_package_name(set);
                    // A package may conflict with its own name (to replace it): ignore that.
                    if self.pool.resolve_package_name(name) == &p.name {
                        continue;
                    }
                    let inner = self.pool.resolve_version_set(set).clone();
                    deps.constrains.push(
                        self.pool
                            .intern_version_set(name, Set::Not(Box::new(inner))),
                    );
                }
            }
        }
        Dependencies::Known(deps)
    }

    fn should_cancel_with_value(&self) -> Option<Box<dyn std::any::Any>> {
        if self.steps.fetch_add(1, Ordering::Relaxed) >= self.budget {
            return Some(Box::new(BudgetSpent));
        }
        let failed = self
            .relation_error
            .lock()
            .map(|e| e.is_some())
            .unwrap_or(false);
        failed.then(|| Box::new(()) as Box<dyn std::any::Any>)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg(name: &str, version: &str, fields: &[(&str, &str)]) -> Arc<Package> {
        let get = |k: &str| {
            fields
                .iter()
                .find(|(f, _)| *f == k)
                .map(|(_, v)| (*v).to_owned())
        };
        Arc::new(Package {
            name: name.into(),
            version: Version::parse(version).unwrap(),
            architecture: "amd64".into(),
            multi_arch: None,
            essential: false,
            priority: Priority::Other,
            depends: get("Depends"),
            pre_depends: get("Pre-Depends"),
            provides: get("Provides"),
            conflicts: get("Conflicts"),
            breaks: get("Breaks"),
            filename: format!("pool/{name}_{version}.deb"),
            size: 1,
            sha256: strata_oci::digest::Digest::of(name.as_bytes()),
            repository: 0,
            source: None,
        })
    }

    fn names(result: Result<Vec<Arc<Package>>, SolveError>) -> Vec<String> {
        result
            .unwrap()
            .iter()
            .map(|p| format!("{}={}", p.name, p.version))
            .collect()
    }

    fn req(name: &str) -> Request {
        Request {
            name: name.into(),
            version: None,
        }
    }

    #[test]
    fn closure_with_versions_alternatives_and_virtuals() {
        let u = Universe::new(
            vec![
                pkg(
                    "app",
                    "1",
                    &[
                        ("Depends", "lib (>= 2), mta | mail-transport-agent"),
                        ("Pre-Depends", "init"),
                    ],
                ),
                pkg("lib", "1", &[]),
                pkg("lib", "2", &[]),
                pkg("lib", "3", &[("Breaks", "app")]),
                pkg("postfix", "1", &[("Provides", "mail-transport-agent")]),
                pkg("init", "1", &[]),
                pkg("unrelated", "1", &[]),
            ],
            vec![],
        )
        .unwrap();
        assert_eq!(
            names(solve(&u, &[req("app")])),
            ["app=1", "init=1", "lib=2", "postfix=1"]
        );
    }

    #[test]
    fn pins_and_installed_packages() {
        let u = Universe::new(
            vec![
                pkg("a", "1", &[("Depends", "b")]),
                pkg("a", "2", &[("Depends", "b")]),
                pkg("b", "5", &[]),
            ],
            vec![Installed {
                name: "b".into(),
                version: Version::parse("4").unwrap(),
                provides: None,
            }],
        )
        .unwrap();
        let pinned = Request {
            name: "a".into(),
            version: Some("1".into()),
        };
        assert_eq!(
            names(solve(&u, &[pinned])),
            ["a=1"],
            "b is already installed"
        );
    }

    #[test]
    fn explains_conflicts_and_missing_packages() {
        let u = Universe::new(
            vec![
                pkg("a", "1", &[("Conflicts", "b")]),
                pkg("b", "1", &[]),
                pkg("c", "1", &[("Depends", "d (>= 2)")]),
                pkg("d", "1", &[]),
            ],
            vec![],
        )
        .unwrap();
        let err = solve(&u, &[req("a"), req("b")]).unwrap_err().to_string();
        assert!(
            err.contains("cannot be installed together") && err.contains('a') && err.contains('b'),
            "{err}"
        );
        let err = solve(&u, &[req("c")]).unwrap_err().to_string();
        assert!(err.contains("d"), "{err}");
        let err = solve(&u, &[req("nope")]).unwrap_err().to_string();
        assert_eq!(err, "no repository has a package `nope`");
    }

    /// `holes + 1` pigeons, each requested and each needing one of its
    /// `pigeon-in-hole` packages, which conflict with every other pigeon's
    /// package for the same hole: unsolvable, and exponentially hard for a
    /// solver that learns clauses one conflict at a time.
    fn pigeonhole(holes: usize) -> (Universe, Vec<Request>) {
        let mut packages = Vec::new();
        let pigeons = holes + 1;
        for p in 0..pigeons {
            let seats: Vec<String> = (0..holes).map(|h| format!("p{p}-h{h}")).collect();
            packages.push(pkg(
                &format!("p{p}"),
                "1",
                &[("Depends", &seats.join(" | "))],
            ));
            for h in 0..holes {
                let others: Vec<String> = (0..pigeons)
                    .filter(|o| *o != p)
                    .map(|o| format!("p{o}-h{h}"))
                    .collect();
                packages.push(pkg(
                    &format!("p{p}-h{h}"),
                    "1",
                    &[("Conflicts", &others.join(", "))],
                ));
            }
        }
        let requests = (0..pigeons).map(|p| req(&format!("p{p}"))).collect();
        (Universe::new(packages, vec![]).unwrap(), requests)
    }

    #[test]
    fn a_pigeonhole_index_stops_at_the_budget() {
        let (u, requests) = pigeonhole(5);
        let err = solve(&u, &requests).unwrap_err();
        assert!(matches!(err, SolveError::Unsolvable { .. }), "{err}");
        // 14 holes (210 packages) ran for minutes without a budget; a
        // small one keeps the test quick, the default works the same way.
        let (u, requests) = pigeonhole(14);
        let err = solve_within(&u, &requests, 5_000).unwrap_err();
        assert!(matches!(err, SolveError::TooHard { steps: 5_000 }), "{err}");
        assert_eq!(
            err.to_string(),
            "the solver stopped after 5000 steps without finding a set of packages that fits"
        );
    }
}
