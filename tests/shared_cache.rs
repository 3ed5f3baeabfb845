//! The shared layer cache in a registry (`--cache REGISTRY/REPO`,
//! `spec/cache.md`), against a real docker-registry on loopback: runners
//! with empty local caches reuse what one of them built, and an entry that
//! does not hold what its key promises is never used.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use crate::util::registry::Registry;
use crate::util::{TestDir, assert_success, tagged_digest, text};

/// `strata build --json` as one CI runner, with its own local cache.
fn runner(t: &TestDir, name: &str, recipe: &Path, args: &[&str]) -> Output {
    let mut cmd = t.strata();
    cmd.env("STRATA_CACHE", t.join(&format!("cache-{name}")))
        .arg("build")
        .arg(recipe)
        .arg("-o")
        .arg(t.join(&format!("out-{name}")))
        .arg("--json")
        .args(args);
    cmd.output().unwrap()
}

fn json(output: &Output) -> Value {
    assert_success(output, "strata build");
    serde_json::from_slice(&output.stdout).unwrap()
}

fn layers(report: &Value) -> Vec<&Value> {
    report["layers"].as_array().unwrap().iter().collect()
}

/// The image of the standard repository's `app` (several source packages,
/// so several layers) and a recipe layer.
fn recipe(t: &TestDir) -> (crate::util::apt::AptRepo, std::path::PathBuf) {
    let (repo, url) = crate::packages::standard_repo(t);
    let recipe = crate::packages::recipe(t, &url, "\"app\"");
    (repo, recipe)
}

#[test]
fn a_fresh_runner_compresses_nothing_the_fleet_built() {
    let t = TestDir::new();
    let registry = Registry::start();
    let (repo, recipe) = recipe(&t);
    let cache = format!("{}/team/strata-cache", registry.addr);
    let push = |tag: &str| format!("{}/team/app:{tag}", registry.addr);

    let a = json(&runner(
        &t,
        "a",
        &recipe,
        &["--cache", &cache, "--push", &push("a")],
    ));
    assert!(
        layers(&a).iter().all(|l| l["cached"] == false),
        "runner A builds every layer: {a:#}"
    );

    // Runner B: an empty local cache, the same recipe and lock, and the
    // Debian mirror gone: the packages come from the registry cache too.
    drop(repo);
    let b = json(&runner(
        &t,
        "b",
        &recipe,
        &["--locked", "--cache", &cache, "--push", &push("b")],
    ));
    assert_eq!(
        tagged_digest(&t.join("out-a"), "1"),
        tagged_digest(&t.join("out-b"), "1"),
        "the same image"
    );
    for layer in layers(&b) {
        assert_eq!(layer["cached"], true, "compressed again: {layer:#}");
        assert_eq!(layer["fetched"], true, "{layer:#}");
    }
    let pushed = &b["pushed"][0];
    assert_eq!(pushed["uploaded"], 0, "{pushed:#}");
    assert_eq!(pushed["uploadedBytes"], 0, "{pushed:#}");

    // STRATA_CACHE_REPO does the same as `--cache`, and a runner whose local
    // cache has the layers publishes nothing new.
    let mut env_runner = t.strata();
    env_runner
        .env("STRATA_CACHE", t.join("cache-c"))
        .env("STRATA_CACHE_REPO", &cache)
        .arg("build")
        .arg(&recipe)
        .arg("-o")
        .arg(t.join("out-c"))
        .arg("--json");
    let c = json(&env_runner.output().unwrap());
    assert!(layers(&c).iter().all(|l| l["fetched"] == true), "{c:#}");
}

/// Copies one cache entry over another's tag, as an attacker with push
/// rights (or a faulty tool) could: a valid entry, for the wrong key.
fn poison(registry: &Registry, repository: &str, from: &str, to: &str) {
    let accept = "Accept: application/vnd.oci.image.manifest.v1+json";
    let base = format!("http://{}/v2/{repository}/manifests", registry.addr);
    let got = Command::new("curl")
        .args(["-fsS", "-H", accept, &format!("{base}/{from}")])
        .output()
        .unwrap();
    assert_success(&got, "curl GET");
    let put = Command::new("curl")
        .args([
            "-fsS",
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/vnd.oci.image.manifest.v1+json",
            "--data-binary",
            "@-",
            &format!("{base}/{to}"),
        ])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(&got.stdout)?;
            child.wait_with_output()
        })
        .unwrap();
    assert_success(&put, "curl PUT");
}

