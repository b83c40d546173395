//! What every request to the relay shares: who we are, what we joined, and whether the
//! relay is reachable or has lost our session; and the heartbeat that finds out.

use std::error::Error as StdError;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use reqwest::{Client, RequestBuilder, StatusCode, Url};
use tokio::sync::watch;

use super::QUICK_REQUEST;
use crate::channel::SessionLost;
use crate::net::chain;
use crate::net::client::body_text;
use crate::net::headers::{CLIENT_HEADER, EPOCH_HEADER, INSTANCE_HEADER, TOKEN_HEADER};

/// Interval between heartbeats (repeated joins) that tell the relay we are alive.
const HEARTBEAT: Duration = Duration::from_secs(1);

/// What every request to the relay shares: who we are, what we joined, and whether the
/// relay is reachable or has lost our session.
pub(super) struct RelayLink {
    /// The relay's base URL, for messages.
    pub(super) url: String,
    pub(super) session: String,
    pub(super) token: String,
    /// The relay instance that answered the join.
    pub(super) instance: String,
    /// The session incarnation the join answered.
    pub(super) epoch: String,
    pub(super) timeout: Duration,
    /// Set once the session is lost for good (relay restarted, session deleted, seat
    /// taken): every pending and later request fails with this reason.
    pub(super) lost: watch::Sender<Option<SessionLost>>,
    /// Whether "cannot reach the relay" was said and not yet taken back.
    pub(super) unreachable: AtomicBool,
}

impl RelayLink {
    /// Adds the token to a request.
    pub(super) fn auth(&self, req: RequestBuilder) -> RequestBuilder {
        req.header(TOKEN_HEADER, &self.token)
    }

    /// The reason the session is lost, if it is.
    pub(super) fn lost_reason(&self) -> Option<SessionLost> {
        self.lost.borrow().clone()
    }

    /// Records that the session is lost (the first reason wins).
    pub(super) fn lose(&self, why: SessionLost) {
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
    pub(super) fn check_instance(&self, resp: &reqwest::Response) {
        if let Some(now) = instance_of(resp)
            && now != self.instance
        {
            self.lose(self.restarted(now));
        }
    }

    /// The reason for a relay whose instance `now` answers instead of the one we joined.
    fn restarted(&self, now: String) -> SessionLost {
        SessionLost::Restarted {
            url: self.url.clone(),
            session: self.session.clone(),
            was: self.instance.clone(),
            now,
        }
    }

    /// Says once that the relay cannot be reached.
    pub(super) fn unreachable(&self, err: &reqwest::Error) {
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
    pub(super) fn reachable(&self) {
        if self.unreachable.swap(false, Ordering::AcqRel) {
            tracing::info!("reached the relay at {} again", self.url);
        }
    }

    /// Completes when the session is lost, with the reason.
    pub(super) async fn lost(&self) -> SessionLost {
        let mut watch = self.lost.subscribe();
        let reason = match watch.wait_for(Option::is_some).await {
            Ok(reason) => reason.clone(),
            Err(_) => None,
        };
        match reason {
            Some(reason) => reason,
            None => std::future::pending().await,
        }
    }
}

/// The relay instance an answer names, if any.
pub(super) fn instance_of(resp: &reqwest::Response) -> Option<String> {
    resp.headers()
        .get(INSTANCE_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// A short reason for a failed request: "connection refused", "timed out", ...
pub(super) fn short_reason(err: &reqwest::Error) -> String {
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

/// Repeats the join every [`HEARTBEAT`], so that the relay knows this seat is alive, and
/// notices when the relay lost the session or gave the seat to another client.
pub(super) async fn heartbeat(client: Client, url: Url, client_id: String, link: Arc<RelayLink>) {
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
                    Some(now) if now != link.instance => link.restarted(now),
                    _ => SessionLost::Gone {
                        url: link.url.clone(),
                        session: link.session.clone(),
                        body: body_text(resp).await,
                    },
                };
                link.lose(why);
                return;
            }
            StatusCode::CONFLICT | StatusCode::FORBIDDEN => {
                let body = body_text(resp).await;
                link.lose(SessionLost::SeatTaken {
                    url: link.url.clone(),
                    body,
                });
                return;
            }
            status => {
                link.reachable();
                tracing::debug!("heartbeat answered {status}: {}", body_text(resp).await);
            }
        }
    }
}
