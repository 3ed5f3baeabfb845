//! The reference registry (`docker-registry`) on a free loopback port:
//! plain HTTP, TLS with a throwaway CA and bcrypt htpasswd auth, or bearer
//! tokens from a small token service (`token_server.py`, real JWTs the
//! registry verifies). Stopped by PID when dropped; tests may stop and
//! restart the registry.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::{free_port, run, wait_for_port};

pub struct Registry {
    child: Option<Child>,
    token_service: Option<Child>,
    pub addr: String,
    config: PathBuf,
    dir: tempfile::TempDir,
    tls: bool,
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
        Registry::launch_in(dir, &extra, true)
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
