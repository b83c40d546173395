//! An active relay: a proxy in front of a real relay (`mpc::relay`) flips, drops, replays or
//! reorders one frame of a real session (3 parties and the dealer computing add.garble.rs
//! through `RelayTransport` + `Sealed` + `Framed` and the engine). Every run must abort with
//! an authentication error naming the sender; no party may ever output a wrong result.
//!
//! The proxy also captures every message body the relay is given, to show that the relay
//! learns nothing: no input, no plaintext frame, not even a 16-byte piece of one.

use crate::common;

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::inproc::{self, InProcRelay};
use common::recorder::Recorder;
use futures_util::future::join_all;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use mpc::channel::relay::RelayTransport;
use mpc::channel::sealed::{Auth, SealParams, Sealed, Secret};
use mpc::channel::{FRAME_HEADER, Framed, Phase, decode_frame};
use mpc::local::{LocalOptions, run_local_each};
use mpc::program::Program;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// What the proxy does to the frames from one sender to one receiver.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Attack {
    /// Forward everything unchanged (and capture it).
    None,
    /// Flip one bit of frame `target`.
    Flip,
    /// Swallow frame `target` and renumber the later ones, so the relay sees no gap.
    Drop,
    /// Deliver frame `target - 1` again in place of frame `target` (later ones renumbered).
    Replay,
    /// Swap frames `target` and `target + 1`; if the sender waits for an answer before
    /// sending `target + 1`, frame `target` is released after a moment and the next pair
    /// is tried (a network attacker cannot swap what is never in flight together).
    Reorder,
}

/// One body the relay was given.
#[derive(Debug, Clone)]
struct Captured {
    from: String,
    to: String,
    seq: u64,
    body: Bytes,
}

struct ProxyState {
    attack: Attack,
    from: String,
    to: String,
    target: u64,
    /// Bodies of the attacked pair by the sender's frame number.
    history: HashMap<u64, Bytes>,
    handled: HashSet<u64>,
    held: Option<(u64, Bytes)>,
    fired: bool,
    captured: Vec<Captured>,
}

struct Proxy {
    upstream: String,
    client: reqwest::Client,
    state: tokio::sync::Mutex<ProxyState>,
}

/// The `x-mpc-*` headers of a request or answer (the relay's client id, token, session
/// incarnation and instance id), which the proxy passes on unchanged.
fn mpc_headers(headers: &hyper::HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|(name, _)| name.as_str().starts_with("x-mpc-"))
        .filter_map(|(name, value)| Some((name.to_string(), value.to_str().ok()?.to_string())))
        .collect()
}

/// Parses `/send/{session}/{from}/{to}` and `seq=N`.
fn send_route(path: &str, query: &str) -> Option<(String, String, String, u64)> {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let ["send", session, from, to] = parts.as_slice() else {
        return None;
    };
    let seq = query
        .split('&')
        .find_map(|p| p.strip_prefix("seq="))?
        .parse()
        .ok()?;
    Some((session.to_string(), from.to_string(), to.to_string(), seq))
}

