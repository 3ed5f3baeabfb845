//! What an insta snapshot (tests/snapshots/) must not pin: the test's
//! temporary folder and how long things took. Every snapshot test passes its
//! text or JSON through here before `insta::assert_snapshot!`, so each
//! placeholder is written one way, in one place.

use serde_json::Value;

use super::{TestDir, text};

/// Stands for the test's temporary folder.
const TMP: &str = "[tmp]";
/// Stands for a duration in seconds.
const SECONDS: &str = "[seconds]";

/// Command output as text, with the test folder's path as `[tmp]`.
pub fn redact(t: &TestDir, bytes: &[u8]) -> String {
    text(bytes).replace(&t.path().display().to_string(), TMP)
}

/// A JSON document (`build --json`) with every duration (`seconds`, and each
/// entry of `timings`) as `"[seconds]"` and the test folder's path as
/// `[tmp]`: what remains is what the document promises.
pub fn redact_json(t: &TestDir, json: &str) -> Value {
    let mut value: Value = serde_json::from_str(&redact(t, json.as_bytes()))
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{json}"));
    redact_durations(&mut value);
    value
}

fn redact_durations(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                match (key.as_str(), &mut *value) {
                    ("seconds", _) => *value = SECONDS.into(),
                    ("timings", Value::Object(timings)) => {
                        for (_, duration) in timings.iter_mut() {
                            *duration = SECONDS.into();
                        }
                    }
                    _ => redact_durations(value),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_durations),
        _ => {}
    }
}
