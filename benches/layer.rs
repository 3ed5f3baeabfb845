//! Layer writing, the hot path of every build: tar → sha256 → gzip/zstd →
//! sha256, on a generated tree of text-like files (so it compresses like
//! source code does).

use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use strata::assemble::entry::{Content, Entry, Fingerprint, Kind, LayerPlan, Source};
use strata::layer::compress::Compression;
use strata::recipe::ImagePath;

const FILES: usize = 1000;
const FILE_SIZE: usize = 20 * 1024;

/// Deterministic pseudo-text: words from a small vocabulary.
fn text(seed: usize, len: usize) -> Vec<u8> {
    const WORDS: [&str; 16] = [
        "import ", "def ", "return ", "value", "self.", "(", ")", ":\n    ", "data", "frame",
        " = ", "if ", "else", "for ", " in ", "\n",
    ];
    let mut state = seed as u64 * 6364136223846793005 + 1442695040888963407;
    let mut out = Vec::with_capacity(len + 16);
    while out.len() < len {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        out.extend_from_slice(WORDS[(state >> 60) as usize].as_bytes());
    }
    out.truncate(len);
    out
}

fn plan(dir: &Path) -> (LayerPlan, u64) {
    let mut entries = vec![Entry::dir(
        ImagePath::parse("/tree").unwrap(),
        0o755,
        0,
        0,
        0,
    )];
    let mut total = 0;
    for i in 0..FILES {
        let host = dir.join(format!("f{i:04}"));
        let bytes = text(i, FILE_SIZE);
        std::fs::write(&host, &bytes).unwrap();
        total += bytes.len() as u64;
        let meta = std::fs::metadata(&host).unwrap();
        entries.push(Entry {
            path: ImagePath::parse(&format!("/tree/f{i:04}")).unwrap(),
            kind: Kind::File(Content {
                source: Source::Host(host),
                size: meta.len(),
                fingerprint: Fingerprint::of_metadata(&meta),
            }),
            mode: 0o444,
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
    let mut group = c.benchmark_group("layer");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(total));
    for (name, compression) in [
        ("gzip-6", Compression::Gzip { level: 6 }),
        ("zstd-3", Compression::Zstd { level: 3 }),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let out = tempfile::tempfile().unwrap();
                strata::layer::write(&plan, compression, out).unwrap()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, layer_writing);
criterion_main!(benches);
