//! The relay's HTTP routes: parsing paths, queries and bodies, and answering every request,
//! including bad ones, with a status and a body saying why.
//!
//! | route | answer |
//! |---|---|
//! | `PUT /join/{session}/{party}` | claim a seat (`x-mpc-client` header: first id owns it) |
//! | `GET /participants/{session}` | JSON array of the joined numeric seats |
//! | `POST /send/{session}/{from}/{to}[?seq=N]` | queue a message |
//! | `POST /recv/{session}/{from}/{to}[?seq=N&wait=SECS]` | take (or long-poll) a message |
//! | `GET /health` | liveness and version |
//! | `GET /sessions`, `GET /sessions/{session}` | session list and detail |
//! | `DELETE /sessions/{session}` | end a session |

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use super::sessions::{
    MESSAGE_OVERHEAD, Poll, Refusal, Registry, Seat, SendOutcome, SeqStatus, Session, gap_refusal,
    human_bytes, shorten,
};

/// Header carrying a client's id, which owns the seat it claims first.
pub const CLIENT_HEADER: &str = "x-mpc-client";

/// Longest long-poll wait a client may ask for.
pub const MAX_WAIT: Duration = Duration::from_secs(60);

/// Longest session name, in bytes (after percent-decoding).
const MAX_SESSION_NAME: usize = 256;

/// Longest client id, in bytes.
const MAX_CLIENT_ID: usize = 128;

/// Most bytes of a refused body read and discarded (so that the client sees the answer
/// instead of a reset connection); beyond that the connection is simply closed.
const DRAIN_CAP: u64 = 64 << 20;

/// Longest time spent discarding a refused body.
const DRAIN_TIME: Duration = Duration::from_secs(5);

/// The response type of every route.
pub type Reply = Response<Full<Bytes>>;

/// Answers one request.
pub async fn handle(registry: &Registry, req: Request<Incoming>) -> Reply {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let segments: Vec<&str> = path.strip_prefix('/').unwrap_or(&path).split('/').collect();
    let result = match segments.as_slice() {
        ["health"] => only(&method, &[Method::GET]).map(|()| health()),
        ["sessions"] => only(&method, &[Method::GET]).map(|()| list(registry)),
        ["sessions", session] => match only(&method, &[Method::GET, Method::DELETE]) {
            Ok(()) => match session_name(session) {
                Ok(name) if method == Method::DELETE => Ok(delete(registry, &name)),
                Ok(name) => Ok(detail(registry, &name)),
                Err(refusal) => Err(refusal),
            },
            Err(refusal) => Err(refusal),
        },
        ["join", session, party] => match only(&method, &[Method::PUT]) {
            Ok(()) => join(registry, &req, session, party),
            Err(refusal) => Err(refusal),
        },
        ["participants", session] => match only(&method, &[Method::GET]) {
            Ok(()) => participants(registry, session),
            Err(refusal) => Err(refusal),
        },
        ["send", session, from, to] => match only(&method, &[Method::POST]) {
            Ok(()) => {
                let (session, from, to) = (session.to_string(), from.to_string(), to.to_string());
                send(registry, req, &session, &from, &to, &query).await
            }
            Err(refusal) => Err(refusal),
        },
        ["recv", session, from, to] => match only(&method, &[Method::POST]) {
            Ok(()) => recv(registry, session, from, to, &query).await,
            Err(refusal) => Err(refusal),
        },
        _ => Err(Refusal::new(
            StatusCode::NOT_FOUND,
            format!(
                "unknown route: {method} {}; the relay serves PUT /join/{{session}}/{{party}}, \
                 GET /participants/{{session}}, POST /send/{{session}}/{{from}}/{{to}}, \
                 POST /recv/{{session}}/{{from}}/{{to}}, GET /health, GET /sessions, \
                 GET and DELETE /sessions/{{session}}",
                shorten(&path)
            ),
        )),
    };
    match result {
        Ok(reply) => reply,
        Err(refusal) => {
            let mut reply = text(refusal.status, &refusal.message);
            if refusal.status == StatusCode::METHOD_NOT_ALLOWED
                && let Some(allow) = allowed(&segments)
            {
                reply
                    .headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static(allow));
            }
            reply
        }
    }
}

/// The methods a known route accepts, for the `Allow` header.
fn allowed(segments: &[&str]) -> Option<&'static str> {
    match segments.first().copied() {
        Some("health" | "sessions" | "participants") if segments.len() == 1 => Some("GET"),
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

/// Decodes `%XX` escapes; `None` for a malformed escape or invalid UTF-8.
pub(crate) fn percent_decode(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = raw.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
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
}

fn parse_query(raw: &str) -> Result<Query, Refusal> {
    let mut query = Query::default();
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
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

fn health() -> Reply {
    json(&serde_json::json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
    }))
}

fn list(registry: &Registry) -> Reply {
    json(&registry.list())
}

fn detail(registry: &Registry, name: &str) -> Reply {
    match registry.get(name) {
        Some(session) => {
            session.touch(None);
            json(&session.info())
        }
        None => text(
            StatusCode::NOT_FOUND,
            &format!("unknown session '{}'", shorten(name)),
        ),
    }
}

fn delete(registry: &Registry, name: &str) -> Reply {
    if registry.delete(name) {
        text(
            StatusCode::OK,
            &format!("session '{}' deleted", shorten(name)),
        )
    } else {
        text(
            StatusCode::NOT_FOUND,
            &format!("unknown session '{}'", shorten(name)),
        )
    }
}

