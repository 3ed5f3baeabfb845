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
