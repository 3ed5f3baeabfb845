//! The pipeline, end to end: recipe → base → assemble → layers → image → blobs.
//! Writing the blobs out is the caller's choice (see `output`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use std::path::PathBuf;

use crate::assemble::debian::InstallError;
use crate::assemble::{self, AssembleError, Planned};
use crate::base::{self, BaseError, BaseImage};
use crate::image::labels::{self, Provenance};
use crate::image::{self, ImageError, ImageSpec, ManifestLayer};
use crate::layer::compress::Compression;
use crate::layer::{self, LayerError};
use crate::lock::{self, Lock, LockError};
use crate::output::{Blob, BlobSource, Built, PlatformImage};
use crate::provenance::{self, EpochError};
use crate::recipe::{DebianSpec, Recipe};
use crate::sbom;
use strata_cache::Cache;
use strata_client::fetch::Fetcher;
use strata_debian::solve::{Installed, Request};
use strata_oci::platform::Platform;
use strata_oci::reference::{Tag, TagError};

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum BuildError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Base(#[from] BaseError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Assemble(#[from] AssembleError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Layer(#[from] LayerError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Epoch(#[from] EpochError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Debian(#[from] strata_debian::DebianError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Install(#[from] InstallError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Lock(#[from] LockError),
    #[error("cannot write the image's SBOM")]
    Sbom(#[source] sbom::SbomError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Tag(#[from] TagError),
}

pub struct BuildOptions {
    pub compression: Compression,
    /// Tags besides the recipe's version.
    pub tags: Vec<String>,
    /// Where the recipe's lock lives (`image.lock` beside `image.kdl`).
    pub lock_path: PathBuf,
    /// A missing or stale lock is an error instead of being re-resolved.
    pub locked: bool,
    /// Use the cache only: no network at all.
    pub offline: bool,
    /// Credentials and TLS for registry bases.
    pub registry: strata_registry::Options,
    /// The SBOM to attach to the image, if any.
    pub sbom: Option<sbom::Format>,
}

impl BuildOptions {
    /// The defaults for the recipe at `recipe_path`: gzip, no extra tags,
    /// the lock beside the recipe, network allowed, an SPDX SBOM.
    pub fn new(recipe_path: &std::path::Path, registry: strata_registry::Options) -> BuildOptions {
        BuildOptions {
            compression: Compression::default(),
            tags: Vec::new(),
            lock_path: lock::path_for(recipe_path),
            locked: false,
            offline: false,
            registry,
            sbom: Some(sbom::Format::Spdx),
        }
    }
}

/// Every platform's base, pulled or read once per build.
fn bases(
    recipe: &Recipe,
    options: &BuildOptions,
    cache: &Cache,
) -> Result<Vec<(Platform, BaseImage)>, BuildError> {
    let sources = base::Sources::new(cache, &options.registry, options.offline);
    let mut bases = Vec::new();
    for platform in &recipe.platforms {
        bases.push((
            platform.value.clone(),
            base::resolve(recipe, &platform.value, &sources)?,
        ));
    }
    Ok(bases)
}

/// The lock to build from: the one on disk when it matches the recipe, else
/// a fresh resolution, written beside the recipe (unless `--locked`).
fn current_lock(
    recipe: &Recipe,
    debian: &DebianSpec,
    bases: &[(Platform, BaseImage)],
    options: &BuildOptions,
    fetcher: &Fetcher,
) -> Result<(Lock, bool), BuildError> {
    let path = &options.lock_path;
    let on_disk = Lock::read(path)?;
    let exists = on_disk.is_some();
    if let Some(lock) = on_disk.filter(|l| l.inputs == lock::inputs(recipe, debian)) {
        tracing::info!(lock = %path.display(), "the lock matches the recipe");
        return Ok((lock, false));
    }
    tracing::info!(lock = %path.display(), exists, "the lock is missing or stale");
    if options.locked {
        return Err(if exists {
            LockError::Stale { path: path.clone() }
        } else {
            LockError::Missing { path: path.clone() }
        }
        .into());
    }
    Ok((resolve_lock(recipe, debian, bases, fetcher)?, true))
}

/// Resolves the recipe's packages afresh and writes the lock (`strata lock`).
pub fn lock(
    recipe: &Recipe,
    options: &BuildOptions,
    cache: &Cache,
) -> Result<Option<Lock>, BuildError> {
    let Some(debian) = &recipe.debian else {
        return Ok(None);
    };
    let bases = bases(recipe, options, cache)?;
    let fetcher =
        Fetcher::new(cache.clone(), options.offline).map_err(strata_debian::DebianError::from)?;
    let lock = resolve_lock(recipe, debian, &bases, &fetcher)?;
    lock.write(&options.lock_path)?;
    Ok(Some(lock))
}

fn resolve_lock(
    recipe: &Recipe,
    debian: &DebianSpec,
    bases: &[(Platform, BaseImage)],
    fetcher: &Fetcher,
) -> Result<Lock, BuildError> {
    let installed: Vec<(Platform, Vec<Installed>)> = bases
        .iter()
        .map(|(p, b)| (p.clone(), strata_debian::installed(b.lower.dpkg_status())))
        .collect();
    let requests: Vec<Request> = debian
        .install
        .iter()
        .map(|p| Request {
            name: p.name.clone(),
            version: p.version.clone(),
        })
        .collect();
    let step = strata_progress::get().step("resolve", "Debian packages");
    let resolution = strata_debian::resolve(
        &debian.repositories,
        &requests,
        &recipe.context,
        &installed,
        fetcher,
    )?;
    let count: usize = resolution.platforms.values().map(Vec::len).sum();
    step.finish(&format!("{count} locked"));
    Ok(Lock {
        inputs: lock::inputs(recipe, debian),
        repositories: resolution.repositories,
        platforms: resolution.platforms,
    })
}

fn plan_platform(
    recipe: &Recipe,
    platform: &Platform,
    base: &BaseImage,
    packages: Option<(&Fetcher, &Lock)>,
    epoch: u64,
    timings: &mut BTreeMap<&'static str, Duration>,
) -> Result<Planned, BuildError> {
    let mut lower = base.lower.clone();
    let mut plans = Vec::new();
    let mut facts = Vec::new();
    if let Some((fetcher, lock)) = packages {
        let started = Instant::now();
        let step = strata_progress::get().step("install", format!("packages for {platform}"));
        if let Some(installed) =
            assemble::debian::layer(recipe, lock, platform, &lower, fetcher, epoch)?
        {
            lower.view.apply(&installed.plan);
            plans.push(installed.plan);
            facts = installed.packages;
        }
        step.finish("");
        *timings.entry("packages").or_default() += started.elapsed();
    }
    let started = Instant::now();
    let assembly = assemble::assemble(recipe, &lower, epoch)?;
    let mut view = lower.view;
    for plan in &assembly.layers {
        view.apply(plan);
    }
    plans.extend(assembly.layers);
    *timings.entry("assemble").or_default() += started.elapsed();
    Ok(Planned {
        platform: platform.clone(),
        plans,
        user: assembly.user,
        packages: facts,
        view,
        base: base.name.clone().zip(base.digest),
        base_packages: strata_debian::base_packages(base.lower.dpkg_status()),
    })
}

/// Everything a build would write, per platform, without writing it: the
/// bases, the lock (resolved when there is none, but never written) and the
/// planned layers. `strata lint` looks at these.
pub fn plan(
    recipe: &Recipe,
    options: &BuildOptions,
    cache: &Cache,
) -> Result<Vec<(BaseImage, Planned)>, BuildError> {
    let bases = bases(recipe, options, cache)?;
    let fetcher =
        Fetcher::new(cache.clone(), options.offline).map_err(strata_debian::DebianError::from)?;
    let lock = match &recipe.debian {
        Some(debian) => Some(current_lock(recipe, debian, &bases, options, &fetcher)?.0),
        None => None,
    };
    let mut timings = BTreeMap::new();
    let mut out = Vec::new();
    for (platform, base) in bases {
        let packages = lock.as_ref().map(|l| (&fetcher, l));
        let planned = plan_platform(recipe, &platform, &base, packages, 0, &mut timings)?;
        out.push((base, planned));
    }
    Ok(out)
}

/// Per-layer facts for reports.
#[derive(Debug, Clone)]
pub struct LayerReport {
    pub name: String,
    pub blob: layer::LayerBlob,
    pub cached: bool,
}

pub struct BuildReport {
    pub built: Built,
    /// The lock used, and whether this build (re)wrote it.
    pub lock: Option<(Lock, bool)>,
    pub layers: Vec<LayerReport>,
    /// Time spent per phase, summed over platforms.
    pub timings: BTreeMap<&'static str, Duration>,
    /// What each platform's layers hold (for the SBOM).
    pub planned: Vec<Planned>,
}

pub fn build(
    recipe: &Recipe,
    options: &BuildOptions,
    cache: &Cache,
) -> Result<BuildReport, BuildError> {
    let mut timings = BTreeMap::new();
    let mut tags: Vec<String> = Vec::new();
    for tag in std::iter::once(&recipe.tag().to_owned()).chain(&options.tags) {
        tag.parse::<Tag>()?;
        if !tags.contains(tag) {
            tags.push(tag.clone());
        }
    }
    let epoch = provenance::epoch(&recipe.context)?;
    let created = provenance::rfc3339(epoch);
    let revision = provenance::revision(&recipe.context);

    let started = Instant::now();
    let bases = bases(recipe, options, cache)?;
    *timings.entry("base").or_default() += started.elapsed();

    let packages = match &recipe.debian {
        Some(debian) => {
            let started = Instant::now();
            let fetcher = Fetcher::new(cache.clone(), options.offline)
                .map_err(strata_debian::DebianError::from)?;
            let (lock, written) = current_lock(recipe, debian, &bases, options, &fetcher)?;
            *timings.entry("resolve").or_default() += started.elapsed();
            Some((fetcher, lock, written))
        }
        None => None,
    };

    let mut blobs: BTreeMap<String, Blob> = BTreeMap::new();
    let mut images = Vec::new();
    let mut reports = Vec::new();
    let mut planned_all = Vec::new();
    for (platform, base) in &bases {
        let fetched = packages.as_ref().map(|(f, l, _)| (f, l));
        let planned = plan_platform(recipe, platform, base, fetched, epoch, &mut timings)?;
        let plans = &planned.plans;

        let started = Instant::now();
        let mut layers = Vec::new();
        for plan in plans {
            let step = strata_progress::get().step("compress", plan.name.clone());
            let built = layer::build(plan, options.compression, cache)?;
            step.finish(&if built.cached {
                "cached".to_owned()
            } else {
                strata_progress::size(built.blob.size)
            });
            tracing::info!(
                layer = %plan.name,
                digest = %built.blob.digest,
                size = built.blob.size,
                cached = built.cached,
                "layer"
            );
            blobs.insert(
                built.blob.digest.hex(),
                Blob {
                    digest: built.blob.digest,
                    size: built.blob.size,
                    source: BlobSource::File(built.path.clone()),
                },
            );
            layers.push((ManifestLayer::from(&built.blob), plan.created_by.clone()));
            reports.push(LayerReport {
                name: plan.name.clone(),
                blob: built.blob,
                cached: built.cached,
            });
        }
        *timings.entry("layers").or_default() += started.elapsed();

        for (layer, path) in &base.layers {
            blobs.insert(
                layer.digest.hex(),
                Blob {
                    digest: layer.digest,
                    size: layer.size,
                    source: BlobSource::File(path.clone()),
                },
            );
        }
        let provenance = Provenance {
            created: created.clone(),
            revision: revision.clone(),
            base_name: base.name.clone(),
            base_digest: base.digest.map(|d| d.to_string()),
        };
        let annotations = labels::oci_annotations(recipe, &provenance);
        let base_labels = base
            .config
            .as_ref()
            .and_then(|c| c.config().as_ref())
            .and_then(|c| c.labels().as_ref());
        let config_labels = labels::labels(recipe, base_labels, &annotations);
        let base_layers: Vec<ManifestLayer> = base.layers.iter().map(|(l, _)| l.clone()).collect();
        let image = image::image(&ImageSpec {
            platform,
            base_config: base.config.as_ref(),
            base_layers: &base_layers,
            layers: &layers,
            user: planned.user.as_deref(),
            runtime: &recipe.runtime,
            tre: recipe.tre,
            created: &created,
            labels: &config_labels,
            annotations: &annotations,
        })?;
        for json in [&image.config, &image.manifest] {
            blobs.insert(json.digest.hex(), Blob::json(json));
        }
        let mut all_layers = base_layers;
        all_layers.extend(layers.into_iter().map(|(l, _)| l));
        images.push(PlatformImage {
            platform: platform.clone(),
            config: image.config,
            manifest: image.manifest,
            layers: all_layers,
        });
        planned_all.push(planned);
    }

    let top = match images.as_slice() {
        [one] => image::platform_descriptor(&one.manifest, &one.platform)?,
        many => {
            let provenance = Provenance {
                created: created.clone(),
                revision,
                ..Provenance::default()
            };
            let manifests: Vec<_> = many
                .iter()
                .map(|i| (i.manifest.clone(), i.platform.clone()))
                .collect();
            let index = image::index(&manifests, &labels::oci_annotations(recipe, &provenance))?;
            blobs.insert(index.digest.hex(), Blob::json(&index));
            index.descriptor()
        }
    };
    let mut referrers = Vec::new();
    if let Some(format) = options.sbom {
        let started = Instant::now();
        referrers.push(attach_sbom(
            recipe,
            format,
            &planned_all,
            &top,
            &created,
            cache,
            &mut blobs,
        )?);
        *timings.entry("sbom").or_default() += started.elapsed();
    }
    // A fresh lock is written only once the whole build has succeeded.
    if let Some((_, lock, true)) = &packages {
        lock.write(&options.lock_path)?;
    }
    Ok(BuildReport {
        lock: packages.map(|(_, lock, written)| (lock, written)),
        built: Built {
            blobs: blobs.into_values().collect(),
            top,
            tags,
            images,
            referrers,
            epoch,
        },
        layers: reports,
        timings,
        planned: planned_all,
    })
}

/// Writes the SBOM and its artifact manifest into `blobs`; returns the
/// artifact's descriptor for `index.json`.
fn attach_sbom(
    recipe: &Recipe,
    format: sbom::Format,
    planned: &[Planned],
    top: &oci_spec::image::Descriptor,
    created: &str,
    cache: &Cache,
    blobs: &mut BTreeMap<String, Blob>,
) -> Result<oci_spec::image::Descriptor, BuildError> {
    let media_type = format.media_type();
    let image =
        strata_oci::layout::descriptor_digest(top).expect("strata's own digests are sha256");
    let inventory =
        sbom::Inventory::new(recipe, planned, image, created, cache).map_err(BuildError::Sbom)?;
    let document = inventory.render(format);
    let manifest =
        sbom::artifact::manifest(top, media_type, &document, format.file_name(), created);
    for blob in [
        Blob::bytes(document),
        Blob::bytes(sbom::artifact::EMPTY_CONFIG.to_vec()),
        Blob::json(&manifest),
    ] {
        blobs.insert(blob.digest.hex(), blob);
    }
    Ok(sbom::artifact::descriptor(&manifest, media_type))
}
