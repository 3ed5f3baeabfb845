//! Registries, for real: pushing to the reference registry over plain HTTP
//! and over TLS with htpasswd auth, bases pulled by digest (OCI, Docker
//! schema 2, multi-platform), and what real clients (skopeo, podman,
//! Charliecloud) make of the result. Faults are real too: a registry
//! restarted mid-push, a registry serving altered bytes.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{
    self, Registry, TestDir, assert_success, edit_file, podman, podman_run, run, tagged_digest,
    text,
};

const USER: &str = "strata";
const PASSWORD: &str = "s3cret-pw";

/// `strata push ARGS`, as it went.
fn push(t: &TestDir, args: &[&str]) -> std::process::Output {
    t.strata().arg("push").args(args).output().unwrap()
}

/// A recipe on a registry base: a file on top and a user.
fn child_recipe(t: &TestDir, base: &str) -> PathBuf {
    t.write("child/note.txt", "from the child\n");
    t.write(
        "child/image.kdl",
        &format!(
            "name \"child\"\nversion \"1\"\nbase \"{base}\"\nplatform \"linux/amd64\"\nuser \"bob\" uid=10002 gid=10002\nlayer \"notes\" {{\n    copy \"note.txt\" \"/srv/note.txt\"\n}}\n"
        ),
    )
}

#[test]
fn push_to_two_registries_in_one_command() {
    let t = TestDir::new();
    let plain = Registry::start();
    let tls = Registry::start_tls(USER, PASSWORD);
    // Credentials the way users keep them: `strata login` into the auth file.
    let auth = t.join("auth.json");
    let mut login = t.strata();
    login
        .env("REGISTRY_AUTH_FILE", &auth)
        .args([
            "login",
            &tls.addr,
            "-u",
            USER,
            "--password-stdin",
            "--ca-file",
        ])
        .arg(tls.ca())
        .stdin(std::process::Stdio::piped());
    let mut child = login.spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), PASSWORD.as_bytes()).unwrap();
    assert!(child.wait().unwrap().success(), "strata login");
    assert!(fs::read_to_string(&auth).unwrap().contains(&tls.addr));

    let out = t.join("out");
    let built = t
        .build_cmd(&t.example("app"), &out)
        .env("REGISTRY_AUTH_FILE", &auth)
        .arg("--ca-file")
        .arg(tls.ca())
        .args(["--push", &format!("{}/team/app", plain.addr)])
        .args(["--push", &format!("{}/team/app:stable", tls.addr)])
        .args(["--push", &format!("{}/mirror/app", plain.addr)])
        .arg("--digest-file")
        .arg(t.join("digest"))
        .output()
        .unwrap();
    assert_success(&built, "strata build --push");
    let digest = tagged_digest(&out, "2.1.0");
    assert_eq!(
        fs::read_to_string(t.join("digest")).unwrap(),
        format!("{digest}\n")
    );
    let stderr = text(&built.stderr);
    assert!(
        stderr.contains(&format!("pushed {}/team/app:2.1.0 @ {digest}", plain.addr)),
        "{stderr}"
    );
    // The second repository on the same registry mounts what the first received.
    let mirror = stderr
        .lines()
        .find(|l| l.contains("/mirror/app:2.1.0"))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(mirror.contains("(0 uploaded, 0 bytes;"), "{mirror}");
    assert!(!mirror.contains("; 0 mounted"), "{mirror}");

    for (registry, name) in [(&plain, "team/app:2.1.0"), (&tls, "team/app:stable")] {
        let inspected = registry.read_back(&t, name, &out, "2.1.0");
        assert_eq!(inspected["Labels"]["org.opencontainers.image.title"], "app");
    }

    // Everything is there already: a re-push only tags.
    let again = plain.push(&t, &out, "2.1.0", "team/app:again");
    assert!(
        text(&again.stderr).contains("0 uploaded"),
        "{}",
        text(&again.stderr)
    );
}

