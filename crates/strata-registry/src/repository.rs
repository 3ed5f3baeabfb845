//! One repository on one registry, authenticated for a set of scopes: the
//! manifest and blob requests of the distribution spec.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

use reqwest::header::{
    ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, HeaderMap, HeaderValue,
    LOCATION, RANGE, WWW_AUTHENTICATE,
};
use reqwest::{Method, Response, StatusCode, Url};

use crate::auth::{Challenge, Credential};
use crate::{RegistryError, error_message};
use strata_cache::{Cache, CacheError};
use strata_client::body::{Body, BodyError, Timeouts};
use strata_client::retry::Backoff;
use strata_oci::digest::{Digest, HashingWriter};
use strata_oci::reference::Reference;
use strata_progress::Step;

/// Every manifest type strata reads; Docker's schema 2 is accepted on input.
const MANIFEST_TYPES: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// Manifests are small; refuse anything that is clearly not one.
const MANIFEST_LIMIT: usize = 4 << 20;
/// A token answer is a few KB of JSON.
const TOKEN_LIMIT: usize = 1 << 20;

/// Blobs up to this size go up in one PUT; larger ones in PATCH chunks of it.
pub const CHUNK: u64 = 32 << 20;

/// Read size when streaming a file into an upload.
const STREAM_BUFFER: usize = 1 << 20;

/// What uploading one blob came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobOutcome {
    /// The repository already had it.
    Present,
    /// Mounted from another repository of the same registry.
    Mounted,
    Uploaded,
}

/// A request body that can be made again for a retry.
#[derive(Debug, Clone)]
pub enum Payload {
    Bytes(bytes::Bytes),
    File(PathBuf),
}

impl Payload {
    /// Bytes `[offset, offset + len)` of the payload; a streamed file counts
    /// its bytes on `step` as they go.
    async fn body(
        &self,
        offset: u64,
        len: u64,
        step: Option<&Step>,
    ) -> Result<reqwest::Body, RegistryError> {
        match self {
            Payload::Bytes(b) => Ok(b.slice(offset as usize..(offset + len) as usize).into()),
            Payload::File(path) => {
                use tokio::io::{AsyncReadExt, AsyncSeekExt};
                let io = |source| RegistryError::Io {
                    path: path.clone(),
                    source,
                };
                let mut file = tokio::fs::File::open(path).await.map_err(io)?;
                file.seek(std::io::SeekFrom::Start(offset))
                    .await
                    .map_err(io)?;
                if offset == 0 && file.metadata().await.map_err(io)?.len() == len {
                    // Large reads: the default 8 KiB stream costs more
                    // than the loopback transfer itself.
                    let stream = tokio_util::io::ReaderStream::with_capacity(file, STREAM_BUFFER);
                    let step = step.cloned();
                    let stream = futures_util::StreamExt::inspect(stream, move |chunk| {
                        if let (Some(step), Ok(chunk)) = (&step, chunk) {
                            step.inc(chunk.len() as u64);
                        }
                    });
                    return Ok(reqwest::Body::wrap_stream(stream));
                }
                let mut chunk = Vec::with_capacity(len as usize);
                file.take(len).read_to_end(&mut chunk).await.map_err(io)?;
                Ok(chunk.into())
            }
        }
    }
}

pub struct Repository<'c> {
    http: &'c reqwest::Client,
    timeouts: Timeouts,
    base: Url,
    pub reference: Reference,
    credential: Option<Credential>,
    scopes: Vec<String>,
    authorization: Mutex<Option<HeaderValue>>,
}

