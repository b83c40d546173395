//! Client of `mpc serve`: join a session, wait for the others, send and long-poll receive.
//!
//! [`RelayTransport`] implements [`Transport`]: peer `i < parties` is the relay seat `"i"`,
//! peer `parties` is the seat `"dealer"`. Every frame is sent with its per-pair sequence
//! number (`?seq=N`), so a retried send is ignored by the relay if it already arrived, and
//! every receive asks for one numbered frame (`?seq=N&wait=SECS`), which also acknowledges
//! the frames before it; a response lost on the way is simply asked for again. Together this
//! gives exactly-once, in-order delivery per pair across retries and dropped connections.
//!
//! The message path never sleeps on a fixed interval: receives long-poll, and backoff (with
//! jitter) only follows errors or a relay that asks the sender to slow down (429).
//!
//! Every request carries this client's secret token (`x-mpc-token`): the relay lets only
//! it read, acknowledge or write in the name of the seat it claimed. The join says how many
//! parties the session has (`?parties=N`), so a party started for another count is refused
//! at once. The relay names itself and its instance on every answer (`x-mpc-relay`), and
//! the join answers the session's incarnation (`x-mpc-session-epoch`), which heartbeats
//! send back: a party whose relay lost the session (restarted without a shared store,
//! deleted or expired it) learns so within a heartbeat and fails instead of waiting, and a
//! URL that is not an mpc relay at all is named as such at once. While the relay cannot be
//! reached, the party says so once on stderr and keeps trying until its timeout.
//!
//! `https://` relays are reached over TLS (rustls, `ring` provider): the system's roots are
//! trusted unless [`ClientTls::ca_cert`] names a private CA, and [`ClientTls::identity`]
//! presents a client certificate to a relay that demands one (`mpc serve --client-ca`).
//! TLS failures are not retried: they are reported at once, saying what to change.

use std::error::Error as StdError;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use reqwest::{Client, RequestBuilder, StatusCode, Url};
use serde::Deserialize;
use tokio::sync::watch;
use tokio::task::AbortHandle;

use super::{ChannelError, PeerNames, Transport};
use crate::relay::tls::{self, explain_tls_failure};

/// Header carrying the client id that owns a seat (see the relay's join route).
const CLIENT_HEADER: &str = "x-mpc-client";

/// Header carrying the client's secret token.
const TOKEN_HEADER: &str = "x-mpc-token";

/// Header carrying the session incarnation (answered by joins, sent with heartbeats).
const EPOCH_HEADER: &str = "x-mpc-session-epoch";

/// Header naming the relay's instance on every answer of an mpc relay.
const INSTANCE_HEADER: &str = "x-mpc-relay";

/// Longest long-poll asked of the relay in one request.
const MAX_POLL: Duration = Duration::from_secs(20);

/// Extra time granted to a long-poll request beyond its wait, for the network.
const POLL_SLACK: Duration = Duration::from_secs(10);

/// Timeout of requests that should answer at once (join, heartbeat, session detail).
const QUICK_REQUEST: Duration = Duration::from_secs(10);

/// Interval between heartbeats (repeated joins) that tell the relay we are alive.
const HEARTBEAT: Duration = Duration::from_secs(1);

/// Interval between looks at the session while waiting for the others to join.
const JOIN_POLL: Duration = Duration::from_millis(100);

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

/// A session of the relay joined as one seat; see the module documentation.
pub struct RelayTransport {
    client: Client,
    base: Url,
    session: String,
    me: usize,
    parties: usize,
    names: PeerNames,
    client_id: String,
    link: Arc<RelayLink>,
    timeout: Duration,
    /// `send_urls[j]`: where frames to peer j go.
    send_urls: Vec<Url>,
    /// `recv_urls[j]`: where frames from peer j come from.
    recv_urls: Vec<Url>,
    heartbeat: Mutex<Option<AbortHandle>>,
}

