//! The shared layer cache in a registry (`strata build --cache
//! REGISTRY/REPO`): a fleet of CI runners, each starting with an empty local
//! cache, reuses the layers any of them built.
//!
//! An entry is a tiny OCI artifact, tagged `strata-layer-KEY` (the layer's
//! key, a sha256 in hex): an image manifest with the empty config whose one
//! layer is the layer's blob, annotated with its `diff_id`. One tag per key
//! works on every OCI registry (no referrers API, no index to update, so
//! runners never race on a shared document), and a lookup is one request.
//! Nothing read from the registry is used before it is checked: the blob
//! against its digest and size as it downloads, its uncompressed tar
//! against the `diff_id` the entry gives. What no download can check is
//! that a key maps to the right blob: entries are trusted because they come
//! from the repository the user named, and `--verify-cache` rebuilds every
//! layer found there and fails on any difference.
//!
//! Package files (`.deb`s and wheels) are shared too, by the sha256 the
//! lock gives them: a runner downloads from the registry what any runner
//! fetched before, and the fleet asks the mirror and the index for each
//! file once. Each is kept by a manifest tagged `strata-package-SHA256`, so
//! that the registry's garbage collection keeps the blob. See
//! `spec/cache.md`.
//!
//! A platform's package stage (its package layers, and what planning them
//! found) is kept under `strata-stage-KEY`, KEY from the lock alone (see
//! `crate::stage`): a runner whose lock is current learns every package
//! layer from one manifest and one small blob, without downloading or
//! unpacking a package.

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use strata_cache::Cache;
use strata_oci::compression::Compression;
use strata_oci::digest::Digest;
use strata_oci::reference::Reference;
use strata_registry::{Client, Payload, RegistryError};

use super::LayerBlob;

/// The tag of a key's entry.
pub const TAG_PREFIX: &str = "strata-layer-";
/// The tag that keeps a package file.
pub const PACKAGE_PREFIX: &str = "strata-package-";
/// The tag that keeps a package stage's record.
pub const STAGE_PREFIX: &str = "strata-stage-";
/// Package files fetched or checked at once.
const PARALLEL: usize = 8;
const ARTIFACT_TYPE: &str = "application/vnd.strata.layer-cache.v1";
const PACKAGE_TYPE: &str = "application/vnd.strata.package-cache.v1";
const STAGE_TYPE: &str = "application/vnd.strata.stage-cache.v1";
/// A stage record: JSON, compressed with zstd (views of large images are
/// megabytes of paths, which compress tenfold).
const RECORD_TYPE: &str = "application/vnd.strata.stage.v1+json+zstd";
/// A stage record's size, compressed and not: far above the largest image
/// (a view of a million paths), far below what would hurt a runner.
const MAX_RECORD: u64 = 256 << 20;
const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
const EMPTY_TYPE: &str = "application/vnd.oci.empty.v1+json";
const EMPTY: &[u8] = b"{}";
const DIFF_ID: &str = "dev.strata.diff-id";
const DIFF_SIZE: &str = "dev.strata.diff-size";
const ENTRIES: &str = "dev.strata.entries";

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum SharedCacheError {
    #[error("`{text}` is not a repository for the layer cache")]
    #[diagnostic(help(
        "write `REGISTRY/REPO` without a tag or digest, e.g. `ghcr.io/team/strata-cache`"
    ))]
    Reference { text: String },
    #[error("the layer cache in `{repository}` failed")]
    Registry {
        repository: String,
        #[source]
        source: Box<RegistryError>,
    },
    #[error(
        "the layer cache in `{repository}` gives layer `{layer}` as {cached}, but building it gives {built}"
    )]
    #[diagnostic(help(
        "the entry (tag `{tag}`) does not hold what its key promises: it was written by something other than this strata, or tampered with. Delete the tag, and check who can push to the repository"
    ))]
    Mismatch {
        repository: String,
        layer: String,
        tag: String,
        // Boxed: errors travel in every `Result` of the build.
        cached: Box<Digest>,
        built: Box<Digest>,
    },
    #[error(
        "the layer cache in `{repository}` records the packages of `{platform}` as other layers than building them gives (first: `{layer}`)"
    )]
    #[diagnostic(help(
        "the record (tag `{tag}`) does not hold what its key promises: it was written by something other than this strata, or tampered with. Delete the tag, and check who can push to the repository"
    ))]
    StageMismatch {
        repository: String,
        platform: String,
        layer: String,
        tag: String,
    },
    #[error("cannot check the layer `{digest}` from the layer cache")]
    Check {
        digest: Digest,
        #[source]
        source: io::Error,
    },
}

