//! What each fuzz target does with its input, in one file shared by the fuzz
//! targets (`fuzz/fuzz_targets/`, through `#[path]`) and the regression test
//! that replays every input kept under `tests/data/fuzz/<target>/`
//! (`tests/fuzz.rs`), so that a crash found once is replayed by `cargo test`
//! through exactly the code the fuzzer ran.
//!
//! Each function feeds its bytes to the production entry point and returns
//! what a user would see: the error rendered as strata prints it (rendering
//! is part of what must not crash), or a short summary of what was read.

use std::fmt::Write as _;
use std::path::Path;

use miette::{Diagnostic, GraphicalReportHandler, GraphicalTheme};

/// A target's function: the input's bytes in, what a user would see out.
pub type Target = fn(&[u8]) -> String;

/// Every target: its name (the folder of its inputs) and its function.
pub const TARGETS: &[(&str, Target)] = &[
    ("recipe", recipe),
    ("lock", lock),
    ("deb", deb),
    ("control", control),
    ("base", base),
    ("wheel", wheel),
    ("requirements", requirements),
    ("pylock", pylock),
];

/// Feeds `data` to the target called `name`.
pub fn run(name: &str, data: &[u8]) -> String {
    TARGETS
        .iter()
        .find(|(target, _)| *target == name)
        .map_or_else(|| panic!("no fuzz target `{name}`"), |(_, f)| f(data))
}

/// The bytes between the documents of a multi-document input (`base`).
pub const SEPARATOR: &[u8] = b"\n--8<--\n";

fn render(error: &dyn Diagnostic) -> String {
    let mut out = String::new();
    let handler = GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor());
    // Writing into a String cannot fail.
    let _ = handler.render_report(&mut out, error);
    out
}

/// A recipe, decoded.
pub fn recipe(data: &[u8]) -> String {
    let path = Path::new("fuzz/image.kdl");
    match strata_builder::recipe::Recipe::decode(path, data.to_vec()) {
        Ok(recipe) => format!("{} layers", recipe.layers.len()),
        Err(e) => render(&e),
    }
}

/// A lock, decoded.
pub fn lock(data: &[u8]) -> String {
    let path = Path::new("fuzz/image.lock");
    match strata_builder::lock::Lock::decode(path, data.to_vec()) {
        Ok(lock) => format!("{} platforms", lock.platforms.len()),
        Err(e) => render(&e),
    }
}

/// A `.deb`, unpacked (ar, control tar and fields, data tar index).
pub fn deb(data: &[u8]) -> String {
    let Ok(dir) = tempfile::tempdir() else {
        return String::new();
    };
    let deb = dir.path().join("fuzz.deb");
    if std::fs::write(&deb, data).is_err() {
        return String::new();
    }
    match strata_debian::deb::unpack(&deb, &dir.path().join("data.tar")) {
        Ok(unpacked) => format!("{} entries", unpacked.entries.len()),
        Err(e) => render(&e),
    }
}

/// deb822 paragraphs, as `Packages`, `status` and `control` are read.
pub fn control(data: &[u8]) -> String {
    let mut out = String::new();
    let read = strata_debian::control::for_each_paragraph(data, |paragraph| {
        let _ = write!(
            out,
            "{:?} {}",
            paragraph.get("Package"),
            paragraph.text().len()
        );
        // Keep the summary short, cut on a character boundary.
        out.truncate(out.floor_char_boundary(64));
        Ok(())
    });
    match read {
        Ok(()) => out,
        Err(e) => e.to_string(),
    }
}

