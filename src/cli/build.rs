//! `strata build`: check the recipe, build, write the output, then push
//! and report, for people on stderr or as JSON on stdout.

use std::path::{Path, PathBuf};
use std::time::Instant;

use miette::{IntoDiagnostic, Report, WrapErr};

use strata_builder::build::{BuildOptions, BuildReport, build};
use strata_builder::lint;
use strata_builder::output;
use strata_builder::push::{self, Destination, Image};
use strata_builder::recipe::Recipe;
use strata_cache::Cache;
use strata_registry::Client;

use super::args::Format;
use super::registry::{print_pushed, push_json};
use super::{color, print, say};

/// Where a build goes besides its output: registries and a digest file.
pub struct Publish {
    pub destinations: Vec<String>,
    pub digest_file: Option<PathBuf>,
}

pub fn build_command(
    recipe_path: &Path,
    output: Option<PathBuf>,
    format: Format,
    options: &BuildOptions,
    json: bool,
    publish: &Publish,
) -> Result<(), Report> {
    let started = Instant::now();
    let recipe = Recipe::load(recipe_path)?;
    if format == Format::None && publish.destinations.is_empty() {
        return Err(miette::miette!(
            help = "add `--push REGISTRY/REPO[:TAG]`, or choose an output format",
            "`--format none` writes no output, and there is nothing to push"
        ));
    }
    lint_before_build(&recipe)?;
    let cache = Cache::from_env()?;
    let report = build(&recipe, options, &cache)?;
    let built = &report.built;
    let dest = output.unwrap_or_else(|| match format {
        Format::Oci => PathBuf::from("out"),
        Format::OciArchive | Format::DockerArchive => PathBuf::from("out.tar"),
        Format::None => PathBuf::new(),
    });
    match format {
        Format::Oci => output::layout::write(&dest, built, &cache)?,
        Format::OciArchive => output::archive::write_oci(&dest, built)?,
        Format::DockerArchive => output::archive::write_docker(&dest, built, &recipe.name)?,
        Format::None => {}
    }
    if !json {
        print_built(&recipe, &report, &dest, started);
    }
    let mut pushed = Vec::new();
    if !publish.destinations.is_empty() {
        let destinations = publish
            .destinations
            .iter()
            .map(|d| Destination::parse(d, &built.tags))
            .collect::<Result<Vec<_>, _>>()?;
        let client = Client::new(options.registry.clone())?;
        let image = Image::from_blobs(&built.blobs, &built.top, &built.referrers)?;
        pushed = push::push(&client, &image, &destinations)?;
        if !json {
            print_pushed(&pushed);
        }
    }
    if let Some(path) = &publish.digest_file {
        let digest = built
            .top
            .digest()
            .try_into()
            .into_diagnostic()
            .wrap_err("the image's digest is not sha256")?;
        push::write_digest_file(path, &digest)?;
    }
    if json {
        let result = build_json(&report, &dest, started, &pushed);
        print(format_args!(
            "{}\n",
            serde_json::to_string_pretty(&result).into_diagnostic()?
        ))?;
    }
    Ok(())
}

/// The lint rules that stop a build run first, so a broken recipe fails
/// before any download.
fn lint_before_build(recipe: &Recipe) -> Result<(), Report> {
    let allow = lint::Allow::new(recipe, &[])?;
    let errors = lint::check_before_build(recipe, &allow);
    if errors.is_empty() {
        return Ok(());
    }
    eprint!(
        "{}",
        lint::render::human(recipe, &errors, color(&std::io::stderr()))
    );
    Err(miette::miette!(
        help = "fix them, or silence a rule with `lint { allow \"STRnnn\" }` in the recipe",
        "the recipe breaks lint rules that stop a build"
    ))
}

/// The result for people: a line per layer, then the image.
fn print_built(recipe: &Recipe, report: &BuildReport, dest: &Path, started: Instant) {
    let built = &report.built;
    for l in &report.layers {
        say(format!(
            "  layer {:<12} {}  {:>10} bytes  {}",
            l.name,
            l.blob.digest,
            l.blob.size,
            match (l.lazy, l.fetched, l.cached) {
                (true, _, _) => "remote",
                (_, true, _) => "fetched",
                (_, _, true) => "cached",
                _ => "built",
            }
        ));
    }
    // `--format none` has no output; the push report follows.
    let to = if dest.as_os_str().is_empty() {
        String::new()
    } else {
        format!(" → {}", dest.display())
    };
    say(format!(
        "built {}:{}{to} ({}) in {:.2}s",
        recipe.name.value,
        built.tags.join(","),
        built.top.digest(),
        started.elapsed().as_secs_f64()
    ));
}

/// The result for `--json`.
fn build_json(
    report: &BuildReport,
    dest: &Path,
    started: Instant,
    pushed: &[push::PushReport],
) -> serde_json::Value {
    let built = &report.built;
    let layers: Vec<_> = report
        .layers
        .iter()
        .map(|l| {
            serde_json::json!({
                "name": l.name,
                "digest": l.blob.digest,
                "diffId": l.blob.diff_id,
                "size": l.blob.size,
                "entries": l.blob.entries,
                "cached": l.cached,
                "fetched": l.fetched,
                "lazy": l.lazy,
            })
        })
        .collect();
    let manifests: Vec<_> = built
        .images
        .iter()
        .map(|i| serde_json::json!({"platform": i.platform.to_string(), "digest": i.manifest.digest}))
        .collect();
    serde_json::json!({
        "digest": built.top.digest().to_string(),
        "tags": built.tags,
        "output": (!dest.as_os_str().is_empty()).then_some(dest),
        "manifests": manifests,
        "layers": layers,
        "timings": report
            .timings
            .iter()
            .map(|(phase, d)| (phase.name().to_owned(), d.as_secs_f64().into()))
            .collect::<serde_json::Map<_, _>>(),
        "seconds": started.elapsed().as_secs_f64(),
        "pushed": pushed.iter().map(push_json).collect::<Vec<_>>(),
        "referrers": built
            .referrers
            .iter()
            .map(|d| serde_json::json!({
                "digest": d.digest().to_string(),
                "artifactType": d.artifact_type().as_ref().map(ToString::to_string),
            }))
            .collect::<Vec<_>>(),
    })
}
