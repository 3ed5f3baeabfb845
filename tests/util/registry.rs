//! The reference registry (`docker-registry`) on a free loopback port:
//! plain HTTP, TLS with a throwaway CA and bcrypt htpasswd auth, or bearer
//! tokens from a small token service (`token_server.py`, real JWTs the
//! registry verifies). Stopped by PID when dropped; tests may stop and
//! restart the registry.
//!
//! Also "build, push, read back": `strata push` to it and skopeo's view of
//! what arrived, with the registry's CA and credentials filled in.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

use super::{TestDir, assert_success, free_port, run, snapshot, tagged_digest, wait_for_port};

pub struct Registry {
    child: Option<Child>,
    token_service: Option<Child>,
    pub addr: String,
    config: PathBuf,
    dir: tempfile::TempDir,
    tls: bool,
    /// `user:password`, where the registry wants credentials.
    creds: Option<String>,
}

impl Registry {
    pub fn start() -> Registry {
        Registry::launch("")
    }

    /// TLS with a certificate for 127.0.0.1 from a fresh CA, and `user` /
    /// `password` required (htpasswd, bcrypt).
    pub fn start_tls(user: &str, password: &str) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let p = |name: &str| dir.path().join(name).display().to_string();
        let openssl = |args: &[&str]| run(Command::new("openssl").args(args));
        fs::create_dir_all(dir.path().join("certs")).unwrap();
        self_signed(&p("ca.key"), &p("certs/ca.crt"), "/CN=strata test CA");
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            &p("server.key"),
            "-out",
            &p("server.csr"),
        ]);
        fs::write(
            dir.path().join("san.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
        )
        .unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            &p("server.csr"),
            "-CA",
            &p("certs/ca.crt"),
            "-CAkey",
            &p("ca.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &p("san.ext"),
            "-out",
            &p("server.crt"),
        ]);
        let htpasswd = run(Command::new("htpasswd").args(["-Bbn", user, password]));
        fs::write(dir.path().join("htpasswd"), htpasswd).unwrap();
        let extra = format!(
            "  tls:\n    certificate: {}\n    key: {}\nauth:\n  htpasswd:\n    realm: strata-test\n    path: {}\n",
            p("server.crt"),
            p("server.key"),
            p("htpasswd")
        );
        let mut registry = Registry::launch_in(dir, &extra, true);
        registry.creds = Some(format!("{user}:{password}"));
        registry
    }

    /// Plain HTTP with `auth: token`: a token service on another loopback
    /// port grants what `user`/`password` ask for, and nothing to anonymous
    /// callers.
    pub fn start_token(user: &str, password: &str) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let p = |name: &str| dir.path().join(name).display().to_string();
        self_signed(&p("token.key"), &p("token.crt"), "/CN=strata test tokens");
        let port = free_port();
        let service = Command::new("/usr/bin/python3")
            .arg(super::repo_root().join("tests/util/token_server.py"))
            .args([
                &port.to_string(),
                &p("token.key"),
                &p("token.crt"),
                user,
                password,
            ])
            .arg("strata-test-issuer")
            .stdout(Stdio::null())
            .spawn()
            .expect("python3 with jwt and cryptography is installed by .ci/run");
        let realm = format!("127.0.0.1:{port}");
        wait_for_port(&realm, "the token service");
        let extra = format!(
            "auth:\n  token:\n    realm: http://{realm}/token\n    service: strata-test\n    issuer: strata-test-issuer\n    rootcertbundle: {}\n",
            p("token.crt")
        );
        let mut registry = Registry::launch_in(dir, &extra, false);
        registry.token_service = Some(service);
        registry.creds = Some(format!("{user}:{password}"));
        registry
    }

    fn launch(extra: &str) -> Registry {
        Registry::launch_in(tempfile::tempdir().unwrap(), extra, false)
    }

    fn launch_in(dir: tempfile::TempDir, extra: &str, tls: bool) -> Registry {
        let addr = format!("127.0.0.1:{}", free_port());
        let config = dir.path().join("config.yml");
        fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n{extra}",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let mut registry = Registry {
            child: None,
            token_service: None,
            addr,
            config,
            dir,
            tls,
            creds: None,
        };
        registry.restart();
        registry
    }

    /// The CA certificate of a TLS registry (a PEM file).
    pub fn ca(&self) -> PathBuf {
        assert!(self.tls, "a plain registry has no CA");
        self.cert_dir().join("ca.crt")
    }

    /// A folder holding just the CA, as `--cert-dir` wants it.
    pub fn cert_dir(&self) -> PathBuf {
        self.dir.path().join("certs")
    }

    /// The storage root, to reach blobs at `docker/registry/v2/blobs/…`.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Where the registry keeps a blob's bytes (`sha256:…` or its hex).
    pub fn blob_data(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.data_dir()
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts (again) on the same address with the same storage.
    pub fn restart(&mut self) {
        self.stop();
        self.child = Some(spawn(&self.config));
        wait_for_port(&self.addr, "the registry");
    }

    /// `strata push LAYOUT:TAG ADDR/NAME`, trusting this registry's CA and
    /// with its credentials, asserting success; stderr has the summary.
    pub fn push(&self, t: &TestDir, layout: &Path, tag: &str, name: &str) -> Output {
        let mut cmd = t.strata();
        cmd.arg("push")
            .arg(format!("{}:{tag}", layout.display()))
            .arg(format!("{}/{name}", self.addr));
        if self.tls {
            cmd.arg("--ca-file").arg(self.ca());
        }
        if let Some(creds) = &self.creds {
            cmd.args(["--creds", creds]);
        }
        let output = cmd.output().unwrap();
        assert_success(&output, &format!("strata push to {}/{name}", self.addr));
        output
    }

    /// skopeo's flags to read this registry (`prefix` is `src-` for `copy`):
    /// no TLS, or its CA; and its credentials.
    fn skopeo_flags(&self, prefix: &str) -> Vec<String> {
        let mut flags = if self.tls {
            vec![
                format!("--{prefix}cert-dir"),
                self.cert_dir().display().to_string(),
            ]
        } else {
            vec![format!("--{prefix}tls-verify=false")]
        };
        if let Some(creds) = &self.creds {
            flags.extend([format!("--{prefix}creds"), creds.clone()]);
        }
        flags
    }

    /// A Charliecloud `program` (`ch-image` through Debian's python3, which
    /// has the lark and requests it needs; or `ch-run`) with its storage in
    /// `storage`, trusting this TLS registry's CA and logging in to it.
    /// ch-image speaks HTTPS only.
    pub fn charliecloud(&self, storage: &Path, program: &str) -> Command {
        let (user, password) = self
            .creds
            .as_deref()
            .and_then(|c| c.split_once(':'))
            .expect("a TLS registry with credentials");
        let mut cmd = match program {
            "ch-image" => {
                let mut cmd = Command::new("/usr/bin/python3");
                // No build cache: ch-image keeps it in git, which wants an identity.
                cmd.args(["/usr/bin/ch-image", "--no-cache", "--auth"]);
                cmd
            }
            other => Command::new(other),
        };
        cmd.env("USER", "strata-test")
            .env("CH_IMAGE_STORAGE", storage)
            .env("REQUESTS_CA_BUNDLE", self.ca())
            .env("CH_IMAGE_USERNAME", user)
            .env("CH_IMAGE_PASSWORD", password);
        cmd
    }

    /// `skopeo inspect docker://ADDR/NAME`: digest, labels, layers.
    pub fn inspect(&self, name: &str) -> Value {
        self.skopeo_inspect(&[], name)
    }

    /// `skopeo inspect --raw docker://ADDR/NAME`: the manifest or index itself.
    pub fn inspect_raw(&self, name: &str) -> Value {
        self.skopeo_inspect(&["--raw"], name)
    }

    fn skopeo_inspect(&self, args: &[&str], name: &str) -> Value {
        let json = run(Command::new("skopeo")
            .arg("inspect")
            .args(args)
            .args(self.skopeo_flags(""))
            .arg(format!("docker://{}/{name}", self.addr)));
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("skopeo inspect ({e}):\n{json}"))
    }

    /// Reads `ADDR/NAME` back with skopeo and checks that it is the image
    /// `layout:tag`: skopeo reports its digest, and copying it into a new
    /// layout brings back exactly that image's blobs, byte for byte. Returns
    /// what `skopeo inspect` says (labels, …).
    pub fn read_back(&self, t: &TestDir, name: &str, layout: &Path, tag: &str) -> Value {
        let digest = tagged_digest(layout, tag);
        let inspected = self.inspect(name);
        assert_eq!(inspected["Digest"], digest.as_str(), "{}/{name}", self.addr);
        let remote = format!("{}/{name}", self.addr);
        let back = t.join(&format!(
            "read-back-{}",
            remote.replace(['/', ':', '@'], "_")
        ));
        run(Command::new("skopeo")
            .arg("copy")
            .args(self.skopeo_flags("src-"))
            .arg(format!("docker://{remote}"))
            .arg(format!("oci:{}:back", back.display())));
        assert_eq!(tagged_digest(&back, "back"), digest, "{remote}");
        let ours = snapshot(&layout.join("blobs"));
        let theirs = snapshot(&back.join("blobs"));
        let image = image_blobs(layout, &digest);
        assert_eq!(
            theirs.keys().collect::<Vec<_>>(),
            image.iter().collect::<Vec<_>>(),
            "{remote} came back with other blobs than the image's"
        );
        for (blob, bytes) in &theirs {
            assert!(ours[blob] == *bytes, "{blob} differs after {remote}");
        }
        inspected
    }
}

