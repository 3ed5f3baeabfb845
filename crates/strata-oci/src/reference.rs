//! Image references as Docker and skopeo read them: `[REGISTRY/]REPO[:TAG][@DIGEST]`.
//!
//! Short names expand the way Docker expands them, so that a recipe means the
//! same image to strata as to `docker pull`: `python` is
//! `docker.io/library/python`, and `user/app` is `docker.io/user/app`.

use std::fmt;
use std::str::FromStr;

use crate::digest::Digest;

/// Docker Hub's name in references, and the host its API answers on.
const DOCKER_HUB: &str = "docker.io";
const DOCKER_HUB_API: &str = "registry-1.docker.io";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("`{0}` is not an image reference")]
    Empty(String),
    #[error(
        "`{reference}`: the repository `{repository}` may only hold lowercase letters, digits, `.`, `_`, `-` and `/`"
    )]
    Repository {
        reference: String,
        repository: String,
    },
    #[error("`{reference}`: {source} ({TAG_RULE})")]
    Tag {
        reference: String,
        #[source]
        source: TagError,
    },
    #[error("`{reference}`: {message}")]
    Digest { reference: String, message: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// As written in references: `docker.io`, `ghcr.io`, `127.0.0.1:5000`.
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

impl Reference {
    pub fn parse(text: &str) -> Result<Reference, ReferenceError> {
        let (name, digest) = match text.split_once('@') {
            Some((name, digest)) => {
                let digest = digest
                    .parse()
                    .map_err(
                        |e: crate::digest::ParseDigestError| ReferenceError::Digest {
                            reference: text.to_owned(),
                            message: e.to_string(),
                        },
                    )?;
                (name, Some(digest))
            }
            None => (text, None),
        };
        // A `:` after the last `/` starts the tag; one before it is a port.
        let (name, tag) = match name.rsplit_once(':') {
            Some((n, t)) if !t.contains('/') => (n, Some(t.to_owned())),
            _ => (name, None),
        };
        if name.is_empty() {
            return Err(ReferenceError::Empty(text.to_owned()));
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_owned(), rest.to_owned())
            }
            _ => (DOCKER_HUB.to_owned(), name.to_owned()),
        };
        let registry = match registry.as_str() {
            "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_owned(),
            _ => registry,
        };
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        if !valid_repository(&repository) {
            return Err(ReferenceError::Repository {
                reference: text.to_owned(),
                repository,
            });
        }
        if let Some(tag) = &tag {
            tag.parse::<Tag>().map_err(|source| ReferenceError::Tag {
                reference: text.to_owned(),
                source,
            })?;
        }
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// The host (and port) the registry API answers on.
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// `REGISTRY/REPO`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The same repository, another tag and no digest.
    pub fn with_tag(&self, tag: &str) -> Reference {
        Reference {
            tag: Some(tag.to_owned()),
            digest: None,
            ..self.clone()
        }
    }

    /// What to ask the registry for: the digest when pinned, else the tag.
    pub fn manifest_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_owned(),
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// A tag as the distribution spec allows it: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tag(String);

/// The tag rule in words, for help lines.
pub const TAG_RULE: &str = "tags use letters, digits, `_`, `.` and `-` (no `+`), up to 128 characters, not starting with `.` or `-`";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a valid tag")]
pub struct TagError(pub String);

impl miette::Diagnostic for TagError {
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(TAG_RULE))
    }
}

impl FromStr for Tag {
    type Err = TagError;

    fn from_str(tag: &str) -> Result<Tag, TagError> {
        let bytes = tag.as_bytes();
        let valid = !bytes.is_empty()
            && bytes.len() <= 128
            && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(b));
        if valid {
            Ok(Tag(tag.to_owned()))
        } else {
            Err(TagError(tag.to_owned()))
        }
    }
}

impl Tag {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Path components of lowercase alphanumerics joined by `.`, `_`, `__` or `-`.
fn valid_repository(repository: &str) -> bool {
    repository.split('/').all(|part| {
        let bytes = part.as_bytes();
        !bytes.is_empty()
            && bytes[0].is_ascii_alphanumeric()
            && bytes[bytes.len() - 1].is_ascii_alphanumeric()
            && bytes
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(b))
    })
}

/// Loopback registries may speak plain HTTP without `--insecure`, as Docker allows.
pub fn is_loopback(host: &str) -> bool {
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    name == "localhost"
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn short_names_expand_as_docker_does() {
        let r = Reference::parse(&format!("python@sha256:{HEX}")).unwrap();
        assert_eq!(r.registry, "docker.io");
        assert_eq!(r.repository, "library/python");
        assert_eq!(r.api_host(), "registry-1.docker.io");
        assert_eq!(r.tag, None);
        assert!(r.digest.is_some());
        let r = Reference::parse("user/app:1.0").unwrap();
        assert_eq!(r.name(), "docker.io/user/app");
        assert_eq!(r.tag.as_deref(), Some("1.0"));
    }

    #[test]
    fn registries_with_ports_and_tags() {
        let r = Reference::parse(&format!("127.0.0.1:5000/a/b:3.11@sha256:{HEX}")).unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "a/b");
        assert_eq!(r.tag.as_deref(), Some("3.11"));
        assert_eq!(
            r.to_string(),
            format!("127.0.0.1:5000/a/b:3.11@sha256:{HEX}")
        );
        let r = Reference::parse("localhost/x").unwrap();
        assert_eq!((r.registry.as_str(), r.tag.as_deref()), ("localhost", None));
        assert_eq!(r.manifest_reference(), "latest");
    }

    #[test]
    fn bad_references_say_why() {
        assert!(matches!(
            Reference::parse("ghcr.io/Org/App"),
            Err(ReferenceError::Repository { .. })
        ));
        assert!(matches!(
            Reference::parse("ghcr.io/a@sha256:abc"),
            Err(ReferenceError::Digest { .. })
        ));
        assert!(matches!(
            Reference::parse("a:-bad"),
            Err(ReferenceError::Tag { .. })
        ));
        assert!(Reference::parse("").is_err());
    }

    #[test]
    fn tags() {
        for good in ["latest", "3.12", "_x", "a-b.c_d", &"a".repeat(128)] {
            assert_eq!(good.parse::<Tag>().unwrap().as_str(), good);
        }
        for bad in ["", ".x", "-x", "1.0+build", &"a".repeat(129)] {
            assert_eq!(bad.parse::<Tag>(), Err(TagError(bad.to_owned())));
        }
    }

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback("127.0.0.1:5000"));
        assert!(is_loopback("localhost"));
        assert!(is_loopback("[::1]:80"));
        assert!(!is_loopback("ghcr.io"));
        assert!(!is_loopback("10.0.0.1:5000"));
    }
}
