//! Core metadata (1.0 to 2.4): a wheel's `METADATA`, or the `.metadata`
//! file an index serves beside it (PEP 658), read for what resolution
//! needs: name, version, `Requires-Dist`, `Requires-Python` and extras.
//! The format is email headers; the body after them is the description.

use std::str::FromStr;

use uv_normalize::{ExtraName, InvalidNameError, PackageName};
use uv_pep440::{Version, VersionParseError, VersionSpecifiers, VersionSpecifiersParseError};
use uv_pep508::{Pep508Error, Requirement};

/// The most bytes `parse` accepts. `METADATA` carries the project's whole
/// long description: the largest real ones are a few MiB (READMEs with
/// inlined images), so this keeps every real file while bounding what a
/// hostile index or wheel makes strata hold and scan.
pub const MAX_METADATA_BYTES: usize = 16 << 20;

/// The newest `Metadata-Version` major this reader knows: the spec says a
/// tool must refuse a newer major, whose fields may mean something else.
const METADATA_MAJOR: u32 = 2;

/// What a distribution says about itself, as far as resolution cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreMetadata {
    pub name: PackageName,
    pub version: Version,
    pub requires_dist: Vec<Requirement>,
    pub requires_python: Option<VersionSpecifiers>,
    pub provides_extra: Vec<ExtraName>,
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum MetadataError {
    #[error("the core metadata is {size} bytes, more than the {MAX_METADATA_BYTES} allowed")]
    #[diagnostic(help(
        "no real METADATA is this large: the index or wheel is broken or hostile; use another"
    ))]
    TooLarge { size: usize },
    #[error("line {line} of the core metadata is not UTF-8")]
    #[diagnostic(help(
        "core metadata must be UTF-8: pin another version of the project, or report it upstream"
    ))]
    Utf8 {
        line: usize,
        #[source]
        source: std::str::Utf8Error,
    },
    #[error("the core metadata has no `{0}` field")]
    #[diagnostic(help(
        "every distribution must declare it: pin another version of the project, or report it \
         upstream"
    ))]
    Missing(&'static str),
    #[error(
        "line {line} of the core metadata: `Metadata-Version: {value}` is not a version strata reads (1.0 to 2.x)"
    )]
    #[diagnostic(help(
        "a newer metadata major version may change what fields mean: use a strata that knows it, \
         or pin a version of the project built with older tools"
    ))]
    MetadataVersion { line: usize, value: String },
    #[error("line {line} of the core metadata: `Name: {value}` is not a valid project name")]
    #[diagnostic(help("pin another version of the project, or report it upstream"))]
    Name {
        line: usize,
        value: String,
        #[source]
        source: InvalidNameError,
    },
    #[error("line {line} of the core metadata: `Version: {value}` is not a PEP 440 version")]
    #[diagnostic(help("pin another version of the project, or report it upstream"))]
    Version {
        line: usize,
        value: String,
        #[source]
        source: VersionParseError,
    },
    #[error("line {line} of the core metadata: `Requires-Python: {value}` does not parse")]
    #[diagnostic(help("pin another version of the project, or report it upstream"))]
    RequiresPython {
        line: usize,
        value: String,
        #[source]
        source: VersionSpecifiersParseError,
    },
    #[error(
        "line {line} of the core metadata: `Requires-Dist: {value}` is not a PEP 508 requirement"
    )]
    #[diagnostic(help(
        "without its dependencies the project cannot be resolved: pin another version of it, \
         or report it upstream"
    ))]
    RequiresDist {
        line: usize,
        value: String,
        #[source]
        source: Box<Pep508Error>,
    },
}

/// One header, unfolded, with the line it starts on (1-based).
struct Header<'a> {
    name: &'a str,
    value: String,
    line: usize,
}

