//! OpenPGP verification of `InRelease` files, in pure Rust (rPGP), with the
//! rules apt's gpgv applies: the signing key (a primary key, or a subkey whose
//! binding to its primary verifies and allows signing) must be in the
//! keyring, unrevoked and unexpired; SHA-1 and MD5 signatures are refused.

use std::io::Cursor;
use std::time::{Duration, SystemTime};

use pgp::composed::{CleartextSignedMessage, PublicOrSecret, SignedPublicKey};
use pgp::crypto::hash::HashAlgorithm;
use pgp::packet::{Signature, SignatureType};
use pgp::types::KeyDetails;

#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    #[error("`InRelease` is not a signed message: {0}")]
    NotSigned(String),
    #[error("the signing key `{issuer}` is not in the keyring")]
    UnknownKey { issuer: String },
    #[error("the signature does not match the text: the file was altered or is corrupt")]
    BadSignature,
    #[error("the signing key `{fingerprint}` expired or was revoked")]
    ExpiredKey { fingerprint: String },
    #[error("the signature uses the weak hash `{algorithm}`")]
    WeakHash { algorithm: String },
    #[error("cannot read the keyring `{origin}`: {message}")]
    Keyring { origin: String, message: String },
}

/// Trusted public keys.
pub struct Keyring {
    keys: Vec<SignedPublicKey>,
}

impl Keyring {
    /// Reads a binary (concatenated) or ASCII-armored keyring; `origin` names
    /// it in errors.
    pub fn from_bytes(bytes: &[u8], origin: &str) -> Result<Keyring, SignatureError> {
        let err = |message: String| SignatureError::Keyring {
            origin: origin.to_owned(),
            message,
        };
        let (parsed, _) = PublicOrSecret::from_reader_many(Cursor::new(bytes.to_vec()))
            .map_err(|e| err(e.to_string()))?;
        let mut keys = Vec::new();
        for key in parsed {
            match key.map_err(|e| err(e.to_string()))? {
                PublicOrSecret::Public(key) => keys.push(key),
                PublicOrSecret::Secret(key) => keys.push(key.to_public_key()),
            }
        }
        if keys.is_empty() {
            return Err(err("it holds no public key".into()));
        }
        Ok(Keyring { keys })
    }

