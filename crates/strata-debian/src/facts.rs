//! What an installed package says about itself beyond its control stanza:
//! its licences (from `/usr/share/doc/PKG/copyright`, for the SBOM).

use std::fs::File;
use std::io::{self, Read, Seek};

use crate::Unpacked;
use crate::deb::DataKind;
use crate::locked::LockedPackage;

/// Facts about one installed package.
#[derive(Debug, Clone)]
pub struct PackageFacts {
    pub locked: LockedPackage,
    /// The `License:` short names of a machine-readable (DEP-5) copyright
    /// file, in order of first appearance; empty when it has none.
    pub licenses: Vec<String>,
}

/// Copyright files over this size are not read: the licence list is near the
/// top of any real one, and a huge file is not worth holding in memory.
const MAX_COPYRIGHT: u64 = 4 << 20;

pub fn facts(package: &Unpacked) -> io::Result<PackageFacts> {
    let copyright = format!("usr/share/doc/{}/copyright", package.locked.name);
    let licenses = match package
        .entries
        .iter()
        .find(|e| e.path == copyright && matches!(e.kind, DataKind::File))
    {
        Some(entry) if entry.size <= MAX_COPYRIGHT => {
            let mut file = File::open(&package.data_tar)?;
            file.seek(io::SeekFrom::Start(entry.offset))?;
            let mut bytes = Vec::new();
            file.take(entry.size).read_to_end(&mut bytes)?;
            copyright_licenses(&String::from_utf8_lossy(&bytes))
        }
        _ => Vec::new(),
    };
    Ok(PackageFacts {
        locked: package.locked.clone(),
        licenses,
    })
}

/// The licence names of a DEP-5 copyright file: each `License:` field's first
/// line, split at `or`/`and` as Debian writes alternatives (`GPL-2+ or
/// Artistic`). A free-form copyright file has no such fields.
pub fn copyright_licenses(text: &str) -> Vec<String> {
    if !text.starts_with("Format:") {
        return Vec::new();
    }
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        let Some(value) = line.strip_prefix("License:") else {
            continue;
        };
        // `GPL-2+ with Autoconf exception`: the exception is not a licence.
        let value = value.split(" with ").next().unwrap_or(value);
        for name in value
            .split([' ', ','])
            .filter(|w| !w.is_empty() && *w != "or" && *w != "and")
        {
            let name = name.trim_matches(|c| c == '(' || c == ')');
            if !name.is_empty() && !out.iter().any(|n| n == name) {
                out.push(name.to_owned());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dep5_licences_split_alternatives() {
        let text = "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\nLicense: GPL-2+ or Artistic\n\nFiles: debian/*\nLicense: GPL-2+\nLicense: BSD-3-clause\n";
        assert_eq!(
            copyright_licenses(text),
            ["GPL-2+", "Artistic", "BSD-3-clause"]
        );
        assert!(copyright_licenses("This package was debianized by …\nLicense: GPL\n").is_empty());
    }
}
