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

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use super::RelayState;
use super::metrics::ProcessFigures;
use super::sessions::{
    JoinRequest, MESSAGE_OVERHEAD, Refusal, Seat, SendOutcome, SeqStatus, TokenDigest, gap_refusal,
    human_bytes, shorten,
};
use super::store::{DeleteAccess, Store};

/// Header carrying a client's id, which owns the seat it claims first.
pub const CLIENT_HEADER: &str = "x-mpc-client";

/// Header carrying a client's secret token: a seat claimed with one is read, acknowledged
/// and written only with it.
pub const TOKEN_HEADER: &str = "x-mpc-token";

/// Header carrying the session incarnation a client joined (answered by joins, sent back
/// with heartbeats).
pub const EPOCH_HEADER: &str = "x-mpc-session-epoch";

/// Header carrying the relay's instance id, on every answer.
pub const INSTANCE_HEADER: &str = "x-mpc-relay";

/// Longest long-poll wait a client may ask for.
pub const MAX_WAIT: Duration = Duration::from_secs(60);

/// Longest session name, in bytes (after percent-decoding).
const MAX_SESSION_NAME: usize = 256;

/// Longest client id, token or epoch, in bytes.
const MAX_CLIENT_ID: usize = 128;

/// Most bytes of a refused body read and discarded (so that the client sees the answer
/// instead of a reset connection); beyond that the connection is simply closed.
const DRAIN_CAP: u64 = 64 << 20;

/// Longest time spent discarding a refused body.
const DRAIN_TIME: Duration = Duration::from_secs(5);

/// The response type of every route.
pub type Reply = Response<Full<Bytes>>;

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
            StatusCode::NOT_FOUND,
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
            state.metrics.refused(refusal.status.as_u16());
            if refusal.status == StatusCode::SERVICE_UNAVAILABLE {
                tracing::debug!("{method} {}: {}", shorten(&path), refusal.message);
            }
            let mut reply = text(refusal.status, &refusal.message);
            if refusal.status == StatusCode::METHOD_NOT_ALLOWED
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
        StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "method {method} is not allowed here; use {}",
            names.join(" or ")
        ),
    ))
}

pub(crate) fn text(status: StatusCode, message: &str) -> Reply {
    let mut body = message.to_string();
    body.push('\n');
    let mut reply = Response::new(Full::new(Bytes::from(body)));
    *reply.status_mut() = status;
    reply.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    reply
}

pub(crate) fn json(value: &impl serde::Serialize) -> Reply {
    match serde_json::to_vec(value) {
        Ok(body) => {
            let mut reply = Response::new(Full::new(Bytes::from(body)));
            reply.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            reply
        }
        Err(err) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("internal error: cannot encode JSON: {err}"),
        ),
    }
}

fn message(body: Bytes) -> Reply {
    let mut reply = Response::new(Full::new(body));
    reply.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    reply
}

fn no_content() -> Reply {
    let mut reply = Response::new(Full::new(Bytes::new()));
    *reply.status_mut() = StatusCode::NO_CONTENT;
    reply
}

fn bad_request(why: impl Into<String>) -> Refusal {
    Refusal::new(StatusCode::BAD_REQUEST, why)
}

/// Decodes `%XX` escapes; `None` for a malformed escape (a `%` not followed by two hex
/// digits, e.g. `%+f`) or invalid UTF-8.
pub(crate) fn percent_decode(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let well_formed = bytes.iter().enumerate().all(|(i, b)| {
        *b != b'%'
            || bytes
                .get(i + 1..i + 3)
                .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit))
    });
    if !well_formed {
        return None;
    }
    percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
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
            tracing::debug!("metrics without store figures: {}", refusal.message);
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
        return Err(Refusal::new(StatusCode::FORBIDDEN, why));
    }
    Ok(json(&state.store.list().await?))
}

