//! Paths inside the image.

use std::fmt;

/// A normalised absolute path inside the image, stored without its leading `/`
/// (the form tar entries use); the root is the empty path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ImagePath(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ImagePathError {
    #[error("image paths are absolute: `{0}` must start with `/`")]
    Relative(String),
    #[error("`{0}` contains `..`: image paths must not climb out of their folder")]
    DotDot(String),
    #[error("`{0}` contains a NUL byte")]
    Nul(String),
    #[error("`{start}…` is {len} bytes long: image paths are at most {MAX_PATH} bytes (PATH_MAX)")]
    TooLong { start: String, len: usize },
}

/// Linux's `PATH_MAX`: no program in the image could open a longer path, and
/// every walk over a path's ancestors stays small.
pub const MAX_PATH: usize = 4096;

impl ImagePath {
    pub fn root() -> Self {
        ImagePath(String::new())
    }

    pub fn parse(s: &str) -> Result<Self, ImagePathError> {
        let rest = s
            .strip_prefix('/')
            .ok_or_else(|| ImagePathError::Relative(s.to_owned()))?;
        Self::from_relative(rest).map_err(|e| match e {
            ImagePathError::DotDot(_) => ImagePathError::DotDot(s.to_owned()),
            other => other,
        })
    }

    /// Normalises a path relative to the root, as tar entries write them
    /// (`./usr/bin/`, `usr/bin`).
    pub fn from_relative(s: &str) -> Result<Self, ImagePathError> {
        if s.len() > MAX_PATH {
            let end = (0..=64).rev().find(|i| s.is_char_boundary(*i)).unwrap_or(0);
            return Err(ImagePathError::TooLong {
                start: s[..end].to_owned(),
                len: s.len(),
            });
        }
        if s.contains('\0') {
            return Err(ImagePathError::Nul(s.to_owned()));
        }
        let mut parts = Vec::new();
        for part in s.split('/') {
            match part {
                "" | "." => {}
                ".." => return Err(ImagePathError::DotDot(s.to_owned())),
                part => parts.push(part),
            }
        }
        Ok(ImagePath(parts.join("/")))
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The path without its leading `/`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn join(&self, name: &str) -> ImagePath {
        if self.0.is_empty() {
            ImagePath(name.to_owned())
        } else {
            ImagePath(format!("{}/{name}", self.0))
        }
    }

    pub fn parent(&self) -> Option<ImagePath> {
        if self.0.is_empty() {
            return None;
        }
        Some(match self.0.rfind('/') {
            Some(i) => ImagePath(self.0[..i].to_owned()),
            None => ImagePath::root(),
        })
    }

    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or("")
    }

    /// True when `self` is `other` or lies below it.
    pub fn starts_with(&self, other: &ImagePath) -> bool {
        other.0.is_empty()
            || self.0 == other.0
            || (self.0.starts_with(&other.0) && self.0.as_bytes()[other.0.len()] == b'/')
    }

    /// Every proper ancestor, from the top down, without the root.
    pub fn ancestors(&self) -> impl Iterator<Item = ImagePath> + '_ {
        self.0
            .match_indices('/')
            .map(|(i, _)| ImagePath(self.0[..i].to_owned()))
    }

    pub fn components(&self) -> impl DoubleEndedIterator<Item = &str> {
        self.0.split('/').filter(|c| !c.is_empty())
    }
}

impl fmt::Display for ImagePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/{}", self.0)
    }
}

/// The entries of a path-keyed map below `dir` (not `dir` itself), in path
/// order. Keys sharing `dir`'s text as a prefix are contiguous in the map,
/// but `usr/lib-x` sorts between `usr/lib` and `usr/lib/y`: the range runs
/// over the text prefix and keeps the path's descendants.
pub fn below<'a, 'd, V>(
    map: &'a std::collections::BTreeMap<ImagePath, V>,
    dir: &'d ImagePath,
) -> impl Iterator<Item = (&'a ImagePath, &'a V)> + use<'a, 'd, V> {
    map.range(dir.clone()..)
        .take_while(move |(p, _)| p.as_str().starts_with(dir.as_str()))
        .filter(move |(p, _)| *p != dir && p.starts_with(dir))
}

#[cfg(test)]
mod tests {

    #[test]
    fn paths_longer_than_path_max_are_refused() {
        let deep = "a/".repeat(MAX_PATH);
        let err = ImagePath::from_relative(&deep).unwrap_err();
        assert!(matches!(err, ImagePathError::TooLong { len, .. } if len == 2 * MAX_PATH));
        assert!(err.to_string().len() < 200, "{err}");
        assert!(ImagePath::from_relative(&"b".repeat(MAX_PATH)).is_ok());
    }

    use super::*;

    #[test]
    fn normalises() {
        let p = ImagePath::parse("/opt//app/./bin/").unwrap();
        assert_eq!(p.as_str(), "opt/app/bin");
        assert_eq!(p.to_string(), "/opt/app/bin");
        assert_eq!(p.parent().unwrap().as_str(), "opt/app");
        assert_eq!(
            p.ancestors().map(|a| a.0).collect::<Vec<_>>(),
            ["opt", "opt/app"]
        );
        assert!(p.starts_with(&ImagePath::parse("/opt").unwrap()));
        assert!(!p.starts_with(&ImagePath::parse("/op").unwrap()));
        assert!(ImagePath::parse("/").unwrap().is_root());
    }

    #[test]
    fn rejects() {
        assert!(matches!(
            ImagePath::parse("opt"),
            Err(ImagePathError::Relative(_))
        ));
        assert!(matches!(
            ImagePath::parse("/a/../b"),
            Err(ImagePathError::DotDot(_))
        ));
    }
}
