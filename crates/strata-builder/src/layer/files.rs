//! The regular files of a layer with their sha256 and sha1, for the SBOM:
//! hashed while the layer is written, so that a copied file is read once.

use std::io;

use serde::{Deserialize, Serialize};
use sha2::Digest as _;

/// Cache records of a layer's file hashes, by the layer's key (with the
/// default compression): a rebuild with nothing changed reads none of the
/// copied files, SBOM included.
pub const RECORDS: &str = "sbom-files";

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FileHash {
    /// Absolute, in the image.
    pub path: String,
    /// Lowercase hex.
    pub sha256: String,
    pub sha1: String,
}

/// sha256 and sha1 of the same bytes, in one pass (SPDX 2.3 requires a
/// file's SHA1).
#[derive(Default)]
pub struct Hasher {
    sha256: sha2::Sha256,
    sha1: sha1::Sha1,
}

impl Hasher {
    pub fn update(&mut self, bytes: &[u8]) {
        self.sha256.update(bytes);
        self.sha1.update(bytes);
    }

    pub fn finish(self, path: String) -> FileHash {
        FileHash {
            path,
            sha256: hex::encode(self.sha256.finalize()),
            sha1: hex::encode(self.sha1.finalize()),
        }
    }
}

impl io::Write for Hasher {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The hashes of what `reader` gives.
pub fn hash(path: String, mut reader: impl io::Read) -> io::Result<FileHash> {
    let mut hasher = Hasher::default();
    io::copy(&mut reader, &mut hasher)?;
    Ok(hasher.finish(path))
}
