//! A tar writer that produces the same bytes everywhere.
//!
//! Written by hand because the `tar` crate's deterministic mode squashes modes
//! (dropping setuid) and pins mtimes to 2006, and its directory walker follows
//! symlinks in host order. Here every header field comes from the entry:
//! numeric ids with empty user and group names, no atime or ctime, ustar
//! prefix/name splitting for long paths and PAX records only when a value
//! does not fit, and the two zero blocks that end the archive.

use std::fs::File;
use std::io::{self, Read, Seek, Write};

use strata_oci::entry::{Entry, Kind, Source};

use super::files::{FileHash, Hasher};

const BLOCK: usize = 512;

pub struct TarWriter<W> {
    out: W,
    /// Bytes written so far: the uncompressed size of the layer.
    written: u64,
    /// The regular files written, with their hashes, when they are listed.
    listed: Option<Vec<FileHash>>,
}

#[derive(Clone, Copy)]
enum TypeFlag {
    File = b'0' as isize,
    Hardlink = b'1' as isize,
    Symlink = b'2' as isize,
    Dir = b'5' as isize,
    Pax = b'x' as isize,
}

/// The header fields of one tar member.
pub struct Header<'a> {
    pub name: &'a str,
    pub link: &'a str,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub size: u64,
    pub mtime: u64,
    flag: TypeFlag,
}

impl<W: Write> TarWriter<W> {
    pub fn new(out: W) -> Self {
        TarWriter {
            out,
            written: 0,
            listed: None,
        }
    }

    /// A writer that also hashes every regular file it writes
    /// ([`TarWriter::listed`]).
    pub fn listing(out: W) -> Self {
        TarWriter {
            listed: Some(Vec::new()),
            ..TarWriter::new(out)
        }
    }

    /// The regular files written so far with their hashes, when listing.
    pub fn listed(&mut self) -> Option<Vec<FileHash>> {
        self.listed.take()
    }

    /// Writes one entry: header(s), then its content streamed from its source.
    pub fn append(&mut self, entry: &Entry) -> io::Result<()> {
        let dir_name;
        let (name, flag, link, size) = match &entry.kind {
            Kind::Dir => {
                dir_name = format!("{}/", entry.path.as_str());
                (dir_name.as_str(), TypeFlag::Dir, "", 0)
            }
            Kind::File(c) => (entry.path.as_str(), TypeFlag::File, "", c.size),
            Kind::Symlink(t) => (entry.path.as_str(), TypeFlag::Symlink, t.as_str(), 0),
            Kind::Hardlink(t) => (entry.path.as_str(), TypeFlag::Hardlink, t.as_str(), 0),
        };
        self.header(&Header {
            name,
            link,
            mode: entry.mode,
            uid: entry.uid.into(),
            gid: entry.gid.into(),
            size,
            mtime: entry.mtime,
            flag,
        })?;
        if let Kind::File(content) = &entry.kind {
            let mut hasher = self.listed.is_some().then(Hasher::default);
            let mut sink = Content {
                tar: &mut *self,
                hasher: hasher.as_mut(),
            };
            match &content.source {
                Source::Inline(bytes) => sink.write_all(bytes)?,
                Source::Slice { path, offset } => {
                    let mut file = File::open(path)?;
                    file.seek(io::SeekFrom::Start(*offset))?;
                    let copied = io::copy(&mut file.take(content.size), &mut sink)?;
                    if copied != content.size {
                        return Err(io::Error::other(format!(
                            "`{}` is truncated",
                            path.display()
                        )));
                    }
                }
                Source::Host(path) => {
                    let mut file = File::open(path)?;
                    let copied = io::copy(&mut (&mut file).take(content.size), &mut sink)?;
                    let mut probe = [0u8; 1];
                    if copied != content.size || file.read(&mut probe)? != 0 {
                        return Err(io::Error::other(format!(
                            "`{}` changed while strata was reading it",
                            path.display()
                        )));
                    }
                }
            }
            if let (Some(listed), Some(hasher)) = (&mut self.listed, hasher) {
                listed.push(hasher.finish(entry.path.to_string()));
            }
            self.pad(content.size)?;
        }
        Ok(())
    }

