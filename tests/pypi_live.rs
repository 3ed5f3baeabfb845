//! Against the real PyPI and Debian mirror: the scientific stack from PyPI
//! runs in a Debian image as a TRE runs it (read-only, offline, as the
//! analyst), scikit-learn's own test suite passes inside it, the same files
//! land as with `uv pip install --target`, scanners see exactly the lock's
//! packages, Debian 13 and arm64 get wheels for their own interpreter and
//! machine, and locks written by uv (`pylock.toml`, hash-pinned
//! requirements) install exactly what they name.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::process::Command;

use crate::util::{
    self, TestDir, find_entry, layers, locked, names, run, run_read_only, sbom_packages, text,
    tool, validate,
};

/// `(name, version, sha256)` of every wheel of a lock.
fn locked_wheels(lock: &Path) -> BTreeSet<(String, String, String)> {
    locked(lock, "wheel")
}

/// `(name, version)` of the scanner's findings that `keep` selects, names
/// PEP 503-normalized: scanners report them in the project's own spelling.
fn normalized(
    found: &[serde_json::Value],
    keep: impl Fn(&serde_json::Value) -> bool,
) -> BTreeSet<(String, String)> {
    found
        .iter()
        .filter(|f| keep(f))
        .map(|f| {
            let name = f["name"].as_str().unwrap();
            (
                name.to_ascii_lowercase().replace(['_', '.'], "-"),
                f["version"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Path → sha256 (or link target) of every file below `root`.
fn tree(root: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let meta = fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                walk(root, &path, out);
            } else if meta.file_type().is_symlink() {
                out.insert(
                    rel,
                    format!("-> {}", fs::read_link(&path).unwrap().display()),
                );
            } else {
                use sha2::Digest;
                out.insert(
                    rel,
                    hex::encode(sha2::Sha256::digest(fs::read(&path).unwrap())),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

#[test]
fn tre_pypi_runs_scikit_learn_and_its_own_tests_like_uv_would_install_it() {
    let t = TestDir::new();
    let recipe = t.example("tre-pypi");
    let image = t.build_and_unpack(&recipe, "1.0.0");
    let wheels = locked_wheels(&recipe.with_extension("lock"));
    let expected: BTreeSet<&str> = ["numpy", "pandas", "scipy", "scikit-learn", "pytest"].into();
    let got: BTreeSet<&str> = wheels.iter().map(|(n, _, _)| n.as_str()).collect();
    assert!(got.is_superset(&expected), "{got:?}");

    // Every library the wheels' modules need is in the image (libstdc++
    // from Debian, the rest bundled in `NAME.libs` and found by RUNPATH).
    let lint = t
        .strata()
        .args(["lint", "--format", "json"])
        .arg(&recipe)
        .output()
        .unwrap();
    let findings = text(&lint.stdout);
    assert!(!findings.contains("STR017"), "{findings}");

    // As a TRE runs it: read-only root, no network, the analyst's uid.
    fits(&image);
    let suite = run_read_only(
        &image,
        10001,
        &["--chdir", "/tmp"],
        &[
            "/opt/venv/bin/python",
            "-m",
            "pytest",
            "--pyargs",
            "sklearn.linear_model",
            "-q",
            "-p",
            "no:cacheprovider",
        ],
    );
    let summary = suite.lines().last().unwrap_or_default();
    let words: Vec<&str> = summary.split([',', ' ']).collect();
    assert!(
        words.contains(&"passed")
            && !words
                .iter()
                .any(|w| ["failed", "error", "errors"].contains(w)),
        "{summary}"
    );

    // The venv: its interpreter is the image's, and so are the launchers'.
    let site = image.rootfs.join("opt/venv/lib/python3.11/site-packages");
    assert_eq!(
        fs::read_link(image.rootfs.join("opt/venv/bin/python")).unwrap(),
        Path::new("/usr/bin/python3.11")
    );
    let pytest = fs::read_to_string(image.rootfs.join("opt/venv/bin/pytest")).unwrap();
    assert!(pytest.starts_with("#!/opt/venv/bin/python\n"), "{pytest}");

    // uv, installing the same locked wheels (by hash), writes the same files
    // but for its launchers (host interpreter), INSTALLER, RECORD (which
    // lists the launchers), REQUESTED and its own `.lock`.
    let pins = t.write(
        "pins.txt",
        &wheels
            .iter()
            .map(|(n, v, sha)| format!("{n}=={v} --hash=sha256:{sha}\n"))
            .collect::<String>(),
    );
    let target = t.join("uv-target");
    run(Command::new(tool("STRATA_UV"))
        .args(["pip", "install", "--quiet", "--no-deps", "--require-hashes"])
        .args([
            "--python-platform",
            "x86_64-manylinux_2_36",
            "--python-version",
            "3.11",
        ])
        .arg("--target")
        .arg(&target)
        .arg("-r")
        .arg(&pins)
        .env("UV_CACHE_DIR", t.join("uv-cache")));
    let documented = |path: &str| {
        path == ".lock"
            || path.starts_with("bin/")
            || path.ends_with(".dist-info/REQUESTED")
            || path.ends_with(".dist-info/INSTALLER")
            || path.ends_with(".dist-info/RECORD")
    };
    let theirs: BTreeMap<String, String> = tree(&target)
        .into_iter()
        .filter(|(p, _)| !documented(p))
        .collect();
    let ours: BTreeMap<String, String> = tree(&site)
        .into_iter()
        .filter(|(p, _)| !documented(p))
        .collect();
    assert!(theirs.len() > 1000, "uv installed {} files", theirs.len());
    let differ: Vec<&String> = theirs
        .keys()
        .chain(ours.keys())
        .filter(|p| theirs.get(*p) != ours.get(*p))
        .collect();
    assert!(differ.is_empty(), "files differ from uv's: {differ:?}");
    let launchers = |dir: &Path| -> BTreeSet<String> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with("python"))
            .collect()
    };
    assert_eq!(
        launchers(&target.join("bin")),
        launchers(&image.rootfs.join("opt/venv/bin"))
    );

    // The SBOM, Syft and Trivy all list exactly the lock's Python packages.
    let sbom: serde_json::Value = serde_json::from_str(&run(t
        .strata()
        .arg("sbom")
        .arg(format!("{}:1.0.0", image.layout.display()))))
    .unwrap();
    let in_sbom = sbom_packages(&sbom, "pkg:pypi/");
    assert_eq!(
        in_sbom,
        names(&wheels),
        "the SBOM's Python packages differ from the lock"
    );
    let document = t.write("sbom.json", &sbom.to_string());
    validate("spdx-2.3.schema.json", &document);

    let archive = t.join("tre-pypi.tar");
    t.build_with(&recipe, &archive, &["--format", "docker-archive"]);
    let syft: serde_json::Value = serde_json::from_str(&run(Command::new(tool("STRATA_SYFT"))
        .args(["scan", "-q", "-o", "json"])
        .arg(format!("docker-archive:{}", archive.display()))))
    .unwrap();
    let by_syft = normalized(syft["artifacts"].as_array().unwrap(), |a| {
        a["type"] == "python"
    });
    assert_eq!(
        by_syft,
        names(&wheels),
        "Syft's Python packages differ from the lock"
    );

    let trivy: serde_json::Value = serde_json::from_str(&run(Command::new(tool("STRATA_TRIVY"))
        .args(["image", "--quiet", "--format", "cyclonedx", "--cache-dir"])
        .arg(t.join("trivy-cache"))
        .arg("--input")
        .arg(&image.layout)))
    .unwrap();
    let by_trivy = normalized(trivy["components"].as_array().unwrap(), |c| {
        c["purl"]
            .as_str()
            .is_some_and(|p| p.starts_with("pkg:pypi/"))
    });
    assert_eq!(
        by_trivy,
        names(&wheels),
        "Trivy's Python packages differ from the lock"
    );
}

/// Runs the example's analysis as a TRE would: read-only root, no network,
/// the analyst's uid.
fn fits(image: &util::Unpacked) {
    let fitted = run_read_only(
        image,
        10001,
        &[],
        &["/opt/venv/bin/python", "/opt/analysis/fit.py"],
    );
    assert!(fitted.starts_with("accuracy 0.9"), "{fitted}");
}

/// The tre-pypi recipe on another release or platform.
fn variant(t: &TestDir, dir: &str, release: &str, platform: &str) -> std::path::PathBuf {
    let recipe = t.example_in(dir, "tre-pypi");
    let recipe = util::edit_file(
        &recipe,
        "debian \"bookworm\"",
        &format!("debian \"{release}\""),
    );
    if platform == "linux/amd64" {
        return recipe;
    }
    util::edit_file(
        &recipe,
        "platform \"linux/amd64\"",
        &format!("platform \"{platform}\""),
    )
}

#[test]
fn debian_13_and_arm64_get_wheels_for_their_own_interpreter_and_machine() {
    let t = TestDir::new();
    let trixie = variant(&t, "trixie", "trixie", "linux/amd64");
    let image = t.build_and_unpack(&trixie, "1.0.0");
    fits(&image);
    let lock = fs::read_to_string(trixie.with_extension("lock")).unwrap();
    assert!(lock.contains("tag=\"cp313-cp313-manylinux"), "{lock}");
    assert!(
        image
            .rootfs
            .join("opt/venv/lib/python3.13/site-packages/numpy/__init__.py")
            .is_file()
    );

    // From this amd64 host, with nothing run: aarch64 extension modules.
    let arm = variant(&t, "arm64", "trixie", "linux/arm64");
    let out = t.join("arm64-out");
    t.build(&arm, &out);
    let lock = fs::read_to_string(arm.with_extension("lock")).unwrap();
    assert!(
        lock.contains("manylinux_2_17_aarch64") || lock.contains("manylinux_2_28_aarch64"),
        "{lock}"
    );
    assert!(!lock.contains("x86_64\""), "{lock}");
    let layers = layers(&out, "1.0.0");
    let config = util::config(&out, "1.0.0");
    assert_eq!(config["architecture"], "arm64");
    let modules: Vec<&util::TarEntry> = layers
        .iter()
        .flatten()
        .filter(|e| e.path.starts_with("opt/venv/") && e.path.ends_with(".so"))
        .collect();
    assert!(modules.len() > 50, "{} extension modules", modules.len());
    for module in modules.iter().filter(|m| m.path.contains("-linux-gnu.so")) {
        // ELF, 64-bit, little-endian, e_machine EM_AARCH64 (183).
        assert_eq!(&module.content[..4], b"\x7fELF", "{}", module.path);
        assert_eq!(module.content[4], 2, "{}", module.path);
        assert_eq!(
            u16::from_le_bytes([module.content[18], module.content[19]]),
            183,
            "{} is not an aarch64 ELF file",
            module.path
        );
    }
    let umath = find_entry(
        &layers,
        "opt/venv/lib/python3.13/site-packages/numpy/_core/_multiarray_umath.cpython-313-aarch64-linux-gnu.so",
    );
    assert_eq!(
        u16::from_le_bytes([umath.content[18], umath.content[19]]),
        183
    );
}

#[test]
fn locks_and_hash_pins_written_by_uv_install_exactly_their_wheels() {
    let t = TestDir::new();
    t.write("input.txt", "python-dateutil==2.9.0.post0\nattrs>=24\n");
    let uv = |args: &[&str]| {
        run(Command::new(tool("STRATA_UV"))
            .args(["pip", "compile", "--quiet", "--no-header"])
            .args([
                "--python-platform",
                "x86_64-manylinux_2_36",
                "--python-version",
                "3.11",
            ])
            .args(args)
            .arg(t.join("input.txt"))
            .env("UV_CACHE_DIR", t.join("uv-cache")))
    };
    let pylock = uv(&["--format", "pylock.toml"]);
    let hashed = uv(&["--generate-hashes"]);
    let body = |python: &str| {
        format!(
            "name \"uvlock\"\nversion \"1\"\nbase \"scratch\"\nplatform \"linux/amd64\"\n\
             debian \"bookworm\" {{\n    install \"python3-minimal\"\n}}\npython {{\n{python}\n}}\n"
        )
    };
    let from_pylock = t.write("pylock/image.kdl", &body("    lock-file \"pylock.toml\""));
    t.write("pylock/pylock.toml", &pylock);
    t.build(&from_pylock, &t.join("pylock-out"));
    let from_hashes = t.write(
        "hashed/image.kdl",
        &body("    requirements \"requirements.txt\""),
    );
    t.write("hashed/requirements.txt", &hashed);
    t.build(&from_hashes, &t.join("hashed-out"));

    // Both hold exactly the wheels uv named, by their sha256.
    // One line per wheel; sdists are listed too, and not installed.
    let named: BTreeSet<String> = pylock
        .lines()
        .filter(|l| l.contains(".whl\""))
        .filter_map(|l| l.split("sha256 = \"").nth(1))
        .map(|rest| rest.split('"').next().unwrap().to_owned())
        .collect();
    let hashes = |lock: &Path| -> BTreeSet<String> {
        locked_wheels(lock)
            .into_iter()
            .map(|(_, _, sha)| sha)
            .collect()
    };
    assert_eq!(hashes(&from_pylock.with_extension("lock")), named);
    let pinned = hashes(&from_hashes.with_extension("lock"));
    assert!(
        pinned.iter().all(|sha| hashed.contains(sha.as_str())),
        "{pinned:?}"
    );
    assert_eq!(
        names(&locked_wheels(&from_pylock.with_extension("lock"))),
        names(&locked_wheels(&from_hashes.with_extension("lock")))
    );

    // `strata lock --format pylock` gives a lock the same build accepts.
    let exported = run(t
        .strata()
        .arg("lock")
        .arg(&from_hashes)
        .args(["--format", "pylock"]));
    let again = t.write("again/image.kdl", &body("    lock-file \"pylock.toml\""));
    t.write("again/pylock.toml", &exported);
    t.build(&again, &t.join("again-out"));
    assert_eq!(
        locked_wheels(&again.with_extension("lock")),
        locked_wheels(&from_hashes.with_extension("lock"))
    );

    // One wrong hash: the build names the package and writes nothing.
    let dateutil = locked_wheels(&from_hashes.with_extension("lock"))
        .into_iter()
        .find(|(name, _, _)| name == "python-dateutil")
        .expect("python-dateutil is locked")
        .2;
    let wrong = t.write(
        "wrong/requirements.txt",
        &hashed.replace(&dateutil, &"0".repeat(64)),
    );
    let recipe = t.write(
        "wrong/image.kdl",
        &body("    requirements \"requirements.txt\""),
    );
    assert!(wrong.exists());
    let err = t.build_fails(&recipe, &t.join("wrong-out"));
    assert!(err.contains("python-dateutil"), "{}", text(err.as_bytes()));
    assert!(!t.join("wrong-out").exists());
}
