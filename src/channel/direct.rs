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

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use hyper::body::Incoming;
use hyper::header;
use hyper::{Method, Request, StatusCode};
use reqwest::{Client, Url};
use serde::Deserialize;
use tokio::sync::{Notify, oneshot};
use tokio::task::{AbortHandle, JoinHandle};

use super::relay::{Backoff, ClientTls, body_text, chain, endpoint, http_client, retryable};
use super::{ChannelError, PeerNames, Transport};
use crate::relay::routes::{BodyError, Reply, discard, json, percent_decode, read_body, text};
use crate::relay::serve_http;
use crate::relay::tls::{self, ServerTlsFiles, explain_tls_failure};

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

/// Frames received from one sender and not yet taken by the protocol.
struct SlotState {
    /// The number of the next frame accepted from this sender.
    next_seq: u64,
    queue: VecDeque<(u64, Bytes)>,
    bytes: usize,
    /// When the sender was last heard from (frame, heartbeat or health check).
    last_seen: Option<Instant>,
}

struct Slot {
    state: Mutex<SlotState>,
    notify: Notify,
}

/// The receiving side of an endpoint, shared by its HTTP server and its transport.
struct Inbox {
    session: String,
    me: usize,
    peers: usize,
    parties: usize,
    names: PeerNames,
    limits: DirectLimits,
    slots: Vec<Slot>,
}

impl Inbox {
    fn slot(&self, peer: usize) -> &Slot {
        &self.slots[peer]
    }

    fn lock(&self, peer: usize) -> std::sync::MutexGuard<'_, SlotState> {
        self.slot(peer)
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn mark_alive(&self, peer: usize) {
        if peer < self.peers {
            self.lock(peer).last_seen = Some(Instant::now());
        }
    }

    /// How long ago `peer` was last heard from, if it ever was.
    fn silent_for(&self, peer: usize) -> Option<Duration> {
        self.lock(peer).last_seen.map(|t| t.elapsed())
    }
}

