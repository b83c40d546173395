//! The Redis store (`--store redis://HOST:PORT[/DB]`): seats, queues, sequence numbers and
//! byte counters live in Redis, so a relay may restart, and several relays may serve one
//! session, without losing anything.
//!
//! Every change to a session is one run of the script `redis.lua` (atomic in Redis, so the
//! limits hold whichever relay a request reaches). A session's keys share the hash tag of
//! its name (hex-encoded), so they sit in one Redis Cluster slot; their expiry is the
//! session time-to-live, renewed by every request. The messages of an ordered pair are a
//! Redis stream; a long-poll blocks in `XREAD` on a connection of its own, in slices, so
//! that it notices a deleted session or a lost sender. Only the list of session names
//! (`mpc:sessions`, for the admin list, `/metrics` and the expiry log line) lives outside
//! the sessions' slots.
//!
//! The relay's memory budget does not cover what Redis holds (Redis's own `maxmemory`
//! does); the per-queue and per-session limits do.

use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::{AsyncConnectionConfig, Client, Script};
use serde_json::Value;

use super::{DeleteAccess, Store, StoreContext};
use crate::net::mailbox::Admission;
use crate::relay::budget::Reservation;
use crate::relay::metrics::StoreStats;
use crate::relay::sessions::{
    Closed, JoinRequest, Joined, Reason, Refusal, Seat, SendOutcome, SessionInfo, TokenDigest,
    random_id,
};

/// The operations, run atomically in Redis.
const SCRIPT: &str = include_str!("redis.lua");

/// The sorted set of session names (score: creation time in ms).
const INDEX: &str = "mpc:sessions";

/// The key holding the id of the data set, reported as the relay's instance id.
const INSTANCE: &str = "mpc:instance";

/// Longest single blocking read: a long-poll looks again at least this often.
const SLICE: Duration = Duration::from_secs(2);

/// Most idle blocking-read connections kept for reuse.
const POOL: usize = 64;

/// The Redis store (see the module documentation).
pub struct RedisStore {
    context: StoreContext,
    client: Client,
    conn: ConnectionManager,
    script: Script,
    instance: String,
    /// Connections for blocking reads (a blocked `XREAD` holds its connection).
    idle: Mutex<Vec<MultiplexedConnection>>,
    shutting_down: std::sync::atomic::AtomicBool,
}

/// The prefix of a session's keys; the hash tag is the hex of its name.
fn prefix(session: &str) -> String {
    format!("mpc:{{{}}}:", hex::encode(session.as_bytes()))
}

fn seat_arg(seat: Seat) -> String {
    seat.to_string()
}

fn token_arg(token: Option<TokenDigest>) -> String {
    token.map(TokenDigest::to_hex).unwrap_or_default()
}

fn int(v: &Value, key: &str) -> Option<u64> {
    v.get(key)
        .and_then(|x| x.as_f64())
        .map(|x| x.max(0.0) as u64)
}

