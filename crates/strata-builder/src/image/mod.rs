//! The image: config, manifest and index as canonical JSON blobs.

pub mod labels;

use std::collections::{BTreeMap, HashMap};

use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::Arc;

use oci_spec::image::{
    Arch, Config, ConfigBuilder, Descriptor, DescriptorBuilder, History, HistoryBuilder,
    ImageConfiguration, ImageConfigurationBuilder, ImageIndexBuilder, ImageManifestBuilder,
    MediaType, Os, PlatformBuilder, RootFsBuilder,
};
use serde::Serialize;

use crate::recipe::Runtime;
use crate::tre;
use strata_oci::digest::{CheckedReader, Digest};
use strata_oci::json::to_canonical_vec;
pub use strata_oci::manifest::ManifestLayer;
use strata_oci::platform::Platform;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("cannot serialise the image {what}")]
    Json {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("invalid image {what}: {message}")]
    Spec { what: &'static str, message: String },
}

type Result<T> = std::result::Result<T, ImageError>;

fn spec_err(what: &'static str) -> impl Fn(oci_spec::OciSpecError) -> ImageError {
    move |e| ImageError::Spec {
        what,
        message: e.to_string(),
    }
}

/// A JSON document as the exact bytes that are stored and pushed.
#[derive(Debug, Clone)]
pub struct JsonBlob {
    pub media_type: MediaType,
    pub digest: Digest,
    pub bytes: Vec<u8>,
}

impl JsonBlob {
    pub fn new<T: Serialize>(media_type: MediaType, what: &'static str, value: &T) -> Result<Self> {
        let bytes = to_canonical_vec(value).map_err(|source| ImageError::Json { what, source })?;
        Ok(JsonBlob {
            media_type,
            digest: Digest::of(&bytes),
            bytes,
        })
    }

    pub fn descriptor(&self) -> Descriptor {
        Descriptor::new(
            self.media_type.clone(),
            self.bytes.len() as u64,
            self.digest,
        )
    }
}

/// Everything that goes into one platform's config and manifest.
pub struct ImageSpec<'a> {
    pub platform: &'a Platform,
    pub base_config: Option<&'a ImageConfiguration>,
    pub base_layers: &'a [ManifestLayer],
    /// strata's layers, each with the history line that describes it.
    pub layers: &'a [(ManifestLayer, String)],
    pub user: Option<&'a str>,
    /// The Python venv packages went into: `VIRTUAL_ENV`, and first on `PATH`.
    pub venv: Option<&'a str>,
    pub runtime: &'a Runtime,
    pub tre: bool,
    pub created: &'a str,
    pub labels: &'a BTreeMap<String, String>,
    pub annotations: &'a BTreeMap<String, String>,
}

pub struct Image {
    pub config: JsonBlob,
    pub manifest: JsonBlob,
}

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

pub fn image(spec: &ImageSpec) -> Result<Image> {
    let config = JsonBlob::new(MediaType::ImageConfig, "config", &configuration(spec)?)?;
    let layers = spec
        .base_layers
        .iter()
        .chain(spec.layers.iter().map(|(l, _)| l))
        .map(|l| {
            DescriptorBuilder::default()
                .media_type(MediaType::from(l.media_type.as_str()))
                .digest(l.digest)
                .size(l.size)
                .build()
                .map_err(spec_err("layer descriptor"))
        })
        .collect::<Result<Vec<_>>>()?;
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(config.descriptor())
        .layers(layers)
        .annotations(to_hash_map(spec.annotations))
        .build()
        .map_err(spec_err("manifest"))?;
    let manifest = JsonBlob::new(MediaType::ImageManifest, "manifest", &manifest)?;
    Ok(Image { config, manifest })
}

