//! Opening files that must be regular files: blobs, `index.json`, cached
//! records. A symlink is not followed (a blob linked to `/dev/zero` would be
//! read forever) and a FIFO or device is refused without blocking (opening a
//! FIFO for reading waits for a writer that may never come).

use std::fs::File;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
#[error("it is a {kind}, not a regular file")]
pub struct NotRegular {
    kind: &'static str,
}

/// Opens `path` for reading if it is a regular file, without following a
/// symlink at its last component.
pub fn open_regular(path: &Path) -> io::Result<File> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => not_regular("symlink"),
            _ => e,
        })?;
    let file_type = file.metadata()?.file_type();
    if !file_type.is_file() {
        use std::os::unix::fs::FileTypeExt;
        let kind = if file_type.is_dir() {
            "folder"
        } else if file_type.is_fifo() {
            "FIFO"
        } else if file_type.is_socket() {
            "socket"
        } else {
            "device"
        };
        return Err(not_regular(kind));
    }
    Ok(file)
}

fn not_regular(kind: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, NotRegular { kind })
}

/// Reads a document (JSON, a record) of at most `cap` bytes whole: what
/// `fs::read` does, bounded, for files whose size nothing vouches for.
pub fn read_capped(path: &Path, cap: u64) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let file = open_regular(path)?;
    let mut bytes = Vec::new();
    file.take(cap + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(io::Error::new(io::ErrorKind::InvalidData, TooLarge { cap }));
    }
    Ok(bytes)
}

#[derive(Debug, thiserror::Error)]
#[error("it is larger than the {} MiB strata reads of such a file", cap >> 20)]
pub struct TooLarge {
    cap: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_symlinks_fifos_and_folders_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name);
        std::fs::write(path("file"), b"{}").unwrap();
        std::os::unix::fs::symlink("/dev/zero", path("zero")).unwrap();
        std::os::unix::fs::symlink(path("file"), path("link")).unwrap();
        let fifo = std::ffi::CString::new(path("fifo").to_str().unwrap()).unwrap();
        // SAFETY: a valid, NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        assert_eq!(read_capped(&path("file"), 10).unwrap(), b"{}");
        for (name, kind) in [("zero", "symlink"), ("link", "symlink"), ("fifo", "FIFO")] {
            let err = open_regular(&path(name)).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("it is a {kind}, not a regular file")
            );
        }
        assert!(open_regular(dir.path()).is_err());
        let err = read_capped(&path("file"), 1).unwrap_err();
        assert!(err.get_ref().is_some_and(|e| e.is::<TooLarge>()), "{err}");
    }
}
