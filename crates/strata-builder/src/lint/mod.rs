//! `strata lint`: the checklists of a good research image (spec/lint.md),
//! checked against a recipe and, unless `--static`, the image it would build.
//!
//! Rules come in two families: `recipe` rules read only the recipe and the
//! host files it copies (fast, offline: what `strata build` runs before
//! anything else, and what the pre-commit hook runs); `image` rules read the
//! planned image's filesystem and packages — the base, the Debian packages
//! and the recipe's layers — exactly as `strata build` would lay them out.

mod image;
mod recipe;
pub mod render;

use miette::SourceSpan;

use crate::assemble::Planned;
use crate::base::BaseImage;
use crate::recipe::{Recipe, RecipeError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Note,
    Warning,
    Error,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Note => "note",
            Level::Warning => "warning",
            Level::Error => "error",
        }
    }
}

/// One rule: a stable id, a kebab-case name, its usual level and its docs
/// (the long form is in spec/lint.md under the id).
#[derive(Debug)]
pub struct Rule {
    pub id: &'static str,
    pub name: &'static str,
    pub level: Level,
    pub summary: &'static str,
    pub fix: &'static str,
}

macro_rules! rules {
    ($($konst:ident = $id:literal $name:literal $level:ident $summary:literal $fix:literal;)*) => {
        $(pub const $konst: &Rule = &Rule {
            id: $id,
            name: $name,
            level: Level::$level,
            summary: $summary,
            fix: $fix,
        };)*
        /// Every rule, in id order.
        pub const RULES: &[&Rule] = &[$($konst),*];
    };
}

rules! {
    BASE_NOT_PINNED = "STR001" "base-not-pinned" Error
        "the base image is not pinned by digest"
        "pin it: `strata resolve-base REF` prints `REF@sha256:…` to paste into `base`";
    BASE_NOT_QUALIFIED = "STR002" "base-not-fully-qualified" Warning
        "the base image does not name its registry"
        "write the registry host too, e.g. `docker.io/library/python:3.11@sha256:…`";
    RUNS_AS_ROOT = "STR003" "runs-as-root" Error
        "the image runs as root"
        "declare a non-root `user` (or drop `uid=0`); under the TRE preset strata adds `nonroot` when there is none";
    TRE_DISABLED = "STR004" "tre-disabled" Warning
        "the TRE preset is turned off"
        "remove `tre #false` unless the image is not meant for a TRE";
    MISSING_LABELS = "STR005" "missing-labels" Warning
        "recommended OCI labels are missing"
        "add the missing nodes (`version`, `description`, `source`, `licenses`, `authors`); build from a git checkout or set `SOURCE_DATE_EPOCH` for `revision` and `created`";
    DATA_IN_IMAGE = "STR006" "data-in-image" Warning
        "files copied into the image look like data"
        "leave it out of the image (`exclude=`) and read it from /safe_data; allow STR006 if it is reference data the code needs";
    WRITABLE_BY_USER = "STR007" "writable-by-runtime-user" Warning
        "executables or folders are writable by the runtime user"
        "let root own them and drop the write bits (`owner` and `mode=` on the operation); write at run time to /scratch or /safe_outputs";
    UNREADABLE = "STR008" "unreadable-by-others" Warning
        "files or folders are not readable by others"
        "Apptainer runs as the host user: give files `o+r` and folders `o+rx` (`mode=0o644`, `0o755`)";
    SETUID = "STR009" "setuid-setgid" Warning
        "the image has setuid or setgid files"
        "no TRE job needs them: drop the package that ships them, or allow STR009 after review";
    SECRET_IN_ENV = "STR010" "secret-in-env" Error
        "an environment variable looks like a secret"
        "never bake secrets into an image: anyone who can pull it can read them; pass them at run time";
    UNEVALUATED_SCRIPT = "STR011" "postinst-not-evaluated" Warning
        "a package's postinst runs commands whose effect strata could not reproduce"
        "strata runs no maintainer script: check what each listed command would do, and add its result with a recipe `layer` (or allow STR011 after review)";
    NETWORK_AT_RUNTIME = "STR012" "network-at-runtime" Warning
        "Hugging Face libraries are installed but HF_HUB_OFFLINE is not 1"
        "a TRE has no network: set `env \"HF_HUB_OFFLINE\" \"1\"` (the TRE preset does) and load models from /safe_data";
    TMPDIR_NOT_SCRATCH = "STR013" "tmpdir-not-scratch" Warning
        "temporary files do not go to /scratch"
        "remove the `env` line: the TRE preset points TMPDIR and TMP at /scratch";
    NO_ENTRYPOINT = "STR014" "no-entrypoint" Warning
        "the image has neither an entrypoint nor a command"
        "batch jobs start from the image's entrypoint: add `entrypoint` (and `cmd` for default arguments)";
    MISSING_INTERPRETER = "STR016" "missing-interpreter" Warning
        "programs in the image name an interpreter or loader the image does not have"
        "add the package that provides it (Debian packages never declare the Essential set: drop `essential #false`, or `install` what is named)";
    MISSING_LIBRARY = "STR017" "missing-shared-library" Warning
        "Python extension modules need shared libraries the image does not have"
        "`install` the Debian package that ships each library named (e.g. `libgl1` for libGL.so.1, `libglib2.0-0` for libglib-2.0.so.0): manylinux wheels expect them from the system";
    ALPINE_BASE = "STR015" "alpine-base" Note
        "the base is Alpine (musl)"
        "Python wheels and scientific libraries target glibc: prefer a Debian-based base or `scratch` with `debian` packages";
}

