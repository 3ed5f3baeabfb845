//! The base image: where it comes from, its verified layers, and the view of
//! its filesystem that assembly needs (paths, modes, symlinks, accounts).
//!
//! Base layer blobs are never re-serialised: the output copies them byte for
//! byte. Reading them here only verifies them and learns what they hold.

use std::io::{self, BufReader, Read};
use std::path::PathBuf;

use std::cell::OnceCell;

use oci_spec::image::{Descriptor, ImageConfiguration, ImageManifest};

use std::collections::BTreeMap;

use crate::recipe::{BaseRef, Recipe, RecipeError};
use strata_cache::{Cache, CacheError};
use strata_oci::digest::Digest;
use strata_oci::layout::{HashingReader, Layout, LayoutError, descriptor_digest};
use strata_oci::manifest::ManifestLayer;
use strata_oci::path::ImagePath;
use strata_oci::platform::Platform;
use strata_oci::view::{View, ViewEntry, ViewKind, Whiteout};
use strata_registry::{Client, RegistryError};

mod archive;
mod pull;

/// What the base contributes to assembly: its paths, and the text of the
/// few files strata merges into (accounts, the dpkg database).
#[derive(Debug, Clone, Default)]
pub struct Lower {
    pub view: View,
    pub files: BTreeMap<ImagePath, String>,
    /// The base config's `User`, when it names one.
    pub user: Option<String>,
}

impl Lower {
    /// The files whose text assembly needs from the base.
    pub fn wants(path: &ImagePath) -> bool {
        matches!(
            path.as_str(),
            "etc/passwd" | "etc/group" | "etc/shadow" | "etc/gshadow"
        ) || strata_debian::is_status_file(path.as_str())
    }

    /// The texts of the base's dpkg database.
    pub fn dpkg_status(&self) -> impl Iterator<Item = &str> {
        self.files
            .iter()
            .filter(|(p, _)| strata_debian::is_status_file(p.as_str()))
            .map(|(_, text)| text.as_str())
    }

    pub fn text(&self, path: &str) -> Option<&str> {
        let path = ImagePath::from_relative(path).ok()?;
        self.files.get(&path).map(String::as_str)
    }
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum BaseError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Recipe(#[from] RecipeError),
    #[error("the base layout is unusable")]
    #[diagnostic(transparent)]
    Layout(#[from] LayoutError),
    #[error("cannot pull the base")]
    #[diagnostic(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Cache(#[from] CacheError),
    #[error("offline, and the base `{reference}` is not in the cache")]
    #[diagnostic(help("run the same build once without `--offline` to fill the cache"))]
    Offline { reference: String },
}

/// One platform's base: what assembly builds on and what the manifest lists first.
#[derive(Default)]
pub struct BaseImage {
    /// `base.name` and `base.digest` annotations; `None` for scratch.
    pub name: Option<String>,
    pub digest: Option<Digest>,
    pub config: Option<ImageConfiguration>,
    /// The base's layers and where their blobs are.
    pub layers: Vec<(ManifestLayer, PathBuf)>,
    pub lower: Lower,
}

/// Where bases come from besides the recipe's folder: the cache (which
/// keeps pulled and unpacked bases) and registries, reached lazily so that
/// a build whose base is cached needs no network at all.
pub struct Sources<'a> {
    pub cache: &'a Cache,
    pub registry: &'a strata_registry::Options,
    pub offline: bool,
    client: OnceCell<Client>,
}

impl<'a> Sources<'a> {
    pub fn new(cache: &'a Cache, registry: &'a strata_registry::Options, offline: bool) -> Self {
        Sources {
            cache,
            registry,
            offline,
            client: OnceCell::new(),
        }
    }

