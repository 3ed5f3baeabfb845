//! Debian copyright licence names → SPDX licence identifiers.
//!
//! DEP-5 files use Debian's own short names (`GPL-2+`, `BSD-3-clause`,
//! `Expat`); SBOM consumers expect SPDX ids. Names without an SPDX
//! equivalent become `LicenseRef-…`, which SPDX documents must then define.

/// Debian short name (lowercase) → SPDX id, for the names common in Debian 12.
const TABLE: &[(&str, &str)] = &[
    ("apache-2", "Apache-2.0"),
    ("apache-2.0", "Apache-2.0"),
    ("artistic", "Artistic-1.0-Perl"),
    ("artistic-2.0", "Artistic-2.0"),
    ("bsd-2-clause", "BSD-2-Clause"),
    ("bsd-3-clause", "BSD-3-Clause"),
    ("bsd-4-clause", "BSD-4-Clause"),
    ("bsl-1.0", "BSL-1.0"),
    ("cc0-1.0", "CC0-1.0"),
    ("expat", "MIT"),
    ("mit", "MIT"),
    ("gfdl-1.2+", "GFDL-1.2-or-later"),
    ("gfdl-1.3+", "GFDL-1.3-or-later"),
    ("gpl-1+", "GPL-1.0-or-later"),
    ("gpl-2", "GPL-2.0-only"),
    ("gpl-2+", "GPL-2.0-or-later"),
    ("gpl-2.0", "GPL-2.0-only"),
    ("gpl-2.0+", "GPL-2.0-or-later"),
    ("gpl-3", "GPL-3.0-only"),
    ("gpl-3+", "GPL-3.0-or-later"),
    ("gpl-3.0", "GPL-3.0-only"),
    ("gpl-3.0+", "GPL-3.0-or-later"),
    ("isc", "ISC"),
    ("lgpl-2", "LGPL-2.0-only"),
    ("lgpl-2+", "LGPL-2.0-or-later"),
    ("lgpl-2.1", "LGPL-2.1-only"),
    ("lgpl-2.1+", "LGPL-2.1-or-later"),
    ("lgpl-3", "LGPL-3.0-only"),
    ("lgpl-3+", "LGPL-3.0-or-later"),
    ("mpl-1.1", "MPL-1.1"),
    ("ms-pl", "MS-PL"),
    ("sleepycat", "Sleepycat"),
    ("tcl", "TCL"),
    ("mpl-2.0", "MPL-2.0"),
    ("openssl", "OpenSSL"),
    ("psf-2", "PSF-2.0"),
    ("python", "Python-2.0"),
    ("public-domain", "LicenseRef-public-domain"),
    ("zlib", "Zlib"),
    ("x11", "X11"),
];

/// The SPDX id for a Debian licence name: a known id, or `LicenseRef-NAME`
/// with the characters SPDX does not allow in a reference replaced by `-`.
pub fn spdx_id(debian: &str) -> String {
    let lower = debian.to_ascii_lowercase();
    if let Some((_, id)) = TABLE.iter().find(|(name, _)| *name == lower) {
        return (*id).to_owned();
    }
    format!("LicenseRef-{}", id_chars(debian))
}

/// `text` with every character SPDX identifiers do not allow (anything but
/// ASCII letters, digits, `.` and `-`) replaced by `-`.
pub fn id_chars(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_names_map_to_spdx() {
        assert_eq!(spdx_id("GPL-2+"), "GPL-2.0-or-later");
        assert_eq!(spdx_id("Expat"), "MIT");
        assert_eq!(spdx_id("BSD-3-clause"), "BSD-3-Clause");
        assert_eq!(spdx_id("Unicode-DFS-2016"), "LicenseRef-Unicode-DFS-2016");
        assert_eq!(spdx_id("public domain"), "LicenseRef-public-domain");
    }
}
