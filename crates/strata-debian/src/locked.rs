//! What the lock records of Debian: each repository's signed state and each
//! package a platform gets, with the hash every download is checked against.

use strata_oci::digest::Digest;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockedRepository {
    pub url: String,
    pub suite: String,
    pub inrelease: Digest,
    pub date: String,
    /// The release's `Version` (`12.15`), when it has one.
    pub version: Option<String>,
}

impl LockedRepository {
    /// The release's `Date`, in seconds since 1970.
    pub fn released(&self) -> Option<u64> {
        crate::repo::parse_release_date(&self.date)?
            .duration_since(std::time::SystemTime::UNIX_EPOCH)
            .ok()
            .map(|d| d.as_secs())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockedPackage {
    pub name: String,
    pub version: String,
    pub architecture: String,
    /// The repository URL it comes from.
    pub repository: String,
    /// Path under the repository URL (`pool/main/…`).
    pub path: String,
    pub size: u64,
    pub sha256: Digest,
}

impl LockedPackage {
    pub fn url(&self) -> String {
        format!("{}/{}", self.repository, self.path)
    }

    /// The `.deb` to fetch, and what it must hash to.
    pub fn download(&self) -> strata_client::fetch::Download {
        strata_client::fetch::Download {
            url: self.url(),
            sha256: self.sha256,
            size: Some(self.size),
        }
    }
}
