//! The TRE preset: what a Trusted Research Environment expects of an image.
//!
//! The TRE mounts `/safe_data` (inputs), `/safe_outputs` (results, empty per
//! job) and `/scratch` (deleted on exit) over the image, runs it offline, and
//! Charliecloud bind-mounts `/etc/passwd`, `/etc/group`, `/etc/hosts` and
//! `/etc/resolv.conf`, so those must exist. See `spec/tre.md`.

use strata_oci::entry::{Content, Entry, Kind};
use strata_oci::path::ImagePath;
use strata_oci::view::View;

/// The mount points, without their leading `/`.
pub const TRE_DIRS: [&str; 3] = ["safe_data", "safe_outputs", "scratch"];

/// The user created when the recipe names none (as distroless's `nonroot`).
pub const DEFAULT_USER: &str = "nonroot";
pub const DEFAULT_UID: u32 = 65532;

/// Environment the preset sets; recipe `env` lines override these.
pub const ENV: [(&str, &str); 3] = [
    ("TMPDIR", "/scratch"),
    ("TMP", "/scratch"),
    ("HF_HUB_OFFLINE", "1"),
];

pub fn dir(name: &str) -> ImagePath {
    ImagePath::from_relative(name).expect("a constant path")
}

/// The volumes the preset declares.
pub fn volumes() -> impl Iterator<Item = String> {
    TRE_DIRS.iter().map(|d| format!("/{d}"))
}

/// Entries the preset adds: the mount points, `/tmp`, and the `/etc` files
/// runtimes bind-mount, unless the base or the recipe already has them.
pub fn entries(view: &View, recipe_paths: &[&ImagePath], mtime: u64) -> Vec<Entry> {
    let mut out = Vec::new();
    // `/safe_outputs` and `/scratch` are writable (sticky, like `/tmp`) so the
    // image also works outside the TRE, where nothing is mounted there.
    for (name, mode) in [
        ("safe_data", 0o755),
        ("safe_outputs", 0o1777),
        ("scratch", 0o1777),
        ("tmp", 0o1777),
    ] {
        let path = dir(name);
        if view.get(&path).is_none() || TRE_DIRS.contains(&name) {
            // Mount points must be empty: hide whatever the base put there.
            if TRE_DIRS.contains(&name) && view.has_children(&path) {
                out.push(Entry {
                    path: path.join(".wh..wh..opq"),
                    kind: Kind::File(Content::inline(Vec::new())),
                    mode: 0o644,
                    uid: 0,
                    gid: 0,
                    mtime,
                });
            }
            out.push(Entry::dir(path, mode, 0, 0, mtime));
        }
    }
    let files: [(&str, &[u8]); 3] = [
        (
            "etc/hosts",
            b"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
        ),
        ("etc/resolv.conf", b""),
        (
            "etc/nsswitch.conf",
            b"passwd:\tfiles\ngroup:\tfiles\nshadow:\tfiles\nhosts:\tfiles dns\nnetworks:\tfiles\nprotocols:\tfiles\nservices:\tfiles\nethers:\tfiles\nrpc:\tfiles\n",
        ),
    ];
    for (path, bytes) in files {
        let path = dir(path);
        if view.get(&path).is_none() && !recipe_paths.contains(&&path) {
            out.push(Entry {
                path,
                kind: Kind::File(Content::inline(bytes.to_vec())),
                mode: 0o644,
                uid: 0,
                gid: 0,
                mtime,
            });
        }
    }
    out
}
