//! Rules that read the recipe and the host files it copies, nothing else.

use std::fs;
use std::path::Path;

use super::*;
use crate::assemble::copy::{self, CopyRequest};
use crate::recipe::{BaseRef, Op};
use strata_oci::entry::{Entry, Kind, Source};

/// File extensions of research data rather than software.
const DATA_EXTENSIONS: &[&str] = &[
    "csv", "tsv", "parquet", "feather", "arrow", "h5", "hdf5", "hdf", "nc", "nii", "dcm", "dicom",
    "sqlite", "sqlite3", "db", "sav", "dta", "sas7bdat", "rds", "rdata", "xlsx", "xls", "npy",
    "npz", "pkl", "pickle", "fastq", "fq", "bam", "sam", "cram", "vcf", "bcf", "mat", "edf",
];

/// Any copied file this large is reported as data, whatever its name.
pub const DATA_SIZE_LIMIT: u64 = 25 << 20;

/// Variable names that look like they hold a secret.
fn secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    ["TOKEN", "PASSWORD", "PASSWD", "SECRET", "CREDENTIAL"]
        .iter()
        .any(|w| upper.contains(w))
        || upper.ends_with("_KEY")
        || upper == "KEY"
}

/// The recipe rules; with `image_rules`, the ones the image rules check more
/// completely (from the base's config and the locked packages) are left to them.
pub fn check(recipe: &Recipe, copied: &[Copied], image_rules: bool) -> Vec<Finding> {
    let mut out = Vec::new();
    base(recipe, &mut out);
    if let Some(user) = &recipe.user
        && user.uid == 0
    {
        let level = if recipe.tre {
            Level::Error
        } else {
            Level::Warning
        };
        out.push(
            Finding::new(
                RUNS_AS_ROOT,
                format!("user `{}` has uid 0", user.name.value),
                Some(user.name.span),
            )
            .level(level),
        );
    }
    if !recipe.tre {
        out.push(Finding::new(
            TRE_DISABLED,
            "`tre #false` turns off the TRE folders, TMPDIR=/scratch, HF_HUB_OFFLINE and the non-root user",
            recipe.node_span("tre", None),
        ));
    }
    labels(recipe, &mut out);
    environment(recipe, &mut out);
    data(copied, &mut out);
    if !image_rules {
        let env = crate::image::environment(None, &recipe.runtime, recipe.tre, None);
        // The projects the `python` block asks for, read as the build reads
        // them (a file that does not read is the build's error to report).
        let python_names: Vec<String> = recipe
            .python
            .iter()
            .filter_map(|p| crate::assemble::python::requirements(recipe, p).ok())
            .flat_map(|r| r.requests)
            .map(|r| r.requirement.name.to_string())
            .collect();
        let packages: Vec<&str> = recipe
            .debian
            .iter()
            .flat_map(|d| &d.install)
            .map(|p| p.name.as_str())
            .chain(python_names.iter().map(String::as_str))
            .collect();
        if let Some(finding) = network_at_runtime(recipe, &env, &packages, copied) {
            out.push(finding);
        }
        if recipe.base.value == BaseRef::Scratch
            && recipe.runtime.entrypoint.is_none()
            && recipe.runtime.cmd.is_none()
        {
            out.push(no_entrypoint());
        }
    }
    out
}

fn base(recipe: &Recipe, out: &mut Vec<Finding>) {
    let BaseRef::Registry(reference) = &recipe.base.value else {
        return;
    };
    let span = Some(recipe.base.span);
    if reference.digest.is_none() {
        out.push(Finding::new(
            BASE_NOT_PINNED,
            format!(
                "`{reference}` is not pinned by digest: it can point at another image tomorrow"
            ),
            span,
        ));
    }
    let written = &recipe.source.text[span_range(recipe.base.span)];
    let written = written.trim_matches(|c| c == '"' || c == '#');
    let host = written.split_once('/').map(|(first, _)| first);
    let qualified = host.is_some_and(|h| h.contains('.') || h.contains(':') || h == "localhost");
    if !qualified {
        out.push(Finding::new(
            BASE_NOT_QUALIFIED,
            format!(
                "`{written}` does not name a registry (it means `{}`)",
                reference.name()
            ),
            span,
        ));
    }
    let alpine = |s: &str| s.contains("alpine");
    if alpine(&reference.repository) || reference.tag.as_deref().is_some_and(alpine) {
        out.push(Finding::new(
            ALPINE_BASE,
            format!("`{}` is built on Alpine's musl C library", reference.name()),
            span,
        ));
    }
}

