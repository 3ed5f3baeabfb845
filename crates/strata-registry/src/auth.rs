//! Credentials and challenges: where a registry's user and password come
//! from (the same files and helpers podman, skopeo and docker read), how a
//! `WWW-Authenticate` challenge is answered, and what `strata login` writes.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::{BoxError, RegistryError};

/// A user and secret, and where they were found (for error messages).
#[derive(Debug, Clone)]
pub struct Credential {
    pub username: String,
    pub secret: String,
    pub source: String,
}

impl Credential {
    /// `user:password`, as `--creds` takes it, from `source` (the flag or
    /// the variable, as errors name it).
    pub fn parse(text: &str, source: &str) -> Option<Credential> {
        let (username, secret) = text.split_once(':')?;
        (!username.is_empty()).then(|| Credential {
            username: username.to_owned(),
            secret: secret.to_owned(),
            source: source.to_owned(),
        })
    }

    pub fn basic_header(&self) -> String {
        format!(
            "Basic {}",
            BASE64.encode(format!("{}:{}", self.username, self.secret))
        )
    }
}

/// The auth files to search, in the order containers-auth.json(5) gives,
/// then Docker's.
pub fn auth_files() -> Vec<PathBuf> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let mut files = Vec::new();
    if let Some(file) = var("REGISTRY_AUTH_FILE") {
        files.push(file);
    }
    if let Some(dir) = var("XDG_RUNTIME_DIR") {
        files.push(dir.join("containers/auth.json"));
    }
    if let Some(dir) = var("XDG_CONFIG_HOME").or_else(|| var("HOME").map(|h| h.join(".config"))) {
        files.push(dir.join("containers/auth.json"));
    }
    if let Some(dir) = var("DOCKER_CONFIG").or_else(|| var("HOME").map(|h| h.join(".docker"))) {
        files.push(dir.join("config.json"));
    }
    files
}

/// The file `strata login` writes: the first of the containers locations.
pub fn login_file() -> Option<PathBuf> {
    auth_files().into_iter().next()
}

/// Credentials for `registry` (and `repository`, for repository-scoped
/// entries), from the first auth file that has any.
pub fn lookup(registry: &str, repository: &str) -> Result<Option<Credential>, RegistryError> {
    for file in auth_files() {
        if let Some(found) = lookup_in(&file, registry, repository)? {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

fn read_config(file: &Path) -> Result<Option<serde_json::Value>, RegistryError> {
    let bytes = match std::fs::read(file) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(RegistryError::AuthFile {
                path: file.to_owned(),
                source: e.into(),
            });
        }
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| RegistryError::AuthFile {
            path: file.to_owned(),
            source: e.into(),
        })
}

fn lookup_in(
    file: &Path,
    registry: &str,
    repository: &str,
) -> Result<Option<Credential>, RegistryError> {
    let Some(config) = read_config(file)? else {
        return Ok(None);
    };
    if let Some(helper) = config["credHelpers"][registry].as_str() {
        return helper_get(helper, registry).map(Some);
    }
    // The most specific key wins: `host/ns/repo`, then `host/ns`, then `host`.
    let full = format!("{registry}/{repository}");
    let mut best: Option<(usize, &serde_json::Value)> = None;
    if let Some(auths) = config["auths"].as_object() {
        for (key, entry) in auths {
            let key = normalize_key(key);
            let matches = full == key || full.starts_with(&format!("{key}/"));
            if matches && best.is_none_or(|(len, _)| key.len() > len) {
                best = Some((key.len(), entry));
            }
        }
    }
    if let Some((_, entry)) = best
        && let Some(encoded) = entry["auth"].as_str().filter(|a| !a.is_empty())
    {
        let decoded = BASE64
            .decode(encoded)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.split_once(':').map(|(u, p)| (u.to_owned(), p.to_owned())))
            .ok_or_else(|| RegistryError::AuthFile {
                path: file.to_owned(),
                source: format!("the `auth` of `{registry}` is not base64 of `user:password`")
                    .into(),
            })?;
        return Ok(Some(Credential {
            username: decoded.0,
            secret: decoded.1,
            source: format!("`{}`", file.display()),
        }));
    }
    if let Some(helper) = config["credsStore"].as_str().filter(|h| !h.is_empty()) {
        return match helper_get(helper, registry) {
            Ok(found) => Ok(Some(found)),
            // A store that knows nothing of this registry is not an error.
            Err(RegistryError::Helper { .. }) => Ok(None),
            Err(e) => Err(e),
        };
    }
    Ok(None)
}

