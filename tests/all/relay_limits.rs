//! The relay holds its memory limits against clients that push it: refused sends never
//! erode the budget, tiny messages are charged what they really cost, idle and half-open
//! connections cannot lock others out, and a body that stalls is dropped with its charge.

use crate::common;

use std::time::{Duration, Instant};

use common::inproc::{self, answer, http};
use mpc::relay::RelayConfig;
use reqwest::StatusCode;

/// Sends far more than `--max-total` allows across many sessions: every refused send must
/// leave the budget as it was, so the relay never holds more than its total limit (the
/// failed charge used to release bytes it had never charged: 330 MiB under 64 MiB).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_sends_do_not_erode_the_total_limit() {
    const MESSAGE: usize = 64 << 10;
    const TOTAL: usize = 1 << 20;
    let relay = inproc::start(RelayConfig {
        max_message: MESSAGE,
        max_queue: TOTAL,
        max_session: TOTAL,
        max_total: TOTAL,
        ..inproc::config()
    })
    .await;
    let client = http();
    let sessions = 16;
    let (mut accepted, mut refused) = (0, 0);
    for i in 0..400 {
        let resp = client
            .post(format!("{}/send/erode-{}/0/1", relay.url, i % sessions))
            .body(vec![7u8; MESSAGE])
            .send()
            .await
            .expect("send");
        let (status, body) = answer(resp).await;
        match status {
            StatusCode::OK => accepted += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                assert!(body.contains("limit"), "{body}");
                refused += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(refused > 0, "the total limit was never reached");
    let mut queued = 0u64;
    for i in 0..sessions {
        let resp = client
            .get(format!("{}/sessions/erode-{i}", relay.url))
            .send()
            .await
            .expect("detail");
        if resp.status() == StatusCode::OK {
            let detail: serde_json::Value =
                serde_json::from_slice(&resp.bytes().await.expect("body")).expect("JSON");
            queued += detail["queued_bytes"].as_u64().expect("queued_bytes");
        }
    }
    assert!(
        queued <= TOTAL as u64,
        "{queued} bytes queued under a total limit of {TOTAL} ({accepted} sends accepted, \
         {refused} refused)"
    );
}

/// The resident memory of a process (Linux: VmRSS), in bytes.
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS line");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("VmRSS value");
    kib * 1024
}

/// 20,000 ten-byte messages, all left queued: the relay's memory grows by about what it
/// charges for them (each used to keep a piece of hyper's read buffer alive, ~4.5 KB
/// instead of the 74 bytes charged).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiny_messages_cost_what_they_are_charged() {
    const MESSAGES: usize = 20_000;
    const TASKS: usize = 8;
    let relay = common::Relay::start(&[]);
    let client = http();
    // Warm up the connections and the allocator before measuring.
    for t in 0..TASKS {
        let resp = client
            .post(format!("{}/send/warm-{t}/0/1", relay.url))
            .body("warm-up")
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status(), StatusCode::OK);
    }
    let before = rss_bytes(relay.pid());
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let (client, url) = (client.clone(), relay.url.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..MESSAGES / TASKS {
                let resp = client
                    .post(format!("{url}/send/tiny-{t}/0/1"))
                    .body(&b"0123456789"[..])
                    .send()
                    .await
                    .expect("send");
                assert_eq!(resp.status(), StatusCode::OK);
            }
        }));
    }
    for task in tasks {
        task.await.expect("sender");
    }
    let after = rss_bytes(relay.pid());
    let mut queued = 0;
    for t in 0..TASKS {
        let resp = client
            .get(format!("{}/sessions/tiny-{t}", relay.url))
            .send()
            .await
            .expect("detail");
        let detail: serde_json::Value =
            serde_json::from_slice(&resp.bytes().await.expect("body")).expect("JSON");
        queued += detail["queued_messages"].as_u64().expect("count") as usize;
    }
    assert_eq!(queued, MESSAGES, "every message stays queued");
    let charged = MESSAGES * (10 + mpc::relay::sessions::MESSAGE_OVERHEAD);
    let grown = after.saturating_sub(before) as usize;
    println!(
        "{MESSAGES} ten-byte messages: resident memory grew by {grown} bytes ({} per message), \
         {charged} bytes charged",
        grown / MESSAGES
    );
    assert!(
        grown <= 2 * charged + (4 << 20),
        "{MESSAGES} ten-byte messages grew the relay by {grown} bytes ({} per message) but \
         were charged {charged}",
        grown / MESSAGES
    );
}

