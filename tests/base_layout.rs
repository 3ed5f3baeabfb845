//! Bases from a local OCI layout, pinned by digest: the base's layers are
//! reused byte for byte, its accounts and config are merged, and a tampered
//! base is refused.

use std::fs;

use crate::util::{TestDir, find_entry, layers, snapshot, tagged_digest};

/// Builds `examples/hello` as a base and a recipe on top of it.
fn base_and_child(t: &TestDir) -> std::path::PathBuf {
    let base = t.example("hello");
    t.build(&base, &t.join("base-out"));
    let digest = tagged_digest(&t.join("base-out"), "1.0.0");
    t.write("child/extra.txt", "extra\n");
    t.write(
        "child/image.kdl",
        &format!(
            "name \"child\"\nversion \"0.1\"\nbase \"oci:../base-out@{digest}\"\nuser \"builder\" uid=2000\nlayer \"extra\" {{\n    copy \"extra.txt\" \"/opt/extra.txt\"\n}}\ncmd \"child\"\n"
        ),
    )
}

#[test]
fn builds_on_a_local_layout() {
    let t = TestDir::new();
    let recipe = base_and_child(&t);
    let image = t.build_and_unpack(&recipe, "0.1");
    let out = &image.layout;

    let base_layers = layers(&t.join("base-out"), "1.0.0");
    let child_layers = layers(out, "0.1");
    assert_eq!(child_layers.len(), base_layers.len() + 2);
    let base_blobs = snapshot(&t.join("base-out/blobs"));
    let child_blobs = snapshot(&out.join("blobs"));
    let base_manifest: serde_json::Value = serde_json::from_slice(
        &base_blobs[&format!(
            "sha256/{}",
            tagged_digest(&t.join("base-out"), "1.0.0").trim_start_matches("sha256:")
        )],
    )
    .unwrap();
    for layer in base_manifest["layers"].as_array().unwrap() {
        let key = format!(
            "sha256/{}",
            layer["digest"]
                .as_str()
                .unwrap()
                .trim_start_matches("sha256:")
        );
        assert_eq!(
            child_blobs.get(&key),
            base_blobs.get(&key),
            "base layer {key} was not copied byte for byte"
        );
    }

    let passwd = String::from_utf8(find_entry(&child_layers, "etc/passwd").content).unwrap();
    assert!(
        passwd.contains("analyst:x:10001:"),
        "the base's user is kept: {passwd}"
    );
    assert!(
        passwd.contains("builder:x:2000:2000:"),
        "the recipe's user is appended: {passwd}"
    );

    let config = crate::util::config(out, "0.1");
    assert_eq!(config["config"]["User"], "2000:2000");
    assert_eq!(
        config["config"]["Entrypoint"],
        serde_json::json!(["/usr/local/bin/hello"]),
        "inherited"
    );
    let labels = &config["config"]["Labels"];
    assert_eq!(
        labels["org.opencontainers.image.base.digest"],
        tagged_digest(&t.join("base-out"), "1.0.0")
    );
    assert_eq!(labels["org.opencontainers.image.title"], "child");

    assert_eq!(
        image.run(2000, 2000, &["/usr/local/bin/hello", "child"]),
        "hello from strata uid=2000 gid=2000 child\n"
    );
    assert_eq!(
        fs::read_to_string(image.rootfs.join("opt/extra.txt")).unwrap(),
        "extra\n"
    );
}

#[test]
fn a_tampered_base_blob_is_refused() {
    let t = TestDir::new();
    let recipe = base_and_child(&t);
    let manifest: serde_json::Value = serde_json::from_slice(
        &fs::read(
            t.join("base-out/blobs/sha256")
                .join(tagged_digest(&t.join("base-out"), "1.0.0").trim_start_matches("sha256:")),
        )
        .unwrap(),
    )
    .unwrap();
    let layer = manifest["layers"][1]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_owned();
    let blob = t.join("base-out/blobs/sha256").join(&layer);
    let mut bytes = fs::read(&blob).unwrap();
    let last = bytes.len() - 9;
    bytes[last] ^= 0xff;
    fs::write(&blob, bytes).unwrap();

    t.build(&t.example_in("good", "hello"), &t.join("out"));
    let before = snapshot(&t.join("out"));
    let stderr = t.build_fails(&recipe, &t.join("out"));
    assert!(stderr.contains(&format!("blob sha256:{layer}")), "{stderr}");
    assert!(stderr.contains("does not match its digest"), "{stderr}");
    assert_eq!(snapshot(&t.join("out")), before);
}

