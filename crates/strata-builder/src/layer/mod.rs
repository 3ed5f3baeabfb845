//! Layers: an entry list becomes a compressed tar blob in one pass.
//!
//! tar writer → sha256 (diff_id) → compressor → sha256 (digest) → file.
//! Nothing is read twice and nothing is held in memory beyond a few chunks.
//! A layer's key hashes its entries (with content fingerprints) and
//! compression; a key already in the cache skips the work.

pub mod compress;
pub mod files;
pub mod shared;
pub mod tar;

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use self::compress::{Encoder, Encoding};
use self::files::FileHash;
use self::shared::{SharedCache, SharedCacheError};
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
    #[error(transparent)]
    #[diagnostic(transparent)]
    Shared(#[from] SharedCacheError),
    #[error("cannot write layer `{layer}`")]
    Write {
        layer: String,
        #[source]
        source: io::Error,
    },
}

/// The result of asking for a layer: its blob, and whether it came from the cache.
#[derive(Clone)]
pub struct Built {
    pub blob: LayerBlob,
    pub path: PathBuf,
    /// Found in the local cache or the registry cache: not compressed here.
    pub cached: bool,
    /// Downloaded from the registry cache (`--cache`).
    pub fetched: bool,
    /// Left in the registry cache, not downloaded: `path` is empty, and
    /// only a push to that registry can use the layer (by mounting it).
    pub lazy: bool,
}

impl Built {
    /// A layer found built: in the local cache, or downloaded from the
    /// registry cache (`fetched`) into it.
    pub fn found(blob: LayerBlob, path: PathBuf, fetched: bool) -> Built {
        Built {
            blob,
            path,
            cached: true,
            fetched,
            lazy: false,
        }
    }

    /// A layer left in the registry cache, for the push to mount.
    pub fn lazy(blob: LayerBlob) -> Built {
        Built {
            blob,
            path: PathBuf::new(),
            cached: true,
            fetched: false,
            lazy: true,
        }
    }
}

const RECORDS: &str = "layers";

/// The layer `key` names, from the local cache. The record's own digest
/// ties it to this key (`Cache::read_record`); the blob it names is checked
/// against its digest and size here.
fn cached(key: &Digest, cache: &Cache) -> Option<Built> {
    let blob = cache.read_record::<LayerBlob>(RECORDS, key)?;
    let path = cache.verified_blob(&blob.digest)?;
    std::fs::metadata(&path)
        .is_ok_and(|m| m.len() == blob.size)
        .then(|| Built::found(blob, path, false))
}

/// Writes the layer the local cache lacks, and records it under `key`;
/// with `list`, records its files' hashes too (for the SBOM).
fn build(
    plan: &LayerPlan,
    key: &Digest,
    compression: Encoding,
    cache: &Cache,
    list: bool,
) -> Result<Built, LayerError> {
    let tmp = cache.temp_file()?;
    let err = |source| LayerError::Write {
        layer: plan.name.clone(),
        source,
    };
    let file = tmp.reopen().map_err(err)?;
    let (blob, listed) = write_listing(plan, compression, file, list).map_err(err)?;
    let path = cache.commit_blob(tmp, &blob.digest)?;
    cache.write_record(RECORDS, key, &blob)?;
    if let Some(listed) = listed {
        cache.write_record(
            files::RECORDS,
            &key_of_files(plan, key, compression),
            &listed,
        )?;
    }
    Ok(Built {
        blob,
        path,
        cached: false,
        fetched: false,
        lazy: false,
    })
}

