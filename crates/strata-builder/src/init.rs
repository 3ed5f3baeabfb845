//! `strata init`: a commented starter recipe (TRE Python) and the folder
//! its `copy` expects, written without touching anything that exists.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

const RECIPE: &str = include_str!("starter.kdl");

const MAIN_PY: &str = "\"\"\"Analysis entry point: read from /safe_data, write to /safe_outputs.\"\"\"\n\nimport pathlib\n\nprint(\"inputs:\", sorted(p.name for p in pathlib.Path(\"/safe_data\").iterdir()))\n";

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum InitError {
    #[error("`{}` already exists", path.display())]
    #[diagnostic(help(
        "strata init never overwrites: run it in an empty folder, or move the file away"
    ))]
    Exists { path: PathBuf },
    #[error("cannot write `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Writes `image.kdl` and `analysis/main.py` into `dir`; returns the recipe's path.
pub fn init(dir: &Path) -> Result<PathBuf, InitError> {
    let recipe = dir.join("image.kdl");
    let main = dir.join("analysis/main.py");
    for path in [&recipe, &main] {
        if path.exists() {
            return Err(InitError::Exists { path: path.clone() });
        }
    }
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| InitError::Io { path, source }
    };
    std::fs::create_dir_all(dir.join("analysis")).map_err(io(&dir.join("analysis")))?;
    for (path, text) in [(&recipe, RECIPE), (&main, MAIN_PY)] {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .map_err(io(path))?;
    }
    Ok(recipe)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_starter_recipe_is_valid() {
        let dir = tempfile::tempdir().unwrap();
        let recipe = super::init(dir.path()).unwrap();
        let loaded = crate::recipe::Recipe::load(&recipe).unwrap();
        assert_eq!(loaded.name.value, "analysis");
        assert!(matches!(
            super::init(dir.path()),
            Err(super::InitError::Exists { .. })
        ));
    }
}
