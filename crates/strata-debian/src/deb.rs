//! Reading Debian binary packages (`.deb`, deb(5)) without dpkg.
//!
//! strata never materialises a root filesystem: a layer is written later from
//! a sorted list of entries whose content is referenced, not copied. So a
//! package is turned into its control metadata, an uncompressed copy of its
//! `data.tar` on disk, and an index of that tar's entries with the byte offset
//! of every regular file's content. Any file can then be read straight from the
//! copy, and nothing is unpacked into a directory tree whose modes, owners or
//! setuid bits the unprivileged builder could not reproduce.
//!
//! The outer `ar` container is read by hand rather than with the `ar` crate:
//! a `.deb` only ever uses the common format with short names, the format is
//! a few lines to parse, and the crate's GNU name-table path can panic or
//! allocate without bound on a crafted file. Counting every byte also tells a
//! truncated download apart from a damaged one.
//!
//! The data tar is decompressed, copied to disk and indexed in one pass: the
//! tar reader pulls from a tee that writes every byte it reads, so the offsets
//! the tar reader reports are offsets into the copy.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use strata_oci::compression::Compression;
use strata_oci::digest::{Digest, HashingWriter};

/// The control part of a package (`control.tar`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Control {
    /// The `control` file, verbatim.
    pub text: String,
    /// The `md5sums` file, verbatim.
    pub md5sums: Option<String>,
    /// The `conffiles` file, verbatim.
    pub conffiles: Option<String>,
    /// `preinst`, `postinst`, `prerm`, `postrm`, `config`, `triggers` and
    /// debconf's `templates`, in archive order, as text (invalid UTF-8
    /// replaced).
    pub maintainer_scripts: Vec<(String, String)>,
}

