//! Files that appear whole or not at all: written to a temporary file in the
//! same folder, synced, made readable like any output (0644), then renamed
//! into place. An interrupted write leaves the previous file untouched.

use std::fs::{File, Permissions};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

pub fn write_file(path: &Path, write: impl FnOnce(&File) -> io::Result<()>) -> io::Result<()> {
    write_file_mode(path, 0o644, write)
}

/// [`write_file`] with another mode, for files that hold secrets.
pub fn write_file_mode(
    path: &Path,
    mode: u32,
    write: impl FnOnce(&File) -> io::Result<()>,
) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(".strata-")
        .tempfile_in(dir)?;
    write(tmp.as_file())?;
    tmp.as_file().sync_all()?;
    tmp.as_file()
        .set_permissions(Permissions::from_mode(mode))?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
