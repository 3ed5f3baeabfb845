//! Unpacks a wheel into the cache: every member decompressed into one blob,
//! back to back, each checked against the wheel's own `RECORD` while it
//! streams. Nothing reaches the cache unless every check passed, and nothing
//! is ever written at a path the wheel chose.
//!
//! A wheel is a zip file from the internet. The checks below are the ones a
//! hostile zip needs: names that escape (`..`, absolute, backslashes),
//! duplicate names that different readers resolve differently, symlinks and
//! devices, compression methods nobody audits, and sizes that lie
//! (decompression bombs). Memory stays bounded: members stream through a
//! fixed buffer, and the central directory is counted before the zip crate
//! loads it.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use strata_cache::{Cache, CacheError};
use strata_oci::digest::{Digest, HashingWriter};
use zip::{CompressionMethod, ZipArchive};

/// Caps on what a wheel may make strata read, write or hold in memory.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Limits {
    /// Members in the central directory, counted before the zip crate loads
    /// it: the directory costs a few hundred bytes of memory per entry.
    pub max_members: usize,
    /// Total uncompressed bytes, as declared and as streamed.
    pub max_total: u64,
    /// Total uncompressed size over the wheel's file size, once the total
    /// exceeds `ratio_floor`.
    pub max_ratio: u64,
    /// Below this total the ratio is not checked: small wheels of text
    /// compress well and are harmless whatever their ratio.
    pub ratio_floor: u64,
    /// Bytes in a member name (and a `RECORD` path).
    pub max_path: usize,
    /// Bytes in `RECORD`, which is read whole to check every member.
    pub max_record: u64,
    /// Bytes in `WHEEL`, `METADATA` and `entry_points.txt`, which are read whole.
    pub max_text: u64,
}

/// The default cap on small text members; [`crate::install`] reads
/// `entry_points.txt` under it too.
pub const MAX_TEXT: u64 = 16 << 20;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            // The largest wheels on PyPI hold tens of thousands of files
            // (tensorflow ~20k, plotly ~18k); ten times that still costs under
            // 100 MiB of central directory in memory.
            max_members: 200_000,
            // torch's ~800 MB wheels unpack to ~2 GB and the nvidia CUDA wheels
            // to ~3x their size; 32 GiB leaves room and still stops a bomb
            // before it fills a disk.
            max_total: 32 << 30,
            // Real wheels stay far below 100: native code compresses about 3x,
            // text about 5-10x. A bomb's ratio is in the thousands.
            max_ratio: 100,
            ratio_floor: 256 << 20,
            // Linux's PATH_MAX.
            max_path: 4096,
            // A RECORD row is ~100 bytes: 64 MiB is ~600k rows, three times
            // `max_members`.
            max_record: 64 << 20,
            // METADATA embeds the README; the largest seen are a few MiB.
            max_text: MAX_TEXT,
        }
    }
}

/// A wheel's members, decompressed into one file in the cache, back to back.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Unpacked {
    /// The one top-level `*.dist-info` directory, e.g. `numpy-2.1.0.dist-info`.
    pub dist_info: String,
    /// `Root-Is-Purelib` from `WHEEL`.
    pub root_is_purelib: bool,
    /// `Wheel-Version` from `WHEEL`; its major version is 1.
    pub wheel_version: String,
    /// Every member except directories, sorted by path.
    pub members: Vec<Member>,
    /// The digest of the concatenated file; its path is `cache.blob_path(&blob)`.
    pub blob: Digest,
}

/// One file of a wheel: where its bytes are in the blob.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Member {
    /// Normalized: `/`-separated, no `.` components.
    pub path: String,
    pub offset: u64,
    pub size: u64,
    pub sha256: Digest,
    /// Any x bit in the member's unix mode.
    pub executable: bool,
}

/// Why a member name (or a `RECORD` path) is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameProblem {
    TooLong,
    NotUtf8,
    Nul,
    Backslash,
    Absolute,
    ParentDir,
    EmptyComponent,
    /// A Unicode Path extra field renames the member for some zip readers
    /// (the zip crate) and not others (Python's `zipfile`).
    Renamed,
}

impl std::fmt::Display for NameProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NameProblem::TooLong => "is longer than the path limit",
            NameProblem::NotUtf8 => "is not UTF-8",
            NameProblem::Nul => "contains a NUL byte",
            NameProblem::Backslash => "contains a backslash",
            NameProblem::Absolute => "is absolute",
            NameProblem::ParentDir => "has a `..` component",
            NameProblem::EmptyComponent => "has an empty component",
            NameProblem::Renamed => "is renamed by a Unicode Path extra field",
        })
    }
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum WheelError {
    #[error("cannot read wheel `{wheel}` at `{}`", path.display())]
    #[diagnostic(help(
        "check that the file exists and is readable; delete it from the cache to fetch it again"
    ))]
    Io {
        wheel: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot store the unpacked wheel `{wheel}` in the cache")]
    #[diagnostic(help("check that the cache folder is writable and has free space"))]
    Cache {
        wheel: String,
        #[source]
        source: CacheError,
    },
    #[error("`{wheel}` is not a wheel file name: {reason}")]
    #[diagnostic(help(
        "wheel file names are `{{name}}-{{version}}(-{{build}})?-{{python}}-{{abi}}-{{platform}}.whl` (PEP 427)"
    ))]
    Filename { wheel: String, reason: &'static str },
    #[error("wheel `{wheel}` is not a zip file strata accepts: {reason}")]
    #[diagnostic(help(
        "the file is corrupt or crafted; delete it from the cache to fetch it again, or report it to the project"
    ))]
    Zip { wheel: String, reason: String },
    #[error("wheel `{wheel}` has {count} members; the limit is {max}")]
    #[diagnostic(help("raise `max_members` if the wheel is genuine"))]
    TooManyMembers {
        wheel: String,
        count: u64,
        max: usize,
    },
    #[error("wheel `{wheel}` unpacks to {total} bytes; the limit is {max}")]
    #[diagnostic(help("raise `max_total` if the wheel is genuine"))]
    TooLarge { wheel: String, total: u64, max: u64 },
    #[error(
        "wheel `{wheel}` unpacks to {total} bytes from {size}: more than {max_ratio} times its size, a decompression bomb"
    )]
    #[diagnostic(help("raise `max_ratio` if the wheel is genuine"))]
    Ratio {
        wheel: String,
        total: u64,
        size: u64,
        max_ratio: u64,
    },
    #[error("wheel `{wheel}` has a member whose name {problem}: `{member}`")]
    #[diagnostic(help(
        "wheel members are relative `/`-separated UTF-8 paths inside the install folder; the wheel is broken or hostile"
    ))]
    BadName {
        wheel: String,
        member: String,
        problem: NameProblem,
    },
    #[error("wheel `{wheel}` has `{member}` twice")]
    #[diagnostic(help(
        "zip readers disagree on which copy counts, so strata accepts neither; the wheel is broken or hostile"
    ))]
    Duplicate { wheel: String, member: String },
    #[error("wheel `{wheel}` has `{member}` both as a file and as a folder holding other members")]
    #[diagnostic(help("the wheel is broken or hostile: it cannot be installed"))]
    FileAndFolder { wheel: String, member: String },
    #[error("wheel `{wheel}` member `{member}` is a {kind}, not a regular file")]
    #[diagnostic(help(
        "wheels hold regular files only: a symlink or device would point outside the install; the wheel is broken or hostile"
    ))]
    NotRegular {
        wheel: String,
        member: String,
        kind: &'static str,
    },
    #[error("wheel `{wheel}` member `{member}` is compressed with {method}")]
    #[diagnostic(help(
        "strata reads wheels compressed with deflate or stored, as every wheel builder writes them"
    ))]
    Compression {
        wheel: String,
        member: String,
        method: String,
    },
    #[error("wheel `{wheel}` member `{member}` is encrypted")]
    #[diagnostic(help("wheels are never encrypted; the wheel is broken or hostile"))]
    Encrypted { wheel: String, member: String },
    #[error("cannot decompress `{member}` from wheel `{wheel}`")]
    #[diagnostic(help(
        "its data is corrupt or larger than its header says; delete the wheel from the cache to fetch it again"
    ))]
    Decompress {
        wheel: String,
        member: String,
        #[source]
        source: io::Error,
    },
    #[error("wheel `{wheel}` member `{member}` declares {declared} bytes but holds {actual}")]
    #[diagnostic(help(
        "the zip headers lie about the member's size; the wheel is broken or hostile"
    ))]
    SizeMismatch {
        wheel: String,
        member: String,
        declared: u64,
        actual: String,
    },
    #[error("wheel `{wheel}` member `{member}` has {size} bytes; the limit is {max}")]
    #[diagnostic(help("raise `max_record` or `max_text` if the wheel is genuine"))]
    MemberTooLarge {
        wheel: String,
        member: String,
        size: u64,
        max: u64,
    },
    #[error("wheel `{wheel}` has {} `.dist-info` folders at its top: {}", found.len(), found.join(", "))]
    #[diagnostic(help(
        "a wheel holds exactly one `{{name}}-{{version}}.dist-info` folder (PEP 427)"
    ))]
    DistInfo { wheel: String, found: Vec<String> },
    #[error("wheel `{wheel}` holds `{dist_info}`, which names another {what} than the file name")]
    #[diagnostic(help("the wheel was renamed or built wrongly; report it to the project"))]
    DistInfoName {
        wheel: String,
        dist_info: String,
        what: &'static str,
    },
    #[error("wheel `{wheel}` has no `{member}`")]
    #[diagnostic(help(
        "every wheel has `RECORD` and `WHEEL` in its `.dist-info` folder (PEP 427)"
    ))]
    Missing { wheel: String, member: String },
    #[error("wheel `{wheel}`: `{member}` line {line}: {reason}")]
    #[diagnostic(help("the file is malformed; report it to the project"))]
    Syntax {
        wheel: String,
        member: String,
        line: usize,
        reason: String,
    },
    #[error("wheel `{wheel}`: RECORD uses {algorithm} for `{member}`; strata checks sha256")]
    #[diagnostic(help(
        "rebuild the wheel with a current wheel builder, which writes sha256 hashes"
    ))]
    RecordAlgorithm {
        wheel: String,
        member: String,
        algorithm: String,
    },
    #[error("wheel `{wheel}`: RECORD has no hash and size for `{member}`")]
    #[diagnostic(help(
        "only RECORD and its signatures may go unhashed; the wheel is broken or hostile"
    ))]
    RecordUnhashed { wheel: String, member: String },
    #[error("wheel `{wheel}`: `{member}` is not in RECORD")]
    #[diagnostic(help(
        "every member must be listed in RECORD with its hash; the wheel is broken or hostile"
    ))]
    NotInRecord { wheel: String, member: String },
    #[error("wheel `{wheel}`: RECORD lists `{member}`, which the wheel does not hold")]
    #[diagnostic(help("RECORD and the zip disagree; the wheel is broken or hostile"))]
    RecordWithoutMember { wheel: String, member: String },
    #[error("wheel `{wheel}`: RECORD lists the folder `{member}`")]
    #[diagnostic(help("RECORD lists files only (PEP 376); the wheel is broken"))]
    RecordFolder { wheel: String, member: String },
    #[error("wheel `{wheel}`: RECORD lists `{member}` twice")]
    #[diagnostic(help("RECORD has one row per file; the wheel is broken or hostile"))]
    RecordDuplicate { wheel: String, member: String },
    #[error(
        "wheel `{wheel}`: `{member}` does not match RECORD: {what} is {actual}, RECORD says {expected}"
    )]
    #[diagnostic(help(
        "the member was changed after RECORD was written; the wheel is broken or tampered with"
    ))]
    RecordMismatch {
        wheel: String,
        member: String,
        what: &'static str,
        expected: String,
        actual: String,
    },
    #[error("wheel `{wheel}` is Wheel-Version {version}; strata installs version 1 wheels")]
    #[diagnostic(help("use a release of the package built as a version 1 wheel"))]
    WheelVersion { wheel: String, version: String },
    #[error("`{member}` is not in the unpacked wheel `{wheel}`")]
    #[diagnostic(help("this is a bug in strata: it asked for a file the wheel does not hold"))]
    NoSuchMember { wheel: String, member: String },
    #[error("the cached copy of `{wheel}` is damaged: `{member}` does not match its hash")]
    #[diagnostic(help(
        "delete the cache folder's `blobs` and `pypi-wheels` entries for it and build again"
    ))]
    Corrupt { wheel: String, member: String },
}