fn flag(v: &Value, key: &str) -> bool {
    v.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn strings(v: &Value, key: &str) -> Vec<String> {
    // An empty Lua table is encoded as `{}`, not `[]`.
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// What the script answered: its JSON and a message body (empty if none).
struct Answer {
    json: Value,
    data: Bytes,
}

impl Answer {
    fn err(&self) -> Option<&str> {
        self.json.get("err").and_then(Value::as_str)
    }
}

impl RedisStore {
    /// Connects to the Redis at `url`.
    pub async fn open(url: &str, context: StoreContext) -> Result<RedisStore, String> {
        let client = Client::open(url).map_err(|err| format!("{url}: {err}"))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(Duration::from_secs(10)))
            .set_number_of_retries(2);
        let mut conn = client
            .get_connection_manager_with_config(config)
            .await
            .map_err(|err| format!("cannot connect to Redis at {url}: {err}"))?;
        let fresh = random_id();
        let _: Option<String> = redis::cmd("SET")
            .arg(INSTANCE)
            .arg(&fresh)
            .arg("NX")
            .query_async(&mut conn)
            .await
            .map_err(|err| format!("Redis at {url}: {err}"))?;
        let instance: String = redis::cmd("GET")
            .arg(INSTANCE)
            .query_async(&mut conn)
            .await
            .map_err(|err| format!("Redis at {url}: {err}"))?;
        Ok(RedisStore {
            context,
            client,
            conn,
            script: Script::new(SCRIPT),
            instance,
            idle: Mutex::new(Vec::new()),
            shutting_down: std::sync::atomic::AtomicBool::new(false),
        })
    }

    fn failed(&self, err: impl std::fmt::Display) -> Refusal {
        self.context.metrics.store_error();
        tracing::warn!("Redis store: {err}");
        Refusal::store(err)
    }

    /// Runs operation `op` on `session` with `args`.
    async fn run(&self, session: &str, op: &str, args: &[&[u8]]) -> Result<Answer, Refusal> {
        let p = prefix(session);
        let limits = self.context.limits;
        let mut inv = self.script.prepare_invoke();
        inv.key(format!("{p}meta"))
            .arg(&p)
            .arg(op)
            .arg(limits.session_ttl.as_millis().max(1) as u64)
            .arg(limits.lost_after.as_millis() as u64);
        for a in args {
            inv.arg(*a);
        }
        let mut conn = self.conn.clone();
        let (json, data): (String, Bytes) = inv
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.failed(e))?;
        let json = serde_json::from_str(&json).map_err(|e| self.failed(e))?;
        Ok(Answer { json, data })
    }

    /// Notes a session the script created: in the index, the metrics and the log.
    async fn created(&self, session: &str, answer: &Answer) {
        if !flag(&answer.json, "created") {
            return;
        }
        self.context.metrics.session_created();
        tracing::info!(session = %session, "session created");
        let mut conn = self.conn.clone();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let added: Result<(), _> = redis::cmd("ZADD")
            .arg(INDEX)
            .arg(now)
            .arg(session)
            .query_async(&mut conn)
            .await;
        if let Err(err) = added {
            self.failed(err);
        }
    }

    /// Turns the script's refusal codes into answers.
    fn refusal(&self, session: &str, answer: &Answer) -> Refusal {
        let j = &answer.json;
        let seat = |key: &str| {
            j.get(key)
                .and_then(Value::as_str)
                .and_then(|s| Seat::parse(s).ok())
                .unwrap_or(Seat::Dealer)
        };
        let limits = self.context.limits;
        let session = session.to_string();
        let reason = match answer.err().unwrap_or("") {
            "lost_session" => Reason::LostSession(session),
            "parties" => Reason::PartyCount {
                session,
                has: int(j, "has").unwrap_or(0) as u32,
                wanted: int(j, "wanted").unwrap_or(0) as u32,
            },
            "seat" => Reason::NoSuchSeat {
                session,
                seat: seat("seat"),
                parties: int(j, "parties").unwrap_or(0) as u32,
            },
            "token" => Reason::NeedsToken {
                session,
                seat: seat("seat"),
                what: j
                    .get("what")
                    .and_then(Value::as_str)
                    .unwrap_or("this")
                    .to_string(),
            },
            "taken" => Reason::SeatTaken {
                session,
                seat: seat("seat"),
                silent_secs: int(j, "silent").unwrap_or(0) as f64 / 1000.0,
                lost_after_secs: limits.lost_after.as_secs_f64(),
            },
            "closed" => {
                let why = j.get("why").and_then(Value::as_str).unwrap_or("expired");
                Closed::from_label(why)
                    .unwrap_or(Closed::Expired)
                    .reason(&session)
            }
            "forbidden" => Reason::DeleteForbidden(session),
            "reclaimed" => Reason::Reclaimed(None),
            "delivered" => Reason::DeliveredUnnamed,
            "queue_limit" => Reason::QueueLimit {
                pair: None,
                queued: int(j, "queued").unwrap_or(0) as usize,
                limit: limits.max_queue,
            },
            "session_limit" => Reason::SessionLimit {
                session,
                queued: int(j, "queued").unwrap_or(0) as usize,
                limit: limits.max_session,
            },
            other => {
                return self.failed(format!("unexpected answer from the store script: {other}"));
            }
        };
        reason.into()
    }

    fn check(&self, session: &str, answer: Answer) -> Result<Answer, Refusal> {
        match answer.err() {
            None => Ok(answer),
            Some(_) => Err(self.refusal(session, &answer)),
        }
    }

    async fn detail_of(
        &self,
        session: &str,
        refresh: bool,
    ) -> Result<Option<SessionInfo>, Refusal> {
        let a = self
            .run(session, "detail", &[if refresh { b"1" } else { b"" }])
            .await?;
        if !flag(&a.json, "exists") {
            return Ok(None);
        }
        let j = &a.json;
        let order = strings(j, "order");
        let mut seats: Vec<Seat> = strings(j, "seats")
            .iter()
            .filter_map(|s| Seat::parse(s).ok())
            .collect();
        seats.sort();
        Ok(Some(SessionInfo {
            session: session.to_string(),
            parties: int(j, "parties").map(|p| p as u32),
            seats: seats.iter().map(Seat::to_string).collect(),
            join_order: order,
            queued_messages: int(j, "qm").unwrap_or(0) as usize,
            queued_bytes: int(j, "qb").unwrap_or(0) as usize,
            age_secs: int(j, "age").unwrap_or(0) / 1000,
            idle_secs: int(j, "idle").unwrap_or(0) / 1000,
        }))
    }

    async fn names(&self) -> Result<Vec<String>, Refusal> {
        let mut conn = self.conn.clone();
        redis::cmd("ZRANGE")
            .arg(INDEX)
            .arg(0)
            .arg(-1)
            .query_async(&mut conn)
            .await
            .map_err(|e| self.failed(e))
    }

    async fn blocking_conn(&self) -> Result<MultiplexedConnection, Refusal> {
        if let Some(conn) = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop() {
            return Ok(conn);
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(None);
        self.client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| self.failed(e))
    }

    /// Blocks until message `seq` of the pair is in Redis or `wait` passed; its body if so.
    async fn block_for(
        &self,
        session: &str,
        pair: &str,
        seq: u64,
        wait: Duration,
    ) -> Result<Option<Bytes>, Refusal> {
        let mut conn = self.blocking_conn().await?;
        let key = format!("{}q:{pair}", prefix(session));
        let ms = wait.as_millis().max(1) as u64;
        let mut cmd = redis::cmd("XREAD");
        cmd.arg("COUNT")
            .arg(1)
            .arg("BLOCK")
            .arg(ms)
            .arg("STREAMS")
            .arg(&key)
            .arg(format!("0-{seq}"));
        let read = cmd
            .query_async::<Option<Vec<(String, Vec<(String, Vec<(String, Bytes)>)>)>>>(&mut conn);
        let got = match tokio::time::timeout(wait + Duration::from_secs(5), read).await {
            Ok(Ok(got)) => got,
            Ok(Err(err)) => return Err(self.failed(err)),
            Err(_) => return Err(self.failed("a blocking read did not return")),
        };
        {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            if idle.len() < POOL {
                idle.push(conn);
            }
        }
        let want = format!("0-{}", seq + 1);
        Ok(got.and_then(|streams| {
            streams
                .into_iter()
                .flat_map(|(_, entries)| entries)
                .find(|(id, _)| *id == want)
                .and_then(|(_, mut fields)| fields.pop().map(|(_, body)| body))
        }))
    }
}

