//! Process helpers for the end-to-end tests: run the real `mpc` binary on loopback.
//!
//! Every process is wrapped in a [`Proc`], which drains its stdout and stderr in background
//! threads (so a chatty process never blocks on a full pipe, and a test can look at what it
//! printed so far) and kills it when dropped, so a failing test never leaks a process.

#![allow(dead_code)]

pub mod inproc;
pub mod programs;
pub mod recorder;
pub mod redis_server;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The `mpc` binary under test.
pub const MPC: &str = env!("CARGO_BIN_EXE_mpc");

/// Compile cache shared by every process of the tests (warm once, reuse everywhere).
pub fn cache_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("e2e-compile-cache")
}

/// The path of an example program in `programs/`.
pub fn program(name: &str) -> String {
    format!("{}/programs/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A `mpc` command with the shared cache, no stdin and plain (uncoloured) logs.
pub fn mpc<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut cmd = Command::new(MPC);
    cmd.args(args)
        .env("MPC_CACHE_DIR", cache_dir())
        .env("NO_COLOR", "1")
        .env_remove("MPC_SECRET")
        .env_remove("SOCKET_ADDRESS")
        .stdin(Stdio::null());
    cmd
}

/// A loopback port on which nothing listens (bound, read and released).
pub fn free_port() -> u16 {
    free_ports(1)[0]
}

/// `n` distinct loopback ports on which nothing listens: each is held until all are picked,
/// so that the system cannot hand out one port twice.
///
/// They are drawn below the system's ephemeral range (`ip_local_port_range`): a port from
/// that range, once released, can be taken as the source port of any outgoing connection
/// of the tests running beside (which happened: "Address already in use" when the test's
/// endpoint then bound it). Below the range only another explicit pick can take it.
pub fn free_ports(n: usize) -> Vec<u16> {
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
        .filter(|&low| low > 12_000)
        .unwrap_or(32_768);
    let mut held: Vec<TcpListener> = Vec::with_capacity(n);
    let mut tries = 0;
    while held.len() < n {
        tries += 1;
        let listener = if tries < 1_000 {
            let port = rand::random_range(10_000..low);
            match TcpListener::bind(("127.0.0.1", port)) {
                Ok(l) => l,
                Err(_) => continue,
            }
        } else {
            TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0")
        };
        held.push(listener);
    }
    held.iter()
        .map(|l| l.local_addr().expect("local address").port())
        .collect()
}

/// A running `mpc` process whose output is collected; killed when dropped.
pub struct Proc {
    name: String,
    child: Option<Child>,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
    started: Instant,
}

/// What a finished process left behind.
#[derive(Debug)]
pub struct Finished {
    /// Its name in the test (`party 1`, `dealer`, ...).
    pub name: String,
    /// The exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    /// Everything it printed on stdout.
    pub stdout: String,
    /// Everything it printed on stderr.
    pub stderr: String,
    /// From spawning to the observed exit.
    pub elapsed: Duration,
    /// When the exit was observed.
    pub ended: Instant,
}

impl std::fmt::Display for Finished {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} exited with {:?} after {:.2} s\n--- stdout ---\n{}--- stderr ---\n{}--------------",
            self.name,
            self.code,
            self.elapsed.as_secs_f64(),
            self.stdout,
            self.stderr
        )
    }
}

impl Finished {
    /// Asserts exit code 0 and exactly `expected` (plus a newline) on stdout.
    pub fn assert_result(&self, expected: &str) {
        assert_eq!(self.code, Some(0), "{self}");
        assert_eq!(self.stdout, format!("{expected}\n"), "{self}");
    }

    /// Asserts the exit code and that stdout stayed empty.
    pub fn assert_failed(&self, code: i32) {
        assert_eq!(self.code, Some(code), "{self}");
        assert_eq!(self.stdout, "", "{self}");
    }

    /// Asserts that stderr contains every one of `needles`.
    pub fn assert_stderr_has(&self, needles: &[&str]) {
        for needle in needles {
            assert!(
                self.stderr.contains(needle),
                "expected {needle:?} on stderr\n{self}"
            );
        }
    }
}

fn drain(mut from: impl Read + Send + 'static, into: Arc<Mutex<Vec<u8>>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => into
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .extend_from_slice(&buf[..n]),
            }
        }
    })
}

