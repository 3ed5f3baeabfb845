//! How a stream is compressed, and the one place it is decompressed: layer
//! blobs (by media type), `.deb` members and Debian index files (by file name
//! extension) all read through [`Compression::decoder`].

use std::io::{self, BufReader, Read};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Xz,
    Zstd,
}

impl Compression {
    /// A layer's compression, from its media type (OCI or Docker:
    /// `+gzip`/`.gzip`, `+zstd`, or uncompressed).
    pub fn of_media_type(media_type: &str) -> Compression {
        if media_type.ends_with("gzip") {
            Compression::Gzip
        } else if media_type.ends_with("zstd") {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    /// The compression a file name extension stands for (`""`, `.gz`, `.xz`,
    /// `.zst`), as Debian names `.deb` members and index files.
    pub fn of_extension(extension: &str) -> Option<Compression> {
        match extension {
            "" => Some(Compression::None),
            ".gz" => Some(Compression::Gzip),
            ".xz" => Some(Compression::Xz),
            ".zst" => Some(Compression::Zstd),
            _ => None,
        }
    }

    /// The extension [`Compression::of_extension`] reads back.
    pub fn extension(self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Gzip => ".gz",
            Compression::Xz => ".xz",
            Compression::Zstd => ".zst",
        }
    }

    /// A reader of the decompressed bytes of `reader`. Concatenated gzip and
    /// xz streams are read as one, as `zcat` and `xzcat` do.
    pub fn decoder<R: Read>(self, reader: R) -> io::Result<Decoder<R>> {
        Ok(match self {
            Compression::None => Decoder::None(reader),
            Compression::Gzip => Decoder::Gzip(flate2::read::MultiGzDecoder::new(reader)),
            Compression::Xz => Decoder::Xz(liblzma::read::XzDecoder::new_multi_decoder(reader)),
            Compression::Zstd => Decoder::Zstd(zstd::stream::read::Decoder::new(reader)?),
        })
    }
}

/// The decompressed bytes of a stream; `Send` whenever the stream is.
pub enum Decoder<R: Read> {
    None(R),
    Gzip(flate2::read::MultiGzDecoder<R>),
    Xz(liblzma::read::XzDecoder<R>),
    Zstd(zstd::stream::read::Decoder<'static, BufReader<R>>),
}

impl<R: Read> Read for Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoder::None(r) => r.read(buf),
            Decoder::Gzip(r) => r.read(buf),
            Decoder::Xz(r) => r.read(buf),
            Decoder::Zstd(r) => r.read(buf),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn roundtrip(compression: Compression, compressed: Vec<u8>) {
        let mut out = Vec::new();
        compression
            .decoder(&compressed[..])
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, b"hello hello");
    }

    #[test]
    fn reads_every_compression() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"hello ").unwrap();
        let mut gz_bytes = gz.finish().unwrap();
        // A second member, as pigz and multi-member gzip files have.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"hello").unwrap();
        gz_bytes.extend(gz.finish().unwrap());
        roundtrip(Compression::Gzip, gz_bytes);
        roundtrip(
            Compression::Zstd,
            zstd::encode_all(&b"hello hello"[..], 3).unwrap(),
        );
        let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 1);
        xz.write_all(b"hello hello").unwrap();
        roundtrip(Compression::Xz, xz.finish().unwrap());
        roundtrip(Compression::None, b"hello hello".to_vec());
    }

    #[test]
    fn names() {
        for c in [
            Compression::None,
            Compression::Gzip,
            Compression::Xz,
            Compression::Zstd,
        ] {
            assert_eq!(Compression::of_extension(c.extension()), Some(c));
        }
        assert_eq!(Compression::of_extension(".bz2"), None);
        assert_eq!(
            Compression::of_media_type("application/vnd.docker.image.rootfs.diff.tar.gzip"),
            Compression::Gzip
        );
        assert_eq!(
            Compression::of_media_type("application/vnd.oci.image.layer.v1.tar+zstd"),
            Compression::Zstd
        );
        assert_eq!(
            Compression::of_media_type("application/vnd.oci.image.layer.v1.tar"),
            Compression::None
        );
    }
}
