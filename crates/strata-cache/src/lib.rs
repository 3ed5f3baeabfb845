//! The content-addressed cache: blobs by digest, and records that map a layer's
//! key to the blob built for it.
//!
//! Writers go through a temporary file and an atomic rename, so two builds
//! sharing the cache never see each other's half-written files; readers verify
//! a blob's digest before trusting it, and a record's own digest, kind and key
//! before trusting what it says (a record edited, truncated or copied over
//! another reads as missing, so its work is done again).
//!
//! Each `Cache` keeps its temporaries in a folder of its own under `tmp/`,
//! locked (`flock`) for as long as it lives; opening the cache removes the
//! folders of processes that died without cleaning up.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tempfile::{NamedTempFile, TempDir};

use strata_oci::digest::Digest;

/// The largest record strata reads: the file list of the largest Debian
/// packages is a few MiB.
const MAX_RECORD: u64 = 64 << 20;

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
    tmp: Arc<OwnTmp>,
}

/// This process's temporaries folder, and the lock that tells other
/// processes it is alive. Dropped with the last `Cache` clone: the folder goes.
#[derive(Debug)]
struct OwnTmp {
    dir: TempDir,
    _lock: File,
}

/// How long an unlocked folder under `tmp/` is left alone: it covers the
/// moment between a process creating its folder and locking it.
const UNLOCKED_GRACE: Duration = Duration::from_secs(60);
/// Loose files under `tmp/` (older strata versions wrote them there) cannot
/// be locked: only their age says that their writer is gone.
const LOOSE_FILE_AGE: Duration = Duration::from_secs(24 * 60 * 60);

/// How long before a hash began a file must have last changed for its
/// stamp to be kept: longer than any filesystem's timestamp granularity.
const STAMP_MARGIN: Duration = Duration::from_secs(2);

