//! Helpers every integration test shares: a scratch folder, the `strata`
//! binary with a private cache, a real registry on a loopback port, and ways
//! to unpack and run an image.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The epoch every test builds with, unless it tests the epoch itself.
pub const EPOCH: &str = "1700000000";

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A temporary folder for one test, readable by other users (so a build can
/// run as `nobody`), removed at the end.
pub struct TestDir {
    dir: tempfile::TempDir,
}

impl TestDir {
    pub fn new() -> TestDir {
        let dir = tempfile::Builder::new()
            .prefix("strata-test-")
            .tempdir()
            .unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        TestDir { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn join(&self, rel: &str) -> PathBuf {
        self.path().join(rel)
    }

    pub fn write(&self, rel: &str, content: &str) -> PathBuf {
        let path = self.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, content).unwrap();
        path
    }

    /// Copies `examples/NAME` here (outside any git checkout, so builds do not
    /// pick up the repository's commit) and returns the recipe's path.
    pub fn example(&self, name: &str) -> PathBuf {
        self.example_in(name, name)
    }

    /// Copies `examples/NAME` into `dir` and returns the recipe's path.
    pub fn example_in(&self, dir: &str, name: &str) -> PathBuf {
        let dest = self.join(dir);
        copy_tree(&repo_root().join("examples").join(name), &dest);
        dest.join("image.kdl")
    }

    pub fn cache(&self) -> PathBuf {
        self.join("cache")
    }

    /// `strata` with this folder's cache and the fixed epoch.
    pub fn strata(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_strata"));
        cmd.env("STRATA_CACHE", self.cache())
            .env("SOURCE_DATE_EPOCH", EPOCH)
            .env("NO_COLOR", "1")
            .current_dir(self.path());
        cmd
    }

    /// `strata build RECIPE -o OUT`, ready for more arguments or environment.
    pub fn build_cmd(&self, recipe: &Path, out: &Path) -> Command {
        let mut cmd = self.strata();
        cmd.arg("build").arg(recipe).arg("-o").arg(out);
        cmd
    }

    /// Builds `recipe` into the layout `out`, asserting success.
    pub fn build(&self, recipe: &Path, out: &Path) -> Output {
        let output = self.build_cmd(recipe, out).output().unwrap();
        assert_success(&output, "strata build");
        output
    }

    /// `strata build RECIPE -o OUT ARGS…`, asserting success.
    pub fn build_with(&self, recipe: &Path, out: &Path, args: &[&str]) -> Output {
        let output = self.build_cmd(recipe, out).args(args).output().unwrap();
        assert_success(&output, &format!("strata build {}", args.join(" ")));
        output
    }

    /// Runs a build expected to fail and returns its stderr.
    pub fn build_fails(&self, recipe: &Path, out: &Path) -> String {
        let output = self.build_cmd(recipe, out).output().unwrap();
        assert!(
            !output.status.success(),
            "the build should have failed:\n{}",
            text(&output.stderr)
        );
        assert_eq!(output.status.code(), Some(1));
        text(&output.stderr)
    }
}

/// `len` bytes that no compressor shrinks (xorshift), the same every run.
pub fn noise(len: usize) -> Vec<u8> {
    let mut noise = vec![0u8; len];
    let mut x: u64 = 0x9e3779b97f4a7c15;
    for chunk in noise.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    noise
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub fn assert_success(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        output.status,
        text(&output.stdout),
        text(&output.stderr)
    );
}

/// Runs a command and returns its stdout, asserting success.
pub fn run(cmd: &mut Command) -> String {
    let output = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert_success(&output, &format!("{cmd:?}"));
    text(&output.stdout)
}

pub fn copy_tree(src: &Path, dest: &Path) {
    fs::create_dir_all(dest).unwrap();
    for entry in fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let target = dest.join(entry.file_name());
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            copy_tree(&entry.path(), &target);
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(entry.path()).unwrap(), &target).unwrap();
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Every file of a folder (relative path → bytes), to compare outputs exactly.
pub fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.insert(rel, fs::read(&path).unwrap());
            }
        }
    }
    walk(dir, dir, &mut out);
    out
}

