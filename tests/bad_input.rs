//! Bad input gets a clear error that names the place and the fix, exit code 1,
//! and the output folder stays exactly as the previous build left it.

use std::fs;
use std::os::unix::fs::symlink;

use crate::util::{TestDir, snapshot, text};

/// A folder with a good build in `out`, ready for a bad recipe to fail against.
fn with_previous_build() -> TestDir {
    let t = TestDir::new();
    t.write(
        "good/image.kdl",
        "name \"good\"\nbase \"scratch\"\nlayer \"a\" {\n    file \"/etc/motd\" \"hi\\n\"\n}\n",
    );
    t.build(&t.join("good/image.kdl"), &t.join("out"));
    t
}

/// Builds `recipe` (written as `bad/image.kdl`) and checks the error mentions
/// each of `expected`, and that `out` did not change.
fn fails_with(t: &TestDir, recipe: &str, expected: &[&str]) {
    let path = t.write("bad/image.kdl", recipe);
    let before = snapshot(&t.join("out"));
    let stderr = t.build_fails(&path, &t.join("out"));
    for needle in expected {
        assert!(stderr.contains(needle), "expected {needle:?} in:\n{stderr}");
    }
    assert_eq!(
        snapshot(&t.join("out")),
        before,
        "the output changed after a failed build"
    );
}

const HEAD: &str = "name \"bad\"\nbase \"scratch\"\n";

#[test]
fn malformed_kdl() {
    let t = with_previous_build();
    fails_with(
        &t,
        "name \"bad\"\nbase \"scratch\" {\n",
        &["the recipe is not valid KDL", "image.kdl:"],
    );
}

#[test]
fn unknown_node_suggests_the_right_one() {
    let t = with_previous_build();
    fails_with(
        &t,
        &format!("{HEAD}entrypiont \"/x\"\n"),
        &[
            "unknown top-level node `entrypiont`",
            "did you mean `entrypoint`?",
            "image.kdl:3:1",
        ],
    );
}

#[test]
fn unknown_property_suggests_the_right_one() {
    let t = with_previous_build();
    t.write("bad/a.txt", "a");
    fails_with(
        &t,
        &format!("{HEAD}layer \"a\" {{\n    copy \"a.txt\" \"/a\" mdoe=0o444\n}}\n"),
        &[
            "unknown property `mdoe` on `copy`",
            "did you mean `mode`?",
            "image.kdl:4:",
        ],
    );
}

#[test]
fn wrong_type() {
    let t = with_previous_build();
    fails_with(
        &t,
        &format!("{HEAD}version 1\n"),
        &[
            "the version must be a string",
            "image.kdl:3:9",
            "double quotes",
        ],
    );
}

#[test]
fn missing_file() {
    let t = with_previous_build();
    fails_with(
        &t,
        &format!("{HEAD}layer \"a\" {{\n    copy \"nope.txt\" \"/a\"\n}}\n"),
        &[
            "`nope.txt` does not exist",
            "relative to the recipe's folder",
            "image.kdl:4:10",
        ],
    );
}

#[test]
fn path_escaping_through_dot_dot() {
    let t = with_previous_build();
    t.write("secret.txt", "s");
    fails_with(
        &t,
        &format!("{HEAD}layer \"a\" {{\n    copy \"../secret.txt\" \"/a\"\n}}\n"),
        &["leads outside the recipe's folder"],
    );
}

#[test]
fn path_escaping_through_a_symlink() {
    let t = with_previous_build();
    t.write("secret.txt", "s");
    fs::create_dir_all(t.join("bad")).unwrap();
    symlink("../secret.txt", t.join("bad/link")).unwrap();
    fails_with(
        &t,
        &format!("{HEAD}layer \"a\" {{\n    copy \"link\" \"/a\"\n}}\n"),
        &["leads outside the recipe's folder"],
    );
}