async fn detail(state: &RelayState, name: &str) -> Result<Reply, Refusal> {
    match state.store.detail(name).await? {
        Some(info) => Ok(json(&info)),
        None => Err(Refusal::new(
            StatusCode::NOT_FOUND,
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
            StatusCode::NOT_FOUND,
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

/// How reading a message body failed.
pub(crate) enum BodyError {
    /// Larger than the limit.
    TooLarge,
    /// The connection failed or the body is malformed.
    Failed(String),
}

/// No data arrived for this long: the client stopped mid-body.
pub(crate) struct Stalled(pub(crate) Duration);

/// How long a body may go without any data before it is dropped (direct mode).
const BODY_STALL: Duration = Duration::from_secs(30);

/// Reads a body of at most `limit` bytes; a larger body is discarded and refused, a body
/// that stalls for 30 s is dropped.
pub(crate) async fn read_body(body: Incoming, limit: usize) -> Result<Bytes, BodyError> {
    match read_body_within(body, limit, None, BODY_STALL).await {
        Ok(read) => read,
        Err(Stalled(after)) => Err(BodyError::Failed(format!(
            "no data for {} s",
            after.as_secs()
        ))),
    }
}

/// Reads a body of at most `limit` bytes (`declared`: its announced length, if any) into
/// one allocation of its own size. The frames hyper hands out are slices of its read
/// buffer: keeping one alive keeps the whole buffer alive (kilobytes for a ten-byte
/// message), so they are always copied out. Fails with [`BodyError::Stalled`] when no data
/// arrives for `stall`.
pub(crate) async fn read_body_within(
    body: Incoming,
    limit: usize,
    declared: Option<usize>,
    stall: Duration,
) -> Result<Result<Bytes, BodyError>, Stalled> {
    let mut limited = Limited::new(body, limit);
    let mut buf = BytesMut::with_capacity(declared.unwrap_or(0).min(limit));
    loop {
        let frame = match tokio::time::timeout(stall, limited.frame()).await {
            Ok(Some(frame)) => frame,
            Ok(None) => break,
            Err(_) => return Err(Stalled(stall)),
        };
        match frame {
            Ok(frame) => {
                if let Ok(data) = frame.into_data() {
                    buf.extend_from_slice(&data);
                }
            }
            Err(err) if err.downcast_ref::<LengthLimitError>().is_some() => {
                drop(buf);
                discard(limited).await;
                return Ok(Err(BodyError::TooLarge));
            }
            Err(err) => return Ok(Err(BodyError::Failed(err.to_string()))),
        }
    }
    if buf.capacity() > buf.len() + buf.len() / 8 {
        // Grown by doubling (no length announced): keep only what is used.
        return Ok(Ok(Bytes::copy_from_slice(&buf)));
    }
    Ok(Ok(buf.freeze()))
}

/// Reads and throws away the rest of a refused body (bounded in bytes and time), so that
/// an HTTP/1.1 client still reads the answer instead of a reset connection.
pub(crate) async fn discard<B>(mut body: B)
where
    B: hyper::body::Body + Unpin,
    B::Data: bytes::Buf,
{
    let mut seen: u64 = 0;
    let drain = async {
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(frame) => {
                    if let Some(data) = frame.data_ref() {
                        seen += bytes::Buf::remaining(data) as u64;
                    }
                    if seen > DRAIN_CAP {
                        return;
                    }
                }
                // Limited keeps failing (without buffering) once over its limit.
                Err(_) => {
                    seen += 1 << 14;
                    if seen > DRAIN_CAP {
                        return;
                    }
                }
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_TIME, drain).await;
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
            StatusCode::PAYLOAD_TOO_LARGE,
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
        SeqStatus::Next => {}
        SeqStatus::Duplicate => {
            discard(body).await;
            return Ok(duplicate(query.seq));
        }
        SeqStatus::Gap { expected } => {
            discard(body).await;
            return Err(gap_refusal(from, to, query.seq.unwrap_or(0), expected));
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
                    StatusCode::REQUEST_TIMEOUT,
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
        return state.store.pop(&name, from, to, token).await.map(message);
    };
    let wait = query.wait.unwrap_or_default();
    match state.store.recv(&name, from, to, seq, wait, token).await? {
        Some(msg) => Ok(message(msg)),
        None => Ok(no_content()),
    }
}
