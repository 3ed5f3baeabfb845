//! `strata cache export` / `import`: a recipe's locked inputs (its package
//! files and the blobs of its registry base, see
//! [`build::locked_inputs`](crate::build::locked_inputs)) moved out of the
//! local cache into an archive, and back. The archive is an OCI image
//! layout (`oci:DIR`) or a registry repository, holding each file as the
//! registry cache does (a manifest tagged `strata-package-SHA256`), so that
//! an image can be rebuilt, `--offline`, years after the mirror dropped
//! those versions. Everything copied either way is checked against its
//! sha256. See `spec/cache.md`.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use strata_cache::Cache;
use strata_oci::digest::{Digest, HashingWriter};

use crate::layer::shared::{EMPTY_CONFIG, PackageFile, SharedCache, SharedCacheError};

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum InputsError {
    #[error("cannot write or read `{}`", path.display())]
    #[diagnostic(help("check that the folder is writable and has free space"))]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("`{}` does not hold what its name says (sha256 {digest})", path.display())]
    #[diagnostic(help("the archive is damaged: export it again from a cache that has the files"))]
    Damaged { path: PathBuf, digest: Digest },
    #[error("{count} of the recipe's inputs are missing from `{store}`, {first} among them")]
    #[diagnostic(help(
        "export them there first (`strata cache export RECIPE {store}`) from a cache that has them"
    ))]
    Missing {
        count: usize,
        first: Digest,
        store: String,
    },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Shared(#[from] SharedCacheError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Cache(#[from] strata_cache::CacheError),
}

/// Where inputs are archived.
pub enum Store<'c> {
    /// An OCI image layout folder (`oci:DIR`).
    Layout(PathBuf),
    /// A registry repository (`REGISTRY/REPO`).
    Registry(SharedCache<'c>),
}

impl Store<'_> {
    pub fn name(&self) -> String {
        match self {
            Store::Layout(dir) => format!("oci:{}", dir.display()),
            Store::Registry(shared) => shared.name(),
        }
    }
}

/// Copies `files` from the local cache into the store. Returns how many.
pub fn export(files: &[PackageFile], cache: &Cache, store: &Store) -> Result<usize, InputsError> {
    match store {
        Store::Registry(shared) => Ok(shared.publish_packages(files, cache)?),
        Store::Layout(dir) => export_layout(files, cache, dir),
    }
}

/// Copies `files` from the store into the local cache; every one must be
/// there or already cached. Returns how many were copied.
pub fn import(files: &[PackageFile], cache: &Cache, store: &Store) -> Result<usize, InputsError> {
    let before = files
        .iter()
        .filter(|f| cache.verified_blob(&f.sha256).is_none())
        .count();
    match store {
        Store::Registry(shared) => {
            shared.fetch_packages(files, cache)?;
        }
        Store::Layout(dir) => {
            for file in files {
                if cache.verified_blob(&file.sha256).is_some() {
                    continue;
                }
                let path = blob_path(dir, &file.sha256);
                if path.is_file() {
                    import_blob(&path, &file.sha256, cache)?;
                }
            }
        }
    }
    let missing: Vec<&PackageFile> = files
        .iter()
        .filter(|f| cache.verified_blob(&f.sha256).is_none())
        .collect();
    if let Some(first) = missing.first() {
        return Err(InputsError::Missing {
            count: missing.len(),
            first: first.sha256,
            store: store.name(),
        });
    }
    Ok(before)
}

/// Copies a registry base's blobs from the store into the local cache,
/// manifest by manifest. Returns how many were copied.
pub fn import_base(digest: &Digest, cache: &Cache, store: &Store) -> Result<usize, InputsError> {
    let mut copied = 0;
    let files = crate::base::blobs(digest, |file| {
        if let Some(path) = cache.verified_blob(&file.sha256) {
            return Ok(Some(path));
        }
        match store {
            Store::Layout(dir) => {
                let path = blob_path(dir, &file.sha256);
                if !path.is_file() {
                    return Ok(None);
                }
                import_blob(&path, &file.sha256, cache)?;
            }
            Store::Registry(shared) => {
                // A file of unknown size (0: the pinned manifest) is
                // looked up by its digest alone.
                if !shared
                    .fetch_packages(std::slice::from_ref(file), cache)?
                    .is_empty()
                {
                    return Ok(None);
                }
            }
        }
        copied += 1;
        Ok::<_, InputsError>(cache.verified_blob(&file.sha256))
    })?;
    if !files.iter().any(|f| f.sha256 == *digest) {
        return Err(InputsError::Missing {
            count: 1,
            first: *digest,
            store: store.name(),
        });
    }
    Ok(copied)
}