/// One entry of the data tar.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DataEntry {
    /// Normalised: no leading `./` or `/`, no trailing `/`, no `.` or empty
    /// components. The root directory (`./`) is not listed.
    pub path: String,
    pub kind: DataKind,
    /// Permission bits, setuid, setgid and sticky included (`0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Seconds since 1970 (a PAX `mtime` wins over the header's).
    pub mtime: u64,
    /// Length of the content, for regular files; 0 for every other kind.
    pub size: u64,
    /// Byte offset of the content inside the unpacked data tar, for regular
    /// files; 0 for every other kind (a hard link's content is its target's).
    pub offset: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum DataKind {
    File,
    Dir,
    /// The link target, verbatim.
    Symlink(String),
    /// The normalised path of an earlier file entry of the same archive.
    Hardlink(String),
    /// Character and block devices, fifos.
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unpacked {
    pub control: Control,
    /// In archive order.
    pub entries: Vec<DataEntry>,
    /// The uncompressed data tar.
    pub data_tar: PathBuf,
    /// The digest of `data_tar`, for readers to check the copy against.
    pub data_tar_digest: Digest,
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum DebError {
    // `deb` is how the package is named: its path in backticks, or the
    // package's name and version when it is read from the cache.
    #[error("cannot read {deb}")]
    #[diagnostic(help("check that the file exists and is readable"))]
    Read {
        deb: String,
        #[source]
        source: io::Error,
    },
    #[error("{deb} is not a Debian package: {reason}")]
    #[diagnostic(help("give a `.deb` file as Debian mirrors and `dpkg-deb --build` make them"))]
    NotDeb { deb: String, reason: String },
    #[error("unsupported compression `{member}` in {deb}")]
    #[diagnostic(help(
        "only `gz`, `xz`, `zst` and uncompressed members can be read; repack the package with `dpkg-deb -Zxz --build`"
    ))]
    Compression { deb: String, member: String },
    #[error("{deb} is truncated: it ends inside {place}")]
    #[diagnostic(help("delete the file and download it again"))]
    Truncated { deb: String, place: String },
    #[error("{deb} is damaged: cannot read {place}")]
    #[diagnostic(help("delete the file and download it again"))]
    Corrupt {
        deb: String,
        place: String,
        #[source]
        source: io::Error,
    },
    #[error("{deb} has an unusable entry `{entry}` in `{member}`: {reason}")]
    #[diagnostic(help("this package cannot be installed as it is; report it to its maintainer"))]
    BadEntry {
        deb: String,
        member: String,
        entry: String,
        reason: String,
    },
    #[error("{deb} has a member in `{member}` whose tar headers are too large")]
    #[diagnostic(help(
        "this package cannot be installed as it is: its archive is malformed or hostile; report it to its maintainer"
    ))]
    OversizedHeaders {
        deb: String,
        member: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot write the data of {deb} to `{}`", dest.display())]
    #[diagnostic(help("check that the folder is writable and has free space"))]
    Write {
        deb: String,
        dest: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Reads `deb`, writes its uncompressed data tar to `data_tar_dest` (through a
/// temporary file in the same folder and a rename, so a crash never leaves a
/// partial file), and returns the control metadata and the entry index.
pub fn unpack(deb: &Path, data_tar_dest: &Path) -> Result<Unpacked, DebError> {
    unpack_as(deb, &format!("`{}`", deb.display()), data_tar_dest)
}

/// As [`unpack`], with errors naming the package as `name` says (a cached
/// copy's path means nothing to the reader).
pub fn unpack_as(deb: &Path, name: &str, data_tar_dest: &Path) -> Result<Unpacked, DebError> {
    let mut ar = Ar::open(deb, name)?;
    let mut control = None;
    let mut entries = None;
    while control.is_none() || entries.is_none() {
        let Some(member) = ar.next_member()? else {
            break;
        };
        match member.part() {
            Some(Part::Control) => {
                if control.is_some() {
                    return Err(ar.not_deb("it has two `control.tar` members"));
                }
                control = Some(ar.read_control(&member)?);
            }
            Some(Part::Data) => {
                if entries.is_some() {
                    return Err(ar.not_deb("it has two `data.tar` members"));
                }
                entries = Some(ar.copy_data(&member, data_tar_dest)?);
            }
            None => {}
        }
    }
    let control = control.ok_or_else(|| ar.not_deb("no `control.tar` member"))?;
    let (entries, data_tar_digest) = entries.ok_or_else(|| ar.not_deb("no `data.tar` member"))?;
    Ok(Unpacked {
        control,
        entries,
        data_tar: data_tar_dest.to_path_buf(),
        data_tar_digest,
    })
}

/// Reads only the control part of `deb`, stopping before its data tar.
pub fn read_control(deb: &Path) -> Result<Control, DebError> {
    let mut ar = Ar::open(deb, &format!("`{}`", deb.display()))?;
    while let Some(member) = ar.next_member()? {
        if member.part() == Some(Part::Control) {
            return ar.read_control(&member);
        }
    }
    Err(ar.not_deb("no `control.tar` member"))
}

/// The largest control file read into memory; real ones are kilobytes, the
/// `md5sums` of the largest Debian packages a few megabytes.
const CONTROL_FILE_LIMIT: u64 = 64 << 20;

const MAINTAINER_SCRIPTS: [&str; 7] = [
    "preinst",
    "postinst",
    "prerm",
    "postrm",
    "config",
    "triggers",
    "templates",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Control,
    Data,
}

struct Member {
    name: String,
}

impl Member {
    /// `control.tar*` or `data.tar*`; other members (`_`-prefixed ones are
    /// reserved for extensions) are skipped, as dpkg does.
    fn part(&self) -> Option<Part> {
        let rest = |prefix: &str| {
            self.name
                .strip_prefix(prefix)
                .is_some_and(|r| r.is_empty() || r.starts_with('.'))
        };
        if rest("control.tar") {
            Some(Part::Control)
        } else if rest("data.tar") {
            Some(Part::Data)
        } else {
            None
        }
    }

    fn compression(&self) -> Option<Compression> {
        Compression::of_extension(self.name.rsplit_once(".tar")?.1)
    }

    fn place(&self) -> String {
        format!("its `{}` member", self.name)
    }
}

/// Why reading a member failed, before it is known whether the file simply
/// ended early.
enum Fail {
    Io(io::Error),
    Entry { entry: String, reason: String },
    Write(io::Error),
}

impl From<io::Error> for Fail {
    fn from(e: io::Error) -> Fail {
        Fail::Io(e)
    }
}

/// The outer `ar` archive. As a reader, it yields the current member's bytes.
struct Ar {
    /// How errors name the package.
    deb: String,
    inner: BufReader<File>,
    /// Bytes of the file consumed so far.
    pos: u64,
    /// Where the current member's content ends.
    end: u64,
    /// The file ended before `end`.
    short: bool,
    /// The name of the current member.
    member: String,
}

impl Read for Ar {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = usize::try_from(self.end - self.pos)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        if want == 0 {
            return Ok(0);
        }
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            self.short = true;
        }
        self.pos += n as u64;
        Ok(n)
    }
}

impl Ar {
    fn open(deb: &Path, name: &str) -> Result<Ar, DebError> {
        let file = File::open(deb).map_err(|source| DebError::Read {
            deb: name.to_owned(),
            source,
        })?;
        let mut ar = Ar {
            deb: name.to_owned(),
            inner: BufReader::with_capacity(64 << 10, file),
            pos: 0,
            end: 8,
            short: false,
            member: String::new(),
        };
        let mut magic = [0; 8];
        let n = read_full(&mut ar, &mut magic).map_err(|source| ar.read_error(source))?;
        if n == 0 || magic[..n] != b"!<arch>\n"[..n] {
            return Err(ar.not_deb("it is not an `ar` archive"));
        }
        if n < magic.len() {
            return Err(ar.truncated("its `ar` header".into()));
        }
        ar.first_member()?;
        Ok(ar)
    }

    /// Checks that the first member is `debian-binary` with format 2.x.
    fn first_member(&mut self) -> Result<(), DebError> {
        match self.next_member()? {
            Some(m) if m.name == "debian-binary" => {}
            _ => return Err(self.not_deb("no `debian-binary` member")),
        }
        let mut text = Vec::new();
        (&mut *self)
            .take(1024)
            .read_to_end(&mut text)
            .map_err(|source| self.read_error(source))?;
        if self.short {
            return Err(self.truncated("its `debian-binary` member".into()));
        }
        let text = String::from_utf8_lossy(&text);
        let version = text.lines().next().unwrap_or("").trim();
        if version.split('.').next() != Some("2") {
            return Err(self.not_deb(&format!("format version `{version}` is not `2.x`")));
        }
        Ok(())
    }

    /// Skips what is left of the current member and reads the next header;
    /// `None` at the end of the archive.
    fn next_member(&mut self) -> Result<Option<Member>, DebError> {
        self.finish_member()?;
        // Members start at even offsets; the padding byte may be missing at
        // the very end of the file.
        if self.pos % 2 == 1 {
            self.end = self.pos + 1;
            io::copy(self, &mut io::sink()).map_err(|source| self.read_error(source))?;
            self.short = false;
        }
        let at = self.pos;
        let place = || format!("the `ar` member header at byte {at}");
        let mut header = [0; 60];
        self.end = self.pos + 60;
        let n = read_full(self, &mut header).map_err(|source| self.read_error(source))?;
        if n == 0 {
            return Ok(None);
        }
        if n < header.len() {
            return Err(self.truncated(place()));
        }
        let damaged = |what: &str| DebError::Corrupt {
            deb: self.deb.clone(),
            place: place(),
            source: io::Error::new(io::ErrorKind::InvalidData, what.to_owned()),
        };
        if &header[58..60] != b"`\n" {
            return Err(damaged("it does not end with the `ar` header magic"));
        }
        let size = std::str::from_utf8(&header[48..58])
            .ok()
            .and_then(|s| s.trim_end().parse::<u64>().ok())
            .ok_or_else(|| damaged("its size is not a number"))?;
        let name = String::from_utf8_lossy(&header[..16]);
        let name = name.trim_end_matches(' ');
        // GNU ar ends names with `/`; dpkg-deb does not.
        let name = name.strip_suffix('/').unwrap_or(name).to_owned();
        self.end = self.pos.saturating_add(size);
        self.member.clone_from(&name);
        Ok(Some(Member { name }))
    }

    /// Skips to the end of the current member, which must be in the file.
    fn finish_member(&mut self) -> Result<(), DebError> {
        io::copy(self, &mut io::sink()).map_err(|source| self.read_error(source))?;
        if self.short {
            return Err(self.truncated(format!("its `{}` member", self.member)));
        }
        Ok(())
    }

    fn read_control(&mut self, member: &Member) -> Result<Control, DebError> {
        let compression = self.compression(member)?;
        let result = compression
            .decoder(&mut *self)
            .map_err(Fail::Io)
            .and_then(|mut reader| {
                let control = parse_control(&mut reader)?;
                // Read to the end so the decoder checks its checksum.
                io::copy(&mut reader, &mut io::sink())?;
                Ok(control)
            });
        let files = self.settle(member, result)?;
        let text = files.text.ok_or_else(|| {
            self.not_deb(&format!(
                "no `control` file in its `{}` member",
                member.name
            ))
        })?;
        Ok(Control {
            text,
            md5sums: files.md5sums,
            conffiles: files.conffiles,
            maintainer_scripts: files.maintainer_scripts,
        })
    }

    /// Copies the data member, uncompressed, to `dest`; its entries and the
    /// digest of the copy.
    fn copy_data(
        &mut self,
        member: &Member,
        dest: &Path,
    ) -> Result<(Vec<DataEntry>, Digest), DebError> {
        let compression = self.compression(member)?;
        let deb = self.deb.clone();
        let write_error = |source| DebError::Write {
            deb: deb.clone(),
            dest: dest.to_path_buf(),
            source,
        };
        let folder = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        // Dropped (and so deleted) on any error below.
        let tmp = tempfile::Builder::new()
            .prefix(".strata-deb-")
            .suffix(".tar.tmp")
            .tempfile_in(folder)
            .map_err(write_error)?;
        let result = compression
            .decoder(&mut *self)
            .map_err(Fail::Io)
            .and_then(|reader| {
                let mut tee = Tee {
                    reader: BufReader::with_capacity(64 << 10, reader),
                    writer: BufWriter::with_capacity(256 << 10, HashingWriter::new(tmp.as_file())),
                    write_error: None,
                };
                let result = index(&mut tee).and_then(|entries| {
                    // The end-of-archive blocks and anything after them, so the
                    // copy is exact and the decoder checks its checksum.
                    io::copy(&mut tee, &mut io::sink())?;
                    Ok(entries)
                });
                if let Some(e) = tee.write_error.take() {
                    return Err(Fail::Write(e));
                }
                let entries = result?;
                match tee.writer.into_inner() {
                    Ok(hashing) => Ok((entries, hashing.finish().1)),
                    Err(e) => Err(Fail::Write(e.into_error())),
                }
            });
        let (entries, digest) = match result {
            Err(Fail::Write(source)) => return Err(write_error(source)),
            other => self.settle(member, other)?,
        };
        tmp.persist(dest).map_err(|e| write_error(e.error))?;
        Ok((entries, digest))
    }

    /// Turns the outcome of reading a member into the error that explains it
    /// best, and makes sure the whole member was in the file.
    fn settle<T>(&mut self, member: &Member, result: Result<T, Fail>) -> Result<T, DebError> {
        let value = match result {
            Ok(value) => value,
            Err(_) if self.short => return Err(self.truncated(member.place())),
            Err(Fail::Io(source)) if strata_oci::tarball::is_headers_too_large(&source) => {
                return Err(DebError::OversizedHeaders {
                    deb: self.deb.clone(),
                    member: member.name.clone(),
                    source,
                });
            }
            Err(Fail::Io(source)) | Err(Fail::Write(source)) => {
                return Err(DebError::Corrupt {
                    deb: self.deb.clone(),
                    place: member.place(),
                    source,
                });
            }
            Err(Fail::Entry { entry, reason }) => {
                return Err(DebError::BadEntry {
                    deb: self.deb.clone(),
                    member: member.name.clone(),
                    entry,
                    reason,
                });
            }
        };
        self.finish_member()?;
        Ok(value)
    }

    fn compression(&self, member: &Member) -> Result<Compression, DebError> {
        member.compression().ok_or_else(|| DebError::Compression {
            deb: self.deb.clone(),
            member: member.name.clone(),
        })
    }

    fn not_deb(&self, reason: &str) -> DebError {
        DebError::NotDeb {
            deb: self.deb.clone(),
            reason: reason.to_owned(),
        }
    }

    fn truncated(&self, place: String) -> DebError {
        DebError::Truncated {
            deb: self.deb.clone(),
            place,
        }
    }

    fn read_error(&self, source: io::Error) -> DebError {
        DebError::Read {
            deb: self.deb.clone(),
            source,
        }
    }
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match reader.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Writes every byte read through it.
struct Tee<R, W> {
    reader: R,
    writer: W,
    /// Kept apart so a full disk is not reported as a damaged package.
    write_error: Option<io::Error>,
}

impl<R: Read, W: Write> Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.reader.read(buf)?;
        if let Err(e) = self.writer.write_all(&buf[..n]) {
            let message = e.to_string();
            self.write_error = Some(e);
            return Err(io::Error::other(message));
        }
        Ok(n)
    }
}

