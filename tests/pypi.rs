//! Python packages against a local PEP 691 index the tests build and serve
//! on loopback (wheels made with Python's `zipfile`, see
//! `util/pypi_index.py`): markers, extras, yanked files, `Requires-Python`,
//! platform tags, conflicts, hash pins, hostile wheels, `--locked` and
//! `--offline`. The image's "interpreter" is a base whose files say
//! CPython 3.11 on glibc 2.36: strata reads files, it never runs them.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::util::{self, TestDir, find_entry, layers, locked, names, tagged_digest, text};

/// The index's projects (see `util/pypi_index.py` for the keys).
const SPEC: &str = r##"[
 {"name": "alpha", "version": "1.0", "requires_dist": ["beta>=2", "gamma; extra == 'fast'", "winonly; sys_platform == 'win32'"],
  "provides_extra": ["fast"], "files": {"alpha/__init__.py": "VALUE = 1\n", "alpha/cli.py": "def main():\n    print('alpha')\n"},
  "scripts": {"alpha-cli": "alpha.cli:main"}, "data_scripts": {"alpha-tool": "#!python\nprint('tool')\n"}},
 {"name": "beta", "version": "1.0", "files": {"beta/__init__.py": ""}},
 {"name": "beta", "version": "2.0", "files": {"beta/__init__.py": "V = 2\n"}},
 {"name": "beta", "version": "2.5", "requires_python": ">=3.12", "files": {"beta/__init__.py": ""}},
 {"name": "beta", "version": "3.0", "yanked": "broken", "files": {"beta/__init__.py": ""}},
 {"name": "beta", "version": "4.0rc1", "files": {"beta/__init__.py": ""}},
 {"name": "gamma", "version": "1.0", "metadata_file": false, "files": {"gamma.py": ""}},
 {"name": "nosize", "version": "1.0", "no_size": true, "files": {"nosize.py": ""}},
 {"name": "native", "version": "1.0", "tag": "cp311-cp311-manylinux_2_17_x86_64", "files": {"native/_ext.so": "ELF"}},
 {"name": "native", "version": "1.0", "tag": "cp311-cp311-manylinux_2_17_aarch64", "files": {"native/_ext.so": "ELF arm"}},
 {"name": "native", "version": "2.0", "tag": "cp312-cp312-manylinux_2_17_x86_64", "files": {"native/_ext.so": "ELF"}},
 {"name": "sdistonly", "version": "1.0", "sdist": true},
 {"name": "needslibc", "version": "1.0", "tag": "cp311-cp311-manylinux_2_17_x86_64", "host_files": {"needslibc/_ext.so": "/usr/lib/x86_64-linux-gnu/libz.so.1"}},
 {"name": "wrapper", "version": "1.0", "requires_dist": ["needsnew"], "files": {"wrapper.py": ""}},
 {"name": "needsnew", "version": "1.0", "tag": "cp311-cp311-manylinux_2_39_x86_64", "files": {"needsnew.py": ""}},
 {"name": "c1", "version": "1.0", "requires_dist": ["shared==1.0"], "files": {"c1.py": ""}},
 {"name": "c2", "version": "1.0", "requires_dist": ["shared==2.0"], "files": {"c2.py": ""}},
 {"name": "shared", "version": "1.0", "files": {"shared.py": ""}},
 {"name": "shared", "version": "2.0", "files": {"shared.py": ""}},
 {"name": "evil-dotdot", "version": "1.0", "files": {"ok.py": ""}, "hostile": {"extra_members": {"../../evil.py": "x"}}},
 {"name": "evil-absolute", "version": "1.0", "files": {"ok.py": ""}, "hostile": {"extra_members": {"/tmp/evil.py": "x"}}},
 {"name": "evil-symlink", "version": "1.0", "files": {"ok.py": ""}, "hostile": {"symlink": "evil_link"}},
 {"name": "evil-record", "version": "1.0", "files": {"evil_record.py": "print(1)\n"}, "hostile": {"lie_about": "evil_record.py"}},
 {"name": "evil-bomb", "version": "1.0", "files": {"evil_bomb.py": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n"}, "hostile": {"bomb": "evil_bomb.py"}}
]"##;

/// The index, served while this lives.
struct Index {
    url: String,
    root: PathBuf,
    server: Child,
}

impl Drop for Index {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

impl Index {
    fn start(t: &TestDir) -> Index {
        Index::start_with_login(t, None)
    }

    /// An index that answers only requests with this `USER:PASSWORD`.
    fn start_with_login(t: &TestDir, login: Option<&str>) -> Index {
        let spec = t.write("index-spec.json", SPEC);
        let root = t.join("index");
        let port = util::free_port();
        let server = Command::new("python3")
            .arg(util::repo_root().join("tests/util/pypi_index.py"))
            .arg(&spec)
            .arg(&root)
            .arg(port.to_string())
            .args(login)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        util::wait_for_port(&format!("127.0.0.1:{port}"), "the test index");
        Index {
            url: format!("http://127.0.0.1:{port}/simple"),
            root,
            server,
        }
    }

    /// The sha256 the index lists for a file.
    fn sha256(&self, filename: &str) -> String {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(
            fs::read(self.root.join("files").join(filename)).unwrap(),
        ))
    }
}

/// A base whose files say CPython 3.11 (Debian's layout) on glibc 2.36.
fn python_base(t: &TestDir) -> String {
    base(t, "base", DEBIAN_PYTHON)
}

/// Debian's layout: `/usr/bin/python3.11` and the package database.
const DEBIAN_PYTHON: &str = r#"name "pybase"
version "1"
base "scratch"
platform "linux/amd64"
tre #false
layer "python" {
    file "/usr/bin/python3.11" "not really CPython" mode=0o755
    symlink "/usr/bin/python3" "python3.11"
    mkdir "/usr/lib/python3/dist-packages"
    file "/var/lib/dpkg/status" "Package: libc6\nStatus: install ok installed\nVersion: 2.36-9+deb12u9\nArchitecture: amd64\n\nPackage: python3.11\nStatus: install ok installed\nVersion: 3.11.2-6+deb12u6\nArchitecture: amd64\n"
}
"#;

/// The official `python` images' layout: CPython 3.12 under `/usr/local`,
/// its version in `PYTHON_VERSION`, on a Debian glibc 2.36.
const OFFICIAL_PYTHON: &str = r#"name "pybase"
version "1"
base "scratch"
platform "linux/amd64"
tre #false
env "PYTHON_VERSION" "3.12.7"
layer "python" {
    file "/usr/local/bin/python3.12" "not really CPython" mode=0o755
    symlink "/usr/local/bin/python3" "python3.12"
    file "/var/lib/dpkg/status" "Package: libc6\nStatus: install ok installed\nVersion: 2.36-9+deb12u9\nArchitecture: amd64\n"
}
"#;

/// Builds the base recipe `text` in `dir`; returns it as a recipe `base`.
fn base(t: &TestDir, dir: &str, text: &str) -> String {
    let recipe = t.write(&format!("{dir}/image.kdl"), text);
    let out = t.join(&format!("{dir}-out"));
    t.build(&recipe, &out);
    format!("oci:{}@{}", out.display(), tagged_digest(&out, "1"))
}

fn recipe(t: &TestDir, dir: &str, base: &str, python: &str) -> PathBuf {
    t.write(
        &format!("{dir}/image.kdl"),
        &format!(
            "name \"{dir}\"\nversion \"1\"\nbase \"{base}\"\nplatform \"linux/amd64\"\ntre #false\npython {{\n{python}\n}}\n"
        ),
    )
}

/// A recipe in `dir` whose `python` block uses `index` and adds `body`.
fn indexed(t: &TestDir, dir: &str, base: &str, index: &Index, body: &str) -> PathBuf {
    recipe(
        t,
        dir,
        base,
        &format!("    index \"{}\"\n{body}", index.url),
    )
}

fn content(layers: &[Vec<util::TarEntry>], path: &str) -> String {
    text(&find_entry(layers, path).content)
}

#[test]
fn resolves_for_the_image_and_installs_a_venv_that_works_offline() {
    let t = TestDir::new();
    let index = Index::start(&t);
    let base = python_base(&t);
    let path = indexed(
        &t,
        "app",
        &base,
        &index,
        "    install \"alpha[fast]\" \"native\"",
    );
    let out = t.join("out");
    t.build(&path, &out);

    let lock = fs::read_to_string(path.with_extension("lock")).unwrap();
    let wheels: Vec<(String, String)> = names(&locked(&path.with_extension("lock"), "wheel"))
        .into_iter()
        .collect();
    // beta: 3.0 is yanked, 2.5 needs Python 3.12, 4.0rc1 is a pre-release;
    // native: 2.0 has only a cp312 wheel; winonly's marker is false.
    assert_eq!(
        wheels,
        [
            ("alpha", "1.0"),
            ("beta", "2.0"),
            ("gamma", "1.0"),
            ("native", "1.0")
        ]
        .map(|(n, v)| (n.to_owned(), v.to_owned())),
        "{lock}"
    );
    assert!(
        lock.contains("tag=\"cp311-cp311-manylinux_2_17_x86_64\""),
        "{lock}"
    );
    let native = index.sha256("native-1.0-cp311-cp311-manylinux_2_17_x86_64.whl");
    assert!(
        lock.contains(&format!("sha256=\"sha256:{native}\"")),
        "{lock}"
    );

    let layers = layers(&out, "1");
    let site = "opt/venv/lib/python3.11/site-packages";
    assert_eq!(
        content(&layers, &format!("{site}/alpha/__init__.py")),
        "VALUE = 1\n"
    );
    assert_eq!(
        content(&layers, &format!("{site}/beta/__init__.py")),
        "V = 2\n"
    );
    assert_eq!(content(&layers, &format!("{site}/native/_ext.so")), "ELF");
    let cfg = content(&layers, "opt/venv/pyvenv.cfg");
    assert!(
        cfg.contains("home = /usr/bin\n") && cfg.contains("version = 3.11.2\n"),
        "{cfg}"
    );
    let python = find_entry(&layers, "opt/venv/bin/python");
    assert_eq!(python.link.as_deref(), Some("/usr/bin/python3.11"));
    let launcher = find_entry(&layers, "opt/venv/bin/alpha-cli");
    assert_eq!(launcher.mode & 0o777, 0o555);
    let launcher = text(&launcher.content);
    assert!(
        launcher.starts_with("#!/opt/venv/bin/python\n"),
        "{launcher}"
    );
    assert!(
        launcher.contains("from alpha.cli import main"),
        "{launcher}"
    );
    assert_eq!(
        content(&layers, "opt/venv/bin/alpha-tool"),
        "#!/opt/venv/bin/python\nprint('tool')\n"
    );
    let module = find_entry(&layers, &format!("{site}/alpha/cli.py"));
    assert_eq!((module.mode & 0o777, module.uid, module.gid), (0o444, 0, 0));
    assert_eq!(module.mtime, util::EPOCH.parse::<u64>().unwrap());
    assert_eq!(
        content(&layers, &format!("{site}/alpha-1.0.dist-info/INSTALLER")),
        "strata\n"
    );
    let record = content(&layers, &format!("{site}/alpha-1.0.dist-info/RECORD"));
    assert!(
        record.contains("../../../bin/alpha-cli,sha256="),
        "{record}"
    );
    assert!(
        record.contains("alpha-1.0.dist-info/INSTALLER,sha256="),
        "{record}"
    );

    let config = util::config(&out, "1");
    let env: Vec<String> = serde_json::from_value(config["config"]["Env"].clone()).unwrap();
    assert!(
        env.iter().any(|e| e.starts_with("PATH=/opt/venv/bin:")),
        "{env:?}"
    );
    assert!(env.contains(&"VIRTUAL_ENV=/opt/venv".to_owned()), "{env:?}");

    // A locked, offline rebuild needs no index and gives the same image.
    let digest = tagged_digest(&out, "1");
    drop(index);
    let again = t.join("again");
    t.build_with(&path, &again, &["--locked", "--offline"]);
    assert_eq!(tagged_digest(&again, "1"), digest);

    // `--locked` refuses a lock that no longer matches the requirements.
    let changed = util::edit_file(&path, "\"native\"", "\"native\" \"beta<2\"");
    let output = t
        .build_cmd(&changed, &t.join("stale"))
        .arg("--locked")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("does not match the recipe"),
        "{}",
        text(&output.stderr)
    );
}

