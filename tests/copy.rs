//! `copy` excludes behave as in `.gitignore`: `*` stays within a folder,
//! `**` crosses folders, `./x` and `/x` anchor at the copied folder; `.git`
//! is always skipped.

use crate::util::{TestDir, layers};

#[test]
fn excludes_match_like_gitignore() {
    let t = TestDir::new();
    for file in [
        "a.py",
        "deep/a.py",
        "sub/a.py",
        "sub/deep/b.py",
        "keep/x.log",
        "keep/y/z.log",
    ] {
        t.write(&format!("tree/{file}"), "x\n");
    }
    let recipe = t.write(
        "image.kdl",
        "name \"ex\"\nversion \"1\"\nbase \"scratch\"\ntre #false\nlayer \"t\" {\n    copy \"tree/\" \"/t/\" exclude=\"sub/*.py\" exclude=\"./a.py\" exclude=\"keep/**/*.log\"\n}\n",
    );
    t.build(&recipe, &t.join("out"));
    let paths: Vec<String> = layers(&t.join("out"), "1")
        .into_iter()
        .flatten()
        .map(|e| e.path)
        .collect();
    for kept in ["t/deep/a.py", "t/sub/deep/b.py"] {
        assert!(paths.iter().any(|p| p == kept), "{kept} missing: {paths:?}");
    }
    for gone in [
        "t/a.py",
        "t/sub/a.py",
        "t/keep/x.log",
        "t/keep/y/z.log",
        "t/.git/",
        "t/sub/.git/",
    ] {
        assert!(
            !paths.iter().any(|p| p == gone),
            "{gone} was copied: {paths:?}"
        );
    }
}
