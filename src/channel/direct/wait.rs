//! Waiting for the peers of a direct-mode endpoint to come up: each must answer its health
//! check as the expected endpoint of the same session, or be named with what to fix.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use serde::Deserialize;

use super::{DirectTransport, QUICK_REQUEST};
use crate::channel::{ChannelError, DealerUse, SetupMismatch, TransportFailure};
use crate::net::chain;
use crate::net::client::Backoff;
use crate::net::tls::explain_tls_failure;

/// Answer of `GET /health`.
#[derive(Deserialize)]
struct Health {
    session: String,
    endpoint: usize,
    peers: usize,
}

impl DirectTransport {
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
        if let [(peer, why)] = missing.as_slice() {
            return Err(ChannelError::Transport {
                peer: self.describe(*peer),
                detail: TransportFailure::NotUp {
                    waited,
                    why: why.clone(),
                },
            });
        }
        let names: Vec<String> = missing.iter().map(|(p, _)| self.names.name(*p)).collect();
        let peers: Vec<String> = missing
            .iter()
            .map(|(p, why)| format!("{} ({why})", self.describe(*p)))
            .collect();
        Err(ChannelError::Transport {
            peer: names.join(", "),
            detail: TransportFailure::NoneUp { waited, peers },
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
                                SetupMismatch::UninvitedDealer {
                                    peer: name.clone(),
                                    session: self.session.clone(),
                                }
                            } else {
                                let with = |peers: usize| {
                                    if peers > self.inbox.parties {
                                        DealerUse::With
                                    } else {
                                        DealerUse::Without
                                    }
                                };
                                SetupMismatch::DealerChoice {
                                    peer: name.clone(),
                                    session: Some(self.session.clone()),
                                    theirs: with(h.peers),
                                    me: self.names.name(self.me),
                                    ours: with(self.urls.len()),
                                }
                            };
                            return Err(WaitError::Fatal(ChannelError::Setup {
                                peer: name,
                                detail,
                            }));
                        }
                        Ok(h) => {
                            return Err(WaitError::Fatal(ChannelError::Transport {
                                peer: whom.clone(),
                                detail: TransportFailure::OtherEndpoint {
                                    parties: self.inbox.parties,
                                    serves: h.endpoint,
                                    peers: h.peers,
                                    session: h.session,
                                    expected: peer,
                                    expected_peers: self.urls.len(),
                                    expected_session: self.session.clone(),
                                },
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
                            detail: TransportFailure::Tls(why),
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
}

enum WaitError {
    /// Retrying cannot help (TLS, a misconfigured peer).
    Fatal(ChannelError),
    /// The peer did not answer in time; the last reason.
    NotUp(String),
}

/// The last (most specific) cause of a failed request, e.g. "Connection refused".
pub(super) fn short_reason(err: &reqwest::Error) -> String {
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
