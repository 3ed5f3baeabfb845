//! Reading OCI image layouts: `index.json`, and blobs checked against their
//! digests and sizes before anything trusts them (as strict as umoci).

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest, MediaType};

use crate::digest::{Digest, HashingWriter};

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum LayoutError {
    #[error("`{}` is not an OCI image layout", path.display())]
    #[diagnostic(help(
        "an OCI layout holds `oci-layout`, `index.json` and `blobs/`: build one with `strata build -o DIR`"
    ))]
    NotALayout { path: PathBuf },
    #[error("cannot read `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("blob {digest} in `{}` is missing", layout.display())]
    #[diagnostic(help("the layout is incomplete: rebuild or re-copy it"))]
    Missing { layout: PathBuf, digest: Digest },
    #[error("blob {digest} in `{}` does not match its digest (its bytes hash to {actual})", layout.display())]
    #[diagnostic(help("the layout is corrupt or was tampered with: rebuild or re-copy it"))]
    DigestMismatch {
        layout: PathBuf,
        digest: Digest,
        actual: Digest,
    },
    #[error("blob {digest} in `{}` is {actual} bytes, but its descriptor says {expected}", layout.display())]
    #[diagnostic(help("the layout is corrupt or was tampered with: rebuild or re-copy it"))]
    SizeMismatch {
        layout: PathBuf,
        digest: Digest,
        expected: u64,
        actual: u64,
    },
    #[error("`{what}` in `{}` is not valid: {message}", layout.display())]
    Invalid {
        layout: PathBuf,
        what: String,
        message: String,
    },
    #[error("{} in `{}` (tags: {known})", if tag.is_empty() { "several images".to_owned() } else { format!("no image tagged `{tag}`") }, layout.display())]
    #[diagnostic(help("name one of the listed tags: `DIR:TAG`"))]
    NoSuchTag {
        layout: PathBuf,
        tag: String,
        known: String,
    },
}

type Result<T> = std::result::Result<T, LayoutError>;

pub struct Layout {
    root: PathBuf,
    pub index: ImageIndex,
}

/// The most strata reads of a JSON document of a layout (`index.json`, a
/// manifest, a config, an SBOM) whole; registries refuse manifests over
/// 4 MiB, and a sparse file or a lying descriptor could claim gigabytes.
pub const MAX_DOCUMENT: u64 = 64 << 20;

/// The annotation on an image's descriptor in `index.json` that names the
/// image's referrers index: an image index shaped as the distribution
/// spec's referrers API answers, listing the artifacts about the image (its
/// SBOM). Listing them there rather than in `index.json` leaves one image in
/// `index.json`, which is what Syft, skopeo and umoci read without being told
/// which entry to take.
pub const REFERRERS: &str = "dev.strata.referrers";

/// The annotation that names a tag in `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

impl Layout {
    pub fn open(root: &Path) -> Result<Layout> {
        if !root.join("oci-layout").is_file() {
            return Err(LayoutError::NotALayout {
                path: root.to_owned(),
            });
        }
        let path = root.join("index.json");
        let bytes = crate::regular::read_capped(&path, MAX_DOCUMENT)
            .map_err(|source| LayoutError::Io { path, source })?;
        let index = serde_json::from_slice(&bytes).map_err(|e| LayoutError::Invalid {
            layout: root.to_owned(),
            what: "index.json".into(),
            message: e.to_string(),
        })?;
        Ok(Layout {
            root: root.to_owned(),
            index,
        })
    }

    /// A folder of `blobs/sha256/…` with no index of its own: strata's cache,
    /// where bases pulled from registries and archives are kept.
    pub fn blob_store(root: &Path, index: ImageIndex) -> Layout {
        Layout {
            root: root.to_owned(),
            index,
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    /// The descriptor tagged `tag`, or the only one when no tag is given.
    pub fn find(&self, tag: Option<&str>) -> Result<&Descriptor> {
        fn tagged<'d>(d: &&'d Descriptor) -> Option<&'d str> {
            d.annotations()
                .as_ref()
                .and_then(|a| a.get(REF_NAME))
                .map(String::as_str)
        }
        let manifests = self.index.manifests();
        let found = match tag {
            Some(tag) => manifests.iter().find(|d| tagged(d) == Some(tag)),
            // Untagged: the one image, however many tags it has; artifacts
            // about it (its SBOM) do not count as images.
            None => {
                let mut images = manifests.iter().filter(|d| !is_artifact(d));
                let first = images.next();
                first.filter(|f| images.all(|d| d.digest() == f.digest()))
            }
        };
        found.ok_or_else(|| LayoutError::NoSuchTag {
            layout: self.root.clone(),
            tag: tag.unwrap_or("").to_owned(),
            known: manifests
                .iter()
                .filter_map(|d| tagged(&d))
                .collect::<Vec<_>>()
                .join(", "),
        })
    }

