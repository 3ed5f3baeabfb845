//! Reading certificate files as OpenSSL's `PEM_X509_INFO_read_bio` does:
//! text outside `-----BEGIN`/`-----END` lines is ignored (`openssl x509
//! -text` output and comments are common in site CA files), certificates are
//! `CERTIFICATE`, `X509 CERTIFICATE` or `TRUSTED CERTIFICATE` blocks, and each
//! is its first DER value (a trusted certificate's trust settings follow it).

use base64::Engine;
use der::{Decode, Reader, SliceReader};

use crate::CertError;

/// What a file holds, as far as the store cares.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Contents {
    /// The certificates, DER, in file order.
    pub certs: Vec<Vec<u8>>,
    /// How many CRL blocks the file has: `openssl rehash` links only a file
    /// holding exactly one certificate or CRL.
    pub crls: usize,
}

impl Contents {
    /// The one certificate `openssl rehash` would link the file by.
    pub fn only_certificate(&self) -> Option<&[u8]> {
        match (self.certs.as_slice(), self.crls) {
            ([cert], 0) => Some(cert),
            _ => None,
        }
    }
}

/// The certificates in a PEM file; an error if there is none, a block is
/// malformed or a certificate does not parse.
pub(crate) fn certificates(path: &str, pem: &[u8]) -> Result<Contents, CertError> {
    let text = String::from_utf8_lossy(pem);
    let mut contents = Contents::default();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(label) = line
            .trim_end()
            .strip_prefix("-----BEGIN ")
            .and_then(|rest| rest.strip_suffix("-----"))
        else {
            continue;
        };
        let end = format!("-----END {label}-----");
        let mut body = String::new();
        let mut closed = false;
        for line in lines.by_ref() {
            let line = line.trim_end();
            if line == end {
                closed = true;
                break;
            }
            // RFC 1421 headers (`Proc-Type: ...`) sit before the base64.
            if line.contains(':') {
                continue;
            }
            body.extend(line.chars().filter(|c| !c.is_ascii_whitespace()));
        }
        if !closed {
            return Err(CertError::Pem {
                path: path.to_string(),
                reason: "a `-----BEGIN` line has no matching `-----END` line",
            });
        }
        match label {
            "CERTIFICATE" | "X509 CERTIFICATE" | "TRUSTED CERTIFICATE" => {
                let der = base64::engine::general_purpose::STANDARD
                    .decode(body.as_bytes())
                    .map_err(|source| CertError::Base64 {
                        path: path.to_string(),
                        source,
                    })?;
                let cert = first_certificate(&der).map_err(|source| CertError::Certificate {
                    path: path.to_string(),
                    source,
                })?;
                contents.certs.push(cert.to_vec());
            }
            "X509 CRL" => contents.crls += 1,
            _ => {}
        }
    }
    if contents.certs.is_empty() {
        return Err(CertError::NoCertificate {
            path: path.to_string(),
        });
    }
    Ok(contents)
}

/// The first DER value of `der`, checked to be an X.509 certificate.
pub(crate) fn first_certificate(der: &[u8]) -> Result<&[u8], der::Error> {
    let mut reader = SliceReader::new(der)?;
    x509_cert::Certificate::decode(&mut reader)?;
    let used = usize::try_from(reader.position())?;
    der.get(..used)
        .ok_or_else(|| der::Error::incomplete(reader.position()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_without_a_certificate_is_an_error() {
        let err = certificates("/x/site.crt", b"hello\n").unwrap_err();
        assert!(matches!(err, CertError::NoCertificate { .. }), "{err}");
        assert!(err.to_string().contains("/x/site.crt"));
    }

    #[test]
    fn a_broken_certificate_is_an_error_naming_the_file() {
        let pem = b"-----BEGIN CERTIFICATE-----\nMIIBAA==\n-----END CERTIFICATE-----\n";
        let err = certificates("/x/site.crt", pem).unwrap_err();
        assert!(matches!(err, CertError::Certificate { .. }), "{err}");
        assert!(err.to_string().contains("/x/site.crt"));
        let unclosed = b"-----BEGIN CERTIFICATE-----\nMIIBAA==\n";
        assert!(matches!(
            certificates("/x/site.crt", unclosed),
            Err(CertError::Pem { .. })
        ));
        let not_base64 = b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
        assert!(matches!(
            certificates("/x/site.crt", not_base64),
            Err(CertError::Base64 { .. })
        ));
    }
}
