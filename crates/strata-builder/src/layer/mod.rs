//! Layers: an entry list becomes a compressed tar blob in one pass.
//!
//! tar writer → sha256 (diff_id) → compressor → sha256 (digest) → file.
//! Nothing is read twice and nothing is held in memory beyond a few chunks.
//! A layer's key hashes its entries (with content fingerprints) and
//! compression; a key already in the cache skips the work.

pub mod compress;
pub mod tar;

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use self::compress::{Encoder, Encoding};
use self::tar::TarWriter;
use strata_cache::{Cache, CacheError};
use strata_oci::digest::{Digest, HashingWriter};
use strata_oci::entry::{Fingerprint, Kind, LayerPlan};
use strata_oci::manifest::ManifestLayer;

/// A finished layer blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerBlob {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    pub diff_id: Digest,
    /// Size of the uncompressed tar.
    pub diff_size: u64,
    pub entries: u64,
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum LayerError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Cache(#[from] CacheError),
    #[error("cannot write layer `{layer}`")]
    Write {
        layer: String,
        #[source]
        source: io::Error,
    },
}

/// The result of asking for a layer: its blob, and whether it came from the cache.
pub struct Built {
    pub blob: LayerBlob,
    pub path: PathBuf,
    pub cached: bool,
}

const RECORDS: &str = "layers";

/// Returns the layer's blob from the cache, building it first if needed.
pub fn build(plan: &LayerPlan, compression: Encoding, cache: &Cache) -> Result<Built, LayerError> {
    let key = key(plan, compression);
    // The record's own digest ties it to this key (`Cache::read_record`); the
    // blob it names is checked against its digest and size here.
    if let Some(blob) = cache.read_record::<LayerBlob>(RECORDS, &key)
        && let Some(path) = cache.verified_blob(&blob.digest)
        && std::fs::metadata(&path).is_ok_and(|m| m.len() == blob.size)
    {
        return Ok(Built {
            blob,
            path,
            cached: true,
        });
    }
    let tmp = cache.temp_file()?;
    let err = |source| LayerError::Write {
        layer: plan.name.clone(),
        source,
    };
    let file = tmp.reopen().map_err(err)?;
    let blob = write(plan, compression, file).map_err(err)?;
    let path = cache.commit_blob(tmp, &blob.digest)?;
    cache.write_record(RECORDS, &key, &blob)?;
    Ok(Built {
        blob,
        path,
        cached: false,
    })
}

/// Builds (or finds) every layer, several at a time, and returns them in
/// the order given. Independent layers are written on plain threads, one
/// per core: each writer hands its gzip chunks to rayon's pool and waits
/// for them, which a thread of that pool must not do.
pub fn build_all(
    plans: &[LayerPlan],
    compression: Encoding,
    cache: &Cache,
) -> Result<Vec<Built>, LayerError> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<std::sync::Mutex<Option<Result<Built, LayerError>>>> =
        plans.iter().map(|_| std::sync::Mutex::new(None)).collect();
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(plans.len());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(plan) = plans.get(index) else {
                        break;
                    };
                    let step = strata_progress::get().step("compress", plan.name.clone());
                    let built = build(plan, compression, cache);
                    let failed = built.is_err();
                    if let Ok(built) = &built {
                        step.finish(&if built.cached {
                            "cached".to_owned()
                        } else {
                            strata_progress::size(built.blob.size)
                        });
                    }
                    if let Ok(mut slot) = results[index].lock() {
                        *slot = Some(built);
                    }
                    // The first failure stops the others taking new layers.
                    if failed {
                        next.store(plans.len(), std::sync::atomic::Ordering::Relaxed);
                    }
                }
            });
        }
    });
    let mut built = Vec::with_capacity(plans.len());
    for slot in results {
        match slot.into_inner().ok().flatten() {
            Some(result) => built.push(result?),
            // Not started because an earlier layer failed: that failure was
            // returned above.
            None => break,
        }
    }
    Ok(built)
}

/// Writes the layer into `file` in one streaming pass.
pub fn write(plan: &LayerPlan, compression: Encoding, file: File) -> io::Result<LayerBlob> {
    let compressed = HashingWriter::new(BufWriter::with_capacity(1 << 20, file));
    let encoder = Encoder::new(compressed, compression)?;
    let mut tar = TarWriter::new(HashingWriter::new(encoder));
    for entry in &plan.entries {
        tar.append(entry)?;
    }
    let (uncompressed, diff_size) = tar.finish()?;
    let (encoder, diff_id, _) = uncompressed.finish();
    let (mut buffered, digest, size) = encoder.finish()?.finish();
    buffered.flush()?;
    buffered.get_ref().sync_all()?;
    Ok(LayerBlob {
        media_type: compression.media_type().to_owned(),
        digest,
        size,
        diff_id,
        diff_size,
        entries: plan.entries.len() as u64,
    })
}

/// The layer's identity: everything that decides its bytes.
pub fn key(plan: &LayerPlan, compression: Encoding) -> Digest {
    let mut h = Sha256::new();
    h.update(format!(
        "strata-layer-v1\0{compression}\0{}\0",
        env!("CARGO_PKG_VERSION")
    ));
    for e in &plan.entries {
        h.update(e.path.as_str());
        h.update(format!(
            "\0{:o}\0{}\0{}\0{}\0",
            e.mode, e.uid, e.gid, e.mtime
        ));
        match &e.kind {
            Kind::Dir => h.update("d"),
            Kind::File(c) => {
                h.update(format!("f{}\0", c.size));
                match c.fingerprint {
                    Fingerprint::Digest(d) => h.update(d.as_bytes()),
                    Fingerprint::Stat {
                        dev,
                        ino,
                        mtime_ns,
                        ctime_ns,
                    } => h.update(format!("{dev}:{ino}:{mtime_ns}:{ctime_ns}")),
                }
            }
            Kind::Symlink(t) => h.update(format!("s{t}")),
            Kind::Hardlink(t) => h.update(format!("h{}", t.as_str())),
        }
        h.update("\n");
    }
    Digest::from_hasher(h)
}

impl From<&LayerBlob> for ManifestLayer {
    fn from(b: &LayerBlob) -> Self {
        ManifestLayer {
            media_type: b.media_type.clone(),
            digest: b.digest,
            size: b.size,
            diff_id: b.diff_id,
        }
    }
}
