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

//!
//! The module is split into this file (the transport: sending and receiving frames), the
//! join and the session queries ([`join`]), and what every request shares, with the
//! heartbeat that notices a lost session ([`link`]).

mod join;
mod link;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::{Client, RequestBuilder, StatusCode, Url};
use tokio::task::AbortHandle;

use super::{ChannelError, LostReason, PeerNames, Transport, TransportFailure};
use crate::net::chain;
use crate::net::client::{Attempt, Backoff, body_text, deliver, retryable};
use crate::net::tls::explain_tls_failure;
use link::RelayLink;

/// Longest long-poll asked of the relay in one request.
const MAX_POLL: Duration = Duration::from_secs(20);

/// Extra time granted to a long-poll request beyond its wait, for the network.
const POLL_SLACK: Duration = Duration::from_secs(10);

/// Timeout of requests that should answer at once (join, heartbeat, session detail).
const QUICK_REQUEST: Duration = Duration::from_secs(10);

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

impl RelayTransport {
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

    fn relay_error(&self, detail: TransportFailure) -> ChannelError {
        ChannelError::Transport {
            peer: format!("the relay at {}", self.base),
            detail,
        }
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
                detail: TransportFailure::Itself,
            });
        }
        urls.get(peer).ok_or_else(|| ChannelError::Transport {
            peer: format!("peer {peer}"),
            detail: TransportFailure::NoSuchSeat {
                parties: self.parties,
            },
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
    async fn request(
        &self,
        req: RequestBuilder,
    ) -> Result<reqwest::Response, Attempt<TransportFailure>> {
        let lost = |why| Attempt::Stop(TransportFailure::SessionLost(Box::new(why)));
        if let Some(why) = self.link.lost_reason() {
            return Err(lost(why));
        }
        let sent = tokio::select! {
            sent = self.link.auth(req).send() => sent,
            why = self.link.lost() => return Err(lost(why)),
        };
        match sent {
            Ok(resp) => {
                self.link.check_instance(&resp);
                if let Some(why) = self.link.lost_reason() {
                    return Err(lost(why));
                }
                self.link.reachable();
                Ok(resp)
            }
            Err(err) => {
                if let Some(why) = explain_tls_failure(&err, "the relay") {
                    return Err(Attempt::Stop(TransportFailure::Tls(why)));
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

impl Transport for RelayTransport {
    async fn send_frame(&self, to: usize, seq: u64, frame: Bytes) -> Result<(), ChannelError> {
        let mut url = self.peer_url(&self.send_urls, to)?.clone();
        url.set_query(Some(&format!("seq={seq}")));
        let deadline = Instant::now() + self.timeout;
        let attempt = || self.request(self.client.post(url.clone()).body(frame.clone()));
        let delivery = deliver(deadline, "the relay", attempt, || Ok(()))
            .await
            .map_err(|why| self.relay_error(why))?;
        match TransportFailure::of_delivery(delivery, seq, "the relay", self.timeout) {
            None => Ok(()),
            Some(detail) => Err(ChannelError::Transport {
                peer: self.names.name(to),
                detail,
            }),
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
                        detail: TransportFailure::NoFrame { seq, why },
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
                                detail: LostReason::ReportedByRelay(rest.to_string()),
                            },
                            // The session itself is gone (deleted, expired).
                            None => self.relay_error(TransportFailure::SessionGone(body)),
                        });
                    }
                    status if retryable(status) => {
                        format!("the relay answered {status}: {}", body_text(resp).await)
                    }
                    status => {
                        return Err(ChannelError::Transport {
                            peer: self.names.name(from),
                            detail: TransportFailure::DeliveryRefused {
                                seq,
                                status,
                                body: body_text(resp).await,
                            },
                        });
                    }
                },
                Err(Attempt::Retry(why)) => why,
                Err(Attempt::Stop(why)) => {
                    return Err(self.relay_error(why));
                }
            };
            last_error = Some(why);
            let pause = backoff
                .next_delay()
                .min(deadline.saturating_duration_since(Instant::now()));
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                why = self.link.lost() => {
                    return Err(self.relay_error(TransportFailure::SessionLost(Box::new(why))));
                }
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