/// The cache record of an unpacked wheel, keyed by the wheel's sha256.
#[derive(serde::Serialize, serde::Deserialize)]
struct CachedUnpack {
    /// Bumped whenever unpacking or [`Unpacked`] changes meaning.
    format: u32,
    /// A wheel accepted under looser limits is unpacked again under tighter ones.
    limits: Limits,
    unpacked: Unpacked,
}

const FORMAT: u32 = 1;
const RECORD_KIND: &str = "pypi-wheels";

/// Members exempt from having a RECORD row: RECORD cannot hash itself, and
/// its signatures sign it (PEP 376, PEP 427).
const UNHASHED: [&str; 3] = ["RECORD", "RECORD.jws", "RECORD.p7s"];

/// Read and write in 256 KiB chunks: large enough that syscalls do not
/// dominate, small enough to be irrelevant next to the zip crate's buffers.
const BUFFER: usize = 256 << 10;

/// The cached unpacked copy of the wheel whose sha256 is `wheel_sha256`,
/// if there is one: the wheel itself is not needed then, so a warm build
/// reads no wheel at all.
///
/// The record is written only after every member matched RECORD; the blob
/// is checked against the digest the record names (and a damaged one
/// removed, so the wheel is unpacked again), as every copy in the cache is
/// before it reaches an image.
pub fn cached(cache: &Cache, wheel_sha256: &Digest, limits: &Limits) -> Option<Unpacked> {
    let cached = cache.read_record::<CachedUnpack>(RECORD_KIND, wheel_sha256)?;
    let length: u64 = cached.unpacked.members.iter().map(|m| m.size).sum();
    (cached.format == FORMAT
        && cached.limits == *limits
        && cache.verified_blob(&cached.unpacked.blob).is_some()
        && std::fs::metadata(cache.blob_path(&cached.unpacked.blob))
            .is_ok_and(|m| m.len() == length))
    .then_some(cached.unpacked)
}

/// Unpacks the wheel at `wheel` (already verified against the index's sha256
/// = `wheel_sha256`) into the cache, or returns the [cached] result.
///
/// `filename` is the wheel's file name, used in errors and to check the
/// dist-info name matches.
pub fn unpack(
    cache: &Cache,
    wheel: &Path,
    wheel_sha256: &Digest,
    filename: &str,
    limits: &Limits,
) -> Result<Unpacked, WheelError> {
    let expected = WheelName::parse(filename)?;
    if let Some(cached) = cached(cache, wheel_sha256, limits) {
        expected.check(filename, &cached.dist_info)?;
        return Ok(cached);
    }
    let unpacked = Unpacker::open(cache, wheel, filename, limits)?.run(&expected)?;
    let record = CachedUnpack {
        format: FORMAT,
        limits: limits.clone(),
        unpacked,
    };
    let cache_error = |source| WheelError::Cache {
        wheel: filename.to_owned(),
        source,
    };
    cache.dir(RECORD_KIND).map_err(cache_error)?;
    cache
        .write_record(RECORD_KIND, wheel_sha256, &record)
        .map_err(cache_error)?;
    Ok(record.unpacked)
}

/// Reads a small member (METADATA, entry_points.txt) from the blob, at most
/// `cap` bytes, checked against its sha256.
pub fn read_member(
    cache: &Cache,
    unpacked: &Unpacked,
    path: &str,
    cap: u64,
) -> Result<Vec<u8>, WheelError> {
    let wheel = || unpacked.dist_info.clone();
    let member = unpacked
        .members
        .binary_search_by(|m| m.path.as_str().cmp(path))
        .map(|i| &unpacked.members[i])
        .map_err(|_| WheelError::NoSuchMember {
            wheel: wheel(),
            member: path.to_owned(),
        })?;
    if member.size > cap {
        return Err(WheelError::MemberTooLarge {
            wheel: wheel(),
            member: path.to_owned(),
            size: member.size,
            max: cap,
        });
    }
    let blob = cache.blob_path(&unpacked.blob);
    let io_error = |source| WheelError::Io {
        wheel: wheel(),
        path: blob.clone(),
        source,
    };
    let mut file = File::open(&blob).map_err(io_error)?;
    file.seek(SeekFrom::Start(member.offset))
        .map_err(io_error)?;
    let mut bytes = Vec::new();
    file.take(member.size)
        .read_to_end(&mut bytes)
        .map_err(io_error)?;
    if bytes.len() as u64 != member.size || Digest::of(&bytes) != member.sha256 {
        return Err(WheelError::Corrupt {
            wheel: wheel(),
            member: path.to_owned(),
        });
    }
    Ok(bytes)
}

/// The name and version a wheel's file name promises (PEP 427).
struct WheelName {
    name: String,
    version: uv_pep440::Version,
}

