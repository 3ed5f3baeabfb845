//! Retrying network work with exponential backoff. Every download and upload
//! goes through here, so "what is worth another try" is decided in one place.

use std::error::Error;
use std::future::Future;
use std::io;
use std::time::Duration;

use crate::body::BodyError;

/// Whether a failed attempt may succeed if tried again.
pub trait Transient {
    fn transient(&self) -> bool;

    /// Told how many tries were made when this error ends them, for errors
    /// that say so: counted here, so that no message guesses.
    fn tried(&mut self, _tries: u32) {}
}

/// What a help adds about tries: nothing after one, since a second try was
/// not worth it.
pub fn tries_note(tries: u32) -> String {
    if tries > 1 {
        format!("; strata tried {tries} times")
    } else {
        String::new()
    }
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
            Err(mut e) => {
                e.tried(tries);
                return Err(e);
            }
            ok => return ok,
        }
    }
}

/// Whether an error is worth another try, judged by the types in its
/// `source()` chain, never by its text: refused, reset or timed-out
/// connections, a connection closed mid-message, 5xx and 429 are; a 404, a
/// bad URL, a TLS or DNS failure are not, as they would fail the same way.
pub fn is_transient(err: &(dyn Error + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(e) = e.downcast_ref::<reqwest::Error>() {
            return transient_reqwest(e);
        }
        if let Some(e) = e.downcast_ref::<BodyError>() {
            return match e {
                BodyError::Http(e) => transient_reqwest(e),
                // A server may stall for a while and recover.
                BodyError::Stalled { .. } => true,
            };
        }
        if let Some(e) = e.downcast_ref::<io::Error>() {
            if transient_kind(e.kind()) {
                return true;
            }
            next = io_cause(e);
            continue;
        }
        next = e.source();
    }
    false
}

fn transient_reqwest(e: &reqwest::Error) -> bool {
    if let Some(status) = e.status() {
        return transient_status(status);
    }
    if e.is_timeout() {
        return true;
    }
    // Builder and redirect errors come out the same on every try; connect,
    // request, body and decode errors are judged by what broke beneath: a
    // body cut short comes out of reqwest as a decode error over hyper's
    // incomplete message, while bad gzip is an `InvalidData` beneath it.
    if !(e.is_connect() || e.is_request() || e.is_body() || e.is_decode()) {
        return false;
    }
    let mut next = e.source();
    while let Some(cause) = next {
        if let Some(io) = cause.downcast_ref::<io::Error>() {
            if transient_kind(io.kind()) {
                return true;
            }
            next = io_cause(io);
            continue;
        }
        if let Some(h) = cause.downcast_ref::<hyper::Error>()
            && (h.is_incomplete_message() || h.is_canceled() || h.is_closed())
        {
            return true;
        }
        if let Some(h) = cause.downcast_ref::<h2::Error>() {
            // A GOAWAY or a refused stream is a server going away or
            // shedding load; h2 keeps its I/O error out of `source()`.
            if h.is_go_away() || h.reason() == Some(h2::Reason::REFUSED_STREAM) {
                return true;
            }
            if let Some(io) = h.get_io()
                && transient_kind(io.kind())
            {
                return true;
            }
        }
        next = cause.source();
    }
    false
}

fn transient_kind(kind: io::ErrorKind) -> bool {
    use io::ErrorKind::*;
    matches!(
        kind,
        ConnectionRefused
            | ConnectionReset
            | ConnectionAborted
            | TimedOut
            | UnexpectedEof
            | BrokenPipe
            | Interrupted
    )
}

