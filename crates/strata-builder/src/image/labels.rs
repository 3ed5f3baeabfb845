//! The `org.opencontainers.image.*` labels and annotations.

use std::collections::BTreeMap;

use crate::recipe::Recipe;

/// Where the image came from, beyond the recipe text.
#[derive(Debug, Clone, Default)]
pub struct Provenance {
    /// RFC 3339 form of the build's epoch.
    pub created: String,
    pub revision: Option<String>,
    pub base_name: Option<String>,
    pub base_digest: Option<String>,
}

const PREFIX: &str = "org.opencontainers.image.";

/// The OCI annotations, as both the config's labels and the manifest's
/// annotations carry them.
pub fn oci_annotations(recipe: &Recipe, provenance: &Provenance) -> BTreeMap<String, String> {
    let m = &recipe.metadata;
    let pairs = [
        ("title", Some(&recipe.name.value)),
        ("version", m.version.as_ref()),
        ("description", m.description.as_ref()),
        ("source", m.source.as_ref()),
        ("url", m.url.as_ref()),
        ("documentation", m.documentation.as_ref()),
        ("vendor", m.vendor.as_ref()),
        ("licenses", m.licenses.as_ref()),
        ("authors", m.authors.as_ref()),
        ("created", Some(&provenance.created)),
        ("revision", provenance.revision.as_ref()),
        ("base.name", provenance.base_name.as_ref()),
        ("base.digest", provenance.base_digest.as_ref()),
    ];
    pairs
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (format!("{PREFIX}{k}"), v.clone())))
        .collect()
}

/// The config's labels: the base's, then the OCI annotations, then the recipe's own.
pub fn labels(
    recipe: &Recipe,
    base: Option<&std::collections::HashMap<String, String>>,
    annotations: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = base
        .into_iter()
        .flatten()
        .filter(|(k, _)| !k.starts_with(PREFIX))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    out.extend(annotations.iter().map(|(k, v)| (k.clone(), v.clone())));
    for (k, v) in &recipe.labels {
        out.insert(k.value.clone(), v.value.clone());
    }
    out
}