impl WheelName {
    fn parse(filename: &str) -> Result<WheelName, WheelError> {
        let bad = |reason| WheelError::Filename {
            wheel: filename.to_owned(),
            reason,
        };
        let stem = filename
            .strip_suffix(".whl")
            .ok_or_else(|| bad("it does not end with `.whl`"))?;
        let parts: Vec<&str> = stem.split('-').collect();
        if !(5..=6).contains(&parts.len()) {
            return Err(bad("it does not have five or six `-`-separated parts"));
        }
        let version = uv_pep440::Version::from_str(parts[1])
            .map_err(|_| bad("its version is not a PEP 440 version"))?;
        Ok(WheelName {
            name: normalize_name(parts[0]),
            version,
        })
    }

    /// The dist-info folder must be `{name}-{version}.dist-info` for the same
    /// project and version as the file name: an installer that trusted
    /// either alone would install one project under the other's name.
    fn check(&self, filename: &str, dist_info: &str) -> Result<(), WheelError> {
        let mismatch = |what| WheelError::DistInfoName {
            wheel: filename.to_owned(),
            dist_info: dist_info.to_owned(),
            what,
        };
        let stem = dist_info.strip_suffix(".dist-info").unwrap_or(dist_info);
        let (name, version) = stem.split_once('-').ok_or_else(|| mismatch("project"))?;
        if normalize_name(name) != self.name {
            return Err(mismatch("project"));
        }
        match uv_pep440::Version::from_str(version) {
            Ok(version) if version == self.version => Ok(()),
            _ => Err(mismatch("version")),
        }
    }
}

/// PEP 503 normalization: lowercase, runs of `-`, `_` and `.` become one `-`.
pub(crate) fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !out.ends_with('-') {
                out.push('-');
            }
        } else {
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// Checks a member name or RECORD path and returns it normalized (`.`
/// components dropped), with whether it names a folder (a trailing `/`).
fn normalize_path(raw: &[u8], max_path: usize) -> Result<(String, bool), NameProblem> {
    if raw.len() > max_path {
        return Err(NameProblem::TooLong);
    }
    let name = std::str::from_utf8(raw).map_err(|_| NameProblem::NotUtf8)?;
    if name.contains('\0') {
        return Err(NameProblem::Nul);
    }
    if name.contains('\\') {
        return Err(NameProblem::Backslash);
    }
    if name.starts_with('/') {
        return Err(NameProblem::Absolute);
    }
    let (name, is_dir) = match name.strip_suffix('/') {
        Some(dir) => (dir, true),
        None => (name, false),
    };
    let mut parts = Vec::new();
    for part in name.split('/') {
        match part {
            "" => return Err(NameProblem::EmptyComponent),
            "." => {}
            ".." => return Err(NameProblem::ParentDir),
            part => parts.push(part),
        }
    }
    if parts.is_empty() {
        return Err(NameProblem::EmptyComponent);
    }
    Ok((parts.join("/"), is_dir))
}

fn lossy(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw).into_owned()
}

/// What the end of central directory record says: read before the zip crate
/// parses the directory, because it loads all of it into memory at once.
struct Directory {
    count: u64,
    offset: u64,
}

const END: &[u8; 4] = b"PK\x05\x06";
const END64_LOCATOR: &[u8; 4] = b"PK\x06\x07";
const END64: &[u8; 4] = b"PK\x06\x06";
const CENTRAL_HEADER: &[u8; 4] = b"PK\x01\x02";
/// Fixed part of an end of central directory record (APPNOTE 4.3.16).
const END_LEN: usize = 22;
/// Fixed part of a central directory header (APPNOTE 4.3.12).
const CENTRAL_HEADER_LEN: usize = 46;

fn le16(b: &[u8], at: usize) -> u64 {
    u64::from(u16::from_le_bytes([b[at], b[at + 1]]))
}

fn le32(b: &[u8], at: usize) -> u64 {
    u64::from(u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]))
}

fn le64(b: &[u8], at: usize) -> u64 {
    let mut bytes = [0; 8];
    bytes.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(bytes)
}

/// A wheel being unpacked: the open zip and what is known about it so far.
struct Unpacker<'a> {
    cache: &'a Cache,
    filename: &'a str,
    path: &'a Path,
    limits: &'a Limits,
    size: u64,
    archive: ZipArchive<BufReader<File>>,
}

/// A member to stream, as the central directory describes it.
struct Planned {
    index: usize,
    path: String,
    declared: u64,
    executable: bool,
    header_start: u64,
}

/// What RECORD says a member holds.
#[derive(Clone, Copy)]
struct Recorded {
    sha256: [u8; 32],
    size: u64,
}

/// A RECORD row, its path normalized.
struct RecordRow {
    line: usize,
    sha256: Option<[u8; 32]>,
    size: Option<u64>,
}

/// The wheel file before the zip crate opens it.
struct Source<'a> {
    filename: &'a str,
    path: &'a Path,
    limits: &'a Limits,
}

impl Source<'_> {
    fn io(&self, source: io::Error) -> WheelError {
        WheelError::Io {
            wheel: self.filename.to_owned(),
            path: self.path.to_owned(),
            source,
        }
    }

    fn malformed(&self, reason: impl Into<String>) -> WheelError {
        WheelError::Zip {
            wheel: self.filename.to_owned(),
            reason: reason.into(),
        }
    }

    /// Finds the end of central directory record (in its zip64 form when
    /// there is one) and checks the member count against the limit.
    fn directory(&self, reader: &mut BufReader<File>, size: u64) -> Result<Directory, WheelError> {
        // The record sits at the very end, after at most a 64 KiB comment;
        // requiring the comment to end the file rules out trailing data
        // that other readers might take for the real directory.
        let tail_start = size.saturating_sub((END_LEN + 0xFFFF) as u64);
        let tail = read_at(reader, tail_start, size - tail_start).map_err(|e| self.io(e))?;
        let at = (0..=tail.len().saturating_sub(END_LEN))
            .rev()
            .find(|&i| {
                tail.len() >= i + END_LEN
                    && &tail[i..i + 4] == END
                    && (i + END_LEN) as u64 + le16(&tail, i + 20) == tail.len() as u64
            })
            .ok_or_else(|| self.malformed("it has no end of central directory record"))?;
        let end_at = tail_start + at as u64;
        let mut directory = Directory {
            count: le16(&tail, at + 10),
            offset: le32(&tail, at + 16),
        };
        if end_at >= 20 {
            let locator = read_at(reader, end_at - 20, 20).map_err(|e| self.io(e))?;
            if &locator[..4] == END64_LOCATOR {
                let missing = || self.malformed("its zip64 end of central directory is missing");
                let end64 = read_at(reader, le64(&locator, 8), 56).map_err(|_| missing())?;
                if &end64[..4] != END64 {
                    return Err(missing());
                }
                directory = Directory {
                    count: le64(&end64, 32),
                    offset: le64(&end64, 48),
                };
            }
        }
        if directory.count > self.limits.max_members as u64 {
            return Err(WheelError::TooManyMembers {
                wheel: self.filename.to_owned(),
                count: directory.count,
                max: self.limits.max_members,
            });
        }
        Ok(directory)
    }

    /// Walks the central directory headers, checking name lengths and exact
    /// duplicates, and returns the hashes of the names it saw. The zip crate
    /// keys its entries by name (an `IndexMap` in zip 9's
    /// `read_central_header`): a second entry of the same name silently
    /// replaces the first one's data while keeping its place, and only a
    /// count (`has_duplicate_names`) tells, without naming it.
    fn scan_names(
        &self,
        reader: &mut BufReader<File>,
        directory: &Directory,
    ) -> Result<HashSet<Digest>, WheelError> {
        let truncated = || self.malformed("its central directory is truncated");
        reader
            .seek(SeekFrom::Start(directory.offset))
            .map_err(|_| truncated())?;
        // Hashes, not names: 32 bytes per member whatever the names' length.
        let mut seen = HashSet::new();
        let mut header = [0; CENTRAL_HEADER_LEN];
        let mut name = Vec::new();
        for _ in 0..directory.count {
            reader.read_exact(&mut header).map_err(|_| truncated())?;
            if &header[..4] != CENTRAL_HEADER {
                return Err(self.malformed("its central directory has a damaged header"));
            }
            // At most 64 KiB: the length is a u16.
            name.resize(le16(&header, 28) as usize, 0);
            reader.read_exact(&mut name).map_err(|_| truncated())?;
            if name.len() > self.limits.max_path {
                return Err(WheelError::BadName {
                    wheel: self.filename.to_owned(),
                    member: lossy(&name[..self.limits.max_path]),
                    problem: NameProblem::TooLong,
                });
            }
            if !seen.insert(Digest::of(&name)) {
                return Err(WheelError::Duplicate {
                    wheel: self.filename.to_owned(),
                    member: lossy(&name),
                });
            }
            let skip = le16(&header, 30) + le16(&header, 32);
            reader.seek_relative(skip as i64).map_err(|_| truncated())?;
        }
        Ok(seen)
    }
}

