//! An image's final filesystem: its layers applied in order with OCI
//! whiteouts, as a runtime unpacks them, kept as metadata and content hashes
//! (never file contents), plus the packages its dpkg database lists.

use std::collections::BTreeMap;
use std::io::{self, BufReader, Read};

use oci_spec::image::{Descriptor, ImageManifest};
use serde::{Serialize, Serializer};
use tar::EntryType;

use super::{DiffError, What};
use strata_debian::control::for_each_paragraph;
use strata_oci::compression::Compression;
use strata_oci::digest::Digest;
use strata_oci::layout::{HashingReader, Layout, descriptor_digest};
use strata_oci::view::Whiteout;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Hardlink,
    Other,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Node {
    pub kind: Kind,
    /// A symlink's target text, or the path a hard link points at.
    pub target: Option<String>,
    #[serde(serialize_with = "octal")]
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub size: u64,
    pub sha256: Option<Digest>,
    pub mtime: u64,
    /// The layer that wrote it: an opaque whiteout hides only lower layers.
    #[serde(skip)]
    layer: usize,
}

fn octal<S: Serializer>(mode: &u32, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("{mode:04o}"))
}

impl Node {
    pub fn differences(&self, other: &Node) -> Vec<What> {
        let checks = [
            (What::Kind, self.kind != other.kind),
            (What::Target, self.target != other.target),
            (What::Content, self.sha256 != other.sha256),
            (What::Size, self.size != other.size),
            (What::Mode, self.mode != other.mode),
            (What::Owner, (self.uid, self.gid) != (other.uid, other.gid)),
            (What::Mtime, self.mtime != other.mtime),
        ];
        checks
            .into_iter()
            .filter(|(_, d)| *d)
            .map(|(w, _)| w)
            .collect()
    }
}

struct Package {
    name: String,
    architecture: String,
    version: String,
}

#[derive(Default)]
pub struct Tree {
    /// Absolute, normalised paths (`/`, `/usr/bin/env`).
    pub entries: BTreeMap<String, Node>,
    /// The packages of each dpkg database file, by path, as last written.
    dpkg: BTreeMap<String, Vec<Package>>,
}

pub fn read(layout: &Layout, manifest: &ImageManifest) -> Result<Tree, DiffError> {
    let mut tree = Tree::default();
    for (index, desc) in manifest.layers().iter().enumerate() {
        apply_layer(layout, desc, index, &mut tree)?;
    }
    Ok(tree)
}

fn apply_layer(
    layout: &Layout,
    desc: &Descriptor,
    index: usize,
    tree: &mut Tree,
) -> Result<(), DiffError> {
    let digest = descriptor_digest(desc).map_err(|m| layout.invalid("manifest", m))?;
    let file = layout.open_blob(&digest, Some(desc.size()))?;
    let error = |source: io::Error| DiffError::Layer {
        layout: layout.root().to_owned(),
        digest,
        source,
    };
    let mut reader = HashingReader::new(BufReader::new(file));
    {
        let media_type = desc.media_type().to_string();
        let mut archive = strata_oci::tarball::Archive::new(
            Compression::of_media_type(&media_type)
                .decoder(&mut reader)
                .map_err(error)?,
        );
        for entry in archive.entries().map_err(error)? {
            tree.apply(entry.map_err(error)?, index).map_err(error)?;
        }
    }
    // Nothing read from a layer is trusted until the whole blob matches.
    let (actual, _) = reader.finish().map_err(error)?;
    layout.check_digest(&digest, actual)?;
    Ok(())
}

