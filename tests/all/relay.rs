//! Integration tests of the relay (`mpc serve`) and its client, [`RelayTransport`]: the relay
//! runs in-process on a free loopback port; clients speak plain HTTP to it.

use std::time::{Duration, Instant};

use bytes::Bytes;
use mpc::channel::relay::RelayTransport;
use mpc::channel::{Channel, ChannelError, Framed, Phase, Transport};
use mpc::relay::RelayConfig;
use reqwest::{Client, StatusCode};

use crate::common;
use crate::store_suite;
use common::inproc::{self, answer, assert_refused, http, start};
use common::redis_server::Backend;

fn config(backend: &Backend) -> RelayConfig {
    RelayConfig {
        store: backend.store.clone(),
        ..inproc::config()
    }
}

async fn get_json(client: &Client, url: &str) -> serde_json::Value {
    let resp = client.get(url).send().await.expect("GET");
    assert_eq!(resp.status(), StatusCode::OK, "GET {url}");
    serde_json::from_slice(&resp.bytes().await.expect("body")).expect("JSON")
}

/// A client written like polytune's: join without client id, poll the participants list,
/// send without sequence numbers, receive by polling with a short sleep on 400.
async fn polytune_style_clients_exchange_messages(backend: &Backend) {
    let relay = start(config(backend)).await;
    const PARTIES: u32 = 3;
    const ROUNDS: usize = 4;
    let mut tasks = Vec::new();
    for me in 0..PARTIES {
        let url = relay.url.clone();
        tasks.push(tokio::spawn(async move {
            let client = http();
            let resp = client
                .put(format!("{url}/join/poly/{me}"))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
            loop {
                let joined: Vec<u32> = serde_json::from_slice(
                    &client
                        .get(format!("{url}/participants/poly"))
                        .send()
                        .await
                        .unwrap()
                        .bytes()
                        .await
                        .unwrap(),
                )
                .unwrap();
                if joined.len() == PARTIES as usize {
                    assert_eq!(joined, vec![0, 1, 2]);
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            for round in 0..ROUNDS {
                for to in (0..PARTIES).filter(|&p| p != me) {
                    let resp = client
                        .post(format!("{url}/send/poly/{me}/{to}"))
                        .body(format!("{me}->{to} #{round}"))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(resp.status(), StatusCode::OK);
                }
            }
            for from in (0..PARTIES).filter(|&p| p != me) {
                for round in 0..ROUNDS {
                    let mut attempts = 0;
                    let body = loop {
                        let resp = client
                            .post(format!("{url}/recv/poly/{from}/{me}"))
                            .send()
                            .await
                            .unwrap();
                        if resp.status() == StatusCode::BAD_REQUEST {
                            attempts += 1;
                            assert!(attempts < 200, "message never arrived");
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            continue;
                        }
                        assert_eq!(resp.status(), StatusCode::OK);
                        break resp.text().await.unwrap();
                    };
                    assert_eq!(body, format!("{from}->{me} #{round}"));
                }
            }
        }));
    }
    for task in tasks {
        task.await.expect("party task");
    }
    // Everything was taken: the session holds nothing any more.
    let detail = get_json(&http(), &format!("{}/sessions/poly", relay.url)).await;
    assert_eq!(detail["queued_messages"], 0);
    assert_eq!(detail["seats"], serde_json::json!(["0", "1", "2"]));
}

async fn sequence_numbers_and_long_poll(backend: &Backend) {
    let relay = start(config(backend)).await;
    let client = http();
    let send = |seq: u64, body: &'static str| {
        client
            .post(format!("{}/send/seq/0/1?seq={seq}", relay.url))
            .body(body)
            .send()
    };
    assert_eq!(send(0, "a").await.unwrap().status(), StatusCode::OK);
    // A retry of message 0 is ignored.
    assert_eq!(send(0, "a").await.unwrap().status(), StatusCode::OK);
    // Skipping message 1 is refused, saying what was expected.
    let (status, body) = answer(send(2, "c").await.unwrap()).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(body.contains("expected seq 1"), "{body}");

    let recv = |seq: u64, wait: &'static str| {
        client
            .post(format!("{}/recv/seq/0/1?seq={seq}&wait={wait}", relay.url))
            .send()
    };
    let (status, body) = answer(recv(0, "5").await.unwrap()).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "a"));
    // The answer was "lost": asking again returns the same message.
    let (status, body) = answer(recv(0, "5").await.unwrap()).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "a"));
    let detail = get_json(&client, &format!("{}/sessions/seq", relay.url)).await;
    assert_eq!(detail["queued_messages"], 1, "only one copy was queued");

    // A long-poll returns as soon as the message is sent by someone else.
    let url = relay.url.clone();
    let waiting = tokio::spawn(async move {
        let started = Instant::now();
        let resp = http()
            .post(format!("{url}/recv/seq/0/1?seq=1&wait=30"))
            .send()
            .await
            .unwrap();
        (answer(resp).await, started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(send(1, "b").await.unwrap().status(), StatusCode::OK);
    let ((status, body), waited) = waiting.await.unwrap();
    assert_eq!((status, body.as_str()), (StatusCode::OK, "b"));
    assert!(waited < Duration::from_secs(5), "woke after {waited:?}");

    // Nothing numbered 2 yet: 204 after the wait, and 0 and 1 are acknowledged (freed).
    let started = Instant::now();
    let resp = recv(2, "0.3").await.unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert!(started.elapsed() >= Duration::from_millis(290));
    let detail = get_json(&client, &format!("{}/sessions/seq", relay.url)).await;
    assert_eq!(detail["queued_messages"], 0);
    assert_eq!(detail["queued_bytes"], 0);

    // Sends without a number continue the sequence.
    let resp = client
        .post(format!("{}/send/seq/0/1", relay.url))
        .body("c")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let (status, body) = answer(recv(2, "1").await.unwrap()).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "c"));
}

