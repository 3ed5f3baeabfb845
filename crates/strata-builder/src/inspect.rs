//! `strata inspect`: what an OCI layout holds, per platform.

use std::io;

use oci_spec::image::{Descriptor, ImageConfiguration};
use serde::Serialize;

use strata_oci::layout::{
    HashingReader, Layout, LayoutError, REF_NAME, descriptor_digest, is_index,
};
use strata_oci::platform::Platform;

#[derive(Debug, Serialize)]
pub struct Inspection {
    pub digest: String,
    pub media_type: String,
    pub tags: Vec<String>,
    pub images: Vec<ImageInfo>,
    /// Artifacts in the layout whose subject is this image (its SBOM).
    pub referrers: Vec<Referrer>,
}

#[derive(Debug, Serialize)]
pub struct Referrer {
    pub digest: String,
    pub artifact_type: String,
}

#[derive(Debug, Serialize)]
pub struct ImageInfo {
    pub platform: String,
    pub manifest: String,
    pub config: ImageConfiguration,
    pub layers: Vec<LayerInfo>,
}

#[derive(Debug, Serialize)]
pub struct LayerInfo {
    pub digest: String,
    pub media_type: String,
    pub size: u64,
    pub entries: u64,
}

pub fn inspect(layout: &Layout, tag: Option<&str>) -> Result<Inspection, LayoutError> {
    let top = layout.find(tag)?;
    let digest = descriptor_digest(top).map_err(|m| layout.invalid("index.json", m))?;
    let tags = layout
        .index
        .manifests()
        .iter()
        .filter(|d| d.digest() == top.digest())
        .filter_map(|d| d.annotations().as_ref()?.get(REF_NAME).cloned())
        .collect();
    let manifests: Vec<Descriptor> = if is_index(top.media_type()) {
        let index: oci_spec::image::ImageIndex = layout.read_json(top, "image index")?;
        index.manifests().clone()
    } else {
        vec![top.clone()]
    };
    let mut images = Vec::new();
    for desc in &manifests {
        let manifest: oci_spec::image::ImageManifest = layout.read_json(desc, "manifest")?;
        let config: ImageConfiguration = layout.read_json(manifest.config(), "image config")?;
        let mut layers = Vec::new();
        for l in manifest.layers() {
            let d = descriptor_digest(l).map_err(|m| layout.invalid("manifest", m))?;
            let entries = count_entries(layout, l).map_err(|source| LayoutError::Io {
                path: layout.blob_path(&d),
                source,
            })?;
            layers.push(LayerInfo {
                digest: d.to_string(),
                media_type: l.media_type().to_string(),
                size: l.size(),
                entries,
            });
        }
        let platform = Platform {
            os: config.os().to_string(),
            architecture: config.architecture().to_string(),
            variant: config.variant().clone(),
        };
        images.push(ImageInfo {
            platform: platform.to_string(),
            manifest: desc.digest().to_string(),
            config,
            layers,
        });
    }
    let mut referrers = Vec::new();
    for d in &layout.artifacts(top)? {
        let manifest: oci_spec::image::ImageManifest = layout.read_json(d, "artifact manifest")?;
        if manifest.subject().as_ref().map(|s| s.digest()) == Some(top.digest()) {
            referrers.push(Referrer {
                digest: d.digest().to_string(),
                artifact_type: d
                    .artifact_type()
                    .as_ref()
                    .map_or_else(String::new, ToString::to_string),
            });
        }
    }
    Ok(Inspection {
        digest: digest.to_string(),
        media_type: top.media_type().to_string(),
        tags,
        images,
        referrers,
    })
}

fn count_entries(layout: &Layout, desc: &Descriptor) -> io::Result<u64> {
    let digest = descriptor_digest(desc).map_err(io::Error::other)?;
    let file = layout
        .open_blob(&digest, Some(desc.size()))
        .map_err(io::Error::other)?;
    let media_type = desc.media_type().to_string();
    let mut reader = HashingReader::new(io::BufReader::new(file));
    let count = {
        let decoder = strata_oci::compression::Compression::of_media_type(&media_type)
            .decoder(&mut reader)?;
        let mut archive = strata_oci::tarball::Archive::new(decoder);
        let mut n = 0;
        for entry in archive.entries()? {
            entry?;
            n += 1;
        }
        n
    };
    let (actual, _) = reader.finish()?;
    if actual != digest {
        return Err(io::Error::other(format!(
            "blob {digest} does not match its digest"
        )));
    }
    Ok(count)
}

/// The human-readable report.
pub fn render(inspection: &Inspection) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "image   {}", inspection.digest);
    let _ = writeln!(out, "tags    {}", inspection.tags.join(", "));
    for r in &inspection.referrers {
        let _ = writeln!(out, "artifact {} ({})", r.digest, r.artifact_type);
    }
    for image in &inspection.images {
        let _ = writeln!(
            out,
            "\nplatform {}  (manifest {})",
            image.platform, image.manifest
        );
        if let Some(c) = image.config.config() {
            let list =
                |v: &Option<Vec<String>>| v.as_ref().map(|v| v.join(" ")).unwrap_or_default();
            // Ports and volumes are sets (JSON objects): show them in one order.
            let set = |v: &Option<Vec<String>>| {
                let mut v = v.clone().unwrap_or_default();
                v.sort();
                v.join(" ")
            };
            let _ = writeln!(
                out,
                "  user        {}",
                c.user().as_deref().unwrap_or("root")
            );
            let _ = writeln!(out, "  entrypoint  {}", list(c.entrypoint()));
            let _ = writeln!(out, "  cmd         {}", list(c.cmd()));
            let _ = writeln!(
                out,
                "  workdir     {}",
                c.working_dir().as_deref().unwrap_or("/")
            );
            let _ = writeln!(out, "  ports       {}", set(c.exposed_ports()));
            let _ = writeln!(out, "  volumes     {}", set(c.volumes()));
            let _ = writeln!(out, "  env");
            for var in c.env().iter().flatten() {
                let _ = writeln!(out, "    {var}");
            }
            let _ = writeln!(out, "  labels");
            let mut labels: Vec<_> = c.labels().iter().flatten().collect();
            labels.sort();
            for (k, v) in labels {
                let _ = writeln!(out, "    {k} = {v}");
            }
        }
        let _ = writeln!(out, "  layers");
        for l in &image.layers {
            let _ = writeln!(
                out,
                "    {}  {:>10} bytes  {:>6} entries",
                l.digest, l.size, l.entries
            );
        }
    }
    out
}
