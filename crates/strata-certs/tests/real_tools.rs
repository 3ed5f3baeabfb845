//! strata-certs against the real tools on this machine: Debian's
//! `update-ca-certificates` (with `openssl rehash`), `openssl x509
//! -subject_hash`, `keytool` and `openssl pkcs12`. No mocks: if the store
//! differs from what the tools make, these fail.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};
use strata_certs::{
    CERTS_DIR, CertError, CertFile, LOCAL_CERTS_DIR, Store, java_cacerts, subject_hash,
    update_ca_certificates,
};

const HOST_CERTS_DIR: &str = "/usr/share/ca-certificates";
const HOST_CONF: &str = "/etc/ca-certificates.conf";

/// Runs a command and returns its stdout; panics with its stderr otherwise.
fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?} (is it installed?): {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn host_inputs_exist() {
    assert!(
        Path::new(HOST_CERTS_DIR).join("mozilla").is_dir() && Path::new(HOST_CONF).is_file(),
        "{HOST_CERTS_DIR}/mozilla and {HOST_CONF} are needed: install `ca-certificates`"
    );
}

/// Every regular file under `dir` (following symlinks), sorted.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.is_file() {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The files under `dir` as the builder hands them over: at `image_dir`.
fn cert_files(dir: &Path, image_dir: &str) -> Vec<CertFile> {
    walk(dir)
        .into_iter()
        .map(|path| CertFile {
            path: format!(
                "{image_dir}/{}",
                path.strip_prefix(dir).unwrap().to_str().unwrap()
            ),
            pem: fs::read(&path).unwrap(),
        })
        .collect()
}

/// A self-signed CA made by `openssl req -x509`, PEM.
fn make_ca(dir: &Path, subj: &str, extra: &[&str]) -> Vec<u8> {
    let key = dir.join("key.pem");
    let cert = dir.join("cert.pem");
    let mut cmd = Command::new("openssl");
    cmd.args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .arg("ec_paramgen_curve:P-256")
        .args(["-nodes", "-days", "3650", "-subj", subj, "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .args(extra);
    run(&mut cmd);
    fs::read(&cert).unwrap()
}

fn der_of(pem: &[u8]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.pem");
    fs::write(&path, pem).unwrap();
    let out = Command::new("openssl")
        .args(["x509", "-outform", "DER", "-in"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success());
    out.stdout
}

fn openssl_hash(pem_path: &Path) -> u32 {
    let out = run(Command::new("openssl")
        .args(["x509", "-subject_hash", "-noout", "-in"])
        .arg(pem_path));
    u32::from_str_radix(out.trim(), 16).unwrap()
}

/// The symlinks in `dir`: name -> target.
fn read_links(dir: &Path) -> BTreeMap<String, String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_symlink())
        .map(|p| {
            let target = fs::read_link(&p).unwrap();
            (
                p.file_name().unwrap().to_str().unwrap().to_string(),
                target.to_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// A tree laid out as an image would be, with local CAs that exercise the
/// script's corners, and `update-ca-certificates` run over it.
struct Fixture {
    _dir: tempfile::TempDir,
    share: PathBuf,
    local: PathBuf,
    etc: PathBuf,
    conf: String,
}

impl Fixture {
    fn new() -> Fixture {
        host_inputs_exist();
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let share = root.join("share");
        let local = root.join("local");
        let etc = root.join("etc");
        let scratch = root.join("scratch");
        for d in [&local, &etc, &scratch] {
            fs::create_dir_all(d).unwrap();
        }
        run(Command::new("cp")
            .arg("-rL")
            .arg(HOST_CERTS_DIR)
            .arg(&share));

        // The host's list, with one entry disabled, a comment, a blank line,
        // an entry padded with blanks and one naming no file.
        let host_conf = fs::read_to_string(HOST_CONF).unwrap();
        let mut conf = String::new();
        let mut entries = 0;
        for line in host_conf.lines() {
            if !line.starts_with('#') && !line.is_empty() && !line.starts_with('!') {
                entries += 1;
                match entries {
                    3 => {
                        conf.push_str(&format!("!{line}\n# disabled above\n\n"));
                        continue;
                    }
                    5 => {
                        conf.push_str(&format!("  {line}\t\n"));
                        continue;
                    }
                    _ => {}
                }
            }
            conf.push_str(line);
            conf.push('\n');
        }
        conf.push_str("mozilla/Does_Not_Exist.crt\n");
        fs::write(root.join("ca-certificates.conf"), &conf).unwrap();

        // A site CA with a name the script mangles, in a subfolder.
        let site = make_ca(&scratch, "/CN=Site Root CA/O=Research, TRE", &[]);
        fs::create_dir_all(local.join("site")).unwrap();
        fs::write(local.join("site/Site Root (TRE), v1.crt"), &site).unwrap();
        // Two CAs with the same subject: hash links .0 and .1.
        let twin_a = make_ca(&scratch, "/CN=Twin CA", &[]);
        let twin_b = make_ca(&scratch, "/CN=Twin CA", &[]);
        fs::write(local.join("twin-a.crt"), &twin_a).unwrap();
        // No trailing newline: the bundle gets one, the file keeps none.
        fs::write(local.join("twin-b.crt"), twin_b.trim_ascii_end()).unwrap();
        // A copy of a Mozilla CA: a second .pem link but no second hash link.
        let isrg = fs::read(share.join("mozilla/ISRG_Root_X1.crt")).unwrap();
        fs::create_dir_all(local.join("dup")).unwrap();
        fs::write(local.join("dup/isrg copy.crt"), &isrg).unwrap();
        // Text around the PEM block, as `openssl x509 -text` leaves it.
        let mut texty = b"Certificate:\n    Data: (comment)\n".to_vec();
        texty.extend(make_ca(&scratch, "/CN=Texty CA", &[]));
        fs::write(local.join("texty.crt"), &texty).unwrap();
        // Not named *.crt: ignored by the script and by strata.
        fs::write(local.join("README"), b"not a certificate\n").unwrap();

        run(Command::new("update-ca-certificates")
            .env("LC_ALL", "C")
            .env("TMPDIR", &scratch)
            .arg("--certsconf")
            .arg(root.join("ca-certificates.conf"))
            .arg("--certsdir")
            .arg(&share)
            .arg("--localcertsdir")
            .arg(&local)
            .arg("--etccertsdir")
            .arg(&etc)
            .arg("--hooksdir")
            .arg(root.join("no-hooks")));
        Fixture {
            _dir: dir,
            share,
            local,
            etc,
            conf,
        }
    }

    fn local_files(&self) -> Vec<CertFile> {
        cert_files(&self.local, LOCAL_CERTS_DIR)
    }

    fn store(&self) -> Store {
        let shared = cert_files(&self.share, CERTS_DIR);
        update_ca_certificates(Some(&self.conf), &shared, &self.local_files()).unwrap()
    }
}

#[test]
fn bundle_and_links_match_update_ca_certificates() {
    let fx = Fixture::new();
    let store = fx.store();

    let real_bundle = fs::read(fx.etc.join("ca-certificates.crt")).unwrap();
    assert!(
        store.bundle == real_bundle,
        "bundle differs: {} bytes from strata, {} from update-ca-certificates",
        store.bundle.len(),
        real_bundle.len()
    );

    let share = fx.share.to_str().unwrap();
    let local = fx.local.to_str().unwrap();
    let real: BTreeMap<String, String> = read_links(&fx.etc)
        .into_iter()
        .map(|(name, target)| {
            let target = if let Some(rest) = target.strip_prefix(share) {
                format!("{CERTS_DIR}{rest}")
            } else if let Some(rest) = target.strip_prefix(local) {
                format!("{LOCAL_CERTS_DIR}{rest}")
            } else {
                target
            };
            (format!("/etc/ssl/certs/{name}"), target)
        })
        .collect();
    let ours: BTreeMap<String, String> = store.links.iter().cloned().collect();
    assert_eq!(ours.len(), store.links.len(), "duplicate link names");
    let missing: Vec<_> = real
        .iter()
        .filter(|(k, v)| ours.get(*k) != Some(v))
        .collect();
    let extra: Vec<_> = ours
        .iter()
        .filter(|(k, v)| real.get(*k) != Some(v))
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "links differ\nonly update-ca-certificates: {missing:#?}\nonly strata: {extra:#?}"
    );

    // The corners the fixture set up are really there.
    assert!(ours.contains_key("/etc/ssl/certs/Site_Root_=TRE=__v1.pem"));
    let twin_hash = ours
        .iter()
        .filter(|(_, target)| target.starts_with("twin-"))
        .map(|(link, _)| link.rsplit_once('.').unwrap().1.to_string())
        .collect::<BTreeSet<_>>();
    assert_eq!(
        twin_hash,
        BTreeSet::from(["0".to_string(), "1".to_string()])
    );
    assert!(ours.contains_key("/etc/ssl/certs/isrg_copy.pem"));
    assert!(!ours.values().any(|t| t == "isrg_copy.pem"));
    assert!(!ours.contains_key("/etc/ssl/certs/Does_Not_Exist.pem"));

    // One Java entry per .pem link.
    let pem_links = ours.keys().filter(|k| k.ends_with(".pem")).count();
    assert_eq!(store.certificates.len(), pem_links);
}

#[test]
fn a_broken_local_certificate_is_an_error_naming_it() {
    host_inputs_exist();
    let shared = cert_files(Path::new(HOST_CERTS_DIR), CERTS_DIR);
    let conf = fs::read_to_string(HOST_CONF).unwrap();
    let local = vec![CertFile {
        path: format!("{LOCAL_CERTS_DIR}/site/broken.crt"),
        pem: b"-----BEGIN CERTIFICATE-----\nTUlJ\n-----END CERTIFICATE-----\n".to_vec(),
    }];
    let err = update_ca_certificates(Some(&conf), &shared, &local).unwrap_err();
    assert!(matches!(err, CertError::Certificate { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("/usr/local/share/ca-certificates/site/broken.crt")
    );
    assert!(std::error::Error::source(&err).is_some());

    // Without a conf every shared certificate is in, sorted, and none errs.
    let store = update_ca_certificates(None, &shared, &[]).unwrap();
    assert_eq!(store.certificates.len(), shared.len());
}

#[test]
fn subject_hash_matches_openssl_for_mozilla_certificates() {
    host_inputs_exist();
    let files = walk(&Path::new(HOST_CERTS_DIR).join("mozilla"));
    assert!(
        files.len() > 100,
        "expected the Mozilla CAs, found {}",
        files.len()
    );
    for path in files {
        let der = der_of(&fs::read(&path).unwrap());
        assert_eq!(
            subject_hash(&der).unwrap(),
            openssl_hash(&path),
            "{}",
            path.display()
        );
    }
}

#[test]
fn subject_hash_matches_openssl_for_tricky_subjects() {
    let dir = tempfile::tempdir().unwrap();
    // `string_mask = default` makes openssl pick PrintableString, T61String
    // or BMPString per value instead of UTF8String for all.
    let config = dir.path().join("legacy.cnf");
    fs::write(
        &config,
        "[req]\ndistinguished_name = dn\nstring_mask = default\nutf8 = yes\n[dn]\n",
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let cases: &[(&str, &[&str])] = &[
        ("/CN=  Mixed   CASE\tCa  /O=ACME Corp/C=DE", &[]),
        ("/CN=Ünïcødé Wurzel ÄÖÜ/O=Société Générale", &["-utf8"]),
        ("/CN=日本語 ルート/OU=  Spaced   Out  ", &["-utf8"]),
        (
            "/CN=Multi+O=Valued  RDN+OU=third/L=Berlin+ST=Berlin",
            &["-multivalue-rdn"],
        ),
        ("/CN=Zed+CN=alpha/OU=b+OU=A", &["-multivalue-rdn"]),
        // T61String with Latin-1 bytes, PrintableString.
        (
            "/CN=Legacy Ünïcødé/O=Plain Ascii/OU=under_score&amp",
            &["-utf8", "-config", config],
        ),
        // BMPString.
        (
            "/CN=Legacy  日本語 WIDE /O=x",
            &["-utf8", "-config", config],
        ),
        ("/emailAddress=Root@Example.ORG/CN=Mail CA", &[]),
        ("/DC=org/DC=Example/CN=dc", &[]),
    ];
    for (i, (subj, extra)) in cases.iter().enumerate() {
        let sub = dir.path().join(i.to_string());
        fs::create_dir_all(&sub).unwrap();
        let pem = make_ca(&sub, subj, extra);
        let path = sub.join("cert.pem");
        assert_eq!(
            subject_hash(&der_of(&pem)).unwrap(),
            openssl_hash(&path),
            "subject {subj}"
        );
    }
}

/// `keytool -list` of a store: alias -> SHA-256 fingerprint, for trusted
/// certificate entries only; also how many entries of other kinds.
fn keytool_list(path: &Path, storetype: &str) -> (BTreeMap<String, String>, usize) {
    let out = run(Command::new("keytool")
        .args([
            "-list",
            "-storepass",
            "changeit",
            "-storetype",
            storetype,
            "-keystore",
        ])
        .arg(path));
    let mut trusted = BTreeMap::new();
    let mut other = 0;
    let mut lines = out.lines();
    while let Some(line) = lines.next() {
        let Some((alias, rest)) = line.split_once(", ") else {
            continue;
        };
        if !alias.starts_with("debian:") {
            continue;
        }
        if rest.contains("trustedCertEntry") {
            let fp = lines.next().unwrap_or_default();
            let fp = fp.rsplit(' ').next().unwrap_or_default().replace(':', "");
            trusted.insert(alias.to_string(), fp.to_lowercase());
        } else {
            other += 1;
        }
    }
    (trusted, other)
}

fn expected_entries(store: &Store) -> BTreeMap<String, String> {
    store
        .certificates
        .iter()
        .map(|c| (c.alias(), hex::encode(Sha256::digest(&c.der))))
        .collect()
}

#[test]
fn java_truststore_lists_every_ca_as_trusted() {
    let fx = Fixture::new();
    let store = fx.store();
    let dir = tempfile::tempdir().unwrap();

    let p12 = java_cacerts(&store).unwrap();
    assert_eq!(
        p12,
        java_cacerts(&store).unwrap(),
        "PKCS#12 is not deterministic"
    );
    let p12_path = dir.path().join("cacerts.p12");
    fs::write(&p12_path, &p12).unwrap();
    let (trusted, other) = keytool_list(&p12_path, "PKCS12");
    assert_eq!(other, 0);
    assert_eq!(trusted.len(), store.certificates.len());
    assert_eq!(trusted, expected_entries(&store));
    assert!(trusted.contains_key("debian:site_root_=tre=__v1.pem"));

    // OpenSSL verifies the MAC and reads every certificate bag.
    let info = run(Command::new("openssl")
        .args([
            "pkcs12",
            "-info",
            "-nokeys",
            "-passin",
            "pass:changeit",
            "-in",
        ])
        .arg(&p12_path));
    assert_eq!(
        info.matches("-----BEGIN CERTIFICATE-----").count(),
        store.certificates.len()
    );
    assert_eq!(
        info.matches("friendlyName: debian:").count(),
        store.certificates.len()
    );
}

/// The store strata computes from the host's own files has the aliases and
/// certificates of the truststore `ca-certificates-java` made on this host.
#[test]
fn java_truststore_matches_the_hosts_ca_certificates_java() {
    host_inputs_exist();
    let host_store = Path::new("/etc/ssl/certs/java/cacerts");
    assert!(
        host_store.is_file(),
        "{} is needed: install `ca-certificates-java`",
        host_store.display()
    );
    let shared = cert_files(Path::new(HOST_CERTS_DIR), CERTS_DIR);
    let conf = fs::read_to_string(HOST_CONF).unwrap();
    let store = update_ca_certificates(Some(&conf), &shared, &[]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cacerts");
    fs::write(&path, java_cacerts(&store).unwrap()).unwrap();
    let (ours, _) = keytool_list(&path, "PKCS12");
    let (host, _) = keytool_list(host_store, "JKS");
    let differ: Vec<_> = ours
        .iter()
        .filter(|(alias, fp)| host.get(*alias) != Some(fp))
        .collect();
    assert!(
        differ.is_empty(),
        "not in the host's store as such: {differ:#?}"
    );
    // Whatever else the host's store has is this machine's own site CAs.
    let local_links: BTreeSet<String> = read_links(Path::new("/etc/ssl/certs"))
        .into_iter()
        .filter(|(_, target)| target.starts_with(LOCAL_CERTS_DIR))
        .map(|(name, _)| format!("debian:{name}").to_lowercase())
        .collect();
    let extra: Vec<_> = host
        .keys()
        .filter(|alias| !ours.contains_key(*alias) && !local_links.contains(*alias))
        .collect();
    assert!(extra.is_empty(), "only in the host's store: {extra:#?}");
}