/// Parses core metadata. Only the headers are decoded: the description
/// after them is never read, so its encoding does not matter.
pub fn parse(bytes: &[u8]) -> Result<CoreMetadata, MetadataError> {
    if bytes.len() > MAX_METADATA_BYTES {
        return Err(MetadataError::TooLarge { size: bytes.len() });
    }
    let headers = headers(bytes)?;
    let first = |name: &str| headers.iter().find(|h| h.name.eq_ignore_ascii_case(name));
    let all = |name: &'static str| {
        headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
    };

    if let Some(h) = first("Metadata-Version") {
        let value = h.value.trim();
        let major = value.split('.').next().and_then(|m| m.parse::<u32>().ok());
        if !major.is_some_and(|major| (1..=METADATA_MAJOR).contains(&major)) {
            return Err(MetadataError::MetadataVersion {
                line: h.line,
                value: value.to_owned(),
            });
        }
    }
    let h = first("Name").ok_or(MetadataError::Missing("Name"))?;
    let name = PackageName::from_str(h.value.trim()).map_err(|source| MetadataError::Name {
        line: h.line,
        value: h.value.trim().to_owned(),
        source,
    })?;
    let h = first("Version").ok_or(MetadataError::Missing("Version"))?;
    let version = Version::from_str(h.value.trim()).map_err(|source| MetadataError::Version {
        line: h.line,
        value: h.value.trim().to_owned(),
        source,
    })?;
    let requires_python = first("Requires-Python")
        .map(|h| {
            VersionSpecifiers::from_str(h.value.trim()).map_err(|source| {
                MetadataError::RequiresPython {
                    line: h.line,
                    value: h.value.trim().to_owned(),
                    source,
                }
            })
        })
        .transpose()?;
    let requires_dist = all("Requires-Dist")
        .map(|h| {
            Requirement::from_str(h.value.trim()).map_err(|source| MetadataError::RequiresDist {
                line: h.line,
                value: h.value.trim().to_owned(),
                source: Box::new(source),
            })
        })
        .collect::<Result<_, _>>()?;
    // An extra that is not a valid name is dropped, as uv drops it: what a
    // dependency needs is selected by `extra == "..."` markers, and this
    // list only tells a user which extras exist.
    let provides_extra = all("Provides-Extra")
        .filter_map(|h| ExtraName::from_str(h.value.trim()).ok())
        .collect();
    Ok(CoreMetadata {
        name,
        version,
        requires_dist,
        requires_python,
        provides_extra,
    })
}