impl Store for RedisStore {
    fn instance(&self) -> &str {
        &self.instance
    }

    async fn join(&self, session: &str, seat: Seat, req: &JoinRequest) -> Result<Joined, Refusal> {
        if self
            .shutting_down
            .load(std::sync::atomic::Ordering::Acquire)
        {
            return Err(Closed::Shutdown.refusal(session));
        }
        let parties = req.parties.map(|p| p.to_string()).unwrap_or_default();
        let epoch = random_id();
        let a = self
            .run(
                session,
                "join",
                &[
                    seat_arg(seat).as_bytes(),
                    req.client.as_deref().unwrap_or("").as_bytes(),
                    token_arg(req.token).as_bytes(),
                    parties.as_bytes(),
                    req.epoch.as_deref().unwrap_or("").as_bytes(),
                    epoch.as_bytes(),
                ],
            )
            .await?;
        self.created(session, &a).await;
        let a = self.check(session, a)?;
        let j = &a.json;
        if flag(j, "joined") {
            tracing::info!(session = %session, seat = %seat, claimed = !req.anonymous(), "seat joined");
        }
        if flag(j, "complete") {
            self.context.metrics.session_complete();
            tracing::info!(session = %session, "session complete: every party joined");
        }
        if flag(j, "reclaimed") {
            self.context.metrics.seat_reclaimed();
            tracing::info!(
                session = %session,
                seat = %seat,
                silent_secs = int(j, "silent").unwrap_or(0) / 1000,
                "lost seat reclaimed by a new client"
            );
        }
        Ok(Joined {
            epoch: j
                .get("epoch")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        })
    }

    async fn participants(&self, session: &str) -> Result<Vec<u32>, Refusal> {
        Ok(match self.detail_of(session, true).await? {
            Some(info) => info
                .seats
                .iter()
                .filter_map(|s| s.parse::<u32>().ok())
                .collect(),
            None => Vec::new(),
        })
    }

