//! Debian packages from a local signed repository that the test builds and
//! serves: trust (signatures and hashes), the solver, the lock, and what the
//! installed image holds.

use std::fs;

use crate::util::apt::{AptRepo, Pkg};
use crate::util::{self, TestDir, find_entry, layers, run, snapshot};

/// A repository exercising alternatives, virtual packages, versions,
/// pre-depends, conflicts, merged-/usr paths, docs and setuid files.
pub(crate) fn standard_repo(t: &TestDir) -> (AptRepo, String) {
    let mut repo = published_standard_repo(t);
    let url = repo.serve();
    (repo, url)
}

/// The standard repository, published and its key exported, not served yet.
fn published_standard_repo(t: &TestDir) -> AptRepo {
    let hello = fs::read(crate::util::repo_root().join("examples/hello/hello")).unwrap();
    let mut repo = AptRepo::new(t, "good");
    repo.add(&Pkg {
        name: "hello-bin",
        version: "1.0",
        arch: "amd64",
        fields: &[],
        files: &[
            ("/usr/bin/hello", &hello, 0o755),
            ("/bin/legacy", b"#!/bin/sh\n", 0o755),
            ("/usr/bin/suid", b"x", 0o4755),
        ],
    });
    repo.add(&Pkg {
        name: "app",
        version: "1.0",
        arch: "all",
        fields: &[
            ("Pre-Depends", "hello-bin"),
            ("Depends", "libfoo (>= 2) | libbar, mail-transport-agent"),
        ],
        files: &[
            ("/usr/share/app/data.txt", b"app data\n", 0o644),
            ("/usr/share/doc/app/copyright", b"MIT\n", 0o644),
            ("/usr/share/doc/app/changelog", b"changes\n", 0o644),
            ("/usr/share/man/man1/app.1", b".TH\n", 0o644),
        ],
    });
    for version in ["1.0", "2.0", "3.0"] {
        let breaks: &[(&str, &str)] = if version == "3.0" {
            &[("Breaks", "app")]
        } else {
            &[]
        };
        repo.add(&Pkg {
            name: "libfoo",
            version,
            arch: "amd64",
            fields: breaks,
            files: &[(
                "/usr/lib/x86_64-linux-gnu/libfoo.so",
                version.as_bytes(),
                0o644,
            )],
        });
    }
    repo.add(&Pkg {
        name: "tiny-mta",
        version: "0.1",
        arch: "amd64",
        fields: &[("Provides", "mail-transport-agent")],
        files: &[("/usr/sbin/sendmail", b"mta", 0o755)],
    });
    repo.add(&Pkg {
        name: "rival",
        version: "1.0",
        arch: "amd64",
        fields: &[("Conflicts", "tiny-mta")],
        files: &[],
    });
    repo.publish("stable");
    repo.export_key(&t.join("image/keys/repo.gpg"));
    repo
}

pub(crate) fn recipe(t: &TestDir, url: &str, install: &str) -> std::path::PathBuf {
    t.write(
        "image/image.kdl",
        &format!(
            "name \"pkgs\"\nversion \"1\"\nbase \"scratch\"\nplatform \"linux/amd64\"\ndebian \"stable\" mirror=\"{url}\" updates=#false security=#false keyring=\"keys/repo.gpg\" {{\n    install {install}\n}}\nentrypoint \"/usr/bin/hello\"\n"
        ),
    )
}

