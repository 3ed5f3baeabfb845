//! HTTP for strata: downloads into the cache, checked against their sha256
//! and size while they stream, and the retry policy shared with the registry
//! client.

pub mod body;
pub mod credentials;
pub mod fetch;
pub mod retry;