/// The error an `io::Error` wraps: its `source()` skips that error and
/// answers the wrapped error's own source.
fn io_cause(e: &io::Error) -> Option<&(dyn Error + 'static)> {
    e.get_ref().map(|inner| inner as &(dyn Error + 'static))
}

pub fn transient_status(status: reqwest::StatusCode) -> bool {
    status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot do the thing")]
    struct Wrapped(#[source] Box<dyn Error + Send + Sync>);

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// A loopback port nothing listens on: bound, then closed.
    fn closed_port() -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    }

    fn get(url: &str) -> reqwest::Error {
        runtime().block_on(async {
            reqwest::Client::new()
                .get(url)
                .send()
                .await
                .expect_err("the request fails")
        })
    }

    #[test]
    fn a_refused_connection_is_transient_even_when_wrapped() {
        let e = get(&format!("http://127.0.0.1:{}/", closed_port()));
        assert!(e.is_connect(), "{e:?}");
        assert!(is_transient(&e));
        let wrapped = Wrapped(Box::new(e));
        assert!(is_transient(&wrapped));
        // Also when the chain passes through an `io::Error` wrapping it.
        let io = io::Error::other(wrapped);
        assert!(is_transient(&io));
    }

    #[test]
    fn io_errors_by_kind() {
        for kind in [
            io::ErrorKind::ConnectionReset,
            io::ErrorKind::ConnectionRefused,
            io::ErrorKind::TimedOut,
            io::ErrorKind::BrokenPipe,
            io::ErrorKind::UnexpectedEof,
        ] {
            let e = Wrapped(Box::new(io::Error::new(kind, "lost")));
            assert!(is_transient(&e), "{kind:?}");
        }
        for kind in [
            io::ErrorKind::NotFound,
            io::ErrorKind::PermissionDenied,
            io::ErrorKind::InvalidData,
        ] {
            let e = Wrapped(Box::new(io::Error::new(kind, "no")));
            assert!(!is_transient(&e), "{kind:?}");
        }
        // Text that looks transient does not make an error so.
        let e = Wrapped("Connection refused (os error 111): timed out".into());
        assert!(!is_transient(&e));
    }

    #[test]
    fn statuses() {
        let status = |code| reqwest::StatusCode::from_u16(code).unwrap();
        assert!(transient_status(status(503)));
        assert!(transient_status(status(429)));
        assert!(!transient_status(status(404)));
        assert!(!transient_status(status(401)));
    }

    /// A one-shot HTTP server on loopback that answers every request with `status`.
    fn answering(status: u16) -> String {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            if let Ok((mut stream, _)) = listener.accept() {
                let mut buf = [0; 4096];
                let _ = stream.read(&mut buf);
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
            }
        });
        format!("http://{addr}/")
    }

    fn status_error(status: u16) -> reqwest::Error {
        let url = answering(status);
        runtime().block_on(async {
            reqwest::Client::new()
                .get(&url)
                .send()
                .await
                .unwrap()
                .error_for_status()
                .expect_err("an error status")
        })
    }

    #[test]
    fn status_errors_from_a_real_server() {
        assert!(!is_transient(&status_error(404)));
        assert!(is_transient(&Wrapped(Box::new(status_error(503)))));
    }

    #[test]
    fn a_body_cut_short_is_transient() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            if let Ok((mut stream, _)) = listener.accept() {
                let mut buf = [0; 4096];
                let _ = stream.read(&mut buf);
                let _ =
                    stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\nonly this");
            }
        });
        let e = runtime().block_on(async {
            let response = reqwest::Client::new().get(&url).send().await.unwrap();
            response.bytes().await.expect_err("the body is cut short")
        });
        assert!(is_transient(&e), "{e:?}");
        assert!(is_transient(&Wrapped(Box::new(BodyError::Http(e)))));
    }

    #[test]
    fn tries_are_counted() {
        #[derive(Debug)]
        struct Failed {
            transient: bool,
            tries: u32,
        }
        impl Transient for Failed {
            fn transient(&self) -> bool {
                self.transient
            }
            fn tried(&mut self, tries: u32) {
                self.tries = tries;
            }
        }
        let backoff = Backoff {
            tries: 3,
            first: Duration::from_millis(1),
        };
        for (transient, tries) in [(false, 1), (true, 3)] {
            let e = runtime()
                .block_on(retry(backoff, || async {
                    Err::<(), _>(Failed {
                        transient,
                        tries: 0,
                    })
                }))
                .unwrap_err();
            assert_eq!(e.tries, tries);
        }
        assert_eq!(tries_note(1), "");
        assert_eq!(tries_note(3), "; strata tried 3 times");
    }

    #[test]
    fn set_up_and_tls_failures_are_not_transient() {
        // A builder error: an invalid URL.
        let e = get("http://exa mple.invalid:99999/");
        assert!(e.is_builder(), "{e:?}");
        assert!(!is_transient(&e));
        // A TLS configuration error: a CA certificate that is not one.
        let garbage = reqwest::Certificate::from_der(b"not a certificate").unwrap();
        let e = reqwest::Client::builder()
            .add_root_certificate(garbage)
            .build()
            .expect_err("a broken CA certificate");
        assert!(e.is_builder(), "{e:?}");
        assert!(!is_transient(&e));
        // A TLS handshake with something that does not speak TLS: a
        // connect error, but one that would fail the same way again.
        let url = answering(200).replace("http://", "https://");
        let e = get(&url);
        assert!(e.is_connect(), "{e:?}");
        assert!(!is_transient(&e), "{e:?}");
    }
}
