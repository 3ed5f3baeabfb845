//! `oci-archive:` bases: the tar of a layout, unpacked into the cache's blob
//! store so that the archive reads like any other layout afterwards.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use oci_spec::image::ImageIndex;

use super::BaseError;
use crate::recipe::Recipe;
use strata_cache::{Cache, CacheError};
use strata_oci::digest::{Digest, HashingWriter};
use strata_oci::layout::{Layout, LayoutError};

/// Copies every blob of the archive into the cache (each checked against
/// the name it is stored under) and returns the cache as a layout holding
/// the archive's `index.json`.
pub fn unpack(recipe: &Recipe, path: &Path, cache: &Cache) -> Result<Layout, BaseError> {
    let file_path = recipe.context.join(path);
    let io_err = |source: io::Error| LayoutError::Io {
        path: file_path.clone(),
        source,
    };
    let file = File::open(&file_path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => BaseError::Recipe(recipe.error(
            recipe.base.span,
            format!("`{}` does not exist", file_path.display()),
            "no archive here",
            Some("the path is relative to the recipe's folder; make one with `strata build --format oci-archive`".into()),
        )),
        _ => io_err(e).into(),
    })?;
    let invalid = |message: String| LayoutError::Invalid {
        layout: file_path.clone(),
        what: "oci-archive".to_owned(),
        message,
    };
    let mut index: Option<ImageIndex> = None;
    let mut archive = strata_oci::tarball::Archive::new(io::BufReader::new(file));
    for entry in archive.entries().map_err(io_err)? {
        let mut entry = entry.map_err(io_err)?;
        let name = entry.path().map_err(io_err)?.to_string_lossy().into_owned();
        let name = name.trim_start_matches("./");
        if name == "index.json" {
            let cap = strata_oci::layout::MAX_DOCUMENT;
            if entry.size() > cap {
                return Err(invalid(format!(
                    "its `index.json` is {} bytes, more than the {} MiB strata reads",
                    entry.size(),
                    cap >> 20
                ))
                .into());
            }
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).map_err(io_err)?;
            index = Some(serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?);
        } else if let Some(hex) = name.strip_prefix("blobs/sha256/")
            && entry.header().entry_type().is_file()
        {
            let digest: Digest = format!("sha256:{hex}")
                .parse()
                .map_err(|e: strata_oci::digest::ParseDigestError| invalid(e.to_string()))?;
            if cache.verified_blob(&digest).is_some() {
                continue;
            }
            let tmp = cache.temp_file()?;
            let cache_io = |source| CacheError::Io {
                path: tmp.path().to_owned(),
                source,
            };
            let mut sink = HashingWriter::new(io::BufWriter::new(tmp.reopen().map_err(cache_io)?));
            io::copy(&mut entry, &mut sink).map_err(io_err)?;
            let (mut writer, actual, _) = sink.finish();
            writer.flush().map_err(cache_io)?;
            if actual != digest {
                return Err(LayoutError::DigestMismatch {
                    layout: file_path.clone(),
                    digest,
                    actual,
                }
                .into());
            }
            cache.commit_blob(tmp, &digest)?;
        }
    }
    let index = index.ok_or_else(|| invalid("it holds no `index.json`".to_owned()))?;
    Ok(Layout::blob_store(cache.root(), index))
}