fn join(
    registry: &Registry,
    req: &Request<Incoming>,
    session: &str,
    party: &str,
) -> Result<Reply, Refusal> {
    let name = session_name(session)?;
    let seat = seat(party)?;
    let client = match req.headers().get(CLIENT_HEADER) {
        None => None,
        Some(value) => {
            let id = value
                .to_str()
                .ok()
                .filter(|id| {
                    !id.is_empty()
                        && id.len() <= MAX_CLIENT_ID
                        && id.bytes().all(|b| b.is_ascii_graphic())
                })
                .ok_or_else(|| {
                    bad_request(format!(
                        "{CLIENT_HEADER} must be 1 to {MAX_CLIENT_ID} visible ASCII characters"
                    ))
                })?;
            Some(id.to_string())
        }
    };
    // A session deleted or expired between lookup and join is simply created again.
    for _ in 0..2 {
        let session = registry.get_or_create(&name)?;
        if session
            .join(seat, client.as_deref(), registry.budget())?
            .is_some()
        {
            return Ok(text(
                StatusCode::OK,
                &format!("joined seat {seat} of session '{}'", shorten(&name)),
            ));
        }
    }
    Err(Refusal::new(
        StatusCode::SERVICE_UNAVAILABLE,
        format!(
            "session '{}' keeps being closed; retry later",
            shorten(&name)
        ),
    ))
}

fn participants(registry: &Registry, session: &str) -> Result<Reply, Refusal> {
    let name = session_name(session)?;
    let seats = match registry.get(&name) {
        Some(session) => {
            session.touch(None);
            session.participants()
        }
        None => Vec::new(),
    };
    Ok(json(&seats))
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
    registry: &Registry,
    req: Request<Incoming>,
    session: &str,
    from: &str,
    to: &str,
    query: &str,
) -> Result<Reply, Refusal> {
    let config = registry.config();
    let name = session_name(session)?;
    let from = seat(from)?;
    let to = seat(to)?;
    let query = parse_query(query)?;
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

    let mut session = registry.get_or_create(&name)?;
    // Cheap checks before reading (and buffering) the body.
    let mut status = session.check_seq(from, to, query.seq);
    if status == SeqStatus::Closed {
        session = registry.get_or_create(&name)?;
        status = session.check_seq(from, to, query.seq);
    }
    session.touch(Some(from));
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
        SeqStatus::Closed => {
            discard(body).await;
            return Err(Refusal::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "session '{}' keeps being closed; retry later",
                    shorten(&name)
                ),
            ));
        }
    }
    let declared_len = declared.map(|n| n as usize);
    let hint = declared_len.unwrap_or(config.max_message);
    let Some(mut reservation) = registry.budget().reserve(hint + MESSAGE_OVERHEAD) else {
        discard(body).await;
        return Err(registry.budget().exhausted());
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
    // A session deleted or expired while the body was read answers Closed: the sender
    // retries (503) and then lands in a fresh session.
    match session.enqueue(registry, from, to, query.seq, data, reservation)? {
        SendOutcome::Queued(n) => Ok(text(StatusCode::OK, &format!("queued as message {n}"))),
        SendOutcome::Duplicate(n) => Ok(duplicate(Some(n))),
        SendOutcome::Closed => Err(Refusal::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "session '{}' was closed while the message arrived; retry",
                shorten(&name)
            ),
        )),
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
    registry: &Registry,
    session: &str,
    from: &str,
    to: &str,
    query: &str,
) -> Result<Reply, Refusal> {
    let name = session_name(session)?;
    let from = seat(from)?;
    let to = seat(to)?;
    let query = parse_query(query)?;
    let Some(seq) = query.seq else {
        if query.wait.is_some() {
            return Err(bad_request(
                "wait needs seq: ask for a message number with ?seq=N&wait=SECS",
            ));
        }
        // Polytune's receive: take the oldest message, 400 if there is none.
        let session = registry.get(&name).ok_or_else(|| {
            bad_request(format!(
                "unknown session '{}': no message from {} to {}",
                shorten(&name),
                from.describe(),
                to.describe()
            ))
        })?;
        return session.pop(from, to, registry.budget()).map(message);
    };
    let session = registry.get_or_create(&name)?;
    session.touch(Some(to));
    long_poll(
        registry,
        &session,
        from,
        to,
        seq,
        query.wait.unwrap_or_default(),
    )
    .await
}

/// Answers with message `seq` as soon as it is there, or 204 after `wait`.
async fn long_poll(
    registry: &Registry,
    session: &Session,
    from: Seat,
    to: Seat,
    seq: u64,
    wait: Duration,
) -> Result<Reply, Refusal> {
    let deadline = tokio::time::Instant::now() + wait;
    let lost_after = registry.config().lost_after;
    let _waiting = session.waiter();
    let notify = session.pair_notify(from, to, registry.budget())?;
    loop {
        let notified = notify.notified();
        tokio::pin!(notified);
        // Register before looking, so that a message queued right after the look wakes us.
        notified.as_mut().enable();
        let recheck_at = match session.poll(from, to, seq, lost_after, registry.budget()) {
            Poll::Ready(msg) => return Ok(message(msg)),
            Poll::Refused(refusal) => return Err(refusal),
            Poll::Waiting { recheck_at } => recheck_at,
        };
        if tokio::time::Instant::now() >= deadline {
            return Ok(no_content());
        }
        let recheck = async {
            match recheck_at {
                Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = notified => {}
            _ = tokio::time::sleep_until(deadline) => {}
            _ = recheck => {}
        }
    }
}
