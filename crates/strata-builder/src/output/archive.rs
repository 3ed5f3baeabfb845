//! Single-file outputs: `oci-archive` (a tar of the layout) and
//! `docker-archive` (what `docker load` and `podman load` read).
//!
//! Both go through strata's own tar writer, so they are byte-reproducible too,
//! and land through a temporary file renamed into place.

use std::fs::File;
use std::io::{self, BufWriter, Seek, Write};
use std::path::Path;

use super::{Blob, Built, OCI_LAYOUT};
use crate::layer::tar::TarWriter;

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ArchiveError {
    #[error("cannot write the archive `{}`", path.display())]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("a docker-archive holds one platform, but this build has {0}")]
    #[diagnostic(help(
        "write an OCI layout or oci-archive for several platforms, or build one `platform`"
    ))]
    MultiPlatform(usize),
}

pub fn write_oci(path: &Path, built: &Built) -> Result<(), ArchiveError> {
    write_atomically(path, |tar| {
        tar.append_dir("blobs", built.epoch)?;
        tar.append_dir("blobs/sha256", built.epoch)?;
        let mut blobs: Vec<&Blob> = built.blobs.iter().collect();
        blobs.sort_by_key(|b| b.digest.hex());
        for blob in blobs {
            tar.append_reader(
                &format!("blobs/sha256/{}", blob.digest.hex()),
                0o644,
                built.epoch,
                blob.size,
                blob.open()?,
            )?;
        }
        let index = built.index_json();
        tar.append_reader(
            "index.json",
            0o644,
            built.epoch,
            index.len() as u64,
            &index[..],
        )?;
        tar.append_reader(
            "oci-layout",
            0o644,
            built.epoch,
            OCI_LAYOUT.len() as u64,
            OCI_LAYOUT,
        )
    })
}

/// The docker-archive (`docker save`) format: `manifest.json`, the config,
/// and uncompressed layer tars named by their diff_ids.
pub fn write_docker(path: &Path, built: &Built, name: &str) -> Result<(), ArchiveError> {
    let [image] = built.images.as_slice() else {
        return Err(ArchiveError::MultiPlatform(built.images.len()));
    };
    let find = |digest| built.blobs.iter().find(|b| b.digest == digest);
    write_atomically(path, |tar| {
        let config_name = format!("{}.json", image.config.digest.hex());
        let mut layer_names = Vec::new();
        for layer in &image.layers {
            let name = format!("{}/layer.tar", layer.diff_id.hex());
            let blob = find(layer.digest)
                .ok_or_else(|| io::Error::other(format!("layer {} is missing", layer.digest)))?;
            // The tar header needs the size first: unpack to a temporary file.
            let mut tmp = tempfile::tempfile()?;
            let mut decoder =
                strata_oci::compression::Compression::of_media_type(&layer.media_type)
                    .decoder(blob.open()?)?;
            let size = io::copy(&mut decoder, &mut tmp)?;
            tmp.rewind()?;
            tar.append_dir(&layer.diff_id.hex(), built.epoch)?;
            tar.append_reader(&name, 0o644, built.epoch, size, tmp)?;
            layer_names.push(name);
        }
        let config = &image.config.bytes;
        tar.append_reader(
            &config_name,
            0o644,
            built.epoch,
            config.len() as u64,
            &config[..],
        )?;
        let repo_tags: Vec<String> = built.tags.iter().map(|t| format!("{name}:{t}")).collect();
        let manifest = serde_json::to_vec(&serde_json::json!([{
            "Config": config_name,
            "RepoTags": repo_tags,
            "Layers": layer_names,
        }]))?;
        tar.append_reader(
            "manifest.json",
            0o644,
            built.epoch,
            manifest.len() as u64,
            &manifest[..],
        )
    })
}

fn write_atomically(
    path: &Path,
    body: impl FnOnce(&mut TarWriter<BufWriter<&File>>) -> io::Result<()>,
) -> Result<(), ArchiveError> {
    strata_oci::atomic::write_file(path, |file| {
        let mut tar = TarWriter::new(BufWriter::new(file));
        body(&mut tar)?;
        let (mut out, _) = tar.finish()?;
        out.flush()
    })
    .map_err(|source| ArchiveError::Io {
        path: path.to_owned(),
        source,
    })
}
