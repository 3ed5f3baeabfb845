//! Distribution file names: what a wheel's name says (project, version,
//! build tag and compatibility tags, PEP 427 and the binary distribution
//! format spec), and whether a file is a source distribution.

use std::fmt;
use std::str::FromStr;

use uv_normalize::{InvalidNameError, PackageName};
use uv_pep440::{Version, VersionParseError};

/// At most this many tags after expanding compressed tag sets. Real wheels
/// carry a handful (`py2.py3-none-any`, two manylinux aliases); the
/// expansion is a product of three lists, so a long hostile name could
/// otherwise ask for millions of strings.
const MAX_TAGS: usize = 1024;

/// One compatibility tag, as `packaging.tags.Tag` has it: lowercase.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag {
    pub python: String,
    pub abi: String,
    pub platform: String,
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.python, self.abi, self.platform)
    }
}

/// A parsed `NAME-VERSION[-BUILD]-PYTHON-ABI-PLATFORM.whl`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WheelFilename {
    pub name: PackageName,
    pub version: Version,
    /// Starts with a digit; installers prefer the highest among wheels
    /// that are otherwise equal.
    pub build: Option<String>,
    /// Compressed tag sets expanded: `py2.py3-none-any` gives two tags.
    pub tags: Vec<Tag>,
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("`{filename}` is not a wheel file name")]
#[diagnostic(help(
    "a wheel is named `NAME-VERSION[-BUILD]-PYTHON-ABI-PLATFORM.whl` (PEP 427), e.g. \
     `six-1.17.0-py2.py3-none-any.whl`: rename the file, or use a wheel whose name follows it"
))]
pub struct WheelFilenameError {
    pub filename: String,
    #[source]
    pub problem: FilenameProblem,
}

/// What is wrong with a wheel's file name.
#[derive(Debug, thiserror::Error)]
pub enum FilenameProblem {
    #[error("it does not end in `.whl`")]
    NotWheel,
    #[error("it has {0} `-` separators before `.whl`, where 4 or 5 are expected")]
    Parts(usize),
    #[error("the project name `{name}` is invalid")]
    Name {
        name: String,
        #[source]
        source: InvalidNameError,
    },
    #[error("the version `{version}` is invalid")]
    Version {
        version: String,
        #[source]
        source: VersionParseError,
    },
    #[error("the build tag `{0}` does not start with a digit")]
    Build(String),
    #[error("its {0} tag has an empty part")]
    EmptyTag(&'static str),
    #[error("its compressed tag sets expand to {0} tags, more than the {MAX_TAGS} allowed")]
    TooManyTags(usize),
}

impl FromStr for WheelFilename {
    type Err = WheelFilenameError;