#[test]
fn absolute_host_path() {
    let t = with_previous_build();
    fails_with(
        &t,
        &format!("{HEAD}layer \"a\" {{\n    copy \"/etc/hostname\" \"/a\"\n}}\n"),
        &[
            "`/etc/hostname` is an absolute host path",
            "relative to the recipe's folder",
        ],
    );
}

#[test]
fn duplicate_destination() {
    let t = with_previous_build();
    t.write("bad/a.txt", "a");
    t.write("bad/b.txt", "b");
    fails_with(
        &t,
        &format!(
            "{HEAD}layer \"a\" {{\n    copy \"a.txt\" \"/opt/x\"\n}}\nlayer \"b\" {{\n    copy \"b.txt\" \"/opt/x\"\n}}\n"
        ),
        &["`/opt/x` is written twice", "image.kdl:7:"],
    );
}

#[test]
fn copy_into_a_tre_dir() {
    let t = with_previous_build();
    t.write("bad/a.txt", "a");
    fails_with(
        &t,
        &format!("{HEAD}layer \"a\" {{\n    copy \"a.txt\" \"/safe_data/a.txt\"\n}}\n"),
        &["lies inside the TRE folder `/safe_data`"],
    );
}

#[test]
fn mode_out_of_range_and_mode_in_decimal() {
    let t = with_previous_build();
    t.write("bad/a.txt", "a");
    fails_with(
        &t,
        &format!("{HEAD}layer \"a\" {{\n    copy \"a.txt\" \"/a\" mode=0o17777\n}}\n"),
        &["the mode is out of range", "`0o0` to `0o7777`"],
    );
    fails_with(
        &t,
        &format!("{HEAD}layer \"a\" {{\n    copy \"a.txt\" \"/a\" mode=755\n}}\n"),
        &["modes are written in octal"],
    );
}

#[test]
fn base_without_digest() {
    let t = with_previous_build();
    fails_with(
        &t,
        "name \"bad\"\nbase \"oci:../out\"\n",
        &["is not pinned by digest", "strata inspect"],
    );
}

#[test]
fn root_user_under_the_tre_preset() {
    let t = with_previous_build();
    fails_with(
        &t,
        &format!("{HEAD}user \"admin\" uid=0\n"),
        &["the TRE preset needs a non-root user"],
    );
}

#[test]
fn output_folder_that_is_not_a_layout() {
    let t = TestDir::new();
    t.write("image.kdl", HEAD);
    t.write("precious/notes.txt", "keep me");
    let stderr = t.build_fails(&t.join("image.kdl"), &t.join("precious"));
    assert!(
        stderr.contains("is not empty and is not an OCI layout"),
        "{stderr}"
    );
    assert_eq!(
        fs::read_to_string(t.join("precious/notes.txt")).unwrap(),
        "keep me"
    );
    assert_eq!(fs::read_dir(t.join("precious")).unwrap().count(), 1);
}

#[test]
fn a_file_over_a_lower_folder() {
    let t = with_previous_build();
    t.write("bad/a.txt", "a");
    fails_with(
        &t,
        &format!(
            "{HEAD}layer \"a\" {{\n    copy \"a.txt\" \"/opt/x/a.txt\"\n}}\nlayer \"b\" {{\n    file \"/opt/x\" \"oops\"\n}}\n"
        ),
        &["`/opt/x` is a folder with contents in a lower layer"],
    );
}