#[test]
fn wrong_password_names_the_registry_and_the_source() {
    let t = TestDir::new();
    let tls = Registry::start_tls(USER, PASSWORD);
    let out = t.join("out");
    t.build(&t.example("hello"), &out);
    let dest = format!("{}/hello:1", tls.addr);
    let failed = t
        .strata()
        .args(["push", &format!("{}:1.0.0", out.display()), &dest])
        .args(["--creds", &format!("{USER}:wrong"), "--ca-file"])
        .arg(tls.ca())
        .output()
        .unwrap();
    assert!(!failed.status.success());
    let stderr = text(&failed.stderr);
    assert!(
        stderr.contains(&format!(
            "the registry `{}` refused the credentials from `--creds`",
            tls.addr
        )),
        "{stderr}"
    );
    // A failed push trusting the CA, with credentials from the variable
    // `key` only.
    let push_with = |key: &str, value: &std::ffi::OsStr| {
        let failed = t
            .strata()
            .env(key, value)
            .args([
                "push",
                &format!("{}:1.0.0", out.display()),
                &dest,
                "--ca-file",
            ])
            .arg(tls.ca())
            .output()
            .unwrap();
        assert!(!failed.status.success());
        text(&failed.stderr)
    };
    // From the variable, the variable is named.
    let stderr = push_with("STRATA_CREDS", format!("{USER}:wrong").as_ref());
    assert!(
        stderr.contains(&format!(
            "the registry `{}` refused the credentials from `STRATA_CREDS`",
            tls.addr
        )),
        "{stderr}"
    );
    // From an auth file, the file is named.
    let auth = t.join("auth.json");
    fs::write(
        &auth,
        format!(
            "{{\"auths\":{{\"{}\":{{\"auth\":\"{}\"}}}}}}",
            tls.addr,
            base64_of(&format!("{USER}:nope"))
        ),
    )
    .unwrap();
    let push_with_auth_file =
        |auth_file: &Path| push_with("REGISTRY_AUTH_FILE", auth_file.as_ref());
    let stderr = push_with_auth_file(&auth);
    assert!(stderr.contains(&auth.display().to_string()), "{stderr}");
    // No credentials at all: say where strata looked.
    let stderr = push_with_auth_file(&t.join("none.json"));
    assert!(stderr.contains("needs credentials"), "{stderr}");
    // And an untrusted certificate is refused without --ca-file.
    let failed = push(&t, &[&format!("{}:1.0.0", out.display()), &dest]);
    assert!(!failed.status.success());
    assert!(
        text(&failed.stderr).contains("cannot reach the registry"),
        "{}",
        text(&failed.stderr)
    );
}

fn base64_of(s: &str) -> String {
    let out = run(Command::new("sh")
        .arg("-c")
        .arg(format!("printf %s '{s}' | base64 -w0")));
    out.trim().to_owned()
}

