//! Credentials for package sources behind a login: Debian mirrors and Python
//! indexes. They come from the places apt, pip and uv users already keep
//! them, in this order (the first entry that matches a URL wins):
//! logins written into the recipe's URLs, `STRATA_APT_CREDS` and
//! `STRATA_PYPI_CREDS`, apt's `/etc/apt/auth.conf` and
//! `/etc/apt/auth.conf.d/*.conf`, and `~/.netrc` (or `$NETRC`).
//!
//! They are attached to requests for their host only, and never written,
//! logged or shown: `Debug` prints no password, and [`split_login`] takes a
//! login out of a URL before the URL is stored anywhere.

use std::path::{Path, PathBuf};

use url::Url;

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum CredentialsError {
    #[error("`{var}` has an entry that is not `HOST=USER:PASSWORD` (entry {index})")]
    #[diagnostic(help(
        "write entries such as `mirror.example.org=alice:s3cret`, separated by commas or new lines"
    ))]
    Env { var: &'static str, index: usize },
    #[error("cannot read the credentials file `{}`", path.display())]
    #[diagnostic(help("fix its permissions, or move it away"))]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// HTTP basic credentials.
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

/// Credentials files larger than this are not credentials files.
const MAX_FILE: u64 = 1 << 20;

/// Which URLs an entry is for.
#[derive(Debug, Clone)]
struct Machine {
    /// `None`: any scheme. apt's entries without a scheme are for https only.
    scheme: Option<String>,
    /// `None`: netrc's `default`, any host.
    host: Option<String>,
    /// `None`: any port.
    port: Option<u16>,
    /// A path prefix; empty for the whole host.
    path: String,
}

impl Machine {
    /// `[scheme://]host[:port][/path]`, as apt's `machine` token and the
    /// `HOST` of `STRATA_*_CREDS` are written.
    fn parse(text: &str, scheme_when_missing: Option<&str>) -> Option<Machine> {
        let (scheme, rest) = match text.split_once("://") {
            Some((scheme, rest)) => (Some(scheme.to_ascii_lowercase()), rest),
            None => (scheme_when_missing.map(str::to_owned), text),
        };
        let rest = rest.split(['?', '#']).next().unwrap_or(rest);
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        let (host, port) = match authority.strip_prefix('[') {
            // An IPv6 address: `[::1]` or `[::1]:8080`.
            Some(v6) => {
                let (host, after) = v6.split_once(']')?;
                (host, after.strip_prefix(':').and_then(|p| p.parse().ok()))
            }
            None => match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port.parse().ok()?)),
                None => (authority, None),
            },
        };
        (!host.is_empty()).then(|| Machine {
            scheme,
            host: Some(host.to_ascii_lowercase()),
            port,
            path: path.trim_end_matches('/').to_owned(),
        })
    }

    fn matches(&self, url: &Url) -> bool {
        // `host_str` keeps an IPv6 address's brackets.
        let host = url
            .host_str()
            .map(|h| h.trim_start_matches('[').trim_end_matches(']'));
        self.scheme.as_deref().is_none_or(|s| s == url.scheme())
            && self.host.as_deref().is_none_or(|h| Some(h) == host)
            && self
                .port
                .is_none_or(|p| Some(p) == url.port_or_known_default())
            && url
                .path()
                .strip_prefix(self.path.as_str())
                .is_some_and(|rest| {
                    rest.is_empty() || rest.starts_with('/') || self.path.is_empty()
                })
    }
}

#[derive(Debug, Clone)]
struct Entry {
    machine: Machine,
    basic: Basic,
}

