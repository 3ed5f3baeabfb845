//! `strata inspect`: config, layers with entry counts, and labels.

use crate::util::{TestDir, run};

#[test]
fn shows_config_layers_and_labels() {
    let t = TestDir::new();
    let out = t.join("out");
    t.build(&t.example("app"), &out);
    let human = run(t
        .strata()
        .arg("inspect")
        .arg(format!("{}:2.1.0", out.display())));
    for needle in [
        "tags    2.1.0",
        "platform linux/amd64",
        "user        10001:10001",
        "entrypoint  /usr/local/bin/run",
        "TMPDIR=/scratch",
        "org.opencontainers.image.title = app",
        "uk.ac.example.project = p123",
    ] {
        assert!(human.contains(needle), "{needle:?} missing from:\n{human}");
    }
    assert_eq!(human.matches(" entries").count(), 3, "{human}");

    let json: serde_json::Value =
        serde_json::from_str(&run(t.strata().arg("inspect").arg("--json").arg(&out))).unwrap();
    let layers = json["images"][0]["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 3);
    assert!(layers.iter().all(|l| l["entries"].as_u64().unwrap() > 0));
    assert_eq!(json["images"][0]["config"]["config"]["User"], "10001:10001");
}

#[test]
fn an_unknown_tag_lists_the_known_ones() {
    let t = TestDir::new();
    let out = t.join("out");
    t.build(&t.example("hello"), &out);
    let output = t
        .strata()
        .arg("inspect")
        .arg(format!("{}:nope", out.display()))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = crate::util::text(&output.stderr);
    assert!(
        stderr.contains("no image tagged `nope`") && stderr.contains("tags: 1.0.0"),
        "{stderr}"
    );
}