/// A package file as the lock names it.
#[derive(Debug, Clone)]
pub struct PackageFile {
    pub sha256: Digest,
    /// 0 when not known beforehand (a wheel whose index gave no size).
    pub size: u64,
    /// `application/vnd.debian.binary-package`, `application/zip`, or a
    /// base's manifest, config and layer types.
    pub media_type: String,
}

impl PackageFile {
    /// The file with its size read from its copy at `path` when the lock
    /// did not give it.
    pub fn sized(&self, path: &std::path::Path) -> PackageFile {
        let mut file = self.clone();
        if file.size == 0 {
            file.size = std::fs::metadata(path).map_or(0, |m| m.len());
        }
        file
    }

    /// The tag of the manifest that keeps the file in a registry or layout.
    pub fn tag(&self) -> String {
        format!("{PACKAGE_PREFIX}{}", self.sha256.hex())
    }

    /// That manifest: the empty config, and the file as its one layer.
    pub fn manifest(&self) -> bytes::Bytes {
        manifest(
            PACKAGE_TYPE,
            Descriptor {
                media_type: self.media_type.clone(),
                digest: self.sha256,
                size: self.size,
                annotations: BTreeMap::new(),
            },
        )
    }
}

/// What the repository has under a stage's tag.
pub enum StageEntry {
    Missing,
    /// The record, decompressed.
    Found(Vec<u8>),
    /// Something strata did not write: ignored, and written again.
    Foreign(String),
}

/// The empty JSON object every entry's config is.
pub const EMPTY_CONFIG: &[u8] = EMPTY;

/// The cache in one repository of a registry.
pub struct SharedCache<'c> {
    client: &'c Client,
    reference: Reference,
    /// Rebuild every layer found and compare (`--verify-cache`).
    pub verify: bool,
}

/// An entry's manifest: the persisted format of the cache.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EntryManifest {
    schema_version: u32,
    media_type: String,
    artifact_type: String,
    config: Descriptor,
    layers: Vec<Descriptor>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    media_type: String,
    digest: Digest,
    size: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<String, String>,
}

impl<'c> SharedCache<'c> {
    pub fn new(client: &'c Client, text: &str, verify: bool) -> Result<Self, SharedCacheError> {
        let reference = Reference::parse(text)
            .ok()
            .filter(|r| r.tag.is_none() && r.digest.is_none())
            .ok_or_else(|| SharedCacheError::Reference {
                text: text.to_owned(),
            })?;
        Ok(SharedCache {
            client,
            reference,
            verify,
        })
    }

    pub fn reference(&self) -> &Reference {
        &self.reference
    }

    /// The repository, as the user wrote it.
    pub fn name(&self) -> String {
        format!("{}/{}", self.reference.registry, self.reference.repository)
    }