fn text(buf: &Arc<Mutex<Vec<u8>>>) -> String {
    String::from_utf8_lossy(&buf.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
}

impl Proc {
    /// Spawns `cmd` with piped stdout and stderr.
    pub fn spawn(name: impl Into<String>, mut cmd: Command) -> Proc {
        let name = name.into();
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({cmd:?}): {e}"));
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let readers = vec![
            drain(child.stdout.take().expect("piped stdout"), stdout.clone()),
            drain(child.stderr.take().expect("piped stderr"), stderr.clone()),
        ];
        Proc {
            name,
            child: Some(child),
            stdout,
            stderr,
            readers,
            started: Instant::now(),
        }
    }

    /// Spawns `cmd` and writes `input` to its standard input, then closes it.
    pub fn spawn_with_stdin(name: impl Into<String>, mut cmd: Command, input: &[u8]) -> Proc {
        cmd.stdin(Stdio::piped());
        let mut proc = Proc::spawn(name, cmd);
        if let Some(mut stdin) = proc.child.as_mut().and_then(|c| c.stdin.take()) {
            stdin.write_all(input).expect("write to the child's stdin");
        }
        proc
    }

    /// Runs `mpc ARGS` to completion (at most `timeout`).
    pub fn run(name: &str, args: &[&str], timeout: Duration) -> Finished {
        Proc::spawn(name, mpc(args)).finish(timeout)
    }

    /// Its process id (0 once reaped).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Its name in the test.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What it printed on stderr so far.
    pub fn stderr_so_far(&self) -> String {
        text(&self.stderr)
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Waits until its stderr contains `needle`; panics (with the output) after `timeout`
    /// or if the process exits first.
    pub fn wait_for_stderr(&mut self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if self.stderr_so_far().contains(needle) {
                return;
            }
            if !self.running() {
                let name = self.name.clone();
                let finished = self.collect(None);
                panic!("{name} exited before printing {needle:?}\n{finished}");
            }
            if Instant::now() >= deadline {
                let name = self.name.clone();
                let finished = self.collect(None);
                panic!("{name} did not print {needle:?} within {timeout:?}\n{finished}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Its exit status, if it has exited.
    fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Kills it at once (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits for it to exit, up to `timeout`; on timeout kills it and panics with its
    /// output so far.
    pub fn finish(mut self, timeout: Duration) -> Finished {
        let deadline = Instant::now() + timeout;
        loop {
            let status = self
                .child
                .as_mut()
                .map(|c| c.try_wait().expect("wait for the child"));
            match status {
                Some(Some(status)) => return self.collect(Some(status)),
                None => return self.collect(None),
                Some(None) if Instant::now() >= deadline => {
                    self.kill();
                    let name = self.name.clone();
                    let finished = self.collect(None);
                    panic!("{name} did not exit within {timeout:?}; killed it\n{finished}");
                }
                Some(None) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    }

    fn collect(&mut self, status: Option<ExitStatus>) -> Finished {
        let ended = Instant::now();
        let status = match status {
            Some(s) => Some(s),
            None => {
                // Not exited (or exit not observed yet): make sure it is gone.
                self.kill();
                self.child.as_mut().and_then(|c| c.wait().ok())
            }
        };
        self.child = None;
        // The pipes close when the process exits; the readers then finish.
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        Finished {
            name: self.name.clone(),
            code: status.and_then(|s| s.code()),
            stdout: text(&self.stdout),
            stderr: text(&self.stderr),
            elapsed: ended - self.started,
            ended,
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Waits for all processes at once (each exit is noticed when it happens), up to a shared
/// `timeout`; if some are still running then, kills them all and panics with every output.
pub fn finish_all(mut procs: Vec<Proc>, timeout: Duration) -> Vec<Finished> {
    let deadline = Instant::now() + timeout;
    let mut done: Vec<Option<Finished>> = procs.iter().map(|_| None).collect();
    loop {
        for (proc, slot) in procs.iter_mut().zip(done.iter_mut()) {
            if slot.is_none()
                && let Some(status) = proc.exit_status()
            {
                *slot = Some(proc.collect(Some(status)));
            }
        }
        if done.iter().all(Option::is_some) {
            return done.into_iter().flatten().collect();
        }
        if Instant::now() >= deadline {
            let mut report = String::new();
            for (proc, slot) in procs.iter_mut().zip(done.iter_mut()) {
                match slot {
                    Some(finished) => report.push_str(&format!("{finished}\n")),
                    None => {
                        let finished = proc.collect(None);
                        report.push_str(&format!("STILL RUNNING (killed): {finished}\n"));
                    }
                }
            }
            panic!("not every process exited within {timeout:?}\n{report}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A relay (`mpc serve`) on a free loopback port; stopped when dropped.
pub struct Relay {
    /// Its base URL, `http://127.0.0.1:PORT` (`https://` when it serves TLS).
    pub url: String,
    proc: Proc,
}

impl Relay {
    /// Starts `mpc serve --listen 127.0.0.1:0` (plus `extra`), reads the bound address from
    /// its first stderr line and waits until `GET /health` answers 200 (with TLS, until it
    /// accepts connections).
    pub fn start(extra: &[&str]) -> Relay {
        Relay::start_on("127.0.0.1:0", extra)
    }

    /// Like [`start`](Self::start), listening on `addr` (e.g. the port of a relay that
    /// was killed, to restart it).
    pub fn start_on(addr: &str, extra: &[&str]) -> Relay {
        let mut args = vec!["serve", "--listen", addr];
        args.extend_from_slice(extra);
        Relay::start_command(mpc(&args))
    }

    /// Kills the relay at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        self.proc.kill();
    }

    /// The `HOST:PORT` it listens on.
    pub fn addr(&self) -> String {
        let url = self.url.as_str();
        let rest = url.strip_prefix("https://").unwrap_or(url);
        rest.trim_start_matches("http://").to_string()
    }

    /// Like [`start`](Self::start), with the relay's open-file limit (soft and hard) set
    /// to `fds` first.
    pub fn start_with_fd_limit(fds: u32, extra: &[&str]) -> Relay {
        let mut shell = Command::new("sh");
        shell
            .arg("-c")
            .arg(format!("ulimit -n {fds} && exec \"$0\" \"$@\""))
            .arg(MPC)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .env("NO_COLOR", "1")
            .env_remove("SOCKET_ADDRESS")
            .stdin(Stdio::null());
        Relay::start_command(shell)
    }

    /// Starts a relay from `cmd`, an `mpc serve --listen 127.0.0.1:0 ...` command (or a
    /// wrapper that execs one).
    pub fn start_command(cmd: Command) -> Relay {
        let mut proc = Proc::spawn("relay", cmd);
        proc.wait_for_stderr("listening on http", Duration::from_secs(10));
        let log = proc.stderr_so_far();
        let at = log.find("listening on http").expect("listening line") + 13;
        let url: String = log[at..]
            .chars()
            .take_while(|c| !c.is_whitespace())
            .collect();
        let relay = Relay { url, proc };
        relay.wait_healthy(Duration::from_secs(10));
        relay
    }

    fn wait_healthy(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let addr = self.addr();
        let tls = self.url.starts_with("https://");
        loop {
            if tls && TcpStream::connect(&addr).is_ok() {
                return;
            }
            if !tls && let Some(status) = http_get_status(&addr, "/health") {
                assert_eq!(status, 200, "GET {}/health", self.url);
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the relay at {} did not answer /health within {timeout:?}\n{}",
                self.url,
                self.proc.stderr_so_far()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The relay's process id (to read its memory use from /proc).
    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    /// The relay's log so far.
    pub fn log(&self) -> String {
        self.proc.stderr_so_far()
    }
}

/// The status code of `GET path` at `addr` (plain HTTP/1.1), or `None` if unreachable.
pub fn http_get_status(addr: &str, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.split_whitespace().nth(1)?.parse().ok()
}

/// Starts the dealer of `session` for `parties` parties.
pub fn dealer(url: &str, session: &str, parties: usize, extra: &[&str]) -> Proc {
    let n = parties.to_string();
    let mut args = vec!["pre", url, "--session", session, "--parties", &n];
    args.extend_from_slice(extra);
    Proc::spawn(format!("dealer of {session}"), mpc(&args))
}

/// Starts party `party` of `session`, running `program` with `input`; adds `--dealer`
/// unless `extra` says `--dealer` or `--no-dealer` (these tests start a dealer alongside
/// the parties, and a party uses it only when asked).
pub fn party(
    url: &str,
    session: &str,
    program: &str,
    party: usize,
    input: &str,
    extra: &[&str],
) -> Proc {
    let mut args = vec!["--input", input];
    if !extra
        .iter()
        .any(|a| *a == "--dealer" || *a == "--no-dealer")
    {
        args.push("--dealer");
    }
    args.extend_from_slice(extra);
    party_as_is(url, session, program, party, &args)
}

/// Starts party `party` of `session`, running `program`, with exactly `extra` after the
/// session, program and party number (no input, no dealer choice unless `extra` has them).
pub fn party_as_is(url: &str, session: &str, program: &str, party: usize, extra: &[&str]) -> Proc {
    let index = party.to_string();
    let mut args = vec![
        "party",
        url,
        "--session",
        session,
        "--program",
        program,
        "--party",
        &index,
    ];
    args.extend_from_slice(extra);
    Proc::spawn(format!("party {party} of {session}"), mpc(&args))
}

/// Compiles `program` into the shared cache (`mpc check`), so that parties load it at once.
pub fn warm(program: &str) {
    let checked = Proc::run("check", &["check", program], Duration::from_secs(120));
    assert_eq!(checked.code, Some(0), "{checked}");
}
