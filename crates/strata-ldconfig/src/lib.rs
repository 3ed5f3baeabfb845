//! glibc's `/etc/ld.so.cache`, written from an image's files as `ldconfig`
//! would write it, without running anything.
//!
//! strata assembles images by extracting packages, so no maintainer script
//! runs `ldconfig`. Without a cache the dynamic loader still finds libraries in
//! its built-in directories, but nothing listed in `/etc/ld.so.conf.d` (such as
//! `/usr/local/lib`), and tools that read the cache (`ldconfig -p`, Python's
//! `ctypes.util.find_library`) find nothing at all. apko writes the cache
//! itself for the same reason.
//!
//! The aim is the very bytes glibc 2.36's `ldconfig -X` (Debian 12) writes in
//! the image: the same directories in the same order, the same libraries and
//! flags, the same sort, string table and extension section. Only the
//! generator string, which names the program that wrote the file, is ours
//! unless given (see [`ld_so_cache_generated_by`]).

mod arch;
mod cache;
mod elf;
mod scan;

pub use elf::interpreter as elf_interpreter;
pub use elf::{Needs, needs as elf_needs};

use std::io;

/// What ldconfig needs to read from an image tree. Paths are absolute image
/// paths ("/usr/lib/x86_64-linux-gnu").
pub trait Tree {
    type File: io::Read + io::Seek;
    /// Entries of a directory (after resolving symlinks of the directory
    /// itself), or None if not a directory. Other kinds of file (devices,
    /// fifos) are left out: ldconfig ignores them.
    fn read_dir(&self, dir: &str) -> Option<Vec<DirEntry>>;
    /// The file at `path`, symlinks resolved; None if absent.
    fn open(&self, path: &str) -> Option<io::Result<Self::File>>;
    /// A configuration file's text (`/etc/ld.so.conf` and its includes); None
    /// if absent, not a file, or unreasonably large (over a mebibyte, say).
    fn read_text(&self, path: &str) -> Option<String>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    pub name: String,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    /// A symbolic link and its target, as stored (relative or absolute).
    Symlink(String),
}

#[derive(Debug, thiserror::Error)]
pub enum LdconfigError {
    #[error("no ldconfig for architecture `{0}`")]
    UnknownArch(String),
    #[error("cannot read `{path}`")]
    Read {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("`{path}` includes configuration files more than {max} deep")]
    IncludeDepth { path: String, max: usize },
    #[error("the cache would be over 4 GiB, beyond its 32-bit offsets")]
    TooLarge,
}

/// The generator string of caches written by [`ld_so_cache`]; Debian 12's
/// ldconfig writes "ldconfig (Debian GLIBC 2.36-9+deb12u…) stable release
/// version 2.36" instead, and no reader looks at it.
pub const GENERATOR: &str = "strata-ldconfig, as ldconfig release version 2.36";

/// `/etc/ld.so.cache` for the image in `tree`, whose architecture has the
/// Debian name `arch` (amd64, arm64, i386, armhf, armel, ppc64el, s390x,
/// riscv64, mips64el).
pub fn ld_so_cache<T: Tree>(tree: &T, arch: &str) -> Result<Vec<u8>, LdconfigError> {
    ld_so_cache_generated_by(tree, arch, GENERATOR)
}

/// The folders the loader searches after `ld.so.conf` in a Debian image of
/// the Debian architecture `arch` (absolute paths); `None` for an
/// architecture strata does not know.
pub fn system_dirs(arch: &str) -> Option<[String; 4]> {
    arch::arch(arch).map(|a| scan::system_dirs(&a))
}

/// As [`ld_so_cache`], naming `generator` as the program that wrote the
/// cache: with the image's own ldconfig's string the bytes are the ones that
/// ldconfig would write.
pub fn ld_so_cache_generated_by<T: Tree>(
    tree: &T,
    arch: &str,
    generator: &str,
) -> Result<Vec<u8>, LdconfigError> {
    let arch = arch::arch(arch).ok_or_else(|| LdconfigError::UnknownArch(arch.to_owned()))?;
    let found = scan::scan(tree, &arch)?;
    cache::write(&arch, found, generator)
}