/// 400 connections that never send a request, against a relay allowed 256 open files:
/// others still get in (the idle ones are shed first), and a session still works.
#[test]
fn idle_connections_cannot_lock_others_out() {
    let relay = common::Relay::start_with_fd_limit(256, &[]);
    let addr = relay.url.trim_start_matches("http://").to_string();
    let mut idle = Vec::new();
    for _ in 0..400 {
        match std::net::TcpStream::connect(&addr) {
            Ok(stream) => idle.push(stream),
            Err(err) => panic!("connect to the relay: {err}"),
        }
    }
    // Give the relay a moment to accept them all.
    std::thread::sleep(Duration::from_millis(300));
    for round in 0..5 {
        let status = common::http_get_status(&addr, "/health");
        assert_eq!(
            status,
            Some(200),
            "GET /health (round {round}) with 400 idle connections open\n{}",
            relay.log()
        );
    }
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let client = http();
        let resp = client
            .post(format!("{}/send/busy/0/1?seq=0", relay.url))
            .body("hello")
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status(), StatusCode::OK);
        let (status, body) = answer(
            client
                .post(format!("{}/recv/busy/0/1?seq=0&wait=5", relay.url))
                .send()
                .await
                .expect("recv"),
        )
        .await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "hello"));
    });
    drop(idle);
}

/// A connection that opens and says nothing is closed after --idle-timeout.
#[test]
fn silent_connections_are_closed_after_the_idle_timeout() {
    use std::io::Read;
    let relay = common::Relay::start(&["--idle-timeout", "0.5"]);
    let addr = relay.url.trim_start_matches("http://").to_string();
    let mut silent = std::net::TcpStream::connect(&addr).expect("connect");
    // Half a request line, then nothing.
    let mut half = std::net::TcpStream::connect(&addr).expect("connect");
    std::io::Write::write_all(&mut half, b"GET /hea").expect("write");
    for stream in [&mut silent, &mut half] {
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("read timeout");
        let started = Instant::now();
        let mut buf = [0u8; 512];
        let n = stream.read(&mut buf).unwrap_or(0);
        let waited = started.elapsed();
        assert!(
            waited < Duration::from_secs(5),
            "the connection was held for {waited:?} (read {n} bytes)"
        );
    }
}

/// A send whose body stops mid-way is answered 408 after --body-timeout, and the bytes it
/// reserved are free again for others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_bodies_time_out_and_release_their_charge() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let relay = inproc::start(RelayConfig {
        max_message: 64 << 10,
        max_queue: 64 << 10,
        max_session: 64 << 10,
        max_total: 64 << 10,
        body_timeout: Duration::from_millis(500),
        ..inproc::config()
    })
    .await;
    let addr = relay.url.trim_start_matches("http://").to_string();
    let mut stalled = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    stalled
        .write_all(
            format!(
                "POST /send/stall/0/1?seq=0 HTTP/1.1\r\nhost: {addr}\r\ncontent-length: 60000\r\n\r\n0123456789"
            )
            .as_bytes(),
        )
        .await
        .expect("write");
    tokio::time::sleep(Duration::from_millis(100)).await;
    // While the stalled body holds its reservation, a 10 KB message does not fit.
    let client = http();
    let resp = client
        .post(format!("{}/send/other/0/1?seq=0", relay.url))
        .body(vec![1u8; 10_000])
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let started = Instant::now();
    let mut answer_text = Vec::new();
    let read = tokio::time::timeout(
        Duration::from_secs(10),
        stalled.read_to_end(&mut answer_text),
    )
    .await;
    assert!(read.is_ok(), "the stalled request was held for 10 s");
    let answer_text = String::from_utf8_lossy(&answer_text);
    assert!(
        answer_text.starts_with("HTTP/1.1 408"),
        "after {:?}: {answer_text}",
        started.elapsed()
    );
    assert!(answer_text.contains("stalled"), "{answer_text}");
    let resp = client
        .post(format!("{}/send/other/0/1?seq=0", relay.url))
        .body(vec![1u8; 10_000])
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), StatusCode::OK);
}