struct ControlFiles {
    text: Option<String>,
    md5sums: Option<String>,
    conffiles: Option<String>,
    maintainer_scripts: Vec<(String, String)>,
}

fn parse_control(reader: &mut impl Read) -> Result<ControlFiles, Fail> {
    let mut files = ControlFiles {
        text: None,
        md5sums: None,
        conffiles: None,
        maintainer_scripts: Vec::new(),
    };
    let mut archive = strata_oci::tarball::Archive::new(reader);
    for entry in archive.entries()? {
        let entry = entry?;
        let raw = entry.path_bytes();
        let Ok(name) = normalise(&raw) else { continue };
        let kind = entry.header().entry_type();
        if !(kind.is_file() || kind == tar::EntryType::Continuous) {
            continue;
        }
        let wanted = matches!(name.as_str(), "control" | "md5sums" | "conffiles")
            || MAINTAINER_SCRIPTS.contains(&name.as_str());
        if !wanted {
            continue;
        }
        if entry.size() > CONTROL_FILE_LIMIT {
            return Err(Fail::Entry {
                entry: name,
                reason: format!("it is larger than {} MiB", CONTROL_FILE_LIMIT >> 20),
            });
        }
        let mut bytes = Vec::new();
        entry.take(CONTROL_FILE_LIMIT).read_to_end(&mut bytes)?;
        let utf8 = |bytes: Vec<u8>| {
            String::from_utf8(bytes).map_err(|_| Fail::Entry {
                entry: name.clone(),
                reason: "it is not UTF-8 text".into(),
            })
        };
        match name.as_str() {
            "control" => files.text = Some(utf8(bytes)?),
            "md5sums" => files.md5sums = Some(utf8(bytes)?),
            "conffiles" => files.conffiles = Some(utf8(bytes)?),
            _ => files
                .maintainer_scripts
                .push((name, String::from_utf8_lossy(&bytes).into_owned())),
        }
    }
    Ok(files)
}

