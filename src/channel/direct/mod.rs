//! Direct mode: no relay. Every endpoint (each party, and the dealer if there is one) runs a
//! small HTTP server on the port of its own URL and peers POST frames to it.
//!
//! Routes of an endpoint (one session per process):
//!
//! | route | meaning |
//! |---|---|
//! | `GET /health` | liveness, and who this is: `{"status", "version", "session", "endpoint", "peers"}` |
//! | `POST /sessions/{session}/msg/{from}?seq=N` | frame number `N` from endpoint `from` (body: the frame) |
//! | `POST /sessions/{session}/alive/{from}` | heartbeat: `from` is still running |
//!
//! Exactly once, in order: the receiver accepts frame `N` from `from` only when it is the next
//! one; a repeated POST (a retry whose answer was lost) is answered 200 and ignored; a gap
//! is refused with 409. Frames that arrive before the protocol asks for them are buffered,
//! up to a byte limit per sender; beyond it the receiver answers 429 and the sender retries
//! with exponential backoff and jitter, as it does while a peer is not up yet.
//!
//! Liveness: every endpoint POSTs a heartbeat to every peer each second; a peer silent for
//! [`LOST_AFTER`] is reported lost ([`ChannelError::PeerLost`]) to whoever waits on it.

//!
//! The module is split into this file (setting up, sending, receiving), the routes and
//! buffers of the receiving side ([`inbox`]) and the wait for peers to come up ([`wait`]).

mod inbox;
mod wait;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::Request;
use hyper::body::Incoming;
use hyper::header;
use reqwest::{Client, Url};
use tokio::sync::oneshot;
use tokio::task::{AbortHandle, JoinHandle};

use super::{ChannelError, LostReason, PeerNames, Transport, TransportFailure};
use crate::net::chain;
use crate::net::client::{Attempt, ClientTls, deliver, endpoint, http_client};
use crate::net::server::serve_http;
use crate::net::tls::{self, ServerTlsFiles, explain_tls_failure};
use inbox::Inbox;
use wait::short_reason;

/// Interval between heartbeats to every peer.
pub const HEARTBEAT: Duration = Duration::from_secs(1);

/// A peer not heard from (heartbeat or frame) for this long is reported lost.
pub const LOST_AFTER: Duration = Duration::from_secs(6);

/// Timeout of requests that should answer at once (health, heartbeat).
const QUICK_REQUEST: Duration = Duration::from_secs(3);

/// How often a waiting receive re-checks that its peer is alive.
const LIVENESS_CHECK: Duration = Duration::from_millis(500);

/// Memory limits of an endpoint's inbox.
#[derive(Debug, Clone, Copy)]
pub struct DirectLimits {
    /// Largest frame accepted (larger: 413).
    pub max_frame: usize,
    /// Most bytes buffered from one sender before the protocol takes them (beyond: 429,
    /// the sender retries). A frame arriving at an empty buffer is always accepted.
    pub max_buffered: usize,
}

impl Default for DirectLimits {
    fn default() -> Self {
        Self {
            max_frame: (16 << 20) + 4096,
            max_buffered: 64 << 20,
        }
    }
}

/// How one endpoint of a direct-mode session is set up.
#[derive(Debug, Clone)]
pub struct DirectConfig {
    /// Every endpoint's URL in peer order (parties `0..parties`, then the dealer if any);
    /// entry `me` is this endpoint's own.
    pub urls: Vec<String>,
    /// This endpoint's peer number.
    pub me: usize,
    /// Number of computing parties (peer `parties`, if listed, is the dealer).
    pub parties: usize,
    /// The session name; this endpoint serves only this session.
    pub session: String,
    /// How long to wait for peers to come up, and how long a send may keep retrying.
    pub timeout: Duration,
    /// Where to listen; by default the host and port of this endpoint's URL (all
    /// interfaces if the host is a name other than `localhost`).
    pub listen: Option<SocketAddr>,
    /// TLS options of the client side (peers with `https://` URLs).
    pub client_tls: ClientTls,
    /// Certificate and key to serve with; required when this endpoint's URL is `https://`.
    pub server_tls: Option<ServerTlsFiles>,
    /// Inbox limits.
    pub limits: DirectLimits,
}

/// One endpoint of a direct-mode session; see the module documentation.
pub struct DirectTransport {
    me: usize,
    names: PeerNames,
    session: String,
    timeout: Duration,
    client: Client,
    /// `urls[j]`: peer j's URL as given.
    urls: Vec<Url>,
    /// `msg_urls[j]`: where frames to peer j go (`None` for this endpoint).
    msg_urls: Vec<Option<Url>>,
    health_urls: Vec<Option<Url>>,
    inbox: Arc<Inbox>,
    local_addr: SocketAddr,
    server: Mutex<Option<(oneshot::Sender<()>, JoinHandle<()>)>>,
    heartbeat: Mutex<Option<AbortHandle>>,
}