    async fn detail(&self, session: &str) -> Result<Option<SessionInfo>, Refusal> {
        self.detail_of(session, true).await
    }

    async fn list(&self) -> Result<Vec<SessionInfo>, Refusal> {
        let mut infos = Vec::new();
        for name in self.names().await? {
            if let Some(info) = self.detail_of(&name, false).await? {
                infos.push(info);
            }
        }
        infos.sort_by(|a, b| a.session.cmp(&b.session));
        Ok(infos)
    }

    async fn delete(&self, session: &str, access: DeleteAccess) -> Result<bool, Refusal> {
        let token = token_arg(access.token);
        let admin: &[u8] = if access.admin { b"1" } else { b"" };
        let a = self
            .run(session, "delete", &[token.as_bytes(), admin])
            .await?;
        let a = self.check(session, a)?;
        let deleted = flag(&a.json, "deleted");
        if deleted {
            let mut conn = self.conn.clone();
            let removed: Result<(), _> = redis::cmd("ZREM")
                .arg(INDEX)
                .arg(session)
                .query_async(&mut conn)
                .await;
            if let Err(err) = removed {
                self.failed(err);
            }
            self.context
                .metrics
                .session_finished(Closed::Deleted.label());
            tracing::info!(session = %session, admin = access.admin, "session deleted");
        }
        Ok(deleted)
    }

    async fn check_send(
        &self,
        session: &str,
        from: Seat,
        to: Seat,
        seq: Option<u64>,
        token: Option<TokenDigest>,
    ) -> Result<Admission, Refusal> {
        let seq_arg = seq.map(|s| s.to_string()).unwrap_or_default();
        let epoch = random_id();
        let a = self
            .run(
                session,
                "check_send",
                &[
                    seat_arg(from).as_bytes(),
                    seat_arg(to).as_bytes(),
                    seq_arg.as_bytes(),
                    token_arg(token).as_bytes(),
                    epoch.as_bytes(),
                ],
            )
            .await?;
        self.created(session, &a).await;
        if a.err() == Some("gap") {
            return Ok(Admission::Gap {
                expected: int(&a.json, "expected").unwrap_or(0),
            });
        }
        let a = self.check(session, a)?;
        Ok(match a.json.get("status").and_then(Value::as_str) {
            Some("duplicate") => Admission::Duplicate,
            _ => Admission::Next,
        })
    }

    async fn send(
        &self,
        session: &str,
        from: Seat,
        to: Seat,
        seq: Option<u64>,
        body: Bytes,
        token: Option<TokenDigest>,
        charge: Reservation,
    ) -> Result<SendOutcome, Refusal> {
        // Redis holds the body from now on; the relay's memory is free again.
        drop(charge);
        let limits = self.context.limits;
        let seq_arg = seq.map(|s| s.to_string()).unwrap_or_default();
        let epoch = random_id();
        let len = body.len();
        let a = self
            .run(
                session,
                "send",
                &[
                    seat_arg(from).as_bytes(),
                    seat_arg(to).as_bytes(),
                    seq_arg.as_bytes(),
                    token_arg(token).as_bytes(),
                    epoch.as_bytes(),
                    &body,
                    limits.max_queue.to_string().as_bytes(),
                    limits.max_session.to_string().as_bytes(),
                ],
            )
            .await?;
        self.created(session, &a).await;
        if a.err() == Some("gap") {
            return Err(Reason::OutOfOrder {
                from,
                to,
                got: int(&a.json, "got").unwrap_or(0),
                expected: int(&a.json, "expected").unwrap_or(0),
            }
            .into());
        }
        let a = self.check(session, a)?;
        let n = int(&a.json, "seq").unwrap_or(0);
        Ok(match a.json.get("status").and_then(Value::as_str) {
            Some("duplicate") => SendOutcome::Duplicate(n),
            _ => {
                self.context.metrics.relayed(len);
                SendOutcome::Queued(n)
            }
        })
    }

    async fn pop(
        &self,
        session: &str,
        from: Seat,
        to: Seat,
        token: Option<TokenDigest>,
    ) -> Result<Bytes, Refusal> {
        let a = self
            .run(
                session,
                "pop",
                &[
                    seat_arg(from).as_bytes(),
                    seat_arg(to).as_bytes(),
                    token_arg(token).as_bytes(),
                ],
            )
            .await?;
        if a.err() == Some("no_message") {
            return Err(Reason::NoMessage {
                session: session.to_string(),
                from,
                to,
            }
            .into());
        }
        let a = self.check(session, a)?;
        self.context.metrics.delivered(a.data.len());
        Ok(a.data)
    }