impl Proxy {
    async fn forward(
        &self,
        method: &hyper::Method,
        path_and_query: &str,
        headers: &[(String, String)],
        body: Bytes,
    ) -> (u16, Vec<(String, String)>, Bytes) {
        let url = format!("{}{path_and_query}", self.upstream);
        let method = reqwest::Method::from_bytes(method.as_str().as_bytes()).expect("method");
        let mut req = self.client.request(method, url).body(body);
        for (name, value) in headers {
            req = req.header(name, value);
        }
        match req.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let headers = mpc_headers(resp.headers());
                (status, headers, resp.bytes().await.unwrap_or_default())
            }
            Err(err) => (502, Vec::new(), Bytes::from(format!("proxy: {err}"))),
        }
    }

    async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let query = req.uri().query().unwrap_or("").to_string();
        // The relay's own headers (client id, token, session incarnation) pass both ways.
        let client_id = mpc_headers(req.headers());
        let body = req
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let reply = |(status, headers, body): (u16, Vec<(String, String)>, Bytes)| {
            let mut resp = Response::new(Full::new(body));
            *resp.status_mut() = hyper::StatusCode::from_u16(status).expect("status");
            for (name, value) in headers {
                resp.headers_mut().insert(
                    hyper::header::HeaderName::from_bytes(name.as_bytes()).expect("name"),
                    hyper::header::HeaderValue::from_str(&value).expect("value"),
                );
            }
            resp
        };
        let Some((session, from, to, seq)) = send_route(&path, &query) else {
            let pq = if query.is_empty() {
                path
            } else {
                format!("{path}?{query}")
            };
            return reply(self.forward(&method, &pq, &client_id, body).await);
        };
        let mut state = self.state.lock().await;
        let attacked = from == state.from && to == state.to && state.attack != Attack::None;
        // The frames the relay is given for this request, as (number, body).
        let mut out: Vec<(u64, Bytes)> = Vec::new();
        if !attacked {
            out.push((seq, body));
        } else if !state.handled.insert(seq) {
            // A retry of a frame already handled: the relay has it (in some form).
            return reply((200, Vec::new(), Bytes::from_static(b"proxy: duplicate")));
        } else {
            state.history.insert(seq, body.clone());
            let t = state.target;
            match state.attack {
                Attack::None => out.push((seq, body)),
                Attack::Flip => {
                    let mut b = body.to_vec();
                    if seq == t && !b.is_empty() {
                        let i = b.len() / 2;
                        b[i] ^= 0x10;
                        state.fired = true;
                    }
                    out.push((seq, Bytes::from(b)));
                }
                Attack::Drop => {
                    if seq == t {
                        state.fired = true;
                    } else if seq > t {
                        out.push((seq - 1, body));
                    } else {
                        out.push((seq, body));
                    }
                }
                Attack::Replay => {
                    if seq == t {
                        let earlier = state.history.get(&(t - 1)).cloned().expect("frame t-1");
                        out.push((t, earlier));
                        out.push((t + 1, body));
                        state.fired = true;
                    } else if seq > t {
                        out.push((seq + 1, body));
                    } else {
                        out.push((seq, body));
                    }
                }
                Attack::Reorder => {
                    if seq == t && !state.fired {
                        state.held = Some((seq, body));
                        let proxy = self.clone();
                        let (session, from, to) = (session.clone(), from.clone(), to.clone());
                        let client_id = client_id.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(Duration::from_millis(300)).await;
                            let mut state = proxy.state.lock().await;
                            if let Some((n, b)) = state.held.take_if(|(n, _)| *n == seq) {
                                // Nothing followed: let it through and try the next frame.
                                state.target = n + 1;
                                let pq = format!("/send/{session}/{from}/{to}?seq={n}");
                                state.captured.push(Captured {
                                    from: from.clone(),
                                    to: to.clone(),
                                    seq: n,
                                    body: b.clone(),
                                });
                                let method = hyper::Method::POST;
                                proxy.forward(&method, &pq, &client_id, b).await;
                            }
                        });
                    } else if let Some((n, held)) = state.held.take_if(|(n, _)| *n + 1 == seq) {
                        out.push((n, body));
                        out.push((seq, held));
                        state.fired = true;
                    } else {
                        out.push((seq, body));
                    }
                }
            }
        }
        let mut last = (200, Vec::new(), Bytes::from_static(b"proxy: held"));
        for (n, b) in out {
            state.captured.push(Captured {
                from: from.clone(),
                to: to.clone(),
                seq: n,
                body: b.clone(),
            });
            let pq = format!("/send/{session}/{from}/{to}?seq={n}");
            last = self.forward(&method, &pq, &client_id, b).await;
        }
        drop(state);
        reply(last)
    }
}

