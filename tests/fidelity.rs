//! Against the real Debian 12 mirror: an image of Debian packages behaves
//! like the Debian system those packages were built for. R and its
//! packages run their own test suite, Python finds a shell, its libraries,
//! its locale and the tools alternatives provide, Java trusts the CA store,
//! a site CA is trusted by curl, Python and git, and the tree matches what
//! real dpkg makes (`mmdebstrap --variant=essential`) outside a checked-in
//! allowlist of intended differences.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::util::{TestDir, json_blob, run, run_read_only};

fn recipe(t: &TestDir, name: &str, body: &str) -> PathBuf {
    t.write(
        &format!("{name}/image.kdl"),
        &format!(
            "name \"{name}\"\nversion \"1.0\"\nbase \"scratch\"\nplatform \"linux/amd64\"\n{body}"
        ),
    )
}

#[test]
fn r_loads_its_packages_plots_and_passes_the_data_table_suite() {
    let t = TestDir::new();
    // No shells, no `which`, no Renviron, no time zone asked for: the
    // Essential set and the packages' configuration provide them.
    let path = recipe(
        &t,
        "r",
        "user \"analyst\" uid=10001 gid=10001\n\
         debian \"bookworm\" {\n    install \"r-base-core\" \"r-cran-dplyr\" \"r-cran-ggplot2\" \"r-cran-data.table\"\n}\n",
    );
    let image = t.build_and_unpack(&path, "1.0");
    let plotted = run_read_only(
        &image,
        10001,
        &[],
        &[
            "/usr/bin/Rscript",
            "-e",
            "suppressMessages(library(dplyr)); library(ggplot2); \
             n <- mtcars %>% filter(cyl == 4) %>% nrow(); \
             p <- ggplot(mtcars, aes(mpg, wt)) + geom_point(); \
             ggsave('/tmp/plot.png', p, width = 4, height = 3); \
             stopifnot(file.size('/tmp/plot.png') > 1000); \
             cat('rows', n, 'zone', Sys.timezone(), '\\n')",
        ],
    );
    assert!(plotted.contains("rows 11 zone Etc/UTC"), "{plotted}");
    let suite = run_read_only(
        &image,
        10001,
        &[],
        &["/usr/bin/Rscript", "-e", "data.table::test.data.table()"],
    );
    let summary = suite
        .lines()
        .find(|l| l.starts_with("All ") && l.contains(" tests "))
        .unwrap_or_default();
    assert!(summary.contains("completed ok"), "{suite}");
}

/// A CA and a server certificate it signed for `localhost`/`127.0.0.1`.
fn site_ca(dir: &Path) {
    let openssl = |args: &[&str]| run(Command::new("openssl").args(args).current_dir(dir));
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "site-ca.crt",
        "-days",
        "30",
        "-subj",
        "/CN=strata test site CA",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    fs::write(
        dir.join("san.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "site-ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "30",
        "-extfile",
        "san.ext",
    ]);
}

/// An HTTPS server on a free loopback port, serving `root`, with the site
/// CA's server certificate; killed (by its PID) on drop.
struct HttpsServer {
    child: Child,
    port: u16,
}