impl<'a> Unpacker<'a> {
    /// Opens the zip once its central directory is known to be small enough
    /// to load and free of exact duplicates.
    fn open(
        cache: &'a Cache,
        path: &'a Path,
        filename: &'a str,
        limits: &'a Limits,
    ) -> Result<Unpacker<'a>, WheelError> {
        let source = Source {
            filename,
            path,
            limits,
        };
        let file = File::open(path).map_err(|e| source.io(e))?;
        let size = file.metadata().map_err(|e| source.io(e))?.len();
        let mut reader = BufReader::new(file);
        let directory = source.directory(&mut reader, size)?;
        let names = source.scan_names(&mut reader, &directory)?;
        let mut archive = ZipArchive::new(reader).map_err(|e| source.malformed(e.to_string()))?;
        if archive.len() as u64 != directory.count
            || archive.central_directory_start() != directory.offset
        {
            return Err(source.malformed("its central directory is not where its end record says"));
        }
        // Local headers that disagree with the central directory, entries
        // that overlap (the classic zip bomb) and entries missing from the
        // directory all make readers see different wheels.
        archive
            .validate_header_consistency()
            .map_err(|e| source.malformed(e.to_string()))?;
        let mut unpacker = Unpacker {
            cache,
            filename,
            path,
            limits,
            size,
            archive,
        };
        unpacker.check_names_unchanged(&names)?;
        Ok(unpacker)
    }

    /// The zip crate replaces a name by its Unicode Path extra field; Python's
    /// `zipfile` (pip) does not. A name the raw headers do not hold is one
    /// that readers disagree on.
    fn check_names_unchanged(&mut self, names: &HashSet<Digest>) -> Result<(), WheelError> {
        for index in 0..self.archive.len() {
            let entry = self.archive.by_index_data(index).map_err(|e| self.zip(e))?;
            if !names.contains(&Digest::of(entry.name_raw())) {
                return Err(WheelError::BadName {
                    wheel: self.filename.to_owned(),
                    member: lossy(entry.name_raw()),
                    problem: NameProblem::Renamed,
                });
            }
        }
        Ok(())
    }

    fn zip(&self, e: zip::result::ZipError) -> WheelError {
        WheelError::Zip {
            wheel: self.filename.to_owned(),
            reason: e.to_string(),
        }
    }

    fn run(mut self, expected: &WheelName) -> Result<Unpacked, WheelError> {
        let (plan, folders) = self.plan()?;
        let dist_info = self.dist_info(&plan)?;
        expected.check(self.filename, &dist_info)?;
        let record_path = format!("{dist_info}/RECORD");
        let record = self.read_small(&plan, &record_path, self.limits.max_record)?;
        let rows = self.parse_record(&record_path, &record)?;
        let wheel_path = format!("{dist_info}/WHEEL");
        let wheel_file = self.read_small(&plan, &wheel_path, self.limits.max_text)?;
        let (wheel_version, root_is_purelib) = self.parse_wheel(&wheel_path, &wheel_file)?;
        let hashes = self.match_record(&plan, rows, &folders, &dist_info)?;
        let (blob, members) = self.write_blob(&plan, &hashes)?;
        Ok(Unpacked {
            dist_info,
            root_is_purelib,
            wheel_version,
            members,
            blob,
        })
    }

    /// Pairs every planned member with its RECORD row, before anything is
    /// decompressed: the hash and size each must have, or `None` for RECORD
    /// and its signatures, which go unhashed.
    fn match_record(
        &self,
        plan: &[Planned],
        mut rows: BTreeMap<String, RecordRow>,
        folders: &BTreeSet<String>,
        dist_info: &str,
    ) -> Result<Vec<Option<Recorded>>, WheelError> {
        let mut hashes = Vec::with_capacity(plan.len());
        for planned in plan {
            let exempt = UNHASHED
                .iter()
                .any(|name| planned.path == format!("{dist_info}/{name}"));
            let member = || planned.path.clone();
            let hash = match (rows.remove(&planned.path), exempt) {
                (
                    Some(RecordRow {
                        sha256: Some(sha256),
                        size: Some(size),
                        ..
                    }),
                    _,
                ) => Some(Recorded { sha256, size }),
                (
                    None
                    | Some(RecordRow {
                        sha256: None,
                        size: None,
                        ..
                    }),
                    true,
                ) => None,
                (None, false) => {
                    return Err(WheelError::NotInRecord {
                        wheel: self.filename.to_owned(),
                        member: member(),
                    });
                }
                (Some(_), _) => {
                    return Err(WheelError::RecordUnhashed {
                        wheel: self.filename.to_owned(),
                        member: member(),
                    });
                }
            };
            hashes.push(hash);
        }
        match rows.into_iter().min_by_key(|(_, row)| row.line) {
            None => Ok(hashes),
            Some((member, _)) if folders.contains(&member) => Err(WheelError::RecordFolder {
                wheel: self.filename.to_owned(),
                member,
            }),
            Some((member, _)) => Err(WheelError::RecordWithoutMember {
                wheel: self.filename.to_owned(),
                member,
            }),
        }
    }

    /// Streams every member into a temporary file, checking each against
    /// `hashes`, and commits it to the cache only when all matched.
    fn write_blob(
        &mut self,
        plan: &[Planned],
        hashes: &[Option<Recorded>],
    ) -> Result<(Digest, Vec<Member>), WheelError> {
        let tmp = self.cache.temp_file().map_err(|source| WheelError::Cache {
            wheel: self.filename.to_owned(),
            source,
        })?;
        let mut out = HashingWriter::new(BufWriter::with_capacity(BUFFER, tmp.as_file()));
        let mut buffer = vec![0; BUFFER];
        let mut members = Vec::with_capacity(plan.len());
        let mut order: Vec<usize> = (0..plan.len()).collect();
        // Data order, so the wheel is read front to back.
        order.sort_by_key(|&i| plan[i].header_start);
        for i in order {
            let planned = &plan[i];
            let offset = out.written();
            // Each member's size is held to its declared size, so the total
            // written stays within the `max_total` checked before.
            let (sha256, size) = self.stream(planned, &mut out, tmp.path(), &mut buffer)?;
            if let Some(recorded) = hashes[i] {
                let mismatch = |what, expected: String, actual: String| {
                    Err(WheelError::RecordMismatch {
                        wheel: self.filename.to_owned(),
                        member: planned.path.clone(),
                        what,
                        expected,
                        actual,
                    })
                };
                if *sha256.as_bytes() != recorded.sha256 {
                    return mismatch("sha256", hex::encode(recorded.sha256), sha256.hex());
                }
                if size != recorded.size {
                    return mismatch("size", recorded.size.to_string(), size.to_string());
                }
            }
            members.push(Member {
                path: planned.path.clone(),
                offset,
                size,
                sha256,
                executable: planned.executable,
            });
        }
        let (writer, blob, _) = out.finish();
        // No fsync: a blob cut short by a crash no longer matches its digest,
        // and readers check (`Cache::verified_blob`).
        writer.into_inner().map_err(|e| WheelError::Io {
            wheel: self.filename.to_owned(),
            path: tmp.path().to_owned(),
            source: e.into_error(),
        })?;
        self.cache
            .commit_blob(tmp, &blob)
            .map_err(|source| WheelError::Cache {
                wheel: self.filename.to_owned(),
                source,
            })?;
        members.sort_by(|a, b| a.path.cmp(&b.path));
        Ok((blob, members))
    }

    /// Checks every central directory entry and lists the files to stream,
    /// sorted by path, with the folders the wheel implies.
    fn plan(&mut self) -> Result<(Vec<Planned>, BTreeSet<String>), WheelError> {
        let mut plan = Vec::new();
        let mut paths = HashSet::new();
        let mut folders = BTreeSet::new();
        let mut total: u64 = 0;
        for index in 0..self.archive.len() {
            let entry = self.archive.by_index_data(index).map_err(|e| self.zip(e))?;
            let raw = entry.name_raw();
            let (path, is_dir) = normalize_path(raw, self.limits.max_path).map_err(|problem| {
                WheelError::BadName {
                    wheel: self.filename.to_owned(),
                    member: lossy(raw),
                    problem,
                }
            })?;
            let member = || lossy(raw);
            if !paths.insert((path.clone(), is_dir)) {
                return Err(WheelError::Duplicate {
                    wheel: self.filename.to_owned(),
                    member: member(),
                });
            }
            let kind = match entry.unix_mode().map(|mode| mode & 0o170_000) {
                None | Some(0) => None,
                Some(0o100_000) if !is_dir => None,
                Some(0o040_000) if is_dir => None,
                Some(0o040_000) => Some("folder without a trailing `/`"),
                Some(0o100_000) => Some("file named like a folder"),
                Some(0o120_000) => Some("symlink"),
                Some(0o020_000 | 0o060_000) => Some("device"),
                Some(0o010_000) => Some("fifo"),
                Some(0o140_000) => Some("socket"),
                Some(_) => Some("file of unknown type"),
            };
            if let Some(kind) = kind {
                return Err(WheelError::NotRegular {
                    wheel: self.filename.to_owned(),
                    member: member(),
                    kind,
                });
            }
            if entry.encrypted() {
                return Err(WheelError::Encrypted {
                    wheel: self.filename.to_owned(),
                    member: member(),
                });
            }
            if is_dir {
                folders.insert(path);
                continue;
            }
            let method = entry.compression();
            if !matches!(
                method,
                CompressionMethod::Stored | CompressionMethod::Deflated
            ) {
                return Err(WheelError::Compression {
                    wheel: self.filename.to_owned(),
                    member: member(),
                    method: method.to_string(),
                });
            }
            total = total.saturating_add(entry.size());
            plan.push(Planned {
                index,
                path,
                declared: entry.size(),
                executable: entry.unix_mode().is_some_and(|mode| mode & 0o111 != 0),
                header_start: entry.header_start(),
            });
        }
        if total > self.limits.max_total {
            return Err(WheelError::TooLarge {
                wheel: self.filename.to_owned(),
                total,
                max: self.limits.max_total,
            });
        }
        if total > self.limits.ratio_floor
            && total > self.size.saturating_mul(self.limits.max_ratio)
        {
            return Err(WheelError::Ratio {
                wheel: self.filename.to_owned(),
                total,
                size: self.size,
                max_ratio: self.limits.max_ratio,
            });
        }
        plan.sort_by(|a, b| a.path.cmp(&b.path));
        for planned in &plan {
            let mut parent = planned.path.as_str();
            while let Some((folder, _)) = parent.rsplit_once('/') {
                folders.insert(folder.to_owned());
                parent = folder;
            }
        }
        // A path that is both a file and a folder cannot be laid out in an image.
        if let Some(both) = plan.iter().find(|p| folders.contains(&p.path)) {
            return Err(WheelError::FileAndFolder {
                wheel: self.filename.to_owned(),
                member: both.path.clone(),
            });
        }
        Ok((plan, folders))
    }

    /// The one top-level `*.dist-info` folder.
    fn dist_info(&self, plan: &[Planned]) -> Result<String, WheelError> {
        let found: BTreeSet<&str> = plan
            .iter()
            .filter_map(|p| p.path.split_once('/'))
            .map(|(top, _)| top)
            .filter(|top| top.ends_with(".dist-info"))
            .collect();
        match found.into_iter().collect::<Vec<_>>().as_slice() {
            [one] => Ok((*one).to_owned()),
            found => Err(WheelError::DistInfo {
                wheel: self.filename.to_owned(),
                found: found.iter().map(|s| (*s).to_owned()).collect(),
            }),
        }
    }

    /// Reads a small member whole, before streaming: RECORD and WHEEL.
    fn read_small(
        &mut self,
        plan: &[Planned],
        path: &str,
        cap: u64,
    ) -> Result<Vec<u8>, WheelError> {
        let planned = plan
            .binary_search_by(|p| p.path.as_str().cmp(path))
            .map(|i| &plan[i])
            .map_err(|_| WheelError::Missing {
                wheel: self.filename.to_owned(),
                member: path.to_owned(),
            })?;
        if planned.declared > cap {
            return Err(WheelError::MemberTooLarge {
                wheel: self.filename.to_owned(),
                member: path.to_owned(),
                size: planned.declared,
                max: cap,
            });
        }
        let mut bytes = Vec::new();
        self.stream(planned, &mut bytes, self.path, &mut vec![0; BUFFER])?;
        Ok(bytes)
    }

    /// Decompresses one member into `out` (at `out_path`, for errors)
    /// through `buffer`, reading at most one byte past its declared size, and
    /// returns its sha256 and size.
    fn stream(
        &mut self,
        planned: &Planned,
        out: &mut impl Write,
        out_path: &Path,
        buffer: &mut [u8],
    ) -> Result<(Digest, u64), WheelError> {
        let filename = self.filename;
        let decompress = |source| WheelError::Decompress {
            wheel: filename.to_owned(),
            member: planned.path.clone(),
            source,
        };
        let file = self
            .archive
            .by_index(planned.index)
            .map_err(|e| decompress(e.into()))?;
        // Never trust the header: one byte more than declared proves it lied.
        let mut data = file.take(planned.declared.saturating_add(1));
        let mut hasher = Sha256::new();
        let mut size: u64 = 0;
        loop {
            let n = match data.read(buffer) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(decompress(e)),
            };
            hasher.update(&buffer[..n]);
            out.write_all(&buffer[..n])
                .map_err(|source| WheelError::Io {
                    wheel: filename.to_owned(),
                    path: out_path.to_owned(),
                    source,
                })?;
            size += n as u64;
        }
        if size != planned.declared {
            return Err(WheelError::SizeMismatch {
                wheel: filename.to_owned(),
                member: planned.path.clone(),
                declared: planned.declared,
                actual: if size > planned.declared {
                    format!("more than {}", planned.declared)
                } else {
                    size.to_string()
                },
            });
        }
        Ok((Digest::from_hasher(hasher), size))
    }

    fn syntax(&self, member: &str, line: usize, reason: impl Into<String>) -> WheelError {
        WheelError::Syntax {
            wheel: self.filename.to_owned(),
            member: member.to_owned(),
            line,
            reason: reason.into(),
        }
    }

    /// Parses RECORD's `path,hash,size` rows, keyed by normalized path.
    fn parse_record(
        &self,
        record_path: &str,
        bytes: &[u8],
    ) -> Result<BTreeMap<String, RecordRow>, WheelError> {
        let text = std::str::from_utf8(bytes)
            .map_err(|_| self.syntax(record_path, 1, "RECORD is not UTF-8"))?;
        // The URL-safe alphabet of PEP 376; padding is tolerated on input.
        let base64 = base64::engine::GeneralPurpose::new(
            &base64::alphabet::URL_SAFE,
            base64::engine::GeneralPurposeConfig::new()
                .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
        );
        let mut rows = BTreeMap::new();
        for row in csv_rows(text) {
            let (line, fields) =
                row.map_err(|(line, reason)| self.syntax(record_path, line, reason))?;
            let [path, hash, size] = fields.as_slice() else {
                return Err(self.syntax(
                    record_path,
                    line,
                    format!(
                        "expected 3 fields (path, hash, size), found {}",
                        fields.len()
                    ),
                ));
            };
            let (path, is_dir) =
                normalize_path(path.as_bytes(), self.limits.max_path).map_err(|problem| {
                    WheelError::BadName {
                        wheel: self.filename.to_owned(),
                        member: path.clone(),
                        problem,
                    }
                })?;
            if is_dir {
                return Err(WheelError::RecordFolder {
                    wheel: self.filename.to_owned(),
                    member: path,
                });
            }
            let sha256 = match hash.split_once('=') {
                _ if hash.is_empty() => None,
                Some(("sha256", digest)) => {
                    let decoded = base64
                        .decode(digest)
                        .ok()
                        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
                        .ok_or_else(|| {
                            self.syntax(record_path, line, format!("`{hash}` is not a sha256 hash"))
                        })?;
                    Some(decoded)
                }
                Some((algorithm, _)) => {
                    return Err(WheelError::RecordAlgorithm {
                        wheel: self.filename.to_owned(),
                        member: path,
                        algorithm: algorithm.to_owned(),
                    });
                }
                None => {
                    return Err(self.syntax(
                        record_path,
                        line,
                        format!("`{hash}` is not `algorithm=digest`"),
                    ));
                }
            };
            let size = match size.as_str() {
                "" => None,
                size => Some(size.parse::<u64>().map_err(|_| {
                    self.syntax(record_path, line, format!("`{size}` is not a size"))
                })?),
            };
            if rows
                .insert(path.clone(), RecordRow { line, sha256, size })
                .is_some()
            {
                return Err(WheelError::RecordDuplicate {
                    wheel: self.filename.to_owned(),
                    member: path,
                });
            }
        }
        Ok(rows)
    }

    /// `Wheel-Version` and `Root-Is-Purelib` from WHEEL's `Key: Value` lines;
    /// the first of repeated keys counts, as in pip.
    fn parse_wheel(&self, wheel_path: &str, bytes: &[u8]) -> Result<(String, bool), WheelError> {
        let text = std::str::from_utf8(bytes)
            .map_err(|_| self.syntax(wheel_path, 1, "WHEEL is not UTF-8"))?;
        let mut version = None;
        let mut purelib = None;
        for (line, text) in text.lines().enumerate() {
            let Some((key, value)) = text.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match key.trim() {
                "Wheel-Version" if version.is_none() => version = Some((line + 1, value)),
                "Root-Is-Purelib" if purelib.is_none() => purelib = Some((line + 1, value)),
                _ => {}
            }
        }
        let (line, version) =
            version.ok_or_else(|| self.syntax(wheel_path, 1, "no `Wheel-Version`"))?;
        let major = version.split_once('.').map(|(major, _)| major);
        match major {
            Some("1") => {}
            Some(major) if !major.is_empty() && major.bytes().all(|b| b.is_ascii_digit()) => {
                return Err(WheelError::WheelVersion {
                    wheel: self.filename.to_owned(),
                    version: version.to_owned(),
                });
            }
            _ => {
                return Err(self.syntax(
                    wheel_path,
                    line,
                    format!("`{version}` is not a `major.minor` version"),
                ));
            }
        }
        // pip reads a missing `Root-Is-Purelib` as false.
        let root_is_purelib = match purelib {
            None => false,
            Some((_, value)) if value.eq_ignore_ascii_case("true") => true,
            Some((_, value)) if value.eq_ignore_ascii_case("false") => false,
            Some((line, value)) => {
                return Err(self.syntax(
                    wheel_path,
                    line,
                    format!("`Root-Is-Purelib: {value}` is neither true nor false"),
                ));
            }
        };
        Ok((version.to_owned(), root_is_purelib))
    }
}

