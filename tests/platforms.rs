//! Several platforms from one recipe: one manifest each, joined by an index.

use std::process::Command;

use crate::util::{TestDir, edit_file, json_blob, run, tagged_digest};

#[test]
fn two_platforms_make_an_index() {
    let t = TestDir::new();
    let recipe = edit_file(
        &t.example("app"),
        "platform \"linux/amd64\"",
        "platform \"linux/amd64\" \"linux/arm64\"",
    );
    let out = t.join("out");
    t.build(&recipe, &out);

    let index = json_blob(&out, &tagged_digest(&out, "2.1.0"));
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let manifests = index["manifests"].as_array().unwrap();
    let arches: Vec<&str> = manifests
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap())
        .collect();
    assert_eq!(arches, ["amd64", "arm64"]);
    for m in manifests {
        let manifest = json_blob(&out, m["digest"].as_str().unwrap());
        let config = json_blob(&out, manifest["config"]["digest"].as_str().unwrap());
        assert_eq!(config["architecture"], m["platform"]["architecture"]);
        assert_eq!(
            manifest["annotations"]["org.opencontainers.image.title"],
            "app"
        );
    }
    run(Command::new("skopeo")
        .args(["copy", "--all"])
        .arg(format!("oci:{}:2.1.0", out.display()))
        .arg(format!("oci:{}:2.1.0", t.join("copy").display())));
    assert_eq!(
        tagged_digest(&t.join("copy"), "2.1.0"),
        tagged_digest(&out, "2.1.0")
    );
}