/// Builds `install` against the index and returns the error.
fn fails(t: &TestDir, base: &str, index: &Index, dir: &str, install: &str) -> String {
    let path = indexed(t, dir, base, index, &format!("    install {install}"));
    let out = t.join(&format!("{dir}-out"));
    let err = t.build_fails(&path, &out);
    assert!(!out.exists(), "a failed build left {}", out.display());
    err
}

#[test]
fn explains_what_cannot_be_installed() {
    let t = TestDir::new();
    let index = Index::start(&t);
    let base = python_base(&t);

    let err = fails(&t, &base, &index, "sdist", "\"sdistonly\"");
    assert!(err.contains("only source distributions"), "{err}");

    let err = fails(&t, &base, &index, "chain", "\"wrapper\"");
    assert!(
        err.contains("`needsnew` has no wheel for this image"),
        "{err}"
    );
    assert!(err.contains("wrapper 1.0 → needsnew"), "{err}");
    assert!(err.contains("cp311-cp311-manylinux_2_36_x86_64"), "{err}");
    assert!(err.contains("cp311-cp311-manylinux_2_39_x86_64"), "{err}");

    let err = fails(&t, &base, &index, "conflict", "\"c1\" \"c2\"");
    assert!(err.contains("cannot be installed together"), "{err}");
    assert!(err.contains("shared"), "{err}");

    let err = fails(&t, &base, &index, "missing", "\"no-such-project\"");
    assert!(
        err.contains("no index has a project `no-such-project`"),
        "{err}"
    );

    let err = fails(
        &t,
        &base,
        &index,
        "url",
        "\"alpha @ https://example.org/alpha.whl\"",
    );
    assert!(
        err.contains("alpha @ https://example.org/alpha.whl"),
        "{err}"
    );
}