/// The image's `Env`: the base's variables (or a default `PATH`), then the
/// TRE preset's, then the venv's, then the recipe's, a later value replacing
/// an earlier one in place.
pub fn environment(
    base: Option<&oci_spec::image::Config>,
    runtime: &Runtime,
    tre: bool,
    venv: Option<&str>,
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = match base.and_then(|b| b.env().as_ref()) {
        Some(vars) => vars
            .iter()
            .map(|v| {
                let (k, val) = v.split_once('=').unwrap_or((v, ""));
                (k.to_owned(), val.to_owned())
            })
            .collect(),
        None => vec![("PATH".to_owned(), DEFAULT_PATH.to_owned())],
    };
    let preset = if tre { &tre::ENV[..] } else { &[] };
    let mut venv_env = Vec::new();
    if let Some(venv) = venv {
        let path = env
            .iter()
            .find(|(k, _)| k == "PATH")
            .map_or(DEFAULT_PATH, |(_, v)| v.as_str());
        venv_env.push(("PATH".to_owned(), format!("{venv}/bin:{path}")));
        venv_env.push(("VIRTUAL_ENV".to_owned(), venv.to_owned()));
    }
    for (k, v) in preset
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .chain(venv_env)
        .chain(runtime.env.iter().cloned())
    {
        match env.iter_mut().find(|(name, _)| *name == k) {
            Some(slot) => slot.1 = v,
            None => env.push((k, v)),
        }
    }
    env
}

fn configuration(spec: &ImageSpec) -> Result<ImageConfiguration> {
    let base = spec.base_config.and_then(|c| c.config().as_ref());
    let runtime = spec.runtime;

    let env = environment(base, runtime, spec.tre, spec.venv);

    let mut volumes: Vec<String> = base.and_then(|b| b.volumes().clone()).unwrap_or_default();
    if spec.tre {
        volumes.extend(tre::volumes());
    }
    volumes.extend(runtime.volumes.iter().cloned());
    volumes.sort();
    volumes.dedup();

    let mut ports: Vec<String> = base
        .and_then(|b| b.exposed_ports().clone())
        .unwrap_or_default();
    ports.extend(runtime.expose.iter().cloned());
    ports.sort();
    ports.dedup();

    // As in a Dockerfile, a new entrypoint drops the base's command.
    let (entrypoint, cmd) = match &runtime.entrypoint {
        Some(ep) => (Some(ep.clone()), runtime.cmd.clone()),
        None => (
            base.and_then(|b| b.entrypoint().clone()),
            runtime
                .cmd
                .clone()
                .or_else(|| base.and_then(|b| b.cmd().clone())),
        ),
    };

    let mut config = ConfigBuilder::default();
    if let Some(user) = spec
        .user
        .map(str::to_owned)
        .or_else(|| base.and_then(|b| b.user().clone()))
    {
        config = config.user(user);
    }
    config = config.env(
        env.into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>(),
    );
    if let Some(ep) = entrypoint {
        config = config.entrypoint(ep);
    }
    if let Some(cmd) = cmd {
        config = config.cmd(cmd);
    }
    if let Some(dir) = runtime
        .workdir
        .clone()
        .or_else(|| base.and_then(|b| b.working_dir().clone()))
    {
        config = config.working_dir(dir);
    }
    if !volumes.is_empty() {
        config = config.volumes(volumes);
    }
    if !ports.is_empty() {
        config = config.exposed_ports(ports);
    }
    if let Some(signal) = runtime
        .stop_signal
        .clone()
        .or_else(|| base.and_then(|b| b.stop_signal().clone()))
    {
        config = config.stop_signal(signal);
    }
    config = config.labels(to_hash_map(spec.labels));
    let config: Config = config.build().map_err(spec_err("config"))?;

    let mut diff_ids: Vec<String> = spec
        .base_layers
        .iter()
        .map(|l| l.diff_id.to_string())
        .collect();
    diff_ids.extend(spec.layers.iter().map(|(l, _)| l.diff_id.to_string()));
    let rootfs = RootFsBuilder::default()
        .typ("layers")
        .diff_ids(diff_ids)
        .build()
        .map_err(spec_err("rootfs"))?;

    let mut history: Vec<History> = match spec.base_config.and_then(|c| c.history().clone()) {
        Some(h) => h,
        None => spec
            .base_layers
            .iter()
            .map(|_| {
                HistoryBuilder::default()
                    .created_by("base layer")
                    .build()
                    .map_err(spec_err("history"))
            })
            .collect::<Result<_>>()?,
    };
    for (_, created_by) in spec.layers {
        history.push(
            HistoryBuilder::default()
                .created(spec.created)
                .created_by(created_by.as_str())
                .comment("strata")
                .build()
                .map_err(spec_err("history"))?,
        );
    }

    let mut image = ImageConfigurationBuilder::default()
        .created(spec.created)
        .architecture(Arch::from(spec.platform.architecture.as_str()))
        .os(Os::from(spec.platform.os.as_str()))
        .config(config)
        .rootfs(rootfs)
        .history(history);
    if let Some(variant) = &spec.platform.variant {
        image = image.variant(variant.as_str());
    }
    image.build().map_err(spec_err("config"))
}