pub fn rule(id: &str) -> Option<&'static Rule> {
    RULES.iter().copied().find(|r| r.id == id)
}

/// One problem found: which rule, what, and where in the recipe.
#[derive(Debug, Clone)]
pub struct Finding {
    pub rule: &'static Rule,
    /// Usually the rule's; STR003 is an error only under the TRE preset.
    pub level: Level,
    pub message: String,
    /// The recipe node the problem comes from; `None` for the file as a whole.
    pub span: Option<SourceSpan>,
    /// Paths, variables or packages the finding is about.
    pub items: Vec<String>,
    /// What to do about this finding, when it is more precise than the
    /// rule's fix.
    pub help: Option<String>,
}

impl Finding {
    fn new(rule: &'static Rule, message: impl Into<String>, span: Option<SourceSpan>) -> Finding {
        Finding {
            rule,
            level: rule.level,
            message: message.into(),
            span,
            items: Vec::new(),
            help: None,
        }
    }

    fn help(mut self, help: String) -> Finding {
        self.help = Some(help);
        self
    }

    fn items(mut self, items: Vec<String>) -> Finding {
        self.items = items;
        self
    }

    fn level(mut self, level: Level) -> Finding {
        self.level = level;
        self
    }
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum LintError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Recipe(#[from] RecipeError),
    #[error("`{0}` is not a lint rule")]
    #[diagnostic(help("rule ids run from STR001 to STR015: `strata lint --list` shows them"))]
    UnknownRule(String),
}

/// Which rules are silenced: the recipe's `lint { allow … }` and the
/// command line's `--allow`.
pub struct Allow(Vec<&'static str>);

impl Allow {
    pub fn new(recipe: &Recipe, command_line: &[String]) -> Result<Allow, LintError> {
        let mut ids = Vec::new();
        for id in &recipe.lint_allow {
            let rule = rule(&id.value).ok_or_else(|| {
                recipe.error(
                    id.span,
                    format!("`{}` is not a lint rule", id.value),
                    "unknown rule",
                    Some(
                        "rule ids run from STR001 to STR015: `strata lint --list` shows them"
                            .into(),
                    ),
                )
            })?;
            ids.push(rule.id);
        }
        for id in command_line.iter().flat_map(|s| s.split(',')) {
            let id = id.trim();
            ids.push(
                rule(id)
                    .ok_or_else(|| LintError::UnknownRule(id.to_owned()))?
                    .id,
            );
        }
        Ok(Allow(ids))
    }

    fn allows(&self, finding: &Finding) -> bool {
        self.0.contains(&finding.rule.id)
    }
}

/// The recipe rules: no base, no packages, only the recipe and the files it copies.
pub fn check_recipe(recipe: &Recipe, allow: &Allow) -> Result<Vec<Finding>, LintError> {
    let copied = recipe::copied_files(recipe)?;
    Ok(finish(recipe::check(recipe, &copied, false), allow))
}

/// Error-level rules the build enforces itself, with a more precise message:
/// an unpinned base fails with the digest to pin, a root user under the TRE
/// preset fails in assembly.
const ENFORCED_BY_BUILD: &[&Rule] = &[BASE_NOT_PINNED, RUNS_AS_ROOT];

/// The error-level recipe rules `strata build` runs before anything else.
pub fn check_before_build(recipe: &Recipe, allow: &Allow) -> Vec<Finding> {
    let mut findings = finish(recipe::check(recipe, &[], true), allow);
    findings.retain(|f| {
        f.level == Level::Error && !ENFORCED_BY_BUILD.iter().any(|r| r.id == f.rule.id)
    });
    findings
}

/// Every rule, on the recipe and the image planned from it (one entry per
/// platform; image findings that repeat across platforms are reported once).
pub fn check(
    recipe: &Recipe,
    planned: &[(BaseImage, Planned)],
    allow: &Allow,
) -> Result<Vec<Finding>, LintError> {
    let copied = recipe::copied_files(recipe)?;
    let mut findings = recipe::check(recipe, &copied, true);
    for (base, plan) in planned {
        for finding in image::check(recipe, base, plan, &copied) {
            let duplicate = findings
                .iter()
                .any(|f| f.rule.id == finding.rule.id && f.message == finding.message);
            if !duplicate {
                findings.push(finding);
            }
        }
    }
    Ok(finish(findings, allow))
}

fn finish(mut findings: Vec<Finding>, allow: &Allow) -> Vec<Finding> {
    findings.retain(|f| !allow.allows(f));
    findings.sort_by(|a, b| {
        let at = |f: &Finding| f.span.map_or(0, |s| s.offset());
        (at(a), a.rule.id).cmp(&(at(b), b.rule.id))
    });
    findings
}

/// Whether the findings fail the run: any error, or any warning when strict.
pub fn fails(findings: &[Finding], strict: bool) -> bool {
    findings
        .iter()
        .any(|f| f.level == Level::Error || (strict && f.level == Level::Warning))
}
