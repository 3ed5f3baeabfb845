//! Which directories ldconfig searches and what it adds from each: `main`,
//! `parse_conf`, `add_dir_1`, `add_glibc_hwcaps_subdirectories` and
//! `search_dir` of glibc 2.36's `elf/ldconfig.c`.
//!
//! ldconfig tells directories apart by inode, so `/lib/x86_64-linux-gnu` and
//! `/usr/lib/x86_64-linux-gnu` are one directory on a merged-/usr image and
//! only the first-named is searched. A tree has no inodes; the path with every
//! symlink resolved stands in for one.

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use crate::arch::{Arch, flag};
use crate::cache::{Entry, Found, libcmp};
use crate::elf::process_file;
use crate::{Kind, LdconfigError, Tree};

/// Symlinks followed in one lookup before giving up, as the kernel's `ELOOP`.
const MAX_LINKS: usize = 40;
/// Nested `include`s; ldconfig itself recurses until its stack runs out.
const MAX_INCLUDE_DEPTH: usize = 32;

/// A directory to search: `struct dir_entry`.
struct Dir {
    /// As named in the configuration, or a subdirectory of such a name.
    path: String,
    /// From `dir=libc6` and the like; `FLAG_ANY` otherwise.
    flag: i32,
    /// The path with symlinks resolved: ldconfig's `(st_dev, st_ino)`.
    id: String,
    /// The name of the glibc-hwcaps subdirectory this is.
    hwcaps: Option<String>,
}

/// A library found in one directory: `struct dlib_entry`.
struct Dlib {
    name: String,
    soname: Vec<u8>,
    flag: i32,
    is_link: bool,
    isa_level: u32,
}

type Listing = Rc<BTreeMap<String, Kind>>;

struct Scan<'t, T> {
    tree: &'t T,
    arch: &'t Arch,
    listings: HashMap<String, Option<Listing>>,
    dirs: Vec<Dir>,
    found: Found,
}

/// The folders the loader searches after `ld.so.conf`. glibc adds SLIBDIR
/// and LIBDIR through `add_system_dir`; Debian's are the multiarch
/// directories, and its ldconfig adds /lib and /usr/lib after them (seen
/// from Debian 12's ldconfig -v; the lib64 variants are not).
pub(crate) fn system_dirs(arch: &Arch) -> [String; 4] {
    [
        format!("/lib/{}", arch.triplet),
        format!("/usr/lib/{}", arch.triplet),
        "/lib".to_owned(),
        "/usr/lib".to_owned(),
    ]
}