/// Auth-file keys may carry a scheme and Docker Hub's legacy `/v1/` path.
fn normalize_key(key: &str) -> String {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let key = key.trim_end_matches('/');
    let key = key.strip_suffix("/v1").unwrap_or(key);
    match key {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".to_owned(),
        other => other.to_owned(),
    }
}

/// Runs `docker-credential-HELPER get`, as the docker CLI does.
fn helper_get(helper: &str, registry: &str) -> Result<Credential, RegistryError> {
    let program = format!("docker-credential-{helper}");
    let fail = |source: BoxError| RegistryError::Helper {
        helper: program.clone(),
        source,
    };
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(e.into()))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(registry.as_bytes())
            .map_err(|e| fail(e.into()))?;
    }
    let out = child.wait_with_output().map_err(|e| fail(e.into()))?;
    if !out.status.success() {
        return Err(fail(
            String::from_utf8_lossy(if out.stdout.is_empty() {
                &out.stderr
            } else {
                &out.stdout
            })
            .trim()
            .into(),
        ));
    }
    let answer: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| fail(e.into()))?;
    match (answer["Username"].as_str(), answer["Secret"].as_str()) {
        (Some(username), Some(secret)) => Ok(Credential {
            username: username.to_owned(),
            secret: secret.to_owned(),
            source: format!("credential helper `{program}`"),
        }),
        _ => Err(fail("the answer has no Username and Secret".into())),
    }
}

/// Adds (or replaces) `registry`'s entry in an auth file, keeping the rest,
/// readable by its owner only. Missing folders are made private (0700), as
/// podman makes them; a symlinked file is written through, so the link (to
/// a secrets mount, a dotfiles checkout) stays a link.
pub fn save(file: &Path, registry: &str, credential: &Credential) -> Result<(), RegistryError> {
    let fail = |source: BoxError| RegistryError::SaveAuthFile {
        path: file.to_owned(),
        source,
    };
    let target = follow_links(file).map_err(|e| fail(e.into()))?;
    let file = target.as_path();
    let mut config = read_config(file)?.unwrap_or_else(|| serde_json::json!({}));
    let Some(object) = config.as_object_mut() else {
        return Err(fail("it is not a JSON object".into()));
    };
    let auths = object
        .entry("auths")
        .or_insert_with(|| serde_json::json!({}));
    let Some(auths) = auths.as_object_mut() else {
        return Err(fail("its `auths` is not a JSON object".into()));
    };
    auths.insert(
        registry.to_owned(),
        serde_json::json!({
            "auth": BASE64.encode(format!("{}:{}", credential.username, credential.secret))
        }),
    );
    let mut text = serde_json::to_vec_pretty(&config).map_err(|e| fail(e.into()))?;
    text.push(b'\n');
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| fail(e.into()))?;
    }
    strata_oci::atomic::write_file_mode(file, 0o600, |f| (&*f).write_all(&text))
        .map_err(|e| fail(e.into()))
}

/// The file `path` names once its symlinks are followed (the last one may
/// dangle: it names the file to create); a loop is an error.
fn follow_links(path: &Path) -> std::io::Result<std::path::PathBuf> {
    let mut current = path.to_owned();
    // As many hops as the kernel follows (MAXSYMLINKS).
    for _ in 0..40 {
        match std::fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let target = std::fs::read_link(&current)?;
                current = match current.parent() {
                    Some(dir) if target.is_relative() => dir.join(target),
                    _ => target,
                };
            }
            Ok(_) => return Ok(current),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(current),
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other(format!(
        "`{}` is a loop of symbolic links",
        path.display()
    )))
}

/// A parsed `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// `basic` or `bearer`, lowercased.
    pub scheme: String,
    pub params: BTreeMap<String, String>,
}

