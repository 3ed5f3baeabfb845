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

use tempfile::TempDir;

use super::{Built, OCI_LAYOUT};
use crate::image::{Blob, BlobSource};
use strata_oci::digest::Digest;

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum WriteError {
    #[error("`{}` is not empty and is not an OCI layout", path.display())]
    #[diagnostic(help("choose an empty or new folder with `-o`, or remove this one"))]
    NotALayout { path: PathBuf },
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
pub fn write(root: &Path, built: &Built) -> Result<()> {
    prepare(root)?;
    let blobs_dir = root.join("blobs/sha256");
    fs::create_dir_all(&blobs_dir).map_err(io_at(&blobs_dir))?;
    let staging = tempfile::Builder::new()
        .prefix(".strata-staging-")
        .tempdir_in(root)
        .map_err(io_at(root))?;
    for blob in &built.blobs {
        put_blob(&staging, &blobs_dir, blob)?;
    }
    replace_file(&staging, &root.join("oci-layout"), OCI_LAYOUT)?;
    replace_file(&staging, &root.join("index.json"), &built.index_json())?;
    let keep: HashSet<String> = built.blobs.iter().map(|b| b.digest.hex()).collect();
    remove_unreferenced(&blobs_dir, &keep)?;
    Ok(())
}

/// Checks the target is new, empty or a layout, and clears leftovers of
/// interrupted writes.
fn prepare(root: &Path) -> Result<()> {
    match fs::read_dir(root) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(root).map_err(io_at(root))
        }
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
                    fs::remove_dir_all(&path).map_err(io_at(&path))?;
                }
            }
            Ok(())
        }
    }
}

fn put_blob(staging: &TempDir, blobs_dir: &Path, blob: &Blob) -> Result<()> {
    let dest = blobs_dir.join(blob.digest.hex());
    if is_same_file(&blob.source, &dest) || is_intact(&dest, &blob.digest, blob.size) {
        return Ok(());
    }
    let tmp = staging.path().join(blob.digest.hex());
    match &blob.source {
        BlobSource::File(src) => {
            // A hard link shares the cache's verified bytes without copying them.
            if fs::hard_link(src, &tmp).is_err() {
                // What fails while copying is the output's disk (full, or
                // a size limit): the error names the blob being written.
                fs::copy(src, &tmp).map_err(io_at(&dest))?;
            }
        }
        BlobSource::Bytes(bytes) => write_synced(&tmp, bytes)?,
    }
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o644)).map_err(io_at(&tmp))?;
    fs::rename(&tmp, &dest).map_err(io_at(&dest))
}

/// A blob hard-linked from the cache was verified when the cache handed it out.
fn is_same_file(source: &BlobSource, dest: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let BlobSource::File(src) = source else {
        return false;
    };
    match (fs::metadata(src), fs::metadata(dest)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

fn is_intact(path: &Path, digest: &Digest, size: u64) -> bool {
    let Ok(file) = File::open(path) else {
        return false;
    };
    matches!(Digest::of_reader(file), Ok((d, n)) if d == *digest && n == size)
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
            fs::remove_file(&path).map_err(io_at(&path))?;
        }
    }
    Ok(())
}