pub(crate) fn scan<T: Tree>(tree: &T, arch: &Arch) -> Result<Found, LdconfigError> {
    let mut s = Scan {
        tree,
        arch,
        listings: HashMap::new(),
        dirs: Vec::new(),
        found: Found::default(),
    };
    s.parse_conf("/etc/ld.so.conf", 0)?;
    for dir in system_dirs(arch) {
        s.add_dir(&dir);
    }
    // Searching can queue legacy hwcap subdirectories at the end.
    let mut i = 0;
    while i < s.dirs.len() {
        s.search_dir(i)?;
        i += 1;
    }
    Ok(s.found)
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn is_blank(b: Option<&u8>) -> bool {
    matches!(b, Some(b' ' | b'\t'))
}

/// `_dl_is_dso`: lib*.so*, ld-*.so*, ld.so.*, ld64.so.*.
pub(crate) fn is_dso(name: &str) -> bool {
    ((name.starts_with("lib") || name.starts_with("ld-")) && name.contains(".so"))
        || name.starts_with("ld.so.")
        || name.starts_with("ld64.so.")
}

fn join(dir: &str, name: &str) -> String {
    if dir == "/" {
        format!("/{name}")
    } else {
        format!("{dir}/{name}")
    }
}

impl<T: Tree> Scan<'_, T> {
    fn listing(&mut self, dir: &str) -> Option<Listing> {
        if let Some(l) = self.listings.get(dir) {
            return l.clone();
        }
        let listing = self.tree.read_dir(dir).map(|entries| {
            Rc::new(
                entries
                    .into_iter()
                    .map(|e| (e.name, e.kind))
                    .collect::<BTreeMap<_, _>>(),
            )
        });
        self.listings.insert(dir.to_owned(), listing.clone());
        listing
    }

    /// The path with its symlinks resolved (the last one too if `follow`),
    /// and what is there; None if nothing is.
    fn resolve(&mut self, path: &str, follow: bool) -> Option<(String, Kind)> {
        let mut pending: Vec<String> = path
            .split('/')
            .rev()
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect();
        let mut at: Vec<String> = Vec::new();
        let mut kind = Kind::Dir;
        let mut links = 0;
        while let Some(c) = pending.pop() {
            if kind != Kind::Dir {
                return None; // a path through a file
            }
            match c.as_str() {
                "." => continue,
                ".." => {
                    at.pop();
                    continue;
                }
                _ => {}
            }
            let dir = format!("/{}", at.join("/"));
            match self.listing(&dir)?.get(&c)? {
                Kind::Symlink(target) if follow || !pending.is_empty() => {
                    links += 1;
                    if links > MAX_LINKS {
                        return None;
                    }
                    if target.starts_with('/') {
                        at.clear();
                    }
                    pending.extend(
                        target
                            .split('/')
                            .rev()
                            .filter(|c| !c.is_empty())
                            .map(str::to_owned),
                    );
                }
                k => {
                    kind = k.clone();
                    at.push(c);
                }
            }
        }
        Some((format!("/{}", at.join("/")), kind))
    }

    fn parse_conf(&mut self, file: &str, depth: usize) -> Result<(), LdconfigError> {
        if depth > MAX_INCLUDE_DEPTH {
            return Err(LdconfigError::IncludeDepth {
                path: file.to_owned(),
                max: MAX_INCLUDE_DEPTH,
            });
        }
        let Some(text) = self.tree.read_text(file) else {
            return Ok(());
        };
        for line in text.split('\n') {
            // C strings: a NUL ends the line, and '#' starts a comment.
            let line = line.split('\0').next().unwrap_or_default();
            let line = line.split('#').next().unwrap_or_default().as_bytes();
            let start = line
                .iter()
                .position(|b| !is_space(*b))
                .unwrap_or(line.len());
            let cp = &line[start..];
            if cp.is_empty() {
                continue;
            }
            let text = String::from_utf8_lossy(cp);
            if cp.starts_with(b"include") && is_blank(cp.get(7)) {
                for pattern in text[8..].split([' ', '\t']).filter(|p| !p.is_empty()) {
                    self.include(file, pattern, depth)?;
                }
            } else if cp.len() > 5 && cp[..5].eq_ignore_ascii_case(b"hwcap") && is_blank(cp.get(5))
            {
                // "hwcap directive ignored"
            } else {
                self.add_dir_1(&text);
            }
        }
        Ok(())
    }

    /// `parse_conf_include`: a glob, relative to the including file's directory.
    fn include(&mut self, file: &str, pattern: &str, depth: usize) -> Result<(), LdconfigError> {
        let pattern = match (pattern.starts_with('/'), file.rfind('/')) {
            (false, Some(slash)) => format!("{}/{pattern}", &file[..slash.max(1)]),
            _ => pattern.to_owned(),
        };
        for path in self.glob(&pattern) {
            self.parse_conf(&path, depth + 1)?;
        }
        Ok(())
    }

    /// `glob (pattern, 0, …)`: matches sorted, wildcards not matching a leading
    /// '.', and a pattern without wildcards only if its file exists.
    fn glob(&mut self, pattern: &str) -> Vec<String> {
        let parts: Vec<&str> = pattern.split('/').filter(|c| !c.is_empty()).collect();
        let mut paths = vec!["/".to_owned()];
        for (i, part) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            let mut next = Vec::new();
            for path in paths {
                if !part.contains(['*', '?', '[']) {
                    next.push(join(&path, &part.replace('\\', "")));
                    continue;
                }
                let Some((dir, Kind::Dir)) = self.resolve(&path, true) else {
                    continue;
                };
                let Some(listing) = self.listing(&dir) else {
                    continue;
                };
                for name in listing.keys() {
                    if !fnmatch(part.as_bytes(), name.as_bytes()) {
                        continue;
                    }
                    let candidate = join(&path, name);
                    if last || matches!(self.resolve(&candidate, true), Some((_, Kind::Dir))) {
                        next.push(candidate);
                    }
                }
            }
            paths = next;
        }
        let mut paths: Vec<String> = paths
            .into_iter()
            .filter(|p| p != "/" && self.resolve(p, false).is_some())
            .collect();
        paths.sort();
        paths.dedup();
        paths
    }

    fn add_dir(&mut self, path: &str) {
        self.add_dir_1(path);
    }

    /// `add_dir_1`: "path" or "path=libc6"; trailing blanks and slashes go.
    fn add_dir_1(&mut self, line: &str) {
        let (path, dir_flag) = match line.split_once('=') {
            Some((path, kind)) => (
                path,
                match kind {
                    "libc4" => flag::LIBC4,
                    "libc5" => flag::ELF_LIBC5,
                    "libc6" | "glibc2" => flag::ELF_LIBC6,
                    _ => flag::ANY, // "is not a known library type"
                },
            ),
            None => (line, flag::ANY),
        };
        let path = path.trim_end_matches(|c: char| c.is_ascii() && is_space(c as u8));
        let path = path.trim_end_matches('/');
        if path.is_empty() {
            return;
        }
        // `stat`: anything that exists, even a file, takes a place in the list.
        let Some((id, _)) = self.resolve(path, true) else {
            return;
        };
        let dir = Dir {
            path: path.to_owned(),
            flag: dir_flag,
            id: id.clone(),
            hwcaps: None,
        };
        if self.add_single_dir(dir) {
            self.add_glibc_hwcaps(path, &id);
        }
    }

    /// Appends unless the directory is already listed; then its flag is updated.
    fn add_single_dir(&mut self, dir: Dir) -> bool {
        match self.dirs.iter_mut().find(|d| d.id == dir.id) {
            Some(known) => {
                known.flag = dir.flag;
                false
            }
            None => {
                self.dirs.push(dir);
                true
            }
        }
    }

    fn add_glibc_hwcaps(&mut self, path: &str, id: &str) {
        let Some(listing) = self.listing(&join(id, "glibc-hwcaps")) else {
            return;
        };
        for (name, kind) in listing.iter() {
            if name.starts_with('.') || *kind == Kind::File || name.contains(':') {
                continue;
            }
            let Some((sub_id, Kind::Dir)) =
                self.resolve(&join(&join(id, "glibc-hwcaps"), name), true)
            else {
                continue;
            };
            // The name is in the string table once seen, used or not.
            self.found.hwcaps_names.insert(name.as_bytes().to_vec());
            let flag = self
                .dirs
                .iter()
                .find(|d| d.id == id)
                .map_or(flag::ANY, |d| d.flag);
            self.add_single_dir(Dir {
                path: format!("{path}/glibc-hwcaps/{name}"),
                flag,
                id: sub_id,
                hwcaps: Some(name.clone()),
            });
        }
    }

    fn search_dir(&mut self, index: usize) -> Result<(), LdconfigError> {
        let (path, id, dir_flag, hwcaps) = {
            let d = &self.dirs[index];
            (d.path.clone(), d.id.clone(), d.flag, d.hwcaps.clone())
        };
        let hwcap = match hwcaps {
            None => self.arch.path_hwcap(&path),
            Some(_) => 0,
        };
        let Some(listing) = self.listing(&id) else {
            return Ok(());
        };
        let mut dlibs: Vec<Dlib> = Vec::new();
        // readdir's order is the file system's; sorted names keep the rare
        // ties it decides (equal sonames by `_dl_cache_libcmp`) reproducible.
        for (name, kind) in listing.iter() {
            if !is_dso(name)
                && (*kind == Kind::File || hwcaps.is_some() || !self.arch.is_hwcap_platform(name))
            {
                continue;
            }
            if name.ends_with(".#prelink#") || has_prelink_temp_suffix(name) {
                continue;
            }
            let is_link = matches!(kind, Kind::Symlink(_));
            let (real, target) = match kind {
                Kind::Symlink(_) => match self.resolve(&join(&id, name), true) {
                    Some(found) => found,
                    None => continue, // dangling
                },
                k => (join(&id, name), k.clone()),
            };
            if hwcaps.is_none() && target == Kind::Dir && self.arch.is_hwcap_platform(name) {
                self.add_single_dir(Dir {
                    path: join(&path, name),
                    flag: dir_flag,
                    id: real,
                    hwcaps: None,
                });
                continue;
            }
            if target != Kind::File {
                // A directory, or a link to one: ldconfig cannot map it.
                continue;
            }
            let Some(file) = self.tree.open(&real) else {
                continue;
            };
            let read_error = |source| LdconfigError::Read {
                path: real.clone(),
                source,
            };
            let file = file.map_err(read_error)?;
            let lib = process_file(self.arch, file, name).map_err(read_error)?;
            let Some(lib) = lib else { continue };
            let soname = lib.soname.unwrap_or_else(|| name.as_bytes().to_vec());

            // A link keeps its own name only if it is named for the soname,
            // or is the "libfoo.so" link for ld(1); else it is as a file.
            let is_link = is_link
                && (name.as_bytes() == soname
                    || (name.ends_with(".so") && soname.starts_with(name.as_bytes())));
            let soname = if is_link {
                name.as_bytes().to_vec()
            } else {
                soname
            };
            let mut lib_flag = lib.flag;
            if lib_flag == flag::ELF && matches!(dir_flag, flag::ELF_LIBC5 | flag::ELF_LIBC6) {
                lib_flag = dir_flag;
            }

            match dlibs.iter_mut().find(|d| d.soname == soname) {
                Some(d) => {
                    // Prefer a file to a link, else the newer name.
                    let newer = (!is_link && d.is_link)
                        || (is_link == d.is_link
                            && libcmp(d.name.as_bytes(), name.as_bytes(), self.arch.signed_char)
                                < 0);
                    if newer {
                        if d.flag != lib_flag {
                            let libc = |f| f == flag::ELF_LIBC5 || f == flag::ELF_LIBC6;
                            if (d.flag == flag::ELF && libc(lib_flag))
                                || (libc(d.flag) && lib_flag == flag::ELF)
                            {
                                d.flag = lib_flag;
                            }
                            // Otherwise "have same soname but different type".
                        }
                        d.name = name.clone();
                        d.is_link = is_link;
                        d.isa_level = lib.isa_level;
                    }
                }
                None => dlibs.push(Dlib {
                    name: name.clone(),
                    soname,
                    flag: lib_flag,
                    is_link,
                    isa_level: lib.isa_level,
                }),
            }
        }

        // ldconfig's list grows at its head.
        for d in dlibs.into_iter().rev() {
            // The soname, which the links ldconfig makes point to, except in
            // glibc-hwcaps subdirectories, where it makes none.
            let file = match hwcaps {
                None => d.soname.clone(),
                Some(_) => d.name.clone().into_bytes(),
            };
            let mut full = path.clone().into_bytes();
            full.push(b'/');
            full.extend_from_slice(&file);
            self.found.entries.push(Entry {
                lib: d.soname,
                path: full,
                flags: d.flag,
                isa_level: d.isa_level,
                hwcap,
                hwcaps: hwcaps.clone().map(String::into_bytes),
            });
        }
        Ok(())
    }
}

