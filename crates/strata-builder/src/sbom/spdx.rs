//! SPDX 2.3 JSON.

use serde_json::{Value, json};

use super::{Inventory, Package};

pub const MEDIA_TYPE: &str = "application/spdx+json";

fn package_id(p: &Package) -> String {
    match p.ecosystem {
        super::Ecosystem::Debian => {
            spdx_ref(&format!("deb-{}-{}-{}", p.name, p.architecture, p.version))
        }
        super::Ecosystem::Python => spdx_ref(&format!("pypi-{}-{}", p.name, p.version)),
    }
}

/// `SPDXRef-` followed by the characters SPDX ids allow.
fn spdx_ref(text: &str) -> String {
    format!("SPDXRef-{}", super::license::id_chars(text))
}

fn purl_ref(purl: String) -> Value {
    json!([{
        "referenceCategory": "PACKAGE-MANAGER",
        "referenceType": "purl",
        "referenceLocator": purl,
    }])
}

/// The licence expression of a package: its licences joined with `AND`
/// (a copyright file lists the licences of different files), or
/// `NOASSERTION` when the copyright file is not machine-readable.
fn expression(licenses: &[String]) -> String {
    if licenses.is_empty() {
        "NOASSERTION".to_owned()
    } else {
        licenses.join(" AND ")
    }
}

pub fn document(inv: &Inventory) -> Value {
    let image_id = "SPDXRef-image";
    let mut packages = vec![json!({
        "SPDXID": image_id,
        "name": inv.name,
        "versionInfo": inv.version,
        "primaryPackagePurpose": "CONTAINER",
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": inv.licenses.as_deref().unwrap_or("NOASSERTION"),
        "copyrightText": "NOASSERTION",
        "checksums": [{"algorithm": "SHA256", "checksumValue": inv.image.hex()}],
        "externalRefs": purl_ref(format!("pkg:oci/{}@sha256%3A{}", inv.name, inv.image.hex())),
    })];
    let mut relationships = vec![json!({
        "spdxElementId": "SPDXRef-DOCUMENT",
        "relationshipType": "DESCRIBES",
        "relatedSpdxElement": image_id,
    })];
    let mut relate = |kind: &str, other: &str| {
        relationships.push(json!({
            "spdxElementId": image_id,
            "relationshipType": kind,
            "relatedSpdxElement": other,
        }));
    };
    for (i, (name, digest)) in inv.bases.iter().enumerate() {
        let id = format!("SPDXRef-base-{i}");
        let repository = name.rsplit('/').next().unwrap_or(name);
        packages.push(json!({
            "SPDXID": id,
            "name": name,
            "versionInfo": digest.to_string(),
            "primaryPackagePurpose": "CONTAINER",
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION",
            "checksums": [{"algorithm": "SHA256", "checksumValue": digest.hex()}],
            "externalRefs": purl_ref(format!("pkg:oci/{}@sha256%3A{}", repository.split(':').next().unwrap_or(repository), digest.hex())),
        }));
        relate("DESCENDANT_OF", &id);
    }
    let mut refs: Vec<&str> = Vec::new();
    for p in &inv.packages {
        let id = package_id(p);
        packages.push(json!({
            "SPDXID": id,
            "name": p.name,
            "versionInfo": p.version,
            "primaryPackagePurpose": "LIBRARY",
            "downloadLocation": p.url,
            "filesAnalyzed": false,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": expression(&p.licenses),
            "copyrightText": "NOASSERTION",
            "checksums": [{"algorithm": "SHA256", "checksumValue": p.sha256.hex()}],
            "externalRefs": purl_ref(p.purl()),
        }));
        relate("CONTAINS", &id);
        refs.extend(
            p.licenses
                .iter()
                .filter(|l| l.starts_with("LicenseRef-"))
                .map(String::as_str),
        );
    }
    for p in &inv.base_packages {
        let id = spdx_ref(&format!(
            "base-deb-{}-{}-{}",
            p.name, p.architecture, p.version
        ));
        packages.push(json!({
            "SPDXID": id,
            "name": p.name,
            "versionInfo": p.version,
            "primaryPackagePurpose": "LIBRARY",
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION",
            "comment": "installed in the base image (its dpkg database)",
            "externalRefs": purl_ref(super::purl(&p.name, &p.version, &p.architecture)),
        }));
        relate("CONTAINS", &id);
    }
    let mut files = Vec::new();
    for (i, f) in inv.files.iter().enumerate() {
        let id = format!("SPDXRef-file-{i}");
        files.push(json!({
            "SPDXID": id,
            "fileName": format!(".{}", f.path),
            "checksums": [
                {"algorithm": "SHA1", "checksumValue": f.sha1},
                {"algorithm": "SHA256", "checksumValue": f.sha256},
            ],
            "licenseConcluded": "NOASSERTION",
            "copyrightText": "NOASSERTION",
        }));
        relate("CONTAINS", &id);
    }
    refs.sort_unstable();
    refs.dedup();
    let extracted: Vec<Value> = refs
        .iter()
        .map(|id| {
            json!({
                "licenseId": id,
                "name": id.trim_start_matches("LicenseRef-"),
                "extractedText": "A licence named in a Debian copyright file (/usr/share/doc/PACKAGE/copyright) that has no SPDX identifier; the file holds its text.",
            })
        })
        .collect();
    let mut doc = json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": format!("{}:{}", inv.name, inv.version),
        "documentNamespace": format!(
            "https://spdx.org/spdxdocs/{}-{}-{}",
            inv.name,
            inv.version,
            inv.image.hex()
        ),
        "creationInfo": {
            "created": inv.created,
            "creators": [format!("Tool: strata-{}", env!("CARGO_PKG_VERSION"))],
        },
        "packages": packages,
        "relationships": relationships,
    });
    if !files.is_empty() {
        doc["files"] = Value::Array(files);
    }
    if !extracted.is_empty() {
        doc["hasExtractedLicensingInfos"] = Value::Array(extracted);
    }
    doc
}
