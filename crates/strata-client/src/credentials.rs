//! Credentials for package indexes behind a login, by host: from
//! `STRATA_PYPI_CREDS` and `~/.netrc` (or `$NETRC`), the two places pip and
//! uv users already keep them. They are attached to requests for their host
//! only, and never written, logged or shown: `Debug` prints the host alone.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum CredentialsError {
    #[error("`STRATA_PYPI_CREDS` has an entry that is not `HOST=USER:PASSWORD` (entry {index})")]
    #[diagnostic(help(
        "write entries such as `pypi.example.org=alice:s3cret`, separated by commas or new lines"
    ))]
    Env { index: usize },
    #[error("cannot read the netrc file `{}`", path.display())]
    #[diagnostic(help("fix its permissions, or point `NETRC` at another file"))]
    Netrc {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// HTTP basic credentials for one host.
#[derive(Clone, PartialEq, Eq)]
pub struct Basic {
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for Basic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Basic(<redacted>)")
    }
}

/// netrc files larger than this are not credentials files.
const MAX_NETRC: u64 = 1 << 20;

/// One `machine` (host `Some`) or `default` (host `None`) block being read.
#[derive(Default)]
struct NetrcEntry {
    host: Option<Option<String>>,
    user: Option<String>,
    password: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Credentials {
    by_host: HashMap<String, Basic>,
    default: Option<Basic>,
}

impl Credentials {
    /// `STRATA_PYPI_CREDS` first, then the netrc file (`$NETRC`, else
    /// `~/.netrc`); a missing netrc file is no error.
    pub fn from_env() -> Result<Credentials, CredentialsError> {
        let mut credentials = Credentials::default();
        if let Some(text) = std::env::var("STRATA_PYPI_CREDS")
            .ok()
            .filter(|v| !v.is_empty())
        {
            credentials.add_env(&text)?;
        }
        let netrc = std::env::var_os("NETRC")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".netrc")));
        if let Some(path) = netrc {
            match read_capped(&path) {
                Ok(text) => credentials.add_netrc(&text),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(CredentialsError::Netrc { path, source }),
            }
        }
        Ok(credentials)
    }

    /// `HOST=USER:PASSWORD` entries, separated by commas or new lines.
    fn add_env(&mut self, text: &str) -> Result<(), CredentialsError> {
        for (index, entry) in text
            .split([',', '\n'])
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .enumerate()
        {
            let parsed = entry.split_once('=').and_then(|(host, login)| {
                let (user, password) = login.split_once(':')?;
                (!host.is_empty() && !user.is_empty()).then(|| {
                    (
                        host.to_ascii_lowercase(),
                        Basic {
                            user: user.to_owned(),
                            password: password.to_owned(),
                        },
                    )
                })
            });
            let (host, basic) = parsed.ok_or(CredentialsError::Env { index: index + 1 })?;
            self.by_host.entry(host).or_insert(basic);
        }
        Ok(())
    }

    /// The netrc format as curl and Python's `netrc` read it: whitespace-
    /// separated tokens `machine HOST login USER password PASS`, `default`,
    /// and `macdef` bodies skipped up to a blank line. Written by hand: the
    /// format is a dozen lines of tokens, and no well-kept crate reads it.
    fn add_netrc(&mut self, text: &str) {
        let mut lines = text.lines();
        let mut entry = NetrcEntry::default();
        while let Some(line) = lines.next() {
            let mut tokens = line.split_whitespace();
            while let Some(token) = tokens.next() {
                match token {
                    "machine" | "default" => {
                        self.add_netrc_entry(std::mem::take(&mut entry));
                        entry.host = Some(match token {
                            "machine" => tokens.next().map(str::to_ascii_lowercase),
                            _ => None,
                        });
                    }
                    "login" => entry.user = tokens.next().map(str::to_owned),
                    "password" => entry.password = tokens.next().map(str::to_owned),
                    "account" => {
                        tokens.next();
                    }
                    "macdef" => {
                        // A macro body runs to the next blank line.
                        for body in lines.by_ref() {
                            if body.trim().is_empty() {
                                break;
                            }
                        }
                        break;
                    }
                    _ => {}
                }
            }
        }
        self.add_netrc_entry(entry);
    }

    /// The first entry for a host wins, as in curl.
    fn add_netrc_entry(&mut self, entry: NetrcEntry) {
        let (Some(host), Some(user)) = (entry.host, entry.user) else {
            return;
        };
        let basic = Basic {
            user,
            password: entry.password.unwrap_or_default(),
        };
        match host {
            Some(host) => {
                self.by_host.entry(host).or_insert(basic);
            }
            None => {
                self.default.get_or_insert(basic);
            }
        }
    }

    /// The credentials for `url`'s host, if any.
    pub fn for_url(&self, url: &str) -> Option<&Basic> {
        let host = host_of(url)?;
        self.by_host.get(&host).or(self.default.as_ref())
    }
}

/// The lower-cased host of an `http(s)://` URL, without userinfo or port.
fn host_of(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next()?,
        None => host.split(':').next()?,
    };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

fn read_capped(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(MAX_NETRC)
        .read_to_string(&mut text)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_env_entries_and_netrc() {
        let mut c = Credentials::default();
        c.add_env("pypi.example.org=alice:s3:cret, other.org=bob:pw")
            .unwrap();
        c.add_netrc(
            "machine pypi.example.org login ignored password x\n\
             macdef init\nmachine fake login no\n\n\
             machine Mirror.Example.COM\n  login carol\n  password p w\n\
             default login anon password guest\n",
        );
        let get = |u: &str| c.for_url(u).map(|b| (b.user.clone(), b.password.clone()));
        assert_eq!(
            get("https://pypi.example.org/simple/six/"),
            Some(("alice".into(), "s3:cret".into()))
        );
        assert_eq!(
            get("http://mirror.example.com:8080/x"),
            Some(("carol".into(), "p".into()))
        );
        assert_eq!(get("https://fake/"), Some(("anon".into(), "guest".into())));
        assert_eq!(
            get("https://user:pw@[::1]:99/"),
            Some(("anon".into(), "guest".into()))
        );
        assert!(format!("{:?}", c).contains("redacted"));
        assert!(!format!("{:?}", c).contains("s3:cret"));
    }

    #[test]
    fn rejects_malformed_env_entries() {
        let mut c = Credentials::default();
        let err = c.add_env("good=a:b,nocolon=alice").unwrap_err();
        assert!(matches!(err, CredentialsError::Env { index: 2 }), "{err}");
    }
}