/// The first line of a record file: format, kind, key and the digest of the
/// JSON that follows.
const RECORD_MAGIC: &str = "strata-record-v1";

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
        for sub in [
            "blobs/sha256",
            "layers",
            "sbom-files",
            "stages",
            "stamps",
            "tmp",
        ] {
            let dir = root.join(sub);
            fs::create_dir_all(&dir).map_err(|source| CacheError::Io { path: dir, source })?;
        }
        let tmp_root = root.join("tmp");
        remove_stale_temporaries(&tmp_root);
        let io = |source| CacheError::Io {
            path: tmp_root.clone(),
            source,
        };
        let dir = tempfile::Builder::new()
            .prefix("build-")
            .tempdir_in(&tmp_root)
            .map_err(io)?;
        let lock = File::open(dir.path()).map_err(io)?;
        lock.lock().map_err(io)?;
        Ok(Cache {
            root,
            tmp: Arc::new(OwnTmp { dir, _lock: lock }),
        })
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
        self.verified_file(&path, digest).map(|_| path)
    }

    /// The size of the file at `path` (in the cache) if its bytes match
    /// `digest`. A file that does not is removed, so that it gets rebuilt.
    ///
    /// The bytes are hashed once; the file's inode, size, mtime and ctime
    /// (nanoseconds) are then kept as a stamp, and a later check whose file
    /// still has them is not hashed again: git's rule for its index. Any
    /// write to the file moves its ctime, which no user can set back, so a
    /// file changed after it was hashed never matches its stamp. A stamp is
    /// kept only for a file whose ctime is well before the hash began, so a
    /// write in the same clock tick as the hashing cannot hide either.
    pub fn verified_file(&self, path: &Path, digest: &Digest) -> Option<u64> {
        let stamp_path = self.stamp_path(path, digest);
        // A symlink is not followed: it could point at `/dev/zero`.
        let meta = fs::symlink_metadata(path).ok().filter(|m| m.is_file())?;
        let stamp = stamp_line(&meta);
        if fs::read(&stamp_path).is_ok_and(|s| s == stamp.as_bytes()) {
            return Some(meta.len());
        }
        let started = SystemTime::now();
        let hashed = strata_oci::regular::open_regular(path).and_then(Digest::of_reader);
        match hashed {
            Ok((d, size)) if d == *digest => {
                if ctime(&meta).is_some_and(|c| c + STAMP_MARGIN < started) {
                    // Best effort: without a stamp the file is hashed again.
                    let _ = self.write_stamp(&stamp_path, &stamp);
                }
                Some(size)
            }
            _ => {
                let _ = fs::remove_file(path);
                let _ = fs::remove_file(&stamp_path);
                None
            }
        }
    }

    fn stamp_path(&self, path: &Path, digest: &Digest) -> PathBuf {
        use std::os::unix::ffi::OsStrExt;
        let mut named = path.as_os_str().as_bytes().to_vec();
        named.push(0);
        named.extend_from_slice(digest.hex().as_bytes());
        self.root.join("stamps").join(Digest::of(&named).hex())
    }

    fn write_stamp(&self, stamp_path: &Path, stamp: &str) -> Result<(), CacheError> {
        let tmp = self.temp_file()?;
        let io = |source| CacheError::Io {
            path: stamp_path.to_owned(),
            source,
        };
        fs::write(tmp.path(), stamp).map_err(io)?;
        tmp.persist(stamp_path).map_err(|e| io(e.error))?;
        Ok(())
    }

    /// A temporary file in this process's own folder, for an atomic rename
    /// into the cache.
    pub fn temp_file(&self) -> Result<NamedTempFile, CacheError> {
        let dir = self.tmp.dir.path();
        NamedTempFile::new_in(dir).map_err(|source| CacheError::Io {
            path: dir.to_owned(),
            source,
        })
    }

    /// A temporary folder in this process's own folder.
    pub fn temp_dir(&self) -> Result<TempDir, CacheError> {
        let dir = self.tmp.dir.path();
        TempDir::new_in(dir).map_err(|source| CacheError::Io {
            path: dir.to_owned(),
            source,
        })
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

    /// The record of `kind` under `key`, if there is one whose header names
    /// this kind and key and whose body matches the digest the header gives.
    /// Any other file (damaged, or another record renamed to this name) is
    /// removed and reads as missing, so that its work is done again.
    pub fn read_record<T: serde::de::DeserializeOwned>(
        &self,
        kind: &str,
        key: &Digest,
    ) -> Option<T> {
        let path = self.record_path(kind, key);
        let bytes = strata_oci::regular::read_capped(&path, MAX_RECORD).ok()?;
        let value = record_body(&bytes, kind, key).and_then(|b| serde_json::from_slice(b).ok());
        if value.is_none() {
            let _ = fs::remove_file(&path);
        }
        value
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
        let body = serde_json::to_vec(value).map_err(|e| io(e.into()))?;
        let mut bytes = record_header(kind, key, &body).into_bytes();
        bytes.extend_from_slice(&body);
        fs::write(tmp.path(), bytes).map_err(io)?;
        tmp.persist(&path).map_err(|e| io(e.error))?;
        Ok(())
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}

/// What a file's stamp holds: what any write to it would change.
fn stamp_line(meta: &fs::Metadata) -> String {
    use std::os::unix::fs::MetadataExt;
    format!(
        "{} {} {} {}.{:09} {}.{:09}\n",
        meta.dev(),
        meta.ino(),
        meta.len(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ctime(),
        meta.ctime_nsec()
    )
}

/// The time of the file's last change of content or metadata.
fn ctime(meta: &fs::Metadata) -> Option<SystemTime> {
    use std::os::unix::fs::MetadataExt;
    let secs = u64::try_from(meta.ctime()).ok()?;
    let nanos = u32::try_from(meta.ctime_nsec()).ok()?;
    SystemTime::UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
}

fn record_header(kind: &str, key: &Digest, body: &[u8]) -> String {
    format!(
        "{RECORD_MAGIC} {kind} {} {}\n",
        key.hex(),
        Digest::of(body).hex()
    )
}

/// The JSON of a record file, if its header is the one `kind`, `key` and
/// that JSON give.
fn record_body<'a>(bytes: &'a [u8], kind: &str, key: &Digest) -> Option<&'a [u8]> {
    let newline = bytes.iter().position(|&b| b == b'\n')?;
    let (header, body) = (&bytes[..=newline], &bytes[newline + 1..]);
    (header == record_header(kind, key, body).as_bytes()).then_some(body)
}