impl Challenge {
    /// Parses `Scheme key="value", key=value`. Values may hold commas inside
    /// quotes (scopes do), so this is a small scanner rather than a split.
    pub fn parse(header: &str) -> Option<Challenge> {
        let header = header.trim();
        let (scheme, mut rest) = header
            .split_once(char::is_whitespace)
            .unwrap_or((header, ""));
        if scheme.is_empty() {
            return None;
        }
        let mut params = BTreeMap::new();
        loop {
            rest = rest.trim_start_matches([' ', ',', '\t']);
            let Some((key, after)) = rest.split_once('=') else {
                break;
            };
            let (value, after) = if let Some(quoted) = after.strip_prefix('"') {
                let mut value = String::new();
                let mut chars = quoted.char_indices();
                let mut end = quoted.len();
                while let Some((i, c)) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some((_, escaped)) = chars.next() {
                                value.push(escaped);
                            }
                        }
                        '"' => {
                            end = i + 1;
                            break;
                        }
                        c => value.push(c),
                    }
                }
                (value, &quoted[end..])
            } else {
                let end = after.find(',').unwrap_or(after.len());
                (after[..end].trim().to_owned(), &after[end..])
            };
            params.insert(key.trim().to_ascii_lowercase(), value);
            rest = after;
        }
        Some(Challenge {
            scheme: scheme.to_ascii_lowercase(),
            params,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenges_with_commas_in_quotes() {
        let c = Challenge::parse(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull,push""#,
        )
        .unwrap();
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.params["realm"], "https://auth.docker.io/token");
        assert_eq!(c.params["service"], "registry.docker.io");
        assert_eq!(c.params["scope"], "repository:a/b:pull,push");
        let c = Challenge::parse(r#"Basic realm="strata test""#).unwrap();
        assert_eq!(c.scheme, "basic");
        assert_eq!(c.params["realm"], "strata test");
        let c = Challenge::parse("Bearer realm=https://x/token, service=x").unwrap();
        assert_eq!(c.params["realm"], "https://x/token");
        assert_eq!(c.params["service"], "x");
    }

    #[test]
    fn auth_file_entries_most_specific_first() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("auth.json");
        let enc = |s: &str| BASE64.encode(s);
        std::fs::write(
            &file,
            serde_json::json!({"auths": {
                "https://index.docker.io/v1/": {"auth": enc("hub:1")},
                "r.example": {"auth": enc("all:2")},
                "r.example/team": {"auth": enc("team:3")},
            }})
            .to_string(),
        )
        .unwrap();
        let get = |reg, repo| lookup_in(&file, reg, repo).unwrap().map(|c| c.username);
        assert_eq!(get("docker.io", "library/python").as_deref(), Some("hub"));
        assert_eq!(get("r.example", "team/app").as_deref(), Some("team"));
        assert_eq!(get("r.example", "other/app").as_deref(), Some("all"));
        assert_eq!(get("r.example", "teamster/app").as_deref(), Some("all"));
        assert_eq!(get("q.example", "x"), None);
    }

    #[test]
    fn save_keeps_other_entries_and_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("containers/auth.json");
        let cred = |u: &str| Credential {
            username: u.into(),
            secret: "pw".into(),
            source: String::new(),
        };
        save(&file, "a.example", &cred("a")).unwrap();
        save(&file, "b.example", &cred("b")).unwrap();
        assert_eq!(
            lookup_in(&file, "a.example", "x")
                .unwrap()
                .unwrap()
                .username,
            "a"
        );
        assert_eq!(
            lookup_in(&file, "b.example", "x").unwrap().unwrap().secret,
            "pw"
        );
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let folder = std::fs::metadata(dir.path().join("containers"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(folder & 0o777, 0o700, "folders holding secrets are private");
    }

    #[test]
    fn save_writes_through_a_symlinked_file() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("secrets/auth.json");
        std::fs::create_dir_all(real.parent().unwrap()).unwrap();
        std::fs::write(
            &real,
            b"{\"auths\": {\"old.example\": {\"auth\": \"eDp5\"}}}",
        )
        .unwrap();
        let link = dir.path().join("auth.json");
        std::os::unix::fs::symlink("secrets/auth.json", &link).unwrap();
        let cred = Credential {
            username: "u".into(),
            secret: "pw".into(),
            source: String::new(),
        };
        save(&link, "new.example", &cred).unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(
            lookup_in(&real, "new.example", "x")
                .unwrap()
                .unwrap()
                .username,
            "u"
        );
        assert_eq!(
            lookup_in(&real, "old.example", "x")
                .unwrap()
                .unwrap()
                .username,
            "x"
        );

        // A dangling link names the file to create; a loop is refused.
        let dangling = dir.path().join("dangling.json");
        std::os::unix::fs::symlink("made/here.json", &dangling).unwrap();
        save(&dangling, "new.example", &cred).unwrap();
        assert!(dir.path().join("made/here.json").is_file());
        let a = dir.path().join("a.json");
        std::os::unix::fs::symlink("b.json", &a).unwrap();
        std::os::unix::fs::symlink("a.json", dir.path().join("b.json")).unwrap();
        let err = save(&a, "new.example", &cred).unwrap_err();
        assert!(format!("{:?}", err).contains("loop"), "{err:?}");
    }
}
