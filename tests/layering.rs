//! Debian packages in layers by source package (`spec/layers.md`): an
//! upgrade changes only its source's layer, each layer carries its packages'
//! dpkg records, and the image's files are the same however many layers
//! hold them.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use crate::util::apt::{AptRepo, Pkg};
use crate::util::{TarEntry, TestDir, layers, manifest};

/// glibc (two binary packages, in two versions), a heavy source, and two
/// small packages laid out outside a source folder.
fn repo(t: &TestDir) -> (AptRepo, String) {
    let mut repo = AptRepo::new(t, "good");
    let heavy = crate::util::noise(300_000);
    for version in ["1.0", "2.0"] {
        repo.add(&Pkg {
            name: "libc6",
            version,
            arch: "amd64",
            fields: &[("Source", "glibc")],
            files: &[
                (
                    "/usr/lib/x86_64-linux-gnu/libc.so.6",
                    version.as_bytes(),
                    0o755,
                ),
                ("/usr/share/doc/libc6/copyright", b"LGPL\n", 0o644),
            ],
        });
    }
    repo.add(&Pkg {
        name: "libc-bin",
        version: "1.0",
        arch: "amd64",
        fields: &[("Source", "glibc"), ("Depends", "libc6")],
        files: &[("/usr/bin/ldd", b"#!/bin/sh\n", 0o755)],
    });
    repo.add(&Pkg {
        name: "big-data",
        version: "1.0",
        arch: "all",
        fields: &[("Source", "big")],
        files: &[("/usr/share/big/data.bin", &heavy, 0o644)],
    });
    for name in ["tool-a", "tool-b"] {
        repo.add(&Pkg {
            name,
            version: "1.0",
            arch: "amd64",
            fields: &[],
            files: &[(&format!("/usr/bin/{name}"), b"tool", 0o755)],
        });
    }
    repo.publish("stable");
    repo.export_key(&t.join("image/keys/repo.gpg"));
    let url = repo.serve();
    (repo, url)
}

fn recipe(t: &TestDir, url: &str, libc: &str, layers: Option<u32>) -> std::path::PathBuf {
    let layers = layers.map_or(String::new(), |n| format!("    layers {n}\n"));
    t.write(
        "image/image.kdl",
        &format!(
            "name \"layered\"\nversion \"1\"\nbase \"scratch\"\nplatform \"linux/amd64\"\ntre #false\n\
             debian \"stable\" mirror=\"{url}\" updates=#false security=#false keyring=\"keys/repo.gpg\" {{\n\
             {layers}    install \"libc6={libc}\" \"libc-bin\" \"big-data\" \"tool-a\" \"tool-b\"\n}}\n"
        ),
    )
}

