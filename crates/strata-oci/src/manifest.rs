//! What a manifest says of each layer: enough to copy, verify and describe
//! it without reading it.

use crate::digest::Digest;

/// A layer as the manifest lists it, with its `diff_id` from the config.
#[derive(Debug, Clone)]
pub struct ManifestLayer {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    /// The sha256 of the uncompressed tar.
    pub diff_id: Digest,
}
