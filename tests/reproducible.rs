//! The reproducibility contract (spec/reproducibility.md), clause by clause:
//! the same recipe and inputs give the same bytes — every blob and
//! `index.json` — whatever the umask, TZ, locale, working directory, host
//! mtimes, modes, inode order, CPU count, run count or user.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{PermissionsExt, chown};
use std::path::Path;
use std::process::Command;

use crate::util::{EPOCH, TestDir, assert_success, snapshot};

/// Builds the app example copied to `dir`, under `wrapper` (a command prefix)
/// with `envs`, into `out`; returns every file of the layout.
fn build_with(
    t: &TestDir,
    dir: &str,
    wrapper: &[&str],
    envs: &[(&str, &str)],
    cwd: &Path,
    out: &Path,
) -> BTreeMap<String, Vec<u8>> {
    let recipe = t.join(dir).join("image.kdl");
    let script = format!(
        "{} build {} -o {}",
        env!("CARGO_BIN_EXE_strata"),
        recipe.display(),
        out.display()
    );
    let mut cmd = Command::new(wrapper.first().copied().unwrap_or("sh"));
    if wrapper.is_empty() {
        cmd.args(["-c", &script]);
    } else {
        cmd.args(&wrapper[1..]).args(["sh", "-c", &script]);
    }
    cmd.current_dir(cwd)
        .env("STRATA_CACHE", t.join(&format!("cache-{dir}")))
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .envs(envs.iter().copied());
    assert_success(&cmd.output().unwrap(), &format!("build of {dir}"));
    snapshot(out)
}

/// Rewrites every file of `dir` in reverse order (new inodes, new order on
/// disk), with odd mtimes, group-writable modes and another owner.
fn disturb_host_metadata(dir: &Path) {
    let mut files: Vec<_> = Vec::new();
    fn collect(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() && !p.is_symlink() {
                collect(&p, out);
            } else if p.is_file() {
                out.push(p);
            }
        }
    }
    collect(dir, &mut files);
    files.sort();
    for file in files.iter().rev() {
        let bytes = fs::read(file).unwrap();
        let mode = fs::metadata(file).unwrap().permissions().mode();
        fs::remove_file(file).unwrap();
        fs::write(file, bytes).unwrap();
        fs::set_permissions(file, fs::Permissions::from_mode(mode | 0o664)).unwrap();
        chown(file, Some(1234), Some(4321)).unwrap();
    }
    let status = Command::new("touch")
        .args(["-d", "2001-02-03 04:05:06"])
        .args(&files)
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn same_bytes_whatever_the_environment() {
    let t = TestDir::new();
    t.example_in("a", "app");
    let reference = build_with(
        &t,
        "a",
        &[],
        &[("TZ", "UTC"), ("LC_ALL", "C")],
        t.path(),
        &t.join("out-a"),
    );
    assert!(reference.contains_key("index.json"));

    // umask, TZ, locale, working directory, one CPU, host metadata and location.
    t.example_in("b", "app");
    disturb_host_metadata(&t.join("b"));
    fs::create_dir_all(t.join("elsewhere")).unwrap();
    let variant = build_with(
        &t,
        "b",
        &["taskset", "-c", "0", "env", "RAYON_NUM_THREADS=1"],
        &[
            ("TZ", "Pacific/Chatham"),
            ("LC_ALL", "C.UTF-8"),
            ("LANG", "de_DE.UTF-8"),
        ],
        &t.join("elsewhere"),
        &t.join("out-b"),
    );
    assert_eq!(
        variant.keys().collect::<Vec<_>>(),
        reference.keys().collect::<Vec<_>>()
    );
    assert!(variant == reference, "the layouts differ");

    let status = Command::new("sh")
        .args([
            "-c",
            &format!(
                "umask 077 && {} build {} -o {}",
                env!("CARGO_BIN_EXE_strata"),
                t.join("a/image.kdl").display(),
                t.join("out-umask").display()
            ),
        ])
        .env("STRATA_CACHE", t.join("cache-umask"))
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .status()
        .unwrap();
    assert!(status.success());
    assert!(
        snapshot(&t.join("out-umask")) == reference,
        "umask changed the bytes"
    );

    // Run count: again into the same folder, from the warm cache.
    let again = build_with(&t, "a", &[], &[], t.path(), &t.join("out-a"));
    assert!(again == reference, "a second run changed the bytes");
}

#[test]
fn same_bytes_as_an_unprivileged_user() {
    let t = TestDir::new();
    t.example_in("a", "app");
    let reference = build_with(&t, "a", &[], &[], t.path(), &t.join("out-root"));

    // `nobody` owns only its cache and output folders; it reads the recipe.
    for dir in ["cache-nobody", "nobody-out"] {
        fs::create_dir_all(t.join(dir)).unwrap();
        chown(t.join(dir), Some(65534), Some(65534)).unwrap();
    }
    let recipe = t.join("a/image.kdl");
    let out = t.join("nobody-out/layout");
    let output = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_strata"))
        .arg("build")
        .arg(&recipe)
        .arg("-o")
        .arg(&out)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .env("STRATA_CACHE", t.join("cache-nobody"))
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .current_dir(t.join("nobody-out"))
        .output()
        .unwrap();
    assert_success(&output, "build as nobody");
    assert!(
        snapshot(&out) == reference,
        "building as nobody changed the bytes"
    );
}

#[test]
fn created_comes_from_source_date_epoch() {
    let t = TestDir::new();
    let recipe = t.example("hello");
    let output = t
        .build_cmd(&recipe, &t.join("out"))
        .env("SOURCE_DATE_EPOCH", "86400")
        .output()
        .unwrap();
    assert_success(&output, "build");
    let config = crate::util::config(&t.join("out"), "1.0.0");
    assert_eq!(config["created"], "1970-01-02T00:00:00Z");
    assert_eq!(
        config["config"]["Labels"]["org.opencontainers.image.created"],
        "1970-01-02T00:00:00Z"
    );
    for entry in crate::util::layers(&t.join("out"), "1.0.0")
        .iter()
        .flatten()
    {
        assert_eq!(entry.mtime, 86400);
    }
}

#[test]
fn created_and_revision_come_from_git_without_source_date_epoch() {
    let t = TestDir::new();
    let recipe = t.example("hello");
    let dir = recipe.parent().unwrap();
    let git = |args: &[&str]| crate::util::git(dir, "2020-01-01T00:00:00Z", args);
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-qm", "x"]);
    let head = git(&["rev-parse", "HEAD"]);
    let output = t
        .build_cmd(&recipe, &t.join("out"))
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .unwrap();
    assert_success(&output, "build");
    let config = crate::util::config(&t.join("out"), "1.0.0");
    let labels = &config["config"]["Labels"];
    assert_eq!(
        labels["org.opencontainers.image.created"],
        "2020-01-01T00:00:00Z"
    );
    assert_eq!(labels["org.opencontainers.image.revision"], head.as_str());
}
