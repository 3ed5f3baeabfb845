//! `strata lint`: each rule against a recipe that breaks it and one that
//! does not; allow lists; exit codes; SARIF validated against its schema;
//! and `strata build` refusing a recipe that breaks an error-level rule.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::util::apt::{AptRepo, Pkg, serve_signed};
use crate::util::{TestDir, repo_root, run, text, validate, yaml};

/// A recipe that passes every rule: all labels, a user, an entrypoint,
/// nothing but a script copied in.
const CLEAN: &str = r#"name "clean"
version "1.0"
description "a clean image"
source "https://example.org/clean"
licenses "MIT"
authors "Research Software Team"
base "scratch"
platform "linux/amd64"
user "analyst" uid=10001
layer "app" {
    copy "run.sh" "/usr/local/bin/run"
}
entrypoint "/usr/local/bin/run"
"#;

const PINNED: &str = "@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// A recipe folder in a git checkout (so `revision` has a value) with
/// `run.sh`, `recipe` as `image.kdl`, and `extra` files.
fn recipe(t: &TestDir, recipe: &str, extra: &[(&str, &str)]) -> PathBuf {
    git_checkout(&t.join("r"));
    t.write("r/run.sh", "#!/bin/sh\necho hi\n");
    for (path, content) in extra {
        t.write(&format!("r/{path}"), content);
    }
    t.write("r/image.kdl", recipe)
}

/// Makes `dir` a git checkout with one commit, once.
fn git_checkout(dir: &Path) {
    if dir.join(".git").exists() {
        return;
    }
    std::fs::create_dir_all(dir).unwrap();
    run(Command::new("git").arg("init").arg("-q").arg(dir));
    run(Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.org", "-C"])
        .arg(dir)
        .args(["commit", "-q", "--allow-empty", "-m", "init"]));
}

/// `strata lint --format json` on `path`: the document and the exit code.
fn lint(t: &TestDir, path: &Path, args: &[&str]) -> (Value, i32) {
    let output = t
        .strata()
        .args(["lint", "--format", "json"])
        .args(args)
        .arg(path)
        .output()
        .unwrap();
    let stdout = text(&output.stdout);
    let json = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{stdout}\n{}", text(&output.stderr)));
    (json, output.status.code().unwrap_or(-1))
}

fn rules(json: &Value) -> Vec<String> {
    json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap().to_owned())
        .collect()
}

/// Checks that `bad` triggers `id` (with `needle` in its message or items)
/// and `good` does not.
fn case(id: &str, bad: &str, good: &str, files: &[(&str, &str)], args: &[&str], needle: &str) {
    let t = TestDir::new();
    let (json, _) = lint(&t, &recipe(&t, bad, files), args);
    let finding = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == id)
        .unwrap_or_else(|| panic!("{id} not reported:\n{json:#}"));
    assert!(
        finding.to_string().contains(needle),
        "{id} does not mention {needle:?}: {finding:#}"
    );
    let (json, _) = lint(&t, &recipe(&t, good, files), args);
    assert!(
        !rules(&json).contains(&id.to_owned()),
        "{id} reported on the good recipe:\n{json:#}"
    );
}

fn with(extra: &str) -> String {
    format!("{CLEAN}{extra}\n")
}

fn replace(from: &str, to: &str) -> String {
    assert!(CLEAN.contains(from), "{from:?}");
    CLEAN.replace(from, to)
}

#[test]
fn the_clean_recipe_passes_every_rule() {
    let t = TestDir::new();
    let (json, code) = lint(&t, &recipe(&t, CLEAN, &[]), &["--strict"]);
    assert_eq!(rules(&json), Vec::<String>::new(), "{json:#}");
    assert_eq!(code, 0);
}

#[test]
fn str001_base_not_pinned() {
    case(
        "STR001",
        &replace("base \"scratch\"", "base \"docker.io/library/python:3.11\""),
        &replace(
            "base \"scratch\"",
            &format!("base \"docker.io/library/python:3.11{PINNED}\""),
        ),
        &[],
        &["--static"],
        "docker.io/library/python:3.11",
    );
}