/// An image index over per-platform manifests.
pub fn index(
    manifests: &[(JsonBlob, Platform)],
    annotations: &BTreeMap<String, String>,
) -> Result<JsonBlob> {
    let descriptors = manifests
        .iter()
        .map(|(m, p)| platform_descriptor(m, p))
        .collect::<Result<Vec<_>>>()?;
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(descriptors)
        .annotations(to_hash_map(annotations))
        .build()
        .map_err(spec_err("index"))?;
    JsonBlob::new(MediaType::ImageIndex, "index", &index)
}

pub fn platform_descriptor(blob: &JsonBlob, platform: &Platform) -> Result<Descriptor> {
    let mut p = PlatformBuilder::default()
        .architecture(Arch::from(platform.architecture.as_str()))
        .os(Os::from(platform.os.as_str()));
    if let Some(v) = &platform.variant {
        p = p.variant(v.as_str());
    }
    let mut d = blob.descriptor();
    d.set_platform(Some(p.build().map_err(spec_err("platform"))?));
    Ok(d)
}

pub fn to_hash_map(map: &BTreeMap<String, String>) -> HashMap<String, String> {
    map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// Where a blob's bytes are: a file (a layer in the cache, a base layer) or
/// in memory (config, manifest, index, SBOM).
#[derive(Debug, Clone)]
pub enum BlobSource {
    File(PathBuf),
    Bytes(Arc<Vec<u8>>),
    /// Only in this repository of a registry (the registry cache): a push
    /// to that registry mounts it; nothing local can read it.
    Registry(strata_oci::reference::Reference),
}

/// A blob of the image, ready for `output` to write or `push` to send.
#[derive(Debug, Clone)]
pub struct Blob {
    pub digest: Digest,
    pub size: u64,
    pub source: BlobSource,
}

impl Blob {
    pub fn bytes(bytes: Vec<u8>) -> Blob {
        Blob {
            digest: Digest::of(&bytes),
            size: bytes.len() as u64,
            source: BlobSource::Bytes(Arc::new(bytes)),
        }
    }

    pub fn json(blob: &JsonBlob) -> Blob {
        Blob {
            digest: blob.digest,
            size: blob.bytes.len() as u64,
            source: BlobSource::Bytes(Arc::new(blob.bytes.clone())),
        }
    }

    /// The blob's bytes, checked against its digest and size as they are
    /// read: a file changed since it was verified (a cache blob, a base
    /// layout's blob) fails the read instead of reaching an output.
    pub fn open(&self) -> io::Result<Box<dyn Read + Send + '_>> {
        let reader: Box<dyn Read + Send + '_> = match &self.source {
            BlobSource::File(path) => Box::new(strata_oci::regular::open_regular(path)?),
            BlobSource::Bytes(bytes) => Box::new(&bytes[..]),
            BlobSource::Registry(repository) => {
                return Err(io::Error::other(format!(
                    "blob {} is in the registry cache `{repository}` only",
                    self.digest
                )));
            }
        };
        Ok(Box::new(CheckedReader::new(reader, self.digest, self.size)))
    }
}
