//! `strata lint`: the lint rules over one or more recipes.
//!
//! Findings are the command's output (stdout), like hadolint's; the exit
//! code says whether they fail the run.

use std::path::{Path, PathBuf};

use miette::Report;

use strata_builder::build::BuildOptions;
use strata_builder::lint;
use strata_builder::recipe::Recipe;
use strata_cache::Cache;
use strata_progress as progress;
use strata_registry as registry;

use super::args::LintFormat;
use super::{color, print};

pub struct LintOptions {
    pub format: LintFormat,
    pub allow: Vec<String>,
    pub strict: bool,
    pub static_only: bool,
    pub offline: bool,
}

pub fn lint_command(
    recipes: &[PathBuf],
    options: &LintOptions,
    registry: &registry::Options,
) -> Result<(), Report> {
    let mut results = Vec::new();
    for path in recipes {
        results.push(lint_recipe(path, options, registry)?);
    }
    match options.format {
        LintFormat::Human => {
            let color = color(&std::io::stdout());
            for (recipe, findings) in &results {
                print(lint::render::human(recipe, findings, color))?;
            }
        }
        // One recipe, one document; several (a pre-commit run), an array.
        LintFormat::Json => {
            let mut documents: Vec<_> = results
                .iter()
                .map(|(recipe, findings)| lint::render::json(recipe, findings))
                .collect();
            match documents.len() {
                1 => print(format_args!("{:#}\n", documents.remove(0)))?,
                _ => print(format_args!("{:#}\n", serde_json::Value::Array(documents)))?,
            }
        }
        LintFormat::Sarif => print(format_args!("{:#}\n", lint::render::sarif(&results)))?,
    }
    if results
        .iter()
        .any(|(_, findings)| lint::fails(findings, options.strict))
    {
        return Err(Report::new(LintFailed));
    }
    Ok(())
}

fn lint_recipe(
    recipe_path: &Path,
    options: &LintOptions,
    registry: &registry::Options,
) -> Result<(Recipe, Vec<lint::Finding>), Report> {
    let recipe = Recipe::load(recipe_path)?;
    let allow = lint::Allow::new(&recipe, &options.allow)?;
    if options.static_only {
        let findings = lint::check_recipe(&recipe, &allow)?;
        return Ok((recipe, findings));
    }
    let cache = Cache::from_env()?;
    if recipe.debian.is_some() || recipe.python.is_some() {
        // The image rules read the files packages install, so their packages
        // are downloaded as a build would: say where they go.
        tracing::info!(
            "reading the recipe's packages, downloading those not yet in the cache at `{}` (`--static` checks the recipe alone)",
            cache.root().display()
        );
    }
    let build_options = BuildOptions {
        offline: options.offline,
        ..BuildOptions::new(recipe_path, registry.clone())
    };
    let findings = match strata_builder::build::plan(&recipe, &build_options, &cache) {
        Ok(planned) => lint::check(&recipe, &planned, &allow)?,
        // A recipe the build rejects still gets its recipe findings, when
        // they explain the rejection.
        Err(error) => {
            let findings = lint::check_recipe(&recipe, &allow)?;
            if !lint::fails(&findings, false) {
                return Err(error.into());
            }
            progress::get()
                .suspend(|| eprintln!("note: image rules not run, the build stops first: {error}"));
            findings
        }
    };
    Ok((recipe, findings))
}

/// Findings that fail the run were already printed: exit 1 without more output.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("lint found problems")]
struct LintFailed;
