//! What a layer holds: a sorted list of entries, each with the metadata its tar
//! header will carry and a reference to its content (never a copy of it).

use std::path::PathBuf;
use std::sync::Arc;

use crate::digest::Digest;
use crate::path::ImagePath;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: ImagePath,
    pub kind: Kind,
    /// Permission bits, including setuid, setgid and sticky (`0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File(Content),
    Symlink(String),
    /// A hard link to an earlier entry of the same layer.
    Hardlink(ImagePath),
}

/// A regular file's bytes, by reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content {
    pub source: Source,
    pub size: u64,
    /// What identifies these bytes in a layer's cache key.
    pub fingerprint: Fingerprint,
}

/// Identifies a file's content without necessarily reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fingerprint {
    Digest(Digest),
    /// A host file, by where it is and when it last changed, as git's index
    /// does: any write moves `ctime`, which no user can set back, so a no-op
    /// rebuild needs no file read at all. Nanosecond times rule out git's
    /// "racy" same-second case.
    Stat {
        dev: u64,
        ino: u64,
        mtime_ns: i128,
        ctime_ns: i128,
    },
}

impl Fingerprint {
    pub fn of_metadata(meta: &std::fs::Metadata) -> Fingerprint {
        use std::os::unix::fs::MetadataExt;
        let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
        Fingerprint::Stat {
            dev: meta.dev(),
            ino: meta.ino(),
            mtime_ns: ns(meta.mtime(), meta.mtime_nsec()),
            ctime_ns: ns(meta.ctime(), meta.ctime_nsec()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Host(PathBuf),
    Inline(Arc<[u8]>),
    /// Bytes at `offset` of a file strata unpacked into its cache (a
    /// package's data tar), `size` long.
    Slice {
        path: PathBuf,
        offset: u64,
    },
}

pub trait ReadSeek: std::io::Read + std::io::Seek {}
impl<T: std::io::Read + std::io::Seek> ReadSeek for T {}

/// `len` bytes of a file from `start`, seekable within them.
struct Window {
    file: std::fs::File,
    start: u64,
    len: u64,
    pos: u64,
}

impl Window {
    fn new(mut file: std::fs::File, start: u64, len: u64) -> std::io::Result<Window> {
        use std::io::Seek;
        file.seek(std::io::SeekFrom::Start(start))?;
        Ok(Window {
            file,
            start,
            len,
            pos: 0,
        })
    }
}

impl std::io::Read for Window {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.len.saturating_sub(self.pos);
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.file.read(&mut buf[..want])?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl std::io::Seek for Window {
    fn seek(&mut self, to: std::io::SeekFrom) -> std::io::Result<u64> {
        let target = match to {
            std::io::SeekFrom::Start(n) => Some(n),
            std::io::SeekFrom::End(d) => self.len.checked_add_signed(d),
            std::io::SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        }
        .ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before the start")
        })?;
        self.file
            .seek(std::io::SeekFrom::Start(self.start + target))?;
        self.pos = target;
        Ok(target)
    }
}

impl Content {
    /// The bytes, `size` of them at most.
    pub fn open(&self) -> std::io::Result<Box<dyn std::io::Read + '_>> {
        use std::io::{Read, Seek};
        Ok(match &self.source {
            Source::Inline(bytes) => Box::new(&bytes[..]),
            Source::Host(path) => Box::new(std::fs::File::open(path)?.take(self.size)),
            Source::Slice { path, offset } => {
                let mut file = std::fs::File::open(path)?;
                file.seek(std::io::SeekFrom::Start(*offset))?;
                Box::new(file.take(self.size))
            }
        })
    }

    /// The bytes, for readers that seek (ELF headers of large libraries).
    pub fn open_seekable(&self) -> std::io::Result<Box<dyn ReadSeek>> {
        Ok(match &self.source {
            Source::Inline(bytes) => Box::new(std::io::Cursor::new(bytes.clone())),
            Source::Host(path) => Box::new(Window::new(std::fs::File::open(path)?, 0, self.size)?),
            Source::Slice { path, offset } => {
                Box::new(Window::new(std::fs::File::open(path)?, *offset, self.size)?)
            }
        })
    }

    pub fn inline(bytes: impl Into<Arc<[u8]>>) -> Content {
        let bytes: Arc<[u8]> = bytes.into();
        Content {
            size: bytes.len() as u64,
            fingerprint: Fingerprint::Digest(Digest::of(&bytes)),
            source: Source::Inline(bytes),
        }
    }
}

impl Entry {
    pub fn dir(path: ImagePath, mode: u32, uid: u32, gid: u32, mtime: u64) -> Entry {
        Entry {
            path,
            kind: Kind::Dir,
            mode,
            uid,
            gid,
            mtime,
        }
    }

    pub fn is_dir(&self) -> bool {
        matches!(self.kind, Kind::Dir)
    }
}

/// The entries of one layer and how the image history describes it.
#[derive(Debug, Clone)]
pub struct LayerPlan {
    pub name: String,
    pub created_by: String,
    /// Sorted by path, parents before children, no duplicates.
    pub entries: Vec<Entry>,
}
