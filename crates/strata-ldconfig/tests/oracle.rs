//! The real ldconfig is the oracle: a root tree built from this machine's
//! libraries is given to `ldconfig -r ROOT -X` and to `ld_so_cache`, and the
//! two caches must be the same bytes. Needs glibc 2.36's `/usr/sbin/ldconfig`
//! on x86-64 (Debian 12); elsewhere the tests say so and pass.

use std::fs;
use std::io;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use strata_ldconfig::{DirEntry, Kind, Tree, ld_so_cache, ld_so_cache_generated_by};

const LDCONFIG: &str = "/usr/sbin/ldconfig";
const HOST_LIBS: &str = "/usr/lib/x86_64-linux-gnu";

/// A tree over a host directory that stands for the image's root.
struct HostTree(PathBuf);

impl HostTree {
    fn host(&self, path: &str) -> PathBuf {
        self.0.join(path.trim_start_matches('/'))
    }
}

impl Tree for HostTree {
    type File = fs::File;

    fn read_dir(&self, dir: &str) -> Option<Vec<DirEntry>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(self.host(dir)).ok()? {
            let entry = entry.ok()?;
            let file_type = entry.file_type().ok()?;
            let kind = if file_type.is_symlink() {
                let target = fs::read_link(entry.path()).ok()?;
                Kind::Symlink(target.to_string_lossy().into_owned())
            } else if file_type.is_dir() {
                Kind::Dir
            } else if file_type.is_file() {
                Kind::File
            } else {
                continue;
            };
            out.push(DirEntry {
                name: entry.file_name().to_string_lossy().into_owned(),
                kind,
            });
        }
        Some(out)
    }

    fn open(&self, path: &str) -> Option<io::Result<fs::File>> {
        match fs::File::open(self.host(path)) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            other => Some(other),
        }
    }

    fn read_text(&self, path: &str) -> Option<String> {
        let path = self.host(path);
        if fs::metadata(&path).ok()?.len() > 1 << 20 {
            return None;
        }
        fs::read_to_string(path).ok()
    }
}

/// The tests compare with the real ldconfig of an x86-64 Debian 12 (what
/// `.ci/run` runs on); anywhere else they fail rather than pass untested.
fn require_oracle() {
    assert!(
        cfg!(all(target_arch = "x86_64", target_os = "linux"))
            && Path::new(LDCONFIG).exists()
            && Path::new(HOST_LIBS).join("libc.so.6").exists(),
        "these tests need {LDCONFIG} and {HOST_LIBS} of an x86-64 Debian 12 (libc-bin)"
    );
}

fn write(root: &Path, path: &str, contents: &[u8]) {
    let path = root.join(path.trim_start_matches('/'));
    fs::create_dir_all(path.parent().expect("has a parent")).expect("mkdir");
    fs::write(path, contents).expect("write");
}

fn link(root: &Path, path: &str, target: &str) {
    let path = root.join(path.trim_start_matches('/'));
    fs::create_dir_all(path.parent().expect("has a parent")).expect("mkdir");
    symlink(target, path).expect("symlink");
}

fn host_lib(name: &str) -> Vec<u8> {
    fs::read(Path::new(HOST_LIBS).join(name)).expect("host library")
}