fn tags(registry: &Registry, repository: &str) -> Vec<String> {
    let out = Command::new("curl")
        .args([
            "-fsS",
            &format!("http://{}/v2/{repository}/tags/list", registry.addr),
        ])
        .output()
        .unwrap();
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    list["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_push_only_build_mounts_the_cached_layers_without_downloading_them() {
    let t = TestDir::new();
    let registry = Registry::start();
    let (_repo, recipe) = recipe(&t);
    let cache = format!("{}/team/strata-cache", registry.addr);
    let a = json(&runner(&t, "a", &recipe, &["--cache", &cache]));

    // Runner B pushes to another repository of the same registry, with no
    // local output: every layer stays in the cache repository, mounted.
    let mut cmd = t.strata();
    cmd.env("STRATA_CACHE", t.join("cache-b"))
        .arg("build")
        .arg(&recipe)
        .args(["--format", "none", "--json", "--locked", "--cache", &cache])
        .args(["--push", &format!("{}/team/app2:b", registry.addr)]);
    let b = json(&cmd.output().unwrap());
    assert_eq!(b["digest"], a["digest"], "{b:#}");
    assert_eq!(b["output"], Value::Null);
    let layers_b = layers(&b);
    assert!(
        layers_b
            .iter()
            .all(|l| l["lazy"] == true && l["cached"] == true)
    );
    for layer in &layers_b {
        let hex = layer["digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:");
        assert!(
            !t.join("cache-b/blobs/sha256").join(hex).exists(),
            "layer {hex} was downloaded"
        );
    }
    let pushed = &b["pushed"][0];
    assert_eq!(pushed["mounted"], layers_b.len(), "{pushed:#}");
    // The image in the registry is whole: skopeo copies it back, blob for
    // blob the image runner A wrote.
    registry.read_back(&t, "team/app2:b", &t.join("out-a"), "1");

    // Without `--push`, `--format none` has nothing to do.
    let mut cmd = t.strata();
    cmd.arg("build").arg(&recipe).args(["--format", "none"]);
    let output = cmd.output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stderr).contains("there is nothing to push"));
}

#[test]
fn a_poisoned_entry_is_detected_and_the_image_does_not_change() {
    let t = TestDir::new();
    let registry = Registry::start();
    let (_repo, recipe) = recipe(&t);
    let repository = "team/strata-cache";
    let cache = format!("{}/{repository}", registry.addr);
    json(&runner(&t, "a", &recipe, &["--cache", &cache]));
    let expected = tagged_digest(&t.join("out-a"), "1");

    let all = tags(&registry, repository);
    assert!(
        all.iter().any(|e| e.starts_with("strata-package-")),
        "the packages are shared too: {all:?}"
    );
    let mut entries: Vec<String> = all
        .into_iter()
        .filter(|e| e.starts_with("strata-layer-"))
        .collect();
    entries.sort();
    assert!(entries.len() >= 2, "{entries:?}");
    poison(&registry, repository, &entries[0], &entries[1]);

    // A runner with an empty cache: the entry is ignored, the layer built.
    let output = runner(&t, "b", &recipe, &["--cache", &cache]);
    let b = json(&output);
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&format!("the entry `{}`", entries[1])) && stderr.contains("is ignored"),
        "{stderr}"
    );
    assert_eq!(tagged_digest(&t.join("out-b"), "1"), expected);
    assert_eq!(
        layers(&b).iter().filter(|l| l["cached"] == false).count(),
        1,
        "the poisoned layer alone is built: {b:#}"
    );
    // …and its entry is written again, right: the next runner fetches it.
    let c = json(&runner(&t, "c", &recipe, &["--cache", &cache]));
    assert!(layers(&c).iter().all(|l| l["fetched"] == true), "{c:#}");

    // `--verify-cache` rebuilds what the registry gives and compares.
    poison(&registry, repository, &entries[0], &entries[1]);
    let output = runner(&t, "d", &recipe, &["--cache", &cache, "--verify-cache"]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("but building it gives") && stderr.contains(&entries[1]),
        "{stderr}"
    );
    assert!(!t.join("out-d").exists(), "nothing written on failure");
}

