//! Reading tar archives (layers, `.deb` members) with the metadata of each
//! member bounded.
//!
//! The `tar` crate reads a member's GNU long name, long link name and PAX
//! records whole into memory before it yields the member, so a small
//! compressed archive can hold a "name" of gigabytes. It has no limit of its
//! own, and its raw mode would give up its handling of PAX `size`, `uid` and
//! `gid` and of sparse files. So the reader under it is guarded instead:
//! while the next member's headers are read, it may read only up to the end
//! of the previous member's data plus [`MAX_HEADERS`]; the data itself, read
//! (or skipped) by the caller, is not limited.

use std::cell::Cell;
use std::io::{self, Read};
use std::rc::Rc;

/// The most one member's headers may take: its 512-byte header blocks, GNU
/// long name and link name, PAX records and sparse maps together. A path is
/// at most 4096 bytes (PATH_MAX); real PAX records are a few hundred.
pub const MAX_HEADERS: u64 = 1 << 20;

#[derive(Debug, thiserror::Error)]
#[error(
    "a tar member's headers (GNU long names, PAX records) take more than {} MiB",
    MAX_HEADERS >> 20
)]
pub struct HeadersTooLarge;

/// Where the guarded reader is, and how far it may go.
#[derive(Debug, Default)]
struct Bounds {
    position: Cell<u64>,
    limit: Cell<Option<u64>>,
}

/// The reader under the `tar` crate: counts what it reads and refuses to
/// read past the limit, when one is set.
pub struct Guarded<R> {
    inner: R,
    bounds: Rc<Bounds>,
}

impl<R: Read> Read for Guarded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let position = self.bounds.position.get();
        let buf = match self.bounds.limit.get() {
            Some(limit) if position >= limit => {
                return Err(io::Error::new(io::ErrorKind::InvalidData, HeadersTooLarge));
            }
            Some(limit) => {
                let room = usize::try_from(limit - position).unwrap_or(usize::MAX);
                let len = buf.len().min(room);
                &mut buf[..len]
            }
            None => buf,
        };
        let n = self.inner.read(buf)?;
        self.bounds.position.set(position + n as u64);
        Ok(n)
    }
}

/// A tar archive whose members' headers are bounded (see the module docs).
pub struct Archive<R: Read> {
    archive: tar::Archive<Guarded<R>>,
    bounds: Rc<Bounds>,
}

impl<R: Read> Archive<R> {
    pub fn new(reader: R) -> Archive<R> {
        let bounds = Rc::new(Bounds::default());
        let guarded = Guarded {
            inner: reader,
            bounds: Rc::clone(&bounds),
        };
        Archive {
            archive: tar::Archive::new(guarded),
            bounds,
        }
    }

    /// The members, in archive order, as the `tar` crate gives them.
    pub fn entries(&mut self) -> io::Result<Entries<'_, R>> {
        Ok(Entries {
            entries: self.archive.entries()?,
            bounds: Rc::clone(&self.bounds),
            data_end: 0,
        })
    }
}

pub struct Entries<'a, R: Read> {
    entries: tar::Entries<'a, Guarded<R>>,
    bounds: Rc<Bounds>,
    /// Where the previous member's data ends, padded to a block: the `tar`
    /// crate skips what the caller did not read up to there.
    data_end: u64,
}

impl<'a, R: Read> Iterator for Entries<'a, R> {
    type Item = io::Result<tar::Entry<'a, Guarded<R>>>;

    fn next(&mut self) -> Option<Self::Item> {
        let skip_to = self.data_end.max(self.bounds.position.get());
        self.bounds
            .limit
            .set(Some(skip_to.saturating_add(MAX_HEADERS)));
        let next = self.entries.next();
        self.bounds.limit.set(None);
        if let Some(Ok(entry)) = &next {
            self.data_end = entry
                .raw_file_position()
                .saturating_add(entry.size().div_ceil(512).saturating_mul(512));
        }
        next
    }
}

/// Whether `error` (or one of its sources) is [`HeadersTooLarge`].
pub fn is_headers_too_large(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(e) = current {
        if e.is::<HeadersTooLarge>() {
            return true;
        }
        if let Some(io) = e.downcast_ref::<io::Error>()
            && io
                .get_ref()
                .is_some_and(|inner| inner.is::<HeadersTooLarge>())
        {
            return true;
        }
        current = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An archive with one member whose GNU long name (or PAX path) is
    /// `len` bytes, then a small file.
    fn archive_with_name(len: usize, pax: bool) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        let name = "d/".repeat(len / 2) + "f";
        let mut header = tar::Header::new_gnu();
        header.set_size(3);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        if pax {
            let record = format!("path={name}\n");
            let mut len = record.len() + 2;
            while format!("{len} {record}").len() != len {
                len += 1;
            }
            let mut pax_header = tar::Header::new_ustar();
            pax_header.set_entry_type(tar::EntryType::XHeader);
            pax_header.set_size(len as u64);
            pax_header.set_path("pax").unwrap();
            pax_header.set_cksum();
            builder
                .append(&pax_header, format!("{len} {record}").as_bytes())
                .unwrap();
            header.set_path("short").unwrap();
            header.set_cksum();
            builder.append(&header, &b"abc"[..]).unwrap();
        } else {
            builder
                .append_data(&mut header, &name, &b"abc"[..])
                .unwrap();
        }
        let mut small = tar::Header::new_gnu();
        small.set_size(2);
        small.set_mode(0o644);
        builder
            .append_data(&mut small, "small", &b"hi"[..])
            .unwrap();
        builder.into_inner().unwrap()
    }

    fn paths(bytes: &[u8]) -> io::Result<Vec<usize>> {
        let mut archive = Archive::new(bytes);
        let mut lengths = Vec::new();
        for entry in archive.entries()? {
            lengths.push(entry?.path_bytes().len());
        }
        Ok(lengths)
    }

    #[test]
    fn long_names_within_the_bound_are_read_as_the_tar_crate_reads_them() {
        for pax in [false, true] {
            let bytes = archive_with_name(200_000, pax);
            assert_eq!(paths(&bytes).unwrap(), [200_001, 5], "pax: {pax}");
        }
    }

    #[test]
    fn long_names_past_the_bound_are_refused_before_they_are_read_whole() {
        for pax in [false, true] {
            let bytes = archive_with_name(3 << 20, pax);
            let err = paths(&bytes).unwrap_err();
            assert!(is_headers_too_large(&err), "pax: {pax}: {err}");
        }
    }

    #[test]
    fn member_data_is_not_bounded_whether_read_or_skipped() {
        let big = vec![7u8; 3 << 20];
        let mut builder = tar::Builder::new(Vec::new());
        for name in ["a", "b", "c"] {
            let mut header = tar::Header::new_gnu();
            header.set_size(big.len() as u64);
            header.set_mode(0o644);
            builder.append_data(&mut header, name, &big[..]).unwrap();
        }
        let bytes = builder.into_inner().unwrap();
        let mut archive = Archive::new(&bytes[..]);
        let mut read = Vec::new();
        for (i, entry) in archive.entries().unwrap().enumerate() {
            let mut entry = entry.unwrap();
            // The first member is read, the others skipped.
            if i == 0 {
                let mut data = Vec::new();
                entry.read_to_end(&mut data).unwrap();
                assert_eq!(data.len(), big.len());
            }
            read.push(entry.path().unwrap().display().to_string());
        }
        assert_eq!(read, ["a", "b", "c"]);
    }
}