/// Walks the data tar, listing its entries with the offsets of file content.
fn index(reader: &mut impl Read) -> Result<Vec<DataEntry>, Fail> {
    let mut entries = Vec::new();
    // Files and hard links seen so far: what a hard link may point to.
    let mut linkable = HashSet::new();
    let mut archive = strata_oci::tarball::Archive::new(reader);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let raw_path = entry.path_bytes().into_owned();
        let shown = shown_path(&raw_path);
        let bad = |reason: &str| Fail::Entry {
            entry: shown.clone(),
            reason: reason.to_owned(),
        };
        let path = normalise(&raw_path).map_err(|e| bad(&e.of("its path")))?;
        let link = || -> Result<String, Fail> {
            let target = entry
                .link_name_bytes()
                .ok_or_else(|| bad("the link has no target"))?;
            let target =
                std::str::from_utf8(&target).map_err(|_| bad("its link target is not UTF-8"))?;
            if target.is_empty() {
                return Err(bad("the link has no target"));
            }
            Ok(target.to_owned())
        };
        let kind = match entry.header().entry_type() {
            // Old (pre-POSIX) archives mark directories by a trailing `/` alone.
            tar::EntryType::Regular if raw_path.ends_with(b"/") => DataKind::Dir,
            tar::EntryType::Regular | tar::EntryType::Continuous => DataKind::File,
            tar::EntryType::Directory => DataKind::Dir,
            tar::EntryType::Symlink => DataKind::Symlink(link()?),
            tar::EntryType::Link => {
                let target = link()?;
                let target =
                    normalise(target.as_bytes()).map_err(|e| bad(&e.of("its link target")))?;
                if !linkable.contains(&target) {
                    return Err(bad(&format!(
                        "it is a hard link to `{target}`, which is not an earlier file of the archive"
                    )));
                }
                DataKind::Hardlink(target)
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => DataKind::Other,
            tar::EntryType::XGlobalHeader => continue,
            tar::EntryType::GNUSparse => return Err(bad("sparse files are not supported")),
            other => {
                return Err(bad(&format!(
                    "unsupported tar entry type `{}`",
                    other.as_byte() as char
                )));
            }
        };
        if path.is_empty() {
            if kind == DataKind::Dir {
                continue;
            }
            return Err(bad("its path is empty"));
        }
        let header = entry.header();
        let mode = header.mode()? & 0o7777;
        let id = |v: u64, what: &str| {
            u32::try_from(v).map_err(|_| bad(&format!("its {what} `{v}` is too large")))
        };
        let uid = id(header.uid()?, "owner id")?;
        let gid = id(header.gid()?, "group id")?;
        let mut mtime = header.mtime()?;
        if let Some(exact) = pax_mtime(&mut entry)? {
            mtime = exact;
        }
        let (size, offset) = match kind {
            DataKind::File => (entry.size(), entry.raw_file_position()),
            _ => (0, 0),
        };
        if matches!(kind, DataKind::File | DataKind::Hardlink(_)) {
            linkable.insert(path.clone());
        }
        entries.push(DataEntry {
            path,
            kind,
            mode,
            uid,
            gid,
            mtime,
            size,
            offset,
        });
    }
    Ok(entries)
}

/// The whole seconds of a PAX `mtime` (`1700000000.25`), if there is one.
fn pax_mtime<R: Read>(entry: &mut tar::Entry<'_, R>) -> io::Result<Option<u64>> {
    let Some(extensions) = entry.pax_extensions()? else {
        return Ok(None);
    };
    for extension in extensions {
        let extension = extension?;
        if extension.key_bytes() == b"mtime" {
            let value = std::str::from_utf8(extension.value_bytes()).unwrap_or("");
            let seconds = value.split('.').next().unwrap_or("");
            if let Ok(seconds) = seconds.parse::<i64>() {
                return Ok(Some(u64::try_from(seconds).unwrap_or(0)));
            }
        }
    }
    Ok(None)
}

/// Why a path in a tar cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BadPath {
    NotUtf8,
    Nul,
    DotDot,
    TooLong,
}

impl BadPath {
    /// The reason, said of `what` (`its path`, `its link target`).
    fn of(self, what: &str) -> String {
        match self {
            BadPath::NotUtf8 => format!("{what} is not UTF-8"),
            BadPath::Nul => format!("{what} contains a NUL byte"),
            BadPath::DotDot => format!("{what} contains `..`"),
            BadPath::TooLong => format!("{what} is longer than 4096 bytes (PATH_MAX)"),
        }
    }
}

/// A member's path as error messages show it: a hostile path can be a
/// megabyte long, so only its start is shown.
fn shown_path(raw: &[u8]) -> String {
    const SHOWN: usize = 200;
    let text = String::from_utf8_lossy(&raw[..raw.len().min(SHOWN)]).into_owned();
    if raw.len() > SHOWN {
        format!("{text}… ({} bytes)", raw.len())
    } else {
        text
    }
}