/// What every request to the relay shares: who we are, what we joined, and whether the
/// relay is reachable or has lost our session.
struct RelayLink {
    /// The relay's base URL, for messages.
    url: String,
    session: String,
    token: String,
    /// The relay instance that answered the join.
    instance: String,
    /// The session incarnation the join answered.
    epoch: String,
    timeout: Duration,
    /// Set once the session is lost for good (relay restarted, session deleted, seat
    /// taken): every pending and later request fails with this reason.
    lost: watch::Sender<Option<String>>,
    /// Whether "cannot reach the relay" was said and not yet taken back.
    unreachable: AtomicBool,
}

impl RelayLink {
    /// Adds the token to a request.
    fn auth(&self, req: RequestBuilder) -> RequestBuilder {
        req.header(TOKEN_HEADER, &self.token)
    }

    /// The reason the session is lost, if it is.
    fn lost_reason(&self) -> Option<String> {
        self.lost.borrow().clone()
    }

    /// Records that the session is lost (the first reason wins).
    fn lose(&self, why: String) {
        self.lost.send_if_modified(|lost| {
            if lost.is_some() {
                return false;
            }
            tracing::debug!("relay session lost: {why}");
            *lost = Some(why);
            true
        });
    }

    /// Checks that an answer comes from the relay instance we joined.
    fn check_instance(&self, resp: &reqwest::Response) {
        if let Some(now) = instance_of(resp)
            && now != self.instance
        {
            self.lose(restarted(&self.url, &self.session, &self.instance, &now));
        }
    }

    /// Says once that the relay cannot be reached.
    fn unreachable(&self, err: &reqwest::Error) {
        if !self.unreachable.swap(true, Ordering::AcqRel) {
            tracing::warn!(
                "cannot reach the relay at {}: {}; retrying until --timeout ({} s)",
                self.url,
                short_reason(err),
                self.timeout.as_secs()
            );
        }
    }

    /// Takes back "cannot reach the relay" once it answers again.
    fn reachable(&self) {
        if self.unreachable.swap(false, Ordering::AcqRel) {
            tracing::info!("reached the relay at {} again", self.url);
        }
    }

    /// Completes when the session is lost, with the reason.
    async fn lost(&self) -> String {
        let mut watch = self.lost.subscribe();
        let reason = match watch.wait_for(Option::is_some).await {
            Ok(reason) => Some(reason.clone().unwrap_or_default()),
            Err(_) => None,
        };
        match reason {
            Some(reason) => reason,
            None => std::future::pending().await,
        }
    }
}

/// The relay instance an answer names, if any.
fn instance_of(resp: &reqwest::Response) -> Option<String> {
    resp.headers()
        .get(INSTANCE_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The message for a relay that restarted and lost the session.
fn restarted(url: &str, session: &str, was: &str, now: &str) -> String {
    format!(
        "the relay at {url} restarted (instance {was} is now {now}) and lost session \
         '{session}' with its messages; start every participant of the session again (a \
         relay started with --store redis://... keeps sessions across restarts)"
    )
}

/// A short reason for a failed request: "connection refused", "timed out", ...
fn short_reason(err: &reqwest::Error) -> String {
    let mut source: Option<&dyn StdError> = Some(err);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind;
            let text = match io.kind() {
                ErrorKind::ConnectionRefused => "connection refused".to_string(),
                ErrorKind::ConnectionReset => "connection reset".to_string(),
                ErrorKind::TimedOut => "timed out".to_string(),
                ErrorKind::NotFound => "host not found".to_string(),
                _ => io.to_string(),
            };
            return text;
        }
        source = cause.source();
    }
    if err.is_timeout() {
        return "no answer in time".to_string();
    }
    chain(err)
}

/// The part of the relay's session detail the client needs.
#[derive(Deserialize)]
struct SessionDetail {
    seats: Vec<String>,
    /// Seats in the order they first joined (older relays do not send it).
    #[serde(default)]
    join_order: Vec<String>,
}

