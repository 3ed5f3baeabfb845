//! The cache file itself: `save_cache` and `add_to_cache` of glibc 2.36's
//! `elf/cache.c`, with the string table of `elf/stringtable.c`.
//!
//! No crate writes this format, so it is written here by hand, in the "new"
//! layout only (`glibc-ld.so.cache1.1`), which is ldconfig's default since
//! glibc 2.32:
//!
//! ```text
//! header (48 bytes) | entries (24 bytes each) | strings | pad to 4 | extensions
//! ```
//!
//! String offsets count from the start of the file. The extension directory
//! holds the generator string and, when glibc-hwcaps subdirectories hold
//! libraries, the table of their names.

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap};

use crate::LdconfigError;
use crate::arch::Arch;

/// One `add_to_cache` call.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub lib: Vec<u8>,
    pub path: Vec<u8>,
    pub flags: i32,
    pub isa_level: u32,
    pub hwcap: u64,
    pub hwcaps: Option<Vec<u8>>,
}

/// Everything the search found, in the order ldconfig adds it.
#[derive(Debug, Default)]
pub(crate) struct Found {
    pub entries: Vec<Entry>,
    /// glibc-hwcaps subdirectory names seen, with or without libraries.
    pub hwcaps_names: BTreeSet<Vec<u8>>,
}

const MAGIC: &[u8; 20] = b"glibc-ld.so.cache1.1";
const HEADER: usize = 48;
const ENTRY: usize = 24;
/// `cache_extension_magic`, `(uint32_t) -358342284`.
const EXTENSION_MAGIC: u32 = (-358_342_284i32) as u32;
const TAG_GENERATOR: u32 = 0;
const TAG_GLIBC_HWCAPS: u32 = 1;
const HWCAP_EXTENSION: u64 = 1 << 62;
const ISA_LEVEL_MASK: u32 = (1 << 10) - 1;

/// `_dl_cache_libcmp`: digit runs compare as numbers and above any other
/// character; other characters compare as the platform's `char`.
pub(crate) fn libcmp(p1: &[u8], p2: &[u8], signed_char: bool) -> i32 {
    let at = |s: &[u8], i: usize| s.get(i).copied().unwrap_or(0);
    let ch = |b: u8| {
        if signed_char {
            i32::from(b as i8)
        } else {
            i32::from(b)
        }
    };
    let (mut i, mut j) = (0, 0);
    while at(p1, i) != 0 {
        let (a, b) = (at(p1, i), at(p2, j));
        if a.is_ascii_digit() {
            if !b.is_ascii_digit() {
                return 1;
            }
            // An `int` in C; overflowing it is undefined there, wrapping here.
            let mut v1 = 0i32;
            while at(p1, i).is_ascii_digit() {
                v1 = v1
                    .wrapping_mul(10)
                    .wrapping_add(i32::from(at(p1, i) - b'0'));
                i += 1;
            }
            let mut v2 = 0i32;
            while at(p2, j).is_ascii_digit() {
                v2 = v2
                    .wrapping_mul(10)
                    .wrapping_add(i32::from(at(p2, j) - b'0'));
                j += 1;
            }
            if v1 != v2 {
                return v1.wrapping_sub(v2);
            }
        } else if b.is_ascii_digit() {
            return -1;
        } else if a != b {
            return ch(a) - ch(b);
        } else {
            i += 1;
            j += 1;
        }
    }
    ch(at(p1, i)) - ch(at(p2, j))
}

/// `compare` in `cache.c`: sonames from high to low by `_dl_cache_libcmp`,
/// then higher flags first, glibc-hwcaps entries first (by name), then the
/// most specific legacy hwcap.
fn compare(e1: &Entry, e2: &Entry, signed_char: bool) -> Ordering {
    let res = libcmp(&e2.lib, &e1.lib, signed_char);
    if res != 0 {
        return res.cmp(&0);
    }
    e2.flags
        .cmp(&e1.flags)
        .then_with(|| match (&e1.hwcaps, &e2.hwcaps) {
            (Some(a), Some(b)) => a.cmp(b),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        })
        .then_with(|| e2.hwcap.count_ones().cmp(&e1.hwcap.count_ones()))
        .then_with(|| e2.hwcap.cmp(&e1.hwcap))
}

/// The finalized string table: bytes and each string's offset in them.
struct Strings {
    bytes: Vec<u8>,
    offsets: HashMap<Vec<u8>, u32>,
}