impl Tree {
    fn apply<R: Read>(&mut self, mut entry: tar::Entry<R>, layer: usize) -> io::Result<()> {
        let path = normalise(&entry.path_bytes());
        let (parent, name) = split(&path);
        match Whiteout::of(name) {
            Some(Whiteout::Opaque) => {
                self.remove_below(parent, |node| node.layer < layer);
                return Ok(());
            }
            Some(Whiteout::Remove(hidden)) => {
                let hidden = join(parent, hidden);
                self.remove_below(&hidden, |_| true);
                self.entries.remove(&hidden);
                return Ok(());
            }
            Some(Whiteout::Internal) => return Ok(()),
            None => {}
        }
        let header = entry.header();
        let kind = match header.entry_type() {
            EntryType::Regular | EntryType::Continuous => Kind::File,
            EntryType::Directory => Kind::Dir,
            EntryType::Symlink => Kind::Symlink,
            EntryType::Link => Kind::Hardlink,
            EntryType::XGlobalHeader
            | EntryType::XHeader
            | EntryType::GNULongName
            | EntryType::GNULongLink => return Ok(()),
            _ => Kind::Other,
        };
        let (mode, uid, gid, mtime) = (
            header.mode()?,
            header.uid()?,
            header.gid()?,
            header.mtime()?,
        );
        let target = entry.link_name_bytes().map(|t| match kind {
            Kind::Hardlink => normalise(&t),
            _ => String::from_utf8_lossy(&t).into_owned(),
        });
        let size = if kind == Kind::File { entry.size() } else { 0 };
        let sha256 = match kind {
            Kind::File if is_dpkg_database(&path) => Some(self.read_dpkg(&path, &mut entry)?),
            Kind::File => Some(Digest::of_reader(&mut entry)?.0),
            _ => None,
        };
        if kind != Kind::Dir {
            // A file or link over a directory replaces the whole subtree.
            self.remove_below(&path, |_| true);
        }
        self.entries.insert(
            path,
            Node {
                kind,
                target,
                mode,
                uid,
                gid,
                size,
                sha256,
                mtime,
                layer,
            },
        );
        Ok(())
    }

    fn remove_below(&mut self, dir: &str, hidden: impl Fn(&Node) -> bool) {
        let prefix = if dir == "/" {
            "/".to_owned()
        } else {
            format!("{dir}/")
        };
        let doomed: Vec<String> = self
            .entries
            .range(prefix.clone()..)
            .take_while(|(p, _)| p.starts_with(&prefix))
            .filter(|(p, node)| *p != dir && hidden(node))
            .map(|(p, _)| p.clone())
            .collect();
        for path in doomed {
            self.entries.remove(&path);
        }
    }

    /// The database is small and needed whole: read it, then hash and parse.
    fn read_dpkg(&mut self, path: &str, entry: &mut impl Read) -> io::Result<Digest> {
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes)?;
        let packages = parse_packages(&bytes)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("`{path}`: {e}")))?;
        self.dpkg.insert(path.to_owned(), packages);
        Ok(Digest::of(&bytes))
    }

    /// Installed packages (name → version) of the dpkg database files still
    /// present at the end. Names carry `:ARCH` unless the package is
    /// `all` or of the image's own architecture, as dpkg prints them.
    pub fn packages(&self, native: Option<&str>) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for (path, packages) in &self.dpkg {
            if self.entries.get(path).is_none_or(|n| n.kind != Kind::File) {
                continue;
            }
            for p in packages {
                let arch = p.architecture.as_str();
                let name = if arch.is_empty() || arch == "all" || Some(arch) == native {
                    p.name.clone()
                } else {
                    format!("{}:{arch}", p.name)
                };
                out.insert(name, p.version.clone());
            }
        }
        out
    }
}

fn is_dpkg_database(path: &str) -> bool {
    path == "/var/lib/dpkg/status"
        || path
            .strip_prefix("/var/lib/dpkg/status.d/")
            .is_some_and(|name| !name.contains('/') && !name.ends_with(".md5sums"))
}

fn parse_packages(bytes: &[u8]) -> io::Result<Vec<Package>> {
    let mut packages = Vec::new();
    for_each_paragraph(bytes, |p| {
        // `deinstall ok config-files` and half-installed packages are not there.
        let installed = p
            .get("Status")
            .is_none_or(|s| s.split_whitespace().nth(2) == Some("installed"));
        if let (true, Some(name), Some(version)) = (installed, p.get("Package"), p.get("Version")) {
            packages.push(Package {
                name: name.to_owned(),
                architecture: p.get("Architecture").unwrap_or_default().to_owned(),
                version: version.to_owned(),
            });
        }
        Ok(())
    })?;
    Ok(packages)
}

/// `./usr//bin/` → `/usr/bin`; `..` cannot climb above `/`.
fn normalise(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let mut parts: Vec<&str> = Vec::new();
    for part in text.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            _ => parts.push(part),
        }
    }
    format!("/{}", parts.join("/"))
}

fn split(path: &str) -> (&str, &str) {
    match path.rsplit_once('/') {
        Some(("", name)) => ("/", name),
        Some((parent, name)) => (parent, name),
        None => ("/", path),
    }
}