#[test]
fn an_image_without_python_is_told_what_to_add() {
    let t = TestDir::new();
    let path = recipe(&t, "none", "scratch", "    install \"alpha\"");
    let err = t.build_fails(&path, &t.join("out"));
    assert!(err.contains("has no Python interpreter"), "{err}");
    assert!(err.contains("install \"python3\""), "{err}");
}

#[test]
fn hostile_wheels_are_refused_before_anything_is_written() {
    let t = TestDir::new();
    let index = Index::start(&t);
    let base = python_base(&t);
    for (name, expected) in [
        ("evil-dotdot", "evil_dotdot-1.0-py3-none-any.whl"),
        ("evil-absolute", "evil_absolute-1.0-py3-none-any.whl"),
        ("evil-symlink", "evil_symlink-1.0-py3-none-any.whl"),
        ("evil-record", "evil_record.py"),
        ("evil-bomb", "evil_bomb.py"),
    ] {
        let err = fails(&t, &base, &index, name, &format!("\"{name}\""));
        assert!(err.contains(expected), "{name}: {err}");
    }
    // A wheel whose bytes are not what the index lists: refused while it
    // streams, and nothing is kept.
    let served = index.root.join("files/beta-1.0-py3-none-any.whl");
    let mut bytes = fs::read(&served).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&served, bytes).unwrap();
    let err = fails(&t, &base, &index, "tampered", "\"beta==1.0\"");
    assert!(err.contains("beta-1.0-py3-none-any.whl"), "{err}");
    assert!(err.contains("does not match its expected sha256"), "{err}");

    // Nothing landed outside the output and the cache.
    assert!(!Path::new("/tmp/evil.py").exists());
    assert!(!t.path().join("evil.py").exists());
}