/// Builds and lints `recipe` (written as `bad/image.kdl`, bytes as they are)
/// and checks that both fail with exit code 1, not a crash, mentioning each
/// of `expected`, and that `out` did not change.
fn hostile(t: &TestDir, recipe: &[u8], expected: &[&str]) {
    let path = t.join("bad/image.kdl");
    fs::create_dir_all(t.join("bad")).unwrap();
    fs::write(&path, recipe).unwrap();
    let before = snapshot(&t.join("out"));
    let build = t.build_fails(&path, &t.join("out"));
    assert_eq!(snapshot(&t.join("out")), before, "the output changed");
    let lint = t
        .strata()
        .args(["lint", "--static"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(lint.status.code(), Some(1), "{}", text(&lint.stderr));
    for stderr in [build, text(&lint.stderr)] {
        for needle in expected {
            assert!(stderr.contains(needle), "expected {needle:?} in:\n{stderr}");
        }
    }
}

#[test]
fn blocks_nested_too_deep() {
    let t = with_previous_build();
    let recipe = format!("{HEAD}{}{}\n", "a {".repeat(1300), "}".repeat(1300));
    hostile(
        &t,
        recipe.as_bytes(),
        &[
            "the recipe nests blocks, comments and `/-` more than 64 deep",
            "image.kdl:3:195",
        ],
    );
}

#[test]
fn comments_nested_too_deep() {
    let t = with_previous_build();
    let recipe = format!("{HEAD}{}{}\n", "/*".repeat(3000), "*/".repeat(3000));
    hostile(
        &t,
        recipe.as_bytes(),
        &["more than 64 deep", "image.kdl:3:129"],
    );
}

#[test]
fn slashdashes_in_a_row() {
    let t = with_previous_build();
    let recipe = format!("{HEAD}a {}b\n", "/- ".repeat(20000));
    hostile(
        &t,
        recipe.as_bytes(),
        &["more than 64 deep", "image.kdl:3:195"],
    );
}

#[test]
fn stray_closing_braces() {
    let t = with_previous_build();
    let recipe = format!("{HEAD}{}\n", "}".repeat(20000));
    hostile(
        &t,
        recipe.as_bytes(),
        &["`}` closes no block", "image.kdl:3:1"],
    );
}

#[test]
fn an_error_far_along_a_line_shows_a_window_of_it() {
    let t = with_previous_build();
    let recipe = format!("{HEAD}{}nope 1\n", " ".repeat(70000));
    hostile(
        &t,
        recipe.as_bytes(),
        &["unknown top-level node `nope`", "image.kdl:3:70001"],
    );
    // The window, not the line: a screenful, not 70,000 spaces.
    let stderr = t.build_fails(&t.join("bad/image.kdl"), &t.join("out"));
    assert!(stderr.len() < 2000, "{stderr}");
}

#[test]
fn a_recipe_that_is_not_utf8() {
    let t = with_previous_build();
    hostile(
        &t,
        b"name \"bad\"\nbase \"scratch\"\nlabel \"a\" \"\xff\xfe\"\n",
        &[
            "the recipe is not UTF-8: byte `0xff` at line 3, column 12",
            "save the recipe as UTF-8",
            "image.kdl:3:12",
        ],
    );
}

/// The lock is read through the same checks as the recipe.
#[test]
fn a_lock_that_is_not_utf8_or_nested_too_deep() {
    let t = TestDir::new();
    let recipe = t.write(
        "image.kdl",
        &format!("{HEAD}python {{\n    install \"six\"\n}}\n"),
    );
    let deep = format!("{}{}\n", "a {".repeat(5000), "}".repeat(5000));
    for (lock, expected) in [
        (
            b"lock-version 1\ninputs \"\xc3\x28\"\n".to_vec(),
            "the lock is not UTF-8: byte `0xc3` at line 2, column 9",
        ),
        (deep.into_bytes(), "the lock nests blocks"),
        (
            format!("lock-version 1\n{}nope\n", " ".repeat(70000)).into_bytes(),
            "the lock is invalid: unknown node `nope`",
        ),
    ] {
        fs::write(t.join("image.lock"), lock).unwrap();
        let output = t
            .build_cmd(&recipe, &t.join("out"))
            .arg("--offline")
            .output()
            .unwrap();
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains(expected),
            "expected {expected:?} in:\n{stderr}"
        );
        assert!(stderr.contains("image.lock:"), "{stderr}");
    }
}