#[test]
fn a_digest_not_in_the_layout_is_refused() {
    let t = TestDir::new();
    t.build(&t.example("hello"), &t.join("base-out"));
    let missing = format!("sha256:{}", "ab".repeat(32));
    let recipe = t.write(
        "child/image.kdl",
        &format!("name \"child\"\nbase \"oci:../base-out@{missing}\"\n"),
    );
    let stderr = t.build_fails(&recipe, &t.join("out"));
    assert!(
        stderr.contains(&format!("holds no image with digest {missing}")),
        "{stderr}"
    );
    assert!(!t.join("out").exists());
}

#[test]
fn a_non_root_base_user_is_kept_under_the_tre_preset() {
    let t = TestDir::new();
    t.build(&t.example("hello"), &t.join("base-out"));
    let digest = tagged_digest(&t.join("base-out"), "1.0.0");
    let recipe = t.write(
        "child/image.kdl",
        &format!("name \"child\"\nversion \"2\"\nbase \"oci:../base-out@{digest}\"\n"),
    );
    t.build(&recipe, &t.join("out"));
    let config = crate::util::config(&t.join("out"), "2");
    assert_eq!(config["config"]["User"], "10001:10001");
    let passwd =
        String::from_utf8(find_entry(&layers(&t.join("out"), "2"), "etc/passwd").content).unwrap();
    assert!(!passwd.contains("nonroot"), "{passwd}");
}

/// A base whose `/etc/passwd` is larger than strata reads of such a file is
/// refused with an error naming the layer and the file, before the file is
/// read whole.
#[test]
fn a_base_account_file_past_the_bound_is_refused() {
    let t = TestDir::new();
    let line = "user:x:1000:1000::/home/user:/bin/sh\n";
    t.write("base/passwd", &line.repeat((17 << 20) / line.len() + 1));
    let base = t.write(
        "base/image.kdl",
        "name \"base\"\nversion \"1\"\nbase \"scratch\"\ntre #false\nlayer \"etc\" {\n    copy \"passwd\" \"/etc/passwd\"\n}\n",
    );
    t.build(&base, &t.join("base-out"));
    let digest = tagged_digest(&t.join("base-out"), "1");
    let child = t.write(
        "child/image.kdl",
        &format!(
            "name \"child\"\nversion \"1\"\nbase \"oci:../base-out@{digest}\"\nuser \"builder\" uid=2000\n"
        ),
    );
    let stderr = t.build_fails(&child, &t.join("out"));
    assert!(stderr.contains("is not a readable tar"), "{stderr}");
    assert!(
        stderr.contains("`/etc/passwd` takes more than the 16 MiB"),
        "{stderr}"
    );
}