/// Answer of `GET /health`.
#[derive(Deserialize)]
struct Health {
    session: String,
    endpoint: usize,
    peers: usize,
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
        let fail = |detail: String| ChannelError::Transport {
            peer: me_name.clone(),
            detail,
        };
        let peers = config.urls.len();
        if config.me >= peers {
            return Err(fail(format!(
                "endpoint {} is not among the {peers} URLs given",
                config.me
            )));
        }
        if config.session.is_empty() {
            return Err(fail("the session name is empty".into()));
        }
        let urls = config
            .urls
            .iter()
            .map(|raw| parse_url(raw))
            .collect::<Result<Vec<_>, _>>()
            .map_err(&fail)?;
        let own = &urls[config.me];
        let tls = match (own.scheme(), &config.server_tls) {
            ("https", Some(files)) => Some(tls::acceptor(files).map_err(|e| fail(e.to_string()))?),
            ("https", None) => {
                return Err(fail(format!(
                    "its URL {own} is https:// but no certificate was given to serve with \
                     (--cert FILE --key FILE)"
                )));
            }
            _ => None,
        };
        let client = http_client(&config.client_tls, config.timeout.min(QUICK_REQUEST * 3))
            .map_err(&fail)?;
        let build = |url: &Url, parts: &[&str]| endpoint(url, parts).map_err(&fail);
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
            None => listen_addr(own).map_err(&fail)?,
        };
        let listener = tokio::net::TcpListener::bind(listen).await.map_err(|err| {
            fail(format!(
                "cannot listen on {listen} (taken from its URL {own}): {err}; choose another \
                 port in --peers, or give --listen ADDR"
            ))
        })?;
        let local_addr = listener.local_addr().map_err(|err| fail(err.to_string()))?;
        let inbox = Arc::new(Inbox {
            session: config.session.clone(),
            me: config.me,
            peers,
            parties: config.parties,
            names: names.clone(),
            limits: config.limits,
            slots: (0..peers)
                .map(|_| Slot {
                    state: Mutex::new(SlotState {
                        next_seq: 0,
                        queue: VecDeque::new(),
                        bytes: 0,
                        last_seen: None,
                    }),
                    notify: Notify::new(),
                })
                .collect(),
        });
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let handler = {
            let inbox = inbox.clone();
            move |req: Request<Incoming>| {
                let inbox = inbox.clone();
                async move { handle(&inbox, req).await }
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

    /// Waits until every peer's server answers its health check as the expected endpoint of
    /// this session, or `deadline` passes (then names every peer that did not come up, with
    /// its URL). `on_change` hears the number of peers up (this endpoint included).
    pub async fn wait_for_peers(
        &self,
        deadline: Instant,
        mut on_change: impl FnMut(usize),
    ) -> Result<(), ChannelError> {
        let total = self.urls.len();
        let mut up = 1;
        on_change(up);
        let mut pending: FuturesUnordered<_> = (0..total)
            .filter(|&p| p != self.me)
            .map(|peer| async move { (peer, self.wait_for(peer, deadline).await) })
            .collect();
        let mut missing: Vec<(usize, String)> = Vec::new();
        while let Some((peer, result)) = pending.next().await {
            match result {
                Ok(()) => {
                    self.inbox.mark_alive(peer);
                    up += 1;
                    on_change(up);
                }
                Err(WaitError::Fatal(err)) => return Err(err),
                Err(WaitError::NotUp(why)) => missing.push((peer, why)),
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        missing.sort_by_key(|(p, _)| *p);
        let waited = self.timeout.as_secs_f64();
        let hint = "start it with the same --session and --peers, or check the URL";
        if let [(peer, why)] = missing.as_slice() {
            return Err(ChannelError::Transport {
                peer: self.describe(*peer),
                detail: format!(
                    "it did not come up within {waited} s (last attempt: {why}); {hint}"
                ),
            });
        }
        let names: Vec<String> = missing.iter().map(|(p, _)| self.names.name(*p)).collect();
        let list: Vec<String> = missing
            .iter()
            .map(|(p, why)| format!("{} ({why})", self.describe(*p)))
            .collect();
        Err(ChannelError::Transport {
            peer: names.join(", "),
            detail: format!(
                "they did not come up within {waited} s: {}; start them with the same \
                 --session and --peers, or check the URLs",
                list.join("; ")
            ),
        })
    }

    async fn wait_for(&self, peer: usize, deadline: Instant) -> Result<(), WaitError> {
        let Some(url) = self.health_urls[peer].clone() else {
            return Ok(());
        };
        let whom = self.describe(peer);
        let mut backoff = Backoff::new();
        loop {
            // A peer that already reached us (heartbeat or frame, for this session) is up,
            // even if it has finished and gone by the time we would look at its health.
            if self.inbox.silent_for(peer).is_some() {
                return Ok(());
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            let attempt = self
                .client
                .get(url.clone())
                .timeout(QUICK_REQUEST.min(remaining.max(Duration::from_millis(50))))
                .send()
                .await;
            let why = match attempt {
                Ok(resp) if resp.status().is_success() => {
                    let body = resp.bytes().await.unwrap_or_default();
                    match serde_json::from_slice::<Health>(&body) {
                        Ok(h)
                            if h.session == self.session
                                && h.endpoint == peer
                                && h.peers == self.urls.len() =>
                        {
                            return Ok(());
                        }
                        Ok(h)
                            if h.session == self.session
                                && h.endpoint == peer
                                && h.peers.abs_diff(self.urls.len()) == 1
                                && h.peers.min(self.urls.len()) == self.inbox.parties =>
                        {
                            // The same session, but one side has a dealer and the other not.
                            let name = self.names.name(peer);
                            let detail = if self.me == self.inbox.parties {
                                format!(
                                    "{name} runs session '{}' without a dealer (it was not \
                                     started with --dealer); a party uses a dealer only when \
                                     asked to",
                                    self.session
                                )
                            } else {
                                let with = |peers: usize| {
                                    if peers > self.inbox.parties {
                                        "with a dealer (--dealer)"
                                    } else {
                                        "without a dealer"
                                    }
                                };
                                format!(
                                    "{name} runs session '{}' {}, {} {}: start every party \
                                     with the same dealer choice",
                                    self.session,
                                    with(h.peers),
                                    self.names.name(self.me),
                                    with(self.urls.len()),
                                )
                            };
                            return Err(WaitError::Fatal(ChannelError::Setup {
                                peer: name,
                                detail,
                            }));
                        }
                        Ok(h) => {
                            return Err(WaitError::Fatal(ChannelError::Transport {
                                peer: whom.clone(),
                                detail: format!(
                                    "the endpoint there serves {} of {} endpoints in session \
                                     '{}', but this endpoint expects {} of {} in session '{}'; \
                                     give every participant the same --session and --peers",
                                    self.names.name(h.endpoint),
                                    h.peers,
                                    h.session,
                                    self.names.name(peer),
                                    self.urls.len(),
                                    self.session
                                ),
                            }));
                        }
                        Err(_) => "it answers, but is not an mpc endpoint".to_string(),
                    }
                }
                Ok(resp) => format!("it answered {}", resp.status()),
                Err(err) => {
                    if let Some(why) = explain_tls_failure(&err, &self.tls_whom(peer)) {
                        return Err(WaitError::Fatal(ChannelError::Transport {
                            peer: whom.clone(),
                            detail: why,
                        }));
                    }
                    short_reason(&err)
                }
            };
            if !backoff.sleep_before(deadline).await {
                return Err(WaitError::NotUp(why));
            }
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
            detail: format!(
                "no heartbeat from its endpoint {} for {} s: it stopped, or the network \
                 between us failed",
                self.urls[peer].as_str().trim_end_matches('/'),
                silent.as_secs()
            ),
        })
    }

    fn check_peer(&self, peer: usize) -> Result<(), ChannelError> {
        if peer == self.me || peer >= self.urls.len() {
            return Err(ChannelError::Transport {
                peer: self.names.name(peer),
                detail: format!(
                    "no such peer of {} in a session of {} endpoints",
                    self.names.name(self.me),
                    self.urls.len()
                ),
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

enum WaitError {
    /// Retrying cannot help (TLS, a misconfigured peer).
    Fatal(ChannelError),
    /// The peer did not answer in time; the last reason.
    NotUp(String),
}

/// The last (most specific) cause of a failed request, e.g. "Connection refused".
fn short_reason(err: &reqwest::Error) -> String {
    let full = chain(err);
    if err.is_timeout() {
        return "no answer (timed out)".into();
    }
    if err.is_connect() {
        let mut source: Option<&dyn std::error::Error> = std::error::Error::source(err);
        let mut last = None;
        while let Some(cause) = source {
            last = Some(cause.to_string());
            source = cause.source();
        }
        return last.map_or(full, |l| format!("cannot connect: {l}"));
    }
    full
}

impl Transport for DirectTransport {
    async fn send_frame(&self, to: usize, seq: u64, frame: Bytes) -> Result<(), ChannelError> {
        self.check_peer(to)?;
        let Some(base) = self.msg_urls[to].as_ref() else {
            return Err(ChannelError::Transport {
                peer: self.names.name(to),
                detail: "that is this endpoint itself".into(),
            });
        };
        let mut url = base.clone();
        url.set_query(Some(&format!("seq={seq}")));
        let whom = self.describe(to);
        let deadline = Instant::now() + self.timeout;
        let mut backoff = Backoff::new();
        loop {
            let attempt = self
                .client
                .post(url.clone())
                .header(header::CONTENT_TYPE, "application/octet-stream")
                .timeout(self.timeout)
                .body(frame.clone())
                .send()
                .await;
            let why = match attempt {
                Ok(resp) if resp.status().is_success() => return Ok(()),
                Ok(resp) if retryable(resp.status()) => {
                    let status = resp.status();
                    format!("it answered {status}: {}", body_text(resp).await)
                }
                Ok(resp) => {
                    let status = resp.status();
                    return Err(ChannelError::Transport {
                        peer: whom,
                        detail: format!(
                            "it refused frame {seq}: {status}: {}",
                            body_text(resp).await
                        ),
                    });
                }
                Err(err) => {
                    if let Some(why) = explain_tls_failure(&err, &self.tls_whom(to)) {
                        return Err(ChannelError::Transport {
                            peer: whom,
                            detail: why,
                        });
                    }
                    short_reason(&err)
                }
            };
            if let Some(lost) = self.lost(to) {
                return Err(lost);
            }
            if !backoff.sleep_before(deadline).await {
                return Err(ChannelError::Transport {
                    peer: whom,
                    detail: format!(
                        "gave up sending frame {seq} after {} s: {why}",
                        self.timeout.as_secs()
                    ),
                });
            }
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
            {
                let mut state = self.inbox.lock(from);
                while let Some((n, frame)) = state.queue.front() {
                    if *n > seq {
                        break;
                    }
                    let (n, len) = (*n, frame.len());
                    let popped = state.queue.pop_front();
                    state.bytes = state.bytes.saturating_sub(len);
                    if n == seq {
                        return Ok(popped.map(|(_, f)| f));
                    }
                }
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

/// Answers one request to a direct-mode endpoint.
async fn handle(inbox: &Inbox, req: Request<Incoming>) -> Reply {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let segments: Vec<&str> = path.strip_prefix('/').unwrap_or(&path).split('/').collect();
    match (method.clone(), segments.as_slice()) {
        (Method::GET, ["health"]) => json(&serde_json::json!({
            "status": "ok",
            "version": env!("CARGO_PKG_VERSION"),
            "session": inbox.session,
            "endpoint": inbox.me,
            "peers": inbox.peers,
        })),
        (Method::POST, ["sessions", session, kind @ ("msg" | "alive"), from]) => {
            let from = match check_sender(inbox, session, from) {
                Ok(from) => from,
                Err((status, why)) => return text(status, &why),
            };
            if *kind == "alive" {
                inbox.mark_alive(from);
                return text(StatusCode::OK, "alive");
            }
            receive(inbox, req, from, &query).await
        }
        (_, ["health"]) | (_, ["sessions", _, "msg" | "alive", _]) => text(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!("method {method} is not allowed here"),
        ),
        _ => text(
            StatusCode::NOT_FOUND,
            &format!(
                "unknown route {method} {}; a direct-mode endpoint serves GET /health, \
                 POST /sessions/{{session}}/msg/{{from}}?seq=N and \
                 POST /sessions/{{session}}/alive/{{from}}",
                crate::relay::sessions::shorten(&path)
            ),
        ),
    }
}

/// The sender of a request, or the refusal (status and why).
fn check_sender(inbox: &Inbox, session: &str, from: &str) -> Result<usize, (StatusCode, String)> {
    let session = percent_decode(session).unwrap_or_default();
    if session != inbox.session {
        return Err((
            StatusCode::NOT_FOUND,
            format!(
                "this endpoint serves {} of session '{}', not session '{}'; give every \
                 participant the same --session",
                inbox.names.name(inbox.me),
                inbox.session,
                crate::relay::sessions::shorten(&session)
            ),
        ));
    }
    match from.parse::<usize>() {
        Ok(n) if n < inbox.peers && n != inbox.me => Ok(n),
        Ok(n) if n == inbox.parties && inbox.peers == inbox.parties => Err((
            StatusCode::CONFLICT,
            format!(
                "{} runs session '{}' without a dealer (it was not started with --dealer); a \
                 party uses a dealer only when asked to",
                inbox.names.name(inbox.me),
                inbox.session
            ),
        )),
        _ => Err((
            StatusCode::BAD_REQUEST,
            format!(
                "sender must be an endpoint number from 0 to {} other than {}, got '{}'",
                inbox.peers.saturating_sub(1),
                inbox.me,
                crate::relay::sessions::shorten(from)
            ),
        )),
    }
}

/// What to do with frame `seq` from a sender, decided under its lock.
enum Admission {
    Accept,
    Duplicate,
    Refuse(Reply),
}

fn admit(inbox: &Inbox, state: &SlotState, from: usize, seq: u64, len: usize) -> Admission {
    if seq < state.next_seq {
        return Admission::Duplicate;
    }
    if seq > state.next_seq {
        return Admission::Refuse(text(
            StatusCode::CONFLICT,
            &format!(
                "frame {seq} from {} arrived before frame {}: frames must be sent in order",
                inbox.names.name(from),
                state.next_seq
            ),
        ));
    }
    if !state.queue.is_empty() && state.bytes + len > inbox.limits.max_buffered {
        return Admission::Refuse(text(
            StatusCode::TOO_MANY_REQUESTS,
            &format!(
                "{} bytes from {} are already waiting here (limit {}); retry later",
                state.bytes,
                inbox.names.name(from),
                inbox.limits.max_buffered
            ),
        ));
    }
    Admission::Accept
}

async fn receive(inbox: &Inbox, req: Request<Incoming>, from: usize, query: &str) -> Reply {
    let seq = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("seq="))
        .and_then(|v| v.parse::<u64>().ok());
    let Some(seq) = seq else {
        return text(
            StatusCode::BAD_REQUEST,
            "a frame needs its number: POST /sessions/{session}/msg/{from}?seq=N",
        );
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let too_large = || {
        text(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!(
                "frame too large: this endpoint accepts at most {} bytes per frame",
                inbox.limits.max_frame
            ),
        )
    };
    if declared.is_some_and(|n| n > inbox.limits.max_frame) {
        discard(req.into_body()).await;
        return too_large();
    }
    let verdict = {
        let mut state = inbox.lock(from);
        state.last_seen = Some(Instant::now());
        admit(inbox, &state, from, seq, declared.unwrap_or(0))
    };
    match verdict {
        Admission::Accept => {}
        Admission::Duplicate => {
            discard(req.into_body()).await;
            return duplicate(seq);
        }
        Admission::Refuse(reply) => {
            discard(req.into_body()).await;
            return reply;
        }
    }
    let frame = match read_body(req.into_body(), inbox.limits.max_frame).await {
        Ok(frame) => frame,
        Err(BodyError::TooLarge) => return too_large(),
        Err(BodyError::Failed(why)) => {
            return text(
                StatusCode::BAD_REQUEST,
                &format!("cannot read the frame: {why}"),
            );
        }
    };
    let mut state = inbox.lock(from);
    match admit(inbox, &state, from, seq, frame.len()) {
        Admission::Accept => {}
        Admission::Duplicate => return duplicate(seq),
        Admission::Refuse(reply) => return reply,
    }
    state.bytes += frame.len();
    state.queue.push_back((seq, frame));
    state.next_seq += 1;
    state.last_seen = Some(Instant::now());
    drop(state);
    inbox.slot(from).notify.notify_one();
    text(StatusCode::OK, &format!("frame {seq} received"))
}

fn duplicate(seq: u64) -> Reply {
    text(
        StatusCode::OK,
        &format!("frame {seq} was already received; duplicate ignored"),
    )
}
