//! A wheel as the lock records it: enough to fetch and verify it again with
//! no index at all.

use strata_oci::digest::Digest;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockedWheel {
    /// The normalized project name (PEP 503).
    pub name: String,
    pub version: String,
    pub url: String,
    /// `None` when the index did not say (PEP 700 made it optional).
    pub size: Option<u64>,
    pub sha256: Digest,
    /// The best tag the wheel has for the image's interpreter and platform.
    pub tag: String,
}

impl LockedWheel {
    /// The wheel's file name, the last segment of its URL.
    pub fn filename(&self) -> &str {
        let path = self.url.split(['?', '#']).next().unwrap_or(&self.url);
        path.rsplit('/').next().unwrap_or(path)
    }
}