/// A mirror behind a login: the login is sent, from the recipe's URL (as
/// apt's sources.list allows) or from `STRATA_APT_CREDS`, and never lands
/// in the lock, the layout, the SBOM, `--json` or `-vv` output, or errors.
#[test]
fn mirror_logins_are_sent_and_never_written() {
    const PASSWORD: &str = "Pa55-w0rd-x";
    let t = TestDir::new();
    let mut repo = published_standard_repo(&t);
    let url = repo.serve_with_login(&format!("mirror-user:{PASSWORD}"));
    let with_login =
        |password: &str| url.replacen("http://", &format!("http://mirror-user:{password}@"), 1);
    let assert_no_password = |what: &str, text: &str| {
        assert!(
            !text.contains(PASSWORD),
            "the password is in {what}:\n{text}"
        );
        assert!(
            !text.contains("wrong-pw"),
            "the password is in {what}:\n{text}"
        );
    };

    let path = recipe(&t, &url, "\"app\"");
    let err = t.build_fails(&path, &t.join("refused"));
    assert!(err.contains("401"), "{err}");

    let path = recipe(&t, &with_login("wrong-pw"), "\"app\"");
    let err = t.build_fails(&path, &t.join("refused"));
    assert!(err.contains("401"), "{err}");
    assert_no_password("the error", &err);

    let path = recipe(&t, &with_login(PASSWORD), "\"app\"");
    let out = t.join("out");
    let output = t
        .build_cmd(&path, &out)
        .args(["-vv", "--json"])
        .output()
        .unwrap();
    util::assert_success(&output, "strata build with a login in the mirror URL");
    let lock = fs::read_to_string(t.join("image/image.lock")).unwrap();
    assert!(lock.contains(&format!("repository \"{url}\"")), "{lock}");
    let sbom = t
        .strata()
        .arg("sbom")
        .arg(format!("{}:1", out.display()))
        .output()
        .unwrap();
    util::assert_success(&sbom, "strata sbom");
    let sbom = util::text(&sbom.stdout);
    assert!(
        sbom.contains(&format!("\"downloadLocation\":\"{url}/pool/")),
        "{sbom}"
    );
    for (what, text) in [
        ("stdout", util::text(&output.stdout)),
        ("stderr", util::text(&output.stderr)),
        ("the lock", lock),
        ("the SBOM", sbom),
    ] {
        assert_no_password(what, &text);
    }
    for (file, bytes) in snapshot(&out) {
        assert_no_password(&file, &String::from_utf8_lossy(&bytes));
    }
    let image = util::tagged_digest(&out, "1");

    // The same image with the login from the environment, from an empty
    // cache and no lock.
    fs::remove_file(t.join("image/image.lock")).unwrap();
    let path = recipe(&t, &url, "\"app\"");
    let output = t
        .build_cmd(&path, &t.join("from-env"))
        .env("STRATA_CACHE", t.join("cache-from-env"))
        .env(
            "STRATA_APT_CREDS",
            format!("127.0.0.1=mirror-user:{PASSWORD}"),
        )
        .output()
        .unwrap();
    util::assert_success(&output, "strata build with STRATA_APT_CREDS");
    assert_eq!(util::tagged_digest(&t.join("from-env"), "1"), image);
}

#[test]
fn installs_the_closure_from_a_signed_repository() {
    let t = TestDir::new();
    let (_repo, url) = standard_repo(&t);
    let image = t.build_and_unpack(&recipe(&t, &url, "\"app\""), "1");

    let lock = fs::read_to_string(t.join("image/image.lock")).unwrap();
    let locked: Vec<&str> = lock
        .lines()
        .filter_map(|l| l.trim().strip_prefix("package \""))
        .map(|l| l.split('"').next().unwrap())
        .collect();
    assert_eq!(locked, ["app", "hello-bin", "libfoo", "tiny-mta"], "{lock}");
    assert!(
        lock.contains("package \"libfoo\" version=\"2.0\""),
        "the highest version that app allows: {lock}"
    );
    assert!(lock.contains("sha256=\"sha256:"), "{lock}");

    assert_eq!(
        image.run(65532, 65532, &["/usr/bin/hello"]),
        "hello from strata uid=65532 gid=65532\n"
    );
    let rootfs = &image.rootfs;
    assert_eq!(
        fs::read_link(rootfs.join("bin")).unwrap().to_str(),
        Some("usr/bin")
    );
    assert!(
        rootfs.join("usr/bin/legacy").is_file(),
        "./bin/legacy maps through merged /usr"
    );
    assert!(rootfs.join("usr/share/doc/app/copyright").is_file());
    assert!(!rootfs.join("usr/share/doc/app/changelog").exists());
    assert!(!rootfs.join("usr/share/man").exists());
    let status = fs::read_to_string(rootfs.join("var/lib/dpkg/status.d/app")).unwrap();
    assert!(
        status.contains("Package: app\nStatus: install ok installed\n")
            && status.contains("Version: 1.0"),
        "{status}"
    );
    assert!(rootfs.join("var/lib/dpkg/status.d/app.md5sums").is_file());
    assert!(rootfs.join("etc/os-release").is_file() && rootfs.join("etc/debian_version").is_file());

    let layers = layers(&image.layout, "1");
    let suid = find_entry(&layers, "usr/bin/suid");
    assert_eq!((suid.mode, suid.uid), (0o4755, 0), "setuid survives");
}