#[test]
fn a_registry_base_is_merged_and_its_layers_kept() {
    let t = TestDir::new();
    let registry = Registry::start();
    let (_repo, url) = crate::packages::standard_repo(&t);
    // The base: made by strata, with a user and a dpkg database.
    let base = crate::packages::recipe(&t, &url, "\"hello-bin\"");
    edit_file(
        &base,
        "entrypoint",
        "user \"alice\" uid=10001 gid=10001\nentrypoint",
    );
    let pushed = registry.build_push_read_back(&t, &base, "bases/pkgs:1");
    let (base_out, base_digest) = (pushed.layout, pushed.digest);
    // The child adds a package, a user and a file, on the base by digest.
    let child = crate::packages::recipe(&t, &url, "\"app\"");
    fs::create_dir_all(t.join("image/etc")).unwrap();
    fs::write(t.join("image/note.txt"), "child\n").unwrap();
    edit_file(
        &child,
        "base \"scratch\"",
        &format!(
            "base \"{}/bases/pkgs:1@{base_digest}\"\nuser \"bob\" uid=10002 gid=10002\nlayer \"notes\" {{\n    copy \"note.txt\" \"/srv/note.txt\"\n}}",
            registry.addr
        ),
    );
    let util::Unpacked {
        layout: out,
        rootfs,
    } = t.build_and_unpack(&child, "1");
    let passwd = fs::read_to_string(rootfs.join("etc/passwd")).unwrap();
    assert!(
        passwd.contains("\nalice:x:10001:")
            || passwd.starts_with("alice:x:10001:")
            || passwd.contains("alice:x:10001:10001"),
        "{passwd}"
    );
    assert!(passwd.contains("bob:x:10002:10002"), "{passwd}");
    for package in ["hello-bin", "app"] {
        let status = fs::read_to_string(rootfs.join("var/lib/dpkg/status.d").join(package))
            .unwrap_or_else(|e| panic!("status of {package}: {e}"));
        assert!(
            status.contains(&format!("Package: {package}\n")),
            "{status}"
        );
    }
    assert_eq!(
        fs::read_to_string(rootfs.join("srv/note.txt")).unwrap(),
        "child\n"
    );
    let lock = fs::read_to_string(t.join("image/image.lock")).unwrap();
    assert!(
        !lock.contains("package \"hello-bin\""),
        "in the base: {lock}"
    );

    // The base's layers, byte for byte, first; and where it came from.
    let base_layers = util::manifest(&base_out, "1")["layers"].clone();
    let manifest = util::manifest(&out, "1");
    let layers = manifest["layers"].as_array().unwrap();
    for (i, layer) in base_layers.as_array().unwrap().iter().enumerate() {
        assert_eq!(layers[i], *layer);
    }
    let hex = |l: &serde_json::Value| l["digest"].as_str().unwrap()[7..].to_owned();
    for layer in base_layers.as_array().unwrap() {
        let blob = |dir: &Path| fs::read(dir.join("blobs/sha256").join(hex(layer))).unwrap();
        assert!(blob(&base_out) == blob(&out), "base layer {layer} changed");
    }
    let annotations = &manifest["annotations"];
    assert_eq!(
        annotations["org.opencontainers.image.base.name"],
        format!("{}/bases/pkgs:1", registry.addr).as_str()
    );
    assert_eq!(
        annotations["org.opencontainers.image.base.digest"],
        base_digest.as_str()
    );

    // Pulled once: the next build needs no registry at all.
    drop(registry);
    t.build_with(&child, &t.join("out2"), &["--offline"]);
    assert_eq!(
        tagged_digest(&t.join("out2"), "1"),
        tagged_digest(&out, "1")
    );
}