/// The blobs (`sha256/HEX`, sorted) of the image manifest `digest` in
/// `layout`: the manifest, its config and its layers.
fn image_blobs(layout: &Path, digest: &str) -> Vec<String> {
    let path = |d: &str| format!("sha256/{}", d.strip_prefix("sha256:").unwrap());
    let manifest = super::json_blob(layout, digest);
    let mut blobs = vec![
        path(digest),
        path(manifest["config"]["digest"].as_str().unwrap()),
    ];
    for layer in manifest["layers"].as_array().unwrap() {
        blobs.push(path(layer["digest"].as_str().unwrap()));
    }
    blobs.sort();
    blobs.dedup();
    blobs
}

/// An image [`Registry::build_push_read_back`] built and pushed.
pub struct Pushed {
    /// Where it was built.
    pub layout: PathBuf,
    /// Its manifest digest, here and on the registry.
    pub digest: String,
    /// What `skopeo inspect` says of it on the registry.
    pub inspected: Value,
}

impl Registry {
    /// Build, push, read back: builds `recipe` into a layout of its own,
    /// pushes it as `name` (`REPO:TAG`, the tag being the image's own) with
    /// `strata push`, and reads it back with skopeo ([`Registry::read_back`]).
    pub fn build_push_read_back(&self, t: &TestDir, recipe: &Path, name: &str) -> Pushed {
        let (_, tag) = name.rsplit_once(':').expect("REPO:TAG");
        let layout = t.join(&format!("{}-out", name.replace(['/', ':'], "_")));
        t.build(recipe, &layout);
        self.push(t, &layout, tag, name);
        let inspected = self.read_back(t, name, &layout, tag);
        Pushed {
            digest: tagged_digest(&layout, tag),
            layout,
            inspected,
        }
    }
}

/// A fresh RSA key and a self-signed certificate for it.
fn self_signed(key: &str, cert: &str, subject: &str) {
    run(Command::new("openssl").args([
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", subject, "-keyout",
        key, "-out", cert,
    ]));
}

fn spawn(config: &Path) -> Child {
    Command::new("docker-registry")
        .arg("serve")
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("docker-registry is installed by .ci/run")
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
        if let Some(mut service) = self.token_service.take() {
            let _ = service.kill();
            let _ = service.wait();
        }
    }
}
