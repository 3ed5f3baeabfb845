//! CycloneDX 1.5 JSON.

use serde_json::{Value, json};

use super::Inventory;

pub const MEDIA_TYPE: &str = "application/vnd.cyclonedx+json";

/// A CycloneDX licence: an SPDX id as `id`, anything else by `name`
/// (the schema only accepts ids from the SPDX licence list).
fn license(id: &str) -> Value {
    match id.strip_prefix("LicenseRef-") {
        Some(name) => json!({"license": {"name": name}}),
        None => json!({"license": {"id": id}}),
    }
}

/// A serial number derived from the image digest (UUID-shaped, as the
/// schema demands), so that the same image always gets the same one.
fn serial(inv: &Inventory) -> String {
    let h = inv.image.hex();
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

pub fn document(inv: &Inventory) -> Value {
    let mut components = Vec::new();
    for (name, digest) in &inv.bases {
        components.push(json!({
            "type": "container",
            "bom-ref": format!("base:{digest}"),
            "name": name,
            "version": digest.to_string(),
            "hashes": [{"alg": "SHA-256", "content": digest.hex()}],
        }));
    }
    for p in &inv.packages {
        let mut c = json!({
            "type": "library",
            "bom-ref": p.purl(),
            "name": p.name,
            "version": p.version,
            "purl": p.purl(),
            "hashes": [{"alg": "SHA-256", "content": p.sha256.hex()}],
            "externalReferences": [{"type": "distribution", "url": p.url}],
            "properties": [{"name": "strata:architecture", "value": p.architecture}],
        });
        if !p.licenses.is_empty() {
            c["licenses"] = p.licenses.iter().map(|l| license(l)).collect();
        }
        components.push(c);
    }
    for p in &inv.base_packages {
        let purl = super::purl(&p.name, &p.version, &p.architecture);
        components.push(json!({
            "type": "library",
            "bom-ref": purl,
            "name": p.name,
            "version": p.version,
            "purl": purl,
            "properties": [
                {"name": "strata:architecture", "value": p.architecture},
                {"name": "strata:from", "value": "base"},
            ],
        }));
    }
    for f in &inv.files {
        components.push(json!({
            "type": "file",
            "bom-ref": format!("file:{}", f.path),
            "name": f.path,
            "hashes": [
                {"alg": "SHA-1", "content": f.sha1},
                {"alg": "SHA-256", "content": f.sha256},
            ],
        }));
    }
    let mut image = json!({
        "type": "container",
        "bom-ref": format!("image:{}", inv.image),
        "name": inv.name,
        "version": inv.version,
        "hashes": [{"alg": "SHA-256", "content": inv.image.hex()}],
    });
    if let Some(expression) = &inv.licenses {
        image["licenses"] = json!([{"expression": expression}]);
    }
    json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": serial(inv),
        "version": 1,
        "metadata": {
            "timestamp": inv.created,
            "tools": {"components": [{
                "type": "application",
                "name": "strata",
                "version": env!("CARGO_PKG_VERSION"),
            }]},
            "component": image,
        },
        "components": components,
    })
}
