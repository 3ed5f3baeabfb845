//! A client for the OCI distribution API: finding a registry's endpoint,
//! authenticating (anonymous, basic, bearer tokens), and the blob and
//! manifest requests that pulling bases and pushing images need.
//!
//! Every request is retried with backoff on connection errors, 5xx and 429;
//! every byte pulled is checked against its digest before anything keeps it.

pub mod auth;
mod repository;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub use repository::{BlobOutcome, Payload, Repository};
pub use strata_client::body::Timeouts;

use auth::Credential;
use strata_cache::CacheError;
use strata_client::body::{Body, BodyError};
use strata_client::retry::tries_note;
use strata_oci::digest::Digest;
use strata_oci::reference::Reference;

/// A cause that is either another error or, where there is none, a reason in
/// words; either way it prints as the next line of the chain.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum RegistryError {
    #[error("the registry `{registry}` did not mount blob {digest} from `{from}`")]
    #[diagnostic(help(
        "the blob is only in `{from}`: the registry may not allow mounts between these repositories; build with an output (`-o`) so that strata downloads and uploads it"
    ))]
    NotMounted {
        registry: String,
        digest: Digest,
        from: String,
    },
    #[error("cannot reach the registry `{registry}`")]
    #[diagnostic(help(
        "check the address and the network{}. A registry that speaks plain HTTP away from loopback needs `--insecure`; one with a private CA needs `--ca-file` or `--cert-dir`",
        tries_note(*tries)
    ))]
    Unreachable {
        registry: String,
        tries: u32,
        /// How the first scheme tried failed.
        #[source]
        source: Box<Ping>,
        /// How the others (plain HTTP, where allowed) failed.
        #[related]
        others: Vec<Ping>,
    },
    #[error("cannot set up TLS for the registry `{registry}`")]
    #[diagnostic(help("`--ca-file` takes a PEM file; `--cert-dir` a folder of `*.crt` PEM files"))]
    Tls {
        registry: String,
        #[source]
        source: Arc<TlsError>,
    },
    #[error("the registry `{registry}` refused the credentials from {from}")]
    #[diagnostic(help(
        "check the user and password; `strata login {registry}` stores new ones, `--creds USER:PASSWORD` overrides them"
    ))]
    Unauthorized { registry: String, from: String },
    #[error("the registry `{registry}` needs credentials, and none were found for it")]
    #[diagnostic(help(
        "run `strata login {registry}`, or pass `--creds USER:PASSWORD`; strata looked in {looked}"
    ))]
    NoCredentials { registry: String, looked: String },
    #[error("{what} does not exist on the registry: {message}")]
    #[diagnostic(help(
        "check the name and the digest; `strata resolve-base REGISTRY/REPO:TAG` prints the digest a tag points at"
    ))]
    NotFound { what: String, message: String },
    #[error("{what}: the registry answered {status}: {message}")]
    Status {
        what: String,
        status: u16,
        message: String,
    },
    #[error("{what}: the request failed")]
    #[diagnostic(help("check the registry and the network{}", tries_note(*tries)))]
    Transfer {
        what: String,
        tries: u32,
        #[source]
        source: BodyError,
    },
    /// A step of an upload session that the registry refused.
    #[error("{what}: the registry answered {status}: {message}")]
    #[diagnostic(help("check the registry and the network{}", tries_note(*tries)))]
    Upload {
        what: String,
        tries: u32,
        status: u16,
        message: String,
    },
    #[error(
        "{what} does not match its digest: expected {expected} ({expected_size} bytes), got {actual} ({actual_size} bytes)"
    )]
    #[diagnostic(help(
        "the registry, a proxy or the network altered the bytes; nothing was cached or written"
    ))]
    Mismatch {
        what: String,
        expected: Digest,
        expected_size: u64,
        actual: Digest,
        actual_size: u64,
    },
    #[error("{what} is not valid: {message}")]
    Invalid { what: String, message: String },
    /// As `Invalid`, when a parser's own error says why.
    #[error("{what} is not valid")]
    Malformed {
        what: String,
        #[source]
        source: BoxError,
    },
    #[error("cannot read the auth file `{}`", path.display())]
    #[diagnostic(help("fix or remove the file; `strata login` rewrites its entry"))]
    AuthFile {
        path: PathBuf,
        #[source]
        source: BoxError,
    },
    #[error("cannot write the auth file `{}`", path.display())]
    SaveAuthFile {
        path: PathBuf,
        #[source]
        source: BoxError,
    },
    #[error("the credential helper `{helper}` failed")]
    #[diagnostic(help("check that the helper is installed and logged in"))]
    Helper {
        helper: String,
        #[source]
        source: BoxError,
    },
    #[error("cannot read `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Cache(#[from] CacheError),
    #[error("cannot start the network runtime")]
    Runtime(#[source] std::io::Error),
}