async fn seats_belong_to_the_first_client(backend: &Backend) {
    let relay = start(config(backend)).await;
    let client = http();
    let join = |id: Option<&'static str>| {
        let mut req = client.put(format!("{}/join/seats/1", relay.url));
        if let Some(id) = id {
            req = req.header("x-mpc-client", id);
        }
        req.send()
    };
    assert_eq!(join(Some("aaaa")).await.unwrap().status(), StatusCode::OK);
    assert_eq!(join(Some("aaaa")).await.unwrap().status(), StatusCode::OK);
    let (status, body) = answer(join(Some("bbbb")).await.unwrap()).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        body.contains("seat 1 of session 'seats' is already taken by another client"),
        "{body}"
    );
    // Without a client id: always accepted (polytune compatibility).
    assert_eq!(join(None).await.unwrap().status(), StatusCode::OK);
    let resp = client
        .put(format!("{}/join/seats/dealer", relay.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let participants = get_json(&client, &format!("{}/participants/seats", relay.url)).await;
    assert_eq!(participants, serde_json::json!([1]));
    let detail = get_json(&client, &format!("{}/sessions/seats", relay.url)).await;
    assert_eq!(detail["seats"], serde_json::json!(["1", "dealer"]));
    // An unknown session has no participants.
    let participants = get_json(&client, &format!("{}/participants/nobody", relay.url)).await;
    assert_eq!(participants, serde_json::json!([]));
}

async fn silent_peers_are_reported_lost(backend: &Backend) {
    let relay = start(RelayConfig {
        lost_after: Duration::from_millis(400),
        ..config(backend)
    })
    .await;
    let client = http();
    for seat in ["0", "1"] {
        let resp = client
            .put(format!("{}/join/lost/{seat}", relay.url))
            .header("x-mpc-client", format!("client-{seat}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
    }
    // Seat 1 never heartbeats: a long-poll for its message ends in 410 soon after 400 ms.
    let started = Instant::now();
    let resp = client
        .post(format!("{}/recv/lost/1/0?seq=0&wait=10", relay.url))
        .send()
        .await
        .unwrap();
    let (status, body) = answer(resp).await;
    assert_eq!(status, StatusCode::GONE);
    assert!(body.starts_with("party 1 lost: no contact for"), "{body}");
    assert!(started.elapsed() < Duration::from_millis(1400));

    // The same through the transport: a peer that leaves is reported lost.
    let t0 = RelayTransport::join(&relay.url, "lost2", 0, 2, Duration::from_secs(5))
        .await
        .unwrap();
    let t1 = RelayTransport::join(&relay.url, "lost2", 1, 2, Duration::from_secs(5))
        .await
        .unwrap();
    t1.leave().await;
    let got = t0
        .recv_frame(1, 0, Instant::now() + Duration::from_secs(10))
        .await;
    match got {
        Err(ChannelError::PeerLost { peer, detail }) => {
            assert_eq!(peer, "party 1");
            assert!(detail.to_string().contains("no contact"), "{detail}");
        }
        other => panic!("expected PeerLost, got {other:?}"),
    }
}

async fn heartbeating_peers_are_not_lost(backend: &Backend) {
    // Heartbeats come every second; a peer counts as lost after 1.5 s of silence.
    let relay = start(RelayConfig {
        lost_after: Duration::from_millis(1500),
        ..config(backend)
    })
    .await;
    let t0 = RelayTransport::join(&relay.url, "alive", 0, 2, Duration::from_secs(5))
        .await
        .unwrap();
    let t1 = RelayTransport::join(&relay.url, "alive", 1, 2, Duration::from_secs(5))
        .await
        .unwrap();
    let got = t1
        .recv_frame(0, 0, Instant::now() + Duration::from_millis(2500))
        .await;
    assert!(matches!(got, Ok(None)), "{got:?}");
    drop(t0);
}

async fn malformed_requests_get_clear_refusals(backend: &Backend) {
    let relay = start(RelayConfig {
        max_message: 1024,
        max_queue: 4096,
        ..config(backend)
    })
    .await;
    let client = http();
    let url = &relay.url;

    let body = assert_refused(
        StatusCode::NOT_FOUND,
        "unknown route",
        client.get(format!("{url}/nope")),
    )
    .await;
    assert!(body.contains("unknown route"), "{body}");
    assert_refused(StatusCode::NOT_FOUND, "root", client.get(format!("{url}/"))).await;
    let body = assert_refused(
        StatusCode::METHOD_NOT_ALLOWED,
        "wrong method",
        client.get(format!("{url}/join/s/0")),
    )
    .await;
    assert!(body.contains("PUT"), "{body}");
    let body = assert_refused(
        StatusCode::BAD_REQUEST,
        "non-numeric party",
        client.put(format!("{url}/join/s/abc")),
    )
    .await;
    assert!(body.contains("'abc'"), "{body}");
    // Percent-escapes: `%+f` (a sign where a hex digit belongs) and a lone `%` are refused;
    // a well-formed escape names the same session as the character itself.
    for bad in ["a%+f", "a%2", "%zz", "a%"] {
        let body = assert_refused(
            StatusCode::BAD_REQUEST,
            "malformed escape",
            client.put(format!("{url}/join/{bad}/0")),
        )
        .await;
        assert!(body.contains("percent-encoded"), "{bad}: {body}");
    }
    let (status, _) = answer(
        client
            .put(format!("{url}/join/p%20q/0"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let seats: Vec<u32> = serde_json::from_str(
        &answer(
            client
                .get(format!("{url}/participants/p q"))
                .send()
                .await
                .unwrap(),
        )
        .await
        .1,
    )
    .expect("participants JSON");
    assert_eq!(seats, vec![0], "p%20q and 'p q' are one session");
    let (status, body) = answer(
        client
            .post(format!("{url}/send/s/0/1?seq=%31"))
            .body("x")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "seq=%31 is seq 1 (a gap): {body}"
    );
    assert_refused(
        StatusCode::BAD_REQUEST,
        "negative party",
        client.post(format!("{url}/send/s/-1/0")).body("x"),
    )
    .await;
    let body = assert_refused(
        StatusCode::BAD_REQUEST,
        "bad seq",
        client.post(format!("{url}/send/s/0/1?seq=x")).body("x"),
    )
    .await;
    assert!(body.contains("seq"), "{body}");
    let body = assert_refused(
        StatusCode::BAD_REQUEST,
        "bad wait",
        client.post(format!("{url}/recv/s/0/1?seq=0&wait=soon")),
    )
    .await;
    assert!(body.contains("wait"), "{body}");
    let body = assert_refused(
        StatusCode::BAD_REQUEST,
        "empty queue",
        client.post(format!("{url}/recv/s/0/1")),
    )
    .await;
    assert!(body.contains("no message"), "{body}");
    let body = assert_refused(
        StatusCode::PAYLOAD_TOO_LARGE,
        "oversized body",
        client
            .post(format!("{url}/send/s/0/1"))
            .body(vec![7u8; 5000]),
    )
    .await;
    assert!(body.contains("1 KiB"), "{body}");
    // A full queue: four messages of 1 KiB fill it, the fifth is refused for now.
    for seq in 0..4 {
        let resp = client
            .post(format!("{url}/send/s/0/1?seq={seq}"))
            .body(vec![1u8; 1024])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
    }
    let body = assert_refused(
        StatusCode::TOO_MANY_REQUESTS,
        "full queue",
        client
            .post(format!("{url}/send/s/0/1?seq=4"))
            .body(vec![1u8; 1024]),
    )
    .await;
    assert!(body.contains("queue limit"), "{body}");
    // Acknowledging frees the queue, and then message 4 is accepted.
    let resp = client
        .post(format!("{url}/recv/s/0/1?seq=4&wait=0"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let resp = client
        .post(format!("{url}/send/s/0/1?seq=4"))
        .body(vec![1u8; 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    // Another session still works.
    let resp = client
        .post(format!("{url}/send/other/0/1"))
        .body("fine")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let (status, body) = answer(
        client
            .post(format!("{url}/recv/other/0/1"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "fine"));
}

async fn health_sessions_and_delete(backend: &Backend) {
    const ADMIN: &str = "operator-token-0123456789";
    let relay = start(RelayConfig {
        admin_token: Some(ADMIN.into()),
        ..config(backend)
    })
    .await;
    // The session list and deletion of anonymous sessions are the operator's.
    let client = {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {ADMIN}").parse().unwrap(),
        );
        Client::builder()
            .no_proxy()
            .default_headers(headers)
            .build()
            .unwrap()
    };
    let url = &relay.url;
    let health = get_json(&client, &format!("{url}/health")).await;
    assert_eq!(health["status"], "ok");
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(health["service"], "mpc relay");
    assert!(health["instance"].is_string());

    for seat in ["0", "dealer"] {
        let resp = client
            .put(format!("{url}/join/gone/{seat}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
    }
    let resp = client
        .post(format!("{url}/send/gone/dealer/0"))
        .body("12345")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let list = get_json(&client, &format!("{url}/sessions")).await;
    let entry = list
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["session"] == "gone")
        .expect("session listed")
        .clone();
    assert_eq!(entry["seats"], serde_json::json!(["0", "dealer"]));
    assert_eq!(entry["queued_messages"], 1);
    assert_eq!(entry["queued_bytes"], 5);
    assert!(entry["age_secs"].is_u64());

    // A waiter in the session is woken by the deletion.
    let waiter_url = format!("{url}/recv/gone/0/dealer?seq=0&wait=30");
    let waiter =
        tokio::spawn(async move { answer(http().post(waiter_url).send().await.unwrap()).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let resp = client
        .delete(format!("{url}/sessions/gone"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let (status, body) = waiter.await.unwrap();
    assert_eq!(status, StatusCode::GONE);
    assert!(body.contains("session deleted"), "{body}");

    let resp = client
        .get(format!("{url}/sessions/gone"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = client
        .delete(format!("{url}/sessions/gone"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let list = get_json(&client, &format!("{url}/sessions")).await;
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|s| s["session"] != "gone")
    );
}

async fn idle_sessions_expire(backend: &Backend) {
    let relay = start(RelayConfig {
        session_ttl: Duration::from_millis(200),
        ..config(backend)
    })
    .await;
    let client = http();
    let resp = client
        .put(format!("{}/join/idle/0", relay.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let resp = client
        .get(format!("{}/sessions/idle", relay.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

/// Sends `count` numbered frames to `to` and receives `count` from `to`, concurrently.
async fn exchange(t: &RelayTransport, me: usize, to: usize, count: u64) {
    let sending = async {
        for seq in 0..count {
            let frame = Bytes::from(format!("{me}->{to} #{seq}"));
            t.send_frame(to, seq, frame).await.expect("send");
        }
    };
    let receiving = async {
        for seq in 0..count {
            let frame = t
                .recv_frame(to, seq, Instant::now() + Duration::from_secs(10))
                .await
                .expect("recv")
                .expect("frame before the deadline");
            assert_eq!(frame, Bytes::from(format!("{to}->{me} #{seq}")));
        }
    };
    tokio::join!(sending, receiving);
}

async fn relay_transport_delivers_in_order(backend: &Backend) {
    let relay = start(RelayConfig {
        max_message: 12 << 20,
        ..config(backend)
    })
    .await;
    let timeout = Duration::from_secs(10);
    let t0 = RelayTransport::join(&relay.url, "tx", 0, 2, timeout)
        .await
        .unwrap();
    let t1 = RelayTransport::join(&relay.url, "tx", 1, 2, timeout)
        .await
        .unwrap();
    let mut seen = Vec::new();
    t0.wait_for(2, false, Instant::now() + timeout, |n| seen.push(n))
        .await
        .unwrap();
    assert_eq!(seen, vec![2]);
    assert!(!t0.dealer_joined().await.unwrap());
    // Waiting for a dealer that never comes ends with an error naming it.
    let err = t0
        .wait_for(2, true, Instant::now() + Duration::from_millis(300), |_| {})
        .await
        .unwrap_err();
    assert!(err.to_string().contains("the dealer"), "{err}");

    // A second client cannot take seat 0 while its holder is alive (it waits for the seat
    // to be free until its timeout).
    let taken = RelayTransport::join(&relay.url, "tx", 0, 2, Duration::from_secs(1)).await;
    match taken {
        Err(err) => assert!(
            err.to_string()
                .contains("seat 0 of session 'tx' is taken by another client"),
            "{err}"
        ),
        Ok(_) => panic!("seat 0 was claimed twice"),
    }

    tokio::join!(exchange(&t0, 0, 1, 100), exchange(&t1, 1, 0, 100));

    // One large frame (10 MiB), checked byte for byte.
    let big: Bytes = (0..10usize << 20).map(|i| (i % 251) as u8).collect();
    let (sent, got) = tokio::join!(
        t0.send_frame(1, 100, big.clone()),
        t1.recv_frame(0, 100, Instant::now() + timeout)
    );
    sent.unwrap();
    assert!(got.unwrap().expect("large frame") == big);

    // A relay that cannot be reached: an error naming its URL after the timeout.
    let started = Instant::now();
    let err = match RelayTransport::join(
        "http://127.0.0.1:9",
        "nowhere",
        0,
        2,
        Duration::from_millis(300),
    )
    .await
    {
        Err(err) => err.to_string(),
        Ok(_) => panic!("joined a relay that does not exist"),
    };
    assert!(err.contains("http://127.0.0.1:9"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

async fn framed_relay_channel_streams_large_messages(backend: &Backend) {
    let relay = start(config(backend)).await;
    let timeout = Duration::from_secs(10);
    let t0 = RelayTransport::join(&relay.url, "framed", 0, 2, timeout)
        .await
        .unwrap();
    let t1 = RelayTransport::join(&relay.url, "framed", 1, 2, timeout)
        .await
        .unwrap();
    let c0 = Framed::new(t0, 0, 2, 2, timeout);
    let c1 = Framed::new(t1, 1, 2, 2, timeout);
    let message: Bytes = (0..9usize << 20).map(|i| (i % 253) as u8).collect();
    let (sent, got) = tokio::join!(
        c0.send(1, Phase::GarbledRows, message.clone()),
        c1.recv(0, Phase::GarbledRows)
    );
    sent.unwrap();
    assert!(got.unwrap() == message);
    // And a small reply the other way.
    let (sent, got) = tokio::join!(
        c1.send(0, Phase::OutputLabels, Bytes::from_static(b"ok")),
        c0.recv(1, Phase::OutputLabels)
    );
    sent.unwrap();
    assert_eq!(got.unwrap(), Bytes::from_static(b"ok"));
}

store_suite!(
    polytune_style_clients_exchange_messages,
    sequence_numbers_and_long_poll,
    seats_belong_to_the_first_client,
    silent_peers_are_reported_lost,
    heartbeating_peers_are_not_lost,
    malformed_requests_get_clear_refusals,
    health_sessions_and_delete,
    idle_sessions_expire,
    relay_transport_delivers_in_order,
    framed_relay_channel_streams_large_messages,
);
