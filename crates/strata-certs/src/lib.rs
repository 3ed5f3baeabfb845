//! The CA certificate store that `update-ca-certificates` (package
//! `ca-certificates`) and its Java hook (`ca-certificates-java`) make,
//! computed from the files alone.
//!
//! strata installs Debian packages by extraction and never runs a maintainer
//! script, so nothing would otherwise write `/etc/ssl/certs`: the bundle that
//! curl, Python and git read, the `NAME.pem` links, the OpenSSL `HASH.N`
//! links that `openssl rehash` makes for directory lookups, and Java's
//! `/etc/ssl/certs/java/cacerts`. A site CA placed under
//! `/usr/local/share/ca-certificates/` must end up in all of them, byte for
//! byte as the real tools would have it where that is possible, so that an
//! image built by strata and one built by `apt-get install` agree.
//!
//! [`update_ca_certificates`] follows Debian 12's
//! `/usr/sbin/update-ca-certificates` (run as on a fresh image, in the C
//! locale) and `openssl rehash`; [`subject_hash`] is OpenSSL's
//! `X509_NAME_hash`; [`java_cacerts`] and [`java_cacerts_jks`] write the Java
//! truststore deterministically.

mod java;
mod name;
mod pem;
mod rehash;

use std::collections::BTreeMap;

pub use java::{JAVA_STOREPASS, java_cacerts};
pub use name::subject_hash;

/// Where `update-ca-certificates` finds the certificates packages ship, and
/// the prefix of the entries in `/etc/ca-certificates.conf`.
pub const CERTS_DIR: &str = "/usr/share/ca-certificates";
/// Where an administrator adds site CAs (`*.crt`, searched recursively).
pub const LOCAL_CERTS_DIR: &str = "/usr/local/share/ca-certificates";
/// The folder of the bundle and of every link.
pub const ETC_CERTS_DIR: &str = "/etc/ssl/certs";
/// The bundle that OpenSSL, GnuTLS, curl, Python and git read.
pub const BUNDLE_PATH: &str = "/etc/ssl/certs/ca-certificates.crt";
/// Where `ca-certificates-java` writes Java's truststore.
pub const JAVA_CACERTS_PATH: &str = "/etc/ssl/certs/java/cacerts";

/// A certificate file read from the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFile {
    /// Absolute image path, e.g.
    /// `/usr/share/ca-certificates/mozilla/ISRG_Root_X1.crt`.
    pub path: String,
    /// The file's bytes, as they are (PEM).
    pub pem: Vec<u8>,
}

/// One trusted CA, as the Java hook sees it: the first certificate of the
/// file a `NAME.pem` link points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    /// The link's file name in `/etc/ssl/certs`, e.g. `ISRG_Root_X1.pem`.
    pub name: String,
    /// The file the link points at (absolute image path).
    pub path: String,
    /// The certificate, DER.
    pub der: Vec<u8>,
}

impl Certificate {
    /// The alias `ca-certificates-java` gives it: `debian:` and the link's
    /// file name, lowercased as Java's JKS keystore stores every alias.
    pub fn alias(&self) -> String {
        format!("debian:{}", self.name).to_lowercase()
    }
}

/// What `update-ca-certificates` leaves in `/etc/ssl/certs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Store {
    /// `/etc/ssl/certs/ca-certificates.crt`, byte-identical to
    /// `update-ca-certificates`' own.
    pub bundle: Vec<u8>,
    /// (link path, target), sorted by link path: `/etc/ssl/certs/NAME.pem` ->
    /// the certificate file's absolute path, and `/etc/ssl/certs/HASH.N` ->
    /// `NAME.pem` (relative, as `openssl rehash` writes it).
    pub links: Vec<(String, String)>,
    /// The certificates for Java, one per `NAME.pem` link, in bundle order.
    pub certificates: Vec<Certificate>,
}