/// `./usr//bin/x/` → `usr/bin/x`; `./` → ``. Refuses `..`, NUL, non-UTF-8
/// and paths longer than PATH_MAX.
fn normalise(raw: &[u8]) -> Result<String, BadPath> {
    let text = std::str::from_utf8(raw).map_err(|_| BadPath::NotUtf8)?;
    if text.contains('\0') {
        return Err(BadPath::Nul);
    }
    let mut out = String::with_capacity(text.len());
    for part in text.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(BadPath::DotDot),
            part => {
                if !out.is_empty() {
                    out.push('/');
                }
                out.push_str(part);
            }
        }
        if out.len() > strata_oci::path::MAX_PATH {
            return Err(BadPath::TooLong);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::fs;
    use std::io::{Seek, SeekFrom};
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::process::Command;

    use tempfile::TempDir;

    use super::*;

    const EPOCH: u64 = 1_700_000_000;
    const CONTROL: &str = "Package: hello\nVersion: 1.0-1\nArchitecture: all\n\
        Maintainer: Test <test@example.org>\nDescription: a test package\n made by the tests\n";
    const POSTINST: &str = "#!/bin/sh\nset -e\necho configured\n";
    const MD5SUMS: &str = "0123456789abcdef0123456789abcdef  usr/bin/hello\n";
    const CONFFILES: &str = "/etc/hello.conf\n";

    fn long_name() -> String {
        format!("usr/share/hello/{}.txt", "long-name-".repeat(12))
    }

    /// What the package tree holds: path, kind, mode, content.
    fn expected() -> Vec<(String, DataKind, u32, Vec<u8>)> {
        let dir = |p: &str, mode| (p.to_owned(), DataKind::Dir, mode, Vec::new());
        let file =
            |p: &str, mode, content: &[u8]| (p.to_owned(), DataKind::File, mode, content.to_vec());
        // More than one tar block, not a multiple of 512, not all the same byte.
        let big: Vec<u8> = (0..70_001u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        vec![
            dir("etc", 0o755),
            file("etc/hello.conf", 0o644, b"greeting = hello\n"),
            dir("usr", 0o755),
            dir("usr/bin", 0o755),
            file("usr/bin/hello", 0o755, b"#!/bin/sh\necho hello\n"),
            file("usr/bin/hello-suid", 0o4755, b"#!/bin/sh\necho root\n"),
            (
                "usr/bin/hi".into(),
                DataKind::Symlink("hello".into()),
                0o777,
                Vec::new(),
            ),
            dir("usr/share", 0o755),
            dir("usr/share/hello", 0o755),
            file("usr/share/hello/big.bin", 0o644, &big),
            file("usr/share/hello/empty", 0o644, b""),
            file(&long_name(), 0o644, b"a file with a long name\n"),
            dir("var", 0o755),
            dir("var/lib", 0o755),
            dir("var/lib/hello", 0o700),
        ]
    }

    /// Writes the package tree (plus a hard link `usr/bin/hello-again` to
    /// `usr/bin/hello`) under `dir/root` and returns the root.
    fn tree(dir: &Path) -> PathBuf {
        let root = dir.join("root");
        let set_mode =
            |p: &Path, mode| fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
        fs::create_dir_all(root.join("DEBIAN")).unwrap();
        set_mode(&root, 0o755);
        set_mode(&root.join("DEBIAN"), 0o755);
        for (name, text, mode) in [
            ("control", CONTROL, 0o644),
            ("postinst", POSTINST, 0o755),
            ("md5sums", MD5SUMS, 0o644),
            ("conffiles", CONFFILES, 0o644),
        ] {
            let path = root.join("DEBIAN").join(name);
            fs::write(&path, text).unwrap();
            set_mode(&path, mode);
        }
        for (path, kind, mode, content) in expected() {
            let path = root.join(path);
            match &kind {
                DataKind::Dir => fs::create_dir_all(&path).unwrap(),
                DataKind::File => fs::write(&path, content).unwrap(),
                DataKind::Symlink(target) => std::os::unix::fs::symlink(target, &path).unwrap(),
                _ => unreachable!(),
            }
            if !matches!(kind, DataKind::Symlink(_)) {
                set_mode(&path, mode);
            }
        }
        fs::hard_link(root.join("usr/bin/hello"), root.join("usr/bin/hello-again")).unwrap();
        root
    }

    fn dpkg_deb(dir: &Path, root: &Path, args: &[&str]) -> PathBuf {
        let deb = dir.join("hello.deb");
        let out = Command::new("dpkg-deb")
            .args(args)
            .arg("--build")
            .arg(root)
            .arg(&deb)
            .env("SOURCE_DATE_EPOCH", EPOCH.to_string())
            .output()
            .expect("`dpkg-deb` runs");
        assert!(
            out.status.success(),
            "dpkg-deb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        deb
    }

    fn package(args: &[&str]) -> (TempDir, PathBuf, PathBuf) {
        let dir = TempDir::new().unwrap();
        let root = tree(dir.path());
        let deb = dpkg_deb(dir.path(), &root, args);
        (dir, root, deb)
    }

    fn read_at(path: &Path, offset: u64, size: u64) -> Vec<u8> {
        let mut file = File::open(path).unwrap();
        file.seek(SeekFrom::Start(offset)).unwrap();
        let mut content = Vec::new();
        file.take(size).read_to_end(&mut content).unwrap();
        content
    }

    fn leftovers(dir: &Path) -> Vec<String> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with(".strata-deb-"))
            .collect()
    }

    /// Unpacks a package built from `tree` and checks every field.
    fn check(args: &[&str], root_owned: bool) {
        let (dir, root, deb) = package(args);
        let dest = dir.path().join("data.tar");
        let unpacked = unpack(&deb, &dest).unwrap();
        assert_eq!(unpacked.data_tar, dest);
        assert_eq!(leftovers(dir.path()), Vec::<String>::new());

        let control = &unpacked.control;
        assert_eq!(control.text, CONTROL);
        assert_eq!(control.md5sums.as_deref(), Some(MD5SUMS));
        assert_eq!(control.conffiles.as_deref(), Some(CONFFILES));
        assert_eq!(
            control.maintainer_scripts,
            vec![("postinst".to_owned(), POSTINST.to_owned())]
        );
        assert_eq!(&read_control(&deb).unwrap(), control);

        let owner = fs::metadata(&root).unwrap();
        let (uid, gid) = if root_owned {
            (0, 0)
        } else {
            (owner.uid(), owner.gid())
        };
        let entries = &unpacked.entries;
        let by_path: HashMap<&str, &DataEntry> =
            entries.iter().map(|e| (e.path.as_str(), e)).collect();
        assert_eq!(by_path.len(), entries.len(), "no path listed twice");
        for entry in entries {
            assert!(
                !entry.path.is_empty()
                    && !entry.path.starts_with(['.', '/'])
                    && !entry.path.ends_with('/'),
                "`{}` is normalised",
                entry.path
            );
            assert_eq!(
                (entry.uid, entry.gid),
                (uid, gid),
                "owner of `{}`",
                entry.path
            );
            assert_eq!(entry.mtime, EPOCH, "mtime of `{}`", entry.path);
        }

        let expected = expected();
        let mut paths: Vec<&str> = expected.iter().map(|(p, ..)| p.as_str()).collect();
        paths.push("usr/bin/hello-again");
        paths.sort_unstable();
        let mut got: Vec<&str> = by_path.keys().copied().collect();
        got.sort_unstable();
        assert_eq!(got, paths);

        // dpkg-deb sorts the tree, so `hello` comes first and `hello-again`
        // links to it; the test accepts either order.
        let (first, second) = ("usr/bin/hello", "usr/bin/hello-again");
        let (file, link) = match by_path[first].kind {
            DataKind::File => (first, second),
            _ => (second, first),
        };
        assert_eq!(by_path[link].kind, DataKind::Hardlink(file.to_owned()));
        assert_eq!(
            (by_path[link].mode, by_path[link].size, by_path[link].offset),
            (0o755, 0, 0)
        );
        assert!(
            entries.iter().position(|e| e.path == file)
                < entries.iter().position(|e| e.path == link)
        );

        for (path, kind, mode, content) in expected {
            let kind = if path == link {
                DataKind::Hardlink(file.to_owned())
            } else {
                kind
            };
            let entry = by_path[path.as_str()];
            assert_eq!(entry.kind, kind, "kind of `{path}`");
            assert_eq!(entry.mode, mode, "mode of `{path}`: {:o}", entry.mode);
            if kind == DataKind::File {
                assert_eq!(entry.size, content.len() as u64, "size of `{path}`");
                assert_eq!(
                    read_at(&dest, entry.offset, entry.size),
                    content,
                    "content of `{path}`"
                );
            } else {
                assert_eq!(
                    (entry.size, entry.offset),
                    (0, 0),
                    "size and offset of `{path}`"
                );
            }
        }
        let file = by_path[file];
        assert_eq!(
            read_at(&dest, file.offset, file.size),
            b"#!/bin/sh\necho hello\n"
        );
    }

    #[test]
    fn unpacks_xz() {
        check(&["--root-owner-group", "-Zxz"], true);
    }

    #[test]
    fn unpacks_gzip() {
        check(&["--root-owner-group", "-Zgzip"], true);
    }

    #[test]
    fn unpacks_zstd() {
        check(&["--root-owner-group", "-Zzstd"], true);
    }

    #[test]
    fn unpacks_uncompressed() {
        check(&["--root-owner-group", "-Znone"], true);
    }

    #[test]
    fn keeps_the_builders_owner() {
        check(&["-Zxz"], false);
    }

    #[test]
    fn the_copy_is_the_exact_data_tar() {
        let (dir, _root, deb) = package(&["--root-owner-group", "-Znone"]);
        let bytes = fs::read(&deb).unwrap();
        let (start, len) = members(&bytes)
            .into_iter()
            .find(|(name, ..)| name == "data.tar")
            .map(|(_, s, l)| (s, l))
            .unwrap();
        let dest = dir.path().join("data.tar");
        unpack(&deb, &dest).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), &bytes[start..start + len]);
    }

    #[test]
    fn replaces_an_existing_copy() {
        let (dir, _root, deb) = package(&["--root-owner-group", "-Zxz"]);
        let dest = dir.path().join("data.tar");
        fs::write(&dest, "stale").unwrap();
        let unpacked = unpack(&deb, &dest).unwrap();
        let file = unpacked
            .entries
            .iter()
            .find(|e| e.path == "etc/hello.conf")
            .unwrap();
        assert_eq!(
            read_at(&dest, file.offset, file.size),
            b"greeting = hello\n"
        );
    }

    #[test]
    fn read_control_returns_control_and_scripts() {
        let (_dir, _root, deb) = package(&["--root-owner-group", "-Zxz"]);
        let control = read_control(&deb).unwrap();
        assert_eq!(control.text, CONTROL);
        assert_eq!(
            control.maintainer_scripts,
            vec![("postinst".to_owned(), POSTINST.to_owned())]
        );
    }

    #[test]
    fn read_control_stops_before_the_data() {
        // A package cut inside its data member still has a readable control part.
        let (dir, _root, deb) = package(&["--root-owner-group", "-Zxz"]);
        let bytes = fs::read(&deb).unwrap();
        let (start, _) = members(&bytes)
            .into_iter()
            .find(|(n, ..)| n == "data.tar.xz")
            .map(|(_, s, l)| (s, l))
            .unwrap();
        let cut = dir.path().join("cut.deb");
        fs::write(&cut, &bytes[..start + 10]).unwrap();
        assert_eq!(read_control(&cut).unwrap().text, CONTROL);
    }

    #[test]
    fn truncated_packages_are_reported() {
        for args in [
            ["--root-owner-group", "-Zxz"],
            ["--root-owner-group", "-Znone"],
        ] {
            let (dir, _root, deb) = package(&args);
            let bytes = fs::read(&deb).unwrap();
            let data = members(&bytes)
                .into_iter()
                .find(|(n, ..)| n.starts_with("data.tar"))
                .unwrap();
            // Inside the magic, a header, `debian-binary`, the control
            // member, the data member, and (uncompressed) right after a tar
            // header, where a tar reader alone would see a clean end.
            let cuts = [4, 30, 70, 200, data.1 - 100, data.1 + 1024, bytes.len() - 2];
            for cut in cuts.into_iter().filter(|&cut| cut < bytes.len()) {
                let path = dir.path().join("cut.deb");
                fs::write(&path, &bytes[..cut]).unwrap();
                let dest = dir.path().join("cut.tar");
                let err = unpack(&path, &dest).unwrap_err();
                assert!(
                    matches!(err, DebError::Truncated { .. }),
                    "cut at {cut} of {args:?}: {err:?}"
                );
                let message = err.to_string();
                assert!(
                    message.starts_with(&format!(
                        "`{}` is truncated: it ends inside ",
                        path.display()
                    )),
                    "{message}"
                );
                assert!(!dest.exists());
                assert_eq!(leftovers(dir.path()), Vec::<String>::new());
            }
        }
    }

    #[test]
    fn a_damaged_data_member_is_reported() {
        let (dir, _root, deb) = package(&["--root-owner-group", "-Zxz"]);
        let mut bytes = fs::read(&deb).unwrap();
        let data = members(&bytes)
            .into_iter()
            .find(|(n, ..)| n == "data.tar.xz")
            .unwrap();
        bytes[data.1 + data.2 / 2] ^= 0xff;
        let path = dir.path().join("damaged.deb");
        fs::write(&path, &bytes).unwrap();
        let err = unpack(&path, &dir.path().join("data.tar")).unwrap_err();
        assert!(matches!(err, DebError::Corrupt { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!(
                "`{}` is damaged: cannot read its `data.tar.xz` member",
                path.display()
            )
        );
    }

    #[test]
    fn other_files_are_not_packages() {
        let dir = TempDir::new().unwrap();
        for (name, content) in [("text.deb", &b"Package: hello\n"[..]), ("empty.deb", b"")] {
            let path = dir.path().join(name);
            fs::write(&path, content).unwrap();
            let expected = format!(
                "`{}` is not a Debian package: it is not an `ar` archive",
                path.display()
            );
            assert_eq!(
                unpack(&path, &dir.path().join("data.tar"))
                    .unwrap_err()
                    .to_string(),
                expected
            );
            assert_eq!(read_control(&path).unwrap_err().to_string(), expected);
        }
        let missing = dir.path().join("missing.deb");
        let err = read_control(&missing).unwrap_err();
        assert!(matches!(err, DebError::Read { .. }));
        assert_eq!(
            err.to_string(),
            format!("cannot read `{}`", missing.display())
        );
    }

    /// The members of an `ar` archive: name, content start, length.
    fn members(bytes: &[u8]) -> Vec<(String, usize, usize)> {
        let mut out = Vec::new();
        let mut at = 8;
        while at + 60 <= bytes.len() {
            let header = &bytes[at..at + 60];
            let name = String::from_utf8_lossy(&header[..16])
                .trim_end()
                .trim_end_matches('/')
                .to_owned();
            let size: usize = std::str::from_utf8(&header[48..58])
                .unwrap()
                .trim()
                .parse()
                .unwrap();
            out.push((name, at + 60, size));
            at += 60 + size + size % 2;
        }
        out
    }

    fn ar_archive(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = b"!<arch>\n".to_vec();
        for (name, content) in members {
            let header = format!(
                "{name:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
                0,
                0,
                0,
                "100644",
                content.len()
            );
            assert_eq!(header.len(), 60);
            out.extend_from_slice(header.as_bytes());
            out.extend_from_slice(content);
            if content.len() % 2 == 1 {
                out.push(b'\n');
            }
        }
        out
    }

    fn tar_header(path: &[u8], kind: tar::EntryType, size: u64) -> tar::Header {
        let mut header = tar::Header::new_ustar();
        header.as_old_mut().name[..path.len()].copy_from_slice(path);
        header.set_entry_type(kind);
        header.set_size(size);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(EPOCH);
        header.set_cksum();
        header
    }

    /// Path, type, link target, content.
    type TarEntry<'a> = (&'a str, tar::EntryType, &'a str, &'a [u8]);

    fn tar_bytes(entries: &[TarEntry<'_>]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, kind, link, content) in entries {
            let mut header = tar_header(path.as_bytes(), *kind, content.len() as u64);
            if !link.is_empty() {
                header.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
                header.set_cksum();
            }
            builder.append(&header, *content).unwrap();
        }
        builder.into_inner().unwrap()
    }

    fn control_tar() -> Vec<u8> {
        tar_bytes(&[
            ("./", tar::EntryType::Directory, "", b""),
            ("./control", tar::EntryType::Regular, "", CONTROL.as_bytes()),
        ])
    }

    fn write(dir: &TempDir, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.path().join(name);
        fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn needs_debian_binary_first() {
        let dir = TempDir::new().unwrap();
        let data = tar_bytes(&[]);
        let path = write(
            &dir,
            "no-binary.deb",
            &ar_archive(&[("control.tar", &control_tar()), ("data.tar", &data)]),
        );
        assert_eq!(
            read_control(&path).unwrap_err().to_string(),
            format!(
                "`{}` is not a Debian package: no `debian-binary` member",
                path.display()
            )
        );
        let path = write(
            &dir,
            "v3.deb",
            &ar_archive(&[("debian-binary", b"3.0\n"), ("control.tar", &control_tar())]),
        );
        assert_eq!(
            read_control(&path).unwrap_err().to_string(),
            format!(
                "`{}` is not a Debian package: format version `3.0` is not `2.x`",
                path.display()
            )
        );
    }

    #[test]
    fn needs_control_and_data() {
        let dir = TempDir::new().unwrap();
        let path = write(
            &dir,
            "no-data.deb",
            &ar_archive(&[("debian-binary", b"2.0\n"), ("control.tar", &control_tar())]),
        );
        assert_eq!(
            unpack(&path, &dir.path().join("data.tar"))
                .unwrap_err()
                .to_string(),
            format!(
                "`{}` is not a Debian package: no `data.tar` member",
                path.display()
            )
        );
        let empty = tar_bytes(&[("./", tar::EntryType::Directory, "", b"")]);
        let path = write(
            &dir,
            "no-control.deb",
            &ar_archive(&[("debian-binary", b"2.0\n"), ("control.tar", &empty)]),
        );
        assert_eq!(
            read_control(&path).unwrap_err().to_string(),
            format!(
                "`{}` is not a Debian package: no `control` file in its `control.tar` member",
                path.display()
            )
        );
    }

    #[test]
    fn refuses_bzip2() {
        let dir = TempDir::new().unwrap();
        let deb = ar_archive(&[
            ("debian-binary", b"2.0\n"),
            ("control.tar", &control_tar()),
            ("data.tar.bz2", b"BZh91AY&SY"),
        ]);
        let path = write(&dir, "bz2.deb", &deb);
        let dest = dir.path().join("data.tar");
        let err = unpack(&path, &dest).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "unsupported compression `data.tar.bz2` in `{}`",
                path.display()
            )
        );
        assert!(!dest.exists());
        assert_eq!(read_control(&path).unwrap().text, CONTROL);
    }

    #[test]
    fn accepts_gnu_names_and_extra_members() {
        let dir = TempDir::new().unwrap();
        let data = tar_bytes(&[
            ("./usr/", tar::EntryType::Directory, "", b""),
            ("usr/a", tar::EntryType::Regular, "", b"odd"),
            // A directory as pre-POSIX tars wrote it.
            ("./opt/", tar::EntryType::Regular, "", b""),
        ]);
        let deb = ar_archive(&[
            ("debian-binary/", b"2.0\n"),
            ("_extension", b"x"),
            ("control.tar/", &control_tar()),
            ("data.tar/", &data),
            ("trailing", b"ignored"),
        ]);
        let path = write(&dir, "gnu.deb", &deb);
        let unpacked = unpack(&path, &dir.path().join("data.tar")).unwrap();
        let paths: Vec<&str> = unpacked.entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["usr", "usr/a", "opt"]);
        let kinds: Vec<&DataKind> = unpacked.entries.iter().map(|e| &e.kind).collect();
        assert_eq!(kinds, [&DataKind::Dir, &DataKind::File, &DataKind::Dir]);
        assert_eq!(unpacked.entries[1].mode, 0o644);
    }

    #[test]
    fn reads_pax_headers() {
        let dir = TempDir::new().unwrap();
        let long = format!("usr/share/{}", "pax-".repeat(40));
        let record = |key: &str, value: &str| {
            let body = format!(" {key}={value}\n");
            let mut len = body.len() + 1;
            while format!("{len}{body}").len() != len {
                len += 1;
            }
            format!("{len}{body}")
        };
        let pax = format!(
            "{}{}{}",
            record("path", &long),
            record("mtime", "1700000123.25"),
            record("uid", "5000000")
        );
        let mut builder = tar::Builder::new(Vec::new());
        builder
            .append(
                &tar_header(b"PaxHeader", tar::EntryType::XHeader, pax.len() as u64),
                pax.as_bytes(),
            )
            .unwrap();
        builder
            .append(
                &tar_header(b"short-name", tar::EntryType::Regular, 5),
                &b"hello"[..],
            )
            .unwrap();
        let data = builder.into_inner().unwrap();
        let deb = ar_archive(&[
            ("debian-binary", b"2.0\n"),
            ("control.tar", &control_tar()),
            ("data.tar", &data),
        ]);
        let path = write(&dir, "pax.deb", &deb);
        let dest = dir.path().join("data.tar");
        let entries = unpack(&path, &dest).unwrap().entries;
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].path, long);
        assert_eq!(
            (entries[0].mtime, entries[0].uid),
            (1_700_000_123, 5_000_000)
        );
        assert_eq!(read_at(&dest, entries[0].offset, entries[0].size), b"hello");
    }

    #[test]
    fn refuses_headers_larger_than_the_bound_before_reading_them_whole() {
        let dir = TempDir::new().unwrap();
        // A GNU long name and a PAX header that claim 3 GiB: strata stops
        // reading at 1 MiB (only 2 MiB follow, the archive need not be whole
        // for that), and says the package is at fault, not the download.
        let body = vec![b'a'; 2 << 20];
        for kind in [tar::EntryType::GNULongName, tar::EntryType::XHeader] {
            let mut data = tar_header(b"././@LongLink", kind, 3 << 30)
                .as_bytes()
                .to_vec();
            data.extend_from_slice(&body);
            let deb = ar_archive(&[
                ("debian-binary", b"2.0\n"),
                ("control.tar", &control_tar()),
                ("data.tar", &data),
            ]);
            let path = write(&dir, "huge-name.deb", &deb);
            let err = unpack(&path, &dir.path().join("data.tar")).unwrap_err();
            assert!(
                matches!(err, DebError::OversizedHeaders { ref member, .. } if member == "data.tar"),
                "{kind:?}: {err:?}"
            );
            let source = std::error::Error::source(&err).unwrap().to_string();
            assert!(source.contains("more than 1 MiB"), "{source}");
        }
    }

    #[test]
    fn refuses_paths_longer_than_path_max() {
        let dir = TempDir::new().unwrap();
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(1);
        header.set_mode(0o644);
        let deep = "d/".repeat(500_000) + "f";
        builder.append_data(&mut header, &deep, &b"x"[..]).unwrap();
        let deb = ar_archive(&[
            ("debian-binary", b"2.0\n"),
            ("control.tar", &control_tar()),
            ("data.tar", &builder.into_inner().unwrap()),
        ]);
        let path = write(&dir, "deep.deb", &deb);
        let err = unpack(&path, &dir.path().join("data.tar")).unwrap_err();
        assert!(
            matches!(&err, DebError::BadEntry { reason, .. } if reason.contains("longer than 4096 bytes")),
            "{err:?}"
        );
        assert!(err.to_string().len() < 500, "{err}");
    }

    #[test]
    fn refuses_unsafe_entries() {
        let dir = TempDir::new().unwrap();
        let cases: [(&[TarEntry<'_>], &str, &str); 4] = [
            (
                &[
                    ("./usr/a", tar::EntryType::Regular, "", b"x"),
                    (
                        "./usr/b",
                        tar::EntryType::Link,
                        "./usr/../../etc/passwd",
                        b"",
                    ),
                ],
                "./usr/b",
                "its link target contains `..`",
            ),
            (
                &[("./../etc/passwd", tar::EntryType::Regular, "", b"x")],
                "./../etc/passwd",
                "its path contains `..`",
            ),
            (
                &[("./usr/a", tar::EntryType::Link, "./usr/missing", b"")],
                "./usr/a",
                "it is a hard link to `usr/missing`, which is not an earlier file of the archive",
            ),
            (
                &[("./usr/a", tar::EntryType::Symlink, "", b"")],
                "./usr/a",
                "the link has no target",
            ),
        ];
        for (entries, entry, reason) in cases {
            let deb = ar_archive(&[
                ("debian-binary", b"2.0\n"),
                ("control.tar", &control_tar()),
                ("data.tar", &tar_bytes(entries)),
            ]);
            let path = write(&dir, "unsafe.deb", &deb);
            let dest = dir.path().join("data.tar");
            let err = unpack(&path, &dest).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "`{}` has an unusable entry `{entry}` in `data.tar`: {reason}",
                    path.display()
                )
            );
            assert!(!dest.exists());
            assert_eq!(leftovers(dir.path()), Vec::<String>::new());
        }
    }

    #[test]
    fn reports_an_unwritable_destination() {
        let (dir, _root, deb) = package(&["--root-owner-group", "-Zxz"]);
        let dest = dir.path().join("no-such-folder/data.tar");
        let err = unpack(&deb, &dest).unwrap_err();
        assert!(matches!(err, DebError::Write { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!(
                "cannot write the data of `{}` to `{}`",
                deb.display(),
                dest.display()
            )
        );
    }

    #[test]
    fn normalises_paths() {
        assert_eq!(normalise(b"./usr//bin/./x/").unwrap(), "usr/bin/x");
        assert_eq!(normalise(b"/etc/passwd").unwrap(), "etc/passwd");
        assert_eq!(normalise(b"./").unwrap(), "");
        assert!(normalise(b"usr/../../etc").is_err());
        assert!(normalise(b"usr/\xff").is_err());
    }
}
