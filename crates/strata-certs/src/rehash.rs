//! The `HASH.N` links `openssl rehash /etc/ssl/certs` makes, which OpenSSL's
//! directory lookup (`-CApath`, `SSL_CERT_DIR`, Python's `capath`) opens by
//! the subject hash of the issuer it looks for.
//!
//! As OpenSSL 3's `apps/rehash.c` does in a folder with no hash links yet:
//! files are taken in `strcmp` order; only a file holding exactly one
//! certificate (and no CRL) is linked; certificates whose subjects hash alike
//! get `.0`, `.1`, … in that order; a certificate with the same SHA-1
//! fingerprint as one already linked gets no link of its own.

use std::collections::BTreeMap;

use sha1::{Digest, Sha1};

use crate::{CertError, subject_hash};

/// (link name, target) for each hash link, e.g. (`4042bcee.0`,
/// `ISRG_Root_X1.pem`). `files` are the folder's `NAME.pem` links with the
/// certificate `openssl rehash` would read from each, if any.
pub(crate) fn hash_links<'a>(
    files: impl IntoIterator<Item = (&'a str, Option<&'a [u8]>)>,
) -> Result<Vec<(String, String)>, CertError> {
    let mut files: Vec<(&str, Option<&[u8]>)> = files.into_iter().collect();
    files.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    // Subject hash -> (fingerprints seen, links made).
    let mut buckets: BTreeMap<u32, (Vec<[u8; 20]>, usize)> = BTreeMap::new();
    let mut links = Vec::new();
    for (name, cert) in files {
        let Some(cert) = cert else { continue };
        let hash = subject_hash(cert)?;
        let fingerprint: [u8; 20] = Sha1::digest(cert).into();
        let (seen, count) = buckets.entry(hash).or_default();
        if seen.contains(&fingerprint) {
            continue;
        }
        seen.push(fingerprint);
        links.push((format!("{hash:08x}.{count}"), name.to_string()));
        *count += 1;
    }
    Ok(links)
}
