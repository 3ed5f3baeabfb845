//! `strata diff`: what changed between two images, for people and as JSON,
//! and `--exit-code` for scripts.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::packages::{recipe as apt_recipe, standard_repo};
use crate::util::{TestDir, run, text};

/// A recipe in `dir` with a user, one copied folder and one variable; its
/// `files/data.txt` holds `data`.
fn app(t: &TestDir, dir: &str, uid: u32, mode: &str, data: &str) -> PathBuf {
    t.write(&format!("{dir}/files/data.txt"), data);
    t.write(&format!("{dir}/files/run"), "#!/bin/sh\n");
    t.write(
        &format!("{dir}/image.kdl"),
        &format!(
            "name \"d\"\nversion \"1\"\nbase \"scratch\"\nplatform \"linux/amd64\"\n\
             user \"analyst\" uid={uid} gid={uid}\n\
             layer \"app\" {{\n    copy \"files/\" \"/opt/app/\"\n}}\n\
             env \"MODE\" \"{mode}\"\nentrypoint \"/opt/app/run\"\n"
        ),
    )
}

/// Two images that differ in one file's content, one added file, `MODE`
/// and the user's uid.
fn two_apps(t: &TestDir) -> (PathBuf, PathBuf) {
    let (a, b) = (t.join("a-out"), t.join("b-out"));
    t.build(&app(t, "a", 10001, "fast", "one\n"), &a);
    let recipe = app(t, "b", 10002, "slow", "two!\n");
    t.write("b/files/extra.txt", "new\n");
    t.build(&recipe, &b);
    (a, b)
}

fn diff(t: &TestDir, a: &Path, b: &Path, args: &[&str]) -> Output {
    t.strata()
        .arg("diff")
        .arg(a)
        .arg(b)
        .args(args)
        .output()
        .unwrap()
}

/// The indented lines under `heading` (up to the next blank line).
fn section<'s>(human: &'s str, heading: &str) -> Vec<&'s str> {
    human
        .lines()
        .skip_while(|l| !l.trim_start().starts_with(heading))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .map(str::trim)
        .collect()
}

