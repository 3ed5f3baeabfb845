//! Pushing an image — a manifest or an index and everything under it — to
//! one or more registries: blobs first (each checked with HEAD, mounted
//! from another repository of the same registry when possible, else
//! uploaded), then child manifests by digest, then the top one under every tag.

use std::collections::HashSet;
use std::path::PathBuf;

use futures_util::{StreamExt, TryStreamExt, stream};
use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};

use crate::image::{Blob, BlobSource};
use strata_oci::digest::Digest;
use strata_oci::layout::{Layout, LayoutError, descriptor_digest, is_index};
use strata_oci::reference::Reference;
use strata_registry::{BlobOutcome, Client, Payload, RegistryError};

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum PushError {
    #[error("cannot push to `{destination}`")]
    #[diagnostic(forward(source))]
    Registry {
        destination: String,
        #[source]
        source: Box<RegistryError>,
    },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Layout(#[from] LayoutError),
    #[error("`{0}` names no repository to push to")]
    #[diagnostic(help("write `REGISTRY/REPO[:TAG]`, e.g. `ghcr.io/org/app:1.0`"))]
    Destination(String),
    #[error("the {what} of the image is not valid")]
    #[diagnostic(help("the image is damaged: build it again"))]
    Invalid {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("blob {0} of the image is missing")]
    #[diagnostic(help("the image is incomplete: build it again"))]
    Missing(Digest),
    #[error("cannot write the digest file `{}`", path.display())]
    DigestFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Blobs uploaded at once per destination.
const PARALLEL: usize = 4;

/// A manifest or index, ready to upload.
#[derive(Debug, Clone)]
struct Manifest {
    digest: Digest,
    media_type: String,
    bytes: bytes::Bytes,
}

/// How a blob reaches a destination.
#[derive(Debug, Clone)]
enum Upload {
    Send(Payload),
    /// Held by this repository (the registry cache) and not here: mounted
    /// into the destination, never downloaded.
    Mount(Reference),
}

/// An image and all it refers to, in upload order.
#[derive(Debug, Clone)]
pub struct Image {
    /// Configs and layers, each once.
    blobs: Vec<(Digest, u64, Upload)>,
    /// Child manifests of an index, which are pushed by digest.
    children: Vec<Manifest>,
    top: Manifest,
    /// The repository the base came from (its `base.name`), for mounts.
    base: Option<Reference>,
    /// Artifacts whose `subject` is `top` (the SBOM).
    referrers: Vec<Referrer>,
}

/// An artifact about the image: its manifest, its type and its blobs.
#[derive(Debug, Clone)]
struct Referrer {
    manifest: Manifest,
    artifact_type: String,
    blobs: Vec<(Digest, u64, Upload)>,
}

impl Image {
    /// The image `top` names in a layout, with the artifacts about it.
    pub fn from_layout(layout: &Layout, top: &Descriptor) -> Result<Image, PushError> {
        let artifacts = layout.artifacts(top)?;
        Image::walk(top, &artifacts, |digest| {
            let path = layout.blob_path(digest);
            path.is_file().then_some(Upload::Send(Payload::File(path)))
        })
    }

    /// A build's image and its artifacts, straight from its blobs (the cache
    /// and memory).
    pub fn from_blobs(
        blobs: &[Blob],
        top: &Descriptor,
        referrers: &[Descriptor],
    ) -> Result<Image, PushError> {
        Image::walk(top, referrers, |digest| {
            blobs
                .iter()
                .find(|b| b.digest == *digest)
                .map(|b| match &b.source {
                    BlobSource::File(path) => Upload::Send(Payload::File(path.clone())),
                    BlobSource::Bytes(bytes) => {
                        Upload::Send(Payload::Bytes(bytes::Bytes::from(bytes.to_vec())))
                    }
                    BlobSource::Registry(repository) => Upload::Mount(repository.clone()),
                })
        })
    }

    pub fn digest(&self) -> Digest {
        self.top.digest
    }

    fn walk(
        top: &Descriptor,
        artifacts: &[Descriptor],
        get: impl Fn(&Digest) -> Option<Upload>,
    ) -> Result<Image, PushError> {
        let read = |desc: &Descriptor, what: &str| -> Result<Manifest, PushError> {
            let digest = descriptor_digest(desc).map_err(|m| invalid(what, m))?;
            let bytes = match get(&digest).ok_or(PushError::Missing(digest))? {
                Upload::Send(Payload::Bytes(b)) => b,
                Upload::Send(Payload::File(path)) => std::fs::read(&path)
                    .map_err(|source| LayoutError::Io { path, source })?
                    .into(),
                // Manifests are always built here.
                Upload::Mount(_) => return Err(PushError::Missing(digest)),
            };
            if Digest::of(&bytes) != digest {
                return Err(invalid(what, format!("{digest} does not match its bytes")));
            }
            Ok(Manifest {
                digest,
                media_type: desc.media_type().to_string(),
                bytes,
            })
        };
        let top_manifest = read(top, "manifest")?;
        let manifests: Vec<(Descriptor, Manifest)> = if is_index(top.media_type()) {
            let index: ImageIndex = serde_json::from_slice(&top_manifest.bytes)
                .map_err(|e| invalid("image index", e))?;
            index
                .manifests()
                .iter()
                .map(|d| Ok((d.clone(), read(d, "manifest")?)))
                .collect::<Result<_, PushError>>()?
        } else {
            vec![(top.clone(), top_manifest.clone())]
        };
        let mut seen = HashSet::new();
        let mut blobs = Vec::new();
        let mut base = None;
        for (_, manifest) in &manifests {
            let parsed: ImageManifest =
                serde_json::from_slice(&manifest.bytes).map_err(|e| invalid("manifest", e))?;
            base = base.or_else(|| {
                parsed
                    .annotations()
                    .as_ref()
                    .and_then(|a| a.get("org.opencontainers.image.base.name"))
                    .and_then(|name| Reference::parse(name).ok())
            });
            for desc in std::iter::once(parsed.config()).chain(parsed.layers()) {
                let digest = descriptor_digest(desc).map_err(|m| invalid("manifest", m))?;
                if seen.insert(digest) {
                    let payload = get(&digest).ok_or(PushError::Missing(digest))?;
                    blobs.push((digest, desc.size(), payload));
                }
            }
        }
        let children = if is_index(top.media_type()) {
            manifests.into_iter().map(|(_, m)| m).collect()
        } else {
            Vec::new()
        };
        let mut referrers = Vec::new();
        for desc in artifacts {
            let manifest = read(desc, "artifact manifest")?;
            let parsed: ImageManifest = serde_json::from_slice(&manifest.bytes)
                .map_err(|e| invalid("artifact manifest", e))?;
            if parsed.subject().as_ref().map(|s| s.digest()) != Some(top.digest()) {
                continue;
            }
            let mut blobs = Vec::new();
            for d in std::iter::once(parsed.config()).chain(parsed.layers()) {
                let digest = descriptor_digest(d).map_err(|m| invalid("artifact manifest", m))?;
                blobs.push((
                    digest,
                    d.size(),
                    get(&digest).ok_or(PushError::Missing(digest))?,
                ));
            }
            referrers.push(Referrer {
                manifest,
                artifact_type: desc
                    .artifact_type()
                    .as_ref()
                    .map_or_else(String::new, ToString::to_string),
                blobs,
            });
        }
        Ok(Image {
            blobs,
            children,
            top: top_manifest,
            base,
            referrers,
        })
    }
}

/// A manifest of the image being pushed that cannot be read: no registry
/// is involved yet.
fn invalid(what: &str, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> PushError {
    PushError::Invalid {
        what: what.to_owned(),
        source: source.into(),
    }
}

/// What one destination got.
#[derive(Debug, Clone)]
pub struct PushReport {
    pub destination: Reference,
    pub tags: Vec<String>,
    pub digest: Digest,
    pub uploaded: usize,
    pub uploaded_bytes: u64,
    pub mounted: usize,
    pub present: usize,
    /// How each artifact about the image (its SBOM) was attached: through
    /// the registry's referrers API, or under the referrers tag.
    pub referrers: Vec<String>,
}

/// A destination and the tags it gets.
#[derive(Debug, Clone)]
pub struct Destination {
    pub reference: Reference,
    pub tags: Vec<String>,
}

impl Destination {
    /// `REGISTRY/REPO[:TAG]`: the tag written there, else `default_tags`.
    pub fn parse(text: &str, default_tags: &[String]) -> Result<Destination, PushError> {
        let reference = Reference::parse(text).map_err(|e| PushError::Registry {
            destination: text.to_owned(),
            source: Box::new(RegistryError::Malformed {
                what: format!("`{text}`"),
                source: e.into(),
            }),
        })?;
        if reference.digest.is_some() {
            return Err(PushError::Destination(text.to_owned()));
        }
        let tags = match &reference.tag {
            Some(tag) => vec![tag.clone()],
            None if default_tags.is_empty() => vec!["latest".to_owned()],
            None => default_tags.to_vec(),
        };
        Ok(Destination { reference, tags })
    }
}

/// Pushes `image` to every destination in turn; a later destination on the
/// same registry mounts the blobs an earlier one received.
pub fn push(
    client: &Client,
    image: &Image,
    destinations: &[Destination],
) -> Result<Vec<PushReport>, PushError> {
    let mut reports = Vec::new();
    let mut done: Vec<Reference> = Vec::new();
    for destination in destinations {
        let target = &destination.reference;
        let mount_from = done
            .iter()
            .chain(&image.base)
            .find(|r| r.registry == target.registry && r.repository != target.repository)
            .map(|r| r.repository.clone());
        tracing::info!(destination = %target, mount_from = ?mount_from, "push");
        let report = client
            .block_on(push_one(client, image, destination, mount_from))
            .map_err(|source| PushError::Registry {
                destination: target.to_string(),
                source: Box::new(source),
            })?;
        reports.push(report);
        done.push(target.clone());
    }
    Ok(reports)
}

async fn push_one(
    client: &Client,
    image: &Image,
    destination: &Destination,
    mount_from: Option<String>,
) -> Result<PushReport, RegistryError> {
    let target = &destination.reference;
    // Pull rights on the repositories blobs are mounted from: an earlier
    // destination or the base's, and the registry cache's.
    let mut sources: Vec<String> = mount_from.iter().cloned().collect();
    for (_, _, upload) in &image.blobs {
        if let Upload::Mount(from) = upload
            && from.registry == target.registry
            && !sources.contains(&from.repository)
        {
            sources.push(from.repository.clone());
        }
    }
    let repo = client.repository(target, "pull,push", &sources).await?;
    let mut report = PushReport {
        destination: target.clone(),
        tags: destination.tags.clone(),
        digest: image.top.digest,
        uploaded: 0,
        uploaded_bytes: 0,
        mounted: 0,
        present: 0,
        referrers: Vec::new(),
    };
    // A manifest the registry accepted had all its blobs: a re-push only tags.
    let present = repo.has_manifest(&image.top.digest).await?;
    if present {
        tracing::info!(digest = %image.top.digest, "the manifest is already there: tagging only");
        report.present = image.blobs.len();
    } else {
        // The artifacts' blobs (a few KiB) go up with the image's.
        let blobs = image
            .blobs
            .iter()
            .chain(image.referrers.iter().flat_map(|r| &r.blobs));
        let outcomes: Vec<(BlobOutcome, u64)> = stream::iter(blobs)
            .map(|(digest, size, upload)| {
                let repo = &repo;
                let from = mount_from.as_deref();
                async move {
                    let outcome = send(repo, digest, *size, upload, from).await?;
                    Ok::<_, RegistryError>((outcome, *size))
                }
            })
            .buffer_unordered(PARALLEL)
            .try_collect()
            .await?;
        for (outcome, size) in outcomes {
            match outcome {
                BlobOutcome::Present => report.present += 1,
                BlobOutcome::Mounted => report.mounted += 1,
                BlobOutcome::Uploaded => {
                    report.uploaded += 1;
                    report.uploaded_bytes += size;
                }
            }
        }
        for child in &image.children {
            repo.put_manifest(&child.digest.to_string(), &child.media_type, &child.bytes)
                .await?;
        }
    }
    for tag in &destination.tags {
        repo.put_manifest(tag, &image.top.media_type, &image.top.bytes)
            .await?;
    }
    for referrer in &image.referrers {
        let how = push_referrer(&repo, image, referrer, mount_from.as_deref(), !present).await?;
        report.referrers.push(how);
    }
    Ok(report)
}

/// Puts one blob in the destination: sent (or mounted from `mount_from`,
/// an earlier destination or the base's repository), or mounted from the
/// registry cache that holds it.
async fn send(
    repo: &strata_registry::Repository<'_>,
    digest: &Digest,
    size: u64,
    upload: &Upload,
    mount_from: Option<&str>,
) -> Result<BlobOutcome, RegistryError> {
    match upload {
        Upload::Send(payload) => repo.push_blob(digest, size, payload, mount_from).await,
        Upload::Mount(from) => repo.mount_blob(digest, &from.repository).await,
    }
}

/// The descriptors listed under a referrers tag (none when it is absent).
async fn referrers_index(
    repo: &strata_registry::Repository<'_>,
    tag: &str,
) -> Result<Vec<serde_json::Value>, RegistryError> {
    Ok(match repo.manifest_if_any(tag).await? {
        Some((existing, _)) => serde_json::from_slice::<serde_json::Value>(&existing)
            .ok()
            .and_then(|v| v["manifests"].as_array().cloned())
            .unwrap_or_default(),
        None => Vec::new(),
    })
}

/// Pushes an artifact about the image. A registry with the referrers API
/// answers the manifest with `OCI-Subject`; for one without (docker-registry
/// 2.8), the artifact is added to the index under the referrers tag
/// `sha256-<hex>`, as the distribution spec's fallback says.
async fn push_referrer(
    repo: &strata_registry::Repository<'_>,
    image: &Image,
    referrer: &Referrer,
    mount_from: Option<&str>,
    blobs_pushed: bool,
) -> Result<String, RegistryError> {
    let manifest = &referrer.manifest;
    let digest = manifest.digest.to_string();
    let tag = crate::sbom::artifact::referrers_tag(&image.top.digest);
    let listed =
        |entries: &[serde_json::Value]| entries.iter().any(|e| e["digest"] == digest.as_str());
    if !blobs_pushed {
        // A re-push: the artifact and its entry under the referrers tag are
        // there already (a registry with the referrers API is asked again
        // below, which costs one `PUT`).
        if repo.has_manifest(&manifest.digest).await? && listed(&referrers_index(repo, &tag).await?)
        {
            return Ok(format!(
                "{} under the tag {tag} (already there)",
                referrer.artifact_type
            ));
        }
        for (digest, size, upload) in &referrer.blobs {
            send(repo, digest, *size, upload, mount_from).await?;
        }
    }
    let native = repo
        .put_manifest(&digest, &manifest.media_type, &manifest.bytes)
        .await?;
    if native {
        return Ok(format!("{} via the referrers API", referrer.artifact_type));
    }
    let mut entries = referrers_index(repo, &tag).await?;
    entries.retain(|e| e["digest"] != digest.as_str());
    entries.push(serde_json::json!({
        "mediaType": manifest.media_type,
        "digest": digest,
        "size": manifest.bytes.len(),
        "artifactType": referrer.artifact_type,
    }));
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": entries,
    });
    let bytes =
        strata_oci::json::to_canonical_vec(&index).map_err(|e| RegistryError::Malformed {
            what: format!("the referrers index {tag}"),
            source: e.into(),
        })?;
    repo.put_manifest(
        &tag,
        "application/vnd.oci.image.index.v1+json",
        &bytes::Bytes::from(bytes),
    )
    .await?;
    Ok(format!("{} under the tag {tag}", referrer.artifact_type))
}

/// Writes the pushed digest for CI (`--digest-file`), whole or not at all.
pub fn write_digest_file(path: &std::path::Path, digest: &Digest) -> Result<(), PushError> {
    strata_oci::atomic::write_file(path, |mut f| {
        std::io::Write::write_all(&mut f, format!("{digest}\n").as_bytes())
    })
    .map_err(|source| PushError::DigestFile {
        path: path.to_owned(),
        source,
    })
}