/// Each layer's history line and digest.
fn layer_digests(out: &Path) -> Vec<(String, String)> {
    let manifest = manifest(out, "1");
    let config = crate::util::config(out, "1");
    let history = config["history"].as_array().unwrap();
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .zip(history)
        .map(|(layer, step)| {
            (
                step["created_by"].as_str().unwrap().to_owned(),
                layer["digest"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// A file as a container sees it: kind, mode, owner, link target, content.
type Seen = (char, u32, u64, u64, Option<String>, Vec<u8>);

/// The image's files after applying every layer in order (no whiteouts in
/// strata's package layers), without times: what a container sees.
fn flattened(out: &Path) -> BTreeMap<String, Seen> {
    let mut files = BTreeMap::new();
    for layer in layers(out, "1") {
        for TarEntry {
            path,
            kind,
            mode,
            uid,
            gid,
            link,
            content,
            ..
        } in layer
        {
            let path = path.trim_end_matches('/').to_owned();
            files.insert(path, (kind, mode, uid, gid, link, content));
        }
    }
    files
}

#[test]
fn an_upgrade_changes_only_the_layer_of_its_source() {
    let t = TestDir::new();
    let (_repo, url) = repo(&t);
    let (old, new) = (t.join("old"), t.join("new"));
    // Three layers: the heaviest source alone, a shared layer for the
    // rest, the configuration.
    t.build(&recipe(&t, &url, "1.0", Some(4)), &old);
    fs::remove_file(t.join("image/image.lock")).unwrap();
    t.build(&recipe(&t, &url, "2.0", Some(4)), &new);

    let (before, after) = (layer_digests(&old), layer_digests(&new));
    let steps: Vec<&str> = before.iter().map(|(step, _)| step.as_str()).collect();
    assert_eq!(before.len(), after.len(), "{before:#?}\n{after:#?}");
    assert!(
        steps[0].ends_with("debian packages big-data"),
        "the heaviest source first: {steps:#?}"
    );
    assert!(
        steps.last().unwrap().contains("configuration"),
        "{steps:#?}"
    );
    let changed: Vec<&str> = before
        .iter()
        .zip(&after)
        .filter(|(a, b)| a.1 != b.1)
        .map(|(a, _)| a.0.as_str())
        .collect();
    assert_eq!(changed.len(), 1, "only glibc's layer changes: {changed:#?}");
    assert!(
        changed[0].contains("libc6") && changed[0].contains("libc-bin"),
        "the binary packages of one source share its layer: {changed:#?}"
    );

    // The layer that holds a package holds its dpkg records too.
    let layers = layers(&new, "1");
    let layer_of = |path: &str| {
        layers
            .iter()
            .position(|layer| layer.iter().any(|e| e.path == path))
            .unwrap_or_else(|| panic!("no layer has {path}"))
    };
    for (package, file) in [
        ("libc6", "usr/lib/x86_64-linux-gnu/libc.so.6"),
        ("libc-bin", "usr/bin/ldd"),
        ("big-data", "usr/share/big/data.bin"),
        ("tool-a", "usr/bin/tool-a"),
    ] {
        let status = format!("var/lib/dpkg/status.d/{package}");
        assert_eq!(layer_of(&status), layer_of(file), "{package}");
        assert_eq!(layer_of(&format!("{status}.md5sums")), layer_of(file));
    }
}

#[test]
fn the_files_are_the_same_in_one_layer_or_many() {
    let t = TestDir::new();
    let (_repo, url) = repo(&t);
    let (one, many) = (t.join("one"), t.join("many"));
    t.build(&recipe(&t, &url, "2.0", Some(1)), &one);
    t.build(&recipe(&t, &url, "2.0", None), &many);
    let steps = layer_digests(&one);
    assert_eq!(steps.len(), 1, "`layers 1` is one layer: {steps:#?}");
    assert!(layer_digests(&many).len() > 1);
    let (a, b) = (flattened(&one), flattened(&many));
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "the same paths"
    );
    for (path, entry) in &a {
        assert_eq!(Some(entry), b.get(path), "{path} differs");
    }
}

#[test]
fn a_layer_count_out_of_range_is_refused_where_it_is_written() {
    let t = TestDir::new();
    let recipe = recipe(&t, "http://127.0.0.1:9/debian", "2.0", Some(0));
    let err = t.build_fails(&recipe, &t.join("out"));
    assert!(
        err.contains("`layers` must be from 1 to 100") && err.contains("image.kdl:"),
        "{err}"
    );
}

#[test]
fn a_new_commit_leaves_the_package_layers_alone() {
    let t = TestDir::new();
    let (_repo, url) = repo(&t);
    let recipe = recipe(&t, &url, "1.0", Some(4));
    let dir = recipe.parent().unwrap();
    // Without SOURCE_DATE_EPOCH the epoch is the checkout's last commit;
    // both commits are later than the repository's release (2024-01-01).
    let build = |out: &str| {
        let output = t
            .build_cmd(&recipe, &t.join(out))
            .env_remove("SOURCE_DATE_EPOCH")
            .output()
            .unwrap();
        crate::util::assert_success(&output, "strata build");
        layer_digests(&t.join(out))
    };
    crate::util::git(dir, "2024-06-01T00:00:00Z", &["init", "-q"]);
    crate::util::git(dir, "2024-06-01T00:00:00Z", &["add", "."]);
    crate::util::git(dir, "2024-06-01T00:00:00Z", &["commit", "-qm", "first"]);
    let first = build("first");
    fs::write(dir.join("README"), "notes\n").unwrap();
    crate::util::git(dir, "2025-03-01T00:00:00Z", &["add", "."]);
    crate::util::git(dir, "2025-03-01T00:00:00Z", &["commit", "-qm", "second"]);
    let second = build("second");

    let created = |out: &str| crate::util::config(&t.join(out), "1")["created"].clone();
    assert_ne!(created("first"), created("second"), "the epoch moved");
    assert_eq!(first, second, "the package layers did not");
}