/// `stringtable_finalize`: strings sorted by their reversed bytes, longest
/// first among equal tails, so that a string that ends another shares its
/// bytes with the one just before it.
fn finalize(strings: BTreeSet<Vec<u8>>) -> Result<Strings, LdconfigError> {
    let mut order: Vec<Vec<u8>> = strings.into_iter().collect();
    order.sort_by(|l, r| {
        let common = l.len().min(r.len());
        for i in 1..=common {
            let (lc, rc) = (l[l.len() - i], r[r.len() - i]);
            if lc != rc {
                return rc.cmp(&lc);
            }
        }
        r.len().cmp(&l.len())
    });
    let mut offsets = HashMap::with_capacity(order.len());
    let mut bytes: Vec<u8> = Vec::new();
    let mut previous: Option<(&[u8], usize)> = None;
    for s in &order {
        let offset = match previous {
            Some((p, at)) if p.len() >= s.len() && p.ends_with(s) => at + p.len() - s.len(),
            _ => {
                let at = bytes.len();
                bytes.extend_from_slice(s);
                bytes.push(0);
                at
            }
        };
        let offset32 = u32::try_from(offset).map_err(|_| LdconfigError::TooLarge)?;
        offsets.insert(s.clone(), offset32);
        previous = Some((s, offset));
    }
    Ok(Strings { bytes, offsets })
}

struct Out {
    bytes: Vec<u8>,
    big_endian: bool,
}

impl Out {
    fn u32(&mut self, v: u32) {
        let b = if self.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        };
        self.bytes.extend_from_slice(&b);
    }

    fn u64(&mut self, v: u64) {
        let b = if self.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        };
        self.bytes.extend_from_slice(&b);
    }
}

