//! Content digests: the `sha256:<hex>` identifiers that name every blob.

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

/// A sha256 content digest.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest([u8; 32]);

impl Digest {
    pub fn of(bytes: &[u8]) -> Self {
        Digest(Sha256::digest(bytes).into())
    }

    /// Hashes everything `reader` yields.
    pub fn of_reader(mut reader: impl Read) -> io::Result<(Self, u64)> {
        let mut sink = HashingWriter::new(io::sink());
        io::copy(&mut reader, &mut sink)?;
        let (_, digest, size) = sink.finish();
        Ok((digest, size))
    }

    /// Finishes a running hash.
    pub fn from_hasher(hasher: Sha256) -> Self {
        Digest(hasher.finalize().into())
    }

    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{0}` is not a sha256 digest: expected `sha256:` followed by 64 lowercase hex digits")]
pub struct ParseDigestError(pub String);

impl FromStr for Digest {
    type Err = ParseDigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseDigestError(s.to_owned());
        let hex_part = s.strip_prefix("sha256:").ok_or_else(err)?;
        if hex_part.len() != 64 || hex_part.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(err());
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(hex_part, &mut out).map_err(|_| err())?;
        Ok(Digest(out))
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl From<Digest> for oci_spec::image::Digest {
    fn from(d: Digest) -> Self {
        oci_spec::image::Sha256Digest::from_str(&d.hex())
            .expect("a Digest always holds 64 hex digits")
            .into()
    }
}

impl TryFrom<&oci_spec::image::Digest> for Digest {
    type Error = ParseDigestError;

    fn try_from(d: &oci_spec::image::Digest) -> Result<Self, Self::Error> {
        d.to_string().parse()
    }
}

/// A writer that hashes and counts what passes through it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// How many bytes went through so far.
    pub fn written(&self) -> u64 {
        self.count
    }

    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    pub fn finish(self) -> (W, Digest, u64) {
        (
            self.inner,
            Digest(self.hasher.finalize().into()),
            self.count,
        )
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_bad_forms() {
        let d = Digest::of(b"{}");
        assert_eq!(
            d.to_string(),
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        assert_eq!(d.to_string().parse::<Digest>(), Ok(d));
        assert!("sha256:abc".parse::<Digest>().is_err());
        assert!(
            "md5:44136fa355b3678a1146ad16f7e8649e"
                .parse::<Digest>()
                .is_err()
        );
        assert!(d.to_string().to_uppercase().parse::<Digest>().is_err());
    }
}

/// What a [`CheckedReader`] read was not the blob it was asked for.
#[derive(Debug, thiserror::Error)]
#[error("expected `{expected}` ({expected_size} bytes), read `{actual}` ({actual_size} bytes)")]
pub struct Mismatch {
    pub expected: Digest,
    pub expected_size: u64,
    pub actual: Digest,
    pub actual_size: u64,
}

/// A reader that ends only when what it read has the expected digest and
/// size, and fails otherwise (an [`io::ErrorKind::InvalidData`] error whose
/// inner error is a [`Mismatch`]): a copy made through it is right or is an
/// error, never silently another blob.
pub struct CheckedReader<R> {
    inner: R,
    expected: Digest,
    size: u64,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> CheckedReader<R> {
    pub fn new(inner: R, expected: Digest, size: u64) -> Self {
        CheckedReader {
            inner,
            expected,
            size,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    fn mismatch(&self) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            Mismatch {
                expected: self.expected,
                expected_size: self.size,
                actual: Digest(self.hasher.clone().finalize().into()),
                actual_size: self.count,
            },
        )
    }
}

impl<R: Read> Read for CheckedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Never more than one byte past the expected size: a longer source
        // fails without being read to its end.
        let left = usize::try_from(self.size.saturating_add(1).saturating_sub(self.count))
            .unwrap_or(usize::MAX);
        let limit = buf.len().min(left);
        let n = self.inner.read(&mut buf[..limit])?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        let at_end = n == 0 && limit > 0;
        if self.count > self.size
            || (at_end
                && (self.count != self.size
                    || Digest(self.hasher.clone().finalize().into()) != self.expected))
        {
            return Err(self.mismatch());
        }
        Ok(n)
    }
}

#[cfg(test)]
mod checked_tests {
    use super::*;

    fn copy(bytes: &[u8], expected: Digest, size: u64) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        io::copy(&mut CheckedReader::new(bytes, expected, size), &mut out)?;
        Ok(out)
    }

    #[test]
    fn passes_the_right_bytes_and_fails_on_any_other() {
        let good = b"layer bytes".as_slice();
        let digest = Digest::of(good);
        assert_eq!(copy(good, digest, 11).unwrap(), good);
        for (bytes, size) in [
            (b"layer bytez".as_slice(), 11),
            (b"layer byte".as_slice(), 11),
            (b"layer bytes and more".as_slice(), 11),
            (good, 10),
            (good, 12),
        ] {
            let err = copy(bytes, digest, size).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);
            assert!(err.get_ref().is_some_and(|e| e.is::<Mismatch>()));
        }
    }
}
