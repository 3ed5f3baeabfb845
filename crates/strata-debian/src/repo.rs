//! A repository: its signed `InRelease`, and the `Packages` indexes that the
//! signed text vouches for by sha256.

use std::collections::HashMap;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use crate::control::for_each_paragraph;
use crate::index::{self, Package};
use crate::signature::{self, Keyring, SignatureError};
use strata_client::fetch::{Download, FetchError, Fetcher};
use strata_oci::compression::Compression;
use strata_oci::digest::Digest;

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum RepoError {
    #[error("the signature of `{url}` does not verify")]
    #[diagnostic(help(
        "the repository is not signed by a key in the keyring `{keyring}`: check `keyring=`, or the file was altered in transit"
    ))]
    Signature {
        url: String,
        keyring: String,
        #[source]
        source: SignatureError,
    },
    #[error("cannot read the keyring `{}`", path.display())]
    #[diagnostic(help(
        "`keyring=` takes a path relative to the recipe, to a binary or armored OpenPGP keyring"
    ))]
    Keyring {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{url}` has no `Packages` index for `{component}/binary-{arch}`")]
    #[diagnostic(help("check the repository's `components=` and the recipe's `platform`"))]
    NoIndex {
        url: String,
        component: String,
        arch: String,
    },
    #[error("`{url}` expired on {until}")]
    #[diagnostic(help(
        "its `Valid-Until` has passed: the mirror is stale or the signed file was replayed; try again later or another mirror"
    ))]
    Expired { url: String, until: String },
    #[error("`{url}` is malformed: {message}")]
    Malformed { url: String, message: String },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Fetch(#[from] FetchError),
    #[error("cannot read the index `{url}`")]
    Index {
        url: String,
        #[source]
        source: std::io::Error,
    },
}

/// A repository to resolve against, as a recipe names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositorySpec {
    pub url: String,
    pub suite: String,
    pub components: Vec<String>,
    /// `None`: the Debian archive keyring.
    pub keyring: Option<PathBuf>,
}

/// A verified `Release`: what the repository's signature vouches for.
#[derive(Debug, Clone)]
pub struct Release {
    pub url: String,
    pub suite: String,
    /// sha256 of the `InRelease` file as downloaded: the lock records it.
    pub inrelease: Digest,
    pub date: String,
    pub version: Option<String>,
    pub codename: Option<String>,
    files: HashMap<String, (Digest, u64)>,
}

pub fn load_keyring(spec: &RepositorySpec, context: &Path) -> Result<Keyring, RepoError> {
    const SYSTEM: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";
    let (path, fallback) = match &spec.keyring {
        Some(p) => (context.join(p), false),
        None => (Path::new(SYSTEM).to_owned(), true),
    };
    match std::fs::read(&path) {
        Ok(bytes) => Keyring::from_bytes(&bytes, &path.display().to_string()).map_err(|e| {
            RepoError::Keyring {
                path,
                source: std::io::Error::other(e.to_string()),
            }
        }),
        // Hosts without Debian's keyring package use the copy inside strata.
        Err(e) if fallback && e.kind() == std::io::ErrorKind::NotFound => Ok(Keyring::debian()),
        Err(source) => Err(RepoError::Keyring { path, source }),
    }
}

fn keyring_name(spec: &RepositorySpec) -> String {
    spec.keyring.as_ref().map_or_else(
        || "Debian archive keyring".to_owned(),
        |k| k.display().to_string(),
    )
}

pub fn fetch_release(
    fetcher: &Fetcher,
    spec: &RepositorySpec,
    keyring: &Keyring,
) -> Result<Release, RepoError> {
    let url = format!("{}/dists/{}/InRelease", spec.url, spec.suite);
    let bytes = fetcher.get(&url)?;
    let malformed = |message: String| RepoError::Malformed {
        url: url.clone(),
        message,
    };
    let text = String::from_utf8(bytes.clone()).map_err(|_| malformed("not UTF-8 text".into()))?;
    let signed =
        signature::verify_inrelease(&text, keyring, SystemTime::now()).map_err(|source| {
            RepoError::Signature {
                url: url.clone(),
                keyring: keyring_name(spec),
                source,
            }
        })?;
    let mut release = None;
    for_each_paragraph(signed.as_bytes(), |p| {
        if release.is_none() {
            release = Some((
                p.get("Date").unwrap_or_default().to_owned(),
                p.get("Version").map(str::to_owned),
                p.get("Codename").map(str::to_owned),
                p.get("Valid-Until").map(str::to_owned),
                p.get("SHA256").unwrap_or_default().to_owned(),
            ));
        }
        Ok(())
    })
    .map_err(|e| malformed(e.to_string()))?;
    let (date, version, codename, valid_until, sums) =
        release.ok_or_else(|| malformed("the signed text is empty".into()))?;
    if let Some(until) = valid_until
        && let Some(deadline) = parse_release_date(&until)
        && deadline < SystemTime::now()
    {
        return Err(RepoError::Expired { url, until });
    }
    let mut files = HashMap::new();
    for line in sums.lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        if let [hash, size, path] = parts.as_slice()
            && let (Some(digest), Ok(size)) = (super::parse_hex_digest(hash), size.parse::<u64>())
        {
            files.insert((*path).to_owned(), (digest, size));
        }
    }
    if files.is_empty() {
        return Err(malformed("the signed text lists no SHA256 sums".into()));
    }
    Ok(Release {
        url: spec.url.clone(),
        suite: spec.suite.clone(),
        inrelease: Digest::of(&bytes),
        date,
        version,
        codename,
        files,
    })
}

impl Release {
    /// The index to download for `component` on `arch`: gzip when listed (it
    /// decodes twice as fast as xz), else xz, else plain.
    pub fn packages(
        &self,
        component: &str,
        arch: &str,
    ) -> Result<(Download, Compression), RepoError> {
        let base = format!("{component}/binary-{arch}/Packages");
        [
            (".gz", Compression::Gzip),
            (".xz", Compression::Xz),
            ("", Compression::None),
        ]
        .into_iter()
        .find_map(|(ext, compression)| {
            let path = format!("{base}{ext}");
            self.files.get(&path).map(|(sha256, size)| {
                (
                    Download {
                        url: format!("{}/dists/{}/{path}", self.url, self.suite),
                        sha256: *sha256,
                        size: Some(*size),
                    },
                    compression,
                )
            })
        })
        .ok_or_else(|| RepoError::NoIndex {
            url: self.url.clone(),
            component: component.to_owned(),
            arch: arch.to_owned(),
        })
    }
}

/// Reads an index as it arrives: decompression runs on its own thread so
/// that it overlaps parsing (the two cost about the same).
pub fn read_packages(
    raw: Box<dyn Read + Send>,
    url: &str,
    compression: Compression,
    arch: &str,
    repository: usize,
) -> Result<Vec<Arc<Package>>, RepoError> {
    let decoded = compression
        .decoder(BufReader::new(raw))
        .map_err(|source| RepoError::Index {
            url: url.to_owned(),
            source,
        })?;
    index::parse(
        BufReader::with_capacity(1 << 20, ThreadedReader::spawn(Box::new(decoded))),
        arch,
        repository,
    )
    .map_err(|source| RepoError::Index {
        url: url.to_owned(),
        source,
    })
}

/// Runs a reader on another thread, handing its output over in chunks.
struct ThreadedReader {
    rx: std::sync::mpsc::Receiver<std::io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    pos: usize,
}

impl ThreadedReader {
    fn spawn(mut inner: Box<dyn Read + Send>) -> ThreadedReader {
        let (tx, rx) = std::sync::mpsc::sync_channel(8);
        std::thread::spawn(move || {
            loop {
                let mut chunk = vec![0u8; 256 * 1024];
                match inner.read(&mut chunk) {
                    Ok(0) => return,
                    Ok(n) => {
                        chunk.truncate(n);
                        if tx.send(Ok(chunk)).is_err() {
                            return;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                }
            }
        });
        ThreadedReader {
            rx,
            chunk: Vec::new(),
            pos: 0,
        }
    }
}

impl Read for ThreadedReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.chunk.len() {
            match self.rx.recv() {
                Err(_) => return Ok(0),
                Ok(chunk) => {
                    self.chunk = chunk?;
                    self.pos = 0;
                }
            }
        }
        let n = buf.len().min(self.chunk.len() - self.pos);
        buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Release dates are RFC 2822 (`Sat, 11 Jul 2026 10:16:37 UTC`).
pub(crate) fn parse_release_date(text: &str) -> Option<SystemTime> {
    let format = time::format_description::well_known::Rfc2822;
    let normalised = text.trim().replace(" UTC", " +0000");
    let when = time::OffsetDateTime::parse(&normalised, &format).ok()?;
    let secs = u64::try_from(when.unix_timestamp()).ok()?;
    Some(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_release_dates() {
        let t = super::parse_release_date("Sat, 11 Jul 2026 10:16:37 UTC").unwrap();
        let secs = t
            .duration_since(std::time::SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert_eq!(secs, 1_783_764_997);
        assert!(super::parse_release_date("yesterday").is_none());
    }
}