impl HttpsServer {
    fn start(root: &Path, certs: &Path) -> HttpsServer {
        let script = "import http.server, ssl, sys\n\
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n\
            ctx.load_cert_chain(sys.argv[1], sys.argv[2])\n\
            handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=sys.argv[3])\n\
            httpd = http.server.HTTPServer(('127.0.0.1', 0), handler)\n\
            httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)\n\
            print(httpd.server_address[1], flush=True)\n\
            httpd.serve_forever()\n";
        let mut child = Command::new("python3")
            .args(["-c", script])
            .arg(certs.join("server.crt"))
            .arg(certs.join("server.key"))
            .arg(root)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        let mut stdout = child.stdout.take().unwrap();
        let mut byte = [0u8; 1];
        while stdout.read(&mut byte).unwrap() == 1 && byte[0] != b'\n' {
            line.push(byte[0] as char);
        }
        let port = line.trim().parse().expect("the server prints its port");
        HttpsServer { child, port }
    }
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn python_java_and_a_site_ca_work_as_under_dpkg() {
    let t = TestDir::new();
    let certs = t.join("p/certs");
    fs::create_dir_all(&certs).unwrap();
    site_ca(&certs);
    let path = recipe(
        &t,
        "p",
        "user \"analyst\" uid=10001 gid=10001\n\
         debian \"bookworm\" {\n    install \"python3\" \"python3-tz\" \"ca-certificates\" \"xz-utils\" \"curl\" \"git\" \"default-jre-headless\"\n    ca-certificate \"certs/site-ca.crt\"\n}\n",
    );
    let image = t.build_and_unpack(&path, "1.0");

    let checks = "import subprocess, ctypes.util, locale\n\
        print(subprocess.run('echo ok', shell=True, capture_output=True, text=True, check=True).stdout.strip())\n\
        print('libc', ctypes.util.find_library('c'), ctypes.util.find_library('ssl'))\n\
        print('locale', locale.setlocale(locale.LC_ALL, 'C.UTF-8'))\n\
        print('which', subprocess.run('which python3', shell=True, capture_output=True, text=True, check=True).stdout.strip())\n\
        print(subprocess.run(['lzma', '--version'], capture_output=True, text=True, check=True).stdout.splitlines()[0])\n";
    let printed = run_read_only(&image, 10001, &[], &["/usr/bin/python3", "-c", checks]);
    for expected in [
        "ok\n",
        "libc libc.so.6 libssl.so.3\n",
        "locale C.UTF-8\n",
        "which /usr/bin/python3\n",
        "xz (XZ Utils)",
    ] {
        assert!(printed.contains(expected), "{expected:?} in {printed}");
    }
    // `-W error`: a module whose source raises a SyntaxWarning imports from
    // its byte-code, as under dpkg.
    run_read_only(
        &image,
        10001,
        &[],
        &["/usr/bin/python3", "-W", "error", "-c", "import pytz"],
    );

    let java = run_read_only(&image, 10001, &[], &["/bin/sh", "-c", "java -version 2>&1"]);
    assert!(java.contains("openjdk version \"17"), "{java}");
    let keystore = run_read_only(
        &image,
        10001,
        &[],
        &[
            "/usr/bin/keytool",
            "-list",
            "-cacerts",
            "-storepass",
            "changeit",
        ],
    );
    assert!(keystore.contains("debian:site-ca.pem"), "{keystore}");
    assert!(keystore.contains("trustedCertEntry"), "{keystore}");

    // The site CA, against a server on loopback that presents a certificate
    // it signed: a bare git repository served over HTTPS.
    let served = t.join("served");
    fs::create_dir_all(&served).unwrap();
    fs::write(served.join("hello.txt"), "hello from the site\n").unwrap();
    let repo = served.join("repo.git");
    run(Command::new("git")
        .args(["init", "--quiet", "--bare", "--initial-branch=main"])
        .arg(&repo));
    let work = t.join("work");
    run(Command::new("git")
        .args(["init", "--quiet", "--initial-branch=main"])
        .arg(&work));
    fs::write(work.join("README"), "site repository\n").unwrap();
    for args in [
        &["add", "README"][..],
        &["commit", "--quiet", "-m", "first"],
        &["push", "--quiet", repo.to_str().unwrap(), "main"],
    ] {
        run(Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.org"])
            .args(args)
            .current_dir(&work));
    }
    run(Command::new("git")
        .arg("update-server-info")
        .current_dir(&repo));
    let server = HttpsServer::start(&served, &certs);
    let url = format!("https://localhost:{}", server.port);
    let net = ["--share-net"];
    let curl = run_read_only(
        &image,
        10001,
        &net,
        &["/usr/bin/curl", "-sS", &format!("{url}/hello.txt")],
    );
    assert_eq!(curl, "hello from the site\n");
    let python = run_read_only(
        &image,
        10001,
        &net,
        &[
            "/usr/bin/python3",
            "-c",
            &format!(
                "import urllib.request; print(urllib.request.urlopen('{url}/hello.txt').read().decode(), end='')"
            ),
        ],
    );
    assert_eq!(python, "hello from the site\n");
    let cloned = run_read_only(
        &image,
        10001,
        &net,
        &[
            "/bin/sh",
            "-c",
            &format!("git clone --quiet {url}/repo.git /tmp/clone && cat /tmp/clone/README"),
        ],
    );
    assert_eq!(cloned, "site repository\n");
}

/// What is at each path of a tree: kind, mode, owner and content digest or
/// link target.
type Tree = BTreeMap<String, (char, u32, u64, u64, String)>;

fn read_tar(reader: impl Read, tree: &mut Tree) {
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let path = path
            .trim_start_matches("./")
            .trim_end_matches('/')
            .to_owned();
        if path.is_empty() {
            continue;
        }
        let header = entry.header();
        let (mode, uid, gid) = (
            header.mode().unwrap() & 0o7777,
            header.uid().unwrap(),
            header.gid().unwrap(),
        );
        let (kind, what) = match header.entry_type() {
            tar::EntryType::Directory => ('d', String::new()),
            tar::EntryType::Symlink => (
                'l',
                entry
                    .link_name()
                    .unwrap()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
            ),
            tar::EntryType::Link => {
                // A hard link has its target's content.
                let target = entry
                    .link_name()
                    .unwrap()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                let target = target.trim_start_matches("./").to_owned();
                let what = tree.get(&target).map(|e| e.4.clone()).unwrap_or_default();
                ('f', what)
            }
            tar::EntryType::Regular => {
                let mut bytes = Vec::new();
                entry.read_to_end(&mut bytes).unwrap();
                (
                    'f',
                    hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)),
                )
            }
            _ => ('o', String::new()),
        };
        tree.insert(path, (kind, mode, uid, gid, what));
    }
}