/// prelink's temporary files, "….#prelink#.XXXXXX".
fn has_prelink_temp_suffix(name: &str) -> bool {
    let n = name.as_bytes();
    n.len() >= ".#prelink#.XXXXXX".len() && n[n.len() - 17..n.len() - 6] == *b".#prelink#."
}

/// `fnmatch` with `FNM_PERIOD`, as `glob` uses it for one path component.
pub(crate) fn fnmatch(pattern: &[u8], name: &[u8]) -> bool {
    if name.first() == Some(&b'.') && pattern.first() != Some(&b'.') {
        return false;
    }
    matches(pattern, name)
}

fn matches(p: &[u8], n: &[u8]) -> bool {
    match p.split_first() {
        None => n.is_empty(),
        Some((b'*', rest)) => (0..=n.len()).any(|i| matches(rest, &n[i..])),
        Some((b'?', rest)) => !n.is_empty() && matches(rest, &n[1..]),
        Some((b'[', rest)) => match (n.split_first(), bracket(rest)) {
            (Some((c, n_rest)), Some((set, p_rest))) => set(*c) && matches(p_rest, n_rest),
            // An unclosed '[' is an ordinary character.
            (Some((c, n_rest)), None) => *c == b'[' && matches(rest, n_rest),
            (None, _) => false,
        },
        Some((b'\\', rest)) if !rest.is_empty() => {
            n.first() == Some(&rest[0]) && matches(&rest[1..], &n[1..])
        }
        Some((c, rest)) => n.first() == Some(c) && matches(rest, &n[1..]),
    }
}