    fn client(&self) -> Result<&Client, RegistryError> {
        if let Some(client) = self.client.get() {
            return Ok(client);
        }
        let client = Client::new(self.registry.clone())?;
        Ok(self.client.get_or_init(|| client))
    }
}

pub fn resolve(
    recipe: &Recipe,
    platform: &Platform,
    sources: &Sources,
) -> Result<BaseImage, BaseError> {
    let (layout, desc, name) = match &recipe.base.value {
        BaseRef::Scratch => return Ok(BaseImage::default()),
        BaseRef::OciLayout { path, digest } => {
            let root = recipe.context.join(path);
            let layout = Layout::open(&root).map_err(|e| match e {
                LayoutError::NotALayout { .. } => BaseError::Recipe(recipe.error(
                    recipe.base.span,
                    format!("`{}` is not an OCI image layout", root.display()),
                    "no layout here",
                    Some("the path is relative to the recipe's folder; build the base with `strata build -o DIR`".into()),
                )),
                other => other.into(),
            })?;
            let desc = find_pinned(
                recipe,
                &layout,
                digest,
                &format!(
                    "`strata inspect {}` lists the digests it holds",
                    path.display()
                ),
            )?;
            (layout, desc, format!("oci:{}", path.display()))
        }
        BaseRef::OciArchive { path, digest } => {
            let layout = archive::unpack(recipe, path, sources.cache)?;
            let desc = find_pinned(
                recipe,
                &layout,
                digest,
                &format!(
                    "`skopeo inspect oci-archive:{}` shows what it holds",
                    path.display()
                ),
            )?;
            (layout, desc, format!("oci-archive:{}", path.display()))
        }
        BaseRef::Registry(reference) => {
            let (layout, desc) = pull::pull(recipe, reference, platform, sources)?;
            let mut name = reference.clone();
            name.digest = None;
            (layout, desc, name.to_string())
        }
    };
    let (manifest_desc, manifest) = layout.manifest_for(&desc, platform)?;
    let config: ImageConfiguration = layout.read_json(manifest.config(), "image config")?;
    if config.os().to_string() != platform.os
        || config.architecture().to_string() != platform.architecture
    {
        return Err(recipe
            .error(
                recipe.base.span,
                format!(
                    "the base is {}/{}, but the recipe builds for {platform}",
                    config.os(),
                    config.architecture()
                ),
                "wrong platform",
                Some("pick a base for the recipe's platform, or change `platform`".into()),
            )
            .into());
    }
    let (layers, mut lower) = read_layers(&layout, &manifest, &config)?;
    lower.user = config
        .config()
        .as_ref()
        .and_then(|c| c.user().clone())
        .filter(|u| !u.is_empty());
    Ok(BaseImage {
        name: Some(name),
        digest: Some(descriptor_digest(&manifest_desc).map_err(|m| layout.invalid("manifest", m))?),
        config: Some(config),
        layers,
        lower,
    })
}

/// The entry of a layout's `index.json` with the pinned digest.
fn find_pinned(
    recipe: &Recipe,
    layout: &Layout,
    digest: &Digest,
    hint: &str,
) -> Result<Descriptor, BaseError> {
    let found = layout
        .index
        .manifests()
        .iter()
        .find(|d| descriptor_digest(d).ok() == Some(*digest));
    match found {
        Some(desc) => Ok(desc.clone()),
        None => Err(recipe
            .error(
                recipe.base.span,
                format!(
                    "`{}` holds no image with digest {digest}",
                    layout.root().display()
                ),
                "digest not in the base",
                Some(hint.to_owned()),
            )
            .into()),
    }
}

type Layers = (Vec<(ManifestLayer, PathBuf)>, Lower);

/// Verifies every layer (digest, size and diff_id) while reading its tar
/// headers into the lower view, applying whiteouts in order.
fn read_layers(
    layout: &Layout,
    manifest: &ImageManifest,
    config: &ImageConfiguration,
) -> Result<Layers, LayoutError> {
    let diff_ids = config.rootfs().diff_ids();
    if diff_ids.len() != manifest.layers().len() {
        return Err(layout.invalid(
            "image config",
            format!(
                "{} diff_ids for {} layers",
                diff_ids.len(),
                manifest.layers().len()
            ),
        ));
    }
    let mut lower = Lower::default();
    let mut layers = Vec::new();
    for (desc, diff_id) in manifest.layers().iter().zip(diff_ids) {
        let digest = descriptor_digest(desc).map_err(|m| layout.invalid("manifest", m))?;
        let diff_id: Digest =
            diff_id
                .parse()
                .map_err(|e: strata_oci::digest::ParseDigestError| {
                    layout.invalid("image config", e.to_string())
                })?;
        let file = layout.open_blob(&digest, Some(desc.size()))?;
        let io_err = |source| LayoutError::Io {
            path: layout.blob_path(&digest),
            source,
        };
        let mut compressed = HashingReader::new(BufReader::new(file));
        let media_type = oci_layer_type(desc.media_type().as_ref())
            .map_err(|m| layout.invalid("manifest", m))?;
        // Read everything first, then judge: a blob whose bytes do not match its
        // digest is reported as that, not as whatever decoding error it causes.
        let unpacked: io::Result<Digest> = (|| {
            let decoder = strata_oci::compression::Compression::of_media_type(&media_type)
                .decoder(&mut compressed)?;
            let mut tar = HashingReader::new(decoder);
            read_tar(&mut tar, &mut lower)?;
            Ok(tar.finish()?.0)
        })();
        let (actual, _) = compressed.finish().map_err(io_err)?;
        layout.check_digest(&digest, actual)?;
        let actual_diff_id = unpacked
            .map_err(|e| layout.invalid("layer", format!("{digest} is not a readable tar: {e}")))?;
        if actual_diff_id != diff_id {
            return Err(layout.invalid(
                "layer",
                format!("{digest} unpacks to {actual_diff_id}, but the config says {diff_id}"),
            ));
        }
        layers.push((
            ManifestLayer {
                media_type,
                digest,
                size: desc.size(),
                diff_id,
            },
            layout.blob_path(&digest),
        ));
    }
    Ok((layers, lower))
}

/// The most strata reads of one account or dpkg status file from a base
/// layer, and of all of them together: a dpkg status of 2,000 packages is
/// about 5 MiB; a hostile layer's "status file" can be gigabytes.
const MAX_TEXT_FILE: u64 = 16 << 20;
const MAX_TEXT_FILES: u64 = 64 << 20;

#[derive(Debug, thiserror::Error)]
#[error(
    "`/{path}` takes more than the {} MiB strata reads of a base's account and dpkg status files (or {} MiB of them together)",
    MAX_TEXT_FILE >> 20,
    MAX_TEXT_FILES >> 20
)]
struct TextFileTooLarge {
    path: String,
}

