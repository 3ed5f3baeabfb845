//! The filesystem as seen from a layer: everything below it (base layers,
//! then strata's own layers), by path, without any file content.
//!
//! It answers the questions assembly has: does this directory exist already,
//! and where does a path really lead once the lower symlinks (merged-/usr's
//! `bin -> usr/bin`) are followed.

use std::collections::BTreeMap;

use crate::entry::{Entry, Kind, LayerPlan};
use crate::path::ImagePath;

/// What a layer entry's name says about the layers below it: the OCI
/// whiteout rules, read here and nowhere else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whiteout<'a> {
    /// `.wh..wh..opq`: the folder stays, everything lower layers put in it
    /// is hidden.
    Opaque,
    /// `.wh.NAME`: `NAME` and everything below it are deleted.
    Remove(&'a str),
    /// Another `.wh..wh.` name: aufs bookkeeping, which runtimes skip.
    Internal,
}

impl Whiteout<'_> {
    /// The whiteout an entry named `name` (its last path component) is, if
    /// any; such an entry is never itself a file of the image.
    pub fn of(name: &str) -> Option<Whiteout<'_>> {
        let hidden = name.strip_prefix(".wh.")?;
        Some(match hidden {
            ".wh..opq" => Whiteout::Opaque,
            _ if hidden.starts_with(".wh.") => Whiteout::Internal,
            _ => Whiteout::Remove(hidden),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ViewKind {
    Dir,
    File,
    Symlink(String),
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewEntry {
    pub kind: ViewKind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

#[derive(Debug, Clone, Default)]
pub struct View {
    entries: BTreeMap<ImagePath, ViewEntry>,
}

/// A view as recorded earlier (`View::paths`), taken as it is: the entries
/// were consistent when they were written out.
impl FromIterator<(ImagePath, ViewEntry)> for View {
    fn from_iter<I: IntoIterator<Item = (ImagePath, ViewEntry)>>(entries: I) -> View {
        View {
            entries: entries.into_iter().collect(),
        }
    }
}

/// Enough hops for any sane chain of links; more means a loop.
const MAX_LINK_HOPS: usize = 40;

impl View {
    pub fn get(&self, path: &ImagePath) -> Option<&ViewEntry> {
        self.entries.get(path)
    }

    pub fn insert(&mut self, path: ImagePath, entry: ViewEntry) {
        // A non-directory replaces a whole subtree, as extraction would.
        if entry.kind != ViewKind::Dir {
            self.remove_below(&path);
        }
        self.entries.insert(path, entry);
    }

    pub fn has_children(&self, dir: &ImagePath) -> bool {
        self.entries
            .range(dir.clone()..)
            .find(|(p, _)| *p != dir)
            .is_some_and(|(p, _)| p.starts_with(dir))
    }

    /// Applies a whiteout: `path` and everything below it disappear.
    pub fn remove(&mut self, path: &ImagePath) {
        self.entries.remove(path);
        self.remove_below(path);
    }

    /// Applies an opaque whiteout: the directory stays, its children go.
    pub fn remove_below(&mut self, dir: &ImagePath) {
        let below: Vec<ImagePath> = self.paths_below(dir).map(|(p, _)| p.clone()).collect();
        for p in below {
            self.entries.remove(&p);
        }
    }

    pub fn apply(&mut self, layer: &LayerPlan) {
        for entry in &layer.entries {
            let parent = entry.path.parent().unwrap_or_else(ImagePath::root);
            match Whiteout::of(entry.path.file_name()) {
                Some(Whiteout::Opaque) => self.remove_below(&parent),
                Some(Whiteout::Remove(name)) => self.remove(&parent.join(name)),
                Some(Whiteout::Internal) => {}
                None => self.insert(entry.path.clone(), ViewEntry::of(entry)),
            }
        }
    }

    /// Everything below `dir` (not `dir` itself), in path order.
    pub fn paths_below<'a, 'd>(
        &'a self,
        dir: &'d ImagePath,
    ) -> impl Iterator<Item = (&'a ImagePath, &'a ViewEntry)> + use<'a, 'd> {
        crate::path::below(&self.entries, dir)
    }

    pub fn paths(&self) -> impl Iterator<Item = (&ImagePath, &ViewEntry)> {
        self.entries.iter()
    }

    /// Follows every symlink of `path`, its last component too: where the
    /// path leads. `None` when it leads nowhere (a dangling link, a loop).
    pub fn resolve(&self, path: &ImagePath) -> Option<ImagePath> {
        let mut current = path.clone();
        for _ in 0..MAX_LINK_HOPS {
            let resolved = self.resolve_parent(&current)?;
            if resolved.is_root() {
                return Some(resolved);
            }
            match &self.entries.get(&resolved)?.kind {
                ViewKind::Symlink(target) => {
                    let parent = resolved.parent().unwrap_or_else(ImagePath::root);
                    current = lexical_join(&parent, target);
                }
                _ => return Some(resolved),
            }
        }
        None
    }

    /// Follows lower symlinks in the directory part of `path` (never its last
    /// component), so that an entry for `/bin/sh` lands at `/usr/bin/sh` when
    /// the base has `bin -> usr/bin`. `None` means a symlink loop.
    pub fn resolve_parent(&self, path: &ImagePath) -> Option<ImagePath> {
        let mut pending: Vec<String> = path.components().rev().map(str::to_owned).collect();
        let mut current = ImagePath::root();
        let mut hops = 0;
        while let Some(component) = pending.pop() {
            let next = current.join(&component);
            if pending.is_empty() {
                return Some(next);
            }
            match self.entries.get(&next).map(|e| &e.kind) {
                Some(ViewKind::Symlink(target)) => {
                    hops += 1;
                    if hops > MAX_LINK_HOPS {
                        return None;
                    }
                    let base = if target.starts_with('/') {
                        ImagePath::root()
                    } else {
                        current.clone()
                    };
                    current = ImagePath::root();
                    for part in lexical_join(&base, target).components().rev() {
                        pending.push(part.to_owned());
                    }
                    // The target's own components are re-resolved from the root.
                }
                _ => current = next,
            }
        }
        Some(current)
    }
}

impl ViewEntry {
    pub fn of(entry: &Entry) -> ViewEntry {
        ViewEntry {
            kind: match &entry.kind {
                Kind::Dir => ViewKind::Dir,
                Kind::File(_) | Kind::Hardlink(_) => ViewKind::File,
                Kind::Symlink(t) => ViewKind::Symlink(t.clone()),
            },
            mode: entry.mode,
            uid: entry.uid,
            gid: entry.gid,
        }
    }
}

/// `base/target` with `.` and `..` resolved lexically, never above the root.
pub fn lexical_join(base: &ImagePath, target: &str) -> ImagePath {
    let mut parts: Vec<&str> = if target.starts_with('/') {
        Vec::new()
    } else {
        base.components().collect()
    };
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    ImagePath::from_relative(&parts.join("/")).unwrap_or_else(|_| ImagePath::root())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> ImagePath {
        ImagePath::parse(s).unwrap()
    }

    fn view(links: &[(&str, &str)]) -> View {
        let mut v = View::default();
        for (path, target) in links {
            v.insert(
                p(path),
                ViewEntry {
                    kind: ViewKind::Symlink((*target).into()),
                    mode: 0o777,
                    uid: 0,
                    gid: 0,
                },
            );
        }
        v
    }

    #[test]
    fn follows_merged_usr_links() {
        let v = view(&[
            ("/bin", "usr/bin"),
            ("/lib64", "/usr/lib64"),
            ("/a", "b"),
            ("/b", "a"),
        ]);
        assert_eq!(v.resolve_parent(&p("/bin/sh")), Some(p("/usr/bin/sh")));
        assert_eq!(
            v.resolve_parent(&p("/lib64/ld.so")),
            Some(p("/usr/lib64/ld.so"))
        );
        assert_eq!(v.resolve_parent(&p("/bin")), Some(p("/bin")));
        assert_eq!(v.resolve_parent(&p("/a/x")), None);
    }

    #[test]
    fn resolve_follows_the_last_link_too() {
        let mut v = view(&[
            ("/bin", "usr/bin"),
            ("/usr/bin/awk", "/etc/alternatives/awk"),
            ("/etc/alternatives/awk", "/usr/bin/mawk"),
            ("/a", "b"),
            ("/b", "a"),
        ]);
        v.insert(
            p("/usr/bin/mawk"),
            ViewEntry {
                kind: ViewKind::File,
                mode: 0o755,
                uid: 0,
                gid: 0,
            },
        );
        assert_eq!(v.resolve(&p("/bin/awk")), Some(p("/usr/bin/mawk")));
        assert_eq!(v.resolve(&p("/")), Some(ImagePath::root()));
        assert_eq!(v.resolve(&p("/a")), None);
        assert_eq!(v.resolve(&p("/nowhere")), None);
    }

    #[test]
    fn whiteout_names() {
        assert_eq!(Whiteout::of(".wh..wh..opq"), Some(Whiteout::Opaque));
        assert_eq!(Whiteout::of(".wh.app"), Some(Whiteout::Remove("app")));
        assert_eq!(Whiteout::of(".wh..wh.plnk"), Some(Whiteout::Internal));
        assert_eq!(Whiteout::of(".whatever"), None);
        assert_eq!(Whiteout::of("app"), None);
    }

    #[test]
    fn whiteouts_remove_subtrees() {
        let mut v = view(&[("/d/x", "y"), ("/d/z", "y"), ("/e", "y")]);
        v.remove_below(&p("/d"));
        assert!(v.get(&p("/d/x")).is_none());
        assert!(v.get(&p("/e")).is_some());
    }
}
