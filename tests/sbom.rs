//! The SBOM: SPDX 2.3 and CycloneDX 1.5 documents that validate against
//! their published schemas, list the locked packages with their `.deb`
//! hashes and licences and the recipe's files, are byte-reproducible, sit in
//! the layout as an artifact whose subject is the image, and reach a
//! registry under the referrers tag.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use serde_json::Value;

use crate::packages::{recipe, standard_repo};
use crate::util::apt::{Pkg, serve_signed};
use crate::util::{
    Registry, TestDir, assert_success, edit_file, syft_debs, tagged_digest, validate,
};

fn sbom(t: &TestDir, image: &str, format: Option<&str>) -> Vec<u8> {
    let mut cmd = t.strata();
    cmd.arg("sbom").arg(image);
    if let Some(format) = format {
        cmd.args(["--format", format]);
    }
    let output = cmd.output().unwrap();
    assert_success(&output, "strata sbom");
    output.stdout
}

/// The SBOM of the image tagged `1` in `layout` (SPDX unless `cyclonedx`),
/// validated against its published schema.
fn validated_sbom(t: &TestDir, layout: &Path, format: Option<&str>) -> Value {
    let bytes = sbom(t, &format!("{}:1", layout.display()), format);
    let (file, schema) = match format {
        Some("cyclonedx") => ("sbom.cdx.json", "bom-1.5.schema.json"),
        _ => ("sbom.spdx.json", "spdx-2.3.schema.json"),
    };
    let file = t.join(file);
    fs::write(&file, &bytes).unwrap();
    validate(schema, &file);
    serde_json::from_slice(&bytes).unwrap()
}

#[test]
fn spdx_lists_packages_files_and_licences_and_validates() {
    let t = TestDir::new();
    let (_repo, url) = standard_repo(&t);
    let path = recipe(&t, &url, "\"app\"");
    let out = t.join("out");
    t.build(&path, &out);
    let doc = validated_sbom(&t, &out, None);
    assert_eq!(doc["spdxVersion"], "SPDX-2.3");
    assert_eq!(doc["creationInfo"]["created"], "2023-11-14T22:13:20Z");
    let image = tagged_digest(&out, "1");
    assert!(
        doc["documentNamespace"]
            .as_str()
            .unwrap()
            .ends_with(image.trim_start_matches("sha256:")),
        "{doc:#}"
    );
    let lock = fs::read_to_string(t.join("image/image.lock")).unwrap();
    let debs: Vec<&Value> = doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["SPDXID"].as_str().unwrap().starts_with("SPDXRef-deb-"))
        .collect();
    let names: Vec<&str> = debs.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["app", "hello-bin", "libfoo", "tiny-mta"]);
    for p in &debs {
        let sha = p["checksums"][0]["checksumValue"].as_str().unwrap();
        assert!(
            lock.contains(sha),
            "{sha} of {} is not the lock's",
            p["name"]
        );
        let purl = p["externalRefs"][0]["referenceLocator"].as_str().unwrap();
        assert!(purl.starts_with(&format!("pkg:deb/debian/{}@", p["name"].as_str().unwrap())));
    }
    let libfoo = debs.iter().find(|p| p["name"] == "libfoo").unwrap();
    assert_eq!(libfoo["versionInfo"], "2.0");
    assert_eq!(
        libfoo["externalRefs"][0]["referenceLocator"],
        "pkg:deb/debian/libfoo@2.0?arch=amd64"
    );
    // `app`'s copyright file is not machine-readable: no licence is claimed.
    let app = debs.iter().find(|p| p["name"] == "app").unwrap();
    assert_eq!(app["licenseDeclared"], "NOASSERTION");
}