fn read_tar(reader: &mut impl Read, lower: &mut Lower) -> io::Result<()> {
    let mut archive = strata_oci::tarball::Archive::new(reader);
    let mut removals = Vec::new();
    let mut opaque = Vec::new();
    let mut additions = Vec::new();
    // What earlier layers left of the files read: the total is capped.
    let mut kept: u64 = lower.files.values().map(|t| t.len() as u64).sum();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let raw = entry.path()?.to_string_lossy().into_owned();
        let Ok(path) = ImagePath::from_relative(&raw) else {
            continue;
        };
        let name = path.file_name().to_owned();
        let parent = path.parent().unwrap_or_else(ImagePath::root);
        match Whiteout::of(&name) {
            Some(Whiteout::Opaque) => {
                opaque.push(parent);
                continue;
            }
            Some(Whiteout::Remove(hidden)) => {
                removals.push(parent.join(hidden));
                continue;
            }
            Some(Whiteout::Internal) => continue,
            None => {}
        }
        let header = entry.header();
        let kind = match header.entry_type() {
            tar::EntryType::Directory => ViewKind::Dir,
            tar::EntryType::Symlink => ViewKind::Symlink(
                entry
                    .link_name()?
                    .map(|l| l.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            ),
            tar::EntryType::Regular | tar::EntryType::Link | tar::EntryType::Continuous => {
                ViewKind::File
            }
            _ => ViewKind::Other,
        };
        let view_entry = ViewEntry {
            kind,
            mode: header.mode()? & 0o7777,
            uid: header.uid()? as u32,
            gid: header.gid()? as u32,
        };
        if view_entry.kind == ViewKind::File && header.entry_type().is_file() && Lower::wants(&path)
        {
            let cap = MAX_TEXT_FILE.min(MAX_TEXT_FILES.saturating_sub(kept));
            let mut bytes = Vec::new();
            (&mut entry).take(cap + 1).read_to_end(&mut bytes)?;
            if bytes.len() as u64 > cap {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    TextFileTooLarge {
                        path: path.as_str().to_owned(),
                    },
                ));
            }
            kept += bytes.len() as u64;
            lower
                .files
                .insert(path.clone(), String::from_utf8_lossy(&bytes).into_owned());
        }
        additions.push((path, view_entry));
    }
    for dir in opaque {
        lower.view.remove_below(&dir);
    }
    for path in removals {
        lower.view.remove(&path);
    }
    for (path, entry) in additions {
        lower.view.insert(path, entry);
    }
    // A whiteout may have removed files read from an earlier layer.
    let view = &lower.view;
    lower.files.retain(|path, _| view.get(path).is_some());
    Ok(())
}