impl strata_client::retry::Transient for RegistryError {
    fn transient(&self) -> bool {
        match self {
            RegistryError::Transfer { source, .. } => strata_client::retry::is_transient(source),
            // A registry restarting refuses connections or times out for a
            // while; a TLS or name failure would fail the same way again.
            RegistryError::Unreachable { source, others, .. } => std::iter::once(&**source)
                .chain(others)
                .any(Ping::transient),
            RegistryError::Status { status, .. } => reqwest::StatusCode::from_u16(*status)
                .is_ok_and(strata_client::retry::transient_status),
            // A session the registry no longer knows (it restarted) is worth
            // starting again.
            RegistryError::Upload { status, .. } => {
                *status == reqwest::StatusCode::NOT_FOUND.as_u16()
                    || *status == reqwest::StatusCode::RANGE_NOT_SATISFIABLE.as_u16()
            }
            _ => false,
        }
    }

    fn tried(&mut self, n: u32) {
        if let RegistryError::Unreachable { tries, .. }
        | RegistryError::Transfer { tries, .. }
        | RegistryError::Upload { tries, .. } = self
        {
            *tries = n;
        }
    }
}

/// How one way of reaching a registry's `/v2/` (HTTPS, or plain HTTP) failed.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum Ping {
    /// Something answered, but not as a registry does.
    #[error("`{url}` answered {status}")]
    Answered {
        url: reqwest::Url,
        status: reqwest::StatusCode,
    },
    #[error(transparent)]
    Failed(reqwest::Error),
}

impl Ping {
    fn transient(&self) -> bool {
        match self {
            Ping::Answered { status, .. } => strata_client::retry::transient_status(*status),
            Ping::Failed(e) => strata_client::retry::is_transient(e),
        }
    }
}

/// Why the TLS set-up (the CA certificates strata was given or found, and
/// the HTTP client built on them) failed.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot use the TLS certificate `{}`", path.display())]
    Certificate {
        path: PathBuf,
        #[source]
        source: BoxError,
    },
    #[error("cannot read the certificate folder `{}`", path.display())]
    CertDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot build the HTTP client")]
    Client(#[source] reqwest::Error),
}

/// How to reach registries: credentials and TLS, as skopeo's flags set them.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `--creds`: used for every registry instead of the auth files.
    pub credentials: Option<Credential>,
    /// Extra CA certificates (`--ca-file`).
    pub ca_files: Vec<PathBuf>,
    /// A folder of `*.crt` CA certificates (`--cert-dir`).
    pub cert_dir: Option<PathBuf>,
    /// Allow plain HTTP and unverified TLS for every registry, not only loopback.
    pub insecure: bool,
    /// How long the network may stall; package downloads use the same.
    pub timeouts: Timeouts,
}

/// Where a registry answers, once found.
#[derive(Debug, Clone)]
struct Endpoint {
    base: reqwest::Url,
    /// The `WWW-Authenticate` that `/v2/` answered, when it asked for one:
    /// a registry's challenge is the same for every repository.
    challenge: Option<String>,
}

pub struct Client {
    /// Set up once; a failure is reported by the first request, which knows
    /// the registry it was for.
    http: Result<reqwest::Client, Arc<TlsError>>,
    runtime: tokio::runtime::Runtime,
    options: Options,
    endpoints: Mutex<HashMap<String, Endpoint>>,
}

/// Folders that podman and docker read per-registry CA certificates from.
const SYSTEM_CERT_DIRS: [&str; 2] = ["/etc/containers/certs.d", "/etc/docker/certs.d"];

