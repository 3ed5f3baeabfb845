//! The wheel tags the image's interpreter accepts, best first, computed
//! from facts read from the image (Python version, ABI flags, glibc
//! version, machine) the way `packaging.tags.sys_tags()` would compute
//! them if it ran there, and how well a wheel fits them.

use std::collections::HashMap;

pub use crate::filename::Tag;
use crate::filename::WheelFilename;

/// What a wheel must be built for, read from the image by strata (not by
/// running Python).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `(3, 11)`.
    pub python: (u8, u8),
    /// The ABI flag `t` (CPython 3.13t and later without the GIL).
    pub free_threaded: bool,
    /// `(2, 36)`; `None` when the image has no glibc, so only wheels for
    /// any platform fit.
    pub glibc: Option<(u16, u16)>,
    /// The kernel's machine name: `x86_64`, `aarch64`, `armv7l`, `i686`,
    /// `ppc64le`, `s390x`.
    pub arch: String,
}

/// The machines manylinux wheels exist for (`packaging._manylinux`'s
/// allowed architectures, plus the two it admits after checking the
/// interpreter's ELF header: a Debian `armhf` or `i386` image has those).
const MANYLINUX_ARCHS: [&str; 9] = [
    "x86_64",
    "aarch64",
    "ppc64",
    "ppc64le",
    "s390x",
    "loongarch64",
    "riscv64",
    "armv7l",
    "i686",
];

/// The older names PEPs 513, 571 and 599 gave some glibc versions; a
/// wheel may carry either, so each follows its `manylinux_2_Y` twin.
const LEGACY_MANYLINUX: [((u16, u16), &str); 3] = [
    ((2, 17), "manylinux2014"),
    ((2, 12), "manylinux2010"),
    ((2, 5), "manylinux1"),
];

/// packaging's guess at the last minor release of a glibc major version
/// that is not the image's own: no glibc 3 exists yet to know it.
const LAST_GLIBC_MINOR: u16 = 50;

/// Every tag a target accepts, in order of preference.
#[derive(Debug, Clone)]
pub struct Tags {
    ordered: Vec<Tag>,
    rank: HashMap<Tag, usize>,
}