/// An OCI layout as a recipe's `base`: `index.json`, the manifest, the
/// config and one uncompressed layer, separated by [`SEPARATOR`]. Digests and
/// sizes are filled in where the documents say `@MANIFEST`/`@MSIZE`
/// (index), `@CONFIG`/`@CSIZE` and `@LAYER`/`@LSIZE` (manifest) and `@DIFF`
/// (config), so that mutations reach the parsers behind the digest checks.
pub fn base(data: &[u8]) -> String {
    use strata_oci::digest::Digest;
    let mut parts = split(data, SEPARATOR);
    parts.resize(4, Vec::new());
    let [index, manifest, config, layer] = [0, 1, 2, 3].map(|i| std::mem::take(&mut parts[i]));
    let fill = |text: Vec<u8>, blobs: &[(&str, &str, &[u8])]| {
        let mut text = text;
        for (digest, size, blob) in blobs {
            text = replace(
                &text,
                digest.as_bytes(),
                Digest::of(blob).to_string().as_bytes(),
            );
            text = replace(&text, size.as_bytes(), blob.len().to_string().as_bytes());
        }
        text
    };
    let config = replace(&config, b"@DIFF", Digest::of(&layer).to_string().as_bytes());
    let manifest = fill(
        manifest,
        &[("@CONFIG", "@CSIZE", &config), ("@LAYER", "@LSIZE", &layer)],
    );
    let index = fill(index, &[("@MANIFEST", "@MSIZE", &manifest)]);
    let Ok(dir) = tempfile::tempdir() else {
        return String::new();
    };
    let layout = dir.path().join("layout");
    let blobs = layout.join("blobs/sha256");
    let written = std::fs::create_dir_all(&blobs).is_ok()
        && std::fs::write(
            layout.join("oci-layout"),
            r#"{"imageLayoutVersion":"1.0.0"}"#,
        )
        .is_ok()
        && std::fs::write(layout.join("index.json"), &index).is_ok()
        && [&manifest, &config, &layer]
            .iter()
            .all(|blob| std::fs::write(blobs.join(Digest::of(blob).hex()), blob).is_ok());
    if !written {
        return String::new();
    }
    let text = format!(
        "name \"fuzz\"\nbase \"oci:layout@{}\"\nplatform \"linux/amd64\"\n",
        Digest::of(&manifest)
    );
    let recipe = match strata_builder::recipe::Recipe::decode(
        &dir.path().join("image.kdl"),
        text.into_bytes(),
    ) {
        Ok(recipe) => recipe,
        Err(e) => return render(&e),
    };
    let Ok(cache) = strata_cache::Cache::at(dir.path().join("cache")) else {
        return String::new();
    };
    let registry = strata_registry::Options::default();
    let sources = strata_builder::base::Sources::new(&cache, &registry, true);
    let platform = strata_oci::platform::Platform {
        os: "linux".into(),
        architecture: "amd64".into(),
        variant: None,
    };
    match strata_builder::base::resolve(&recipe, &platform, &sources) {
        Ok(base) => format!(
            "{} layers, {} paths, {} files",
            base.layers.len(),
            base.lower.view.paths().count(),
            base.lower.files.len()
        ),
        Err(e) => render(&e),
    }
}

/// A wheel, unpacked into a cache and checked against its RECORD.
pub fn wheel(data: &[u8]) -> String {
    use strata_pypi::wheel;
    let Ok(dir) = tempfile::tempdir() else {
        return String::new();
    };
    let name = "fuzz-1.0-py3-none-any.whl";
    let path = dir.path().join(name);
    let Ok(cache) = strata_cache::Cache::at(dir.path().join("cache")) else {
        return String::new();
    };
    if std::fs::write(&path, data).is_err() {
        return String::new();
    }
    let sha256 = strata_oci::digest::Digest::of(data);
    match wheel::unpack(&cache, &path, &sha256, name, &wheel::Limits::default()) {
        Ok(unpacked) => {
            let metadata = format!("{}/METADATA", unpacked.dist_info);
            match wheel::read_member(&cache, &unpacked, &metadata, 1 << 20) {
                Ok(bytes) => format!(
                    "{} members, METADATA {}",
                    unpacked.members.len(),
                    bytes.len()
                ),
                Err(e) => render(&e),
            }
        }
        Err(e) => render(&e),
    }
}

/// A pip requirements file.
pub fn requirements(data: &[u8]) -> String {
    let Ok(dir) = tempfile::tempdir() else {
        return String::new();
    };
    let path = dir.path().join("requirements.txt");
    if std::fs::write(&path, data).is_err() {
        return String::new();
    }
    match strata_pypi::requirements::read(&path) {
        Ok(read) => format!("{} requirements", read.requirements.len()),
        Err(e) => render(&e),
    }
}

/// A PEP 751 `pylock.toml`, and the same text as a `uv.lock`.
pub fn pylock(data: &[u8]) -> String {
    use strata_pypi::pylock;
    let Ok(text) = std::str::from_utf8(data) else {
        return String::new();
    };
    let mut out = String::new();
    for read in [pylock::read_pylock, pylock::read_uv_lock] {
        match read(text, Path::new("fuzz/pylock.toml")) {
            Ok(lock) => {
                let _ = writeln!(out, "{} packages", lock.packages.len());
            }
            Err(e) => out.push_str(&render(&e)),
        }
    }
    out
}

fn split(data: &[u8], separator: &[u8]) -> Vec<Vec<u8>> {
    let mut parts = Vec::new();
    let mut rest = data;
    while let Some(at) = find(rest, separator) {
        parts.push(rest[..at].to_vec());
        rest = &rest[at + separator.len()..];
    }
    parts.push(rest.to_vec());
    parts
}

fn replace(text: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    split(text, from).join(to)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
