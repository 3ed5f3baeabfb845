//! Reading response bodies under a pace: every body read over the network
//! goes through [`Body`], so a server that stops sending, or trickles a byte
//! now and then to keep the connection open, fails the read instead of
//! holding a build forever. reqwest's own read timeout only catches silence,
//! not a trickle.

use std::time::Duration;

use tokio::time::Instant;

/// The variable that sets [`Timeouts::window`] in seconds.
pub const TIMEOUT_VARIABLE: &str = "STRATA_TIMEOUT";

/// At least this many bytes must arrive in every window: one byte every two
/// seconds is a stalled server, a slow mirror still sends kilobytes.
pub const MIN_BYTES: u64 = 1024;

/// How long the network may take before strata gives up on a try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Opening a connection, and each window of a body in which at least
    /// [`MIN_BYTES`] must arrive.
    pub window: Duration,
}

impl Default for Timeouts {
    /// 30 seconds, as apt's `Acquire::http::Timeout`.
    fn default() -> Timeouts {
        Timeouts {
            window: Duration::from_secs(30),
        }
    }
}

impl Timeouts {
    /// The default, unless `STRATA_TIMEOUT` gives another number of seconds.
    pub fn from_env() -> Result<Timeouts, TimeoutError> {
        let Ok(text) = std::env::var(TIMEOUT_VARIABLE) else {
            return Ok(Timeouts::default());
        };
        let window = text
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|s| *s > 0)
            .map(Duration::from_secs)
            .ok_or(TimeoutError { value: text })?;
        Ok(Timeouts { window })
    }

    /// A client builder with these timeouts set.
    pub fn client(&self) -> reqwest::ClientBuilder {
        reqwest::Client::builder()
            .user_agent(concat!("strata/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(self.window)
            .read_timeout(self.window)
    }
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("`{TIMEOUT_VARIABLE}` must be a whole number of seconds above 0, not `{value}`")]
#[diagnostic(help("unset it for the default of 30 seconds"))]
pub struct TimeoutError {
    value: String,
}

/// Why a body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error(transparent)]
    Http(#[from] reqwest::Error),
    #[error(
        "the server sent {got} bytes in {} seconds, less than the {MIN_BYTES} bytes strata waits for in that time (`{TIMEOUT_VARIABLE}` sets the seconds)",
        window.as_secs()
    )]
    Stalled { got: u64, window: Duration },
}

/// A response body read chunk by chunk, failing when a window passes with
/// fewer than [`MIN_BYTES`] received.
pub struct Body {
    response: reqwest::Response,
    window: Duration,
    /// When the current window ends, and what it has brought so far.
    deadline: Instant,
    got: u64,
}

impl Body {
    pub fn new(response: reqwest::Response, timeouts: Timeouts) -> Body {
        Body {
            response,
            window: timeouts.window,
            deadline: Instant::now() + timeouts.window,
            got: 0,
        }
    }

    pub async fn chunk(&mut self) -> Result<Option<bytes::Bytes>, BodyError> {
        let stalled = BodyError::Stalled {
            got: self.got,
            window: self.window,
        };
        let chunk = tokio::time::timeout_at(self.deadline, self.response.chunk())
            .await
            .map_err(|_| stalled)?
            .map_err(BodyError::Http)?;
        if let Some(chunk) = &chunk {
            self.got += chunk.len() as u64;
            if self.got >= MIN_BYTES {
                // This window did its part: the next one starts now.
                self.deadline = Instant::now() + self.window;
                self.got = 0;
            }
        }
        Ok(chunk)
    }
}
