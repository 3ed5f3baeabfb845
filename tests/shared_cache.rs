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
    // The package layers' key comes from the lock alone: B learns them
    // from the package stage's record, and fetches no package at all.
    let packages = locked_packages(&recipe.with_file_name("image.lock"));
    assert!(packages.len() >= 2, "{packages:?}");
    for sha256 in &packages {
        assert!(
            !t.join("cache-b/blobs/sha256").join(sha256).exists(),
            "runner B downloaded the package {sha256}"
        );
    }

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

/// The sha256 (hex) of every package file a lock names.
fn locked_packages(lock: &Path) -> Vec<String> {
    std::fs::read_to_string(lock)
        .unwrap()
        .lines()
        .filter(|l| l.trim_start().starts_with("package "))
        .filter_map(|l| l.split("sha256=\"sha256:").nth(1))
        .map(|rest| rest[..64].to_owned())
        .collect()
}

/// Copies one cache entry over another's tag, as an attacker with push
/// rights (or a faulty tool) could: a valid entry, for the wrong key.
fn poison(registry: &Registry, repository: &str, from: &str, to: &str) {
    let accept = "Accept: application/vnd.oci.image.manifest.v1+json";
    let base = format!("http://{}/v2/{repository}/manifests", registry.addr);
    let manifest = curl(&["-H", accept, &format!("{base}/{from}")], None);
    put_manifest(&format!("{base}/{to}"), &manifest);
}

/// PUTs an OCI image manifest at `url`.
fn put_manifest(url: &str, manifest: &[u8]) {
    curl(
        &[
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/vnd.oci.image.manifest.v1+json",
            "--data-binary",
            "@-",
            url,
        ],
        Some(manifest),
    );
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

/// A registry whose cache repository (`CACHE_REPOSITORY`) runner A filled
/// from the recipe; the mirror stays up while this lives.
struct Filled {
    registry: Registry,
    _repo: crate::util::apt::AptRepo,
    recipe: std::path::PathBuf,
    /// `REGISTRY/REPO`, for `--cache`.
    cache: String,
    /// The image runner A built.
    expected: String,
}

const CACHE_REPOSITORY: &str = "team/strata-cache";

impl Filled {
    /// The registry, the recipe, `--cache`'s value and the image.
    fn parts(&self) -> (&Registry, &Path, &str, &str) {
        (&self.registry, &self.recipe, &self.cache, &self.expected)
    }
}

fn filled(t: &TestDir) -> Filled {
    let registry = Registry::start();
    let (repo, recipe) = recipe(t);
    let cache = format!("{}/{CACHE_REPOSITORY}", registry.addr);
    json(&runner(t, "a", &recipe, &["--cache", &cache]));
    Filled {
        expected: tagged_digest(&t.join("out-a"), "1"),
        registry,
        _repo: repo,
        recipe,
        cache,
    }
}

#[test]
fn a_poisoned_entry_is_detected_and_the_image_does_not_change() {
    let t = TestDir::new();
    let filled = filled(&t);
    let (registry, recipe, cache, expected) = filled.parts();

    let all = tags(registry, CACHE_REPOSITORY);
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
    poison(registry, CACHE_REPOSITORY, &entries[0], &entries[1]);
    // The package stage's record would give the package layers without
    // looking their entries up: make it unreadable, so that every entry is.
    let stage = stage_tag(registry, CACHE_REPOSITORY);
    poison(registry, CACHE_REPOSITORY, &entries[0], &stage);

    // A runner with an empty cache: the entry is ignored, the layer built.
    let output = runner(&t, "b", recipe, &["--cache", cache]);
    let b = json(&output);
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&format!("the entry `{}`", entries[1])) && stderr.contains("is ignored"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("the package stage `{stage}`"))
            && stderr.contains("is not a stage record"),
        "{stderr}"
    );
    assert_eq!(tagged_digest(&t.join("out-b"), "1"), expected);
    assert_eq!(
        layers(&b).iter().filter(|l| l["cached"] == false).count(),
        1,
        "the poisoned layer alone is built: {b:#}"
    );
    // …and its entry is written again, right: the next runner fetches it.
    let c = json(&runner(&t, "c", recipe, &["--cache", cache]));
    assert!(layers(&c).iter().all(|l| l["fetched"] == true), "{c:#}");

    // `--verify-cache` rebuilds what the registry gives and compares.
    poison(registry, CACHE_REPOSITORY, &entries[0], &entries[1]);
    let output = runner(&t, "d", recipe, &["--cache", cache, "--verify-cache"]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("but building it gives") && stderr.contains(&entries[1]),
        "{stderr}"
    );
    assert!(!t.join("out-d").exists(), "nothing written on failure");
}

/// The tag of the one package stage the cache repository has.
fn stage_tag(registry: &Registry, repository: &str) -> String {
    let stages: Vec<String> = tags(registry, repository)
        .into_iter()
        .filter(|e| e.starts_with("strata-stage-"))
        .collect();
    assert_eq!(stages.len(), 1, "{stages:?}");
    stages[0].clone()
}

/// `curl` with `args`, which must succeed; its stdout.
fn curl(args: &[&str], body: Option<&[u8]>) -> Vec<u8> {
    use std::io::Write;
    let mut child = Command::new("curl")
        .arg("-fsS")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.unwrap_or_default())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_success(&out, "curl");
    out.stdout
}