type Set<'p> = Box<dyn Fn(u8) -> bool + 'p>;

/// A bracket expression after its '[': what it matches, and the pattern after ']'.
fn bracket(p: &[u8]) -> Option<(Set<'_>, &[u8])> {
    let (negate, body) = match p.first() {
        Some(b'!' | b'^') => (true, &p[1..]),
        _ => (false, p),
    };
    // A ']' first is a member, not the end.
    let close = body.iter().skip(1).position(|b| *b == b']')? + 1;
    let (set, rest) = (&body[..close], &body[close + 1..]);
    Some((
        Box::new(move |c| {
            let mut i = 0;
            let mut hit = false;
            while i < set.len() {
                if i + 2 < set.len() && set[i + 1] == b'-' {
                    hit |= set[i] <= c && c <= set[i + 2];
                    i += 3;
                } else {
                    hit |= set[i] == c;
                    i += 1;
                }
            }
            hit != negate
        }),
        rest,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dso_names() {
        for yes in [
            "libc.so.6",
            "libfoo.so",
            "ld-linux-x86-64.so.2",
            "ld.so.1",
            "ld64.so.2",
        ] {
            assert!(is_dso(yes), "{yes}");
        }
        for no in ["libfoo.a", "foo.so.1", "ld.so", "lib", "ld-2.36"] {
            assert!(!is_dso(no), "{no}");
        }
    }

    #[test]
    fn glob_components() {
        assert!(fnmatch(b"*.conf", b"libc.conf"));
        assert!(!fnmatch(b"*.conf", b".hidden.conf"));
        assert!(fnmatch(b".*.conf", b".hidden.conf"));
        assert!(fnmatch(b"x86_64-*.conf", b"x86_64-linux-gnu.conf"));
        assert!(fnmatch(b"[a-c]?.conf", b"b1.conf"));
        assert!(!fnmatch(b"[!a-c]?.conf", b"b1.conf"));
        assert!(!fnmatch(b"*.conf", b"libc.conf~"));
    }

    #[test]
    fn prelink_temporaries() {
        assert!(has_prelink_temp_suffix("libfoo.so.1.#prelink#.a1B2c3"));
        assert!(!has_prelink_temp_suffix("libfoo.so.1"));
    }
}