fn join(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tar of `(path, kind, content)`; `kind` is `f`, `d` or `l` (symlink to content).
    fn layer(entries: &[(&str, char, &str)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, kind, content) in entries {
            let mut header = tar::Header::new_ustar();
            header.set_mode(0o644);
            header.set_uid(0);
            header.set_gid(0);
            header.set_mtime(0);
            let data: &[u8] = match kind {
                'd' => {
                    header.set_entry_type(EntryType::Directory);
                    b""
                }
                'l' => {
                    header.set_entry_type(EntryType::Symlink);
                    header.set_link_name(content).unwrap();
                    b""
                }
                _ => content.as_bytes(),
            };
            header.set_size(data.len() as u64);
            builder.append_data(&mut header, path, data).unwrap();
        }
        builder.into_inner().unwrap()
    }

    fn apply(layers: &[Vec<u8>]) -> Tree {
        let mut tree = Tree::default();
        for (index, bytes) in layers.iter().enumerate() {
            let mut archive = tar::Archive::new(&bytes[..]);
            for entry in archive.entries().unwrap() {
                tree.apply(entry.unwrap(), index).unwrap();
            }
        }
        tree
    }

    fn paths(tree: &Tree) -> Vec<&str> {
        tree.entries.keys().map(String::as_str).collect()
    }

    #[test]
    fn whiteouts_remove_a_path_and_everything_below() {
        let tree = apply(&[
            layer(&[
                ("a/", 'd', ""),
                ("a/b/", 'd', ""),
                ("a/b/c", 'f', "x"),
                ("ab", 'f', "y"),
            ]),
            layer(&[("a/.wh.b", 'f', "")]),
        ]);
        assert_eq!(paths(&tree), ["/a", "/ab"]);
    }

    #[test]
    fn an_opaque_dir_keeps_only_its_own_layer() {
        let tree = apply(&[
            layer(&[("d/", 'd', ""), ("d/old", 'f', "1"), ("e", 'f', "2")]),
            layer(&[
                ("d/", 'd', ""),
                ("d/new", 'f', "3"),
                ("d/.wh..wh..opq", 'f', ""),
            ]),
        ]);
        assert_eq!(paths(&tree), ["/d", "/d/new", "/e"]);
    }

    #[test]
    fn a_file_over_a_directory_replaces_its_subtree() {
        let tree = apply(&[
            layer(&[("x/", 'd', ""), ("x/y", 'f', "1")]),
            layer(&[("x", 'l', "elsewhere")]),
        ]);
        assert_eq!(paths(&tree), ["/x"]);
        assert_eq!(tree.entries["/x"].target.as_deref(), Some("elsewhere"));
    }

    #[test]
    fn content_changes_are_detected_by_hash() {
        let old = apply(&[layer(&[("f", 'f', "abc")])]);
        let new = apply(&[layer(&[("f", 'f', "abd")])]);
        assert_eq!(
            old.entries["/f"].differences(&new.entries["/f"]),
            [What::Content]
        );
    }

    #[test]
    fn dpkg_packages_from_status_and_status_d() {
        let status = "Package: a\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1\n\n\
                      Package: gone\nStatus: deinstall ok config-files\nVersion: 2\n\n\
                      Package: b\nStatus: install ok installed\nArchitecture: i386\nVersion: 3\n";
        let tree = apply(&[
            layer(&[
                ("var/lib/dpkg/status", 'f', status),
                (
                    "var/lib/dpkg/status.d/c",
                    'f',
                    "Package: c\nArchitecture: all\nVersion: 4\n",
                ),
                ("var/lib/dpkg/status.d/c.md5sums", 'f', "not deb822"),
                ("var/lib/dpkg/status.d/d", 'f', "Package: d\nVersion: 5\n"),
            ]),
            layer(&[("var/lib/dpkg/status.d/.wh.d", 'f', "")]),
        ]);
        let packages: Vec<_> = tree
            .packages(Some("amd64"))
            .into_iter()
            .map(|(n, v)| format!("{n} {v}"))
            .collect();
        assert_eq!(packages, ["a 1", "b:i386 3", "c 4"]);
    }

    #[test]
    fn paths_normalise() {
        assert_eq!(normalise(b"./usr//bin/"), "/usr/bin");
        assert_eq!(normalise(b"./"), "/");
        assert_eq!(normalise(b"../../etc"), "/etc");
        assert_eq!(split("/a"), ("/", "a"));
        assert_eq!(split("/a/b"), ("/a", "b"));
    }
}