    /// Runs `work` against the repository, with the rights `actions` names
    /// (`pull`, `pull,push`).
    fn session<T>(
        &self,
        actions: &str,
        work: impl AsyncFnOnce(&strata_registry::Repository<'_>) -> Result<T, RegistryError>,
    ) -> Result<T, SharedCacheError> {
        self.client
            .block_on(async {
                let repo = self
                    .client
                    .repository(&self.reference, actions, &[])
                    .await?;
                work(&repo).await
            })
            .map_err(|e| self.error(e))
    }

    fn error(&self, source: RegistryError) -> SharedCacheError {
        SharedCacheError::Registry {
            repository: self.name(),
            source: Box::new(source),
        }
    }

    pub fn tag(key: &Digest) -> String {
        format!("{TAG_PREFIX}{}", key.hex())
    }

    /// The entries the repository has for `keys`, in order. An entry that
    /// is not one strata wrote reads as missing.
    pub fn lookup(&self, keys: &[&Digest]) -> Result<Vec<Option<LayerBlob>>, SharedCacheError> {
        self.session("pull", async |repo| {
            let mut found = Vec::with_capacity(keys.len());
            for key in keys {
                let entry = repo.manifest_if_any(&Self::tag(key)).await?;
                found.push(entry.and_then(|(bytes, _)| parse_entry(&bytes)));
            }
            Ok(found)
        })
    }

    pub fn stage_tag(key: &Digest) -> String {
        format!("{STAGE_PREFIX}{}", key.hex())
    }

    /// The record of the package stage `key` names, when the repository has
    /// one: its manifest, then its blob, checked against its digest.
    pub fn lookup_stage(
        &self,
        key: &Digest,
        cache: &Cache,
    ) -> Result<StageEntry, SharedCacheError> {
        self.session("pull", async |repo| {
            let Some((bytes, _)) = repo.manifest_if_any(&Self::stage_tag(key)).await? else {
                return Ok(StageEntry::Missing);
            };
            let record = serde_json::from_slice::<EntryManifest>(&bytes)
                .ok()
                .filter(|m| m.artifact_type == STAGE_TYPE)
                .and_then(|m| m.layers.into_iter().next())
                .filter(|l| l.media_type == RECORD_TYPE && l.size <= MAX_RECORD);
            let Some(record) = record else {
                return Ok(StageEntry::Foreign(
                    "its manifest is not a stage record".to_owned(),
                ));
            };
            let path = repo.fetch_blob(cache, &record.digest, record.size).await?;
            Ok(match read_record(&path) {
                Ok(bytes) => StageEntry::Found(bytes),
                Err(e) => StageEntry::Foreign(format!("its record cannot be read: {e}")),
            })
        })
    }

    /// Whether the repository has a record under the stage's tag.
    pub fn has_stage(&self, key: &Digest) -> Result<bool, SharedCacheError> {
        self.session("pull", async |repo| {
            Ok(repo.manifest_if_any(&Self::stage_tag(key)).await?.is_some())
        })
    }

    /// Writes a stage's record under its tag, after the stage's layers (each
    /// uploaded only when the repository lacks it). The manifest lists the
    /// layers after the record, so that the registry's garbage collection
    /// keeps them and a push can mount them from here.
    pub fn publish_stage(
        &self,
        key: &Digest,
        record: &[u8],
        layers: &[(&LayerBlob, &PathBuf)],
    ) -> Result<(), SharedCacheError> {
        let compressed = zstd::encode_all(record, 3)
            .map(bytes::Bytes::from)
            .map_err(|source| SharedCacheError::Check {
                digest: *key,
                source,
            })?;
        let digest = Digest::of(&compressed);
        let size = compressed.len() as u64;
        let mut descriptors = vec![Descriptor {
            media_type: RECORD_TYPE.to_owned(),
            digest,
            size,
            annotations: BTreeMap::new(),
        }];
        descriptors.extend(layers.iter().map(|(l, _)| Descriptor {
            media_type: l.media_type.clone(),
            digest: l.digest,
            size: l.size,
            annotations: BTreeMap::new(),
        }));
        self.session("pull,push", async |repo| {
            push_empty(repo).await?;
            for (blob, path) in layers {
                push_layer(repo, blob, path).await?;
            }
            repo.push_blob(&digest, size, &Payload::Bytes(compressed), None)
                .await?;
            let manifest = manifest_of(STAGE_TYPE, descriptors);
            repo.put_manifest(&Self::stage_tag(key), MANIFEST_TYPE, &manifest)
                .await
                .map(|_| ())
        })
    }

    /// Downloads an entry's blob into the local cache and checks it: its
    /// digest and size as it arrives, then its uncompressed tar against the
    /// entry's `diff_id`.
    pub fn fetch(&self, blob: &LayerBlob, cache: &Cache) -> Result<PathBuf, SharedCacheError> {
        let path = self.session("pull", async |repo| {
            repo.fetch_blob(cache, &blob.digest, blob.size).await
        })?;
        let check = |source| SharedCacheError::Check {
            digest: blob.digest,
            source,
        };
        let (diff_id, diff_size) = uncompressed_digest(&path, &blob.media_type).map_err(check)?;
        if diff_id != blob.diff_id || diff_size != blob.diff_size {
            return Err(check(io::Error::other(format!(
                "its tar is {diff_id} ({diff_size} bytes) where the entry says {} ({} bytes)",
                blob.diff_id, blob.diff_size
            ))));
        }
        Ok(path)
    }

    /// Writes entries for layers the repository does not have yet: the
    /// blob, then the tag. Returns how many were written.
    pub fn publish(
        &self,
        entries: &[(&Digest, &LayerBlob, &PathBuf)],
    ) -> Result<usize, SharedCacheError> {
        if entries.is_empty() {
            return Ok(0);
        }
        self.session("pull,push", async |repo| {
            push_empty(repo).await?;
            for (key, blob, path) in entries {
                push_layer(repo, blob, path).await?;
                let manifest = entry_manifest(blob);
                repo.put_manifest(&Self::tag(key), MANIFEST_TYPE, &manifest)
                    .await?;
            }
            Ok(entries.len())
        })
    }

    /// Downloads into the local cache the package files it lacks and the
    /// registry has (each checked against its sha256 as it arrives);
    /// returns the files the registry lacks, to publish once the build has
    /// them.
    pub fn fetch_packages(
        &self,
        files: &[PackageFile],
        cache: &Cache,
    ) -> Result<Vec<PackageFile>, SharedCacheError> {
        use futures_util::{StreamExt, TryStreamExt};
        self.session("pull", async |repo| {
            let lacking: Vec<Option<PackageFile>> = futures_util::stream::iter(files)
                .map(|file| async move {
                    let size = match file.size {
                        0 => repo.blob_size(&file.sha256).await?,
                        size => repo.has_blob(&file.sha256).await?.then_some(size),
                    };
                    let Some(size) = size else {
                        return Ok::<_, RegistryError>(Some(file.clone()));
                    };
                    if cache.verified_blob(&file.sha256).is_none() {
                        repo.fetch_blob(cache, &file.sha256, size).await?;
                    }
                    Ok(None)
                })
                .buffer_unordered(PARALLEL)
                .try_collect()
                .await?;
            Ok(lacking.into_iter().flatten().collect())
        })
    }

    /// Publishes package files from the local cache: the blob, and a
    /// manifest holding it under its tag. Returns how many.
    pub fn publish_packages(
        &self,
        files: &[PackageFile],
        cache: &Cache,
    ) -> Result<usize, SharedCacheError> {
        let files: Vec<(PackageFile, PathBuf)> = files
            .iter()
            .filter_map(|f| {
                cache
                    .verified_blob(&f.sha256)
                    .map(|path| (f.sized(&path), path))
            })
            .collect();
        if files.is_empty() {
            return Ok(0);
        }
        self.session("pull,push", async |repo| {
            push_empty(repo).await?;
            for (file, path) in &files {
                repo.push_blob(&file.sha256, file.size, &Payload::File(path.clone()), None)
                    .await?;
                repo.put_manifest(&file.tag(), MANIFEST_TYPE, &file.manifest())
                    .await?;
            }
            Ok(files.len())
        })
    }
}

/// A layer's blob from its file, unless the repository has it.
async fn push_layer(
    repo: &strata_registry::Repository<'_>,
    blob: &LayerBlob,
    path: &std::path::Path,
) -> Result<(), RegistryError> {
    repo.push_blob(
        &blob.digest,
        blob.size,
        &Payload::File(path.to_owned()),
        None,
    )
    .await
    .map(|_| ())
}

/// The empty config every entry shares.
async fn push_empty(repo: &strata_registry::Repository<'_>) -> Result<(), RegistryError> {
    repo.push_blob(
        &Digest::of(EMPTY),
        EMPTY.len() as u64,
        &Payload::Bytes(bytes::Bytes::from_static(EMPTY)),
        None,
    )
    .await
    .map(|_| ())
}

/// An entry's manifest around its one blob.
fn manifest(artifact_type: &str, layer: Descriptor) -> bytes::Bytes {
    manifest_of(artifact_type, vec![layer])
}

fn manifest_of(artifact_type: &str, layers: Vec<Descriptor>) -> bytes::Bytes {
    let manifest = EntryManifest {
        schema_version: 2,
        media_type: MANIFEST_TYPE.to_owned(),
        artifact_type: artifact_type.to_owned(),
        config: Descriptor {
            media_type: EMPTY_TYPE.to_owned(),
            digest: Digest::of(EMPTY),
            size: EMPTY.len() as u64,
            annotations: BTreeMap::new(),
        },
        layers,
    };
    // Serialising plain structs of strings and numbers cannot fail.
    bytes::Bytes::from(serde_json::to_vec(&manifest).unwrap_or_default())
}

fn entry_manifest(blob: &LayerBlob) -> bytes::Bytes {
    manifest(
        ARTIFACT_TYPE,
        Descriptor {
            media_type: blob.media_type.clone(),
            digest: blob.digest,
            size: blob.size,
            annotations: BTreeMap::from([
                (DIFF_ID.to_owned(), blob.diff_id.to_string()),
                (DIFF_SIZE.to_owned(), blob.diff_size.to_string()),
                (ENTRIES.to_owned(), blob.entries.to_string()),
            ]),
        },
    )
}

/// The layer an entry's manifest describes, when it is one strata wrote.
fn parse_entry(bytes: &[u8]) -> Option<LayerBlob> {
    let manifest: EntryManifest = serde_json::from_slice(bytes).ok()?;
    if manifest.artifact_type != ARTIFACT_TYPE {
        return None;
    }
    let [layer] = manifest.layers.as_slice() else {
        return None;
    };
    let get = |name: &str| layer.annotations.get(name);
    Some(LayerBlob {
        media_type: layer.media_type.clone(),
        digest: layer.digest,
        size: layer.size,
        diff_id: get(DIFF_ID)?.parse().ok()?,
        diff_size: get(DIFF_SIZE)?.parse().ok()?,
        entries: get(ENTRIES)?.parse().ok()?,
    })
}

/// A stage record's blob, decompressed, within `MAX_RECORD`.
fn read_record(path: &std::path::Path) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let file = strata_oci::regular::open_regular(path)?;
    let mut bytes = Vec::new();
    zstd::stream::read::Decoder::new(file)?
        .take(MAX_RECORD + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_RECORD {
        return Err(io::Error::other(
            "it is larger than any record strata writes",
        ));
    }
    Ok(bytes)
}

/// The sha256 and size of a layer blob's uncompressed tar.
fn uncompressed_digest(path: &std::path::Path, media_type: &str) -> io::Result<(Digest, u64)> {
    let file = strata_oci::regular::open_regular(path)?;
    Digest::of_reader(Compression::of_media_type(media_type).decoder(file)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_reads_back_as_the_layer_it_was_written_for() {
        let blob = LayerBlob {
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip".to_owned(),
            digest: Digest::of(b"blob"),
            size: 4,
            diff_id: Digest::of(b"tar"),
            diff_size: 3,
            entries: 1,
        };
        assert_eq!(parse_entry(&entry_manifest(&blob)), Some(blob));
        assert_eq!(parse_entry(b"{}"), None);
        assert_eq!(parse_entry(b"not json"), None);
    }
}