#[test]
fn licences_come_from_machine_readable_copyright_files() {
    let t = TestDir::new();
    let copyright: &[u8] = b"Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\nLicense: GPL-2+ or Artistic\n\nFiles: lib/*\nLicense: Expat\n";
    let (_repo, url) = serve_signed(
        &t,
        "licences",
        &[Pkg {
            name: "licensed",
            version: "1:2.0+dfsg-1",
            arch: "amd64",
            fields: &[],
            files: &[
                ("/usr/bin/licensed", b"#!/bin/sh\n", 0o755),
                ("/usr/share/doc/licensed/copyright", copyright, 0o644),
            ],
        }],
        &t.join("image/keys/repo.gpg"),
    );
    let path = recipe(&t, &url, "\"licensed\"");
    let out = t.join("out");
    t.build_with(&path, &out, &["--sbom", "cyclonedx"]);
    let doc = validated_sbom(&t, &out, Some("cyclonedx"));
    assert_eq!(doc["specVersion"], "1.5");
    let component = doc["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "licensed")
        .unwrap();
    assert_eq!(
        component["purl"],
        "pkg:deb/debian/licensed@1%3A2.0%2Bdfsg-1?arch=amd64"
    );
    let ids: Vec<&str> = component["licenses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["license"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["GPL-2.0-or-later", "Artistic-1.0-Perl", "MIT"]);
    // Asking for the other format names what is missing.
    let output = t
        .strata()
        .args(["sbom", "--format", "spdx"])
        .arg(format!("{}:1", out.display()))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("has no `application/spdx+json` SBOM"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_sbom_is_an_artifact_about_the_image_and_reproducible() {
    let t = TestDir::new();
    let recipe = t.example("app");
    let (a, b) = (t.join("a"), t.join("b"));
    t.build(&recipe, &a);
    t.build(&recipe, &b);
    let first = sbom(&t, &a.display().to_string(), None);
    assert_eq!(first, sbom(&t, &b.display().to_string(), None));

    let doc: Value = serde_json::from_slice(&first).unwrap();
    let files: Vec<&str> = doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["fileName"].as_str().unwrap())
        .collect();
    assert!(files.contains(&"./opt/app/main.py"), "{files:?}");
    let main = doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["fileName"] == "./opt/app/main.py")
        .unwrap();
    let expected = format!(
        "{:x}",
        <sha2::Sha256 as sha2::Digest>::digest(fs::read(t.join("app/app/main.py")).unwrap())
    );
    assert_eq!(main["checksums"][1]["checksumValue"], expected.as_str());

    // index.json: the tagged image alone, naming its referrers index, which
    // lists the artifact about it as the referrers API would.
    let index: Value = serde_json::from_slice(&fs::read(a.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1, "{index:#}");
    let referrers = index["manifests"][0]["annotations"]["dev.strata.referrers"]
        .as_str()
        .unwrap();
    let referrers = crate::util::json_blob(&a, referrers);
    assert_eq!(
        referrers["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let artifact = &referrers["manifests"][0];
    assert_eq!(artifact["artifactType"], "application/spdx+json");
    let digest = artifact["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:");
    let manifest: Value =
        serde_json::from_slice(&fs::read(a.join("blobs/sha256").join(digest)).unwrap()).unwrap();
    assert_eq!(manifest["subject"]["digest"], tagged_digest(&a, "2.1.0"));
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.oci.empty.v1+json"
    );
    // umoci still unpacks the image by its tag.
    crate::util::unpack(&a, "2.1.0", &t.join("bundle"));

    // The image does not depend on its SBOM.
    let none = t.join("none");
    t.build_with(&recipe, &none, &["--sbom", "none"]);
    assert_eq!(tagged_digest(&none, "2.1.0"), tagged_digest(&a, "2.1.0"));
    let index: Value = serde_json::from_slice(&fs::read(none.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1);
    assert!(index["manifests"][0]["annotations"]["dev.strata.referrers"].is_null());
}

#[test]
fn a_push_attaches_the_sbom_under_the_referrers_tag() {
    let t = TestDir::new();
    let registry = Registry::start();
    let pushed = registry.build_push_read_back(&t, &t.example("app"), "strata/app:2.1.0");
    let referrers = format!("strata/app:{}", pushed.digest.replace(':', "-"));
    let raw = registry.inspect_raw(&referrers);
    let referrer = &raw["manifests"][0];
    assert_eq!(referrer["artifactType"], "application/spdx+json");
    let artifact = registry.inspect_raw(&format!(
        "strata/app@{}",
        referrer["digest"].as_str().unwrap()
    ));
    assert_eq!(artifact["subject"]["digest"], pushed.digest.as_str());
    // Pushing again keeps one entry, not two.
    registry.push(&t, &pushed.layout, "2.1.0", "strata/app:2.1.0");
    let raw = registry.inspect_raw(&referrers);
    assert_eq!(raw["manifests"].as_array().unwrap().len(), 1);
}

#[test]
fn packages_of_the_base_are_listed_and_syft_agrees() {
    let t = TestDir::new();
    let (_repo, url) = standard_repo(&t);
    // A base built by strata with hello-bin in its dpkg database.
    let base = recipe(&t, &url, "\"hello-bin\"");
    t.build(&base, &t.join("base-out"));
    let digest = tagged_digest(&t.join("base-out"), "1");
    let child = t.write("child/image.kdl", &fs::read_to_string(&base).unwrap());
    edit_file(&child, "name \"pkgs\"", "name \"child\"");
    let base_ref = format!("base \"oci:../base-out@{digest}\"");
    edit_file(&child, "base \"scratch\"", &base_ref);
    edit_file(&child, "install \"hello-bin\"", "install \"app\"");
    fs::create_dir_all(t.join("child/keys")).unwrap();
    fs::copy(t.join("image/keys/repo.gpg"), t.join("child/keys/repo.gpg")).unwrap();
    let out = t.join("out");
    t.build(&child, &out);

    let doc = validated_sbom(&t, &out, None);
    let debs = |prefix: &str| -> BTreeSet<(String, String)> {
        doc["packages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["SPDXID"].as_str().unwrap().starts_with(prefix))
            .map(|p| {
                (
                    p["name"].as_str().unwrap().to_owned(),
                    p["versionInfo"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let pairs = |list: &[(&str, &str)]| -> BTreeSet<(String, String)> {
        list.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    };
    assert_eq!(debs("SPDXRef-base-deb-"), pairs(&[("hello-bin", "1.0")]));
    assert_eq!(
        debs("SPDXRef-deb-"),
        pairs(&[("app", "1.0"), ("libfoo", "2.0"), ("tiny-mta", "0.1")])
    );

    // Syft, reading the same image, finds exactly these packages.
    let archive = t.join("child.tar");
    t.build_with(&child, &archive, &["--format", "docker-archive"]);
    let mut ours = debs("SPDXRef-base-deb-");
    ours.extend(debs("SPDXRef-deb-"));
    assert_eq!(syft_debs(&archive), ours);
}