impl Client {
    pub fn new(options: Options) -> Result<Client, RegistryError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(RegistryError::Runtime)?;
        let http = http_client(&options).map_err(Arc::new);
        Ok(Client {
            http,
            runtime,
            options,
            endpoints: Mutex::new(HashMap::new()),
        })
    }

    /// The HTTP client, or why TLS could not be set up for `registry`.
    fn http(&self, registry: &str) -> Result<&reqwest::Client, RegistryError> {
        self.http.as_ref().map_err(|source| RegistryError::Tls {
            registry: registry.to_owned(),
            source: Arc::clone(source),
        })
    }

    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// Opens `reference`'s repository for the given actions (`pull`,
    /// `pull,push`); `mount_from` names other repositories of the same
    /// registry whose blobs may be mounted, so their pull scope is asked for too.
    pub async fn repository(
        &self,
        reference: &Reference,
        actions: &str,
        mount_from: &[String],
    ) -> Result<Repository<'_>, RegistryError> {
        let http = self.http(reference.api_host())?;
        let endpoint = self.endpoint(reference.api_host()).await?;
        let credential = match &self.options.credentials {
            Some(c) => Some(c.clone()),
            None => auth::lookup(&reference.registry, &reference.repository)?,
        };
        let mut scopes = vec![format!("repository:{}:{actions}", reference.repository)];
        scopes.extend(
            mount_from
                .iter()
                .filter(|r| **r != reference.repository)
                .map(|r| format!("repository:{r}:pull")),
        );
        let repo = Repository::new(
            http,
            self.options.timeouts,
            endpoint.base,
            reference.clone(),
            credential,
            scopes,
        );
        if let Some(challenge) = &endpoint.challenge {
            // Answered before the first real request, so that uploads are
            // not sent twice.
            repo.authenticate(Some(challenge)).await?;
        }
        Ok(repo)
    }

    /// The digest of the manifest (or index) a tag points at, as
    /// `strata resolve-base` prints it.
    pub fn resolve(&self, reference: &Reference) -> Result<Digest, RegistryError> {
        self.block_on(async {
            let repo = self.repository(reference, "pull", &[]).await?;
            let (bytes, _) = repo.manifest(&reference.manifest_reference()).await?;
            Ok(Digest::of(&bytes))
        })
    }

    /// Checks that `registry` accepts `credential` (`strata login`).
    pub fn check_login(&self, registry: &str, credential: Credential) -> Result<(), RegistryError> {
        let reference = Reference {
            registry: registry.to_owned(),
            repository: String::new(),
            tag: None,
            digest: None,
        };
        self.block_on(async {
            let http = self.http(reference.api_host())?;
            let endpoint = self.endpoint(reference.api_host()).await?;
            let repo = Repository::new(
                http,
                self.options.timeouts,
                endpoint.base,
                reference,
                Some(credential),
                Vec::new(),
            );
            repo.check_credentials().await
        })
    }

    /// Finds the registry's API: HTTPS, or plain HTTP where that is allowed
    /// (loopback, or `--insecure`) and HTTPS does not answer.
    async fn endpoint(&self, host: &str) -> Result<Endpoint, RegistryError> {
        if let Some(found) = self.lock_endpoints().get(host) {
            return Ok(found.clone());
        }
        let http = self.http(host)?;
        let plain_allowed = self.options.insecure || strata_oci::reference::is_loopback(host);
        let schemes: &[&str] = if plain_allowed {
            &["https", "http"]
        } else {
            &["https"]
        };
        let mut candidates = Vec::new();
        for scheme in schemes {
            candidates.push(
                reqwest::Url::parse(&format!("{scheme}://{host}/")).map_err(|e| {
                    RegistryError::Malformed {
                        what: format!("the registry name `{host}`"),
                        source: e.into(),
                    }
                })?,
            );
        }
        let found =
            strata_client::retry::retry(strata_client::retry::Backoff::REGISTRY, || async {
                let mut failures = Vec::new();
                for base in &candidates {
                    let ping = base.join("v2/").expect("a constant path joins");
                    match http.get(ping.clone()).send().await {
                        // A registry answers `/v2/` with 200, or 401/403 until
                        // authenticated; anything else (such as the 400 a TLS
                        // port gives a plain request) is not a registry.
                        Ok(r)
                            if r.status().is_success()
                                || r.status() == reqwest::StatusCode::UNAUTHORIZED
                                || r.status() == reqwest::StatusCode::FORBIDDEN =>
                        {
                            let challenge = (r.status() == reqwest::StatusCode::UNAUTHORIZED)
                                .then(|| r.headers().get(reqwest::header::WWW_AUTHENTICATE))
                                .flatten()
                                .and_then(|h| h.to_str().ok())
                                .map(str::to_owned);
                            return Ok(Endpoint {
                                base: base.clone(),
                                challenge,
                            });
                        }
                        Ok(r) => failures.push(Ping::Answered {
                            url: ping,
                            status: r.status(),
                        }),
                        Err(e) => failures.push(Ping::Failed(e)),
                    }
                }
                // A scheme that answered over HTTP says more than a TLS
                // handshake the other failed: it comes first.
                failures.sort_by_key(|f| matches!(f, Ping::Failed(_)));
                let mut failures = failures.into_iter();
                match failures.next() {
                    Some(source) => Err(RegistryError::Unreachable {
                        registry: host.to_owned(),
                        tries: 1,
                        source: Box::new(source),
                        others: failures.collect(),
                    }),
                    None => unreachable!("https is always a candidate"),
                }
            })
            .await?;
        self.lock_endpoints().insert(host.to_owned(), found.clone());
        Ok(found)
    }

    fn lock_endpoints(&self) -> std::sync::MutexGuard<'_, HashMap<String, Endpoint>> {
        self.endpoints
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The HTTP client for every registry, trusting the extra CA certificates.
fn http_client(options: &Options) -> Result<reqwest::Client, TlsError> {
    let mut builder = options
        .timeouts
        .client()
        .danger_accept_invalid_certs(options.insecure);
    for path in ca_certificates(options)? {
        let certificate = |source: BoxError| TlsError::Certificate {
            path: path.clone(),
            source,
        };
        let pem = std::fs::read(&path).map_err(|e| certificate(e.into()))?;
        let certs =
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| certificate(e.into()))?;
        if certs.is_empty() {
            return Err(certificate("it holds no PEM certificate".into()));
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder.build().map_err(TlsError::Client)
}

/// `--ca-file`s, `*.crt` in `--cert-dir`, and the per-registry folders under
/// the system's certs.d that podman and docker read.
fn ca_certificates(options: &Options) -> Result<Vec<PathBuf>, TlsError> {
    let mut files = options.ca_files.clone();
    if let Some(dir) = &options.cert_dir {
        files.extend(crt_files(dir).map_err(|source| TlsError::CertDir {
            path: dir.clone(),
            source,
        })?);
    }
    for system in SYSTEM_CERT_DIRS {
        let Ok(entries) = std::fs::read_dir(system) else {
            continue;
        };
        for entry in entries.flatten() {
            files.extend(crt_files(&entry.path()).unwrap_or_default());
        }
    }
    Ok(files)
}

fn crt_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "crt"))
        .collect();
    files.sort();
    Ok(files)
}

