//! Programs whose interpreter the image lacks: a script's `#!` line, or an
//! ELF executable's `PT_INTERP` (its dynamic loader). Debian packages never
//! declare the Essential set (`/bin/sh`, bash, …); an image built with
//! `essential #false` may therefore ship programs that cannot start.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};

use strata_oci::entry::{Content, Kind, LayerPlan};
use strata_oci::path::ImagePath;
use strata_oci::view::{View, ViewKind};

/// Missing interpreter → the programs of `plans` that need it, in path
/// order; `view` is the finished image's filesystem.
pub fn missing(plans: &[LayerPlan], view: &View) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut seen = std::collections::BTreeSet::new();
    // Later layers win: walk them last to first.
    for layer in plans.iter().rev() {
        for entry in &layer.entries {
            if !seen.insert(entry.path.clone()) {
                continue;
            }
            let Kind::File(content) = &entry.kind else {
                continue;
            };
            if entry.mode & 0o111 == 0
                || !matches!(view.get(&entry.path).map(|e| &e.kind), Some(ViewKind::File))
            {
                continue;
            }
            let Some(interpreter) = interpreter(content) else {
                continue;
            };
            if !exists(view, &interpreter) {
                out.entry(interpreter)
                    .or_default()
                    .push(format!("/{}", entry.path.as_str()));
            }
        }
    }
    for files in out.values_mut() {
        files.sort();
    }
    out
}

/// `/bin/bash, needed by 3 program(s): /usr/bin/a, …`.
pub fn describe(interpreter: &str, files: &[String]) -> String {
    needed_by(interpreter, files, "program(s)")
}

/// `WHAT, needed by N NOUN: first three users, …`.
pub(crate) fn needed_by(what: &str, users: &[String], noun: &str) -> String {
    let shown: Vec<&str> = users.iter().take(3).map(String::as_str).collect();
    let more = if users.len() > shown.len() {
        ", …"
    } else {
        ""
    };
    format!(
        "{what}, needed by {} {noun}: {}{more}",
        users.len(),
        shown.join(", ")
    )
}

fn exists(view: &View, path: &str) -> bool {
    ImagePath::parse(path)
        .ok()
        .and_then(|p| view.resolve(&p))
        .is_some_and(|p| matches!(view.get(&p).map(|e| &e.kind), Some(ViewKind::File)))
}

/// The program that runs this one: the `#!` interpreter (for
/// `#!/usr/bin/env NAME`, `env` itself) or the ELF loader.
fn interpreter(content: &Content) -> Option<String> {
    let mut file = content.open_seekable().ok()?;
    let mut head = Vec::with_capacity(256);
    (&mut file).take(256).read_to_end(&mut head).ok()?;
    if let Some(line) = head.strip_prefix(b"#!") {
        let line = line.split(|b| *b == b'\n').next()?;
        let line = String::from_utf8_lossy(line);
        let program = line.split_whitespace().next()?;
        return program.starts_with('/').then(|| program.to_owned());
    }
    file.seek(SeekFrom::Start(0)).ok()?;
    let loader = strata_ldconfig::elf_interpreter(file).ok()??;
    Some(String::from_utf8_lossy(&loader).into_owned())
}
