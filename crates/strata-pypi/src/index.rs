//! A project's page in a simple repository, as the PEP 691 JSON API serves
//! it: the files, their sha256, `Requires-Python`, yanked state (PEP 592),
//! size (PEP 700) and whether their core metadata can be fetched on its own
//! (PEP 658/714), with the API version checked (PEP 629).

use std::collections::BTreeMap;
use std::str::FromStr;

use serde::Deserialize;
use strata_oci::digest::{Digest, ParseDigestError};
use url::Url;
use uv_normalize::{InvalidNameError, PackageName};
use uv_pep440::{VersionSpecifiers, VersionSpecifiersParseError};

/// The media type to ask for; an index that cannot serve it answers with
/// HTML, which `parse_project` refuses as not JSON.
pub const ACCEPT: &str = "application/vnd.pypi.simple.v1+json";

/// The one major API version this parser knows (PEP 629: a new major
/// version may change what the fields mean).
const API_MAJOR: u32 = 1;

/// `{index}/{normalized name}/`, the URL of a project's page.
pub fn project_url(index: &str, name: &PackageName) -> String {
    format!("{}/{name}/", index.trim_end_matches('/'))
}

/// What an index offers for one project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectPage {
    pub name: PackageName,
    pub files: Vec<DistFile>,
    /// Files left out because their `requires-python` does not parse, as
    /// uv leaves them out: no interpreter could be checked against them.
    /// Kept so the caller can say why a file is missing.
    pub skipped: Vec<SkippedFile>,
}

/// A file a project's page lists: a wheel, an sdist or an older format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistFile {
    pub filename: String,
    /// Absolute: a relative URL is resolved against the page's URL.
    pub url: String,
    /// From `hashes.sha256`; other algorithms are ignored.
    pub sha256: Option<Digest>,
    pub requires_python: Option<VersionSpecifiers>,
    /// `Some(reason)` when yanked; the reason may be empty.
    pub yanked: Option<String>,
    pub size: Option<u64>,
    pub core_metadata: CoreMetadataRef,
}

/// Whether the file's core metadata is served at [`DistFile::metadata_url`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoreMetadataRef {
    Absent,
    Present { sha256: Option<Digest> },
}

/// A file left out of a [`ProjectPage`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedFile {
    pub filename: String,
    pub error: VersionSpecifiersParseError,
}

impl DistFile {
    /// The file's URL with `.metadata` appended to its path (PEP 658). The
    /// query and fragment stay where they are: `url` came out of the `url`
    /// crate, so a `?` or `#` in it can only start one of them.
    pub fn metadata_url(&self) -> String {
        let end = self.url.find(['?', '#']).unwrap_or(self.url.len());
        format!("{}.metadata{}", &self.url[..end], &self.url[end..])
    }
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum IndexError {
    #[error("the page `{page_url}` is not a PEP 691 JSON project page")]
    #[diagnostic(help(
        "the index must serve `{ACCEPT}` (PyPI, devpi, Artifactory and pypiserver do): check \
         that the index URL names the simple API, such as `https://pypi.org/simple`"
    ))]
    Json {
        page_url: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("the page `{page_url}` speaks simple API version `{version}`, not 1.x")]
    #[diagnostic(help(
        "this index speaks a newer simple API than strata reads: use a strata that knows it, \
         or another index"
    ))]
    ApiVersion { page_url: String, version: String },
    #[error("the page URL `{page_url}` is not a valid URL")]
    #[diagnostic(help("write the index as an absolute `https://` URL"))]
    PageUrl {
        page_url: String,
        #[source]
        source: url::ParseError,
    },
    #[error("the page `{page_url}` names the project `{name}`, which is not a valid name")]
    #[diagnostic(help("the index is broken: tell its operator, or use another index"))]
    ProjectName {
        page_url: String,
        name: String,
        #[source]
        source: InvalidNameError,
    },
    #[error("file `{filename}` on the page `{page_url}` has an invalid URL `{url}`")]
    #[diagnostic(help("the index is broken: tell its operator, or use another index"))]
    FileUrl {
        page_url: String,
        filename: String,
        url: String,
        #[source]
        source: url::ParseError,
    },
    #[error("file `{filename}` on the page `{page_url}` is served from `{url}`, not over HTTP(S)")]
    #[diagnostic(help(
        "strata downloads only over http and https: use an index whose files are served so"
    ))]
    FileScheme {
        page_url: String,
        filename: String,
        url: String,
    },
    #[error(
        "file `{filename}` on the page `{page_url}` has a malformed `{field}`: `{value}` is not \
         64 hex digits"
    )]
    #[diagnostic(help("the index is broken: tell its operator, or use another index"))]
    Sha256 {
        page_url: String,
        filename: String,
        field: &'static str,
        value: String,
        #[source]
        source: ParseDigestError,
    },
}

