//! One conformance suite for every channel: the in-memory transport, the relay client and
//! direct mode, each plain and sealed end to end. Every property is checked on all six.
//!
//! The relay and direct variants run behind a *flaky proxy* that drops some connections
//! right after the server answered (the request was handled, the answer is lost), so the
//! clients retry the same frame numbers: delivery must stay exactly once and in order.

use crate::common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::future::join_all;
use mpc::channel::direct::{DirectConfig, DirectLimits, DirectTransport};
use mpc::channel::memory::{MemoryTransport, memory_channels};
use mpc::channel::relay::RelayTransport;
use mpc::channel::sealed::{Auth, SealParams, Sealed, Secret};
use mpc::channel::{Channel, ChannelError, Framed, Phase, Transport};
use mpc::net::client::ClientTls;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// Any of the transports under test.
enum AnyTransport {
    Memory(MemoryTransport),
    Relay(RelayTransport),
    Direct(DirectTransport),
}

impl Transport for AnyTransport {
    async fn send_frame(&self, to: usize, seq: u64, frame: Bytes) -> Result<(), ChannelError> {
        match self {
            AnyTransport::Memory(t) => t.send_frame(to, seq, frame).await,
            AnyTransport::Relay(t) => t.send_frame(to, seq, frame).await,
            AnyTransport::Direct(t) => t.send_frame(to, seq, frame).await,
        }
    }

    async fn recv_frame(
        &self,
        from: usize,
        seq: u64,
        deadline: Instant,
    ) -> Result<Option<Bytes>, ChannelError> {
        match self {
            AnyTransport::Memory(t) => t.recv_frame(from, seq, deadline).await,
            AnyTransport::Relay(t) => t.recv_frame(from, seq, deadline).await,
            AnyTransport::Direct(t) => t.recv_frame(from, seq, deadline).await,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Memory,
    Relay,
    Direct,
}

/// Every variant: each transport, plain and sealed (with a shared secret).
const VARIANTS: [(Kind, bool); 6] = [
    (Kind::Memory, false),
    (Kind::Memory, true),
    (Kind::Relay, false),
    (Kind::Relay, true),
    (Kind::Direct, false),
    (Kind::Direct, true),
];

type Chan = Framed<Sealed<AnyTransport>>;

/// Connected channels of one variant, and what keeps their servers running.
struct Setup {
    name: String,
    chans: Vec<Chan>,
    _guards: Vec<Box<dyn Send>>,
}

/// Stops a server task when dropped.
struct Stop(#[allow(dead_code)] oneshot::Sender<()>);

static SESSION: AtomicU64 = AtomicU64::new(0);

/// A TCP proxy to `upstream` that, for a fraction `drop_rate` of connections, closes the
/// connection as soon as the server starts answering (so the request was handled but its
/// answer is lost and the client must retry).
async fn flaky_proxy(upstream: SocketAddr, drop_rate: f64) -> (SocketAddr, Stop) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
    let addr = listener.local_addr().expect("proxy address");
    let (stop, mut stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                _ = &mut stopped => return,
                a = listener.accept() => a,
            };
            let Ok((client, _)) = accepted else { continue };
            let doomed = rand::random::<f64>() < drop_rate;
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    return;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let up = async {
                    let _ = tokio::io::copy(&mut cr, &mut sw).await;
                };
                let down = async {
                    let mut buf = vec![0u8; 64 << 10];
                    loop {
                        match sr.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                if doomed {
                                    // The answer exists; lose it.
                                    return;
                                }
                                if cw.write_all(&buf[..n]).await.is_err() {
                                    break;
                                }
                            }
                        }
                    }
                };
                // Whichever side ends (or the answer is lost) closes both.
                tokio::select! {
                    _ = up => {}
                    _ = down => {}
                }
            });
        }
    });
    (addr, Stop(stop))
}