/// Builds (or finds) every layer and returns them in the order given.
///
/// With a registry cache, the layers missing from the local cache are
/// looked up there first and downloaded instead of built; what is built, and
/// what the local cache had but the registry lacks, is published after.
/// With `--verify-cache` a layer found in the registry is built too, and a
/// difference is an error. With `lazy` (the image only goes to the registry
/// cache's registry) a layer found there is not downloaded: its entry is
/// checked against the layer's own tar, and the push mounts it.
pub fn build_all(
    plans: &[LayerPlan],
    compression: Encoding,
    cache: &Cache,
    shared: Option<&SharedCache>,
    lazy: bool,
    listed_from: usize,
) -> Result<Vec<Built>, LayerError> {
    let keys: Vec<Digest> = plans.iter().map(|p| key(p, compression)).collect();
    let mut found: Vec<Option<Built>> = keys.iter().map(|k| cached(k, cache)).collect();
    // Each layer has its step, found in the cache or not.
    for (plan, built) in plans.iter().zip(&found) {
        if built.is_some() {
            strata_progress::get()
                .step("compress", plan.name.clone())
                .finish("cached");
        }
    }
    let mut remote: Vec<Option<LayerBlob>> = vec![None; plans.len()];
    if let Some(shared) = shared {
        let all: Vec<&Digest> = keys.iter().collect();
        remote = shared.lookup(&all)?;
        for index in 0..plans.len() {
            let Some(blob) = remote[index].as_ref().filter(|_| found[index].is_none()) else {
                continue;
            };
            if shared.verify {
                continue;
            }
            if lazy {
                match same_tar(blob, &plans[index]) {
                    Ok(()) => {
                        found[index] = Some(Built::lazy(blob.clone()));
                        continue;
                    }
                    Err(e) => {
                        ignored(shared, &plans[index], &keys[index], &e);
                        remote[index] = None;
                        continue;
                    }
                }
            }
            let step = strata_progress::get().step("fetch", plans[index].name.clone());
            match fetch_checked(shared, blob, &plans[index], cache) {
                Ok(path) => {
                    cache.write_record(RECORDS, &keys[index], blob)?;
                    step.finish(&strata_progress::size(blob.size));
                    found[index] = Some(Built::found(blob.clone(), path, true));
                }
                Err(e) => {
                    ignored(shared, &plans[index], &keys[index], &e);
                    remote[index] = None;
                }
            }
        }
    }
    let missing: Vec<usize> = (0..plans.len()).filter(|&i| found[i].is_none()).collect();
    let built = build_in_parallel(plans, &keys, &missing, compression, cache, listed_from)?;
    for (index, built) in missing.into_iter().zip(built) {
        if let (Some(shared), Some(entry)) = (shared, &remote[index])
            && entry != &built.blob
        {
            return Err(SharedCacheError::Mismatch {
                repository: shared.name(),
                layer: plans[index].name.clone(),
                tag: SharedCache::tag(&keys[index]),
                cached: Box::new(entry.digest),
                built: Box::new(built.blob.digest),
            }
            .into());
        }
        found[index] = Some(built);
    }
    let built: Vec<Built> = found.into_iter().flatten().collect();
    if let Some(shared) = shared {
        let publish: Vec<(&Digest, &LayerBlob, &PathBuf)> = built
            .iter()
            .zip(&keys)
            .zip(&remote)
            .filter(|(_, entry)| entry.is_none())
            .map(|((b, key), _)| (key, &b.blob, &b.path))
            .collect();
        let written = shared.publish(&publish)?;
        tracing::info!(written, repository = %shared.name(), "layer cache entries");
    }
    Ok(built)
}

/// Downloads a registry cache entry's blob and checks that it is the layer
/// `plan` describes: its digest, its tar against the entry's `diff_id`, and
/// that `diff_id` against the tar of `plan`, written here without
/// compressing it (the costly part of building). An entry that maps a key to
/// another valid layer (poisoned, or written by a faulty strata) fails here.
fn fetch_checked(
    shared: &SharedCache,
    blob: &LayerBlob,
    plan: &LayerPlan,
    cache: &Cache,
) -> Result<PathBuf, LayerError> {
    let path = shared.fetch(blob, cache)?;
    same_tar(blob, plan)?;
    Ok(path)
}

/// Whether an entry's `diff_id` is that of the layer's own tar.
fn same_tar(blob: &LayerBlob, plan: &LayerPlan) -> Result<(), LayerError> {
    let (diff_id, diff_size) = tar_digest(plan).map_err(|source| LayerError::Write {
        layer: plan.name.clone(),
        source,
    })?;
    if diff_id != blob.diff_id || diff_size != blob.diff_size {
        return Err(SharedCacheError::Check {
            digest: blob.digest,
            source: io::Error::other(format!(
                "it holds the tar {}, where this layer's is {diff_id}",
                blob.diff_id
            )),
        }
        .into());
    }
    Ok(())
}