fn read_at(reader: &mut (impl Read + Seek), at: u64, len: u64) -> io::Result<Vec<u8>> {
    reader.seek(SeekFrom::Start(at))?;
    let mut bytes = Vec::new();
    reader.take(len).read_to_end(&mut bytes)?;
    if bytes.len() as u64 != len {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(bytes)
}

/// A CSV field as Python's `csv` writes it (QUOTE_MINIMAL): quoted when it
/// holds a comma, a quote or a line break, quotes doubled.
pub(crate) fn csv_field(field: &str) -> String {
    if field.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_owned()
    }
}

/// The rows of a CSV text as Python's `csv` module reads RECORD: `,`
/// separated, fields optionally quoted with `"` (a quote doubled inside),
/// rows ended by `\n` or `\r\n`, blank lines skipped. Yields each row with
/// the line it starts on, or the line and reason it is malformed.
fn csv_rows(
    text: &str,
) -> impl Iterator<Item = Result<(usize, Vec<String>), (usize, String)>> + '_ {
    let mut chars = text.chars().peekable();
    let mut line = 1;
    std::iter::from_fn(move || {
        loop {
            match chars.peek() {
                None => return None,
                Some('\n') => {
                    chars.next();
                    line += 1;
                }
                Some('\r') => {
                    chars.next();
                }
                Some(_) => break,
            }
        }
        let start = line;
        let mut fields = Vec::new();
        let mut field = String::new();
        let mut quoted = false;
        loop {
            match chars.next() {
                None => {
                    if quoted {
                        return Some(Err((start, "a quoted field is not closed".to_owned())));
                    }
                    fields.push(field);
                    return Some(Ok((start, fields)));
                }
                Some('"') if quoted => {
                    if chars.peek() == Some(&'"') {
                        chars.next();
                        field.push('"');
                    } else {
                        quoted = false;
                        if !matches!(chars.peek(), None | Some(',' | '\r' | '\n')) {
                            return Some(Err((line, "text after a closing quote".to_owned())));
                        }
                    }
                }
                Some('"') if field.is_empty() => quoted = true,
                Some(c) if quoted => {
                    if c == '\n' {
                        line += 1;
                    }
                    field.push(c);
                }
                Some(',') => fields.push(std::mem::take(&mut field)),
                Some('\r') if chars.peek() == Some(&'\n') => {}
                Some('\n') => {
                    line += 1;
                    fields.push(field);
                    return Some(Ok((start, fields)));
                }
                Some('"') => {
                    return Some(Err((line, "a quote inside an unquoted field".to_owned())));
                }
                Some(c) => field.push(c),
            }
        }
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A zip member to build a test wheel from.
    #[derive(Clone)]
    pub(crate) struct Spec {
        pub name: Vec<u8>,
        pub data: Vec<u8>,
        pub mode: u32,
        /// The uncompressed size the headers claim, when it should lie.
        pub declared: Option<u64>,
        pub method: u16,
        pub extra: Vec<u8>,
    }

    pub(crate) fn file(name: &str, data: &[u8]) -> Spec {
        Spec {
            name: name.as_bytes().to_vec(),
            data: data.to_vec(),
            mode: 0o100_644,
            declared: None,
            method: 0,
            extra: Vec::new(),
        }
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &byte in data {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    /// A zip written byte by byte, so tests can make it lie; data stored as is.
    pub(crate) fn raw_zip(specs: &[Spec]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut central = Vec::new();
        for spec in specs {
            let offset = out.len() as u32;
            let declared = spec.declared.unwrap_or(spec.data.len() as u64) as u32;
            let mut common = Vec::new();
            common.extend(20u16.to_le_bytes()); // version needed
            common.extend(0u16.to_le_bytes()); // flags
            common.extend(spec.method.to_le_bytes());
            common.extend(0u16.to_le_bytes()); // time
            common.extend(0x21u16.to_le_bytes()); // 1980-01-01
            common.extend(crc32(&spec.data).to_le_bytes());
            common.extend((spec.data.len() as u32).to_le_bytes());
            common.extend(declared.to_le_bytes());
            common.extend((spec.name.len() as u16).to_le_bytes());
            common.extend((spec.extra.len() as u16).to_le_bytes());
            out.extend(b"PK\x03\x04");
            out.extend(&common);
            out.extend(&spec.name);
            out.extend(&spec.extra);
            out.extend(&spec.data);
            central.extend(b"PK\x01\x02");
            central.extend(((3u16 << 8) | 20).to_le_bytes()); // made on unix
            central.extend(&common);
            central.extend([0; 6]); // comment length, disk, internal attributes
            central.extend((spec.mode << 16).to_le_bytes());
            central.extend(offset.to_le_bytes());
            central.extend(&spec.name);
            central.extend(&spec.extra);
        }
        let count = (specs.len() as u16).to_le_bytes();
        let (size, start) = (central.len() as u32, out.len() as u32);
        out.extend(central);
        out.extend(b"PK\x05\x06\0\0\0\0");
        out.extend(count);
        out.extend(count);
        out.extend(size.to_le_bytes());
        out.extend(start.to_le_bytes());
        out.extend(0u16.to_le_bytes());
        out
    }

    /// A zip as the zip crate writes it, deflated.
    pub(crate) fn deflated_zip(specs: &[Spec]) -> Vec<u8> {
        let mut writer = zip::ZipWriter::new(io::Cursor::new(Vec::new()));
        for spec in specs {
            let options = zip::write::SimpleFileOptions::default()
                .compression_method(CompressionMethod::Deflated)
                .unix_permissions(spec.mode & 0o777);
            writer
                .start_file(std::str::from_utf8(&spec.name).unwrap(), options)
                .unwrap();
            writer.write_all(&spec.data).unwrap();
        }
        writer.finish().unwrap().into_inner()
    }

    pub(crate) fn record_hash(data: &[u8]) -> String {
        let digest = Digest::of(data);
        format!(
            "sha256={}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_bytes())
        )
    }

    /// `specs` and a RECORD listing them all, as a wheel builder writes it.
    pub(crate) fn with_record(mut specs: Vec<Spec>) -> Vec<Spec> {
        let mut record = String::new();
        for spec in specs.iter().filter(|s| !s.name.ends_with(b"/")) {
            let name = std::str::from_utf8(&spec.name).unwrap();
            let hash = record_hash(&spec.data);
            record += &format!("{},{hash},{}\n", csv_field(name), spec.data.len());
        }
        record += "demo-1.0.dist-info/RECORD,,\n";
        specs.push(file("demo-1.0.dist-info/RECORD", record.as_bytes()));
        specs
    }

    pub(crate) const WHEEL: &[u8] =
        b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n";
    pub(crate) const FILENAME: &str = "demo-1.0-py3-none-any.whl";

    /// The members of the smallest valid wheel, without RECORD.
    pub(crate) fn minimal() -> Vec<Spec> {
        vec![
            file("demo/__init__.py", b"print('hi')\n"),
            file(
                "demo-1.0.dist-info/METADATA",
                b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n",
            ),
            file("demo-1.0.dist-info/WHEEL", WHEEL),
        ]
    }

    pub(crate) struct Env {
        pub dir: tempfile::TempDir,
        pub cache: Cache,
    }

    pub(crate) fn env() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(dir.path().join("cache")).unwrap();
        Env { dir, cache }
    }

    impl Env {
        pub(crate) fn unpack(&self, zip: &[u8], limits: &Limits) -> Result<Unpacked, WheelError> {
            let path = self.dir.path().join(FILENAME);
            std::fs::write(&path, zip).unwrap();
            unpack(&self.cache, &path, &Digest::of(zip), FILENAME, limits)
        }

        /// Files in the cache's blobs and temporary folders (the process's
        /// own temporary folder, which lives as long as the cache, is no
        /// file).
        fn stored(&self) -> usize {
            fn files(dir: &Path) -> usize {
                std::fs::read_dir(dir)
                    .unwrap()
                    .map(|e| e.unwrap().path())
                    .map(|p| if p.is_dir() { files(&p) } else { 1 })
                    .sum()
            }
            ["blobs/sha256", "tmp"]
                .iter()
                .map(|dir| files(&self.cache.root().join(dir)))
                .sum()
        }

        /// Unpacks a wheel that must be refused, and checks nothing was kept.
        fn refuse(&self, zip: &[u8], limits: &Limits) -> WheelError {
            let err = self.unpack(zip, limits).unwrap_err();
            assert_eq!(self.stored(), 0, "{err}: something was left in the cache");
            err
        }
    }

    fn refused(specs: Vec<Spec>) -> WheelError {
        env().refuse(&raw_zip(&specs), &Limits::default())
    }

    #[test]
    fn unpacks_a_wheel_and_reuses_the_cache() {
        let env = env();
        let mut specs = minimal();
        let mut native = file("demo/_native.so", b"\x7fELF not really");
        native.mode = 0o100_755;
        specs.push(native);
        specs.push(file(
            "demo-1.0.data/scripts/tool",
            b"#!python\nimport demo\n",
        ));
        specs.push(file("demo/data/a,b \"c\".txt", b"comma"));
        let specs = with_record(specs);
        let zip = deflated_zip(&specs);
        let unpacked = env.unpack(&zip, &Limits::default()).unwrap();

        assert_eq!(unpacked.dist_info, "demo-1.0.dist-info");
        assert!(unpacked.root_is_purelib);
        assert_eq!(unpacked.wheel_version, "1.0");
        let paths: Vec<&str> = unpacked.members.iter().map(|m| m.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "demo-1.0.data/scripts/tool",
                "demo-1.0.dist-info/METADATA",
                "demo-1.0.dist-info/RECORD",
                "demo-1.0.dist-info/WHEEL",
                "demo/__init__.py",
                "demo/_native.so",
                "demo/data/a,b \"c\".txt",
            ]
        );
        let blob = std::fs::read(env.cache.blob_path(&unpacked.blob)).unwrap();
        assert_eq!(Digest::of(&blob), unpacked.blob);
        let total: u64 = specs.iter().map(|s| s.data.len() as u64).sum();
        assert_eq!(blob.len() as u64, total);
        for spec in &specs {
            let member = unpacked
                .members
                .iter()
                .find(|m| m.path.as_bytes() == spec.name)
                .unwrap();
            let bytes = &blob[member.offset as usize..][..member.size as usize];
            assert_eq!(bytes, spec.data.as_slice(), "{}", member.path);
            assert_eq!(member.sha256, Digest::of(&spec.data));
            assert_eq!(member.executable, member.path == "demo/_native.so");
        }
        assert_eq!(
            read_member(&env.cache, &unpacked, "demo-1.0.dist-info/WHEEL", 1024).unwrap(),
            WHEEL
        );
        assert!(matches!(
            read_member(&env.cache, &unpacked, "demo-1.0.dist-info/WHEEL", 10),
            Err(WheelError::MemberTooLarge { size, max: 10, .. }) if size == WHEEL.len() as u64
        ));
        assert!(matches!(
            read_member(&env.cache, &unpacked, "nope", 10),
            Err(WheelError::NoSuchMember { .. })
        ));

        // A hit never opens the wheel.
        let path = env.dir.path().join(FILENAME);
        std::fs::remove_file(&path).unwrap();
        let again = unpack(
            &env.cache,
            &path,
            &Digest::of(&zip),
            FILENAME,
            &Limits::default(),
        );
        assert_eq!(again.unwrap(), unpacked);

        // Other limits, or a damaged blob, unpack again.
        let tighter = Limits {
            max_members: 100,
            ..Limits::default()
        };
        assert!(matches!(
            unpack(&env.cache, &path, &Digest::of(&zip), FILENAME, &tighter),
            Err(WheelError::Io { .. })
        ));
        std::fs::write(env.cache.blob_path(&unpacked.blob), b"damaged").unwrap();
        assert!(read_member(&env.cache, &unpacked, "demo-1.0.dist-info/WHEEL", 1024).is_err());
        std::fs::write(&path, &zip).unwrap();
        let again = unpack(
            &env.cache,
            &path,
            &Digest::of(&zip),
            FILENAME,
            &Limits::default(),
        );
        assert_eq!(again.unwrap(), unpacked);
        assert_eq!(
            std::fs::read(env.cache.blob_path(&unpacked.blob)).unwrap(),
            blob
        );
    }

    #[test]
    fn stored_members_and_folders_unpack_too() {
        let env = env();
        let mut folder = file("demo/", b"");
        folder.mode = 0o040_755;
        let mut specs = with_record(minimal());
        specs.insert(0, folder);
        let unpacked = env.unpack(&raw_zip(&specs), &Limits::default()).unwrap();
        assert_eq!(unpacked.members.len(), 4);
        assert!(unpacked.members.iter().all(|m| !m.executable));
    }

    #[test]
    fn refuses_names_that_escape() {
        for (name, problem) in [
            ("../evil.py", NameProblem::ParentDir),
            ("demo/../../evil.py", NameProblem::ParentDir),
            ("/etc/evil.py", NameProblem::Absolute),
            ("demo\\evil.py", NameProblem::Backslash),
            ("demo//evil.py", NameProblem::EmptyComponent),
            ("demo/evil\0.py", NameProblem::Nul),
        ] {
            let mut specs = minimal();
            specs.push(file(name, b"x"));
            match refused(with_record(specs)) {
                WheelError::BadName {
                    member, problem: p, ..
                } => {
                    assert_eq!((member.as_str(), p), (name, problem));
                }
                err => panic!("{name}: {err}"),
            }
        }
        let mut specs = minimal();
        specs.push(Spec {
            name: b"demo/\xff.py".to_vec(),
            ..file("", b"x")
        });
        assert!(matches!(
            refused(specs),
            WheelError::BadName {
                problem: NameProblem::NotUtf8,
                ..
            }
        ));
        let long = format!("demo/{}.py", "a".repeat(100));
        let mut specs = minimal();
        specs.push(file(&long, b"x"));
        let limits = Limits {
            max_path: 50,
            ..Limits::default()
        };
        assert!(matches!(
            env().refuse(&raw_zip(&with_record(specs)), &limits),
            WheelError::BadName {
                problem: NameProblem::TooLong,
                ..
            }
        ));
    }

    #[test]
    fn refuses_symlinks_and_devices() {
        for (mode, kind) in [
            (0o120_777, "symlink"),
            (0o020_644, "device"),
            (0o010_644, "fifo"),
        ] {
            let mut link = file("demo/link.py", b"/etc/passwd");
            link.mode = mode;
            let mut specs = minimal();
            specs.push(link);
            match refused(with_record(specs)) {
                WheelError::NotRegular {
                    member, kind: k, ..
                } => {
                    assert_eq!((member.as_str(), k), ("demo/link.py", kind));
                }
                err => panic!("{err}"),
            }
        }
    }

    #[test]
    fn refuses_duplicate_names() {
        let mut specs = with_record(minimal());
        specs.push(file("demo/__init__.py", b"import os\n"));
        match refused(specs) {
            WheelError::Duplicate { member, .. } => assert_eq!(member, "demo/__init__.py"),
            err => panic!("{err}"),
        }
        let mut specs = with_record(minimal());
        specs.push(file("./demo/./__init__.py", b"import os\n"));
        match refused(specs) {
            WheelError::Duplicate { member, .. } => assert_eq!(member, "./demo/./__init__.py"),
            err => panic!("{err}"),
        }
        let mut specs = minimal();
        specs.push(file("demo/__init__.py/x", b""));
        assert!(matches!(
            refused(with_record(specs)),
            WheelError::FileAndFolder { member, .. } if member == "demo/__init__.py"
        ));
    }

    #[test]
    fn refuses_a_member_renamed_by_a_unicode_path_field() {
        let mut extra = vec![0x75, 0x70];
        // The zip crate takes a change of case for a legacy fallback name.
        let real = b"demo/nice.py";
        extra.extend(((1 + 4 + real.len()) as u16).to_le_bytes());
        extra.push(1);
        extra.extend(crc32(b"demo/NICE.py").to_le_bytes());
        extra.extend(real);
        let mut specs = minimal();
        specs.push(Spec {
            extra,
            ..file("demo/NICE.py", b"x")
        });
        let err = refused(with_record(specs));
        assert!(
            matches!(
                err,
                WheelError::BadName {
                    problem: NameProblem::Renamed,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn refuses_members_that_do_not_match_record() {
        // A hash that lies.
        let mut specs = with_record(minimal());
        specs[0].data = b"import os; os.system('evil')\n".to_vec();
        match refused(specs) {
            WheelError::RecordMismatch { member, what, .. } => {
                assert_eq!((member.as_str(), what), ("demo/__init__.py", "sha256"));
            }
            err => panic!("{err}"),
        }
        // A member RECORD does not list.
        let mut specs = with_record(minimal());
        specs.push(file("demo/extra.py", b"x"));
        assert!(matches!(
            refused(specs),
            WheelError::NotInRecord { member, .. } if member == "demo/extra.py"
        ));
        // A RECORD row for a member the wheel lacks.
        let mut specs = with_record(minimal());
        specs.remove(0);
        assert!(matches!(
            refused(specs),
            WheelError::RecordWithoutMember { member, .. } if member == "demo/__init__.py"
        ));
        // A RECORD row for a folder.
        let mut specs = with_record(minimal());
        let record = specs.last_mut().unwrap();
        record
            .data
            .extend(format!("demo,{},0\n", record_hash(b"")).as_bytes());
        assert!(matches!(
            refused(specs),
            WheelError::RecordFolder { member, .. } if member == "demo"
        ));
        // A row without a hash.
        let mut specs = minimal();
        let mut record = "demo/__init__.py,,\n".to_owned();
        for spec in &specs[1..] {
            let name = std::str::from_utf8(&spec.name).unwrap();
            record += &format!("{name},{},{}\n", record_hash(&spec.data), spec.data.len());
        }
        specs.push(file("demo-1.0.dist-info/RECORD", record.as_bytes()));
        assert!(matches!(
            refused(specs),
            WheelError::RecordUnhashed { member, .. } if member == "demo/__init__.py"
        ));
    }

    #[test]
    fn refuses_other_hash_algorithms_and_malformed_records() {
        let mut specs = minimal();
        specs.push(file(
            "demo-1.0.dist-info/RECORD",
            b"demo/__init__.py,sha512=abc,12\n",
        ));
        assert!(matches!(
            refused(specs),
            WheelError::RecordAlgorithm { algorithm, .. } if algorithm == "sha512"
        ));
        let mut specs = minimal();
        specs.push(file("demo-1.0.dist-info/RECORD", b"a,b\n\"unclosed,,\n"));
        assert!(matches!(refused(specs), WheelError::Syntax { line: 1, .. }));
        let mut specs = minimal();
        specs.push(file(
            "demo-1.0.dist-info/RECORD",
            b"demo/__init__.py,sha256=short,12\n",
        ));
        assert!(matches!(refused(specs), WheelError::Syntax { .. }));
    }

    #[test]
    fn refuses_sizes_that_lie() {
        // Declared smaller than its data: a bomb's trick.
        let mut specs = with_record(minimal());
        specs[0].declared = Some(3);
        let err = refused(specs);
        assert!(
            matches!(
                &err,
                WheelError::Decompress { member, .. } | WheelError::SizeMismatch { member, .. }
                    if member == "demo/__init__.py"
            ),
            "{err}"
        );
        // Declared larger.
        let mut specs = with_record(minimal());
        specs[0].declared = Some(1000);
        let err = refused(specs);
        assert!(
            matches!(
                &err,
                WheelError::SizeMismatch { declared: 1000, actual, .. } if actual == "12"
            ),
            "{err}"
        );
    }

    #[test]
    fn refuses_bombs_before_writing() {
        let env = env();
        let mut specs = minimal();
        specs.push(file("demo/zeros", &vec![0; 1 << 20]));
        let zip = deflated_zip(&with_record(specs));
        let ratio = Limits {
            max_ratio: 50,
            ratio_floor: 1 << 10,
            ..Limits::default()
        };
        assert!(matches!(
            env.refuse(&zip, &ratio),
            WheelError::Ratio { max_ratio: 50, .. }
        ));
        let below_floor = Limits {
            ratio_floor: 2 << 20,
            ..ratio.clone()
        };
        env.unpack(&zip, &below_floor).unwrap();

        let env = self::env();
        let total = Limits {
            max_total: 1 << 19,
            ..Limits::default()
        };
        assert!(matches!(
            env.refuse(&zip, &total),
            WheelError::TooLarge { .. }
        ));
        let members = Limits {
            max_members: 4,
            ..Limits::default()
        };
        assert!(matches!(
            env.refuse(&zip, &members),
            WheelError::TooManyMembers {
                count: 5,
                max: 4,
                ..
            }
        ));
    }

    #[test]
    fn refuses_other_compression_methods() {
        let mut specs = with_record(minimal());
        specs[0].method = 12;
        assert!(matches!(
            refused(specs),
            WheelError::Compression { member, method, .. }
                if member == "demo/__init__.py" && method.contains("Bzip2")
        ));
    }

    #[test]
    fn refuses_wrong_dist_info() {
        let mut specs = minimal();
        specs.push(file("other-1.0.dist-info/METADATA", b""));
        assert!(matches!(
            refused(with_record(specs)),
            WheelError::DistInfo { found, .. } if found.len() == 2
        ));
        let specs: Vec<Spec> = minimal()
            .into_iter()
            .map(|mut s| {
                s.name = String::from_utf8(s.name)
                    .unwrap()
                    .replace("demo-1.0", "demo-2.0")
                    .into_bytes();
                s
            })
            .collect();
        let mut specs = specs;
        let mut record = String::new();
        for s in &specs {
            let name = std::str::from_utf8(&s.name).unwrap();
            record += &format!("{name},{},{}\n", record_hash(&s.data), s.data.len());
        }
        specs.push(file("demo-2.0.dist-info/RECORD", record.as_bytes()));
        assert!(matches!(
            refused(specs),
            WheelError::DistInfoName {
                what: "version",
                ..
            }
        ));
        let mut specs = minimal();
        specs.pop();
        assert!(matches!(
            refused(with_record(specs)),
            WheelError::Missing { member, .. } if member == "demo-1.0.dist-info/WHEEL"
        ));
    }

    #[test]
    fn refuses_wheel_version_2() {
        let mut specs = minimal();
        specs[2].data = b"Wheel-Version: 2.0\nRoot-Is-Purelib: true\n".to_vec();
        assert!(matches!(
            refused(with_record(specs)),
            WheelError::WheelVersion { version, .. } if version == "2.0"
        ));
        let mut specs = minimal();
        specs[2].data = b"Wheel-Version: 1.0\nRoot-Is-Purelib: maybe\n".to_vec();
        assert!(matches!(
            refused(with_record(specs)),
            WheelError::Syntax { line: 2, .. }
        ));
    }

    #[test]
    fn parses_file_names() {
        let name =
            WheelName::parse("Foo_Bar-1.0.post1-1-cp311-cp311-manylinux_2_17_x86_64.whl").unwrap();
        assert_eq!(name.name, "foo-bar");
        name.check("x", "foo_bar-1.0.post1.dist-info").unwrap();
        name.check("x", "Foo.Bar-1.0post1.dist-info").unwrap();
        assert!(name.check("x", "foo_baz-1.0.post1.dist-info").is_err());
        assert!(WheelName::parse("foo-1.0.tar.gz").is_err());
        assert!(WheelName::parse("foo-1.0-py3.whl").is_err());
    }

    #[test]
    fn normalizes_paths() {
        assert_eq!(
            normalize_path(b"./a/./b", 100),
            Ok(("a/b".to_owned(), false))
        );
        assert_eq!(normalize_path(b"a/b/", 100), Ok(("a/b".to_owned(), true)));
        assert_eq!(normalize_path(b"./", 100), Err(NameProblem::EmptyComponent));
        assert_eq!(normalize_path(b"", 100), Err(NameProblem::EmptyComponent));
        assert_eq!(normalize_path(b"abc", 2), Err(NameProblem::TooLong));
    }

    #[test]
    fn reads_csv_as_python_does() {
        let rows: Vec<_> = csv_rows("a,b,c\r\n\n\"x,\"\"y\"\"\nz\",,\nlast,1,2")
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            rows,
            [
                (1, vec!["a".to_owned(), "b".to_owned(), "c".to_owned()]),
                (
                    3,
                    vec!["x,\"y\"\nz".to_owned(), String::new(), String::new()]
                ),
                (5, vec!["last".to_owned(), "1".to_owned(), "2".to_owned()]),
            ]
        );
        assert!(csv_rows("a\"b,c\n").next().unwrap().is_err());
        assert!(csv_rows("\"a\"b,c\n").next().unwrap().is_err());
    }
}
