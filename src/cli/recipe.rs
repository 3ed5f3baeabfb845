//! Commands that write files beside a recipe: `init` (a starter recipe)
//! and `lock` (the resolved Debian packages).

use std::path::Path;

use miette::Report;

use strata_builder::build::BuildOptions;
use strata_builder::recipe::Recipe;
use strata_cache::Cache;
use strata_registry as registry;

use super::args::LockFormat;
use super::say;

pub fn init_command() -> Result<(), Report> {
    let recipe = strata_builder::init::init(Path::new("."))?;
    say(format!(
        "wrote {} and analysis/main.py; build with `strata build {}`",
        recipe.display(),
        recipe.display()
    ));
    Ok(())
}

/// `strata cache export` (`export`) or `import`: the recipe's locked
/// inputs, between the local cache and `store` (`oci:DIR` or
/// `REGISTRY/REPO`).
pub fn cache_command(
    recipe_path: &Path,
    store: &str,
    registry: registry::Options,
    export: bool,
) -> Result<(), Report> {
    use strata_builder::inputs::{self, Store};
    let recipe = Recipe::load(recipe_path)?;
    let cache = Cache::from_env()?;
    let options = BuildOptions {
        // The lock decides the inputs: it must be there and current.
        locked: true,
        // Importing is for a machine that may not reach the mirror.
        offline: !export,
        ..BuildOptions::new(recipe_path, registry.clone())
    };
    // A registry client only for a registry archive.
    let client;
    let store = match store.strip_prefix("oci:") {
        Some(dir) => Store::Layout(dir.into()),
        None => {
            client = strata_registry::Client::new(registry)?;
            Store::Registry(strata_builder::layer::shared::SharedCache::new(
                &client, store, false,
            )?)
        }
    };
    let count = if export {
        let files = strata_builder::build::locked_inputs(&recipe, &options, &cache)?;
        inputs::export(&files, &cache, &store)?
    } else {
        let files = strata_builder::build::locked_packages(&recipe, &options)?;
        let mut count = inputs::import(&files, &cache, &store)?;
        if let Some(digest) = strata_builder::build::registry_base(&recipe) {
            count += inputs::import_base(&digest, &cache, &store)?;
        }
        count
    };
    say(format!(
        "{} {count} file(s) {} {}",
        if export { "exported" } else { "imported" },
        if export { "to" } else { "from" },
        store.name()
    ));
    Ok(())
}

pub fn lock_command(
    recipe_path: &Path,
    registry: registry::Options,
    format: LockFormat,
) -> Result<(), Report> {
    let recipe = Recipe::load(recipe_path)?;
    let cache = Cache::from_env()?;
    let options = BuildOptions::new(recipe_path, registry);
    match strata_builder::build::lock(&recipe, &options, &cache)? {
        Some(lock) => {
            let count: usize = lock.platforms.values().map(Vec::len).sum::<usize>()
                + lock.wheels.values().map(Vec::len).sum::<usize>();
            say(format!(
                "locked {count} package(s) → {}",
                options.lock_path.display()
            ));
            if format == LockFormat::Pylock {
                print!("{}", lock.to_pylock());
            }
        }
        None => say("the recipe installs no packages: nothing to lock".to_owned()),
    }
    Ok(())
}