/// Says that an entry is not used: the layer is built, and the entry
/// written again, right.
fn ignored(shared: &SharedCache, plan: &LayerPlan, key: &Digest, error: &LayerError) {
    strata_progress::get().println(format!(
        "warning: layer `{}`: the entry `{}` in `{}` is ignored: {}",
        plan.name,
        SharedCache::tag(key),
        shared.name(),
        causes(error)
    ));
}

/// An error and its causes, on one line, for a warning.
pub(crate) fn causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The sha256 and size of the layer's uncompressed tar.
fn tar_digest(plan: &LayerPlan) -> io::Result<(Digest, u64)> {
    let mut tar = TarWriter::new(HashingWriter::new(io::sink()));
    for entry in &plan.entries {
        tar.append(entry)?;
    }
    let (hashed, size) = tar.finish()?;
    let (_, digest, _) = hashed.finish();
    Ok((digest, size))
}

/// Builds the layers at `indexes` (of `plans` and their `keys`), several at
/// a time, in that order. Independent layers are written on plain threads,
/// one per core: each writer hands its gzip chunks to rayon's pool and waits
/// for them, which a thread of that pool must not do.
fn build_in_parallel(
    plans: &[LayerPlan],
    keys: &[Digest],
    indexes: &[usize],
    compression: Encoding,
    cache: &Cache,
    listed_from: usize,
) -> Result<Vec<Built>, LayerError> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<std::sync::Mutex<Option<Result<Built, LayerError>>>> = indexes
        .iter()
        .map(|_| std::sync::Mutex::new(None))
        .collect();
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(indexes.len());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let slot = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(&index) = indexes.get(slot) else {
                        break;
                    };
                    let plan = &plans[index];
                    let step = strata_progress::get().step("compress", plan.name.clone());
                    let list = index >= listed_from;
                    let built = build(plan, &keys[index], compression, cache, list);
                    let failed = built.is_err();
                    if let Ok(built) = &built {
                        step.finish(&strata_progress::size(built.blob.size));
                    }
                    if let Ok(mut result) = results[slot].lock() {
                        *result = Some(built);
                    }
                    // The first failure stops the others taking new layers.
                    if failed {
                        next.store(indexes.len(), std::sync::atomic::Ordering::Relaxed);
                    }
                }
            });
        }
    });
    let mut built = Vec::with_capacity(indexes.len());
    for result in results {
        match result.into_inner().ok().flatten() {
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
    write_listing(plan, compression, file, false).map(|(blob, _)| blob)
}

/// [`write`], hashing every regular file on the way when `list` is set.
fn write_listing(
    plan: &LayerPlan,
    compression: Encoding,
    file: File,
    list: bool,
) -> io::Result<(LayerBlob, Option<Vec<FileHash>>)> {
    let compressed = HashingWriter::new(BufWriter::with_capacity(1 << 20, file));
    let encoder = Encoder::new(compressed, compression)?;
    let sink = HashingWriter::new(encoder);
    let mut tar = match list {
        true => TarWriter::listing(sink),
        false => TarWriter::new(sink),
    };
    for entry in &plan.entries {
        tar.append(entry)?;
    }
    let listed = tar.listed();
    let (uncompressed, diff_size) = tar.finish()?;
    let (encoder, diff_id, _) = uncompressed.finish();
    let (mut buffered, digest, size) = encoder.finish()?.finish();
    buffered.flush()?;
    buffered.get_ref().sync_all()?;
    let blob = LayerBlob {
        media_type: compression.media_type().to_owned(),
        digest,
        size,
        diff_id,
        diff_size,
        entries: plan.entries.len() as u64,
    };
    Ok((blob, listed))
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

/// The key a layer's file list is recorded under: its key with the default
/// compression, whatever compression built it (the files are the same).
fn key_of_files(plan: &LayerPlan, key: &Digest, compression: Encoding) -> Digest {
    if compression == Encoding::default() {
        *key
    } else {
        self::key(plan, Encoding::default())
    }
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
