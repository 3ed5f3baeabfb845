//! Layer compression: gzip (every runtime reads it) and zstd.
//!
//! gzip is split into 1 MiB chunks deflated independently on all cores (as
//! `pigz -i` does) and joined into one deflate stream: each chunk but the last
//! ends with a sync flush, which byte-aligns it without closing the stream.
//! Chunk boundaries depend only on the input, so the bytes are the same on any
//! number of cores. zstd runs with at least one worker: zero workers gives
//! different bytes, while one, two or four give the same.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Write};
use std::str::FromStr;
use std::sync::mpsc;

use flate2::{Compress, FlushCompress, Status};

/// How strata compresses the layers it writes, with the level: the setting
/// behind `--compression gzip:6`. Reading any compression is
/// [`strata_oci::compression::Compression`]'s job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Gzip { level: u32 },
    Zstd { level: i32 },
}

impl Default for Encoding {
    fn default() -> Self {
        Encoding::Gzip { level: 6 }
    }
}

impl Encoding {
    pub fn media_type(&self) -> &'static str {
        match self {
            Encoding::Gzip { .. } => "application/vnd.oci.image.layer.v1.tar+gzip",
            Encoding::Zstd { .. } => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Encoding::Gzip { level } => write!(f, "gzip:{level}"),
            Encoding::Zstd { level } => write!(f, "zstd:{level}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error(
    "`{0}` is not a compression: use `gzip`, `zstd`, or `gzip:LEVEL` (1-9) / `zstd:LEVEL` (1-19)"
)]
pub struct ParseCompressionError(String);

impl FromStr for Encoding {
    type Err = ParseCompressionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseCompressionError(s.to_owned());
        let (algo, level) = s.split_once(':').map_or((s, None), |(a, l)| (a, Some(l)));
        let level = |default: i64, max: i64| -> Result<i64, ParseCompressionError> {
            match level {
                None => Ok(default),
                Some(l) => l
                    .parse()
                    .ok()
                    .filter(|l| (1..=max).contains(l))
                    .ok_or_else(err),
            }
        };
        match algo {
            "gzip" => Ok(Encoding::Gzip {
                level: level(6, 9)? as u32,
            }),
            "zstd" => Ok(Encoding::Zstd {
                level: level(3, 19)? as i32,
            }),
            _ => Err(err()),
        }
    }
}

/// Compresses into `W`; `finish` must be called to complete the stream.
pub enum Encoder<W: Write> {
    Gzip(ParallelGzip<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> Encoder<W> {
    pub fn new(out: W, compression: Encoding) -> io::Result<Self> {
        Ok(match compression {
            Encoding::Gzip { level } => Encoder::Gzip(ParallelGzip::new(out, level)?),
            Encoding::Zstd { level } => {
                let mut enc = zstd::stream::write::Encoder::new(out, level)?;
                enc.multithread(workers() as u32)?;
                Encoder::Zstd(enc)
            }
        })
    }

    pub fn finish(self) -> io::Result<W> {
        match self {
            Encoder::Gzip(g) => g.finish(),
            Encoder::Zstd(z) => z.finish(),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Gzip(g) => g.write(buf),
            Encoder::Zstd(z) => z.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Gzip(g) => g.flush(),
            Encoder::Zstd(z) => z.flush(),
        }
    }
}

fn workers() -> usize {
    std::thread::available_parallelism()
        .map_or(1, usize::from)
        .max(1)
}

const CHUNK: usize = 1 << 20;

pub struct ParallelGzip<W: Write> {
    out: W,
    level: u32,
    buf: Vec<u8>,
    crc: crc32fast::Hasher,
    total: u64,
    pending: VecDeque<mpsc::Receiver<io::Result<Vec<u8>>>>,
    max_pending: usize,
}

impl<W: Write> ParallelGzip<W> {
    fn new(mut out: W, level: u32) -> io::Result<Self> {
        // Fixed header: no name, mtime 0, OS "unknown", as reproducible gzip writers do.
        out.write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff])?;
        Ok(ParallelGzip {
            out,
            level,
            buf: Vec::with_capacity(CHUNK),
            crc: crc32fast::Hasher::new(),
            total: 0,
            pending: VecDeque::new(),
            max_pending: workers() * 2 + 1,
        })
    }

    fn dispatch(&mut self, last: bool) -> io::Result<()> {
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        let (tx, rx) = mpsc::sync_channel(1);
        let level = self.level;
        rayon::spawn(move || {
            // The receiver only goes away when the writer was dropped mid-stream.
            let _ = tx.send(deflate_chunk(&chunk, level, last));
        });
        self.pending.push_back(rx);
        while self.pending.len() > self.max_pending {
            self.drain_one()?;
        }
        Ok(())
    }

    fn drain_one(&mut self) -> io::Result<()> {
        if let Some(rx) = self.pending.pop_front() {
            let data = rx
                .recv()
                .map_err(|_| io::Error::other("a compression worker stopped"))??;
            self.out.write_all(&data)?;
        }
        Ok(())
    }

    fn finish(mut self) -> io::Result<W> {
        self.dispatch(true)?;
        while !self.pending.is_empty() {
            self.drain_one()?;
        }
        let crc = self.crc.clone().finalize();
        self.out.write_all(&crc.to_le_bytes())?;
        self.out.write_all(&(self.total as u32).to_le_bytes())?;
        Ok(self.out)
    }
}

impl<W: Write> Write for ParallelGzip<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&buf[..n]);
        self.crc.update(&buf[..n]);
        self.total += n as u64;
        if self.buf.len() == CHUNK {
            self.dispatch(false)?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn deflate_chunk(chunk: &[u8], level: u32, last: bool) -> io::Result<Vec<u8>> {
    let mut c = Compress::new(flate2::Compression::new(level), false);
    let mut out = Vec::with_capacity(chunk.len() / 2 + 1024);
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    loop {
        if out.capacity() - out.len() < 16 * 1024 {
            out.reserve(256 * 1024);
        }
        let consumed = c.total_in() as usize;
        let status = c.compress_vec(&chunk[consumed..], &mut out, flush)?;
        let all_in = c.total_in() as usize == chunk.len();
        match status {
            Status::StreamEnd => break,
            // A sync flush is complete once the output did not fill up.
            _ if !last && all_in && out.len() < out.capacity() => break,
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn sample(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| ((i * 7919) % 251) as u8 ^ (i / 4096) as u8)
            .collect()
    }

    #[test]
    fn gzip_round_trips_across_chunks() {
        for len in [0, 10, CHUNK, CHUNK * 3 + 17] {
            let data = sample(len);
            let mut enc = Encoder::new(Vec::new(), Encoding::default()).unwrap();
            enc.write_all(&data).unwrap();
            let gz = enc.finish().unwrap();
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(&gz[..])
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, data, "length {len}");
        }
    }

    #[test]
    fn zstd_round_trips() {
        let data = sample(CHUNK * 2 + 5);
        let mut enc = Encoder::new(Vec::new(), Encoding::Zstd { level: 3 }).unwrap();
        enc.write_all(&data).unwrap();
        let z = enc.finish().unwrap();
        assert_eq!(zstd::decode_all(&z[..]).unwrap(), data);
    }

    #[test]
    fn parses_names_and_levels() {
        assert_eq!(
            "zstd".parse::<Encoding>().unwrap(),
            Encoding::Zstd { level: 3 }
        );
        assert_eq!(
            "gzip:9".parse::<Encoding>().unwrap(),
            Encoding::Gzip { level: 9 }
        );
        assert!("gzip:10".parse::<Encoding>().is_err());
        assert!("lz4".parse::<Encoding>().is_err());
    }
}
