//! A local signed apt repository, made by the test: packages built with
//! `dpkg-deb`, `Packages` and `Release` written here, `InRelease` signed with
//! a throwaway key by gpg, served over HTTP on a free loopback port.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use sha2::Digest as _;

use super::{TestDir, run};

pub struct AptRepo {
    pub root: PathBuf,
    gnupg: PathBuf,
    work: PathBuf,
    /// Paragraphs of the `Packages` index, in the order added.
    paragraphs: Vec<String>,
    server: Option<(Child, u16)>,
}

/// A package to build: control fields beyond the basics, and files.
pub struct Pkg<'a> {
    pub name: &'a str,
    pub version: &'a str,
    pub arch: &'a str,
    pub fields: &'a [(&'a str, &'a str)],
    /// Image paths with content and mode; `DEBIAN/NAME` goes into the control
    /// archive (maintainer scripts).
    pub files: &'a [(&'a str, &'a [u8], u32)],
}

impl AptRepo {
    pub fn new(t: &TestDir, name: &str) -> AptRepo {
        let root = t.join(&format!("{name}/repo"));
        let gnupg = t.join(&format!("{name}/gnupg"));
        let work = t.join(&format!("{name}/work"));
        for dir in [&root, &gnupg, &work] {
            fs::create_dir_all(dir).unwrap();
        }
        fs::set_permissions(&gnupg, fs::Permissions::from_mode(0o700)).unwrap();
        let repo = AptRepo {
            root,
            gnupg,
            work,
            paragraphs: Vec::new(),
            server: None,
        };
        run(repo.gpg().args([
            "--quick-gen-key",
            "--passphrase",
            "",
            "strata test <test@example.org>",
            "ed25519",
            "sign",
            "1y",
        ]));
        repo
    }

    fn gpg(&self) -> Command {
        let mut cmd = Command::new("gpg");
        cmd.env("GNUPGHOME", &self.gnupg)
            .args(["--batch", "--yes", "--pinentry-mode", "loopback"]);
        cmd
    }

    /// Writes this repository's public key (binary) to `dest`.
    pub fn export_key(&self, dest: &Path) {
        let key = self.gpg().arg("--export").output().unwrap();
        assert!(key.status.success() && !key.stdout.is_empty());
        fs::create_dir_all(dest.parent().unwrap()).unwrap();
        fs::write(dest, key.stdout).unwrap();
    }

    pub fn add(&mut self, pkg: &Pkg) {
        let tree = self.work.join(format!("{}_{}", pkg.name, pkg.version));
        let _ = fs::remove_dir_all(&tree);
        fs::create_dir_all(tree.join("DEBIAN")).unwrap();
        let mut control = format!(
            "Package: {}\nVersion: {}\nArchitecture: {}\nMaintainer: strata tests <test@example.org>\nDescription: test package {}\n",
            pkg.name, pkg.version, pkg.arch, pkg.name
        );
        for (k, v) in pkg.fields {
            control.push_str(&format!("{k}: {v}\n"));
        }
        fs::write(tree.join("DEBIAN/control"), &control).unwrap();
        let mut md5sums = String::new();
        for (path, content, mode) in pkg.files {
            let dest = tree.join(path.trim_start_matches('/'));
            // `DEBIAN/postinst` and the like go into the control archive.
            if path.starts_with("DEBIAN/") {
                fs::write(&dest, content).unwrap();
                fs::set_permissions(&dest, fs::Permissions::from_mode(*mode)).unwrap();
                continue;
            }
            fs::create_dir_all(dest.parent().unwrap()).unwrap();
            fs::write(&dest, content).unwrap();
            fs::set_permissions(&dest, fs::Permissions::from_mode(*mode)).unwrap();
            md5sums.push_str(&format!(
                "{}  {}\n",
                hex::encode(md5::Md5::digest(content)),
                path.trim_start_matches('/')
            ));
        }
        fs::write(tree.join("DEBIAN/md5sums"), md5sums).unwrap();
        let deb = self.work.join(format!("{}_{}.deb", pkg.name, pkg.version));
        run(Command::new("dpkg-deb")
            .args(["--root-owner-group", "-Zgzip", "--build"])
            .arg(&tree)
            .arg(&deb));
        self.add_deb(pkg, control, &fs::read(&deb).unwrap());
    }