impl RelayTransport {
    /// Joins `session` on the relay at `base_url` as peer `me` of a session with `parties`
    /// computing parties (peer `parties` is the dealer). Retries with backoff while the
    /// relay cannot be reached, for up to `timeout`, which also bounds the retries of each
    /// later send. Starts a heartbeat (a repeated join every second) until dropped or
    /// [`leave`](Self::leave) is called. Uses the system's TLS roots for `https://` URLs.
    pub async fn join(
        base_url: &str,
        session: &str,
        me: usize,
        parties: usize,
        timeout: Duration,
    ) -> Result<RelayTransport, ChannelError> {
        Self::join_with(
            base_url,
            session,
            me,
            parties,
            timeout,
            &ClientTls::default(),
        )
        .await
    }

    /// Like [`join`](Self::join), with TLS options (private CA, client certificate).
    pub async fn join_with(
        base_url: &str,
        session: &str,
        me: usize,
        parties: usize,
        timeout: Duration,
        tls: &ClientTls,
    ) -> Result<RelayTransport, ChannelError> {
        let relay = format!("the relay at {base_url}");
        let fail = |detail: String| ChannelError::Transport {
            peer: relay.clone(),
            detail,
        };
        if me > parties {
            return Err(fail(format!(
                "peer {me} does not exist in a session of {parties} parties"
            )));
        }
        if session.is_empty() {
            return Err(fail("the session name is empty".into()));
        }
        let base = Url::parse(base_url)
            .map_err(|err| fail(format!("'{base_url}' is not a valid URL: {err}")))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(fail(format!(
                "'{base_url}' is not an http:// or https:// URL"
            )));
        }
        let client = http_client(tls, timeout.min(QUICK_REQUEST)).map_err(&fail)?;
        let client_id = hex::encode(rand::random::<[u8; 16]>());
        let names = PeerNames::new(parties);
        let seat = |i: usize| seat_name(i, parties);
        let build = |parts: &[&str]| endpoint(&base, parts).map_err(&fail);
        let mut send_urls = Vec::with_capacity(parties + 1);
        let mut recv_urls = Vec::with_capacity(parties + 1);
        for peer in 0..=parties {
            send_urls.push(build(&["send", session, &seat(me), &seat(peer)])?);
            recv_urls.push(build(&["recv", session, &seat(peer), &seat(me)])?);
        }
        let join_url = build(&["join", session, &seat(me)])?;

        let token = hex::encode(rand::random::<[u8; 32]>());
        let mut join_url = join_url;
        join_url.set_query(Some(&format!("parties={parties}")));