#[test]
fn hash_pinned_requirements_install_exactly_those_wheels() {
    let t = TestDir::new();
    let index = Index::start(&t);
    let base = python_base(&t);
    let beta = index.sha256("beta-2.0-py3-none-any.whl");
    t.write(
        "pinned/requirements.txt",
        &format!("beta==2.0 \\\n    --hash=sha256:{beta}\n"),
    );
    let path = indexed(
        &t,
        "pinned",
        &base,
        &index,
        "    requirements \"requirements.txt\"",
    );
    t.build(&path, &t.join("pinned-out"));
    let lock = fs::read_to_string(path.with_extension("lock")).unwrap();
    assert!(lock.contains(&format!("sha256:{beta}")), "{lock}");

    t.write(
        "wrong/requirements.txt",
        &format!("beta==2.0 --hash=sha256:{}\n", "0".repeat(64)),
    );
    let path = indexed(
        &t,
        "wrong",
        &base,
        &index,
        "    requirements \"requirements.txt\"",
    );
    let err = t.build_fails(&path, &t.join("wrong-out"));
    assert!(
        err.contains("no wheel of `beta` matches the hashes"),
        "{err}"
    );
    assert!(err.contains("requirements.txt:1"), "{err}");
}

#[test]
fn an_official_python_image_without_venv_gets_its_own_site_packages() {
    let t = TestDir::new();
    let index = Index::start(&t);
    let base = base(&t, "official", OFFICIAL_PYTHON);
    let path = indexed(
        &t,
        "app",
        &base,
        &index,
        "    venv #false\n    install \"alpha\" \"native\"",
    );
    let out = t.join("out");
    t.build(&path, &out);
    let lock = fs::read_to_string(path.with_extension("lock")).unwrap();
    // Python 3.12 now: native 2.0 has a cp312 wheel; beta 2.5 fits too.
    assert!(lock.contains("wheel \"native\" version=\"2.0\""), "{lock}");
    assert!(lock.contains("wheel \"beta\" version=\"2.5\""), "{lock}");
    let layers = layers(&out, "1");
    let site = "usr/local/lib/python3.12/site-packages";
    assert_eq!(
        content(&layers, &format!("{site}/alpha/__init__.py")),
        "VALUE = 1\n"
    );
    let launcher = content(&layers, "usr/local/bin/alpha-cli");
    assert!(
        launcher.starts_with("#!/usr/local/bin/python3.12\n"),
        "{launcher}"
    );
    let config = util::config(&out, "1");
    let env: Vec<String> = serde_json::from_value(config["config"]["Env"].clone()).unwrap();
    assert!(
        !env.iter().any(|e| e.starts_with("VIRTUAL_ENV=")),
        "{env:?}"
    );
}