impl<'c> Repository<'c> {
    pub(super) fn new(
        http: &'c reqwest::Client,
        timeouts: Timeouts,
        base: Url,
        reference: Reference,
        credential: Option<Credential>,
        scopes: Vec<String>,
    ) -> Repository<'c> {
        Repository {
            http,
            timeouts,
            base,
            reference,
            credential,
            scopes,
            authorization: Mutex::new(None),
        }
    }

    fn registry(&self) -> &str {
        &self.reference.registry
    }

    fn url(&self, path: &str) -> Url {
        self.base
            .join(&format!("v2/{}/{path}", self.reference.repository))
            .expect("repository paths are valid URL paths")
    }

    fn current_authorization(&self) -> Option<HeaderValue> {
        self.authorization
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Answers a `WWW-Authenticate` challenge (or its absence) and keeps the
    /// resulting `Authorization` for every later request.
    pub(super) async fn authenticate(&self, challenge: Option<&str>) -> Result<(), RegistryError> {
        let challenge = challenge.and_then(Challenge::parse);
        let header = match challenge {
            Some(c) if c.scheme == "bearer" => self.token(&c).await?,
            // Basic, or a registry that says nothing: send the credentials.
            _ => self.credential()?.basic_header(),
        };
        let value = HeaderValue::from_str(&header).map_err(|e| RegistryError::Malformed {
            what: format!("the token from `{}`", self.registry()),
            source: e.into(),
        })?;
        *self
            .authorization
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(value);
        Ok(())
    }

    fn credential(&self) -> Result<&Credential, RegistryError> {
        self.credential
            .as_ref()
            .ok_or_else(|| self.no_credentials())
    }

    fn no_credentials(&self) -> RegistryError {
        RegistryError::NoCredentials {
            registry: self.registry().to_owned(),
            looked: super::auth::auth_files()
                .iter()
                .map(|p| format!("`{}`", p.display()))
                .collect::<Vec<_>>()
                .join(", "),
        }
    }

    /// Fetches a bearer token from the challenge's realm, for our scopes,
    /// with the credentials when there are any (anonymous otherwise).
    async fn token(&self, challenge: &Challenge) -> Result<String, RegistryError> {
        let what = format!("the token service of `{}`", self.registry());
        let realm = challenge
            .params
            .get("realm")
            .ok_or_else(|| RegistryError::Invalid {
                what: format!("the challenge of `{}`", self.registry()),
                message: "it names no realm".to_owned(),
            })?;
        let mut url = Url::parse(realm).map_err(|e| RegistryError::Malformed {
            what: format!("the realm `{realm}` of {what}"),
            source: e.into(),
        })?;
        {
            let mut query = url.query_pairs_mut();
            if let Some(service) = challenge.params.get("service") {
                query.append_pair("service", service);
            }
            for scope in &self.scopes {
                query.append_pair("scope", scope);
            }
        }
        let response = strata_client::retry::retry(Backoff::REGISTRY, || async {
            let mut request = self.http.get(url.clone());
            if let Some(c) = &self.credential {
                request = request.basic_auth(&c.username, Some(&c.secret));
            }
            let response = request.send().await.map_err(|e| self.transfer(&what, e))?;
            self.check_status(&what, response).await
        })
        .await;
        let response = match response {
            Err(RegistryError::Status { status: 401, .. }) => {
                return Err(self.unauthorized());
            }
            other => other?,
        };
        let body = crate::read_capped(response, self.timeouts, TOKEN_LIMIT)
            .await
            .map_err(|e| self.transfer(&what, e))?
            .ok_or_else(|| RegistryError::Invalid {
                what: what.clone(),
                message: format!("the answer is larger than {TOKEN_LIMIT} bytes"),
            })?;
        let json: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| RegistryError::Malformed {
                what: what.clone(),
                source: e.into(),
            })?;
        let token = json["token"]
            .as_str()
            .or_else(|| json["access_token"].as_str())
            .ok_or_else(|| RegistryError::Invalid {
                what,
                message: "the answer holds no token".to_owned(),
            })?;
        Ok(format!("Bearer {token}"))
    }

    fn unauthorized(&self) -> RegistryError {
        match &self.credential {
            Some(c) => RegistryError::Unauthorized {
                registry: self.registry().to_owned(),
                from: c.source.clone(),
            },
            None => self.no_credentials(),
        }
    }

    fn transfer(&self, what: &str, source: impl Into<BodyError>) -> RegistryError {
        RegistryError::Transfer {
            what: what.to_owned(),
            tries: 1,
            source: source.into(),
        }
    }

    /// Turns transient statuses into errors (so they are retried) and leaves
    /// the rest to the caller.
    async fn check_status(
        &self,
        what: &str,
        response: Response,
    ) -> Result<Response, RegistryError> {
        let status = response.status();
        if strata_client::retry::transient_status(status) || status == StatusCode::UNAUTHORIZED {
            return Err(RegistryError::Status {
                what: what.to_owned(),
                status: status.as_u16(),
                message: error_message(response, self.timeouts).await,
            });
        }
        Ok(response)
    }

    /// One request, authenticated (answering one challenge if the registry
    /// asks again, as it does when a token expires), retried with backoff.
    async fn send(
        &self,
        what: &str,
        method: Method,
        url: &Url,
        headers: HeaderMap,
        payload: Option<(&Payload, u64, u64)>,
    ) -> Result<Response, RegistryError> {
        strata_client::retry::retry(Backoff::REGISTRY, || {
            self.attempt(what, method.clone(), url, headers.clone(), payload, None)
        })
        .await
    }

    /// [`Repository::send`] without the retries, for steps of an upload
    /// session, which is retried as a whole; the bytes of a streamed upload
    /// are counted on `step`.
    async fn attempt(
        &self,
        what: &str,
        method: Method,
        url: &Url,
        headers: HeaderMap,
        payload: Option<(&Payload, u64, u64)>,
        step: Option<&Step>,
    ) -> Result<Response, RegistryError> {
        let mut challenged = false;
        loop {
            let mut request = self
                .http
                .request(method.clone(), url.clone())
                .headers(headers.clone());
            if let Some(value) = self.current_authorization() {
                request = request.header(AUTHORIZATION, value);
            }
            if let Some((payload, offset, len)) = payload {
                request = request
                    .header(CONTENT_LENGTH, len)
                    .body(payload.body(offset, len, step).await?);
            }
            let response = request.send().await.map_err(|e| self.transfer(what, e))?;
            if response.status() == StatusCode::UNAUTHORIZED {
                if challenged {
                    return Err(self.unauthorized());
                }
                challenged = true;
                let challenge = response
                    .headers()
                    .get(WWW_AUTHENTICATE)
                    .and_then(|h| h.to_str().ok());
                self.authenticate(challenge).await?;
                continue;
            }
            return self.check_status(what, response).await;
        }
    }

    /// A step of an upload session that failed.
    async fn upload_failed(&self, what: &str, response: Response) -> RegistryError {
        let status = response.status().as_u16();
        RegistryError::Upload {
            what: what.to_owned(),
            tries: 1,
            status,
            message: error_message(response, self.timeouts).await,
        }
    }

    async fn fail(&self, what: &str, response: Response) -> RegistryError {
        let status = response.status().as_u16();
        let message = error_message(response, self.timeouts).await;
        if status == 404 {
            RegistryError::NotFound {
                what: what.to_owned(),
                message,
            }
        } else {
            RegistryError::Status {
                what: what.to_owned(),
                status,
                message,
            }
        }
    }

    /// `GET /v2/` with credentials: whether the registry accepts them.
    pub async fn check_credentials(&self) -> Result<(), RegistryError> {
        let url = self.base.join("v2/").expect("a constant path joins");
        let what = format!("`{url}`");
        let response = self
            .send(&what, Method::GET, &url, HeaderMap::new(), None)
            .await?;
        if !response.status().is_success() {
            return Err(self.fail(&what, response).await);
        }
        Ok(())
    }

    /// The manifest (or index) `reference` names, and its media type. When
    /// `reference` is a digest, the bytes are checked against it.
    pub async fn manifest(&self, reference: &str) -> Result<(Vec<u8>, String), RegistryError> {
        let what = format!("the manifest {}@{reference}", self.reference.name());
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static(MANIFEST_TYPES));
        let url = self.url(&format!("manifests/{reference}"));
        let response = self.send(&what, Method::GET, &url, headers, None).await?;
        if !response.status().is_success() {
            return Err(self.fail(&what, response).await);
        }
        let media_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let Some(bytes) = crate::read_capped(response, self.timeouts, MANIFEST_LIMIT)
            .await
            .map_err(|e| self.transfer(&what, e))?
        else {
            return Err(RegistryError::Invalid {
                what,
                message: format!("more than {MANIFEST_LIMIT} bytes is too large for a manifest"),
            });
        };
        if let Ok(expected) = reference.parse::<Digest>() {
            let actual = Digest::of(&bytes);
            if actual != expected {
                return Err(RegistryError::Mismatch {
                    what,
                    expected,
                    expected_size: bytes.len() as u64,
                    actual,
                    actual_size: bytes.len() as u64,
                });
            }
        }
        Ok((bytes.to_vec(), media_type))
    }

    /// Whether a manifest with this digest is already in the repository.
    pub async fn has_manifest(&self, digest: &Digest) -> Result<bool, RegistryError> {
        self.exists(
            &format!("the manifest {}@{digest}", self.reference.name()),
            &format!("manifests/{digest}"),
        )
        .await
    }

    pub async fn has_blob(&self, digest: &Digest) -> Result<bool, RegistryError> {
        self.exists(&format!("blob {digest}"), &format!("blobs/{digest}"))
            .await
    }

    async fn exists(&self, what: &str, path: &str) -> Result<bool, RegistryError> {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static(MANIFEST_TYPES));
        let response = self
            .send(what, Method::HEAD, &self.url(path), headers, None)
            .await?;
        match response.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(self.fail(what, response).await),
        }
    }

    /// The size of a blob the repository has, from a `HEAD`; `None` when it
    /// has none.
    pub async fn blob_size(&self, digest: &Digest) -> Result<Option<u64>, RegistryError> {
        let what = format!("blob {digest} of {}", self.reference.name());
        let url = self.url(&format!("blobs/{digest}"));
        let response = self
            .send(&what, Method::HEAD, &url, HeaderMap::new(), None)
            .await?;
        match response.status() {
            // The header, not the body's length: a HEAD has no body.
            s if s.is_success() => Ok(response
                .headers()
                .get(reqwest::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.parse().ok())),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(self.fail(&what, response).await),
        }
    }

    /// Downloads a blob into the cache, hashing it on the way; the cache only
    /// gets it if its digest and size match.
    pub async fn fetch_blob(
        &self,
        cache: &Cache,
        digest: &Digest,
        size: u64,
    ) -> Result<PathBuf, RegistryError> {
        let what = format!("blob {digest} of {}", self.reference.name());
        let url = self.url(&format!("blobs/{digest}"));
        tracing::debug!(%url, size, "pull blob");
        let step = strata_progress::get().step("download", self.blob_label(digest));
        step.set_length(size);
        // What earlier tries received stays, so that a later one asks for
        // the rest with `Range` (a registry that ignores it sends it all).
        let partial: Mutex<Option<Partial>> = Mutex::new(None);
        strata_client::retry::retry(Backoff::REGISTRY, || async {
            let mut held = partial.lock().unwrap_or_else(|e| e.into_inner()).take();
            let result = self
                .fetch_blob_try(&what, &url, cache, size, &mut held, &step)
                .await;
            *partial.lock().unwrap_or_else(|e| e.into_inner()) = held;
            result
        })
        .await?;
        let Partial { tmp, sink } = partial
            .into_inner()
            .unwrap_or_else(|e| e.into_inner())
            .ok_or_else(|| RegistryError::Invalid {
                what: what.clone(),
                message: "the registry sent nothing".to_owned(),
            })?;
        let (mut writer, actual, actual_size) = sink.finish();
        writer.flush().map_err(|source| CacheError::Io {
            path: tmp.path().to_owned(),
            source,
        })?;
        if actual != *digest || actual_size != size {
            return Err(RegistryError::Mismatch {
                what,
                expected: *digest,
                expected_size: size,
                actual,
                actual_size,
            });
        }
        let path = cache.commit_blob(tmp, digest)?;
        step.finish("");
        Ok(path)
    }

    /// One try of [`Repository::fetch_blob`]: asks for what `held` lacks
    /// and appends it there.
    async fn fetch_blob_try(
        &self,
        what: &str,
        url: &Url,
        cache: &Cache,
        size: u64,
        held: &mut Option<Partial>,
        step: &Step,
    ) -> Result<(), RegistryError> {
        let offset = held.as_ref().map_or(0, |p| p.sink.written());
        if offset >= size && offset > 0 {
            // All of it came before the last try failed: the digest decides.
            return Ok(());
        }
        let mut headers = HeaderMap::new();
        if offset > 0 {
            headers.insert(
                RANGE,
                HeaderValue::from_str(&format!("bytes={offset}-"))
                    .expect("digits are a valid header"),
            );
        }
        let response = self
            .attempt(what, Method::GET, url, headers, None, None)
            .await?;
        let resumed = offset > 0
            && response.status() == StatusCode::PARTIAL_CONTENT
            && response
                .headers()
                .get(CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with(&format!("bytes {offset}-")));
        if !resumed {
            if response.status() != StatusCode::OK {
                return Err(self.fail(what, response).await);
            }
            *held = None;
        }
        let partial = match held.take() {
            Some(partial) => partial,
            None => Partial::new(cache)?,
        };
        step.set_position(partial.sink.written());
        let mut body = Body::new(response, self.timeouts);
        let partial = held.insert(partial);
        while let Some(chunk) = body.chunk().await.map_err(|e| self.transfer(what, e))? {
            partial.sink.write_all(&chunk).map_err(|e| partial.io(e))?;
            step.inc(chunk.len() as u64);
            // A registry that sends more than the descriptor says is
            // wrong whatever it sends next.
            if partial.sink.written() > size {
                break;
            }
        }
        Ok(())
    }

    /// A blob as its bar names it: a short digest and where it goes or comes from.
    fn blob_label(&self, digest: &Digest) -> String {
        format!("{} {}", &digest.hex()[..12], self.reference.name())
    }

    /// Makes sure the repository has a blob that another repository of the
    /// registry holds, without sending it: already there, or mounted from
    /// `from`. A registry that opens an upload instead (it does not mount
    /// between these repositories) gets the upload cancelled, and the
    /// answer is [`RegistryError::NotMounted`].
    pub async fn mount_blob(
        &self,
        digest: &Digest,
        from: &str,
    ) -> Result<BlobOutcome, RegistryError> {
        if self.has_blob(digest).await? {
            return Ok(BlobOutcome::Present);
        }
        let what = format!("blob {digest} mounted into {}", self.reference.name());
        let mut start = self.url("blobs/uploads/");
        start
            .query_pairs_mut()
            .append_pair("mount", &digest.to_string())
            .append_pair("from", from);
        let response = self
            .send(&what, Method::POST, &start, HeaderMap::new(), None)
            .await?;
        match response.status() {
            StatusCode::CREATED => Ok(BlobOutcome::Mounted),
            StatusCode::ACCEPTED => {
                if let Ok(location) = self.location(&what, &response) {
                    // Best effort: an abandoned session expires anyway.
                    let _ = self
                        .send(&what, Method::DELETE, &location, HeaderMap::new(), None)
                        .await;
                }
                Err(RegistryError::NotMounted {
                    registry: self.reference.registry.clone(),
                    digest: *digest,
                    from: from.to_owned(),
                })
            }
            _ => Err(self.fail(&what, response).await),
        }
    }

    /// Makes sure the repository has a blob: already there, mounted from
    /// `mount_from` (another repository of this registry), or uploaded —
    /// whole when small, in chunks when large.
    pub async fn push_blob(
        &self,
        digest: &Digest,
        size: u64,
        payload: &Payload,
        mount_from: Option<&str>,
    ) -> Result<BlobOutcome, RegistryError> {
        if self.has_blob(digest).await? {
            tracing::debug!(%digest, repository = %self.reference.name(), "blob already there");
            return Ok(BlobOutcome::Present);
        }
        let what = format!("blob {digest} ({size} bytes) to {}", self.reference.name());
        let step = strata_progress::get().step("push", self.blob_label(digest));
        step.set_length(size);
        let mut start = self.url("blobs/uploads/");
        if let Some(from) = mount_from {
            start
                .query_pairs_mut()
                .append_pair("mount", &digest.to_string())
                .append_pair("from", from);
        }
        // The session's last `Location`, kept across tries: after a failure
        // midway, the registry says how much it has (`Range`) and the upload
        // goes on from there; a session it no longer knows (a restarted
        // registry) starts again from the POST.
        let session: Mutex<Option<Url>> = Mutex::new(None);
        let keep = |location: &Url| {
            *session.lock().unwrap_or_else(|e| e.into_inner()) = Some(location.clone());
        };
        let outcome = strata_client::retry::retry(Backoff::REGISTRY, || async {
            let last = session.lock().unwrap_or_else(|e| e.into_inner()).take();
            let resumed = match last {
                Some(location) => self.upload_status(&what, &location).await?,
                None => None,
            };
            let (mut location, mut offset) = match resumed {
                Some(found) => found,
                None => {
                    let response = self
                        .attempt(&what, Method::POST, &start, HeaderMap::new(), None, None)
                        .await?;
                    match response.status() {
                        StatusCode::CREATED if mount_from.is_some() => {
                            return Ok(BlobOutcome::Mounted);
                        }
                        StatusCode::ACCEPTED => {}
                        _ => return Err(self.fail(&what, response).await),
                    }
                    (self.location(&what, &response)?, 0)
                }
            };
            keep(&location);
            step.set_position(offset);
            while size - offset > CHUNK {
                let mut headers = octet_stream();
                headers.insert(
                    CONTENT_RANGE,
                    HeaderValue::from_str(&format!("{offset}-{}", offset + CHUNK - 1))
                        .expect("digits and a dash are a valid header"),
                );
                let response = self
                    .attempt(
                        &what,
                        Method::PATCH,
                        &location,
                        headers,
                        Some((payload, offset, CHUNK)),
                        None,
                    )
                    .await?;
                if response.status() != StatusCode::ACCEPTED {
                    if response.status() == StatusCode::RANGE_NOT_SATISFIABLE {
                        // The registry disagrees on the offset: start over.
                        session.lock().unwrap_or_else(|e| e.into_inner()).take();
                    }
                    return Err(self.upload_failed(&what, response).await);
                }
                location = self.location(&what, &response)?;
                offset += CHUNK;
                keep(&location);
                step.set_position(offset);
            }
            location
                .query_pairs_mut()
                .append_pair("digest", &digest.to_string());
            let response = self
                .attempt(
                    &what,
                    Method::PUT,
                    &location,
                    octet_stream(),
                    Some((payload, offset, size - offset)),
                    Some(&step),
                )
                .await?;
            if response.status() != StatusCode::CREATED {
                return Err(self.upload_failed(&what, response).await);
            }
            self.check_returned_digest(&what, &response, digest)?;
            step.set_position(size);
            Ok(BlobOutcome::Uploaded)
        })
        .await?;
        tracing::debug!(%digest, repository = %self.reference.name(), ?outcome, "blob pushed");
        step.finish(if outcome == BlobOutcome::Mounted {
            "mounted"
        } else {
            ""
        });
        Ok(outcome)
    }

    /// Where an upload session stands (`GET` on its `Location`): the
    /// location to go on with and the offset the registry has, or `None`
    /// when the registry no longer knows the session.
    async fn upload_status(
        &self,
        what: &str,
        location: &Url,
    ) -> Result<Option<(Url, u64)>, RegistryError> {
        let response = self
            .attempt(what, Method::GET, location, HeaderMap::new(), None, None)
            .await?;
        match response.status() {
            StatusCode::NO_CONTENT => {}
            StatusCode::NOT_FOUND => return Ok(None),
            _ => return Err(self.upload_failed(what, response).await),
        }
        // `Range: 0-LAST`; the reference registry also says `0-0` when it
        // has nothing, and chunks are never a single byte.
        let last = response
            .headers()
            .get(RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("0-"))
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| RegistryError::Invalid {
                what: what.to_owned(),
                message: "the registry gave no `Range` for the upload session".to_owned(),
            })?;
        let offset = if last == 0 { 0 } else { last + 1 };
        let location = match response.headers().get(LOCATION) {
            Some(_) => self.location(what, &response)?,
            None => location.clone(),
        };
        Ok(Some((location, offset)))
    }

    /// The manifest `reference` names, or `None` when the repository has none.
    pub async fn manifest_if_any(
        &self,
        reference: &str,
    ) -> Result<Option<(Vec<u8>, String)>, RegistryError> {
        let what = format!("the manifest {}:{reference}", self.reference.name());
        if !self
            .exists(&what, &format!("manifests/{reference}"))
            .await?
        {
            return Ok(None);
        }
        self.manifest(reference).await.map(Some)
    }

    /// Uploads a manifest under a tag or its digest, with its media type.
    /// Returns whether the registry answered with `OCI-Subject`, i.e. took
    /// note of the manifest's `subject` for its referrers API.
    pub async fn put_manifest(
        &self,
        reference: &str,
        media_type: &str,
        bytes: &bytes::Bytes,
    ) -> Result<bool, RegistryError> {
        let digest = Digest::of(bytes);
        let what = format!("the manifest {}:{reference}", self.reference.name());
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_str(media_type).map_err(|e| RegistryError::Malformed {
                what: format!("the media type `{media_type}` of {what}"),
                source: e.into(),
            })?,
        );
        let url = self.url(&format!("manifests/{reference}"));
        let payload = Payload::Bytes(bytes.clone());
        let response = self
            .send(
                &what,
                Method::PUT,
                &url,
                headers,
                Some((&payload, 0, bytes.len() as u64)),
            )
            .await?;
        if response.status() != StatusCode::CREATED {
            return Err(self.fail(&what, response).await);
        }
        self.check_returned_digest(&what, &response, &digest)?;
        Ok(response.headers().contains_key("oci-subject"))
    }

    /// The `Location` of an upload session, used as given (resolved against
    /// the registry when relative), query and all.
    fn location(&self, what: &str, response: &Response) -> Result<Url, RegistryError> {
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| RegistryError::Invalid {
                what: what.to_owned(),
                message: "the registry gave no upload `Location`".to_owned(),
            })?;
        self.base
            .join(location)
            .map_err(|e| RegistryError::Malformed {
                what: format!("the upload location `{location}` of {what}"),
                source: e.into(),
            })
    }

    fn check_returned_digest(
        &self,
        what: &str,
        response: &Response,
        expected: &Digest,
    ) -> Result<(), RegistryError> {
        let Some(returned) = response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
        else {
            return Ok(());
        };
        match returned.parse::<Digest>() {
            Ok(d) if d == *expected => Ok(()),
            _ => Err(RegistryError::Invalid {
                what: what.to_owned(),
                message: format!(
                    "the registry stored it as {returned}, but its digest is {expected}"
                ),
            }),
        }
    }
}

/// A blob download in progress: its temporary file in the cache, and the
/// hash of what it holds so far.
struct Partial {
    tmp: tempfile::NamedTempFile,
    sink: HashingWriter<std::io::BufWriter<std::fs::File>>,
}

impl Partial {
    fn new(cache: &Cache) -> Result<Partial, RegistryError> {
        let tmp = cache.temp_file()?;
        let file = tmp.reopen().map_err(|source| CacheError::Io {
            path: tmp.path().to_owned(),
            source,
        })?;
        Ok(Partial {
            sink: HashingWriter::new(std::io::BufWriter::new(file)),
            tmp,
        })
    }

    fn io(&self, source: std::io::Error) -> RegistryError {
        RegistryError::Cache(CacheError::Io {
            path: self.tmp.path().to_owned(),
            source,
        })
    }
}

fn octet_stream() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers
}
