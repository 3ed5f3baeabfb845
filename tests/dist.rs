//! The distribution binary (`scripts/dist.sh`, named by `STRATA_DIST`): one
//! static file that builds images where there is no C library at all, on an
//! old glibc, and from strata's own image, with the same digests as the
//! strata under test.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{self, Registry, TestDir, run, tagged_digest, tool};

fn dist() -> PathBuf {
    PathBuf::from(tool("STRATA_DIST"))
}

/// bubblewrap with `rootfs` as `/`, the test folder as `/work`, the host's
/// network (and its `resolv.conf`, which is network configuration, not C
/// library) and `/tmp` as strata's home and cache; more bubblewrap options
/// may follow, then `--` and the command.
fn jail(t: &TestDir, rootfs: &Path) -> Command {
    let mut cmd = Command::new("bwrap");
    cmd.arg("--bind")
        .arg(rootfs)
        .arg("/")
        .args(["--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"])
        .args(["--ro-bind", "/etc/resolv.conf", "/etc/resolv.conf"])
        .arg("--bind")
        .arg(t.path())
        .arg("/work")
        .args(["--chdir", "/work", "--unshare-all", "--share-net"])
        .args(["--clearenv", "--setenv", "HOME", "/tmp"])
        .args(["--setenv", "STRATA_CACHE", "/tmp/cache"])
        .args(["--setenv", "SOURCE_DATE_EPOCH", util::EPOCH])
        .args(["--setenv", "NO_COLOR", "1"]);
    cmd
}

/// Builds `recipe` (a path under the test folder) in the jail with the
/// strata at `strata` inside it, into `out` under the test folder; returns
/// the digest tagged `tag`.
fn build_in(
    t: &TestDir,
    rootfs: &Path,
    strata: &str,
    recipe: &Path,
    out: &str,
    tag: &str,
) -> String {
    let inside = |p: &Path| Path::new("/work").join(p.strip_prefix(t.path()).unwrap());
    run(jail(t, rootfs)
        .arg("--")
        .arg(strata)
        .arg("build")
        .arg(inside(recipe))
        .arg("-o")
        .arg(format!("/work/{out}")));
    tagged_digest(&t.join(out), tag)
}

/// Builds `examples/hello` with the strata under test on the host and with
/// the distribution binary at `strata` in the jail rooted at `rootfs`, and
/// checks that both give the same image.
fn builds_hello_as_the_host_does(t: &TestDir, rootfs: &Path, strata: &str, out: &str) {
    let hello = t.example("hello");
    let host = format!("host-{out}");
    t.build(&hello, &t.join(&host));
    assert_eq!(
        build_in(t, rootfs, strata, &hello, out, "1.0.0"),
        tagged_digest(&t.join(&host), "1.0.0")
    );
}

/// A Debian-package image from the real mirror at `mirror`, in `dir`: GNU
/// hello and what it needs, without the Essential set.
fn debian_recipe(t: &TestDir, dir: &str, mirror: &str) -> PathBuf {
    t.write(
        &format!("{dir}/image.kdl"),
        &format!("name \"deb\"\nversion \"1\"\nbase \"scratch\"\nplatform \"linux/amd64\"\ntre #false\ndebian \"bookworm\" mirror=\"{mirror}\" {{\n    install \"hello\"\n    essential #false\n}}\nentrypoint \"/usr/bin/hello\"\n"),
    )
}

/// A root with nothing but `/tmp` and the distribution binary at `/strata`.
fn bare_root(t: &TestDir, name: &str) -> PathBuf {
    let root = t.join(name);
    fs::create_dir_all(root.join("tmp")).unwrap();
    fs::copy(dist(), root.join("strata")).unwrap();
    root
}

fn add_file(root: &Path, path: &str, from: &str) {
    let dest = root.join(path);
    fs::create_dir_all(dest.parent().unwrap()).unwrap();
    fs::copy(from, dest).unwrap();
}

const HOST_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";

#[test]
fn the_distribution_binary_is_static_and_stripped() {
    let binary = dist();
    let program_headers = run(Command::new("readelf").arg("-lW").arg(&binary));
    assert!(!program_headers.contains("INTERP"), "{program_headers}");
    let dynamic = run(Command::new("readelf").arg("-dW").arg(&binary));
    assert!(!dynamic.contains("NEEDED"), "{dynamic}");
    let sections = run(Command::new("readelf").arg("-SW").arg(&binary));
    assert!(!sections.contains(".debug_"), "debug sections: {sections}");
    let size = fs::metadata(&binary).unwrap().len();
    eprintln!("the distribution binary: {size} bytes");
}

