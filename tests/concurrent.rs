//! Processes sharing things: two builds writing one output folder take
//! turns, and a build cleans up the temporaries of dead ones in the cache
//! while leaving a live one's alone.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

use crate::util::{TestDir, assert_success, run, tagged_digest, verify_layout};

/// Spawns `strata build RECIPE -o OUT` with stderr piped.
fn spawn_build(t: &TestDir, recipe: &Path, out: &Path) -> Child {
    t.build_cmd(recipe, out)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Reads the child's stderr until a line contains `needle`; the lines read.
fn wait_for_line(
    child: &mut Child,
    needle: &str,
) -> (BufReader<std::process::ChildStderr>, String) {
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        let n = stderr.read_line(&mut line).unwrap();
        seen.push_str(&line);
        assert!(n > 0, "stderr ended without {needle:?}:\n{seen}");
        if line.contains(needle) {
            return (stderr, seen);
        }
    }
}

/// Holds the lock a build takes on `out`, as another strata would.
fn hold(out: &Path) -> fs::File {
    fs::create_dir_all(out).unwrap();
    let folder = fs::File::open(out).unwrap();
    folder.lock().unwrap();
    folder
}

#[test]
fn two_builds_into_one_folder_take_turns() {
    let t = TestDir::new();
    let recipes = [t.example("hello"), t.example("app")];
    let tags = ["1.0.0", "2.1.0"];
    let indexes: Vec<Vec<u8>> = recipes
        .iter()
        .zip(["alone-hello", "alone-app"])
        .map(|(recipe, out)| {
            t.build(recipe, &t.join(out));
            fs::read(t.join(out).join("index.json")).unwrap()
        })
        .collect();
    let out = t.join("out");
    for round in 0..10 {
        let children: Vec<_> = recipes
            .iter()
            .map(|recipe| {
                t.build_cmd(recipe, &out)
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for child in children {
            assert_success(&child.wait_with_output().unwrap(), "a concurrent build");
        }
        // The layout holds whichever image was written last, whole.
        let index = fs::read(out.join("index.json")).unwrap();
        let last = indexes
            .iter()
            .position(|i| *i == index)
            .unwrap_or_else(|| panic!("round {round}: an index of neither build"));
        verify_layout(&out, tags[last]);
        let bundle = t.join(&format!("bundle-{round}"));
        crate::util::unpack(&out, tags[last], &bundle);
        let names: Vec<_> = fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            names.iter().all(|n| !n.starts_with(".strata")),
            "round {round}: leftovers {names:?}"
        );
    }
}

#[test]
fn a_build_waits_for_the_one_writing_its_output() {
    let t = TestDir::new();
    let recipe = t.example("hello");
    let out = t.join("out");
    let lock = hold(&out);
    let mut child = spawn_build(&t, &recipe, &out);
    let (_stderr, seen) = wait_for_line(&mut child, "waiting for another strata writing");
    assert!(seen.contains(&format!("`{}`", out.display())), "{seen}");
    assert!(
        !out.join("index.json").exists(),
        "written while another held it"
    );
    drop(lock);
    assert!(child.wait().unwrap().success());
    verify_layout(&out, "1.0.0");
    assert!(!tagged_digest(&out, "1.0.0").is_empty());
}

/// The folders and files under the cache's `tmp/`.
fn temporaries(t: &TestDir) -> Vec<PathBuf> {
    let mut found: Vec<_> = fs::read_dir(t.cache().join("tmp"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    found.sort();
    found
}

/// Sets a file's or folder's modification time two days back.
fn age(path: &Path) {
    run(std::process::Command::new("touch")
        .args(["-h", "-d", "2 days ago"])
        .arg(path));
}

#[test]
fn builds_remove_what_dead_builds_left_in_the_cache() {
    let t = TestDir::new();
    let recipe = t.example("hello");
    t.build(&recipe, &t.join("out"));
    assert_eq!(
        temporaries(&t),
        Vec::<PathBuf>::new(),
        "a build left its temporaries"
    );

    // What killed builds leave: their folders (no process holds their lock),
    // and loose files of older versions.
    let tmp = t.cache().join("tmp");
    fs::create_dir_all(tmp.join("build-dead/deep")).unwrap();
    fs::write(tmp.join("build-dead/deep/.tmpA1b2C3"), vec![7u8; 1 << 20]).unwrap();
    fs::write(tmp.join(".tmpZ9y8X7"), b"half a blob").unwrap();
    age(&tmp.join("build-dead"));
    age(&tmp.join(".tmpZ9y8X7"));
    // Just made by a build that has not locked it yet: left alone.
    fs::create_dir(tmp.join("build-new")).unwrap();

    t.build(&recipe, &t.join("out"));
    assert_eq!(temporaries(&t), [tmp.join("build-new")]);
}

#[test]
fn a_live_build_keeps_its_temporaries() {
    let t = TestDir::new();
    let recipe = t.example("hello");
    t.build(&recipe, &t.join("warm"));
    // A real build, alive and waiting for the output folder the test holds.
    let out = t.join("out");
    let lock = hold(&out);
    let mut waiting = spawn_build(&t, &recipe, &out);
    let (_stderr, _) = wait_for_line(&mut waiting, "waiting for another strata writing");
    let [live] = temporaries(&t)
        .try_into()
        .unwrap_or_else(|found: Vec<PathBuf>| {
            panic!("expected the live build's folder alone: {found:?}")
        });
    fs::write(live.join("in-use"), b"partial").unwrap();
    age(&live);

    t.build(&recipe, &t.join("other"));
    assert!(
        live.join("in-use").is_file(),
        "a live build's temporaries were removed"
    );
    drop(lock);
    assert!(waiting.wait().unwrap().success());
    assert_eq!(temporaries(&t), Vec::<PathBuf>::new());
}
