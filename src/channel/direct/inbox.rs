//! The receiving side of a direct-mode endpoint: its HTTP routes and the frames received
//! from each sender, waiting for the protocol to take them. Sequence admission is the
//! shared [`Mailbox`]'s; this module adds the buffer limit and picks the status codes.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header;
use hyper::{Method, Request, StatusCode};
use tokio::sync::Notify;

use super::DirectLimits;
use crate::channel::PeerNames;
use crate::net::body::{BodyError, discard, read_body};
use crate::net::mailbox::{Admission, Mailbox};
use crate::net::reply::{Reply, json, percent_decode, shorten, text};

/// Frames received from one sender and not yet taken by the protocol.
pub(super) struct SlotState {
    /// The frames, and the number of the next frame accepted from this sender.
    mailbox: Mailbox,
    /// When the sender was last heard from (frame, heartbeat or health check).
    last_seen: Option<Instant>,
}

pub(super) struct Slot {
    state: Mutex<SlotState>,
    pub(super) notify: Notify,
}

/// The receiving side of an endpoint, shared by its HTTP server and its transport.
pub(super) struct Inbox {
    session: String,
    me: usize,
    peers: usize,
    pub(super) parties: usize,
    names: PeerNames,
    limits: DirectLimits,
    slots: Vec<Slot>,
}

impl Inbox {
    /// The inbox of endpoint `me` of `session`, with `peers` endpoints in all.
    pub(super) fn new(
        session: String,
        me: usize,
        peers: usize,
        parties: usize,
        limits: DirectLimits,
    ) -> Self {
        Inbox {
            session,
            me,
            peers,
            parties,
            names: PeerNames::new(parties),
            limits,
            slots: (0..peers)
                .map(|_| Slot {
                    state: Mutex::new(SlotState {
                        mailbox: Mailbox::new(),
                        last_seen: None,
                    }),
                    notify: Notify::new(),
                })
                .collect(),
        }
    }

    pub(super) fn slot(&self, peer: usize) -> &Slot {
        &self.slots[peer]
    }

    fn lock(&self, peer: usize) -> std::sync::MutexGuard<'_, SlotState> {
        self.slot(peer)
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(super) fn mark_alive(&self, peer: usize) {
        if peer < self.peers {
            self.lock(peer).last_seen = Some(Instant::now());
        }
    }

    /// How long ago `peer` was last heard from, if it ever was.
    pub(super) fn silent_for(&self, peer: usize) -> Option<Duration> {
        self.lock(peer).last_seen.map(|t| t.elapsed())
    }

    /// Takes frame `seq` from `peer` if it has arrived (older frames are dropped).
    pub(super) fn take(&self, peer: usize, seq: u64) -> Option<Bytes> {
        self.lock(peer).mailbox.take(seq)
    }
}

/// Answers one request to a direct-mode endpoint.
pub(super) async fn handle(inbox: &Inbox, req: Request<Incoming>) -> Reply {
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
                shorten(&path)
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
                shorten(&session)
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
                shorten(from)
            ),
        )),
    }
}

/// What to do with frame `seq` from a sender, decided under its lock.
enum Verdict {
    Accept,
    Duplicate,
    Refuse(Reply),
}

fn admit(inbox: &Inbox, state: &SlotState, from: usize, seq: u64, len: usize) -> Verdict {
    match state.mailbox.admit(Some(seq)) {
        Admission::Duplicate => return Verdict::Duplicate,
        Admission::Gap { expected } => {
            return Verdict::Refuse(text(
                StatusCode::CONFLICT,
                &format!(
                    "frame {seq} from {} arrived before frame {expected}: frames must be sent in \
                     order",
                    inbox.names.name(from),
                ),
            ));
        }
        Admission::Next => {}
    }
    let queued = state.mailbox.bytes();
    if !state.mailbox.is_empty() && queued + len > inbox.limits.max_buffered {
        return Verdict::Refuse(text(
            StatusCode::TOO_MANY_REQUESTS,
            &format!(
                "{queued} bytes from {} are already waiting here (limit {}); retry later",
                inbox.names.name(from),
                inbox.limits.max_buffered
            ),
        ));
    }
    Verdict::Accept
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
        Verdict::Accept => {}
        Verdict::Duplicate => {
            discard(req.into_body()).await;
            return duplicate(seq);
        }
        Verdict::Refuse(reply) => {
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
        Verdict::Accept => {}
        Verdict::Duplicate => return duplicate(seq),
        Verdict::Refuse(reply) => return reply,
    }
    state.mailbox.push(frame);
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