/// The address to listen on for an endpoint whose URL is `url`.
pub fn listen_addr(url: &Url) -> Result<SocketAddr, String> {
    let port = url
        .port_or_known_default()
        .ok_or_else(|| format!("'{url}' has no port"))?;
    let ip = match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
        Some(url::Host::Domain("localhost")) => IpAddr::V4(Ipv4Addr::LOCALHOST),
        Some(url::Host::Domain(_)) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        None => return Err(format!("'{url}' has no host")),
    };
    Ok(SocketAddr::new(ip, port))
}

/// Parses an endpoint URL: `http://` or `https://` with a host, nothing after the path.
pub fn parse_url(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw).map_err(|err| format!("'{raw}' is not a valid URL: {err}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err(format!("'{raw}' is not an http:// or https:// URL"));
    }
    if url.host().is_none() {
        return Err(format!("'{raw}' has no host"));
    }
    Ok(url)
}

impl DirectTransport {
    /// Starts this endpoint's HTTP server (it answers at once; frames from peers that start
    /// earlier are buffered) and its heartbeat. Call [`wait_for_peers`](Self::wait_for_peers)
    /// before sending.
    pub async fn start(config: DirectConfig) -> Result<DirectTransport, ChannelError> {
        let names = PeerNames::new(config.parties);
        let me_name = names.name(config.me);
        let fail = |detail: TransportFailure| ChannelError::Transport {
            peer: me_name.clone(),
            detail,
        };
        let config_fail = |why: String| fail(TransportFailure::Config(why));
        let peers = config.urls.len();
        if config.me >= peers {
            return Err(fail(TransportFailure::NotAmongUrls {
                me: config.me,
                urls: peers,
            }));
        }
        if config.session.is_empty() {
            return Err(fail(TransportFailure::EmptySession));
        }
        let urls = config
            .urls
            .iter()
            .map(|raw| parse_url(raw))
            .collect::<Result<Vec<_>, _>>()
            .map_err(config_fail)?;
        let own = &urls[config.me];
        let tls = match (own.scheme(), &config.server_tls) {
            ("https", Some(files)) => {
                Some(tls::acceptor(files).map_err(|e| config_fail(e.to_string()))?)
            }
            ("https", None) => {
                return Err(fail(TransportFailure::HttpsWithoutCertificate(
                    own.to_string(),
                )));
            }
            _ => None,
        };
        let client = http_client(&config.client_tls, config.timeout.min(QUICK_REQUEST * 3))
            .map_err(config_fail)?;
        let build = |url: &Url, parts: &[&str]| endpoint(url, parts).map_err(config_fail);
        let me_str = config.me.to_string();
        let mut msg_urls = Vec::with_capacity(peers);
        let mut alive_urls = Vec::with_capacity(peers);
        let mut health_urls = Vec::with_capacity(peers);
        for (peer, url) in urls.iter().enumerate() {
            if peer == config.me {
                msg_urls.push(None);
                alive_urls.push(None);
                health_urls.push(None);
            } else {
                msg_urls.push(Some(build(
                    url,
                    &["sessions", &config.session, "msg", &me_str],
                )?));
                alive_urls.push(Some(build(
                    url,
                    &["sessions", &config.session, "alive", &me_str],
                )?));
                health_urls.push(Some(build(url, &["health"])?));
            }
        }

        let listen = match config.listen {
            Some(addr) => addr,
            None => listen_addr(own).map_err(config_fail)?,
        };
        let listener = tokio::net::TcpListener::bind(listen).await.map_err(|err| {
            fail(TransportFailure::CannotListen {
                addr: listen,
                url: own.to_string(),
                why: err.to_string(),
            })
        })?;
        let local_addr = listener
            .local_addr()
            .map_err(|err| config_fail(err.to_string()))?;
        let inbox = Arc::new(Inbox::new(
            config.session.clone(),
            config.me,
            peers,
            config.parties,
            config.limits,
        ));
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let handler = {
            let inbox = inbox.clone();
            move |req: Request<Incoming>| {
                let inbox = inbox.clone();
                async move { inbox::handle(&inbox, req).await }
            }
        };
        let server = tokio::spawn(serve_http(
            listener,
            tls,
            handler,
            async {
                let _ = stop_rx.await;
            },
            || {},
        ));
        tracing::debug!(%local_addr, "direct-mode endpoint {me_name} listening");
        let heartbeat = tokio::spawn(heartbeat(client.clone(), alive_urls)).abort_handle();
        Ok(DirectTransport {
            me: config.me,
            names,
            session: config.session,
            timeout: config.timeout,
            client,
            urls,
            msg_urls,
            health_urls,
            inbox,
            local_addr,
            server: Mutex::new(Some((stop_tx, server))),
            heartbeat: Mutex::new(Some(heartbeat)),
        })
    }

