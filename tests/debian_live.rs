//! Against the real Debian 12 mirror: Python with its TLS stack runs offline
//! as the recipe's user, pandas computes, scanners (Syft, Trivy) see exactly
//! the locked packages, and cold, warm and unprivileged builds of one lock
//! give one digest.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::chown;
use std::process::Command;

use crate::util::{
    EPOCH, TestDir, assert_success, locked, names, run, sbom_packages, snapshot, syft_debs, tool,
};

#[test]
fn python_with_tls_runs_offline_and_scanners_agree_with_the_lock() {
    let t = TestDir::new();
    let recipe = t.example("python");
    let image = t.build_and_unpack(&recipe, "3.11");
    let out = &image.layout;

    let printed = image.run(
        10001,
        10001,
        &[
            "/usr/bin/python3",
            "-c",
            "import ssl, sqlite3, json, zlib; print(ssl.OPENSSL_VERSION)",
        ],
    );
    assert!(printed.starts_with("OpenSSL 3."), "{printed}");
    let check = image.run(10001, 10001, &["/usr/bin/python3", "/opt/app/check.py"]);
    assert!(check.contains("\"ca_certificates\": true"), "{check}");

    let locked = names(&locked(&t.join("python/image.lock"), "package"));
    assert!(locked.iter().any(|(n, _)| n == "python3-minimal"));

    // The SBOM strata attached lists exactly the locked packages.
    let sbom: serde_json::Value = serde_json::from_str(&run(t
        .strata()
        .arg("sbom")
        .arg(format!("{}:3.11", out.display()))))
    .unwrap();
    let in_sbom = sbom_packages(&sbom, "pkg:deb/");
    assert_eq!(in_sbom, locked, "the SBOM's packages differ from the lock");

    // Syft's `oci-dir:` source takes layouts with exactly one manifest, and
    // this one also lists the SBOM artifact: Syft reads the same image from
    // a docker-archive instead.
    let archive = t.join("python.tar");
    t.build_with(&recipe, &archive, &["--format", "docker-archive"]);
    assert_eq!(
        syft_debs(&archive),
        locked,
        "Syft's packages differ from the lock"
    );

    let trivy: serde_json::Value = serde_json::from_str(&run(Command::new(tool("STRATA_TRIVY"))
        .args(["image", "--quiet", "--format", "cyclonedx", "--cache-dir"])
        .arg(t.join("trivy-cache"))
        .arg("--input")
        .arg(out)))
    .unwrap();
    let components = trivy["components"].as_array().unwrap();
    let os = components
        .iter()
        .find(|c| c["type"] == "operating-system")
        .expect("Trivy detects the OS");
    assert_eq!(os["name"], "debian");
    let by_trivy: BTreeSet<(String, String)> = components
        .iter()
        .filter(|c| c["type"] == "library")
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_owned(),
                c["version"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(by_trivy, locked, "Trivy's packages differ from the lock");
}

#[test]
fn pandas_computes_offline() {
    let t = TestDir::new();
    let image = t.build_and_unpack(&t.example("tre-python"), "1.0.0");
    let printed = image.run(
        10001,
        10001,
        &["/usr/bin/python3", "/opt/analysis/summarise.py"],
    );
    assert_eq!(printed, "site,count,mean\na,2,2.0\nb,3,4.0\n");
}

#[test]
fn one_lock_gives_one_digest_cold_warm_and_unprivileged() {
    let t = TestDir::new();
    let recipe = t.example("python");
    run(t.strata().arg("lock").arg(&recipe));
    t.build(&recipe, &t.join("cold"));
    t.build(&recipe, &t.join("warm"));
    let cold = snapshot(&t.join("cold"));
    assert!(
        cold == snapshot(&t.join("warm")),
        "a warm build differs from the cold one"
    );

    for dir in ["cache-nobody", "nobody"] {
        fs::create_dir_all(t.join(dir)).unwrap();
        chown(t.join(dir), Some(65534), Some(65534)).unwrap();
    }
    let output = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_strata"))
        .args(["build", "--locked", "-o"])
        .arg(t.join("nobody/out"))
        .arg(&recipe)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .env("STRATA_CACHE", t.join("cache-nobody"))
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .output()
        .unwrap();
    assert_success(&output, "build as nobody");
    assert!(
        cold == snapshot(&t.join("nobody/out")),
        "the unprivileged build differs"
    );
}

#[test]
fn two_architectures_from_one_recipe_without_emulation() {
    let t = TestDir::new();
    let recipe = t.write(
        "multi/image.kdl",
        "name \"zlib\"\nversion \"1\"\nbase \"scratch\"\nplatform \"linux/amd64\" \"linux/arm64\"\ndebian \"bookworm\" {\n    install \"zlib1g\"\n}\n",
    );
    let out = t.join("out");
    t.build(&recipe, &out);
    let lock = fs::read_to_string(t.join("multi/image.lock")).unwrap();
    assert!(
        lock.contains("platform \"linux/amd64\"") && lock.contains("platform \"linux/arm64\""),
        "{lock}"
    );
    assert!(
        lock.contains("zlib1g_") && lock.contains("_arm64.deb") && lock.contains("_amd64.deb"),
        "{lock}"
    );

    let index = crate::util::json_blob(&out, &crate::util::tagged_digest(&out, "1"));
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 2);
    for (m, triplet) in manifests
        .iter()
        .zip(["x86_64-linux-gnu", "aarch64-linux-gnu"])
    {
        let manifest = crate::util::json_blob(&out, m["digest"].as_str().unwrap());
        let mut paths: Vec<String> = Vec::new();
        for layer in manifest["layers"].as_array().unwrap() {
            let hex = layer["digest"]
                .as_str()
                .unwrap()
                .trim_start_matches("sha256:");
            let file = fs::File::open(out.join("blobs/sha256").join(hex)).unwrap();
            let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
            paths.extend(
                archive
                    .entries()
                    .unwrap()
                    .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned()),
            );
        }
        assert!(
            paths
                .iter()
                .any(|p| p.starts_with(&format!("usr/lib/{triplet}/libz.so.1"))),
            "{triplet}: {paths:?}"
        );
    }
}
