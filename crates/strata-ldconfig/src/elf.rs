//! A library's soname and cache flags, read as ldconfig's `readlib.c` and
//! `readelflib.c` read them.
//!
//! ldconfig maps the whole file; libraries can be hundreds of megabytes, so
//! this reads only the few headers it needs through `Read + Seek`, a block at
//! a time. ldconfig's bounds checks (`check_ptr`) look only at where a
//! structure starts, and past the end of the file its mapping reads as zeros;
//! reads here do the same, so a truncated file is skipped, or read, exactly
//! where ldconfig skips or reads it.

use std::io::{self, Read, Seek, SeekFrom};

use crate::arch::{Arch, Classifier, flag};

/// What ldconfig learns from one library file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Lib {
    pub flag: i32,
    pub isa_level: u32,
    /// `DT_SONAME`, or for an a.out library the name cut after its major version.
    pub soname: Option<Vec<u8>>,
}

const BLOCK: u64 = 4096;
/// No soname or interpreter is this long; stop reading a string without a NUL there.
const MAX_STRING: usize = 64 * 1024;

const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const PT_GNU_PROPERTY: u32 = 0x6474_e553;
const DT_NEEDED: u64 = 1;
const DT_STRTAB: u64 = 5;
const DT_SONAME: u64 = 14;
const ET_DYN: u16 = 3;
const NT_GNU_PROPERTY_TYPE_0: u32 = 5;
const GNU_PROPERTY_X86_ISA_1_NEEDED: u32 = 0xc000_8002;

/// The file as ldconfig's mapping of it: bytes past the end read as zeros.
struct Mapped<R> {
    file: R,
    len: u64,
    big_endian: bool,
    block: Vec<u8>,
    block_start: u64,
}

impl<R: Read + Seek> Mapped<R> {
    fn new(mut file: R, big_endian: bool) -> io::Result<Self> {
        let len = file.seek(SeekFrom::End(0))?;
        Ok(Mapped {
            file,
            len,
            big_endian,
            block: Vec::new(),
            block_start: u64::MAX,
        })
    }

    /// `check_ptr`: a structure may start anywhere up to the end of the file.
    fn inside(&self, offset: u64) -> bool {
        offset <= self.len
    }

    fn read(&mut self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        let mut done = 0;
        while done < out.len() {
            let pos = match offset.checked_add(done as u64) {
                Some(pos) if pos < self.len => pos,
                _ => {
                    out[done..].fill(0);
                    break;
                }
            };
            let start = pos - pos % BLOCK;
            if start != self.block_start {
                self.load(start)?;
            }
            let from = (pos - start) as usize;
            if from >= self.block.len() {
                // The file shrank under us: what is gone reads as zeros.
                out[done..].fill(0);
                break;
            }
            let n = (self.block.len() - from).min(out.len() - done);
            out[done..done + n].copy_from_slice(&self.block[from..from + n]);
            done += n;
        }
        Ok(())
    }

    fn load(&mut self, start: u64) -> io::Result<()> {
        self.file.seek(SeekFrom::Start(start))?;
        self.block.clear();
        let want = BLOCK.min(self.len - start);
        (&mut self.file).take(want).read_to_end(&mut self.block)?;
        self.block_start = start;
        Ok(())
    }