#[test]
fn the_solver_explains_a_conflict() {
    let t = TestDir::new();
    let (_repo, url) = standard_repo(&t);
    let recipe = recipe(&t, &url, "\"app\" \"rival\"");
    let stderr = t.build_fails(&recipe, &t.join("out"));
    assert!(stderr.contains("cannot be installed together"), "{stderr}");
    assert!(
        stderr.contains("rival") && stderr.contains("tiny-mta"),
        "{stderr}"
    );
    assert!(
        !t.join("image/image.lock").exists(),
        "no lock for an unsolvable recipe"
    );
    assert!(!t.join("out").exists());
}

#[test]
fn pins_and_missing_packages() {
    let t = TestDir::new();
    let (_repo, url) = standard_repo(&t);
    t.build(&recipe(&t, &url, "\"libfoo=1.0\""), &t.join("out"));
    let lock = fs::read_to_string(t.join("image/image.lock")).unwrap();
    assert!(
        lock.contains("package \"libfoo\" version=\"1.0\""),
        "{lock}"
    );

    let stderr = t.build_fails(&recipe(&t, &url, "\"nope\""), &t.join("out2"));
    assert!(
        stderr.contains("no repository has a package `nope`"),
        "{stderr}"
    );
}

#[test]
fn a_broken_package_is_named_not_its_cached_file() {
    let t = TestDir::new();
    let mut repo = AptRepo::new(&t, "broken");
    let pkg = Pkg {
        name: "broken",
        version: "1.0",
        arch: "amd64",
        fields: &[],
        files: &[],
    };
    let control = "Package: broken\nVersion: 1.0\nArchitecture: amd64\nDescription: an empty ar\n";
    repo.add_deb(&pkg, control.to_owned(), b"!<arch>\n");
    repo.publish("stable");
    let url = repo.serve();
    repo.export_key(&t.join("image/keys/repo.gpg"));
    let stderr = t.build_fails(&recipe(&t, &url, "\"broken\""), &t.join("out"));
    assert!(
        stderr.contains(
            "the package `broken 1.0` is not a Debian package: no `debian-binary` member"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("blobs"), "{stderr}");
}

/// Builds after `tamper` changed the served repository; returns stderr and
/// checks that neither the output nor the lock appeared.
fn fails_after(tamper: impl FnOnce(&TestDir, &AptRepo), expected: &[&str]) {
    let t = TestDir::new();
    let (repo, url) = standard_repo(&t);
    tamper(&t, &repo);
    let stderr = t.build_fails(&recipe(&t, &url, "\"app\""), &t.join("out"));
    for needle in expected {
        assert!(stderr.contains(needle), "expected {needle:?} in:\n{stderr}");
    }
    assert!(!t.join("out").exists(), "output written after a failure");
    assert!(
        !t.join("image/image.lock").exists(),
        "lock written after a failure"
    );
}

#[test]
fn a_tampered_release_is_refused() {
    fails_after(
        |_, repo| {
            let path = repo.root.join("dists/stable/InRelease");
            let text = fs::read_to_string(&path)
                .unwrap()
                .replace("Origin: strata-test", "Origin: strata-evil");
            fs::write(path, text).unwrap();
        },
        &["does not verify", "dists/stable/InRelease"],
    );
}

#[test]
fn a_repository_signed_by_another_key_is_refused() {
    fails_after(
        |t, _| {
            let other = AptRepo::new(t, "other");
            other.export_key(&t.join("image/keys/repo.gpg"));
        },
        &["does not verify", "keys/repo.gpg"],
    );
}

#[test]
fn an_index_that_does_not_match_the_release_is_refused() {
    fails_after(
        |_, repo| {
            let path = repo.root.join("dists/stable/main/binary-amd64/Packages");
            let mut text = fs::read_to_string(&path).unwrap();
            text.push_str("\nPackage: injected\nVersion: 1\nArchitecture: all\nFilename: x\nSize: 1\nSHA256: 00\n");
            fs::write(path, text).unwrap();
        },
        &["Packages` does not match its expected sha256"],
    );
}

#[test]
fn a_package_that_does_not_match_the_index_is_refused() {
    fails_after(
        |_, repo| {
            let path = repo.root.join("pool/main/app_1.0_all.deb");
            let mut bytes = fs::read(&path).unwrap();
            let last = bytes.len() - 1;
            bytes[last] ^= 1;
            fs::write(path, bytes).unwrap();
        },
        &["app_1.0_all.deb` does not match its expected sha256"],
    );
}

#[test]
fn locked_offline_and_cached_builds_agree() {
    let t = TestDir::new();
    let (mut repo, url) = standard_repo(&t);
    let recipe = recipe(&t, &url, "\"app\"");
    run(t.strata().arg("lock").arg(&recipe));
    let lock = fs::read(t.join("image/image.lock")).unwrap();

    t.build(&recipe, &t.join("cold"));
    // The repository goes away: the lock and the cache are enough.
    drop(std::mem::replace(&mut repo, AptRepo::new(&t, "unused")));
    let warm = t
        .strata()
        .args(["build", "--locked", "--offline", "-o"])
        .arg(t.join("warm"))
        .arg(&recipe)
        .output()
        .unwrap();
    crate::util::assert_success(&warm, "offline build");
    assert!(snapshot(&t.join("cold")) == snapshot(&t.join("warm")));
    assert_eq!(
        fs::read(t.join("image/image.lock")).unwrap(),
        lock,
        "a current lock is not rewritten"
    );

    // A changed install list makes the lock stale: `--locked` refuses.
    let stale = crate::util::edit_file(&recipe, "\"app\"", "\"app\" \"libfoo\"");
    let out = t
        .strata()
        .args(["build", "--locked", "-o"])
        .arg(t.join("x"))
        .arg(&stale)
        .output()
        .unwrap();
    assert!(
        crate::util::text(&out.stderr).contains("does not match the recipe"),
        "{}",
        crate::util::text(&out.stderr)
    );

    // Offline with an empty cache names what is missing.
    crate::util::edit_file(&recipe, "\"app\" \"libfoo\"", "\"app\"");
    let out = t
        .strata()
        .env("STRATA_CACHE", t.join("empty-cache"))
        .args(["build", "--offline", "-o"])
        .arg(t.join("y"))
        .arg(&recipe)
        .output()
        .unwrap();
    let stderr = crate::util::text(&out.stderr);
    assert!(
        stderr.contains("offline") && stderr.contains("app_1.0_all.deb"),
        "{stderr}"
    );
}

#[test]
fn a_base_dpkg_database_counts_and_grows() {
    let t = TestDir::new();
    let (_repo, url) = standard_repo(&t);
    // A base whose dpkg database already lists hello-bin.
    t.write(
        "base/image.kdl",
        "name \"base\"\nversion \"1\"\nbase \"scratch\"\ntre #false\nlayer \"dpkg\" {\n    file \"/var/lib/dpkg/status\" \"Package: hello-bin\\nStatus: install ok installed\\nVersion: 1.0\\nArchitecture: amd64\\n\" mode=0o644\n}\n",
    );
    t.build(&t.join("base/image.kdl"), &t.join("base-out"));
    let digest = crate::util::tagged_digest(&t.join("base-out"), "1");
    let recipe = recipe(&t, &url, "\"app\"");
    crate::util::edit_file(
        &recipe,
        "base \"scratch\"",
        &format!("base \"oci:../base-out@{digest}\""),
    );
    t.build(&recipe, &t.join("out"));

    let lock = fs::read_to_string(t.join("image/image.lock")).unwrap();
    assert!(
        !lock.contains("package \"hello-bin\""),
        "installed in the base: {lock}"
    );
    let layers = layers(&t.join("out"), "1");
    let status = String::from_utf8(find_entry(&layers, "var/lib/dpkg/status").content).unwrap();
    assert!(status.starts_with("Package: hello-bin\n"), "{status}");
    assert!(
        status.contains("\n\nPackage: app\nStatus: install ok installed\n"),
        "{status}"
    );
    assert!(
        !layers
            .iter()
            .flatten()
            .any(|e| e.path.starts_with("var/lib/dpkg/status.d"))
    );
}