/// Docker's layer media types, as OCI names them: the blob stays byte for
/// byte the same, only the manifest that lists it is OCI.
fn oci_layer_type(media_type: &str) -> Result<String, String> {
    Ok(match media_type {
        "application/vnd.docker.image.rootfs.diff.tar.gzip" => {
            "application/vnd.oci.image.layer.v1.tar+gzip".to_owned()
        }
        "application/vnd.docker.image.rootfs.diff.tar.zstd" => {
            "application/vnd.oci.image.layer.v1.tar+zstd".to_owned()
        }
        "application/vnd.docker.image.rootfs.diff.tar" => {
            "application/vnd.oci.image.layer.v1.tar".to_owned()
        }
        foreign if foreign.contains("foreign") || foreign.contains("nondistributable") => {
            return Err(format!(
                "it has a non-distributable layer ({foreign}), which strata cannot copy"
            ));
        }
        other => other.to_owned(),
    })
}

/// Every blob of a registry base, from its pinned manifest or index: the
/// manifests, their configs and layers. `get` makes a blob local (from the
/// cache, an archive, a registry) and gives its path, or `None` when it is
/// nowhere; a manifest's children are known once it is local. The pinned
/// digest's size is not known before: it is given as 0 and read from the
/// file. What `strata cache export` and `import` move of a base.
pub fn blobs<E>(
    digest: &Digest,
    mut get: impl FnMut(&crate::layer::shared::PackageFile) -> Result<Option<PathBuf>, E>,
) -> Result<Vec<crate::layer::shared::PackageFile>, E> {
    use crate::layer::shared::PackageFile;
    let mut out = Vec::new();
    let mut pending = vec![PackageFile {
        sha256: *digest,
        size: 0,
        media_type: "application/vnd.oci.image.index.v1+json".to_owned(),
    }];
    while let Some(mut manifest) = pending.pop() {
        let Some(path) = get(&manifest)? else {
            continue;
        };
        let Ok(bytes) = strata_oci::regular::read_capped(&path, strata_oci::layout::MAX_DOCUMENT)
        else {
            continue;
        };
        let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        if let Some(media_type) = json["mediaType"].as_str() {
            manifest.media_type = media_type.to_owned();
        }
        manifest.size = bytes.len() as u64;
        let file = |d: &serde_json::Value| {
            Some(PackageFile {
                sha256: d["digest"].as_str()?.parse().ok()?,
                size: d["size"].as_u64()?,
                media_type: d["mediaType"].as_str()?.to_owned(),
            })
        };
        pending.extend(
            json["manifests"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(file),
        );
        for blob in std::iter::once(&json["config"])
            .chain(json["layers"].as_array().into_iter().flatten())
            .filter_map(file)
        {
            if get(&blob)?.is_some() {
                out.push(blob);
            }
        }
        out.push(manifest);
    }
    Ok(out)
}
