//! What people read, pinned with insta snapshots (tests/snapshots/): the
//! human output of `lint` and `inspect`, the `build --json` document, and
//! error messages in their one style (what happened, where, what to do).
//! Any change to them shows up as a snapshot diff to review.

use std::process::{Command, Output};

use crate::util::TestDir;
use crate::util::snapshot::{redact, redact_json};

/// Runs `strata ARGS` in `t` (relative paths, so no temporary folder shows)
/// and returns stdout and stderr, with anything host-specific replaced.
fn strata(t: &TestDir, args: &[&str]) -> (String, String, Option<i32>) {
    let Output {
        status,
        stdout,
        stderr,
    } = t.strata().args(args).output().unwrap();
    (redact(t, &stdout), redact(t, &stderr), status.code())
}

/// A recipe that breaks a few rules, in a folder outside any git checkout.
const LINTED: &str = r#"name "survey"
version "latest"
base "docker.io/library/python:3.11-alpine"
tre #false
env "API_TOKEN" "abc123"
layer "app" {
    copy "analysis.py" "/opt/analysis.py"
    copy "cohort.csv" "/opt/cohort.csv"
}
"#;

#[test]
fn lint_human_output() {
    let t = TestDir::new();
    t.write("analysis.py", "print('hi')\n");
    t.write("cohort.csv", "id,age\n1,40\n");
    t.write("image.kdl", LINTED);
    let (stdout, stderr, code) = strata(&t, &["lint", "--static", "image.kdl"]);
    assert_eq!(code, Some(1), "{stderr}");
    insta::assert_snapshot!("lint_human", stdout);
}

#[test]
fn lint_rule_list() {
    let t = TestDir::new();
    let (stdout, _, code) = strata(&t, &["lint", "--list"]);
    assert_eq!(code, Some(0));
    insta::assert_snapshot!("lint_list", stdout);
}

#[test]
fn inspect_human_output() {
    let t = TestDir::new();
    let recipe = t.example("hello");
    t.build(&recipe, &t.join("out"));
    let (stdout, stderr, code) = strata(&t, &["inspect", "out:1.0.0"]);
    assert_eq!(code, Some(0), "{stderr}");
    insta::assert_snapshot!("inspect_hello", stdout);
}

#[test]
fn build_json_document() {
    let t = TestDir::new();
    t.example("hello");
    let (stdout, stderr, code) = strata(&t, &["build", "hello/image.kdl", "-o", "out", "--json"]);
    assert_eq!(code, Some(0), "{stderr}");
    // Durations vary from run to run; their presence is what is pinned.
    let json = redact_json(&t, &stdout);
    insta::assert_snapshot!(
        "build_json_hello",
        serde_json::to_string_pretty(&json).unwrap()
    );
}

/// Error messages, each from a recipe that makes one mistake.
#[test]
fn error_messages() {
    let cases = [
        (
            "unknown_node",
            "name \"x\"\nbase \"scratch\"\nlayr \"a\" {\n}\n",
        ),
        (
            "missing_copy_source",
            "name \"x\"\nbase \"scratch\"\nlayer \"a\" {\n    copy \"nope.txt\" \"/opt/nope.txt\"\n}\n",
        ),
        (
            "root_user_under_tre",
            "name \"x\"\nbase \"scratch\"\nuser \"admin\" uid=0\n",
        ),
        (
            "unknown_lint_rule",
            "name \"x\"\nbase \"scratch\"\nlint {\n    allow \"STR042\"\n}\n",
        ),
        (
            "system_user_without_uid",
            "name \"x\"\nbase \"scratch\"\nsystem-user \"messagebus\"\n",
        ),
        (
            "bad_mode",
            "name \"x\"\nbase \"scratch\"\nlayer \"a\" {\n    file \"/a\" \"x\" mode=0o7777777\n}\n",
        ),
    ];
    let mut all = String::new();
    for (name, recipe) in cases {
        let t = TestDir::new();
        t.write("image.kdl", recipe);
        let (_, stderr, code) = strata(&t, &["build", "image.kdl", "-o", "out"]);
        assert_eq!(code, Some(1), "{name}: {stderr}");
        assert!(!t.join("out").exists(), "{name}: nothing is written");
        all.push_str(&format!("--- {name}\n{stderr}\n"));
    }
    insta::assert_snapshot!("errors", all);
}

#[test]
fn a_full_disk_names_the_output_not_the_cache() {
    let t = TestDir::new();
    std::fs::create_dir_all(t.join("big")).unwrap();
    std::fs::write(t.join("big/noise.bin"), crate::util::noise(1 << 20)).unwrap();
    let recipe = t.write(
        "big/image.kdl",
        "name \"big\"\nversion \"1\"\nbase \"scratch\"\nlayer \"noise\" {\n    copy \"noise.bin\" \"/opt/noise.bin\"\n}\n",
    );
    // Fills the cache, so that the next build only writes its output.
    t.build_with(&recipe, &t.join("warm"), &["--sbom", "none"]);
    // The output on another filesystem than the cache (blobs are copied,
    // not linked), under a file size limit: the 1 MiB layer does not fit,
    // as on a full disk.
    let shm = tempfile::tempdir_in("/dev/shm").unwrap();
    let out = shm.path().join("out");
    let build = t.build_cmd(&recipe, &out);
    let mut limited = Command::new("sh");
    limited
        .arg("-c")
        .arg("trap '' XFSZ; ulimit -f 256; exec \"$0\" \"$@\"")
        .arg(build.get_program())
        .args(build.get_args())
        .args(["--sbom", "none"])
        .current_dir(t.path());
    for (key, value) in build.get_envs() {
        if let Some(value) = value {
            limited.env(key, value);
        }
    }
    let output = limited.output().unwrap();
    let stderr = crate::util::text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot write `{}/blobs/sha256/", out.display())),
        "{stderr}"
    );
    assert!(stderr.contains("File too large"), "{stderr}");
    assert!(
        !stderr.contains(&t.cache().display().to_string()),
        "{stderr}"
    );
}