    /// Debian's archive keys, shipped inside strata for hosts without the
    /// `debian-archive-keyring` package.
    pub fn debian() -> Keyring {
        Keyring::from_bytes(
            include_bytes!("keys/debian-archive-keyring.gpg"),
            "built-in Debian keyring",
        )
        .expect("the built-in keyring is valid")
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// Verifies an `InRelease` file and returns the signed text with `\n` line ends.
pub fn verify_inrelease(
    text: &str,
    keyring: &Keyring,
    now: SystemTime,
) -> Result<String, SignatureError> {
    let (message, _) = CleartextSignedMessage::from_string(text)
        .map_err(|e| SignatureError::NotSigned(e.to_string()))?;
    let mut last_error = None;
    for signature in message.signatures() {
        match signature.hash_alg() {
            Some(HashAlgorithm::Md5 | HashAlgorithm::Sha1 | HashAlgorithm::None) | None => {
                last_error = Some(SignatureError::WeakHash {
                    algorithm: signature
                        .hash_alg()
                        .map_or("unknown".into(), |h| h.to_string()),
                });
                continue;
            }
            Some(_) => {}
        }
        let created = signature.created().map_or(now, SystemTime::from);
        match find_key(keyring, signature, created, now) {
            Ok(verify) => {
                if verify(&message) {
                    return Ok(message.signed_text().replace("\r\n", "\n"));
                }
                last_error = Some(SignatureError::BadSignature);
            }
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error.unwrap_or_else(|| SignatureError::NotSigned("it carries no signature".into())))
}

type Verifier<'a> = Box<dyn Fn(&CleartextSignedMessage) -> bool + 'a>;

/// The usable key that made `signature`, as a check to run on the message.
fn find_key<'a>(
    keyring: &'a Keyring,
    signature: &Signature,
    created: SystemTime,
    now: SystemTime,
) -> Result<Verifier<'a>, SignatureError> {
    let fingerprints = signature.issuer_fingerprint();
    let key_ids = signature.issuer_key_id();
    let issued_by = |key: &dyn KeyDetails| {
        fingerprints.iter().any(|f| **f == key.fingerprint())
            || key_ids.iter().any(|id| **id == key.legacy_key_id())
    };
    let issuer = fingerprints
        .first()
        .map(|f| format!("{f:X}"))
        .or_else(|| key_ids.first().map(|id| format!("{id:?}")))
        .unwrap_or_else(|| "unknown".into());
    for key in &keyring.keys {
        let primary_fpr = format!("{:X}", key.primary_key.fingerprint());
        let revoked = !key.details.revocation_signatures.is_empty();
        let primary_sigs: Vec<&Signature> = key
            .details
            .users
            .iter()
            .flat_map(|u| &u.signatures)
            .chain(&key.details.direct_signatures)
            .collect();
        if issued_by(&key.primary_key) {
            let expired = expired(
                key.primary_key.created_at().into(),
                &primary_sigs,
                created,
                now,
            );
            let flags_allow = primary_sigs
                .iter()
                .all(|s| s.key_flags().sign() || !has_flags(s));
            if revoked || expired || key.details.verify_bindings(&key.primary_key).is_err() {
                return Err(SignatureError::ExpiredKey {
                    fingerprint: primary_fpr,
                });
            }
            if !flags_allow {
                continue;
            }
            return Ok(Box::new(move |m| m.verify(&key.primary_key).is_ok()));
        }
        for sub in &key.public_subkeys {
            if !issued_by(&sub.key) {
                continue;
            }
            let bindings: Vec<&Signature> = sub
                .signatures
                .iter()
                .filter(|s| s.typ() == Some(SignatureType::SubkeyBinding))
                .collect();
            let sub_revoked = sub
                .signatures
                .iter()
                .any(|s| s.typ() == Some(SignatureType::SubkeyRevocation));
            let expired = expired(sub.key.created_at().into(), &bindings, created, now)
                || expired(
                    key.primary_key.created_at().into(),
                    &primary_sigs,
                    created,
                    now,
                );
            if revoked || sub_revoked || expired {
                return Err(SignatureError::ExpiredKey {
                    fingerprint: format!("{:X}", sub.key.fingerprint()),
                });
            }
            let can_sign = bindings.iter().any(|s| s.key_flags().sign());
            if !can_sign || sub.verify_bindings(&key.primary_key).is_err() {
                continue;
            }
            return Ok(Box::new(move |m| m.verify(&sub.key).is_ok()));
        }
    }
    Err(SignatureError::UnknownKey { issuer })
}

fn has_flags(signature: &Signature) -> bool {
    let flags = signature.key_flags();
    flags.sign() || flags.certify() || flags.encrypt_comms() || flags.encrypt_storage()
}

/// A key expires at creation + the expiration time its self-signatures state
/// (the latest one wins); it must be valid both when it signed and now.
fn expired(
    created_at: SystemTime,
    self_signatures: &[&Signature],
    signed: SystemTime,
    now: SystemTime,
) -> bool {
    let latest = self_signatures.iter().max_by_key(|s| {
        s.created()
            .map(SystemTime::from)
            .unwrap_or(SystemTime::UNIX_EPOCH)
    });
    match latest.and_then(|s| s.key_expiration_time()) {
        Some(validity) if Duration::from(validity) > Duration::ZERO => {
            let until = created_at + Duration::from(validity);
            until < signed || until < now
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_debian_keyring_loads() {
        assert!(Keyring::debian().len() >= 3);
    }

    /// A real bookworm `InRelease`, checked at its own date so the test stays
    /// valid as long as the built-in keys were valid then.
    const BOOKWORM: &str = include_str!("testdata/bookworm-InRelease");
    const BOOKWORM_DATE: u64 = 1_783_764_997;
    /// Primary keys of the three signatures (two by signing subkeys, one by an ed25519 primary).
    const BOOKWORM_SIGNERS: [&str; 3] = [
        "B8B80B5B623EAB6AD8775C45B7C5D7D6350947F8",
        "04B54C3CDCA79751B16BC6B5225629DF75B188BD",
        "4D64FEC119C2029067D6E791F8D2585B8783D481",
    ];

    #[test]
    fn a_real_debian_release_verifies_and_a_changed_one_does_not() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(BOOKWORM_DATE);
        let text = verify_inrelease(BOOKWORM, &Keyring::debian(), at).unwrap();
        assert!(text.starts_with("Origin: Debian\n") && text.contains("Codename: bookworm\n"));
        let tampered = BOOKWORM.replace("Codename: bookworm", "Codename: bookwerm");
        let err = verify_inrelease(&tampered, &Keyring::debian(), at).unwrap_err();
        assert!(matches!(err, SignatureError::BadSignature), "{err}");
    }

    #[test]
    fn expired_keys_are_refused() {
        // Every signer's key expires by 2035: checked in 2040, none may sign.
        let in_2040 = SystemTime::UNIX_EPOCH + Duration::from_secs(2_208_988_800);
        let err = verify_inrelease(BOOKWORM, &Keyring::debian(), in_2040).unwrap_err();
        assert!(matches!(err, SignatureError::ExpiredKey { .. }), "{err}");
    }

    #[test]
    fn a_key_outside_the_keyring_is_unknown() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(BOOKWORM_DATE);
        assert!(
            Keyring::from_bytes(b"", "empty").is_err(),
            "an empty keyring is refused"
        );
        // Only the Debian security key: the main archive's signatures are unknown to it.
        let keyring = Keyring {
            keys: Keyring::debian()
                .keys
                .into_iter()
                .filter(|k| {
                    !BOOKWORM_SIGNERS
                        .contains(&format!("{:X}", k.primary_key.fingerprint()).as_str())
                })
                .collect(),
        };
        let err = verify_inrelease(BOOKWORM, &keyring, at).unwrap_err();
        assert!(matches!(err, SignatureError::UnknownKey { .. }), "{err}");
    }

    #[test]
    fn garbage_is_not_a_keyring_or_a_message() {
        assert!(Keyring::from_bytes(b"not a key", "x").is_err());
        let err = verify_inrelease("Origin: Debian\n", &Keyring::debian(), SystemTime::now())
            .unwrap_err();
        assert!(matches!(err, SignatureError::NotSigned(_)), "{err}");
    }
}
