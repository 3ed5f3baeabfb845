//! A build killed at any moment leaves a layout that is still whole: every
//! blob `index.json` reaches is present and intact, no half-written blob is
//! visible, and the next build cleans up.

use std::fs;
use std::io::Write;
use std::time::Duration;

use sha2::Digest as _;

use crate::util::{TestDir, tagged_digest, verify_layout};

#[test]
fn a_killed_build_leaves_a_whole_layout() {
    let t = TestDir::new();
    let recipe = t.write(
        "image.kdl",
        "name \"big\"\nversion \"1\"\nbase \"scratch\"\nlayer \"data\" {\n    copy \"blob.bin\" \"/opt/blob.bin\"\n}\n",
    );
    t.write("blob.bin", "first version\n");
    let out = t.join("out");
    t.build(&recipe, &out);
    let before = tagged_digest(&out, "1");

    // Enough incompressible bytes that the build is still running when killed.
    let mut file = fs::File::create(t.join("blob.bin")).unwrap();
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut buf = vec![0u8; 1 << 20];
    for _ in 0..96 {
        for b in buf.iter_mut() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *b = state as u8;
        }
        file.write_all(&buf).unwrap();
    }
    drop(file);

    for delay in [20, 150, 400] {
        let mut child = t
            .strata()
            .arg("build")
            .arg(&recipe)
            .arg("-o")
            .arg(&out)
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay));
        let _ = child.kill();
        let _ = child.wait();
        verify_layout(&out, "1");
        for entry in fs::read_dir(out.join("blobs/sha256")).unwrap() {
            let entry = entry.unwrap();
            let bytes = fs::read(entry.path()).unwrap();
            assert_eq!(
                hex::encode(sha2::Sha256::digest(&bytes)),
                entry.file_name().to_string_lossy(),
                "a blob under blobs/ does not match its name"
            );
        }
    }
    t.build(&recipe, &out);
    assert_ne!(tagged_digest(&out, "1"), before);
    verify_layout(&out, "1");
    let leftovers: Vec<_> = fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".strata"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
