//! Downloads into the content-addressed cache: parallel, retried with
//! backoff, and checked against the expected sha256 and size while streaming,
//! so a wrong byte never reaches the cache. All network access of the package
//! stage goes through here; everything after it works offline.

use std::io::{Read, Write};
use std::path::PathBuf;

use futures_util::{StreamExt, TryStreamExt, stream};

use crate::body::{Body, BodyError, Timeouts};
use crate::credentials::Credentials;
use crate::retry::{Backoff, Transient};
use strata_cache::{Cache, CacheError};
use strata_oci::digest::{Digest, HashingWriter};

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum FetchError {
    #[error("cannot download `{url}`")]
    #[diagnostic(help("check the URL and the network{}", crate::retry::tries_note(*tries)))]
    Http {
        url: String,
        #[source]
        source: BodyError,
        tries: u32,
    },
    #[error(
        "`{url}` does not match its expected sha256: expected {expected} ({expected_size} bytes), got {actual} ({actual_size} bytes)"
    )]
    #[diagnostic(help(
        "the server sent different bytes than its signed index lists: the mirror may be out of sync or tampered with; nothing was cached"
    ))]
    Mismatch {
        url: String,
        expected: Digest,
        expected_size: u64,
        actual: Digest,
        actual_size: u64,
    },
    #[error("`{url}` does not exist on the server")]
    #[diagnostic(help("check the URL: the server answered 404 Not Found"))]
    NotFound { url: String },
    #[error("`{url}` is larger than the {cap} bytes strata reads from such a file")]
    #[diagnostic(help(
        "the server sent far more than an index page or metadata file holds: check the URL"
    ))]
    TooLarge { url: String, cap: u64 },
    #[error("offline, and {} file(s) are not in the cache: {}", missing.len(), missing.join(", "))]
    #[diagnostic(help("run the same build once without `--offline` to fill the cache"))]
    Offline { missing: Vec<String> },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Cache(#[from] CacheError),
    #[error("cannot start the download runtime")]
    Runtime(#[source] std::io::Error),
    #[error("cannot set up the HTTP client for downloads")]
    Client(#[source] reqwest::Error),
}

/// One file to download and what it must hash to.
#[derive(Debug, Clone)]
pub struct Download {
    pub url: String,
    pub sha256: Digest,
    /// `None` when the index does not say (PEP 700 made it optional).
    pub size: Option<u64>,
}

impl Download {
    fn check(&self, digest: Digest, size: u64) -> Result<(), FetchError> {
        if digest == self.sha256 && self.size.is_none_or(|s| s == size) {
            return Ok(());
        }
        Err(FetchError::Mismatch {
            url: self.url.clone(),
            expected: self.sha256,
            expected_size: self.size.unwrap_or(size),
            actual: digest,
            actual_size: size,
        })
    }
}

const PARALLEL: usize = 8;

pub struct Fetcher {
    client: reqwest::Client,
    timeouts: Timeouts,
    runtime: tokio::runtime::Runtime,
    cache: Cache,
    offline: bool,
    credentials: Credentials,
}

/// What [`Fetcher::get`] reads of a document at most when the caller names
/// no cap: a Debian `InRelease` is ~150 KB, so this is far past any real one
/// and far below what would exhaust memory.
const DEFAULT_CAP: u64 = 64 << 20;

impl Fetcher {
    pub fn new(cache: Cache, offline: bool, timeouts: Timeouts) -> Result<Fetcher, FetchError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(FetchError::Runtime)?;
        let client = timeouts.client().build().map_err(FetchError::Client)?;
        Ok(Fetcher {
            client,
            timeouts,
            runtime,
            cache,
            offline,
            credentials: Credentials::default(),
        })
    }

    /// Sends credentials with requests to the hosts they are for.
    pub fn with_credentials(mut self, credentials: Credentials) -> Fetcher {
        self.credentials = credentials;
        self
    }

    /// A GET of `url`, with the credentials for its host if any.
    fn request(&self, url: &str) -> reqwest::RequestBuilder {
        request(&self.client, &self.credentials, url)
    }

    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    pub fn offline(&self) -> bool {
        self.offline
    }

    /// Fetches a small file whole (an `InRelease`), with retries.
    pub fn get(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        self.get_document(url, None, DEFAULT_CAP)?
            .ok_or_else(|| FetchError::NotFound {
                url: url.to_owned(),
            })
    }

    /// Fetches small documents (index pages, metadata files) in parallel,
    /// each with retries and read up to `cap` bytes, asking for `accept`
    /// when given; a document the server says does not exist (404, 410) is
    /// `None`. Results come back in the order of `urls`.
    pub fn get_documents(
        &self,
        urls: &[String],
        accept: Option<&str>,
        cap: u64,
    ) -> Vec<Result<Option<Vec<u8>>, FetchError>> {
        if self.offline {
            return urls
                .iter()
                .map(|url| {
                    Err(FetchError::Offline {
                        missing: vec![url.clone()],
                    })
                })
                .collect();
        }
        self.runtime.block_on(
            stream::iter(urls)
                .map(|url| self.fetch_document(url, accept, cap))
                .buffered(PARALLEL)
                .collect(),
        )
    }

    /// One document, as [`Fetcher::get_documents`] fetches it.
    pub fn get_document(
        &self,
        url: &str,
        accept: Option<&str>,
        cap: u64,
    ) -> Result<Option<Vec<u8>>, FetchError> {
        let urls = [url.to_owned()];
        let mut results = self.get_documents(&urls, accept, cap);
        results.pop().unwrap_or(Ok(None))
    }

    async fn fetch_document(
        &self,
        url: &str,
        accept: Option<&str>,
        cap: u64,
    ) -> Result<Option<Vec<u8>>, FetchError> {
        tracing::debug!(url, "get");
        with_retries(url, || async {
            let mut request = self.request(url);
            if let Some(accept) = accept {
                request = request.header(reqwest::header::ACCEPT, accept);
            }
            let response = request.send().await?;
            if matches!(
                response.status(),
                reqwest::StatusCode::NOT_FOUND | reqwest::StatusCode::GONE
            ) {
                return Ok(None);
            }
            let mut response = Body::new(response.error_for_status()?, self.timeouts);
            // Read in chunks against the cap: a server may send without end.
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await? {
                if (body.len() + chunk.len()) as u64 > cap {
                    return Err(Failure::TooLarge(cap));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(Some(body))
        })
        .await
    }

    /// Makes sure every download is in the cache, fetching what is missing in
    /// parallel; returns the cached paths in the same order.
    pub fn fetch_all(&self, downloads: &[Download]) -> Result<Vec<PathBuf>, FetchError> {
        let missing: Vec<&Download> = downloads
            .iter()
            .filter(|d| self.cache.verified_blob(&d.sha256).is_none())
            .collect();
        tracing::info!(
            files = downloads.len(),
            cached = downloads.len() - missing.len(),
            "downloads"
        );
        if self.offline && !missing.is_empty() {
            return Err(FetchError::Offline {
                missing: missing.iter().map(|d| d.url.clone()).collect(),
            });
        }
        self.runtime.block_on(
            stream::iter(missing)
                .map(|d| self.download(d))
                .buffer_unordered(PARALLEL)
                .try_collect::<Vec<()>>(),
        )?;
        Ok(downloads
            .iter()
            .map(|d| self.cache.blob_path(&d.sha256))
            .collect())
    }

    /// Reads a file as it downloads, so that decoding overlaps the transfer.
    /// The bytes are hashed and cached on the way; the reader reports the end
    /// only once the whole file matched its digest, and an error otherwise, so
    /// nothing read from it can be trusted before it is verified. A cached
    /// file is read from the cache. Streams are not retried: on an error,
    /// callers fall back to [`Fetcher::fetch_all`], which is.
    pub fn open(&self, d: &Download) -> Result<Box<dyn Read + Send>, FetchError> {
        if let Some(path) = self.cache.verified_blob(&d.sha256) {
            tracing::debug!(url = %d.url, "cached");
            let file =
                std::fs::File::open(&path).map_err(|source| CacheError::Io { path, source })?;
            return Ok(Box::new(file));
        }
        if self.offline {
            return Err(FetchError::Offline {
                missing: vec![d.url.clone()],
            });
        }
        let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(64);
        let request = self.request(&d.url);
        let (cache, d, timeouts) = (self.cache.clone(), d.clone(), self.timeouts);
        self.runtime.spawn(async move {
            let result = stream_into_cache(request, timeouts, &cache, &d, &tx).await;
            if let Err(e) = result {
                let _ = tx.send(Err(std::io::Error::other(e))).await;
            }
        });
        Ok(Box::new(ChannelReader {
            rx,
            chunk: bytes::Bytes::new(),
        }))
    }

    async fn download(&self, d: &Download) -> Result<(), FetchError> {
        let tmp = self.cache.temp_file()?;
        tracing::debug!(url = %d.url, size = d.size, "download");
        let step = strata_progress::get().step("download", display_name(&d.url));
        if let Some(size) = d.size {
            step.set_length(size);
        }
        let io = |source| {
            Failure::Cache(CacheError::Io {
                path: tmp.path().to_owned(),
                source,
            })
        };
        let (digest, size) = with_retries(&d.url, || async {
            step.set_position(0);
            let response = self.request(&d.url).send().await?.error_for_status()?;
            let mut response = Body::new(response, self.timeouts);
            let file = tmp.reopen().map_err(io)?;
            file.set_len(0).map_err(io)?;
            let mut sink = HashingWriter::new(std::io::BufWriter::new(file));
            while let Some(chunk) = response.chunk().await? {
                sink.write_all(&chunk).map_err(io)?;
                step.inc(chunk.len() as u64);
            }
            let (mut writer, digest, size) = sink.finish();
            writer.flush().map_err(io)?;
            Ok((digest, size))
        })
        .await?;
        d.check(digest, size)?;
        self.cache.commit_blob(tmp, &digest)?;
        step.finish("");
        Ok(())
    }
}

/// How a download is named on its bar: the path under `dists/` for indexes
/// (their file names repeat), else the file name.
fn display_name(url: &str) -> &str {
    match url.split_once("/dists/") {
        Some((_, path)) => path,
        None => url.rsplit('/').next().unwrap_or(url),
    }
}

/// A GET of `url`, with the credentials for its host if any.
fn request(
    client: &reqwest::Client,
    credentials: &Credentials,
    url: &str,
) -> reqwest::RequestBuilder {
    let request = client.get(url);
    match credentials.for_url(url) {
        Some(basic) => request.basic_auth(&basic.user, Some(&basic.password)),
        None => request,
    }
}

async fn stream_into_cache(
    request: reqwest::RequestBuilder,
    timeouts: Timeouts,
    cache: &Cache,
    d: &Download,
    tx: &tokio::sync::mpsc::Sender<std::io::Result<bytes::Bytes>>,
) -> Result<(), FetchError> {
    // Streams are not retried: one try.
    let http = |source| FetchError::Http {
        url: d.url.clone(),
        source,
        tries: 1,
    };
    let tmp = cache.temp_file()?;
    let io = |source| CacheError::Io {
        path: tmp.path().to_owned(),
        source,
    };
    let mut sink = HashingWriter::new(std::io::BufWriter::new(tmp.reopen().map_err(io)?));
    tracing::debug!(url = %d.url, size = d.size, "stream");
    let step = strata_progress::get().step("download", display_name(&d.url));
    if let Some(size) = d.size {
        step.set_length(size);
    }
    let response = request
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| http(e.into()))?;
    let mut response = Body::new(response, timeouts);
    while let Some(chunk) = response.chunk().await.map_err(http)? {
        sink.write_all(&chunk).map_err(io)?;
        step.inc(chunk.len() as u64);
        if tx.send(Ok(chunk)).await.is_err() {
            // The reader gave up: keep nothing.
            return Ok(());
        }
    }
    let (mut writer, digest, size) = sink.finish();
    writer.flush().map_err(io)?;
    d.check(digest, size)?;
    cache.commit_blob(tmp, &digest)?;
    step.finish("");
    Ok(())
}

/// The consuming end of a streamed download.
struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<std::io::Result<bytes::Bytes>>,
    chunk: bytes::Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.chunk.is_empty() {
            match self.rx.blocking_recv() {
                None => return Ok(0),
                Some(chunk) => self.chunk = chunk?,
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}

/// Why one attempt failed; `retry` decides whether to try again.
enum Failure {
    Http(BodyError, u32),
    /// A document past its cap: the same bytes would come again.
    TooLarge(u64),
    /// Writing to the cache: no use trying again.
    Cache(CacheError),
}

impl From<reqwest::Error> for Failure {
    fn from(e: reqwest::Error) -> Self {
        Failure::Http(e.into(), 1)
    }
}

impl From<BodyError> for Failure {
    fn from(e: BodyError) -> Self {
        Failure::Http(e, 1)
    }
}

impl Transient for Failure {
    fn transient(&self) -> bool {
        match self {
            Failure::Http(e, _) => crate::retry::is_transient(e),
            Failure::TooLarge(_) | Failure::Cache(_) => false,
        }
    }

    fn tried(&mut self, tries: u32) {
        if let Failure::Http(_, n) = self {
            *n = tries;
        }
    }
}

async fn with_retries<T, F, Fut>(url: &str, attempt: F) -> Result<T, FetchError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Failure>>,
{
    crate::retry::retry(Backoff::DOWNLOAD, attempt)
        .await
        .map_err(|failure| match failure {
            Failure::Http(source, tries) => FetchError::Http {
                url: url.to_owned(),
                source,
                tries,
            },
            Failure::TooLarge(cap) => FetchError::TooLarge {
                url: url.to_owned(),
                cap,
            },
            Failure::Cache(e) => FetchError::Cache(e),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// A loopback HTTP server that reads each request and hands the
    /// connection to `respond`, one thread per connection; also gives how
    /// many requests came.
    fn serve(respond: fn(&mut TcpStream)) -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "http://{}/dists/stable/InRelease",
            listener.local_addr().unwrap()
        );
        let count = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&count);
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                counted.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || {
                    let mut request = [0; 4096];
                    let _ = stream.read(&mut request);
                    respond(&mut stream);
                });
            }
        });
        (url, count)
    }

    fn fetcher(window: Duration) -> (tempfile::TempDir, Fetcher) {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(dir.path().to_owned()).unwrap();
        let fetcher = Fetcher::new(cache, false, Timeouts { window }).unwrap();
        (dir, fetcher)
    }

    #[test]
    fn an_endless_document_stops_at_its_cap() {
        let (url, count) = serve(|stream| {
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n");
            let block = vec![b'x'; 1 << 16];
            while stream.write_all(&block).is_ok() {}
        });
        let (_dir, fetcher) = fetcher(Duration::from_secs(30));
        let err = fetcher.get(&url).unwrap_err();
        assert!(
            matches!(&err, FetchError::TooLarge { cap, .. } if *cap == DEFAULT_CAP),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!("`{url}` is larger than the {DEFAULT_CAP} bytes strata reads from such a file")
        );
        // The same bytes would come again: not retried.
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_trickling_server_fails_after_the_retries() {
        // A byte every 100 ms: never silent for a whole window, as reqwest's
        // read timeout would need, yet far too slow.
        let (url, count) = serve(|stream| {
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n");
            while stream.write_all(b"x").is_ok() {
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let (_dir, fetcher) = fetcher(Duration::from_secs(1));
        let err = fetcher.get(&url).unwrap_err();
        let FetchError::Http { source, .. } = &err else {
            panic!("{err:?}");
        };
        assert!(
            matches!(source, BodyError::Stalled { window, .. } if window.as_secs() == 1),
            "{source:?}"
        );
        assert!(
            source.to_string().starts_with("the server sent "),
            "{source}"
        );
        assert_eq!(
            count.load(Ordering::SeqCst),
            Backoff::DOWNLOAD.tries as usize
        );
    }

    #[test]
    fn the_help_counts_the_tries_made() {
        use miette::Diagnostic;
        let (url, count) = serve(|stream| {
            let _ = stream.write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n");
        });
        let (_dir, fetcher) = fetcher(Duration::from_secs(30));
        let download = Download {
            url: url.clone(),
            sha256: Digest::of(b"x"),
            size: None,
        };
        let err = fetcher.fetch_all(&[download]).unwrap_err();
        assert!(matches!(err, FetchError::Http { tries: 1, .. }), "{err:?}");
        assert_eq!(
            err.help().unwrap().to_string(),
            "check the URL and the network"
        );
        assert_eq!(count.load(Ordering::SeqCst), 1);

        let (url, count) = serve(|stream| {
            let _ = stream.write_all(b"HTTP/1.1 503 Busy\r\ncontent-length: 0\r\n\r\n");
        });
        let download = Download {
            url,
            sha256: Digest::of(b"x"),
            size: None,
        };
        let err = fetcher.fetch_all(&[download]).unwrap_err();
        assert_eq!(
            err.help().unwrap().to_string(),
            "check the URL and the network; strata tried 4 times"
        );
        assert_eq!(count.load(Ordering::SeqCst), 4);
    }
}