fn blob_path(dir: &Path, digest: &Digest) -> PathBuf {
    dir.join("blobs/sha256").join(digest.hex())
}

fn io_at(path: &Path) -> impl Fn(io::Error) -> InputsError + '_ {
    move |source| InputsError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Copies `from` to a new file `to`, hashing it on the way; whether the
/// bytes were `digest`'s. Both directions of an archive go through it.
fn copy_checked(from: &Path, to: &Path, digest: &Digest) -> io::Result<bool> {
    let mut source = strata_oci::regular::open_regular(from)?;
    let mut sink = HashingWriter::new(fs::File::create(to)?);
    io::copy(&mut source, &mut sink)?;
    let (file, got, _) = sink.finish();
    file.sync_all()?;
    Ok(got == *digest)
}

/// Copies `from` into the cache, checked against `digest`.
fn import_blob(from: &Path, digest: &Digest, cache: &Cache) -> Result<(), InputsError> {
    let tmp = cache.temp_file()?;
    if !copy_checked(from, tmp.path(), digest).map_err(io_at(from))? {
        return Err(InputsError::Damaged {
            path: from.to_owned(),
            digest: *digest,
        });
    }
    cache.commit_blob(tmp, digest)?;
    Ok(())
}

/// Writes `bytes` as a blob of the layout, unless it is there already.
fn put_blob(
    dir: &Path,
    digest: &Digest,
    write: impl FnOnce(&Path) -> io::Result<()>,
) -> Result<(), InputsError> {
    let path = blob_path(dir, digest);
    if path.is_file() {
        return Ok(());
    }
    let tmp = path.with_extension("tmp");
    write(&tmp).map_err(io_at(&tmp))?;
    fs::rename(&tmp, &path).map_err(io_at(&path))
}

/// Adds the files to an OCI layout (created when missing), each as an
/// artifact manifest listed in `index.json` under its tag; what the layout
/// lists already stays listed.
fn export_layout(files: &[PackageFile], cache: &Cache, dir: &Path) -> Result<usize, InputsError> {
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).map_err(io_at(&blobs))?;
    let marker = dir.join("oci-layout");
    fs::write(&marker, br#"{"imageLayoutVersion":"1.0.0"}"#).map_err(io_at(&marker))?;
    let index_path = dir.join("index.json");
    let mut listed: BTreeMap<String, serde_json::Value> = match fs::read(&index_path) {
        Ok(bytes) => serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v["manifests"].as_array().cloned())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| Some((m["digest"].as_str()?.to_owned(), m)))
            .collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => BTreeMap::new(),
        Err(e) => return Err(io_at(&index_path)(e)),
    };
    let empty = Digest::of(EMPTY_CONFIG);
    put_blob(dir, &empty, |p| fs::write(p, EMPTY_CONFIG))?;
    for file in files {
        let Some(source) = cache.verified_blob(&file.sha256) else {
            return Err(InputsError::Missing {
                count: 1,
                first: file.sha256,
                store: "the local cache".to_owned(),
            });
        };
        put_blob(dir, &file.sha256, |p| {
            if copy_checked(&source, p, &file.sha256)? {
                Ok(())
            } else {
                Err(io::Error::other(format!(
                    "{} changed while it was copied",
                    source.display()
                )))
            }
        })?;
        let manifest = file.sized(&source).manifest();
        let digest = Digest::of(&manifest);
        put_blob(dir, &digest, |p| fs::write(p, &manifest))?;
        listed.insert(
            digest.to_string(),
            serde_json::json!({
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": digest.to_string(),
                "size": manifest.len(),
                "annotations": {"org.opencontainers.image.ref.name": file.tag()},
            }),
        );
    }
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": listed.into_values().collect::<Vec<_>>(),
    });
    let tmp = dir.join("index.json.tmp");
    let bytes = serde_json::to_vec_pretty(&index).unwrap_or_default();
    fs::write(&tmp, bytes).map_err(io_at(&tmp))?;
    fs::rename(&tmp, &index_path).map_err(io_at(&index_path))?;
    Ok(files.len())
}