#[test]
fn a_damaged_blob_in_the_registry_is_rebuilt() {
    let t = TestDir::new();
    let registry = Registry::start();
    let (_repo, recipe) = recipe(&t);
    let cache = format!("{}/team/strata-cache", registry.addr);
    let a = json(&runner(&t, "a", &recipe, &["--cache", &cache]));
    let expected = tagged_digest(&t.join("out-a"), "1");
    // The registry's storage loses a byte of the first layer's blob.
    let data = registry.blob_data(layers(&a)[0]["digest"].as_str().unwrap());
    let mut bytes = std::fs::read(&data).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&data, bytes).unwrap();

    let output = runner(&t, "b", &recipe, &["--cache", &cache]);
    let b = json(&output);
    assert_eq!(tagged_digest(&t.join("out-b"), "1"), expected);
    assert_eq!(layers(&b)[0]["cached"], false, "rebuilt: {b:#}");
    assert!(
        layers(&b)[1..].iter().all(|l| l["fetched"] == true),
        "{b:#}"
    );
    let stderr = text(&output.stderr);
    assert!(stderr.contains("is ignored"), "{stderr}");
}

#[test]
fn a_wrong_cache_repository_is_refused_before_any_work() {
    let t = TestDir::new();
    let recipe = t.example("hello");
    let output = runner(&t, "a", &recipe, &["--cache", "127.0.0.1:9/cache:latest"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("is not a repository for the layer cache")
            && stderr.contains("without a tag"),
        "{stderr}"
    );
    let output = runner(
        &t,
        "b",
        &recipe,
        &["--cache", "127.0.0.1:9/cache", "--offline"],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stderr).contains("`--offline` forbids it"));
}

/// `strata cache export` today, `import` and `build --offline` years later:
/// the mirror and the base's registry gone, the archive (an OCI layout, or
/// a registry repository) brings back every input, checked.
#[test]
fn exported_inputs_rebuild_the_image_offline_once_the_sources_are_gone() {
    let t = TestDir::new();
    let mut registry = Registry::start();
    let (repo, url) = crate::packages::standard_repo(&t);
    // A registry base, built by strata and pushed.
    let base = crate::packages::recipe(&t, &url, "\"hello-bin\"");
    let base_digest = registry
        .build_push_read_back(&t, &base, "bases/pkgs:1")
        .digest;
    let child = crate::packages::recipe(&t, &url, "\"app\"");
    let text_of = std::fs::read_to_string(&child).unwrap().replace(
        "base \"scratch\"",
        &format!("base \"{}/bases/pkgs:1@{base_digest}\"", registry.addr),
    );
    std::fs::write(&child, text_of).unwrap();
    json(&runner(&t, "a", &child, &[]));
    let expected = tagged_digest(&t.join("out-a"), "1");

    let cache_cmd = |cache: &str, args: &[&str]| {
        let mut cmd = t.strata();
        cmd.env("STRATA_CACHE", t.join(&format!("cache-{cache}")))
            .arg("cache")
            .args(args);
        cmd.output().unwrap()
    };
    let archive = t.join("archive");
    let layout = format!("oci:{}", archive.display());
    let remote = format!("{}/archive/inputs", registry.addr);
    let child_arg = child.to_str().unwrap();
    for store in [&layout, &remote] {
        let out = cache_cmd("a", &["export", child_arg, store]);
        assert_success(&out, "strata cache export");
        assert!(
            text(&out.stderr).contains("exported"),
            "{}",
            text(&out.stderr)
        );
    }
    // The layout archive lists every file under its tag.
    let index: Value =
        serde_json::from_slice(&std::fs::read(archive.join("index.json")).unwrap()).unwrap();
    assert!(
        index["manifests"].as_array().unwrap().len() >= 5,
        "{index:#}"
    );

    // Import from the registry while it is there, into cache C.
    assert_success(&cache_cmd("c", &["import", child_arg, &remote]), "import");
    // Then the mirror and the registry go away.
    drop(repo);
    registry.stop();
    assert_success(&cache_cmd("b", &["import", child_arg, &layout]), "import");
    for cache in ["b", "c"] {
        let out = runner(&t, cache, &child, &["--offline", "--locked"]);
        json(&out);
        assert_eq!(
            tagged_digest(&t.join(&format!("out-{cache}")), "1"),
            expected,
            "rebuilt from the archive into cache {cache}"
        );
    }

    // A damaged archive is refused, naming the file.
    let blobs = archive.join("blobs/sha256");
    let victim = std::fs::read_dir(&blobs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let mut bytes = std::fs::read(&victim).unwrap();
    bytes[0] ^= 0xff;
    std::fs::write(&victim, bytes).unwrap();
    let out = cache_cmd("d", &["import", child_arg, &layout]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("does not hold what its name says")
            && stderr.contains(victim.file_name().unwrap().to_str().unwrap()),
        "{stderr}"
    );
}
