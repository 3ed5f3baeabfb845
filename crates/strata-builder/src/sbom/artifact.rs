//! The SBOM as an OCI artifact: an image manifest with `artifactType`, the
//! empty config, the document as its one layer, and the image as `subject`
//! (image-spec 1.1), so that registries' referrers API and tools such as
//! ORAS and cosign find it from the image.

use oci_spec::image::{Descriptor, MediaType};
use serde_json::json;

use crate::image::JsonBlob;
use strata_oci::digest::Digest;
use strata_oci::layout::{Layout, LayoutError, descriptor_digest};

pub const EMPTY_CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
pub const EMPTY_CONFIG: &[u8] = b"{}";

/// The artifact manifest for `document` (of `media_type`) about `subject`.
pub fn manifest(
    subject: &Descriptor,
    media_type: &str,
    document: &[u8],
    file_name: &str,
    created: &str,
) -> JsonBlob {
    let value = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": media_type,
        "config": {
            "mediaType": EMPTY_CONFIG_MEDIA_TYPE,
            "digest": Digest::of(EMPTY_CONFIG).to_string(),
            "size": EMPTY_CONFIG.len(),
            "data": "e30=",
        },
        "layers": [{
            "mediaType": media_type,
            "digest": Digest::of(document).to_string(),
            "size": document.len(),
            "annotations": {"org.opencontainers.image.title": file_name},
        }],
        "subject": {
            "mediaType": subject.media_type().to_string(),
            "digest": subject.digest().to_string(),
            "size": subject.size(),
        },
        "annotations": {"org.opencontainers.image.created": created},
    });
    JsonBlob::new(MediaType::ImageManifest, "SBOM artifact manifest", &value)
        .expect("an artifact manifest always serialises")
}

/// The descriptor that lists an artifact manifest in a referrers index:
/// with its `artifactType`, as the referrers API gives it.
pub fn descriptor(manifest: &JsonBlob, artifact_type: &str) -> Descriptor {
    let mut d = manifest.descriptor();
    d.set_artifact_type(Some(MediaType::from(artifact_type)));
    d
}

/// The referrers index of a layout (see [`strata_oci::layout::REFERRERS`]):
/// the artifacts about the image, as the referrers API would list them.
pub fn referrers_index(referrers: &[Descriptor]) -> JsonBlob {
    let value = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": referrers,
    });
    JsonBlob::new(MediaType::ImageIndex, "referrers index", &value)
        .expect("a referrers index always serialises")
}

/// The tag the distribution spec's referrers tag schema uses for `subject`.
pub fn referrers_tag(subject: &Digest) -> String {
    format!("sha256-{}", subject.hex())
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum FindError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Layout(#[from] LayoutError),
    #[error("the image {digest} in `{}` has no {what} attached", layout.display())]
    #[diagnostic(help(
        "build it with `strata build --sbom spdx` (the default) or `--sbom cyclonedx`"
    ))]
    None {
        layout: std::path::PathBuf,
        digest: String,
        what: String,
    },
}

/// The SBOM document attached to the image tagged `tag` in `layout`: the
/// layer of an artifact about that image whose `subject` is the image.
pub fn find(
    layout: &Layout,
    tag: Option<&str>,
    format: Option<super::Format>,
) -> Result<Vec<u8>, FindError> {
    let image = layout.find(tag)?;
    let wanted = format.map(super::Format::media_type);
    for d in &layout.artifacts(image)? {
        let artifact_type = d.artifact_type().as_ref().map(ToString::to_string);
        let is_sbom = match wanted {
            Some(w) => artifact_type.as_deref() == Some(w),
            None => artifact_type.is_some_and(|t| {
                super::Format::ALL
                    .iter()
                    .any(|f| f.media_type() == t.as_str())
            }),
        };
        if !is_sbom {
            continue;
        }
        let manifest: oci_spec::image::ImageManifest =
            layout.read_json(d, "SBOM artifact manifest")?;
        if manifest.subject().as_ref().map(|s| s.digest()) != Some(image.digest()) {
            continue;
        }
        if let Some(layer) = manifest.layers().first() {
            let digest = descriptor_digest(layer)
                .map_err(|m| layout.invalid("SBOM artifact manifest", m))?;
            return Ok(layout.read_blob(&digest, Some(layer.size()))?);
        }
    }
    Err(FindError::None {
        layout: layout.root().to_owned(),
        digest: image.digest().to_string(),
        what: wanted.map_or("SBOM".to_owned(), |w| format!("`{w}` SBOM")),
    })
}
