//! The layer cache: a rebuild with nothing changed builds nothing, a changed
//! file rebuilds its layer alone, and a corrupt cache entry is rebuilt.

use std::fs;

use crate::util::{TestDir, run};

/// Builds with `--json` and returns which layers were built (not cached).
fn built_layers(t: &TestDir, recipe: &std::path::Path) -> Vec<String> {
    let out = run(t
        .strata()
        .args(["build", "--json", "-o"])
        .arg(t.join("out"))
        .arg(recipe));
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    json["layers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["cached"] == false)
        .map(|l| l["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn rebuilds_only_what_changed() {
    let t = TestDir::new();
    let recipe = t.example("app");
    assert_eq!(built_layers(&t, &recipe), ["strata", "runtime", "app"]);
    assert!(
        built_layers(&t, &recipe).is_empty(),
        "a no-op rebuild built layers"
    );

    fs::write(t.join("app/app/main.py"), "print('changed')\n").unwrap();
    assert_eq!(built_layers(&t, &recipe), ["app"]);

    // Corrupt every cached blob: each is detected on read and rebuilt.
    for entry in fs::read_dir(t.cache().join("blobs/sha256")).unwrap() {
        fs::write(entry.unwrap().path(), b"garbage").unwrap();
    }
    assert_eq!(built_layers(&t, &recipe), ["strata", "runtime", "app"]);
    crate::util::verify_layout(&t.join("out"), "2.1.0");
}

#[test]
fn two_builds_share_one_cache_at_once() {
    let t = TestDir::new();
    let recipe = t.example("app");
    let children: Vec<_> = ["one", "two"]
        .iter()
        .map(|out| {
            t.strata()
                .arg("build")
                .arg(&recipe)
                .arg("-o")
                .arg(t.join(out))
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    assert!(crate::util::snapshot(&t.join("one")) == crate::util::snapshot(&t.join("two")));
    crate::util::verify_layout(&t.join("one"), "2.1.0");
}

/// Builds `recipe` into a fresh `out`, checks the layout, and returns the
/// digest tagged `tag`.
fn clean_digest(t: &TestDir, recipe: &std::path::Path, tag: &str) -> String {
    let out = t.join("out");
    let _ = fs::remove_dir_all(&out);
    t.build(recipe, &out);
    crate::util::verify_layout(&out, tag);
    crate::util::tagged_digest(&out, tag)
}

/// The files of a cache folder, sorted.
fn cache_files(t: &TestDir, folder: &str, suffix: &str) -> Vec<std::path::PathBuf> {
    let Ok(entries) = fs::read_dir(t.cache().join(folder)) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    files.sort();
    files
}

/// Replaces the first match of `pattern` in `path` with what `to` makes of
/// its first capture group.
fn edit_number(path: &std::path::Path, pattern: &str, to: impl Fn(u64) -> u64) {
    let text = fs::read_to_string(path).unwrap();
    let re = regex::Regex::new(pattern).unwrap();
    let caps = re
        .captures(&text)
        .unwrap_or_else(|| panic!("{pattern} not in {text}"));
    let whole = caps.get(0).unwrap();
    let number: u64 = caps[1].parse().unwrap();
    let replaced = whole.as_str().replace(&caps[1], &to(number).to_string());
    let edited = format!(
        "{}{replaced}{}",
        &text[..whole.start()],
        &text[whole.end()..]
    );
    fs::write(path, edited).unwrap();
}

#[test]
fn damaged_layer_records_never_change_the_image() {
    let t = TestDir::new();
    let recipe = t.example("app");
    let clean = clean_digest(&t, &recipe, "2.1.0");
    let records = cache_files(&t, "layers", ".json");
    assert_eq!(records.len(), 3);

    // Every pair of records swapped: each key then names another layer.
    for (i, j) in [(0, 1), (0, 2), (1, 2)] {
        let (a, b) = (
            fs::read(&records[i]).unwrap(),
            fs::read(&records[j]).unwrap(),
        );
        fs::write(&records[i], b).unwrap();
        fs::write(&records[j], a).unwrap();
        assert_eq!(
            clean_digest(&t, &recipe, "2.1.0"),
            clean,
            "records {i} and {j} swapped"
        );
    }
    // A wrong size, diff_id or entry count in a record.
    for (pattern, change) in [
        (r#""size":(\d+)"#, 1),
        (r#""diff_size":(\d+)"#, 512),
        (r#""entries":(\d+)"#, 1),
    ] {
        for record in cache_files(&t, "layers", ".json") {
            edit_number(&record, pattern, |n| n + change);
        }
        assert_eq!(
            clean_digest(&t, &recipe, "2.1.0"),
            clean,
            "{pattern} changed"
        );
    }
    let diff_id = regex::Regex::new(r#""diff_id":"sha256:([0-9a-f]{64})""#).unwrap();
    for record in cache_files(&t, "layers", ".json") {
        let text = fs::read_to_string(&record).unwrap();
        let hex = diff_id.captures(&text).unwrap()[1].to_owned();
        fs::write(&record, text.replace(&hex, &"0".repeat(64))).unwrap();
    }
    assert_eq!(clean_digest(&t, &recipe, "2.1.0"), clean, "diff_id changed");
}

/// A package build whose layer must be built again from the cached copies of
/// its packages: the layer records are removed before each build.
fn package_digest(t: &TestDir, recipe: &std::path::Path) -> String {
    for record in cache_files(t, "layers", ".json") {
        fs::remove_file(record).unwrap();
    }
    clean_digest(t, recipe, "1")
}

#[test]
fn damaged_package_copies_never_change_the_image() {
    let t = TestDir::new();
    let (_repo, url) = crate::packages::standard_repo(&t);
    let recipe = crate::packages::recipe(&t, &url, "\"app\"");
    let clean = package_digest(&t, &recipe);

    // One byte of a file's content flipped in the unpacked copy.
    let (tar, at) = cache_files(&t, "debs", ".tar")
        .into_iter()
        .find_map(|tar| {
            let bytes = fs::read(&tar).unwrap();
            let at = bytes.windows(8).position(|w| w == b"app data")?;
            Some((tar, at))
        })
        .expect("the `app` package's copy");
    let mut bytes = fs::read(&tar).unwrap();
    bytes[at] ^= 0x20;
    fs::write(&tar, &bytes).unwrap();
    assert_eq!(
        package_digest(&t, &recipe),
        clean,
        "a byte flipped in {tar:?}"
    );

    // The offsets a record gives shifted by one byte.
    for record in cache_files(&t, "debs", ".json") {
        edit_number(&record, r#""offset":([1-9]\d*)"#, |n| n + 1);
    }
    assert_eq!(package_digest(&t, &recipe), clean, "offsets shifted");

    // Two packages' records swapped.
    let records = cache_files(&t, "debs", ".json");
    let (a, b) = (
        fs::read(&records[0]).unwrap(),
        fs::read(&records[1]).unwrap(),
    );
    fs::write(&records[0], b).unwrap();
    fs::write(&records[1], a).unwrap();
    assert_eq!(
        package_digest(&t, &recipe),
        clean,
        "package records swapped"
    );
}

#[test]
fn outputs_are_copies_of_the_cache() {
    use std::io::{Seek, Write};
    use std::os::unix::fs::MetadataExt;
    let t = TestDir::new();
    let recipe = t.example("app");
    t.build(&recipe, &t.join("out"));
    let before = crate::util::snapshot(&t.join("out"));
    for entry in fs::read_dir(t.join("out/blobs/sha256")).unwrap() {
        let meta = entry.unwrap().metadata().unwrap();
        assert_eq!(meta.nlink(), 1, "an output blob shares its file");
    }
    // Cache blobs damaged in place, as an editor or a bad disk would: the
    // layout written earlier does not change.
    for entry in fs::read_dir(t.cache().join("blobs/sha256")).unwrap() {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .open(entry.unwrap().path())
            .unwrap();
        file.seek(std::io::SeekFrom::Start(20)).unwrap();
        file.write_all(b"damage").unwrap();
    }
    assert!(crate::util::snapshot(&t.join("out")) == before);
    crate::util::verify_layout(&t.join("out"), "2.1.0");
}
