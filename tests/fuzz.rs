//! Every input a fuzz target crashed on, kept under `tests/data/fuzz/<target>/`
//! and replayed through the fuzz targets' own code (`fuzz/harness.rs`): each
//! must end without a panic, with a bounded result.

use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::util::repo_root;

#[path = "../fuzz/harness.rs"]
mod harness;

/// What a target may return: a rendered diagnostic or a summary, never an
/// echo of a whole hostile input.
const MAX_RESULT: usize = 64 << 10;

#[test]
fn crashes_found_by_fuzzing_stay_fixed() {
    let mut replayed = 0;
    let mut failures = Vec::new();
    for (name, _) in harness::TARGETS {
        let dir = repo_root().join("tests/data/fuzz").join(name);
        let Ok(inputs) = fs::read_dir(&dir) else {
            continue;
        };
        for input in inputs {
            let path = input.unwrap().path();
            let data = fs::read(&path).unwrap();
            match catch_unwind(AssertUnwindSafe(|| harness::run(name, &data))) {
                Ok(result) if result.len() <= MAX_RESULT => {}
                Ok(result) => failures.push(format!(
                    "{}: {} bytes of result",
                    path.display(),
                    result.len()
                )),
                Err(_) => failures.push(format!("{}: panicked", path.display())),
            }
            replayed += 1;
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(replayed > 0, "no inputs under tests/data/fuzz");
}
