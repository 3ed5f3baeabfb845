//! Java's truststore, `/etc/ssl/certs/java/cacerts`, as `ca-certificates-java`
//! fills it: one trusted-certificate entry per `/etc/ssl/certs/NAME.pem` link,
//! aliased `debian:name.pem`, under the store password `changeit`.
//!
//! Debian 12's `ca-certificates-java` (20230710~deb12u1) opens and writes the
//! store as `KeyStore.getInstance("JKS")` (its postinst even converts a
//! PKCS#12 store back to JKS), so [`java_cacerts_jks`] is the format Debian
//! itself leaves. [`java_cacerts`] writes the same entries as PKCS#12, Java's
//! default keystore type since 9, which `openssl pkcs12` can also read. Java
//! 9 and later open either file whatever type they are asked for
//! (`keystore.type.compat`).
//!
//! Both are deterministic, since images must be byte-reproducible: the
//! entries are in alias order, a JKS entry's creation date is the caller's
//! (e.g. `SOURCE_DATE_EPOCH`), and the PKCS#12 MAC salt is taken from a
//! SHA-256 of the store's content instead of a random source. The PKCS#12
//! certificate bags are not encrypted: they hold public certificates only,
//! and Java writes them that way too with
//! `keystore.pkcs12.certProtectionAlgorithm=NONE`.

use std::collections::BTreeMap;

use cms::content_info::ContentInfo;
use der::asn1::{Any, ObjectIdentifier, OctetString, SetOfVec};
use der::{Encode, Tag};
use hmac::{Hmac, Mac};
use pkcs12::cert_type::CertBag;
use pkcs12::digest_info::DigestInfo;
use pkcs12::kdf::{Pkcs12KeyType, derive_key_utf8};
use pkcs12::mac_data::MacData;
use pkcs12::pfx::{Pfx, Version};
use pkcs12::safe_bag::SafeBag;
use sha2::{Digest, Sha256};
use x509_cert::attr::Attribute;
use x509_cert::spki::AlgorithmIdentifierOwned;

use crate::{CertError, Certificate, Store};

/// The password `ca-certificates-java` protects the store with
/// (`/etc/default/cacerts`, `storepass`).
pub const JAVA_STOREPASS: &str = "changeit";

/// PKCS#9 `data` content type.
const ID_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
/// PKCS#12 `certBag`.
const CERT_BAG: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.10.1.3");
/// PKCS#9 `x509Certificate` cert type.
const X509_CERTIFICATE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.22.1");
/// PKCS#9 `friendlyName`: the alias.
const FRIENDLY_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.20");
/// Oracle's `trustedKeyUsage`: without it Java's PKCS#12 keystore does not
/// treat a certificate bag as a `trustedCertEntry`.
const TRUSTED_KEY_USAGE: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("2.16.840.1.113894.746875.1.1");
/// `anyExtendedKeyUsage`, the usage `keytool -importcert` trusts a CA for.
const ANY_EXTENDED_KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.37.0");
/// SHA-256, the MAC digest Java 12 and later write.
const ID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
/// Java's default MAC iteration count (`keystore.pkcs12.macIterationCount`).
const MAC_ITERATIONS: i32 = 10_000;

/// The store's entries by alias; when two link names differ only in case the
/// later one wins, as it replaces the earlier alias in Java's keystore.
fn entries(store: &Store) -> BTreeMap<String, &Certificate> {
    store.certificates.iter().map(|c| (c.alias(), c)).collect()
}

/// Java's truststore as PKCS#12 (password [`JAVA_STOREPASS`]): one
/// certificate bag per CA with its alias as `friendlyName` and the
/// `trustedKeyUsage` attribute, so `keytool -list` shows each as a
/// `trustedCertEntry`. The same store always gives the same bytes.
pub fn java_cacerts(store: &Store) -> Result<Vec<u8>, CertError> {
    let mut bags = Vec::new();
    for (alias, cert) in entries(store) {
        let bag = CertBag {
            cert_id: X509_CERTIFICATE,
            cert_value: OctetString::new(cert.der.clone()).map_err(CertError::Encode)?,
        };
        let friendly = Attribute {
            oid: FRIENDLY_NAME,
            values: set_of(vec![
                Any::new(Tag::BmpString, utf16_be(&alias)).map_err(CertError::Encode)?,
            ])?,
        };
        let trusted = Attribute {
            oid: TRUSTED_KEY_USAGE,
            values: set_of(vec![Any::from(&ANY_EXTENDED_KEY_USAGE)])?,
        };
        bags.push(SafeBag {
            bag_id: CERT_BAG,
            bag_value: bag.to_der().map_err(CertError::Encode)?,
            bag_attributes: Some(set_of(vec![friendly, trusted])?),
        });
    }
    let safe_contents = bags.to_der().map_err(CertError::Encode)?;
    let auth_safe = vec![data_content(safe_contents)?]
        .to_der()
        .map_err(CertError::Encode)?;

    // The salt only has to differ between stores, not be secret: derive it
    // from what the MAC covers.
    let mut salt_input = Sha256::new();
    salt_input.update(b"strata-certs java cacerts mac salt\0");
    salt_input.update(&auth_safe);
    let salt = salt_input.finalize()[..20].to_vec();
    let key = derive_key_utf8::<Sha256>(
        JAVA_STOREPASS,
        &salt,
        Pkcs12KeyType::Mac,
        MAC_ITERATIONS,
        32,
    )
    .map_err(CertError::Mac)?;
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key)
        .map_err(|_| CertError::Mac(der::ErrorKind::Failed.into()))?;
    mac.update(&auth_safe);
    let digest = mac.finalize().into_bytes().to_vec();

    let pfx = Pfx {
        version: Version::V3,
        auth_safe: data_content(auth_safe)?,
        mac_data: Some(MacData {
            mac: DigestInfo {
                algorithm: AlgorithmIdentifierOwned {
                    oid: ID_SHA256,
                    parameters: Some(Any::from(der::asn1::Null)),
                },
                digest: OctetString::new(digest).map_err(CertError::Encode)?,
            },
            mac_salt: OctetString::new(salt).map_err(CertError::Encode)?,
            iterations: MAC_ITERATIONS,
        }),
    };
    pfx.to_der().map_err(CertError::Encode)
}

/// A `ContentInfo` of type `data` holding `content` as an OCTET STRING.
fn data_content(content: Vec<u8>) -> Result<ContentInfo, CertError> {
    let octets = OctetString::new(content).map_err(CertError::Encode)?;
    Ok(ContentInfo {
        content_type: ID_DATA,
        content: Any::encode_from(&octets).map_err(CertError::Encode)?,
    })
}

fn set_of<T: der::DerOrd>(items: Vec<T>) -> Result<SetOfVec<T>, CertError> {
    SetOfVec::try_from(items).map_err(CertError::Encode)
}

fn utf16_be(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_be_bytes).collect()
}