/// A relay behind a proxy that loses one answer in five; the guards stop both.
async fn start_relay() -> (String, (common::inproc::InProcRelay, Stop)) {
    let relay = common::inproc::start(common::inproc::config()).await;
    let addr: SocketAddr = relay
        .url
        .trim_start_matches("http://")
        .parse()
        .expect("the relay's address");
    let (proxy, proxy_stop) = flaky_proxy(addr, 0.2).await;
    (format!("http://{proxy}"), (relay, proxy_stop))
}

/// `n` connected endpoints of `kind` (the last one numbered like a dealer when `n > 2`
/// would not matter here: all are named "party i" with parties = n).
async fn setup(kind: Kind, sealed: bool, n: usize, timeout: Duration) -> Setup {
    let id = SESSION.fetch_add(1, Ordering::Relaxed);
    let session = format!("conformance-{id}");
    let mut guards: Vec<Box<dyn Send>> = Vec::new();
    let transports: Vec<AnyTransport> = match kind {
        Kind::Memory => memory_channels(n, n, timeout)
            .into_iter()
            .map(|f| AnyTransport::Memory(f.into_transport()))
            .collect(),
        Kind::Relay => {
            let (url, stops) = start_relay().await;
            guards.push(Box::new(stops));
            join_all((0..n).map(|me| RelayTransport::join(&url, &session, me, n, timeout)))
                .await
                .into_iter()
                .map(|t| AnyTransport::Relay(t.expect("join the relay")))
                .collect()
        }
        Kind::Direct => {
            let listen: Vec<u16> = common::free_ports(n);
            let mut urls = Vec::new();
            for port in &listen {
                let upstream = SocketAddr::from(([127, 0, 0, 1], *port));
                let (proxy, stop) = flaky_proxy(upstream, 0.2).await;
                guards.push(Box::new(stop));
                urls.push(format!("http://{proxy}"));
            }
            let started = join_all((0..n).map(|me| {
                DirectTransport::start(DirectConfig {
                    urls: urls.clone(),
                    me,
                    parties: n,
                    session: session.clone(),
                    timeout,
                    listen: Some(SocketAddr::from(([127, 0, 0, 1], listen[me]))),
                    client_tls: ClientTls::default(),
                    server_tls: None,
                    // Small buffers, so that senders also meet 429 and back off.
                    limits: DirectLimits {
                        max_buffered: 6 << 20,
                        ..DirectLimits::default()
                    },
                })
            }))
            .await;
            let transports: Vec<DirectTransport> = started
                .into_iter()
                .map(|t| t.expect("start a direct endpoint"))
                .collect();
            let deadline = Instant::now() + Duration::from_secs(20);
            for r in join_all(
                transports
                    .iter()
                    .map(|t| t.wait_for_peers(deadline, |_| {})),
            )
            .await
            {
                r.expect("peers come up");
            }
            transports.into_iter().map(AnyTransport::Direct).collect()
        }
    };
    let sealed_transports: Vec<Sealed<AnyTransport>> = if sealed {
        let secret = Auth::Secret(Secret::new(b"conformance secret", "the test").expect("secret"));
        let session = &session;
        let secret = &secret;
        join_all(
            transports
                .into_iter()
                .enumerate()
                .map(|(me, t)| async move {
                    let params = SealParams {
                        session,
                        me,
                        peers: n,
                        parties: n,
                        timeout: Duration::from_secs(20),
                    };
                    Sealed::establish(t, &params, secret).await
                }),
        )
        .await
        .into_iter()
        .map(|s| s.expect("establish sealing"))
        .collect()
    } else {
        transports
            .into_iter()
            .enumerate()
            .map(|(me, t)| Sealed::plain(t, me, n))
            .collect()
    };
    let chans = sealed_transports
        .into_iter()
        .enumerate()
        .map(|(me, t)| Framed::new(t, me, n, n, timeout))
        .collect();
    Setup {
        name: format!("{kind:?}{}", if sealed { " sealed" } else { "" }),
        chans,
        _guards: guards,
    }
}