/// Removes what dead processes left under `tmp/`: folders no live process
/// holds the lock of (and old enough not to be one being set up), and loose
/// files no longer written to. Best effort: a temporary that cannot be
/// removed now is tried again by the next build.
fn remove_stale_temporaries(tmp_root: &Path) {
    let Ok(entries) = fs::read_dir(tmp_root) else {
        return;
    };
    let now = SystemTime::now();
    let age = |meta: &fs::Metadata| {
        meta.modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .unwrap_or_default()
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            // The lock is held while the folder goes, so no other process
            // takes it for a dead one's at the same time.
            let Ok(dir) = File::open(&path) else {
                continue;
            };
            if age(&meta) >= UNLOCKED_GRACE && dir.try_lock().is_ok() {
                let _ = fs::remove_dir_all(&path);
            }
        } else if age(&meta) >= LOOSE_FILE_AGE {
            let _ = fs::remove_file(&path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache() -> (tempfile::TempDir, Cache) {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(dir.path().join("cache")).unwrap();
        (dir, cache)
    }

    #[test]
    fn a_record_reads_back_only_under_its_own_kind_and_key() {
        let (_dir, cache) = cache();
        let (a, b) = (Digest::of(b"a"), Digest::of(b"b"));
        cache.write_record("layers", &a, &vec![1u64, 2]).unwrap();
        cache.write_record("layers", &b, &vec![3u64]).unwrap();
        assert_eq!(
            cache.read_record::<Vec<u64>>("layers", &a),
            Some(vec![1, 2])
        );

        // Copied over another key's record: read as missing, and removed.
        fs::copy(
            cache.record_path("layers", &a),
            cache.record_path("layers", &b),
        )
        .unwrap();
        assert_eq!(cache.read_record::<Vec<u64>>("layers", &b), None);
        assert!(!cache.record_path("layers", &b).exists());

        // Its JSON edited: read as missing.
        let path = cache.record_path("layers", &a);
        let text = fs::read_to_string(&path).unwrap().replace("[1,2]", "[1,3]");
        fs::write(&path, text).unwrap();
        assert_eq!(cache.read_record::<Vec<u64>>("layers", &a), None);

        // Under another kind: read as missing.
        cache.write_record("layers", &a, &vec![1u64]).unwrap();
        fs::create_dir_all(cache.root().join("debs")).unwrap();
        fs::copy(&path, cache.record_path("debs", &a)).unwrap();
        assert_eq!(cache.read_record::<Vec<u64>>("debs", &a), None);
    }

    #[test]
    fn a_file_changed_after_its_stamp_is_hashed_again() {
        use std::io::{Seek, Write};
        let (dir, cache) = cache();
        let path = dir.path().join("copy.tar");
        fs::write(&path, b"unpacked bytes").unwrap();
        let digest = Digest::of(b"unpacked bytes");
        // Only a file that changed well before the hash gets a stamp.
        assert_eq!(cache.verified_file(&path, &digest), Some(14));
        assert!(!cache.stamp_path(&path, &digest).exists());
        std::thread::sleep(STAMP_MARGIN + Duration::from_millis(500));
        assert_eq!(cache.verified_file(&path, &digest), Some(14));
        assert!(cache.stamp_path(&path, &digest).exists());
        assert_eq!(cache.verified_file(&path, &digest), Some(14));

        // Changed in place, same size: the stamp no longer matches.
        let mut file = fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.seek(io::SeekFrom::Start(3)).unwrap();
        file.write_all(b"X").unwrap();
        drop(file);
        assert_eq!(cache.verified_file(&path, &digest), None);
        assert!(!path.exists(), "a damaged copy is removed");
    }

    #[test]
    fn temporaries_of_dead_processes_go_and_live_ones_stay() {
        let (dir, live) = cache();
        let tmp = dir.path().join("cache/tmp");
        let own = live.temp_file().unwrap();
        let dead = tmp.join("build-dead");
        fs::create_dir(&dead).unwrap();
        fs::write(dead.join("partial"), b"x").unwrap();
        let two_days = SystemTime::now() - Duration::from_secs(2 * 24 * 3600);
        for dir in [&dead, &live.tmp.dir.path().to_path_buf()] {
            File::open(dir).unwrap().set_modified(two_days).unwrap();
        }
        let other = Cache::at(dir.path().join("cache")).unwrap();
        assert!(!dead.exists(), "a dead process's folder stays");
        assert!(own.path().exists(), "a live process's temporary went");
        let other_tmp = other.tmp.dir.path().to_path_buf();
        drop(other);
        assert!(!other_tmp.exists(), "a process's folder outlives it");
    }
}