/// The page as served; fields strata does not use (`upload-time`,
/// `versions`, `project-status`...) are ignored.
#[derive(Deserialize)]
struct RawPage {
    meta: Option<RawMeta>,
    name: String,
    files: Vec<RawFile>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RawMeta {
    api_version: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RawFile {
    filename: String,
    url: String,
    #[serde(default)]
    hashes: BTreeMap<String, String>,
    requires_python: Option<String>,
    yanked: Option<RawYanked>,
    size: Option<u64>,
    core_metadata: Option<RawCoreMetadata>,
    /// The key's name before PEP 714 renamed it.
    dist_info_metadata: Option<RawCoreMetadata>,
    /// What PyPI actually sent before PEP 714: the HTML attribute's name.
    data_dist_info_metadata: Option<RawCoreMetadata>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawYanked {
    Flag(bool),
    Reason(String),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawCoreMetadata {
    Flag(bool),
    Hashes(BTreeMap<String, String>),
}

/// Parses a project page fetched from `page_url` (after redirects, since
/// relative file URLs are resolved against it). The caller caps the bytes
/// it reads.
pub fn parse_project(json: &[u8], page_url: &str) -> Result<ProjectPage, IndexError> {
    let raw: RawPage = serde_json::from_slice(json).map_err(|source| IndexError::Json {
        page_url: page_url.to_owned(),
        source,
    })?;
    // PEP 629: a page without `meta` predates the versioning, so it is 1.0.
    if let Some(version) = raw.meta.and_then(|meta| meta.api_version) {
        let major = version
            .split('.')
            .next()
            .and_then(|m| m.parse::<u32>().ok());
        if major != Some(API_MAJOR) {
            return Err(IndexError::ApiVersion {
                page_url: page_url.to_owned(),
                version,
            });
        }
    }
    let base = Url::parse(page_url).map_err(|source| IndexError::PageUrl {
        page_url: page_url.to_owned(),
        source,
    })?;
    let name = PackageName::from_str(&raw.name).map_err(|source| IndexError::ProjectName {
        page_url: page_url.to_owned(),
        name: raw.name.clone(),
        source,
    })?;
    let mut files = Vec::with_capacity(raw.files.len());
    let mut skipped = Vec::new();
    for file in raw.files {
        match file
            .requires_python
            .as_deref()
            .map(VersionSpecifiers::from_str)
        {
            Some(Err(error)) => skipped.push(SkippedFile {
                filename: file.filename,
                error,
            }),
            Some(Ok(specifiers)) => files.push(dist_file(file, Some(specifiers), &base, page_url)?),
            None => files.push(dist_file(file, None, &base, page_url)?),
        }
    }
    Ok(ProjectPage {
        name,
        files,
        skipped,
    })
}

fn dist_file(
    raw: RawFile,
    requires_python: Option<VersionSpecifiers>,
    base: &Url,
    page_url: &str,
) -> Result<DistFile, IndexError> {
    let mut url = base.join(&raw.url).map_err(|source| IndexError::FileUrl {
        page_url: page_url.to_owned(),
        filename: raw.filename.clone(),
        url: raw.url.clone(),
        source,
    })?;
    // File URLs go into the lock: a login an index writes into them must
    // not, and the user's own credentials for that host are sent instead.
    // Both calls fail only for URLs that cannot have a login.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    if !matches!(url.scheme(), "http" | "https") {
        return Err(IndexError::FileScheme {
            page_url: page_url.to_owned(),
            filename: raw.filename,
            url: url.into(),
        });
    }
    let sha256 = |hashes: &BTreeMap<String, String>, field| {
        hashes
            .get("sha256")
            .map(|value| {
                // Digest wants lowercase; PEP 691 does not say which case.
                format!("sha256:{}", value.to_ascii_lowercase())
                    .parse::<Digest>()
                    .map_err(|source| IndexError::Sha256 {
                        page_url: page_url.to_owned(),
                        filename: raw.filename.clone(),
                        field,
                        value: value.clone(),
                        source,
                    })
            })
            .transpose()
    };
    let core_metadata = match raw
        .core_metadata
        .or(raw.dist_info_metadata)
        .or(raw.data_dist_info_metadata)
    {
        None | Some(RawCoreMetadata::Flag(false)) => CoreMetadataRef::Absent,
        Some(RawCoreMetadata::Flag(true)) => CoreMetadataRef::Present { sha256: None },
        Some(RawCoreMetadata::Hashes(hashes)) => CoreMetadataRef::Present {
            sha256: sha256(&hashes, "core-metadata.sha256")?,
        },
    };
    Ok(DistFile {
        sha256: sha256(&raw.hashes, "hashes.sha256")?,
        url: url.into(),
        requires_python,
        yanked: match raw.yanked {
            None | Some(RawYanked::Flag(false)) => None,
            Some(RawYanked::Flag(true)) => Some(String::new()),
            Some(RawYanked::Reason(reason)) => Some(reason),
        },
        size: raw.size,
        core_metadata,
        filename: raw.filename,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIX_URL: &str = "https://pypi.org/simple/six/";
    const HASH: &str = "4721f391ed90541fddacab5acf947aa0d3dc7d27b2e1e8eda2be8970586c3274";

    fn page(files: &str) -> String {
        format!(r#"{{"meta": {{"api-version": "1.1"}}, "name": "six", "files": [{files}]}}"#)
    }

    fn one(file: &str) -> Result<DistFile, IndexError> {
        let mut page = parse_project(page(file).as_bytes(), SIX_URL)?;
        assert_eq!(page.files.len(), 1);
        Ok(page.files.remove(0))
    }

    #[test]
    fn project_urls_are_normalized() {
        let name = PackageName::from_str("Typing_Extensions").unwrap();
        assert_eq!(
            project_url("https://pypi.org/simple", &name),
            "https://pypi.org/simple/typing-extensions/"
        );
        assert_eq!(
            project_url("https://pypi.org/simple/", &name),
            "https://pypi.org/simple/typing-extensions/"
        );
    }

    /// A trimmed copy of PyPI's answer for six, fields and order as served.
    #[test]
    fn parses_pypi() {
        let page = parse_project(include_bytes!("testdata/simple-six.json"), SIX_URL).unwrap();
        assert_eq!(page.name.as_str(), "six");
        assert!(page.skipped.is_empty());
        let names: Vec<&str> = page.files.iter().map(|f| f.filename.as_str()).collect();
        assert_eq!(
            names,
            [
                "six-1.0b1.tar.gz",
                "six-1.16.0-py2.py3-none-any.whl",
                "six-1.16.0.tar.gz",
                "six-1.17.0-py2.py3-none-any.whl",
                "six-1.17.0.tar.gz"
            ]
        );
        let wheel = &page.files[3];
        assert_eq!(
            wheel.url,
            "https://files.pythonhosted.org/packages/b7/ce/\
             149a00dd41f10bc29e5921b496af8b574d8413afcd5e30dfa0ed46c2cc5e/\
             six-1.17.0-py2.py3-none-any.whl"
        );
        assert_eq!(wheel.sha256.unwrap().hex(), HASH);
        assert_eq!(
            wheel.requires_python,
            Some(VersionSpecifiers::from_str(">=2.7,!=3.0.*,!=3.1.*,!=3.2.*").unwrap())
        );
        assert_eq!(wheel.size, Some(11050));
        assert_eq!(wheel.yanked, None);
        assert_eq!(wheel.core_metadata, CoreMetadataRef::Absent);
        assert_eq!(page.files[0].requires_python, None);
    }

    #[test]
    fn resolves_relative_urls_against_the_page() {
        let file = |url: &str| {
            one(&format!(
                r#"{{"filename": "six-1.0.tar.gz", "url": "{url}", "hashes": {{}}}}"#
            ))
            .unwrap()
            .url
        };
        assert_eq!(
            file("../../packages/six-1.0.tar.gz"),
            "https://pypi.org/packages/six-1.0.tar.gz"
        );
        assert_eq!(
            file("six-1.0.tar.gz"),
            "https://pypi.org/simple/six/six-1.0.tar.gz"
        );
        assert_eq!(
            file("/files/six-1.0.tar.gz#sha256=00"),
            "https://pypi.org/files/six-1.0.tar.gz#sha256=00"
        );
        assert_eq!(
            file("https://mirror.example/six-1.0.tar.gz"),
            "https://mirror.example/six-1.0.tar.gz"
        );
    }

    #[test]
    fn reads_core_metadata_in_every_spelling() {
        let file = |field: &str| {
            one(&format!(
                r#"{{"filename": "six-1.0-py3-none-any.whl", "url": "six.whl", "hashes": {{}} {field}}}"#
            ))
            .unwrap()
            .core_metadata
        };
        let hashed = CoreMetadataRef::Present {
            sha256: Some(format!("sha256:{HASH}").parse().unwrap()),
        };
        let unhashed = CoreMetadataRef::Present { sha256: None };
        assert_eq!(file(""), CoreMetadataRef::Absent);
        assert_eq!(file(r#", "core-metadata": false"#), CoreMetadataRef::Absent);
        assert_eq!(file(r#", "core-metadata": true"#), unhashed);
        assert_eq!(file(r#", "core-metadata": {}"#), unhashed);
        assert_eq!(
            file(&format!(
                r#", "core-metadata": {{"sha256": "{HASH}", "md5": "x"}}"#
            )),
            hashed
        );
        assert_eq!(file(r#", "dist-info-metadata": true"#), unhashed);
        assert_eq!(
            file(&format!(
                r#", "data-dist-info-metadata": {{"sha256": "{HASH}"}}"#
            )),
            hashed
        );
        // PEP 714: the new key wins over the old ones.
        assert_eq!(
            file(r#", "data-dist-info-metadata": true, "core-metadata": false"#),
            CoreMetadataRef::Absent
        );
        assert_eq!(
            file(r#", "data-dist-info-metadata": false, "dist-info-metadata": true"#),
            unhashed
        );
    }

    #[test]
    fn metadata_urls_append_to_the_path() {
        let file = |url: &str| DistFile {
            filename: "six-1.0-py3-none-any.whl".to_owned(),
            url: url.to_owned(),
            sha256: None,
            requires_python: None,
            yanked: None,
            size: None,
            core_metadata: CoreMetadataRef::Present { sha256: None },
        };
        assert_eq!(
            file("https://x.example/six.whl").metadata_url(),
            "https://x.example/six.whl.metadata"
        );
        assert_eq!(
            file("https://x.example/six.whl?token=1#sha256=00").metadata_url(),
            "https://x.example/six.whl.metadata?token=1#sha256=00"
        );
    }

    #[test]
    fn reads_yanked_in_both_forms() {
        let file = |yanked: &str| {
            one(&format!(
                r#"{{"filename": "six-1.0.tar.gz", "url": "six.tar.gz", "hashes": {{}}, "yanked": {yanked}}}"#
            ))
            .unwrap()
            .yanked
        };
        assert_eq!(file("false"), None);
        assert_eq!(file("null"), None);
        assert_eq!(file("true").as_deref(), Some(""));
        assert_eq!(
            file(r#""Reported segfaults with datetime-related functionality""#).as_deref(),
            Some("Reported segfaults with datetime-related functionality")
        );
        assert_eq!(file(r#""""#).as_deref(), Some(""));
    }

    #[test]
    fn hashes_other_than_sha256_are_ignored_and_case_is_folded() {
        let file = |hashes: &str| {
            one(&format!(
                r#"{{"filename": "six-1.0.tar.gz", "url": "six.tar.gz", "hashes": {hashes}}}"#
            ))
        };
        assert_eq!(
            file(r#"{"md5": "abc", "blake2b": "00"}"#).unwrap().sha256,
            None
        );
        let upper = file(&format!(r#"{{"sha256": "{}"}}"#, HASH.to_uppercase())).unwrap();
        assert_eq!(upper.sha256.unwrap().hex(), HASH);
    }

    #[test]
    fn a_malformed_sha256_is_an_error() {
        for (hashes, field) in [
            (r#""hashes": {"sha256": "abc"}"#, "hashes.sha256"),
            (
                r#""hashes": {"sha256": "zz21f391ed90541fddacab5acf947aa0d3dc7d27b2e1e8eda2be8970586c3274"}"#,
                "hashes.sha256",
            ),
            (
                r#""hashes": {}, "core-metadata": {"sha256": ""}"#,
                "core-metadata.sha256",
            ),
        ] {
            let err = one(&format!(
                r#"{{"filename": "six-1.0-py3-none-any.whl", "url": "six.whl", {hashes}}}"#
            ))
            .unwrap_err();
            assert!(
                matches!(&err, IndexError::Sha256 { filename, field: f, .. }
                    if filename == "six-1.0-py3-none-any.whl" && *f == field),
                "{err:?}"
            );
        }
    }

    #[test]
    fn skips_files_whose_requires_python_does_not_parse() {
        let page = parse_project(
            page(
                r#"{"filename": "six-1.0.tar.gz", "url": "a", "hashes": {}, "requires-python": ">=3.6,"},
                   {"filename": "six-1.1.tar.gz", "url": "b", "hashes": {}, "requires-python": ">=3.6"}"#,
            )
            .as_bytes(),
            SIX_URL,
        )
        .unwrap();
        assert_eq!(page.files.len(), 1);
        assert_eq!(page.files[0].filename, "six-1.1.tar.gz");
        assert_eq!(page.skipped.len(), 1);
        assert_eq!(page.skipped[0].filename, "six-1.0.tar.gz");
        assert_eq!(page.skipped[0].error.line(), ">=3.6,");
    }

    #[test]
    fn checks_the_api_version() {
        let with_meta = |meta: &str| {
            parse_project(
                format!(r#"{{{meta} "name": "six", "files": []}}"#).as_bytes(),
                SIX_URL,
            )
        };
        assert!(with_meta(r#""meta": {"api-version": "1.0"},"#).is_ok());
        assert!(with_meta(r#""meta": {"api-version": "1.4"},"#).is_ok());
        assert!(with_meta("").is_ok());
        assert!(with_meta(r#""meta": {"_last-serial": 3},"#).is_ok());
        for version in ["2.0", "0.9", "one"] {
            let err = with_meta(&format!(r#""meta": {{"api-version": "{version}"}},"#));
            assert!(
                matches!(&err, Err(IndexError::ApiVersion { version: v, .. }) if v == version),
                "{err:?}"
            );
        }
    }

    #[test]
    fn rejects_broken_pages() {
        let err = parse_project(b"<!DOCTYPE html><html>", SIX_URL).unwrap_err();
        assert!(matches!(&err, IndexError::Json { page_url, .. } if page_url == SIX_URL));
        let help = miette::Diagnostic::help(&err).unwrap().to_string();
        assert!(help.contains(ACCEPT), "{help}");

        let err = parse_project(br#"{"name": "six"}"#, SIX_URL).unwrap_err();
        assert!(matches!(err, IndexError::Json { .. }));

        let err = parse_project(page("").as_bytes(), "simple/six/").unwrap_err();
        assert!(matches!(err, IndexError::PageUrl { .. }));

        let err = parse_project(br#"{"name": "-six-", "files": []}"#, SIX_URL).unwrap_err();
        assert!(matches!(err, IndexError::ProjectName { name, .. } if name == "-six-"));

        let err = one(r#"{"filename": "six-1.0.tar.gz", "url": "https://[::1", "hashes": {}}"#)
            .unwrap_err();
        assert!(
            matches!(err, IndexError::FileUrl { filename, .. } if filename == "six-1.0.tar.gz")
        );

        let err =
            one(r#"{"filename": "six-1.0.tar.gz", "url": "file:///etc/passwd", "hashes": {}}"#)
                .unwrap_err();
        assert!(matches!(err, IndexError::FileScheme { url, .. } if url == "file:///etc/passwd"));
    }
}
