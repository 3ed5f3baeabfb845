//! Retrying network work with exponential backoff. Every download and upload
//! goes through here, so "what is worth another try" is decided in one place.

use std::future::Future;
use std::time::Duration;

/// Whether a failed attempt may succeed if tried again.
pub trait Transient {
    fn transient(&self) -> bool;
}

/// How many times to try, and how long to wait before the second try; the
/// wait doubles after each failure.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub tries: u32,
    pub first: Duration,
}

impl Backoff {
    /// Mirrors and package downloads: short waits, a handful of tries.
    pub const DOWNLOAD: Backoff = Backoff {
        tries: 4,
        first: Duration::from_millis(200),
    };
    /// Registries: long enough (0.5 + 1 + 2 + 4 + 8 s) to ride out a restart.
    pub const REGISTRY: Backoff = Backoff {
        tries: 6,
        first: Duration::from_millis(500),
    };
}

pub async fn retry<T, E, F, Fut>(backoff: Backoff, mut attempt: F) -> Result<T, E>
where
    E: Transient,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut delay = backoff.first;
    let mut tries = 1;
    loop {
        match attempt().await {
            Err(e) if e.transient() && tries < backoff.tries => {
                tokio::time::sleep(delay).await;
                delay *= 2;
                tries += 1;
            }
            result => return result,
        }
    }
}

/// Connection trouble, timeouts, 5xx and 429 are worth another try; a 404 is not.
pub fn transient_http(e: &reqwest::Error) -> bool {
    e.is_connect()
        || e.is_timeout()
        || e.is_body()
        || e.is_request()
        || e.status().is_some_and(transient_status)
}

pub fn transient_status(status: reqwest::StatusCode) -> bool {
    status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS
}

/// The error with all its causes, as one line.
pub fn message(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}