/// The headers, as Python's email parser (which pip reads `METADATA` with)
/// sees them: they end at the first empty line, or at the first line that
/// is neither a header nor a continuation; a line starting with a space or
/// tab continues the previous header.
fn headers(bytes: &[u8]) -> Result<Vec<Header<'_>>, MetadataError> {
    let mut out: Vec<Header> = Vec::new();
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        let line = std::str::from_utf8(line).map_err(|source| MetadataError::Utf8 {
            line: i + 1,
            source,
        })?;
        if line.starts_with([' ', '\t']) {
            // Unfolding removes only the line break (RFC 5322 2.2.3); a
            // continuation before any header has nothing to continue, and
            // Python drops it too.
            if let Some(last) = out.last_mut() {
                last.value.push_str(line);
            }
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            break;
        };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
            break;
        }
        out.push(Header {
            name,
            value: value.to_owned(),
            line: i + 1,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> MetadataError {
        parse(text.as_bytes()).unwrap_err()
    }

    /// pandas 2.2.3's `METADATA`, trimmed: the long `License` and the
    /// description are cut short, every other header kept.
    #[test]
    fn parses_pandas() {
        let meta = parse(include_bytes!("testdata/pandas-2.2.3.METADATA")).unwrap();
        assert_eq!(meta.name.as_str(), "pandas");
        assert_eq!(meta.version, Version::from_str("2.2.3").unwrap());
        assert_eq!(
            meta.requires_python,
            Some(VersionSpecifiers::from_str(">=3.9").unwrap())
        );
        assert_eq!(meta.requires_dist.len(), 85);
        assert_eq!(
            meta.requires_dist[1],
            Requirement::from_str(r#"numpy>=1.23.2; python_version == "3.11""#).unwrap()
        );
        let sqlalchemy = &meta.requires_dist[29];
        assert_eq!(sqlalchemy.name.as_str(), "sqlalchemy");
        assert_eq!(
            sqlalchemy.marker.try_to_string().as_deref(),
            Some("extra == 'postgresql'")
        );
        let extras: Vec<&str> = meta.provides_extra.iter().map(ExtraName::as_str).collect();
        assert_eq!(extras.len(), 23);
        assert_eq!(extras[..3], ["test", "pyarrow", "performance"]);
        assert_eq!(extras.last(), Some(&"all"));
    }

    #[test]
    fn joins_continuation_lines_and_ignores_case() {
        let meta = parse(
            b"metadata-version: 2.4\r\nNAME: Foo_Bar\r\nversion:1.0\r\n\
              License: MIT\r\n    and more\r\n\t\r\n\
              requires-dist: requests>=2;\r\n  python_version >= '3.8'\r\n\
              Requires-Dist: idna\r\n\r\nRequires-Dist: not-a-header\r\n",
        )
        .unwrap();
        assert_eq!(meta.name.as_str(), "foo-bar");
        assert_eq!(meta.version, Version::from_str("1.0").unwrap());
        assert_eq!(
            meta.requires_dist,
            [
                Requirement::from_str("requests>=2; python_version >= '3.8'").unwrap(),
                Requirement::from_str("idna").unwrap(),
            ]
        );
    }

    #[test]
    fn headers_end_at_a_line_that_is_not_one() {
        let meta =
            parse(b"Name: a\nVersion: 1\nthis is the description\nRequires-Dist: b\n").unwrap();
        assert!(meta.requires_dist.is_empty());
    }

    #[test]
    fn the_body_is_never_decoded() {
        let meta = parse(b"Name: a\nVersion: 1\n\ncaf\xe9\n").unwrap();
        assert_eq!(meta.name.as_str(), "a");
    }

    #[test]
    fn invalid_utf8_in_the_headers_is_an_error() {
        let err = parse(b"Name: a\nVersion: 1\nSummary: caf\xe9\n").unwrap_err();
        assert!(
            matches!(err, MetadataError::Utf8 { line: 3, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn name_and_version_are_required() {
        assert!(matches!(
            error("Metadata-Version: 2.1\nName: a\n"),
            MetadataError::Missing("Version")
        ));
        assert!(matches!(
            error("Version: 1.0\n\nName: a\n"),
            MetadataError::Missing("Name")
        ));
        assert!(matches!(
            error("Name: a\nVersion: one\n"),
            MetadataError::Version { line: 2, value, .. } if value == "one"
        ));
        assert!(matches!(
            error("Name: -a\nVersion: 1\n"),
            MetadataError::Name { line: 1, value, .. } if value == "-a"
        ));
    }

    #[test]
    fn a_bad_requirement_is_an_error_naming_it() {
        let err = error("Name: a\nVersion: 1\nRequires-Dist: b\nRequires-Dist: c >>= 1\n");
        assert!(
            matches!(&err, MetadataError::RequiresDist { line: 4, value, .. } if value == "c >>= 1"),
            "{err:?}"
        );
        assert!(
            err.to_string().contains("`Requires-Dist: c >>= 1`"),
            "{err}"
        );
        assert!(std::error::Error::source(&err).is_some());
        assert!(miette::Diagnostic::help(&err).is_some());
    }

    #[test]
    fn a_bad_requires_python_is_an_error() {
        assert!(matches!(
            error("Name: a\nVersion: 1\nRequires-Python: >=3.6,\n"),
            MetadataError::RequiresPython { line: 3, value, .. } if value == ">=3.6,"
        ));
    }

    #[test]
    fn invalid_extras_are_dropped() {
        let meta =
            parse(b"Name: a\nVersion: 1\nProvides-Extra: ok\nProvides-Extra: not ok\n").unwrap();
        let extras: Vec<&str> = meta.provides_extra.iter().map(ExtraName::as_str).collect();
        assert_eq!(extras, ["ok"]);
    }

    #[test]
    fn refuses_a_newer_metadata_major() {
        assert!(parse(b"Metadata-Version: 1.0\nName: a\nVersion: 1\n").is_ok());
        for version in ["3.0", "x"] {
            let err = error(&format!(
                "Metadata-Version: {version}\nName: a\nVersion: 1\n"
            ));
            assert!(
                matches!(&err, MetadataError::MetadataVersion { line: 1, value } if value == version),
                "{err:?}"
            );
        }
    }

    #[test]
    fn caps_the_input() {
        let mut big = b"Name: a\nVersion: 1\n\n".to_vec();
        big.resize(MAX_METADATA_BYTES, b'x');
        assert!(parse(&big).is_ok());
        big.push(b'x');
        let err = parse(&big).unwrap_err();
        assert!(matches!(err, MetadataError::TooLarge { size } if size == MAX_METADATA_BYTES + 1));
        assert!(err.to_string().contains("16777216 allowed"), "{err}");
    }
}
