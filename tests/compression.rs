//! zstd layers: the right media type, digests and diff_ids that check out,
//! and an image a real runtime (podman) runs.

use crate::util::{PODMAN_RUN, TestDir, assert_success, podman, text, verify_layout};

#[test]
fn zstd_layers_run_under_podman() {
    let t = TestDir::new();
    let recipe = t.example("hello");
    let out = t.join("out");
    let output = t
        .strata()
        .args(["build", "--compression", "zstd:19", "-o"])
        .arg(&out)
        .arg(&recipe)
        .output()
        .unwrap();
    assert_success(&output, "zstd build");
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
    assert_success(
        &podman(&t, &["pull", image])
            .current_dir(t.path())
            .output()
            .unwrap(),
        "podman pull",
    );
    let mut args = PODMAN_RUN.to_vec();
    args.extend([image, "from-podman"]);
    let printed = podman(&t, &args).current_dir(t.path()).output().unwrap();
    assert_success(&printed, "podman run");
    assert_eq!(
        text(&printed.stdout),
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
