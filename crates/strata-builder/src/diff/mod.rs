//! `strata diff`: what changed between two images, to explain why a rebuild's
//! digest moved. Compares per platform the digests, the image config, the
//! layer list, the final filesystem and the Debian packages it records.
//!
//! Library code only gathers facts; `render` turns them into text and
//! `main.rs` prints them (or serialises them as JSON).

pub mod render;
mod tree;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};
use serde::Serialize;
use serde_json::Value;

use strata_oci::digest::Digest;
use strata_oci::layout::{Layout, LayoutError, is_index};
use strata_oci::platform::Platform;

pub use tree::{Kind, Node};

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum DiffError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Layout(#[from] LayoutError),
    #[error("cannot read layer {digest} of `{}`", layout.display())]
    #[diagnostic(help(
        "the layer is not a tar stream of its media type: rebuild or re-copy the layout"
    ))]
    Layer {
        layout: PathBuf,
        digest: Digest,
        #[source]
        source: std::io::Error,
    },
}

/// One image to compare: a layout and, when it holds several, a tag.
pub struct Input<'a> {
    /// As the user wrote it (`DIR` or `DIR:TAG`), to name the side in reports.
    pub name: &'a str,
    pub layout: &'a Layout,
    pub tag: Option<&'a str>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Diff {
    pub a: Side,
    pub b: Side,
    pub identical: bool,
    pub platforms: Vec<PlatformDiff>,
    pub only_in_a: Vec<String>,
    pub only_in_b: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Side {
    pub image: String,
    pub digest: String,
    pub media_type: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlatformDiff {
    /// `linux/amd64`, or `linux/amd64 → linux/arm64` when two single-platform
    /// images of different platforms are compared.
    pub platform: String,
    pub old: ImageDigests,
    pub new: ImageDigests,
    pub config: Vec<ConfigChange>,
    pub layers: Layers,
    pub files: Vec<FileChange>,
    pub packages: Vec<PackageChange>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageDigests {
    pub manifest: String,
    pub config: String,
}

/// A changed config value. `key` names the variable, label, port or volume
/// within `field`; it is absent for single-valued fields.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigChange {
    pub field: String,
    pub key: Option<String>,
    pub old: Option<String>,
    pub new: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Layers {
    pub old_count: usize,
    pub new_count: usize,
    pub changed: usize,
    pub entries: Vec<LayerEntry>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LayerEntry {
    pub index: usize,
    pub status: Status,
    pub old: Option<LayerRef>,
    pub new: Option<LayerRef>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LayerRef {
    pub digest: String,
    pub size: u64,
    pub media_type: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Status {
    Same,
    Added,
    Removed,
    Changed,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileChange {
    pub path: String,
    pub change: Status,
    /// For `changed`: which attributes differ.
    pub what: Vec<What>,
    pub old: Option<Node>,
    pub new: Option<Node>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum What {
    Kind,
    Target,
    Content,
    Size,
    Mode,
    Owner,
    Mtime,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PackageChange {
    pub name: String,
    pub change: Status,
    pub old: Option<String>,
    pub new: Option<String>,
}

/// One platform's image, as read from a layout.
struct Image {
    platform: Platform,
    manifest_digest: String,
    manifest: ImageManifest,
    config: Value,
}

pub fn diff(a: &Input, b: &Input) -> Result<Diff, DiffError> {
    let top_a = a.layout.find(a.tag)?;
    let top_b = b.layout.find(b.tag)?;
    let side = |input: &Input, top: &Descriptor| Side {
        image: input.name.to_owned(),
        digest: top.digest().to_string(),
        media_type: top.media_type().to_string(),
    };
    let mut diff = Diff {
        a: side(a, top_a),
        b: side(b, top_b),
        identical: top_a.digest() == top_b.digest(),
        platforms: Vec::new(),
        only_in_a: Vec::new(),
        only_in_b: Vec::new(),
    };
    if diff.identical {
        return Ok(diff);
    }
    let images_a = images(a.layout, top_a)?;
    let mut images_b = images(b.layout, top_b)?;
    // Two single-platform images are compared even across platforms: the
    // os/arch change then shows in the config section.
    if images_a.len() == 1 && images_b.len() == 1 {
        let (old, new) = (&images_a[0], &images_b[0]);
        diff.platforms
            .push(compare_images(a.layout, old, b.layout, new)?);
        return Ok(diff);
    }
    for old in &images_a {
        match images_b.iter().position(|n| n.platform == old.platform) {
            Some(i) => {
                let new = images_b.remove(i);
                diff.platforms
                    .push(compare_images(a.layout, old, b.layout, &new)?);
            }
            None => diff.only_in_a.push(old.platform.to_string()),
        }
    }
    diff.only_in_b = images_b.iter().map(|n| n.platform.to_string()).collect();
    Ok(diff)
}

/// The images under `top`: itself, or each image manifest of an index.
fn images(layout: &Layout, top: &Descriptor) -> Result<Vec<Image>, DiffError> {
    let descriptors = if is_index(top.media_type()) {
        let index: ImageIndex = layout.read_json(top, "image index")?;
        index
            .manifests()
            .iter()
            // Attestations (`unknown/unknown`) and nested indexes are not images.
            .filter(|d| !is_index(d.media_type()))
            .filter(|d| {
                d.platform()
                    .as_ref()
                    .is_none_or(|p| p.os().to_string() != "unknown")
            })
            .cloned()
            .collect()
    } else {
        vec![top.clone()]
    };
    let mut images = Vec::new();
    for desc in descriptors {
        let manifest: ImageManifest = layout.read_json(&desc, "manifest")?;
        let config: Value = layout.read_json(manifest.config(), "image config")?;
        let text = |key: &str| config.get(key).and_then(Value::as_str).unwrap_or("");
        let platform = Platform {
            os: text("os").to_owned(),
            architecture: text("architecture").to_owned(),
            variant: Some(text("variant"))
                .filter(|v| !v.is_empty())
                .map(str::to_owned),
        };
        images.push(Image {
            platform,
            manifest_digest: desc.digest().to_string(),
            manifest,
            config,
        });
    }
    Ok(images)
}

fn compare_images(
    layout_a: &Layout,
    old: &Image,
    layout_b: &Layout,
    new: &Image,
) -> Result<PlatformDiff, DiffError> {
    let platform = if old.platform == new.platform {
        old.platform.to_string()
    } else {
        format!("{} → {}", old.platform, new.platform)
    };
    let digests = |image: &Image| ImageDigests {
        manifest: image.manifest_digest.clone(),
        config: image.manifest.config().digest().to_string(),
    };
    let layers_old = layer_refs(&old.manifest);
    let layers_new = layer_refs(&new.manifest);
    // The same layers make the same filesystem: skip reading them.
    let (files, packages) = if layers_old == layers_new {
        (Vec::new(), Vec::new())
    } else {
        let (tree_old, tree_new) = rayon::join(
            || tree::read(layout_a, &old.manifest),
            || tree::read(layout_b, &new.manifest),
        );
        let (tree_old, tree_new) = (tree_old?, tree_new?);
        let packages = compare_packages(
            &tree_old.packages(native_arch(&old.platform)),
            &tree_new.packages(native_arch(&new.platform)),
        );
        (
            compare_files(&tree_old.entries, &tree_new.entries),
            packages,
        )
    };
    Ok(PlatformDiff {
        platform,
        old: digests(old),
        new: digests(new),
        config: compare_config(&old.config, &new.config),
        layers: compare_layers(&layers_old, &layers_new),
        files,
        packages,
    })
}

/// dpkg leaves the native architecture out of package names; so does the diff.
fn native_arch(platform: &Platform) -> Option<&'static str> {
    strata_debian::debian_arch(platform).ok()
}

fn layer_refs(manifest: &ImageManifest) -> Vec<LayerRef> {
    manifest
        .layers()
        .iter()
        .map(|l| LayerRef {
            digest: l.digest().to_string(),
            size: l.size(),
            media_type: l.media_type().to_string(),
        })
        .collect()
}

fn compare_layers(old: &[LayerRef], new: &[LayerRef]) -> Layers {
    let entries: Vec<LayerEntry> = (0..old.len().max(new.len()))
        .map(|index| {
            let (old, new) = (old.get(index).cloned(), new.get(index).cloned());
            let status = match (&old, &new) {
                (Some(o), Some(n)) if o == n => Status::Same,
                (Some(_), Some(_)) => Status::Changed,
                (Some(_), None) => Status::Removed,
                _ => Status::Added,
            };
            LayerEntry {
                index,
                status,
                old,
                new,
            }
        })
        .collect();
    Layers {
        old_count: old.len(),
        new_count: new.len(),
        changed: entries.iter().filter(|e| e.status != Status::Same).count(),
        entries,
    }
}

/// Fields of the config's `config` section, in the order reports show them.
const RUNTIME_FIELDS: [&str; 9] = [
    "User",
    "Env",
    "Entrypoint",
    "Cmd",
    "WorkingDir",
    "ExposedPorts",
    "Volumes",
    "Labels",
    "StopSignal",
];

/// Top-level config fields shown first; `rootfs` is left to the layer section.
const IMAGE_FIELDS: [&str; 4] = ["created", "os", "architecture", "variant"];

fn compare_config(old: &Value, new: &Value) -> Vec<ConfigChange> {
    let mut changes = Vec::new();
    for field in IMAGE_FIELDS {
        scalar(&mut changes, field, old.get(field), new.get(field));
    }
    let (run_old, run_new) = (old.get("config"), new.get("config"));
    for field in RUNTIME_FIELDS {
        let (o, n) = (get(run_old, field), get(run_new, field));
        match field {
            "Env" => env(&mut changes, o, n),
            "Labels" => keyed(&mut changes, field, &object(o), &object(n)),
            "ExposedPorts" | "Volumes" => {
                let set = |v| -> BTreeMap<String, Value> {
                    object(v)
                        .into_keys()
                        .map(|k| (k.clone(), k.into()))
                        .collect()
                };
                keyed(&mut changes, field, &set(o), &set(n));
            }
            _ => scalar(&mut changes, field, o, n),
        }
    }
    // Whatever else differs (history, healthcheck, …) also moves the digest.
    let others = |v: Option<&Value>, known: &[&str]| -> BTreeSet<String> {
        object(v)
            .into_keys()
            .filter(|k| !known.contains(&k.as_str()))
            .collect()
    };
    for field in others(run_old, &RUNTIME_FIELDS).union(&others(run_new, &RUNTIME_FIELDS)) {
        scalar(
            &mut changes,
            field,
            get(run_old, field),
            get(run_new, field),
        );
    }
    history(&mut changes, old.get("history"), new.get("history"));
    let top_known = [&IMAGE_FIELDS[..], &["config", "rootfs", "history"]].concat();
    for field in others(Some(old), &top_known).union(&others(Some(new), &top_known)) {
        scalar(&mut changes, field, old.get(field), new.get(field));
    }
    changes
}

fn get<'v>(value: Option<&'v Value>, field: &str) -> Option<&'v Value> {
    value.and_then(|v| v.get(field))
}

/// A value as one line: strings bare, anything else as compact JSON.
fn text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn scalar(changes: &mut Vec<ConfigChange>, field: &str, old: Option<&Value>, new: Option<&Value>) {
    let (old, new) = (text(old), text(new));
    if old != new {
        changes.push(ConfigChange {
            field: field.to_owned(),
            key: None,
            old,
            new,
        });
    }
}

fn object(value: Option<&Value>) -> BTreeMap<String, Value> {
    match value {
        Some(Value::Object(map)) => map.clone().into_iter().collect(),
        _ => BTreeMap::new(),
    }
}

fn keyed(
    changes: &mut Vec<ConfigChange>,
    field: &str,
    old: &BTreeMap<String, Value>,
    new: &BTreeMap<String, Value>,
) {
    let keys: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for key in keys {
        let (o, n) = (text(old.get(key)), text(new.get(key)));
        if o != n {
            changes.push(ConfigChange {
                field: field.to_owned(),
                key: Some(key.clone()),
                old: o,
                new: n,
            });
        }
    }
}

/// `Env` per variable, showing whole `NAME=value` lines; a change of order
/// alone is reported for the whole list, since it changes the digest too.
fn env(changes: &mut Vec<ConfigChange>, old: Option<&Value>, new: Option<&Value>) {
    let vars = |v: Option<&Value>| -> BTreeMap<String, Value> {
        let lines = v.and_then(Value::as_array).into_iter().flatten();
        lines
            .filter_map(Value::as_str)
            .map(|line| {
                let name = line.split_once('=').map_or(line, |(n, _)| n);
                (name.to_owned(), line.into())
            })
            .collect()
    };
    let before = changes.len();
    keyed(changes, "Env", &vars(old), &vars(new));
    if changes.len() == before {
        scalar(changes, "Env", old, new);
    }
}

/// `history` per entry (keyed by index): one build step per line reads
/// better than the whole list on one line.
fn history(changes: &mut Vec<ConfigChange>, old: Option<&Value>, new: Option<&Value>) {
    let entries = |v: Option<&Value>| v.and_then(Value::as_array).cloned().unwrap_or_default();
    let (old, new) = (entries(old), entries(new));
    for index in 0..old.len().max(new.len()) {
        let (o, n) = (text(old.get(index)), text(new.get(index)));
        if o != n {
            changes.push(ConfigChange {
                field: "history".to_owned(),
                key: Some(index.to_string()),
                old: o,
                new: n,
            });
        }
    }
}

fn compare_files(old: &BTreeMap<String, Node>, new: &BTreeMap<String, Node>) -> Vec<FileChange> {
    let paths: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    paths
        .into_iter()
        .filter_map(|path| {
            let (o, n) = (old.get(path), new.get(path));
            let (change, what) = match (o, n) {
                (Some(o), Some(n)) => {
                    let what = o.differences(n);
                    if what.is_empty() {
                        return None;
                    }
                    (Status::Changed, what)
                }
                (Some(_), None) => (Status::Removed, Vec::new()),
                _ => (Status::Added, Vec::new()),
            };
            Some(FileChange {
                path: path.clone(),
                change,
                what,
                old: o.cloned(),
                new: n.cloned(),
            })
        })
        .collect()
}

fn compare_packages(
    old: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
) -> Vec<PackageChange> {
    let names: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    names
        .into_iter()
        .filter_map(|name| {
            let (o, n) = (old.get(name), new.get(name));
            let change = match (o, n) {
                (Some(o), Some(n)) if o == n => return None,
                (Some(_), Some(_)) => Status::Changed,
                (Some(_), None) => Status::Removed,
                _ => Status::Added,
            };
            Some(PackageChange {
                name: name.clone(),
                change,
                old: o.cloned(),
                new: n.cloned(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn change(c: &ConfigChange) -> (String, Option<&str>, Option<&str>, Option<&str>) {
        (
            c.field.clone(),
            c.key.as_deref(),
            c.old.as_deref(),
            c.new.as_deref(),
        )
    }

    #[test]
    fn config_changes_per_variable_label_and_port() {
        let old = json!({"os": "linux", "created": "1", "config": {
            "User": "1:1", "Env": ["A=1", "B=2"], "Labels": {"x": "1"},
            "ExposedPorts": {"80/tcp": {}}, "Cmd": ["a"]}});
        let new = json!({"os": "linux", "created": "2", "config": {
            "User": "2:2", "Env": ["A=1", "B=3", "C=4"], "Labels": {"x": "1", "y": "2"},
            "ExposedPorts": {"81/tcp": {}}, "Cmd": ["a"], "Healthcheck": {"Test": ["NONE"]}},
            "history": [{"created_by": "x"}]});
        let changes = compare_config(&old, &new);
        let changes: Vec<_> = changes.iter().map(change).collect();
        let expected = [
            ("created", None, Some("1"), Some("2")),
            ("User", None, Some("1:1"), Some("2:2")),
            ("Env", Some("B"), Some("B=2"), Some("B=3")),
            ("Env", Some("C"), None, Some("C=4")),
            ("ExposedPorts", Some("80/tcp"), Some("80/tcp"), None),
            ("ExposedPorts", Some("81/tcp"), None, Some("81/tcp")),
            ("Labels", Some("y"), None, Some("2")),
            ("Healthcheck", None, None, Some(r#"{"Test":["NONE"]}"#)),
            ("history", Some("0"), None, Some(r#"{"created_by":"x"}"#)),
        ];
        let expected: Vec<_> = expected
            .iter()
            .map(|(f, k, o, n)| (f.to_string(), *k, *o, *n))
            .collect();
        assert_eq!(changes, expected);
    }

    #[test]
    fn env_order_alone_is_a_change() {
        let old = json!({"config": {"Env": ["A=1", "B=2"]}});
        let new = json!({"config": {"Env": ["B=2", "A=1"]}});
        let changes = compare_config(&old, &new);
        assert_eq!(changes.len(), 1);
        assert_eq!(
            (changes[0].field.as_str(), changes[0].key.as_deref()),
            ("Env", None)
        );
        assert!(compare_config(&old, &old).is_empty());
    }

    #[test]
    fn layers_by_index() {
        let l = |d: &str| LayerRef {
            digest: d.into(),
            size: 1,
            media_type: "m".into(),
        };
        let layers = compare_layers(&[l("a"), l("b")], &[l("a"), l("c"), l("d")]);
        let statuses: Vec<_> = layers.entries.iter().map(|e| e.status).collect();
        assert_eq!(statuses, [Status::Same, Status::Changed, Status::Added]);
        assert_eq!(
            (layers.changed, layers.old_count, layers.new_count),
            (2, 2, 3)
        );
    }

    #[test]
    fn packages_added_removed_and_upgraded() {
        let map = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect()
        };
        let changes = compare_packages(
            &map(&[("a", "1"), ("b", "1"), ("c", "1")]),
            &map(&[("a", "1"), ("b", "2"), ("d", "1")]),
        );
        let got: Vec<_> = changes
            .iter()
            .map(|c| (c.name.as_str(), c.change))
            .collect();
        assert_eq!(
            got,
            [
                ("b", Status::Changed),
                ("c", Status::Removed),
                ("d", Status::Added)
            ]
        );
    }
}