    /// The address this endpoint's server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// This endpoint's peer number.
    pub fn me(&self) -> usize {
        self.me
    }

    /// The session served.
    pub fn session(&self) -> &str {
        &self.session
    }

    /// How peer `i` is named in messages: "party 2 at http://...".
    fn describe(&self, peer: usize) -> String {
        match self.urls.get(peer) {
            Some(url) => format!(
                "{} at {}",
                self.names.name(peer),
                url.as_str().trim_end_matches('/')
            ),
            None => self.names.name(peer),
        }
    }

    /// How TLS messages name peer `i`: "party 2 (https://...)".
    fn tls_whom(&self, peer: usize) -> String {
        match self.urls.get(peer) {
            Some(url) => format!(
                "{} ({})",
                self.names.name(peer),
                url.as_str().trim_end_matches('/')
            ),
            None => self.names.name(peer),
        }
    }

    /// Stops the heartbeat and this endpoint's server.
    pub async fn leave(&self) {
        self.stop();
    }

    fn stop(&self) {
        if let Some(handle) = self
            .heartbeat
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            handle.abort();
        }
        if let Some((stop, task)) = self.server.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = stop.send(());
            // The server drains open connections for a moment; do not wait for it.
            drop(task);
        }
    }

    fn lost(&self, peer: usize) -> Option<ChannelError> {
        let silent = self.inbox.silent_for(peer)?;
        (silent > LOST_AFTER).then(|| ChannelError::PeerLost {
            peer: self.names.name(peer),
            detail: LostReason::NoHeartbeat {
                endpoint: self.urls[peer].as_str().trim_end_matches('/').to_string(),
                secs: silent.as_secs(),
            },
        })
    }

    fn check_peer(&self, peer: usize) -> Result<(), ChannelError> {
        if peer == self.me || peer >= self.urls.len() {
            return Err(ChannelError::Transport {
                peer: self.names.name(peer),
                detail: TransportFailure::NoSuchEndpoint {
                    me: self.names.name(self.me),
                    endpoints: self.urls.len(),
                },
            });
        }
        Ok(())
    }
}

impl Drop for DirectTransport {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Transport for DirectTransport {
    async fn send_frame(&self, to: usize, seq: u64, frame: Bytes) -> Result<(), ChannelError> {
        self.check_peer(to)?;
        let Some(base) = self.msg_urls[to].as_ref() else {
            return Err(ChannelError::Transport {
                peer: self.names.name(to),
                detail: TransportFailure::Itself,
            });
        };
        let mut url = base.clone();
        url.set_query(Some(&format!("seq={seq}")));
        let whom = self.describe(to);
        let deadline = Instant::now() + self.timeout;
        let attempt = || async {
            let sent = self
                .client
                .post(url.clone())
                .header(header::CONTENT_TYPE, "application/octet-stream")
                .timeout(self.timeout)
                .body(frame.clone())
                .send()
                .await;
            sent.map_err(|err| match explain_tls_failure(&err, &self.tls_whom(to)) {
                Some(why) => Attempt::Stop(ChannelError::Transport {
                    peer: whom.clone(),
                    detail: TransportFailure::Tls(why),
                }),
                None => Attempt::Retry(short_reason(&err)),
            })
        };
        let lost = || self.lost(to).map_or(Ok(()), Err);
        let delivery = deliver(deadline, "it", attempt, lost).await?;
        match TransportFailure::of_delivery(delivery, seq, "it", self.timeout) {
            None => Ok(()),
            Some(detail) => Err(ChannelError::Transport { peer: whom, detail }),
        }
    }

    async fn recv_frame(
        &self,
        from: usize,
        seq: u64,
        deadline: Instant,
    ) -> Result<Option<Bytes>, ChannelError> {
        self.check_peer(from)?;
        let slot = self.inbox.slot(from);
        loop {
            let notified = slot.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(frame) = self.inbox.take(from, seq) {
                return Ok(Some(frame));
            }
            if let Some(lost) = self.lost(from) {
                return Err(lost);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            let wake = deadline.min(now + LIVENESS_CHECK);
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep_until(wake.into()) => {}
            }
        }
    }
}

/// POSTs a heartbeat to every peer each [`HEARTBEAT`].
async fn heartbeat(client: Client, urls: Vec<Option<Url>>) {
    let mut ticker = tokio::time::interval(HEARTBEAT);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let beats = urls.iter().flatten().map(|url| {
            let sent = client.post(url.clone()).timeout(QUICK_REQUEST).send();
            async move {
                if let Err(err) = sent.await {
                    tracing::debug!("heartbeat to {url} failed: {}", chain(&err));
                }
            }
        });
        futures_util::future::join_all(beats).await;
    }
}
