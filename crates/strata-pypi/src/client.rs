//! Index pages and core metadata over HTTP for one resolution, each fetched
//! once. Pages come from the PEP 691 JSON API of the first index that has
//! the project (as uv's default `first-index` strategy: a private package
//! is never shadowed by a public one of the same name). Metadata comes from
//! PEP 658/714 `.metadata` files, checked against their sha256 when the index
//! gives one; without one, from the wheel itself, downloaded and verified.

use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, Mutex};

use strata_client::fetch::{Download, FetchError, Fetcher};
use strata_oci::digest::Digest;
use uv_normalize::PackageName;

use crate::index::{self, CoreMetadataRef, DistFile, ProjectPage};
use crate::metadata::{self, CoreMetadata};

/// No index page is this large: PyPI's largest (thousands of files) are a
/// few MB.
const MAX_PAGE: u64 = 64 << 20;
/// Core metadata is a header block and a description: 16 MiB is far past
/// any real one.
pub const MAX_METADATA: u64 = 16 << 20;

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ClientError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Fetch(#[from] FetchError),
    #[error("the index page `{url}` is not valid")]
    #[diagnostic(help("the index must serve the PEP 691 JSON simple API"))]
    Page {
        url: String,
        #[source]
        source: Box<index::IndexError>,
    },
    #[error("the metadata of `{file}` is not valid")]
    #[diagnostic(help("the wheel's METADATA must be core metadata (PEP 566/643)"))]
    Metadata {
        file: String,
        #[source]
        source: Box<metadata::MetadataError>,
    },
    #[error("`{url}` does not match the sha256 the index gives for it")]
    #[diagnostic(help(
        "the index served different bytes than it lists: it may be out of sync or tampered with"
    ))]
    MetadataHash { url: String },
    #[error("the wheel `{file}` has no readable `*.dist-info/METADATA`")]
    #[diagnostic(help("the wheel is malformed: pick another version"))]
    WheelMetadata { file: String },
}

/// A project's page and the index it came from.
#[derive(Debug)]
pub struct Found {
    pub index: String,
    pub page: ProjectPage,
}

pub struct Client<'a> {
    fetcher: &'a Fetcher,
    indexes: &'a [String],
    pages: Mutex<HashMap<PackageName, Option<Arc<Found>>>>,
    metadata: Mutex<HashMap<String, Arc<CoreMetadata>>>,
}