    /// Appends a regular file whose bytes come from `reader` (used for archives of blobs).
    pub fn append_reader(
        &mut self,
        name: &str,
        mode: u32,
        mtime: u64,
        size: u64,
        reader: impl Read,
    ) -> io::Result<()> {
        self.header(&Header {
            name,
            link: "",
            mode,
            uid: 0,
            gid: 0,
            size,
            mtime,
            flag: TypeFlag::File,
        })?;
        let copied = io::copy(&mut reader.take(size), &mut *self)?;
        if copied != size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("`{name}` is shorter than {size} bytes"),
            ));
        }
        self.pad(size)
    }

    pub fn append_dir(&mut self, name: &str, mtime: u64) -> io::Result<()> {
        self.header(&Header {
            name: &format!("{}/", name.trim_end_matches('/')),
            link: "",
            mode: 0o755,
            uid: 0,
            gid: 0,
            size: 0,
            mtime,
            flag: TypeFlag::Dir,
        })
    }

    /// Ends the archive with two zero blocks and returns the sink and the
    /// uncompressed size.
    pub fn finish(mut self) -> io::Result<(W, u64)> {
        self.write_all(&[0u8; BLOCK * 2])?;
        Ok((self.out, self.written))
    }

    fn header(&mut self, h: &Header) -> io::Result<()> {
        let mut pax = Vec::new();
        let (prefix, name) = match split_ustar_name(h.name) {
            Some(split) => split,
            None => {
                pax_record(&mut pax, "path", h.name);
                ("", truncate(h.name, 100))
            }
        };
        if h.link.len() > 100 {
            pax_record(&mut pax, "linkpath", h.link);
        }
        if h.size > MAX_OCTAL_11 {
            pax_record(&mut pax, "size", &h.size.to_string());
        }
        for (key, id) in [("uid", h.uid), ("gid", h.gid)] {
            if id > MAX_OCTAL_7 {
                pax_record(&mut pax, key, &id.to_string());
            }
        }
        if !pax.is_empty() {
            let base = h
                .name
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or("");
            let pax_name = format!("PaxHeaders/{}", truncate(base, 88));
            let block = ustar_block(
                &Header {
                    name: &pax_name,
                    link: "",
                    mode: 0o644,
                    uid: 0,
                    gid: 0,
                    size: pax.len() as u64,
                    mtime: h.mtime,
                    flag: TypeFlag::Pax,
                },
                "",
                &pax_name,
            );
            self.write_all(&block)?;
            self.write_all(&pax)?;
            self.pad(pax.len() as u64)?;
        }
        let block = ustar_block(h, prefix, name);
        self.write_all(&block)
    }

    fn pad(&mut self, size: u64) -> io::Result<()> {
        let rem = (size % BLOCK as u64) as usize;
        if rem != 0 {
            self.write_all(&[0u8; BLOCK][..BLOCK - rem])?;
        }
        Ok(())
    }
}

/// Where a file's bytes go: the tar, and the file's hashes when listed.
struct Content<'a, W> {
    tar: &'a mut TarWriter<W>,
    hasher: Option<&'a mut Hasher>,
}

impl<W: Write> Write for Content<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.tar.write(buf)?;
        if let Some(hasher) = &mut self.hasher {
            hasher.update(&buf[..n]);
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tar.flush()
    }
}

impl<W: Write> Write for TarWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.out.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

const MAX_OCTAL_11: u64 = 0o77777777777;
const MAX_OCTAL_7: u64 = 0o7777777;

/// Splits a long name into ustar's 155-byte prefix and 100-byte name at a `/`.
fn split_ustar_name(name: &str) -> Option<(&str, &str)> {
    if name.len() <= 100 {
        return Some(("", name));
    }
    // The split must leave a non-empty name of at most 100 bytes.
    let trimmed_len = name.trim_end_matches('/').len();
    name[..trimmed_len]
        .match_indices('/')
        .map(|(i, _)| i)
        .find(|&i| i <= 155 && name.len() - i - 1 <= 100)
        .map(|i| (&name[..i], &name[i + 1..]))
}

fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn pax_record(out: &mut Vec<u8>, key: &str, value: &str) {
    // The record's length prefix counts its own digits.
    let body = key.len() + value.len() + 3;
    let mut len = body + 1;
    while body + len.to_string().len() != len {
        len = body + len.to_string().len();
    }
    out.extend_from_slice(format!("{len} {key}={value}\n").as_bytes());
}