/// Rewrites a stage's record so that its first two layers trade blobs: a
/// record for the right key and inputs, naming valid blobs of the wrong
/// layers, as only someone with push rights could write.
fn swap_stage_layers(registry: &Registry, repository: &str, tag: &str) {
    let base = format!("http://{}/v2/{repository}", registry.addr);
    let accept = "Accept: application/vnd.oci.image.manifest.v1+json";
    let manifest_url = format!("{base}/manifests/{tag}");
    let mut manifest: Value =
        serde_json::from_slice(&curl(&["-H", accept, &manifest_url], None)).unwrap();
    let digest = manifest["layers"][0]["digest"].as_str().unwrap().to_owned();
    let blob = curl(&["-L", &format!("{base}/blobs/{digest}")], None);
    let mut record: Value = serde_json::from_slice(&zstd::decode_all(&blob[..]).unwrap()).unwrap();
    let layers = record["layers"].as_array_mut().unwrap();
    assert!(layers.len() >= 2, "{layers:?}");
    let first = layers[0]["blob"].clone();
    layers[0]["blob"] = layers[1]["blob"].clone();
    layers[1]["blob"] = first;
    let poisoned = zstd::encode_all(&serde_json::to_vec(&record).unwrap()[..], 3).unwrap();
    let digest = format!(
        "sha256:{}",
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&poisoned))
    );
    let headers = String::from_utf8(curl(
        &[
            "-X",
            "POST",
            "-D",
            "-",
            "-o",
            "/dev/null",
            &format!("{base}/blobs/uploads/"),
        ],
        None,
    ))
    .unwrap();
    let location = headers
        .lines()
        .find_map(|l| {
            l.strip_prefix("Location: ")
                .or(l.strip_prefix("location: "))
        })
        .unwrap()
        .trim()
        .to_owned();
    let location = if location.starts_with("http") {
        location
    } else {
        format!("http://{}{location}", registry.addr)
    };
    let separator = if location.contains('?') { '&' } else { '?' };
    curl(
        &[
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
            "@-",
            &format!("{location}{separator}digest={digest}"),
        ],
        Some(&poisoned),
    );
    manifest["layers"][0]["digest"] = Value::from(digest);
    manifest["layers"][0]["size"] = Value::from(poisoned.len());
    put_manifest(&manifest_url, &serde_json::to_vec(&manifest).unwrap());
}

#[test]
fn a_poisoned_package_stage_is_not_used() {
    let t = TestDir::new();
    let filled = filled(&t);
    let (registry, recipe, cache, expected) = filled.parts();
    let gzip = stage_tag(registry, CACHE_REPOSITORY);
    // The same packages compressed otherwise: another stage, another key.
    json(&runner(
        &t,
        "z",
        recipe,
        &["--locked", "--cache", cache, "--compression", "zstd"],
    ));
    let zstd = tags(registry, CACHE_REPOSITORY)
        .into_iter()
        .find(|e| e.starts_with("strata-stage-") && *e != gzip)
        .unwrap();

    // A record copied under another key names the inputs it was built
    // from: it is not used, and written again, right.
    poison(registry, CACHE_REPOSITORY, &zstd, &gzip);
    let output = runner(&t, "b", recipe, &["--locked", "--cache", cache]);
    json(&output);
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&format!("the package stage `{gzip}`"))
            && stderr.contains("recorded for other inputs"),
        "{stderr}"
    );
    assert_eq!(tagged_digest(&t.join("out-b"), "1"), expected);
    let output = runner(&t, "c", recipe, &["--locked", "--cache", cache]);
    let c = json(&output);
    assert!(!text(&output.stderr).contains("is ignored"));
    assert!(layers(&c).iter().all(|l| l["fetched"] == true), "{c:#}");
    assert_eq!(tagged_digest(&t.join("out-c"), "1"), expected);

    // A record of the right inputs that names the wrong (valid) blobs is
    // trusted as the named CACHE_REPOSITORY's word; `--verify-cache` builds the
    // packages and finds it out.
    swap_stage_layers(registry, CACHE_REPOSITORY, &gzip);
    let output = runner(
        &t,
        "d",
        recipe,
        &["--locked", "--cache", cache, "--verify-cache"],
    );
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("records the packages of `linux/amd64` as other layers")
            && stderr.contains(&gzip),
        "{stderr}"
    );
    assert!(!t.join("out-d").exists(), "nothing written on failure");
}

#[test]
fn a_cache_behind_token_authentication_takes_the_push_credentials() {
    let t = TestDir::new();
    let registry = Registry::start_token("fleet", "s3cret");
    let (_repo, recipe) = recipe(&t);
    let cache = format!("{}/team/strata-cache", registry.addr);
    let with_creds = |name: &str| {
        let mut cmd = t.strata();
        cmd.env("STRATA_CACHE", t.join(&format!("cache-{name}")))
            .env("STRATA_CREDS", "fleet:s3cret")
            .arg("build")
            .arg(&recipe)
            .arg("-o")
            .arg(t.join(&format!("out-{name}")))
            .args(["--json", "--cache", &cache]);
        json(&cmd.output().unwrap())
    };
    with_creds("a");
    let b = with_creds("b");
    assert!(layers(&b).iter().all(|l| l["fetched"] == true), "{b:#}");
    assert_eq!(
        tagged_digest(&t.join("out-a"), "1"),
        tagged_digest(&t.join("out-b"), "1")
    );
    // Without credentials the token service grants nothing: an error that
    // names the repository, and no output.
    let output = t
        .strata()
        .env("STRATA_CACHE", t.join("cache-c"))
        .env("REGISTRY_AUTH_FILE", t.join("none.json"))
        .arg("build")
        .arg(&recipe)
        .arg("-o")
        .arg(t.join("out-c"))
        .args(["--cache", &cache])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("team/strata-cache") && stderr.contains("needs credentials"),
        "{stderr}"
    );
    assert!(!t.join("out-c").exists());
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
