//! Commands that read images in OCI layouts: `inspect`, `sbom`, `diff`.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use miette::{IntoDiagnostic, Report, WrapErr};

use strata_builder::diff;
use strata_builder::inspect;
use strata_builder::sbom;
use strata_oci::layout::Layout;

use super::{print, split_image, write_stdout};

pub fn inspect_command(image: &str, json: bool) -> Result<(), Report> {
    let (dir, tag) = split_image(image);
    let layout = Layout::open(Path::new(dir))?;
    let inspection = inspect::inspect(&layout, tag)?;
    print_result(&inspection, json, "inspection", || {
        inspect::render(&inspection)
    })
}

pub fn sbom_command(image: &str, format: Option<sbom::Format>) -> Result<(), Report> {
    let (dir, tag) = split_image(image);
    let layout = Layout::open(Path::new(dir))?;
    let document = sbom::artifact::find(&layout, tag, format)?;
    Ok(write_stdout(|out| out.write_all(&document))?)
}

pub fn diff_command(a: &str, b: &str, json: bool, exit_code: bool) -> Result<ExitCode, Report> {
    let (dir_a, tag_a) = split_image(a);
    let (dir_b, tag_b) = split_image(b);
    let layout_a = Layout::open(Path::new(dir_a))?;
    let layout_b = Layout::open(Path::new(dir_b))?;
    let input = |name, layout, tag| diff::Input { name, layout, tag };
    let result = diff::diff(&input(a, &layout_a, tag_a), &input(b, &layout_b, tag_b))?;
    print_result(&result, json, "diff", || diff::render::render(&result))?;
    // Differences are a result, not an error: no diagnostic on stderr, just
    // the status.
    Ok(if exit_code && !result.identical {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// A command's result on stdout: pretty JSON with `--json`, else the text
/// `render` makes for people.
fn print_result(
    result: &impl serde::Serialize,
    json: bool,
    what: &str,
    render: impl FnOnce() -> String,
) -> Result<(), Report> {
    if json {
        let text = serde_json::to_string_pretty(result)
            .into_diagnostic()
            .wrap_err_with(|| format!("cannot print the {what}"))?;
        print(format_args!("{text}\n"))?;
    } else {
        print(render())?;
    }
    Ok(())
}