#[test]
fn docker_schema2_and_multi_platform_bases() {
    let t = TestDir::new();
    let registry = Registry::start();
    // Docker media types, as `skopeo copy --format v2s2` writes them.
    let out = t.join("hello-out");
    t.build(&t.example("hello"), &out);
    run(Command::new("skopeo")
        .args(["copy", "--format", "v2s2", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:1.0.0", out.display()))
        .arg(format!("docker://{}/v2s2/hello:1", registry.addr)));
    let raw = registry.inspect_raw("v2s2/hello:1");
    assert_eq!(
        raw["mediaType"], "application/vnd.docker.distribution.manifest.v2+json",
        "{raw}"
    );
    let digest = registry.inspect("v2s2/hello:1")["Digest"].clone();
    let recipe = child_recipe(
        &t,
        &format!("{}/v2s2/hello@{}", registry.addr, digest.as_str().unwrap()),
    );
    let child = t.build_and_unpack(&recipe, "1");
    let manifest = util::manifest(&child.layout, "1");
    for layer in manifest["layers"].as_array().unwrap() {
        assert!(
            layer["mediaType"]
                .as_str()
                .unwrap()
                .starts_with("application/vnd.oci.image.layer"),
            "{layer}"
        );
    }
    // Same blobs, byte for byte; only the manifest that lists them is OCI.
    let original = util::manifest(&out, "1.0.0")["layers"].clone();
    assert_eq!(manifest["layers"][0], original[0]);
    assert_eq!(manifest["layers"][1], original[1]);
    assert_eq!(
        child.run(10002, 10002, &["/usr/local/bin/hello"]),
        "hello from strata uid=10002 gid=10002\n"
    );

    // An index: the recipe's platform picks its manifest.
    fs::create_dir_all(t.join("multi")).unwrap();
    fs::copy(
        util::repo_root().join("examples/hello/hello"),
        t.join("multi/hello"),
    )
    .unwrap();
    let multi = t.write(
        "multi/image.kdl",
        "name \"multi\"\nversion \"1\"\nbase \"scratch\"\nplatform \"linux/amd64\" \"linux/arm64\"\nlayer \"bin\" {\n    copy \"hello\" \"/usr/local/bin/hello\" mode=0o755\n}\nentrypoint \"/usr/local/bin/hello\"\n",
    );
    let multi_out = t.join("multi-out");
    t.build(&multi, &multi_out);
    registry.push(&t, &multi_out, "1", "multi/hello:1");
    let index = tagged_digest(&multi_out, "1");
    let inspected = registry.inspect_raw("multi/hello:1");
    assert_eq!(
        inspected["mediaType"], "application/vnd.oci.image.index.v1+json",
        "{inspected}"
    );
    let recipe = child_recipe(&t, &format!("{}/multi/hello@{index}", registry.addr));
    let from_index = t.join("from-index");
    t.build(&recipe, &from_index);
    let amd64 = util::json_blob(&multi_out, &index)["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["platform"]["architecture"] == "amd64")
        .unwrap()["digest"]
        .clone();
    assert_eq!(
        util::manifest(&from_index, "1")["annotations"]["org.opencontainers.image.base.digest"],
        amd64
    );
}

#[test]
fn podman_pulls_and_runs_the_pushed_image() {
    let t = TestDir::new();
    let registry = Registry::start();
    registry.build_push_read_back(&t, &t.example("hello"), "run/hello:1.0.0");
    let image = format!("{}/run/hello:1.0.0", registry.addr);
    run(&mut podman(&t, &["pull", "--tls-verify=false", &image]));
    assert_eq!(
        podman_run(&t, &image, &[]),
        "hello from strata uid=10001 gid=10001\n"
    );
}

#[test]
fn resolve_base_prints_the_pinned_reference_and_unpinned_bases_get_it_as_a_hint() {
    let t = TestDir::new();
    let registry = Registry::start();
    let digest = registry
        .build_push_read_back(&t, &t.example("hello"), "lib/hello:1.0.0")
        .digest;
    let reference = format!("{}/lib/hello:1.0.0", registry.addr);
    let printed = run(t.strata().args(["resolve-base", &reference]));
    assert_eq!(printed, format!("{reference}@{digest}\n"));

    let recipe = child_recipe(&t, &reference);
    let stderr = t.build_fails(&recipe, &t.join("out"));
    assert!(stderr.contains("is not pinned by digest"), "{stderr}");
    assert!(
        stderr.contains(&format!("{reference}@{digest}")),
        "{stderr}"
    );
    assert!(!t.join("out").exists());

    // A digest the registry does not have.
    let missing = format!("{}/lib/hello@sha256:{}", registry.addr, "0".repeat(64));
    edit_file(
        &recipe,
        &format!("\"{reference}\""),
        &format!("\"{missing}\""),
    );
    let stderr = t.build_fails(&recipe, &t.join("out"));
    assert!(
        stderr.contains("does not exist on the registry"),
        "{stderr}"
    );
    assert!(!t.join("out").exists());
}

#[test]
fn a_blob_altered_by_the_registry_is_refused_and_nothing_kept() {
    let t = TestDir::new();
    let registry = Registry::start();
    let pushed = registry.build_push_read_back(&t, &t.example("hello"), "bad/hello:1.0.0");
    let digest = pushed.digest;
    // Flip one byte of the app layer in the registry's storage.
    let layer = util::manifest(&pushed.layout, "1.0.0")["layers"][1]["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    let data = registry.blob_data(&layer);
    let mut bytes = fs::read(&data).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&data, bytes).unwrap();

    let recipe = child_recipe(&t, &format!("{}/bad/hello@{digest}", registry.addr));
    // A cache of its own, which has never seen the layer.
    let cache = t.join("fresh-cache");
    let failed = t
        .build_cmd(&recipe, &t.join("out"))
        .env("STRATA_CACHE", &cache)
        .output()
        .unwrap();
    assert!(!failed.status.success());
    let stderr = text(&failed.stderr);
    assert!(stderr.contains(&layer), "names the blob: {stderr}");
    assert!(stderr.contains("does not match its digest"), "{stderr}");
    assert!(!t.join("out").exists(), "nothing written");
    let hex = layer.trim_start_matches("sha256:");
    assert!(!cache.join("blobs/sha256").join(hex).exists(), "not cached");
    assert_eq!(
        fs::read_dir(cache.join("tmp")).unwrap().count(),
        0,
        "no partial download left"
    );
}

#[test]
fn a_push_survives_a_registry_restart() {
    let t = TestDir::new();
    let mut registry = Registry::start();
    // A layer large enough to be uploaded in chunks, and incompressible.
    fs::create_dir_all(t.join("big")).unwrap();
    fs::write(t.join("big/noise.bin"), util::noise(80 << 20)).unwrap();
    let recipe = t.write(
        "big/image.kdl",
        "name \"big\"\nversion \"1\"\nbase \"scratch\"\nlayer \"noise\" {\n    copy \"noise.bin\" \"/opt/noise.bin\"\n}\n",
    );
    let out = t.join("out");
    // No SBOM: nothing but the push needs to read the 80 MiB again.
    t.build_with(&recipe, &out, &["--compression", "zstd", "--sbom", "none"]);

    let pushing = t
        .strata()
        .args(["push", &format!("{}:1", out.display())])
        .arg(format!("{}/big/noise:1", registry.addr))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Stop the registry as soon as an upload session exists, then bring it back.
    let uploads = registry
        .data_dir()
        .join("docker/registry/v2/repositories/big/noise/_uploads");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !uploads.exists() || fs::read_dir(&uploads).unwrap().count() == 0 {
        assert!(std::time::Instant::now() < deadline, "no upload started");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    registry.stop();
    assert!(
        !uploads.with_file_name("_manifests").join("tags/1").exists(),
        "the registry stopped before the push finished"
    );
    std::thread::sleep(std::time::Duration::from_millis(800));
    registry.restart();
    let output = pushing.wait_with_output().unwrap();
    assert_success(&output, "strata push across a restart");

    registry.read_back(&t, "big/noise:1", &out, "1");
}

/// A process stopped by PID when dropped.
struct Stopped(std::process::Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_chunked_push_resumes_through_a_flaky_network() {
    let t = TestDir::new();
    let registry = Registry::start();
    // Three chunks (two PATCHes and the PUT), incompressible.
    fs::create_dir_all(t.join("big")).unwrap();
    fs::write(t.join("big/noise.bin"), util::noise(70 << 20)).unwrap();
    let recipe = t.write(
        "big/image.kdl",
        "name \"big\"\nversion \"1\"\nbase \"scratch\"\nlayer \"noise\" {\n    copy \"noise.bin\" \"/opt/noise.bin\"\n}\n",
    );
    let out = t.join("out");
    t.build_with(&recipe, &out, &["--compression", "zstd", "--sbom", "none"]);
    // One request in three answered 503 without reaching the registry: an
    // upload that started again from its first byte would never finish.
    let port = util::free_port();
    let _proxy = Stopped(
        Command::new("python3")
            .arg(util::repo_root().join("tests/util/fault_proxy.py"))
            .args([&port.to_string(), &registry.addr, "3"])
            .spawn()
            .unwrap(),
    );
    util::wait_for_port(&format!("127.0.0.1:{port}"), "the fault proxy");
    let pushed = t
        .strata()
        .args(["push", &format!("{}:1", out.display())])
        .arg(format!("127.0.0.1:{port}/big/noise:1"))
        .output()
        .unwrap();
    assert_success(&pushed, "strata push through a flaky network");
    registry.read_back(&t, "big/noise:1", &out, "1");
}

#[test]
fn oci_archive_bases_work() {
    let t = TestDir::new();
    t.build_with(
        &t.example("hello"),
        &t.join("hello.tar"),
        &["--format", "oci-archive"],
    );
    t.build(&t.example("hello"), &t.join("layout"));
    let digest = tagged_digest(&t.join("layout"), "1.0.0");
    let recipe = child_recipe(&t, &format!("oci-archive:../hello.tar@{digest}"));
    let out = t.join("out");
    t.build(&recipe, &out);
    assert_eq!(
        util::manifest(&out, "1")["annotations"]["org.opencontainers.image.base.name"],
        "oci-archive:../hello.tar"
    );
}

#[test]
fn charliecloud_pulls_over_tls_and_runs_the_entrypoint() {
    let t = TestDir::new();
    let tls = Registry::start_tls(USER, PASSWORD);
    tls.build_push_read_back(&t, &t.example("hello"), "hpc/hello:1.0.0");

    let storage = t.join("charliecloud");
    run(tls
        .charliecloud(&storage, "ch-image")
        .arg("pull")
        .arg(format!("{}/hpc/hello:1.0.0", tls.addr)));
    let name = format!("{}%hpc%hello+1.0.0", tls.addr.replace(':', "+"));
    let config: serde_json::Value = serde_json::from_slice(
        &fs::read(
            storage
                .join("img")
                .join(&name)
                .join("ch/config.pulled.json"),
        )
        .unwrap(),
    )
    .unwrap();
    // ch-run has no entrypoint of its own: run the one the image declares.
    let entrypoint: Vec<String> =
        serde_json::from_value(config["config"]["Entrypoint"].clone()).unwrap();
    let printed = run(tls
        .charliecloud(&storage, "ch-run")
        .arg("-s")
        .arg(&storage)
        .arg(&name)
        .arg("--")
        .args(&entrypoint));
    assert!(printed.starts_with("hello from strata uid="), "{printed}");
}

#[test]
fn credentials_from_a_docker_credential_helper() {
    let t = TestDir::new();
    let tls = Registry::start_tls(USER, PASSWORD);
    let out = t.join("out");
    t.build(&t.example("hello"), &out);
    // A helper as docker runs them: `docker-credential-NAME get`, the
    // registry on stdin, JSON on stdout.
    let bin = t.join("bin");
    fs::create_dir_all(&bin).unwrap();
    let helper = bin.join("docker-credential-strata-test");
    fs::write(
        &helper,
        format!(
            "#!/bin/sh\nread registry\n[ \"$1\" = get ] && [ \"$registry\" = \"{}\" ] || exit 1\necho '{{\"ServerURL\":\"'$registry'\",\"Username\":\"{USER}\",\"Secret\":\"{PASSWORD}\"}}'\n",
            tls.addr
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&helper, fs::Permissions::from_mode(0o755)).unwrap();
    let docker = t.join("docker");
    fs::create_dir_all(&docker).unwrap();
    fs::write(
        docker.join("config.json"),
        format!("{{\"credHelpers\":{{\"{}\":\"strata-test\"}}}}", tls.addr),
    )
    .unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let pushed = t
        .strata()
        .env("PATH", path)
        .env("DOCKER_CONFIG", &docker)
        .env("REGISTRY_AUTH_FILE", t.join("none.json"))
        .env("XDG_RUNTIME_DIR", t.join("none"))
        .args(["push", &format!("{}:1.0.0", out.display())])
        .arg(format!("{}/helped/hello:1", tls.addr))
        .arg("--cert-dir")
        .arg(tls.cert_dir())
        .output()
        .unwrap();
    assert_success(&pushed, "strata push with a credential helper");
    tls.read_back(&t, "helped/hello:1", &out, "1.0.0");
}

#[test]
fn bearer_tokens_from_the_registry_token_service() {
    let t = TestDir::new();
    let registry = Registry::start_token(USER, PASSWORD);
    // Pushed and read back with `--creds`.
    let pushed = registry.build_push_read_back(&t, &t.example("hello"), "tokens/hello:1.0.0");
    let image = format!("{}:1.0.0", pushed.layout.display());
    let dest = format!("{}/tokens/hello:1.0.0", registry.addr);
    let creds = format!("{USER}:{PASSWORD}");
    // The token service refuses a wrong password, and grants nothing anonymously.
    let wrong = push(&t, &[&image, &dest, "--creds", &format!("{USER}:wrong")]);
    assert!(
        text(&wrong.stderr).contains("refused the credentials from `--creds`"),
        "{}",
        text(&wrong.stderr)
    );
    let anonymous = t
        .strata()
        .env("REGISTRY_AUTH_FILE", t.join("none.json"))
        .args(["push", &image, &dest])
        .output()
        .unwrap();
    assert!(!anonymous.status.success());
    assert!(
        text(&anonymous.stderr).contains("needs credentials"),
        "{}",
        text(&anonymous.stderr)
    );
    // A base pulled with a pull-scoped token.
    let recipe = child_recipe(
        &t,
        &format!("{}/tokens/hello@{}", registry.addr, pushed.digest),
    );
    let built = t
        .build_cmd(&recipe, &t.join("child-out"))
        .env("STRATA_CACHE", t.join("fresh-cache"))
        .env("STRATA_CREDS", &creds)
        .output()
        .unwrap();
    assert_success(&built, "strata build on a token-protected base");
}
