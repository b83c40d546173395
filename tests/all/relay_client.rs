//! How a party (`mpc party`, a real process) copes with its relay: one that is not up yet,
//! a server that is not an mpc relay, a relay that restarts and loses the session, a
//! session started for another party count, and absurd timeouts. Each must end in a clear
//! line on stderr, within seconds, never a silent wait for the whole --timeout.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::{Proc, Relay, finish_all, free_port, mpc, party, program, warm};

/// Generous bound for a small session on a loaded machine.
const SMALL_RUN: Duration = Duration::from_secs(60);

/// Two parties of `millionaires.garble.rs` without a dealer, with `extra`.
fn millionaires(url: &str, session: &str, extra: &[&str]) -> Vec<Proc> {
    let program = program("millionaires.garble.rs");
    let mut args = vec!["--no-dealer"];
    args.extend_from_slice(extra);
    vec![
        party(url, session, &program, 0, "5000000u64", &args),
        party(url, session, &program, 1, "7000000u64", &args),
    ]
}

#[test]
fn a_relay_that_is_not_up_yet_is_reported_at_once_and_waited_for() {
    warm(&program("millionaires.garble.rs"));
    let addr = format!("127.0.0.1:{}", free_port());
    let url = format!("http://{addr}");
    let mut procs = millionaires(&url, "later", &["--timeout", "60"]);
    let needle =
        format!("cannot reach the relay at {url}: connection refused; retrying until --timeout");
    for p in procs.iter_mut() {
        p.wait_for_stderr(&needle, Duration::from_secs(5));
    }
    let _relay = Relay::start_on(&addr, &[]);
    for finished in finish_all(procs, SMALL_RUN) {
        finished.assert_result("Richer::Party1");
    }
}

/// Answers every request like a static file server that knows no PUT.
fn foreign_server() -> (String, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let handle = std::thread::spawn(move || {
        listener.set_nonblocking(true).expect("nonblocking");
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            match listener.accept() {
                Ok((mut stream, _)) => {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
                    let mut buf = [0u8; 4096];
                    let _ = stream.read(&mut buf);
                    let body = "<html><body>Unsupported method ('PUT')</body></html>";
                    let _ = write!(
                        stream,
                        "HTTP/1.0 501 Unsupported method ('PUT')\r\nServer: SimpleHTTP/0.6 \
                         Python/3.11\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                }
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    });
    (url, handle)
}

#[test]
fn a_server_that_is_not_an_mpc_relay_is_named_and_the_party_exits() {
    warm(&program("millionaires.garble.rs"));
    let (url, _server) = foreign_server();
    let started = Instant::now();
    let mut procs = millionaires(&url, "foreign", &["--timeout", "120"]);
    let finished = procs.remove(0).finish(Duration::from_secs(30));
    finished.assert_failed(1);
    finished.assert_stderr_has(&[&format!("{url} is not an mpc relay"), "501"]);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}\n{finished}",
        started.elapsed()
    );
}

#[test]
fn a_relay_that_restarted_and_lost_the_session_is_noticed_within_seconds() {
    let add = program("add.garble.rs");
    warm(&add);
    let mut relay = Relay::start(&[]);
    let url = relay.url.clone();
    // Parties 0 and 1 of three join and wait for party 2, which never comes.
    let args = ["--no-dealer", "--timeout", "120"];
    let mut procs = vec![
        party(&url, "restart", &add, 0, "1u32", &args),
        party(&url, "restart", &add, 1, "2u32", &args),
    ];
    for p in procs.iter_mut() {
        p.wait_for_stderr("2/3 parties joined", Duration::from_secs(20));
    }
    let addr = relay.addr();
    relay.kill();
    let _relay = Relay::start_on(&addr, &[]);
    let restarted = Instant::now();
    for finished in finish_all(procs, Duration::from_secs(60)) {
        finished.assert_failed(1);
        finished.assert_stderr_has(&["restarted", "lost session 'restart'"]);
        let after = finished.ended - restarted;
        assert!(
            after < Duration::from_secs(10),
            "noticed after {after:?}\n{finished}"
        );
    }
}

#[test]
fn a_party_count_mismatch_fails_at_once() {
    let two = program("millionaires.garble.rs");
    let three = program("add.garble.rs");
    warm(&two);
    warm(&three);
    let relay = Relay::start(&[]);
    let mut first = party(
        &relay.url,
        "count",
        &two,
        0,
        "5u64",
        &["--no-dealer", "--timeout", "120"],
    );
    first.wait_for_stderr("parties joined", Duration::from_secs(20));
    let started = Instant::now();
    let wrong = party(
        &relay.url,
        "count",
        &three,
        1,
        "2u32",
        &["--no-dealer", "--timeout", "120"],
    )
    .finish(Duration::from_secs(30));
    wrong.assert_failed(1);
    wrong.assert_stderr_has(&["party count mismatch", "has 2 parties", "started for 3"]);
    assert!(started.elapsed() < Duration::from_secs(10), "{wrong}");
    drop(first);
}

#[test]
fn an_absurd_timeout_is_refused_without_a_panic() {
    let finished = Proc::spawn(
        "party",
        mpc([
            "party",
            "http://127.0.0.1:9",
            "--session",
            "s",
            "--program",
            &program("add.garble.rs"),
            "--party",
            "0",
            "--input",
            "1u32",
            "--timeout",
            "1e20",
        ]),
    )
    .finish(Duration::from_secs(30));
    finished.assert_failed(2);
    finished.assert_stderr_has(&["too long"]);
    assert!(!finished.stderr.contains("panicked"), "{finished}");
}
