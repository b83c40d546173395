//! Load generator for `mpc serve` (run by `scripts/relay_load.sh`): N concurrent sessions of
//! two parties each, joined through the real relay client ([`RelayTransport`]); in each
//! session the parties exchange ROUNDS messages of SIZE bytes each way, like a protocol's
//! rounds. Prints sessions per second and per-session latency (join to last message):
//! median and 99th percentile.
//!
//! Usage: `relay_load URL SESSIONS ROUNDS SIZE`

use std::time::{Duration, Instant};

use bytes::Bytes;
use mpc::channel::Transport;
use mpc::channel::relay::RelayTransport;

async fn one_session(
    url: String,
    name: String,
    rounds: u64,
    size: usize,
) -> Result<Duration, String> {
    let started = Instant::now();
    let timeout = Duration::from_secs(120);
    let (t0, t1) = tokio::join!(
        RelayTransport::join(&url, &name, 0, 2, timeout),
        RelayTransport::join(&url, &name, 1, 2, timeout)
    );
    let (t0, t1) = (
        t0.map_err(|e| e.to_string())?,
        t1.map_err(|e| e.to_string())?,
    );
    let deadline = Instant::now() + timeout;
    let party = |t: RelayTransport, me: usize| async move {
        let peer = 1 - me;
        for seq in 0..rounds {
            let frame = Bytes::from(vec![(seq % 251) as u8; size]);
            t.send_frame(peer, seq, frame)
                .await
                .map_err(|e| e.to_string())?;
            let got = t
                .recv_frame(peer, seq, deadline)
                .await
                .map_err(|e| e.to_string())?
                .ok_or("timed out")?;
            if got.len() != size {
                return Err(format!(
                    "message {seq} has {} bytes, sent {size}",
                    got.len()
                ));
            }
        }
        t.leave().await;
        Ok::<(), String>(())
    };
    let (a, b) = tokio::join!(party(t0, 0), party(t1, 1));
    a?;
    b?;
    Ok(started.elapsed())
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 5 {
        eprintln!("usage: relay_load URL SESSIONS ROUNDS SIZE");
        std::process::exit(2);
    }
    let parse = |i: usize| -> u64 {
        args[i].parse().unwrap_or_else(|_| {
            eprintln!("argument {i} must be a number, got '{}'", args[i]);
            std::process::exit(2)
        })
    };
    let (url, sessions, rounds, size) = (args[1].clone(), parse(2), parse(3), parse(4) as usize);
    let tag = std::process::id();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..sessions {
        tasks.spawn(one_session(
            url.clone(),
            format!("load-{tag}-{i}"),
            rounds,
            size,
        ));
    }
    let mut latencies = Vec::new();
    let mut failures = 0;
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(Ok(latency)) => latencies.push(latency),
            Ok(Err(err)) => {
                failures += 1;
                eprintln!("session failed: {err}");
            }
            Err(err) => {
                failures += 1;
                eprintln!("session task failed: {err}");
            }
        }
    }
    let wall = started.elapsed();
    latencies.sort();
    let pick = |q: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * q).round() as usize)
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "sessions={} failed={failures} wall_s={:.2} sessions_per_s={:.1} median_ms={:.0} p99_ms={:.0}",
        latencies.len(),
        wall.as_secs_f64(),
        latencies.len() as f64 / wall.as_secs_f64(),
        pick(0.5),
        pick(0.99)
    );
    if failures > 0 {
        std::process::exit(1);
    }
}
