//! Golden digests: any change to the bytes strata writes shows up here and
//! must be a reviewed, deliberate change (update the constants in the same
//! commit and say why).

use std::io::Write;

use strata_builder::layer::compress::{Encoder, Encoding};
use strata_oci::digest::Digest;

use crate::util::{TestDir, tagged_digest};

const GOLDEN: &[(&str, &str, &str)] = &[
    (
        "hello",
        "1.0.0",
        "sha256:f512cc2479b9aae11fa96256f1b2047dc410c964fb68bd213026b6fc20f029ec",
    ),
    (
        "app",
        "2.1.0",
        "sha256:3a01fac9e3a68b3d42636dd4cff92632449a5e9fc33236c5795e85bad45990ec",
    ),
];

#[test]
fn example_digests_are_pinned() {
    let t = TestDir::new();
    let mut got = Vec::new();
    for (name, tag, _) in GOLDEN {
        let out = t.join(&format!("{name}-out"));
        t.build(&t.example(name), &out);
        got.push((*name, tagged_digest(&out, tag)));
    }
    for ((name, digest), (_, _, expected)) in got.iter().zip(GOLDEN) {
        assert_eq!(
            digest, expected,
            "the digest of examples/{name} changed; all: {got:?}"
        );
    }
}

/// The gzip backend decides every layer's bytes. Cargo feature unification can
/// swap flate2's backend behind our back (a dependency enabling `zlib`); this
/// pins the bytes of strata's gzip (zlib-rs) and zstd output.
#[test]
fn compressor_bytes_are_pinned() {
    let input: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8 % 17 + b'a')
        .collect();
    let digest = |compression| {
        let mut enc = Encoder::new(Vec::new(), compression).unwrap();
        enc.write_all(&input).unwrap();
        Digest::of(&enc.finish().unwrap()).to_string()
    };
    assert_eq!(
        digest(Encoding::Gzip { level: 6 }),
        "sha256:1c6462e7a24d673010d161d395bd6b929d0b036fba921e13b5287b5395acea88"
    );
    assert_eq!(
        digest(Encoding::Zstd { level: 3 }),
        "sha256:d5812e18d2283879e00def565a55314c24acd3554381aa3841d5080b2f721cf7"
    );
}