/// `save_cache` with `opt_format_new`.
pub(crate) fn write(arch: &Arch, found: Found, generator: &str) -> Result<Vec<u8>, LdconfigError> {
    let Found {
        mut entries,
        hwcaps_names,
    } = found;
    // A stable sort, as ldconfig's insertion after all equal entries.
    entries.sort_by(|a, b| compare(a, b, arch.signed_char));

    let used: BTreeSet<&[u8]> = entries.iter().filter_map(|e| e.hwcaps.as_deref()).collect();
    let hwcaps_index: HashMap<&[u8], u32> = used
        .iter()
        .enumerate()
        .map(|(i, name)| (*name, i as u32))
        .collect();

    let mut all: BTreeSet<Vec<u8>> = hwcaps_names;
    for e in &entries {
        all.insert(e.lib.clone());
        all.insert(e.path.clone());
        if let Some(h) = &e.hwcaps {
            all.insert(h.clone());
        }
    }
    let strings = finalize(all)?;
    let offset_of = |s: &[u8]| strings.offsets.get(s).copied().unwrap_or_default();

    let too_large = |_| LdconfigError::TooLarge;
    let str_offset = u32::try_from(HEADER + ENTRY * entries.len()).map_err(too_large)?;
    let strings_end = str_offset as usize + strings.bytes.len();
    let extension_offset = u32::try_from(strings_end.div_ceil(4) * 4).map_err(too_large)?;

    let mut out = Out {
        bytes: Vec::with_capacity(extension_offset as usize + 64 + generator.len()),
        big_endian: arch.big_endian,
    };
    out.bytes.extend_from_slice(MAGIC);
    out.u32(entries.len() as u32);
    out.u32(strings.bytes.len() as u32);
    // cache_file_new_flags_endian_big or _little, then padding.
    out.bytes
        .extend_from_slice(&[if arch.big_endian { 3 } else { 2 }, 0, 0, 0]);
    out.u32(extension_offset);
    out.bytes.extend_from_slice(&[0; 12]);

    for e in &entries {
        let hwcap = match &e.hwcaps {
            None => e.hwcap,
            Some(name) => {
                // ldconfig stops with "ISA level is too high"; x86 levels are 0..=31.
                let level = u64::from(e.isa_level.min(ISA_LEVEL_MASK));
                let index = hwcaps_index
                    .get(name.as_slice())
                    .copied()
                    .unwrap_or_default();
                HWCAP_EXTENSION | (level << 32) | u64::from(index)
            }
        };
        out.u32(e.flags as u32);
        out.u32(str_offset + offset_of(&e.lib));
        out.u32(str_offset + offset_of(&e.path));
        out.u32(0); // osversion_unused
        out.u64(hwcap);
    }
    out.bytes.extend_from_slice(&strings.bytes);
    out.bytes.resize(extension_offset as usize, 0);

    let count: u32 = if used.is_empty() { 1 } else { 2 };
    let hwcaps_size = 4 * used.len() as u32;
    let generator_offset = extension_offset + 8 + 16 * count + hwcaps_size;
    let generator_size = u32::try_from(generator.len()).map_err(too_large)?;
    out.u32(EXTENSION_MAGIC);
    out.u32(count);
    out.u32(TAG_GENERATOR);
    out.u32(0);
    out.u32(generator_offset);
    out.u32(generator_size);
    if !used.is_empty() {
        out.u32(TAG_GLIBC_HWCAPS);
        out.u32(0);
        out.u32(extension_offset + 8 + 16 * count);
        out.u32(hwcaps_size);
        for name in &used {
            out.u32(str_offset + offset_of(name));
        }
    }
    out.bytes.extend_from_slice(generator.as_bytes());
    if generator_offset.checked_add(generator_size).is_none() {
        return Err(LdconfigError::TooLarge);
    }
    Ok(out.bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(lib: &str, flags: i32) -> Entry {
        Entry {
            lib: lib.as_bytes().to_vec(),
            path: format!("/lib/{lib}").into_bytes(),
            flags,
            isa_level: 0,
            hwcap: 0,
            hwcaps: None,
        }
    }

    #[test]
    fn libcmp_compares_digit_runs_as_numbers() {
        assert!(libcmp(b"libfoo.so.10", b"libfoo.so.9", true) > 0);
        assert!(libcmp(b"libfoo.so.1", b"libfoo.so", true) > 0);
        assert!(libcmp(b"libfoo.so", b"libfoo.so.1", true) < 0);
        assert_eq!(libcmp(b"libfoo.so.01", b"libfoo.so.1", true), 0);
        // Digits rank above letters, whatever their code.
        assert!(libcmp(b"lib1", b"libz", true) > 0);
        // Bytes above 0x7f are negative as a signed char, not as an unsigned one.
        assert!(libcmp(b"lib\xc3", b"liba", true) < 0);
        assert!(libcmp(b"lib\xc3", b"liba", false) > 0);
    }

    #[test]
    fn entries_sort_as_ldconfig_lists_them() {
        let mut entries = [
            entry("liba.so.1", 0x0303),
            entry("libz.so.1", 0x0303),
            entry("libc.so.6", 0x0003),
            entry("libc.so.6", 0x0303),
            entry("libz.so.10", 0x0303),
            entry("libz.so.2", 0x0303),
            entry("libz.so", 0x0303),
        ];
        entries.sort_by(|a, b| compare(a, b, true));
        let got: Vec<(String, i32)> = entries
            .iter()
            .map(|e| (String::from_utf8_lossy(&e.lib).into_owned(), e.flags))
            .collect();
        let want = [
            ("libz.so.10", 0x0303),
            ("libz.so.2", 0x0303),
            ("libz.so.1", 0x0303),
            ("libz.so", 0x0303),
            ("libc.so.6", 0x0303),
            ("libc.so.6", 0x0003),
            ("liba.so.1", 0x0303),
        ];
        let want: Vec<(String, i32)> = want.iter().map(|(l, f)| (l.to_string(), *f)).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn string_table_shares_tails() {
        let strings: BTreeSet<Vec<u8>> = ["libz.so.1", "/lib/libz.so.1", "z.so.1", "libc.so.6"]
            .iter()
            .map(|s| s.as_bytes().to_vec())
            .collect();
        let t = finalize(strings).expect("small table");
        assert_eq!(t.bytes, b"libc.so.6\0/lib/libz.so.1\0");
        assert_eq!(t.offsets[&b"libz.so.1"[..]], 15);
        assert_eq!(t.offsets[&b"z.so.1"[..]], 18);
    }

    #[test]
    fn s390x_writes_big_endian() {
        let arch = crate::arch::arch("s390x").expect("s390x is known");
        let mut found = Found::default();
        found.entries.push(entry("libz.so.1", 0x0403));
        let bytes = write(&arch, found, "g").expect("cache");
        assert_eq!(&bytes[..20], MAGIC);
        assert_eq!(bytes[20..24], 1u32.to_be_bytes());
        assert_eq!(bytes[28], 3, "cache_file_new_flags_endian_big");
        assert_eq!(bytes[48..52], 0x0403u32.to_be_bytes());
        let ext = u32::from_be_bytes([bytes[32], bytes[33], bytes[34], bytes[35]]) as usize;
        assert_eq!(bytes[ext..ext + 4], EXTENSION_MAGIC.to_be_bytes());
        assert!(bytes.ends_with(b"g"));
    }
}