/// A relay and the proxy in front of it, both in this test's runtime.
struct Setup {
    proxy_url: String,
    proxy: Arc<Proxy>,
    _relay: InProcRelay,
    _stop: oneshot::Sender<()>,
}

async fn start(attack: Attack, from: &str, to: &str, target: u64) -> Setup {
    let relay = inproc::start(inproc::config()).await;
    let upstream = relay.url.clone();
    let proxy = Arc::new(Proxy {
        upstream,
        client: reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client"),
        state: tokio::sync::Mutex::new(ProxyState {
            attack,
            from: from.into(),
            to: to.into(),
            target,
            history: HashMap::new(),
            handled: HashSet::new(),
            held: None,
            fired: false,
            captured: Vec::new(),
        }),
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
    let proxy_url = format!("http://{}", listener.local_addr().expect("address"));
    let (stop_proxy, mut stopped) = oneshot::channel::<()>();
    let served = proxy.clone();
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                _ = &mut stopped => return,
                a = listener.accept() => a,
            };
            let Ok((stream, _)) = accepted else { continue };
            let proxy = served.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let proxy = proxy.clone();
                    async move { Ok::<_, Infallible>(proxy.clone().handle(req).await) }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Setup {
        proxy_url,
        proxy,
        _relay: relay,
        _stop: stop_proxy,
    }
}

/// The outcome of one session.
struct Run {
    /// Each party's output bits, or its error.
    results: Vec<Result<Vec<bool>, String>>,
    /// The dealer's outcome.
    dealer: Result<(), String>,
    expected: Vec<bool>,
    /// Every plain frame any endpoint sealed.
    plain_frames: Vec<Bytes>,
}

const PARTIES: usize = 3;

/// Runs add.garble.rs with 3 parties and the dealer through the proxy.
async fn run_session(url: &str, inputs: [&str; 3], auth: &Auth, seal: bool) -> Run {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("programs/add.garble.rs");
    let program = Program::load(&path).expect("add.garble.rs compiles");
    let bits: Vec<Vec<bool>> = inputs
        .iter()
        .enumerate()
        .map(|(p, lit)| program.parse_input(p, lit).expect("valid input"))
        .collect();
    let expected = program.eval_plain(&bits);
    let timeout = Duration::from_secs(10);
    let session = format!("tamper-{}", rand::random::<u32>());
    let peers = PARTIES + 1;
    let joined =
        join_all((0..peers).map(|me| RelayTransport::join(url, &session, me, PARTIES, timeout)))
            .await;
    let transports: Vec<RelayTransport> = joined.into_iter().map(|t| t.expect("join")).collect();
    let session_ref = &session;
    let sealed = join_all(
        transports
            .into_iter()
            .enumerate()
            .map(|(me, t)| async move {
                if !seal {
                    return Ok(Sealed::plain(t, me, PARTIES));
                }
                let params = SealParams {
                    session: session_ref,
                    me,
                    peers,
                    parties: PARTIES,
                    timeout,
                };
                Sealed::establish(t, &params, auth).await
            }),
    )
    .await;
    let mut channels: Vec<Framed<Recorder<Sealed<RelayTransport>>>> = sealed
        .into_iter()
        .enumerate()
        .map(|(me, s)| {
            let recorder = Recorder::new(s.expect("establish sealing"));
            Framed::new(recorder, me, peers, PARTIES, timeout)
        })
        .collect();
    let dealer = channels.pop();
    let opts = LocalOptions {
        timeout,
        ..LocalOptions::default()
    };
    let (results, dealt) = run_local_each(
        program.circuit(),
        program.hash(),
        &bits,
        &opts,
        channels.iter().collect(),
        dealer.as_ref(),
    )
    .await;
    let mut plain_frames = Vec::new();
    for ch in channels.iter().chain(dealer.iter()) {
        plain_frames.extend(ch.transport().sent().into_iter().map(|(_, frame)| frame));
    }
    Run {
        results: results
            .into_iter()
            .map(|r| match r {
                Ok(Some(outcome)) => outcome.output.ok_or_else(|| "no output".to_string()),
                Ok(None) => Err("no outcome".into()),
                Err(e) => Err(e.to_string()),
            })
            .collect(),
        dealer: dealt.map_err(|e| e.to_string()),
        expected,
        plain_frames,
    }
}

/// Runs one attack on the frames from party 1 to party 0 and checks that it is caught.
async fn attack(attack: Attack, target: u64, auth: &Auth) {
    let setup = start(attack, "1", "0", target).await;
    let started = Instant::now();
    let run = run_session(&setup.proxy_url, ["7u32", "11u32", "13u32"], auth, true).await;
    let state = setup.proxy.state.lock().await;
    assert!(state.fired, "{attack:?}: the proxy never got to tamper");
    for (p, r) in run.results.iter().enumerate() {
        if let Ok(out) = r {
            assert_eq!(
                out, &run.expected,
                "{attack:?}: party {p} output a WRONG result"
            );
        }
    }
    let err = run.results[0].as_ref().expect_err("party 0 must abort");
    assert!(
        err.contains("message from party 1 failed authentication"),
        "{attack:?}: party 0 failed with: {err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(9),
        "{attack:?}: the abort took {:?} (it should not wait for a timeout); \
         parties: {:?}; dealer: {:?}",
        started.elapsed(),
        run.results,
        run.dealer
    );
    eprintln!("{attack:?}: party 0: {err}; dealer: {:?}", run.dealer);
}

fn secret() -> Auth {
    Auth::Secret(
        Secret::new(b"a secret shared by the parties and the dealer", "the test").expect("secret"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_bit_is_caught() {
    attack(Attack::Flip, 2, &secret()).await;
    // Without a shared secret, too: the relay altered a frame instead of interposing.
    attack(Attack::Flip, 1, &Auth::Anonymous).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_frame_is_caught() {
    // Frame 3 (the input masks): a later frame from the same sender follows without waiting
    // for the receiver, so the gap shows at once. (Frame 2, the handshake's run id echo, is
    // the last one before the dealer phase, which needs the receiver: a drop there is only
    // noticed by the receive timeout.)
    attack(Attack::Drop, 3, &secret()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_frame_is_caught() {
    attack(Attack::Replay, 2, &secret()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reordered_frames_are_caught() {
    attack(Attack::Reorder, 2, &secret()).await;
}

/// Shannon entropy of a byte string, in bits per byte.
fn entropy(data: &[u8]) -> f64 {
    let mut counts = [0usize; 256];
    for &b in data {
        counts[b as usize] += 1;
    }
    let n = data.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Whether a captured body parses as a plain frame numbered `seq` (as an unsealed session
/// would send it).
fn is_plain_frame(body: &Bytes, seq: u64) -> bool {
    decode_frame(body.clone())
        .is_some_and(|v| v.kind <= 1 && Phase::from_tag(v.phase_tag).is_some() && v.seq == seq)
}

/// 16-byte pieces of every plain frame (at every 16-byte offset of the payload): labels,
/// keys and MACs are 16 bytes. Pieces with few distinct bytes (padding, small numbers)
/// are skipped: they could occur by chance.
fn pieces(frames: &[Bytes]) -> HashSet<[u8; 16]> {
    let mut out = HashSet::new();
    for f in frames {
        if f.len() < FRAME_HEADER {
            continue;
        }
        for chunk in f[FRAME_HEADER..].chunks_exact(16) {
            let distinct: HashSet<u8> = chunk.iter().copied().collect();
            if distinct.len() >= 10 {
                let mut piece = [0u8; 16];
                piece.copy_from_slice(chunk);
                out.insert(piece);
            }
        }
    }
    out
}

fn leaked_pieces(pieces: &HashSet<[u8; 16]>, captured: &[Captured]) -> usize {
    let mut windows: HashSet<&[u8]> = HashSet::new();
    for c in captured {
        for w in c.body.windows(16) {
            windows.insert(w);
        }
    }
    pieces.iter().filter(|p| windows.contains(&p[..])).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_sees_nothing_in_the_clear() {
    // A distinctive input: 0xdeadbeef.
    let inputs = ["3735928559u32", "1u32", "2u32"];
    let needles: [[u8; 4]; 2] = [0xdeadbeef_u32.to_le_bytes(), 0xdeadbeef_u32.to_be_bytes()];

    // Control: without sealing, the relay holds the plain frames.
    let setup = start(Attack::None, "", "", 0).await;
    let plain = run_session(&setup.proxy_url, inputs, &Auth::Anonymous, false).await;
    assert!(
        plain
            .results
            .iter()
            .all(|r| r.as_ref().is_ok_and(|o| *o == plain.expected))
    );
    let captured = setup.proxy.state.lock().await.captured.clone();
    assert!(captured.iter().all(|c| is_plain_frame(&c.body, c.seq)));
    let plain_pieces = pieces(&plain.plain_frames);
    assert!(
        !plain_pieces.is_empty() && leaked_pieces(&plain_pieces, &captured) == plain_pieces.len(),
        "the check must see plain frames when they are there"
    );
    // Listing of the frames party 1 sends party 0 (phase per frame), for reference.
    let listing: Vec<String> = captured
        .iter()
        .filter(|c| c.from == "1" && c.to == "0")
        .map(|c| {
            let phase = Phase::from_tag(c.body[1]).map_or("?", |p| p.name());
            format!("{}:{phase}:{}", c.seq, c.body.len())
        })
        .collect();
    eprintln!("frames from party 1 to party 0 (unsealed numbering): {listing:?}");

    // Sealed, with and without a shared secret.
    for auth in [secret(), Auth::Anonymous] {
        let setup = start(Attack::None, "", "", 0).await;
        let run = run_session(&setup.proxy_url, inputs, &auth, true).await;
        for (p, r) in run.results.iter().enumerate() {
            assert_eq!(r.as_ref().ok(), Some(&run.expected), "party {p}: {r:?}");
        }
        let captured = setup.proxy.state.lock().await.captured.clone();
        let data: Vec<&Captured> = captured.iter().filter(|c| c.seq > 0).collect();
        assert!(data.len() > 20, "only {} frames captured", data.len());
        for c in &captured {
            for needle in &needles {
                assert!(
                    !contains(&c.body, needle),
                    "the input 0xdeadbeef appears in a body the relay holds ({} -> {} #{})",
                    c.from,
                    c.to,
                    c.seq
                );
            }
        }
        for c in &data {
            // Sealed frames are one header-less ciphertext, 16 bytes longer than the plain
            // frame, and do not parse as a plain frame of their number.
            assert!(
                !is_plain_frame(&c.body, c.seq - 1),
                "a plain frame reached the relay"
            );
            assert!(
                !is_plain_frame(&c.body, c.seq),
                "a plain frame reached the relay"
            );
        }
        let sealed_pieces = pieces(&run.plain_frames);
        assert!(sealed_pieces.len() > 20);
        assert_eq!(
            leaked_pieces(&sealed_pieces, &captured),
            0,
            "a 16-byte piece of a plain frame (a label, key or MAC) reached the relay"
        );
        let all: Vec<u8> = data.iter().flat_map(|c| c.body.iter().copied()).collect();
        let bits = entropy(&all);
        assert!(
            bits > 7.9,
            "sealed bodies look structured: {bits:.3} bits per byte over {} bytes",
            all.len()
        );
        eprintln!(
            "sealed (secret: {}): {} bodies, {} bytes, {bits:.4} bits/byte, no plain piece",
            matches!(auth, Auth::Secret(_)),
            data.len(),
            all.len()
        );
    }
}