/// At most `cap` bytes of a response body, read as they arrive: a body whose
/// size no verified digest vouches for is never read whole. `Ok(None)` when
/// the body is longer.
pub(crate) async fn read_capped(
    response: reqwest::Response,
    timeouts: Timeouts,
    cap: usize,
) -> Result<Option<Vec<u8>>, BodyError> {
    let mut response = Body::new(response, timeouts);
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > cap {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

/// Error bodies are a line or two of JSON; more is not worth showing.
const ERROR_BODY_LIMIT: usize = 64 << 10;

/// The error message a registry put in its body (`{"errors":[{"message":…}]}`),
/// or the body itself.
async fn error_message(response: reqwest::Response, timeouts: Timeouts) -> String {
    let text = match read_capped(response, timeouts, ERROR_BODY_LIMIT).await {
        Ok(Some(body)) => String::from_utf8_lossy(&body).into_owned(),
        _ => String::new(),
    };
    if let Ok(json) = serde_json::from_str::<serde_json::Value>(&text)
        && let Some(errors) = json["errors"].as_array()
    {
        let parts: Vec<String> = errors
            .iter()
            .map(|e| {
                let code = e["code"].as_str().unwrap_or("");
                let message = e["message"].as_str().unwrap_or("");
                match (code.is_empty(), message.is_empty()) {
                    (false, false) => format!("{code}: {message}"),
                    (false, true) => code.to_owned(),
                    _ => message.to_owned(),
                }
            })
            .collect();
        if !parts.is_empty() {
            return parts.join("; ");
        }
    }
    let text = text.trim();
    if text.is_empty() {
        "no details".to_owned()
    } else {
        text.chars().take(300).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use strata_client::retry::Transient;

    fn reference(text: &str) -> Reference {
        Reference::parse(text).unwrap()
    }

    /// The whole chain, as miette would print it line by line.
    fn chain(e: &dyn std::error::Error) -> Vec<String> {
        let mut lines = vec![e.to_string()];
        let mut next = e.source();
        while let Some(cause) = next {
            lines.push(cause.to_string());
            next = cause.source();
        }
        lines
    }

    #[test]
    fn a_tls_set_up_failure_names_the_registry_and_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "not a certificate\n").unwrap();
        let client = Client::new(Options {
            ca_files: vec![ca.clone()],
            ..Options::default()
        })
        .unwrap();
        let err = client
            .resolve(&reference("registry.invalid:5000/app:1"))
            .unwrap_err();
        assert!(
            matches!(&err, RegistryError::Tls { registry, .. } if registry == "registry.invalid:5000"),
            "{err:?}"
        );
        assert!(!err.transient());
        let lines = chain(&err);
        assert_eq!(
            lines[0],
            "cannot set up TLS for the registry `registry.invalid:5000`"
        );
        assert_eq!(
            lines[1],
            format!("cannot use the TLS certificate `{}`", ca.display())
        );
        assert_eq!(lines[2], "it holds no PEM certificate");
        // Every registry is told, not only the first one asked.
        let err = client
            .resolve(&reference("other.invalid/app:1"))
            .unwrap_err();
        assert!(
            matches!(&err, RegistryError::Tls { registry, .. } if registry == "other.invalid"),
            "{err:?}"
        );
    }

    #[test]
    fn a_missing_cert_dir_is_a_tls_set_up_failure() {
        let dir = tempfile::tempdir().unwrap();
        let client = Client::new(Options {
            cert_dir: Some(dir.path().join("nope")),
            ..Options::default()
        })
        .unwrap();
        let err = client
            .check_login(
                "registry.invalid",
                Credential::parse("u:p", "`--creds`").unwrap(),
            )
            .unwrap_err();
        let lines = chain(&err);
        assert_eq!(
            lines[0],
            "cannot set up TLS for the registry `registry.invalid`"
        );
        assert!(
            lines[1].starts_with("cannot read the certificate folder"),
            "{lines:?}"
        );
    }

    fn send_error(url: &str) -> reqwest::Error {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(reqwest::Client::new().get(url).send())
            .unwrap_err()
    }

    /// A loopback server that hands each plain HTTP GET's path, its whole
    /// request and the connection to `respond`, one thread per connection,
    /// and counts them; the TLS handshake tried first gets the connection
    /// closed.
    fn serve(
        respond: fn(&str, &str, &mut std::net::TcpStream),
    ) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::io::Read;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let count = std::sync::Arc::new(AtomicUsize::new(0));
        let counted = std::sync::Arc::clone(&count);
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                let counted = std::sync::Arc::clone(&counted);
                std::thread::spawn(move || {
                    let mut request = [0; 4096];
                    let n = stream.read(&mut request).unwrap_or(0);
                    let request = String::from_utf8_lossy(&request[..n]).into_owned();
                    if let Some(path) = request
                        .strip_prefix("GET ")
                        .and_then(|r| r.split(' ').next())
                    {
                        counted.fetch_add(1, Ordering::SeqCst);
                        respond(path, &request, &mut stream);
                    }
                });
            }
        });
        (host, count)
    }

    /// A registry's `/v2/` answer; false for other paths.
    fn answer_ping(path: &str, stream: &mut std::net::TcpStream) -> bool {
        use std::io::Write;
        if path != "/v2/" {
            return false;
        }
        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
        true
    }

    fn client(window: u64) -> Client {
        Client::new(Options {
            timeouts: Timeouts {
                window: Duration::from_secs(window),
            },
            ..Options::default()
        })
        .unwrap()
    }

    #[test]
    fn a_huge_manifest_stops_at_the_limit() {
        use std::io::Write;
        let (host, _) = serve(|path, _, stream| {
            if answer_ping(path, stream) {
                return;
            }
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/vnd.oci.image.manifest.v1+json\r\ncontent-length: 200000000\r\n\r\n",
            );
            let block = vec![b' '; 1 << 16];
            while stream.write_all(&block).is_ok() {}
        });
        let err = client(30)
            .resolve(&reference(&format!("{host}/app:1")))
            .unwrap_err();
        assert!(matches!(&err, RegistryError::Invalid { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!(
                "the manifest {host}/app@1 is not valid: more than 4194304 bytes is too large for a manifest"
            )
        );
    }

    #[test]
    fn a_trickling_blob_fails_after_the_retries() {
        use std::io::Write;
        let (host, count) = serve(|path, _, stream| {
            if answer_ping(path, stream) {
                return;
            }
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n");
            while stream.write_all(b"x").is_ok() {
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let client = client(1);
        let dir = tempfile::tempdir().unwrap();
        let cache = strata_cache::Cache::at(dir.path().to_owned()).unwrap();
        let digest = Digest::of(b"never sent");
        let err = client
            .block_on(async {
                let repo = client
                    .repository(&reference(&format!("{host}/app:1")), "pull", &[])
                    .await?;
                repo.fetch_blob(&cache, &digest, 100_000).await
            })
            .unwrap_err();
        let RegistryError::Transfer { source, .. } = &err else {
            panic!("{err:?}");
        };
        assert!(matches!(source, BodyError::Stalled { .. }), "{source:?}");
        // The ping, then every try of the blob.
        let tries = strata_client::retry::Backoff::REGISTRY.tries as usize;
        assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 1 + tries);
    }

    /// What the resuming test's registry serves as its blob.
    fn blob() -> Vec<u8> {
        (0..100_000u32).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn a_download_cut_short_resumes_with_range() {
        use std::io::Write;
        // Without `Range`, the body is always cut in the middle.
        let (host, count) = serve(|path, request, stream| {
            if answer_ping(path, stream) {
                return;
            }
            let blob = blob();
            let range = request
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("range: bytes=")
                        .map(str::to_owned)
                })
                .and_then(|r| r.trim_end_matches('-').parse::<usize>().ok());
            match range {
                Some(from) => {
                    let _ = write!(
                        stream,
                        "HTTP/1.1 206 Partial Content\r\ncontent-length: {}\r\ncontent-range: bytes {from}-{}/{}\r\n\r\n",
                        blob.len() - from,
                        blob.len() - 1,
                        blob.len()
                    );
                    let _ = stream.write_all(&blob[from..]);
                }
                None => {
                    let _ = write!(
                        stream,
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n",
                        blob.len()
                    );
                    let _ = stream.write_all(&blob[..blob.len() / 2]);
                }
            }
        });
        let client = client(30);
        let dir = tempfile::tempdir().unwrap();
        let cache = strata_cache::Cache::at(dir.path().to_owned()).unwrap();
        let digest = Digest::of(&blob());
        let path = client
            .block_on(async {
                let repo = client
                    .repository(&reference(&format!("{host}/app:1")), "pull", &[])
                    .await?;
                repo.fetch_blob(&cache, &digest, 100_000).await
            })
            .unwrap();
        assert_eq!(std::fs::read(path).unwrap(), blob());
        // The ping, the cut try, the resumed one.
        assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 3);
    }

    #[test]
    fn a_failing_ping_is_retried_and_reported_without_the_tls_failure() {
        use std::io::Write;
        let (host, count) = serve(|_, _, stream| {
            let _ = stream
                .write_all(b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n");
        });
        let err = client(30)
            .resolve(&reference(&format!("{host}/app:1")))
            .unwrap_err();
        let lines = chain(&err);
        assert_eq!(lines[0], format!("cannot reach the registry `{host}`"));
        assert_eq!(
            lines[1],
            format!("`http://{host}/v2/` answered 500 Internal Server Error")
        );
        assert_eq!(lines.len(), 2, "{lines:?}");
        let tries = strata_client::retry::Backoff::REGISTRY.tries as usize;
        assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), tries);
    }

    #[test]
    fn unreachable_is_retried_on_a_refused_connection_only() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let unreachable = |source, others| RegistryError::Unreachable {
            registry: format!("127.0.0.1:{port}"),
            tries: 1,
            source: Box::new(source),
            others,
        };
        let refused = || Ping::Failed(send_error(&format!("http://127.0.0.1:{port}/v2/")));
        let answered = |status| Ping::Answered {
            url: reqwest::Url::parse("http://127.0.0.1/v2/").unwrap(),
            status: reqwest::StatusCode::from_u16(status).unwrap(),
        };
        assert!(unreachable(refused(), vec![]).transient());
        assert!(unreachable(answered(400), vec![refused()]).transient());
        assert!(unreachable(answered(503), vec![]).transient());
        assert!(!unreachable(answered(404), vec![answered(400)]).transient());
        // The cause is kept, not flattened into the message.
        let err = unreachable(refused(), vec![]);
        let lines = chain(&err);
        assert_eq!(
            lines[0],
            format!("cannot reach the registry `127.0.0.1:{port}`")
        );
        assert!(lines.len() > 2, "{lines:?}");
    }
}