fn ustar_block(h: &Header, prefix: &str, name: &str) -> [u8; BLOCK] {
    let mut b = [0u8; BLOCK];
    put(&mut b[0..100], name.as_bytes());
    octal(&mut b[100..108], u64::from(h.mode & 0o7777));
    octal(&mut b[108..116], h.uid.min(MAX_OCTAL_7));
    octal(&mut b[116..124], h.gid.min(MAX_OCTAL_7));
    octal(&mut b[124..136], h.size.min(MAX_OCTAL_11));
    octal(&mut b[136..148], h.mtime.min(MAX_OCTAL_11));
    b[156] = h.flag as u8;
    put(&mut b[157..257], truncate(h.link, 100).as_bytes());
    b[257..263].copy_from_slice(b"ustar\0");
    b[263..265].copy_from_slice(b"00");
    octal(&mut b[329..337], 0);
    octal(&mut b[337..345], 0);
    put(&mut b[345..500], prefix.as_bytes());
    b[148..156].fill(b' ');
    let sum: u32 = b.iter().map(|&x| u32::from(x)).sum();
    let digits = format!("{sum:06o}\0 ");
    b[148..156].copy_from_slice(digits.as_bytes());
    b
}

fn put(field: &mut [u8], value: &[u8]) {
    field[..value.len()].copy_from_slice(value);
}

/// Zero-padded octal, NUL-terminated, filling the field.
fn octal(field: &mut [u8], value: u64) {
    let width = field.len() - 1;
    let digits = format!("{value:0width$o}");
    field[..width].copy_from_slice(digits.as_bytes());
    field[width] = 0;
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_oci::entry::Content;
    use strata_oci::path::ImagePath;

    fn entry(path: &str, kind: Kind) -> Entry {
        Entry {
            path: ImagePath::parse(path).unwrap(),
            kind,
            mode: 0o4755,
            uid: 3_000_000,
            gid: 7,
            mtime: 1_700_000_000,
        }
    }

    #[test]
    fn a_listing_writer_hashes_each_file_and_writes_the_same_tar() {
        let entries = [
            entry("/etc", Kind::Dir),
            entry("/etc/a", Kind::File(Content::inline(b"hello".to_vec()))),
            entry("/etc/b", Kind::Symlink("a".into())),
            entry("/etc/c", Kind::File(Content::inline(Vec::new()))),
        ];
        let mut plain = TarWriter::new(Vec::new());
        let mut listing = TarWriter::listing(Vec::new());
        for e in &entries {
            plain.append(e).unwrap();
            listing.append(e).unwrap();
        }
        assert_eq!(plain.listed(), None);
        let listed = listing.listed().unwrap();
        assert_eq!(plain.finish().unwrap().0, listing.finish().unwrap().0);
        let expected = vec![
            crate::layer::files::hash("/etc/a".into(), &b"hello"[..]).unwrap(),
            crate::layer::files::hash("/etc/c".into(), &b""[..]).unwrap(),
        ];
        assert_eq!(listed, expected);
        assert_eq!(
            expected[0].sha1, "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d",
            "SHA1 of `hello`"
        );
        assert_eq!(
            expected[0].sha256,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
    }

    #[test]
    fn the_tar_crate_reads_back_every_field() {
        let long = format!("/{}/{}", "d".repeat(120), "f".repeat(90));
        let longer = format!("/{}", "x".repeat(300));
        let mut w = TarWriter::new(Vec::new());
        w.append(&entry("/bin", Kind::Dir)).unwrap();
        w.append(&entry(
            "/bin/su",
            Kind::File(Content::inline(b"hello".to_vec())),
        ))
        .unwrap();
        w.append(&entry(&long, Kind::File(Content::inline(b"x".to_vec()))))
            .unwrap();
        w.append(&entry(&longer, Kind::Symlink("t".repeat(150))))
            .unwrap();
        let (bytes, size) = w.finish().unwrap();
        assert_eq!(size as usize, bytes.len());
        assert_eq!(bytes.len() % 512, 0);

        let mut archive = tar::Archive::new(&bytes[..]);
        let got: Vec<_> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let h = e.header().clone();
                let mut body = String::new();
                e.read_to_string(&mut body).unwrap();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    h.mode().unwrap(),
                    e.header().uid().unwrap(),
                    h.mtime().unwrap(),
                    e.link_name().unwrap().map(|l| l.to_string_lossy().len()),
                    body,
                    h.username_bytes().map(|u| u.len()),
                )
            })
            .collect();
        assert_eq!(got[0].0, "bin/");
        assert_eq!(
            got[1],
            (
                "bin/su".into(),
                0o4755,
                3_000_000,
                1_700_000_000,
                None,
                "hello".into(),
                Some(0)
            )
        );
        assert_eq!(got[2].0, long[1..]);
        assert_eq!(got[3].0, longer[1..]);
        assert_eq!(got[3].4, Some(150));
    }

    #[test]
    fn pax_lengths_count_themselves() {
        let mut out = Vec::new();
        pax_record(&mut out, "path", &"a".repeat(93));
        let text = String::from_utf8(out).unwrap();
        let (len, _) = text.split_once(' ').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), text.len());
    }
}
