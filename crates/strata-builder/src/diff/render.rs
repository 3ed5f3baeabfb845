//! The human-readable report of a diff: `-` for the first image, `+` for the
//! second, `~` for a path or package in both that changed.

use std::fmt::Write;

use super::{Diff, FileChange, Layers, Node, PackageChange, PlatformDiff, Status, What};

/// Config values longer than this (history, healthchecks) are cut in the
/// human report; `--json` has them whole.
const MAX_VALUE: usize = 160;

pub fn render(diff: &Diff) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "a  {}  {}", diff.a.image, diff.a.digest);
    let _ = writeln!(out, "b  {}  {}", diff.b.image, diff.b.digest);
    if diff.identical {
        out.push_str("identical\n");
        return out;
    }
    for platform in &diff.platforms {
        render_platform(&mut out, platform);
    }
    for (side, platforms) in [("a", &diff.only_in_a), ("b", &diff.only_in_b)] {
        if !platforms.is_empty() {
            let _ = writeln!(out, "\nonly in {side}: {}", platforms.join(", "));
        }
    }
    let _ = writeln!(out, "\n{}", summary(diff));
    out
}

fn render_platform(out: &mut String, p: &PlatformDiff) {
    let _ = writeln!(out, "\nplatform {}", p.platform);
    let pair = |old: &str, new: &str| {
        if old == new {
            format!("{old} (same)")
        } else {
            format!("{old} → {new}")
        }
    };
    let _ = writeln!(
        out,
        "  manifest  {}",
        pair(&p.old.manifest, &p.new.manifest)
    );
    if p.old.manifest == p.new.manifest {
        // The manifest pins config and layers: nothing below it can differ.
        return;
    }
    let _ = writeln!(out, "  config    {}", pair(&p.old.config, &p.new.config));

    let _ = writeln!(out, "\n  config: {} changed", p.config.len());
    for c in &p.config {
        let name = match &c.key {
            Some(key) => format!("{} {key}", c.field),
            None => c.field.clone(),
        };
        let _ = writeln!(out, "    {name}");
        for (sign, value) in [('-', &c.old), ('+', &c.new)] {
            if let Some(value) = value {
                let _ = writeln!(out, "      {sign} {}", cut(value));
            }
        }
    }
    render_layers(out, &p.layers);
    render_files(out, &p.files);
    render_packages(out, &p.packages);
}

fn cut(value: &str) -> String {
    match value.char_indices().nth(MAX_VALUE) {
        Some((end, _)) => format!("{}…", &value[..end]),
        None => value.to_owned(),
    }
}

fn render_layers(out: &mut String, layers: &Layers) {
    let _ = writeln!(
        out,
        "\n  layers: {} → {}, {} changed",
        layers.old_count, layers.new_count, layers.changed
    );
    for e in &layers.entries {
        let status = match e.status {
            Status::Same => "same",
            Status::Added => "added",
            Status::Removed => "removed",
            Status::Changed => "changed",
        };
        let mut sides = Vec::new();
        if e.status == Status::Same {
            sides.extend(e.old.iter().map(|l| (' ', l)));
        } else {
            sides.extend(e.old.iter().map(|l| ('-', l)));
            sides.extend(e.new.iter().map(|l| ('+', l)));
        }
        for (i, (sign, l)) in sides.into_iter().enumerate() {
            let head = if i == 0 {
                format!("{:>3}  {status:<8}", e.index)
            } else {
                " ".repeat(13)
            };
            let _ = writeln!(out, "    {head} {sign} {}  {} bytes", l.digest, l.size);
        }
    }
}

fn render_files(out: &mut String, files: &[FileChange]) {
    let count = |s| files.iter().filter(|f| f.change == s).count();
    let _ = writeln!(
        out,
        "\n  files: {} added, {} removed, {} changed",
        count(Status::Added),
        count(Status::Removed),
        count(Status::Changed)
    );
    for f in files {
        match (f.change, &f.old, &f.new) {
            (Status::Changed, Some(old), Some(new)) => {
                let what: Vec<String> = f.what.iter().map(|w| detail(*w, old, new)).collect();
                let _ = writeln!(out, "    ~ {} ({})", f.path, what.join(", "));
            }
            (Status::Removed, ..) => {
                let _ = writeln!(out, "    - {}", f.path);
            }
            _ => {
                let _ = writeln!(out, "    + {}", f.path);
            }
        }
    }
}

fn detail(what: What, old: &Node, new: &Node) -> String {
    let target = |n: &Node| n.target.clone().unwrap_or_default();
    match what {
        What::Kind => format!("kind {:?}→{:?}", old.kind, new.kind).to_lowercase(),
        What::Target => format!("link target {}→{}", target(old), target(new)),
        What::Content => "content".to_owned(),
        What::Size => format!("size {}→{}", old.size, new.size),
        What::Mode => format!("mode {:04o}→{:04o}", old.mode, new.mode),
        What::Owner => format!("owner {}:{}→{}:{}", old.uid, old.gid, new.uid, new.gid),
        What::Mtime => "mtime".to_owned(),
    }
}

fn render_packages(out: &mut String, packages: &[PackageChange]) {
    let count = |s| packages.iter().filter(|p| p.change == s).count();
    let _ = writeln!(
        out,
        "\n  packages: {} added, {} removed, {} changed",
        count(Status::Added),
        count(Status::Removed),
        count(Status::Changed)
    );
    for p in packages {
        let old = p.old.as_deref().unwrap_or_default();
        let new = p.new.as_deref().unwrap_or_default();
        let _ = match p.change {
            Status::Changed => writeln!(out, "    ~ {} {old} → {new}", p.name),
            Status::Removed => writeln!(out, "    - {} {old}", p.name),
            _ => writeln!(out, "    + {} {new}", p.name),
        };
    }
}

/// One line: how many of each kind of difference, over all platforms.
fn summary(diff: &Diff) -> String {
    let total = |f: fn(&PlatformDiff) -> usize| diff.platforms.iter().map(f).sum::<usize>();
    let counts = [
        (total(|p| p.config.len()), "config key"),
        (total(|p| p.layers.changed), "layer"),
        (total(|p| p.files.len()), "file"),
        (total(|p| p.packages.len()), "package"),
    ];
    let one_sided = diff.only_in_a.len() + diff.only_in_b.len();
    let platforms = format!(
        "{one_sided} platform{} in one image only",
        if one_sided == 1 { "" } else { "s" }
    );
    if counts.iter().all(|(n, _)| *n == 0) {
        return if one_sided > 0 {
            format!("images differ in their platforms: {platforms}")
        } else {
            "images differ only in their manifests or index".to_owned()
        };
    }
    let parts: Vec<String> = counts
        .iter()
        .map(|(n, what)| format!("{n} {what}{}", if *n == 1 { "" } else { "s" }))
        .collect();
    let mut line = format!(
        "images differ in {} and {}",
        parts[..3].join(", "),
        parts[3]
    );
    if one_sided > 0 {
        let _ = write!(line, "; {platforms}");
    }
    line
}
