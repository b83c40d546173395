//! The Redis store with real processes: a relay killed (SIGKILL) in the middle of a
//! computation and restarted on the same port lets the parties finish with the right result,
//! and two relays on one Redis serve one session, party 0 through one and party 1 through
//! the other. Each test starts its own `redis-server` on a free loopback port.

use crate::common;

use std::time::Duration;

use common::redis_server::RedisServer;
use common::{Relay, dealer, finish_all, party, program, warm};

/// The inputs of `programs/big.garble.rs` (about one million AND gates, two parties).
const BIG_INPUTS: [&str; 2] = ["[[3u16; 32]; 32]", "[5u16; 32]"];

/// Small chunks spread the big run over several seconds, so that the relay can be killed
/// in the middle of it.
const SLOW_CHUNKS: [&str; 2] = ["--chunk-ands", "256"];

/// The product every party prints: 32 entries of 3 * 5 * 32.
fn big_result() -> String {
    format!("[{}]", vec!["480"; 32].join(", "))
}

#[test]
fn a_relay_killed_mid_computation_and_restarted_loses_nothing() {
    let big = program("big.garble.rs");
    warm(&big);
    let redis = RedisServer::start();
    let store = ["--store", redis.url.as_str()];
    let mut relay = Relay::start(&store);
    let url = relay.url.clone();
    let mut procs = vec![
        party(&url, "restart", &big, 0, BIG_INPUTS[0], &SLOW_CHUNKS),
        party(&url, "restart", &big, 1, BIG_INPUTS[1], &SLOW_CHUNKS),
        dealer(&url, "restart", 2, &[]),
    ];
    procs[0].wait_for_stderr("garbling", Duration::from_secs(120));
    std::thread::sleep(Duration::from_millis(300));
    for p in procs.iter_mut() {
        assert!(p.running(), "{} finished before the kill", p.name());
    }
    let addr = relay.addr();
    relay.kill();
    std::thread::sleep(Duration::from_millis(500));
    let _restarted = Relay::start_on(&addr, &store);
    for finished in finish_all(procs, Duration::from_secs(180)) {
        if finished.name.contains("party") {
            finished.assert_result(&big_result());
        } else {
            assert_eq!(finished.code, Some(0), "{finished}");
        }
    }
}

#[test]
fn two_relays_on_one_redis_serve_one_session() {
    let add = program("millionaires.garble.rs");
    warm(&add);
    let redis = RedisServer::start();
    let store = ["--store", redis.url.as_str()];
    let a = Relay::start(&store);
    let b = Relay::start(&store);
    let args = ["--no-dealer", "--timeout", "120"];
    let procs = vec![
        party(&a.url, "shared", &add, 0, "5000000u64", &args),
        party(&b.url, "shared", &add, 1, "7000000u64", &args),
    ];
    for finished in finish_all(procs, Duration::from_secs(120)) {
        finished.assert_result("Richer::Party1");
    }
}
