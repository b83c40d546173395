//! The HTTP client both transports use (the relay client and direct mode): TLS options,
//! retry with exponential backoff and jitter, and the send loop that keeps retrying a frame
//! until it is delivered, refused, or its deadline passes.

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode, Url};

use super::chain;
use super::tls;

/// First and largest delay between retries after an error.
const BACKOFF_START: Duration = Duration::from_millis(5);
const BACKOFF_CAP: Duration = Duration::from_secs(1);

/// TLS options of an HTTP client (for the relay or for direct-mode peers).
#[derive(Debug, Clone, Default)]
pub struct ClientTls {
    /// PEM file with the CA certificate(s) to trust *instead of* the system's roots (for
    /// servers with certificates from a private CA).
    pub ca_cert: Option<PathBuf>,
    /// PEM files with the client certificate (chain) and its private key, presented to
    /// servers that demand one.
    pub identity: Option<(PathBuf, PathBuf)>,
}

/// Builds the HTTP client used for the relay and for direct-mode peers: TLS per `tls`,
/// no proxies (loopback and LAN addresses must not go through one), `TCP_NODELAY`.
pub fn http_client(tls: &ClientTls, connect_timeout: Duration) -> Result<Client, String> {
    tls::install_crypto_provider();
    let mut builder = Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .connect_timeout(connect_timeout);
    if let Some(ca) = &tls.ca_cert {
        let certs = tls::load_certs(ca, "CA certificate").map_err(|e| e.to_string())?;
        tls::load_roots(ca, "CA certificate").map_err(|e| e.to_string())?;
        let certs = certs
            .iter()
            .map(|der| reqwest::Certificate::from_der(der))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| format!("cannot use the CA certificate in {}: {err}", ca.display()))?;
        builder = builder.tls_certs_only(certs);
    }
    if let Some((cert, key)) = &tls.identity {
        // Check both files first, for clear messages.
        tls::load_certs(cert, "client certificate").map_err(|e| e.to_string())?;
        tls::load_key(key).map_err(|e| e.to_string())?;
        let mut pem =
            std::fs::read(cert).map_err(|err| format!("cannot read {}: {err}", cert.display()))?;
        pem.push(b'\n');
        pem.extend(
            std::fs::read(key).map_err(|err| format!("cannot read {}: {err}", key.display()))?,
        );
        let identity = reqwest::Identity::from_pem(&pem).map_err(|err| {
            format!(
                "cannot use the client certificate {} with the key {}: {}",
                cert.display(),
                key.display(),
                chain(&err)
            )
        })?;
        builder = builder.identity(identity);
    }
    builder
        .build()
        .map_err(|err| format!("cannot create an HTTP client: {}", chain(&err)))
}

/// `base` with `parts` appended as (percent-encoded) path segments.
pub(crate) fn endpoint(base: &Url, parts: &[&str]) -> Result<Url, String> {
    let mut url = base.clone();
    url.set_query(None);
    url.set_fragment(None);
    {
        let mut segments = url
            .path_segments_mut()
            .map_err(|()| format!("'{base}' cannot have a path"))?;
        segments.pop_if_empty();
        for part in parts {
            segments.push(part);
        }
    }
    Ok(url)
}

/// Statuses worth retrying: the server is busy (429) or failing (5xx).
pub(crate) fn retryable(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

/// The (trimmed, bounded) text of a response, for error messages.
pub(crate) async fn body_text(resp: reqwest::Response) -> String {
    match resp.bytes().await {
        Ok(body) => {
            let text = String::from_utf8_lossy(&body[..body.len().min(1000)]);
            let text = text.trim();
            if text.is_empty() {
                "(no explanation)".to_string()
            } else {
                text.to_string()
            }
        }
        Err(err) => format!("(answer unreadable: {})", chain(&err)),
    }
}

/// Exponential backoff with jitter, from [`BACKOFF_START`] to [`BACKOFF_CAP`].
pub(crate) struct Backoff {
    current: Duration,
}

impl Backoff {
    /// A backoff starting at its smallest delay.
    pub(crate) fn new() -> Self {
        Self {
            current: BACKOFF_START,
        }
    }

    /// The next delay: the current step times a random factor in [0.5, 1.5).
    pub(crate) fn next_delay(&mut self) -> Duration {
        let delay = self.current.mul_f64(rand::random_range(0.5..1.5));
        self.current = (self.current * 2).min(BACKOFF_CAP);
        delay
    }

    /// Sleeps the next delay, cut short at `deadline`; returns false once the deadline has
    /// passed (the caller then gives up).
    pub(crate) async fn sleep_before(&mut self, deadline: Instant) -> bool {
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        // Never give up before the deadline: when the next delay would pass it, sleep until
        // the deadline instead and try once more.
        let delay = self.next_delay().min(deadline - now);
        tokio::time::sleep(delay).await;
        true
    }
}

/// A request that got no usable answer.
pub(crate) enum Attempt<E> {
    /// Worth retrying; why it failed this time.
    Retry(String),
    /// Not worth retrying (TLS misconfiguration, a lost session, ...).
    Stop(E),
}

/// How a send that did not fail for good ended.
pub(crate) enum Delivery {
    /// The receiver accepted it (2xx).
    Delivered,
    /// The receiver refused it with a status not worth retrying.
    Refused {
        /// Its status.
        status: StatusCode,
        /// Its explanation.
        body: String,
    },
    /// The deadline passed while retrying; the last reason.
    GaveUp(String),
}

/// Sends with `attempt` until the answer is a success or a refusal not worth retrying, or
/// until `deadline`. Busy (429) and failing (5xx) answers and [`Attempt::Retry`] are retried
/// with backoff; `answerer` names the receiver in the reason kept for giving up ("the
/// relay", "it"). `before_retry` runs before every pause, so that a receiver known to be
/// gone ends the loop at once.
pub(crate) async fn deliver<E, F, Fut>(
    deadline: Instant,
    answerer: &str,
    mut attempt: F,
    mut before_retry: impl FnMut() -> Result<(), E>,
) -> Result<Delivery, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<reqwest::Response, Attempt<E>>>,
{
    let mut backoff = Backoff::new();
    loop {
        let why = match attempt().await {
            Ok(resp) if resp.status().is_success() => return Ok(Delivery::Delivered),
            Ok(resp) if retryable(resp.status()) => {
                let status = resp.status();
                format!("{answerer} answered {status}: {}", body_text(resp).await)
            }
            Ok(resp) => {
                let status = resp.status();
                return Ok(Delivery::Refused {
                    status,
                    body: body_text(resp).await,
                });
            }
            Err(Attempt::Retry(why)) => why,
            Err(Attempt::Stop(err)) => return Err(err),
        };
        before_retry()?;
        if !backoff.sleep_before(deadline).await {
            return Ok(Delivery::GaveUp(why));
        }
    }
}
