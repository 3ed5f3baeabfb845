//! Which layer each Debian package goes in.
//!
//! Packages built from one Debian source package change together (a
//! security update of glibc brings new `libc6`, `libc-bin` and
//! `libc-dev-bin`), so they share a layer. The heaviest sources get a layer
//! each; the rest share an overflow layer; what configuring the packages
//! writes (the dpkg status, `ld.so.cache`, alternatives, accounts) goes on
//! top. Upgrading one package then changes its source's layer and the small
//! configuration layer, not the whole package set. The grouping reads only
//! the lock (names, pool paths, sizes), so it is the same on every machine
//! and is known before anything is downloaded. See `spec/layers.md`.

use std::collections::BTreeMap;

use strata_debian::locked::LockedPackage;

/// Layers the Debian packages take when the recipe does not say: enough
/// for the heavy sources of a scientific stack (the interpreter, BLAS,
/// LLVM, the compiler runtime, the numeric libraries) to change alone,
/// few enough that a pull stays a handful of requests and that base,
/// Python and recipe layers keep far below the ~127 layers overlay-based
/// runtimes accept.
pub const DEFAULT_LAYERS: u32 = 10;

/// The most layers the packages may take: past this, every pull pays a
/// request per layer for changes too small to matter.
pub const MAX_LAYERS: u32 = 100;

/// One layer's packages, as indexes into the list given to [`layers`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// `packages-SOURCE` for a source's own layer, `packages` for the
    /// overflow layer.
    pub name: String,
    pub members: Vec<usize>,
}

/// The source package a package was built from. Debian's archive keeps
/// every binary package in its source's folder (`pool/COMPONENT/PREFIX/
/// SOURCE/FILE.deb`), and the lock records that path; a repository laid
/// out otherwise groups each package alone.
pub fn source(package: &LockedPackage) -> &str {
    let parts: Vec<&str> = package.path.split('/').collect();
    match parts.as_slice() {
        ["pool", _, _, source, _] if !source.is_empty() => source,
        _ => &package.name,
    }
}

/// Splits `packages` into at most `budget - 1` groups, leaving one layer of
/// the budget for the configuration. With a budget of 1 (or 2) every
/// package is in one group. Heaviest sources first (by the `.deb` sizes
/// the lock records, then by name), the overflow group last.
pub fn layers(packages: &[&LockedPackage], budget: u32) -> Vec<Group> {
    let mut by_source: BTreeMap<&str, (u64, Vec<usize>)> = BTreeMap::new();
    for (index, package) in packages.iter().enumerate() {
        let group = by_source.entry(source(package)).or_default();
        group.0 += package.size;
        group.1.push(index);
    }
    let mut sources: Vec<(&str, u64, Vec<usize>)> = by_source
        .into_iter()
        .map(|(source, (size, members))| (source, size, members))
        .collect();
    sources.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));

    let groups = budget.saturating_sub(1).max(1) as usize;
    // Every source its own layer when they fit; else the heaviest
    // `groups - 1` alone and the rest together.
    let own = if sources.len() <= groups {
        sources.len()
    } else {
        groups - 1
    };
    let mut out: Vec<Group> = sources
        .iter()
        .take(own)
        .map(|(source, _, members)| Group {
            name: format!("packages-{source}"),
            members: members.clone(),
        })
        .collect();
    let mut overflow: Vec<usize> = sources
        .iter()
        .skip(own)
        .flat_map(|(_, _, members)| members.iter().copied())
        .collect();
    if !overflow.is_empty() {
        overflow.sort_unstable();
        out.push(Group {
            name: "packages".to_owned(),
            members: overflow,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_oci::digest::Digest;

    fn package(name: &str, source: &str, size: u64) -> LockedPackage {
        LockedPackage {
            name: name.to_owned(),
            version: "1".to_owned(),
            architecture: "amd64".to_owned(),
            repository: "http://deb.debian.org/debian".to_owned(),
            path: format!("pool/main/{}/{source}/{name}_1_amd64.deb", &source[..1]),
            size,
            sha256: Digest::of(name.as_bytes()),
        }
    }

    fn names(groups: &[Group], packages: &[LockedPackage]) -> Vec<(String, Vec<String>)> {
        groups
            .iter()
            .map(|g| {
                (
                    g.name.clone(),
                    g.members
                        .iter()
                        .map(|&i| packages[i].name.clone())
                        .collect(),
                )
            })
            .collect()
    }

    #[test]
    fn heaviest_sources_alone_the_rest_together() {
        let packages = vec![
            package("libc6", "glibc", 3_000),
            package("libc-bin", "glibc", 600),
            package("python3.11", "python3.11", 5_000),
            package("zlib1g", "zlib", 90),
            package("tzdata", "tzdata", 250),
        ];
        let refs: Vec<&LockedPackage> = packages.iter().collect();
        assert_eq!(
            names(&layers(&refs, 4), &packages),
            vec![
                (
                    "packages-python3.11".to_owned(),
                    vec!["python3.11".to_owned()]
                ),
                (
                    "packages-glibc".to_owned(),
                    vec!["libc6".to_owned(), "libc-bin".to_owned()]
                ),
                (
                    "packages".to_owned(),
                    vec!["zlib1g".to_owned(), "tzdata".to_owned()]
                ),
            ]
        );
        // Room for every source: no overflow layer.
        assert_eq!(layers(&refs, 10).len(), 4);
        // One or two layers: one group.
        for budget in [1, 2] {
            let one = layers(&refs, budget);
            assert_eq!(one.len(), 1);
            assert_eq!(one[0].members, vec![0, 1, 2, 3, 4]);
        }
    }

    #[test]
    fn a_package_outside_a_pool_is_its_own_source() {
        let mut p = package("tool", "tool", 1);
        p.path = "tool_1_amd64.deb".to_owned();
        assert_eq!(source(&p), "tool");
        assert_eq!(source(&package("libc6", "glibc", 1)), "glibc");
    }
}