/// The digest `index.json` tags as `tag`.
/// `git ARGS` in `dir`, committing as a test user at `date`; its stdout.
pub fn git(dir: &Path, date: &str, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.org"])
        .args(args)
        .current_dir(dir)
        .env("GIT_COMMITTER_DATE", date)
        .env("GIT_AUTHOR_DATE", date)
        .output()
        .unwrap();
    assert_success(&out, "git");
    text(&out.stdout).trim().to_owned()
}

pub fn tagged_digest(layout: &Path, tag: &str) -> String {
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap_or_else(|| panic!("no tag {tag} in {index}"))["digest"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// `umoci unpack --rootless`: checks the manifest digest and every diff_id.
pub fn unpack(layout: &Path, tag: &str, bundle: &Path) -> PathBuf {
    run(Command::new("umoci")
        .arg("unpack")
        .arg("--rootless")
        .arg("--image")
        .arg(format!("{}:{tag}", layout.display()))
        .arg(bundle));
    bundle.join("rootfs")
}

/// An image built into `out` and unpacked by umoci into `bundle`.
pub struct Unpacked {
    /// The OCI layout the build wrote.
    pub layout: PathBuf,
    /// The unpacked root filesystem.
    pub rootfs: PathBuf,
}

impl TestDir {
    /// Build, unpack, run: builds `recipe` into `out` (asserting success) and
    /// unpacks the image tagged `tag` with `umoci unpack --rootless` into
    /// `bundle`; [`Unpacked::run`] runs commands in it.
    pub fn build_and_unpack(&self, recipe: &Path, tag: &str) -> Unpacked {
        let layout = self.join("out");
        self.build(recipe, &layout);
        let rootfs = unpack(&layout, tag, &self.join("bundle"));
        Unpacked { layout, rootfs }
    }
}

impl Unpacked {
    /// Runs `argv` inside the root filesystem with bubblewrap, isolated from
    /// the host and the network, as `uid:gid`; returns stdout, asserting
    /// success.
    pub fn run(&self, uid: u32, gid: u32, argv: &[&str]) -> String {
        run(Command::new("bwrap")
            .arg("--bind")
            .arg(&self.rootfs)
            .args(["/", "--proc", "/proc", "--dev", "/dev", "--unshare-all"])
            .args(["--uid", &uid.to_string(), "--gid", &gid.to_string(), "--"])
            .args(argv))
    }
}

/// Runs `argv` in the image as `uid`, on a read-only root with a private
/// `/tmp`, as a TRE runs containers; `extra` are more bubblewrap arguments.
pub fn run_read_only(image: &Unpacked, uid: u32, extra: &[&str], argv: &[&str]) -> String {
    run(Command::new("bwrap")
        .arg("--ro-bind")
        .arg(&image.rootfs)
        .args(["/", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"])
        .args([
            "--unshare-all",
            "--uid",
            &uid.to_string(),
            "--gid",
            &uid.to_string(),
        ])
        .args(["--setenv", "HOME", "/tmp"])
        .args(extra)
        .arg("--")
        .args(argv))
}

/// `(name, version, sha256 hex)` of every `NODE "NAME" … version="…" …
/// sha256="sha256:…"` line of a lock (`package` for Debian, `wheel` for
/// Python).
pub fn locked(lock: &Path, node: &str) -> BTreeSet<(String, String, String)> {
    let field = |line: &str, key: &str| {
        line.split(&format!(" {key}=\""))
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_else(|| panic!("no {key} in {line}"))
            .to_owned()
    };
    fs::read_to_string(lock)
        .unwrap()
        .lines()
        .filter_map(|l| l.trim().strip_prefix(&format!("{node} \"")))
        .map(|l| {
            let name = l.split('"').next().unwrap().to_owned();
            let sha = field(l, "sha256");
            (
                name,
                field(l, "version"),
                sha.trim_start_matches("sha256:").to_owned(),
            )
        })
        .collect()
}

/// The `(name, version)` pairs of `locked`.
pub fn names(locked: &BTreeSet<(String, String, String)>) -> BTreeSet<(String, String)> {
    locked
        .iter()
        .map(|(n, v, _)| (n.clone(), v.clone()))
        .collect()
}

/// `(name, version)` of the SPDX SBOM's packages whose purl starts with
/// `prefix` (`pkg:deb/`, `pkg:pypi/`).
pub fn sbom_packages(sbom: &serde_json::Value, prefix: &str) -> BTreeSet<(String, String)> {
    sbom["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| {
            p["externalRefs"][0]["referenceLocator"]
                .as_str()
                .unwrap()
                .starts_with(prefix)
        })
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                p["versionInfo"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// A JSON blob of the layout.
pub fn json_blob(layout: &Path, digest: &str) -> serde_json::Value {
    let hex = digest.strip_prefix("sha256:").unwrap();
    serde_json::from_slice(&fs::read(layout.join("blobs/sha256").join(hex)).unwrap()).unwrap()
}

/// The manifest tagged `tag`.
pub fn manifest(layout: &Path, tag: &str) -> serde_json::Value {
    json_blob(layout, &tagged_digest(layout, tag))
}

/// The image config of the image tagged `tag`.
pub fn config(layout: &Path, tag: &str) -> serde_json::Value {
    json_blob(
        layout,
        manifest(layout, tag)["config"]["digest"].as_str().unwrap(),
    )
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until a server that a test started accepts connections.
pub fn wait_for_port(addr: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "{what} did not start on {addr}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One tar header, as a layer holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarEntry {
    pub path: String,
    pub kind: char,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub owner_names: (usize, usize),
    pub link: Option<String>,
    pub content: Vec<u8>,
}

/// Every entry of every layer of the image tagged `tag`, layer by layer.
pub fn layers(layout: &Path, tag: &str) -> Vec<Vec<TarEntry>> {
    use std::io::Read;
    let hex = |d: &str| d.strip_prefix("sha256:").unwrap().to_owned();
    let manifest: serde_json::Value = serde_json::from_slice(
        &fs::read(
            layout
                .join("blobs/sha256")
                .join(hex(&tagged_digest(layout, tag))),
        )
        .unwrap(),
    )
    .unwrap();
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let file = fs::File::open(
                layout
                    .join("blobs/sha256")
                    .join(hex(l["digest"].as_str().unwrap())),
            )
            .unwrap();
            let reader: Box<dyn Read> = if l["mediaType"].as_str().unwrap().ends_with("zstd") {
                Box::new(zstd::Decoder::new(file).unwrap())
            } else {
                Box::new(flate2::read::GzDecoder::new(file))
            };
            let mut archive = tar::Archive::new(reader);
            archive
                .entries()
                .unwrap()
                .map(|e| {
                    let mut e = e.unwrap();
                    let h = e.header().clone();
                    let mut content = Vec::new();
                    e.read_to_end(&mut content).unwrap();
                    TarEntry {
                        path: e.path().unwrap().to_string_lossy().into_owned(),
                        kind: h.entry_type().as_byte() as char,
                        mode: h.mode().unwrap(),
                        uid: h.uid().unwrap(),
                        gid: h.gid().unwrap(),
                        mtime: h.mtime().unwrap(),
                        owner_names: (
                            h.username_bytes().map_or(0, <[u8]>::len),
                            h.groupname_bytes().map_or(0, <[u8]>::len),
                        ),
                        link: e
                            .link_name()
                            .unwrap()
                            .map(|l| l.to_string_lossy().into_owned()),
                        content,
                    }
                })
                .collect()
        })
        .collect()
}

/// Finds `path` among all layers, the topmost copy winning.
pub fn find_entry(layers: &[Vec<TarEntry>], path: &str) -> TarEntry {
    layers
        .iter()
        .rev()
        .flatten()
        .find(|e| e.path == path)
        .unwrap_or_else(|| panic!("no entry {path}"))
        .clone()
}

/// podman with private storage (vfs) and the flags this VM needs (see
/// shared/BRIEF.md: crun fails on its hybrid cgroups), in the test folder.
pub fn podman(t: &TestDir, args: &[&str]) -> Command {
    let mut cmd = Command::new("podman");
    cmd.arg("--root")
        .arg(t.join("podman/root"))
        .arg("--runroot")
        .arg(t.join("podman/run"))
        .args([
            "--storage-driver",
            "vfs",
            "--cgroup-manager",
            "cgroupfs",
            "--events-backend",
            "none",
        ])
        .args(args)
        .current_dir(t.path());
    cmd
}

/// `podman run` of `image` (pulled or loaded into `t`'s storage) with `args`
/// after it, without network; returns stdout, asserting success.
pub fn podman_run(t: &TestDir, image: &str, args: &[&str]) -> String {
    let mut argv = vec![
        "run",
        "--rm",
        "--runtime",
        "runc",
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=1024:1024",
        "--network=none",
        image,
    ];
    argv.extend(args);
    run(&mut podman(t, &argv))
}

/// Checks a layout as strictly as umoci does, for media types umoci cannot
/// read: every blob matches its digest and size, every layer its diff_id.
pub fn verify_layout(layout: &Path, tag: &str) {
    use sha2::Digest as _;
    use std::io::Read;
    let read = |digest: &str| {
        fs::read(
            layout
                .join("blobs/sha256")
                .join(digest.trim_start_matches("sha256:")),
        )
        .unwrap()
    };
    let sha = |bytes: &[u8]| format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)));
    let top = tagged_digest(layout, tag);
    let manifest_bytes = read(&top);
    assert_eq!(sha(&manifest_bytes), top);
    let manifest: serde_json::Value = serde_json::from_slice(&manifest_bytes).unwrap();
    let config_digest = manifest["config"]["digest"].as_str().unwrap();
    let config_bytes = read(config_digest);
    assert_eq!(sha(&config_bytes), config_digest);
    let config: serde_json::Value = serde_json::from_slice(&config_bytes).unwrap();
    for (layer, diff_id) in manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .zip(config["rootfs"]["diff_ids"].as_array().unwrap())
    {
        let digest = layer["digest"].as_str().unwrap();
        let blob = read(digest);
        assert_eq!(sha(&blob), digest);
        assert_eq!(blob.len() as u64, layer["size"].as_u64().unwrap());
        let mut tar = Vec::new();
        if layer["mediaType"].as_str().unwrap().ends_with("zstd") {
            zstd::Decoder::new(&blob[..])
                .unwrap()
                .read_to_end(&mut tar)
                .unwrap();
        } else {
            flate2::read::GzDecoder::new(&blob[..])
                .read_to_end(&mut tar)
                .unwrap();
        }
        assert_eq!(sha(&tar), diff_id.as_str().unwrap());
    }
}

/// A tool `.ci/run` installs from PyPI, by the variable that names it
/// (`STRATA_SYFT`, `STRATA_TRIVY`, `STRATA_PYTHON`).
pub fn tool(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("`{var}` is not set: run the suite with `bash .ci/run`, which installs it")
    })
}