#[test]
fn str002_base_not_fully_qualified() {
    case(
        "STR002",
        &replace("base \"scratch\"", &format!("base \"python:3.11{PINNED}\"")),
        &replace(
            "base \"scratch\"",
            &format!("base \"ghcr.io/org/python:3.11{PINNED}\""),
        ),
        &[],
        &["--static"],
        "docker.io/library/python",
    );
}

#[test]
fn str003_runs_as_root() {
    case(
        "STR003",
        &replace("user \"analyst\" uid=10001", "user \"admin\" uid=0"),
        CLEAN,
        &[],
        &[],
        "uid 0",
    );
    // Without the preset and without a user, the image runs as root: a warning.
    case(
        "STR003",
        &replace(
            "user \"analyst\" uid=10001",
            "tre #false\nlint { allow \"STR004\" }",
        ),
        &replace(
            "user \"analyst\" uid=10001",
            "tre #false\nuser \"analyst\" uid=10001\nlint { allow \"STR004\" }",
        ),
        &[],
        &[],
        "\"level\":\"warning\"",
    );
}

#[test]
fn str004_tre_disabled() {
    case("STR004", &with("tre #false"), CLEAN, &[], &[], "tre #false");
}

#[test]
fn str005_missing_labels() {
    case(
        "STR005",
        &replace("licenses \"MIT\"\n", ""),
        CLEAN,
        &[],
        &[],
        "licenses",
    );
}

#[test]
fn str006_data_in_image() {
    let bad = replace(
        "copy \"run.sh\" \"/usr/local/bin/run\"",
        "copy \"run.sh\" \"/usr/local/bin/run\"\n    copy \"cohort.csv\" \"/opt/cohort.csv\"",
    );
    case(
        "STR006",
        &bad,
        CLEAN,
        &[("cohort.csv", "id,age\n1,40\n")],
        &[],
        "/opt/cohort.csv",
    );
}

#[test]
fn str006_large_files_are_data_whatever_their_name() {
    let t = TestDir::new();
    let path = recipe(
        &t,
        &replace(
            "copy \"run.sh\"",
            "copy \"big.bin\" \"/opt/big.bin\"\n    copy \"run.sh\"",
        ),
        &[],
    );
    let file = std::fs::File::create(t.join("r/big.bin")).unwrap();
    file.set_len(30 << 20).unwrap();
    let (json, _) = lint(&t, &path, &[]);
    assert!(
        json.to_string().contains("/opt/big.bin (30.0 MiB)"),
        "{json:#}"
    );
}

#[test]
fn str007_writable_by_runtime_user() {
    case(
        "STR007",
        &replace(
            "copy \"run.sh\" \"/usr/local/bin/run\"",
            "copy \"run.sh\" \"/usr/local/bin/run\" owner=\"analyst\" mode=0o755",
        ),
        CLEAN,
        &[],
        &[],
        "/usr/local/bin/run (executable, 0755, owner 10001:10001)",
    );
}

#[test]
fn str008_unreadable_by_others() {
    case(
        "STR008",
        &replace(
            "copy \"run.sh\" \"/usr/local/bin/run\"",
            "copy \"run.sh\" \"/usr/local/bin/run\"\n    file \"/etc/app.conf\" \"k=v\" mode=0o600",
        ),
        &replace(
            "copy \"run.sh\" \"/usr/local/bin/run\"",
            "copy \"run.sh\" \"/usr/local/bin/run\"\n    file \"/etc/app.conf\" \"k=v\" mode=0o644",
        ),
        &[],
        &[],
        "/etc/app.conf (0600)",
    );
}

#[test]
fn str009_setuid_files_are_listed() {
    case(
        "STR009",
        &replace(
            "copy \"run.sh\" \"/usr/local/bin/run\"",
            "copy \"run.sh\" \"/usr/local/bin/run\"\n    file \"/usr/bin/su-ish\" \"x\" mode=0o4755",
        ),
        CLEAN,
        &[],
        &[],
        "/usr/bin/su-ish (setuid, 4755)",
    );
}