    async fn recv(
        &self,
        session: &str,
        from: Seat,
        to: Seat,
        seq: u64,
        wait: Duration,
        token: Option<TokenDigest>,
    ) -> Result<Option<Bytes>, Refusal> {
        let deadline = tokio::time::Instant::now() + wait;
        let _counted = self.context.metrics.waiting();
        let (from_arg, to_arg) = (seat_arg(from), seat_arg(to));
        let pair = format!("{from_arg}:{to_arg}");
        let seq_arg = seq.to_string();
        let token_hex = token_arg(token);
        let mut epoch = String::new();
        let mut generation = String::new();
        loop {
            let fresh = random_id();
            let a = self
                .run(
                    session,
                    "recv",
                    &[
                        from_arg.as_bytes(),
                        to_arg.as_bytes(),
                        seq_arg.as_bytes(),
                        token_hex.as_bytes(),
                        epoch.as_bytes(),
                        generation.as_bytes(),
                        fresh.as_bytes(),
                    ],
                )
                .await?;
            self.created(session, &a).await;
            match a.err() {
                Some("reclaimed") => {
                    return Err(Reason::Reclaimed(Some(from)).into());
                }
                Some("delivered") => {
                    return Err(Reason::Delivered { seq, from, to }.into());
                }
                Some("lost") => {
                    let silent = int(&a.json, "silent").unwrap_or(0);
                    if flag(&a.json, "first") {
                        self.context.metrics.party_lost();
                        tracing::info!(
                            session = %session,
                            seat = %from,
                            silent_secs = silent / 1000,
                            "party lost"
                        );
                    }
                    return Err(Reason::NoContact {
                        from,
                        silent_secs: silent as f64 / 1000.0,
                    }
                    .into());
                }
                _ => {}
            }
            let a = self.check(session, a)?;
            if flag(&a.json, "ready") {
                self.context.metrics.delivered(a.data.len());
                return Ok(Some(a.data));
            }
            if epoch.is_empty() {
                epoch = a
                    .json
                    .get("epoch")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                generation = a
                    .json
                    .get("gen")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
            }
            let now = tokio::time::Instant::now();
            if now >= deadline
                || self
                    .shutting_down
                    .load(std::sync::atomic::Ordering::Acquire)
            {
                return Ok(None);
            }
            let mut slice = (deadline - now).min(SLICE);
            if let Some(ms) = int(&a.json, "recheck") {
                slice = slice.min(Duration::from_millis(ms.max(1)));
            }
            if let Some(body) = self.block_for(session, &pair, seq, slice).await? {
                self.context.metrics.delivered(body.len());
                return Ok(Some(body));
            }
        }
    }

    async fn expire_idle(&self) {
        // Redis expires the keys; this notes which sessions are gone, once across relays.
        let Ok(names) = self.names().await else {
            return;
        };
        let mut conn = self.conn.clone();
        for name in names {
            let p = prefix(&name);
            let exists: Result<(bool, Option<String>), _> = redis::pipe()
                .cmd("EXISTS")
                .arg(format!("{p}meta"))
                .cmd("GET")
                .arg(format!("{p}end"))
                .query_async(&mut conn)
                .await;
            let Ok((exists, end)) = exists else {
                continue;
            };
            if exists {
                continue;
            }
            let removed: Result<u64, _> = redis::cmd("ZREM")
                .arg(INDEX)
                .arg(&name)
                .query_async(&mut conn)
                .await;
            if matches!(removed, Ok(1)) && end.as_deref() != Some("deleted") {
                self.context
                    .metrics
                    .session_finished(Closed::Expired.label());
                tracing::info!(session = %name, "session expired");
            }
        }
    }

    async fn stats(&self) -> Result<StoreStats, Refusal> {
        let mut stats = StoreStats::default();
        for name in self.names().await? {
            if let Some(info) = self.detail_of(&name, false).await? {
                stats.sessions += 1;
                stats.seats += info.seats.len() as u64;
                stats.queued_messages += info.queued_messages as u64;
                stats.queued_bytes += info.queued_bytes as u64;
            }
        }
        Ok(stats)
    }

    async fn shut_down(&self) {
        // The sessions stay in Redis for the other relays and the next start.
        self.shutting_down
            .store(true, std::sync::atomic::Ordering::Release);
    }
}