    /// Lists `bytes` as the `.deb` of `pkg`, whatever they hold, under the
    /// `control` paragraph: the index vouches for them as for any package.
    /// A package with a `Source` field goes in its source's pool folder, as
    /// in Debian's archive; others directly under `pool/main`.
    pub fn add_deb(&mut self, pkg: &Pkg, mut control: String, bytes: &[u8]) {
        let file = format!("{}_{}_{}.deb", pkg.name, pkg.version, pkg.arch);
        let rel = match pkg.fields.iter().find(|(field, _)| *field == "Source") {
            Some((_, source)) => format!("pool/main/{}/{source}/{file}", &source[..1]),
            None => format!("pool/main/{file}"),
        };
        let deb = self.root.join(&rel);
        fs::create_dir_all(deb.parent().unwrap()).unwrap();
        fs::write(&deb, bytes).unwrap();
        control.push_str(&format!(
            "Filename: {rel}\nSize: {}\nSHA256: {}\n",
            bytes.len(),
            hex::encode(sha2::Sha256::digest(bytes))
        ));
        self.paragraphs.push(control);
    }

    /// Writes `Packages`, `Release` and the signed `InRelease` for `suite`.
    pub fn publish(&self, suite: &str) {
        let dists = self.root.join("dists").join(suite);
        let index_dir = dists.join("main/binary-amd64");
        fs::create_dir_all(&index_dir).unwrap();
        let packages = self.paragraphs.join("\n");
        fs::write(index_dir.join("Packages"), &packages).unwrap();
        let sha = |b: &[u8]| hex::encode(sha2::Sha256::digest(b));
        let release = format!(
            "Origin: strata-test\nSuite: {suite}\nCodename: {suite}\nDate: Mon, 01 Jan 2024 00:00:00 UTC\nArchitectures: amd64\nComponents: main\nSHA256:\n {} {} main/binary-amd64/Packages\n",
            sha(packages.as_bytes()),
            packages.len()
        );
        fs::write(dists.join("Release"), &release).unwrap();
        run(self
            .gpg()
            .arg("--clearsign")
            .arg("--digest-algo")
            .arg("SHA256")
            .arg("-o")
            .arg(dists.join("InRelease"))
            .arg(dists.join("Release")));
    }

    /// Serves the repository on a free loopback port; returns its URL.
    pub fn serve(&mut self) -> String {
        let port = super::free_port();
        let args = [
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            &port.to_string(),
        ]
        .map(String::from);
        self.serve_with(port, &args)
    }

    /// Serves the repository behind an HTTP basic `login` (`USER:PASSWORD`),
    /// as a private mirror is; returns its URL, without the login.
    pub fn serve_with_login(&mut self, login: &str) -> String {
        let port = super::free_port();
        let script = super::repo_root().join("tests/util/login_server.py");
        let args = [
            script.display().to_string(),
            port.to_string(),
            login.to_owned(),
        ];
        self.serve_with(port, &args)
    }

    fn serve_with(&mut self, port: u16, args: &[String]) -> String {
        let child = Command::new("python3")
            .args(args)
            .current_dir(&self.root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        super::wait_for_port(&format!("127.0.0.1:{port}"), "the test repository");
        self.server = Some((child, port));
        format!("http://127.0.0.1:{port}")
    }
}

impl Drop for AptRepo {
    fn drop(&mut self) {
        if let Some((child, _)) = &mut self.server {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A repository of `packages`, published as `stable`, signed, served on a
/// loopback port, its public key written to `key`: the repository (keep it:
/// dropping it stops the server) and its URL.
pub fn serve_signed(t: &TestDir, name: &str, packages: &[Pkg], key: &Path) -> (AptRepo, String) {
    let mut repo = AptRepo::new(t, name);
    for package in packages {
        repo.add(package);
    }
    repo.publish("stable");
    let url = repo.serve();
    repo.export_key(key);
    (repo, url)
}