#[test]
fn str010_secret_in_env() {
    case(
        "STR010",
        &with("env \"GITHUB_TOKEN\" \"ghp_abc\""),
        &with("env \"GITHUB_USER\" \"octocat\""),
        &[],
        &[],
        "GITHUB_TOKEN",
    );
    for name in ["DB_PASSWORD", "CLIENT_SECRET", "AWS_ACCESS_KEY"] {
        let t = TestDir::new();
        let (json, code) = lint(
            &t,
            &recipe(&t, &with(&format!("env \"{name}\" \"x\"")), &[]),
            &[],
        );
        assert!(
            rules(&json).contains(&"STR010".to_owned()),
            "{name}: {json:#}"
        );
        assert_eq!(code, 1, "an error-level finding fails the run");
    }
}

#[test]
fn str011_names_a_postinst_command_strata_cannot_reproduce() {
    let t = TestDir::new();
    let (_repo, url) = users_repo(&t);
    let (json, _) = lint(&t, &recipe(&t, &with(&debian_block(&url, "odd")), &[]), &[]);
    assert!(
        json.to_string()
            .contains("odd postinst line 3: `frobnicate --now`: `frobnicate` is not evaluated"),
        "{json:#}"
    );
    // svc's `adduser --system` is reproduced, so there is nothing to report.
    let (json, _) = lint(&t, &recipe(&t, &with(&debian_block(&url, "svc")), &[]), &[]);
    assert!(!rules(&json).contains(&"STR011".to_owned()), "{json:#}");

    // `-v` says that lint downloads packages, and where to.
    let output = t
        .strata()
        .args(["lint", "-v"])
        .arg(t.join("r/image.kdl"))
        .output()
        .unwrap();
    let stderr = text(&output.stderr);
    let cache = t.cache().display().to_string();
    assert!(
        stderr.contains(&format!(
            "downloading those not yet in the cache at `{cache}`"
        )),
        "{stderr}"
    );
}

#[test]
fn str016_names_a_missing_interpreter() {
    let t = TestDir::new();
    let (_repo, url) = users_repo(&t);
    let (json, _) = lint(
        &t,
        &recipe(&t, &with(&debian_block(&url, "needsbash")), &[]),
        &[],
    );
    for missing in [
        "/bin/bash, needed by 1 program(s): /usr/bin/tool",
        "/lib64/ld-linux-x86-64.so.2, needed by 1 program(s): /usr/bin/program",
    ] {
        assert!(json.to_string().contains(missing), "{missing} in {json:#}");
    }
    // `odd` ships no program at all.
    let (json, _) = lint(&t, &recipe(&t, &with(&debian_block(&url, "odd")), &[]), &[]);
    assert!(!rules(&json).contains(&"STR016".to_owned()), "{json:#}");
}

#[test]
fn system_account_ids_are_recorded_in_the_lock_and_kept() {
    let t = TestDir::new();
    let (_repo, url) = users_repo(&t);
    let path = recipe(&t, &with(&debian_block(&url, "svc")), &[]);
    t.build_and_unpack(&path, "1.0");
    let lock = std::fs::read_to_string(path.with_extension("lock")).unwrap();
    assert!(
        lock.contains("    user \"svcuser\" uid=100 gid=100\n"),
        "{lock}"
    );

    // `early` is configured first and creates an account of its own: the
    // recorded one keeps its ids, the new one takes the next free.
    let both = debian_block(&url, "svc").replace("install \"svc\"", "install \"early\" \"svc\"");
    std::fs::write(&path, with(&both)).unwrap();
    let out = t.join("out2");
    t.build(&path, &out);
    let lock = std::fs::read_to_string(path.with_extension("lock")).unwrap();
    assert!(
        lock.contains("    user \"svcuser\" uid=100 gid=100\n"),
        "{lock}"
    );
    assert!(
        lock.contains("    user \"aaa\" uid=101 gid=101\n"),
        "{lock}"
    );
}

#[test]
fn a_postinst_system_user_lands_in_passwd() {
    let t = TestDir::new();
    let (_repo, url) = users_repo(&t);
    let path = recipe(&t, &with(&debian_block(&url, "svc")), &[]);
    let rootfs = t.build_and_unpack(&path, "1.0").rootfs;
    let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap();
    assert!(
        passwd.contains("svcuser:x:100:100::/var/lib/svc:/usr/sbin/nologin\n"),
        "{passwd}"
    );
    let group = std::fs::read_to_string(rootfs.join("etc/group")).unwrap();
    assert!(group.contains("svcuser:x:100:\n"), "{group}");
}

