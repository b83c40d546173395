//! The relay holds its memory limits against clients that push it: refused sends never
//! erode the budget, tiny messages are charged what they really cost, idle and half-open
//! connections cannot lock others out, and a body that stalls is dropped with its charge.

mod common;

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