    fn from_str(filename: &str) -> Result<Self, Self::Err> {
        parse(filename).map_err(|problem| WheelFilenameError {
            filename: filename.to_owned(),
            problem,
        })
    }
}

fn parse(filename: &str) -> Result<WheelFilename, FilenameProblem> {
    let stem = filename
        .strip_suffix(".whl")
        .ok_or(FilenameProblem::NotWheel)?;
    // The name escapes `-` as `_`, so the separators alone decide the parts.
    let parts: Vec<&str> = stem.splitn(7, '-').collect();
    let (name, version, build, tags) = match parts[..] {
        [name, version, python, abi, platform] => (name, version, None, [python, abi, platform]),
        [name, version, build, python, abi, platform] => {
            (name, version, Some(build), [python, abi, platform])
        }
        _ => return Err(FilenameProblem::Parts(stem.matches('-').count())),
    };
    let name = PackageName::from_str(name).map_err(|source| FilenameProblem::Name {
        name: name.to_owned(),
        source,
    })?;
    let version = Version::from_str(version).map_err(|source| FilenameProblem::Version {
        version: version.to_owned(),
        source,
    })?;
    if let Some(build) = build
        && !build.starts_with(|c: char| c.is_ascii_digit())
    {
        return Err(FilenameProblem::Build(build.to_owned()));
    }
    Ok(WheelFilename {
        name,
        version,
        build: build.map(str::to_owned),
        tags: expand(tags)?,
    })
}

/// `cp38.cp39-abi3-manylinux1_x86_64.manylinux_2_5_x86_64` → every
/// combination, lowercased as packaging's `parse_tag` does.
fn expand([python, abi, platform]: [&str; 3]) -> Result<Vec<Tag>, FilenameProblem> {
    let split = |part: &str, what| {
        let set: Vec<String> = part.split('.').map(str::to_ascii_lowercase).collect();
        if set.iter().any(String::is_empty) {
            return Err(FilenameProblem::EmptyTag(what));
        }
        Ok(set)
    };
    let (pythons, abis, platforms) = (
        split(python, "python")?,
        split(abi, "ABI")?,
        split(platform, "platform")?,
    );
    let count = pythons
        .len()
        .saturating_mul(abis.len())
        .saturating_mul(platforms.len());
    if count > MAX_TAGS {
        return Err(FilenameProblem::TooManyTags(count));
    }
    let mut tags = Vec::with_capacity(count);
    for python in &pythons {
        for abi in &abis {
            for platform in &platforms {
                tags.push(Tag {
                    python: python.clone(),
                    abi: abi.clone(),
                    platform: platform.clone(),
                });
            }
        }
    }
    Ok(tags)
}

/// The archive suffixes uv accepts for source distributions (`.tar.gz` and
/// `.zip` by PEP 625, the rest from older uploads).
const SDIST_SUFFIXES: [&str; 12] = [
    ".tar.gz",
    ".zip",
    ".tar.bz2",
    ".tar.lz",
    ".tar.lzma",
    ".tar.xz",
    ".tar.zst",
    ".tar",
    ".tbz",
    ".tgz",
    ".tlz",
    ".txz",
];

/// Whether `filename` names a source distribution: strata never builds
/// one (that runs the project's code), but says when only those exist.
pub fn is_sdist(filename: &str) -> bool {
    let lower = filename.to_ascii_lowercase();
    SDIST_SUFFIXES
        .iter()
        .any(|suffix| lower.len() > suffix.len() && lower.ends_with(suffix))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(s: &str) -> Tag {
        let mut parts = s.split('-');
        Tag {
            python: parts.next().unwrap().to_owned(),
            abi: parts.next().unwrap().to_owned(),
            platform: parts.next().unwrap().to_owned(),
        }
    }

    fn problem(filename: &str) -> FilenameProblem {
        let err = filename.parse::<WheelFilename>().unwrap_err();
        assert_eq!(err.filename, filename);
        err.problem
    }

    #[test]
    fn parses_a_single_tag_wheel() {
        let wheel: WheelFilename = "pandas-2.2.3-cp311-cp311-musllinux_1_2_x86_64.whl"
            .parse()
            .unwrap();
        assert_eq!(wheel.name.as_str(), "pandas");
        assert_eq!(wheel.version, Version::from_str("2.2.3").unwrap());
        assert_eq!(wheel.build, None);
        assert_eq!(wheel.tags, [tag("cp311-cp311-musllinux_1_2_x86_64")]);
    }

    #[test]
    fn expands_compressed_tag_sets() {
        let wheel: WheelFilename = "six-1.17.0-py2.py3-none-any.whl".parse().unwrap();
        assert_eq!(wheel.tags, [tag("py2-none-any"), tag("py3-none-any")]);

        let wheel: WheelFilename =
            "numpy-1.26.4-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
                .parse()
                .unwrap();
        assert_eq!(
            wheel.tags,
            [
                tag("cp311-cp311-manylinux_2_17_x86_64"),
                tag("cp311-cp311-manylinux2014_x86_64"),
            ]
        );

        let wheel: WheelFilename = "x-1-cp38.cp39-abi3.none-any.whl".parse().unwrap();
        assert_eq!(wheel.tags.len(), 4);
        assert_eq!(wheel.tags[3], tag("cp39-none-any"));
    }

    #[test]
    fn normalizes_the_name_and_lowercases_tags() {
        let wheel: WheelFilename = "Typing_Extensions-4.12.2-PY3-None-Any.whl".parse().unwrap();
        assert_eq!(wheel.name.as_str(), "typing-extensions");
        assert_eq!(wheel.tags, [tag("py3-none-any")]);
        let wheel: WheelFilename = "zope.interface-7.0-py3-none-any.whl".parse().unwrap();
        assert_eq!(wheel.name.as_str(), "zope-interface");
    }

    #[test]
    fn keeps_the_build_tag() {
        let wheel: WheelFilename = "foo-1.0-2local-py3-none-any.whl".parse().unwrap();
        assert_eq!(wheel.build.as_deref(), Some("2local"));
        assert!(matches!(
            problem("foo-1.0-local-py3-none-any.whl"),
            FilenameProblem::Build(b) if b == "local"
        ));
    }

    #[test]
    fn rejects_malformed_names() {
        assert!(matches!(
            problem("six-1.17.0.tar.gz"),
            FilenameProblem::NotWheel
        ));
        assert!(matches!(
            problem("six-1.17.0-py3-none-any.WHL"),
            FilenameProblem::NotWheel
        ));
        assert!(matches!(
            problem("six-1.17.0-none-any.whl"),
            FilenameProblem::Parts(3)
        ));
        assert!(matches!(
            problem("my-project-1.0-1-py3-none-any.whl"),
            FilenameProblem::Parts(6)
        ));
        assert!(matches!(
            problem("a-b-c-d-e-f-g-h.whl"),
            FilenameProblem::Parts(7)
        ));
        assert!(matches!(
            problem("sïx-1.0-py3-none-any.whl"),
            FilenameProblem::Name { name, .. } if name == "sïx"
        ));
        assert!(matches!(
            problem("six-one-py3-none-any.whl"),
            FilenameProblem::Version { version, .. } if version == "one"
        ));
        assert!(matches!(
            problem("six-1.0-py3..py2-none-any.whl"),
            FilenameProblem::EmptyTag("python")
        ));
        assert!(matches!(
            problem("six-1.0-py3--any.whl"),
            FilenameProblem::EmptyTag("ABI")
        ));
    }

    #[test]
    fn caps_the_tag_expansion() {
        let set = |prefix: &str| {
            (0..11)
                .map(|i| format!("{prefix}{i}"))
                .collect::<Vec<_>>()
                .join(".")
        };
        let filename = format!("x-1-{}-{}-{}.whl", set("py"), set("a"), set("p"));
        let problem = problem(&filename);
        assert!(matches!(problem, FilenameProblem::TooManyTags(1331)));
        assert!(problem.to_string().contains("1024 allowed"), "{problem}");
    }

    #[test]
    fn the_error_names_the_file_and_the_problem() {
        let err = "six.whl".parse::<WheelFilename>().unwrap_err();
        assert_eq!(err.to_string(), "`six.whl` is not a wheel file name");
        let source = std::error::Error::source(&err).unwrap().to_string();
        assert!(source.contains("0 `-` separators"), "{source}");
        let help = miette::Diagnostic::help(&err).unwrap().to_string();
        assert!(help.contains("PEP 427"), "{help}");
    }

    #[test]
    fn recognises_sdists() {
        for name in [
            "six-1.17.0.tar.gz",
            "Django-1.0.ZIP",
            "foo-1.0.tar.bz2",
            "foo-1.0.tgz",
            "foo-1.0.tar.zst",
        ] {
            assert!(is_sdist(name), "{name}");
        }
        for name in [
            "six-1.17.0-py2.py3-none-any.whl",
            "foo-1.0.egg",
            "foo-1.0.exe",
            ".tar.gz",
            "foo-1.0.gz",
        ] {
            assert!(!is_sdist(name), "{name}");
        }
    }
}