fn span_range(span: SourceSpan) -> std::ops::Range<usize> {
    span.offset()..span.offset() + span.len()
}

fn labels(recipe: &Recipe, out: &mut Vec<Finding>) {
    let m = &recipe.metadata;
    // What is missing, as the message names it, and the recipe nodes to add.
    let mut missing: Vec<String> = Vec::new();
    let mut nodes: Vec<&str> = Vec::new();
    let version = match m.version.as_deref() {
        None => Some("version (the image is tagged `latest`)"),
        Some("latest") => Some("version (`latest` is not a unique tag)"),
        Some(_) => None,
    };
    if let Some(version) = version {
        missing.push(version.to_owned());
        nodes.push("version");
    }
    for (value, node) in [
        (&m.description, "description"),
        (&m.source, "source"),
        (&m.licenses, "licenses"),
        (&m.authors, "authors"),
    ] {
        if value.is_none() {
            missing.push(node.to_owned());
            nodes.push(node);
        }
    }
    let mut fixes = Vec::new();
    if !nodes.is_empty() {
        let nodes: Vec<String> = nodes.iter().map(|n| format!("`{n}`")).collect();
        fixes.push(format!("add {} to the recipe", nodes.join(", ")));
    }
    let revision = crate::provenance::revision(&recipe.context);
    if revision.is_none() {
        missing.push("revision (the recipe is not in a git checkout)".to_owned());
        fixes.push("build from a git checkout for `revision`".to_owned());
        if std::env::var_os("SOURCE_DATE_EPOCH").is_none() {
            missing.push("created (no SOURCE_DATE_EPOCH and no git: it would be 1970)".to_owned());
            fixes.push("set `SOURCE_DATE_EPOCH` (or use git) for `created`".to_owned());
        }
    }
    if !missing.is_empty() {
        out.push(
            Finding::new(
                MISSING_LABELS,
                format!("missing OCI labels: {}", missing.join(", ")),
                Some(recipe.name.span),
            )
            .help(fixes.join("; ")),
        );
    }
}

fn environment(recipe: &Recipe, out: &mut Vec<Finding>) {
    for (name, value) in &recipe.runtime.env {
        let span = recipe.node_span("env", Some(name));
        if secret_name(name) && !value.is_empty() {
            out.push(Finding::new(
                SECRET_IN_ENV,
                format!("`{name}` looks like a secret and is baked into the image config"),
                span,
            ));
        }
        if recipe.tre && (name == "TMPDIR" || name == "TMP") && !value.starts_with("/scratch") {
            out.push(Finding::new(
                TMPDIR_NOT_SCRATCH,
                format!("`{name}={value}` sends temporary files outside /scratch"),
                span,
            ));
        }
    }
}

/// A regular file a `copy` line puts into the image, and the line.
pub struct Copied {
    pub entry: Entry,
    pub span: SourceSpan,
}

/// Every file the recipe's `copy` lines take from the host, expanded exactly
/// as the build expands them (same walk, same excludes).
pub fn copied_files(recipe: &Recipe) -> Result<Vec<Copied>, LintError> {
    let mut out = Vec::new();
    for op in recipe.layers.iter().flat_map(|l| &l.ops) {
        let Op::Copy {
            src,
            dest,
            mode,
            exclude,
            ..
        } = &op.value
        else {
            continue;
        };
        let request = CopyRequest {
            src,
            dest,
            mode: *mode,
            uid: 0,
            gid: 0,
            exclude,
            mtime: 0,
        };
        let entries = copy::expand(recipe, &request).map_err(|e| match e {
            crate::assemble::AssembleError::Recipe(r) => LintError::Recipe(r),
            other => LintError::Recipe(recipe.error(
                src.span,
                other.to_string(),
                "cannot read",
                Some("check that the file exists and is readable".into()),
            )),
        })?;
        out.extend(
            entries
                .into_iter()
                .filter(|e| matches!(e.kind, Kind::File(_)))
                .map(|entry| Copied {
                    entry,
                    span: op.span,
                }),
        );
    }
    Ok(out)
}

