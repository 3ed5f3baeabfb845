//! The image's SBOM: every Debian package (with the sha256 of its `.deb`
//! and the licences of its copyright file), every Python wheel (with its
//! sha256), the base image and the recipe's
//! own files, written as SPDX 2.3 or CycloneDX 1.5 JSON and attached to the
//! image as an OCI artifact whose `subject` is the image.
//!
//! Nothing in a document depends on the machine or the moment: names come
//! from the recipe, times from SOURCE_DATE_EPOCH, identifiers from digests,
//! and every list is sorted, so the SBOM is as reproducible as the image.

pub mod artifact;
mod cyclonedx;
pub mod license;
mod spdx;

use std::io;

use crate::assemble::Planned;
use crate::layer::compress::Encoding;
use crate::layer::files;
use crate::recipe::Recipe;
use strata_cache::Cache;
pub use strata_debian::BasePackage;
use strata_oci::digest::Digest;
use strata_oci::entry::{Kind, LayerPlan};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Spdx,
    Cyclonedx,
}

impl Format {
    pub const ALL: [Format; 2] = [Format::Spdx, Format::Cyclonedx];

    pub fn media_type(self) -> &'static str {
        match self {
            Format::Spdx => spdx::MEDIA_TYPE,
            Format::Cyclonedx => cyclonedx::MEDIA_TYPE,
        }
    }

    /// The document's file name (the artifact layer's title).
    pub fn file_name(self) -> &'static str {
        match self {
            Format::Cyclonedx => "sbom.cdx.json",
            Format::Spdx => "sbom.spdx.json",
        }
    }
}

/// What the SBOM lists, gathered from a finished build.
#[derive(Debug, Clone)]
pub struct Inventory {
    pub name: String,
    pub version: String,
    /// RFC 3339, from SOURCE_DATE_EPOCH.
    pub created: String,
    /// The recipe's `licenses`, when given.
    pub licenses: Option<String>,
    /// The manifest or index the SBOM describes.
    pub image: Digest,
    pub bases: Vec<(String, Digest)>,
    pub packages: Vec<Package>,
    /// Packages the base's dpkg database lists: no `.deb` (and so no hash or
    /// licence) is known for them.
    pub base_packages: Vec<BasePackage>,
    pub files: Vec<File>,
}

/// Where a package came from, which decides its purl.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Ecosystem {
    Debian,
    Python,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Package {
    pub ecosystem: Ecosystem,
    pub name: String,
    pub version: String,
    pub architecture: String,
    pub sha256: Digest,
    pub url: String,
    /// SPDX ids of the copyright file's licences.
    pub licenses: Vec<String>,
}

impl Package {
    pub fn purl(&self) -> String {
        match self.ecosystem {
            Ecosystem::Debian => purl(&self.name, &self.version, &self.architecture),
            // The name is PEP 503-normalized already, as the purl spec asks.
            Ecosystem::Python => format!("pkg:pypi/{}@{}", self.name, purl_escape(&self.version)),
        }
    }
}

/// `pkg:deb/debian/NAME@VERSION?arch=ARCH`, as Syft and Trivy write it.
pub fn purl(name: &str, version: &str, architecture: &str) -> String {
    format!(
        "pkg:deb/debian/{name}@{}?arch={architecture}",
        purl_escape(version)
    )
}

/// Percent-encodes what a purl version may not hold as is (`+`, `:`, `~`…).
fn purl_escape(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A file of the recipe's layers, as the layer writer hashed it.
pub use crate::layer::files::FileHash as File;

#[derive(Debug, thiserror::Error)]
pub enum SbomError {
    #[error("cannot read the files of layer `{layer}` to hash them")]
    Read {
        layer: String,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Cache(#[from] strata_cache::CacheError),
}

/// The regular files of a recipe layer with their hashes: recorded when the
/// layer was written, or read and hashed now (a layer found in a cache).
fn layer_files(plan: &LayerPlan, cache: &Cache) -> Result<Vec<File>, SbomError> {
    let key = crate::layer::key(plan, Encoding::default());
    if let Some(files) = cache.read_record::<Vec<File>>(files::RECORDS, &key) {
        return Ok(files);
    }
    let mut listed = Vec::new();
    for entry in &plan.entries {
        if let Kind::File(content) = &entry.kind {
            let file = content
                .open()
                .and_then(|reader| files::hash(entry.path.to_string(), reader))
                .map_err(|source| SbomError::Read {
                    layer: plan.name.clone(),
                    source,
                })?;
            listed.push(file);
        }
    }
    cache.write_record(files::RECORDS, &key, &listed)?;
    Ok(listed)
}

impl Inventory {
    pub fn new(
        recipe: &Recipe,
        planned: &[Planned],
        image: Digest,
        created: &str,
        cache: &Cache,
    ) -> Result<Inventory, SbomError> {
        let mut packages = Vec::new();
        let mut files = Vec::new();
        let mut bases = Vec::new();
        let mut base_packages = Vec::new();
        for plan in planned {
            base_packages.extend(plan.base_packages.iter().cloned());
            for facts in &plan.packages {
                let p = &facts.locked;
                packages.push(Package {
                    ecosystem: Ecosystem::Debian,
                    name: p.name.clone(),
                    version: p.version.clone(),
                    architecture: p.architecture.clone(),
                    sha256: p.sha256,
                    url: p.url(),
                    licenses: facts.licenses.iter().map(|l| license::spdx_id(l)).collect(),
                });
            }
            for w in &plan.wheels {
                packages.push(Package {
                    ecosystem: Ecosystem::Python,
                    name: w.name.clone(),
                    version: w.version.clone(),
                    // Wheels name their platform in their tag.
                    architecture: w.tag.clone(),
                    sha256: w.sha256,
                    url: w.url.clone(),
                    licenses: Vec::new(),
                });
            }
            bases.extend(plan.base.clone());
            let recipe_layers = &plan.plans[plan.plans.len() - recipe.layers.len()..];
            for layer in recipe_layers {
                files.extend(layer_files(layer, cache)?);
            }
        }
        // Platforms share packages (`all`) and files: list each once.
        packages.sort();
        packages.dedup();
        files.sort();
        files.dedup();
        bases.sort();
        bases.dedup();
        base_packages.sort();
        base_packages.dedup();
        base_packages.retain(|b| {
            !packages.iter().any(|p| {
                p.ecosystem == Ecosystem::Debian
                    && p.name == b.name
                    && p.version == b.version
                    && p.architecture == b.architecture
            })
        });
        Ok(Inventory {
            name: recipe.name.value.clone(),
            version: recipe.tag().to_owned(),
            created: created.to_owned(),
            licenses: recipe.metadata.licenses.clone(),
            image,
            bases,
            packages,
            base_packages,
            files,
        })
    }

    /// The document, as canonical JSON bytes.
    pub fn render(&self, format: Format) -> Vec<u8> {
        let value = match format {
            Format::Spdx => spdx::document(self),
            Format::Cyclonedx => cyclonedx::document(self),
        };
        strata_oci::json::to_canonical_vec(&value).expect("an SBOM always serialises")
    }
}