#[test]
fn index_credentials_are_sent_and_never_written() {
    let t = TestDir::new();
    let index = Index::start_with_login(&t, Some("alice:s3cr3t-pw"));
    let base = python_base(&t);
    let path = indexed(&t, "app", &base, &index, "    install \"alpha\"");
    // Without credentials the index refuses.
    let err = t.build_fails(&path, &t.join("refused"));
    assert!(err.contains("401"), "{err}");
    let out = t.join("out");
    let output = t
        .build_cmd(&path, &out)
        .env("STRATA_PYPI_CREDS", "127.0.0.1=alice:s3cr3t-pw")
        .args(["-vv"])
        .output()
        .unwrap();
    util::assert_success(&output, "strata build with STRATA_PYPI_CREDS");
    for (what, text) in [
        ("stdout", text(&output.stdout)),
        ("stderr", text(&output.stderr)),
        (
            "the lock",
            fs::read_to_string(path.with_extension("lock")).unwrap(),
        ),
    ] {
        assert!(!text.contains("s3cr3t"), "the password is in {what}");
    }
    for (file, bytes) in util::snapshot(&out) {
        assert!(
            !bytes.windows(6).any(|w| w == b"s3cr3t"),
            "the password is in {file}"
        );
    }

    // A login written into the index URL is used, and taken out of it.
    let inline_url = index.url.replacen("http://", "http://alice:s3cr3t-pw@", 1);
    let inline = recipe(
        &t,
        "inline",
        &base,
        &format!("    index \"{inline_url}\"\n    install \"alpha\""),
    );
    let out = t.join("inline-out");
    t.build(&inline, &out);
    let lock = fs::read_to_string(inline.with_extension("lock")).unwrap();
    assert!(!lock.contains("s3cr3t"), "the password is in the lock");
    for (file, bytes) in util::snapshot(&out) {
        assert!(
            !bytes.windows(6).any(|w| w == b"s3cr3t"),
            "the password is in {file}"
        );
    }
}

