//! Debian version numbers and their ordering (`[epoch:]upstream[-revision]`),
//! exactly as dpkg compares them (deb-version(7)).

use std::cmp::Ordering;
use std::fmt;

#[derive(Debug, Clone)]
pub struct Version {
    text: String,
    epoch: u64,
    /// Byte ranges of the upstream part and the revision inside `text`.
    upstream: (usize, usize),
    revision: (usize, usize),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{0}` is not a Debian version")]
pub struct ParseVersionError(pub String);

impl Version {
    pub fn parse(text: &str) -> Result<Version, ParseVersionError> {
        let err = || ParseVersionError(text.to_owned());
        let trimmed = text.trim();
        if trimmed.is_empty() || trimmed.contains(char::is_whitespace) {
            return Err(err());
        }
        let (epoch, start) = match trimmed.find(':') {
            Some(i) => (trimmed[..i].parse().map_err(|_| err())?, i + 1),
            None => (0, 0),
        };
        let (upstream_end, revision) = match trimmed[start..].rfind('-') {
            Some(i) => (start + i, (start + i + 1, trimmed.len())),
            None => (trimmed.len(), (trimmed.len(), trimmed.len())),
        };
        if upstream_end == start || !trimmed.as_bytes()[start].is_ascii_digit() {
            return Err(err());
        }
        Ok(Version {
            text: trimmed.to_owned(),
            epoch,
            upstream: (start, upstream_end),
            revision,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    fn upstream(&self) -> &str {
        &self.text[self.upstream.0..self.upstream.1]
    }

    fn revision(&self) -> &str {
        &self.text[self.revision.0..self.revision.1]
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| compare_part(self.upstream(), other.upstream()))
            .then_with(|| compare_part(self.revision(), other.revision()))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// dpkg's character order: `~` before everything (even the end), then the
/// end, then letters, then everything else.
fn order(c: Option<u8>) -> i32 {
    match c {
        Some(b'~') => -1,
        None => 0,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(c) => i32::from(c) + 256,
    }
}

fn compare_part(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        // The non-digit prefix, character by character.
        while (i < a.len() && !a[i].is_ascii_digit()) || (j < b.len() && !b[j].is_ascii_digit()) {
            let ac = order(a.get(i).copied().filter(|c| !c.is_ascii_digit()));
            let bc = order(b.get(j).copied().filter(|c| !c.is_ascii_digit()));
            if ac != bc {
                return ac.cmp(&bc);
            }
            if i < a.len() && !a[i].is_ascii_digit() {
                i += 1;
            }
            if j < b.len() && !b[j].is_ascii_digit() {
                j += 1;
            }
        }
        // Then the numeric run, compared as a number.
        while i < a.len() && a[i] == b'0' {
            i += 1;
        }
        while j < b.len() && b[j] == b'0' {
            j += 1;
        }
        let start = (i, j);
        while i < a.len() && a[i].is_ascii_digit() {
            i += 1;
        }
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        let (na, nb) = (&a[start.0..i], &b[start.1..j]);
        let by_number = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
        if by_number != Ordering::Equal {
            return by_number;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn orders_like_dpkg() {
        let ascending = [
            "0.9", "1.0~rc1", "1.0", "1.0-1", "1.0-1+b1", "1.0-1.1", "1.0a", "1.0+dfsg", "1.00.1",
            "1.1", "1.10", "2:0.1",
        ];
        for pair in ascending.windows(2) {
            assert!(v(pair[0]) < v(pair[1]), "{} < {}", pair[0], pair[1]);
        }
        assert_eq!(v("1.0").cmp(&v("1.0-0")), Ordering::Equal);
        assert_eq!(
            v("7.88.1-10+deb12u14").cmp(&v("7.88.1-10+deb12u5")),
            Ordering::Greater
        );
        assert_eq!(v("1:1.2").cmp(&v("1.3")), Ordering::Greater);
        assert_eq!(v("1.0~~").cmp(&v("1.0~")), Ordering::Less);
        assert_eq!(v("01.0").cmp(&v("1.0")), Ordering::Equal);
    }

    #[test]
    fn rejects_garbage() {
        assert!(Version::parse("").is_err());
        assert!(Version::parse("a1.0").is_err());
        assert!(Version::parse("x:1").is_err());
        assert!(Version::parse("1 2").is_err());
    }
}
