//! Joining a session of the relay, and the session queries the parties make before the
//! protocol starts (who joined, in which order). A join tells apart a relay that cannot be
//! reached (retried until the timeout), a URL that is not an mpc relay (said at once), a
//! seat held by another client (waited for while the relay says it may free up) and a
//! refusal (said at once).

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::{StatusCode, Url};
use serde::Deserialize;
use tokio::sync::watch;

use super::link::{RelayLink, heartbeat, instance_of, short_reason};
use super::{QUICK_REQUEST, RelayTransport, seat_name};
use crate::channel::{ChannelError, PeerNames, TransportFailure};
use crate::net::chain;
use crate::net::client::{Backoff, ClientTls, body_text, endpoint, http_client, retryable};
use crate::net::headers::{CLIENT_HEADER, EPOCH_HEADER, TOKEN_HEADER};
use crate::net::tls::explain_tls_failure;

/// Interval between looks at the session while waiting for the others to join.
const JOIN_POLL: Duration = Duration::from_millis(100);

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
        let fail = |detail: TransportFailure| ChannelError::Transport {
            peer: relay.clone(),
            detail,
        };
        let config_fail = |why: String| fail(TransportFailure::Config(why));
        if me > parties {
            return Err(fail(TransportFailure::NoSeat { me, parties }));
        }
        if session.is_empty() {
            return Err(fail(TransportFailure::EmptySession));
        }
        let base = Url::parse(base_url).map_err(|err| {
            fail(TransportFailure::InvalidUrl {
                url: base_url.to_string(),
                why: err.to_string(),
            })
        })?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(fail(TransportFailure::NotHttp(base_url.to_string())));
        }
        let client = http_client(tls, timeout.min(QUICK_REQUEST)).map_err(config_fail)?;
        let client_id = hex::encode(rand::random::<[u8; 16]>());
        let names = PeerNames::new(parties);
        let seat = |i: usize| seat_name(i, parties);
        let build = |parts: &[&str]| endpoint(&base, parts).map_err(config_fail);
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
                            return Err(fail(TransportFailure::NotARelay {
                                url: base_url.to_string(),
                                path: join_url.path().to_string(),
                                status,
                                server,
                            }));
                        }
                    } else if let (true, Some(instance)) = (status.is_success(), instance) {
                        let epoch = resp
                            .headers()
                            .get(EPOCH_HEADER)
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_string)
                            .ok_or_else(|| fail(TransportFailure::NoEpoch(session.to_string())))?;
                        break (instance, epoch);
                    } else if status == StatusCode::CONFLICT {
                        let retry = resp.headers().contains_key(reqwest::header::RETRY_AFTER);
                        let body = body_text(resp).await;
                        if !retry {
                            return Err(fail(TransportFailure::JoinRefused {
                                session: session.to_string(),
                                body,
                            }));
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
                        return Err(fail(TransportFailure::JoinRefusedWith {
                            session: session.to_string(),
                            status,
                            body: body_text(resp).await,
                        }));
                    }
                }
                Err(err) => {
                    if let Some(why) = explain_tls_failure(&err, "the relay") {
                        return Err(fail(TransportFailure::Tls(why)));
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
                return Err(fail(TransportFailure::GaveUpJoining {
                    session: session.to_string(),
                    secs: timeout.as_secs(),
                    why,
                }));
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

    /// The seats currently joined, or `None` if the session does not exist (any more).
    async fn seats(&self) -> Result<Option<Vec<String>>, TransportFailure> {
        if let Some(why) = self.link.lost_reason() {
            return Err(TransportFailure::SessionLost(Box::new(why)));
        }
        let url =
            endpoint(&self.base, &["sessions", &self.session]).map_err(TransportFailure::Config)?;
        let resp = self
            .link
            .auth(self.client.get(url))
            .timeout(QUICK_REQUEST)
            .send()
            .await
            .map_err(|err| {
                self.link.unreachable(&err);
                unreachable_relay(&err)
            })?;
        self.link.check_instance(&resp);
        if let Some(why) = self.link.lost_reason() {
            return Err(TransportFailure::SessionLost(Box::new(why)));
        }
        self.link.reachable();
        match resp.status() {
            StatusCode::OK => Ok(Some(session_detail(resp).await?.seats)),
            StatusCode::NOT_FOUND => Ok(None),
            status => Err(TransportFailure::RelayAnswered {
                status,
                body: body_text(resp).await,
            }),
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
                        return Err(self.relay_error(TransportFailure::SessionLost(Box::new(lost))));
                    }
                    Some(why.to_string())
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
                return Err(self.relay_error(TransportFailure::NotAllJoined {
                    joined: wanted.len() - missing.len(),
                    expected: wanted.len(),
                    session: self.session.clone(),
                    missing: names,
                    last_error,
                }));
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
        let url = endpoint(&self.base, &["sessions", &self.session])
            .map_err(|e| self.relay_error(TransportFailure::Config(e)))?;
        let resp = self
            .link
            .auth(self.client.get(url))
            .timeout(QUICK_REQUEST)
            .send()
            .await
            .map_err(|err| self.relay_error(unreachable_relay(&err)))?;
        self.link.check_instance(&resp);
        if let Some(why) = self.link.lost_reason() {
            return Err(self.relay_error(TransportFailure::SessionLost(Box::new(why))));
        }
        if resp.status() != StatusCode::OK {
            let status = resp.status();
            return Err(self.relay_error(TransportFailure::RelayAnswered {
                status,
                body: body_text(resp).await,
            }));
        }
        let detail = session_detail(resp)
            .await
            .map_err(|e| self.relay_error(e))?;
        if detail.join_order.is_empty() && !detail.seats.is_empty() {
            return Err(self.relay_error(TransportFailure::NoJoinOrder));
        }
        Ok(detail.join_order)
    }
}

/// A relay that did not answer a session query, in the HTTP client's words.
fn unreachable_relay(err: &reqwest::Error) -> TransportFailure {
    TransportFailure::Network(format!("cannot reach the relay: {}", chain(err)))
}

/// Reads the relay's session detail from an answer.
async fn session_detail(resp: reqwest::Response) -> Result<SessionDetail, TransportFailure> {
    let body = resp.bytes().await.map_err(|err| {
        TransportFailure::Network(format!("cannot read the relay's answer: {}", chain(&err)))
    })?;
    serde_json::from_slice(&body).map_err(|err| {
        TransportFailure::Network(format!("the relay's session detail is malformed: {err}"))
    })
}
