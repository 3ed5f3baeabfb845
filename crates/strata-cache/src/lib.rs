//! The content-addressed cache: blobs by digest, and records that map a layer's
//! key to the blob built for it.
//!
//! Writers go through a temporary file and an atomic rename, so two builds
//! sharing the cache never see each other's half-written files; readers verify
//! a blob's digest before trusting it.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use strata_oci::digest::Digest;

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum CacheError {
    #[error("no cache folder: none of `STRATA_CACHE`, `XDG_CACHE_HOME` or `HOME` is set")]
    #[diagnostic(help("set `STRATA_CACHE` to a writable folder"))]
    NoLocation,
    #[error("cannot use the cache at `{}`", path.display())]
    #[diagnostic(help("check that the folder is writable, or point `STRATA_CACHE` elsewhere"))]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

impl Cache {
    /// `$STRATA_CACHE`, else `$XDG_CACHE_HOME/strata`, else `~/.cache/strata`.
    pub fn from_env() -> Result<Cache, CacheError> {
        let var = |k| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let root = var("STRATA_CACHE")
            .or_else(|| var("XDG_CACHE_HOME").map(|p| p.join("strata")))
            .or_else(|| var("HOME").map(|p| p.join(".cache/strata")))
            .ok_or(CacheError::NoLocation)?;
        Cache::at(root)
    }

    pub fn at(root: PathBuf) -> Result<Cache, CacheError> {
        for sub in ["blobs/sha256", "layers", "sbom-files", "tmp"] {
            let dir = root.join(sub);
            fs::create_dir_all(&dir).map_err(|source| CacheError::Io { path: dir, source })?;
        }
        Ok(Cache { root })
    }

    /// A named folder inside the cache, created when missing.
    pub fn dir(&self, name: &str) -> Result<PathBuf, CacheError> {
        let dir = self.root.join(name);
        fs::create_dir_all(&dir).map_err(|source| CacheError::Io {
            path: dir.clone(),
            source,
        })?;
        Ok(dir)
    }

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    /// The blob's path if it is present and its bytes match its digest.
    pub fn verified_blob(&self, digest: &Digest) -> Option<PathBuf> {
        let path = self.blob_path(digest);
        let file = File::open(&path).ok()?;
        match Digest::of_reader(file) {
            Ok((d, _)) if d == *digest => Some(path),
            _ => {
                // A corrupt entry is dropped so that it gets rebuilt.
                let _ = fs::remove_file(&path);
                None
            }
        }
    }

    pub fn temp_file(&self) -> Result<NamedTempFile, CacheError> {
        let dir = self.root.join("tmp");
        NamedTempFile::new_in(&dir).map_err(|source| CacheError::Io { path: dir, source })
    }

    /// Moves a finished temporary file into place under its digest.
    pub fn commit_blob(&self, tmp: NamedTempFile, digest: &Digest) -> Result<PathBuf, CacheError> {
        let path = self.blob_path(digest);
        tmp.persist(&path).map_err(|e| CacheError::Io {
            path: path.clone(),
            source: e.error,
        })?;
        Ok(path)
    }

    fn record_path(&self, kind: &str, key: &Digest) -> PathBuf {
        self.root.join(kind).join(format!("{}.json", key.hex()))
    }

    pub fn read_record<T: serde::de::DeserializeOwned>(
        &self,
        kind: &str,
        key: &Digest,
    ) -> Option<T> {
        let bytes = fs::read(self.record_path(kind, key)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    pub fn write_record<T: serde::Serialize>(
        &self,
        kind: &str,
        key: &Digest,
        value: &T,
    ) -> Result<(), CacheError> {
        let path = self.record_path(kind, key);
        let io = |source| CacheError::Io {
            path: path.clone(),
            source,
        };
        let tmp = self.temp_file()?;
        let bytes = serde_json::to_vec(value).map_err(|e| io(e.into()))?;
        fs::write(tmp.path(), bytes).map_err(io)?;
        tmp.persist(&path).map_err(|e| io(e.error))?;
        Ok(())
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}
