//! The OCI layout writer.
//!
//! Blobs land through a staging folder inside the layout and an atomic rename,
//! so no half-written blob is ever visible under `blobs/`; `index.json` is
//! replaced last, in one rename. A build that fails or is interrupted leaves
//! the previous layout as it was (at most with unreferenced blobs, which the
//! next successful write removes).

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use strata_cache::Cache;

use tempfile::TempDir;

use super::{Built, OCI_LAYOUT};
use crate::image::{Blob, BlobSource};
use strata_oci::digest::{Digest, Mismatch};

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum WriteError {
    #[error("`{}` is not empty and is not an OCI layout", path.display())]
    #[diagnostic(help("choose an empty or new folder with `-o`, or remove this one"))]
    NotALayout { path: PathBuf },
    #[error("cannot copy the blob `{digest}` from `{}`", path.display())]
    #[diagnostic(help(
        "the file changed after strata checked it: make sure nothing else writes the cache or the base layout, then build again"
    ))]
    Changed {
        digest: Digest,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

type Result<T> = std::result::Result<T, WriteError>;

fn io_at(path: &Path) -> impl Fn(io::Error) -> WriteError + '_ {
    move |source| WriteError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Writes `built` as an OCI layout at `root`.
pub fn write(root: &Path, built: &Built, cache: &Cache) -> Result<()> {
    let _lock = lock(root)?;
    prepare(root)?;
    let blobs_dir = root.join("blobs/sha256");
    fs::create_dir_all(&blobs_dir).map_err(io_at(&blobs_dir))?;
    // Absolute, so that the cache's stamps of the blobs name them alone.
    let blobs_dir = fs::canonicalize(&blobs_dir).map_err(io_at(&blobs_dir))?;
    let staging = tempfile::Builder::new()
        .prefix(".strata-staging-")
        .tempdir_in(root)
        .map_err(io_at(root))?;
    for blob in &built.blobs {
        put_blob(&staging, &blobs_dir, blob, cache)?;
    }
    replace_file(&staging, &root.join("oci-layout"), OCI_LAYOUT)?;
    replace_file(&staging, &root.join("index.json"), &built.index_json())?;
    let keep: HashSet<String> = built.blobs.iter().map(|b| b.digest.hex()).collect();
    remove_unreferenced(&blobs_dir, &keep)?;
    Ok(())
}

/// Takes the layout folder (created when missing) for this process alone
/// until the returned handle drops: two builds writing one layout take turns,
/// the second waiting for the first, so neither sees the other's half-written
/// layout nor loses its image. The lock is on the folder itself (`flock`), so
/// nothing is added to the user's folder and a killed build's lock goes with
/// it.
fn lock(root: &Path) -> Result<File> {
    fs::create_dir_all(root).map_err(io_at(root))?;
    let folder = File::open(root).map_err(io_at(root))?;
    match folder.try_lock() {
        Ok(()) => return Ok(folder),
        Err(fs::TryLockError::WouldBlock) => {}
        Err(fs::TryLockError::Error(e)) => return Err(io_at(root)(e)),
    }
    strata_progress::get().println(format!(
        "waiting for another strata writing `{}`",
        root.display()
    ));
    folder.lock().map_err(io_at(root))?;
    Ok(folder)
}

/// Checks the target is empty or a layout, and clears leftovers of
/// interrupted writes.
fn prepare(root: &Path) -> Result<()> {
    match fs::read_dir(root) {
        Err(e) => Err(io_at(root)(e)),
        Ok(entries) => {
            let mut names = Vec::new();
            for entry in entries {
                names.push(entry.map_err(io_at(root))?.file_name());
            }
            if !names.is_empty() && !root.join("oci-layout").is_file() {
                return Err(WriteError::NotALayout {
                    path: root.to_owned(),
                });
            }
            for name in names {
                if name.to_string_lossy().starts_with(".strata-staging-") {
                    let path = root.join(&name);
                    match fs::remove_dir_all(&path) {
                        Err(e) if e.kind() != io::ErrorKind::NotFound => {
                            return Err(io_at(&path)(e));
                        }
                        _ => {}
                    }
                }
            }
            Ok(())
        }
    }
}

/// Puts a copy of the blob in the layout. Never a hard link or a symlink: an
/// output must not change when a cache blob or a base layout's blob is later
/// edited, and a base layout's files must never be changed through it (its
/// mode included). The copy goes through `Blob::open`, which checks the bytes
/// against the digest, so a source changed since it was verified fails the
/// write rather than landing under another blob's name.
fn put_blob(staging: &TempDir, blobs_dir: &Path, blob: &Blob, cache: &Cache) -> Result<()> {
    let dest = blobs_dir.join(blob.digest.hex());
    if is_intact(&dest, &blob.digest, blob.size, cache) {
        return Ok(());
    }
    let tmp = staging.path().join(blob.digest.hex());
    let mut file = File::create(&tmp).map_err(io_at(&tmp))?;
    let mut source = blob.open().map_err(io_at(&source_path(blob)))?;
    io::copy(&mut source, &mut file).map_err(|e| {
        if e.get_ref().is_some_and(|inner| inner.is::<Mismatch>()) {
            WriteError::Changed {
                digest: blob.digest,
                path: source_path(blob),
                source: e,
            }
        } else {
            // What fails here is the output's disk (full, or a size
            // limit): the error names the blob being written.
            io_at(&dest)(e)
        }
    })?;
    file.sync_all().map_err(io_at(&dest))?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o644)).map_err(io_at(&tmp))?;
    fs::rename(&tmp, &dest).map_err(io_at(&dest))
}

fn source_path(blob: &Blob) -> PathBuf {
    match &blob.source {
        BlobSource::File(path) => path.clone(),
        BlobSource::Bytes(_) | BlobSource::Registry(_) => PathBuf::new(),
    }
}

/// A blob already in the layout is kept when it is a regular file of its
/// own (not a symlink, not a hard link shared with a file elsewhere) whose
/// bytes match. The bytes are hashed once and then trusted while the file
/// keeps its stamp (inode, size, times: see `Cache::verified_file`), so
/// that a rebuild with nothing changed does not read the whole image again;
/// a blob that does not match is removed, and written again.
fn is_intact(path: &Path, digest: &Digest, size: u64, cache: &Cache) -> bool {
    use std::os::unix::fs::MetadataExt;
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_file() && meta.nlink() == 1 && meta.len() == size => {}
        _ => return false,
    }
    cache.verified_file(path, digest) == Some(size)
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = File::create(path).map_err(io_at(path))?;
    file.write_all(bytes).map_err(io_at(path))?;
    file.sync_all().map_err(io_at(path))
}

fn replace_file(staging: &TempDir, dest: &Path, bytes: &[u8]) -> Result<()> {
    let name = dest.file_name().unwrap_or_default();
    let tmp = staging.path().join(name);
    write_synced(&tmp, bytes)?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o644)).map_err(io_at(&tmp))?;
    fs::rename(&tmp, dest).map_err(io_at(dest))
}

fn remove_unreferenced(blobs_dir: &Path, keep: &HashSet<String>) -> Result<()> {
    for entry in fs::read_dir(blobs_dir).map_err(io_at(blobs_dir))? {
        let entry = entry.map_err(io_at(blobs_dir))?;
        if !keep.contains(entry.file_name().to_string_lossy().as_ref()) {
            let path = entry.path();
            match fs::remove_file(&path) {
                // Already gone (removed by hand, or by another tool): done.
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io_at(&path)(e)),
                _ => {}
            }
        }
    }
    Ok(())
}