impl Tags {
    /// Every compatible tag, best first, in the order packaging's
    /// `cpython_tags` then `compatible_tags` give for a CPython of this
    /// version and ABI on a glibc Linux of this machine and glibc version.
    /// Platforms run from `manylinux_2_{glibc minor}` down to 2_17 (2_5 on
    /// x86_64 and i686), each legacy alias after its twin, then
    /// `linux_ARCH`, as pip orders them: packaging 26.3 and later put
    /// `linux_ARCH` first, but PyPI refuses such wheels, so the difference
    /// only reorders a private index's locally built wheels.
    pub fn new(target: &Target) -> Tags {
        let platforms = platforms(target);
        let (major, minor) = target.python;
        let interpreter = format!("cp{major}{minor}");
        let abi = format!(
            "{interpreter}{}",
            if target.free_threaded { "t" } else { "" }
        );
        // A free-threaded build cannot load abi3 extensions, only ones built
        // for its own stable ABI, abi3t (PEP 803).
        let stable_abi = if target.free_threaded {
            "abi3t"
        } else {
            "abi3"
        };
        let has_stable_abi = (major, minor) >= (3, 2);

        let mut ordered = Vec::new();
        let mut push_all = |python: &str, abi: &str, platforms: &[String]| {
            ordered.extend(platforms.iter().map(|platform| Tag {
                python: python.to_owned(),
                abi: abi.to_owned(),
                platform: platform.clone(),
            }));
        };
        let any = ["any".to_owned()];

        // packaging's `cpython_tags`.
        push_all(&interpreter, &abi, &platforms);
        if has_stable_abi {
            push_all(&interpreter, stable_abi, &platforms);
        }
        push_all(&interpreter, "none", &platforms);
        if has_stable_abi {
            for older in (2..minor).rev() {
                push_all(&format!("cp{major}{older}"), stable_abi, &platforms);
            }
        }

        // packaging's `compatible_tags`: pure-Python code, newest first.
        let pythons: Vec<String> = [format!("py{major}{minor}"), format!("py{major}")]
            .into_iter()
            .chain((0..minor).rev().map(|older| format!("py{major}{older}")))
            .collect();
        for python in &pythons {
            push_all(python, "none", &platforms);
        }
        push_all(&interpreter, "none", &any);
        for python in &pythons {
            push_all(python, "none", &any);
        }

        let mut rank = HashMap::with_capacity(ordered.len());
        for (i, tag) in ordered.iter().enumerate() {
            rank.entry(tag.clone()).or_insert(i);
        }
        Tags { ordered, rank }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Tag> {
        self.ordered.iter()
    }

    /// The best (lowest) rank among the wheel's tags, `None` when none is
    /// compatible.
    pub fn rank(&self, wheel: &WheelFilename) -> Option<usize> {
        self.best(wheel).map(|(rank, _)| rank)
    }

    /// The wheel's best tag for this target, with its rank.
    pub fn best(&self, wheel: &WheelFilename) -> Option<(usize, &Tag)> {
        let rank = wheel
            .tags
            .iter()
            .filter_map(|tag| self.rank.get(tag))
            .min()
            .copied()?;
        Some((rank, &self.ordered[rank]))
    }
}

/// The platform tags of a glibc Linux, best first, as
/// `packaging._manylinux.platform_tags` yields them, then `linux_ARCH`.
fn platforms(target: &Target) -> Vec<String> {
    let Some((glibc_major, glibc_minor)) = target.glibc else {
        return Vec::new();
    };
    let arch = target.arch.as_str();
    let mut out = Vec::new();
    if MANYLINUX_ARCHS.contains(&arch) {
        // The oldest glibc manylinux ever covered on the machine.
        let oldest = if matches!(arch, "x86_64" | "i686") {
            (2, 5)
        } else {
            (2, 17)
        };
        // glibc keeps compatibility across major versions, so an older
        // major's whole range follows the image's own.
        for major in (oldest.0..=glibc_major).rev() {
            let newest = if major == glibc_major {
                glibc_minor
            } else {
                LAST_GLIBC_MINOR
            };
            let lowest = if major == oldest.0 { oldest.1 } else { 0 };
            for minor in (lowest..=newest).rev() {
                out.push(format!("manylinux_{major}_{minor}_{arch}"));
                if let Some((_, legacy)) = LEGACY_MANYLINUX
                    .iter()
                    .find(|(version, _)| *version == (major, minor))
                {
                    out.push(format!("{legacy}_{arch}"));
                }
            }
        }
    }
    out.push(format!("linux_{arch}"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The checked-in lists under `testdata/`, made by `ORACLE` with
    /// packaging 26.4: each list, the oracle's arguments, and the target
    /// they describe.
    fn cases() -> Vec<(&'static str, [&'static str; 4], Target)> {
        let target = |python, free_threaded, glibc, arch: &str| Target {
            python,
            free_threaded,
            glibc,
            arch: arch.to_owned(),
        };
        vec![
            (
                include_str!("testdata/tags-cp311-x86_64-glibc2.36.txt"),
                ["3.11", "", "2.36", "x86_64"],
                target((3, 11), false, Some((2, 36)), "x86_64"),
            ),
            (
                include_str!("testdata/tags-cp313-aarch64-glibc2.41.txt"),
                ["3.13", "", "2.41", "aarch64"],
                target((3, 13), false, Some((2, 41)), "aarch64"),
            ),
            (
                include_str!("testdata/tags-cp312-armv7l-glibc2.31.txt"),
                ["3.12", "", "2.31", "armv7l"],
                target((3, 12), false, Some((2, 31)), "armv7l"),
            ),
            (
                include_str!("testdata/tags-cp313t-x86_64-glibc2.39.txt"),
                ["3.13", "t", "2.39", "x86_64"],
                target((3, 13), true, Some((2, 39)), "x86_64"),
            ),
            (
                include_str!("testdata/tags-cp312-x86_64-noglibc.txt"),
                ["3.12", "", "none", "x86_64"],
                target((3, 12), false, None, "x86_64"),
            ),
            (
                include_str!("testdata/tags-cp310-i686-glibc2.28.txt"),
                ["3.10", "", "2.28", "i686"],
                target((3, 10), false, Some((2, 28)), "i686"),
            ),
            (
                include_str!("testdata/tags-cp312-mips64-glibc2.36.txt"),
                ["3.12", "", "2.36", "mips64"],
                target((3, 12), false, Some((2, 36)), "mips64"),
            ),
        ]
    }

    fn computed(target: &Target) -> String {
        Tags::new(target)
            .iter()
            .map(|tag| format!("{tag}\n"))
            .collect()
    }

    /// Prints packaging's tags for `PYTHON ABIFLAGS GLIBC|none ARCH`, one a
    /// line, with the glibc version and the ELF checks patched to describe
    /// the image instead of the machine running it.
    const ORACLE: &str = r#"
import sys
from packaging import _manylinux, tags

python, abiflags, glibc, arch = sys.argv[1:]
major, minor = map(int, python.split("."))
platforms = []
if glibc != "none":
    version = _manylinux._GLibCVersion(*map(int, glibc.split(".")))
    _manylinux._get_glibc_version = lambda: version
    _manylinux._is_linux_armhf = lambda executable: True
    _manylinux._is_linux_i686 = lambda executable: True
    _manylinux._get_manylinux_module = lambda: None
    platforms = [*_manylinux.platform_tags([arch]), f"linux_{arch}"]
interpreter = f"cp{major}{minor}"
for tag in [
    *tags.cpython_tags((major, minor), [interpreter + abiflags], platforms),
    *tags.compatible_tags((major, minor), interpreter, platforms),
]:
    print(tag)
"#;

    #[test]
    fn matches_packaging() {
        for (expected, _, target) in cases() {
            assert_eq!(computed(&target), expected, "{target:?}");
        }
    }

    /// The checked-in lists must still be what packaging says, asked of the
    /// Python `STRATA_PYTHON` names (`.ci/run` installs packaging into it).
    #[test]
    fn checked_in_lists_are_what_packaging_says() {
        let Some(python) = std::env::var_os("STRATA_PYTHON") else {
            panic!(
                "`STRATA_PYTHON` is not set: run the suite with `bash .ci/run`, which installs packaging"
            );
        };
        for (expected, args, _) in cases() {
            let out = std::process::Command::new(&python)
                .arg("-c")
                .arg(ORACLE)
                .args(args)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(String::from_utf8(out.stdout).unwrap(), expected, "{args:?}");
        }
    }

    #[test]
    fn sizes_and_landmarks() {
        let x86 = |glibc| Target {
            python: (3, 11),
            free_threaded: false,
            glibc,
            arch: "x86_64".to_owned(),
        };
        let tags = Tags::new(&x86(Some((2, 36))));
        let all: Vec<String> = tags.iter().map(Tag::to_string).collect();
        assert!(all.len() > 900, "{}", all.len());
        assert_eq!(all[0], "cp311-cp311-manylinux_2_36_x86_64");
        assert_eq!(all.last().unwrap(), "py30-none-any");
        let at = |s: &str| all.iter().position(|t| t == s).unwrap();
        assert_eq!(
            at("cp311-cp311-manylinux2014_x86_64"),
            at("cp311-cp311-manylinux_2_17_x86_64") + 1
        );
        assert!(at("cp311-cp311-linux_x86_64") < at("cp311-abi3-manylinux_2_36_x86_64"));
        assert!(at("cp32-abi3-manylinux1_x86_64") < at("py311-none-manylinux_2_36_x86_64"));
        assert!(at("cp311-none-any") < at("py311-none-any"));

        let none: Vec<String> = Tags::new(&x86(None)).iter().map(Tag::to_string).collect();
        assert_eq!(
            none[..3],
            ["cp311-none-any", "py311-none-any", "py3-none-any"]
        );
        assert!(none.iter().all(|t| t.ends_with("-any")));
    }

    #[test]
    fn a_glibc_of_a_later_major_covers_every_2_x() {
        let tags = Tags::new(&Target {
            python: (3, 12),
            free_threaded: false,
            glibc: Some((3, 1)),
            arch: "aarch64".to_owned(),
        });
        let platforms: Vec<&str> = tags
            .iter()
            .filter(|t| t.abi == "cp312")
            .map(|t| t.platform.as_str())
            .collect();
        assert_eq!(
            platforms[..4],
            [
                "manylinux_3_1_aarch64",
                "manylinux_3_0_aarch64",
                "manylinux_2_50_aarch64",
                "manylinux_2_49_aarch64"
            ]
        );
        assert_eq!(
            platforms[platforms.len() - 3..],
            [
                "manylinux_2_17_aarch64",
                "manylinux2014_aarch64",
                "linux_aarch64"
            ]
        );
    }

    #[test]
    fn ranks_a_wheel_by_its_best_tag() {
        let tags = Tags::new(&Target {
            python: (3, 11),
            free_threaded: false,
            glibc: Some((2, 36)),
            arch: "x86_64".to_owned(),
        });
        let rank = |name: &str| tags.rank(&name.parse().unwrap());
        let native = rank("numpy-2.0.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl");
        assert_eq!(native, Some(19));
        let newer = rank("numpy-2.0.0-cp311-cp311-manylinux_2_28_x86_64.whl");
        assert!(newer < native);
        let pure = rank("six-1.17.0-py2.py3-none-any.whl").unwrap();
        assert_eq!(tags.iter().nth(pure).unwrap().to_string(), "py3-none-any");
        assert_eq!(
            rank("numpy-2.0.0-cp312-cp312-manylinux_2_17_x86_64.whl"),
            None
        );
        assert_eq!(
            rank("numpy-2.0.0-cp311-cp311-manylinux_2_38_x86_64.whl"),
            None
        );
        assert_eq!(
            rank("numpy-2.0.0-cp311-cp311-musllinux_1_2_x86_64.whl"),
            None
        );
        assert_eq!(rank("numpy-2.0.0-cp311-cp311-win_amd64.whl"), None);
        assert_eq!(rank("six-1.0-py2-none-any.whl"), None);
    }

    #[test]
    fn a_free_threaded_build_takes_no_abi3() {
        let tags = Tags::new(&Target {
            python: (3, 13),
            free_threaded: true,
            glibc: Some((2, 39)),
            arch: "x86_64".to_owned(),
        });
        let rank = |name: &str| tags.rank(&name.parse().unwrap());
        assert!(rank("x-1-cp313-cp313t-manylinux_2_17_x86_64.whl").is_some());
        assert_eq!(rank("x-1-cp313-cp313-manylinux_2_17_x86_64.whl"), None);
        assert_eq!(rank("x-1-cp39-abi3-manylinux_2_17_x86_64.whl"), None);
        assert!(rank("x-1-cp313-none-manylinux_2_17_x86_64.whl").is_some());
    }
}