    /// Opens a blob after checking its size; callers stream it and check the digest.
    pub fn open_blob(&self, digest: &Digest, size: Option<u64>) -> Result<File> {
        let path = self.blob_path(digest);
        let file = crate::regular::open_regular(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => LayoutError::Missing {
                layout: self.root.clone(),
                digest: *digest,
            },
            _ => LayoutError::Io {
                path: path.clone(),
                source: e,
            },
        })?;
        if let Some(expected) = size {
            let actual = file
                .metadata()
                .map_err(|source| LayoutError::Io { path, source })?
                .len();
            if actual != expected {
                return Err(LayoutError::SizeMismatch {
                    layout: self.root.clone(),
                    digest: *digest,
                    expected,
                    actual,
                });
            }
        }
        Ok(file)
    }

    /// Reads a document blob (at most [`MAX_DOCUMENT`]) whole, verified;
    /// `size` is its descriptor's, when there is one.
    pub fn read_blob(&self, digest: &Digest, size: Option<u64>) -> Result<Vec<u8>> {
        let too_large = |size: u64| {
            self.invalid(
                "descriptor",
                format!(
                    "{digest} is {size} bytes, more than the {} MiB strata reads of a manifest, config or SBOM",
                    MAX_DOCUMENT >> 20
                ),
            )
        };
        if let Some(size) = size.filter(|s| *s > MAX_DOCUMENT) {
            return Err(too_large(size));
        }
        let file = self.open_blob(digest, size)?;
        let mut bytes = Vec::new();
        file.take(MAX_DOCUMENT + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| LayoutError::Io {
                path: self.blob_path(digest),
                source,
            })?;
        if bytes.len() as u64 > MAX_DOCUMENT {
            return Err(too_large(bytes.len() as u64));
        }
        self.check_digest(digest, Digest::of(&bytes))?;
        Ok(bytes)
    }

    /// The artifact manifests that may be about `image` (a descriptor of
    /// `index.json`): those its referrers index lists (see [`REFERRERS`]),
    /// then those `index.json` lists itself, as ORAS and earlier strata builds
    /// wrote them. Callers check each one's `subject`.
    pub fn artifacts(&self, image: &Descriptor) -> Result<Vec<Descriptor>> {
        let mut found = Vec::new();
        if let Some(value) = image.annotations().as_ref().and_then(|a| a.get(REFERRERS)) {
            let digest: Digest = value
                .parse()
                .map_err(|e| self.invalid("index.json", format!("`{REFERRERS}` `{value}`: {e}")))?;
            let bytes = self.read_blob(&digest, None)?;
            let index: ImageIndex = serde_json::from_slice(&bytes)
                .map_err(|e| self.invalid("referrers index", e.to_string()))?;
            found.extend(index.manifests().iter().cloned());
        }
        for d in self.index.manifests().iter().filter(|d| is_artifact(d)) {
            if !found.iter().any(|f| f.digest() == d.digest()) {
                found.push(d.clone());
            }
        }
        Ok(found)
    }

    pub fn check_digest(&self, expected: &Digest, actual: Digest) -> Result<()> {
        if actual == *expected {
            Ok(())
        } else {
            Err(LayoutError::DigestMismatch {
                layout: self.root.clone(),
                digest: *expected,
                actual,
            })
        }
    }

    pub fn read_json<T: serde::de::DeserializeOwned>(
        &self,
        desc: &Descriptor,
        what: &str,
    ) -> Result<T> {
        let digest = descriptor_digest(desc).map_err(|message| self.invalid(what, message))?;
        let bytes = self.read_blob(&digest, Some(desc.size()))?;
        serde_json::from_slice(&bytes).map_err(|e| self.invalid(what, e.to_string()))
    }

    /// The manifest for `platform` under `desc`, following an index if there is one.
    pub fn manifest_for(
        &self,
        desc: &Descriptor,
        platform: &crate::platform::Platform,
    ) -> Result<(Descriptor, ImageManifest)> {
        if is_index(desc.media_type()) {
            let index: ImageIndex = self.read_json(desc, "image index")?;
            let chosen = select_platform(&index, platform).ok_or_else(|| {
                self.invalid("image index", format!("it has no manifest for {platform}"))
            })?;
            let manifest = self.read_json(chosen, "manifest")?;
            return Ok((chosen.clone(), manifest));
        }
        Ok((desc.clone(), self.read_json(desc, "manifest")?))
    }

    pub fn invalid(&self, what: &str, message: impl Into<String>) -> LayoutError {
        LayoutError::Invalid {
            layout: self.root.clone(),
            what: what.to_owned(),
            message: message.into(),
        }
    }
}

/// The entry of an index for `platform`: same os and architecture, and the
/// same variant when the platform names one.
pub fn select_platform<'i>(
    index: &'i ImageIndex,
    platform: &crate::platform::Platform,
) -> Option<&'i Descriptor> {
    index.manifests().iter().find(|d| {
        d.platform().as_ref().is_some_and(|p| {
            p.os().to_string() == platform.os
                && p.architecture().to_string() == platform.architecture
                && (platform.variant.is_none() || p.variant() == &platform.variant)
        })
    })
}

/// Whether an `index.json` entry is an artifact about an image (an SBOM
/// with `artifactType`, untagged) rather than an image of its own.
pub fn is_artifact(d: &Descriptor) -> bool {
    d.artifact_type().is_some()
        && d.annotations()
            .as_ref()
            .is_none_or(|a| !a.contains_key(REF_NAME))
}

pub fn is_index(media_type: &MediaType) -> bool {
    matches!(media_type, MediaType::ImageIndex)
        || media_type.to_string() == "application/vnd.docker.distribution.manifest.list.v2+json"
}

pub fn descriptor_digest(desc: &Descriptor) -> std::result::Result<Digest, String> {
    Digest::try_from(desc.digest()).map_err(|e| e.to_string())
}

/// A reader that hashes what passes through it.
pub struct HashingReader<R> {
    inner: R,
    sink: HashingWriter<io::Sink>,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            sink: HashingWriter::new(io::sink()),
        }
    }

    /// Reads what is left, then returns the digest and size of everything read.
    pub fn finish(mut self) -> io::Result<(Digest, u64)> {
        io::copy(&mut self.inner, &mut self.sink)?;
        let (_, digest, size) = self.sink.finish();
        Ok((digest, size))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        io::Write::write_all(&mut self.sink, &buf[..n])?;
        Ok(n)
    }
}