        let deadline = Instant::now() + timeout;
        let mut backoff = Backoff::new();
        let mut said_unreachable = false;
        let mut said_taken = false;
        let (instance, epoch) = loop {
            let attempt = client
                .put(join_url.clone())
                .header(CLIENT_HEADER, &client_id)
                .header(TOKEN_HEADER, &token)
                .timeout(QUICK_REQUEST)
                .send()
                .await;
            let why = match attempt {
                Ok(resp) => {
                    let status = resp.status();
                    let instance = instance_of(&resp);
                    if instance.is_none() {
                        let server = resp
                            .headers()
                            .get(reqwest::header::SERVER)
                            .and_then(|v| v.to_str().ok())
                            .map(|v| format!(" (server: {v})"))
                            .unwrap_or_default();
                        if matches!(
                            status,
                            StatusCode::BAD_GATEWAY
                                | StatusCode::SERVICE_UNAVAILABLE
                                | StatusCode::GATEWAY_TIMEOUT
                        ) {
                            // A proxy in front of a relay that is down: worth waiting for.
                            format!("{base_url} answered {status}{server}")
                        } else {
                            return Err(fail(format!(
                                "{base_url} is not an mpc relay: it answered PUT {} with \
                                 {status}{server} and without the {INSTANCE_HEADER} header an \
                                 mpc relay sends; check the URL (the address `mpc serve` \
                                 listens on)",
                                join_url.path()
                            )));
                        }
                    } else if let (true, Some(instance)) = (status.is_success(), instance) {
                        let epoch = resp
                            .headers()
                            .get(EPOCH_HEADER)
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_string)
                            .ok_or_else(|| {
                                fail(format!(
                                    "the relay did not say which incarnation of session \
                                     '{session}' it joined us to: update mpc serve"
                                ))
                            })?;
                        break (instance, epoch);
                    } else if status == StatusCode::CONFLICT {
                        let retry = resp.headers().contains_key(reqwest::header::RETRY_AFTER);
                        let body = body_text(resp).await;
                        if !retry {
                            return Err(fail(format!("cannot join session '{session}': {body}")));
                        }
                        if !said_taken {
                            said_taken = true;
                            tracing::warn!("{body}; waiting for it (until --timeout)");
                        }
                        backoff = Backoff::new();
                        format!(
                            "seat {} of session '{session}' is taken by another client: {body}",
                            seat(me)
                        )
                    } else if retryable(status) {
                        format!("the relay answered {status}: {}", body_text(resp).await)
                    } else {
                        return Err(fail(format!(
                            "cannot join session '{session}': {status}: {}",
                            body_text(resp).await
                        )));
                    }
                }
                Err(err) => {
                    if let Some(why) = explain_tls_failure(&err, "the relay") {
                        return Err(fail(why));
                    }
                    if !said_unreachable {
                        said_unreachable = true;
                        tracing::warn!(
                            "cannot reach the relay at {base_url}: {}; retrying until --timeout \
                             ({} s)",
                            short_reason(&err),
                            timeout.as_secs()
                        );
                    }
                    format!("cannot reach {join_url}: {}", chain(&err))
                }
            };
            if !backoff.sleep_before(deadline).await {
                return Err(fail(format!(
                    "gave up joining session '{session}' after {} s: {why}",
                    timeout.as_secs()
                )));
            }
        };
        if said_unreachable {
            tracing::info!("reached the relay at {base_url}");
        }

        let link = Arc::new(RelayLink {
            url: base_url.to_string(),
            session: session.to_string(),
            token,
            instance,
            epoch,
            timeout,
            lost: watch::channel(None).0,
            unreachable: AtomicBool::new(false),
        });
        let heartbeat = tokio::spawn(heartbeat(
            client.clone(),
            join_url,
            client_id.clone(),
            link.clone(),
        ))
        .abort_handle();
        Ok(RelayTransport {
            client,
            base,
            session: session.to_string(),
            me,
            parties,
            names,
            client_id,
            link,
            timeout,
            send_urls,
            recv_urls,
            heartbeat: Mutex::new(Some(heartbeat)),
        })
    }

    /// The session joined.
    pub fn session(&self) -> &str {
        &self.session
    }

    /// This endpoint's peer number.
    pub fn me(&self) -> usize {
        self.me
    }

    /// The random id that owns our seat at the relay.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    fn relay_error(&self, detail: String) -> ChannelError {
        ChannelError::Transport {
            peer: format!("the relay at {}", self.base),
            detail,
        }
    }

    /// The seats currently joined, or `None` if the session does not exist (any more).
    async fn seats(&self) -> Result<Option<Vec<String>>, String> {
        if let Some(why) = self.link.lost_reason() {
            return Err(why);
        }
        let url = endpoint(&self.base, &["sessions", &self.session])?;
        let resp = self
            .link
            .auth(self.client.get(url))
            .timeout(QUICK_REQUEST)
            .send()
            .await
            .map_err(|err| {
                self.link.unreachable(&err);
                format!("cannot reach the relay: {}", chain(&err))
            })?;
        self.link.check_instance(&resp);
        if let Some(why) = self.link.lost_reason() {
            return Err(why);
        }
        self.link.reachable();
        match resp.status() {
            StatusCode::OK => {
                let body = resp
                    .bytes()
                    .await
                    .map_err(|err| format!("cannot read the relay's answer: {}", chain(&err)))?;
                let detail: SessionDetail = serde_json::from_slice(&body)
                    .map_err(|err| format!("the relay's session detail is malformed: {err}"))?;
                Ok(Some(detail.seats))
            }
            StatusCode::NOT_FOUND => Ok(None),
            status => Err(format!(
                "the relay answered {status}: {}",
                body_text(resp).await
            )),
        }
    }

    /// Waits until the computing parties `0..parties` (and the dealer, if `dealer`) have
    /// all joined, or `deadline` passes. `on_change` hears the number of those seats joined
    /// whenever it changes (and once at the start).
    pub async fn wait_for(
        &self,
        parties: usize,
        dealer: bool,
        deadline: Instant,
        mut on_change: impl FnMut(usize),
    ) -> Result<(), ChannelError> {
        let mut wanted: Vec<String> = (0..parties).map(|i| i.to_string()).collect();
        if dealer {
            wanted.push("dealer".to_string());
        }
        let mut reported = None;
        let mut missing: Vec<String> = wanted.clone();
        loop {
            let last_error = match self.seats().await {
                Ok(seats) => {
                    let seats = seats.unwrap_or_default();
                    missing = wanted
                        .iter()
                        .filter(|w| !seats.contains(w))
                        .cloned()
                        .collect();
                    let joined = wanted.len() - missing.len();
                    if reported != Some(joined) {
                        on_change(joined);
                        reported = Some(joined);
                    }
                    if missing.is_empty() {
                        return Ok(());
                    }
                    None
                }
                Err(why) => {
                    if let Some(lost) = self.link.lost_reason() {
                        return Err(self.relay_error(lost));
                    }
                    Some(why)
                }
            };
            if Instant::now() >= deadline {
                let names: Vec<String> = missing
                    .iter()
                    .map(|seat| match seat.parse::<usize>() {
                        Ok(i) => format!("party {i}"),
                        Err(_) => "the dealer".to_string(),
                    })
                    .collect();
                let mut detail = format!(
                    "{} of {} expected participants of session '{}' joined in time; missing: {}",
                    wanted.len() - missing.len(),
                    wanted.len(),
                    self.session,
                    names.join(", ")
                );
                if let Some(why) = last_error {
                    detail.push_str(&format!(" (last error: {why})"));
                }
                return Err(self.relay_error(detail));
            }
            let pause = JOIN_POLL.min(deadline.saturating_duration_since(Instant::now()));
            tokio::time::sleep(pause).await;
        }
    }

    /// Whether the dealer has joined the session.
    pub async fn dealer_joined(&self) -> Result<bool, ChannelError> {
        match self.seats().await {
            Ok(seats) => Ok(seats.is_some_and(|s| s.iter().any(|seat| seat == "dealer"))),
            Err(why) => Err(self.relay_error(why)),
        }
    }

    /// The seats of the session in the order they first joined: parties decide whether a
    /// dealer takes part by whether it joined before the last party, and the relay's order
    /// is the same for all of them.
    pub async fn join_order(&self) -> Result<Vec<String>, ChannelError> {
        let url =
            endpoint(&self.base, &["sessions", &self.session]).map_err(|e| self.relay_error(e))?;
        let resp = self
            .link
            .auth(self.client.get(url))
            .timeout(QUICK_REQUEST)
            .send()
            .await
            .map_err(|err| self.relay_error(format!("cannot reach the relay: {}", chain(&err))))?;
        self.link.check_instance(&resp);
        if let Some(why) = self.link.lost_reason() {
            return Err(self.relay_error(why));
        }
        if resp.status() != StatusCode::OK {
            let status = resp.status();
            return Err(self.relay_error(format!(
                "the relay answered {status}: {}",
                body_text(resp).await
            )));
        }
        let body = resp.bytes().await.map_err(|err| {
            self.relay_error(format!("cannot read the relay's answer: {}", chain(&err)))
        })?;
        let detail: SessionDetail = serde_json::from_slice(&body).map_err(|err| {
            self.relay_error(format!("the relay's session detail is malformed: {err}"))
        })?;
        if detail.join_order.is_empty() && !detail.seats.is_empty() {
            return Err(self.relay_error(
                "this relay does not report the join order of seats: update mpc serve".into(),
            ));
        }
        Ok(detail.join_order)
    }

    /// Stops the heartbeat: the relay will report this seat lost after its delay.
    pub async fn leave(&self) {
        self.stop_heartbeat();
    }

    fn stop_heartbeat(&self) {
        let handle = self
            .heartbeat
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(handle) = handle {
            handle.abort();
        }
    }

    fn peer_url<'a>(&self, urls: &'a [Url], peer: usize) -> Result<&'a Url, ChannelError> {
        if peer == self.me {
            return Err(ChannelError::Transport {
                peer: self.names.name(peer),
                detail: "that is this endpoint itself".into(),
            });
        }
        urls.get(peer).ok_or_else(|| ChannelError::Transport {
            peer: format!("peer {peer}"),
            detail: format!(
                "no such peer in a session of {} parties (and a dealer)",
                self.parties
            ),
        })
    }
}