fn data(copied: &[Copied], out: &mut Vec<Finding>) {
    // One finding per `copy` line, listing its data files.
    let mut by_line: Vec<(SourceSpan, Vec<String>)> = Vec::new();
    for c in copied {
        let Kind::File(content) = &c.entry.kind else {
            continue;
        };
        let path = c.entry.path.as_str();
        let extension = Path::new(path)
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        let by_name = extension.is_some_and(|e| DATA_EXTENSIONS.contains(&e.as_str()));
        if !by_name && content.size <= DATA_SIZE_LIMIT {
            continue;
        }
        let item = format!("/{path} ({})", human_size(content.size));
        match by_line.iter_mut().find(|(s, _)| *s == c.span) {
            Some((_, items)) => items.push(item),
            None => by_line.push((c.span, vec![item])),
        }
    }
    for (span, items) in by_line {
        out.push(
            Finding::new(
                DATA_IN_IMAGE,
                format!(
                    "{} copied file(s) look like data: data comes from /safe_data at run time",
                    items.len()
                ),
                Some(span),
            )
            .items(items),
        );
    }
}

pub fn human_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

/// Names of the Hugging Face libraries (as Debian packages or PyPI
/// requirements) that reach for the Hub at run time.
const HF_NAMES: &[&str] = &[
    "transformers",
    "huggingface",
    "sentence-transformers",
    "diffusers",
    "datasets",
];

/// Files in which Python projects list their dependencies.
fn requirements_file(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    (name.starts_with("requirements") && name.ends_with(".txt"))
        || matches!(
            name,
            "pyproject.toml" | "environment.yml" | "setup.cfg" | "Pipfile"
        )
}

/// STR012: Hugging Face libraries among the packages or the copied
/// requirements, while the image's environment lets them go online.
pub fn network_at_runtime(
    recipe: &Recipe,
    env: &[(String, String)],
    packages: &[&str],
    copied: &[Copied],
) -> Option<Finding> {
    if env.iter().any(|(k, v)| k == "HF_HUB_OFFLINE" && v == "1") {
        return None;
    }
    let mut users: Vec<String> = packages
        .iter()
        .filter(|p| HF_NAMES.iter().any(|n| p.contains(n)))
        .map(|p| format!("package {p}"))
        .collect();
    for c in copied {
        let (Kind::File(content), path) = (&c.entry.kind, c.entry.path.as_str()) else {
            continue;
        };
        if !requirements_file(path) || content.size > 1 << 20 {
            continue;
        }
        let Source::Host(host) = &content.source else {
            continue;
        };
        let text = fs::read_to_string(host)
            .unwrap_or_default()
            .to_ascii_lowercase();
        if HF_NAMES.iter().any(|n| text.contains(n)) {
            users.push(format!("/{path}"));
        }
    }
    if users.is_empty() {
        return None;
    }
    let span = recipe
        .node_span("env", Some("HF_HUB_OFFLINE"))
        .or_else(|| recipe.node_span("tre", None))
        .or_else(|| recipe.python.as_ref().map(|p| p.span))
        .or_else(|| recipe.debian.as_ref().map(|d| d.span));
    Some(
        Finding::new(
            NETWORK_AT_RUNTIME,
            "Hugging Face libraries will try the network, which a TRE does not have",
            span,
        )
        .items(users),
    )
}

pub fn no_entrypoint() -> Finding {
    Finding::new(
        NO_ENTRYPOINT,
        "nothing runs when the container starts without a command",
        None,
    )
}