/// The image's layer tars, in order, decompressed.
fn layers(layout: &Path) -> Vec<Box<dyn Read>> {
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let manifest_digest = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mediaType"] == "application/vnd.oci.image.manifest.v1+json")
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    let manifest = json_blob(layout, &manifest_digest);
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|layer| {
            let digest = layer["digest"].as_str().unwrap();
            let file = fs::File::open(layout.join("blobs/sha256").join(&digest[7..])).unwrap();
            let reader: Box<dyn Read> = if layer["mediaType"].as_str().unwrap().ends_with("zstd") {
                Box::new(zstd::Decoder::new(file).unwrap())
            } else {
                Box::new(flate2::read::GzDecoder::new(file))
            };
            reader
        })
        .collect()
}

/// The content of `path` in a tar, if it is there.
fn file_in_tar(reader: impl Read, path: &str) -> Option<Vec<u8>> {
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry
            .path()
            .unwrap()
            .to_string_lossy()
            .trim_start_matches("./")
            == path
        {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            return Some(bytes);
        }
    }
    None
}

/// `tests/data/essential-allowlist`: glob patterns of paths whose difference
/// is intended, each with the reason in a comment.
fn allowlist() -> globset::GlobSet {
    let text = fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/essential-allowlist"),
    )
    .unwrap();
    let mut set = globset::GlobSetBuilder::new();
    for line in text.lines() {
        let pattern = line.split('#').next().unwrap().trim();
        if !pattern.is_empty() {
            set.add(
                globset::GlobBuilder::new(pattern)
                    .literal_separator(true)
                    .build()
                    .unwrap(),
            );
        }
    }
    set.build().unwrap()
}