fn pattern(len: usize, salt: u8) -> Bytes {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(salt) ^ (i >> 13) as u8)
        .collect()
}

const TIMEOUT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_arrive_in_order_intact_and_exactly_once() {
    let sizes = [
        0usize,
        1,
        100,
        4 << 20,
        (4 << 20) + 1,
        (9 << 20) + 7,
        3,
        65_537,
    ];
    for (kind, sealed) in VARIANTS {
        let s = setup(kind, sealed, 2, TIMEOUT).await;
        let messages: Vec<(Phase, Bytes)> = sizes
            .iter()
            .enumerate()
            .map(|(i, &len)| (Phase::ALL[i % Phase::ALL.len()], pattern(len, i as u8)))
            .collect();
        // Many small messages too, so that the flaky proxy causes many retries.
        let small: Vec<Bytes> = (0..60u32)
            .map(|i| Bytes::from(i.to_le_bytes().to_vec()))
            .collect();
        let sending = async {
            for (phase, m) in &messages {
                s.chans[0].send(1, *phase, m.clone()).await.expect("send");
            }
            for m in &small {
                s.chans[0]
                    .send(1, Phase::BeaverOpening, m.clone())
                    .await
                    .expect("send");
            }
        };
        let receiving = async {
            for (i, (phase, m)) in messages.iter().enumerate() {
                let got = s.chans[1].recv(0, *phase).await.expect("recv");
                assert!(
                    got == *m,
                    "{}: message {i} ({} bytes) differs",
                    s.name,
                    m.len()
                );
            }
            for (i, m) in small.iter().enumerate() {
                let got = s.chans[1]
                    .recv(0, Phase::BeaverOpening)
                    .await
                    .expect("recv");
                assert_eq!(got, *m, "{}: small message {i}", s.name);
            }
        };
        tokio::join!(sending, receiving);
        // Nothing more: a duplicate of the last frame would arrive before this marker.
        let (sent, got) = tokio::join!(
            s.chans[0].send(1, Phase::OutputShares, Bytes::from_static(b"end")),
            s.chans[1].recv(0, Phase::OutputShares)
        );
        sent.expect("send the marker");
        assert_eq!(
            got.expect("the marker"),
            Bytes::from_static(b"end"),
            "{}",
            s.name
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_of_another_phase_is_an_error_naming_both() {
    for (kind, sealed) in VARIANTS {
        let s = setup(kind, sealed, 2, TIMEOUT).await;
        s.chans[0]
            .send(1, Phase::InputMasks, Bytes::from_static(b"masks"))
            .await
            .expect("send");
        let err = s.chans[1]
            .recv(0, Phase::GarbledRows)
            .await
            .expect_err("a message of the wrong phase must be refused");
        let text = err.to_string();
        assert!(
            matches!(err, ChannelError::UnexpectedPhase { .. })
                && text.contains("party 0")
                && text.contains("'input masks'")
                && text.contains("'garbled tables'"),
            "{}: {text}",
            s.name
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_peer_times_out_naming_it_and_the_phase() {
    let runs = VARIANTS.map(|(kind, sealed)| async move {
        let s = setup(kind, sealed, 3, Duration::from_secs(1)).await;
        let started = Instant::now();
        let err = s.chans[1]
            .recv(2, Phase::OutputShares)
            .await
            .expect_err("nothing was sent");
        let took = started.elapsed();
        assert!(
            err.to_string() == "no message from party 2 in phase 'output shares' after 1 s",
            "{}: {err}",
            s.name
        );
        assert!(took < Duration::from_secs(3), "{}: took {took:?}", s.name);
    });
    join_all(runs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_peers_send_large_messages_to_all_at_once() {
    const SIZE: usize = 10 << 20;
    for (kind, sealed) in VARIANTS {
        let s = setup(kind, sealed, 3, TIMEOUT).await;
        let started = Instant::now();
        let endpoint = |me: usize| {
            let ch = &s.chans[me];
            async move {
                let others: Vec<usize> = (0..3).filter(|&p| p != me).collect();
                let sends = join_all(others.iter().map(|&to| {
                    ch.send(to, Phase::GarbledRows, pattern(SIZE, (me * 3 + to) as u8))
                }));
                let recvs = join_all(others.iter().map(|&from| async move {
                    let got = ch.recv(from, Phase::GarbledRows).await.expect("recv");
                    assert!(
                        got == pattern(SIZE, (from * 3 + me) as u8),
                        "message from {from} to {me} differs"
                    );
                }));
                let (sent, _) = tokio::join!(sends, recvs);
                for r in sent {
                    r.expect("send");
                }
            }
        };
        join_all((0..3).map(endpoint)).await;
        eprintln!(
            "{}: 6 x 10 MiB exchanged concurrently in {:.2} s",
            s.name,
            started.elapsed().as_secs_f64()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_dies_is_reported_lost() {
    let runs = VARIANTS.map(|(kind, sealed)| async move {
        let mut s = setup(kind, sealed, 3, TIMEOUT).await;
        // Party 2 disappears without a word (its transport, server and heartbeat stop).
        drop(s.chans.pop());
        let started = Instant::now();
        let err = s.chans[0]
            .recv(2, Phase::Handshake)
            .await
            .expect_err("party 2 is gone");
        let took = started.elapsed();
        assert!(
            matches!(err, ChannelError::PeerLost { .. }) && err.to_string().contains("party 2"),
            "{}: {err}",
            s.name
        );
        assert!(
            took < Duration::from_secs(12),
            "{}: noticed after {took:?}",
            s.name
        );
    });
    join_all(runs).await;
}

/// Retries below the channel: the same frame number sent twice is delivered once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_frames_are_delivered_once() {
    for kind in [Kind::Relay, Kind::Direct] {
        let s = setup(kind, false, 2, TIMEOUT).await;
        let t0 = s.chans[0].transport().inner();
        let t1 = s.chans[1].transport().inner();
        for (seq, body) in [
            (0, "zero"),
            (0, "zero"),
            (1, "one"),
            (1, "one"),
            (0, "zero"),
        ] {
            t0.send_frame(1, seq, Bytes::from_static(body.as_bytes()))
                .await
                .expect("a repeated frame is accepted (and ignored)");
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        assert_eq!(
            t1.recv_frame(0, 0, deadline).await.unwrap().unwrap(),
            "zero"
        );
        assert_eq!(t1.recv_frame(0, 1, deadline).await.unwrap().unwrap(), "one");
        let short = Instant::now() + Duration::from_millis(300);
        assert!(
            t1.recv_frame(0, 2, short).await.unwrap().is_none(),
            "{kind:?}: a repeated frame was delivered twice"
        );
    }
}

/// A direct-mode endpoint answers a repeated POST 200 and keeps one copy; refuses a gap,
/// another session and an unknown sender with clear answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_endpoint_http_rules() {
    let port = common::free_port();
    let url = format!("http://127.0.0.1:{port}");
    let t = DirectTransport::start(DirectConfig {
        urls: vec![url.clone(), "http://127.0.0.1:9".into()],
        me: 0,
        parties: 2,
        session: "rules".into(),
        timeout: TIMEOUT,
        listen: None,
        client_tls: ClientTls::default(),
        server_tls: None,
        limits: DirectLimits {
            max_buffered: 10,
            max_frame: 1000,
        },
    })
    .await
    .expect("start");
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let post =
        |path: String, body: &'static str| client.post(format!("{url}{path}")).body(body).send();
    let answer = |r: reqwest::Response| async move {
        let status = r.status().as_u16();
        (status, r.text().await.unwrap())
    };
    let health = client
        .get(format!("{url}/health"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let health: serde_json::Value = serde_json::from_slice(&health).unwrap();
    assert_eq!(health["session"], "rules");
    assert_eq!(health["endpoint"], 0);
    let msg = |seq: u64| format!("/sessions/rules/msg/1?seq={seq}");
    assert_eq!(answer(post(msg(0), "first").await.unwrap()).await.0, 200);
    let (status, body) = answer(post(msg(0), "first").await.unwrap()).await;
    assert_eq!(status, 200);
    assert!(body.contains("duplicate ignored"), "{body}");
    let (status, body) = answer(post(msg(2), "gap").await.unwrap()).await;
    assert_eq!(status, 409, "{body}");
    // The buffer (10 bytes) holds "first": the next frame must wait (429).
    let (status, body) = answer(post(msg(1), "second!").await.unwrap()).await;
    assert_eq!(status, 429, "{body}");
    let (status, body) = answer(
        post("/sessions/other/msg/1?seq=0".into(), "x")
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404);
    assert!(body.contains("not session 'other'"), "{body}");
    let (status, _) = answer(
        post("/sessions/rules/msg/0?seq=0".into(), "x")
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400, "an endpoint does not take frames from itself");
    let (status, _) = answer(post(msg(5).replace("?seq=5", ""), "x").await.unwrap()).await;
    assert_eq!(status, 400, "a frame needs its number");
    let big = "x".repeat(2000);
    let resp = client
        .post(format!("{url}{}", msg(1)))
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 413);
    // Taking the first frame frees the buffer; the retry of frame 1 is now accepted.
    let deadline = Instant::now() + Duration::from_secs(2);
    assert_eq!(
        t.recv_frame(1, 0, deadline).await.unwrap().unwrap(),
        "first"
    );
    assert_eq!(answer(post(msg(1), "second!").await.unwrap()).await.0, 200);
    assert_eq!(
        t.recv_frame(1, 1, deadline).await.unwrap().unwrap(),
        "second!"
    );
}

// ---------------------------------------------------------------------------------------
// Direct mode end to end: `mpc party --peers ...` and `mpc pre --peers ...` processes.

const MPC: &str = env!("CARGO_BIN_EXE_mpc");

fn add_program() -> String {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("programs/add.garble.rs")
        .display()
        .to_string()
}

/// Starts an `mpc` process with `secret` in MPC_SECRET (none if empty).
fn mpc(args: &[String], secret: &str) -> std::process::Child {
    let mut cmd = std::process::Command::new(MPC);
    cmd.args(args)
        .env("MPC_LOG", "warn")
        .env_remove("MPC_SECRET")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    if !secret.is_empty() {
        cmd.env("MPC_SECRET", secret);
    }
    cmd.spawn().expect("start mpc")
}

fn party_args(peers: &str, session: &str, party: usize, timeout: &str) -> Vec<String> {
    [
        "party",
        "--peers",
        peers,
        "--session",
        session,
        "--program",
        &add_program(),
        "--party",
        &party.to_string(),
        "--input",
        &format!("{}u32", party + 1),
        "--timeout",
        timeout,
        "--dealer",
        "-q",
    ]
    .map(String::from)
    .to_vec()
}

fn dealer_args(peers: &str, session: &str, timeout: &str) -> Vec<String> {
    [
        "pre",
        "--peers",
        peers,
        "--session",
        session,
        "--parties",
        "3",
        "--timeout",
        timeout,
        "-q",
    ]
    .map(String::from)
    .to_vec()
}

fn direct_urls() -> String {
    (0..4)
        .map(|_| format!("http://127.0.0.1:{}", common::free_port()))
        .collect::<Vec<_>>()
        .join(",")
}

fn output_text(out: &std::process::Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn direct_mode_processes_started_in_reverse_order_compute() {
    let peers = direct_urls();
    let secret = "direct mode secret";
    let dealer = mpc(&dealer_args(&peers, "reverse", "30"), secret);
    let mut parties = Vec::new();
    for party in (0..3).rev() {
        std::thread::sleep(Duration::from_secs(1));
        parties.push((
            party,
            mpc(&party_args(&peers, "reverse", party, "30"), secret),
        ));
    }
    for (party, child) in parties {
        let out = child.wait_with_output().expect("party exits");
        let (stdout, stderr) = output_text(&out);
        assert!(out.status.success(), "party {party}: {stderr}");
        assert_eq!(stdout.trim(), "6", "party {party}");
    }
    let out = dealer.wait_with_output().expect("dealer exits");
    assert!(out.status.success(), "dealer: {}", output_text(&out).1);
}

#[test]
fn a_direct_peer_that_never_comes_up_is_named_within_the_timeout() {
    let peers = direct_urls();
    let urls: Vec<&str> = peers.split(',').collect();
    let started = Instant::now();
    // Party 0 and the dealer come up; parties 1 and 2 never do.
    let dealer = mpc(&dealer_args(&peers, "absent", "3"), "");
    let out = mpc(&party_args(&peers, "absent", 0, "3"), "")
        .wait_with_output()
        .expect("party exits");
    let took = started.elapsed();
    let (_, stderr) = output_text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(took < Duration::from_secs(6), "gave up after {took:?}");
    for (party, url) in [(1, urls[1]), (2, urls[2])] {
        assert!(
            stderr.contains(&format!("party {party} at {url}")),
            "party {party} and its URL are not named: {stderr}"
        );
    }
    assert!(stderr.contains("did not come up within 3 s"), "{stderr}");
    assert!(
        !stderr.contains("the dealer at"),
        "the dealer was up: {stderr}"
    );
    let out = dealer.wait_with_output().expect("dealer exits");
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn an_uninvited_direct_mode_dealer_exits_1_and_the_parties_compute_without_it() {
    let peers = direct_urls();
    let urls: Vec<&str> = peers.split(',').collect();
    let without_dealer = urls[..3].join(",");
    let dealer = mpc(&dealer_args(&peers, "uninvited", "20"), "");
    let parties: Vec<_> = (0..3)
        .map(|p| {
            let mut args = party_args(&without_dealer, "uninvited", p, "20");
            args.retain(|a| a != "--dealer");
            mpc(&args, "")
        })
        .collect();
    for (p, child) in parties.into_iter().enumerate() {
        let out = child.wait_with_output().expect("party exits");
        let (stdout, stderr) = output_text(&out);
        assert!(out.status.success(), "party {p}: {stderr}");
        assert_eq!(stdout.trim(), "6", "party {p}");
    }
    let out = dealer.wait_with_output().expect("dealer exits");
    let (stdout, stderr) = output_text(&out);
    assert_eq!(out.status.code(), Some(1), "dealer: {stderr}");
    assert!(stdout.is_empty());
    assert!(
        stderr.contains("without a dealer") && stderr.contains("--dealer"),
        "the dealer says why it is not used: {stderr}"
    );
}

#[test]
fn different_secrets_fail_at_the_start_saying_so() {
    let peers = direct_urls();
    let dealer = mpc(&dealer_args(&peers, "secrets", "20"), "one secret");
    let parties: Vec<_> = (0..3)
        .map(|p| {
            let secret = if p == 2 {
                "another secret"
            } else {
                "one secret"
            };
            mpc(&party_args(&peers, "secrets", p, "20"), secret)
        })
        .collect();
    let mut said = 0;
    for (p, child) in parties.into_iter().enumerate() {
        let out = child.wait_with_output().expect("party exits");
        let (stdout, stderr) = output_text(&out);
        assert_eq!(out.status.code(), Some(1), "party {p}: {stdout} {stderr}");
        assert!(stdout.is_empty(), "party {p} printed a result");
        if stderr.contains("the shared secrets differ") {
            said += 1;
        }
    }
    assert_eq!(said, 3, "every party must say that the secrets differ");
    let _ = dealer.wait_with_output();
}