/// A signed local repository with `svc` (whose postinst adds the system user
/// `svcuser`), `odd` (whose postinst runs an unknown command) and `quiet` (no
/// scripts), its key in `r/keys/repo.gpg`; and a
/// recipe `debian` block installing `package` from it.
fn users_repo(t: &TestDir) -> (AptRepo, String) {
    // A real dynamically linked program, whose loader the package does not bring.
    let program = std::fs::read("/usr/bin/true").unwrap();
    let postinst: &[u8] = b"#!/bin/sh\nset -e\nadduser --system --group --home /var/lib/svc --no-create-home svcuser\n";
    serve_signed(
        t,
        "users",
        &[
            Pkg {
                name: "svc",
                version: "1.0",
                arch: "amd64",
                fields: &[],
                files: &[
                    ("/usr/bin/svc", b"#!/bin/sh\n", 0o755),
                    ("DEBIAN/postinst", postinst, 0o755),
                ],
            },
            Pkg {
                name: "odd",
                version: "1.0",
                arch: "amd64",
                fields: &[],
                files: &[(
                    "DEBIAN/postinst",
                    b"#!/bin/sh\nset -e\nfrobnicate --now\n",
                    0o755,
                )],
            },
            Pkg {
                name: "early",
                version: "1.0",
                arch: "amd64",
                fields: &[],
                files: &[(
                    "DEBIAN/postinst",
                    b"#!/bin/sh\nset -e\nadduser --system --group aaa\n",
                    0o755,
                )],
            },
            Pkg {
                name: "needsbash",
                version: "1.0",
                arch: "amd64",
                fields: &[],
                files: &[
                    ("/usr/bin/tool", b"#!/bin/bash\necho hi\n", 0o755),
                    ("/usr/bin/program", &program, 0o755),
                ],
            },
            Pkg {
                name: "quiet",
                version: "1.0",
                arch: "amd64",
                fields: &[],
                files: &[("/usr/bin/quiet", b"#!/bin/sh\n", 0o755)],
            },
        ],
        &t.join("r/keys/repo.gpg"),
    )
}

fn debian_block(url: &str, package: &str) -> String {
    format!(
        "debian \"stable\" mirror=\"{url}\" updates=#false security=#false keyring=\"keys/repo.gpg\" {{\n    install \"{package}\"\n}}"
    )
}

#[test]
fn str012_network_at_runtime() {
    let requirements = [("requirements.txt", "pandas==2.2\ntransformers==4.40\n")];
    let copy = "copy \"run.sh\" \"/usr/local/bin/run\"\n    copy \"requirements.txt\" \"/opt/requirements.txt\"";
    let base = replace("copy \"run.sh\" \"/usr/local/bin/run\"", copy);
    case(
        "STR012",
        &format!("{base}env \"HF_HUB_OFFLINE\" \"0\"\n"),
        &base,
        &requirements,
        &[],
        "/opt/requirements.txt",
    );
}

#[test]
fn str012_counts_python_requirements() {
    let files = [("requirements.txt", "numpy\ntransformers>=4.40  # models\n")];
    let python = "python {\n    requirements \"requirements.txt\"\n    install \"pandas\"\n}";
    case(
        "STR012",
        &with(&format!("{python}\nenv \"HF_HUB_OFFLINE\" \"0\"")),
        &with(python),
        &files,
        &["--static"],
        "package transformers",
    );
}

#[test]
fn str013_tmpdir_not_scratch() {
    case(
        "STR013",
        &with("env \"TMPDIR\" \"/var/tmp\""),
        &with("env \"TMPDIR\" \"/scratch/job\""),
        &[],
        &[],
        "TMPDIR=/var/tmp",
    );
}

#[test]
fn str014_no_entrypoint() {
    case(
        "STR014",
        &replace("entrypoint \"/usr/local/bin/run\"\n", ""),
        &replace(
            "entrypoint \"/usr/local/bin/run\"\n",
            "cmd \"/usr/local/bin/run\"\n",
        ),
        &[],
        &[],
        "entrypoint",
    );
}