/// `cmd`'s stderr, asserting it failed within a minute (a blob that is a FIFO
/// once made the build wait forever).
fn fails_in_time(mut cmd: std::process::Command) -> String {
    use std::io::Read;
    let mut child = cmd
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > std::time::Duration::from_secs(60) {
            let _ = child.kill();
            panic!("strata hung");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    stderr
}

/// Base blobs that are not regular files (a FIFO, a symlink to `/dev/zero`)
/// and a huge sparse `index.json` are refused, without hanging or reading
/// them whole.
#[test]
fn base_files_that_are_not_regular_or_too_large_are_refused() {
    let t = TestDir::new();
    let recipe = base_and_child(&t);
    let blobs = t.join("base-out/blobs/sha256");
    let manifest: serde_json::Value = serde_json::from_slice(
        &fs::read(
            blobs.join(tagged_digest(&t.join("base-out"), "1.0.0").trim_start_matches("sha256:")),
        )
        .unwrap(),
    )
    .unwrap();
    let layer = blobs.join(
        manifest["layers"][0]["digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:"),
    );
    let saved = t.join("saved-layer");
    fs::rename(&layer, &saved).unwrap();

    assert!(
        std::process::Command::new("mkfifo")
            .arg(&layer)
            .status()
            .unwrap()
            .success()
    );
    let stderr = fails_in_time(t.build_cmd(&recipe, &t.join("out")));
    assert!(
        stderr.contains("it is a FIFO, not a regular file"),
        "{stderr}"
    );

    fs::remove_file(&layer).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &layer).unwrap();
    let stderr = fails_in_time(t.build_cmd(&recipe, &t.join("out")));
    assert!(
        stderr.contains("it is a symlink, not a regular file"),
        "{stderr}"
    );

    fs::remove_file(&layer).unwrap();
    fs::rename(&saved, &layer).unwrap();
    let index = fs::OpenOptions::new()
        .write(true)
        .open(t.join("base-out/index.json"))
        .unwrap();
    index.set_len(6 << 30).unwrap();
    let stderr = fails_in_time(t.build_cmd(&recipe, &t.join("out")));
    assert!(stderr.contains("larger than the 64 MiB"), "{stderr}");
}

/// A base layout's blobs are read, never changed: a read-only blob keeps its
/// mode, and a symlinked one is never followed nor copied as a link, its
/// target untouched.
#[test]
fn base_blobs_are_never_changed_or_linked() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let t = TestDir::new();
    let recipe = base_and_child(&t);
    let blobs = t.join("base-out/blobs/sha256");
    let mut names: Vec<_> = fs::read_dir(&blobs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    for blob in &names {
        fs::set_permissions(blob, fs::Permissions::from_mode(0o400)).unwrap();
    }
    // The largest blob is a layer: moved out of the layout, linked back in.
    let layer = names
        .iter()
        .max_by_key(|p| fs::metadata(p).unwrap().len())
        .unwrap()
        .clone();
    let elsewhere = t.join("elsewhere.blob");
    fs::rename(&layer, &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &layer).unwrap();
    let target_before = fs::read(&elsewhere).unwrap();

    let out = t.join("out");
    // The layer is read from the cache the base's own build filled, or, if
    // it were read from the layout, refused as a symlink: either way the
    // output holds no symlink.
    let output = t.build_cmd(&recipe, &out).output().unwrap();
    if output.status.success() {
        crate::util::verify_layout(&out, "0.1");
    } else {
        let stderr = crate::util::text(&output.stderr);
        assert!(
            stderr.contains("it is a symlink, not a regular file"),
            "{stderr}"
        );
    }
    for blob in names.iter().filter(|b| **b != layer) {
        let mode = fs::metadata(blob).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o400, "{blob:?} changed mode");
    }
    let target = fs::metadata(&elsewhere).unwrap();
    assert_eq!(target.permissions().mode() & 0o777, 0o400);
    assert!(fs::read(&elsewhere).unwrap() == target_before);
    assert!(
        fs::symlink_metadata(&layer)
            .unwrap()
            .file_type()
            .is_symlink()
    );

    // Back as a read-only regular file: the build copies every base blob,
    // leaving the base's modes alone and sharing no file with it.
    fs::remove_file(&layer).unwrap();
    fs::rename(&elsewhere, &layer).unwrap();
    t.build(&recipe, &out);
    crate::util::verify_layout(&out, "0.1");
    for entry in fs::read_dir(out.join("blobs/sha256")).unwrap() {
        let meta = fs::symlink_metadata(entry.unwrap().path()).unwrap();
        assert!(meta.is_file(), "a symlink in the output layout");
        assert_eq!(meta.nlink(), 1, "an output blob shares its file");
    }
    for blob in &names {
        let mode = fs::metadata(blob).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o400, "{blob:?} changed mode");
    }
}
