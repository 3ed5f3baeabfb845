//! Registry bases: the pinned manifest, the platform's manifest under an
//! index, the config and the layers are pulled into the cache (each checked
//! against its digest while streaming, layers several at a time), and then
//! read from there like a local layout. What the cache holds is never pulled
//! again, so a rebuild needs no network and no credentials.

use futures_util::{StreamExt, TryStreamExt, stream};
use oci_spec::image::{Descriptor, DescriptorBuilder, ImageIndex, ImageManifest, MediaType};

use super::{BaseError, Sources};
use crate::recipe::Recipe;
use strata_oci::digest::Digest;
use strata_oci::layout::{Layout, descriptor_digest, select_platform};
use strata_oci::platform::Platform;
use strata_oci::reference::Reference;
use strata_registry::{RegistryError, Repository};

/// Layers downloaded at once.
const PARALLEL: usize = 4;

pub fn pull(
    recipe: &Recipe,
    reference: &Reference,
    platform: &Platform,
    sources: &Sources,
) -> Result<(Layout, Descriptor), BaseError> {
    let Some(digest) = reference.digest else {
        return Err(unpinned(recipe, reference, sources));
    };
    let puller = Puller { reference, sources };
    let top = puller.manifest(&digest)?;
    let invalid = |what: &str, e: serde_json::Error| {
        BaseError::Registry(RegistryError::Malformed {
            what: format!("the {what} {}@{digest}", reference.name()),
            source: e.into(),
        })
    };
    let top_type = media_type(&top);
    let manifest_bytes = if top_type == MediaType::ImageIndex || top_type.to_string() == DOCKER_LIST
    {
        let index: ImageIndex = serde_json::from_slice(&top).map_err(|e| invalid("index", e))?;
        let chosen = select_platform(&index, platform).ok_or_else(|| {
            recipe.error(
                recipe.base.span,
                format!("the base `{reference}` has no image for {platform}"),
                "no such platform",
                Some("pick a base built for the recipe's platforms, or change `platform`".into()),
            )
        })?;
        let child = descriptor_digest(chosen).map_err(|message| RegistryError::Invalid {
            what: format!("the index {}@{digest}", reference.name()),
            message,
        })?;
        puller.manifest(&child)?
    } else {
        top.clone()
    };
    let manifest: ImageManifest =
        serde_json::from_slice(&manifest_bytes).map_err(|e| invalid("manifest", e))?;
    let mut wanted = vec![manifest.config().clone()];
    wanted.extend(manifest.layers().iter().cloned());
    puller.blobs(&wanted)?;
    let desc = DescriptorBuilder::default()
        .media_type(top_type)
        .digest(digest)
        .size(top.len() as u64)
        .build()
        .map_err(|e| RegistryError::Malformed {
            what: format!("the manifest {}@{digest}", reference.name()),
            source: e.into(),
        })?;
    Ok((
        Layout::blob_store(sources.cache.root(), ImageIndex::default()),
        desc,
    ))
}

const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// A manifest's own `mediaType`, or what its shape says when it has none.
fn media_type(bytes: &[u8]) -> MediaType {
    let json: serde_json::Value = serde_json::from_slice(bytes).unwrap_or_default();
    match json["mediaType"].as_str() {
        Some(t) => MediaType::from(t),
        None if json.get("manifests").is_some() => MediaType::ImageIndex,
        None => MediaType::ImageManifest,
    }
}

/// A tag without a digest: an error whose hint gives the digest to pin,
/// looked up when the registry can be reached.
fn unpinned(recipe: &Recipe, reference: &Reference, sources: &Sources) -> BaseError {
    let looked_up = (!sources.offline)
        .then(|| sources.client().and_then(|c| c.resolve(reference)).ok())
        .flatten();
    let hint = match looked_up {
        Some(digest) => format!(
            "pin it: `base \"{}\"` is what `{reference}` points at now",
            Reference {
                digest: Some(digest),
                ..reference.clone()
            }
        ),
        None => format!(
            "pin it: `base \"{reference}@sha256:…\"`; `strata resolve-base {reference}` prints the digest"
        ),
    };
    recipe
        .error(
            recipe.base.span,
            format!("the base `{reference}` is not pinned by digest"),
            "no digest",
            Some(hint),
        )
        .into()
}

struct Puller<'a> {
    reference: &'a Reference,
    sources: &'a Sources<'a>,
}

impl Puller<'_> {
    /// Runs network work against the base's repository, unless offline.
    fn online<T>(
        &self,
        work: impl AsyncFnOnce(&Repository<'_>) -> Result<T, RegistryError>,
    ) -> Result<T, BaseError> {
        if self.sources.offline {
            return Err(BaseError::Offline {
                reference: self.reference.to_string(),
            });
        }
        let client = self.sources.client()?;
        tracing::debug!(reference = %self.reference, "pulling from the registry");
        Ok(client.block_on(async {
            let repo = client.repository(self.reference, "pull", &[]).await?;
            work(&repo).await
        })?)
    }

    /// A manifest's bytes, from the cache or pulled into it.
    fn manifest(&self, digest: &Digest) -> Result<Vec<u8>, BaseError> {
        let cache = self.sources.cache;
        if let Some(path) = cache.verified_blob(digest) {
            tracing::debug!(%digest, "base manifest from the cache");
            return std::fs::read(&path)
                .map_err(|source| strata_cache::CacheError::Io { path, source }.into());
        }
        let bytes = self.online(async |repo| {
            repo.manifest(&digest.to_string())
                .await
                .map(|(bytes, _)| bytes)
        })?;
        let tmp = cache.temp_file()?;
        std::fs::write(tmp.path(), &bytes).map_err(|source| strata_cache::CacheError::Io {
            path: tmp.path().to_owned(),
            source,
        })?;
        cache.commit_blob(tmp, digest)?;
        Ok(bytes)
    }

    /// Makes sure every blob is in the cache, pulling the missing ones at once.
    fn blobs(&self, wanted: &[Descriptor]) -> Result<(), BaseError> {
        let cache = self.sources.cache;
        let mut missing = Vec::new();
        for desc in wanted {
            let digest = descriptor_digest(desc).map_err(|message| RegistryError::Invalid {
                what: format!("the manifest of {}", self.reference),
                message,
            })?;
            if cache.verified_blob(&digest).is_none() && !missing.iter().any(|(d, _)| *d == digest)
            {
                missing.push((digest, desc.size()));
            }
        }
        tracing::info!(
            base = %self.reference,
            blobs = wanted.len(),
            missing = missing.len(),
            "base blobs"
        );
        if missing.is_empty() {
            return Ok(());
        }
        self.online(async |repo| {
            stream::iter(&missing)
                .map(|(digest, size)| repo.fetch_blob(cache, digest, *size))
                .buffer_unordered(PARALLEL)
                .try_collect::<Vec<_>>()
                .await
        })?;
        Ok(())
    }
}
