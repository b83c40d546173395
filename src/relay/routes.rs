//! The relay's HTTP routes: parsing paths, queries, headers and bodies, and answering every
//! request, including bad ones, with a status and a body saying why. Every answer carries
//! the relay's instance id (`x-mpc-relay`), so that clients know they reach an mpc relay,
//! and which one.
//!
//! | route | answer |
//! |---|---|
//! | `PUT /join/{session}/{party}[?parties=N]` | claim a seat (`x-mpc-client`, `x-mpc-token`) |
//! | `GET /participants/{session}` | JSON array of the joined numeric seats |
//! | `POST /send/{session}/{from}/{to}[?seq=N]` | queue a message |
//! | `POST /recv/{session}/{from}/{to}[?seq=N&wait=SECS]` | take (or long-poll) a message |
//! | `GET /health` | liveness, version and instance id |
//! | `GET /metrics` | Prometheus text |
//! | `GET /sessions` | session list (admin token) |
//! | `GET /sessions/{session}` | session detail |
//! | `DELETE /sessions/{session}` | end a session (a seat token of it, or the admin token) |

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use super::RelayState;
use super::metrics::ProcessFigures;
use super::sessions::{
    JoinRequest, MESSAGE_OVERHEAD, Reason, Refusal, Refused, Seat, SendOutcome, TokenDigest,
    human_bytes,
};
use super::store::{DeleteAccess, Store};
use crate::net::body::{BodyError, DRAIN_CAP, Stalled, discard, read_body_within};
pub use crate::net::headers::{CLIENT_HEADER, EPOCH_HEADER, INSTANCE_HEADER, TOKEN_HEADER};
use crate::net::mailbox::Admission;
use crate::net::reply::{Reply, json, no_content, octets, percent_decode, shorten, text};

/// Longest long-poll wait a client may ask for.
pub const MAX_WAIT: Duration = Duration::from_secs(60);

/// Longest session name, in bytes (after percent-decoding).
const MAX_SESSION_NAME: usize = 256;

/// Longest client id, token or epoch, in bytes.
const MAX_CLIENT_ID: usize = 128;

/// Answers one request.
pub async fn handle(state: &RelayState, req: Request<Incoming>) -> Reply {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let segments: Vec<&str> = path.strip_prefix('/').unwrap_or(&path).split('/').collect();
    let result = match segments.as_slice() {
        ["health"] => only(&method, &[Method::GET]).map(|()| health(state)),
        ["metrics"] => match only(&method, &[Method::GET]) {
            Ok(()) => Ok(metrics(state).await),
            Err(refusal) => Err(refusal),
        },
        ["sessions"] => match only(&method, &[Method::GET]) {
            Ok(()) => list(state, req.headers()).await,
            Err(refusal) => Err(refusal),
        },
        ["sessions", session] => match only(&method, &[Method::GET, Method::DELETE]) {
            Ok(()) => match session_name(session) {
                Ok(name) if method == Method::DELETE => delete(state, req.headers(), &name).await,
                Ok(name) => detail(state, &name).await,
                Err(refusal) => Err(refusal),
            },
            Err(refusal) => Err(refusal),
        },
        ["join", session, party] => match only(&method, &[Method::PUT]) {
            Ok(()) => join(state, req.headers(), session, party, &query).await,
            Err(refusal) => Err(refusal),
        },
        ["participants", session] => match only(&method, &[Method::GET]) {
            Ok(()) => participants(state, session).await,
            Err(refusal) => Err(refusal),
        },
        ["send", session, from, to] => match only(&method, &[Method::POST]) {
            Ok(()) => {
                let (session, from, to) = (session.to_string(), from.to_string(), to.to_string());
                send(state, req, &session, &from, &to, &query).await
            }
            Err(refusal) => Err(refusal),
        },
        ["recv", session, from, to] => match only(&method, &[Method::POST]) {
            Ok(()) => recv(state, req.headers(), session, from, to, &query).await,
            Err(refusal) => Err(refusal),
        },
        _ => Err(Refusal::new(
            Refused::NotFound,
            format!(
                "unknown route: {method} {}; the relay serves PUT /join/{{session}}/{{party}}, \
                 GET /participants/{{session}}, POST /send/{{session}}/{{from}}/{{to}}, \
                 POST /recv/{{session}}/{{from}}/{{to}}, GET /health, GET /metrics, \
                 GET /sessions, GET and DELETE /sessions/{{session}}",
                shorten(&path)
            ),
        )),
    };
    let mut reply = match result {
        Ok(reply) => reply,
        Err(refusal) => {
            let status = status_of(refusal.kind);
            state.metrics.refused(status.as_u16());
            if status == StatusCode::SERVICE_UNAVAILABLE {
                tracing::debug!("{method} {}: {}", shorten(&path), refusal.reason);
            }
            let mut reply = text(status, &refusal.reason.to_string());
            if status == StatusCode::METHOD_NOT_ALLOWED
                && let Some(allow) = allowed(&segments)
            {
                reply
                    .headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static(allow));
            }
            if let Some(secs) = refusal.retry_after {
                reply
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            reply
        }
    };
    if let Ok(instance) = HeaderValue::from_str(state.store.instance()) {
        reply.headers_mut().insert(INSTANCE_HEADER, instance);
    }
    reply
}

