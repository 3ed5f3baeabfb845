//! zstd layers: the right media type, digests and diff_ids that check out,
//! and an image a real runtime (podman) runs.

use crate::util::{TestDir, podman, podman_run, run, text, verify_layout};

#[test]
fn zstd_layers_run_under_podman() {
    let t = TestDir::new();
    let recipe = t.example("hello");
    let out = t.join("out");
    t.build_with(&recipe, &out, &["--compression", "zstd:19"]);
    verify_layout(&out, "1.0.0");
    let manifest = crate::util::manifest(&out, "1.0.0");
    for layer in manifest["layers"].as_array().unwrap() {
        assert_eq!(
            layer["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+zstd"
        );
    }
    // Relative: podman names the image after the path, which must be lowercase.
    let image = "oci:out:1.0.0";
    run(&mut podman(&t, &["pull", image]));
    assert_eq!(
        podman_run(&t, image, &["from-podman"]),
        "hello from strata uid=10001 gid=10001 from-podman\n"
    );
}

#[test]
fn unknown_compression_is_refused() {
    let t = TestDir::new();
    let recipe = t.example("hello");
    let output = t
        .strata()
        .args(["build", "--compression", "lz4"])
        .arg(&recipe)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("`lz4` is not a compression"));
}
