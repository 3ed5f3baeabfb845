//! The regular files of a layer with their sha256 and sha1, for the SBOM:
//! hashed while the layer is written, so that a copied file is read once.

use std::io;

use serde::{Deserialize, Serialize};
use sha1::Digest as _;
use strata_oci::digest::HashingWriter;

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
pub struct Hasher {
    sha256: HashingWriter<io::Sink>,
    sha1: sha1::Sha1,
}

impl Default for Hasher {
    fn default() -> Self {
        Hasher {
            sha256: HashingWriter::new(io::sink()),
            sha1: sha1::Sha1::new(),
        }
    }
}

impl Hasher {
    pub fn update(&mut self, bytes: &[u8]) {
        self.sha1.update(bytes);
        // Writing to a sink cannot fail.
        let _ = io::Write::write_all(&mut self.sha256, bytes);
    }

    pub fn finish(self, path: String) -> FileHash {
        let (_, sha256, _) = self.sha256.finish();
        FileHash {
            path,
            sha256: sha256.hex(),
            sha1: hex::encode(self.sha1.finalize()),
        }
    }
}

/// The hashes of what `reader` gives.
pub fn hash(path: String, mut reader: impl io::Read) -> io::Result<FileHash> {
    let mut hasher = Hasher::default();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match reader.read(&mut buf)? {
            0 => return Ok(hasher.finish(path)),
            n => hasher.update(&buf[..n]),
        }
    }
}
