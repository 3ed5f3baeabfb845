//! What a layer holds: a sorted list of entries, each with the metadata its tar
//! header will carry and a reference to its content (never a copy of it).

use std::path::PathBuf;
use std::sync::Arc;

use crate::digest::Digest;
use crate::recipe::ImagePath;

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
    /// Filled in before the layer is keyed; see `assemble::hash_contents`.
    pub digest: Option<Digest>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Host(PathBuf),
    Inline(Arc<[u8]>),
}

impl Content {
    pub fn inline(bytes: impl Into<Arc<[u8]>>) -> Content {
        let bytes: Arc<[u8]> = bytes.into();
        Content {
            size: bytes.len() as u64,
            digest: Some(Digest::of(&bytes)),
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