/// A merged-/usr Debian root: real libraries, their symlinks (relative and
/// absolute), linker scripts, glibc's own configuration, and the odd cases.
fn build_root(root: &Path) {
    let usr_lib = "/usr/lib/x86_64-linux-gnu";
    fs::create_dir_all(root.join("usr/lib/x86_64-linux-gnu")).expect("mkdir");
    link(root, "/lib", "usr/lib");
    link(root, "/lib64", "usr/lib64");
    fs::create_dir_all(root.join("usr/lib64")).expect("mkdir");
    for entry in fs::read_dir(HOST_LIBS).expect("host libraries") {
        let entry = entry.expect("entry");
        let name = entry.file_name().to_string_lossy().into_owned();
        let wanted = [
            "libc.so",
            "libm.so",
            "libz.so",
            "libbz2.so",
            "libexpat.so",
            "libffi.so",
            "libgcc_s.so",
            "libpthread.so",
            "libdl.so",
            "libstdc++.so",
            "ld-linux-x86-64.so",
        ];
        if !wanted.iter().any(|w| name.starts_with(w)) {
            continue;
        }
        let path = format!("{usr_lib}/{name}");
        match fs::read_link(entry.path()) {
            Ok(target) => link(root, &path, &target.to_string_lossy()),
            Err(_) => write(root, &path, &host_lib(&name)),
        }
    }
    link(
        root,
        "/usr/lib64/ld-linux-x86-64.so.2",
        "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
    );

    // A library under another file name, found through ld.so.conf.d.
    write(
        root,
        "/usr/local/lib/libfoo.so.1",
        &host_lib("libz.so.1.2.13"),
    );
    write(
        root,
        "/usr/local/lib/libbar.so.2",
        &host_lib("libffi.so.8.1.2"),
    );
    link(root, "/usr/local/lib/libbar.so", "libbar.so.2");
    // The same directory again, through a symlink: searched once.
    link(root, "/opt/locallib", "/usr/local/lib");
    write(
        root,
        "/etc/ld.so.conf",
        b"include /etc/ld.so.conf.d/*.conf\n\n# a comment\nhwcap 0 nosegneg\n",
    );
    write(
        root,
        "/etc/ld.so.conf.d/libc.conf",
        b"# libc default configuration\n/usr/local/lib\n",
    );
    write(
        root,
        "/etc/ld.so.conf.d/opt.conf",
        b"  /opt/locallib/ # trailing slash and comment\n/nonexistent\n",
    );
    write(
        root,
        "/etc/ld.so.conf.d/x86_64-linux-gnu.conf",
        b"# Multiarch support\n/usr/local/lib/x86_64-linux-gnu\n/lib/x86_64-linux-gnu\n/usr/lib/x86_64-linux-gnu\n",
    );
    write(
        root,
        "/etc/ld.so.conf.d/ignored.conf.dpkg-old",
        b"/ignored\n",
    );
    fs::create_dir_all(root.join("ignored")).expect("mkdir");
    write(
        root,
        "/ignored/libignored.so.1",
        &host_lib("libz.so.1.2.13"),
    );

    // Named like libraries, but not: skipped without failing.
    write(
        root,
        &format!("{usr_lib}/libbogus.so.1"),
        b"this is not an ELF file at all, just text\n",
    );
    write(root, &format!("{usr_lib}/libempty.so.1"), b"");
    let expat = host_lib("libexpat.so.1.8.10");
    write(root, &format!("{usr_lib}/libtrunc.so.1"), &expat[..4096]);
    write(root, &format!("{usr_lib}/libtiny.so.1"), &expat[..40]);
    link(root, &format!("{usr_lib}/libgone.so.1"), "libgone.so.1.0");
    link(root, &format!("{usr_lib}/libloop.so.1"), "libloop.so.1");
    // A link whose name is neither the soname nor a "libfoo.so" for ld(1).
    link(root, &format!("{usr_lib}/libzed.so.9"), "libz.so.1.2.13");

    // A legacy hwcap subdirectory and a glibc-hwcaps one.
    write(
        root,
        &format!("{usr_lib}/tls/libz.so.1"),
        &host_lib("libz.so.1.2.13"),
    );
    write(
        root,
        &format!("{usr_lib}/glibc-hwcaps/x86-64-v3/libffi.so.8"),
        &host_lib("libffi.so.8.1.2"),
    );
    fs::create_dir_all(root.join("usr/lib/x86_64-linux-gnu/glibc-hwcaps/x86-64-v2"))
        .expect("mkdir");
}