/// `ldconfig -p` of a cache, without the line naming the program that wrote
/// it: strata signs its caches as its own.
fn ld_cache_listing(bytes_of: &Path) -> String {
    let out = run(Command::new("ldconfig").arg("-p").arg("-C").arg(bytes_of));
    // The first line names the file; the last, the program that wrote it.
    out.lines()
        .map(|l| l.split(" in cache ").next().unwrap_or(l))
        .filter(|l| !l.starts_with("Cache generated by"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `/etc/shadow` without each line's day of last change (its third field).
fn undated_shadow(bytes: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(|line| {
            let mut fields: Vec<&str> = line.split(':').collect();
            if let Some(day) = fields.get_mut(2) {
                *day = "";
            }
            fields.join(":")
        })
        .collect()
}

#[test]
fn the_tree_matches_mmdebstrap_essential_outside_the_allowlist() {
    let t = TestDir::new();
    // Packages whose scripts do much: alternatives, ucf, debconf, system
    // users and groups (in request order, as apt configures them), shadow
    // passwords, stat overrides, fontconfig links, PAM.
    let packages = [
        "python3",
        "ca-certificates",
        "tzdata",
        "xz-utils",
        "libpaper-utils",
        "openssh-client",
        "dbus",
        "fontconfig",
        "sudo",
        "procps",
        "less",
        "gnupg",
    ];
    let quoted: Vec<String> = packages.iter().map(|p| format!("\"{p}\"")).collect();
    let path = recipe(
        &t,
        "c",
        &format!(
            "tre #false\ndebian \"bookworm\" {{\n    install {}\n}}\n",
            quoted.join(" ")
        ),
    );
    // dpkg dates the shadow lines of the accounts it creates by the day it
    // ran, which is today; strata by the package stage's time (the lock's
    // newest release, or the epoch when that is earlier): the comparison
    // below leaves that field out.
    let today = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 86_400
        * 86_400;
    let layout = t.join("out");
    let output = t
        .build_cmd(&path, &layout)
        .env("SOURCE_DATE_EPOCH", today.to_string())
        .output()
        .unwrap();
    crate::util::assert_success(&output, "strata build");
    let dpkg_tar = t.join("dpkg.tar");
    run(Command::new("mmdebstrap")
        .args(["--quiet", "--variant=essential"])
        .arg(format!("--include={}", packages.join(",")))
        .arg("bookworm")
        .arg(&dpkg_tar)
        .arg("deb http://deb.debian.org/debian bookworm main")
        .arg("deb http://deb.debian.org/debian bookworm-updates main")
        .arg("deb http://deb.debian.org/debian-security bookworm-security main"));

    let mut ours = Tree::new();
    for layer in layers(&layout) {
        read_tar(layer, &mut ours);
    }
    let mut theirs = Tree::new();
    read_tar(fs::File::open(&dpkg_tar).unwrap(), &mut theirs);

    // The same packages, at the same versions: dpkg's database against the lock.
    let status = String::from_utf8(
        file_in_tar(fs::File::open(&dpkg_tar).unwrap(), "var/lib/dpkg/status").unwrap(),
    )
    .unwrap();
    let installed: std::collections::BTreeSet<(String, String)> = status
        .split("\n\n")
        .filter_map(|s| {
            let field = |name: &str| s.lines().find_map(|l| l.strip_prefix(name));
            Some((
                field("Package: ")?.to_owned(),
                field("Version: ")?.to_owned(),
            ))
        })
        .collect();
    let lock = fs::read_to_string(t.join("c/image.lock")).unwrap();
    let locked: std::collections::BTreeSet<(String, String)> = lock
        .lines()
        .filter_map(|l| {
            let l = l.trim().strip_prefix("package \"")?;
            let name = l.split('"').next()?;
            let version = l.split("version=\"").nth(1)?.split('"').next()?;
            Some((name.to_owned(), version.to_owned()))
        })
        .collect();
    assert_eq!(installed, locked, "apt and strata chose different packages");

    let allowed = allowlist();
    let mut differences = Vec::new();
    for path in ours
        .keys()
        .chain(theirs.keys())
        .collect::<std::collections::BTreeSet<_>>()
    {
        let (a, b) = (ours.get(path), theirs.get(path));
        if a == b || allowed.is_match(path) {
            continue;
        }
        // Byte-code: strata writes PEP 552 unchecked-hash `.pyc` files
        // (reproducible, no source mtime inside) where py3compile writes
        // timestamped ones. The same files must exist, only their bytes differ.
        if let (Some(x), Some(y)) = (a, b)
            && path.ends_with(".pyc")
            && (x.0, x.1, x.2, x.3) == (y.0, y.1, y.2, y.3)
        {
            continue;
        }
        if path == "etc/shadow" {
            let read = |tar: Option<Vec<u8>>| undated_shadow(&tar.unwrap());
            let ours = read(
                layers(&layout)
                    .into_iter()
                    .filter_map(|l| file_in_tar(l, path))
                    .last(),
            );
            let theirs = read(file_in_tar(fs::File::open(&dpkg_tar).unwrap(), path));
            if ours == theirs {
                continue;
            }
        }
        if path == "etc/ld.so.cache" {
            let (x, y) = (t.join("ours.cache"), t.join("theirs.cache"));
            let cache = layers(&layout)
                .into_iter()
                .find_map(|l| file_in_tar(l, path));
            fs::write(&x, cache.unwrap()).unwrap();
            fs::write(
                &y,
                file_in_tar(fs::File::open(&dpkg_tar).unwrap(), path).unwrap(),
            )
            .unwrap();
            if ld_cache_listing(&x) == ld_cache_listing(&y) {
                continue;
            }
        }
        differences.push(format!("{path}: strata {a:?}, dpkg {b:?}"));
    }
    assert!(
        differences.is_empty(),
        "{} difference(s) outside tests/data/essential-allowlist:\n{}",
        differences.len(),
        differences.join("\n")
    );
}
