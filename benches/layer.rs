//! Layer writing, the hot path of every build: tar → sha256 → gzip/zstd →
//! sha256 → file, through `strata_builder::layer::write`, on a generated tree of
//! about 20 MB in 1,000 files of mixed sizes in 20 folders. Nine files in ten
//! are text-like (source-code words from a skewed vocabulary, so they
//! compress about as well as real source does); the rest are binary-like
//! (half zero runs, as object code is), which compress less.
//!
//! Run with `cargo bench --bench layer`: about 20 s once compiled.

use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use strata_builder::layer::compress::Encoding;
use strata_oci::entry::{Content, Entry, Fingerprint, Kind, LayerPlan, Source};
use strata_oci::path::ImagePath;

const FILES: usize = 1000;
const DIRS: usize = 20;
const TOTAL: u64 = 20_000_000;

const COMPRESSIONS: [(&str, Encoding); 2] = [
    ("gzip-6", Encoding::Gzip { level: 6 }),
    ("zstd-3", Encoding::Zstd { level: 3 }),
];

/// A small deterministic generator (PCG-style LCG, high bits out).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        let mut r = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x2545_f491_4f6c_dd1d);
        r.next();
        r
    }

    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    /// `0..n`, skewed towards small values (roughly Zipf-like).
    fn skewed(&mut self, n: usize) -> usize {
        let a = self.next() as usize % n;
        let b = self.next() as usize % n;
        a * b / n
    }
}

const KEYWORDS: [&str; 24] = [
    "def", "return", "import", "from", "class", "self", "if", "else", "for", "in", "while", "None",
    "True", "False", "not", "and", "or", "with", "as", "try", "except", "raise", "yield", "lambda",
];
const SYLLABLES: [&str; 24] = [
    "data", "frame", "value", "index", "name", "path", "item", "count", "read", "write", "parse",
    "node", "list", "key", "map", "buf", "size", "arg", "opt", "err", "log", "cfg", "row", "col",
];

/// Source-code-like text: indented lines of keywords, identifiers made of
/// one or two syllables, punctuation and the occasional number.
fn text(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 128);
    while out.len() < len {
        let indent = rng.skewed(4) * 4;
        out.extend(std::iter::repeat_n(b' ', indent));
        let words = 2 + rng.next() as usize % 8;
        for w in 0..words {
            if w > 0 {
                out.extend_from_slice([" ", " ", ", ", " = ", ".", "("][rng.skewed(6)].as_bytes());
            }
            match rng.next() % 8 {
                0..=2 => out.extend_from_slice(KEYWORDS[rng.skewed(KEYWORDS.len())].as_bytes()),
                3 => out.extend_from_slice((rng.next() % 10_000).to_string().as_bytes()),
                _ => {
                    out.extend_from_slice(SYLLABLES[rng.skewed(SYLLABLES.len())].as_bytes());
                    if rng.next().is_multiple_of(2) {
                        out.push(b'_');
                        out.extend_from_slice(SYLLABLES[rng.skewed(SYLLABLES.len())].as_bytes());
                    }
                }
            }
        }
        out.extend_from_slice([":\n", ")\n", "\n", "\n"][rng.next() as usize % 4].as_bytes());
    }
    out.truncate(len);
    out
}

/// Object-code-like bytes: runs of zeros between runs of skewed bytes.
fn binary(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 256);
    while out.len() < len {
        let run = 1 + rng.next() as usize % 64;
        if rng.next().is_multiple_of(2) {
            out.extend(std::iter::repeat_n(0u8, run));
        } else {
            out.extend((0..run).map(|_| rng.skewed(256) as u8));
        }
    }
    out.truncate(len);
    out
}

/// Writes the tree under `dir` and returns the plan of a layer holding it
/// at `/tree`, and the bytes of file content in it.
fn plan(dir: &Path) -> (LayerPlan, u64) {
    let mut rng = Rng::new(1);
    // Sizes from 256 B to 256 KiB, spread evenly on a log scale, then
    // scaled so they add up to TOTAL.
    let raw: Vec<u64> = (0..FILES)
        .map(|_| (256u64 << (rng.next() % 11)) + rng.next() % 1024)
        .collect();
    let raw_total: u64 = raw.iter().sum();
    let sizes: Vec<usize> = raw
        .iter()
        .map(|&s| (s * TOTAL / raw_total).max(1) as usize)
        .collect();

    let dir_entry = |p: &str| Entry::dir(ImagePath::parse(p).unwrap(), 0o755, 0, 0, 0);
    let mut entries = vec![dir_entry("/tree")];
    let mut total = 0;
    for (f, &size) in sizes.iter().enumerate() {
        let d = f * DIRS / FILES;
        let host_dir = dir.join(format!("d{d:02}"));
        if !host_dir.exists() {
            std::fs::create_dir(&host_dir).unwrap();
            entries.push(dir_entry(&format!("/tree/d{d:02}")));
        }
        let host = host_dir.join(format!("f{f:04}"));
        let executable = f % 10 == 9;
        let bytes = if executable {
            binary(&mut rng, size)
        } else {
            text(&mut rng, size)
        };
        std::fs::write(&host, &bytes).unwrap();
        total += bytes.len() as u64;
        let meta = std::fs::metadata(&host).unwrap();
        entries.push(Entry {
            path: ImagePath::parse(&format!("/tree/d{d:02}/f{f:04}")).unwrap(),
            kind: Kind::File(Content {
                source: Source::Host(host),
                size: meta.len(),
                fingerprint: Fingerprint::of_metadata(&meta),
            }),
            mode: if executable { 0o555 } else { 0o444 },
            uid: 0,
            gid: 0,
            mtime: 0,
        });
    }
    let plan = LayerPlan {
        name: "tree".into(),
        created_by: "bench".into(),
        entries,
    };
    (plan, total)
}

fn layer_writing(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let (plan, total) = plan(dir.path());

    // One write of each up front: a sanity check, and the ratios to judge
    // whether the content compresses realistically.
    println!(
        "tree: {} files, {total} bytes of content",
        plan.entries.iter().filter(|e| !e.is_dir()).count()
    );
    for (name, compression) in COMPRESSIONS {
        let blob = strata_builder::layer::write(&plan, compression, tempfile::tempfile().unwrap())
            .unwrap();
        println!(
            "{name}: tar {} bytes -> {} bytes ({:.2}x)",
            blob.diff_size,
            blob.size,
            blob.diff_size as f64 / blob.size as f64
        );
    }

    let mut group = c.benchmark_group("layer");
    // Each write takes tens to hundreds of milliseconds: flat sampling
    // (the same iteration count in every sample) keeps 10 samples short.
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Bytes(total));
    for (name, compression) in COMPRESSIONS {
        group.bench_function(name, |b| {
            b.iter(|| {
                let out = tempfile::tempfile().unwrap();
                strata_builder::layer::write(&plan, compression, out).unwrap()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, layer_writing);
criterion_main!(benches);
