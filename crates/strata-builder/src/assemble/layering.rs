//! Which layer each Debian package goes in.
//!
//! Packages built from one Debian source package change together (a
//! security update of glibc brings new `libc6`, `libc-bin` and
//! `libc-dev-bin`), so they share a layer. The heaviest sources get a layer
//! each; the others are spread over shared layers by a hash of the source's
//! name, so a source stays in the same shared layer whatever else the lock
//! holds; what configuring the packages writes (the dpkg status,
//! `ld.so.cache`, alternatives, accounts) goes on top. Upgrading one package
//! then changes the layer of its source and the small configuration layer,
//! not the whole package set. The grouping reads only the lock (names, pool
//! paths, sizes), so it is the same on every machine and is known before
//! anything is downloaded. See `spec/layers.md`.

use std::collections::BTreeMap;

use sha2::{Digest as _, Sha256};
use strata_debian::locked::LockedPackage;

/// Layers the Debian packages take when the recipe does not say. Measured
/// on a scientific stack (pandas, SciPy, Matplotlib, scikit-learn: 240
/// packages from 154 sources, a long tail): with 20, ten sources get a
/// layer each and no shared layer holds more than 7 % of the image, so one
/// upgrade re-pushes a small part of it; with 10 the shared layers hold up
/// to 20 %. Twenty layers is still a handful of requests per pull and far
/// below the ~127 layers overlay-based runtimes accept.
pub const DEFAULT_LAYERS: u32 = 20;

/// The most layers the packages may take: past this, every pull pays a
/// request per layer for changes too small to matter.
pub const MAX_LAYERS: u32 = 100;

/// One layer's packages, as indexes into the list given to [`layers`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// `packages-SOURCE` for a source's own layer, `packages-shared-N` for
    /// a shared one, `packages` when there is one layer for all.
    pub name: String,
    pub members: Vec<usize>,
}

/// The source package a package was built from. Debian's archives keep
/// every binary package in its source's folder (`pool/COMPONENT/PREFIX/
/// SOURCE/FILE.deb`, `pool/updates/…` on the security archive), and the
/// lock records that path; a repository laid out otherwise groups each
/// package alone.
pub fn source(package: &LockedPackage) -> &str {
    let parts: Vec<&str> = package.path.split('/').collect();
    match parts.as_slice() {
        ["pool", .., source, _] if parts.len() >= 4 && !source.is_empty() => source,
        _ => &package.name,
    }
}

/// Splits `packages` into at most `budget - 1` groups, leaving one layer of
/// the budget for the configuration; with a budget of 1 or 2, one group.
/// When the sources do not each fit in a layer, about half the groups are
/// the heaviest sources (by the `.deb` sizes the lock records), the other
/// half shared. Own layers come first, heaviest first, then the shared ones.
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

    let groups = budget.saturating_sub(1) as usize;
    if groups <= 1 {
        return vec![Group {
            name: "packages".to_owned(),
            members: (0..packages.len()).collect(),
        }];
    }
    let (own, shared) = if sources.len() <= groups {
        (sources.len(), 0)
    } else {
        (groups - groups / 2, groups / 2)
    };
    let mut out: Vec<Group> = sources
        .iter()
        .take(own)
        .map(|(source, _, members)| Group {
            name: format!("packages-{source}"),
            members: members.clone(),
        })
        .collect();
    let mut buckets: Vec<Vec<usize>> = vec![Vec::new(); shared];
    for (source, _, members) in sources.iter().skip(own) {
        buckets[bucket(source, shared)].extend(members);
    }
    for (number, mut members) in buckets.into_iter().enumerate() {
        if members.is_empty() {
            continue;
        }
        members.sort_unstable();
        out.push(Group {
            name: format!("packages-shared-{}", number + 1),
            members,
        });
    }
    out
}

/// The shared layer a source goes in: a hash of its name alone, so that
/// neither upgrades nor other packages move it.
fn bucket(source: &str, buckets: usize) -> usize {
    let hash = Sha256::digest(source.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash[..8]);
    (u64::from_be_bytes(first) % buckets as u64) as usize
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
    fn heaviest_sources_alone_the_rest_shared() {
        let packages = vec![
            package("libc6", "glibc", 3_000),
            package("libc-bin", "glibc", 600),
            package("python3.11", "python3.11", 5_000),
            package("zlib1g", "zlib", 90),
            package("tzdata", "tzdata", 250),
        ];
        let refs: Vec<&LockedPackage> = packages.iter().collect();
        // Three groups: two sources alone, one shared layer for the rest.
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
                    "packages-shared-1".to_owned(),
                    vec!["zlib1g".to_owned(), "tzdata".to_owned()]
                ),
            ]
        );
        // Room for every source: a layer each.
        assert_eq!(layers(&refs, 10).len(), 4);
        // One or two layers: one group.
        for budget in [1, 2] {
            let one = layers(&refs, budget);
            assert_eq!(one.len(), 1);
            assert_eq!(one[0].members, vec![0, 1, 2, 3, 4]);
        }
    }

    #[test]
    fn a_source_keeps_its_shared_layer_whatever_else_changes() {
        let tail: Vec<LockedPackage> = (0..40)
            .map(|i| package(&format!("p{i}"), &format!("s{i}"), 10 + i))
            .collect();
        let shared_of = |packages: &[LockedPackage], name: &str| {
            let refs: Vec<&LockedPackage> = packages.iter().collect();
            layers(&refs, 8)
                .into_iter()
                .find(|g| g.members.iter().any(|&i| packages[i].name == name))
                .map(|g| g.name)
        };
        let before = shared_of(&tail, "p3");
        assert!(
            before
                .as_deref()
                .is_some_and(|n| n.starts_with("packages-shared-"))
        );
        // Another source grows and a new one arrives: p3 stays where it was.
        let mut after = tail.clone();
        after[20].size = 5;
        after.push(package("new", "new", 1));
        assert_eq!(shared_of(&after, "p3"), before);
    }

    #[test]
    fn a_package_outside_a_pool_is_its_own_source() {
        let mut p = package("tool", "tool", 1);
        p.path = "tool_1_amd64.deb".to_owned();
        assert_eq!(source(&p), "tool");
        assert_eq!(source(&package("libc6", "glibc", 1)), "glibc");
        p.path =
            "pool/updates/main/p/python3.11/libpython3.11_3.11.2-6+deb12u6_amd64.deb".to_owned();
        assert_eq!(source(&p), "python3.11");
    }
}
