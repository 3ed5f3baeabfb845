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