#[test]
fn the_same_recipe_twice_is_identical() {
    let t = TestDir::new();
    let recipe = t.example("hello");
    let (a, b) = (t.join("a"), t.join("b"));
    t.build(&recipe, &a);
    t.build(&recipe, &b);
    let output = diff(&t, &a, &t.join("b:1.0.0"), &["--exit-code"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let human = text(&output.stdout);
    assert_eq!(human.lines().last(), Some("identical"), "{human}");
    assert!(!human.contains("files:"), "{human}");
}

#[test]
fn names_exactly_what_changed() {
    let t = TestDir::new();
    let (a, b) = two_apps(&t);
    let human = run(t.strata().arg("diff").arg(&a).arg(&b));
    assert_eq!(
        section(&human, "config:"),
        [
            "User",
            "- 10001:10001",
            "+ 10002:10002",
            "Env MODE",
            "- MODE=fast",
            "+ MODE=slow",
        ],
        "{human}"
    );
    assert_eq!(
        section(&human, "files:"),
        [
            // The uid is in the account files and owns the home folder.
            "~ /etc/group (content)",
            "~ /etc/passwd (content)",
            "~ /home/analyst (owner 10001:10001→10002:10002)",
            "~ /opt/app/data.txt (content, size 4→5)",
            "+ /opt/app/extra.txt",
        ],
        "{human}"
    );
    assert!(
        human.contains("\n  files: 1 added, 0 removed, 4 changed\n"),
        "{human}"
    );
    assert!(
        human.contains("\n  layers: 2 → 2, 2 changed\n"),
        "strata's layer and `app` both change: {human}"
    );
    assert!(
        human.contains("\n  packages: 0 added, 0 removed, 0 changed\n"),
        "{human}"
    );
    assert_eq!(
        human.lines().last(),
        Some("images differ in 2 config keys, 2 layers, 5 files and 0 packages"),
        "{human}"
    );

    let output = diff(&t, &a, &b, &["--exit-code"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        text(&output.stdout),
        human,
        "the same report, then status 1"
    );
    assert_eq!(text(&output.stderr), "", "differences are not an error");
}

#[test]
fn json_has_the_same_facts() {
    let t = TestDir::new();
    let (a, b) = two_apps(&t);
    let json: serde_json::Value =
        serde_json::from_str(&run(t.strata().arg("diff").arg("--json").arg(&a).arg(&b))).unwrap();
    assert_eq!(json["identical"], false);
    assert_eq!(json["a"]["image"], a.to_str().unwrap());
    assert!(json["b"]["digest"].as_str().unwrap().starts_with("sha256:"));
    assert_eq!(json["onlyInA"], serde_json::json!([]));
    let platform = &json["platforms"][0];
    assert_eq!(platform["platform"], "linux/amd64");
    assert_ne!(platform["old"]["config"], platform["new"]["config"]);

    let config: Vec<_> = platform["config"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["field"].as_str().unwrap(),
                c["key"].as_str(),
                c["new"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        config,
        [
            ("User", None, Some("10002:10002")),
            ("Env", Some("MODE"), Some("MODE=slow"))
        ]
    );

    assert_eq!(platform["layers"]["changed"], 2);
    assert_eq!(platform["layers"]["entries"][1]["status"], "changed");

    let files = platform["files"].as_array().unwrap();
    let find = |path: &str| {
        files
            .iter()
            .find(|f| f["path"] == path)
            .unwrap_or_else(|| panic!("{path} missing from {files:?}"))
    };
    let data = find("/opt/app/data.txt");
    assert_eq!(data["change"], "changed");
    assert_eq!(data["what"], serde_json::json!(["content", "size"]));
    assert_eq!(data["old"]["size"], 4);
    assert_eq!(data["new"]["size"], 5);
    assert_ne!(data["old"]["sha256"], data["new"]["sha256"]);
    let extra = find("/opt/app/extra.txt");
    assert_eq!(extra["change"], "added");
    assert_eq!(extra["old"], serde_json::Value::Null);
    assert_eq!(extra["new"]["kind"], "file");
    assert_eq!(extra["new"]["mode"], "0444", "root-owned read-only files");
    assert_eq!(files.len(), 5, "{files:?}");
    assert_eq!(platform["packages"], serde_json::json!([]));
}

#[test]
fn shows_added_and_upgraded_packages() {
    let t = TestDir::new();
    let (_repo, url) = standard_repo(&t);
    let (a, b) = (t.join("a"), t.join("b"));
    t.build(&apt_recipe(&t, &url, "\"hello-bin\" \"libfoo=1.0\""), &a);
    t.build(
        &apt_recipe(&t, &url, "\"hello-bin\" \"libfoo=2.0\" \"tiny-mta\""),
        &b,
    );
    let human = run(t.strata().arg("diff").arg(&a).arg(&b));
    assert_eq!(
        section(&human, "packages:"),
        ["~ libfoo 1.0 → 2.0", "+ tiny-mta 0.1"],
        "{human}"
    );
    // Each source package has its layer: hello-bin's is the same blob in
    // both images, libfoo's changed, tiny-mta's is new.
    let layers = section(&human, "layers:");
    assert!(
        layers.iter().any(|l| l.starts_with("0  same")),
        "hello-bin's layer is shared: {human}"
    );
    let config = section(&human, "config:");
    assert!(
        config
            .iter()
            .any(|l| l.starts_with("+ {") && l.contains("debian packages tiny-mta")),
        "tiny-mta's layer is in the history: {human}"
    );
    let files = section(&human, "files:");
    for line in [
        "~ /usr/lib/x86_64-linux-gnu/libfoo.so (content)",
        "+ /usr/sbin/sendmail",
        "+ /var/lib/dpkg/status.d/tiny-mta",
    ] {
        assert!(files.contains(&line), "{line:?} missing from:\n{human}");
    }
    assert!(
        !files.iter().any(|l| l.contains("hello")),
        "hello-bin is the same in both: {human}"
    );
}

#[test]
fn a_missing_layout_is_named() {
    let t = TestDir::new();
    let a = t.join("a");
    t.build(&t.example("hello"), &a);
    let output = diff(&t, &a, &t.join("nowhere"), &[]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("is not an OCI image layout") && stderr.contains("nowhere`"),
        "{stderr}"
    );
    assert_eq!(text(&output.stdout), "");
}