/// One `machine` (host `Some`) or `default` (host `None`) block being read.
#[derive(Default)]
struct NetrcEntry {
    machine: Option<Option<String>>,
    user: Option<String>,
    password: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Credentials {
    /// In the order they are looked at: the first match wins.
    entries: Vec<Entry>,
}

impl Credentials {
    /// Everything but the recipe's own logins (see [`Credentials::add_login`]):
    /// `STRATA_APT_CREDS`, `STRATA_PYPI_CREDS`, apt's auth files, then the
    /// netrc file (`$NETRC`, else `~/.netrc`). Missing files are no error.
    pub fn from_env() -> Result<Credentials, CredentialsError> {
        let mut credentials = Credentials::default();
        for var in ["STRATA_APT_CREDS", "STRATA_PYPI_CREDS"] {
            if let Some(text) = std::env::var(var).ok().filter(|v| !v.is_empty()) {
                credentials.add_env(var, &text)?;
            }
        }
        credentials.add_apt_auth(Path::new("/etc/apt"))?;
        let netrc = std::env::var_os("NETRC")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".netrc")));
        if let Some(path) = netrc
            && let Some(text) = read_optional(&path)?
        {
            credentials.add_netrc(&text, None);
        }
        Ok(credentials)
    }

    /// A login taken from a URL with [`split_login`], for that URL's scheme,
    /// host, port and path; it comes before every other source, as in apt.
    pub fn add_login(&mut self, url: &str, basic: Basic) {
        if let Some(machine) = Machine::parse(url, None) {
            self.entries.insert(0, Entry { machine, basic });
        }
    }

    /// `HOST=USER:PASSWORD` entries, separated by commas or new lines; `HOST`
    /// may be `[scheme://]host[:port][/path]`.
    fn add_env(&mut self, var: &'static str, text: &str) -> Result<(), CredentialsError> {
        for (index, entry) in text
            .split([',', '\n'])
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .enumerate()
        {
            let parsed = entry.split_once('=').and_then(|(machine, login)| {
                let (user, password) = login.split_once(':')?;
                let machine = Machine::parse(machine, None)?;
                (!user.is_empty()).then(|| Entry {
                    machine,
                    basic: Basic {
                        user: user.to_owned(),
                        password: password.to_owned(),
                    },
                })
            });
            let entry = parsed.ok_or(CredentialsError::Env {
                var,
                index: index + 1,
            })?;
            self.entries.push(entry);
        }
        Ok(())
    }

    /// `auth.conf`, then the `.conf` files of `auth.conf.d` in name order,
    /// as apt reads them. A `machine` without a scheme is for https only
    /// (apt_auth.conf(5)): a login is not sent in clear by accident.
    fn add_apt_auth(&mut self, etc_apt: &Path) -> Result<(), CredentialsError> {
        let mut files = vec![etc_apt.join("auth.conf")];
        let parts = etc_apt.join("auth.conf.d");
        match std::fs::read_dir(&parts) {
            Ok(dir) => {
                let mut names: Vec<PathBuf> = dir
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|e| e == "conf"))
                    .collect();
                names.sort();
                files.extend(names);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(CredentialsError::File {
                    path: parts,
                    source,
                });
            }
        }
        for file in files {
            if let Some(text) = read_optional(&file)? {
                self.add_netrc(&text, Some("https"));
            }
        }
        Ok(())
    }

    /// The netrc format as curl and Python's `netrc` read it (and apt's
    /// auth.conf, which extends `machine` with a scheme, port and path):
    /// whitespace-separated tokens `machine HOST login USER password PASS`,
    /// `default`, and `macdef` bodies skipped up to a blank line. Written by
    /// hand: the format is a dozen lines of tokens, and no well-kept crate
    /// reads it.
    fn add_netrc(&mut self, text: &str, scheme_when_missing: Option<&str>) {
        let mut lines = text.lines();
        let mut entry = NetrcEntry::default();
        while let Some(line) = lines.next() {
            let mut tokens = line.split_whitespace();
            while let Some(token) = tokens.next() {
                match token {
                    "machine" | "default" => {
                        self.add_netrc_entry(std::mem::take(&mut entry), scheme_when_missing);
                        entry.machine = Some(match token {
                            "machine" => tokens.next().map(str::to_owned),
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
        self.add_netrc_entry(entry, scheme_when_missing);
    }

    fn add_netrc_entry(&mut self, entry: NetrcEntry, scheme_when_missing: Option<&str>) {
        let (Some(machine), Some(user)) = (entry.machine, entry.user) else {
            return;
        };
        let machine = match machine {
            Some(text) => match Machine::parse(&text, scheme_when_missing) {
                Some(machine) => machine,
                None => return,
            },
            None => Machine {
                scheme: scheme_when_missing.map(str::to_owned),
                host: None,
                port: None,
                path: String::new(),
            },
        };
        let basic = Basic {
            user,
            password: entry.password.unwrap_or_default(),
        };
        self.entries.push(Entry { machine, basic });
    }

    /// The credentials for `url`, if any.
    pub fn for_url(&self, url: &str) -> Option<&Basic> {
        let url = Url::parse(url).ok()?;
        // A host-specific entry beats netrc's `default`, wherever it stands.
        let mut matching = self.entries.iter().filter(|e| e.machine.matches(&url));
        let first = matching.next()?;
        if first.machine.host.is_some() {
            return Some(&first.basic);
        }
        matching
            .find(|e| e.machine.host.is_some())
            .map_or(Some(&first.basic), |e| Some(&e.basic))
    }
}

/// `url` without the `user:password@` it may carry, and that login (its
/// parts percent-decoded, as apt reads them). Every URL a recipe or lock
/// holds goes through here before it is stored, so a password never reaches
/// a lock, an SBOM, a log or an error message.
pub fn split_login(url: &str) -> (String, Option<Basic>) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return (url.to_owned(), None);
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return (url.to_owned(), None);
    };
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    let login = (!user.is_empty()).then(|| Basic {
        user: decode(user),
        password: decode(password),
    });
    (format!("{scheme}://{host}{tail}"), login)
}

/// The file's text, `None` when it does not exist; read up to [`MAX_FILE`].
fn read_optional(path: &Path) -> Result<Option<String>, CredentialsError> {
    use std::io::Read;
    let mut text = String::new();
    let read = std::fs::File::open(path).and_then(|f| f.take(MAX_FILE).read_to_string(&mut text));
    match read {
        Ok(_) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CredentialsError::File {
            path: path.to_owned(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(c: &Credentials, url: &str) -> Option<(String, String)> {
        c.for_url(url).map(|b| (b.user.clone(), b.password.clone()))
    }

    fn pair(user: &str, password: &str) -> Option<(String, String)> {
        Some((user.to_owned(), password.to_owned()))
    }

    #[test]
    fn reads_env_entries_and_netrc() {
        let mut c = Credentials::default();
        c.add_env(
            "STRATA_PYPI_CREDS",
            "pypi.example.org=alice:s3:cret, other.org=bob:pw",
        )
        .unwrap();
        c.add_netrc(
            "machine pypi.example.org login ignored password x\n\
             macdef init\nmachine fake login no\n\n\
             default login anon password guest\n\
             machine Mirror.Example.COM\n  login carol\n  password p w\n",
            None,
        );
        assert_eq!(
            get(&c, "https://pypi.example.org/simple/six/"),
            pair("alice", "s3:cret")
        );
        // A host's entry beats `default` even when it comes later.
        assert_eq!(
            get(&c, "http://mirror.example.com:8080/x"),
            pair("carol", "p")
        );
        assert_eq!(get(&c, "https://fake/"), pair("anon", "guest"));
        assert_eq!(get(&c, "https://[::1]:99/"), pair("anon", "guest"));
        assert!(format!("{c:?}").contains("redacted"));
        assert!(!format!("{c:?}").contains("s3:cret"));
    }

    #[test]
    fn rejects_malformed_env_entries() {
        let mut c = Credentials::default();
        let err = c
            .add_env("STRATA_APT_CREDS", "good=a:b,nocolon=alice")
            .unwrap_err();
        assert!(
            matches!(
                err,
                CredentialsError::Env {
                    var: "STRATA_APT_CREDS",
                    index: 2
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("STRATA_APT_CREDS"), "{err}");
    }

    #[test]
    fn apt_auth_files_match_scheme_port_and_path_as_apt_does() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("auth.conf.d")).unwrap();
        std::fs::write(
            dir.path().join("auth.conf"),
            "machine mirror.example.org/debian-private login team password t1\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("auth.conf.d/b.conf"),
            "machine http://plain.example.org:8080 login p password p2\n\
             machine [fd00::1]:81/repo login six password v6\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("auth.conf.d/a.conf"),
            "machine mirror.example.org login all password t0\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("auth.conf.d/ignored.txt"),
            "machine x login y\n",
        )
        .unwrap();
        let mut c = Credentials::default();
        c.add_apt_auth(dir.path()).unwrap();
        assert_eq!(
            get(&c, "https://mirror.example.org/debian-private/dists/x"),
            pair("team", "t1")
        );
        // A path prefix matches whole segments only; auth.conf.d comes next.
        assert_eq!(
            get(&c, "https://mirror.example.org/debian-private2/x"),
            pair("all", "t0")
        );
        // No scheme in the machine: https only, never in clear.
        assert_eq!(get(&c, "http://mirror.example.org/debian-private/x"), None);
        assert_eq!(
            get(&c, "http://plain.example.org:8080/debian"),
            pair("p", "p2")
        );
        assert_eq!(get(&c, "http://plain.example.org:8081/debian"), None);
        assert_eq!(get(&c, "https://[fd00::1]:81/repo/a"), pair("six", "v6"));
        assert_eq!(get(&c, "https://x/"), None);
    }

    #[test]
    fn a_login_in_a_url_is_taken_out_and_comes_first() {
        let (url, login) = split_login("http://ali%40ce:p%3Ass@127.0.0.1:8080/debian?x=1");
        assert_eq!(url, "http://127.0.0.1:8080/debian?x=1");
        let login = login.unwrap();
        assert_eq!(
            (login.user.as_str(), login.password.as_str()),
            ("ali@ce", "p:ss")
        );
        // An `@` after the host is part of the path, not a login.
        assert_eq!(
            split_login("https://h.org/a@b"),
            ("https://h.org/a@b".to_owned(), None)
        );
        assert_eq!(split_login("https://h.org").1, None);

        let mut c = Credentials::default();
        c.add_env("STRATA_APT_CREDS", "127.0.0.1=env:e").unwrap();
        c.add_login(&url, login);
        assert_eq!(
            get(&c, "http://127.0.0.1:8080/debian/pool/a.deb"),
            pair("ali@ce", "p:ss")
        );
        assert_eq!(get(&c, "http://127.0.0.1:8080/other"), pair("env", "e"));
    }
}