#[test]
fn str015_alpine_base() {
    case(
        "STR015",
        &replace(
            "base \"scratch\"",
            &format!("base \"docker.io/library/python:3.11-alpine{PINNED}\""),
        ),
        &replace(
            "base \"scratch\"",
            &format!("base \"docker.io/library/python:3.11-slim{PINNED}\""),
        ),
        &[],
        &["--static"],
        "\"level\":\"note\"",
    );
}

#[test]
fn rules_are_silenced_by_the_recipe_and_the_command_line() {
    let t = TestDir::new();
    let bad = with("tre #false\nenv \"API_TOKEN\" \"x\"");
    let (json, code) = lint(&t, &recipe(&t, &bad, &[]), &[]);
    assert!(rules(&json).contains(&"STR010".to_owned()));
    assert_eq!(code, 1);

    let allowed = format!("{bad}lint {{ allow \"STR010\" }}\n");
    let (json, code) = lint(
        &t,
        &recipe(&t, &allowed, &[]),
        &["--allow", "STR003,STR004"],
    );
    assert_eq!(rules(&json), Vec::<String>::new(), "{json:#}");
    assert_eq!(code, 0);

    // An unknown id is an error that points at it.
    let output = t
        .strata()
        .args(["lint", "--static"])
        .arg(recipe(&t, &with("lint { allow \"STR999\" }"), &[]))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("`STR999` is not a lint rule"), "{stderr}");
    assert!(stderr.contains("image.kdl:14"), "{stderr}");
}

#[test]
fn warnings_fail_only_with_strict() {
    let t = TestDir::new();
    let path = recipe(&t, &with("tre #false\nlint { allow \"STR003\" }"), &[]);
    let (json, code) = lint(&t, &path, &[]);
    assert_eq!(rules(&json), ["STR004"]);
    assert_eq!(code, 0);
    let (_, code) = lint(&t, &path, &["--strict"]);
    assert_eq!(code, 1);
}

