//! strata's default output, read unchanged, with no extra arguments, by the
//! tools users already run: Syft, Trivy, skopeo, podman, umoci, Charliecloud
//! and oci-image-tool; every manifest, index and config strata writes is
//! checked against the image-spec's JSON schemas.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::util::{
    self, Registry, TestDir, json_blob, podman, podman_run, run, tagged_digest, tool, validate,
};

/// `examples/python` (Debian's Python 3) built the way the README shows:
/// `strata build image.kdl` in its folder, with no `-o`; returns the folder.
fn built_by_default(t: &TestDir, args: &[&str]) -> PathBuf {
    let recipe = t.example("python");
    let dir = recipe.parent().unwrap().to_owned();
    let output = t
        .strata()
        .current_dir(&dir)
        .args(["build", "image.kdl"])
        .args(args)
        .output()
        .unwrap();
    util::assert_success(&output, "strata build image.kdl");
    dir
}

/// The Debian packages Syft finds in `source` (`oci-dir:…`, `oci-archive:…`).
fn syft_packages(source: &str) -> BTreeSet<String> {
    let json: Value = serde_json::from_str(&run(Command::new(tool("STRATA_SYFT")).args([
        "scan",
        "-q",
        "-o",
        "syft-json",
        source,
    ])))
    .unwrap();
    json["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["type"] == "deb")
        .map(|a| a["name"].as_str().unwrap().to_owned())
        .collect()
}

/// The operating system Trivy detects in `input` (a layout or an archive).
fn trivy_os(t: &TestDir, input: &Path) -> Value {
    let json: Value = serde_json::from_str(&run(Command::new(tool("STRATA_TRIVY"))
        .args(["image", "--quiet", "--format", "cyclonedx", "--cache-dir"])
        .arg(t.join("trivy-cache"))
        .arg("--input")
        .arg(input)))
    .unwrap();
    json["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "operating-system")
        .cloned()
        .unwrap_or(Value::Null)
}

/// Pulls `source` into podman's storage, runs the image's own command and
/// checks what it prints.
fn podman_pulls_and_runs(t: &TestDir, source: &str) {
    let pulled = run(&mut podman(t, &["pull", "-q", source]));
    let id = pulled.trim();
    let printed = podman_run(t, id, &[]);
    assert!(printed.contains("\"ca_certificates\": true"), "{printed}");
}

/// Checks every JSON document the layout's `index.json` reaches against the
/// image-spec schemas: indexes, manifests (the image's and its artifacts'),
/// configs, and the layout's own files.
fn validate_documents(t: &TestDir, layout: &Path) {
    validate("oci/image-layout-schema.json", &layout.join("oci-layout"));
    validate("oci/image-index-schema.json", &layout.join("index.json"));
    let index: Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let mut pending: Vec<Value> = index["manifests"].as_array().unwrap().clone();
    for d in index["manifests"].as_array().unwrap() {
        if let Some(referrers) = d["annotations"]["dev.strata.referrers"].as_str() {
            pending.push(serde_json::json!({
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "digest": referrers,
            }));
        }
    }
    let mut seen = BTreeSet::new();
    while let Some(d) = pending.pop() {
        let digest = d["digest"].as_str().unwrap().to_owned();
        if !seen.insert(digest.clone()) {
            continue;
        }
        let document = json_blob(layout, &digest);
        let file = t.join("document.json");
        fs::write(&file, serde_json::to_vec(&document).unwrap()).unwrap();
        match d["mediaType"].as_str().unwrap() {
            "application/vnd.oci.image.index.v1+json" => {
                validate("oci/image-index-schema.json", &file);
                pending.extend(document["manifests"].as_array().unwrap().iter().cloned());
            }
            "application/vnd.oci.image.manifest.v1+json" => {
                validate("oci/image-manifest-schema.json", &file);
                if document["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json" {
                    let config = json_blob(layout, document["config"]["digest"].as_str().unwrap());
                    fs::write(&file, serde_json::to_vec(&config).unwrap()).unwrap();
                    validate("oci/config-schema.json", &file);
                }
            }
            other => panic!("unexpected media type {other}"),
        }
    }
    assert_eq!(
        seen.len(),
        3,
        "image manifest, referrers index, SBOM: {seen:?}"
    );
}

#[test]
fn every_consumer_reads_the_default_layout_unchanged() {
    let t = TestDir::new();
    let dir = built_by_default(&t, &[]);
    let out = dir.join("out");
    let digest = tagged_digest(&out, "3.11");

    let packages = syft_packages(&format!("oci-dir:{}", out.display()));
    assert!(packages.contains("python3.11-minimal"), "{packages:?}");
    assert_eq!(trivy_os(&t, &out)["name"], "debian");

    let inspected: Value = serde_json::from_str(&run(Command::new("skopeo")
        .arg("inspect")
        .arg(format!("oci:{}", out.display()))))
    .unwrap();
    assert_eq!(inspected["Digest"], digest.as_str());

    let rootfs = util::unpack(&out, "3.11", &t.join("bundle"));
    assert!(rootfs.join("usr/bin/python3").exists());

    run(Command::new("oci-image-tool")
        .args(["validate", "--type", "image"])
        .arg(&out));
    validate_documents(&t, &out);

    // podman names the image after the path, which must be lowercase.
    podman_pulls_and_runs(&t, "oci:python/out");

    // skopeo copies the image to a registry with no tag named; Charliecloud
    // pulls it from there (it reads registries only) and runs it.
    let registry = Registry::start_tls("strata", "s3cret-pw");
    run(Command::new("skopeo")
        .arg("copy")
        .arg("--dest-cert-dir")
        .arg(registry.cert_dir())
        .args(["--dest-creds", "strata:s3cret-pw"])
        .arg(format!("oci:{}", out.display()))
        .arg(format!("docker://{}/tre/python:3.11", registry.addr)));
    assert_eq!(
        registry.inspect("tre/python:3.11")["Digest"],
        digest.as_str()
    );
    let storage = t.join("charliecloud");
    run(registry
        .charliecloud(&storage, "ch-image")
        .arg("pull")
        .arg(format!("{}/tre/python:3.11", registry.addr)));
    let name = format!("{}%tre%python+3.11", registry.addr.replace(':', "+"));
    let printed = run(registry
        .charliecloud(&storage, "ch-run")
        .arg("-s")
        .arg(&storage)
        .args(["--cd", "/opt/app"])
        .arg(&name)
        .args(["--", "/usr/bin/python3", "/opt/app/check.py"]));
    assert!(printed.contains("\"ca_certificates\": true"), "{printed}");

    // strata's own readers find the SBOM from the same layout.
    let sbom = run(t.strata().arg("sbom").arg(&out));
    assert!(sbom.contains("python3.11-minimal"), "{sbom}");
}

#[test]
fn every_consumer_that_reads_archives_reads_the_default_oci_archive() {
    let t = TestDir::new();
    let dir = built_by_default(&t, &["--format", "oci-archive"]);
    let archive = dir.join("out.tar");
    let source = format!("oci-archive:{}", archive.display());

    let packages = syft_packages(&source);
    assert!(packages.contains("python3.11-minimal"), "{packages:?}");
    // Trivy reads Docker archives and OCI layouts, not OCI archives: the
    // layout test covers it.
    let inspected: Value =
        serde_json::from_str(&run(Command::new("skopeo").arg("inspect").arg(&source))).unwrap();
    assert!(inspected["Digest"].as_str().unwrap().starts_with("sha256:"));
    podman_pulls_and_runs(&t, &source);
}
