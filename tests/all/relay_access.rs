//! Who may do what at the relay: a seat claimed with a token is read, acknowledged and
//! written only with it; a session is deleted only by one of its clients or the operator;
//! the session list is the operator's; a seat whose client was lost can be claimed anew.

use crate::common;
use crate::store_suite;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::inproc::{self, answer, assert_refused, http};
use common::redis_server::Backend;
use mpc::channel::Transport;
use mpc::channel::relay::RelayTransport;
use mpc::relay::RelayConfig;
use reqwest::{Client, StatusCode};

const ADMIN: &str = "operator-token-0123456789";

/// Joins `seat` of `session` with a client id and token, as `RelayTransport` does.
async fn join(
    client: &Client,
    url: &str,
    session: &str,
    seat: &str,
    token: &str,
) -> reqwest::Response {
    client
        .put(format!("{url}/join/{session}/{seat}?parties=2"))
        .header("x-mpc-client", format!("client-{token}"))
        .header("x-mpc-token", token)
        .send()
        .await
        .expect("join")
}

async fn outsiders_cannot_read_acknowledge_write_or_delete(backend: &Backend) {
    let relay = inproc::start(RelayConfig {
        admin_token: Some(ADMIN.into()),
        ..RelayConfig {
            store: backend.store.clone(),
            ..inproc::config()
        }
    })
    .await;
    let url = &relay.url;
    let timeout = Duration::from_secs(10);
    let t0 = RelayTransport::join(url, "guarded", 0, 2, timeout)
        .await
        .unwrap();
    let t1 = RelayTransport::join(url, "guarded", 1, 2, timeout)
        .await
        .unwrap();
    t0.send_frame(1, 0, Bytes::from_static(b"for party 1 only"))
        .await
        .unwrap();

    let outsider = http();
    // Long-poll receive (which also acknowledges the frames before it).
    let body = assert_refused(
        StatusCode::FORBIDDEN,
        "long-poll receive",
        outsider.post(format!("{url}/recv/guarded/0/1?seq=1&wait=0")),
    )
    .await;
    assert!(body.contains("x-mpc-token"), "{body}");
    // polytune's receive, which takes the message.
    assert_refused(
        StatusCode::FORBIDDEN,
        "pop",
        outsider.post(format!("{url}/recv/guarded/0/1")),
    )
    .await;
    // A wrong token is no better than none.
    assert_refused(
        StatusCode::FORBIDDEN,
        "wrong token",
        outsider
            .post(format!("{url}/recv/guarded/0/1?seq=0&wait=0"))
            .header("x-mpc-token", "guess"),
    )
    .await;
    // Writing in party 0's name (which would spoil its sequence numbers).
    assert_refused(
        StatusCode::FORBIDDEN,
        "send",
        outsider
            .post(format!("{url}/send/guarded/0/1?seq=1"))
            .body("forged"),
    )
    .await;
    // Taking party 0's seat.
    let resp = join(&outsider, url, "guarded", "0", "thief").await;
    assert_eq!(resp.status(), StatusCode::CONFLICT);
    // Deleting the session, or listing sessions.
    assert_refused(
        StatusCode::FORBIDDEN,
        "delete",
        outsider.delete(format!("{url}/sessions/guarded")),
    )
    .await;
    assert_refused(
        StatusCode::FORBIDDEN,
        "delete with a made-up token",
        outsider
            .delete(format!("{url}/sessions/guarded"))
            .header("x-mpc-token", "made-up"),
    )
    .await;
    assert_refused(
        StatusCode::FORBIDDEN,
        "list",
        outsider.get(format!("{url}/sessions")),
    )
    .await;
    assert_refused(
        StatusCode::FORBIDDEN,
        "list with a wrong admin token",
        outsider
            .get(format!("{url}/sessions"))
            .header("authorization", "Bearer not-the-admin-token"),
    )
    .await;

    // Nothing was taken or acknowledged: party 1 gets frame 0, and the session goes on.
    let got = t1
        .recv_frame(0, 0, Instant::now() + timeout)
        .await
        .unwrap()
        .expect("frame 0");
    assert_eq!(got, Bytes::from_static(b"for party 1 only"));
    t1.send_frame(0, 0, Bytes::from_static(b"reply"))
        .await
        .unwrap();
    let got = t0
        .recv_frame(1, 0, Instant::now() + timeout)
        .await
        .unwrap()
        .expect("reply");
    assert_eq!(got, Bytes::from_static(b"reply"));

    // The operator lists and deletes.
    let list: serde_json::Value = serde_json::from_slice(
        &outsider
            .get(format!("{url}/sessions"))
            .header("authorization", format!("Bearer {ADMIN}"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(list[0]["session"], "guarded");
    assert_eq!(list[0]["parties"], 2);
    let resp = outsider
        .delete(format!("{url}/sessions/guarded"))
        .header("authorization", format!("Bearer {ADMIN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

async fn a_seat_holder_may_delete_its_session(backend: &Backend) {
    let relay = inproc::start(RelayConfig {
        store: backend.store.clone(),
        ..inproc::config()
    })
    .await;
    let client = http();
    let url = &relay.url;
    assert_eq!(
        join(&client, url, "mine", "0", "token-a").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        join(&client, url, "mine", "1", "token-b").await.status(),
        StatusCode::OK
    );
    // Without an admin token configured, nobody lists sessions.
    let (status, body) = answer(client.get(format!("{url}/sessions")).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.contains("--admin-token"), "{body}");
    let resp = client
        .delete(format!("{url}/sessions/mine"))
        .header("x-mpc-token", "token-b")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = client
        .get(format!("{url}/sessions/mine"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

/// A client that crashed leaves its seat to a new client once the relay counts it lost;
/// until then the newcomer is told when to retry. The old client, should it come back,
/// no longer gets in.
async fn a_lost_seat_can_be_reclaimed(backend: &Backend) {
    let relay = inproc::start(RelayConfig {
        lost_after: Duration::from_millis(500),
        ..RelayConfig {
            store: backend.store.clone(),
            ..inproc::config()
        }
    })
    .await;
    let client = http();
    let url = &relay.url;
    assert_eq!(
        join(&client, url, "crash", "0", "first").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        join(&client, url, "crash", "1", "other").await.status(),
        StatusCode::OK
    );
    // What the first client sent before it crashed.
    let resp = client
        .post(format!("{url}/send/crash/0/1?seq=0"))
        .header("x-mpc-token", "first")
        .body("from the crashed run")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    // At once: taken, with a hint and a retry-after.
    let resp = join(&client, url, "crash", "0", "second").await;
    assert_eq!(resp.status(), StatusCode::CONFLICT);
    assert!(resp.headers().contains_key("retry-after"));
    let body = resp.text().await.unwrap();
    assert!(body.contains("free again once"), "{body}");

    // After the first client has been silent for the lost delay: the seat is the new one's,
    // and it starts from message 0.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        join(&client, url, "crash", "0", "second").await.status(),
        StatusCode::OK
    );
    let resp = client
        .post(format!("{url}/send/crash/0/1?seq=0"))
        .header("x-mpc-token", "second")
        .body("from the new run")
        .send()
        .await
        .unwrap();
    let (status, body) = answer(resp).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("queued as message 0"), "{body}");
    let (status, body) = answer(
        client
            .post(format!("{url}/recv/crash/0/1?seq=0&wait=1"))
            .header("x-mpc-token", "other")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, "from the new run")
    );

    // The old client is out.
    let resp = join(&client, url, "crash", "0", "first").await;
    assert_eq!(resp.status(), StatusCode::CONFLICT);
    let resp = client
        .post(format!("{url}/send/crash/0/1?seq=1"))
        .header("x-mpc-token", "first")
        .body("late")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);

    // Through the transport: a rerun of a crashed party joins (waiting for the seat).
    let t0 = RelayTransport::join(url, "rerun", 0, 2, Duration::from_secs(5))
        .await
        .unwrap();
    drop(t0);
    let started = Instant::now();
    let again = RelayTransport::join(url, "rerun", 0, 2, Duration::from_secs(5)).await;
    assert!(again.is_ok(), "the rerun could not reclaim its seat");
    assert!(started.elapsed() < Duration::from_secs(4));
}

/// The value of the sample `name` (with its labels) in Prometheus text, if present.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// `GET /metrics` in Prometheus text: sessions, seats, messages and bytes queued and
/// relayed, refusals by status, sessions finished by reason.
async fn metrics_count_sessions_messages_and_refusals(backend: &Backend) {
    let relay = inproc::start(RelayConfig {
        store: backend.store.clone(),
        ..inproc::config()
    })
    .await;
    let client = http();
    let url = &relay.url;
    assert_eq!(
        join(&client, url, "m", "0", "t0").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        join(&client, url, "m", "1", "t1").await.status(),
        StatusCode::OK
    );
    let resp = client
        .post(format!("{url}/send/m/0/1?seq=0"))
        .header("x-mpc-token", "t0")
        .body("12345")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // An outsider's read: refused 403.
    let resp = client
        .post(format!("{url}/recv/m/0/1?seq=0&wait=0"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);

    let resp = client.get(format!("{url}/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain"),
    );
    let text = resp.text().await.unwrap();
    assert!(
        text.contains("# TYPE mpc_relay_sessions_created_total counter"),
        "{text}"
    );
    for (name, want) in [
        ("mpc_relay_sessions_active", 1.0),
        ("mpc_relay_seats", 2.0),
        ("mpc_relay_messages_queued", 1.0),
        ("mpc_relay_bytes_queued", 5.0),
        ("mpc_relay_sessions_created_total", 1.0),
        ("mpc_relay_sessions_complete_total", 1.0),
        ("mpc_relay_messages_relayed_total", 1.0),
        ("mpc_relay_bytes_relayed_total", 5.0),
        ("mpc_relay_refusals_total{status=\"403\"}", 1.0),
        ("mpc_relay_store_errors_total", 0.0),
    ] {
        assert_eq!(sample(&text, name), Some(want), "{name}\n{text}");
    }

    // Delivered, then deleted by a seat holder.
    let resp = client
        .post(format!("{url}/recv/m/0/1?seq=0&wait=0"))
        .header("x-mpc-token", "t1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = client
        .delete(format!("{url}/sessions/m"))
        .header("x-mpc-token", "t1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let text = client
        .get(format!("{url}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for (name, want) in [
        ("mpc_relay_sessions_active", 0.0),
        ("mpc_relay_messages_delivered_total", 1.0),
        ("mpc_relay_bytes_delivered_total", 5.0),
        ("mpc_relay_sessions_finished_total{reason=\"deleted\"}", 1.0),
    ] {
        assert_eq!(sample(&text, name), Some(want), "{name}\n{text}");
    }
}

store_suite!(
    outsiders_cannot_read_acknowledge_write_or_delete,
    a_seat_holder_may_delete_its_session,
    a_lost_seat_can_be_reclaimed,
    metrics_count_sessions_messages_and_refusals,
    session_events_are_logged_without_payloads,
);

/// The relay (a real process, memory and Redis store) logs one line per session event —
/// created, complete, party lost, deleted, expired — and never a payload.
async fn session_events_are_logged_without_payloads(backend: &Backend) {
    let store = match &backend.store {
        mpc::relay::store::StoreKind::Memory => "memory".to_string(),
        mpc::relay::store::StoreKind::Redis(url) => url.clone(),
    };
    let relay = common::Relay::start(&[
        "--lost-after",
        "0.3",
        "--session-ttl",
        "1",
        "--store",
        &store,
    ]);
    let client = http();
    let url = &relay.url;
    assert_eq!(
        join(&client, url, "logged", "0", "a0").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        join(&client, url, "logged", "1", "a1").await.status(),
        StatusCode::OK
    );
    let resp = client
        .post(format!("{url}/send/logged/0/1?seq=0"))
        .header("x-mpc-token", "a0")
        .body("SECRET-PAYLOAD")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = client
        .delete(format!("{url}/sessions/logged"))
        .header("x-mpc-token", "a0")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    // A party that goes silent is reported lost; the session then expires.
    assert_eq!(
        join(&client, url, "quiet", "0", "b0").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        join(&client, url, "quiet", "1", "b1").await.status(),
        StatusCode::OK
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let resp = client
        .post(format!("{url}/recv/quiet/1/0?seq=0&wait=1"))
        .header("x-mpc-token", "b0")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::GONE);

    let deadline = Instant::now() + Duration::from_secs(15);
    let wanted = [
        "session created",
        "session complete",
        "session deleted",
        "party lost",
        "session expired",
    ];
    loop {
        let log = relay.log();
        if wanted.iter().all(|w| log.contains(w)) {
            assert!(!log.contains("SECRET-PAYLOAD"), "{log}");
            assert!(
                log.lines()
                    .filter(|l| l.contains("session created"))
                    .count()
                    >= 2
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "missing session events in the log:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
