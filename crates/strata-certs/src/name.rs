//! OpenSSL's subject hash (`X509_NAME_hash`, what `openssl x509 -hash` and
//! `openssl rehash` print), computed without OpenSSL.
//!
//! OpenSSL looks a CA up in a hashed directory by the hash of a canonical
//! form of its subject, so that names differing only in string type, case or
//! spacing meet. The canonical form (`x509_name_canon` and
//! `asn1_string_canon` in OpenSSL's `crypto/x509/x_name.c`): every attribute
//! value of a string type is converted to UTF-8, stripped of leading and
//! trailing ASCII whitespace, inner runs of ASCII whitespace collapsed to one
//! space, ASCII letters lowercased (other bytes kept), and re-encoded as a
//! `UTF8String`; values of other types are kept as they are. Each RDN is
//! re-encoded as a DER `SET OF` (its members sorted by their encodings) and
//! the SETs are concatenated with no outer `SEQUENCE`. The hash is the first
//! four bytes of the SHA-1 of that, read little-endian.

use der::asn1::ObjectIdentifier;
use der::{Decode, Encode, SliceReader, Tagged};
use sha1::{Digest, Sha1};

use crate::CertError;

/// OpenSSL's `X509_NAME_hash` of a certificate's subject (the `HASH` of the
/// `HASH.N` links in `/etc/ssl/certs`).
pub fn subject_hash(cert_der: &[u8]) -> Result<u32, CertError> {
    let mut reader = SliceReader::new(cert_der).map_err(CertError::Der)?;
    let cert = x509_cert::Certificate::decode(&mut reader).map_err(CertError::Der)?;
    let canon = canonical_name(&cert.tbs_certificate.subject)?;
    let digest = Sha1::digest(&canon);
    Ok(u32::from_le_bytes([
        digest[0], digest[1], digest[2], digest[3],
    ]))
}

/// The canonical encoding of a name that OpenSSL hashes.
fn canonical_name(name: &x509_cert::name::Name) -> Result<Vec<u8>, CertError> {
    let mut out = Vec::new();
    for rdn in name.0.iter() {
        let mut members = Vec::new();
        for atv in rdn.0.iter() {
            let mut body = encode_oid(&atv.oid)?;
            body.extend(canonical_value(&atv.value)?);
            members.push(tlv(0x30, &body));
        }
        // DER orders a SET OF by the members' encodings, as OpenSSL's
        // encoder does.
        members.sort();
        out.extend(tlv(0x31, &members.concat()));
    }
    Ok(out)
}

fn encode_oid(oid: &ObjectIdentifier) -> Result<Vec<u8>, CertError> {
    oid.to_der().map_err(CertError::Der)
}

/// ASN.1 universal tags of the string types OpenSSL canonicalises
/// (`ASN1_MASK_CANON`).
const UTF8_STRING: u8 = 0x0c;
const PRINTABLE_STRING: u8 = 0x13;
const T61_STRING: u8 = 0x14;
const IA5_STRING: u8 = 0x16;
const UNIVERSAL_STRING: u8 = 0x1c;
const VISIBLE_STRING: u8 = 0x1a;
const BMP_STRING: u8 = 0x1e;

fn canonical_value(value: &der::Any) -> Result<Vec<u8>, CertError> {
    let bytes = value.value();
    let utf8: Vec<u8> = match u8::from(value.tag()) {
        UTF8_STRING => {
            std::str::from_utf8(bytes).map_err(|_| CertError::NameString { kind: "UTF8String" })?;
            bytes.to_vec()
        }
        // One byte, one character (Latin-1), as `ASN1_STRING_to_UTF8` reads
        // these types.
        PRINTABLE_STRING | T61_STRING | IA5_STRING | VISIBLE_STRING => bytes
            .iter()
            .map(|&b| char::from(b))
            .collect::<String>()
            .into_bytes(),
        BMP_STRING => decode_wide(bytes, 2, "BMPString")?,
        UNIVERSAL_STRING => decode_wide(bytes, 4, "UniversalString")?,
        _ => return value.to_der().map_err(CertError::Der),
    };
    Ok(tlv(UTF8_STRING, &canonical_text(&utf8)))
}

/// Big-endian UCS-2 or UCS-4 to UTF-8.
fn decode_wide(bytes: &[u8], width: usize, kind: &'static str) -> Result<Vec<u8>, CertError> {
    if !bytes.len().is_multiple_of(width) {
        return Err(CertError::NameString { kind });
    }
    let mut out = String::new();
    for unit in bytes.chunks(width) {
        let code = unit.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b));
        out.push(char::from_u32(code).ok_or(CertError::NameString { kind })?);
    }
    Ok(out.into_bytes())
}

/// OpenSSL's `ossl_isspace`: ASCII space, `\t`, `\n`, `\v`, `\f`, `\r`.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Trim, collapse inner whitespace to one space, lowercase ASCII.
fn canonical_text(utf8: &[u8]) -> Vec<u8> {
    let start = utf8
        .iter()
        .position(|&b| !is_space(b))
        .unwrap_or(utf8.len());
    let end = utf8
        .iter()
        .rposition(|&b| !is_space(b))
        .map_or(start, |i| i + 1);
    let mut out = Vec::with_capacity(end.saturating_sub(start));
    let mut in_space = false;
    for &b in &utf8[start..end] {
        if is_space(b) {
            if !in_space {
                out.push(b' ');
            }
            in_space = true;
        } else {
            out.push(b.to_ascii_lowercase());
            in_space = false;
        }
    }
    out
}

/// A DER TLV with a one-byte tag.
fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = body.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_trimmed_collapsed_and_lowercased() {
        assert_eq!(canonical_text(b"  My \t\n  CA  "), b"my ca");
        assert_eq!(
            canonical_text("Ünï  CODE".as_bytes()),
            "Ünï code".as_bytes()
        );
        assert_eq!(canonical_text(b"   "), b"");
    }

    #[test]
    fn long_values_get_long_form_lengths() {
        let body = vec![b'a'; 300];
        let enc = tlv(0x0c, &body);
        assert_eq!(&enc[..4], &[0x0c, 0x82, 0x01, 0x2c]);
        assert_eq!(enc.len(), 304);
    }
}