impl Drop for RelayTransport {
    fn drop(&mut self) {
        self.stop_heartbeat();
    }
}

impl RelayTransport {
    /// Sends `req`, unless (or until) the session is lost; checks the answering instance.
    async fn request(&self, req: RequestBuilder) -> Result<reqwest::Response, Attempt> {
        if let Some(why) = self.link.lost_reason() {
            return Err(Attempt::Lost(why));
        }
        let sent = tokio::select! {
            sent = self.link.auth(req).send() => sent,
            why = self.link.lost() => return Err(Attempt::Lost(why)),
        };
        match sent {
            Ok(resp) => {
                self.link.check_instance(&resp);
                if let Some(why) = self.link.lost_reason() {
                    return Err(Attempt::Lost(why));
                }
                self.link.reachable();
                Ok(resp)
            }
            Err(err) => {
                if let Some(why) = explain_tls_failure(&err, "the relay") {
                    return Err(Attempt::Fatal(why));
                }
                if err.is_connect() {
                    self.link.unreachable(&err);
                }
                Err(Attempt::Retry(format!(
                    "cannot reach the relay: {}",
                    chain(&err)
                )))
            }
        }
    }
}

/// A request that did not get an answer.
enum Attempt {
    /// Worth retrying.
    Retry(String),
    /// Not worth retrying (TLS misconfiguration).
    Fatal(String),
    /// The session is lost.
    Lost(String),
}