/// The status that answers a refusal: the one place where refusals become HTTP.
fn status_of(kind: Refused) -> StatusCode {
    match kind {
        Refused::Invalid => StatusCode::BAD_REQUEST,
        Refused::Forbidden => StatusCode::FORBIDDEN,
        Refused::NotFound => StatusCode::NOT_FOUND,
        Refused::Method => StatusCode::METHOD_NOT_ALLOWED,
        Refused::Conflict => StatusCode::CONFLICT,
        Refused::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        Refused::Stalled => StatusCode::REQUEST_TIMEOUT,
        Refused::Busy => StatusCode::TOO_MANY_REQUESTS,
        Refused::Gone => StatusCode::GONE,
        Refused::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Refused::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The methods a known route accepts, for the `Allow` header.
fn allowed(segments: &[&str]) -> Option<&'static str> {
    match segments.first().copied() {
        Some("health" | "metrics" | "sessions" | "participants") if segments.len() == 1 => {
            Some("GET")
        }
        Some("sessions") => Some("GET, DELETE"),
        Some("participants") => Some("GET"),
        Some("join") => Some("PUT"),
        Some("send" | "recv") => Some("POST"),
        _ => None,
    }
}

fn only(method: &Method, allowed: &[Method]) -> Result<(), Refusal> {
    if allowed.contains(method) {
        return Ok(());
    }
    let names: Vec<&str> = allowed.iter().map(Method::as_str).collect();
    Err(Refusal::new(
        Refused::Method,
        format!(
            "method {method} is not allowed here; use {}",
            names.join(" or ")
        ),
    ))
}

fn bad_request(why: impl Into<String>) -> Refusal {
    Refusal::new(Refused::Invalid, why)
}

fn session_name(raw: &str) -> Result<String, Refusal> {
    let name = percent_decode(raw).ok_or_else(|| {
        bad_request(format!(
            "session name '{}' is not valid percent-encoded UTF-8",
            shorten(raw)
        ))
    })?;
    if name.is_empty() {
        return Err(bad_request("session name is empty"));
    }
    if name.len() > MAX_SESSION_NAME {
        return Err(bad_request(format!(
            "session name is too long ({} bytes, at most {MAX_SESSION_NAME})",
            name.len()
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(bad_request("session name contains control characters"));
    }
    Ok(name)
}

fn seat(raw: &str) -> Result<Seat, Refusal> {
    let decoded = percent_decode(raw).unwrap_or_else(|| raw.to_string());
    Seat::parse(&decoded).map_err(bad_request)
}

/// The query parameters of the message routes.
#[derive(Debug, Default)]
struct Query {
    seq: Option<u64>,
    wait: Option<Duration>,
    parties: Option<u32>,
}

fn parse_query(raw: &str) -> Result<Query, Refusal> {
    let mut query = Query::default();
    for (key, value) in form_urlencoded::parse(raw.as_bytes()) {
        let value = value.as_ref();
        match key.as_ref() {
            "seq" => {
                if !value.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad_seq(value));
                }
                query.seq = Some(value.parse().map_err(|_| bad_seq(value))?);
            }
            "wait" => {
                let secs: f64 = value.parse().map_err(|_| bad_wait(value))?;
                if !secs.is_finite() || secs < 0.0 {
                    return Err(bad_wait(value));
                }
                query.wait = Some(Duration::from_secs_f64(secs.min(MAX_WAIT.as_secs_f64())));
            }
            "parties" => {
                let n = value.parse::<u32>().map_err(|_| {
                    bad_request(format!(
                        "parties must be a number of parties, got '{}'",
                        shorten(value)
                    ))
                })?;
                query.parties = Some(n);
            }
            _ => {}
        }
    }
    Ok(query)
}

fn bad_seq(value: &str) -> Refusal {
    bad_request(format!(
        "seq must be a message number (0, 1, 2, ...), got '{}'",
        shorten(value)
    ))
}

fn bad_wait(value: &str) -> Refusal {
    bad_request(format!(
        "wait must be a number of seconds (at most {}), got '{}'",
        MAX_WAIT.as_secs(),
        shorten(value)
    ))
}

/// A visible-ASCII header value of 1 to [`MAX_CLIENT_ID`] bytes, if present.
fn header_text(headers: &HeaderMap, name: &str) -> Result<Option<String>, Refusal> {
    match headers.get(name) {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .ok()
            .filter(|v| {
                !v.is_empty() && v.len() <= MAX_CLIENT_ID && v.bytes().all(|b| b.is_ascii_graphic())
            })
            .map(|v| Some(v.to_string()))
            .ok_or_else(|| {
                bad_request(format!(
                    "{name} must be 1 to {MAX_CLIENT_ID} visible ASCII characters"
                ))
            }),
    }
}

/// The digest of the request's `x-mpc-token`, if it carries one.
fn token(headers: &HeaderMap) -> Result<Option<TokenDigest>, Refusal> {
    Ok(header_text(headers, TOKEN_HEADER)?.map(|t| TokenDigest::of(&t)))
}

/// Whether the request carries the relay's admin token (`authorization: Bearer TOKEN`).
fn is_admin(state: &RelayState, headers: &HeaderMap) -> bool {
    let Some(admin) = &state.admin else {
        return false;
    };
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|given| TokenDigest::of(given.trim()).matches(admin))
}

fn health(state: &RelayState) -> Reply {
    json(&serde_json::json!({
        "status": "ok",
        "service": "mpc relay",
        "version": env!("CARGO_PKG_VERSION"),
        "instance": state.store.instance(),
    }))
}

async fn metrics(state: &RelayState) -> Reply {
    let stats = match state.store.stats().await {
        Ok(stats) => Some(stats),
        Err(refusal) => {
            tracing::debug!("metrics without store figures: {}", refusal.reason);
            None
        }
    };
    let figures = ProcessFigures {
        connections_open: state.connections.open(),
        connections_shed: state.connections.shed(),
        connections_max: state.connections.limits().max_connections,
        budget_used: state.budget.used(),
        budget_limit: state.budget.limit(),
    };
    let mut reply = Response::new(Full::new(Bytes::from(state.metrics.render(stats, figures))));
    reply.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    reply
}

async fn list(state: &RelayState, headers: &HeaderMap) -> Result<Reply, Refusal> {
    if !is_admin(state, headers) {
        let why = if state.admin.is_some() {
            "the session list needs the relay's admin token (authorization: Bearer TOKEN)"
        } else {
            "the session list is only served to the relay's operator: start the relay with \
             --admin-token and send it as authorization: Bearer TOKEN"
        };
        return Err(Refusal::new(Refused::Forbidden, why));
    }
    Ok(json(&state.store.list().await?))
}

async fn detail(state: &RelayState, name: &str) -> Result<Reply, Refusal> {
    match state.store.detail(name).await? {
        Some(info) => Ok(json(&info)),
        None => Err(Refusal::new(
            Refused::NotFound,
            format!("unknown session '{}'", shorten(name)),
        )),
    }
}

async fn delete(state: &RelayState, headers: &HeaderMap, name: &str) -> Result<Reply, Refusal> {
    let access = DeleteAccess {
        token: token(headers)?,
        admin: is_admin(state, headers),
    };
    if state.store.delete(name, access).await? {
        Ok(text(
            StatusCode::OK,
            &format!("session '{}' deleted", shorten(name)),
        ))
    } else {
        Err(Refusal::new(
            Refused::NotFound,
            format!("unknown session '{}'", shorten(name)),
        ))
    }
}

async fn join(
    state: &RelayState,
    headers: &HeaderMap,
    session: &str,
    party: &str,
    query: &str,
) -> Result<Reply, Refusal> {
    let name = session_name(session)?;
    let seat = seat(party)?;
    let parties = match parse_query(query)?.parties {
        Some(0) => return Err(bad_request("parties must be at least 1")),
        other => other,
    };
    let req = JoinRequest {
        client: header_text(headers, CLIENT_HEADER)?,
        token: token(headers)?,
        parties,
        epoch: header_text(headers, EPOCH_HEADER)?,
    };
    let joined = state.store.join(&name, seat, &req).await?;
    let mut reply = text(
        StatusCode::OK,
        &format!("joined seat {seat} of session '{}'", shorten(&name)),
    );
    if let Ok(epoch) = HeaderValue::from_str(&joined.epoch) {
        reply.headers_mut().insert(EPOCH_HEADER, epoch);
    }
    Ok(reply)
}

async fn participants(state: &RelayState, session: &str) -> Result<Reply, Refusal> {
    let name = session_name(session)?;
    Ok(json(&state.store.participants(&name).await?))
}

async fn send(
    state: &RelayState,
    req: Request<Incoming>,
    session: &str,
    from: &str,
    to: &str,
    query: &str,
) -> Result<Reply, Refusal> {
    let config = &state.config;
    let name = session_name(session)?;
    let from = seat(from)?;
    let to = seat(to)?;
    let query = parse_query(query)?;
    let token = token(req.headers())?;
    if from == to {
        return Err(bad_request(format!(
            "{} cannot send a message to itself",
            from.describe()
        )));
    }
    let declared = match req.headers().get(header::CONTENT_LENGTH) {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| bad_request("content-length is not a number"))?,
        ),
    };
    let body = req.into_body();
    let too_large = || {
        Refusal::new(
            Refused::TooLarge,
            format!(
                "message too large: the relay accepts at most {} per message",
                human_bytes(config.max_message)
            ),
        )
    };
    if declared.is_some_and(|n| n > config.max_message as u64) {
        if declared.is_some_and(|n| n <= DRAIN_CAP) {
            discard(body).await;
        }
        return Err(too_large());
    }

    // Cheap checks before reading (and buffering) the body.
    let status = match state
        .store
        .check_send(&name, from, to, query.seq, token)
        .await
    {
        Ok(status) => status,
        Err(refusal) => {
            discard(body).await;
            return Err(refusal);
        }
    };
    match status {
        Admission::Next => {}
        Admission::Duplicate => {
            discard(body).await;
            return Ok(duplicate(query.seq));
        }
        Admission::Gap { expected } => {
            discard(body).await;
            return Err(Reason::OutOfOrder {
                from,
                to,
                got: query.seq.unwrap_or(0),
                expected,
            }
            .into());
        }
    }
    let declared_len = declared.map(|n| n as usize);
    let hint = declared_len.unwrap_or(config.max_message);
    let Some(mut reservation) = state.budget.reserve(hint + MESSAGE_OVERHEAD) else {
        discard(body).await;
        return Err(state.budget.exhausted());
    };
    let data =
        match read_body_within(body, config.max_message, declared_len, config.body_timeout).await {
            Ok(Ok(data)) => data,
            Ok(Err(BodyError::TooLarge)) => return Err(too_large()),
            Err(Stalled(after)) => {
                return Err(Refusal::new(
                    Refused::Stalled,
                    format!(
                        "the message body stalled: no data for {} s",
                        after.as_secs_f64()
                    ),
                ));
            }
            Ok(Err(BodyError::Failed(why))) => {
                return Err(bad_request(format!("cannot read the message body: {why}")));
            }
        };
    reservation.shrink_to(data.len() + MESSAGE_OVERHEAD);
    match state
        .store
        .send(&name, from, to, query.seq, data, token, reservation)
        .await?
    {
        SendOutcome::Queued(n) => Ok(text(StatusCode::OK, &format!("queued as message {n}"))),
        SendOutcome::Duplicate(n) => Ok(duplicate(Some(n))),
    }
}

fn duplicate(seq: Option<u64>) -> Reply {
    let n = seq.map_or_else(String::new, |n| format!(" {n}"));
    text(
        StatusCode::OK,
        &format!("message{n} was already received; duplicate ignored"),
    )
}

async fn recv(
    state: &RelayState,
    headers: &HeaderMap,
    session: &str,
    from: &str,
    to: &str,
    query: &str,
) -> Result<Reply, Refusal> {
    let name = session_name(session)?;
    let from = seat(from)?;
    let to = seat(to)?;
    let query = parse_query(query)?;
    let token = token(headers)?;
    let Some(seq) = query.seq else {
        if query.wait.is_some() {
            return Err(bad_request(
                "wait needs seq: ask for a message number with ?seq=N&wait=SECS",
            ));
        }
        // Polytune's receive: take the oldest message, 400 if there is none.
        return state.store.pop(&name, from, to, token).await.map(octets);
    };
    let wait = query.wait.unwrap_or_default();
    match state.store.recv(&name, from, to, seq, wait, token).await? {
        Some(msg) => Ok(octets(msg)),
        None => Ok(no_content()),
    }
}