/// Checks `document` against one of the published schemas in tests/schemas,
/// with the Python (and jsonschema) of `STRATA_PYTHON`.
pub fn validate(schema: &str, document: &Path) {
    run(Command::new(tool("STRATA_PYTHON"))
        .arg(repo_root().join("tests/util/validate.py"))
        .arg(repo_root().join("tests/schemas").join(schema))
        .arg(document));
}

/// `(name, version)` of every Debian package Syft (`STRATA_SYFT`) finds in
/// the docker-archive `archive`.
pub fn syft_debs(archive: &Path) -> BTreeSet<(String, String)> {
    let found: serde_json::Value = serde_json::from_str(&run(Command::new(tool("STRATA_SYFT"))
        .args(["scan", "-q", "-o", "json"])
        .arg(format!("docker-archive:{}", archive.display()))))
    .unwrap();
    found["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["type"] == "deb")
        .map(|a| {
            (
                a["name"].as_str().unwrap().to_owned(),
                a["version"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

pub mod apt;
pub mod registry;
pub mod snapshot;

pub use registry::Registry;

/// Replaces `from` with `to` in the file at `path`; `from` must be there, so
/// an edit that would change nothing fails the test instead of passing by.
pub fn edit_file(path: &Path, from: &str, to: &str) -> PathBuf {
    let before = fs::read_to_string(path).unwrap();
    assert!(
        before.contains(from),
        "{} does not contain {from:?}:\n{before}",
        path.display()
    );
    let after = before.replace(from, to);
    assert_ne!(
        after, before,
        "replacing {from:?} with itself changes nothing"
    );
    fs::write(path, &after).unwrap();
    path.to_owned()
}

/// A YAML file as JSON (PyYAML, which `.ci/run` installs).
pub fn yaml(path: &Path) -> serde_json::Value {
    let json = run(Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
        ])
        .arg(path));
    serde_json::from_str(&json).unwrap()
}
