//! `Packages` indexes: what a repository offers for one architecture.

use std::io::{self, BufRead};
use std::sync::Arc;

use crate::control::for_each_paragraph;
use crate::version::Version;
use strata_oci::digest::Digest;

/// A package as an index lists it. Relationship fields stay unparsed until
/// the solver looks at the package: most of the ~60,000 never are.
#[derive(Debug, Clone)]
pub struct Package {
    pub name: String,
    pub version: Version,
    pub architecture: String,
    pub multi_arch: Option<String>,
    pub essential: bool,
    pub priority: Priority,
    pub depends: Option<String>,
    pub pre_depends: Option<String>,
    pub provides: Option<String>,
    pub conflicts: Option<String>,
    pub breaks: Option<String>,
    pub filename: String,
    pub size: u64,
    pub sha256: Digest,
    /// Which repository offers it (an index into the resolver's list).
    pub repository: usize,
    /// The source package name, when it differs from the binary's.
    pub source: Option<String>,
}

/// A package's `Priority`, most important first: apt prefers the more
/// important of several packages that provide the same virtual name (`mawk`,
/// required, over `gawk`, optional, for `awk`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    Required,
    Important,
    Standard,
    Optional,
    /// `extra` (deprecated), a missing field or an unknown value.
    Other,
}

impl Priority {
    fn parse(text: Option<&str>) -> Priority {
        match text {
            Some("required") => Priority::Required,
            Some("important") => Priority::Important,
            Some("standard") => Priority::Standard,
            Some("optional") => Priority::Optional,
            _ => Priority::Other,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("a paragraph of the index has no valid `Package` (`{0}`)")]
    Name(String),
    #[error("package `{package}` in the index has no valid `{field}`")]
    Field {
        package: String,
        field: &'static str,
    },
}

/// Reads an index, keeping packages whose architecture is `arch` or `all`.
pub fn parse(reader: impl BufRead, arch: &str, repository: usize) -> io::Result<Vec<Arc<Package>>> {
    let mut out = Vec::new();
    for_each_paragraph(reader, |p| {
        let name = p.get("Package").unwrap_or_default();
        let invalid = |field| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                IndexError::Field {
                    package: name.to_owned(),
                    field,
                },
            )
        };
        if !crate::valid_package_name(name) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                IndexError::Name(name.to_owned()),
            ));
        }
        let architecture = p
            .get("Architecture")
            .ok_or_else(|| invalid("Architecture"))?;
        if architecture != arch && architecture != "all" {
            return Ok(());
        }
        let version = p
            .get("Version")
            .and_then(|v| Version::parse(v).ok())
            .ok_or_else(|| invalid("Version"))?;
        let owned = |field: &str| p.get(field).map(str::to_owned);
        out.push(Arc::new(Package {
            name: name.to_owned(),
            version,
            architecture: architecture.to_owned(),
            multi_arch: owned("Multi-Arch"),
            essential: p.get("Essential") == Some("yes"),
            priority: Priority::parse(p.get("Priority")),
            depends: owned("Depends"),
            pre_depends: owned("Pre-Depends"),
            provides: owned("Provides"),
            conflicts: owned("Conflicts"),
            breaks: owned("Breaks"),
            filename: p
                .get("Filename")
                .ok_or_else(|| invalid("Filename"))?
                .to_owned(),
            size: p
                .get("Size")
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| invalid("Size"))?,
            sha256: p
                .get("SHA256")
                .and_then(super::parse_hex_digest)
                .ok_or_else(|| invalid("SHA256"))?,
            repository,
            source: p
                .get("Source")
                .map(|s| s.split_whitespace().next().unwrap_or(s).to_owned()),
        }));
        Ok(())
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn keeps_the_architecture_and_all() {
        let text = "Package: aa\nVersion: 1.0-1\nArchitecture: amd64\nDepends: b (>= 2)\nFilename: pool/a.deb\nSize: 10\nSHA256: 0000000000000000000000000000000000000000000000000000000000000000\n\nPackage: bb\nVersion: 2\nArchitecture: arm64\nFilename: pool/b.deb\nSize: 1\nSHA256: 0000000000000000000000000000000000000000000000000000000000000000\n\nPackage: cc\nVersion: 3\nArchitecture: all\nEssential: yes\nSource: cc (3)\nFilename: pool/c.deb\nSize: 1\nSHA256: 0000000000000000000000000000000000000000000000000000000000000000\n";
        let packages = super::parse(text.as_bytes(), "amd64", 0).unwrap();
        let names: Vec<&str> = packages.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["aa", "cc"]);
        assert_eq!(packages[0].depends.as_deref(), Some("b (>= 2)"));
        assert!(packages[1].essential);
        assert_eq!(packages[1].source.as_deref(), Some("cc"));
    }

    #[test]
    fn a_paragraph_without_a_valid_name_is_an_error() {
        let rest = "Version: 1\nArchitecture: all\nFilename: x\nSize: 1\nSHA256: 0000000000000000000000000000000000000000000000000000000000000000\n";
        for paragraph in [
            rest.to_owned(),
            format!("Package: ../../etc/passwd\n{rest}"),
        ] {
            let err = super::parse(paragraph.as_bytes(), "amd64", 0).unwrap_err();
            assert!(err.to_string().contains("no valid `Package`"), "{err}");
        }
    }

    #[test]
    fn a_broken_hash_is_an_error() {
        let text =
            "Package: aa\nVersion: 1\nArchitecture: all\nFilename: x\nSize: 1\nSHA256: xyz\n";
        let err = super::parse(text.as_bytes(), "amd64", 0).unwrap_err();
        assert!(
            err.to_string()
                .contains("package `aa` in the index has no valid `SHA256`"),
            "{err}"
        );
    }
}