#[test]
fn libraries_a_wheel_needs_from_the_image_are_checked() {
    let t = TestDir::new();
    let index = Index::start(&t);
    let base = python_base(&t);
    // A real ELF module (the host's zlib) that needs libc.so.6, which this
    // image does not have.
    let path = indexed(&t, "app", &base, &index, "    install \"needslibc\"");
    let output = t.build(&path, &t.join("out"));
    let warnings = text(&output.stderr);
    assert!(
        warnings.contains(
            "warning: linux/amd64: libc.so.6, needed by 1 module(s): /opt/venv/lib/python3.11/site-packages/needslibc/_ext.so (`strata lint`: STR017)"
        ),
        "{warnings}"
    );
    let lint = t
        .strata()
        .args(["lint", "--format", "json"])
        .arg(&path)
        .output()
        .unwrap();
    let json = text(&lint.stdout);
    assert!(
        json.contains("\"STR017\"") && json.contains("libc.so.6"),
        "{json}"
    );
}

#[test]
fn a_wheel_whose_size_the_index_does_not_give_is_shared_through_the_registry_cache() {
    let t = TestDir::new();
    let registry = crate::util::registry::Registry::start();
    let cache = format!("{}/team/strata-cache", registry.addr);
    let base = python_base(&t);
    let runner = |name: &str, path: &Path, args: &[&str]| {
        let output = t
            .strata()
            .env("STRATA_CACHE", t.join(&format!("cache-{name}")))
            .arg("build")
            .arg(path)
            .arg("-o")
            .arg(t.join(&format!("out-{name}")))
            .args(["--cache", &cache])
            .args(args)
            .output()
            .unwrap();
        util::assert_success(&output, "strata build");
    };
    let path = {
        let index = Index::start(&t);
        let path = indexed(&t, "nosize", &base, &index, "    install \"nosize\"");
        runner("a", &path, &[]);
        path
    };
    let lock = fs::read_to_string(path.with_extension("lock")).unwrap();
    let line = lock
        .lines()
        .find(|l| l.contains("wheel \"nosize\""))
        .unwrap();
    assert!(!line.contains("size="), "{line}");
    // The index is gone; `--verify-cache` installs the wheels again rather
    // than take the recorded layers, so the wheel comes from the registry.
    runner("b", &path, &["--locked", "--verify-cache"]);
    assert_eq!(
        tagged_digest(&t.join("out-a"), "1"),
        tagged_digest(&t.join("out-b"), "1")
    );
}