impl Transport for RelayTransport {
    async fn send_frame(&self, to: usize, seq: u64, frame: Bytes) -> Result<(), ChannelError> {
        let mut url = self.peer_url(&self.send_urls, to)?.clone();
        url.set_query(Some(&format!("seq={seq}")));
        let deadline = Instant::now() + self.timeout;
        let mut backoff = Backoff::new();
        loop {
            let attempt = self
                .request(self.client.post(url.clone()).body(frame.clone()))
                .await;
            let why = match attempt {
                Ok(resp) if resp.status().is_success() => return Ok(()),
                Ok(resp) if retryable(resp.status()) => {
                    let status = resp.status();
                    format!("the relay answered {status}: {}", body_text(resp).await)
                }
                Ok(resp) => {
                    let status = resp.status();
                    return Err(ChannelError::Transport {
                        peer: self.names.name(to),
                        detail: format!(
                            "the relay refused frame {seq}: {status}: {}",
                            body_text(resp).await
                        ),
                    });
                }
                Err(Attempt::Retry(why)) => why,
                Err(Attempt::Fatal(why) | Attempt::Lost(why)) => {
                    return Err(self.relay_error(why));
                }
            };
            if !backoff.sleep_before(deadline).await {
                return Err(ChannelError::Transport {
                    peer: self.names.name(to),
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
        let base = self.peer_url(&self.recv_urls, from)?;
        let mut backoff = Backoff::new();
        let mut last_error: Option<String> = None;
        loop {
            let now = Instant::now();
            if now >= deadline {
                return match last_error {
                    None => Ok(None),
                    Some(why) => Err(ChannelError::Transport {
                        peer: self.names.name(from),
                        detail: format!("no frame {seq} before the timeout: {why}"),
                    }),
                };
            }
            let wait = (deadline - now).min(MAX_POLL);
            let mut url = base.clone();
            url.set_query(Some(&format!("seq={seq}&wait={:.3}", wait.as_secs_f64())));
            let attempt = self
                .request(self.client.post(url).timeout(wait + POLL_SLACK))
                .await;
            let why = match attempt {
                Ok(resp) => match resp.status() {
                    StatusCode::OK => match resp.bytes().await {
                        Ok(frame) => return Ok(Some(frame)),
                        Err(err) => format!("the relay's answer broke off: {}", chain(&err)),
                    },
                    StatusCode::NO_CONTENT => {
                        // Nothing yet: ask again at once (the relay did the waiting).
                        backoff = Backoff::new();
                        last_error = None;
                        continue;
                    }
                    StatusCode::GONE => {
                        let name = self.names.name(from);
                        let body = body_text(resp).await;
                        let prefix = format!("{name} lost: ");
                        return Err(match body.strip_prefix(&prefix) {
                            Some(rest) => ChannelError::PeerLost {
                                peer: name,
                                detail: format!("{rest} (reported by the relay)"),
                            },
                            // The session itself is gone (deleted, expired).
                            None => self.relay_error(format!("the relay says: {body}")),
                        });
                    }
                    status if retryable(status) => {
                        format!("the relay answered {status}: {}", body_text(resp).await)
                    }
                    status => {
                        return Err(ChannelError::Transport {
                            peer: self.names.name(from),
                            detail: format!(
                                "the relay refused to deliver frame {seq}: {status}: {}",
                                body_text(resp).await
                            ),
                        });
                    }
                },
                Err(Attempt::Retry(why)) => why,
                Err(Attempt::Fatal(why) | Attempt::Lost(why)) => {
                    return Err(self.relay_error(why));
                }
            };
            last_error = Some(why);
            let pause = backoff
                .next_delay()
                .min(deadline.saturating_duration_since(Instant::now()));
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                why = self.link.lost() => return Err(self.relay_error(why)),
            }
        }
    }
}

/// Repeats the join every [`HEARTBEAT`], so that the relay knows this seat is alive, and
/// notices when the relay lost the session or gave the seat to another client.
async fn heartbeat(client: Client, url: Url, client_id: String, link: Arc<RelayLink>) {
    let mut ticker = tokio::time::interval(HEARTBEAT);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        let sent = link
            .auth(client.put(url.clone()))
            .header(CLIENT_HEADER, &client_id)
            .header(EPOCH_HEADER, &link.epoch)
            .timeout(QUICK_REQUEST)
            .send()
            .await;
        let resp = match sent {
            Ok(resp) => resp,
            Err(err) => {
                if err.is_connect() {
                    link.unreachable(&err);
                }
                tracing::debug!("heartbeat to the relay failed: {}", chain(&err));
                continue;
            }
        };
        let instance = instance_of(&resp);
        match resp.status() {
            status if status.is_success() => {
                link.check_instance(&resp);
                link.reachable();
            }
            StatusCode::GONE => {
                let why = match instance {
                    Some(now) if now != link.instance => {
                        restarted(&link.url, &link.session, &link.instance, &now)
                    }
                    _ => format!(
                        "the relay at {} lost session '{}': {}",
                        link.url,
                        link.session,
                        body_text(resp).await
                    ),
                };
                link.lose(why);
                return;
            }
            StatusCode::CONFLICT | StatusCode::FORBIDDEN => {
                let body = body_text(resp).await;
                link.lose(format!(
                    "the relay at {} gave this party's seat to another client (it had \
                     reported this party lost): {body}",
                    link.url
                ));
                return;
            }
            status => {
                link.reachable();
                tracing::debug!("heartbeat answered {status}: {}", body_text(resp).await);
            }
        }
    }
}

/// The relay seat of peer `i`: its number, or `dealer` for peer `parties`.
fn seat_name(i: usize, parties: usize) -> String {
    if i == parties {
        "dealer".to_string()
    } else {
        i.to_string()
    }
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

/// Statuses worth retrying: the relay is busy (429) or failing (5xx).
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
