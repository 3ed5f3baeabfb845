//! Writing a built image out: an OCI layout (atomically), an oci-archive, or a
//! docker-archive. Everything here works from blobs already built and verified.

pub mod archive;
pub mod layout;

use oci_spec::image::Descriptor;

use crate::image::{Blob, JsonBlob, ManifestLayer};
use strata_oci::platform::Platform;

/// One platform's image as built.
#[derive(Debug, Clone)]
pub struct PlatformImage {
    pub platform: Platform,
    pub config: JsonBlob,
    pub manifest: JsonBlob,
    pub layers: Vec<ManifestLayer>,
}

/// A finished build: every blob, and the descriptor that `index.json` tags.
#[derive(Debug, Clone)]
pub struct Built {
    pub blobs: Vec<Blob>,
    /// The manifest (one platform) or image index (several) that tags point at.
    pub top: Descriptor,
    pub tags: Vec<String>,
    pub images: Vec<PlatformImage>,
    /// Artifacts about the image (its SBOM); their blobs are in `blobs`.
    pub referrers: Vec<Descriptor>,
    /// The blob listing `referrers` that the image's tags in `index.json`
    /// name (see [`strata_oci::layout::REFERRERS`]), when there are any.
    pub referrers_index: Option<strata_oci::digest::Digest>,
    /// The SOURCE_DATE_EPOCH used for archive entries.
    pub epoch: u64,
}

impl Built {
    /// The `index.json` of a layout holding this build, as canonical JSON.
    pub fn index_json(&self) -> Vec<u8> {
        use std::collections::HashMap;
        let manifests: Vec<Descriptor> = self
            .tags
            .iter()
            .map(|tag| {
                let mut d = self.top.clone();
                let mut annotations =
                    HashMap::from([(strata_oci::layout::REF_NAME.to_owned(), tag.clone())]);
                if let Some(index) = &self.referrers_index {
                    annotations.insert(strata_oci::layout::REFERRERS.to_owned(), index.to_string());
                }
                d.set_annotations(Some(annotations));
                d
            })
            .collect();
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": manifests,
        });
        strata_oci::json::to_canonical_vec(&index).expect("an index always serialises")
    }
}

pub const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;