/// A root with no C library, no loader and no NSS modules: only the binary,
/// a CA bundle and `/tmp`.
#[test]
fn the_distribution_binary_builds_where_there_is_no_libc() {
    let t = TestDir::new();
    let root = bare_root(&t, "bare");
    add_file(&root, "etc/ssl/certs/ca-certificates.crt", HOST_ROOTS);

    builds_hello_as_the_host_does(&t, &root, "/strata", "bare-hello");

    // Debian packages from the mirror, resolved by name from inside, with
    // the lock the host's build wrote, then pushed to a registry.
    let deb = debian_recipe(&t, "deb", "http://deb.debian.org/debian");
    t.build(&deb, &t.join("host-deb"));
    let expected = tagged_digest(&t.join("host-deb"), "1");
    assert_eq!(
        build_in(&t, &root, "/strata", &deb, "bare-deb", "1"),
        expected
    );
    let registry = Registry::start();
    run(jail(&t, &root)
        .args(["--", "/strata", "push", "/work/bare-deb:1"])
        .arg(format!("{}/deb:1", registry.addr)));
    assert_eq!(registry.inspect("deb:1")["Digest"], expected.as_str());
}

/// TLS roots where RHEL keeps them, where `SSL_CERT_FILE` says, and none.
#[test]
fn the_distribution_binary_finds_tls_roots_as_hosts_keep_them() {
    let t = TestDir::new();
    let deb = debian_recipe(&t, "tls", "https://deb.debian.org/debian");
    t.build(&deb, &t.join("host-tls"));
    let expected = tagged_digest(&t.join("host-tls"), "1");

    let rhel = bare_root(&t, "rhel");
    add_file(&rhel, "etc/pki/tls/certs/ca-bundle.crt", HOST_ROOTS);
    assert_eq!(
        build_in(&t, &rhel, "/strata", &deb, "rhel-out", "1"),
        expected
    );

    let custom = bare_root(&t, "custom");
    add_file(&custom, "opt/roots.pem", HOST_ROOTS);
    let output = jail(&t, &custom)
        .args(["--setenv", "SSL_CERT_FILE", "/opt/roots.pem"])
        .args([
            "/strata",
            "build",
            "/work/tls/image.kdl",
            "-o",
            "/work/custom-out",
        ])
        .output()
        .unwrap();
    util::assert_success(&output, "strata with SSL_CERT_FILE");
    assert_eq!(tagged_digest(&t.join("custom-out"), "1"), expected);

    let none = bare_root(&t, "none");
    let output = jail(&t, &none)
        .args([
            "/strata",
            "build",
            "/work/tls/image.kdl",
            "-o",
            "/work/none-out",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = util::text(&output.stderr);
    assert!(stderr.contains("invalid peer certificate"), "{stderr}");
}

/// Debian 11's root filesystem (glibc 2.31, older than the 2.34 a dynamic
/// strata needs), built by strata.
#[test]
fn the_distribution_binary_runs_on_an_old_glibc() {
    let t = TestDir::new();
    let bullseye = t.write(
        "bullseye/image.kdl",
        "name \"bullseye\"\nversion \"1\"\nbase \"scratch\"\nplatform \"linux/amd64\"\ntre #false\ndebian \"bullseye\" {\n    install \"libc-bin\"\n}\n",
    );
    t.build(&bullseye, &t.join("bullseye-out"));
    let lock = fs::read_to_string(t.join("bullseye/image.lock")).unwrap();
    assert!(lock.contains("package \"libc6\" version=\"2.31-"), "{lock}");
    let rootfs = util::unpack(&t.join("bullseye-out"), "1", &t.join("bullseye-bundle"));
    fs::copy(dist(), rootfs.join("usr/local/bin/strata")).unwrap();
    fs::create_dir_all(rootfs.join("work")).unwrap();

    builds_hello_as_the_host_does(&t, &rootfs, "/usr/local/bin/strata", "old-hello");
}

/// strata's own image (`examples/strata`), built by strata, builds images.
#[test]
fn strata_in_its_own_image_builds_the_same_image() {
    let t = TestDir::new();
    let own = t.example("strata");
    fs::copy(dist(), own.with_file_name("strata")).unwrap();
    t.build(&own, &t.join("own-out"));
    let rootfs = util::unpack(&t.join("own-out"), "0.1.0", &t.join("own-bundle"));
    fs::create_dir_all(rootfs.join("work")).unwrap();
    fs::create_dir_all(rootfs.join("proc")).unwrap();
    fs::create_dir_all(rootfs.join("dev")).unwrap();
    fs::create_dir_all(rootfs.join("etc")).unwrap();
    fs::write(rootfs.join("etc/resolv.conf"), "").unwrap();
    assert!(rootfs.join("etc/ssl/certs/ca-certificates.crt").is_file());

    builds_hello_as_the_host_does(&t, &rootfs, "/usr/local/bin/strata", "own-hello");
}
