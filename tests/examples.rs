//! Every example builds, unpacks with umoci (which checks the manifest digest
//! and every diff_id), runs under bubblewrap as its user, and survives a trip
//! through a real registry.

use std::fs;

use crate::util::{self, EPOCH, Registry, TestDir, find_entry, layers};

fn assert_tre_dirs_empty(rootfs: &std::path::Path) {
    for dir in ["safe_data", "safe_outputs", "scratch"] {
        let path = rootfs.join(dir);
        assert!(path.is_dir(), "/{dir} is missing");
        assert_eq!(
            fs::read_dir(&path).unwrap().count(),
            0,
            "/{dir} is not empty"
        );
    }
}

#[test]
fn hello_runs_as_its_user_without_network() {
    let t = TestDir::new();
    let image = t.build_and_unpack(&t.example("hello"), "1.0.0");
    let printed = image.run(10001, 10001, &["/usr/local/bin/hello"]);
    assert_eq!(printed, "hello from strata uid=10001 gid=10001\n");
    let (out, rootfs) = (image.layout, image.rootfs);
    assert_tre_dirs_empty(&rootfs);
    for file in ["passwd", "group", "hosts", "resolv.conf", "nsswitch.conf"] {
        assert!(
            rootfs.join("etc").join(file).is_file(),
            "/etc/{file} is missing"
        );
    }
    let passwd = fs::read_to_string(rootfs.join("etc/passwd")).unwrap();
    assert!(
        passwd.contains("analyst:x:10001:10001:analyst:/home/analyst:/sbin/nologin\n"),
        "{passwd}"
    );
    let config = util::config(&out, "1.0.0");
    assert_eq!(config["config"]["User"], "10001:10001");
    assert_eq!(
        config["config"]["Entrypoint"],
        serde_json::json!(["/usr/local/bin/hello"])
    );
}

#[test]
fn app_example_applies_every_recipe_form() {
    let t = TestDir::new();
    let image = t.build_and_unpack(&t.example("app"), "2.1.0");
    let out = &image.layout;

    let config = util::config(out, "2.1.0");
    let c = &config["config"];
    let entrypoint: Vec<String> = serde_json::from_value(c["Entrypoint"].clone()).unwrap();
    let cmd: Vec<String> = serde_json::from_value(c["Cmd"].clone()).unwrap();
    let argv: Vec<&str> = entrypoint.iter().chain(&cmd).map(String::as_str).collect();
    assert_eq!(
        image.run(10001, 10001, &argv),
        "hello from strata uid=10001 gid=10001 --help\n"
    );
    assert_tre_dirs_empty(&image.rootfs);

    assert_eq!(c["WorkingDir"], "/opt/app");
    assert_eq!(c["StopSignal"], "SIGTERM");
    assert_eq!(c["ExposedPorts"], serde_json::json!({"8080/tcp": {}}));
    assert_eq!(
        c["Volumes"],
        serde_json::json!({"/data": {}, "/safe_data": {}, "/safe_outputs": {}, "/scratch": {}})
    );
    let env: Vec<String> = serde_json::from_value(c["Env"].clone()).unwrap();
    for var in [
        "TMPDIR=/scratch",
        "TMP=/scratch",
        "HF_HUB_OFFLINE=1",
        "PYTHONUNBUFFERED=1",
    ] {
        assert!(env.iter().any(|e| e == var), "{var} missing from {env:?}");
    }
    let labels = &c["Labels"];
    assert_eq!(labels["org.opencontainers.image.title"], "app");
    assert_eq!(labels["org.opencontainers.image.version"], "2.1.0");
    assert_eq!(labels["org.opencontainers.image.licenses"], "MIT");
    assert_eq!(
        labels["org.opencontainers.image.created"],
        "2023-11-14T22:13:20Z"
    );
    assert_eq!(labels["uk.ac.example.project"], "p123");
    assert_eq!(config["history"].as_array().unwrap().len(), 3);
    assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 3);

    let layers = layers(out, "2.1.0");
    assert_eq!(
        layers.len(),
        3,
        "strata's layer, then `runtime`, then `app`"
    );
    for entry in layers.iter().flatten() {
        assert_eq!(entry.mtime, EPOCH.parse::<u64>().unwrap(), "{entry:?}");
        assert_eq!(entry.owner_names, (0, 0), "{entry:?}");
    }
    for layer in &layers {
        let paths: Vec<&str> = layer.iter().map(|e| e.path.as_str()).collect();
        let mut sorted = paths.clone();
        sorted.sort();
        assert_eq!(paths, sorted, "entries are sorted");
    }
    let run_bin = find_entry(&layers, "usr/local/bin/run");
    assert_eq!((run_bin.mode, run_bin.uid, run_bin.gid), (0o555, 0, 0));
    let main = find_entry(&layers, "opt/app/main.py");
    assert_eq!(
        (main.mode, main.uid),
        (0o444, 0),
        "host modes are not trusted"
    );
    let conf = find_entry(&layers, "etc/app.conf");
    assert_eq!(
        (conf.mode, conf.content.as_slice()),
        (0o444, &b"key=value\n"[..])
    );
    let data = find_entry(&layers, "var/lib/app/");
    assert_eq!(
        (data.mode, data.uid, data.gid, data.kind),
        (0o750, 10001, 10001, '5')
    );
    let link = find_entry(&layers, "usr/local/bin/greet");
    assert_eq!(
        (link.kind, link.link.as_deref()),
        ('2', Some("/usr/local/bin/run"))
    );
    let scratch = find_entry(&layers, "scratch/");
    assert_eq!(scratch.mode, 0o1777);
    let all: Vec<&str> = layers.iter().flatten().map(|e| e.path.as_str()).collect();
    for excluded in [".git", "__pycache__", "notes.tmp"] {
        assert!(
            !all.iter().any(|p| p.contains(excluded)),
            "{excluded} reached the image: {all:?}"
        );
    }
}

#[test]
fn skopeo_round_trip_through_the_reference_registry() {
    let t = TestDir::new();
    let registry = Registry::start();
    // Same digest, and the same blobs byte for byte, after the round trip.
    let pushed = registry.build_push_read_back(&t, &t.example("app"), "strata/app:2.1.0");
    let labels = &pushed.inspected["Labels"];
    assert_eq!(labels["org.opencontainers.image.title"], "app");
    assert_eq!(labels["uk.ac.example.project"], "p123");
}
