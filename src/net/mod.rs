//! HTTP and TLS plumbing shared by both ends: the relay server and the transports of the
//! channel (the relay client, direct mode). Nothing here knows about sessions, seats or the
//! protocol; [`crate::relay`] and [`crate::channel`] both build on it and never on each other.
//!
//! - [`client`]: the HTTP client (TLS options, no proxies), retry with backoff and jitter,
//!   and the send loop both transports use;
//! - [`server`]: the accept loop (HTTP/1.1 and HTTP/2, TLS, connection limits, shutdown);
//! - [`connections`]: which open connections are idle and which to close;
//! - [`body`]: reading and discarding request bodies within limits;
//! - [`reply`]: building answers, decoding and echoing client-supplied text;
//! - [`tls`]: loading certificates and keys, and explaining TLS failures to people;
//! - [`mailbox`]: per-pair sequence admission and ordered queues, without any I/O;
//! - [`headers`]: the header names of the relay's HTTP interface, for both ends.

pub(crate) mod body;
pub mod client;
pub(crate) mod connections;
pub(crate) mod headers;
pub(crate) mod mailbox;
pub(crate) mod reply;
pub(crate) mod server;
pub mod tls;

use std::error::Error as StdError;

/// An error with its causes, "a: b: c" (reqwest's own message alone is terse).
pub fn chain(err: &dyn StdError) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
