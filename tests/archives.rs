//! Single-file outputs: an oci-archive skopeo reads, and a docker-archive
//! podman loads; both byte-reproducible.

use std::fs;
use std::process::Command;

use crate::util::{TestDir, podman_run, run, tagged_digest, text};

fn build_format(t: &TestDir, recipe: &std::path::Path, format: &str, out: &std::path::Path) {
    t.build_with(recipe, out, &["--format", format]);
}

#[test]
fn oci_archive_converts_with_skopeo_and_is_reproducible() {
    let t = TestDir::new();
    let recipe = t.example("app");
    build_format(&t, &recipe, "oci-archive", &t.join("a.tar"));
    build_format(&t, &recipe, "oci-archive", &t.join("b.tar"));
    assert!(fs::read(t.join("a.tar")).unwrap() == fs::read(t.join("b.tar")).unwrap());
    t.build(&recipe, &t.join("layout"));

    run(Command::new("skopeo")
        .arg("copy")
        .arg(format!("oci-archive:{}:2.1.0", t.join("a.tar").display()))
        .arg(format!("oci:{}:2.1.0", t.join("converted").display())));
    assert_eq!(
        tagged_digest(&t.join("converted"), "2.1.0"),
        tagged_digest(&t.join("layout"), "2.1.0")
    );
}

#[test]
fn docker_archive_loads_with_podman() {
    let t = TestDir::new();
    let recipe = t.example("hello");
    build_format(&t, &recipe, "docker-archive", &t.join("hello.tar"));
    let podman = |args: &[&str]| crate::util::podman(&t, args);
    let loaded = podman(&["load", "-i", t.join("hello.tar").to_str().unwrap()])
        .output()
        .unwrap();
    crate::util::assert_success(&loaded, "podman load");
    let listed = text(
        &podman(&["images", "--format", "{{.Repository}}:{{.Tag}}"])
            .output()
            .unwrap()
            .stdout,
    );
    assert!(listed.contains("hello:1.0.0"), "{listed}");
    let labels = text(
        &podman(&[
            "image",
            "inspect",
            "--format",
            "{{index .Labels \"org.opencontainers.image.title\"}}",
            "hello:1.0.0",
        ])
        .output()
        .unwrap()
        .stdout,
    );
    assert_eq!(labels.trim(), "hello");
    assert_eq!(
        podman_run(&t, "hello:1.0.0", &[]),
        "hello from strata uid=10001 gid=10001\n"
    );
}