impl<'a> Client<'a> {
    pub fn new(fetcher: &'a Fetcher, indexes: &'a [String]) -> Client<'a> {
        Client {
            fetcher,
            indexes,
            pages: Mutex::default(),
            metadata: Mutex::default(),
        }
    }

    pub fn fetcher(&self) -> &Fetcher {
        self.fetcher
    }

    /// Fetches the pages of `names` not fetched yet, in parallel, trying the
    /// indexes in order for those a first index does not have.
    pub fn prefetch(&self, names: &[PackageName]) -> Result<(), ClientError> {
        let mut pending: Vec<PackageName> = {
            let pages = self.pages.lock().unwrap_or_else(|e| e.into_inner());
            let mut names: Vec<PackageName> = names
                .iter()
                .filter(|n| !pages.contains_key(*n))
                .cloned()
                .collect();
            names.sort();
            names.dedup();
            names
        };
        for index in self.indexes {
            if pending.is_empty() {
                break;
            }
            let urls: Vec<String> = pending
                .iter()
                .map(|n| index::project_url(index, n))
                .collect();
            let results = self
                .fetcher
                .get_documents(&urls, Some(index::ACCEPT), MAX_PAGE);
            let mut missing = Vec::new();
            for ((name, url), result) in pending.into_iter().zip(&urls).zip(results) {
                match result? {
                    Some(body) => {
                        let page = index::parse_project(&body, url).map_err(|source| {
                            ClientError::Page {
                                url: url.clone(),
                                source: Box::new(source),
                            }
                        })?;
                        let found = Found {
                            index: index.clone(),
                            page,
                        };
                        self.pages
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(name, Some(Arc::new(found)));
                    }
                    None => missing.push(name),
                }
            }
            pending = missing;
        }
        let mut pages = self.pages.lock().unwrap_or_else(|e| e.into_inner());
        for name in pending {
            pages.insert(name, None);
        }
        Ok(())
    }

    /// The project's page, `None` when no index has it.
    pub fn page(&self, name: &PackageName) -> Result<Option<Arc<Found>>, ClientError> {
        self.prefetch(std::slice::from_ref(name))?;
        let pages = self.pages.lock().unwrap_or_else(|e| e.into_inner());
        Ok(pages.get(name).cloned().flatten())
    }

    /// The core metadata of a wheel.
    pub fn metadata(&self, file: &DistFile) -> Result<Arc<CoreMetadata>, ClientError> {
        if let Some(known) = self
            .metadata
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&file.url)
        {
            return Ok(known.clone());
        }
        let bytes = match &file.core_metadata {
            CoreMetadataRef::Present { sha256 } => self.metadata_file(file, sha256.as_ref())?,
            CoreMetadataRef::Absent => self.metadata_from_wheel(file)?,
        };
        let parsed = Arc::new(
            metadata::parse(&bytes).map_err(|source| ClientError::Metadata {
                file: file.filename.clone(),
                source: Box::new(source),
            })?,
        );
        self.metadata
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(file.url.clone(), parsed.clone());
        Ok(parsed)
    }

    /// A `.metadata` file, from the cache when its hash is known and cached.
    fn metadata_file(
        &self,
        file: &DistFile,
        sha256: Option<&Digest>,
    ) -> Result<Vec<u8>, ClientError> {
        let url = file.metadata_url();
        let cache = self.fetcher.cache();
        if let Some(path) = sha256.and_then(|d| cache.verified_blob(d))
            && let Ok(bytes) = std::fs::read(path)
        {
            return Ok(bytes);
        }
        let Some(bytes) = self.fetcher.get_document(&url, None, MAX_METADATA)? else {
            // The index said it has one; without it, read the wheel's own.
            return self.metadata_from_wheel(file);
        };
        if let Some(expected) = sha256 {
            if Digest::of(&bytes) != *expected {
                return Err(ClientError::MetadataHash { url });
            }
            // Cached by its digest, so a later resolution reads it locally.
            if let Ok(mut tmp) = cache.temp_file() {
                use std::io::Write;
                if tmp.write_all(&bytes).is_ok() {
                    let _ = cache.commit_blob(tmp, expected);
                }
            }
        }
        Ok(bytes)
    }

    /// Downloads the wheel (verified against the index's sha256) and reads
    /// its `METADATA`, as pip does for indexes without PEP 658.
    fn metadata_from_wheel(&self, file: &DistFile) -> Result<Vec<u8>, ClientError> {
        let missing = || ClientError::WheelMetadata {
            file: file.filename.clone(),
        };
        let sha256 = file.sha256.ok_or_else(missing)?;
        let paths = self.fetcher.fetch_all(&[Download {
            url: file.url.clone(),
            sha256,
            size: file.size,
        }])?;
        let path = paths.first().ok_or_else(missing)?;
        let opened = std::fs::File::open(path).map_err(|_| missing())?;
        let mut archive = zip::ZipArchive::new(opened).map_err(|_| missing())?;
        let name = archive
            .file_names()
            .filter_map(|n| n.ok().map(|n| n.into_owned()))
            .find(|n| {
                n.split_once('/')
                    .is_some_and(|(dir, rest)| dir.ends_with(".dist-info") && rest == "METADATA")
            })
            .ok_or_else(missing)?;
        let member = archive.by_name(&name).map_err(|_| missing())?;
        let mut bytes = Vec::new();
        member
            .take(MAX_METADATA)
            .read_to_end(&mut bytes)
            .map_err(|_| missing())?;
        Ok(bytes)
    }
}