    fn u16(&mut self, offset: u64) -> io::Result<u16> {
        let mut b = [0; 2];
        self.read(offset, &mut b)?;
        Ok(if self.big_endian {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    }

    fn u32(&mut self, offset: u64) -> io::Result<u32> {
        let mut b = [0; 4];
        self.read(offset, &mut b)?;
        Ok(if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }

    fn u64(&mut self, offset: u64) -> io::Result<u64> {
        let mut b = [0; 8];
        self.read(offset, &mut b)?;
        Ok(if self.big_endian {
            u64::from_be_bytes(b)
        } else {
            u64::from_le_bytes(b)
        })
    }

    /// An `Elf32_Word`/`Elf32_Addr` or its 64-bit counterpart.
    fn word(&mut self, class64: bool, offset: u64) -> io::Result<u64> {
        if class64 {
            self.u64(offset)
        } else {
            self.u32(offset).map(u64::from)
        }
    }

    /// A NUL-terminated string; the end of the file ends it too.
    fn string(&mut self, offset: u64) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut chunk = [0u8; 256];
        let mut at = offset;
        while out.len() < MAX_STRING && at < self.len {
            self.read(at, &mut chunk)?;
            match chunk.iter().position(|b| *b == 0) {
                Some(nul) => {
                    out.extend_from_slice(&chunk[..nul]);
                    return Ok(out);
                }
                None => out.extend_from_slice(&chunk),
            }
            at = at.saturating_add(chunk.len() as u64);
        }
        Ok(out)
    }
}

/// One program header.
struct Segment {
    kind: u32,
    offset: u64,
    vaddr: u64,
    filesz: u64,
}

/// An ELF file mapped with its own byte order, and its program headers.
struct Elf<R> {
    m: Mapped<R>,
    class64: bool,
    segments: Vec<Segment>,
}

/// The file as [`Elf`]; `None` when it is not ELF or its header table runs
/// past the end.
fn segments<R: Read + Seek>(file: R) -> io::Result<Option<Elf<R>>> {
    let mut ident = [0u8; 6];
    let mut m = Mapped::new(file, false)?;
    m.read(0, &mut ident)?;
    if &ident[..4] != b"\x7fELF" || !matches!(ident[4], 1 | 2) {
        return Ok(None);
    }
    let class64 = ident[4] == 2;
    m.big_endian = ident[5] == 2;
    let (phoff, phnum, phsize) = if class64 {
        (m.u64(32)?, m.u16(56)?, 56u64)
    } else {
        (u64::from(m.u32(28)?), m.u16(44)?, 32u64)
    };
    let mut segments = Vec::new();
    for i in 0..u64::from(phnum) {
        let Some(at) = phoff.checked_add(i * phsize).filter(|at| *at < m.len) else {
            return Ok(None);
        };
        segments.push(if class64 {
            Segment {
                kind: m.u32(at)?,
                offset: m.u64(at + 8)?,
                vaddr: m.u64(at + 16)?,
                filesz: m.u64(at + 32)?,
            }
        } else {
            Segment {
                kind: m.u32(at)?,
                offset: u64::from(m.u32(at + 4)?),
                vaddr: u64::from(m.u32(at + 8)?),
                filesz: u64::from(m.u32(at + 16)?),
            }
        });
    }
    Ok(Some(Elf {
        m,
        class64,
        segments,
    }))
}

/// The `PT_INTERP` path of an ELF executable or library (its dynamic
/// loader); `None` for a file that is not ELF or names none. Reads only the
/// header and program headers, whatever the file's size.
pub fn interpreter<R: Read + Seek>(file: R) -> io::Result<Option<Vec<u8>>> {
    let Some(Elf {
        mut m, segments, ..
    }) = segments(file)?
    else {
        return Ok(None);
    };
    match segments.iter().find(|s| s.kind == PT_INTERP) {
        Some(interp) if m.inside(interp.offset) => m.string(interp.offset).map(Some),
        _ => Ok(None),
    }
}

const DT_RPATH: u64 = 15;
const DT_RUNPATH: u64 = 29;

/// What a dynamic ELF object asks of the loader: the libraries it needs
/// (`DT_NEEDED`) and the folders it names to find them in (`DT_RUNPATH`,
/// else `DT_RPATH`, `:`-separated, `$ORIGIN` unexpanded).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Needs {
    pub needed: Vec<Vec<u8>>,
    pub runpath: Vec<Vec<u8>>,
}

/// No real object needs this many libraries or search paths: past it the
/// dynamic section is not believed.
const MAX_DYNAMIC_ENTRIES: u64 = 4096;

/// The [`Needs`] of an ELF file; `None` for a file that is not ELF or has
/// no dynamic section. Reads the headers, the dynamic section and the
/// strings it names, whatever the file's size.
pub fn needs<R: Read + Seek>(file: R) -> io::Result<Option<Needs>> {
    let Some(Elf {
        mut m,
        class64,
        segments,
    }) = segments(file)?
    else {
        return Ok(None);
    };
    let Some(&Segment {
        offset: dynamic,
        filesz: size,
        ..
    }) = segments.iter().find(|s| s.kind == PT_DYNAMIC)
    else {
        return Ok(None);
    };
    let entry = if class64 { 16 } else { 8 };
    let mut strtab = None;
    let mut wanted = Vec::new();
    for i in 0..(size / entry).min(MAX_DYNAMIC_ENTRIES) {
        let at = dynamic + i * entry;
        if !m.inside(at) {
            return Ok(None);
        }
        let (tag, value) = (m.word(class64, at)?, m.word(class64, at + entry / 2)?);
        match tag {
            0 => break,
            DT_STRTAB => strtab = Some(value),
            DT_NEEDED | DT_RPATH | DT_RUNPATH => wanted.push((tag, value)),
            _ => {}
        }
    }
    // DT_STRTAB is an address: the PT_LOAD holding it gives its file offset.
    let Some(strings) = strtab.and_then(|address| {
        segments
            .iter()
            .find(|s| s.kind == PT_LOAD && address >= s.vaddr && address - s.vaddr < s.filesz)
            .map(|s| address - s.vaddr + s.offset)
    }) else {
        return Ok(None);
    };
    let mut needs = Needs::default();
    let (mut rpath, mut runpath) = (Vec::new(), Vec::new());
    for (tag, value) in wanted {
        let Some(offset) = strings.checked_add(value).filter(|o| m.inside(*o)) else {
            return Ok(None);
        };
        let text = m.string(offset)?;
        match tag {
            DT_NEEDED => needs.needed.push(text),
            DT_RPATH => rpath.push(text),
            _ => runpath.push(text),
        }
    }
    // The loader ignores DT_RPATH when DT_RUNPATH is present.
    let paths = if runpath.is_empty() { rpath } else { runpath };
    needs.runpath = paths
        .iter()
        .flat_map(|p| p.split(|b| *b == b':'))
        .filter(|p| !p.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    Ok(Some(needs))
}

/// `process_file`: `Ok(None)` where ldconfig skips the file (with or without
/// a warning); errors are only the reader's own.
pub(crate) fn process_file<R: Read + Seek>(
    arch: &Arch,
    file: R,
    name: &str,
) -> io::Result<Option<Lib>> {
    let mut m = Mapped::new(file, arch.big_endian)?;
    // `sizeof (ElfW(Ehdr))` of ldconfig's own word size; `struct exec` is smaller.
    let header_size = if arch.bits64 { 64 } else { 52 };
    if m.len < header_size {
        return Ok(None);
    }

    // `N_MAGIC`: the low 16 bits of `a_info`, an `unsigned long`.
    let a_info = m.word(arch.bits64, 0)?;
    if matches!(a_info & 0xffff, 0o413 | 0o314) {
        return Ok(Some(Lib {
            flag: flag::LIBC4,
            isa_level: 0,
            soname: Some(aout_soname(name)),
        }));
    }

    let mut ident = [0u8; 16];
    m.read(0, &mut ident)?;
    if ident[..4] != *b"\x7fELF" || m.u16(16)? != ET_DYN {
        return Ok(None);
    }
    classify(arch, &mut m, ident[4])
}

/// a.out libraries have no soname: their name up to the major version is one.
fn aout_soname(name: &str) -> Vec<u8> {
    let mut soname = name.as_bytes().to_vec();
    if let Some(major) = name.find(".so.")
        && let Some(dot) = name[major + 4..].find('.')
    {
        soname.truncate(major + 4 + dot);
    }
    soname
}

/// The architecture's `process_elf_file`, around the generic one of each class.
fn classify<R: Read + Seek>(arch: &Arch, m: &mut Mapped<R>, class: u8) -> io::Result<Option<Lib>> {
    let class32 = class == 1;
    let e_flags = if class32 { m.u32(36)? } else { m.u32(48)? };
    match arch.classifier {
        Classifier::X86 { amd64 } => {
            let file_flag = match m.u16(18)? {
                62 if class == 2 => flag::X8664_LIB64 | flag::ELF_LIBC6,
                62 => flag::X8664_LIBX32 | flag::ELF_LIBC6,
                50 if !amd64 && class == 2 => flag::IA64_LIB64 | flag::ELF_LIBC6,
                3 if class32 => 0,
                // "is for unknown machine"
                _ => return Ok(None),
            };
            let lib = generic(arch, m, !class32)?;
            Ok(lib.map(|lib| Lib {
                flag: if file_flag != 0 { file_flag } else { lib.flag },
                ..lib
            }))
        }
        Classifier::Arm if class32 => {
            let lib = generic(arch, m, false)?;
            Ok(lib.map(|lib| {
                // EF_ARM_EABI_VER5 marks its float ABI; unmarked objects suit both.
                let flag = if e_flags & 0xff00_0000 != 0x0500_0000 {
                    lib.flag
                } else if e_flags & 0x400 != 0 {
                    flag::ARM_LIBHF | flag::ELF_LIBC6
                } else if e_flags & 0x200 != 0 {
                    flag::ARM_LIBSF | flag::ELF_LIBC6
                } else {
                    flag::ELF_LIBC6
                };
                Lib { flag, ..lib }
            }))
        }
        Classifier::PowerPc | Classifier::S390 if class32 => generic(arch, m, false),
        Classifier::Arm | Classifier::PowerPc | Classifier::S390 => {
            let lib64 = match arch.classifier {
                Classifier::Arm => flag::AARCH64_LIB64,
                Classifier::PowerPc => flag::POWERPC_LIB64,
                _ => flag::S390_LIB64,
            };
            let lib = generic(arch, m, true)?;
            Ok(lib.map(|lib| Lib {
                flag: lib64 | flag::ELF_LIBC6,
                ..lib
            }))
        }
        Classifier::Mips => {
            let lib = generic(arch, m, !class32)?;
            let nan2008 = e_flags & 0x400 != 0;
            Ok(lib.map(|lib| {
                let flag = if !class32 {
                    if nan2008 {
                        flag::MIPS64_LIBN64_NAN2008 | flag::ELF_LIBC6
                    } else {
                        flag::MIPS64_LIBN64 | flag::ELF_LIBC6
                    }
                } else if e_flags & 0x20 != 0 {
                    // EF_MIPS_ABI2: n32.
                    if nan2008 {
                        flag::MIPS64_LIBN32_NAN2008 | flag::ELF_LIBC6
                    } else {
                        flag::MIPS64_LIBN32 | flag::ELF_LIBC6
                    }
                } else if nan2008 {
                    flag::MIPS_LIB32_NAN2008 | flag::ELF_LIBC6
                } else {
                    lib.flag
                };
                Lib { flag, ..lib }
            }))
        }
        Classifier::RiscV => {
            let lib = generic(arch, m, !class32)?;
            // Only the soft and double float ABIs, and no flag but RVC besides.
            let abi = match e_flags & 0x6 {
                0 => flag::RISCV_FLOAT_ABI_SOFT,
                4 => flag::RISCV_FLOAT_ABI_DOUBLE,
                _ => return Ok(None),
            };
            if e_flags & !0x7 != 0 {
                return Ok(None);
            }
            Ok(lib.map(|lib| Lib {
                flag: lib.flag | abi,
                ..lib
            }))
        }
    }
}

/// The generic `process_elf_file` of one ELF class.
fn generic<R: Read + Seek>(
    arch: &Arch,
    m: &mut Mapped<R>,
    class64: bool,
) -> io::Result<Option<Lib>> {
    let mut ident = [0u8; 5];
    m.read(0, &mut ident)?;
    if ident[4] != if class64 { 2 } else { 1 } || m.u16(16)? != ET_DYN {
        return Ok(None);
    }
    // Offsets wrap as the class's own `ElfW(Off)` arithmetic does.
    let wrap = |v: u64| if class64 { v } else { v & 0xffff_ffff };
    let (phoff, phnum, phsize) = if class64 {
        (m.u64(32)?, m.u16(56)?, 56u64)
    } else {
        (u64::from(m.u32(28)?), m.u16(44)?, 32u64)
    };
    if !m.inside(phoff) {
        return Ok(None); // "file is truncated"
    }
    let phdr = |i: u64| phoff.checked_add(i * phsize);
    // (p_type, p_offset, p_vaddr, p_filesz, p_align)
    let read_phdr = |m: &mut Mapped<R>, at: u64| -> io::Result<[u64; 5]> {
        Ok(if class64 {
            [
                u64::from(m.u32(at)?),
                m.u64(at + 8)?,
                m.u64(at + 16)?,
                m.u64(at + 32)?,
                m.u64(at + 48)?,
            ]
        } else {
            [
                u64::from(m.u32(at)?),
                u64::from(m.u32(at + 4)?),
                u64::from(m.u32(at + 8)?),
                u64::from(m.u32(at + 16)?),
                u64::from(m.u32(at + 28)?),
            ]
        })
    };

    let mut lib = Lib {
        flag: flag::ELF,
        isa_level: 0,
        soname: None,
    };
    // `dynamic_addr` is an `unsigned int` in ldconfig.
    let mut dynamic_addr = 0u64;
    let mut dynamic_size = 0u64;
    for i in 0..u64::from(phnum) {
        let Some(at) = phdr(i).filter(|at| m.inside(*at)) else {
            return Ok(None);
        };
        let [p_type, p_offset, _, p_filesz, p_align] = read_phdr(m, at)?;
        match p_type as u32 {
            PT_DYNAMIC => {
                dynamic_addr = p_offset & 0xffff_ffff;
                dynamic_size = p_filesz;
            }
            PT_INTERP => {
                if !m.inside(p_offset) {
                    return Ok(None);
                }
                let interp = m.string(p_offset)?;
                if let Some((_, f)) = arch
                    .interpreters
                    .iter()
                    .find(|(name, _)| name.as_bytes() == interp)
                {
                    lib.flag = *f;
                }
            }
            PT_GNU_PROPERTY
                if matches!(arch.classifier, Classifier::X86 { .. })
                    && p_align == if class64 { 8 } else { 4 } =>
            {
                if let Some(level) = x86_isa_level(m, p_offset, p_filesz, p_align)? {
                    lib.isa_level = level;
                }
            }
            _ => {}
        }
    }
    if dynamic_size == 0 || !m.inside(dynamic_addr) {
        return Ok(None);
    }

    let dyn_size = if class64 { 16 } else { 8 };
    let read_dyn = |m: &mut Mapped<R>, at: u64| -> io::Result<(u64, u64)> {
        Ok((m.word(class64, at)?, m.word(class64, at + dyn_size / 2)?))
    };

    let mut strings = None;
    let mut at = dynamic_addr;
    loop {
        let (tag, val) = read_dyn(m, at)?;
        if tag == 0 {
            break;
        }
        if !m.inside(at) {
            return Ok(None);
        }
        if tag == DT_STRTAB {
            let mut loadoff = 0u64;
            for i in 0..u64::from(phnum) {
                let Some(ph) = phdr(i) else { break };
                let [p_type, p_offset, p_vaddr, p_filesz, _] = read_phdr(m, ph)?;
                if p_type as u32 == PT_LOAD && val >= p_vaddr && val - p_vaddr < p_filesz {
                    loadoff = wrap(p_vaddr.wrapping_sub(p_offset));
                    break;
                }
            }
            let offset = wrap(val.wrapping_sub(loadoff));
            if !m.inside(offset) {
                return Ok(None);
            }
            strings = Some(offset);
            break;
        }
        at += dyn_size;
    }
    let Some(strings) = strings else {
        return Ok(None);
    };

    let mut at = dynamic_addr;
    loop {
        let (tag, val) = read_dyn(m, at)?;
        if tag == 0 {
            break;
        }
        if tag == DT_NEEDED || tag == DT_SONAME {
            let offset = wrap(strings.wrapping_add(val));
            if !m.inside(offset) {
                return Ok(None);
            }
            let name = m.string(offset)?;
            if tag == DT_NEEDED {
                if lib.flag == flag::ELF
                    && let Some((_, f)) = arch.known_libs.iter().find(|(n, _)| n.as_bytes() == name)
                {
                    lib.flag = *f;
                }
            } else {
                lib.soname = Some(name);
            }
            if lib.soname.is_some() && lib.flag != flag::ELF {
                break;
            }
        }
        at += dyn_size;
    }
    Ok(Some(lib))
}

/// The x86 `GNU_PROPERTY_X86_ISA_1_NEEDED` level of a `PT_GNU_PROPERTY`
/// segment: the index of its highest bit.
fn x86_isa_level<R: Read + Seek>(
    m: &mut Mapped<R>,
    start: u64,
    size: u64,
    align: u64,
) -> io::Result<Option<u32>> {
    let align_up = |v: u64| v.div_ceil(align) * align;
    let mut note = start;
    // Past the end of the file ldconfig would fault, not read on.
    while note.saturating_add(12) - start < size && m.inside(note) {
        let namesz = u64::from(m.u32(note)?);
        let descsz = u64::from(m.u32(note + 4)?);
        let n_type = m.u32(note + 8)?;
        let mut name = [0u8; 4];
        m.read(note + 12, &mut name)?;
        if namesz == 4 && n_type == NT_GNU_PROPERTY_TYPE_0 && name == *b"GNU\0" {
            if descsz < 8 || descsz % align != 0 {
                return Ok(None);
            }
            let mut ptr = note + 16;
            let end = ptr + descsz;
            let mut last_type = 0;
            loop {
                let pr_type = m.u32(ptr)?;
                let datasz = u64::from(m.u32(ptr + 4)?);
                if pr_type < last_type {
                    return Ok(None);
                }
                ptr += 8;
                if ptr + datasz > end {
                    return Ok(None);
                }
                last_type = pr_type;
                if pr_type > GNU_PROPERTY_X86_ISA_1_NEEDED {
                    return Ok(None);
                }
                if pr_type == GNU_PROPERTY_X86_ISA_1_NEEDED {
                    if datasz == 4 {
                        let needed = m.u32(ptr)?;
                        if needed != 0 {
                            return Ok(Some(31 - needed.leading_zeros()));
                        }
                    }
                    return Ok(None);
                }
                ptr += align_up(datasz);
                if ptr > end || end - ptr < 8 {
                    return Ok(None);
                }
            }
        }
        note += align_up(align_up(12 + namesz) + descsz);
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn amd64() -> Arch {
        crate::arch::arch("amd64").expect("amd64 is known")
    }

    #[test]
    fn text_named_like_a_library_is_skipped() {
        let script = b"/* GNU ld script */\nGROUP ( /lib/x86_64-linux-gnu/libc.so.6 )\n".repeat(2);
        let got = process_file(&amd64(), Cursor::new(script), "libc.so").expect("reads");
        assert_eq!(got, None);
    }

    #[test]
    fn small_and_empty_files_are_skipped() {
        for bytes in [&b""[..], b"\x7fELF\x02\x01\x01"] {
            let got = process_file(&amd64(), Cursor::new(bytes), "libx.so.1").expect("reads");
            assert_eq!(got, None);
        }
    }

    #[test]
    fn aout_library_takes_its_name_to_the_major_version() {
        assert_eq!(aout_soname("libfoo.so.4.1.2"), b"libfoo.so.4");
        assert_eq!(aout_soname("libfoo.so"), b"libfoo.so");
    }

    /// A minimal 64-bit little-endian x86-64 shared object with a soname.
    fn tiny_elf() -> Vec<u8> {
        let mut f = vec![0u8; 0x200];
        f[..4].copy_from_slice(b"\x7fELF");
        f[4] = 2;
        f[5] = 1;
        f[6] = 1;
        f[16..18].copy_from_slice(&ET_DYN.to_le_bytes());
        f[18..20].copy_from_slice(&62u16.to_le_bytes());
        f[32..40].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
        f[56..58].copy_from_slice(&2u16.to_le_bytes()); // e_phnum
        let ph = |f: &mut Vec<u8>, at: usize, ty: u32, off: u64, size: u64| {
            f[at..at + 4].copy_from_slice(&ty.to_le_bytes());
            f[at + 8..at + 16].copy_from_slice(&off.to_le_bytes());
            f[at + 16..at + 24].copy_from_slice(&off.to_le_bytes());
            f[at + 32..at + 40].copy_from_slice(&size.to_le_bytes());
        };
        ph(&mut f, 64, PT_LOAD, 0, 0x200);
        ph(&mut f, 120, PT_DYNAMIC, 0x100, 0x40);
        let dy = |f: &mut Vec<u8>, at: usize, tag: u64, val: u64| {
            f[at..at + 8].copy_from_slice(&tag.to_le_bytes());
            f[at + 8..at + 16].copy_from_slice(&val.to_le_bytes());
        };
        dy(&mut f, 0x100, DT_STRTAB, 0x180);
        dy(&mut f, 0x110, DT_SONAME, 1);
        f[0x181..0x18b].copy_from_slice(b"libt.so.1\0");
        f
    }

    #[test]
    fn reads_what_a_library_needs_and_where_it_looks() {
        let mut f = tiny_elf();
        let dy = |f: &mut Vec<u8>, at: usize, tag: u64, val: u64| {
            f[at..at + 8].copy_from_slice(&tag.to_le_bytes());
            f[at + 8..at + 16].copy_from_slice(&val.to_le_bytes());
        };
        dy(&mut f, 0x120, DT_NEEDED, 0x0b);
        dy(&mut f, 0x130, DT_RUNPATH, 0x15);
        f[0x18b..0x195].copy_from_slice(b"libm.so.6\0");
        f[0x195..0x1ac].copy_from_slice(b"$ORIGIN/../x.libs:/opt\0");
        let found = needs(std::io::Cursor::new(&f)).unwrap().unwrap();
        assert_eq!(found.needed, vec![b"libm.so.6".to_vec()]);
        assert_eq!(
            found.runpath,
            vec![b"$ORIGIN/../x.libs".to_vec(), b"/opt".to_vec()]
        );
        assert_eq!(
            needs(std::io::Cursor::new(b"#!/bin/sh\n".to_vec())).unwrap(),
            None
        );
    }

    #[test]
    fn reads_the_soname_of_an_elf_library() {
        let got = process_file(&amd64(), Cursor::new(tiny_elf()), "libt.so.1.0").expect("reads");
        assert_eq!(
            got,
            Some(Lib {
                flag: 0x0303,
                isa_level: 0,
                soname: Some(b"libt.so.1".to_vec())
            })
        );
    }

    #[test]
    fn the_loader_of_a_real_executable() {
        let file = std::fs::File::open("/usr/bin/true").expect("coreutils is Essential");
        let loader = interpreter(file).expect("readable");
        assert_eq!(loader.as_deref(), Some(&b"/lib64/ld-linux-x86-64.so.2"[..]));
        assert_eq!(
            interpreter(std::io::Cursor::new(b"#!/bin/sh\n")).expect("readable"),
            None
        );
    }

    #[test]
    fn truncated_elf_is_skipped() {
        // Cut inside the program headers: the dynamic segment's offset is
        // beyond the end, as ldconfig's "file is truncated".
        let mut f = tiny_elf();
        f.truncate(0xf0);
        let got = process_file(&amd64(), Cursor::new(f), "libt.so.1").expect("reads");
        assert_eq!(got, None);
    }

    #[test]
    fn wrong_machine_is_skipped_on_x86() {
        let mut f = tiny_elf();
        f[18..20].copy_from_slice(&183u16.to_le_bytes()); // EM_AARCH64
        let got = process_file(&amd64(), Cursor::new(f.clone()), "libt.so.1").expect("reads");
        assert_eq!(got, None);
        // AArch64's ldconfig does not look at the machine at all.
        let arm64 = crate::arch::arch("arm64").expect("arm64 is known");
        let got = process_file(&arm64, Cursor::new(f), "libt.so.1").expect("reads");
        assert_eq!(got.map(|l| l.flag), Some(0x0a03));
    }
}
