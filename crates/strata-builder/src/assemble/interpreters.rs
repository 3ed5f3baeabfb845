//! Programs whose interpreter the image lacks: a script's `#!` line, or an
//! ELF executable's `PT_INTERP` (its dynamic loader). Debian packages never
//! declare the Essential set (`/bin/sh`, bash, …); an image built with
//! `essential #false` may therefore ship programs that cannot start.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};

use strata_oci::entry::{Content, Kind};
use strata_oci::path::ImagePath;
use strata_oci::view::{View, ViewKind, lexical_join};

use super::Planned;

/// Missing interpreter → the programs that need it, in path order.
pub fn missing(plan: &Planned) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut seen = std::collections::BTreeSet::new();
    // Later layers win: walk them last to first.
    for layer in plan.plans.iter().rev() {
        for entry in &layer.entries {
            if !seen.insert(entry.path.clone()) {
                continue;
            }
            let Kind::File(content) = &entry.kind else {
                continue;
            };
            if entry.mode & 0o111 == 0
                || !matches!(
                    plan.view.get(&entry.path).map(|e| &e.kind),
                    Some(ViewKind::File)
                )
            {
                continue;
            }
            let Some(interpreter) = interpreter(content) else {
                continue;
            };
            if !exists(&plan.view, &interpreter) {
                out.entry(interpreter)
                    .or_default()
                    .push(format!("/{}", entry.path.as_str()));
            }
        }
    }
    for files in out.values_mut() {
        files.sort();
    }
    out
}

/// `/bin/bash, needed by 3 program(s): /usr/bin/a, …`.
pub fn describe(interpreter: &str, files: &[String]) -> String {
    let shown: Vec<&str> = files.iter().take(3).map(String::as_str).collect();
    let more = if files.len() > shown.len() {
        ", …"
    } else {
        ""
    };
    format!(
        "{interpreter}, needed by {} program(s): {}{more}",
        files.len(),
        shown.join(", ")
    )
}

fn exists(view: &View, path: &str) -> bool {
    let Ok(mut current) = ImagePath::parse(path) else {
        return false;
    };
    for _ in 0..40 {
        let Some(resolved) = view.resolve_parent(&current) else {
            return false;
        };
        match view.get(&resolved).map(|e| &e.kind) {
            Some(ViewKind::Symlink(target)) => {
                current = lexical_join(&resolved.parent().unwrap_or_else(ImagePath::root), target);
            }
            Some(ViewKind::File) => return true,
            _ => return false,
        }
    }
    false
}

/// The program that runs this one: the `#!` interpreter (for
/// `#!/usr/bin/env NAME`, `env` itself) or the ELF loader.
fn interpreter(content: &Content) -> Option<String> {
    let mut file = content.open_seekable().ok()?;
    let mut head = [0u8; 256];
    let n = read_up_to(&mut file, &mut head)?;
    let head = &head[..n];
    if let Some(line) = head.strip_prefix(b"#!") {
        let line = line.split(|b| *b == b'\n').next()?;
        let line = String::from_utf8_lossy(line);
        let program = line.split_whitespace().next()?;
        return program.starts_with('/').then(|| program.to_owned());
    }
    if head.starts_with(b"\x7fELF") {
        return elf_interpreter(&mut file, head);
    }
    None
}

fn read_up_to(file: &mut impl Read, buf: &mut [u8]) -> Option<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..]).ok()? {
            0 => break,
            k => n += k,
        }
    }
    Some(n)
}

/// `PT_INTERP` of an ELF file: the path of its dynamic loader.
fn elf_interpreter(file: &mut (impl Read + Seek), head: &[u8]) -> Option<String> {
    const PT_INTERP: u32 = 3;
    let wide = *head.get(4)? == 2;
    let little = *head.get(5)? == 1;
    let u16_at = |b: &[u8], at: usize| -> Option<u64> {
        let x: [u8; 2] = b.get(at..at + 2)?.try_into().ok()?;
        Some(u64::from(if little {
            u16::from_le_bytes(x)
        } else {
            u16::from_be_bytes(x)
        }))
    };
    let u32_at = |b: &[u8], at: usize| -> Option<u64> {
        let x: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
        Some(u64::from(if little {
            u32::from_le_bytes(x)
        } else {
            u32::from_be_bytes(x)
        }))
    };
    let u64_at = |b: &[u8], at: usize| -> Option<u64> {
        let x: [u8; 8] = b.get(at..at + 8)?.try_into().ok()?;
        Some(if little {
            u64::from_le_bytes(x)
        } else {
            u64::from_be_bytes(x)
        })
    };
    let word = |b: &[u8], at: usize| if wide { u64_at(b, at) } else { u32_at(b, at) };
    let (phoff, phentsize, phnum) = if wide {
        (u64_at(head, 32)?, u16_at(head, 54)?, u16_at(head, 56)?)
    } else {
        (u32_at(head, 28)?, u16_at(head, 42)?, u16_at(head, 44)?)
    };
    // Real executables have a handful of program headers; a header that
    // claims thousands is not worth reading.
    if phnum > 64 || !(32..=64).contains(&phentsize) {
        return None;
    }
    for i in 0..phnum {
        let mut ph = [0u8; 64];
        file.seek(SeekFrom::Start(phoff + i * phentsize)).ok()?;
        let n = read_up_to(file, &mut ph[..phentsize as usize])?;
        let ph = &ph[..n];
        if u32_at(ph, 0)? != u64::from(PT_INTERP) {
            continue;
        }
        let (offset, size) = if wide {
            (word(ph, 8)?, word(ph, 32)?)
        } else {
            (word(ph, 4)?, word(ph, 16)?)
        };
        if size > 4096 {
            return None;
        }
        file.seek(SeekFrom::Start(offset)).ok()?;
        let mut path = vec![0u8; size as usize];
        let n = read_up_to(file, &mut path)?;
        let path = &path[..n];
        let path = path.split(|b| *b == 0).next()?;
        return Some(String::from_utf8_lossy(path).into_owned());
    }
    None
}