/// Why a store could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// A local file holds no PEM certificate at all.
    #[error(
        "`{path}` holds no PEM certificate (`-----BEGIN CERTIFICATE-----`): \
         put a PEM certificate there or remove the file"
    )]
    NoCertificate { path: String },
    /// A PEM block is cut short or its body is not base64.
    #[error("`{path}` has a malformed PEM block: {reason}")]
    Pem { path: String, reason: &'static str },
    /// A PEM body is not valid base64.
    #[error("`{path}` has a PEM block whose body is not valid base64")]
    Base64 {
        path: String,
        #[source]
        source: base64::DecodeError,
    },
    /// A file's certificate does not parse as X.509.
    #[error("`{path}` holds a certificate that is not valid X.509")]
    Certificate {
        path: String,
        #[source]
        source: der::Error,
    },
    /// DER handed to [`subject_hash`] does not parse as an X.509 certificate.
    #[error("the certificate is not valid X.509")]
    Der(#[source] der::Error),
    /// A subject attribute's string does not decode in its ASN.1 string type,
    /// so OpenSSL could not canonicalise the name either.
    #[error("a subject attribute is not a valid {kind}")]
    NameString { kind: &'static str },
    /// Encoding the Java truststore failed.
    #[error("cannot encode Java's truststore")]
    Encode(#[source] der::Error),
    /// Deriving the truststore's MAC key failed.
    #[error("cannot compute the MAC of Java's truststore")]
    Mac(#[source] der::Error),
}

/// What `update-ca-certificates` makes of the image's certificates.
///
/// `conf`: the text of `/etc/ca-certificates.conf` (`None`: every `*.crt`
/// in `shared`, sorted, as the file `ca-certificates` writes on first install
/// lists them); `shared`: files under `/usr/share/ca-certificates`; `local`:
/// the `*.crt` files under `/usr/local/share/ca-certificates` (recursively;
/// other names are ignored, as `find -name '*.crt'` does).
///
/// The bundle holds the enabled `shared` entries in the order of `conf`, then
/// `local` sorted by path (the script's `sort`, in the C locale). Entries of
/// `conf` naming no file in `shared` are skipped, as the script does with a
/// warning. A `shared` file that is not a certificate still goes into the
/// bundle, as the script puts it there, but gets no hash link and no Java
/// entry; a `local` one is an error ([`CertError`] names the file), since a
/// site CA that silently goes missing is worse than a failed build.
pub fn update_ca_certificates(
    conf: Option<&str>,
    shared: &[CertFile],
    local: &[CertFile],
) -> Result<Store, CertError> {
    let by_path: BTreeMap<String, &CertFile> =
        shared.iter().map(|f| (normalize(&f.path), f)).collect();

    // (target path as the script spells it, file), in the order `add` runs.
    let mut added: Vec<(String, &CertFile)> = Vec::new();
    match conf {
        Some(conf) => {
            for entry in conf_entries(conf) {
                let target = format!("{CERTS_DIR}/{entry}");
                if let Some(file) = by_path.get(&normalize(&target)) {
                    added.push((target, file));
                }
            }
        }
        None => {
            let mut all: Vec<&CertFile> = shared
                .iter()
                .filter(|f| f.path.starts_with(&format!("{CERTS_DIR}/")))
                .filter(|f| base_name(&f.path).ends_with(".crt"))
                .collect();
            all.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
            added.extend(all.into_iter().map(|f| (f.path.clone(), f)));
        }
    }
    let mut local: Vec<&CertFile> = local
        .iter()
        .filter(|f| base_name(&f.path).ends_with(".crt"))
        .collect();
    local.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
    let shared_count = added.len();
    added.extend(local.into_iter().map(|f| (f.path.clone(), f)));

    let mut bundle = Vec::new();
    // Link name -> (target, what the file holds, position in bundle order);
    // a later file with the same link name replaces the earlier one, as
    // `ln -sf` does.
    let mut pem_links: BTreeMap<String, (String, pem::Contents, usize)> = BTreeMap::new();
    for (index, (target, file)) in added.iter().enumerate() {
        bundle.extend_from_slice(&file.pem);
        if !file.pem.is_empty() && !file.pem.ends_with(b"\n") {
            bundle.push(b'\n');
        }
        let contents = if index < shared_count {
            pem::certificates(&file.path, &file.pem).unwrap_or_default()
        } else {
            pem::certificates(&file.path, &file.pem)?
        };
        let name = pem_link_name(target);
        let position = pem_links.get(&name).map_or(index, |(_, _, p)| *p);
        pem_links.insert(name, (target.clone(), contents, position));
    }

    let hash_links = rehash::hash_links(
        pem_links
            .iter()
            .map(|(name, (_, contents, _))| (name.as_str(), contents.only_certificate())),
    )?;

    let mut links: Vec<(String, String)> = pem_links
        .iter()
        .map(|(name, (target, _, _))| (format!("{ETC_CERTS_DIR}/{name}"), target.clone()))
        .chain(
            hash_links
                .into_iter()
                .map(|(link, name)| (format!("{ETC_CERTS_DIR}/{link}"), name)),
        )
        .collect();
    links.sort();

    let mut ordered: Vec<(usize, Certificate)> = pem_links
        .into_iter()
        .filter_map(|(name, (path, contents, position))| {
            let der = contents.certs.into_iter().next()?;
            Some((position, Certificate { name, path, der }))
        })
        .collect();
    ordered.sort_by_key(|(position, _)| *position);

    Ok(Store {
        bundle,
        links,
        certificates: ordered.into_iter().map(|(_, c)| c).collect(),
    })
}

/// The entries of `/etc/ca-certificates.conf` that the script adds, as its
/// `sed -e '/^$/d' -e '/^#/d' -e '/^!/d' | while read crt` yields them:
/// `read` trims blanks, drops backslashes before a character and joins a line
/// ending in a backslash to the next.
fn conf_entries(conf: &str) -> Vec<String> {
    let mut entries = Vec::new();
    let mut pending = String::new();
    for line in conf.lines() {
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let mut chars = line.chars();
        let mut continued = false;
        while let Some(c) = chars.next() {
            if c == '\\' {
                match chars.next() {
                    Some(next) => pending.push(next),
                    None => continued = true,
                }
            } else {
                pending.push(c);
            }
        }
        if continued {
            continue;
        }
        let entry = pending.trim_matches([' ', '\t']).to_string();
        pending.clear();
        if !entry.is_empty() {
            entries.push(entry);
        }
    }
    let entry = pending.trim_matches([' ', '\t']);
    if !entry.is_empty() {
        entries.push(entry.to_string());
    }
    entries
}

/// The `NAME.pem` link the script makes for a certificate file:
/// `basename "$CERT" .crt | sed -e 's/ /_/g' -e 's/[()]/=/g' -e 's/,/_/g'`.
fn pem_link_name(path: &str) -> String {
    let base = base_name(path);
    let stem = match base.strip_suffix(".crt") {
        Some(stem) if !stem.is_empty() => stem,
        _ => base,
    };
    let mangled: String = stem
        .chars()
        .map(|c| match c {
            ' ' | ',' => '_',
            '(' | ')' => '=',
            c => c,
        })
        .collect();
    format!("{mangled}.pem")
}

fn base_name(path: &str) -> &str {
    let trimmed = path.trim_end_matches('/');
    trimmed.rsplit('/').next().unwrap_or(trimmed)
}

/// A path with empty and `.` components dropped, so that a `conf` entry like
/// `mozilla//X.crt` finds the file as `test -f` would.
fn normalize(path: &str) -> String {
    path.split('/')
        .filter(|part| !part.is_empty() && *part != ".")
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_names_are_mangled_as_the_script_does() {
        assert_eq!(
            pem_link_name(
                "/usr/share/ca-certificates/mozilla/NetLock_Arany_=Class_Gold=_Főtanúsítvány.crt"
            ),
            "NetLock_Arany_=Class_Gold=_Főtanúsítvány.pem"
        );
        assert_eq!(
            pem_link_name("/x/My CA (test), v2.crt"),
            "My_CA_=test=__v2.pem"
        );
        assert_eq!(pem_link_name("/x/.crt"), ".crt.pem");
        assert_eq!(pem_link_name("/x/a.crt.crt"), "a.crt.pem");
    }

    #[test]
    fn conf_entries_follow_sed_and_read() {
        let conf =
            "# comment\n\nmozilla/A.crt\n!mozilla/B.crt\n  mozilla/C.crt  \n a\\\\b\\\nc\nlast";
        assert_eq!(
            conf_entries(conf),
            ["mozilla/A.crt", "mozilla/C.crt", "a\\bc", "last"]
        );
    }
}