fn run_ldconfig(args: &[&str]) -> String {
    let out = Command::new(LDCONFIG)
        .args(args)
        .env_remove("LD_HWCAP_MASK")
        .env("LC_ALL", "C")
        .output()
        .expect("run ldconfig");
    assert!(
        out.status.success(),
        "ldconfig {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn print_cache(path: &Path) -> String {
    run_ldconfig(&["-p", "-C", &path.to_string_lossy()])
}

#[test]
fn same_bytes_as_ldconfig() {
    require_oracle();
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("root");
    build_root(&root);

    run_ldconfig(&["-r", &root.to_string_lossy(), "-X"]);
    let oracle_path = root.join("etc/ld.so.cache");
    let oracle = fs::read(&oracle_path).expect("ldconfig wrote a cache");
    let listing = print_cache(&oracle_path);
    let generator = listing
        .lines()
        .find_map(|l| l.strip_prefix("Cache generated by: "))
        .expect("a generator string");

    // Not a vacuous comparison: the odd cases are in ldconfig's cache.
    for want in [
        "libc.so.6 ",
        "hwcap: \"x86-64-v3\"",
        "hwcap: 0x8000000000000000",
        "=> /usr/local/lib/libffi.so.8",
    ] {
        assert!(listing.contains(want), "no {want:?} in:\n{listing}");
    }

    let ours =
        ld_so_cache_generated_by(&HostTree(root.clone()), "amd64", generator).expect("cache");
    if ours != oracle {
        let ours_path = dir.path().join("ours.cache");
        fs::write(&ours_path, &ours).expect("write");
        panic!(
            "caches differ ({} bytes from ldconfig, {} ours)\n--- ldconfig:\n{listing}\n--- ours:\n{}",
            oracle.len(),
            ours.len(),
            print_cache(&ours_path)
        );
    }
}

#[test]
fn ldconfig_reads_our_cache() {
    require_oracle();
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("root");
    build_root(&root);
    let cache = ld_so_cache(&HostTree(root), "amd64").expect("cache");
    let path = dir.path().join("ld.so.cache");
    fs::write(&path, cache).expect("write");
    let listing = print_cache(&path);
    for want in [
        "\tlibc.so.6 (libc6,x86-64) => /lib/x86_64-linux-gnu/libc.so.6\n",
        "\tlibz.so.1 (libc6,x86-64) => /usr/local/lib/libz.so.1\n",
        "\tlibz.so.1 (libc6,x86-64) => /lib/x86_64-linux-gnu/libz.so.1\n",
        "\tlibz.so (libc6,x86-64) => /lib/x86_64-linux-gnu/libz.so\n",
        "\tlibffi.so.8 (libc6,x86-64, hwcap: \"x86-64-v3\") => /lib/x86_64-linux-gnu/glibc-hwcaps/x86-64-v3/libffi.so.8\n",
        "Cache generated by: strata-ldconfig",
    ] {
        assert!(listing.contains(want), "no {want:?} in:\n{listing}");
    }
    for never in [
        "libbogus",
        "libempty",
        "libtrunc",
        "libtiny",
        "libgone",
        "libignored",
        "/usr/lib/x86_64-linux-gnu/",
    ] {
        assert!(!listing.contains(never), "{never:?} in:\n{listing}");
    }
}

/// Mirrors `from` (a host directory) at `to`: directories made, symlinks
/// copied as they are, files hard-linked (copied across file systems).
fn mirror(from: &Path, to: &Path, recurse: bool) {
    fs::create_dir_all(to).expect("mkdir");
    for entry in fs::read_dir(from).expect("read host dir") {
        let entry = entry.expect("entry");
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let file_type = entry.file_type().expect("file type");
        if file_type.is_symlink() {
            symlink(fs::read_link(&src).expect("readlink"), &dst).expect("symlink");
        } else if file_type.is_dir() {
            if recurse {
                mirror(&src, &dst, true);
            }
        } else if file_type.is_file() && fs::hard_link(&src, &dst).is_err() {
            fs::copy(&src, &dst).expect("copy");
        }
    }
}

/// Every library of this machine, with its own ld.so.conf.
#[test]
fn same_bytes_for_all_host_libraries() {
    require_oracle();
    let dir = tempfile::tempdir_in("/tmp").expect("temp dir");
    let root = dir.path().join("root");
    mirror(
        Path::new(HOST_LIBS),
        &root.join("usr/lib/x86_64-linux-gnu"),
        true,
    );
    mirror(Path::new("/usr/lib"), &root.join("usr/lib"), false);
    mirror(
        Path::new("/etc/ld.so.conf.d"),
        &root.join("etc/ld.so.conf.d"),
        false,
    );
    if Path::new("/usr/local/lib").is_dir() {
        mirror(
            Path::new("/usr/local/lib"),
            &root.join("usr/local/lib"),
            false,
        );
    }
    fs::copy("/etc/ld.so.conf", root.join("etc/ld.so.conf")).expect("ld.so.conf");
    link(&root, "/lib", "usr/lib");

    run_ldconfig(&["-r", &root.to_string_lossy(), "-X"]);
    let oracle_path = root.join("etc/ld.so.cache");
    let oracle = fs::read(&oracle_path).expect("ldconfig wrote a cache");
    let listing = print_cache(&oracle_path);
    let generator = listing
        .lines()
        .find_map(|l| l.strip_prefix("Cache generated by: "))
        .expect("a generator string");
    let ours =
        ld_so_cache_generated_by(&HostTree(root.clone()), "amd64", generator).expect("cache");
    if ours != oracle {
        let ours_path = dir.path().join("ours.cache");
        fs::write(&ours_path, &ours).expect("write");
        let theirs = dir.path().join("theirs.txt");
        fs::write(&theirs, &listing).expect("write");
        fs::write(dir.path().join("ours.txt"), print_cache(&ours_path)).expect("write");
        let kept = dir.keep();
        panic!("caches differ: see {}", kept.display());
    }
}