/// `strata lint --format sarif` on `path`, validated against the SARIF
/// schema.
fn sarif(t: &TestDir, path: &Path) -> Value {
    let output = t
        .strata()
        .args(["lint", "--format", "sarif"])
        .arg(path)
        .output()
        .unwrap();
    let file = t.join("lint.sarif");
    std::fs::write(&file, &output.stdout).unwrap();
    validate("sarif-2.1.0.schema.json", &file);
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn sarif_output_validates_against_the_schema() {
    let t = TestDir::new();
    let bad = with("tre #false\nenv \"API_TOKEN\" \"x\"");
    let path = recipe(&t, &bad, &[]);
    let json = sarif(&t, &path);
    let results = json["runs"][0]["results"].as_array().unwrap();
    let secret = results.iter().find(|r| r["ruleId"] == "STR010").unwrap();
    assert_eq!(secret["level"], "error");
    assert_eq!(
        secret["locations"][0]["physicalLocation"]["region"]["startLine"], 15,
        "{secret:#}"
    );
    let rules = json["runs"][0]["tool"]["driver"]["rules"]
        .as_array()
        .unwrap();
    assert_eq!(rules.len(), 17);
}

/// GitHub code scanning shows a SARIF result's message alone: each must say
/// what is wrong in the words a reader scans for, once; and the help names
/// exactly what is missing.
#[test]
fn sarif_messages_stand_alone_and_help_names_what_is_missing() {
    let t = TestDir::new();
    // Not a git checkout: only `revision` is missing (`created` comes from
    // SOURCE_DATE_EPOCH).
    t.write("plain/run.sh", "#!/bin/sh\n");
    let path = t.write(
        "plain/image.kdl",
        &CLEAN.replace(
            "base \"scratch\"",
            "base \"docker.io/library/python:3.12-slim\"",
        ),
    );
    let json = sarif(&t, &path);
    let results = json["runs"][0]["results"].as_array().unwrap();
    let message = |rule: &str| {
        results.iter().find(|r| r["ruleId"] == rule).unwrap()["message"]["text"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert!(
        message("STR001").contains("not pinned by digest"),
        "{}",
        message("STR001")
    );
    let labels = message("STR005");
    assert_eq!(labels.matches("revision").count(), 1, "{labels}");
    assert!(!labels.contains("description"), "{labels}");

    let (json, _) = lint(&t, &path, &[]);
    let finding = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "STR005")
        .unwrap()
        .clone();
    let fix = finding["fix"].as_str().unwrap();
    assert_eq!(
        fix, "build from a git checkout for `revision`",
        "{finding:#}"
    );
}

#[test]
fn build_refuses_a_recipe_that_breaks_an_error_rule() {
    let t = TestDir::new();
    let path = recipe(&t, &with("env \"API_TOKEN\" \"x\""), &[]);
    let out = t.join("out");
    let stderr = t.build_fails(&path, &out);
    assert!(stderr.contains("STR010"), "{stderr}");
    assert!(
        stderr.contains("the recipe breaks lint rules that stop a build"),
        "{stderr}"
    );
    assert!(!out.exists(), "nothing is written");

    t.write(
        "r/image.kdl",
        &with("env \"API_TOKEN\" \"x\"\nlint { allow \"STR010\" }"),
    );
    t.build(&path, &out);
}

/// Reads a YAML file as JSON through Python (python3-yaml, installed by .ci/run).

#[test]
fn the_pre_commit_hook_lints_every_recipe_it_is_given() {
    let hooks = yaml(&repo_root().join(".pre-commit-hooks.yaml"));
    let hook = &hooks[0];
    assert_eq!(hook["id"], "strata-lint");
    assert_eq!(hook["language"], "rust");
    let entry: Vec<&str> = hook["entry"].as_str().unwrap().split_whitespace().collect();
    assert_eq!(entry[0], "strata");

    let t = TestDir::new();
    let good = recipe(&t, CLEAN, &[]);
    t.write("bad/run.sh", "#!/bin/sh\n");
    let bad = t.write("bad/image.kdl", &with("env \"API_TOKEN\" \"x\""));
    // As pre-commit runs it: the entry, then the changed files.
    let output = t
        .strata()
        .args(&entry[1..])
        .arg(&good)
        .arg(&bad)
        .output()
        .unwrap();
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("r/image.kdl: no problems found"),
        "{stdout}"
    );
    assert!(stdout.contains("STR010"), "{stdout}");
}

#[test]
fn the_ci_example_lints_builds_scans_and_pushes() {
    let workflow = yaml(&repo_root().join("examples/ci/github-actions.yml"));
    let runs: Vec<&str> = workflow["jobs"]["image"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["run"].as_str())
        .collect();
    let script = runs.join("\n");
    for needle in [
        "strata lint --format sarif image.kdl",
        "strata build image.kdl --locked -o out",
        "strata sbom out",
        "strata push out",
    ] {
        assert!(
            script.contains(needle),
            "{needle:?} missing from:\n{script}"
        );
    }
    assert!(!script.contains("docker "), "no daemon: {script}");
}

#[test]
fn a_declared_system_user_keeps_its_ids() {
    let t = TestDir::new();
    let (_repo, url) = users_repo(&t);
    let path = recipe(
        &t,
        &with(&format!(
            "system-user \"svcuser\" uid=901\n{}",
            debian_block(&url, "svc")
        )),
        &[],
    );
    let (json, _) = lint(&t, &path, &[]);
    assert!(!rules(&json).contains(&"STR011".to_owned()), "{json:#}");

    let rootfs = t.build_and_unpack(&path, "1.0").rootfs;
    let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap();
    assert!(
        passwd.contains("svcuser:x:901:901::/var/lib/svc:/usr/sbin/nologin\n"),
        "{passwd}"
    );
    assert!(passwd.contains("analyst:x:10001:"), "{passwd}");
    let group = std::fs::read_to_string(rootfs.join("etc/group")).unwrap();
    assert!(group.contains("svcuser:x:901:"), "{group}");
}

#[test]
fn the_starter_recipe_passes_every_recipe_rule() {
    let t = TestDir::new();
    let dir = t.join("project");
    git_checkout(&dir);
    run(t.strata().arg("init").current_dir(&dir));
    let (json, code) = lint(&t, &dir.join("image.kdl"), &["--static", "--strict"]);
    assert_eq!(rules(&json), Vec::<String>::new(), "{json:#}");
    assert_eq!(code, 0);
}
